"""Follow-through between meetings: actions, discussed items and goals carried and closed across
meetings (append-only, concurrent writers, interrupted writes), what happened since, practice goals
judged against chance, and the supervisee's development by quarter.

Oracles: hand-made notes and caseloads whose answers are known by construction; a plain
recomputation of the cluster-robust ratio SE; the generator's planted practice goals on clinics made
with seeds no other test uses.
"""

import math
import multiprocessing as mp

import numpy as np
import pandas as pd
import pytest

import supervision.notes as notes_mod
from supervision import load_caseload
from supervision.followup import (development, evaluate_goal, follow_up_table, metric_in_window, ratio_estimate,
                                  since_meeting)
from supervision.metrics.tables import metric_tables
from supervision.notes import NotesInputError, NotesStore

SUP, CLIN = "S1", "T1"


@pytest.fixture
def store(tmp_path):
    with NotesStore(tmp_path / "n.sqlite") as s:
        yield s


def test_actions_items_and_goals_carried_and_closed_across_three_meetings(store):
    m1 = store.start_meeting(SUP, CLIN, date="2025-01-06")
    a1 = store.add_action(m1, "Ask C1 about the missed sessions", CLIN, due="2025-01-20", client_id="C1")
    a2 = store.add_action(m1, "Read the chapter on ruptures", CLIN)
    i1 = store.record_item(m1, "unrepaired_rupture", "SRS fell from 38 to 28", client_id="C1", data_date="2025-01-03")
    assert store.record_item(m1, "unrepaired_rupture", "again", client_id="C1") == i1  # discussed twice: one record
    g1 = store.add_goal(m1, "Fewer check-in sessions", "check_in_share", direction="decrease",
                        baseline_start="2024-07-01", baseline_end="2025-01-05", review_date="2025-04-01")

    m2 = store.start_meeting(SUP, CLIN, date="2025-01-20")
    todo = store.to_follow_up(CLIN, m2)
    assert set(zip(todo["kind"], todo["id"])) == {("action", a1), ("action", a2), ("item", i1), ("goal", g1)}
    assert (todo["decided"] == "").all() and (todo["meeting_id"] == m1).all()
    store.review(m2, "action", a1, "carried_over", comment="not reached yet")
    store.review(m2, "item", i1, "done")
    store.review(m2, "action", a2, "done")
    decided = store.to_follow_up(CLIN, m2).set_index(["kind", "id"])["decided"]
    assert decided[("action", a1)] == "carried_over" and decided[("item", i1)] == "done"
    assert store.actions(CLIN).set_index("action_id").loc[a2, "status"] == "done"  # the review closed the action

    m3 = store.start_meeting(SUP, CLIN, date="2025-02-03")
    todo3 = store.to_follow_up(CLIN, m3)
    assert set(zip(todo3["kind"], todo3["id"])) == {("action", a1), ("goal", g1)}  # carried; done items are closed
    store.review(m3, "action", a1, "done")
    store.review(m3, "goal", g1, "carried_over")
    assert set(zip(store.to_follow_up(CLIN)["kind"], store.to_follow_up(CLIN)["id"])) == {("goal", g1)}
    # changing one's mind in the same meeting is a new version, not a rewrite
    store.review(m3, "goal", g1, "dropped")
    assert store.goals(CLIN).set_index("goal_id").loc[g1, "status"] == "dropped"
    rv = store.reviews(CLIN, meeting_id=m3).set_index(["target_kind", "target_id"])
    assert rv.loc[("goal", g1), "status"] == "dropped" and rv.loc[("action", a1), "status"] == "done"
    rid = int(store.reviews(meeting_id=m3).query("target_kind == 'goal'")["review_id"].iloc[0])
    assert store.history("review", rid)["status"].tolist() == ["carried_over", "dropped"]
    assert store.integrity_check() == "ok"


@pytest.mark.parametrize("call, words", [
    (lambda s, m: s.review(m, "action", 999, "done"), "no action with id 999"),
    (lambda s, m: s.review(m, "note", 1, "done"), "target_kind"),
    (lambda s, m: s.review(m, "item", 1, "finished"), "status must be one of"),
    (lambda s, m: s.add_goal(m, "x", "check_in_share", direction="down", baseline_start="2025-01-01",
                             baseline_end="2025-02-01", review_date="2025-06-01"), "direction"),
    (lambda s, m: s.add_goal(m, "x", "check_in_share", direction="decrease", baseline_start="2025-03-01",
                             baseline_end="2025-02-01", review_date="2025-06-01"), "baseline must start"),
    (lambda s, m: s.add_goal(m, "x", "check_in_share", direction="decrease", baseline_start="2024-01-01",
                             baseline_end="2024-02-01", review_date="2024-06-01"), "review date"),
])
def test_bad_follow_up_input_is_refused_and_nothing_saved(store, call, words):
    m = store.start_meeting(SUP, CLIN, date="2025-01-06")
    with pytest.raises(NotesInputError, match=words):
        call(store, m)
    assert store.reviews().empty and store.goals().empty and store.integrity_check() == "ok"


def test_an_interrupted_review_leaves_nothing_half_written(store, monkeypatch):
    m1 = store.start_meeting(SUP, CLIN, date="2025-01-06")
    a = store.add_action(m1, "Phone the client", CLIN)
    m2 = store.start_meeting(SUP, CLIN, date="2025-01-20")
    real = notes_mod.NotesStore._append
    calls = []

    def second_fails(conn, kind, *args, **kw):
        calls.append(kind)
        if len(calls) == 2:  # the action's status was written, the review is not: stop here
            raise KeyboardInterrupt
        return real(conn, kind, *args, **kw)

    monkeypatch.setattr(notes_mod.NotesStore, "_append", staticmethod(second_fails))
    with pytest.raises(KeyboardInterrupt):
        store.review(m2, "action", a, "done")
    monkeypatch.undo()
    assert calls == ["action", "review"]
    assert store.actions().set_index("action_id").loc[a, "status"] == "open"  # rolled back with the review
    assert store.reviews().empty and store.integrity_check() == "ok"


def _writer(path: str, tag: str, n: int, barrier) -> None:
    barrier.wait(timeout=30)
    with NotesStore(path, lock_timeout=30) as s:
        m1 = s.start_meeting(SUP, tag, date="2025-01-06")
        m2 = s.start_meeting(SUP, tag, date="2025-01-20")
        for i in range(n):
            item = s.record_item(m1, f"flag{i}", f"{tag} evidence {i}", client_id=f"{tag}-C{i}")
            s.review(m2, "item", item, "carried_over" if i % 2 else "done")
            if i % 5 == 0:
                s.add_goal(m2, f"{tag} goal {i}", "check_in_share", direction="decrease", baseline_start="2024-01-01",
                           baseline_end="2025-01-01", review_date="2025-06-01")


def test_two_processes_following_up_at_once_lose_nothing(tmp_path):
    db, n = tmp_path / "n.sqlite", 40
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(db), tag, n, barrier)) for tag in ("w1", "w2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
    assert [p.exitcode for p in procs] == [0, 0]
    with NotesStore(db) as s:
        for tag in ("w1", "w2"):
            items = s.items(tag)
            assert len(items) == n and set(items["evidence"]) == {f"{tag} evidence {i}" for i in range(n)}
            assert (items["review_status"] == np.where(np.arange(n) % 2, "carried_over", "done")).all()
            assert len(s.goals(tag)) == len(range(0, n, 5))
            assert set(s.to_follow_up(tag)["kind"]) == {"item", "goal"} and len(s.to_follow_up(tag)) == n // 2 + n // 5
        assert s.integrity_check() == "ok"


# --------------------------------------------------------------------------- the numbers
def test_ratio_estimate_is_the_jackknife_over_clients():
    from scipy import stats

    k, m = np.array([3, 0, 5, 2]), np.array([4, 5, 6, 2])
    r = k.sum() / m.sum()
    loo = [(k.sum() - k[i]) / (m.sum() - m[i]) for i in range(4)]  # leave one client out, by hand
    se = math.sqrt(3 / 4 * sum((x - np.mean(loo)) ** 2 for x in loo))
    e = ratio_estimate(k, m)
    assert e.value == pytest.approx(r) and e.se == pytest.approx(se)
    assert e.lower == pytest.approx(r - stats.t.ppf(0.975, 3) * se) and (e.n_units, e.n_clients) == (17, 4)
    assert np.isnan(ratio_estimate([1], [3]).se)  # one client: no interval


def _caseload(tmp_path):
    """Client A: 4 check-ins of 6 sessions before 2025-03-01, 0 of 4 after; B: 2 of 4 before, 1 of 4 after."""
    rows = ["client_id,clinician_id,session_date,attendance,focus_primary"]
    weeks = pd.date_range("2025-01-06", periods=14, freq="7D")
    plan = {"A": ["check_in"] * 4 + ["mood"] * 2 + [None] * 2 + ["mood"] * 4,
            "B": ["check_in", "mood", "check_in", "mood", None, None, None, None, "check_in", "mood", "mood", "mood"]}
    for c, codes in plan.items():
        for d, code in zip(weeks, codes):
            if code is None:
                continue
            rows.append(f"{c},T1,{d:%Y-%m-%d},attended,{code}")
    (tmp_path / "clients.csv").write_text("client_id,clinician_id,start_date,end_date,end_reason,agreed_goals\n"
                                          "A,T1,2025-01-06,,,mood\nB,T1,2025-01-06,,,mood\n")
    (tmp_path / "sessions.csv").write_text("\n".join(rows) + "\n")
    cl = load_caseload(tmp_path)
    assert cl.status == "clean", cl.report
    return cl


def test_a_goal_before_and_after_by_hand(tmp_path):
    cl = _caseload(tmp_path)
    t = metric_tables(cl)
    before = metric_in_window(t, "check_in_share", "T1", "2025-01-01", "2025-02-28")
    assert (before.value, before.n_units, before.n_clients) == (pytest.approx(6 / 10), 10, 2)
    after = metric_in_window(t, "check_in_share", "T1", "2025-03-02", "2025-06-01")
    assert (after.value, after.n_units) == (pytest.approx(1 / 8), 8)
    res = evaluate_goal(t, "T1", "check_in_share", "decrease", "2025-01-01", "2025-02-28", "2025-03-01", "2025-06-01",
                        min_clients=2)
    assert res.change == pytest.approx(1 / 8 - 6 / 10)
    from scipy import stats

    se = math.sqrt(ratio_estimate([4, 2], [6, 4]).se ** 2 + ratio_estimate([0, 1], [4, 4]).se ** 2)
    assert res.lower == pytest.approx(res.change - stats.t.ppf(0.975, 1) * se)
    assert res.verdict == ("improved" if res.upper < 0 else "no change beyond chance")
    assert "60%" in res.sentence and "12%" in res.sentence
    # with the default minimum of 5 clients, two clients are too few to judge
    assert evaluate_goal(t, "T1", "check_in_share", "decrease", "2025-01-01", "2025-02-28", "2025-03-01",
                         "2025-06-01").verdict == "not measurable yet"


def test_what_happened_since_a_meeting(tmp_path):
    cl = _caseload(tmp_path)
    t = metric_tables(cl)
    said = since_meeting(cl, t, "A", "2025-03-01")
    assert said.startswith("4 attended, 0 missed and 0 cancelled since") and "last attended 24 Mar 2025" in said
    pattern = since_meeting(cl, t, None, "2025-03-01", flag="check_in_pattern", clinician_id="T1")
    assert "60%" in pattern and "12%" in pattern


def test_follow_up_table_says_what_happened(tmp_path):
    cl = _caseload(tmp_path)
    t = metric_tables(cl)
    with NotesStore(tmp_path / "n.sqlite") as s:
        m1 = s.start_meeting(SUP, "T1", date="2025-03-01")
        s.add_action(m1, "Talk about endings", "T1", client_id="A")
        s.add_goal(m1, "Start with the goal", "check_in_share", direction="decrease", baseline_start="2025-01-01",
                   baseline_end="2025-02-28", review_date="2025-06-01")
        m2 = s.start_meeting(SUP, "T1", date="2025-04-10")
        fu = follow_up_table(cl, t, s, "T1", m2).set_index("kind")
    assert "4 attended" in fu.loc["action", "since"] and "Share of sessions mainly a week review" in fu.loc["goal", "since"]


def test_development_by_quarter(tmp_path):
    cl = load_caseload()
    t = metric_tables(cl)
    dev = development(cl, t, "T05")
    q = dev[dev["metric"] == "check_in_share"].set_index("quarter")
    assert len(q) >= 6 and q["too_few"].dtype == bool
    shown = q.dropna(subset=["value"])
    # the planted practice goal: T05's check-in share after the goal (mid-2025) is below its peak
    assert shown["value"].iloc[-1] < shown["value"].max() / 2
    assert q["too_few"].any() and q.loc[q["too_few"], "value"].isna().all()  # too few clients: no value shown
    fs_all = t["focus_sessions"]
    w_all = fs_all[(fs_all["session_date"] >= q.index[1]) & (fs_all["session_date"] <= q.index[1] + pd.offsets.QuarterEnd(0))]
    assert q["service"].iloc[1] == pytest.approx(w_all["check_in"].sum() / w_all["focus_recorded"].sum())  # pooled service
    assert (q["service"] > 0).all() and set(dev["metric"]) >= {"low_alliance_share", "unilateral_endings"}
    # a plain recomputation of one cell
    fs = t["focus_sessions"]
    first_q = shown.index[0]
    w = fs[(fs["clinician_id"] == "T05") & (fs["session_date"] >= first_q)
           & (fs["session_date"] <= (first_q + pd.offsets.QuarterEnd(0)))]
    assert shown["value"].iloc[0] == pytest.approx(w["check_in"].sum() / w["focus_recorded"].sum())



def test_development_computes_the_service_once_for_every_supervisee(monkeypatch):
    """The service's figures per quarter are the same for every supervisee: a second supervisee (or the
    next report of a batch) reuses them, with the same result as a fresh computation; other tables
    (another rule) start afresh."""
    import supervision.followup as fu

    cl = load_caseload()
    t = metric_tables(cl)
    calls = []
    real = fu._service
    monkeypatch.setattr(fu, "_service", lambda *a: calls.append(a) or real(*a))
    first = development(cl, t, "T01")
    n_first = len(calls)
    assert n_first > 0
    second = development(cl, t, "T02")
    assert len(calls) == n_first  # nothing service-wide computed again
    cl.__dict__.pop("_development_service")
    pd.testing.assert_frame_equal(second, development(cl, t, "T02"))  # the same as computed afresh
    assert len(calls) == 2 * n_first
    development(cl, dict(t, focus_sessions=t["focus_sessions"].copy()), "T01")  # other tables: computed again
    assert len(calls) == 3 * n_first
    assert not first.empty

# --------------------------------------------------------------------------- planted goals on generated clinics
@pytest.fixture(scope="module")
def planted_goals(tmp_path_factory):
    from supervision.synth import read_ground_truth, write_clinic

    from supervision.metrics.tables import focus_tables

    out = []
    for seed in range(9101, 9121):
        folder = tmp_path_factory.mktemp(f"goals{seed}")
        write_clinic(folder, seed=seed)
        t = focus_tables(load_caseload(folder))  # the check-in share needs only the focus tables
        for g in read_ground_truth(folder)["practice_goals"].itertuples():
            res = evaluate_goal(t, g.clinician_id, g.metric, g.direction, g.baseline_start, g.baseline_end, g.set_on,
                                g.review_date)
            out.append((seed, g.clinician_id, bool(g.planted_change), res.verdict))
    return pd.DataFrame(out, columns=["seed", "clinician_id", "planted", "verdict"])


def test_planted_improvements_are_declared_and_null_goals_are_not(planted_goals):
    pg = planted_goals
    planted, null = pg[pg["planted"]], pg[~pg["planted"]]
    assert len(planted) == 20 and len(null) == 40
    hit = (planted["verdict"] == "improved").mean()
    false = (null["verdict"] == "improved").mean()
    assert hit >= 0.8, planted
    assert false <= 0.05, null


def test_development_outcome_effect_is_clinician_effects_on_a_rolling_year():
    from supervision.metrics.outcome import clinician_effects, outcome_options

    cl = load_caseload(settings={"outcome": {"min_cases": 5}})
    t = metric_tables(cl)
    dev = development(cl, t, "T03")
    eff = dev[(dev["metric"] == "outcome_effect") & dev["value"].notna()]
    assert len(eff) >= 2 and (eff["service"] == 0).all() and (eff["lower"] < eff["value"]).all()
    q = eff.iloc[-1]
    end = (q["quarter"] + pd.offsets.QuarterEnd(0)).normalize()
    co = t["outcome_clients"]
    co = co[(co["instrument"] == "ors") & (co["end_date"] > end - pd.DateOffset(months=12)) & (co["end_date"] <= end)]
    by_hand = clinician_effects(co, **outcome_options(cl.settings, clinician_effects)).set_index("clinician_id").loc["T03"]
    assert q["value"] == pytest.approx(by_hand["effect"]) and q["upper"] == pytest.approx(by_hand["effect_upper"])
    assert q["n_clients"] == by_hand["n_cases"]
