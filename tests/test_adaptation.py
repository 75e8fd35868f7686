"""Adaptation gaps: small-sample statistics against published and scipy values, hand-made groups,
the planted gaps of the demo clinic, and the false-gap rate over many generated clinics.

Oracles: Newcombe (1998) Table II and Newcombe (2001) §4.1 (as reproduced by the R package
propint's tests), the Wilson values of ../shared/DEFINITIONS.md §3.1, scipy (Welch t, chi-square,
Fisher, t intervals, beta-binomial likelihood), closed-form recomputation (funnel limits, FunnelPlotR
overdispersion formulae, Benjamini-Hochberg by hand) and plain-pandas recomputation of the tables.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from supervision import demo_path, load_caseload, synth
from supervision.config import value_label
from supervision.figures.adaptation import gap_forest, gap_funnel, gap_overview
from supervision.metrics.adaptation import (
    METRICS, adaptation_gaps, adaptation_options, client_measures, funnel_data, suppress_gaps,
)
from supervision.metrics.stats import (
    benjamini_hochberg, beta_binomial_prior, funnel_limits, funnel_overdispersion, mean_interval,
    newcombe_interaction_interval, newcombe_interval, two_proportion_test, welch_interaction, welch_test,
    wilson_interval,
)

Z95, Z998 = 1.959964, 3.090232


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k, n, lower, upper", [
    (7, 50, 0.069508, 0.261862), (3, 10, 0.107791, 0.603222), (0, 5, 0.0, 0.434482), (1, 8, 0.022417, 0.470888),
])
def test_wilson_reference_values_and_closed_form(k, n, lower, upper):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(lower, abs=1e-6) and hi == pytest.approx(upper, abs=1e-6)
    p, z = k / n, Z95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert hi == pytest.approx(centre + half, abs=1e-6)


# Newcombe (1998) Stat Med 17:873-890, Table II, method 10 (hybrid score, no continuity correction)
@pytest.mark.parametrize("k1, n1, k2, n2, lower, upper", [
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
])
def test_newcombe_hybrid_score_table_ii(k1, n1, k2, n2, lower, upper):
    lo, hi = newcombe_interval(k1, n1, k2, n2)
    assert lo == pytest.approx(lower, abs=5e-5) and hi == pytest.approx(upper, abs=5e-5)
    # independent recomputation: scipy's Wilson limits, squared and added
    ci1 = stats.binomtest(k1, n1).proportion_ci(method="wilson")
    ci2 = stats.binomtest(k2, n2).proportion_ci(method="wilson")
    p1, p2 = k1 / n1, k2 / n2
    assert lo == pytest.approx(p1 - p2 - np.hypot(p1 - ci1.low, ci2.high - p2), abs=1e-9)
    assert hi == pytest.approx(p1 - p2 + np.hypot(ci1.high - p1, p2 - ci2.low), abs=1e-9)


def test_newcombe_vectorised_and_undefined():
    lo, hi = newcombe_interval([56, 9], [70, 10], [48, 3], [80, 10])
    assert lo == pytest.approx([0.0524, 0.1705], abs=5e-5) and hi == pytest.approx([0.3339, 0.8090], abs=5e-5)
    lo, hi = newcombe_interval([0, 1], [0, 4], [1, 0], [4, 0])
    assert np.isnan(lo).all() and np.isnan(hi).all()
    with pytest.raises(ValueError, match="0 <= k <= n"):
        newcombe_interval(5, 4, 1, 4)


def test_newcombe_2001_difference_of_differences():
    # Newcombe (2001) Stat Med 20:2885-2893, section 4.1: (17/65 - 17/75) - (18/72 - 16/65)
    lo, hi = newcombe_interaction_interval(17, 65, 17, 75, 18, 72, 16, 65)
    assert lo == pytest.approx(-0.1687, abs=5e-5) and hi == pytest.approx(0.2343, abs=5e-5)


def test_two_proportion_test_n_minus_1_chi_square_and_fisher():
    # every expected count >= 1: Campbell's 'N - 1' chi-squared test
    table = np.array([[56, 14], [48, 32]])
    chi2 = stats.chi2_contingency(table, correction=False).statistic
    n = table.sum()
    assert two_proportion_test(56, 70, 48, 80) == pytest.approx(stats.chi2.sf(chi2 * (n - 1) / n, 1))
    z = np.sqrt(chi2 * (n - 1) / n)
    assert two_proportion_test(56, 70, 48, 80, alternative="greater") == pytest.approx(stats.norm.sf(z))
    assert two_proportion_test(56, 70, 48, 80, alternative="less") == pytest.approx(stats.norm.cdf(z))
    # an expected count < 1: Fisher-Irwin
    assert two_proportion_test(0, 5, 3, 30) == pytest.approx(stats.fisher_exact([[0, 5], [3, 27]]).pvalue)
    assert two_proportion_test(3, 5, 0, 30, alternative="greater") == pytest.approx(
        stats.fisher_exact([[3, 2], [0, 30]], alternative="greater").pvalue)
    assert two_proportion_test(0, 5, 0, 9) == 1.0 and two_proportion_test(0, 5, 0, 9, alternative="less") == 0.5
    assert np.isnan(two_proportion_test(0, 0, 1, 3))


def test_mean_and_welch_intervals_match_scipy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(30, 4, 7), rng.normal(34, 2, 23)
    lo, hi = mean_interval(x.mean(), x.std(ddof=1), x.size)
    ci = stats.ttest_1samp(x, 0).confidence_interval()
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    w = welch_test(x.mean(), x.std(ddof=1), x.size, y.mean(), y.std(ddof=1), y.size)
    ref = stats.ttest_ind(x, y, equal_var=False)
    assert w["p_value"] == pytest.approx(ref.pvalue) and w["df"] == pytest.approx(ref.df)
    assert (w["lower"], w["upper"]) == pytest.approx(tuple(ref.confidence_interval()))
    one = welch_test(x.mean(), x.std(ddof=1), x.size, y.mean(), y.std(ddof=1), y.size, alternative="less")
    assert one["p_value"] == pytest.approx(stats.ttest_ind(x, y, equal_var=False, alternative="less").pvalue)
    # moderated degrees of freedom: Satterthwaite with the given dfs
    v1, v2 = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    m = welch_test(x.mean(), x.std(ddof=1), x.size, y.mean(), y.std(ddof=1), y.size, df1=10.0, df2=30.0)
    assert m["df"] == pytest.approx((v1 + v2) ** 2 / (v1 ** 2 / 10 + v2 ** 2 / 30))
    assert np.isnan(welch_test(1.0, 1.0, 1, 2.0, 1.0, 5)["p_value"])


def test_welch_interaction_is_the_four_group_contrast():
    rng = np.random.default_rng(8)
    groups = [rng.normal(m, s, n) for m, s, n in ((10, 2, 6), (12, 3, 20), (11, 2, 15), (11.5, 2.5, 60))]
    means = [g.mean() for g in groups]
    sds = [g.std(ddof=1) for g in groups]
    ns = [g.size for g in groups]
    r = welch_interaction(means, sds, ns)
    v = [s * s / n for s, n in zip(sds, ns)]
    df = sum(v) ** 2 / sum(vi * vi / (n - 1) for vi, n in zip(v, ns))
    d = (means[0] - means[1]) - (means[2] - means[3])
    half = stats.t.ppf(0.975, df) * np.sqrt(sum(v))
    assert r["difference"] == pytest.approx(d) and r["df"] == pytest.approx(df)
    assert (r["lower"], r["upper"]) == pytest.approx((d - half, d + half))


def test_funnel_limits_closed_form():
    n = np.array([1.0, 10.0, 100.0])
    lim = funnel_limits(n, 0.2)
    t = np.arcsin(np.sqrt(0.2))
    s = 1 / (2 * np.sqrt(n))
    assert lim["upper_95"] == pytest.approx(np.sin(np.minimum(t + Z95 * s, np.pi / 2)) ** 2)
    assert lim["lower_99_8"] == pytest.approx(np.sin(np.maximum(t - Z998 * s, 0)) ** 2)
    assert lim["lower_99_8"][0] == 0.0  # clipped, not folded back
    wide = funnel_limits(n, 0.2, phi=2.0)  # multiplicative (Spiegelhalter 2005)
    assert wide["upper_95"] == pytest.approx(np.sin(np.minimum(t + Z95 * np.sqrt(2) * s, np.pi / 2)) ** 2)
    add = funnel_limits(n, 0.2, tau2=0.01)  # additive (FunnelPlotR)
    assert add["lower_95"] == pytest.approx(np.sin(np.maximum(t - Z95 * np.sqrt(s * s + 0.01), 0)) ** 2)
    mean = funnel_limits(n, 35.0, kind="mean", sd=4.0)
    assert mean["upper_99_8"] == pytest.approx(35 + Z998 * 4 / np.sqrt(n))
    with pytest.raises(ValueError, match="sd > 0"):
        funnel_limits(n, 35.0, kind="mean")


def test_funnel_overdispersion_as_funnelplotr():
    rng = np.random.default_rng(2)
    n = rng.integers(20, 200, 15).astype(float)
    k = rng.binomial(n.astype(int), rng.beta(8, 24, 15)).astype(float)
    target = k.sum() / n.sum()
    od = funnel_overdispersion(k / n, n, target)
    z = (np.arcsin(np.sqrt(k / n)) - np.arcsin(np.sqrt(target))) * 2 * np.sqrt(n)
    lo, hi = np.quantile(z, [0.1, 0.9])  # R quantile type 7
    zw = np.clip(z, lo, hi)
    phi = np.mean(zw ** 2)
    w = 4 * n
    tau2 = max(0.0, (15 * phi - 14) / (w.sum() - (w * w).sum() / w.sum())) if 15 * phi > 14 else 0.0
    assert od["phi"] == pytest.approx(phi) and od["tau2"] == pytest.approx(tau2) and od["k"] == 15
    assert od["p_value"] == pytest.approx(stats.chi2.sf(15 * phi, 14))


def test_benjamini_hochberg():
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "BH") -> all 0.05
    assert benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05] * 5)
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.005])
    q = benjamini_hochberg(p)
    assert np.isnan(q[1])
    ok = p[~np.isnan(p)]
    order = np.argsort(ok)
    ranked = ok[order] * ok.size / np.arange(1, ok.size + 1)
    byhand = np.empty(ok.size)
    byhand[order] = np.minimum.accumulate(ranked[::-1])[::-1]
    assert q[~np.isnan(p)] == pytest.approx(byhand)
    with pytest.raises(ValueError):
        benjamini_hochberg([1.2])


def test_fisher_tables_are_tested_all_at_once_as_scipy_tests_each():
    """Tables with an expected count < 1 get Fisher's test; the one-sided ones are vectorised."""
    rng = np.random.default_rng(11)
    n1, n2 = rng.integers(1, 9, 400), rng.integers(1, 40, 400)
    k1, k2 = rng.binomial(n1, 0.3), rng.binomial(n2, 0.1)
    for alt in ("less", "greater", "two-sided"):
        p = two_proportion_test(k1, n1, k2, n2, alternative=alt)
        pp = two_proportion_test(k1.reshape(20, 20), n1.reshape(20, 20), k2.reshape(20, 20), n2.reshape(20, 20),
                                 alternative=alt)
        assert np.array_equal(p.reshape(20, 20), pp, equal_nan=True)
        s = k1 + k2
        e = np.minimum.reduce([n1 * s, n1 * (n1 + n2 - s), n2 * s, n2 * (n1 + n2 - s)]) / (n1 + n2)
        small = (e < 1) & (s > 0) & (s < n1 + n2)
        assert small.sum() > 50
        for i in np.flatnonzero(small):
            ref = stats.fisher_exact([[k1[i], n1[i] - k1[i]], [k2[i], n2[i] - k2[i]]], alternative=alt).pvalue
            assert p[i] == ref  # the same numbers, not only close


def test_benjamini_hochberg_by_family_is_one_call_per_family():
    rng = np.random.default_rng(12)
    p = rng.random(3000) ** 3
    p[rng.random(3000) < 0.05] = np.nan
    p[:300] = p[300:600]  # ties
    fam = rng.integers(0, 97, 3000)
    q = benjamini_hochberg(p, families=fam)
    for f in np.unique(fam):
        sel = fam == f
        assert np.array_equal(q[sel], benjamini_hochberg(p[sel]), equal_nan=True)
    assert np.array_equal(benjamini_hochberg(p, families=np.zeros(3000)), benjamini_hochberg(p), equal_nan=True)
    with pytest.raises(ValueError, match="one label per p-value"):
        benjamini_hochberg(p, families=fam[:10])


def test_beta_binomial_prior_reaches_the_maximum_likelihood():
    rng = np.random.default_rng(4)
    n = rng.integers(3, 30, 25)
    k = rng.binomial(n, rng.beta(3, 9, 25))
    a, b = beta_binomial_prior(k, n)

    def nll(x):
        return -stats.betabinom.logpmf(k, n, *np.exp(x)).sum()

    ref = optimize.minimize(nll, np.log([1.0, 3.0]), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    assert nll(np.log([a, b])) <= ref.fun + 1e-6


def _prior_sets():
    """(k, n) sets for the prior fit: hand-made edge cases and random service-like ones."""
    rng = np.random.default_rng(21)
    sets = {
        "spread": ([0, 1, 2, 3, 5, 8], [10] * 6),
        "few distinct pairs": ([1] * 50 + [2] * 30 + [0] * 20 + [4] * 3, [5] * 100 + [9] * 3),
        "empty units and NaN": ([0, 3, 2, np.nan, 4, 0, 1], [0, 9, 7, 5, 12, 3, np.nan]),
        "all or none": ([0, 0, 7, 7, 3], [7, 7, 7, 7, 7]),
        "no overdispersion": ([5] * 40, [10] * 40),
        "two units": ([1, 4], [6, 6]),
        "float counts": (np.array([3.0, 3.0, 7.0, 0.0]), np.array([10.0, 10.0, 12.0, 4.0])),
    }
    for size, n_max in ((30, 20), (500, 60), (1100, 5000)):
        n = rng.integers(1, n_max, size)
        sets[f"random {size}"] = (rng.binomial(n, rng.beta(2, 7, size)), n)
    return sets


def _unit_by_unit_prior(k, n):
    """The ML fit written plainly: every unit's beta-binomial term, no grouping of equal units."""
    from scipy import special

    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    ok = ~(np.isnan(k) | np.isnan(n)) & (n > 0)
    k, n = k[ok], n[ok]
    p = k / n
    m = float(np.clip(p.mean(), 1e-3, 1 - 1e-3))
    var = float(p.var(ddof=1))
    s0 = float(np.clip(m * (1 - m) / var - 1 if var > 0 else 100.0, 0.5, 1e5))

    def nll(x):
        mu, size = special.expit(x[0]), np.exp(x[1])
        a, b = mu * size, (1 - mu) * size
        ll = np.sum(special.betaln(k + a, n - k + b)) - k.size * special.betaln(a, b)
        dig = special.digamma
        da = np.sum(dig(k + a) - dig(n + size)) - k.size * (dig(a) - dig(size))
        db = np.sum(dig(n - k + b) - dig(n + size)) - k.size * (dig(b) - dig(size))
        return -float(ll), -np.array([(da - db) * size * mu * (1 - mu), da * a + db * b])

    # the objective is the beta-binomial log-likelihood less the binomial coefficients
    a, b = 1.7, 4.2
    const = np.sum(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1))
    x = np.array([np.log(a / b), np.log(a + b)])
    assert -nll(x)[0] + const == pytest.approx(stats.betabinom.logpmf(k, n, a, b).sum(), rel=1e-10)
    h = 1e-6
    numeric = [(nll(x + h * e)[0] - nll(x - h * e)[0]) / (2 * h) for e in np.eye(2)]
    assert nll(x)[1] == pytest.approx(numeric, rel=1e-5, abs=1e-5)
    res = optimize.minimize(nll, np.array([np.log(m / (1 - m)), np.log(s0)]), jac=True, method="SLSQP",
                            bounds=[(-20.0, 20.0), (np.log(1e-3), np.log(1e6))])
    mu, size = special.expit(res.x[0]), float(np.exp(res.x[1]))
    return mu * size, (1 - mu) * size


@pytest.mark.parametrize("name", list(_prior_sets()))
def test_beta_binomial_prior_fit_is_the_plain_unit_by_unit_fit(name):
    """The fit evaluates the likelihood once per distinct (k, n): the same optimum as unit by unit."""
    k, n = (np.asarray(v, dtype=float) for v in _prior_sets()[name])
    a, b = beta_binomial_prior(k, n)
    order = np.random.default_rng(3).permutation(k.size)
    for kk, nn in ((k, n), (k[order], n[order])):
        assert beta_binomial_prior(kk, nn) == pytest.approx(_unit_by_unit_prior(kk, nn), rel=1e-12)
    # and the maximum of the beta-binomial likelihood (scipy's)
    use = ~(np.isnan(k) | np.isnan(n)) & (n > 0)

    def nll(x):
        return -stats.betabinom.logpmf(k[use], n[use], *np.exp(x)).sum()

    if a + b > 1e5:  # rates no more varied than binomial noise: complete pooling, at the cap
        assert a + b == pytest.approx(1e6) and nll(np.log([a, b])) < nll(np.log([a, b]) - np.log(100))
        return
    best = optimize.minimize(nll, np.log([a, b]), method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    assert nll(np.log([a, b])) <= best.fun + 1e-6


def test_benjamini_hochberg_by_family_with_tied_p_values_and_many_families():
    rng = np.random.default_rng(13)
    p = rng.choice([0.5, 1.0, 0.01, 0.2, 0.03], 200_000) * (rng.random(200_000) < 0.5) + rng.random(200_000) ** 4
    p = np.minimum(p, 1.0)
    p[rng.random(p.size) < 0.05] = np.nan
    for n_fam in (40, 70_000):  # family labels of 16 bits (radix-sorted) and of 32 bits
        fam = rng.integers(0, n_fam, p.size)
        q = benjamini_hochberg(p, families=fam)
        d = pd.DataFrame({"p": p, "fam": fam}).dropna().sort_values(["fam", "p"], kind="stable")
        g = d.groupby("fam")["p"]
        d["q"] = d["p"] * (g.transform("size") / (g.cumcount() + 1))  # p_(j) m / j
        d["q"] = d["q"].iloc[::-1].groupby(d["fam"].iloc[::-1]).cummin().iloc[::-1].clip(upper=1.0)
        assert np.isnan(q[np.isnan(p)]).all()
        assert np.array_equal(q[d.index.to_numpy()], d["q"].to_numpy())
        for f in np.unique(fam)[:5]:
            sel = fam == f
            assert np.array_equal(q[sel], benjamini_hochberg(p[sel]), equal_nan=True)


# --------------------------------------------------------------------------------------------
# hand-made groups
# --------------------------------------------------------------------------------------------

def _measures(seed: int = 0) -> pd.DataFrame:
    """Six clinicians with 4 clients each in group 'few'; at A all of them drop out and score 10."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in "ABCDEF":
        groups = ["big"] * 12 + ["other"] * 14 + ["declined"] * 6 + ["not_recorded"] * 5 + ["few"] * 4
        for i, g in enumerate(groups):
            rows.append({"client_id": f"{c}{i:03d}", "clinician_id": c, "faith": g,
                         "first_srs": rng.normal(35, 3), "mean_srs": rng.normal(35, 3),
                         "unilateral": float(rng.random() < 0.2), "identity_addressed": rng.beta(1, 8)})
    m = pd.DataFrame(rows)
    few = (m["faith"] == "few") & (m["clinician_id"] == "A")
    m.loc[few, "unilateral"] = 1.0
    m.loc[few, ["first_srs", "mean_srs"]] = 10.0
    m.loc[m["faith"] == "not_recorded", "unilateral"] = np.nan  # e.g. still open
    return m


def test_group_under_min_n_never_shows_a_gap_and_input_is_not_mutated():
    m = _measures()
    before = m.copy(deep=True)
    g = adaptation_gaps(m, dimensions=["faith"], metrics=["first_srs", "mean_srs", "unilateral", "identity_addressed"])
    pd.testing.assert_frame_equal(m, before)
    few = g[g["group"] == "few"]
    assert len(few) == 6 * 4 * 2 and (few["verdict"] == "too few clients").all()
    est_cols = ["value_group", "value_comparator", "difference", "lower", "upper", "p_value", "q_value",
                "shrunken_difference", "excess_gap", "excess_lower", "excess_upper"]
    assert few[est_cols].isna().all().all()
    assert (few["n_group"] == 4).all()
    # lowering min_n to 4 lets the extreme group be estimated (and found)
    g4 = adaptation_gaps(m, dimensions=["faith"], metrics=["mean_srs"], min_n=4)
    row = g4[(g4["group"] == "few") & (g4["comparator"] == "clinician") & (g4["clinician_id"] == "A")].iloc[0]
    assert row["verdict"] == "clear gap" and row["difference"] < -20


def test_declined_and_not_recorded_are_groups_with_the_recording_rate():
    m = _measures()
    g = adaptation_gaps(m, dimensions=["faith"], metrics=["mean_srs", "unilateral"])
    assert {"declined", "not_recorded"} <= set(g["group"])
    a = g[g["clinician_id"] == "A"]
    assert list(pd.unique(a["group"]))[-2:] == ["declined", "not_recorded"]  # missing-value groups last
    assert a["recording_rate"].iloc[0] == pytest.approx(1 - 5 / 41)  # declined counts as recorded
    nr = g[(g["group"] == "not_recorded") & (g["metric"] == "unilateral")]
    assert (nr["n_group"] == 0).all() and (nr["verdict"] == "too few clients").all()
    # an empty identity cell is read as not_recorded
    m2 = m.copy()
    m2.loc[m2["faith"] == "not_recorded", "faith"] = None
    g2 = adaptation_gaps(m2, dimensions=["faith"], metrics=["mean_srs"])
    assert (g2.loc[g2["group"] == "not_recorded", "n_group"] == 5).all()


def test_values_intervals_and_fdr_recomputed_with_plain_pandas():
    m = _measures(1)
    g = adaptation_gaps(m, dimensions=["faith"], metrics=["unilateral", "mean_srs"], variance_prior_df=0)
    r = g[(g["clinician_id"] == "B") & (g["group"] == "big") & (g["metric"] == "unilateral")].set_index("comparator")
    b = m[m["clinician_id"] == "B"].dropna(subset=["unilateral"])
    grp = b[b["faith"] == "big"]["unilateral"]
    own = b[b["faith"] != "big"]["unilateral"]
    coll = m[(m["clinician_id"] != "B") & (m["faith"] == "big")]["unilateral"].dropna()
    assert r.loc["clinician", "n_group"] == len(grp) and r.loc["clinician", "n_comparator"] == len(own)
    assert r.loc["service", "n_comparator"] == len(coll)
    assert r.loc["clinician", "value_group"] == pytest.approx(grp.mean())
    assert r.loc["service", "value_comparator"] == pytest.approx(coll.mean())
    lo, hi = newcombe_interval(grp.sum(), len(grp), own.sum(), len(own))
    assert (r.loc["clinician", "lower"], r.loc["clinician", "upper"]) == pytest.approx((lo, hi))
    assert r.loc["clinician", "p_value"] == pytest.approx(
        two_proportion_test(grp.sum(), len(grp), own.sum(), len(own), alternative="greater"))
    # means: plain Welch when variance_prior_df = 0
    s = g[(g["clinician_id"] == "B") & (g["group"] == "big") & (g["metric"] == "mean_srs")
          & (g["comparator"] == "clinician")].iloc[0]
    x = m[(m["clinician_id"] == "B") & (m["faith"] == "big")]["mean_srs"]
    y = m[(m["clinician_id"] == "B") & (m["faith"] != "big")]["mean_srs"]
    ref = stats.ttest_ind(x, y, equal_var=False, alternative="less")
    assert s["p_value"] == pytest.approx(ref.pvalue)
    assert (s["lower"], s["upper"]) == pytest.approx(tuple(stats.ttest_ind(x, y, equal_var=False).confidence_interval()))
    # q-values: Benjamini-Hochberg within each clinician and comparator
    for _, fam in g.dropna(subset=["p_value"]).groupby(["clinician_id", "comparator"]):
        assert fam["q_value"].to_numpy() == pytest.approx(benjamini_hochberg(fam["p_value"].to_numpy()))


def test_verdicts_follow_their_definition():
    m = _measures(2)
    g = adaptation_gaps(m, dimensions=["faith"], min_n=4)
    hib = g["higher_is_better"].to_numpy()
    sign = np.where(hib, -1, 1)
    excludes = np.where(hib, g["upper"] < 0, g["lower"] > 0)
    excess = np.where(hib, g["excess_upper"] < 0, g["excess_lower"] > 0)
    clear = g["verdict"].to_numpy() == "clear gap"
    assert clear.any()
    assert (excludes[clear] & excess[clear]).all()
    assert (g["q_value"].to_numpy()[clear] <= 0.05).all()
    assert (sign[clear] * g["shrunken_difference"].to_numpy()[clear] >= g["practical_threshold"].to_numpy()[clear]).all()
    possible = g["verdict"].to_numpy() == "possible gap"
    assert (excludes[possible]).all()
    no_est = g["verdict"].to_numpy() == "too few clients"
    assert g.loc[no_est, "difference"].isna().all() and g.loc[~no_est, "difference"].notna().all()
    assert set(g["verdict"]) <= {"clear gap", "possible gap", "no evidence", "too few clients"}


def test_rows_in_table_order_and_the_same_for_any_selection():
    """Rows sorted by clinician, dimension, group, metric, comparator; each cell's values do not
    depend on which dimensions, metrics or clinicians are asked for (the q-values on the family)."""
    m = _measures(3)
    rng = np.random.default_rng(5)
    m["age"] = rng.choice(["18-25", "26-40", "41-65", "declined", "not_recorded"], len(m))
    mets = ["identity_addressed", "unilateral", "mean_srs"]  # not in METRICS order
    g = adaptation_gaps(m, dimensions=["faith", "age"], metrics=mets, min_n=3, min_n_comparator=3)
    assert len(g) == g.groupby(["clinician_id", "dimension", "group"]).ngroups * len(mets) * 2
    group_rank = {d: {x: i for i, x in enumerate(sorted(set(m[d]) - {"declined", "not_recorded"})
                                                 + ["declined", "not_recorded"])} for d in ("faith", "age")}
    keys = pd.DataFrame({"c": g["clinician_id"], "d": g["dimension"].map({"faith": 0, "age": 1}),
                         "g": [group_rank[d][x] for d, x in zip(g["dimension"], g["group"])],
                         "m": g["metric"].map(list(METRICS).index),
                         "k": g["comparator"].map({"clinician": 0, "service": 1})})
    assert keys.equals(keys.sort_values(list(keys.columns)))
    assert (g["verdict"] != "too few clients").any() and g["excess_gap"].notna().any()
    per_cell = ["n_group", "n_comparator", "value_group", "value_comparator", "difference", "lower", "upper", "p_value",
                "shrunken_difference", "recording_rate", "excess_gap", "excess_lower", "excess_upper"]
    age = adaptation_gaps(m, dimensions=["age"], metrics=["unilateral"], min_n=3, min_n_comparator=3)
    mine = g[(g["dimension"] == "age") & (g["metric"] == "unilateral")].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine[per_cell], age[per_cell], check_exact=True)
    two = adaptation_gaps(m, dimensions=["faith", "age"], metrics=mets, min_n=3, min_n_comparator=3,
                          clinician_id=["E", "B"])
    pd.testing.assert_frame_equal(two, g[g["clinician_id"].isin(["B", "E"])].reset_index(drop=True), check_exact=True)


def test_excess_gap_recomputed_with_plain_pandas():
    m = _measures(4)
    g = adaptation_gaps(m, dimensions=["faith"], metrics=["unilateral", "mean_srs"], min_n=3, min_n_comparator=3)
    for _, r in g.iterrows():
        x = m.dropna(subset=[r["metric"]])
        v, own, grp = x[r["metric"]], x["clinician_id"] == r["clinician_id"], x["faith"] == r["group"]
        four = [v[own & grp], v[own & ~grp], v[~own & grp], v[~own & ~grp]]
        if len(four[0]) < 3 or min(map(len, four[1:])) < 3:
            assert np.isnan(r[["excess_gap", "excess_lower", "excess_upper"]].to_numpy(dtype=float)).all()
            continue
        assert r["excess_gap"] == pytest.approx((four[0].mean() - four[1].mean()) - (four[2].mean() - four[3].mean()))
        if r["metric"] == "unilateral":
            lo, hi = newcombe_interaction_interval(*[f(s) for s in four for f in (np.sum, len)])
            assert (r["excess_lower"], r["excess_upper"]) == pytest.approx((lo, hi))
    assert g["excess_gap"].notna().sum() > 20


def test_shrunken_rate_difference_recomputed_from_the_counts():
    """Issue #17: one row's shrunken difference recomputed from its counts (docs/methods.md §9.6, §3.2).

    The group's rate under a Beta prior fitted to every clinician's (events, clients) in the group,
    the clinician's other clients under a prior fitted to every clinician's other clients; the
    cell's own rate keeping at least min_own_weight of the weight. The priors use every clinician,
    also when one clinician is asked for."""
    m = _measures(5)
    m.loc[(m["clinician_id"] == "C") & (m["faith"] == "big"), "unilateral"] = [1.0] * 8 + [0.0] * 4  # C: 8 of 12
    x = m.dropna(subset=["unilateral"])
    counts = lambda part: part.groupby("clinician_id")["unilateral"].agg(["sum", "size"])  # noqa: E731
    big, other = counts(x[x["faith"] == "big"]), counts(x[x["faith"] != "big"])

    def shrunk(table, w):
        a0, b0 = beta_binomial_prior(table["sum"], table["size"])
        k, n = table.loc["C", "sum"], table.loc["C", "size"]
        prior = a0 / (a0 + b0)
        if n / (n + a0 + b0) < w:  # the floor on the cell's own weight
            return prior + w * (k / n - prior)
        return (a0 + k) / (a0 + b0 + n)

    for w in (0.0, 0.5, 0.9):
        g = adaptation_gaps(m, clinician_id="C", dimensions=["faith"], metrics=["unilateral"], min_own_weight=w)
        r = g[(g["group"] == "big")].set_index("comparator")
        assert r.loc["clinician", "shrunken_difference"] == pytest.approx(shrunk(big, w) - shrunk(other, w), abs=1e-12)
        colleagues = x[(x["faith"] == "big") & (x["clinician_id"] != "C")]["unilateral"].mean()
        assert r.loc["service", "shrunken_difference"] == pytest.approx(shrunk(big, w) - colleagues, abs=1e-12)
    assert r.loc["clinician", "difference"] == pytest.approx(8 / 12 - other.loc["C", "sum"] / other.loc["C", "size"])


def test_excess_p_value_of_a_mean_recomputed_from_the_four_client_sets():
    """Issue #17: the excess gap's one-sided p (the second multiplicity step) recomputed by hand:
    the Welch-Satterthwaite t of (group - own other clients) - (colleagues' group - colleagues' other
    clients), each variance moderated towards the service's, (d0 s0^2 + (n - 1) s^2) / (d0 + n - 1)."""
    m = _measures(6)
    g = adaptation_gaps(m, dimensions=["faith"], metrics=["mean_srs"], min_n=4, min_n_comparator=4)
    r = g[(g["clinician_id"] == "A") & (g["group"] == "few") & (g["comparator"] == "clinician")].iloc[0]
    assert r["q_value"] <= 0.05 and np.isfinite(r["excess_p_value"])  # selected by the first screen
    v, own, grp = m["mean_srs"], m["clinician_id"] == "A", m["faith"] == "few"
    four = [v[own & grp], v[own & ~grp], v[~own & grp], v[~own & ~grp]]
    d0, s0 = 4.0, v.var(ddof=1)
    var = [(d0 * s0 + (len(s) - 1) * s.var(ddof=1)) / (d0 + len(s) - 1) for s in four]
    df = [d0 + len(s) - 1 for s in four]
    terms = [vi / len(s) for vi, s in zip(var, four)]
    se = np.sqrt(sum(terms))
    dfw = sum(terms) ** 2 / sum(t * t / f for t, f in zip(terms, df))
    contrast = (four[0].mean() - four[1].mean()) - (four[2].mean() - four[3].mean())
    assert r["excess_gap"] == pytest.approx(contrast, rel=1e-12)
    assert r["excess_p_value"] == pytest.approx(stats.t.sf(-contrast / se, dfw), rel=1e-9)  # lower SRS is worse
    half = stats.t.ppf(0.975, dfw) * se
    assert (r["excess_lower"], r["excess_upper"]) == pytest.approx((contrast - half, contrast + half), rel=1e-9)


def test_options_from_settings_and_bad_options():
    opts = adaptation_options(None, adaptation_gaps)
    assert opts["min_n"] == 5 and opts["fdr_q"] == 0.05 and opts["practical"]["unilateral"] == 0.10
    custom = adaptation_options({"adaptation": {"min_n": 8, "practical": {"mean_srs": 3.0}}})
    assert custom["min_n"] == 8 and custom["practical"]["mean_srs"] == 3.0 and custom["practical"]["first_srs"] == 2.0
    m = _measures()
    with pytest.raises(ValueError, match="min_n"):
        adaptation_gaps(m, dimensions=["faith"], min_n=1)
    with pytest.raises(ValueError, match="unknown metric"):
        adaptation_gaps(m, dimensions=["faith"], metrics=["happiness"])
    with pytest.raises(ValueError, match="no clients"):
        adaptation_gaps(m, dimensions=["faith"], clinician_id="Z")
    with pytest.raises(ValueError, match="practical"):
        adaptation_gaps(m, dimensions=["faith"], practical={"mean_srs": -1})


# --------------------------------------------------------------------------------------------
# the demo clinic
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo():
    cl = load_caseload()
    clients, sessions = cl.clients.copy(deep=True), cl.sessions.copy(deep=True)
    m = client_measures(cl.clients, cl.sessions)
    pd.testing.assert_frame_equal(cl.clients, clients)
    pd.testing.assert_frame_equal(cl.sessions, sessions)
    truth = synth.read_ground_truth(demo_path())
    return cl, m, adaptation_gaps(m), truth


def test_client_measures_recomputed_on_the_demo(demo):
    cl, m, _, _ = demo
    c = cl.clients.set_index("client_id")
    mm = m.set_index("client_id")
    ended = c["end_date"].notna()
    uni = (c["end_reason"] == "unilateral") & ended
    assert mm["unilateral"].isna().sum() == (~ended).sum()
    assert (mm.loc[ended[ended].index, "unilateral"] == uni[ended].astype(float)).all()
    s = cl.sessions[cl.sessions["attendance"] == "attended"]
    share = s.dropna(subset=["identity_addressed"]).groupby("client_id")["identity_addressed"].mean()
    assert mm.loc[share.index, "identity_addressed"].to_numpy() == pytest.approx(share.astype(float).to_numpy())
    first = s.dropna(subset=["srs_total"]).sort_values("session_date").groupby("client_id")["srs_total"].first()
    assert mm.loc[first.index, "first_srs"].to_numpy() == pytest.approx(first.to_numpy())
    assert set(m.attrs["dimensions"]) <= set(m.columns)
    assert set(mm["reliable_improvement"].dropna().unique()) <= {0.0, 1.0}


def test_identity_groups_of_messy_values_and_shared_tables(demo):
    cl, m, gaps, _ = demo
    clients = cl.clients.copy()
    dim = "gender_identity"
    messy = pd.Series([" woman", "woman ", "", None, "  ", "declined", "Man"], dtype="str")
    clients[dim] = messy.sample(len(clients), replace=True, random_state=1).to_numpy()
    clients = clients.sample(frac=1, random_state=2)  # any row order: the table comes out sorted by client
    mm = client_measures(clients, cl.sessions, dimensions=[dim])
    s = clients.drop_duplicates("client_id").sort_values("client_id", kind="stable")[dim].astype("string").str.strip()
    want = s.mask(s.isna() | (s == ""), "not_recorded")
    assert mm[dim].tolist() == want.tolist() and mm["client_id"].tolist() == sorted(clients["client_id"])
    assert set(mm[dim]) == {"woman", "not_recorded", "declined", "Man"}
    # the service tables passed in give the table computed from scratch
    from supervision.metrics.alliance import client_alliance, session_alliance
    from supervision.metrics.engagement import episode_engagement
    from supervision.metrics.outcome import client_outcomes
    again = client_measures(cl.clients, cl.sessions, alliance=client_alliance(session_alliance(cl.sessions), clients=cl.clients),
                            engagement=episode_engagement(cl.clients, cl.sessions),
                            outcomes=client_outcomes(cl.sessions, clients=cl.clients))
    pd.testing.assert_frame_equal(again, m)


def test_planted_gaps_are_found_and_named(demo):
    _, m, gaps, truth = demo
    planted = truth["adaptation_gaps"]
    assert len(planted) >= 2
    for r in planted.itertuples():
        rows = gaps[(gaps["clinician_id"] == r.clinician_id) & (gaps["dimension"] == r.dimension)
                    & (gaps["group"] == r.group)]
        assert (rows["verdict"] == "clear gap").any(), f"planted gap not found: {r.clinician_id} {r.dimension} {r.group}"
        # the overview names it
        fig = gap_overview(gaps, clinician_id=r.clinician_id)
        heat = fig.data[0]
        i = list(heat.y).index(r.dimension.replace("_", " ").capitalize())
        label = value_label(r.group)  # the chart names the group by its label ([identity.labels])
        assert any("CLEAR GAP" in str(t) and label in str(t) for t in heat.text[i])


def test_demo_clear_gaps_are_rare_outside_the_planted_pairs(demo):
    _, m, gaps, truth = demo
    planted = set(zip(truth["adaptation_gaps"]["clinician_id"], truth["adaptation_gaps"]["dimension"]))
    clear = gaps[gaps["verdict"] == "clear gap"]
    false = set(zip(clear["clinician_id"], clear["dimension"])) - planted
    pairs = m["clinician_id"].nunique() * len(m.attrs["dimensions"]) - len(planted)
    assert len(false) / pairs <= 0.05


def test_funnel_data_marks_the_planted_clinician(demo):
    _, m, _, truth = demo
    r = truth["adaptation_gaps"].iloc[0]
    before = m.copy(deep=True)
    f = funnel_data(m, dimension=r["dimension"], group=r["group"], metric="unilateral", clinician_id=r["clinician_id"])
    pd.testing.assert_frame_equal(m, before)
    me = f[f["highlight"]].iloc[0]
    assert me["clinician_id"] == r["clinician_id"] and me["outside_95"] == "above"
    # limits at the clinician's n, recomputed; target = pooled proportion
    sel = (m[r["dimension"]] == r["group"]) & m["unilateral"].notna()
    assert me["target"] == pytest.approx(m.loc[sel, "unilateral"].mean())
    lim = funnel_limits([me["n"]], me["target"])
    assert me["upper_95"] == pytest.approx(lim["upper_95"][0])
    assert f["n"].sum() == sel.sum()
    add = funnel_data(m, dimension=r["dimension"], group=r["group"], metric="unilateral", overdispersion="additive")
    assert (add["tau2_used"] == add["tau2"]).all()
    mean = funnel_data(m, dimension=r["dimension"], group=r["group"], metric="mean_srs")
    assert (mean["kind"] == "mean").all() and mean["sd"].iloc[0] > 0


def test_suppression_for_sharing(demo):
    _, m, gaps, _ = demo
    one = gaps[gaps["clinician_id"] == "T08"]
    before = one.copy(deep=True)
    s = suppress_gaps(one, policy="nhs")
    pd.testing.assert_frame_equal(one, before)
    hidden = s["verdict"] == "suppressed"
    assert hidden.any()
    small = (one["n_group"] >= 1) & (one["n_group"] <= 7)
    assert hidden[small].all()  # every count 1-7 is hidden
    assert s.loc[hidden, ["difference", "lower", "upper", "shrunken_difference"]].isna().all().all()
    assert (s.loc[s["n_group"].isna(), "n_group_display"] == "*").all()
    assert (s.loc[s["n_group"].isna(), "verdict"] == "suppressed").all() and s.loc[hidden, "n_comparator"].isna().all()
    kept = s.loc[~hidden & (s["n_group"] > 0), "n_group"].dropna()
    assert (kept % 5 == 0).all()  # NHS: rounded to 5
    none = suppress_gaps(one, policy="none")
    assert not (none["verdict"] == "suppressed").any()


def test_figures_as_data(demo):
    _, m, gaps, truth = demo
    r = truth["adaptation_gaps"].iloc[0]
    # (T03's planted unilateral gap is a possible gap since issue #19: its excess gap does not pass the
    # Benjamini-Hochberg screen among the selected rows; the unplanned single-session gap does)
    fig = gap_forest(gaps, metric="unplanned_single_session", clinician_id=r["clinician_id"], comparator="service")
    names = {t.name for t in fig.data}
    assert {"Clear gap", "Shrunken estimate", "No estimate"} <= names
    clear = next(t for t in fig.data if t.name == "Clear gap")
    rows = gaps[(gaps["clinician_id"] == r["clinician_id"]) & (gaps["metric"] == "unplanned_single_session")
                & (gaps["comparator"] == "service") & (gaps["verdict"] == "clear gap")]
    assert list(clear.x) == pytest.approx(rows["difference"].tolist())
    assert any(r["group"] in y for y in clear.y)
    no_est = next(t for t in fig.data if t.name == "No estimate")
    assert no_est.mode == "text" and all("no estimate" in t for t in no_est.text)  # never drawn as a bar
    n_too_few = ((gaps["clinician_id"] == r["clinician_id"]) & (gaps["metric"] == "unplanned_single_session")
                 & (gaps["comparator"] == "service") & (gaps["verdict"] == "too few clients")).sum()
    assert len(no_est.x) == n_too_few
    short = gap_forest(gaps, metric="unplanned_single_session", clinician_id=r["clinician_id"], show_no_estimate=False)
    assert "No estimate" not in {t.name for t in short.data}
    sup = gap_forest(suppress_gaps(gaps[gaps["clinician_id"] == "T08"]), metric="mean_srs")
    assert any("suppressed" in t for tr in sup.data if tr.name == "No estimate" for t in tr.text)
    fu = gap_funnel(funnel_data(m, dimension=r["dimension"], group=r["group"], metric="unilateral",
                                clinician_id=r["clinician_id"]))
    assert {"95% limits", "99.8% limits", "Service average", "Clinicians"} <= {t.name for t in fu.data}
    star = next(t for t in fu.data if t.name.startswith("Supervisee"))
    assert list(star.text) == [r["clinician_id"]]
    ov = gap_overview(gaps, clinician_id=r["clinician_id"])
    assert ov.data[0].z.shape == (len(m.attrs["dimensions"]), len(METRICS))
    with pytest.raises(ValueError, match="clinician_id"):
        gap_overview(gaps)


# --------------------------------------------------------------------------------------------
# false gaps over many generated clinics
# --------------------------------------------------------------------------------------------

def _false_gap_rate(seeds, n_clinicians: int, months: int) -> tuple[float, int, int]:
    false = pairs = found = planted_n = 0
    for seed in seeds:
        g = synth.generate_clinic(seed=seed, n_clinicians=n_clinicians, months=months)
        m = client_measures(g["clients"], g["sessions"])
        gaps = adaptation_gaps(m)
        truth = g["ground_truth"]["adaptation_gaps"]
        planted = set(zip(truth["clinician_id"], truth["dimension"]))
        clear = gaps[gaps["verdict"] == "clear gap"]
        false += len(set(zip(clear["clinician_id"], clear["dimension"])) - planted)
        pairs += m["clinician_id"].nunique() * len(m.attrs["dimensions"]) - len(planted)
        found += len(set(zip(truth["clinician_id"], truth["dimension"], truth["group"]))
                     & set(zip(clear["clinician_id"], clear["dimension"], clear["group"])))
        planted_n += len(truth)
    return false / pairs, found, planted_n


def test_false_gap_rate_over_twenty_small_clinics():
    t0 = time.perf_counter()
    rate, found, planted = _false_gap_rate(range(101, 121), n_clinicians=8, months=12)
    assert rate <= 0.10, f"clear gaps where none was planted in {rate:.1%} of clinician x dimension pairs"
    assert found >= 1  # small caseloads: few planted gaps reach the bar, but not none
    assert time.perf_counter() - t0 < 60


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SUPERVISION_FULL_FALSE_GAP"),
                    reason="full measurement (20 clinics of 12 clinicians x 18 months); set SUPERVISION_FULL_FALSE_GAP=1")
def test_false_gap_rate_full_figure():
    rate, found, planted = _false_gap_rate(range(1, 21), n_clinicians=12, months=18)
    print(f"false-gap rate {rate:.2%}; planted gaps found {found}/{planted}")
    assert rate <= 0.10


# --------------------------------------------------------------------------------------------
# issue #19: no full pooling when the between-clinician variance is estimated as 0; the excess gap
# of a clear gap passes a multiplicity screen
# --------------------------------------------------------------------------------------------

def _pooled_case() -> pd.DataFrame:
    rows = []
    x = {"A": [22, 42, 25, 39, 28, 36], "B": [30, 44], "C": [29, 45], "D": [31, 43]}
    for c, vals in x.items():
        for i, v in enumerate(vals):
            rows.append({"client_id": f"{c}x{i}", "clinician_id": c, "faith": "x", "first_srs": float(v)})
        for i, v in enumerate([33, 35, 37, 39, 41, 34, 36, 38, 40, 37]):
            rows.append({"client_id": f"{c}y{i}", "clinician_id": c, "faith": "y", "first_srs": float(v)})
    return pd.DataFrame(rows)


def test_a_cell_is_not_fully_pooled_when_the_between_clinician_variance_is_zero():
    from supervision.metrics.stats import dersimonian_laird
    m = _pooled_case()
    x = m[m["faith"] == "x"].groupby("clinician_id")["first_srs"]
    n, mean = x.size(), x.mean()
    within = float(sum(((v - v.mean()) ** 2).sum() for _, v in x)) / float((n - 1).sum())
    mu, tau2 = dersimonian_laird(mean.to_numpy(), (within / n).to_numpy())
    assert tau2 == 0.0  # the case of the issue: the spread between clinicians estimated as none
    kw = dict(dimensions=["faith"], metrics=["first_srs"], min_n=2, min_n_comparator=2, variance_prior_df=0.0)
    row = lambda g: g[(g["clinician_id"] == "A") & (g["group"] == "x") & (g["comparator"] == "service")].iloc[0]  # noqa: E731
    plain = row(adaptation_gaps(m, min_own_weight=0.0, **kw))
    floored = row(adaptation_gaps(m, **kw))  # default 0.5
    colleagues = m[(m["faith"] == "x") & (m["clinician_id"] != "A")]["first_srs"].mean()
    assert plain["shrunken_difference"] == pytest.approx(mu - colleagues)  # fully pooled: A's own 32 is ignored
    assert floored["shrunken_difference"] == pytest.approx(mu + 0.5 * (mean["A"] - mu) - colleagues)
    assert floored["difference"] == pytest.approx(mean["A"] - colleagues)  # the raw gap is untouched
    with pytest.raises(ValueError, match="min_own_weight"):
        adaptation_gaps(m, min_own_weight=1.5, **kw)


def test_the_excess_gap_of_a_clear_gap_passes_a_multiplicity_screen(demo):
    _, m, gaps, _ = demo
    none = adaptation_gaps(m, excess_multiplicity="none")
    key = (none["clinician_id"] == "T07") & (none["dimension"] == "disability") & (none["group"] == "no") & (
        none["metric"] == "identity_addressed") & (none["comparator"] == "service")
    assert none.loc[key, "verdict"].item() == "clear gap"  # the false clear gap, without the screen
    assert gaps.loc[key.to_numpy(), "verdict"].item() != "clear gap"
    sel = gaps[gaps["excess_p_value"].notna()]
    assert (sel["q_value"] <= 0.05).all()  # only rows selected by the first screen get the second
    hib = sel["higher_is_better"].to_numpy()
    excludes = np.where(hib, sel["excess_upper"] < 0, sel["excess_lower"] > 0)
    # the p-value inverts the 95 % interval: p < 0.025 exactly when the interval excludes 0 on the worse side
    assert ((sel["excess_p_value"] < 0.025 - 1e-6) == excludes).all()
    clear = gaps[gaps["verdict"] == "clear gap"]
    assert (clear["excess_q_value"] <= 0.05).all()
    with pytest.raises(ValueError, match="excess_multiplicity"):
        adaptation_gaps(m, excess_multiplicity="bonferroni")


def test_outcome_gaps_use_another_measure_when_the_export_has_no_ors():
    """Issue #19: without ORS the outcome gaps vanished silently although PHQ-9, GAD-7 and CORE-10 were there."""
    from supervision.metrics.adaptation import outcome_instrument
    from supervision.metrics.tables import metric_tables
    assert outcome_instrument(["ors", "phq9"]) == ("ors", "outcome gaps use ors")
    inst, note = outcome_instrument(["phq9", "gad7"])
    assert inst == "phq9" and "no ors" in note
    assert outcome_instrument(["phq9", "gad7"], "gad7")[0] == "gad7"
    assert outcome_instrument(["phq9"], "core10")[0] is None
    assert outcome_instrument([])[0] is None
    import dataclasses
    cl = load_caseload()
    ors_cols = [c for c in cl.sessions.columns if c.startswith("ors_")]
    cl2 = dataclasses.replace(cl, sessions=cl.sessions.drop(columns=ors_cols))
    t = metric_tables(cl2)
    m = t["adaptation_measures"]
    assert m.attrs["outcome_instrument"] == "phq9" and "no ors" in m.attrs["outcome_note"]
    assert m["reliable_improvement"].notna().any()
    assert t["adaptation_gaps"].attrs["outcome_instrument"] == "phq9"


def test_a_gap_that_leaks_from_a_correlated_dimension_is_shown_as_explained():
    """Issue #19: personality-disorder features drive dropout; most of this clinician's PD clients are men, so
    men look worse too. Held fixed, the PD gap persists and the gap with men disappears."""
    from supervision.metrics.adaptation import adjusted_gaps
    rows = []
    def add(n, gender, pd_yes, dropouts):
        for i in range(n):
            rows.append({"client_id": f"C{len(rows):03d}", "clinician_id": "A", "gender_identity": gender,
                         "personality_disorder": pd_yes, "unilateral": float(i < dropouts)})
    add(12, "man", "yes", 9)      # 75 %
    add(8, "woman", "yes", 6)     # 75 %
    add(8, "man", "no", 1)        # 12.5 %
    add(16, "woman", "no", 2)     # 12.5 %
    m = pd.DataFrame(rows)
    gaps = pd.DataFrame({"clinician_id": "A", "dimension": ["personality_disorder", "gender_identity"],
                         "group": ["yes", "man"], "metric": "unilateral", "comparator": "clinician",
                         "verdict": ["clear gap", "possible gap"], "difference": [0.625, 0.25]})
    a = adjusted_gaps(m, gaps).set_index("group")
    assert a.loc["man", "difference"] == pytest.approx(0.5 - 8 / 24)
    assert a.loc["man", "adjusted_difference"] == pytest.approx(0.0, abs=1e-12)
    assert a.loc["man", "adjusted_lower"] < 0 < a.loc["man", "adjusted_upper"]
    assert "largely explained by the overlap with personality_disorder = yes" in a.loc["man", "note"]
    assert a.loc["man", "n_overlap"] == 12 and a.loc["man", "adjusted_for"] == "personality_disorder = yes"
    assert a.loc["yes", "adjusted_difference"] == pytest.approx(0.625) and a.loc["yes", "adjusted_lower"] > 0
    assert a.loc["yes", "note"].startswith("persists with gender_identity = man held fixed")
    # an independent check of the adjusted coefficient: statsmodels-free OLS by the normal equations
    X = np.column_stack([np.ones(len(m)), m["gender_identity"].eq("man"), m["personality_disorder"].eq("yes")]).astype(float)
    beta = np.linalg.solve(X.T @ X, X.T @ m["unilateral"].to_numpy())
    assert a.loc["man", "adjusted_difference"] == pytest.approx(beta[1], abs=1e-12)
    # nested groups cannot be separated, and it says so
    m2 = m.assign(gender_identity=np.where(m["personality_disorder"].eq("yes"), "man", m["gender_identity"]))
    nested = adjusted_gaps(m2, gaps).set_index("group")
    assert np.isnan(nested.loc["yes", "adjusted_difference"]) and nested.loc["yes", "note"].startswith("cannot be estimated")
    # nothing else flagged: said plainly
    alone = adjusted_gaps(m, gaps.iloc[:1])
    assert alone["note"].tolist() == ["nothing else flagged to adjust for"]
