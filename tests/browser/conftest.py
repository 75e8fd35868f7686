"""Fixtures for the real-browser tests (see jlab.py and /work/shared/BROWSER_TESTING.md).

Session-wide: one JupyterLab over a temp copy of ``notebooks/`` and one headless Chromium
(Debian's ``/usr/bin/chromium``). Per test: a fresh browser context whose route guard blocks and
records every request that is not to 127.0.0.1/localhost, ``data:`` or ``blob:``, and which
collects console and page errors.

Without Chromium the browser tests are skipped with the reason, except when ``CI=true``: then
they fail, because CI must run them.

Useful environment variables: ``SW_CHROMIUM`` (browser executable, default /usr/bin/chromium),
``SW_SCREENSHOT_DIR`` (default /tmp/sw-screenshots), ``SW_DOCS_SCREENSHOT_DIR`` (when set, the
notebook tests also save the README screenshots there, 1280 px wide), ``SW_KERNEL_STARTUP`` (a
Python file every kernel runs first: only to try a package fix before it is made).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from . import jlab

REPO = Path(__file__).resolve().parents[2]

# Console errors that are not the workbook's doing and carry no signal. Keep this list short and
# explain every entry.
BENIGN_CONSOLE_ERRORS = [
    # Our own guard aborting an outside request: reported precisely by the guard instead.
    re.compile(r"net::ERR_BLOCKED_BY_CLIENT"),
]


def _browser_unavailable_reason() -> str | None:
    if not Path(jlab.CHROMIUM).exists():
        return (
            f"Chromium not found at {jlab.CHROMIUM} (install it with `apt-get install -y chromium`; "
            "never `playwright install`)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not importable ({exc}); pip install the 'test' extra"
    return None


@pytest.fixture(scope="session")
def browser_available() -> None:
    reason = _browser_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium(browser_available):
    """One headless Chromium for the whole session."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(
            executable_path=jlab.CHROMIUM, headless=True, args=jlab.CHROMIUM_ARGS
        )
    except Exception:
        pw.stop()
        raise
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """A temp copy of notebooks/ (and data/ beside it); returns the copied notebooks folder."""
    return jlab.copy_workspace(REPO, tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="session")
def lab_server(browser_available, workspace, tmp_path_factory):
    """ONE JupyterLab for the session, serving the copied notebooks folder on 127.0.0.1."""
    server = jlab.start_jupyterlab(workspace, tmp_path_factory.mktemp("jupyter-state"))
    try:
        yield server
    finally:
        server.stop()


def _finish_page(gp: jlab.GuardedPage, context, request) -> None:
    context.close()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        return  # don't pile teardown errors on a failed test
    problems = []
    if gp.guard.external or gp.guard.external_ws:
        if not getattr(gp, "external_requests_expected", False):
            problems.append(
                "outside requests: "
                + repr([r["url"] for r in gp.guard.external] + gp.guard.external_ws)
            )
    if gp.page_errors:
        problems.append("page errors (uncaught JS exceptions): " + repr(gp.page_errors))
    console = [
        e for e in gp.console_errors if not any(p.search(e) for p in BENIGN_CONSOLE_ERRORS)
    ]
    console = [e for e in console if e not in getattr(gp, "console_errors_allowed", [])]
    if console:
        problems.append("console errors: " + repr(console))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def web(chromium, request):
    """A guarded page not tied to a server (Voila and other tests navigate it themselves)."""
    context, guard = jlab.new_guarded_context(chromium)
    gp = jlab.GuardedPage(context, context.new_page(), guard)
    yield gp
    _finish_page(gp, context, request)


@pytest.fixture
def file_web(chromium, request):
    """Like ``web``, but ``file:`` URLs pass the guard too (to open a report saved on disk);
    everything else not on loopback is still blocked and recorded."""
    context, guard = jlab.new_guarded_context(chromium, allow_file=True)
    gp = jlab.GuardedPage(context, context.new_page(), guard)
    yield gp
    _finish_page(gp, context, request)


@pytest.fixture
def lab(chromium, lab_server, request):
    """A guarded page on the session's JupyterLab: ``lab.open(name)``, ``lab.run_all()``, ..."""
    # Each notebook test starts with nothing remembered (a supervisee picked in one notebook is
    # remembered for the next: supervision.remembered), so each opens on the first clinician.
    (lab_server.log_path.parent / "remembered.json").unlink(missing_ok=True)
    context, guard = jlab.new_guarded_context(chromium)
    lp = jlab.LabPage(context, context.new_page(), guard, lab_server)
    try:
        yield lp
    finally:
        try:
            _finish_page(lp, context, request)
        finally:
            lab_server.shutdown_sessions()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


# ---- timings: collected by tests through the `browser_timings` fixture, printed at the end ----

_TIMINGS_KEY = pytest.StashKey[list]()


@pytest.fixture
def browser_timings(request):
    """Call ``browser_timings(label, seconds)`` to have a timing printed in the summary."""
    store = request.config.stash.setdefault(_TIMINGS_KEY, [])

    def record(label: str, seconds: float) -> None:
        store.append((request.node.nodeid.split("::")[-1], label, seconds))
        print(f"[timing] {label}: {seconds:.2f} s")

    return record


_NOTES_KEY = pytest.StashKey[list]()


@pytest.fixture
def browser_notes(request):
    """Call ``browser_notes(text)`` for a finding to print in the summary (e.g. blocked template
    requests that are not the workbook's)."""
    store = request.config.stash.setdefault(_NOTES_KEY, [])

    def note(text: str) -> None:
        store.append((request.node.nodeid.split("::")[-1], text))
        print(f"[note] {text}")

    return note


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    timings = config.stash.get(_TIMINGS_KEY, [])
    notes = config.stash.get(_NOTES_KEY, [])
    startup = jlab.kernel_startup_file()
    if not timings and not notes and startup is None:
        return
    terminalreporter.section("browser timings")
    if startup is not None:
        terminalreporter.write_line(
            f"WARNING: every kernel ran SW_KERNEL_STARTUP={startup} first: these results are for a "
            "patched package, not the product as committed", red=True
        )
    for test, label, seconds in timings:
        terminalreporter.write_line(f"{seconds:7.2f} s  {label}  ({test})")
    for test, text in notes:
        terminalreporter.write_line(f"note: {text}  ({test})")
    terminalreporter.write_line(f"screenshots: {jlab.screenshot_dir()}")
