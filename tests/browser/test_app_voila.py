"""The workbook as one Voila app (``make app``: notebooks/app.ipynb, preheated kernel), in a real browser.

- Opening the app shows the supervision agenda (timed: open -> agenda, with the kernel heated).
- Every page of the navigation renders: no code cell, no error, no widget shown as text, and no
  request leaves the machine: served as ``make app`` does, with the workbook's template (Voila's
  ``lab`` template without its Font Awesome CDN links), every request must go to 127.0.0.1.
- A supervisee change redraws every chart of the visible page (timed, reported, not asserted).
- The choice (supervisee, page) survives a reload; a remembered folder that is gone falls back
  to the demo with a visible message.

Screenshots of every page (the first screen at 1440 x 900, what a new user sees) go to
``$SW_DOCS_SCREENSHOT_DIR/app-<page>.png`` when that variable is set.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from . import jlab
from .test_voila import voila_template_urls

pytestmark = pytest.mark.browser

NOTEBOOK = "app.ipynb"
HEAT_SECONDS = 15  # a user opens the browser some seconds after `make app`; the pool kernel is heated by then

# Page key -> (nav label, selector that shows the page is drawn, regular expression its text must match)
PAGES = {
    "start": ("Start", ".sw-app-start .sw-app-summary", r"\d+ clinicians?"),
    "supervision": ("Supervision hour", ".sw-page-supervision .sw-agenda-summary", r"Agenda for"),
    "caseload": ("Caseload", ".sw-page-caseload .sw-caseload-completion", r"Measurement completion"),
    "client": ("Client", ".sw-page-client .sw-story-facts", r"Client C\d+"),
    "alliance": ("Alliance", ".sw-page-alliance .sw-status", r"\d+ clients"),
    "focus": ("Session focus", ".sw-page-focus .sw-status", r"\d+ clients"),
    "adaptation": ("Adaptation", ".sw-page-adaptation .sw-status", r"\d+ clients"),
    "outcome": ("Outcome", ".sw-page-outcome .sw-status", r"\d+ clients"),
    "check": ("Data check", ".sw-page-check .sw-summary", r"\d+ clinicians?"),
}
CLIENT_CHARTS = [".sw-chart-story-outcome", ".sw-chart-story-alliance", ".sw-chart-story-attendance",
                 ".sw-chart-story-focus"]
VIEW = {"width": 1440, "height": 900}
REPO = Path(__file__).resolve().parents[2]
# As `make app`: preheated, and the workbook's template (Voila's lab template without its CDN links).
APP_ARGS = ("--preheat_kernel=True", "--pool_size=1", "--template=workbook")
APP_ENV = {"JUPYTER_PATH": str(REPO / "share" / "jupyter")}


@pytest.fixture(scope="module")
def app_server(browser_available, workspace, tmp_path_factory):
    nb = workspace / NOTEBOOK
    if not nb.is_file():
        pytest.fail(f"{NOTEBOOK} is not in notebooks/", pytrace=False)
    state_dir = tmp_path_factory.mktemp("voila-app")
    state_file = state_dir / "remembered.json"
    server = jlab.start_voila(nb, state_dir, extra_args=APP_ARGS,
                              env_extra={"SUPERVISION_STATE": str(state_file), **APP_ENV})
    server.state_file = state_file
    try:
        time.sleep(HEAT_SECONDS)
        yield server
    finally:
        server.stop()


def _nav(web, key: str):
    label = PAGES[key][0]
    web.page.locator(".sw-nav button").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first.click()


def _page_ok(web, key: str) -> None:
    """The page is drawn, with no code, no error and no widget shown as text."""
    scope = f".sw-page-{key}"
    body = web.text("body")
    assert "There was an error when executing cell" not in body, body[:2000]
    assert "Run All" not in body and "Run → Run" not in body, "the app still tells the user to run cells"
    code = web.page.evaluate("() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea, .jp-InputArea-editor,"
                             " .cm-editor')).filter(e => e.offsetParent !== null).length")
    assert code == 0, f"{key}: {code} code cell(s) visible"
    assert "from supervision" not in body, "code text is shown"
    errors = [e for e in web.page.locator(f"{scope} .sw-error, .sw-app > .sw-error").all_text_contents() if e.strip()]
    assert not errors, f"{key}: {errors}"
    assert "Something went wrong" not in web.text(scope)
    web.assert_no_error_outputs()
    web.assert_no_widget_fallback()


def _shot(web, key: str) -> None:
    out = os.environ.get("SW_DOCS_SCREENSHOT_DIR")
    web.page.mouse.move(0, 0)
    web.page.evaluate("() => window.scrollTo(0, 0)")
    web.page.wait_for_timeout(300)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        web.page.screenshot(path=str(Path(out) / f"app-{key}.png"), animations="disabled")
    web.screenshot(key)


def _pick_supervisee(web, scope: str, clinician: str) -> None:
    opts = web.options(f"{scope} .sw-supervisee")
    label = next(o["value"] for o in opts if o["label"].startswith(clinician))
    web.select(f"{scope} .sw-supervisee", label)


# A chart is redrawn when its plot holds other data than before and plotly has drawn it (its SVG and
# full layout exist); a chart left without a plot counts only when its output is empty (nothing to
# draw for this client). The status line (written after every view) must show ``status`` first.
_REDRAWN_JS = """([sels, before, status]) => {
    if (!document.querySelector('.sw-page-client .sw-status').innerText.includes(status)) return false;
    const done = sels.every((s, i) => {
        const box = document.querySelector(s);
        if (!box) return false;
        const el = box.querySelector('.js-plotly-plot');
        if (!el) return box.querySelector('.jp-OutputArea-output') === null;
        const d = window.__swPlotData(s + ' .js-plotly-plot');
        return d !== null && JSON.stringify(d) !== before[i] && !!el._fullLayout && el.querySelector('.main-svg') !== null;
    });
    return done ? performance.now() : false;
}"""


def _charts_redrawn(web, sels: list[str], act, status: str) -> float:
    """Seconds from the page's own input event (the select's ``change``) to every chart of ``sels``
    redrawn, measured in the page (``performance.now()``), so the test's own round trips are not in it."""
    before = web.page.evaluate("sels => sels.map(s => { const d = window.__swPlotData(s + ' .js-plotly-plot');"
                               " return d === null ? null : JSON.stringify(d); })", sels)
    web.page.evaluate("() => { window.__swT0 = null; document.addEventListener('change', () => {"
                      " if (window.__swT0 === null) window.__swT0 = performance.now(); }, {capture: true, once: true}); }")
    act()
    done = web.page.wait_for_function(_REDRAWN_JS, arg=[sels, before, status], timeout=30_000, polling="raf")
    return (done.json_value() - web.page.evaluate("() => window.__swT0")) / 1000


VOILA_SHUTDOWN_403 = re.compile(r"status of 403 .*\[http://127\.0\.0\.1:\d+/voila/api/shutdown/")


def _voila_shutdown_bug(web, browser_notes) -> None:
    """Set aside Voila's own failed kernel shutdown on page unload (voila#1458, open): its sendBeacon
    POST lacks the _xsrf argument and gets 403. Not the workbook's doing; the old kernel lives until
    the server stops."""
    bug = [e for e in web.console_errors if VOILA_SHUTDOWN_403.search(e)]
    if bug:
        web.console_errors = [e for e in web.console_errors if e not in bug]
        browser_notes(f"Voila's kernel shutdown on reload was refused (403, voila#1458) {len(bug)} time(s)")


def _external_ok(web, browser_notes) -> None:
    """Every request the page made went to 127.0.0.1 (or data:/blob:): the guard recorded none elsewhere.
    Nothing is set aside: the workbook's template has no CDN link (Voila's own lab template has two)."""
    template = {unquote(u) for u in voila_template_urls()}
    assert template, "Voila's lab template links no CDN any more: drop the workbook template"
    web.assert_no_external_requests()
    # ... nor names one in the page, even unrequested (nbconvert's MermaidJS loader wrote two cdnjs URLs)
    cdn = sorted(set(re.findall(r"https?://[^\s\"'<>]*(?:cdn|jsdelivr|unpkg)[^\s\"'<>]*", web.page.content())))
    assert not cdn, f"the app's page names CDN URLs: {cdn}"


def test_app_every_page(web, app_server, browser_timings, browser_notes):
    web.notebook = "app"
    web.page.set_viewport_size(VIEW)
    t0 = time.monotonic()
    web.page.goto(app_server.url("/"), wait_until="domcontentloaded")
    web.wait_for_text(PAGES["supervision"][1], PAGES["supervision"][2], timeout=120)
    browser_timings("app: open -> agenda shown (preheated kernel)", time.monotonic() - t0)
    web.page.locator(".sw-agenda-risk").first.wait_for(state="visible")
    _page_ok(web, "supervision")
    top = web.page.locator(".sw-nav").first.bounding_box()
    agenda = web.page.locator(".sw-agenda-summary").first.bounding_box()
    assert top["y"] < 200 and agenda["y"] < VIEW["height"], f"the agenda starts below the fold: {agenda}"
    _shot(web, "supervision")

    for key in PAGES:
        if key == "supervision":
            continue
        t = time.monotonic()
        _nav(web, key)
        web.wait_for_text(PAGES[key][1], PAGES[key][2], timeout=60)
        if key == "client":
            for chart in CLIENT_CHARTS:
                web.wait_for_plot(f".sw-page-client {chart}")
        browser_timings(f"app: open page {PAGES[key][0]} (first visit)", time.monotonic() - t)
        _page_ok(web, key)
        _shot(web, key)

    # A supervisee change redraws every chart on the visible page (the Client page: four charts).
    _nav(web, "client")
    sels = [f".sw-page-client {c}" for c in CLIENT_CHARTS]
    # Shown again, the page's charts are the pictures plotly's renderer took of them (image/png, drawn
    # as plots on hover): no plot data before the change, then a plot for each chart.
    facts = web.wait_for_text(PAGES["client"][1], PAGES["client"][2], timeout=60)
    t = _charts_redrawn(web, sels, lambda: _pick_supervisee(web, ".sw-page-client", "T05"), "T05:")
    browser_timings("app: supervisee change -> all 4 client charts redrawn", t)
    kernel = re.search(r"updated in (\d+) ms", web.text(".sw-page-client .sw-status"))
    if kernel:  # the kernel's share of it (the page's own status line), the rest is the browser drawing
        browser_timings("app: supervisee change, of which the kernel", int(kernel.group(1)) / 1000)
    assert web.text(PAGES["client"][1]) != facts
    # A client change redraws the story: the facts and every chart (timed, reported, not asserted).
    opts = [o["value"] for o in web.options(".sw-page-client .sw-story-client")]
    for label in opts[1:4]:
        cid = label.split(" ")[0]
        t = _charts_redrawn(web, sels, lambda label=label: web.select(".sw-page-client .sw-story-client", label),
                            f"client {cid}")
        assert f"Client {cid}" in web.text(PAGES["client"][1])
        browser_timings(f"app: client change -> Client page redrawn ({cid})", t)
        kernel = re.search(r"updated in (\d+) ms", web.text(".sw-page-client .sw-status"))
        if kernel:  # the kernel's share of it (the page's own status line), the rest is the browser drawing
            browser_timings(f"app: client change, of which the kernel ({cid})", int(kernel.group(1)) / 1000)
    # ... and the Caseload page follows the same supervisee when opened.
    t = time.monotonic()
    _nav(web, "caseload")
    web.wait_for_text(".sw-page-caseload .sw-caseload-completion", r"Caseload of T05", timeout=30)
    browser_timings("app: Caseload page after a supervisee change (redrawn on opening)", time.monotonic() - t)
    rows = web.table_rows(".sw-page-caseload .sw-caseload-rows")
    assert rows[0][:3] == ["client", "status", "last seen"] and len(rows) > 2, rows[:3]
    _external_ok(web, browser_notes)


def test_app_remembers_the_choice(web, app_server, browser_timings, browser_notes):
    web.notebook = "app"
    web.page.set_viewport_size(VIEW)
    Path(app_server.state_file).write_text(json.dumps({"page": "supervision"}))
    web.page.goto(app_server.url("/"), wait_until="domcontentloaded")
    web.wait_for_text(PAGES["supervision"][1], r"Agenda for", timeout=120)
    t = time.monotonic()
    _pick_supervisee(web, ".sw-page-supervision", "T07")
    web.wait_for_text(PAGES["supervision"][1], r"Agenda for T07", timeout=30)
    browser_timings("app: supervisee change -> agenda redrawn (Supervision hour)", time.monotonic() - t)
    _nav(web, "caseload")
    web.wait_for_text(".sw-page-caseload .sw-caseload-completion", r"Caseload of T07", timeout=60)
    saved = json.loads(Path(app_server.state_file).read_text())
    assert saved["supervisee"] == "T07" and saved["page"] == "caseload", saved

    time.sleep(HEAT_SECONDS)  # the pool is refilled after a kernel is taken: give it the time a user would
    t = time.monotonic()
    web.page.reload(wait_until="domcontentloaded")
    web.wait_for_text(".sw-page-caseload .sw-caseload-completion", r"Caseload of T07", timeout=120)
    browser_timings("app: reload -> remembered page and supervisee shown", time.monotonic() - t)
    assert web.page.locator(".sw-nav button.mod-active").first.text_content().strip() == "Caseload"

    # A remembered folder that is gone: the demo, and a message saying so.
    Path(app_server.state_file).write_text(json.dumps({"data": "/no/such/export", "supervisee": "T07", "page": "supervision"}))
    web.page.reload(wait_until="domcontentloaded")
    msg = web.wait_for_text(".sw-app-message", r"not there any more", timeout=120)
    assert "demo clinic" in msg
    web.wait_for_text(PAGES["supervision"][1], r"Agenda for T07", timeout=60)
    _page_ok(web, "supervision")
    Path(app_server.state_file).write_text(json.dumps({"supervisee": "T07", "page": "supervision"}))
    _voila_shutdown_bug(web, browser_notes)
    _external_ok(web, browser_notes)


def test_app_opens_a_published_clinician_folder(web, app_server, tmp_path, browser_timings, browser_notes):
    """`supervision publish` the demo, open one clinician's folder in the app: only that clinician's clients
    appear (oracle: the demo's clients table), and the service's published mean SRS is shown beside theirs
    (oracle: the folder's service_benchmarks.csv); their own figures follow the period picked (oracle: the
    folder's sessions)."""
    import pandas as pd

    from supervision.io import demo_path
    from supervision.publish import publish

    me = "T03"
    publish(demo_path(), tmp_path / "pub")
    folder = tmp_path / "pub" / me
    bench = pd.read_csv(folder / "service_benchmarks.csv", dtype=str, keep_default_na=False)
    srs = bench[(bench["benchmark"] == "srs_total") & (bench["dimension"] == "all")].iloc[0]
    expected = f"{float(srs['mean']):.1f} (n={srs['n_display']})"
    demo_clients = pd.read_csv(demo_path() / "clients.csv", dtype=str)
    mine = set(demo_clients.loc[demo_clients["clinician_id"] == me, "client_id"])

    web.notebook = "app-published"
    web.page.set_viewport_size(VIEW)
    Path(app_server.state_file).write_text(json.dumps({"data": str(folder), "page": "caseload"}))
    time.sleep(HEAT_SECONDS)  # a kernel taken by an earlier test is replaced in the pool
    try:
        t = time.monotonic()
        web.page.goto(app_server.url("/"), wait_until="domcontentloaded")
        web.wait_for_text(".sw-page-caseload .sw-caseload-completion", rf"Caseload of {me}", timeout=120)
        browser_timings("app: open a published clinician folder -> Caseload page", time.monotonic() - t)
        _page_ok(web, "caseload")
        shown = {r[0] for r in web.table_rows(".sw-page-caseload .sw-caseload-rows")[1:]}
        assert shown and shown <= mine and len(shown) == len(mine), (sorted(shown - mine), len(shown), len(mine))
        sup = [o["value"] for o in web.options(".sw-page-caseload .sw-supervisee")]
        assert len(sup) == 1 and sup[0].startswith(me), sup
        _nav(web, "alliance")
        web.wait_for_text(PAGES["alliance"][1], r"\d+ clients", timeout=60)
        web.open_tab(".sw-page-alliance .sw-tabs", "vs service")
        text = web.wait_for_text(".sw-page-alliance .sw-self-review-compare", r"You and the service", timeout=30)
        assert expected in text, (expected, text[:600])
        # the clinician's figures follow the period picked; the service's stay the published whole-export ones
        sessions = pd.read_parquet(folder / "sessions.parquet", columns=["client_id", "session_date"])
        end = pd.to_datetime(sessions["session_date"]).max()
        start = end - pd.DateOffset(months=12)
        n_year = sessions.loc[pd.to_datetime(sessions["session_date"]) >= start, "client_id"].nunique()
        web.select(".sw-page-alliance .sw-period", "Last 12 months")
        text = web.wait_for_text(".sw-page-alliance .sw-self-review-compare",
                                 rf"you, {start:%d %b %Y} to {end:%d %b %Y}", timeout=60)
        row = web.table_rows(".sw-page-alliance .sw-benchmark-table")
        clients = next(r for r in row if r and r[0] == "clients")
        assert clients[1] == str(n_year) and int(clients[1]) < len(mine), (clients, n_year)
        assert expected in text, "the service's published figure changed with the period"
        _page_ok(web, "alliance")
        _shot(web, "self-review-alliance")
    finally:
        Path(app_server.state_file).write_text(json.dumps({"page": "supervision"}))
    _voila_shutdown_bug(web, browser_notes)
    _external_ok(web, browser_notes)
