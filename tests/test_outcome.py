"""Outcome change (supervision.metrics.outcome), the shrinkage helpers and the outcome figures.

Oracles: the R packages' own example data and reported results in ../shared/reference/ (read in
place, never copied): sgdata.csv (suddengains 0.7.2: 24 gains) and jacobson_1989.csv
(clinicalsignificance: gds and das categories); the suddengains check_interval examples; the
reliable-change values of its tests; hand-computed NHS Talking Therapies cases and expected
treatment response cases (worked out in the comments); plain-pandas / NumPy recomputation; the
demo clinic's ground truth (planted sudden gains).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import supervision
from supervision.figures import outcome as fo
from supervision.metrics import outcome as oc
from supervision.metrics.stats import (
    beta_binomial_prior, beta_binomial_shrinkage, dersimonian_laird, normal_shrinkage, wilson_interval,
)
from supervision.synth import read_ground_truth

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="module")
def sgdata() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "sgdata.csv")


def sg_long(wide: pd.DataFrame, sessions=range(1, 13), measure: str = "bdi") -> pd.DataFrame:
    cols = [f"{measure}_s{i}" for i in sessions]
    long = wide.melt(id_vars="id", value_vars=cols, var_name="var", value_name="score")
    long["session"] = long["var"].str.extract(r"s(\d+)$", expand=False).astype(int)
    return long[["id", "session", "score"]]


@pytest.fixture(scope="module")
def gains(sgdata) -> pd.DataFrame:
    return oc.sudden_gains(sg_long(sgdata), id="id", time="session", sg_crit1_cutoff=7)


@pytest.fixture(scope="module")
def demo():
    cl = supervision.load_caseload()
    return cl, read_ground_truth(supervision.demo_path())


# --------------------------------------------------------------------------------------------
# reliable change value
# --------------------------------------------------------------------------------------------

def test_reliable_change_value_matches_suddengains_tests(sgdata):
    assert oc.reliable_change_value(6.396073, 0.931) == pytest.approx(4.65703, abs=1e-5)
    assert oc.reliable_change_value(10.5, 0.961) == pytest.approx(5.747681, abs=1e-6)
    sd = sgdata["bdi_s0"].std()  # n - 1
    assert sd == pytest.approx(6.396073, abs=1e-6)
    assert oc.reliable_change_value(sd, 0.931) == pytest.approx(4.65703, abs=1e-5)
    with pytest.raises(ValueError, match="reliability"):
        oc.reliable_change_value(6.0, 1.0)


# --------------------------------------------------------------------------------------------
# sudden gains: sgdata oracle (R suddengains 0.7.2)
# --------------------------------------------------------------------------------------------

EXPECTED_GAINS = ("1@3 11, 1@7 12, 3@8 9, 4@3 10, 5@3 10, 5@8 13, 9@3 9, 10@2 10, 10@4 8, 12@3 8, 13@3 13, "
                  "13@8 8, 14@2 14, 18@3 11, 39@3 9, 40@2 8, 40@5 11, 40@8 10, 41@6 11, 41@9 8, 42@5 24, "
                  "42@8 9, 43@5 14, 43@7 14")


def test_sgdata_reproduces_the_24_gains(gains):
    want = [(int(a.split("@")[0]), int(a.split("@")[1].split()[0]), float(a.split()[1]))
            for a in EXPECTED_GAINS.split(", ")]
    got = list(zip(gains["id"], gains["pregain_time"], gains["magnitude"]))
    assert got == want
    assert len(gains) == 24 and gains["id"].nunique() == 15
    assert (gains["postgain_time"] == gains["pregain_time"] + 1).all()
    assert (gains.groupby("id").size() > 1).sum() == 8
    assert gains["magnitude"].mean() == pytest.approx(11.0)
    assert gains["magnitude"].std() == pytest.approx(3.43, abs=0.005)
    # magnitude = x_n - x_{n+1}, from the data itself
    assert (gains["magnitude"] == gains["score_n"] - gains["score_np1"]).all()


def test_sgdata_reversals(gains):
    rev = gains[gains["reversal"]]
    assert list(zip(rev["id"], rev["pregain_time"])) == [(1, 3), (4, 3), (12, 3), (40, 8)]
    # reversal value = postgain score + magnitude / 2; a later score strictly above it
    assert (gains["reversal_value"] == gains["score_np1"] + gains["magnitude"] / 2).all()
    assert rev["reversal_time"].notna().all() and gains.loc[~gains["reversal"], "reversal_time"].isna().all()


def test_sgdata_per_person_first_and_largest(gains, sgdata):
    first = oc.sudden_gains_by_person(gains, id="id", multiple_sg_select="first")
    assert len(first) == 15
    assert first["magnitude"].mean() == pytest.approx(11.4)
    assert first["magnitude"].std() == pytest.approx(3.98, abs=0.005)
    assert first.set_index("id").loc[40, "pregain_time"] == 2
    largest = oc.sudden_gains_by_person(gains, id="id", multiple_sg_select="largest").set_index("id")
    assert largest.loc[40, "pregain_time"] == 5 and largest.loc[43, "pregain_time"] == 5  # tie 14/14 -> earliest
    everyone = oc.sudden_gains_by_person(gains, id="id", persons=sgdata["id"])
    assert len(everyone) == 43 and everyone["has_event"].sum() == 15
    assert everyone.loc[~everyone["has_event"], "n_events"].eq(0).all()
    assert everyone.set_index("id").loc[40, "n_events"] == 3


def test_sgdata_interval_range_and_critical_values(sgdata):
    iv = oc.sudden_gains(sg_long(sgdata), id="id", time="session", sg_crit1_cutoff=7, intervals=True)
    assert sorted(iv["pregain_time"].unique()) == list(range(2, 11))  # s2->s3 ... s10->s11
    cv = iv.dropna(subset=["critical_value"])
    by_n = cv.groupby(["n_pre", "n_post"])["critical_value"].first()
    assert by_n[(3, 3)] == pytest.approx(2.776, abs=5e-4)
    assert by_n[(2, 3)] == pytest.approx(3.182, abs=5e-4) and by_n[(3, 2)] == pytest.approx(3.182, abs=5e-4)
    assert by_n[(2, 2)] == pytest.approx(4.303, abs=5e-4)
    # criterion 3 undecidable with < 2 values on a side -> the interval is not analysed
    assert iv.loc[(iv["n_pre"] < 2) | (iv["n_post"] < 2), "event"].isna().all()
    assert int(iv["event"].fillna(False).sum()) == 24


def test_gains_spanning_a_missing_session_are_not_identified(sgdata):
    iv = oc.sudden_gains(sg_long(sgdata), id="id", time="session", sg_crit1_cutoff=7, intervals=True)
    long = sg_long(sgdata).set_index(["id", "session"])["score"]
    pre = long.reindex(pd.MultiIndex.from_arrays([iv["id"], iv["pregain_time"]])).to_numpy()
    post = long.reindex(pd.MultiIndex.from_arrays([iv["id"], iv["postgain_time"]])).to_numpy()
    gap = np.isnan(pre) | np.isnan(post)
    assert gap.any() and iv.loc[gap, "event"].isna().all()


def test_fixed_critical_value_and_alpha(sgdata):
    fixed = oc.sudden_gains(sg_long(sgdata), id="id", time="session", sg_crit1_cutoff=7, sg_crit3_adjust=False,
                            intervals=True)
    assert set(fixed["critical_value"].dropna().round(3)) == {2.776}
    strict = oc.sudden_gains(sg_long(sgdata), id="id", time="session", sg_crit1_cutoff=7, sg_crit3_alpha=0.01)
    assert len(strict) < 24 and set(zip(strict["id"], strict["pregain_time"])) <= {
        (int(a.split("@")[0]), int(a.split("@")[1].split()[0])) for a in EXPECTED_GAINS.split(", ")}


def test_rci_cutoff_finds_at_least_the_7_point_gains(sgdata):
    rc = oc.reliable_change_value(sgdata["bdi_s0"].std(), 0.931)
    g = oc.sudden_gains(sg_long(sgdata), id="id", time="session", sg_crit1_cutoff=rc)
    assert len(g) >= 24


def window_series(pre, post, pid="x"):
    """Sessions 1..6 holding x_{n-2}..x_{n+3} around pregain session 3."""
    vals = list(pre) + list(post)
    return pd.DataFrame({"client_id": pid, "session_number": range(1, 7), "score": vals})


def pick(iv, n=3):
    return iv[iv["pregain_time"] == n].iloc[0]


def test_check_interval_examples_of_the_package():
    # check_interval(pre = c(32, 31, 33), post = c(5, 6, 7), cutoff 7, alpha .05): a gain
    iv = oc.sudden_gains(window_series([32, 31, 33], [5, 6, 7]), sg_crit1_cutoff=7, intervals=True)
    r = pick(iv)
    assert r["crit1"] and r["crit2"] and r["crit3"] and r["event"]
    assert r["critical_value"] == pytest.approx(stats.t.ppf(0.975, 4))
    # only criterion 3, alpha .01, one value missing on each side: critical value 9.925 (df 2)
    iv = oc.sudden_gains(window_series([np.nan, 31, 33], [5, np.nan, 7]), sg_crit1_cutoff=None, sg_crit2_pct=None,
                         sg_crit3_alpha=0.01, intervals=True)
    r = pick(iv)
    assert r["critical_value"] == pytest.approx(9.925, abs=5e-4) and r["event"]
    assert pd.isna(r["crit1"]) and pd.isna(r["crit2"])


def test_sudden_loss_example_and_the_proper_criterion_2():
    # check_interval(pre = c(5, NA, 7), post = c(16, 12, 14), cutoff -7, identify "sl"): a loss.
    # crit3: mean_post 14 - mean_pre 6 = 8 > 3.182 * sqrt((1 * 2 + 2 * 4) / 3) = 5.81
    s = window_series([5, np.nan, 7], [16, 12, 14])
    r = pick(oc.sudden_losses(s, sg_crit1_cutoff=-7, intervals=True))
    assert r["crit1"] and r["crit2"] and r["crit3"] and r["event"]
    loss = oc.sudden_losses(s, sg_crit1_cutoff=7)
    assert loss[["kind", "pregain_time", "magnitude"]].values.tolist() == [["loss", 3, 9.0]]
    # reversal value 16 - 9 / 2 = 11.5; the later scores 12 and 14 stay above it: not reversed
    assert loss["reversal_value"].iloc[0] == 11.5 and not loss["reversal"].iloc[0]
    # a rise of 7 from 40 is below 25 % of the pregain score: no loss (the package's criterion 2
    # would accept any rise; we apply the rule as stated)
    r = pick(oc.sudden_losses(window_series([41, 40, 40], [47, 47, 48]), sg_crit1_cutoff=7, intervals=True))
    assert r["crit1"] and not r["crit2"] and not r["event"]


def test_higher_is_better_mirrors_the_gains(sgdata):
    long = sg_long(sgdata)
    base = oc.sudden_gains(long, id="id", time="session", sg_crit1_cutoff=7, sg_crit2_pct=None)
    flipped = long.assign(score=63 - long["score"])
    mirror = oc.sudden_gains(flipped, id="id", time="session", sg_crit1_cutoff=7, sg_crit2_pct=None,
                             higher_is_better=True)
    cols = ["id", "pregain_time", "magnitude", "reversal"]
    pd.testing.assert_frame_equal(base[cols], mirror[cols])


def test_sudden_gains_input_errors():
    s = window_series([32, 31, 33], [5, 6, 7])
    with pytest.raises(ValueError, match="whole numbers"):
        oc.sudden_gains(s.assign(session_number=s["session_number"] + 0.5), sg_crit1_cutoff=7)
    with pytest.raises(ValueError, match="twice"):
        oc.sudden_gains(pd.concat([s, s.iloc[:1]]), sg_crit1_cutoff=7)
    with pytest.raises(ValueError, match="no criterion"):
        oc.sudden_gains(s, sg_crit1_cutoff=None, sg_crit2_pct=None, sg_crit3=False)
    with pytest.raises(ValueError, match="'gains' or 'losses'"):
        oc.sudden_gains(s, sg_crit1_cutoff=7, identify="both")
    with pytest.raises(ValueError, match="multiple_sg_select"):
        oc.sudden_gains_by_person(oc.sudden_gains(s, sg_crit1_cutoff=7), multiple_sg_select="middle")


# --------------------------------------------------------------------------------------------
# Jacobson & Truax: jacobson_1989 oracle (R clinicalsignificance)
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jacobson() -> pd.DataFrame:
    long = pd.read_csv(REFERENCE / "jacobson_1989.csv")
    return long.pivot(index="subject", columns="time", values=["gds", "das"])


def pre_post(wide, measure):
    return pd.DataFrame({"pre": wide[(measure, "pre")], "post": wide[(measure, "post")]}).reset_index()


def counts(jt) -> list[int]:
    vc = jt["category"].value_counts()
    return [int(vc.get(c, 0)) for c in oc.JT_CATEGORIES]


def test_jacobson_gds_cutoff_a(jacobson):
    jt = oc.jacobson_truax(pre_post(jacobson, "gds"), reliability=0.80)
    assert counts(jt) == [10, 4, 12, 0, 0]
    a = jt.attrs
    assert a["n_complete"] == 26
    assert a["sd_pre"] == pytest.approx(6.102, abs=5e-4) and a["s_diff"] == pytest.approx(3.8593, abs=5e-5)
    assert a["cutoff"] == pytest.approx(56.95, abs=5e-3)
    assert jt["category"].isna().sum() == 4  # subjects 27-30 have no post gds
    assert jt.loc[jt["category"].isna(), "subject"].tolist() == [27, 28, 29, 30]


def test_jacobson_das_cutoff_a(jacobson):
    jt = oc.jacobson_truax(pre_post(jacobson, "das"), reliability=0.80, higher_is_better=True)
    assert counts(jt) == [10, 6, 13, 1, 0]
    assert jt.attrs["cutoff"] == pytest.approx(105.235, abs=5e-4)


def test_jacobson_gds_cutoff_c_and_b(jacobson):
    d = pre_post(jacobson, "gds")
    jt = oc.jacobson_truax(d, reliability=0.80, cutoff_type="c", m_functional=30, sd_functional=7)
    assert counts(jt) == [3, 11, 12, 0, 0]
    assert jt.attrs["cutoff"] == pytest.approx(50.919, abs=5e-4)
    b = oc.jacobson_truax(d, reliability=0.80, cutoff_type="b", m_functional=30, sd_functional=7)
    assert b.attrs["cutoff"] == 30 + 2 * 7  # J&T: 2 SD_functional from the functional mean
    with pytest.raises(ValueError, match="m_functional"):
        oc.jacobson_truax(d, reliability=0.80, cutoff_type="c")


def test_jacobson_rci_is_recomputed_and_strict():
    d = pd.DataFrame({"pre": [10.0, 20.0, 30.0], "post": [10.0, 20.0, 30.0]})
    sd = float(np.std(d["pre"], ddof=1))
    s_diff = np.sqrt(2) * sd * np.sqrt(1 - 0.9)
    # a change of exactly 1.96 * S_diff is not reliable (strict), a hair more is
    d["post"] = d["pre"] - np.array([1.96 * s_diff, 1.96 * s_diff + 1e-6, 0.0])
    jt = oc.jacobson_truax(d, reliability=0.9, cutoff=25.0)
    np.testing.assert_allclose(jt["rci"], (d["post"] - d["pre"]) / s_diff)
    assert jt["reliable_improvement"].tolist() == [False, True, False]


def test_jacobson_cutoff_boundary_and_inclusive_convention():
    # lower is better, cut-off 10: a pre score of exactly 10 is not clinical under J&T (strict) but
    # is under the instrument convention (PHQ-9 >= 10 caseness); a post score of 10 is never functional
    d = pd.DataFrame({"pre": [10.0, 18.0, 4.0], "post": [2.0, 10.0, 12.0]})
    strict = oc.jacobson_truax(d, reliable_change=6, cutoff=10)
    assert strict["clinical_pre"].tolist() == [False, True, False]
    assert strict["functional_post"].tolist() == [True, False, False]
    assert strict["category"].tolist() == ["improved", "improved", "harmed"]
    incl = oc.jacobson_truax(d, reliable_change=6, cutoff=10, cutoff_inclusive=True)
    assert incl["clinical_pre"].tolist() == [True, True, False]
    assert incl["category"].tolist() == ["recovered", "improved", "harmed"]
    # reliable change in points: a change of exactly 6 is reliable (inclusive), 5.9 is not
    d2 = pd.DataFrame({"pre": [16.0, 16.0, 4.0], "post": [10.0, 10.1, 10.0]})
    jt = oc.jacobson_truax(d2, reliable_change=6, cutoff=None, cutoff_type=None)
    assert jt["category"].tolist() == ["improved", "unchanged", "deteriorated"]
    assert jt["clinical_pre"].isna().all()


def test_jacobson_arguments_and_purity(jacobson):
    d = pre_post(jacobson, "gds")
    before = d.copy()
    oc.jacobson_truax(d, reliability=0.8)
    pd.testing.assert_frame_equal(d, before)
    with pytest.raises(ValueError, match="exactly one of reliability"):
        oc.jacobson_truax(d, reliability=0.8, reliable_change=5)
    with pytest.raises(ValueError, match="exactly one of reliability"):
        oc.jacobson_truax(d)
    with pytest.raises(ValueError, match="no column 'before'"):
        oc.jacobson_truax(d, pre="before", reliability=0.8)


# --------------------------------------------------------------------------------------------
# NHS Talking Therapies: hand-computed cases
# --------------------------------------------------------------------------------------------

TT_CASES = pd.DataFrame([
    # id, attended, phq first/last, gad first/last, expected category
    ("single", 1, 16, 4, 12, 3, "not_finished"),
    ("no_gad_end", 5, 16, 4, 12, np.nan, "incomplete_scores"),
    ("rel_recovery", 6, 16, 4, 12, 3, "reliable_recovery"),           # caseness -> not; -12 PHQ
    ("recovery_only", 4, 11, 9, 9, 7, "recovery"),                     # 9 < 10 and 7 < 8; -2, -2
    ("improve_at_rc", 8, 22, 16, 15, 12, "reliable_improvement"),      # PHQ -6 exactly = reliable
    ("just_below_rc", 8, 15, 10, 10, 8, "no_reliable_change"),         # -5; PHQ 10 / GAD 8 = caseness
    ("deteriorate_at_rc", 3, 10, 16, 8, 8, "reliable_deterioration"),  # +6 exactly
    ("gad_deteriorates", 3, 5, 5, 4, 8, "reliable_deterioration"),     # GAD +4 exactly
    ("not_caseness", 2, 9, 8, 7, 6, "not_at_caseness"),                # 9 < 10, 7 < 8
    ("opposite", 5, 12, 5, 3, 7, "recovery"),                          # PHQ -7, GAD +4: cancels
], columns=["client_id", "n_attended", "phq9_first", "phq9_last", "gad7_first", "gad7_last", "expected"])


def test_talking_therapies_hand_cases():
    tt = oc.talking_therapies(TT_CASES)
    assert tt["category"].tolist() == TT_CASES["expected"].tolist()
    t = tt.set_index("client_id")
    assert t.loc["deteriorate_at_rc", "caseness_first"]  # PHQ-9 exactly 10 is caseness
    assert t.loc["deteriorate_at_rc", "phq9_reliable_deterioration"]
    assert t.loc["just_below_rc", "caseness_last"] and not t.loc["just_below_rc", "reliable_improvement"]
    assert t.loc["improve_at_rc", "reliable_improvement"] and t.loc["improve_at_rc", "phq9_reliable_improvement"]
    assert not t.loc["not_caseness", "caseness_first"]
    o = t.loc["opposite"]
    assert o["phq9_reliable_improvement"] and o["gad7_reliable_deterioration"]
    assert not o["reliable_improvement"] and not o["reliable_deterioration"] and o["recovery"]
    assert not t.loc["single", "finished_treatment"] and pd.isna(t.loc["no_gad_end", "recovery"])
    assert t.loc["rel_recovery", "reliable_recovery"] and not t.loc["recovery_only", "reliable_recovery"]
    # every category of the definitions appears
    assert set(tt["category"]) == set(oc.TT_CATEGORIES)


def test_talking_therapies_lenient_rule_and_thresholds_as_settings():
    tt = oc.talking_therapies(TT_CASES, no_opposite_deterioration=False).set_index("client_id")
    assert tt.loc["opposite", "reliable_improvement"] and tt.loc["opposite", "reliable_deterioration"]
    assert tt.loc["opposite", "category"] == "reliable_deterioration"
    stricter = oc.talking_therapies(TT_CASES, phq9_reliable_change=7).set_index("client_id")
    assert stricter.loc["improve_at_rc", "category"] == "no_reliable_change"
    three = oc.talking_therapies(TT_CASES, min_attended=3).set_index("client_id")
    assert three.loc["not_caseness", "category"] == "not_finished"


def test_talking_therapies_rates_hand_computed():
    cases = TT_CASES.assign(clinician_id=["A"] * 5 + ["B"] * 5)
    rates = oc.talking_therapies_rates(oc.talking_therapies(cases)).set_index("scope")
    # A: single (not finished), no_gad_end (unpaired), rel_recovery, recovery_only, improve_at_rc
    #   finished & paired 3; at caseness 3; recovered 2; reliable recovery 1; reliable improvement 2
    a = rates.loc["A"]
    assert (a["n_finished"], a["n_recovery_denominator"], a["n_recovery"], a["n_reliable_recovery"],
            a["n_reliable_improvement"], a["n_reliable_deterioration"]) == (3, 3, 2, 1, 2, 0)
    assert a["recovery_rate"] == pytest.approx(2 / 3)
    assert (a["recovery_lower"], a["recovery_upper"]) == pytest.approx(wilson_interval(2, 3))
    # B: just_below_rc, deteriorate_at_rc, gad_deteriorates, not_caseness, opposite: all finished & paired
    #   at caseness: just_below_rc, deteriorate_at_rc, opposite (gad_deteriorates 5/4, not_caseness 9/7 not)
    b = rates.loc["B"]
    got = (b["n_finished"], b["n_recovery_denominator"], b["n_recovery"], b["n_reliable_deterioration"])
    assert got == (5, 3, 1, 2)
    s = rates.loc["service"]
    # NHS: recovered / (finished - not at caseness)
    assert s["n_finished"] == 8 and s["recovery_rate"] == pytest.approx(3 / 6)
    assert s["reliable_improvement_rate"] == pytest.approx(2 / 8)


def test_paired_scores_from_sessions():
    s = pd.DataFrame({
        "client_id": ["A"] * 4 + ["B"] * 2, "clinician_id": ["T1"] * 4 + ["T2"] * 2,
        "session_date": pd.to_datetime(["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27", "2025-01-06",
                                        "2025-01-13"]),
        "attendance": ["attended", "no_show", "attended", "attended", "attended", "attended"],
        "phq9_total": [15, np.nan, np.nan, 8, 12, np.nan], "gad7_total": [10, np.nan, 9, 6, 9, np.nan],
    })
    p = oc.paired_scores(s).set_index("client_id")
    cols = ["n_attended", "phq9_first", "phq9_last", "gad7_first", "gad7_last"]
    assert p.loc["A", cols].tolist() == [3, 15, 8, 10, 6]
    assert np.isnan(p.loc["B", "phq9_last"]) and p.loc["B", "phq9_n"] == 1  # one score is not a pair
    tt = oc.talking_therapies(p.reset_index()).set_index("client_id")
    assert tt.loc["A", "category"] == "reliable_recovery" and tt.loc["B", "category"] == "incomplete_scores"


# --------------------------------------------------------------------------------------------
# per client and per clinician
# --------------------------------------------------------------------------------------------

def weekly(series: dict, clinician="T01", column="ors_total") -> pd.DataFrame:
    rows = []
    for cid, values in series.items():
        for i, v in enumerate(values):
            rows.append({"client_id": cid, "clinician_id": clinician if isinstance(clinician, str) else clinician[cid],
                         "session_date": pd.Timestamp("2025-01-06") + pd.Timedelta(weeks=i),
                         "attendance": "attended", column: np.nan if v is None else float(v)})
    return pd.DataFrame(rows)


def test_client_outcomes_hand_cases():
    s = weekly({"A": [12, 13, 12, 22, 23, 24, 26],   # ORS: gain 12 -> 22 at 3->4, recovered (26 > 25)
                "B": [30, None, 24],                 # -6: reliable deterioration, functional -> clinical: harmed
                "C": [18],                            # one score: no category
                "D": [20, 21, 24, 25]})              # +5 exactly: improved (stays <= 25: clinical)
    co = oc.client_outcomes(s).set_index("client_id")
    assert co.loc["A", ["first_score", "latest_score", "change", "category"]].tolist() == [12, 26, 14, "recovered"]
    assert co.loc["A", "n_sudden_gains"] == 1 and co.loc["A", "first_gain_session"] == 3
    assert co.loc["A", "first_gain_magnitude"] == 10 and not co.loc["A", "gain_reversed"]
    assert co.loc["B", ["n_sessions", "n_measured", "latest_session", "category"]].tolist() == [3, 2, 3, "harmed"]
    assert co.loc["B", "reliable_deterioration"]
    assert pd.isna(co.loc["C", "category"]) and np.isnan(co.loc["C", "latest_score"])
    assert co.loc["D", "category"] == "improved"
    assert co.loc["D", "clinical_first"] and not co.loc["D", "functional_latest"]
    phq = oc.client_outcomes(weekly({"E": [14, 8]}, column="phq9_total"), instrument="phq9").iloc[0]
    assert phq["improvement"] == 6 and phq["category"] == "recovered"  # lower is better, 8 < 10


def test_client_outcomes_match_plain_pandas_on_the_demo(demo):
    cl, _ = demo
    co = oc.client_outcomes(cl.sessions, instrument="ors", clients=cl.clients)
    a = cl.sessions[cl.sessions["attendance"] == "attended"].sort_values(["client_id", "session_date"])
    m = a[a["ors_total"].notna()]
    first = m.groupby("client_id")["ors_total"].first()
    last = m.groupby("client_id")["ors_total"].last().where(m.groupby("client_id").size() >= 2)
    c = co.set_index("client_id")
    pd.testing.assert_series_equal(c["first_score"].dropna(), first, check_names=False)
    pd.testing.assert_series_equal(c["latest_score"].dropna(), last.dropna(), check_names=False)
    imp = last - first
    clinical = first <= 25
    recovered = clinical & (last > 25) & (imp >= 5)
    assert int(recovered.sum()) == int((c["category"] == "recovered").sum())
    assert int(((imp <= -5) & ~(~clinical & (last <= 25))).sum()) == int((c["category"] == "deteriorated").sum())
    assert c["open"].sum() == cl.clients["end_date"].isna().sum()


def test_clinician_outcomes_rates_and_intervals(demo):
    cl, _ = demo
    co = oc.client_outcomes(cl.sessions, instrument="ors", clients=cl.clients)
    cc = oc.clinician_outcomes(co).set_index("scope")
    assert list(cc.index)[-1] == "service" and len(cc) == co["clinician_id"].nunique() + 1
    has = co[co["category"].notna()]
    assert cc.loc["service", "n"] == len(has)
    for cat in oc.JT_CATEGORIES:
        k = int((has["category"] == cat).sum())
        assert cc.loc["service", f"n_{cat}"] == k
        assert (cc.loc["service", f"{cat}_lower"], cc.loc["service", f"{cat}_upper"]) == pytest.approx(
            wilson_interval(k, len(has)))
    t = has[has["clinician_id"] == "T01"]
    reliably = t["category"].isin(["recovered", "improved"]).mean()
    assert cc.loc["T01", "reliably_improved_rate"] == pytest.approx(reliably)
    assert cc.loc["T01", "mean_improvement"] == pytest.approx(t["improvement"].mean())
    closed = oc.clinician_outcomes(co, closed_only=True).set_index("scope")
    assert closed.loc["service", "n"] == int((has["open"] == False).sum())  # noqa: E712


# --------------------------------------------------------------------------------------------
# expected treatment response: hand-computed cases
# --------------------------------------------------------------------------------------------

def etr_tables():
    """20 closed reference clients, intake 15, session-2 improvements 0..19 (ORS, higher better);
    np.quantile: p10 = 1.9, p25 = 4.75, p50 = 9.5. Only 5 of them have a session 3."""
    series, ended = {}, {}
    for i in range(20):
        series[f"R{i:02d}"] = [15, 15 + i] + ([15 + i] if i < 5 else [])
        ended[f"R{i:02d}"] = True
    open_ = {"A": [15, 16.0],      # improvement 1.0 < p10: not on track (below the failure band)
             "B": [15, 18.0],      # 3.0: between p10 and p25: at risk
             "C": [15, 16.9],      # exactly p10 (1.9): not strictly below -> at risk
             "D": [15, 19.75],     # exactly p25 (4.75): on track
             "E": [15, 10.0],      # -5 = reliable deterioration (inclusive): not on track
             "F": [15, 15, 15],    # session 3: only 5 reference episodes -> not enough reference data
             "G": [15, 12, 9],     # session 3, -6: reliable deterioration decides without reference
             "H": [15],            # intake only
             "I": [None, None]}    # never measured
    series.update(open_)
    s = weekly(series)
    clients = pd.DataFrame({"client_id": list(series), "clinician_id": "T01",
                            "end_date": [pd.Timestamp("2025-06-01") if c in ended else pd.NaT for c in series]})
    return s, clients


def test_expected_trajectories_hand_case():
    s, clients = etr_tables()
    ref = oc.expected_trajectories(s, clients=clients, intake_bands=1, min_reference=20, pool_later_sessions=False)
    r2 = ref[ref["session_number"] == 2].iloc[0]
    assert (r2["n_reference"], r2["enough"]) == (20, True)
    assert (r2["p10"], r2["p25"], r2["p50"], r2["p75"], r2["p90"]) == pytest.approx((1.9, 4.75, 9.5, 14.25, 17.1))
    r3 = ref[ref["session_number"] == 3].iloc[0]
    assert r3["n_reference"] == 5 and not r3["enough"] and np.isnan(r3[["p10", "p50", "p90"]].astype(float)).all()
    assert ref.attrs["n_reference_episodes"] == 20  # open clients are never reference
    # pooled (the default): session 3 takes every episode from session 2 on, each at its session nearest 3
    pooled = oc.expected_trajectories(s, clients=clients, intake_bands=1, min_reference=20)
    p3 = pooled[pooled["session_number"] == 3].iloc[0]
    assert p3["pooled"] and p3["enough"] and p3["n_reference"] == 20 and (p3["pooled_from"], p3["pooled_to"]) == (2, 3)


def test_track_status_hand_cases():
    s, clients = etr_tables()
    ts = oc.track_status(s, clients=clients, intake_bands=1, min_reference=20,
                         pool_later_sessions=False).set_index("client_id")
    want = {"A": "not_on_track", "B": "at_risk", "C": "at_risk", "D": "on_track", "E": "not_on_track",
            "F": "not_enough_reference_data", "G": "not_on_track", "H": "too_early", "I": "not_measured"}
    assert ts["status"].to_dict() == want
    assert "reliable deterioration" in ts.loc["E", "reason"] and "failure band" in ts.loc["A", "reason"]
    assert "not enough reference data" in ts.loc["F", "reason"]
    assert np.isnan(ts.loc["F", "expected_median"])  # never an invented band
    assert ts.loc["A", "expected_failure"] == pytest.approx(15 + 1.9)
    assert ts.loc["A", "expected_median"] == pytest.approx(24.5)
    assert ts.loc["G", "reliable_deterioration"] and not ts.loc["A", "reliable_deterioration"]
    assert set(ts.index) == set(want)  # closed reference clients are left out (open_only)
    pooled = oc.track_status(s, clients=clients, intake_bands=1, min_reference=20).set_index("client_id")
    assert pooled.loc["F", "status"] != "not_enough_reference_data" and pooled.loc["F", "n_reference"] == 20
    assert pooled.drop(index="F")["status"].to_dict() == {k: v for k, v in want.items() if k != "F"}


def test_track_status_lower_is_better_and_bands():
    # PHQ-9: two intake groups (8 and 20), session-2 improvements 0..19 in each; a client at intake
    # 20 whose score rises is worse than the band, one whose score falls 12 is on track
    series, ended = {}, {}
    for g, intake in enumerate((8, 20)):
        for i in range(20):
            cid = f"R{g}{i:02d}"
            series[cid] = [intake, intake - i * (0.3 if intake == 8 else 1)]
            ended[cid] = True
    series.update({"X": [20, 21], "Y": [20, 8], "Z": [8, 8]})
    s = weekly(series, column="phq9_total")
    clients = pd.DataFrame({"client_id": list(series), "clinician_id": "T01",
                            "end_date": [pd.Timestamp("2025-06-01") if c in ended else pd.NaT for c in series]})
    ref = oc.expected_trajectories(s, clients=clients, instrument="phq9", intake_bands=2, min_reference=20)
    assert ref["band"].nunique() == 2 and ref.loc[ref["band"] == 1, "band_from"].iloc[0] == pytest.approx(14.0)
    ts = oc.track_status(s, clients=clients, instrument="phq9", intake_bands=2, min_reference=20).set_index("client_id")
    assert ts.loc["X", "status"] == "not_on_track" and ts.loc["X", "band"] == 1
    assert ts.loc["Y", "status"] == "on_track"
    # band 0 improved 0..5.7: p10 = 0.57, so no change at intake 8 is below the failure band
    assert ts.loc["Z", "band"] == 0 and ts.loc["Z", "status"] == "not_on_track"
    # lower is better: the failure boundary is the higher score
    assert ts.loc["X", "expected_failure"] > ts.loc["X", "expected_median"]


def test_track_status_options():
    s, clients = etr_tables()
    with pytest.raises(ValueError, match="failure_percentile"):
        oc.track_status(s, clients=clients, failure_percentile=5)
    with pytest.raises(ValueError, match="must not exceed"):
        oc.track_status(s, clients=clients, failure_percentile=25, risk_percentile=10)
    per = oc.track_status(s, clients=clients, intake_bands=1, per_session=True)
    assert set(per.loc[per["session_number"] == 1, "status"]) == {"too_early"}
    assert (per.groupby("client_id")["session_number"].max() >= 1).all()


# --------------------------------------------------------------------------------------------
# not on track on the demo clinic (ground truth)
# --------------------------------------------------------------------------------------------

def test_demo_track_status_matches_a_plain_recomputation(demo):
    cl, _ = demo
    ts = oc.track_status(cl.sessions, clients=cl.clients, instrument="ors")
    a = cl.sessions[cl.sessions["attendance"] == "attended"].sort_values(["client_id", "session_date"]).copy()
    a["k"] = a.groupby("client_id").cumcount() + 1
    m = a[a["ors_total"].notna()].copy()
    m["intake"] = m.groupby("client_id")["ors_total"].transform("first")
    closed = cl.clients.set_index("client_id")["end_date"].notna()
    m["closed"] = m["client_id"].map(closed)
    ref = m[m["closed"] & (m.groupby("client_id")["ors_total"].transform("size") >= 2)]
    intakes = ref.groupby("client_id")["intake"].first()
    edges = np.unique(np.quantile(intakes, [1 / 3, 2 / 3]))
    checked = 0
    for _, row in ts[ts["status"].isin(["on_track", "at_risk", "not_on_track"])].iterrows():
        band = np.searchsorted(edges, row["intake_score"], side="right")
        in_band = ref[np.searchsorted(edges, ref["intake"], side="right") == band]
        same = in_band[in_band["k"] == row["session_number"]]
        if len(same) < 20:  # pooled later sessions: from J (20th-latest last session) on, one per episode
            J = np.sort(in_band.groupby("client_id")["k"].max().to_numpy())[::-1][19]
            pool = in_band[in_band["k"] >= min(row["session_number"], J)].assign(
                d=lambda f: (f["k"] - row["session_number"]).abs(), neg=lambda f: -f["k"])
            same = pool.sort_values(["client_id", "d", "neg"]).groupby("client_id").head(1)
            assert len(same) == row["n_reference"]
        imp = same["ors_total"] - same["intake"]
        improvement = row["score"] - row["intake_score"]
        if improvement <= -5:
            expect = "not_on_track"
        else:
            assert len(imp) >= 20
            p10, p25 = np.percentile(imp, 10), np.percentile(imp, 25)
            expect = ("not_on_track" if improvement < p10 - 1e-9
                      else "at_risk" if improvement < p25 - 1e-9 else "on_track")
        assert row["status"] == expect, row
        checked += 1
    assert checked >= 30


def test_demo_clients_with_a_planted_gain_are_not_flagged(demo):
    """Ground truth: a planted sudden gain of 7-11 ORS points lifts a client above the trajectory of
    similar clients. Where the gain is still there at the latest session (the latest score keeps
    at least half of it above the pregain score), the client is never 'not on track'; and clients
    with a planted gain are flagged less often than the others."""
    cl, gt = demo
    sg = gt["sudden_gains"]
    sg = sg[sg["measures"].str.contains("ors")]
    ts = oc.track_status(cl.sessions, clients=cl.clients, instrument="ors", open_only=False)
    decided = ts[ts["status"].isin(["on_track", "at_risk", "not_on_track"])]
    ss = oc.session_scores(cl.sessions, instrument="ors")
    at = ss.set_index(["client_id", "session_date"])["score"]
    pre = at.reindex(pd.MultiIndex.from_arrays([sg["client_id"], pd.to_datetime(sg["pregain_date"])])).to_numpy()
    kept = sg.assign(threshold=pre + sg["magnitude_ors"].to_numpy(dtype=float) / 2)
    d = decided.merge(kept[["client_id", "threshold", "postgain_date"]], on="client_id")
    last_date = ss.groupby("client_id")["session_date"].max().reindex(d["client_id"]).to_numpy()
    d = d[pd.to_datetime(d["postgain_date"]).to_numpy() <= last_date]
    persistent = d[d["score"] >= d["threshold"]]
    assert len(persistent) >= 10
    assert (persistent["status"] != "not_on_track").all(), persistent
    assert (persistent["status"] == "on_track").mean() >= 0.8
    others = decided[~decided["client_id"].isin(sg["client_id"])]
    assert (d["status"] == "not_on_track").mean() < (others["status"] == "not_on_track").mean()


def test_demo_planted_deterioration_makes_a_client_not_on_track(demo):
    """A demo client on track, given a planted fall at the latest session: reliable deterioration ->
    not on track; a fall just below the failure band (smaller than the reliable change) -> not on
    track; between the failure and risk percentiles -> at risk."""
    cl, _ = demo
    ts = oc.track_status(cl.sessions, clients=cl.clients, instrument="ors")
    cand = ts[(ts["status"] == "on_track") & (ts["expected_failure"] - ts["intake_score"] > -4.5)
              & (ts["expected_risk"] - ts["expected_failure"] > 0.6)]
    assert len(cand), "no on-track open client with room between the bands"
    row = cand.iloc[0]
    cid, k = row["client_id"], int(row["session_number"])
    s = cl.sessions
    att = s[(s["client_id"] == cid) & (s["attendance"] == "attended")].sort_values("session_date")
    idx = att.index[k - 1]

    def status_with(value):
        mod = s.copy()
        mod.loc[idx, "ors_total"] = value
        out = oc.track_status(mod, clients=cl.clients, instrument="ors").set_index("client_id")
        return out.loc[cid, "status"], out.loc[cid, "reason"]

    st, reason = status_with(row["intake_score"] - 5.0)
    assert st == "not_on_track" and "reliable deterioration" in reason
    st, reason = status_with(row["expected_failure"] - 0.2)
    assert st == "not_on_track" and "failure band" in reason
    st, _ = status_with((row["expected_failure"] + row["expected_risk"]) / 2)
    assert st == "at_risk"
    assert (s["ors_total"].equals(cl.sessions["ors_total"]))  # the caseload itself is untouched


def test_demo_sudden_gains_find_most_planted_gains(demo):
    cl, gt = demo
    ss = oc.session_scores(cl.sessions, instrument="ors")
    g = oc.sudden_gains(ss, sg_crit1_cutoff=5, higher_is_better=True)
    dates = ss.set_index(["client_id", "session_number"])["session_date"]
    g["pre_date"] = dates.reindex(pd.MultiIndex.from_arrays([g["client_id"], g["pregain_time"]])).to_numpy()
    g["post_date"] = dates.reindex(pd.MultiIndex.from_arrays([g["client_id"], g["postgain_time"]])).to_numpy()
    planted = gt["sudden_gains"]
    planted = planted.assign(postgain_date=pd.to_datetime(planted["postgain_date"]))
    hit = planted.merge(g, left_on=["client_id", "postgain_date"], right_on=["client_id", "post_date"])
    assert len(hit) >= 0.5 * len(planted)
    assert (hit["magnitude"] >= 5).all()


# --------------------------------------------------------------------------------------------
# clinician effects and shrinkage
# --------------------------------------------------------------------------------------------

def effects_input(seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    for cid, n, eff in (("A", 20, 3.0), ("B", 20, -3.0), ("C", 25, 0.0), ("D", 5, 10.0)):
        intake = rng.uniform(5, 24, n)
        latest = 8 + 0.6 * intake + eff + rng.normal(0, 3, n)
        for i, l in zip(intake, latest):
            rows.append({"clinician_id": cid, "first_score": i, "latest_score": l, "clinical_first": True,
                         "open": False, "change": l - i, "improvement": l - i})
    return pd.DataFrame(rows)


def test_clinician_effects_recomputed_by_hand():
    co = effects_input()
    ce = oc.clinician_effects(co, min_cases=15, confidence=0.90, tau2_uncertainty=False).set_index("clinician_id")
    slope, intercept = np.polyfit(co["first_score"], co["latest_score"], 1)
    resid = co["latest_score"] - (intercept + slope * co["first_score"])
    g = resid.groupby(co["clinician_id"])
    mean, n = g.mean(), g.size()
    sigma2 = float(sum(((v - v.mean()) ** 2).sum() for _, v in g)) / (len(co) - 4)
    v = sigma2 / n
    w = 1 / v
    ybar = (w * mean).sum() / w.sum()
    q = (w * (mean - ybar) ** 2).sum()
    tau2 = max(0.0, (q - 3) / (w.sum() - (w ** 2).sum() / w.sum()))
    wr = 1 / (v + tau2)
    mu = (wr * mean).sum() / wr.sum()
    b = tau2 / (tau2 + v)
    post = mu + b * (mean - mu)
    sd = np.sqrt(b * v + (1 - b) ** 2 / wr.sum())
    z = stats.norm.ppf(0.95)
    for cid in ("A", "B", "C"):
        assert ce.loc[cid, "estimated"]
        assert ce.loc[cid, "effect"] == pytest.approx(post[cid])
        assert ce.loc[cid, "effect_lower"] == pytest.approx(post[cid] - z * sd[cid])
        assert ce.loc[cid, "shrinkage"] == pytest.approx(b[cid])
    assert not ce.loc["D", "estimated"] and np.isnan(ce.loc["D", "effect"]) and ce.loc["D", "n_cases"] == 5
    assert "fewer than 15" in ce.loc["D", "note"]
    assert ce.loc["A", "effect"] > ce.loc["C", "effect"] > ce.loc["B", "effect"]
    # shrunken towards the service: closer to mu than the raw mean
    assert abs(ce.loc["A", "effect"] - mu) < abs(ce.loc["A", "mean_residual"] - mu)
    assert ce.attrs["tau2"] == pytest.approx(tau2)


def test_clinician_effects_direction_and_case_selection():
    co = effects_input()
    flipped = co.assign(first_score=40 - co["first_score"], latest_score=40 - co["latest_score"],
                        change=-(co["latest_score"] - co["first_score"]), improvement=co["improvement"])
    a = oc.clinician_effects(co).set_index("clinician_id")["effect"]
    b = oc.clinician_effects(flipped).set_index("clinician_id")["effect"]
    pd.testing.assert_series_equal(a, b)  # positive = better whatever the scale's direction
    co2 = co.copy()
    co2.loc[co2["clinician_id"] == "A", "open"] = True
    assert oc.clinician_effects(co2).set_index("clinician_id").loc["A", "n_cases"] == 0
    assert oc.clinician_effects(co2, closed_only=False).set_index("clinician_id").loc["A", "n_cases"] == 20


def test_clinician_effects_on_the_demo(demo):
    cl, _ = demo
    co = oc.client_outcomes(cl.sessions, instrument="ors", clients=cl.clients)
    ce = oc.clinician_effects(co)
    use = co[co["clinical_first"].fillna(False).astype(bool) & co["latest_score"].notna() & ~co["open"]]
    n = use.groupby("clinician_id").size()
    assert ce.set_index("clinician_id")["n_cases"].to_dict() == n.reindex(ce["clinician_id"], fill_value=0).to_dict()
    assert (ce["estimated"] == (ce["n_cases"] >= 15)).all()
    assert ce.loc[~ce["estimated"], "effect"].isna().all()
    est = ce[ce["estimated"]]
    assert ((est["effect_lower"] <= est["effect"]) & (est["effect"] <= est["effect_upper"])).all()


def test_dersimonian_laird_and_normal_shrinkage_by_hand():
    # y = 0, 4 with v = 1: Q = 8, tau2 = (8 - 1) / (2 - 1) = 7; B = 7/8; posterior 0.25, 3.75;
    # var = 7/8 + (1/8)^2 * Var(mu) with Var(mu) = 1 / (2/8) = 4 -> 0.9375
    mu, tau2 = dersimonian_laird([0, 4], [1, 1])
    assert (mu, tau2) == (2.0, 7.0)
    eb = normal_shrinkage([0.0, 4.0], [1.0, 1.0], confidence=0.95)
    np.testing.assert_allclose(eb["posterior"], [0.25, 3.75])
    np.testing.assert_allclose(eb["posterior_sd"], np.sqrt([0.9375, 0.9375]))
    np.testing.assert_allclose(eb["shrinkage"], [7 / 8, 7 / 8])
    # no between-unit variance: everything pooled to the mean
    eb0 = normal_shrinkage([0.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    assert eb0["tau2"] == 0.0 and np.allclose(eb0["posterior"], 1.0)
    assert dersimonian_laird([3.0], [2.0]) == (3.0, 0.0)
    with pytest.raises(ValueError, match="> 0"):
        normal_shrinkage([1.0, 2.0], [0.0, 1.0])


def test_beta_binomial_shrinkage():
    eb = beta_binomial_shrinkage([3, 0], [10, 0], prior=(2.0, 8.0))
    assert eb["estimate"][0] == pytest.approx(5 / 20) and eb["estimate"][1] == pytest.approx(0.2)
    assert eb["lower"][0] == pytest.approx(stats.beta.ppf(0.025, 5, 15))
    assert eb["upper"][0] == pytest.approx(stats.beta.ppf(0.975, 5, 15))
    rng = np.random.default_rng(11)
    p = rng.beta(10, 30, 400)
    n = np.full(400, 50)
    k = rng.binomial(n, p)
    a, b = beta_binomial_prior(k, n)
    assert a / (a + b) == pytest.approx(0.25, abs=0.02) and 20 < a + b < 80
    assert np.isnan(beta_binomial_prior([1], [4])[0])


def test_beta_binomial_shrinkage_estimate_alone():
    k, n = [3, 0, 7, 12], [10, 4, 9, 30]
    full = beta_binomial_shrinkage(k, n)
    est = beta_binomial_shrinkage(k, n, interval=False)
    assert np.array_equal(est["estimate"], full["estimate"]) and (est["alpha"], est["beta"]) == (full["alpha"], full["beta"])
    assert np.isnan(est["lower"]).all() and np.isnan(est["upper"]).all()


# --------------------------------------------------------------------------------------------
# figures, as data
# --------------------------------------------------------------------------------------------

def test_trajectory_figure(demo):
    s, clients = etr_tables()
    per = oc.track_status(s, clients=clients, intake_bands=1, per_session=True)
    fig = fo.outcome_trajectory(per, client_id="A")
    names = [t.name for t in fig.data]
    assert "Scores" in names and "Expected (median)" in names and "Expected range (10th-90th percentile)" in names
    scores = fig.data[names.index("Scores")]
    assert list(scores.x) == [1, 2] and list(scores.y) == [15, 16]
    med = fig.data[names.index("Expected (median)")]
    assert list(med.y) == pytest.approx([24.5])
    shapes = {sh.type: sh for sh in fig.layout.shapes}
    assert shapes["line"].y0 == 25  # ORS cut-off
    assert (shapes["rect"].y0, shapes["rect"].y1) == (10, 20)  # intake 15 +/- 5
    assert "not on track" in fig.layout.title.subtitle.text
    # sudden gains marked at pregain -> postgain
    cl, _ = demo
    ss = oc.session_scores(cl.sessions)
    g = oc.sudden_gains(ss, sg_crit1_cutoff=5, higher_is_better=True)
    cid = g["client_id"].iloc[0]
    fig = fo.outcome_trajectory(oc.track_status(cl.sessions, clients=cl.clients, per_session=True, open_only=False),
                                client_id=cid, gains=g)
    gtr = [t for t in fig.data if t.name and t.name.startswith("Sudden gain")]
    first = g[g["client_id"] == cid].iloc[0]
    assert gtr and list(gtr[0].x[:2]) == [first["pregain_time"], first["postgain_time"]]
    assert fo.outcome_trajectory(per, client_id="I").layout.annotations[0].text.startswith("No ors score")


def test_jacobson_figure(demo):
    cl, _ = demo
    co = oc.client_outcomes(cl.sessions, instrument="ors", clients=cl.clients)
    fig = fo.jacobson_plot(co)
    marks = {t.name.split(" (")[0]: len(t.x) for t in fig.data if t.mode == "markers"}
    for cat, (label, _, _) in fo.CATEGORY_STYLE.items():
        assert marks.get(label, 0) == int((co["category"] == cat).sum())
    names = [t.name for t in fig.data]
    assert "No change" in names and "Reliable change boundary (\u00b15)" in names and "Clinical cut-off (25)" in names
    cut = fig.data[names.index("Clinical cut-off (25)")]
    assert cut.x[0] == 25 and cut.y[3] == 25
    n = int(co["category"].notna().sum())
    assert f"({n} clients)" in fig.layout.title.text


def test_caterpillar_figure():
    ce = oc.clinician_effects(effects_input())
    fig = fo.caterpillar_plot(ce)
    tr = fig.data[0]
    est = ce[ce["estimated"]].sort_values("effect")
    assert list(tr.y) == est["clinician_id"].tolist() and list(tr.x) == pytest.approx(est["effect"].tolist())
    assert list(tr.error_x.array) == pytest.approx((est["effect_upper"] - est["effect"]).tolist())
    assert "D" not in list(tr.y) and "D (5)" in fig.layout.title.subtitle.text
    assert "90%" in fig.layout.title.subtitle.text


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------

def test_outcome_options_follow_the_settings():
    opts = oc.outcome_options(None, oc.track_status)
    assert opts["min_reference"] == 20 and opts["percentiles"] == (10.0, 25.0, 50.0, 75.0, 90.0)
    eff = oc.outcome_options({"outcome": {"effect_confidence": 0.8, "min_cases": 10}}, oc.clinician_effects)
    assert eff == {"min_cases": 10, "confidence": 0.8, "closed_only": True, "tau2_uncertainty": True}
    assert oc.outcome_options(None, oc.clinician_outcomes) == {"confidence": 0.95}
    tt = oc.outcome_options(None, oc.talking_therapies)
    assert tt == {"phq9_caseness": 10.0, "gad7_caseness": 8.0, "phq9_reliable_change": 6.0,
                  "gad7_reliable_change": 4.0, "min_attended": 2, "no_opposite_deterioration": True}
    sg = oc.outcome_options(None, oc.client_outcomes)
    assert sg["sg_crit2_pct"] == 0.25 and sg["sg_crit3_critical_value"] == 2.776 and sg["instrument"] == "ors"
    # every [outcome] key is a keyword of some function
    funcs = [oc.jacobson_truax, oc.sudden_gains, oc.sudden_gains_by_person, oc.talking_therapies,
             oc.clinician_outcomes, oc.track_status, oc.clinician_effects, oc.client_outcomes]
    used = set()
    for f in funcs:
        used |= set(oc.outcome_options(None, f))
    renamed = {"confidence", "closed_only"}
    assert set(oc.outcome_options()) - used - {"effect_confidence", "effect_closed_only", "effect_tau2_uncertainty"} <= renamed


# --------------------------------------------------------------------------------------------
# the vectorised sudden-gain criteria and the shared score tables (service-scale path)
# --------------------------------------------------------------------------------------------

def _intervals_by_hand(long: pd.DataFrame, cut1, pct, crit3: bool, s: float) -> pd.DataFrame:
    """Tang & DeRubeis criteria interval by interval, person by person, in plain Python (the oracle)."""
    tcrit = {df: abs(stats.t.ppf(0.025, df)) for df in (2, 3, 4)}
    tmin, tmax = int(long["time"].min()), int(long["time"].max())
    rows = []
    for pid, g in long.groupby("id", sort=True):
        x = dict(zip(g["time"], g["score"]))

        def val(t):
            v = x.get(t, np.nan)
            return np.nan if v is None else float(v)
        for n in range(tmin + 1, tmax - 1):
            pre = [v for v in (val(n - 2), val(n - 1), val(n)) if not np.isnan(v)]
            post = [v for v in (val(n + 1), val(n + 2), val(n + 3)) if not np.isnan(v)]
            xn, xn1 = val(n), val(n + 1)
            known = not (np.isnan(xn) or np.isnan(xn1))
            d = s * (xn1 - xn)
            c = {}
            if cut1 is not None:
                c["crit1"] = (d >= cut1 - 1e-9) if known else None
            if pct is not None:
                c["crit2"] = (d >= pct * xn - 1e-9) if known else None
            enough = len(pre) >= 2 and len(post) >= 2
            if crit3:
                if enough:
                    sp = np.sqrt(((len(pre) - 1) * np.var(pre, ddof=1) + (len(post) - 1) * np.var(post, ddof=1))
                                 / (len(pre) + len(post) - 2))
                    c["crit3"] = s * (np.mean(post) - np.mean(pre)) > tcrit[len(pre) + len(post) - 2] * sp
                else:
                    c["crit3"] = None
            event = None if any(v is None for v in c.values()) else all(c.values())
            rows.append({"id": pid, "pregain_time": n, "n_pre": len(pre), "n_post": len(post),
                         **{k: c.get(k) for k in ("crit1", "crit2", "crit3")}, "event": event})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("cut1, pct, crit3, hib", [(5.0, 0.25, True, False), (None, None, True, False),
                                                    (3.0, None, False, True), (None, 0.2, True, True)])
def test_sudden_gain_intervals_match_a_person_by_person_recomputation(cut1, pct, crit3, hib):
    rng = np.random.default_rng(7)
    rows = [(f"P{i:02d}", t, float(np.round(rng.normal(22, 7), 1)))
            for i in range(40) for t in range(1, 11) if rng.random() > 0.2]  # gaps: missing occasions
    long = pd.DataFrame(rows, columns=["id", "time", "score"])
    long.loc[rng.random(len(long)) < 0.1, "score"] = np.nan  # and missing scores
    long = long.sample(frac=1, random_state=1)  # any row order
    iv = oc.sudden_gains(long, id="id", time="time", sg_crit1_cutoff=cut1, sg_crit2_pct=pct, sg_crit3=crit3,
                         higher_is_better=hib, intervals=True)
    want = _intervals_by_hand(long, cut1, pct, crit3, 1.0 if hib else -1.0)
    assert len(iv) == len(want) and iv["id"].tolist() == want["id"].tolist()
    assert iv["pregain_time"].tolist() == want["pregain_time"].tolist()
    for col in ("n_pre", "n_post"):
        assert iv[col].tolist() == want[col].tolist()
    for col in ("crit1", "crit2", "crit3", "event"):
        got = [None if pd.isna(v) else bool(v) for v in iv[col]]
        assert got == [None if v is None or (isinstance(v, float) and np.isnan(v)) else bool(v) for v in want[col]]
    ev = oc.sudden_gains(long, id="id", time="time", sg_crit1_cutoff=cut1, sg_crit2_pct=pct, sg_crit3=crit3,
                         higher_is_better=hib)
    events = iv[iv["event"].fillna(False).astype(bool)]
    assert ev[["id", "pregain_time"]].values.tolist() == events[["id", "pregain_time"]].values.tolist()


def test_shared_score_tables_give_the_same_outcome_tables(demo):
    cl, _ = demo
    s, c = cl.sessions, cl.clients
    scores = oc.outcome_scores(s, clients=c, instruments=["ors", "phq9"])
    assert list(scores) == ["ors", "phq9"]
    for inst, ss in scores.items():
        plain = oc.session_scores(s, instrument=inst)
        pd.testing.assert_frame_equal(ss[plain.columns.tolist()], plain)
        assert ss.columns.tolist() == [*plain.columns, "intake", "closed"]
        first = plain[plain["score"].notna()].groupby("client_id")["score"].first()
        pd.testing.assert_series_equal(ss["intake"], plain["client_id"].map(first), check_names=False)
        ended = c.set_index("client_id")["end_date"].notna()
        assert (ss["closed"] == plain["client_id"].map(ended).to_numpy()).all()
        pd.testing.assert_frame_equal(oc.client_outcomes(s, instrument=inst, clients=c, scores=ss),
                                      oc.client_outcomes(s, instrument=inst, clients=c))
        ref = oc.expected_trajectories(s, clients=c, instrument=inst, scores=ss)
        pd.testing.assert_frame_equal(ref, oc.expected_trajectories(s, clients=c, instrument=inst))
        for kw in ({}, {"per_session": True, "open_only": False}):
            pd.testing.assert_frame_equal(oc.track_status(s, clients=c, instrument=inst, scores=ss, reference=ref, **kw),
                                          oc.track_status(s, clients=c, instrument=inst, **kw))


def test_client_outcomes_with_a_given_score_table_in_any_row_order(demo):
    cl, _ = demo
    s, c = cl.sessions, cl.clients
    plain = oc.client_outcomes(s, instrument="ors", clients=c)
    ss = oc.session_scores(s, instrument="ors")
    pd.testing.assert_frame_equal(oc.client_outcomes(s, instrument="ors", clients=c, scores=ss), plain)
    dup = pd.concat([ss, ss.iloc[:1]], ignore_index=True)  # a session twice: refused, as sudden_gains does
    with pytest.raises(ValueError, match="one row per 'session_number'"):
        oc.client_outcomes(s, instrument="ors", scores=dup)
    with pytest.raises(ValueError, match="scores has no column"):
        oc.client_outcomes(s, instrument="ors", scores=ss.drop(columns="score"))


# --------------------------------------------------------------------------------------------
# issue #19: reversal search from n + 3 as R suddengains (setting sg_reversal_start)
# --------------------------------------------------------------------------------------------

def test_reversal_search_starts_at_n_plus_3_as_the_package():
    # pregain session 3 (20) -> postgain 4 (10): magnitude 10, reversal value 15. Session 5 (= n + 2) is 16,
    # beyond 15; from session 6 (n + 3) on the client stays at 10. suddengains (identify_sg_1to2 = FALSE)
    # starts at n + 3: no reversal. With sg_reversal_start = 2 the fall-back at n + 2 counts.
    data = pd.DataFrame({"client_id": "A", "session_number": range(1, 8), "score": [20, 21, 20, 10, 16, 10, 10]})
    ev = oc.sudden_gains(data, sg_crit1_cutoff=6, id="client_id", time="session_number", score="score")
    assert ev["pregain_time"].tolist() == [3] and ev["reversal_value"].tolist() == [15.0]
    assert not ev["reversal"].item() and pd.isna(ev["reversal_time"].item())
    ev2 = oc.sudden_gains(data, sg_crit1_cutoff=6, sg_reversal_start=2)
    assert ev2["reversal"].item() and ev2["reversal_time"].item() == 5
    # a fall-back at n + 3 counts under both
    late = data.assign(score=[20, 21, 20, 10, 10, 16, 10])
    assert oc.sudden_gains(late, sg_crit1_cutoff=6)["reversal_time"].item() == 6
    # the per-client table follows the same setting
    s = pd.DataFrame({"client_id": "A", "clinician_id": "T1", "attendance": "attended",
                      "session_date": pd.date_range("2025-01-06", periods=7, freq="7D"),
                      "phq9_total": [20, 21, 20, 10, 16, 10, 10]})
    co = oc.client_outcomes(s, instrument="phq9").set_index("client_id")
    assert co.loc["A", "n_sudden_gains"] == 1 and not co.loc["A", "gain_reversed"]
    assert oc.client_outcomes(s, instrument="phq9", sg_reversal_start=2).set_index("client_id").loc["A", "gain_reversed"]
    assert oc.outcome_options(None, oc.client_outcomes)["sg_reversal_start"] == 3
    with pytest.raises(ValueError, match="sg_reversal_start"):
        oc.sudden_gains(data, sg_crit1_cutoff=6, sg_reversal_start=1)


def test_core10_reliable_change_is_labelled_90_percent_or_rescaled():
    """Issue #19: CORE-10's reliable-change value of 6 is a 90 % value (Barkham et al. 2013); it is labelled,
    and can be rescaled to 95 % (6 x 1.96 / 1.645 = 7.15) so 'reliable' means one thing across instruments."""
    from scipy.stats import norm
    s = pd.DataFrame({"client_id": ["A", "A", "B", "B"], "clinician_id": "T1", "attendance": "attended",
                      "session_date": pd.to_datetime(["2025-01-06", "2025-02-03"] * 2),
                      "core10_total": [25.0, 18.0, 25.0, 15.0], "phq9_total": [20.0, 13.0, 20.0, 13.0]})
    co = oc.client_outcomes(s, instrument="core10").set_index("client_id")
    assert (co["reliable_change_confidence"] == 0.90).all() and (co["reliable_change"] == 6.0).all()
    assert co["reliable_improvement"].tolist() == [True, True]  # 7 and 10 points >= 6
    assert oc.clinician_outcomes(co.reset_index()).set_index("scope").loc["service", "reliable_change_confidence"] == 0.90
    ph = oc.client_outcomes(s, instrument="phq9")
    assert (ph["reliable_change_confidence"] == 0.95).all()
    r = oc.client_outcomes(s, instrument="core10", rescale_reliable_change=True).set_index("client_id")
    assert r["reliable_change"].iloc[0] == pytest.approx(6 * norm.ppf(0.975) / norm.ppf(0.95))  # 7.15
    assert (r["reliable_change_confidence"] == 0.95).all()
    assert r["reliable_improvement"].tolist() == [False, True]  # 7 < 7.15 <= 10
    assert oc.outcome_options(None, oc.client_outcomes)["rescale_reliable_change"] is False


# --------------------------------------------------------------------------------------------
# issue #19: expected bands cover long episodes (pooled later sessions); ended-while-worse listed
# --------------------------------------------------------------------------------------------

def _long_clinic(n_ref=30, ref_len=6, open_len=14, open_scores=None):
    """ORS: n_ref closed episodes of ref_len sessions improving 1 point a session from intake 15; one open
    client (O) with intake 15 measured for open_len sessions."""
    rows, clients = [], []
    for i in range(n_ref):
        cid = f"R{i:02d}"
        clients.append((cid, pd.Timestamp("2025-06-01")))
        for k in range(ref_len):
            rows.append((cid, k, 15.0 + k + (i % 5) * 0.2))
    clients.append(("O", pd.NaT))
    scores = open_scores or [15.0] * open_len
    for k, v in enumerate(scores):
        rows.append(("O", k, v))
    s = pd.DataFrame(rows, columns=["client_id", "k", "ors_total"])
    s["clinician_id"] = "T1"
    s["attendance"] = "attended"
    s["session_date"] = pd.Timestamp("2025-01-06") + pd.to_timedelta(s["k"] * 7, "D")
    c = pd.DataFrame(clients, columns=["client_id", "end_date"]).assign(clinician_id="T1", end_reason="planned",
                                                                         start_date=pd.Timestamp("2025-01-01"))
    return s.drop(columns="k"), c


def test_long_episodes_get_a_pooled_band_with_its_reference_n():
    s, c = _long_clinic(open_scores=[15.0] * 9 + [12.0])  # O: session 10, 3 points worse than intake
    ref = oc.expected_trajectories(s, clients=c, intake_bands=1, min_reference=20)
    r = ref.set_index("session_number")
    assert not r.loc[6, "pooled"] and r.loc[6, "n_reference"] == 30 and r.loc[6, "pooled_from"] == 6
    # every reference episode stops at session 6: from session 7 on the band pools sessions >= 6
    assert r.loc[10, "pooled"] and r.loc[10, "enough"] and r.loc[10, "n_reference"] == 30
    assert (r.loc[10, "pooled_from"], r.loc[10, "pooled_to"]) == (6, 6)
    assert r.loc[10, "p50"] == pytest.approx(r.loc[6, "p50"])
    ts = oc.track_status(s, clients=c, intake_bands=1, min_reference=20).set_index("client_id")
    assert ts.loc["O", "status"] == "not_on_track" and ts.loc["O", "n_reference"] == 30  # the C00330 case
    old = oc.track_status(s, clients=c, intake_bands=1, min_reference=20, pool_later_sessions=False)
    assert old.set_index("client_id").loc["O", "status"] == "not_enough_reference_data"
    # too few episodes in the band at all: still no invented band
    s2, c2 = _long_clinic(n_ref=12)
    assert oc.track_status(s2, clients=c2, intake_bands=1, min_reference=20).set_index("client_id").loc[
        "O", "status"] == "not_enough_reference_data"


def test_pooled_percentiles_use_each_episode_once_nearest_the_session():
    # 20 episodes measured at sessions 1..6 and 10 of them also at 7..8: at session 8 (10 episodes at 8,
    # fewer than 20) the pool is sessions >= 6 (J = 6), each episode once, at 8 when it has it, else at 6
    s, c = _long_clinic(n_ref=20, ref_len=6)
    sixth = pd.Timestamp("2025-01-06") + pd.Timedelta(days=35)
    extra = s[s["client_id"].isin([f"R{i:02d}" for i in range(10)]) & (s["session_date"] == sixth)]
    more = pd.concat([extra.assign(session_date=extra["session_date"] + pd.Timedelta(days=7 * j), ors_total=extra["ors_total"] + 10 * j)
                      for j in (1, 2)])
    s = pd.concat([s, more], ignore_index=True)
    ref = oc.expected_trajectories(s, clients=c, intake_bands=1, min_reference=20).set_index("session_number")
    assert ref.loc[8, "pooled"] and ref.loc[8, "n_reference"] == 20 and (ref.loc[8, "pooled_from"], ref.loc[8, "pooled_to"]) == (6, 8)
    intake = {f"R{i:02d}": 15.0 + (i % 5) * 0.2 for i in range(20)}
    vals = [15.0 + 5 + (i % 5) * 0.2 + (20 if i < 10 else 0) - intake[f"R{i:02d}"] for i in range(20)]
    assert ref.loc[8, "p50"] == pytest.approx(np.percentile(vals, 50))
    assert ref.loc[8, "p10"] == pytest.approx(np.percentile(vals, 10))


def test_clients_who_ended_worse_than_intake_are_listed():
    s = pd.DataFrame({"client_id": ["A", "A", "B", "B", "C", "C"], "clinician_id": "T1", "attendance": "attended",
                      "session_date": pd.to_datetime(["2025-01-06", "2025-02-03"] * 3),
                      "ors_total": [20.0, 18.0, 20.0, 26.0, 20.0, 17.0]})
    c = pd.DataFrame({"client_id": ["A", "B", "C"], "end_date": pd.to_datetime(["2025-03-01", "2025-03-01", None])})
    co = oc.client_outcomes(s, clients=c).set_index("client_id")
    assert co["ended_worse"].to_dict() == {"A": True, "B": False, "C": False}  # C is open: the track view's



# --------------------------------------------------------------------------------------------
# issue #19: clinician-effect intervals carry the uncertainty of the between-clinician variance
# --------------------------------------------------------------------------------------------

def test_tau2_qprofile_against_a_plain_bisection():
    from scipy.stats import chi2
    from supervision.metrics.stats import tau2_qprofile
    y, v = np.array([0.0, 4.0, 1.0, -2.0, 3.0]), np.array([1.0, 2.0, 0.5, 1.5, 1.0])

    def q(t):
        w = 1 / (v + t)
        return float(np.sum(w * (y - np.sum(w * y) / np.sum(w)) ** 2))

    def root(target):  # plain bisection on a decreasing function
        lo, hi = 0.0, 1000.0
        if q(0) <= target:
            return 0.0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if q(mid) > target else (lo, mid)
        return (lo + hi) / 2

    got = tau2_qprofile(y, v, confidence=0.95)
    assert got["lower"] == pytest.approx(root(chi2.ppf(0.975, 4)), abs=1e-8)
    assert got["upper"] == pytest.approx(root(chi2.ppf(0.025, 4)), abs=1e-8)
    assert got["q"] == pytest.approx(q(0)) and got["p"] == pytest.approx(chi2.sf(q(0), 4))
    same = tau2_qprofile([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert (same["lower"], same["upper"]) == (0.0, 0.0) and same["p"] == pytest.approx(1.0)


def test_clinician_effects_with_tau2_zero_say_no_one_differs_and_keep_honest_intervals():
    """The demo case: the estimated between-clinician variance is 0, so with tau^2 treated as known every
    clinician sits at the service mean with the same narrow interval whatever their raw mean residual."""
    rng = np.random.default_rng(6)  # a draw whose DerSimonian-Laird tau^2 is 0 (Q p = 0.43)
    rows = []
    for cid in "ABCDEF":
        intake = rng.uniform(5, 24, 16)
        latest = 8 + 0.6 * intake + rng.normal(0, 3, 16)
        rows += [{"clinician_id": cid, "first_score": i, "latest_score": l, "clinical_first": True, "open": False,
                  "change": l - i, "improvement": l - i} for i, l in zip(intake, latest)]
    co = pd.DataFrame(rows)
    known = oc.clinician_effects(co, tau2_uncertainty=False)
    ce = oc.clinician_effects(co)
    assert ce.attrs["tau2"] == 0.0 and known.attrs["tau2"] == 0.0
    width_known = (known["effect_upper"] - known["effect_lower"]).round(9)
    assert width_known.nunique() == 1  # everyone the same interval, blind to the raw means
    width = ce["effect_upper"] - ce["effect_lower"]
    assert (width > width_known + 1e-9).all()  # wider: tau^2 could be up to its Q-profile upper bound
    assert ((ce["effect_lower"] <= known["effect_lower"] + 1e-12) & (ce["effect_upper"] >= known["effect_upper"] - 1e-12)).all()
    assert ce.attrs["tau2_upper"] > 0 and ce.attrs["heterogeneity_p"] > 0.1 and ce.attrs["no_difference"]
    assert ce["note"].str.contains("no clinician differs from the service beyond chance").all()
    assert not ce["differs"].any()
    # a real difference is still found (planted +-3 points)
    big = oc.clinician_effects(effects_input()).set_index("clinician_id")
    assert not big.attrs["no_difference"] and big.loc["A", "differs"] and big.loc["B", "differs"]
    assert big.loc["A", "note"] == "estimated"
    assert oc.outcome_options(None, oc.clinician_effects)["tau2_uncertainty"] is True


# --------------------------------------------------------------------------------------------
# issue #19: a given total that disagrees with its items is reported, not loaded silently
# --------------------------------------------------------------------------------------------

def test_a_total_that_disagrees_with_its_items_is_reported(tmp_path):
    import shutil
    from supervision import demo_path, load_caseload
    from supervision.instruments.scoring import item_total_disagreements
    s = pd.DataFrame({"ors_1": [5.0, 8.0, 9.0], "ors_2": [5.0, 8.0, 9.0], "ors_3": [5.0, 8.0, 9.0],
                      "ors_4": [5.0, 8.1, None], "ors_total": [35.0, 32.2, 30.0], "source_row": [2, 3, 4]})
    bad = item_total_disagreements(s, ["ors"])
    # row 1: items 20 vs total 35; row 2: 32.1 vs 32.2 is rounding; row 3: an item missing, not compared
    assert bad[["source_row", "given_total", "item_total"]].values.tolist() == [[2, 35.0, 20.0]]
    # through the loader: a copy of the demo with one ORS total changed
    for f in demo_path().iterdir():
        if f.suffix == ".csv":
            shutil.copy(f, tmp_path / f.name)
    sessions = pd.read_csv(tmp_path / "sessions.csv", dtype=str, keep_default_na=False)
    full = (sessions[[f"ors_{i}" for i in range(1, 5)]] != "").all(axis=1) & (sessions["ors_total"] == "")
    i = int(np.flatnonzero(full.to_numpy())[0])
    items = sessions.loc[i, [f"ors_{k}" for k in range(1, 5)]].astype(float).sum()
    sessions.loc[i, "ors_total"] = "40.0" if items < 30 else "10.0"  # in range, far from the items
    sessions.to_csv(tmp_path / "sessions.csv", index=False)
    cl = load_caseload(tmp_path)
    rep = cl.report[cl.report["check"] == "total_items_mismatch"]
    assert len(rep) == 1 and rep["row"].item() == i + 2 and rep["severity"].item() == "warning"
    assert "the given total was used" in rep["problem"].item()
    strict = load_caseload(tmp_path, settings={"validation": {"item_total_tolerance": 40.0}})
    assert not (strict.report["check"] == "total_items_mismatch").any()
