"""Voila smoke test: notebooks/00-start-here.ipynb served as an app renders its dashboard.

Voila runs the notebook on page load (no run-all step). The requirement is that *the workbook*
makes no outside requests. Voila's own ``lab`` page template hard-codes CDN stylesheets (Font
Awesome from cdn.jsdelivr.net): the guard still blocks them; this test sets aside exactly the URLs
written in the installed template file, reports them as a note, and fails on anything else.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from . import jlab

NOTEBOOK = "00-start-here.ipynb"

pytestmark = pytest.mark.browser

S = ".sw-start"
CHART, SUMMARY, CLINICIAN = f"{S} .sw-chart.sw-chart-monthly", f"{S} .sw-summary", f"{S} .sw-clinician"

# Resolves when the chart's first plot appears with its data, with that data's points: what the
# page shows *before* any interaction (the figure must come from the Output's saved state).
FIRST_PLOT_JS = """
sel => { const el = document.querySelector(sel);
         if (!el || !Array.isArray(el.data)) return false;
         return {points: window.__swPlotPoints(sel), data: window.__swPlotData(sel)}; }
"""


def chart_sessions(data) -> int:
    return int(sum(sum(t.get("y") or []) for t in data or []))


def voila_template_urls() -> set[str]:
    """Outside URLs that Voila's installed ``lab`` template links by itself (not the workbook)."""
    urls: set[str] = set()
    for base in {Path(sys.prefix), Path(sys.base_prefix)}:
        tdir = base / "share" / "jupyter" / "voila" / "templates" / "lab"
        for f in tdir.glob("*.j2"):
            urls |= set(re.findall(r"""(?:href|src)=["'](https?://[^"']+)["']""", f.read_text()))
    return urls


@pytest.fixture(scope="module")
def voila_server(browser_available, workspace, tmp_path_factory):
    nb = workspace / NOTEBOOK
    if not nb.is_file():
        pytest.fail(f"{NOTEBOOK} is not in notebooks/", pytrace=False)
    server = jlab.start_voila(nb, tmp_path_factory.mktemp("voila-state"))
    try:
        yield server
    finally:
        server.stop()


def test_voila_renders_start_here(web, voila_server, browser_timings, browser_notes):
    web.notebook = NOTEBOOK
    t0 = time.monotonic()
    web.page.goto(voila_server.url("/"), wait_until="domcontentloaded")
    web.page.locator(S).first.wait_for(state="visible", timeout=120_000)
    browser_timings("voila: open -> dashboard visible", time.monotonic() - t0)
    # The first plot that appears in the chart, read as soon as it exists (no interaction yet).
    first = web.page.wait_for_function(
        FIRST_PLOT_JS, arg=f"{CHART} .js-plotly-plot", timeout=60_000, polling=20
    ).json_value()
    browser_timings("voila: open -> first chart (plot element with data)", time.monotonic() - t0)
    summary = web.wait_for_text(SUMMARY, r"\d+ clinicians?", timeout=60)
    web.page.wait_for_timeout(300)  # let plotly finish laying out before measuring what is seen
    first_box = web.plot_box(CHART)
    first_unseen = web.plot_shown_problem(CHART)
    web.screenshot("voila-initial", S)

    assert web.page.locator(S).count() == 1
    body = web.text("body")
    assert "There was an error when executing cell" not in body, body[:3000]
    web.assert_no_error_outputs()
    web.assert_no_widget_fallback()
    assert not web.text(f"{S} .sw-error"), web.text(f"{S} .sw-error")
    assert re.search(r"\d+\s+clients?", summary), summary

    # At first render the chart already plots the demo: every scheduled session the summary counts.
    m = re.search(r"(\d[\d,]*)\s+scheduled sessions", summary)
    assert m, f"summary has no session count: {summary!r}"
    n_sessions = int(m.group(1).replace(",", ""))
    assert first["points"] > 0, (
        f"in Voila the chart's first plot is empty (no points) although the summary reports "
        f"{n_sessions} sessions: {summary[:160]!r}"
    )
    assert chart_sessions(first["data"]) == n_sessions, (
        f"Voila's first chart sums to {chart_sessions(first['data'])} sessions, the summary says {n_sessions}"
    )

    # The kernel behind the page answers: another clinician redraws the chart.
    before = web.plot_data(CHART)
    other = next(o for o in web.options(CLINICIAN) if not o["selected"])
    web.select(CLINICIAN, other["value"])
    after, dt = web.wait_for_plot_change(CHART, before)
    browser_timings("voila: change clinician -> chart updated", dt)
    assert 0 < chart_sessions(after) < n_sessions, (chart_sessions(after), n_sessions)
    web.page.wait_for_timeout(300)
    after_unseen = web.plot_shown_problem(CHART)
    web.screenshot("voila-clinician", S)

    template = {unquote(u) for u in voila_template_urls()}
    aside = web.guard.set_aside(lambda r: unquote(r["url"]) in template)
    if aside:
        browser_notes(
            "Voila's lab template (not the workbook) requested, and the guard blocked: "
            + ", ".join(f"{r['url']} ({r['resource_type']})" for r in aside)
        )
    web.assert_no_external_requests()

    # Holding data is not being seen: the chart must take room on the page.
    unseen = [f"{state}: {p}" for state, p in (("first render", first_unseen), ("after a change", after_unseen)) if p]
    assert not unseen, (
        "in Voila the chart holds the right data but cannot be seen:\n" + "\n".join(unseen)
        + f"\n(first render box: {first_box})"
    )
