"""Small-sample statistics shared by the metrics: intervals, tests, shrinkage, funnel limits, FDR.

Everything is vectorised over NumPy arrays and pure (no input is modified). Sources and their
certainty: docs/methods.md §3 (Wilson, beta-binomial EB, Spiegelhalter funnel plots).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as _stats

__all__ = ["wilson_interval", "newcombe_interval", "newcombe_interaction_interval", "two_proportion_test",
           "mean_interval", "welch_test", "welch_interaction",
           "dersimonian_laird", "normal_shrinkage", "beta_binomial_prior", "beta_binomial_shrinkage",
           "funnel_overdispersion", "funnel_limits", "benjamini_hochberg", "FUNNEL_LEVELS"]

#: Funnel-plot control limits (two-sided coverage): "2 SD" and "3 SD" of Spiegelhalter (2005).
FUNNEL_LEVELS = (0.95, 0.998)


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
    ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` (docs/methods.md §3.1).

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
    z = special.ndtri(0.5 + float(confidence) / 2.0)  # norm.ppf, without its ~40 us of checks per call
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


def _check_confidence(confidence) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95); got {confidence!r}.")
    return float(confidence)


def _counts(name: str, k, n) -> tuple[np.ndarray, np.ndarray]:
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    ok = ~(np.isnan(k_arr) | np.isnan(n_arr))
    if np.any((k_arr[ok] < 0) | (n_arr[ok] < 0) | (k_arr[ok] > n_arr[ok])):
        raise ValueError(f"{name} needs 0 <= k <= n for every pair (successes k out of n); got k={k!r}, n={n!r}.")
    return k_arr, n_arr


def newcombe_interval(k1, n1, k2, n2, confidence: float = 0.95):
    """Newcombe hybrid-score interval for a difference of two independent proportions, vectorised.

    Parameters
    ----------
    k1, n1 : int or array-like
        Successes and trials of the first group (the estimate is ``k1/n1 - k2/n2``).
    k2, n2 : int or array-like
        Successes and trials of the second group.
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    lower, upper : float or ndarray
        Bounds for ``p1 - p2`` (plain floats for scalar input); NaN where either n is 0.

    Notes
    -----
    Method 10 of Newcombe (1998) Stat Med 17:873-890 ("square-and-add" of the Wilson limits
    l_i, u_i of each proportion, :func:`wilson_interval`):
    lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), upper = d + sqrt((u1 - p1)^2 + (p2 - l2)^2).
    Newcombe's Table II example 56/70 - 48/80 gives 0.0524 to 0.3339 and 9/10 - 3/10 gives
    0.1705 to 0.8090 (as reproduced by the R package propint's tests). Recommended for small
    samples; no continuity correction.
    """
    conf = _check_confidence(confidence)
    scalar = all(np.ndim(x) == 0 for x in (k1, n1, k2, n2))
    a1, b1 = _counts("newcombe_interval", k1, n1)
    a2, b2 = _counts("newcombe_interval", k2, n2)
    a1, b1, a2, b2 = np.broadcast_arrays(a1, b1, a2, b2)
    l1, u1 = wilson_interval(a1, b1, conf)
    l2, u2 = wilson_interval(a2, b2, conf)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = a1 / b1, a2 / b2
    d = p1 - p2
    lower = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    if scalar:
        return float(lower), float(upper)
    return lower, upper


def newcombe_interaction_interval(k1, n1, k2, n2, k3, n3, k4, n4, confidence: float = 0.95):
    """Interval for a difference of differences of proportions, (p1 - p2) - (p3 - p4), vectorised.

    Parameters
    ----------
    k1, n1, k2, n2 : int or array-like
        Successes and trials of the two proportions of the first difference.
    k3, n3, k4, n4 : int or array-like
        The same for the second difference.
    confidence : float, default 0.95

    Returns
    -------
    lower, upper : float or ndarray
        NaN where any n is 0.

    Notes
    -----
    Newcombe (2001) Stat Med 20:2885-2893: the square-and-add (MOVER) step of
    :func:`newcombe_interval` applied once more to the two hybrid-score intervals of the
    differences. Newcombe's §4.1 example (17/65 - 17/75) - (18/72 - 16/65) gives -0.1687 to
    0.2343 (as reproduced by the R package propint's tests).
    """
    conf = _check_confidence(confidence)
    scalar = all(np.ndim(x) == 0 for x in (k1, n1, k2, n2, k3, n3, k4, n4))
    arrs = [np.asarray(x, dtype=float) for x in np.broadcast_arrays(k1, n1, k2, n2, k3, n3, k4, n4)]
    a1, b1, a2, b2, a3, b3, a4, b4 = arrs
    l1, u1 = newcombe_interval(a1, b1, a2, b2, conf)
    l2, u2 = newcombe_interval(a3, b3, a4, b4, conf)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1, d2 = a1 / b1 - a2 / b2, a3 / b3 - a4 / b4
    d = d1 - d2
    lower = d - np.sqrt((d1 - l1) ** 2 + (u2 - d2) ** 2)
    upper = d + np.sqrt((u1 - d1) ** 2 + (d2 - l2) ** 2)
    if scalar:
        return float(lower), float(upper)
    return lower, upper


def welch_interaction(means, sds, ns, dfs=None, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Interval for a difference of differences of means, (m1 - m2) - (m3 - m4), vectorised.

    Parameters
    ----------
    means, sds, ns : sequence of four float or array-like
        Mean, SD and size of the four groups.
    dfs : sequence of four, optional
        Degrees of freedom of each variance (default n - 1; see :func:`welch_test`).
    confidence : float, default 0.95

    Returns
    -------
    dict
        ``difference``, ``se`` = sqrt(sum sd_i^2 / n_i), ``df`` (Welch-Satterthwaite over the four
        terms), ``lower``, ``upper``, ``p_value`` (two-sided t). NaN where a group has n < 2.

    Notes
    -----
    The contrast's variance is the sum of the four independent sampling variances; its degrees
    of freedom follow Satterthwaite (1946) Biometrics Bull 2:110-114, as in Welch's test.
    """
    conf = _check_confidence(confidence)
    m = [np.asarray(x, dtype=float) for x in means]
    s = [np.asarray(x, dtype=float) for x in sds]
    n = [np.asarray(x, dtype=float) for x in ns]
    f = [x - 1 for x in n] if dfs is None else [np.asarray(x, dtype=float) for x in dfs]
    if not (len(m) == len(s) == len(n) == len(f) == 4):
        raise ValueError("welch_interaction needs four means, SDs, sizes (and dfs).")
    with np.errstate(divide="ignore", invalid="ignore"):
        v = [si * si / ni for si, ni in zip(s, n)]
        var = v[0] + v[1] + v[2] + v[3]
        se = np.sqrt(var)
        df = var * var / sum(vi * vi / fi for vi, fi in zip(v, f))
        d = (m[0] - m[1]) - (m[2] - m[3])
        half = _stats.t.ppf(0.5 + conf / 2.0, df) * se
        p = 2.0 * _stats.t.sf(np.abs(d / se), df)
    ok = np.logical_and.reduce([ni >= 2 for ni in n]) & np.isfinite(d) & (se > 0)
    nan = np.full(np.shape(d), np.nan)
    return {"difference": np.where(ok, d, nan), "se": np.where(ok, se, nan), "df": np.where(ok, df, nan),
            "lower": np.where(ok, d - half, nan), "upper": np.where(ok, d + half, nan),
            "p_value": np.where(ok, p, nan)}


def _alternative(alternative: str) -> str:
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less'; got {alternative!r}.")
    return alternative


def two_proportion_test(k1, n1, k2, n2, *, alternative: str = "two-sided"):
    """p-value for equal proportions in two independent groups, vectorised.

    Parameters
    ----------
    k1, n1, k2, n2 : int or array-like
        Successes and trials of the two groups.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        "greater": the alternative is p1 > p2; "less": p1 < p2.

    Returns
    -------
    p_value : float or ndarray
        NaN where either n is 0; 1 (two-sided) or 0.5 (one-sided, the 'N - 1' statistic being 0)
        where both groups are all successes or all failures.

    Notes
    -----
    Campbell (2007) Stat Med 26:3661-3675 recommends, for 2 x 2 tables, the 'N - 1' chi-squared
    test (Pearson's X^2 times (N - 1)/N, no continuity correction) when every expected count is at
    least 1, and otherwise the Fisher-Irwin test (two-sided by Irwin's rule, as
    ``scipy.stats.fisher_exact``). Both are used here that way. One-sided p-values use the signed
    root of the 'N - 1' statistic, z = sign(p1 - p2) sqrt(X^2 (N - 1)/N), against the normal
    distribution, or the one-sided Fisher test.
    """
    alternative = _alternative(alternative)
    scalar = all(np.ndim(x) == 0 for x in (k1, n1, k2, n2))
    a1, b1 = _counts("two_proportion_test", k1, n1)
    a2, b2 = _counts("two_proportion_test", k2, n2)
    a1, b1, a2, b2 = (np.array(x, dtype=float) for x in np.broadcast_arrays(a1, b1, a2, b2))
    N = b1 + b2
    succ = a1 + a2
    with np.errstate(divide="ignore", invalid="ignore"):
        e11, e12 = b1 * succ / N, b1 * (N - succ) / N
        e21, e22 = b2 * succ / N, b2 * (N - succ) / N
        x2 = (N * (a1 * (b2 - a2) - a2 * (b1 - a1)) ** 2) / (b1 * b2 * succ * (N - succ))
        stat = x2 * (N - 1) / N
        if alternative == "two-sided":
            p = _stats.chi2.sf(stat, 1)
        else:
            z = np.sign(a1 / b1 - a2 / b2) * np.sqrt(stat)
            p = _stats.norm.sf(z) if alternative == "greater" else _stats.norm.cdf(z)
    bad = np.isnan(a1) | np.isnan(a2) | np.isnan(b1) | np.isnan(b2) | (b1 == 0) | (b2 == 0)
    degenerate = ~bad & ((succ == 0) | (succ == N))
    small = ~bad & ~degenerate & (np.minimum.reduce([e11, e12, e21, e22]) < 1)
    p = np.where(degenerate, 1.0 if alternative == "two-sided" else 0.5, p)
    small = np.flatnonzero(small.ravel())
    if small.size and alternative == "two-sided":
        for i in small:  # Irwin's two-sided rule searches each table's tail: scipy has no vectorised form
            idx = np.unravel_index(i, p.shape)
            table = [[int(a1[idx]), int(b1[idx] - a1[idx])], [int(a2[idx]), int(b2[idx] - a2[idx])]]
            p[idx] = _stats.fisher_exact(table, alternative=alternative).pvalue
    elif small.size:
        # one-sided Fisher test of every small table at once, as scipy.stats.fisher_exact computes it:
        # the hypergeometric tail of the first column ("less") or of the second ("greater")
        c00, c01, c10, c11 = (np.asarray(v, dtype=float).ravel()[small].astype(np.int64)
                              for v in (a1, b1 - a1, a2, b2 - a2))
        n1 = c00 + c01
        if alternative == "less":
            tail = _stats.hypergeom.cdf(c00, n1 + c10 + c11, n1, c00 + c10)
        else:
            tail = _stats.hypergeom.cdf(c01, n1 + c10 + c11, n1, c01 + c11)
        p.flat[small] = np.minimum(tail, 1.0)
    p = np.where(bad, np.nan, np.clip(p, 0.0, 1.0))
    if scalar:
        return float(p)
    return p


def mean_interval(mean, sd, n, confidence: float = 0.95):
    """Student t interval for a mean from its summary statistics, vectorised.

    Parameters
    ----------
    mean, sd, n : float or array-like
        Sample mean, sample SD (ddof = 1) and size.
    confidence : float, default 0.95

    Returns
    -------
    lower, upper : float or ndarray
        ``mean -/+ t(1 - alpha/2, n - 1) * sd / sqrt(n)``; NaN where n < 2 (no SD). Same as
        ``scipy.stats.ttest_1samp(x, 0).confidence_interval()``.
    """
    conf = _check_confidence(confidence)
    scalar = all(np.ndim(x) == 0 for x in (mean, sd, n))
    m, s, k = (np.asarray(x, dtype=float) for x in np.broadcast_arrays(mean, sd, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = _stats.t.ppf(0.5 + conf / 2.0, k - 1)
        half = t * s / np.sqrt(k)
    ok = k >= 2
    lower, upper = np.where(ok, m - half, np.nan), np.where(ok, m + half, np.nan)
    if scalar:
        return float(lower), float(upper)
    return lower, upper


def welch_test(mean1, sd1, n1, mean2, sd2, n2, confidence: float = 0.95, *, df1=None,
               df2=None, alternative: str = "two-sided") -> dict[str, np.ndarray]:
    """Welch's unequal-variance t interval and test for a difference of two means, vectorised.

    Parameters
    ----------
    mean1, sd1, n1 : float or array-like
        Mean, SD (ddof = 1) and size of the first group (the difference is ``mean1 - mean2``).
    mean2, sd2, n2 : float or array-like
        The same for the second group.
    confidence : float, default 0.95
    df1, df2 : float or array-like, optional
        Degrees of freedom of each variance estimate; default ``n - 1``. Give more when an SD was
        moderated with prior information (e.g. d0 + n - 1 for an empirical-Bayes variance with
        d0 prior degrees of freedom, Smyth 2004 Stat Appl Genet Mol Biol 3:3).
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        Of the p-value ("greater": mean1 > mean2). The interval is always two-sided.

    Returns
    -------
    dict
        Arrays ``difference``, ``se`` = sqrt(sd1^2/n1 + sd2^2/n2), ``df`` (Welch-Satterthwaite),
        ``lower``, ``upper``, ``p_value``. NaN where a group has fewer than 2 values. Where both
        SDs are 0 the interval is the difference itself and the p-value is 1 (two-sided; 0.5
        one-sided) when the means are equal, NaN otherwise.

    Notes
    -----
    Welch (1947) Biometrika 34:28-35; df = se^4 / ((s1^2/n1)^2/(n1-1) + (s2^2/n2)^2/(n2-1)).
    Same values as ``scipy.stats.ttest_ind(x, y, equal_var=False)`` and its
    ``confidence_interval()``.
    """
    conf = _check_confidence(confidence)
    alternative = _alternative(alternative)
    f1 = np.asarray(n1, dtype=float) - 1 if df1 is None else df1
    f2 = np.asarray(n2, dtype=float) - 1 if df2 is None else df2
    m1, s1, k1, m2, s2, k2, f1, f2 = (np.asarray(x, dtype=float)
                                      for x in np.broadcast_arrays(mean1, sd1, n1, mean2, sd2, n2, f1, f2))
    with np.errstate(divide="ignore", invalid="ignore"):
        v1, v2 = s1 ** 2 / k1, s2 ** 2 / k2
        se = np.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1 ** 2 / f1 + v2 ** 2 / f2)
        d = m1 - m2
        t = d / se
        if alternative == "two-sided":
            p = 2.0 * _stats.t.sf(np.abs(t), df)
        else:
            p = _stats.t.sf(t, df) if alternative == "greater" else _stats.t.cdf(t, df)
        half = _stats.t.ppf(0.5 + conf / 2.0, df) * se
    ok = (k1 >= 2) & (k2 >= 2) & ~np.isnan(d) & ~np.isnan(se)
    zero = ok & (se == 0)
    nan = np.full(d.shape, np.nan)
    return {
        "difference": np.where(ok, d, nan),
        "se": np.where(ok, se, nan),
        "df": np.where(ok & ~zero, df, nan),
        "lower": np.where(zero, d, np.where(ok, d - half, nan)),
        "upper": np.where(zero, d, np.where(ok, d + half, nan)),
        "p_value": np.where(zero, np.where(d == 0, 1.0 if alternative == "two-sided" else 0.5, np.nan),
                            np.where(ok, p, nan)),
    }


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
    (docs/methods.md §3.3 [V]).
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


def tau2_qprofile(estimate, variance, *, confidence: float = 0.95) -> dict[str, float]:
    """Confidence interval for the between-unit variance tau^2 by the Q-profile method, and Cochran's Q test.

    Parameters
    ----------
    estimate, variance : array-like of float
        Per unit: estimate y_j and sampling variance v_j (> 0); NaN units are ignored.
    confidence : float, default 0.95
        Level of the interval.

    Returns
    -------
    dict
        ``lower``, ``upper`` (the interval; 0 when the generalised Q at tau^2 = 0 is already below
        the quantile), ``q`` (Cochran's Q at tau^2 = 0), ``df`` (k - 1), ``p`` (P(chi^2_df >= Q):
        the test of "no unit differs beyond chance").

    Notes
    -----
    Viechtbauer (2007) Stat Med 26:37-52 [U: not re-read here]: the generalised statistic
    Q(tau^2) = sum (y_j - mu(tau^2))^2 / (v_j + tau^2), mu(tau^2) the weighted mean, is chi^2 with
    k - 1 degrees of freedom at the true tau^2 and decreases in tau^2, so the interval is
    {tau^2 : chi^2_{alpha/2} <= Q(tau^2) <= chi^2_{1 - alpha/2}}.
    """
    from scipy.optimize import brentq

    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.90); got {confidence!r}.")
    y = np.asarray(estimate, dtype=float).ravel()
    v = np.asarray(variance, dtype=float).ravel()
    ok = ~(np.isnan(y) | np.isnan(v))
    y, v = y[ok], v[ok]
    k = y.size
    if k < 2:
        return {"lower": 0.0, "upper": 0.0, "q": float("nan"), "df": max(k - 1, 0), "p": float("nan")}

    def q_of(t2: float) -> float:
        w = 1.0 / (v + t2)
        mu = np.sum(w * y) / np.sum(w)
        return float(np.sum(w * (y - mu) ** 2))

    alpha = 1.0 - float(confidence)
    df = k - 1
    hi_q, lo_q = _stats.chi2.ppf(1 - alpha / 2, df), _stats.chi2.ppf(alpha / 2, df)

    def solve(target: float) -> float:
        if q_of(0.0) <= target:
            return 0.0
        top = max(float(np.var(y, ddof=1)), float(np.max(v)), 1e-12)
        while q_of(top) > target:
            top *= 4.0
        return float(brentq(lambda t: q_of(t) - target, 0.0, top, xtol=1e-12, rtol=1e-10))

    q0 = q_of(0.0)
    return {"lower": solve(hi_q), "upper": solve(lo_q), "q": q0, "df": df, "p": float(_stats.chi2.sf(q0, df))}


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
    factor of docs/methods.md §2.6 [U standard]); when mu is estimated, the posterior
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
    z = special.ndtri(0.5 + float(confidence) / 2.0)  # norm.ppf, without its ~40 us of checks per call
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
    Maximises sum log BetaBinom(k_i | n_i, alpha, beta) (the likelihood of
    ``scipy.stats.betabinom``) over logit(alpha / (alpha + beta)) and log(alpha + beta) by SLSQP
    with the analytic gradient, starting from the method-of-moments values. As in R ``ebbr::ebb_fit_prior``
    (dgrtwo/ebbr, docs/methods.md §3.2 [V]); maximum likelihood rather than moments on
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

    # Parametrised by logit(mean) and log(alpha + beta), with the analytic gradient; the
    # binomial coefficient is constant in (alpha, beta) and left out of the likelihood.
    # Units share few distinct k, n - k, n and (k, n): the special functions run once per distinct
    # value and are spread back over the units, so every sum adds the same terms in the same order.
    x0 = np.array([np.log(m / (1 - m)), np.log(s0)])
    ik, uk = pd.factorize(k_arr)
    ir, ur = pd.factorize(n_arr - k_arr)
    in_, un = pd.factorize(n_arr)
    ip, pairs = pd.factorize(ik * ur.size + ir)
    pk, pr = uk[pairs // ur.size], ur[pairs % ur.size]
    units = k_arr.size

    def nll(x):
        mu = special.expit(x[0])
        size = np.exp(x[1])
        a, b = mu * size, (1 - mu) * size
        ll = special.betaln(pk + a, pr + b).take(ip).sum() - units * special.betaln(a, b)
        common = special.digamma(un + size).take(in_)
        dsize = special.digamma(size)
        da = (special.digamma(uk + a).take(ik) - common).sum() - units * (special.digamma(a) - dsize)
        db = (special.digamma(ur + b).take(ir) - common).sum() - units * (special.digamma(b) - dsize)
        g0 = (da - db) * size * mu * (1 - mu)
        g1 = da * a + db * b
        return -float(ll), -np.array([g0, g1])

    res = optimize.minimize(nll, x0, jac=True, method="SLSQP",
                            bounds=[(-20.0, 20.0), (np.log(1e-3), np.log(1e6))])
    mu, size = special.expit(res.x[0]), float(np.exp(res.x[1]))
    a, b = mu * size, (1 - mu) * size
    return float(a), float(b)


def beta_binomial_shrinkage(k, n, *, confidence: float = 0.95, prior: tuple[float, float] | None = None,
                            interval: bool = True):
    """Empirical-Bayes (beta-binomial) shrunken rates with credible intervals, vectorised.

    Parameters
    ----------
    k, n : array-like of int
        Successes and trials per unit.
    confidence : float, default 0.95
        Level of the equal-tailed posterior interval.
    prior : (alpha, beta), optional
        The Beta prior; fitted with :func:`beta_binomial_prior` when not given.
    interval : bool, default True
        Compute the credible interval; False leaves ``lower`` and ``upper`` NaN (the Beta
        quantiles are most of the cost when only the estimate is needed).

    Returns
    -------
    dict
        ``alpha``, ``beta`` (the prior) and arrays per unit: ``estimate`` = (alpha + k) /
        (alpha + beta + n), ``lower``, ``upper`` (Beta(alpha + k, beta + n - k) quantiles).

    Notes
    -----
    Posterior Beta(alpha0 + x_i, beta0 + n_i - x_i); shrunken estimate (alpha0 + x_i) /
    (alpha0 + beta0 + n_i); interval from beta quantiles [V] dgrtwo/ebbr ``add_ebb_estimate``
    (docs/methods.md §3.2).
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
    if not interval:
        nan = np.full(np.shape(a), np.nan)
        return {"alpha": a0, "beta": b0, "estimate": a / (a + b), "lower": nan, "upper": nan.copy()}
    return {"alpha": a0, "beta": b0, "estimate": a / (a + b),
            "lower": _stats.beta.ppf(tail, a, b), "upper": _stats.beta.ppf(1.0 - tail, a, b)}


# --------------------------------------------------------------------------------------------
# funnel plots (Spiegelhalter 2005)
# --------------------------------------------------------------------------------------------

def _funnel_scale(kind: str, value, n, target, sd):
    """Transformed value y, its standard error s and the transformed target (docs/methods.md §3.3)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "proportion":
            y = np.arcsin(np.sqrt(np.clip(np.asarray(value, dtype=float), 0.0, 1.0)))
            s = 1.0 / (2.0 * np.sqrt(n))
            t = float(np.arcsin(np.sqrt(np.clip(target, 0.0, 1.0))))
        elif kind == "mean":
            if sd is None or not float(sd) > 0:
                raise ValueError(f"a funnel of means needs the within-unit SD sd > 0; got {sd!r}.")
            y = np.asarray(value, dtype=float)
            s = float(sd) / np.sqrt(n)
            t = float(target)
        else:
            raise ValueError(f"kind must be 'proportion' or 'mean'; got {kind!r}.")
    return y, s, t


def funnel_overdispersion(value, n, target: float, *, kind: str = "proportion", sd: float | None = None,
                          trim: float = 0.1) -> dict[str, float]:
    """Overdispersion of unit values around a funnel target: multiplicative phi and additive tau^2.

    Parameters
    ----------
    value : array-like of float
        One value per unit (a proportion, or a mean).
    n : array-like of float
        Its denominator (cases per unit); units with n == 0 or a NaN value are ignored.
    target : float
        The funnel's centre (for proportions the pooled sum(x)/sum(n)).
    kind : {"proportion", "mean"}
        Proportions are compared on the arcsine-square-root scale, y = asin(sqrt(p)),
        s = 1/(2 sqrt(n)); means on their own scale with s = sd/sqrt(n).
    sd : float, optional
        Within-unit SD of one case (needed for means).
    trim : float, default 0.1
        Share of z-scores Winsorised at each tail before phi is computed (0 = none).

    Returns
    -------
    dict
        ``k`` (units used), ``phi`` = (1/k) sum z_i^2 of the Winsorised z-scores
        z_i = (y_i - target)/s_i, ``tau2`` = 0 if k phi <= k - 1, else (k phi - (k - 1)) /
        (sum w - sum w^2 / sum w) with w = 1/s^2, and ``p_value`` of the chi-square test of
        k phi on k - 1 degrees of freedom (small = more spread than chance allows).

    Notes
    -----
    Spiegelhalter (2005) Stat Med 24:1185-1202 (doi:10.1002/sim.1970), as implemented in R
    FunnelPlotR ``winsorisation`` (R quantile type 7 = NumPy's default), ``phi_func`` and
    ``tau_func`` (docs/methods.md §3.3 [V]). With few units phi and tau^2 are unstable:
    show the unadjusted limits too.
    """
    if not 0.0 <= float(trim) < 0.5:
        raise ValueError(f"trim must be in [0, 0.5); got {trim!r}.")
    y, s, t = _funnel_scale(kind, value, n, target, sd)
    y, s = np.broadcast_arrays(y, s)
    ok = ~np.isnan(y) & np.isfinite(s) & (s > 0)
    y, s = y[ok], s[ok]
    k = int(y.size)
    if k == 0:
        return {"k": 0, "phi": float("nan"), "tau2": float("nan"), "p_value": float("nan")}
    z = (y - t) / s
    if trim > 0 and k > 1:
        lo, hi = np.quantile(z, [trim, 1.0 - trim])
        z = np.clip(z, lo, hi)
    phi = float(np.mean(z * z))
    w = 1.0 / (s * s)
    denom = float(np.sum(w) - np.sum(w * w) / np.sum(w))
    tau2 = 0.0 if (k * phi <= k - 1 or denom <= 0) else max(0.0, (k * phi - (k - 1)) / denom)
    p = float(_stats.chi2.sf(k * phi, k - 1)) if k > 1 else float("nan")
    return {"k": k, "phi": phi, "tau2": tau2, "p_value": p}


def _level_label(level: float) -> str:
    return f"{level * 100:g}".replace(".", "_")


def funnel_limits(n, target: float, *, kind: str = "proportion", sd: float | None = None,
                  levels=FUNNEL_LEVELS, phi: float = 1.0, tau2: float = 0.0) -> dict[str, np.ndarray]:
    """Funnel-plot control limits at each denominator n, optionally adjusted for overdispersion.

    Parameters
    ----------
    n : array-like of float
        Denominators at which to compute the limits (e.g. a grid from 1 to the largest unit).
    target : float
        Centre of the funnel (pooled proportion, or pooled mean).
    kind : {"proportion", "mean"}
        See :func:`funnel_overdispersion`.
    sd : float, optional
        Within-unit SD of one case (means only).
    levels : sequence of float, default (0.95, 0.998)
        Two-sided coverage of each pair of limits (Spiegelhalter's "2 SD" and "3 SD" limits).
    phi : float, default 1
        Multiplicative overdispersion factor (>= 1 to widen); the limits use sqrt(phi) * s.
    tau2 : float, default 0
        Additive between-unit variance on the transformed scale; the limits use sqrt(s^2 + tau2).

    Returns
    -------
    dict
        ``n`` and, per level, ``lower_<level>`` and ``upper_<level>`` (``lower_95``,
        ``upper_95``, ``lower_99_8``, ``upper_99_8`` for the defaults).

    Notes
    -----
    Proportions: sin^2(asin(sqrt(target)) -/+ z sqrt(phi s^2 + tau2)) with s = 1/(2 sqrt(n)),
    z = 1.959964 (95 %) and 3.090232 (99.8 %): FunnelPlotR ``calculate_limits`` for "PR" [V]
    (additive, tau2); the multiplicative form target -/+ z sqrt(phi) s is Spiegelhalter's
    (2005) overdispersion adjustment [U: from memory of the paper]. The arcsine argument is
    clipped to [0, pi/2] so a limit stops at 0 or 1 instead of
    folding back (FunnelPlotR does not clip). Means: target -/+ z sqrt(phi sd^2/n + tau2).
    """
    if not float(phi) > 0:
        raise ValueError(f"phi must be > 0 (1 = no overdispersion); got {phi!r}.")
    if not float(tau2) >= 0:
        raise ValueError(f"tau2 must be 0 or more; got {tau2!r}.")
    n_arr = np.asarray(n, dtype=float)
    _, s, t = _funnel_scale(kind, np.zeros_like(n_arr), n_arr, target, sd)
    spread = np.sqrt(float(phi) * s * s + float(tau2))
    out: dict[str, np.ndarray] = {"n": n_arr}
    for level in levels:
        z = _stats.norm.ppf(0.5 + _check_confidence(level) / 2.0)
        lo, hi = t - z * spread, t + z * spread
        if kind == "proportion":
            lo = np.sin(np.clip(lo, 0.0, np.pi / 2)) ** 2
            hi = np.sin(np.clip(hi, 0.0, np.pi / 2)) ** 2
        label = _level_label(level)
        out[f"lower_{label}"], out[f"upper_{label}"] = lo, hi
    return out


# --------------------------------------------------------------------------------------------
# multiple testing
# --------------------------------------------------------------------------------------------

def benjamini_hochberg(p_values, *, families=None) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN entries are left out and stay NaN.

    Parameters
    ----------
    p_values : array-like of float
        Two-sided p-values in [0, 1]; NaN = no test.
    families : array-like, optional
        A family label per p-value (same shape): each family is adjusted on its own, as if
        ``benjamini_hochberg`` were called once per family (e.g. one clinician's tests), in one
        vectorised pass. Default: all p-values are one family.

    Returns
    -------
    ndarray
        Same shape: q_i = min over j >= rank(i) of p_(j) m / j, capped at 1, with m the number of
        non-NaN p-values (of the family). A hypothesis is rejected at FDR level q when its q-value
        <= q.

    Notes
    -----
    Benjamini & Hochberg (1995) J R Stat Soc B 57:289-300; computed with
    ``scipy.stats.false_discovery_control(p, method="bh")`` (scipy >= 1.11), else directly; with
    ``families``, the same steps (sort, p_(j) m / j, running minimum from the largest p, clip)
    within each family.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    flat = p.ravel()
    ok = ~np.isnan(flat)
    if np.any((flat[ok] < 0) | (flat[ok] > 1)):
        raise ValueError("benjamini_hochberg needs p-values between 0 and 1 (NaN for no test).")
    if not ok.any():
        return out
    vals = flat[ok]
    if families is not None:
        fam = np.asarray(families).ravel()
        if fam.shape != flat.shape:
            raise ValueError(f"families must have one label per p-value; got {fam.size} for {flat.size}.")
        codes, _ = pd.factorize(fam[ok])
        # by family, then p: p sorted first, then the labels by a stable sort (a radix sort for up to
        # 65,536 families); tied p-values get the same q in any order
        by_p = np.argsort(vals)
        order = by_p[np.argsort(codes.astype(np.min_scalar_type(codes.max()))[by_p], kind="stable")]
        c, ranked = codes[order], vals[order]
        m = np.bincount(c)
        first = np.r_[True, c[1:] != c[:-1]]
        rank = np.arange(c.size) - np.maximum.accumulate(np.where(first, np.arange(c.size), 0)) + 1
        ranked = ranked * (m[c].astype(float) / rank.astype(float))
        ranked = pd.Series(ranked[::-1]).groupby(c[::-1]).cummin().to_numpy()[::-1]
        q = np.empty(vals.size)
        q[order] = np.clip(ranked, 0.0, 1.0)
        res = out.ravel()
        res[ok] = q
        return res.reshape(p.shape)
    fdc = getattr(_stats, "false_discovery_control", None)
    if fdc is not None:
        q = np.asarray(fdc(vals, method="bh"), dtype=float)
    else:  # pragma: no cover - scipy < 1.11
        m = vals.size
        order = np.argsort(vals)
        ranked = vals[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        q = np.empty(m)
        q[order] = np.minimum(ranked, 1.0)
    res = out.ravel()
    res[ok] = q
    return res.reshape(p.shape)
