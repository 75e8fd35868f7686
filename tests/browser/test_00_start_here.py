"""notebooks/00-start-here.ipynb in a real JupyterLab: run it, read it, drive it.

The notebook holds one dashboard (outer class ``sw-start``) with: ``sw-source`` (Dropdown: demo /
folder), ``sw-path`` (Text), ``sw-load`` (Button), ``sw-summary`` and ``sw-report`` (HTML),
``sw-clinician`` (Dropdown: ``all`` + clinician ids) and the chart ``sw-chart sw-chart-monthly`` (an
``Output`` showing a plotly mime bundle: sessions per month by attendance; replaced on every update,
so it is re-queried, never held). Run-all loads the demo clinic. When an export cannot be used,
the clinician picker, the chart and its help text are hidden.

Oracles are independent of the package: the chart's numbers are recomputed with plain pandas from
the demo's ``sessions.csv``; the broken exports are made here, so the test knows exactly which file,
line and value the report must name.
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

# A taller browser window (a maximised one): plots set to plotly's "responsive" mode were seen to
# collapse to zero height on this resize.
TALL_WINDOW = 1700

NOTEBOOK = "00-start-here.ipynb"

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
S = ".sw-start"
SOURCE, PATH, LOAD = f"{S} .sw-source", f"{S} .sw-path", f"{S} .sw-load"
SUMMARY, REPORT, CLINICIAN = f"{S} .sw-summary", f"{S} .sw-report", f"{S} .sw-clinician"
CHART = f"{S} .sw-chart.sw-chart-monthly"
CHART_HELP = "How to read this"  # the chart's help text (an HTML widget without a class of its own)
STATUS, ERROR = f"{S} .sw-status", f"{S} .sw-error"

BAD_DATE = "2024-02-30"  # an impossible date: the row must be quarantined and reported


def demo_folder() -> Path:
    try:
        from supervision import demo_path

        return Path(demo_path())
    except Exception:  # noqa: BLE001 - fall back to the checkout's copy
        return REPO / "data" / "demo"


def pick(options: list[dict], wanted: str) -> str:
    """The ``<option>`` value for the Python value ``wanted``.

    ipywidgets 8 only sends labels to the browser, so ``("A folder of my own", "folder")`` is
    ``<option value="A folder of my own">``: use the exact value if present, else the one option
    whose label mentions ``wanted``.
    """
    exact = [o["value"] for o in options if o["value"] == wanted]
    if exact:
        return exact[0]
    fuzzy = [o["value"] for o in options if wanted.lower() in o["label"].lower()]
    assert len(fuzzy) == 1, f"no single option for {wanted!r} in {[o['label'] for o in options]}"
    return fuzzy[0]


def chart_totals(data: list[dict]) -> tuple[int, dict[str, int], list[int]]:
    """(total points' sum, per-month sums keyed YYYY-MM, sorted per-trace sums) of a bar chart."""
    per_month: dict[str, int] = {}
    per_trace = []
    for trace in data:
        xs, ys = trace.get("x") or [], trace.get("y") or []
        assert len(xs) == len(ys), f"trace {trace.get('name')}: {len(xs)} x vs {len(ys)} y"
        per_trace.append(int(sum(ys)))
        for x, y in zip(xs, ys):
            per_month[str(x)[:7]] = per_month.get(str(x)[:7], 0) + int(y)
    return sum(per_trace), {k: v for k, v in per_month.items() if v}, sorted(per_trace)


def csv_totals(sessions_csv: Path, clinician: str | None) -> tuple[int, dict[str, int], list[int]]:
    """The same three numbers recomputed from the raw file with plain pandas."""
    import pandas as pd

    s = pd.read_csv(sessions_csv, dtype=str)
    if clinician is not None:
        s = s[s["clinician_id"] == clinician]
    months = s["session_date"].str[:7].value_counts().to_dict()
    by_att = sorted(int(v) for v in s["attendance"].value_counts())
    return len(s), {k: int(v) for k, v in months.items()}, by_att


def clinician_in_label(label: str, sessions_csv: Path) -> str:
    """The one clinician id (from the raw file) that an option label names, e.g. 'T01 (...)'."""
    import pandas as pd

    ids = pd.read_csv(sessions_csv, usecols=["clinician_id"], dtype=str)["clinician_id"].unique()
    hits = [i for i in ids if re.search(rf"(?<![\w-]){re.escape(i)}(?![\w-])", label)]
    assert len(hits) == 1, f"option {label!r} names clinician ids {hits} (expected exactly one)"
    return hits[0]


def summary_numbers(text: str) -> dict[str, int]:
    out = {}
    for noun in ("clinician", "client", "session"):
        m = re.search(rf"(\d[\d,]*)\s+(?:[a-z]+\s+)?{noun}s?\b", text, re.I)
        if m:
            out[noun] = int(m.group(1).replace(",", ""))
    return out


@pytest.fixture(scope="module")
def broken_exports(tmp_path_factory) -> dict[str, dict]:
    """Two broken copies of the demo: one without sessions, one with an impossible date."""
    demo = demo_folder()
    assert (demo / "sessions.csv").is_file(), f"the demo clinic is expected as CSV files in {demo}"
    root = tmp_path_factory.mktemp("broken-exports")

    missing = root / "no-sessions"
    shutil.copytree(demo, missing)
    (missing / "sessions.csv").unlink()

    bad = root / "impossible-date"
    shutil.copytree(demo, bad)
    with open(bad / "sessions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    broken = list(rows[1])
    broken[header.index("session_date")] = BAD_DATE
    # Insert as line 2 (first data row): the report lists errors by table and row, so it is shown
    # even if the demo ever gains more problems than the report displays.
    rows.insert(1, broken)
    with open(bad / "sessions.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return {
        "missing": {"path": missing},
        "bad_row": {"path": bad, "line": 2, "value": BAD_DATE, "client": broken[header.index("client_id")]},
    }


def counts_table(lab) -> dict[str, dict[str, int]] | None:
    """The summary's rows read / loaded / quarantined table, if it shows one, by table name."""
    rows = lab.table_rows(SUMMARY)
    if not rows:
        return None
    header = [h.lower() for h in rows[0]]
    cols = {}
    for key in ("read", "loaded", "quarantined"):
        hits = [i for i, h in enumerate(header) if key in h]
        if len(hits) != 1:
            return None
        cols[key] = hits[0]
    return {r[0]: {k: int(r[i]) for k, i in cols.items()} for r in rows[1:] if r}


def wait_for_loaded(lab, path) -> str:
    """Wait until the status pane (sw-status) says this path was read: "Loaded PATH..." or, for an
    unusable export, "Read PATH, but it cannot be used yet"."""
    return lab.wait_for_text(STATUS, r"(Loaded|Read)\b.*" + re.escape(Path(path).name))


def chart_parts_visible(lab) -> dict[str, bool]:
    """Whether the clinician picker, the chart and the chart's help text are displayed (not
    ``display: none`` themselves or through an ancestor). Whether the chart can actually be seen
    is checked separately (:func:`check_chart_seen`): it may be displayed with zero height."""
    displayed = "el => el.checkVisibility()"
    return {
        "clinician picker": lab.page.locator(CLINICIAN).first.evaluate(displayed),
        "chart": lab.page.locator(CHART).first.evaluate(displayed),
        "chart help": lab.page.locator(S).get_by_text(CHART_HELP).first.evaluate(displayed),
    }


def check_chart_seen(lab, state: str, unseen: list[str]) -> None:
    """Note (for one assertion at the end of the test) if the chart holds a plot nobody can see."""
    problem = lab.plot_shown_problem(CHART)
    if problem:
        unseen.append(f"{state}: {problem}")


def assert_no_dashboard_error(lab) -> None:
    """Callbacks report exceptions in the dashboard's error pane (class sw-error): it must be empty."""
    if lab.page.locator(ERROR).count():
        shown = lab.text(ERROR)
        assert not shown, f"the dashboard shows an error: {shown[:2000]}"


def test_start_here(lab, broken_exports, browser_timings):
    nb = REPO / "notebooks" / NOTEBOOK
    if not nb.is_file():
        pytest.fail(f"{nb} does not exist", pytrace=False)

    # --- open, run all: the demo clinic loads by itself ------------------------------------
    unseen: list[str] = []  # charts that hold data but take no room on the page (asserted last)
    browser_timings("start-here: open -> kernel idle", lab.open(NOTEBOOK))
    # run-all records when the chart first plotted points (counted from open)
    browser_timings("start-here: run all cells", lab.run_all(first_plot=CHART))
    lab.wait_for_plot(CHART)
    browser_timings(
        "start-here: open -> first rendered chart",
        lab.timings.get("open_to_first_plot", lab.since_open()),
    )
    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    assert lab.page.locator(S).count() == 1, "expected exactly one .sw-start dashboard"
    for sel in (SOURCE, PATH, LOAD, STATUS, ERROR, SUMMARY, REPORT, CLINICIAN, CHART):
        assert lab.page.locator(sel).count() == 1, f"{sel} not found (once) in the dashboard"
    assert lab.page.locator(f"{CHART} .js-plotly-plot").count() == 1, "expected one plot in the chart"
    assert all(chart_parts_visible(lab).values()), chart_parts_visible(lab)
    assert_no_dashboard_error(lab)
    lab.wait_for_text(STATUS, r"Loaded\b.*(no problems|with problems)")

    summary = lab.wait_for_text(SUMMARY, r"\d")
    nums = summary_numbers(summary)
    assert set(nums) == {"clinician", "client", "session"}, f"summary lacks counts: {summary!r}"
    assert all(v > 0 for v in nums.values()), f"summary counts: {nums} in {summary!r}"
    assert re.search(r"\b20\d\d\b", summary), f"summary has no date range: {summary!r}"
    assert re.search(r"measure", summary, re.I), f"summary does not list measures: {summary!r}"
    report = lab.text(REPORT)
    assert report, "the validation report area is empty"

    clinicians = lab.options(CLINICIAN)
    assert clinicians[0]["selected"] and "all" in clinicians[0]["label"].lower(), clinicians
    assert len(clinicians) - 1 == nums["clinician"], (
        f"{len(clinicians) - 1} clinicians to choose from, the summary says {nums['clinician']}"
    )

    sessions_csv = demo_folder() / "sessions.csv"
    before = lab.plot_data(CHART)
    total_all, months_all, by_att_all = chart_totals(before)
    assert total_all == nums["session"], (
        f"the chart shows {total_all} sessions, the summary {nums['session']}"
    )
    demo_clean = bool(re.search(r"no problems", report, re.I))
    if demo_clean:  # every row loaded: the chart must equal the raw file, month by month
        assert (total_all, months_all, by_att_all) == csv_totals(sessions_csv, None)
    title = lab.page.locator(f"{CHART} .gtitle").first.text_content() or ""
    assert re.search(r"all clinicians", title, re.I), f"chart title: {title!r}"
    check_chart_seen(lab, "demo loaded", unseen)
    lab.screenshot("demo-loaded", S)
    lab.docs_screenshot("start-here-demo", S)

    # --- another clinician: the chart changes, and matches that clinician's rows ------------
    other = next(o for o in clinicians if not o["selected"])
    lab.select(CLINICIAN, other["value"])
    after, dt = lab.wait_for_plot_change(CHART, before)
    browser_timings("start-here: change clinician -> chart updated", dt)
    total_one, months_one, by_att_one = chart_totals(after)
    assert 0 < total_one < total_all, (total_one, total_all)
    clinician_id = clinician_in_label(other["label"], sessions_csv)
    if demo_clean:
        assert (total_one, months_one, by_att_one) == csv_totals(sessions_csv, clinician_id), (
            f"chart for {other['label']!r} differs from sessions.csv rows of {clinician_id!r}"
        )
    title = lab.page.locator(f"{CHART} .gtitle").first.text_content() or ""
    assert clinician_id in title, f"chart title after picking {clinician_id}: {title!r}"
    assert_no_dashboard_error(lab)
    check_chart_seen(lab, f"clinician {clinician_id}", unseen)
    size = lab.page.viewport_size  # a user makes the window taller: the chart must stay shown
    lab.resize_window(size["width"], TALL_WINDOW)
    check_chart_seen(lab, f"clinician {clinician_id}, after the window was made {TALL_WINDOW} px tall", unseen)
    lab.resize_window(size["width"], size["height"])
    lab.screenshot(f"clinician-{clinician_id}", S)

    # --- a folder of my own, without sessions.csv: unusable, said plainly -------------------
    lab.select(SOURCE, pick(lab.options(SOURCE), "folder"))
    missing = str(broken_exports["missing"]["path"])
    lab.fill(PATH, missing)
    lab.click(LOAD)
    status = wait_for_loaded(lab, missing)
    assert re.search(r"cannot be used yet", status, re.I), f"status: {status!r}"
    report = lab.wait_for_text(REPORT, r"sessions")
    summary = lab.text(SUMMARY)
    both = f"{summary} {report}"
    assert re.search(r"missing|not found|no .*sessions|cannot", both, re.I), both
    assert "sessions.csv" in report, f"the report should name the file to add: {report!r}"
    assert re.search(r"cannot be used yet", summary, re.I), summary
    assert re.search(r"(?<!\d)1 error\b", report), f"the report should count '1 error': {report[:600]!r}"
    assert "Traceback" not in both
    # Nothing to chart: the clinician picker, the chart and its help text are hidden (and the
    # chart holds no stale plot of the demo).
    lab.page.locator(CHART).first.wait_for(state="hidden")
    shown = {k: v for k, v in chart_parts_visible(lab).items() if v}
    assert not shown, f"shown for an unusable export: {sorted(shown)}"
    assert lab.plot_points(CHART) == -1, "the hidden chart still holds a plot"
    assert_no_dashboard_error(lab)
    lab.assert_no_error_outputs()
    lab.screenshot("folder-missing-sessions", S)

    # --- a folder with one impossible date: loaded with that row quarantined and named ------
    bad = broken_exports["bad_row"]
    lab.fill(PATH, str(bad["path"]))
    lab.click(LOAD)
    wait_for_loaded(lab, bad["path"])
    report = lab.wait_for_text(REPORT, re.escape(bad["value"]))
    # The report table: the row that names the bad value also names table, line and column.
    row_text = lab.page.evaluate(
        """([sel, value]) => {
            const rows = Array.from(document.querySelectorAll(sel + ' tr'));
            const r = rows.find(tr => tr.textContent.includes(value));
            return r ? Array.from(r.cells).map(c => c.textContent.trim()) : null;
        }""",
        [REPORT, bad["value"]],
    )
    assert row_text, f"no report table row names {bad['value']!r}: {report[:1500]!r}"
    assert "sessions" in row_text and str(bad["line"]) in row_text and "session_date" in row_text, row_text
    assert re.search(r"quarantin|set aside|not used", report, re.I), report[:1500]
    summary = lab.text(SUMMARY)
    nums_bad = summary_numbers(summary)
    assert nums_bad.get("session") == nums["session"], (
        f"with one row quarantined the summary should still count {nums['session']} valid sessions: {summary!r}"
    )
    # The notebook promises a rows read / loaded / quarantined table that always adds up.
    counts = counts_table(lab)
    assert counts is not None, f"no read/loaded/quarantined table in the summary: {summary!r}"
    assert counts["sessions"]["quarantined"] == 1, counts
    for table, c in counts.items():
        assert c["read"] == c["loaded"] + c["quarantined"], (table, c)
    assert re.search(r"(?<!\d)1 error\b", report), f"the report should count '1 error': {report[:600]!r}"
    # Usable again: picker, chart and help are back, and the chart plots the loaded sessions.
    lab.page.locator(CHART).first.wait_for(state="visible")
    data = lab.wait_for_plot(CHART)
    assert all(chart_parts_visible(lab).values()), chart_parts_visible(lab)
    assert chart_totals(data)[0] == nums_bad["session"], (chart_totals(data)[0], nums_bad)
    check_chart_seen(lab, "folder with an impossible date", unseen)
    assert_no_dashboard_error(lab)
    lab.assert_no_error_outputs()
    lab.assert_no_widget_fallback()
    lab.screenshot("folder-impossible-date", S)
    lab.assert_no_external_requests()
    assert not unseen, "the chart holds data but cannot be seen:\n" + "\n".join(unseen)
