"""Small-sample statistics shared by the metrics: intervals for rates.

Everything is vectorised over NumPy arrays and pure (no input is modified).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _stats

__all__ = ["wilson_interval"]


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
