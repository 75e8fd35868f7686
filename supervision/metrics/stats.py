"""Small-sample statistics shared by the metrics: intervals for rates, empirical-Bayes shrinkage.

Everything is vectorised over NumPy arrays and pure (no input is modified).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _stats

__all__ = ["wilson_interval", "dersimonian_laird", "normal_shrinkage", "beta_binomial_prior",
           "beta_binomial_shrinkage"]


def wilson_interval(k, n, confidence: float = 0.95):
    """Wilson score interval for a proportion k / n, vectorised.

    Parameters
    ----------
    k : int or array-like of int
        Successes (0 <= k <= n).
    n : int or array-like of int
        Trials. Where ``n == 0`` the interval is undefined and returned as NaN.
    confidence : float, default 0.95
        Two-sided confidence level, strictly between 0 and 1.

    Returns
    -------
    lower, upper : float or ndarray
        The interval bounds, broadcast to the shape of ``k`` and ``n`` (plain floats for scalar
        input), clipped to [0, 1].

    Notes
    -----
    With p = k/n and z the standard normal quantile for the confidence level:
    centre = (p + z^2/2n) / (1 + z^2/n), half-width = z * sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).
    Wilson (1927) J Am Stat Assoc 22:209-212; method 3 of Newcombe (1998) Stat Med 17:857-872,
    whose worked example 81/263 gives 0.2553-0.3662. Same result as
    ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` (../shared/DEFINITIONS.md §3.1).

    Raises
    ------
    ValueError
        When k or n is negative, k > n, or the confidence level is not in (0, 1).
    """
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95); got {confidence!r}.")
    scalar = np.ndim(k) == 0 and np.ndim(n) == 0
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    valid = ~(np.isnan(k_arr) | np.isnan(n_arr))
    if np.any((k_arr[valid] < 0) | (n_arr[valid] < 0) | (k_arr[valid] > n_arr[valid])):
        raise ValueError("wilson_interval needs 0 <= k <= n for every pair (successes k out of n trials); "
                         f"got k={k!r}, n={n!r}.")
    z = _stats.norm.ppf(0.5 + float(confidence) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k_arr / n_arr
        denom = 1.0 + z * z / n_arr
        centre = (p + z * z / (2.0 * n_arr)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n_arr + z * z / (4.0 * n_arr * n_arr)) / denom
    undefined = ~valid | (n_arr == 0)
    lower = np.where(undefined, np.nan, np.clip(centre - half, 0.0, 1.0))
    upper = np.where(undefined, np.nan, np.clip(centre + half, 0.0, 1.0))
    # Exact bounds at the edges (floating-point noise would otherwise give 1e-17 instead of 0).
    lower = np.where(~undefined & (k_arr == 0), 0.0, lower)
    upper = np.where(~undefined & (k_arr == n_arr), 1.0, upper)
    if scalar:
        return float(lower), float(upper)
    return lower, upper


# --------------------------------------------------------------------------------------------
# empirical-Bayes shrinkage
# --------------------------------------------------------------------------------------------

def dersimonian_laird(estimate, variance) -> tuple[float, float]:
    """Between-unit variance tau^2 and the pooled mean by the DerSimonian-Laird method of moments.

    Parameters
    ----------
    estimate : array-like of float
        One estimate per unit (e.g. a clinician's mean residual). NaN units are ignored.
    variance : array-like of float
        Its sampling variance (e.g. sigma^2 / n_j), > 0.

    Returns
    -------
    mu, tau2 : float
        Random-effects pooled mean (weights 1 / (v_j + tau^2)) and tau^2 >= 0. With fewer than
        two units tau^2 = 0 and mu is the (only) estimate; NaN for no unit.

    Notes
    -----
    Q = sum w_j (y_j - ybar_w)^2 with w_j = 1/v_j; tau^2 = max(0, (Q - (k - 1)) /
    (sum w - sum w^2 / sum w)). DerSimonian & Laird (1986) Control Clin Trials 7:177-188; the same
    additive random-effects estimator as FunnelPlotR's overdispersion adjustment
    (../shared/DEFINITIONS.md §3.3 [V]).
    """
    y = np.asarray(estimate, dtype=float).ravel()
    v = np.asarray(variance, dtype=float).ravel()
    if y.shape != v.shape:
        raise ValueError(f"estimate and variance must have the same length; got {y.size} and {v.size}.")
    ok = ~(np.isnan(y) | np.isnan(v))
    if np.any(v[ok] <= 0):
        raise ValueError("every sampling variance must be > 0 (a unit with one case has no variance: leave it out).")
    y, v = y[ok], v[ok]
    k = y.size
    if k == 0:
        return float("nan"), float("nan")
    w = 1.0 / v
    ybar = float(np.sum(w * y) / np.sum(w))
    if k < 2:
        return ybar, 0.0
    q = float(np.sum(w * (y - ybar) ** 2))
    denom = float(np.sum(w) - np.sum(w * w) / np.sum(w))
    tau2 = max(0.0, (q - (k - 1)) / denom) if denom > 0 else 0.0
    wr = 1.0 / (v + tau2)
    return float(np.sum(wr * y) / np.sum(wr)), tau2


def normal_shrinkage(estimate, variance, *, confidence: float = 0.95, tau2: float | None = None,
                     mu: float | None = None) -> dict[str, np.ndarray | float]:
    """Normal-normal empirical-Bayes shrinkage of unit estimates towards the pooled mean.

    Parameters
    ----------
    estimate, variance : array-like of float
        Per unit: the raw estimate y_j and its sampling variance v_j (> 0). NaN units get NaN.
    confidence : float, default 0.95
        Level of the (two-sided, normal) posterior interval.
    tau2, mu : float, optional
        Prior variance and mean; estimated by :func:`dersimonian_laird` when not given.

    Returns
    -------
    dict
        ``mu``, ``tau2`` (floats) and arrays per unit: ``shrinkage`` = tau^2 / (tau^2 + v_j), the
        weight of the unit's own estimate (0 = fully pooled, 1 = its own estimate);
        ``posterior`` = mu + shrinkage (y_j - mu); ``posterior_sd``; ``lower``, ``upper``.

    Notes
    -----
    theta_j | y ~ N(mu + B_j (y_j - mu), B_j v_j) with B_j = tau^2 / (tau^2 + v_j) (the shrinkage
    factor of ../shared/DEFINITIONS.md §2.6 [U standard]); when mu is estimated, the posterior
    variance adds (1 - B_j)^2 Var(mu_hat), Var(mu_hat) = 1 / sum 1/(tau^2 + v_j) (Morris 1983,
    J Am Stat Assoc 78:47-55). tau^2 itself is treated as known, so with few units the interval
    is somewhat too narrow.
    """
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.90); got {confidence!r}.")
    y = np.asarray(estimate, dtype=float)
    v = np.asarray(variance, dtype=float)
    if y.shape != v.shape:
        raise ValueError(f"estimate and variance must have the same shape; got {y.shape} and {v.shape}.")
    ok = ~(np.isnan(y) | np.isnan(v))
    if np.any(v[ok] <= 0):
        raise ValueError("every sampling variance must be > 0 (a unit with one case has no variance: leave it out).")
    if tau2 is None:
        _, tau2 = dersimonian_laird(y, v)
    tau2 = float(tau2)
    if not tau2 >= 0:
        raise ValueError(f"tau2 must be 0 or more; got {tau2!r}.")
    mu_given = mu is not None
    var_mu = 0.0
    if mu_given:
        mu = float(mu)
    elif ok.any():
        w = 1.0 / (tau2 + v[ok])
        mu = float(np.sum(w * y[ok]) / np.sum(w))
        var_mu = float(1.0 / np.sum(w))
    else:
        mu = float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.where(ok, tau2 / (tau2 + v), np.nan)
        post = mu + b * (y - mu)
        var = b * v + (1.0 - b) ** 2 * var_mu
    sd = np.sqrt(var)
    z = _stats.norm.ppf(0.5 + float(confidence) / 2.0)
    return {"mu": mu, "tau2": tau2, "shrinkage": b, "posterior": post, "posterior_sd": sd,
            "lower": post - z * sd, "upper": post + z * sd}


def beta_binomial_prior(k, n) -> tuple[float, float]:
    """Beta(alpha, beta) prior for rates k/n, fitted by beta-binomial maximum likelihood.

    Parameters
    ----------
    k, n : array-like of int
        Successes and trials per unit (units with n == 0 are ignored).

    Returns
    -------
    alpha, beta : float
        NaN when fewer than two units have n > 0. When the rates vary no more than binomial
        noise allows, the fit runs to a very large alpha + beta (complete pooling); it is capped
        at 1e6.

    Notes
    -----
    Maximises sum log BetaBinom(k_i | n_i, alpha, beta) (scipy.stats.betabinom) over log alpha,
    log beta, starting from the method-of-moments values. As in R ``ebbr::ebb_fit_prior``
    (dgrtwo/ebbr, ../shared/DEFINITIONS.md §3.2 [V]); maximum likelihood rather than moments on
    the raw proportions, which overstate the prior variance when n is small.
    """
    from scipy import optimize

    k_arr = np.asarray(k, dtype=float).ravel()
    n_arr = np.asarray(n, dtype=float).ravel()
    if k_arr.shape != n_arr.shape:
        raise ValueError(f"k and n must have the same length; got {k_arr.size} and {n_arr.size}.")
    ok = ~(np.isnan(k_arr) | np.isnan(n_arr)) & (n_arr > 0)
    if np.any((k_arr[ok] < 0) | (k_arr[ok] > n_arr[ok])):
        raise ValueError("beta_binomial_prior needs 0 <= k <= n for every unit.")
    k_arr, n_arr = k_arr[ok], n_arr[ok]
    if k_arr.size < 2:
        return float("nan"), float("nan")
    p = k_arr / n_arr
    m = float(np.clip(p.mean(), 1e-3, 1 - 1e-3))
    var = float(p.var(ddof=1)) if p.size > 1 else 0.0
    s0 = m * (1 - m) / var - 1 if var > 0 else 100.0
    s0 = float(np.clip(s0, 0.5, 1e5))
    x0 = np.log([m * s0, (1 - m) * s0])

    def nll(x):
        a, b = np.exp(np.clip(x, -20, np.log(1e6)))
        return -float(np.sum(_stats.betabinom.logpmf(k_arr, n_arr, a, b)))

    res = optimize.minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
    a, b = np.exp(np.clip(res.x, -20, np.log(1e6)))
    return float(a), float(b)


def beta_binomial_shrinkage(k, n, *, confidence: float = 0.95, prior: tuple[float, float] | None = None):
    """Empirical-Bayes (beta-binomial) shrunken rates with credible intervals, vectorised.

    Parameters
    ----------
    k, n : array-like of int
        Successes and trials per unit.
    confidence : float, default 0.95
        Level of the equal-tailed posterior interval.
    prior : (alpha, beta), optional
        The Beta prior; fitted with :func:`beta_binomial_prior` when not given.

    Returns
    -------
    dict
        ``alpha``, ``beta`` (the prior) and arrays per unit: ``estimate`` = (alpha + k) /
        (alpha + beta + n), ``lower``, ``upper`` (Beta(alpha + k, beta + n - k) quantiles).

    Notes
    -----
    Posterior Beta(alpha0 + x_i, beta0 + n_i - x_i); shrunken estimate (alpha0 + x_i) /
    (alpha0 + beta0 + n_i); interval from beta quantiles [V] dgrtwo/ebbr ``add_ebb_estimate``
    (../shared/DEFINITIONS.md §3.2).
    """
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95); got {confidence!r}.")
    k_arr = np.asarray(k, dtype=float)
    n_arr = np.asarray(n, dtype=float)
    a0, b0 = beta_binomial_prior(k_arr, n_arr) if prior is None else (float(prior[0]), float(prior[1]))
    if not (a0 > 0 and b0 > 0):
        nan = np.full(np.broadcast(k_arr, n_arr).shape, np.nan)
        return {"alpha": a0, "beta": b0, "estimate": nan, "lower": nan.copy(), "upper": nan.copy()}
    a = a0 + k_arr
    b = b0 + n_arr - k_arr
    tail = (1.0 - float(confidence)) / 2.0
    return {"alpha": a0, "beta": b0, "estimate": a / (a + b),
            "lower": _stats.beta.ppf(tail, a, b), "upper": _stats.beta.ppf(1.0 - tail, a, b)}
