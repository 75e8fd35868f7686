"""Session-focus metrics (supervision.metrics.focus) and figures (supervision.figures.focus).

Oracles: hand-made sessions whose answers are worked out in the comments, a plain-pandas
recomputation of the per-clinician counts, SciPy's Welch test for the item differences, the
shared Wilson helper, and the demo clinic's ground truth (who was planted check-in heavy or
drifting is read from ground_truth.json, never hard-coded).
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from scipy import stats

import supervision
from supervision.config import load_settings
from supervision.figures import focus as ff
from supervision.metrics.alliance import session_alliance
from supervision.metrics.focus import (
    FOCUS_CATEGORIES, client_focus, clinician_focus, focus_alliance_link, focus_options, session_focus,
)
from supervision.metrics.stats import wilson_interval

# --------------------------------------------------------------------------------------------
# hand-made caseload
# --------------------------------------------------------------------------------------------
# A (T01, goals mood;anxiety), attended sessions 1-9 (a cancelled one between 4 and 5 is ignored):
#   1 mood                                   on goal, agenda yes
#   2 check_in     secondary mood            check-in (off goal), goal in secondary, agenda no
#   3 skills       secondary mood;homework   technique (off goal), goal in secondary, agenda unknown
#   4 anxiety                                on goal, agenda yes
#   5 crisis_risk                            crisis (not off goal), agenda yes
#   6 trauma                                 a goal area nobody agreed (off goal), agenda no
#   7 (empty)                                not recorded, agenda yes
#   8 mood                                   on goal, agenda yes
#   9 mood                                   on goal, agenda yes
# B (T01, no agreed goals): check_in, mood (agenda not recorded)
# C (T02, grief): one session, grief
# D (T02, "mood;smalltalk" -> unknown goal code dropped): primary 'smalltalk' (unknown), secondary 'mood;bogus'
# E (T02, not in the clients table): mood
# F (T02, mood;anxiety): mood x4, anxiety only as a secondary focus in session 3

A = [("mood", None, True), ("check_in", "mood", False), ("skills", "mood;homework_review", None),
     ("anxiety", None, True), ("crisis_risk", None, True), ("trauma", None, False), (None, None, True),
     ("mood", None, True), ("mood", None, True)]
PLAN = {
    "A": ("T01", A),
    "B": ("T01", [("check_in", None, None), ("mood", None, None)]),
    "C": ("T02", [("grief", None, True)]),
    "D": ("T02", [("smalltalk", "mood;bogus", False)]),
    "E": ("T02", [("mood", None, True)]),
    "F": ("T02", [("mood", None, True), ("mood", None, True), ("mood", " anxiety ", True), ("mood", "", True)]),
}
GOALS = {"A": "mood;anxiety", "B": None, "C": "grief", "D": "mood;smalltalk", "F": "mood;anxiety"}


def make_tables():
    rows = []
    for cid, (tid, plan) in PLAN.items():
        for i, (primary, secondary, agenda) in enumerate(plan):
            rows.append({"client_id": cid, "clinician_id": tid,
                         "session_date": pd.Timestamp("2025-01-06") + pd.Timedelta(weeks=i),
                         "attendance": "attended", "focus_primary": primary, "focus_secondary": secondary,
                         "agenda_set": agenda})
    rows.append({"client_id": "A", "clinician_id": "T01", "session_date": pd.Timestamp("2025-02-04"),
                 "attendance": "cancelled", "focus_primary": "check_in", "focus_secondary": None, "agenda_set": None})
    s = pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)  # order must not matter
    s["focus_primary"] = s["focus_primary"].astype("str")
    s["focus_secondary"] = s["focus_secondary"].astype("str")
    s["agenda_set"] = s["agenda_set"].astype("boolean")
    c = pd.DataFrame({"client_id": list(GOALS), "clinician_id": [PLAN[k][0] for k in GOALS],
                      "agreed_goals": pd.array(list(GOALS.values()), dtype="str")})
    return s, c


@pytest.fixture(scope="module")
def tables():
    return make_tables()


@pytest.fixture(scope="module")
def sf(tables):
    s, c = tables
    return session_focus(s, c, load_settings())


def rows_of(frame, cid):
    return frame[frame["client_id"] == cid].reset_index(drop=True)


def as_list(values):
    return [None if pd.isna(v) else v for v in values]


# --------------------------------------------------------------------------------------------
# per session
# --------------------------------------------------------------------------------------------

def test_session_columns_and_categories(sf):
    a = rows_of(sf, "A")
    assert list(a["session_number"]) == list(range(1, 10))  # the cancelled session is not counted
    assert as_list(a["on_goal"]) == [True, False, False, True, False, False, None, True, True]
    assert as_list(a["check_in"]) == [False, True, False, False, False, False, None, False, False]
    assert as_list(a["crisis"]) == [False, False, False, False, True, False, None, False, False]
    assert as_list(a["off_goal"]) == [False, True, True, False, False, True, None, False, False]
    assert as_list(a["unagreed_goal_area"]) == [False, False, False, False, False, True, None, False, False]
    assert list(a["focus_category"]) == ["on_goal", "check_in", "other_off_goal", "on_goal", "crisis",
                                         "other_off_goal", "not_recorded", "on_goal", "on_goal"]
    assert list(a["focus_group"].fillna("-")) == ["goal_area", "check_in", "technique", "goal_area", "crisis",
                                                  "goal_area", "-", "goal_area", "goal_area"]
    assert a.loc[0, "focus_label"] == "Mood / depression"
    assert set(sf["focus_category"]) <= set(FOCUS_CATEGORIES)
    assert (a["agreed_goals"] == "mood;anxiety").all() and (a["n_agreed_goals"] == 2).all()


def test_secondary_foci_that_hit_a_goal(sf):
    a = rows_of(sf, "A")
    assert list(a["secondary_goals"]) == ["", "mood", "mood", "", "", "", "", "", ""]
    assert as_list(a["goal_in_secondary"]) == [False, True, True, False, False, False, False, False, False]
    # lenient reading: primary or secondary; session 7 (not recorded, no goal in secondary) is unknown
    assert as_list(a["goal_touched"]) == [True, True, True, True, False, False, None, True, True]
    f = rows_of(sf, "F")
    assert list(f["secondary_goals"]) == ["", "", "anxiety", ""]  # whitespace stripped, '' = none


def test_focus_changed_needs_both_sessions_recorded(sf):
    a = rows_of(sf, "A")
    # first session and the sessions next to the unrecorded one are unknown; 8 -> 9 is no change
    assert as_list(a["focus_changed"]) == [None, True, True, True, True, True, None, None, False]
    firsts = sf[sf["session_number"] == 1]
    assert firsts["focus_changed"].isna().all()  # never compared across clients


def test_no_agreed_goals_unknown_codes_and_missing_clients(sf):
    b = rows_of(sf, "B")
    assert not b["goals_recorded"].any() and (b["agreed_goals"] == "").all()
    assert b["on_goal"].isna().all() and b["off_goal"].isna().all()
    assert list(b["check_in"]) == [True, False]  # check-in is judged without goals
    assert list(b["focus_category"]) == ["check_in", "no_agreed_goals"]
    assert b["secondary_goals"].isna().all() and b["goal_in_secondary"].isna().all()
    d = rows_of(sf, "D")
    assert d.loc[0, "agreed_goals"] == "mood" and d.loc[0, "n_agreed_goals"] == 1  # 'smalltalk' dropped
    assert d.loc[0, "focus_primary"] == "smalltalk" and not d.loc[0, "focus_recorded"]
    assert pd.isna(d.loc[0, "focus_group"]) and pd.isna(d.loc[0, "focus_label"])
    assert d.loc[0, "focus_category"] == "not_recorded" and pd.isna(d.loc[0, "on_goal"])
    assert d.loc[0, "secondary_goals"] == "mood" and bool(d.loc[0, "goal_touched"])  # NA or True = True
    e = rows_of(sf, "E")
    assert not e.loc[0, "goals_recorded"] and e.loc[0, "focus_category"] == "no_agreed_goals"


def test_code_lists_keep_their_order_and_drop_repeats_and_unknown_codes(tables):
    s, c = tables
    c = c.copy()
    c["agreed_goals"] = c["agreed_goals"].astype(object)
    c.loc[c["client_id"] == "A", "agreed_goals"] = " anxiety ;mood;anxiety;;bogus"
    s = s.copy()
    s["focus_secondary"] = s["focus_secondary"].astype(object)
    s.loc[s["client_id"] == "C", "focus_secondary"] = "grief; mood ;grief;nonsense"
    sf = session_focus(s, c, load_settings())
    a = rows_of(sf, "A")
    assert set(a["agreed_goals"]) == {"anxiety;mood"} and set(a["n_agreed_goals"]) == {2}
    cc = rows_of(sf, "C")
    assert cc["secondary_goals"].tolist() == ["grief"] and cc["goal_in_secondary"].tolist() == [True]


def test_session_numbering_matches_alliance_and_input_untouched(tables):
    s, c = tables
    s0, c0 = s.copy(deep=True), c.copy(deep=True)
    out = session_focus(s, c, load_settings())
    pd.testing.assert_frame_equal(s, s0)
    pd.testing.assert_frame_equal(c, c0)
    sa = session_alliance(s.assign(srs_total=38.0))
    pd.testing.assert_frame_equal(out[["client_id", "session_date", "session_number"]],
                                  sa[["client_id", "session_date", "session_number"]])


def test_taxonomy_forms_and_missing_columns(tables):
    s, c = tables
    settings = load_settings()
    base = session_focus(s, c, settings)
    as_dicts = [{"code": x.code, "label": x.label, "group": x.group} for x in settings.focus_codes]
    pd.testing.assert_frame_equal(session_focus(s, c, as_dicts), base)
    pd.testing.assert_frame_equal(session_focus(s, c, pd.DataFrame(as_dicts)), base)
    pd.testing.assert_frame_equal(session_focus(s, c), base)
    # a custom taxonomy: 'trauma' as crisis makes session 6 of A a crisis session
    custom = {d["code"]: ("crisis" if d["code"] == "trauma" else d["group"]) for d in as_dicts}
    a6 = rows_of(session_focus(s, c, custom), "A").iloc[5]
    assert bool(a6["crisis"]) and not bool(a6["off_goal"])
    # no focus columns at all: everything not recorded, nothing fails
    bare = session_focus(s.drop(columns=["focus_primary", "focus_secondary", "agenda_set"]), c)
    assert (bare["focus_category"] == "not_recorded").all() and bare["agenda_set"].isna().all()
    with pytest.raises(ValueError, match="'agreed_goals'"):
        session_focus(s, c.drop(columns=["agreed_goals"]))
    with pytest.raises(ValueError, match="'attendance'"):
        session_focus(s.drop(columns=["attendance"]), c)
    with pytest.raises(ValueError, match="twice"):
        session_focus(s, c, as_dicts + as_dicts[:1])
    with pytest.raises(ValueError, match="agenda_set.*load_caseload"):
        session_focus(s.assign(agenda_set="maybe"), c)


def test_no_attended_sessions_gives_empty_frames(tables):
    s, c = tables
    sf0 = session_focus(s.assign(attendance="cancelled"), c)
    assert sf0.empty and "focus_category" in sf0.columns
    assert client_focus(sf0).empty
    cn0 = clinician_focus(sf0)
    assert list(cn0["scope"]) == ["service"] and cn0.loc[0, "n_sessions"] == 0 and np.isnan(cn0.loc[0, "coverage_rate"])
    assert focus_alliance_link(sf0, session_alliance(s.iloc[:0].assign(srs_total=1.0))).empty


# --------------------------------------------------------------------------------------------
# per client
# --------------------------------------------------------------------------------------------

def test_client_measures_worked_by_hand(sf):
    cf = client_focus(sf).set_index("client_id")
    a = cf.loc["A"]
    assert (a["n_sessions"], a["n_focus_recorded"], a["n_on_goal"]) == (9, 8, 4)
    assert a["goal_coverage"] == pytest.approx(4 / 8)  # crisis stays in the denominator
    assert a["check_in_share"] == pytest.approx(1 / 8) and a["crisis_share"] == pytest.approx(1 / 8)
    assert a["off_goal_share"] == pytest.approx(3 / 8) and a["unagreed_goal_share"] == pytest.approx(1 / 8)
    assert a["goal_touched_share"] == pytest.approx(6 / 8)
    # drift moves: only 5 -> 6 (crisis -> trauma, a goal area nobody agreed); 1 -> 2 check-in, 2 -> 3 technique,
    # 3 -> 4 back to a goal and 4 -> 5 crisis are not drift (issue #19); any change of focus: 5 of 6 pairs
    assert (a["n_pairs"], a["n_changes"]) == (6, 1) and a["drift_rate"] == pytest.approx(1 / 6)
    a_any = client_focus(sf, drift_definition="any_change").set_index("client_id").loc["A"]
    assert (a_any["n_pairs"], a_any["n_changes"]) == (6, 5) and a_any["drift_rate"] == pytest.approx(5 / 6)
    assert a["longest_off_goal_run"] == 2  # sessions 2-3; crisis (5) and not recorded (7) end runs
    assert (a["n_agenda_recorded"], a["n_agenda_set"]) == (8, 6) and a["agenda_rate"] == pytest.approx(0.75)
    # last 4 sessions (6-9): trauma, -, mood, mood -> anxiety neglected
    assert a["neglect_judged"] and a["neglected_goals"] == "anxiety" and a["n_neglected_goals"] == 1
    assert a["last_session_date"] == pd.Timestamp("2025-01-06") + pd.Timedelta(weeks=8)


def test_client_without_goals_is_unknown_not_zero(sf):
    b = client_focus(sf).set_index("client_id").loc["B"]
    assert not b["goals_recorded"]
    assert np.isnan(b["goal_coverage"]) and np.isnan(b["off_goal_share"]) and np.isnan(b["goal_touched_share"])
    assert b["check_in_share"] == pytest.approx(0.5)
    assert pd.isna(b["longest_off_goal_run"]) and not b["neglect_judged"] and pd.isna(b["neglected_goals"])
    assert pd.isna(b["n_neglected_goals"]) and np.isnan(b["agenda_rate"]) and b["n_agenda_recorded"] == 0


def test_single_session_unknown_focus_and_secondary_for_neglect(sf):
    cf = client_focus(sf).set_index("client_id")
    c = cf.loc["C"]
    assert c["goal_coverage"] == 1.0 and c["n_pairs"] == 0 and np.isnan(c["drift_rate"])
    assert c["longest_off_goal_run"] == 0 and not c["neglect_judged"]  # 1 session < 4
    d = cf.loc["D"]
    assert d["goals_recorded"] and d["n_focus_recorded"] == 0 and np.isnan(d["goal_coverage"])
    f = cf.loc["F"]  # anxiety only ever a secondary focus (session 3): counts as worked on
    assert f["neglect_judged"] and f["neglected_goals"] == "" and f["n_neglected_goals"] == 0
    f1 = client_focus(sf, neglected_after_sessions=1).set_index("client_id").loc["F"]
    assert f1["neglected_goals"] == "anxiety"
    a6 = client_focus(sf, neglected_after_sessions=6).set_index("client_id").loc["A"]
    assert a6["neglected_goals"] == ""  # anxiety was session 4
    c1 = client_focus(sf, neglected_after_sessions=1).set_index("client_id").loc["C"]
    assert c1["neglect_judged"] and c1["neglected_goals"] == ""
    with pytest.raises(ValueError, match="neglected_after_sessions"):
        client_focus(sf, neglected_after_sessions=0)


def test_client_focus_input_untouched_and_order_free(sf):
    before = sf.copy(deep=True)
    a = client_focus(sf)
    pd.testing.assert_frame_equal(sf, before)
    b = client_focus(sf.sample(frac=1.0, random_state=1))
    pd.testing.assert_frame_equal(a, b)
    assert list(a["client_id"]) == sorted(PLAN)


# --------------------------------------------------------------------------------------------
# per clinician
# --------------------------------------------------------------------------------------------

def recompute_clinicians(sf: pd.DataFrame, drift: str = "focus_drift") -> pd.DataFrame:
    """Plain-pandas oracle for the counts of clinician_focus."""
    f = pd.concat([sf, sf.assign(clinician_id="service")])
    b = lambda col: f[col].astype("boolean").fillna(False)  # noqa: E731
    g = f.assign(rec=b("focus_recorded"), judged=b("focus_recorded") & f["goals_recorded"], on=b("on_goal"),
                 ci=b("check_in"), cr=b("crisis"), un=b("unagreed_goal_area"), pair=f[drift].notna(),
                 ch=b(drift), ak=f["agenda_set"].notna(), ag=b("agenda_set")).groupby("clinician_id")
    return pd.DataFrame({"n_sessions": g.size(), "n_focus_recorded": g["rec"].sum(), "n_goal_judged": g["judged"].sum(),
                         "n_on_goal": g["on"].sum(), "n_check_in": g["ci"].sum(), "n_crisis": g["cr"].sum(),
                         "n_unagreed_goal_area": g["un"].sum(), "n_pairs": g["pair"].sum(), "n_changes": g["ch"].sum(),
                         "n_agenda_recorded": g["ak"].sum(), "n_agenda_set": g["ag"].sum()})


def test_clinician_rates_against_plain_recomputation(sf):
    cn = clinician_focus(sf)
    assert list(cn["scope"]) == ["T01", "T02", "service"]
    oracle = recompute_clinicians(sf).reindex(cn["scope"])
    for col in oracle.columns:
        assert list(cn[col]) == list(oracle[col].astype(int)), col
    any_change = clinician_focus(sf, drift_definition="any_change")
    oracle = recompute_clinicians(sf, "focus_changed").reindex(any_change["scope"])
    for col in ("n_pairs", "n_changes"):
        assert list(any_change[col]) == list(oracle[col].astype(int)), col
    assert any_change.set_index("scope").loc["T01", "drift_rate"] == pytest.approx(6 / 7)  # 5+1 of 6+1 pairs
    t1 = cn.set_index("scope").loc["T01"]
    # T01 = A + B: coverage 4 of 8 (B has no goals), check-in 2 of 10, drift 1 of A's 6 pairs (B: no goals)
    assert (t1["n_clients"], t1["n_clients_no_goals"], t1["n_sessions"]) == (2, 1, 11)
    assert t1["coverage_rate"] == pytest.approx(0.5) and t1["check_in_rate"] == pytest.approx(0.2)
    assert t1["drift_rate"] == pytest.approx(1 / 6) and t1["agenda_rate"] == pytest.approx(0.75)
    lo, hi = wilson_interval(4, 8, 0.95)
    assert (t1["coverage_rate_lower"], t1["coverage_rate_upper"]) == pytest.approx((lo, hi))
    lo, hi = wilson_interval(2, 10, 0.9)
    t1_90 = clinician_focus(sf, confidence=0.9).set_index("scope").loc["T01"]
    assert (t1_90["check_in_rate_lower"], t1_90["check_in_rate_upper"]) == pytest.approx((lo, hi))
    svc = cn.set_index("scope").loc["service"]
    assert svc["n_clients"] == len(PLAN) and svc["n_sessions"] == len(sf)
    # mean per-client coverage: A 0.5, C 1.0, F 1.0 (B, E no goals; D no recorded focus)
    assert svc["n_clients_coverage"] == 3 and svc["mean_client_coverage"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert (svc["n_neglect_judged"], svc["n_clients_neglected"]) == (2, 1)  # A (anxiety) and F (none)


def test_clinician_focus_accepts_client_frame_and_checks_options(sf):
    cf = client_focus(sf, neglected_after_sessions=1)
    a = clinician_focus(sf, client_focus_frame=cf)
    b = clinician_focus(sf, neglected_after_sessions=1)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="confidence"):
        clinician_focus(sf, confidence=95)
    with pytest.raises(ValueError, match="'on_goal'"):
        clinician_focus(sf.drop(columns=["on_goal"]))


# --------------------------------------------------------------------------------------------
# link to the client's own view
# --------------------------------------------------------------------------------------------

def link_tables():
    """Two clinicians, clients with goal mood; SRS items 2 (goals) and 3 (approach) per session."""
    rng = np.random.default_rng(7)
    rows = []
    for t, cids in (("T01", ["a1", "a2", "a3"]), ("T02", ["b1", "b2"])):
        for cid in cids:
            for i in range(8):
                primary = ["mood", "check_in", "mood", "crisis_risk", "skills", "mood", "mood", "check_in"][i]
                off = primary in ("check_in", "skills")
                rows.append({"client_id": cid, "clinician_id": t, "attendance": "attended",
                             "session_date": pd.Timestamp("2025-01-06") + pd.Timedelta(weeks=i),
                             "focus_primary": primary, "srs_1": 9.0,
                             "srs_2": round(float(rng.uniform(8, 10) - (1.0 if off else 0.0)), 1),
                             "srs_3": round(float(rng.uniform(8, 10)), 1), "srs_4": 9.0})
    s = pd.DataFrame(rows)
    s.loc[(s["client_id"] == "b2") & (s["focus_primary"] == "check_in"), "srs_2"] = np.nan  # unmeasured item
    c = pd.DataFrame({"client_id": ["a1", "a2", "a3", "b1", "b2"], "agreed_goals": "mood"})
    return s, c


def test_focus_alliance_link_against_scipy_welch():
    s, c = link_tables()
    sf_ = session_focus(s, c)
    sa = session_alliance(s)
    s0, sf0, sa0 = s.copy(deep=True), sf_.copy(deep=True), sa.copy(deep=True)
    ln = focus_alliance_link(sf_, sa, link_min_sessions=2)
    pd.testing.assert_frame_equal(sf_, sf0)
    pd.testing.assert_frame_equal(sa, sa0)
    pd.testing.assert_frame_equal(s, s0)
    assert list(ln["measure"].unique()) == ["goals_topics", "approach_method"]  # no WAI-SR in the data
    assert list(ln["scope"].unique()) == ["T01", "T02", "service"]
    j = sf_.merge(sa, on=["client_id", "session_number", "session_date", "clinician_id"])
    for scope in ("T01", "T02", "service"):
        part = j if scope == "service" else j[j["clinician_id"] == scope]
        for m in ("goals_topics", "approach_method"):
            on = part.loc[part["on_goal"].fillna(False).astype(bool), m].dropna()
            off = part.loc[part["off_goal"].fillna(False).astype(bool), m].dropna()  # crisis excluded
            row = ln[(ln["scope"] == scope) & (ln["measure"] == m)].iloc[0]
            assert (row["n_on_goal"], row["n_off_goal"]) == (len(on), len(off))
            assert row["mean_on_goal"] == pytest.approx(on.mean()) and row["mean_off_goal"] == pytest.approx(off.mean())
            res = stats.ttest_ind(off, on, equal_var=False)
            ci = res.confidence_interval(0.95)
            assert row["difference"] == pytest.approx(off.mean() - on.mean())
            assert (row["difference_lower"], row["difference_upper"]) == pytest.approx((ci.low, ci.high))
            assert row["df"] == pytest.approx(res.df)
    t2 = ln[(ln["scope"] == "T02") & (ln["measure"] == "goals_topics")].iloc[0]
    assert (t2["n_on_goal"], t2["n_off_goal"], t2["n_clients_off_goal"]) == (8, 4, 2)  # b2's check-ins unmeasured
    assert "not" in ln["interval_note"].iloc[0] and "independent" in ln["interval_note"].iloc[0]
    narrow = focus_alliance_link(sf_, sa, link_min_sessions=2, confidence=0.9)
    n90 = narrow[(narrow["scope"] == "T02") & (narrow["measure"] == "goals_topics")].iloc[0]
    assert n90["difference_upper"] < t2["difference_upper"]  # 90 % is narrower
    few = focus_alliance_link(sf_, sa, link_min_sessions=5).set_index(["scope", "measure"])
    assert not few.loc[("T02", "goals_topics"), "estimated"]  # 4 off-goal sessions < 5
    assert np.isnan(few.loc[("T02", "goals_topics"), "difference"])
    assert not np.isnan(few.loc[("T02", "goals_topics"), "mean_off_goal"])  # means still shown
    assert few.loc[("T02", "approach_method"), "estimated"]  # 6 off-goal sessions


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------

def test_focus_options_from_settings(tmp_path):
    assert focus_options() == {"neglected_after_sessions": 4, "drift_definition": "off_goal", "confidence": 0.95,
                               "link_min_sessions": 5}
    assert focus_options(None, client_focus) == {"neglected_after_sessions": 4, "drift_definition": "off_goal"}
    assert set(focus_options(None, focus_alliance_link)) == {"confidence", "link_min_sessions"}
    f = tmp_path / "s.toml"
    f.write_text("[focus_metrics]\nneglected_after_sessions = 6\n", encoding="utf-8")
    assert focus_options(f)["neglected_after_sessions"] == 6
    assert focus_options(f)["confidence"] == 0.95
    # the taxonomy section is untouched
    assert "check_in" in load_settings(f).focus_code_set


# --------------------------------------------------------------------------------------------
# figures, asserted as data
# --------------------------------------------------------------------------------------------

def test_timeline_traces_as_data(sf):
    fig = ff.focus_timeline(sf, clients=["A", "B"])
    by = {tr.meta: tr for tr in fig.data}
    assert list(by) == ["on_goal", "other_off_goal", "check_in", "crisis", "no_agreed_goals", "not_recorded"]
    assert list(by["on_goal"].x) == [1, 4, 8, 9]  # goals by their taxonomy labels, not their codes
    assert set(by["on_goal"].y) == {"A · Mood / depression, Anxiety / worry"}
    assert list(by["check_in"].x) == [2, 1] and list(by["check_in"].y) == ["A · Mood / depression, Anxiety / worry",
                                                                        "B · no agreed goals recorded"]
    assert list(by["crisis"].x) == [5] and list(by["not_recorded"].x) == [7]
    symbols = {m: tr.marker.symbol for m, tr in by.items()}
    assert len(set(symbols.values())) == len(symbols)  # readable without colour
    assert list(fig.layout.yaxis.categoryarray) == ["A · Mood / depression, Anxiety / worry", "B · no agreed goals recorded"]
    assert "2 clients" in fig.layout.title.text
    with pytest.raises(ValueError, match="not in the focus frame"):
        ff.focus_timeline(sf, clients=["Z"])
    assert len(ff.focus_timeline(sf.iloc[:0]).data) == 0


def test_caseload_overview_as_data(sf):
    cf = client_focus(sf)
    cn = clinician_focus(sf, client_focus_frame=cf)
    fig = ff.focus_caseload(cf, clinician_focus_frame=cn)
    by = {tr.meta: tr for tr in fig.data}
    # A: anxiety neglected; F: judged, none neglected; C: too few sessions; B, D, E not plotted
    assert list(by["neglected"].text) == ["A"] and list(by["neglected"].x) == [0.5]
    assert list(by["neglected"].y) == [pytest.approx(1 / 8)]
    assert list(by["ok"].text) == ["F"] and list(by["not_judged"].text) == ["C"]
    assert by["ok"].name.endswith("(1)")
    assert any("3 clients without agreed goals" in a.text for a in fig.layout.annotations)
    svc = cn.set_index("scope").loc["service"]
    xs = sorted(sh.x0 for sh in fig.layout.shapes if sh.x0 == sh.x1)
    assert xs == [pytest.approx(svc["coverage_rate"])]


def test_clinician_comparison_as_data(sf):
    cn = clinician_focus(sf)
    fig = ff.focus_clinician_comparison(cn, clinician_id="T02", rates=["coverage_rate", "check_in_rate"])
    cov = [tr for tr in fig.data if tr.meta == "coverage_rate"]
    assert [tr.name for tr in cov] == ["Clinicians", "Whole service", "T02 (this supervisee)"]
    clin = cov[0]
    assert list(clin.y) == ["T01", "T02"]
    exp = cn.set_index("scope").loc[["T01", "T02"]]
    np.testing.assert_allclose(clin.x, exp["coverage_rate"])
    np.testing.assert_allclose(np.asarray(clin.x) + np.asarray(clin.error_x.array), exp["coverage_rate_upper"])
    np.testing.assert_allclose(np.asarray(clin.x) - np.asarray(clin.error_x.arrayminus), exp["coverage_rate_lower"])
    assert cov[1].y == ("Whole service",)
    assert clin.marker.symbol != cov[1].marker.symbol != cov[2].marker.symbol
    lines = [sh for sh in fig.layout.shapes if sh.x0 == sh.x1]
    assert len(lines) == 2 and lines[0].x0 == pytest.approx(cn.iloc[-1]["coverage_rate"])
    with pytest.raises(ValueError, match="rates"):
        ff.focus_clinician_comparison(cn, rates=["nonsense"])
    with pytest.raises(ValueError, match="T99"):
        ff.focus_clinician_comparison(cn, clinician_id="T99")


def test_alliance_link_chart_as_data():
    s, c = link_tables()
    ln = focus_alliance_link(session_focus(s, c), session_alliance(s))
    fig = ff.focus_alliance_chart(ln, measure="goals_topics", clinician_id="T01")
    by = {tr.meta: tr for tr in fig.data}
    part = ln[ln["measure"] == "goals_topics"]
    assert list(by["on_goal"].y) == ["T01", "T02", "Whole service"]
    np.testing.assert_allclose(by["on_goal"].x, part["mean_on_goal"])
    np.testing.assert_allclose(by["off_goal"].x, part["mean_off_goal"])
    est = part[part["estimated"]]  # T02 has 4 off-goal sessions (< 5): no difference drawn, and said so
    assert list(by["difference"].y) == ["T01", "Whole service"]
    np.testing.assert_allclose(by["difference"].x, est["difference"])
    np.testing.assert_allclose(np.asarray(by["difference"].x) + np.asarray(by["difference"].error_x.array),
                               est["difference_upper"])
    assert "1 row with too few sessions" in fig.layout.xaxis2.title.text
    assert list(by["supervisee"].y) == ["T01"]
    assert by["on_goal"].marker.symbol != by["off_goal"].marker.symbol
    with pytest.raises(ValueError, match="wai_goal"):
        ff.focus_alliance_chart(ln, measure="wai_goal")


# --------------------------------------------------------------------------------------------
# the demo clinic: planted profiles stand out, the others do not
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo():
    from supervision.synth import read_ground_truth

    cl = supervision.load_caseload()
    truth = read_ground_truth(supervision.demo_path())
    sf_ = session_focus(cl.sessions, cl.clients, cl.settings)
    return cl, truth["clinicians"], sf_, clinician_focus(sf_)


def test_demo_check_in_heavy_clinicians_stand_out(demo):
    _, gt, _, cn = demo
    heavy = set(gt.loc[gt["check_in_heavy"].astype(bool), "clinician_id"])
    assert heavy, "the demo should plant check-in heavy clinicians"
    svc = cn.set_index("scope").loc["service"]
    clin = cn[cn["scope"] != "service"].set_index("scope")
    above = set(clin.index[clin["check_in_rate_lower"] > svc["check_in_rate"]])
    assert above == heavy  # the planted ones, and only they, lie above the service rate
    top = set(clin["check_in_rate"].nlargest(len(heavy)).index)
    assert top == heavy
    # the same clinicians cover fewer goals and set fewer agendas than the service
    assert set(clin.index[clin["coverage_rate_upper"] < svc["coverage_rate"]]) == heavy
    assert set(clin.index[clin["agenda_rate_upper"] < svc["agenda_rate"]]) == heavy


def test_demo_drifting_clinician_stands_out(demo):
    _, gt, _, cn = demo
    drift = set(gt.loc[gt["high_drift"].astype(bool), "clinician_id"])
    heavy = set(gt.loc[gt["check_in_heavy"].astype(bool), "clinician_id"])
    assert drift
    svc = cn.set_index("scope").loc["service"]
    clin = cn[cn["scope"] != "service"].set_index("scope")
    # topic drift: sessions on a goal area nobody agreed; the drifter ranks first, above the service
    assert set(clin["unagreed_goal_rate"].nlargest(len(drift)).index) == drift
    assert (clin.loc[list(drift), "unagreed_goal_rate_lower"] > svc["unagreed_goal_rate"]).all()
    # sequence drift: the focus moves off the agreed goals between sessions more often than in the service
    assert (clin.loc[list(drift), "drift_rate_lower"] > svc["drift_rate"]).all()
    # issue #19: check-in heavy clinicians no longer score as drifting (alternating week reviews with goal
    # work is check-in dominance, measured apart). Of the unplanted clinicians only T12 lies above the
    # service: its realised sessions also hold the second-highest unagreed-topic rate (checked here), so
    # the flag follows the data rather than the plan.
    assert not (clin.loc[list(heavy), "drift_rate_lower"] > svc["drift_rate"]).any()
    others = clin.drop(index=list(drift | heavy))
    above = set(others.index[others["drift_rate_lower"] > svc["drift_rate"]])
    second = set(clin["unagreed_goal_rate"].nlargest(len(drift) + len(above)).index) - drift
    assert above <= second


def test_demo_goals_item_lower_off_goal(demo):
    cl, _, sf_, _ = demo
    ln = focus_alliance_link(sf_, session_alliance(cl.sessions))
    row = ln[(ln["scope"] == "service") & (ln["measure"] == "goals_topics")].iloc[0]
    # the generator lowers the goals-and-topics item off goal (check-in, drift, admin)
    assert row["estimated"] and row["difference_upper"] < 0
    appr = ln[(ln["scope"] == "service") & (ln["measure"] == "approach_method")].iloc[0]
    assert appr["difference_lower"] < 0 < appr["difference_upper"]  # not planted on the approach item


# --------------------------------------------------------------------------------------------
# issue #19: switches between agreed goals are not drift; unrecorded sessions are no evidence of neglect
# --------------------------------------------------------------------------------------------

def _plain(plan: dict[str, tuple[str, list]]):
    rows = [{"client_id": cid, "clinician_id": "T09", "session_date": pd.Timestamp("2025-03-03") + pd.Timedelta(weeks=i),
             "attendance": "attended", "focus_primary": p} for cid, (_, foci) in plan.items() for i, p in enumerate(foci)]
    s = pd.DataFrame(rows)
    s["focus_primary"] = s["focus_primary"].astype("str")
    c = pd.DataFrame({"client_id": list(plan), "clinician_id": "T09",
                      "agreed_goals": pd.array([g for g, _ in plan.values()], dtype="str")})
    return session_focus(s, c)


def test_a_switch_between_agreed_goals_is_not_drift():
    sf = _plain({"G": ("mood;anxiety", ["mood", "anxiety", "mood", "anxiety"]),
                 "H": ("mood", ["mood", "trauma", "check_in", "mood"])})
    assert sf.loc[sf["client_id"] == "G", "goal_switch"].tolist() == [pd.NA, True, True, True]
    cf = client_focus(sf).set_index("client_id")
    assert cf.loc["G", "n_pairs"] == 3 and cf.loc["G", "n_changes"] == 0 and cf.loc["G", "drift_rate"] == 0.0
    assert cf.loc["G", "n_goal_switches"] == 3
    # H: mood -> trauma (unagreed area: drift) -> check-in (own measure) -> mood (back to the goal)
    assert cf.loc["H", "n_changes"] == 1 and cf.loc["H", "drift_rate"] == pytest.approx(1 / 3)
    cn = clinician_focus(sf).set_index("scope")
    assert cn.loc["T09", "n_changes"] == 1 and cn.loc["T09", "n_pairs"] == 6
    # the setting restores "every change of focus"
    old = client_focus(sf, drift_definition="any_change").set_index("client_id")
    assert old.loc["G", "drift_rate"] == 1.0 and old.loc["H", "drift_rate"] == 1.0
    assert clinician_focus(sf, drift_definition="any_change").set_index("scope").loc["T09", "n_changes"] == 6
    with pytest.raises(ValueError, match="drift_definition"):
        client_focus(sf, drift_definition="topics")





def test_sessions_without_a_recorded_focus_do_not_make_a_goal_neglected():
    sf = _plain({"I": ("mood", ["mood", None, None, None, None]),
                 "J": ("mood;anxiety", ["anxiety", "mood", None, "mood", "mood", None]),
                 "K": ("mood;anxiety", ["anxiety", "mood", "mood", "mood", "mood", None])})
    cf = client_focus(sf, neglected_after_sessions=4).set_index("client_id")
    # I: one recorded session only: not judged (before: "mood" neglected on four blank sessions)
    assert not cf.loc["I", "neglect_judged"] and pd.isna(cf.loc["I", "n_neglected_goals"])
    # J: the last four recorded sessions are anxiety, mood, mood, mood: nothing neglected
    assert cf.loc["J", "neglect_judged"] and cf.loc["J", "neglected_goals"] == ""
    # K: the last four recorded are all mood: anxiety neglected
    assert cf.loc["K", "neglected_goals"] == "anxiety" and cf.loc["K", "n_neglected_goals"] == 1


def test_demo_drifter_has_the_highest_drift_rate(demo):
    """Issue #19: the planted drifter, not the check-in-heavy clinicians, tops the drift rate."""
    _, gt, _, cn = demo
    drifters = set(gt.loc[gt["high_drift"].astype(bool), "clinician_id"])
    heavy = set(gt.loc[gt["check_in_heavy"].astype(bool), "clinician_id"])
    rate = cn.set_index("scope")["drift_rate"].drop("service")
    assert set(rate.nlargest(len(drifters)).index) == drifters
    assert all(rate[d] > rate[h] for d in drifters for h in heavy)
