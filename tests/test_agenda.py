"""The supervision agenda: each flag type gives its item with evidence; ranking; missing measures."""

import pandas as pd
import pytest

from supervision import load_caseload
from supervision.agenda import AgendaOptions, DEFAULT_WEIGHTS, build_agenda, rank_items


def _export(tmp_path, with_srs=True):
    clients = [
        "client_id,clinician_id,start_date,end_date,end_reason",
        "RUPT,T1,2025-01-06,,",      # V-shaped fall, never back
        "LOW,T1,2025-01-06,,",       # low and falling
        "QUIET,T1,2025-01-06,,",     # last attended long ago
        "NOSHOW,T1,2025-01-06,,",    # two missed sessions in a row at the end
        "FINE,T1,2025-01-06,,",
        "OLD,T1,2024-01-06,2024-02-01,planned",  # ended long ago: history, not agenda
    ]
    rows = ["client_id,clinician_id,session_date,attendance" + (",srs_total" if with_srs else "")]
    def add(cid, dates_scores, att="attended"):
        for d, sc in dates_scores:
            rows.append(f"{cid},T1,{d},{att}" + (f",{sc}" if with_srs else ""))
    weeks = pd.date_range("2025-01-06", periods=12, freq="7D").strftime("%Y-%m-%d")
    add("RUPT", zip(weeks[:10], [38, 38.5, 38, 38.4, 38.1, 28.0, 29.0, 29.5, 29.0, 29.2]))
    add("LOW", zip(weeks[:6], [39, 37.5, 36.5, 35, 34, 33]))
    add("QUIET", zip(weeks[:2], [39, 39]))
    add("NOSHOW", zip(weeks[:8], [38, 38.2, 38.1, 38.3, 38.0, 38.2, 38.1, 38.3]))
    add("NOSHOW", zip(weeks[8:10], ["", ""]), att="no_show")
    add("FINE", zip(weeks[:12], [38, 38.3, 38.1, 38.4, 38.2, 38.5, 38.3, 38.6, 38.4, 38.2, 38.5, 38.3]))
    add("OLD", zip(["2024-01-06", "2024-01-13", "2024-01-20"], [30, 29, 28]))
    (tmp_path / "clients.csv").write_text("\n".join(clients) + "\n")
    (tmp_path / "sessions.csv").write_text("\n".join(rows) + "\n")
    cl = load_caseload(tmp_path)
    assert cl.status == "clean", cl.report
    return cl


def test_each_flag_gives_an_item_with_evidence_and_a_question(tmp_path):
    ag = build_agenda(_export(tmp_path)).set_index(["client_id", "flag"])
    rupture = ag.loc[("RUPT", "unrepaired_rupture")]
    assert "38.4 (session 4)" in rupture["evidence"] and "28.0" in rupture["evidence"] and "session 6" in rupture["evidence"]
    assert rupture["since"] == pd.Timestamp("2025-02-10") and rupture["question"]
    assert "low_alliance_falling" in ag.loc["LOW"].index
    assert "latest SRS 33.0" in ag.loc[("LOW", "low_alliance_falling"), "evidence"]
    quiet = ag.loc[("QUIET", "lost_contact")]
    assert "13 Jan 2025" in quiet["evidence"] and quiet["severity"] == "high"
    assert "2 missed sessions in a row" in ag.loc[("NOSHOW", "repeated_no_shows"), "evidence"]
    assert "FINE" not in ag.index.get_level_values(0)
    assert "OLD" not in ag.index.get_level_values(0)


def test_ranking_follows_the_weights_then_recency(tmp_path):
    ag = build_agenda(_export(tmp_path))
    assert list(ag["rank"]) == list(range(1, len(ag) + 1))
    assert ag["score"].is_monotonic_decreasing
    assert ag.iloc[0]["flag"] == "unrepaired_rupture"
    # configurable: make no-shows the most important thing
    opts = AgendaOptions(weights={**DEFAULT_WEIGHTS, "repeated_no_shows": 200})
    assert build_agenda(_export(tmp_path), options=opts).iloc[0]["flag"] == "repeated_no_shows"


def test_recency_breaks_ties_between_equal_flags():
    ref = pd.Timestamp("2025-06-01")
    items = pd.DataFrame({"clinician_id": "T1", "client_id": ["A", "B"], "area": "alliance", "flag": "low_alliance",
                          "since": [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-05-30")], "evidence": "", "question": ""})
    ranked = rank_items(items, AgendaOptions(weights=DEFAULT_WEIGHTS), ref)
    assert list(ranked["client_id"]) == ["B", "A"]


def test_a_service_without_alliance_measures_still_gets_an_agenda(tmp_path):
    ag = build_agenda(_export(tmp_path, with_srs=False))
    assert set(ag["area"]) == {"engagement"}
    assert {"lost_contact", "repeated_no_shows"} <= set(ag["flag"])


def test_demo_agenda_per_supervisee():
    cl = load_caseload()
    ag = build_agenda(cl, clinician_id="T01")
    assert len(ag) > 0 and set(ag["clinician_id"]) == {"T01"}
    assert ag["evidence"].str.len().min() > 10
    assert set(ag["severity"]) <= {"high", "medium", "low"}


def test_outcome_flags_reliable_deterioration(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id,clinician_id,start_date,end_date,end_reason\nWORSE,T1,2025-01-06,,\nOK,T1,2025-01-06,,\n")
    (tmp_path / "sessions.csv").write_text(
        "client_id,clinician_id,session_date,attendance,ors_total\n"
        "WORSE,T1,2025-01-06,attended,20\nWORSE,T1,2025-01-13,attended,18\nWORSE,T1,2025-01-20,attended,12\n"
        "OK,T1,2025-01-06,attended,20\nOK,T1,2025-01-13,attended,22\nOK,T1,2025-01-20,attended,24\n")
    ag = build_agenda(load_caseload(tmp_path)).set_index(["client_id", "flag"])
    item = ag.loc[("WORSE", "reliable_deterioration")]
    assert "ORS 20.0 at intake, 12.0 at session 3" in item["evidence"] and item["severity"] == "high"
    assert item["since"] == pd.Timestamp("2025-01-20")
    assert "OK" not in ag.index.get_level_values(0)
