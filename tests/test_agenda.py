"""The supervision agenda: sections (risk, today, patterns, housekeeping, more), one row per client,
a score that ages, settings honoured and refused, support prompts; and the rules on generated clinics.

Oracles: hand-made caseloads whose flags are known by construction; the generator's ground truth
(planted check-in-heavy clinicians) and the metric tables (clear adaptation gaps, risk answers in
the raw sessions) on clinics made with seeds no other test uses.
"""

import pandas as pd
import pytest

from supervision import load_caseload
from supervision.agenda import (CASELOAD_ITEM, SECTIONS, AgendaRules, _adaptation_patterns, arrange, build_agenda,
                                item_score, support_prompts)
from supervision.config import SettingsError, load_settings
from supervision.metrics.tables import metric_tables

WEEKS = pd.date_range("2025-01-06", periods=60, freq="7D").strftime("%Y-%m-%d")
PHQ = ",".join(f"phq9_{i}" for i in range(1, 10))


def _write(tmp_path, clients: list[str], rows: list[str], settings=None):
    (tmp_path / "clients.csv").write_text("client_id,clinician_id,start_date,end_date,end_reason\n" + "\n".join(clients) + "\n")
    (tmp_path / "sessions.csv").write_text(
        f"client_id,clinician_id,session_date,attendance,srs_total,ors_total,{PHQ}\n" + "\n".join(rows) + "\n")
    cl = load_caseload(tmp_path, settings=settings)
    assert cl.status == "clean", cl.report
    return cl


def _row(cid, day, srs="", ors="", phq9=None, att="attended"):
    items = ",".join(str(x) for x in phq9) if phq9 else "," * 8
    return f"{cid},T1,{day},{att},{srs},{ors},{items}"


def _phq(item9, rest=1):
    return [rest] * 8 + [item9]


def _clinic(tmp_path, settings=None):
    """A caseload with one client per rule; the export's last session is WEEKS[59]."""
    last = 59
    clients = [
        "RISK,T1,2025-01-06,,", "NORISK,T1,2025-01-06,,", "OLDRISK,T1,2025-01-06,2025-02-01,planned",
        "RUPT,T1,2025-01-06,,", "MANY,T1,2025-01-06,,", "QUIET400,T1,2024-06-01,,", "QUIET50,T1,2025-01-06,,",
        "ENDWORSE,T1,2025-01-06," + WEEKS[last - 1] + ",unilateral", "FINE,T1,2025-01-06,,",
    ]
    rows = []
    # RISK: item 9 answered 0, 1, 2 at the last three sessions (rising); fine otherwise
    for i, a in enumerate([0, 1, 2]):
        rows.append(_row("RISK", WEEKS[last - 2 + i], srs=38, ors=30, phq9=_phq(a)))
    # NORISK: answered 2 once, then 0 at the latest session: not a current risk answer
    rows += [_row("NORISK", WEEKS[last - 1], srs=38, phq9=_phq(2)), _row("NORISK", WEEKS[last], srs=38, phq9=_phq(0))]
    # OLDRISK: answered 3, but the episode ended over a year before the export: history
    rows.append(_row("OLDRISK", WEEKS[2], srs=38, phq9=_phq(3)))
    # RUPT: a V-shaped fall at the end, never back (an unrepaired rupture)
    for i, s in enumerate([38, 38.5, 38, 38.4, 38.1, 28.0, 29.0, 29.5, 29.0, 29.2]):
        rows.append(_row("RUPT", WEEKS[last - 9 + i], srs=s))
    # MANY: low and falling alliance, then two missed sessions: one row with both flags
    for i, s in enumerate([39, 37.5, 36.5, 35, 34, 33]):
        rows.append(_row("MANY", WEEKS[last - 7 + i], srs=s))
    rows += [_row("MANY", WEEKS[last - 1], att="no_show"), _row("MANY", WEEKS[last], att="no_show")]
    # QUIET400: last attended about 400 days before the export; QUIET50: about 50 days before
    rows += [_row("QUIET400", "2024-06-03", srs=39), _row("QUIET400", "2024-06-10", srs=39)]
    rows += [_row("QUIET50", WEEKS[last - 8], srs=39), _row("QUIET50", WEEKS[last - 7], srs=39)]
    # ENDWORSE: ORS 20 -> 12 (reliably worse by 8 > 5), ended a week before the export
    for i, o in enumerate([20, 18, 12]):
        rows.append(_row("ENDWORSE", WEEKS[last - 3 + i], srs=38, ors=o))
    for i in range(12):
        rows.append(_row("FINE", WEEKS[last - 11 + i], srs=38 + (i % 3) * 0.2))
    return _write(tmp_path, clients, rows, settings)


@pytest.fixture
def clinic(tmp_path):
    return _clinic(tmp_path)


def test_risk_comes_first_whatever_else_scores(clinic):
    ag = build_agenda(clinic)
    assert ag.iloc[0]["client_id"] == "RISK" and ag.iloc[0]["section"] == "risk"
    risk = ag[ag["section"] == "risk"]
    assert set(risk["client_id"]) == {"RISK"}  # not NORISK (latest answer 0), not OLDRISK (ended long ago)
    ev = risk.iloc[0]["evidence"]
    assert "PHQ-9 item 9 answered 2" in ev and WEEKS[59] in pd.Timestamp(risk.iloc[0]["since"]).strftime("%Y-%m-%d")
    assert "0, 1, 2 (rising)" in ev
    # even with the rupture weighted far above everything, risk stays first (it is its own section)
    ag2 = build_agenda(clinic, rules=AgendaRules.from_settings(load_settings({"agenda": {"weights": {"unrepaired_rupture": 1000}}})))
    assert ag2.iloc[0]["client_id"] == "RISK"


def test_old_lost_contact_is_housekeeping_recent_is_clinical(clinic):
    ag = build_agenda(clinic).set_index("client_id")
    old = ag.loc["QUIET400"]
    assert old["section"] == "housekeeping" and old["flag"] == "episode_to_close" and old["severity"] == "low"
    days = int(old["evidence"].split(" days before")[0].split("(")[-1])
    assert days > 365 and f"{days} days" in old["question"]  # the question says how long, not "weeks"
    recent = ag.loc["QUIET50"]
    assert recent["flag"] == "lost_contact" and recent["section"] in ("today", "more")
    # every housekeeping row comes after every clinical one
    order = list(build_agenda(clinic)["section"])
    assert max(i for i, s in enumerate(order) if s == "today") < min(i for i, s in enumerate(order) if s == "housekeeping")


def test_a_recently_ended_deteriorated_client_is_in_today(clinic):
    row = build_agenda(clinic).set_index("client_id").loc["ENDWORSE"]
    assert row["section"] == "today" and row["flag"] == "ended_worse" and bool(row["off_track"])
    assert "ORS 20.0 at intake, 12.0" in row["evidence"] and "unilateral" in row["evidence"]


def test_a_client_with_several_flags_is_one_row(clinic):
    ag = build_agenda(clinic)
    assert not ag.duplicated(["clinician_id", "client_id"]).any()
    many = ag.set_index("client_id").loc["MANY"]
    assert {"low_alliance_falling", "repeated_no_shows"} <= set(many["flags"].split(", "))
    assert "latest SRS 33.0" in many["evidence"] and "2 missed sessions in a row" in many["evidence"]


def test_today_is_capped_and_ranked_clinical_first(clinic):
    ag = build_agenda(clinic)
    today = ag[ag["section"] == "today"]
    assert len(today) <= 5 and today["score"].is_monotonic_decreasing
    assert list(today["client_id"][:2]) == ["ENDWORSE", "RUPT"]  # the outcome client, then the rupture client
    assert "FINE" not in set(ag["client_id"])
    one = build_agenda(clinic, today_clients=1)
    assert (one["section"] == "today").sum() == 1
    assert list(ag["section"]) == sorted(ag["section"], key=SECTIONS.index)  # sections in order
    assert list(ag["rank"]) == list(range(1, len(ag) + 1))


def test_agenda_settings_are_honoured(tmp_path):
    cl = _clinic(tmp_path, settings={"agenda": {"today_clients": 2, "weights": {"repeated_no_shows": 200.0}}})
    ag = build_agenda(cl)
    today = ag[ag["section"] == "today"]
    assert len(today) == 2 and today.iloc[0]["client_id"] == "MANY" and today.iloc[0]["flag"] == "repeated_no_shows"


@pytest.mark.parametrize("given, words", [
    ({"today_clients": -1}, "agenda.today_clients"),
    ({"half_life_days": 0}, "agenda.half_life_days"),
    ({"pattern_confidence": 1.5}, "agenda.pattern_confidence"),
    ({"today_clients": 2.5}, "whole number"),
    ({"weights": {"no_such_flag": 3.0}}, "agenda.weights.no_such_flag"),
    ({"weights": {"low_alliance": float("inf")}}, "agenda.weights.low_alliance"),
    ({"weights": {"low_alliance": -5}}, "agenda.weights.low_alliance"),
    ({"medium_from": 90.0, "high_from": 50.0}, "medium_from"),
])
def test_bad_agenda_settings_are_refused_with_the_key(given, words):
    with pytest.raises(SettingsError, match=words):  # refused when the settings are read, before any agenda
        AgendaRules.from_settings(load_settings({"agenda": given}))


def test_bad_rule_overrides_are_refused_too(clinic):
    with pytest.raises(SettingsError, match="agenda.today_clients"):
        build_agenda(clinic, today_clients=-3)
    with pytest.raises(SettingsError, match="unknown agenda rule"):
        build_agenda(clinic, today_cleints=3)


def test_unknown_agenda_key_is_refused_by_the_settings_loader():
    with pytest.raises(SettingsError, match="agenda.today_clientz"):
        load_settings({"agenda": {"today_clientz": 3}})


def test_a_stale_flag_never_outranks_a_fresh_one_of_the_same_kind():
    rules = AgendaRules.from_settings(None)
    fresh, stale = item_score([55.0, 55.0], [3, 300], rules)
    assert fresh > stale and fresh == pytest.approx(55 * 0.5 ** (3 / rules.half_life_days))
    ref = pd.Timestamp("2025-06-01")
    items = pd.DataFrame({"clinician_id": "T1", "client_id": ["A", "B"], "area": "alliance", "flag": "low_alliance",
                          "since": [pd.Timestamp("2024-06-01"), pd.Timestamp("2025-05-30")], "evidence": "e", "question": "q"})
    ranked = arrange(items, pd.DataFrame(), rules, ref)
    assert list(ranked["client_id"]) == ["B", "A"]
    # a year-old unrepaired rupture fades below a fresh low alliance
    items.loc[0, "flag"] = "unrepaired_rupture"
    assert list(arrange(items, pd.DataFrame(), rules, ref)["client_id"]) == ["B", "A"]


def _gap(comparator, metric="mean_srs", kind="mean"):
    return {"clinician_id": "T1", "dimension": "religion_spirituality", "group": "muslim", "metric": metric,
            "comparator": comparator, "n_group": 8, "n_comparator": 24, "value_group": 29.9, "value_comparator": 36.8,
            "verdict": "clear gap", "kind": kind, "shrunken_difference": -5.0}


def test_a_gap_against_colleagues_is_worded_as_such():
    rules = AgendaRules.from_settings(None)
    (svc,) = _adaptation_patterns({"adaptation_gaps": pd.DataFrame([_gap("service")])}, rules)
    assert "colleagues" in svc["question"] and "your other clients" not in svc["question"]
    assert "with colleagues' clients of the same group" in svc["evidence"] and "29.9" in svc["evidence"]
    (own,) = _adaptation_patterns({"adaptation_gaps": pd.DataFrame([_gap("clinician")])}, rules)
    assert "your other clients" in own["question"] and "colleagues" not in own["question"]
    # two metrics and both comparators of one group: one item
    both = _adaptation_patterns({"adaptation_gaps": pd.DataFrame(
        [_gap("service"), _gap("clinician"), _gap("service", "first_srs")])}, rules)
    assert len(both) == 1 and "both" in both[0]["question"] and both[0]["evidence"].count("(n=8)") == 3


def test_support_prompts_for_a_client_off_track(clinic):
    tables = metric_tables(clinic)
    sp = support_prompts(clinic, tables, "ENDWORSE")
    assert list(sp["field"]) == ["risk and crisis", "motivation and goals", "the relationship",
                                 "social support and life events", "emotion regulation"]
    assert sp["question"].str.len().min() > 20
    assert "latest SRS 38.0" in sp.set_index("field").loc["the relationship", "data"]
    assert "no data" in sp.set_index("field").loc["social support and life events", "data"]
    risky = support_prompts(clinic, tables, "RISK").set_index("field")
    assert "PHQ-9 item 9 answered 2" in risky.loc["risk and crisis", "data"]


def test_a_service_without_alliance_or_outcome_measures_still_gets_an_agenda(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id,clinician_id,start_date,end_date,end_reason\nQ,T1,2025-01-06,,\nA,T1,2025-01-06,,\n")
    (tmp_path / "sessions.csv").write_text("client_id,clinician_id,session_date,attendance\n"
                                           "Q,T1,2025-01-06,attended\nA,T1,2025-01-06,attended\nA,T1,2025-04-07,attended\n")
    ag = build_agenda(load_caseload(tmp_path))
    assert list(ag["client_id"]) == ["Q"] and ag.iloc[0]["flag"] in ("episode_to_close", "lost_contact")


def test_demo_agenda_per_supervisee():
    cl = load_caseload()
    ag = build_agenda(cl, clinician_id="T01")
    assert len(ag) > 0 and set(ag["clinician_id"]) == {"T01"}
    assert ag["evidence"].str.len().min() > 10
    assert set(ag["severity"]) <= {"high", "medium", "low"} and set(ag["section"]) <= set(SECTIONS)
    assert (ag["section"] == "risk").any(), "the demo plants risk answers: T01's agenda shows the risk band"


# --------------------------------------------------------------------------- generated clinics
@pytest.fixture(scope="module", params=[7301, 8817])
def generated(request, tmp_path_factory):
    """Clinics from seeds that no other test uses, with their ground truth."""
    from supervision.synth import read_ground_truth, write_clinic

    out = tmp_path_factory.mktemp(f"clinic{request.param}")
    write_clinic(out, seed=request.param)
    cl = load_caseload(out)
    tables = metric_tables(cl)
    return cl, tables, build_agenda(cl, tables), read_ground_truth(out)


def test_generated_every_current_risk_answer_is_in_risk(generated):
    cl, _tables, ag, truth = generated
    s = cl.sessions.sort_values(["client_id", "session_date"])
    ref = s["session_date"].max()
    expected = set()
    for col in ("phq9_9", "core10_6"):
        latest = s[s[col].notna()].groupby("client_id")[col].last()
        expected |= set(latest[latest > 0].index)
    end = cl.clients.set_index("client_id")["end_date"]
    current = {c for c in expected if pd.isna(end[c]) or end[c] >= ref - pd.Timedelta(days=90)}
    risk = ag[ag["section"] == "risk"]
    assert set(risk["client_id"]) == current
    for _clin, mine in ag.groupby("clinician_id"):  # risk rows open each clinician's agenda
        k = int((mine["section"] == "risk").sum())
        assert list(mine["section"][:k]) == ["risk"] * k and list(mine["rank"][:k]) == list(range(1, k + 1))
    # planted risk clusters in clients who get worse
    assert truth["risk"]["gets_worse"].mean() > 0.2


def test_generated_today_is_capped(generated):
    _cl, _tables, ag, _truth = generated
    assert ag[ag["section"] == "today"].groupby("clinician_id").size().max() <= 5
    assert not ag[ag["client_id"] != CASELOAD_ITEM].duplicated(["clinician_id", "client_id"]).any()


def test_generated_planted_patterns_reach_the_agenda(generated):
    _cl, tables, ag, truth = generated
    pats = ag[ag["section"] == "patterns"]
    heavy = set(truth["clinicians"].loc[truth["clinicians"]["check_in_heavy"].astype(bool), "clinician_id"])
    got = set(pats.loc[pats["flag"] == "check_in_pattern", "clinician_id"])
    assert heavy and heavy <= got, f"check-in-heavy clinicians {heavy - got} missing from patterns"
    g = tables["adaptation_gaps"]
    found = g[g["verdict"] == "clear gap"].merge(truth["adaptation_gaps"][["clinician_id", "dimension", "group"]])
    for r in found[["clinician_id", "dimension", "group"]].drop_duplicates().itertuples():
        mine = pats[(pats["clinician_id"] == r.clinician_id) & (pats["flag"] == "adaptation_gap")]
        from supervision.config import value_label

        label = f"{r.dimension.replace('_', ' ')}: {value_label(r.group)}"  # the group's label ([identity.labels])
        assert mine["evidence"].str.startswith(label).any(), f"planted gap {r} found by the metrics is not in patterns"
    assert (ag[ag["section"] == "patterns"].groupby("clinician_id").size() <= 3).all()


def test_a_practice_goal_due_for_review_comes_onto_the_agenda(clinic, tmp_path):
    from supervision.notes import NotesStore

    with NotesStore(tmp_path / "n.sqlite") as store:
        m = store.start_meeting("S1", "T1", date="2025-06-02")
        store.add_goal(m, "Fewer check-ins", "check_in_share", direction="decrease", baseline_start="2025-01-01",
                       baseline_end="2025-06-01", review_date="2025-09-01")
        store.add_goal(m, "Later", "check_in_share", direction="decrease", baseline_start="2025-01-01",
                       baseline_end="2025-06-01", review_date="2026-09-01")
        goals = store.goals()
    ag = build_agenda(clinic, goals=goals, today=pd.Timestamp("2025-10-01"))
    due = ag[ag["flag"] == "goal_review"]
    assert len(due) == 1 and due.iloc[0]["section"] == "patterns" and "'Fewer check-ins'" in due.iloc[0]["evidence"]
    assert "review due 01 Sep 2025" in due.iloc[0]["evidence"]
    assert not (build_agenda(clinic, goals=goals, today=pd.Timestamp("2025-08-01"))["flag"] == "goal_review").any()


@pytest.mark.parametrize("episodes", [6, 3, 1])
def test_small_clinics_get_an_agenda_without_error(tmp_path, episodes):
    from supervision.synth import SynthParams, write_clinic

    write_clinic(tmp_path, n_clinicians=3, seed=4242, params=SynthParams(episodes_per_18_months=episodes))
    ag = build_agenda(load_caseload(tmp_path))
    assert list(ag.columns)[:3] == ["rank", "section", "clinician_id"]
