"""The saved supervision report (``supervision report``) opened from disk in a real Chromium.

The report is one self-contained HTML file (plotly.js embedded once, inline CSS). It must render
offline: the page is opened as a ``file:`` URL in a context whose guard lets only ``file:``,
``data:``, ``blob:`` and loopback through and records every other request (there must be none),
and every chart must be drawn (an SVG of non-zero size, with data). A full-page screenshot
``report--T01.png`` is saved for a person to look at.

The notes section is fed from a notes database made in the test's tmp dir (never the default one
inside the repository).

No ``NOTEBOOK`` declaration: this module drives no notebook.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from . import jlab
from .demo_oracles import demo_folder

pytestmark = pytest.mark.browser

CLINICIAN = "T01"

# Every plot on the page: its data, and the size of its drawing (the largest svg.main-svg).
PLOTS_JS = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map((el, i) => {
    let w = 0, h = 0;
    for (const s of el.querySelectorAll('svg.main-svg')) {
        const b = s.getBoundingClientRect(); w = Math.max(w, b.width); h = Math.max(h, b.height);
    }
    const box = el.getBoundingClientRect();
    const t = el.querySelector('.gtitle');
    return {i, traces: Array.isArray(el.data) ? el.data.length : -1, svg_w: w, svg_h: h, box_w: box.width, box_h: box.height,
            title: t ? t.textContent : ''};
})
"""

# Points per plot (sum over traces of the longest of x / y / z / values), decoding typed arrays.
POINTS_JS = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
    let n = 0;
    for (const t of el.data || []) {
        n += Math.max(...['x', 'y', 'z', 'values'].map(k => {
            const v = t[k];
            if (!v) return 0;
            if (Array.isArray(v) || ArrayBuffer.isView(v)) return v.length;
            if (typeof v === 'object' && typeof v.bdata === 'string') return 1;  // still encoded: has data
            return 0;
        }));
    }
    return n;
})
"""


@pytest.fixture
def report_file(tmp_path) -> dict:
    """A notes database with one meeting, note and action for T01, then the report via the CLI."""
    from supervision.notes import NotesStore

    notes = tmp_path / "notes.sqlite"
    note_text = f"Browser-test note for the report {time.time_ns()}"
    action_text = "Browser-test action: ask about the last session"
    with NotesStore(notes) as store:
        meeting = store.start_meeting("S01", CLINICIAN, date.today())
        store.add_note(note_text, author="S01", meeting_id=meeting)
        store.add_action(meeting, action_text, "S01")
    out = tmp_path / "report.html"
    exe = Path(sys.executable).parent / "supervision"
    cmd = ([str(exe)] if exe.is_file() else [sys.executable, "-m", "supervision.cli"]) + [
        "report", str(demo_folder()), "--clinician", CLINICIAN, "--out", str(out), "--notes", str(notes)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    took = time.monotonic() - t0
    assert r.returncode == 0, f"`{' '.join(cmd)}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    assert out.is_file() and out.stat().st_size > 0, r.stdout
    return {"path": out, "note": note_text, "action": action_text, "seconds": took}


def test_report_renders_offline(file_web, report_file, browser_timings):
    page = file_web.page
    file_web.notebook = "report"
    path: Path = report_file["path"]
    browser_timings("report: `supervision report` for T01 (CLI, incl. start-up)", report_file["seconds"])
    html_text = path.read_text(encoding="utf-8")
    n_charts = len(re.findall(r"<div class='chart'>", html_text))
    assert n_charts >= 4, f"the report holds only {n_charts} charts"

    t0 = time.monotonic()
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_function(
        "n => { const p = document.querySelectorAll('.js-plotly-plot');"
        " return p.length >= n && Array.from(p).every(el => el.querySelector('svg.main-svg')"
        " && Array.isArray(el.data)); }",
        arg=n_charts, timeout=60_000, polling=50,
    )
    browser_timings("report: open file -> every chart drawn", time.monotonic() - t0)

    # what the report says
    h1 = page.locator("h1").first.text_content() or ""
    assert h1.strip() == f"Supervision report: {CLINICIAN}", h1
    body = re.sub(r"\s+", " ", page.locator("body").text_content() or "")
    for heading in ("Agenda", "Caseload compared with the service", "Charts", "Outcome",
                    "Notes and agreed actions"):
        assert page.locator("h2", has_text=heading).count() >= 1, f"no section {heading!r}"
    assert report_file["note"] in body, "the note from the notes database is not in the report"
    assert report_file["action"] in body, "the action from the notes database is not in the report"

    # every chart drawn, with data, taking room on the page
    plots = page.evaluate(PLOTS_JS)
    points = page.evaluate(POINTS_JS)
    assert len(plots) == n_charts, (len(plots), n_charts)
    problems = []
    for p, n in zip(plots, points):
        if p["traces"] < 1 or n < 1:
            problems.append(f"plot {p['i']} ({p['title']!r}) has no data: {p['traces']} traces, {n} points")
        if p["svg_w"] < 50 or p["svg_h"] < 50:
            problems.append(f"plot {p['i']} ({p['title']!r}) is drawn {p['svg_w']:.0f}x{p['svg_h']:.0f} px")
        elif p["box_h"] < 0.9 * p["svg_h"]:
            problems.append(f"plot {p['i']} ({p['title']!r}) is drawn {p['svg_h']:.0f} px tall in a "
                            f"{p['box_h']:.0f} px box")
    assert not problems, "charts not drawn:\n" + "\n".join(problems)

    shot = jlab.screenshot_dir() / f"report--{CLINICIAN}.png"
    page.screenshot(path=str(shot), full_page=True, animations="disabled")
    file_web.screenshots.append(shot)
    assert shot.stat().st_size > 0

    file_web.assert_no_external_requests()
    assert not file_web.page_errors, file_web.page_errors
    assert not file_web.console_errors, file_web.console_errors
