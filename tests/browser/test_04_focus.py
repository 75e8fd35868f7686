"""notebooks/04-focus.ipynb in a real JupyterLab: run it, drive every control, read the charts back.

Dashboard (outer classes ``sw-dashboard sw-focus``): pickers ``sw-supervisee``, ``sw-period``,
``sw-episodes``, ``sw-client``; panes ``sw-status``, ``sw-error``; Tab ``sw-tabs`` ("Overview",
"Timeline", "Caseload", "vs service"), only the visible tab drawn: ``sw-focus-summary`` (table
``sw-focus-look``), ``sw-focus-timeline`` (chart ``sw-chart-focus-timeline``), ``sw-focus-caseload``
(chart ``sw-chart-focus-caseload``), ``sw-focus-compare`` (charts ``sw-chart-focus-compare`` and
``sw-chart-focus-link``).

Oracles from the raw demo files (tests/browser/demo_oracles.py): the supervisee's clients in the
period (one point each on the caseload chart) and a client's attended sessions in the period (one
mark each on the timeline).
"""

from __future__ import annotations

import re
import time
from functools import partial
from pathlib import Path

import pytest

from . import dash
from . import demo_oracles as oracle

NOTEBOOK = "04-focus.ipynb"

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
D = ".sw-dashboard.sw-focus"
SUPERVISEE, PERIOD, EPISODES, CLIENT = (f"{D} .sw-supervisee", f"{D} .sw-period", f"{D} .sw-episodes",
                                        f"{D} .sw-client")
STATUS, ERROR, TABS = f"{D} .sw-status", f"{D} .sw-error", f"{D} .sw-tabs"
SUMMARY, LOOK = f"{D} .sw-focus-summary", f"{D} .sw-focus-summary .sw-focus-look"
TIMELINE = f"{D} .sw-focus-timeline .sw-chart.sw-chart-focus-timeline"
CASELOAD = f"{D} .sw-focus-caseload .sw-chart.sw-chart-focus-caseload"
COMPARE = f"{D} .sw-focus-compare .sw-chart.sw-chart-focus-compare"
LINK = f"{D} .sw-focus-compare .sw-chart.sw-chart-focus-link"

T_OVERVIEW, T_TIMELINE, T_CASELOAD, T_COMPARE = "Overview", "Timeline", "Caseload", "vs service"


@pytest.fixture(scope="module")
def raw():
    return oracle.load_raw()


status_clients = partial(dash.status_clients, status=STATUS)


assert_no_dashboard_error = partial(dash.assert_no_dashboard_error, error=ERROR)


wait_title = dash.wait_title


def timeline_clients(data) -> dict[str, int]:
    """{client id: marks} of the timeline (y labels are 'C00337 · goal, goal')."""
    out: dict[str, int] = {}
    for t in data:
        for y in t.get("y") or []:
            cid = oracle.client_id_of(str(y))
            assert cid, f"timeline label without a client id: {y!r}"
            out[cid] = out.get(cid, 0) + 1
    return out


def caseload_points(data) -> list[str]:
    """Client ids of the caseload chart's points (each point's text is its client id)."""
    out = []
    for t in data:
        text = t.get("text")
        if isinstance(text, list):
            out += [str(x) for x in text]
    return out


def supervisee_marker(data) -> str | None:
    names = [str(t.get("name")) for t in data]
    hits = {n for n in names if n.endswith("(this supervisee)")}
    assert len(hits) <= 1, names
    return next(iter(hits), None)


def y_labels(lab, scope: str) -> list[str]:
    """The y tick labels plotly actually drew (it drops category labels that do not fit)."""
    return lab.page.evaluate(
        "sel => Array.from(document.querySelectorAll(sel + ' .js-plotly-plot .yaxislayer-above .ytick text'))"
        ".map(t => t.textContent)", scope)


def check_rows_labelled(lab, marks: dict[str, int], state: str, product: list[str]) -> None:
    """Every client row of the timeline must carry its label, or rows cannot be told apart."""
    labelled = {oracle.client_id_of(t) for t in y_labels(lab, TIMELINE)}
    missing = sorted(set(marks) - labelled)
    if missing:
        box = lab.plot_box(TIMELINE) or {}
        product.append(
            f"Timeline ({state}): {len(marks)} client rows but only {len(marks) - len(missing)} labels drawn "
            f"(unlabelled: {', '.join(missing)}); the figure is {box.get('svg_h', 0):.0f} px tall and the title, "
            "two-line subtitle and wrapped legend leave the rows a few px each, so plotly thins the category "
            "labels. supervision/figures/focus.py focus_timeline: height=max(340, 26 * n + 200) is too little for "
            "small n; reserve the header room separately (e.g. 26 * n + 320, or a larger top margin) and/or "
            "draw every label (yaxis tickmode='array', tickvals = the rows).")


check_seen = dash.check_seen


def test_focus(lab, raw, browser_timings):
    nb = REPO / "notebooks" / NOTEBOOK
    if not nb.is_file():
        pytest.fail(f"{nb} does not exist", pytrace=False)
    unseen: list[str] = []
    product: list[str] = []  # product problems: reported together at the end, after every other check

    # --- open, run all ----------------------------------------------------------------------
    browser_timings("focus: open -> kernel idle", lab.open(NOTEBOOK))
    browser_timings("focus: run all cells", lab.run_all())
    lab.page.locator(D).first.wait_for(state="visible")
    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    assert lab.page.locator(D).count() == 1, "expected exactly one focus dashboard"
    for sel in (SUPERVISEE, PERIOD, EPISODES, CLIENT, STATUS, ERROR, TABS, SUMMARY, TIMELINE, CASELOAD, COMPARE, LINK):
        assert lab.page.locator(sel).count() == 1, f"{sel} not found (once) in the dashboard"
    assert_no_dashboard_error(lab)
    tabs = [t.strip() for t in lab.page.locator(f"{TABS} .lm-TabBar-tabLabel").all_text_contents()]
    assert tabs == [T_OVERVIEW, T_TIMELINE, T_CASELOAD, T_COMPARE], tabs
    assert lab.current_tab(TABS) == T_OVERVIEW

    supervisees = lab.options(SUPERVISEE)
    first_id = next(o for o in supervisees if o["selected"])["label"].split(" ")[0]
    mine = oracle.caseload_clients(raw, first_id)
    assert status_clients(lab, first_id) == len(mine)

    # --- Overview -----------------------------------------------------------------------------
    lab.wait_for_text(f"{SUMMARY} h3", rf"^Session focus: {re.escape(first_id)}$")
    overview = lab.text(SUMMARY)
    assert re.search(r"agreed goals: \d+%", overview), overview
    look = lab.table_rows(LOOK)
    if look:
        listed = {r[0] for r in look[1:]}
        assert listed <= mine, f"clients to look at who are not {first_id}'s: {sorted(listed - mine)}"
    lab.screenshot(f"overview-{first_id}", D)

    # --- Timeline -------------------------------------------------------------------------------
    t0 = time.monotonic()
    lab.open_tab(TABS, T_TIMELINE)
    data = lab.wait_for_plot(TIMELINE)
    browser_timings("focus: open Timeline tab -> timeline drawn", time.monotonic() - t0)
    marks = timeline_clients(data)
    assert marks and set(marks) <= mine, sorted(set(marks) - mine)
    m = re.search(r"\((\d+) clients?, (\d+) sessions\)", wait_title(lab, TIMELINE, rf"{re.escape(first_id)}"))
    assert m and int(m.group(1)) == len(marks) and int(m.group(2)) == sum(marks.values()), (m and m.group(0), len(marks))
    for cid, n in marks.items():
        assert n <= oracle.attended_in_period(raw, cid), (cid, n)
    timeline_first = set(marks)
    check_rows_labelled(lab, marks, f"{first_id}, whole export", product)
    check_seen(lab, TIMELINE, f"timeline {first_id}", unseen)
    lab.screenshot(f"timeline-{first_id}", D)

    # --- Caseload -------------------------------------------------------------------------------
    lab.open_tab(TABS, T_CASELOAD)
    data = lab.wait_for_plot(CASELOAD)
    pts = caseload_points(data)
    assert sorted(pts) == sorted(mine), (len(pts), len(mine))
    check_seen(lab, CASELOAD, f"caseload {first_id}", unseen)
    lab.screenshot(f"caseload-{first_id}", D)

    # --- vs service: both charts mark the supervisee; then change the supervisee here ----------
    lab.open_tab(TABS, T_COMPARE)
    cmp_data = lab.wait_for_plot(COMPARE)
    link_data = lab.wait_for_plot(LINK)
    assert supervisee_marker(cmp_data) == f"{first_id} (this supervisee)", [t.get("name") for t in cmp_data]
    assert supervisee_marker(link_data) in (f"{first_id} (this supervisee)", None), [t.get("name") for t in link_data]
    check_seen(lab, COMPARE, "comparison", unseen)
    check_seen(lab, LINK, "focus-alliance link", unseen)
    lab.screenshot(f"compare-{first_id}", D)

    other = supervisees[1]
    sup = other["label"].split(" ")[0]
    lab.select(SUPERVISEE, other["value"])
    cmp_data, dt = lab.wait_for_plot_change(COMPARE, cmp_data)
    browser_timings("focus: change supervisee -> comparison updated", dt)
    assert supervisee_marker(cmp_data) == f"{sup} (this supervisee)", [t.get("name") for t in cmp_data]
    link_new = lab.wait_for_plot(LINK)
    if supervisee_marker(link_data) is not None:
        link_new, _ = lab.wait_for_plot_change(LINK, link_data)
        assert supervisee_marker(link_new) == f"{sup} (this supervisee)", [t.get("name") for t in link_new]
    theirs = oracle.caseload_clients(raw, sup)
    assert status_clients(lab, sup) == len(theirs)
    assert_no_dashboard_error(lab)
    lab.screenshot(f"compare-{sup}", D)

    lab.open_tab(TABS, T_CASELOAD)
    wait_title(lab, CASELOAD, rf", {re.escape(sup)}\b")
    data = lab.wait_for_plot(CASELOAD)
    assert sorted(caseload_points(data)) == sorted(theirs)

    lab.open_tab(TABS, T_TIMELINE)
    wait_title(lab, TIMELINE, rf", {re.escape(sup)}\b")
    data = lab.wait_for_plot(TIMELINE)
    marks = timeline_clients(data)
    assert marks and set(marks) <= theirs and not set(marks) & timeline_first, sorted(marks)

    # --- period: last 3 months (on the timeline) ------------------------------------------------
    lab.select(PERIOD, "Last 3 months")
    data, dt = lab.wait_for_plot_change(TIMELINE, data)
    browser_timings("focus: change period -> timeline updated", dt)
    theirs_3m = oracle.caseload_clients(raw, sup, "Last 3 months")
    lab.wait_for_text(STATUS, r"\d\d \w{3} \d{4} to \d\d \w{3} \d{4}")
    assert status_clients(lab, sup) == len(theirs_3m)
    marks_3m = timeline_clients(data)
    assert marks_3m and set(marks_3m) <= theirs_3m, sorted(set(marks_3m) - theirs_3m)
    for cid, n in marks_3m.items():
        assert n == oracle.attended_in_period(raw, cid, "Last 3 months"), (cid, n)
    assert sum(marks_3m.values()) < sum(marks.values())
    check_rows_labelled(lab, marks_3m, f"{sup}, last 3 months", product)
    assert_no_dashboard_error(lab)
    check_seen(lab, TIMELINE, f"timeline {sup} 3 months", unseen)
    lab.screenshot(f"timeline-{sup}-last-3-months", D)

    lab.open_tab(TABS, T_CASELOAD)
    lab.page.wait_for_function(
        "([sel, n]) => { const d = window.__swPlotData(sel);"
        " return !!d && d.reduce((a, t) => a + (Array.isArray(t.text) ? t.text.length : 0), 0) === n; }",
        arg=[f"{CASELOAD} .js-plotly-plot", len(theirs_3m)], timeout=15_000, polling=50)
    assert sorted(caseload_points(lab.plot_data(CASELOAD))) == sorted(theirs_3m)
    check_seen(lab, CASELOAD, f"caseload {sup} 3 months", unseen)

    # --- client: one client's timeline ----------------------------------------------------------
    lab.open_tab(TABS, T_TIMELINE)
    before = lab.wait_for_plot(TIMELINE)
    pick = max(sorted(marks_3m), key=lambda c: marks_3m[c])
    t0 = time.monotonic()
    lab.select(CLIENT, pick)
    data, _ = lab.wait_for_plot_change(TIMELINE, before)
    browser_timings("focus: pick client -> timeline updated", time.monotonic() - t0)
    lab.wait_for_text(STATUS, rf"client {pick}\b")
    one = timeline_clients(data)
    assert one == {pick: oracle.attended_in_period(raw, pick, "Last 3 months")}, one
    wait_title(lab, TIMELINE, r"\(1 client, \d+ sessions\)")
    assert_no_dashboard_error(lab)
    check_seen(lab, TIMELINE, f"timeline client {pick}", unseen)
    lab.screenshot(f"timeline-client-{pick}", D)

    # --- the overview follows the supervisee --------------------------------------------------------
    lab.open_tab(TABS, T_OVERVIEW)
    lab.wait_for_text(f"{SUMMARY} h3", rf"^Session focus: {re.escape(sup)}$")
    text = lab.text(SUMMARY)
    assert text != overview
    assert_no_dashboard_error(lab)

    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    lab.assert_no_external_requests()
    assert not unseen, "charts hold data but cannot be seen:\n" + "\n".join(unseen)
    assert not product, "product problems:\n" + "\n".join(product)
