"""notebooks/03-outcome.ipynb in a real JupyterLab: run it, drive every control, read the charts back.

Dashboard (outer classes ``sw-dashboard sw-outcome``): pickers ``sw-supervisee``, ``sw-period``,
``sw-episodes``, ``sw-client`` and the measure ``sw-instrument`` (Dropdowns); panes ``sw-status``,
``sw-error``; Tab ``sw-tabs`` ("Overview", "Caseload", "Client", "Compared with the service"), only
the visible tab drawn: ``sw-outcome-summary``, ``sw-outcome-jacobson`` (chart ``sw-chart-jacobson``),
``sw-outcome-client`` (chart ``sw-chart-outcome-client``), ``sw-outcome-compare`` (table
``sw-outcome-compare-table``, chart ``sw-chart-caterpillar``).

Oracles from the raw demo files (tests/browser/demo_oracles.py): which clients have at least two
scores of a measure (ORS from sessions.csv, PHQ-9 from scores.csv), and a client's score series.
"""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

import pytest

from . import dash
from . import demo_oracles as oracle

NOTEBOOK = "03-outcome.ipynb"

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
D = ".sw-dashboard.sw-outcome"
SUPERVISEE, PERIOD, EPISODES, CLIENT = (f"{D} .sw-supervisee", f"{D} .sw-period", f"{D} .sw-episodes",
                                        f"{D} .sw-client")
INSTRUMENT = f"{D} .sw-instrument"
STATUS, ERROR, TABS = f"{D} .sw-status", f"{D} .sw-error", f"{D} .sw-tabs"
SUMMARY = f"{D} .sw-outcome-summary"
JACOBSON = f"{D} .sw-outcome-jacobson .sw-chart.sw-chart-jacobson"
CLIENT_VIEW = f"{D} .sw-outcome-client"
TRAJECTORY = f"{D} .sw-outcome-client .sw-chart.sw-chart-outcome-client"
COMPARE = f"{D} .sw-outcome-compare"
COMPARE_TABLE = f"{D} .sw-outcome-compare .sw-outcome-compare-table"
CATERPILLAR = f"{D} .sw-outcome-compare .sw-chart.sw-chart-caterpillar"

T_OVERVIEW, T_CASELOAD, T_CLIENT, T_COMPARE = "Overview", "Caseload", "Client", "Compared with the service"
MEASURES = {"ors": "Outcome Rating Scale", "phq9": "Patient Health Questionnaire-9",
            "gad7": "Generalized Anxiety Disorder-7", "core10": "CORE-10"}


@pytest.fixture(scope="module")
def raw():
    return oracle.load_raw()


status_clients = partial(dash.status_clients, status=STATUS)


assert_no_dashboard_error = partial(dash.assert_no_dashboard_error, error=ERROR)


def title(lab, scope: str) -> str:
    return (lab.page.locator(f"{scope} .gtitle").first.text_content() or "").strip()


wait_title = dash.wait_title


def jacobson_clients(data) -> int:
    """Clients plotted on the Jacobson chart: the points of its marker-only (category) traces."""
    return sum(len(t.get("x") or []) for t in data if t.get("mode") == "markers")


def check_jacobson(lab, data, raw, supervisee: str, measure: str, period: str = "Whole export") -> None:
    expected = oracle.measured_clients(raw, supervisee, measure, period)
    assert jacobson_clients(data) == len(expected), (
        f"Jacobson chart of {supervisee} / {measure} / {period}: {jacobson_clients(data)} clients plotted, "
        f"{len(expected)} in the raw files have two scores; traces {[(t.get('name'), t.get('mode')) for t in data]}")
    t = title(lab, JACOBSON)
    assert t.startswith(f"{MEASURES[measure]}: intake and latest, {supervisee}"), t
    assert re.search(rf"\({len(expected)} clients?\)", t), t


def scores_trace(data) -> dict:
    hits = [t for t in data if t.get("name") == "Scores"]
    assert len(hits) == 1, [t.get("name") for t in data]
    return hits[0]


check_seen = dash.check_seen


def test_outcome(lab, raw, browser_timings):
    nb = REPO / "notebooks" / NOTEBOOK
    if not nb.is_file():
        pytest.fail(f"{nb} does not exist", pytrace=False)
    unseen: list[str] = []

    # --- open, run all ----------------------------------------------------------------------
    browser_timings("outcome: open -> kernel idle", lab.open(NOTEBOOK))
    browser_timings("outcome: run all cells", lab.run_all())
    lab.page.locator(D).first.wait_for(state="visible")
    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    assert lab.page.locator(D).count() == 1, "expected exactly one outcome dashboard"
    for sel in (SUPERVISEE, PERIOD, EPISODES, CLIENT, INSTRUMENT, STATUS, ERROR, TABS, SUMMARY, JACOBSON,
                TRAJECTORY, CATERPILLAR):
        assert lab.page.locator(sel).count() == 1, f"{sel} not found (once) in the dashboard"
    assert_no_dashboard_error(lab)
    tabs = [t.strip() for t in lab.page.locator(f"{TABS} .lm-TabBar-tabLabel").all_text_contents()]
    assert tabs == [T_OVERVIEW, T_CASELOAD, T_CLIENT, T_COMPARE], tabs
    assert lab.current_tab(TABS) == T_OVERVIEW
    measures = [o["label"] for o in lab.options(INSTRUMENT)]
    assert measures == list(MEASURES.values()), measures
    assert lab.selected(INSTRUMENT) == MEASURES["ors"]

    supervisees = lab.options(SUPERVISEE)
    first_id = next(o for o in supervisees if o["selected"])["label"].split(" ")[0]
    assert first_id == sorted(raw["clients"]["clinician_id"].unique())[0]
    assert status_clients(lab, first_id) == len(oracle.caseload_clients(raw, first_id))

    # --- Overview (drawn at start) --------------------------------------------------------------
    n_ors = len(oracle.measured_clients(raw, first_id, "ors"))
    overview_first = lab.wait_for_text(SUMMARY, rf"^Outcome Rating Scale: \d+ clients, {n_ors} with at least two scores")
    assert re.search(r"Open episodes: \d+ not on track, \d+ at risk", overview_first), overview_first
    lab.screenshot(f"overview-{first_id}", D)

    # --- Caseload: the Jacobson plot ---------------------------------------------------------
    t0 = time.monotonic()
    lab.open_tab(TABS, T_CASELOAD)
    data = lab.wait_for_plot(JACOBSON)
    browser_timings("outcome: open Caseload tab -> Jacobson plot drawn", time.monotonic() - t0)
    check_jacobson(lab, data, raw, first_id, "ors")
    assert_no_dashboard_error(lab)
    check_seen(lab, JACOBSON, f"Jacobson {first_id} ORS", unseen)
    lab.screenshot(f"jacobson-{first_id}-ors", D)

    # --- supervisee: the Jacobson plot is redrawn for the other caseload ----------------------
    other = supervisees[1]
    sup = other["label"].split(" ")[0]
    lab.select(SUPERVISEE, other["value"])
    data, dt = lab.wait_for_plot_change(JACOBSON, data)
    browser_timings("outcome: change supervisee -> Jacobson updated", dt)
    status_clients(lab, sup)
    check_jacobson(lab, data, raw, sup, "ors")
    assert_no_dashboard_error(lab)

    # --- Client tab (no client picked: the first client to look at) ---------------------------
    lab.open_tab(TABS, T_CLIENT)
    data = lab.wait_for_plot(TRAJECTORY)
    shown = lab.wait_for_text(f"{CLIENT_VIEW} p", r"^Showing C\d+ \(the first client to look at\)")
    default_client = re.search(r"Showing (C\d+)", shown).group(1)
    assert default_client in oracle.caseload_clients(raw, sup), default_client
    assert title(lab, TRAJECTORY) == f"{default_client}: Outcome Rating Scale", title(lab, TRAJECTORY)
    got = [round(float(v), 6) for v in scores_trace(data)["y"]]
    assert got == [round(v, 6) for v in oracle.ors_scores(raw, default_client)], (got, default_client)
    check_seen(lab, TRAJECTORY, f"trajectory {default_client} ORS", unseen)
    lab.screenshot(f"client-{default_client}-ors", D)

    # --- Compared with the service ------------------------------------------------------------
    lab.open_tab(TABS, T_COMPARE)
    cat = lab.wait_for_plot(CATERPILLAR, min_points=0)
    names = [t.get("name") for t in cat]
    assert "Clinician effect" in names, names
    if not any(len(t.get("x") or []) for t in cat):  # every clinician at the same point: a sentence says so
        text = lab.text(f"{CATERPILLAR} .js-plotly-plot")
        assert re.search(r"cannot tell these clinicians apart", text), f"an empty caterpillar without a reason: {text!r}"
    lab.wait_for_text(f"{COMPARE} h3", rf"^{re.escape(sup)} compared with the service \(\d+ clients with scores\)")
    table = lab.table_rows(COMPARE_TABLE)
    assert table and table[0][1:] == [sup, "service"], table[:1]
    assert len(table) > 1, table
    assert_no_dashboard_error(lab)
    check_seen(lab, CATERPILLAR, "caterpillar ORS", unseen)
    lab.screenshot(f"compare-{sup}-ors", D)

    # --- measure: PHQ-9 --------------------------------------------------------------------------
    lab.open_tab(TABS, T_CASELOAD)
    data = lab.wait_for_plot(JACOBSON)
    lab.select(INSTRUMENT, MEASURES["phq9"])
    data, dt = lab.wait_for_plot_change(JACOBSON, data)
    browser_timings("outcome: change measure -> Jacobson updated", dt)
    check_jacobson(lab, data, raw, sup, "phq9")
    xt = (lab.page.locator(f"{JACOBSON} .xtitle").first.text_content() or "")
    assert "PHQ" in xt, xt
    assert_no_dashboard_error(lab)
    check_seen(lab, JACOBSON, f"Jacobson {sup} PHQ-9", unseen)
    lab.screenshot(f"jacobson-{sup}-phq9", D)
    # the comparison follows the measure (with no estimate for PHQ-9 it must say so, not be blank)
    lab.open_tab(TABS, T_COMPARE)
    cat_phq, _ = lab.wait_for_plot_change(CATERPILLAR, cat)
    if not any(len(t.get("x") or []) for t in cat_phq):
        text = lab.text(f"{CATERPILLAR} .js-plotly-plot")
        assert re.search(r"No clinician has enough cases", text), f"an empty caterpillar without a reason: {text!r}"
    assert_no_dashboard_error(lab)

    # --- period: last 3 months -------------------------------------------------------------------
    lab.open_tab(TABS, T_CASELOAD)
    data = lab.wait_for_plot(JACOBSON)
    lab.select(PERIOD, "Last 3 months")
    data, dt = lab.wait_for_plot_change(JACOBSON, data)
    browser_timings("outcome: change period -> Jacobson updated", dt)
    check_jacobson(lab, data, raw, sup, "phq9", "Last 3 months")
    lab.wait_for_text(STATUS, r"\d\d \w{3} \d{4} to \d\d \w{3} \d{4}")
    assert status_clients(lab, sup) == len(oracle.caseload_clients(raw, sup, "Last 3 months"))
    assert_no_dashboard_error(lab)
    check_seen(lab, JACOBSON, f"Jacobson {sup} PHQ-9 3 months", unseen)

    # --- client: one with several PHQ-9 scores ----------------------------------------------------
    lab.open_tab(TABS, T_CLIENT)
    wait_title(lab, TRAJECTORY, r": Patient Health Questionnaire-9$")
    before = lab.wait_for_plot(TRAJECTORY)
    options = {o["value"] for o in lab.options(CLIENT)}
    candidates = sorted(oracle.caseload_clients(raw, sup, "Last 3 months") & options,
                        key=lambda c: (-len(oracle.questionnaire_scores(raw, c, "phq9")), c))
    shown_now = re.search(r"(C\d+)", title(lab, TRAJECTORY)).group(1)
    pick = next(c for c in candidates if c != shown_now and len(oracle.questionnaire_scores(raw, c, "phq9")) >= 2)
    t0 = time.monotonic()
    lab.select(CLIENT, pick)
    wait_title(lab, TRAJECTORY, rf"^{pick}: Patient Health Questionnaire-9$")
    data = lab.wait_for_plot(TRAJECTORY)
    assert data != before
    browser_timings("outcome: pick client -> trajectory drawn", time.monotonic() - t0)
    lab.wait_for_text(STATUS, rf"client {pick}\b")
    assert title(lab, TRAJECTORY) == f"{pick}: Patient Health Questionnaire-9", title(lab, TRAJECTORY)
    got = [round(float(v), 6) for v in scores_trace(data)["y"]]
    assert got == [round(v, 6) for v in oracle.questionnaire_scores(raw, pick, "phq9")], (got, pick)
    lab.wait_for_text(f"{CLIENT_VIEW} p", rf"^Client {pick}\.")
    assert_no_dashboard_error(lab)
    check_seen(lab, TRAJECTORY, f"trajectory {pick} PHQ-9", unseen)
    lab.screenshot(f"client-{pick}-phq9", D)

    # --- and the overview says what was picked ---------------------------------------------------
    lab.open_tab(TABS, T_OVERVIEW)
    n_phq = len(oracle.measured_clients(raw, sup, "phq9", "Last 3 months"))
    text = lab.wait_for_text(SUMMARY, rf"^Patient Health Questionnaire-9: \d+ clients, {n_phq} with at least two scores")
    assert text != overview_first
    assert_no_dashboard_error(lab)

    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    lab.assert_no_external_requests()
    assert not unseen, "charts hold data but cannot be seen:\n" + "\n".join(unseen)
