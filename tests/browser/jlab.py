"""Real-browser harness: a JupyterLab (or Voila) server on loopback and a guarded Chromium page.

Everything here follows /work/shared/BROWSER_TESTING.md (what is proven to work on our machines):

* the server runs on 127.0.0.1 with a free port, a random token and per-run Jupyter directories,
  over a *copy* of the notebooks (tests never write into the real files);
* Chromium is Debian's ``/usr/bin/chromium`` (never ``playwright install``), launched with flags that
  stop its own background traffic, and every page gets a route guard that lets only loopback,
  ``data:`` and ``blob:`` through and records everything else;
* selectors are scoped by the CSS class a dashboard adds to its widgets, and plot data is read from
  ``SCOPE .js-plotly-plot`` (re-queried each time: plots may be replaced on update).

The pytest fixtures that use these pieces live in ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("SW_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # What actually stops Chromium's own calls to outside hosts (BROWSER_TESTING.md).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]

VIEWPORT = {"width": 1400, "height": 1000}

# Width of the README screenshots (GuardedPage.docs_screenshot, $SW_DOCS_SCREENSHOT_DIR).
DOCS_WIDTH = 1280

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}

# Text a widget leaves behind when the front-end widget manager is missing or broken.
WIDGET_FALLBACK_PATTERNS = [
    r"\b(?:VBox|HBox|GridBox|Box|Tab|Accordion|Stack)\(children=",
    r"\b(?:Dropdown|Button|Text|Textarea|HTML|HTMLMath|Label|Output|IntSlider|FloatSlider|"
    r"SelectMultiple|Select|ToggleButtons|RadioButtons|Checkbox|DatePicker|FigureWidget)\(",
    r"Error displaying widget",
    r"Loading widget\.\.\.",
    r"Failed to load model class",
]


def screenshot_dir() -> Path:
    """Directory for screenshots: ``$SW_SCREENSHOT_DIR`` or ``/tmp/sw-screenshots`` (outside git)."""
    path = Path(os.environ.get("SW_SCREENSHOT_DIR") or "/tmp/sw-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_workspace(repo: Path, dest: Path) -> Path:
    """Copy ``notebooks/`` (and ``data/`` beside it, for notebooks that look there) into ``dest``.

    Returns the copied notebooks folder, which is what the server serves.
    """
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", ".DS_Store")
    dest.mkdir(parents=True, exist_ok=True)
    nb_src = repo / "notebooks"
    nb_dest = dest / "notebooks"
    if nb_src.is_dir():
        shutil.copytree(nb_src, nb_dest, ignore=ignore)
    else:
        nb_dest.mkdir()
    if (repo / "data").is_dir():
        shutil.copytree(repo / "data", dest / "data", ignore=ignore)
    return nb_dest


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    """A Jupyter-family server process started by this harness (stopped by its PID only)."""

    name: str
    proc: subprocess.Popen
    port: int
    token: str
    root: Path
    log_path: Path
    started_in: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def wait_ready(self, path: str, timeout: float = 90.0) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        last_err: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready.\n"
                    f"--- log tail ---\n{self.log_tail()}"
                )
            try:
                req = urllib.request.Request(
                    self.base_url + path, headers={"Authorization": f"token {self.token}"}
                )
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        self.started_in = time.monotonic() - t0
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                last_err = exc
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} not ready on {self.base_url}{path} after {timeout:.0f} s "
            f"(last error: {last_err}).\n--- log tail ---\n{self.log_tail()}"
        )

    def api(self, method: str, path: str) -> object:
        req = urllib.request.Request(
            self.base_url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_sessions(self) -> None:
        """Shut down every kernel session (JupyterLab REST API), so tests don't share kernels."""
        for sess in self.api("GET", "/api/sessions") or []:
            try:
                self.api("DELETE", f"/api/sessions/{sess['id']}")
            except urllib.error.HTTPError:
                pass

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the server (it shuts its kernels down), then SIGKILL if it does not exit."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
        self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        # The server ran in its own process group (start_new_session): if it had to be killed, its
        # kernels (which we also started) may be left behind; end that group, and only that group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kernel_startup_file() -> Path | None:
    """``$SW_KERNEL_STARTUP``: a Python file every kernel of the run executes first (copied into
    the per-run IPython startup folder). Only for trying a fix to the package before it is made;
    the summary says when it was used, and results obtained with it are not the product's."""
    value = os.environ.get("SW_KERNEL_STARTUP")
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise RuntimeError(f"SW_KERNEL_STARTUP={value!r} is not a file")
    return path


def jupyter_env(state_dir: Path) -> dict[str, str]:
    """Environment with per-run Jupyter directories and the settings BROWSER_TESTING.md lists."""
    dirs = {
        "JUPYTER_CONFIG_DIR": state_dir / "config",
        "JUPYTER_RUNTIME_DIR": state_dir / "runtime",
        "JUPYTER_DATA_DIR": state_dir / "data",
        "JUPYTERLAB_SETTINGS_DIR": state_dir / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": state_dir / "lab-workspaces",
        "IPYTHONDIR": state_dir / "ipython",
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"]
    _write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    _write_json(
        settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings",
        {"autosave": False},
    )
    startup = kernel_startup_file()
    if startup is not None:  # opt-in: try a product fix without editing the package
        dest = dirs["IPYTHONDIR"] / "profile_default" / "startup" / "00-sw-kernel-startup.py"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(startup, dest)
    env = dict(os.environ)
    env.update({k: str(v) for k, v in dirs.items()})
    # Make sure the server finds the venv's jupyter (sys.prefix) and its kernel uses this Python.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.pop("JUPYTER_PATH", None)
    # The workbook's remembered choice (supervision.remembered): per run, never the user's own.
    env["SUPERVISION_STATE"] = str(state_dir / "remembered.json")
    return env


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _launch(cmd: list[str], *, cwd: Path, env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")  # noqa: SIM115 - kept open for the life of the process
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def start_jupyterlab(root: Path, state_dir: Path, *, attempts: int = 3) -> Server:
    """Start one JupyterLab serving ``root`` on 127.0.0.1; wait for ``/api/status``."""
    env = jupyter_env(state_dir)
    last: Exception | None = None
    for attempt in range(attempts):
        port = free_port()
        token = secrets.token_hex(24)
        log_path = state_dir / f"jupyterlab-{attempt}.log"
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.extension_manager=readonly",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        proc = _launch(cmd, cwd=root, env=env, log_path=log_path)
        server = Server("JupyterLab", proc, port, token, root, log_path)
        try:
            server.wait_ready("/api/status")
            return server
        except RuntimeError as exc:  # e.g. the free port was taken in between: try another
            last = exc
            server.stop()
    raise RuntimeError(f"could not start JupyterLab after {attempts} attempts: {last}")


def start_voila(notebook: Path, state_dir: Path, *, attempts: int = 3, extra_args: tuple[str, ...] = (),
                env_extra: dict[str, str] | None = None) -> Server:
    """Serve one notebook with Voila on 127.0.0.1 (lab template, tracebacks shown).

    ``extra_args`` are added to Voila's command line (e.g. ``--preheat_kernel=True``);
    ``env_extra`` to its environment (the kernels inherit it).
    """
    env = {**jupyter_env(state_dir), **(env_extra or {})}
    last: Exception | None = None
    for attempt in range(attempts):
        port = free_port()
        token = secrets.token_hex(24)
        log_path = state_dir / f"voila-{attempt}.log"
        cmd = [
            sys.executable, "-m", "voila", str(notebook),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--port={port}",
            "--Voila.port_retries=0",
            f"--Voila.token={token}",
            f"--Voila.root_dir={notebook.parent}",
            "--show_tracebacks=True",
            *extra_args,
        ]
        proc = _launch(cmd, cwd=notebook.parent, env=env, log_path=log_path)
        server = Server("Voila", proc, port, token, notebook.parent, log_path)
        try:
            # Voila has no /api/status; its static files answer without running the notebook.
            server.wait_ready("/voila/static/voila.js", timeout=60)
            return server
        except RuntimeError as exc:
            last = exc
            server.stop()
    raise RuntimeError(f"could not start Voila after {attempts} attempts: {last}")


# --------------------------------------------------------------------------------------------
# The guarded page
# --------------------------------------------------------------------------------------------


def is_local(url: str, allow_file: bool = False) -> bool:
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("data", "blob", "about"):
        return True
    if scheme == "file":
        return allow_file
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host == "::1"


@dataclass
class RequestGuard:
    """Lets only loopback, ``data:`` and ``blob:`` through; records (and aborts) everything else.

    ``allow_file``: also let ``file:`` URLs through (for tests that open a saved report from disk;
    Playwright's route sees ``file:`` requests too)."""

    external: list[dict] = field(default_factory=list)
    external_ws: list[str] = field(default_factory=list)
    allow_file: bool = False

    def attach(self, context) -> None:
        context.route("**/*", self._handle)

    def _handle(self, route) -> None:
        request = route.request
        if is_local(request.url, self.allow_file):
            route.continue_()
            return
        frame_url = None
        try:
            frame_url = request.frame.url
        except Exception:  # noqa: BLE001 - service-worker / detached frames have none
            pass
        self.external.append(
            {"url": request.url, "resource_type": request.resource_type, "frame": frame_url}
        )
        route.abort("blockedbyclient")

    def set_aside(self, predicate) -> list[dict]:
        """Move the recorded requests matching ``predicate(record)`` out of ``external`` and return
        them (they were still blocked). For requests that are provably not the workbook's own,
        e.g. a CDN link hard-coded in Voila's page template; report them, don't hide them."""
        keep, aside = [], []
        for rec in self.external:
            (aside if predicate(rec) else keep).append(rec)
        self.external[:] = keep
        return aside

    def on_websocket(self, ws) -> None:
        # context.route does not see WebSockets; the host-resolver rules stop outside ones anyway,
        # and this records any attempt.
        if not is_local(ws.url):
            self.external_ws.append(ws.url)


class GuardedPage:
    """A Playwright page with the route guard, console/page-error capture and scoped helpers."""

    def __init__(self, context, page, guard: RequestGuard, notebook: str = "page"):
        self.context = context
        self.page = page
        self.guard = guard
        self.notebook = notebook  # used in screenshot names
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.screenshots: list[Path] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("websocket", guard.on_websocket)

    def _on_console(self, msg) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            self.console_errors.append(f"{msg.text} [{loc.get('url', '')}:{loc.get('lineNumber', '')}]")

    # -- network ---------------------------------------------------------------------------

    def assert_no_external_requests(self) -> None:
        ext = self.guard.external
        ws = self.guard.external_ws
        assert not ext and not ws, (
            "the page tried to reach outside hosts (blocked):\n"
            + "\n".join(f"  {r['resource_type']}: {r['url']} (frame {r['frame']})" for r in ext)
            + "".join(f"\n  websocket: {u}" for u in ws)
        )

    # -- widgets -----------------------------------------------------------------------------

    def options(self, selector: str) -> list[dict]:
        """Options of the ``<select>`` of a Dropdown scoped by ``selector``.

        ipywidgets 8 sends only the *labels* to the browser: an option's ``value`` attribute is
        its label with ordinary spaces (the visible text uses non-breaking spaces). With plain
        string options (``["demo", "folder"]``) label and Python value are the same.
        """
        sel = self.page.locator(f"{selector} select").first
        sel.wait_for(state="visible")
        return sel.evaluate(
            "s => Array.from(s.options).map(o => ({value: o.value, "
            "label: o.textContent.replace(/\\u00a0/g, ' '), selected: o.selected}))"
        )

    def selected(self, selector: str) -> str | None:
        for opt in self.options(selector):
            if opt["selected"]:
                return opt["value"]
        return None

    def select(self, selector: str, value: str, timeout: float = 15.0) -> None:
        """Choose the option whose value (= ipywidgets label) is ``value`` in ``selector select``.

        Waits for the option to exist (dashboards fill options after loading data). Falls back to
        matching the visible label with non-breaking spaces normalised.
        """
        sel = self.page.locator(f"{selector} select").first
        sel.wait_for(state="visible", timeout=timeout * 1000)
        deadline = time.monotonic() + timeout
        while True:
            opts = self.options(selector)
            match = [o for o in opts if o["value"] == value] or [
                o for o in opts if o["label"].strip() == value
            ]
            if match:
                sel.select_option(value=match[0]["value"])
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{selector}: no option {value!r}; options are "
                    f"{[(o['value'], o['label']) for o in opts]}"
                )
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """Click the button carrying ``selector`` (or the button inside it)."""
        btn = self.page.locator(f"{selector}:is(button), {selector} button").first
        btn.wait_for(state="visible")
        btn.click()

    def open_tab(self, tabs: str, title: str) -> None:
        """Click the tab titled ``title`` of the ipywidgets ``Tab`` carrying ``tabs`` and wait until
        it is the current one. ipywidgets 8 draws the tab bar as a Lumino TabBar:
        ``.lm-TabBar-tab > .lm-TabBar-tabLabel`` (title text, possibly truncated by CSS only)."""
        label = self.page.locator(f"{tabs} .lm-TabBar-tab .lm-TabBar-tabLabel").filter(
            has_text=re.compile(rf"^\s*{re.escape(title)}\s*$")
        )
        n = label.count()
        if n != 1:
            shown = self.page.locator(f"{tabs} .lm-TabBar-tabLabel").all_text_contents()
            raise AssertionError(f"{tabs}: {n} tabs titled {title!r}; the tabs are {shown}")
        tab = self.page.locator(f"{tabs} .lm-TabBar-tab").filter(
            has=self.page.locator(".lm-TabBar-tabLabel").filter(
                has_text=re.compile(rf"^\s*{re.escape(title)}\s*$")
            )
        )
        tab.click()
        self.page.wait_for_function(
            "([sel, title]) => Array.from(document.querySelectorAll(sel + ' .lm-TabBar-tab'))"
            ".some(t => t.classList.contains('lm-mod-current')"
            " && t.textContent.trim() === title)",
            arg=[tabs, title],
            polling=20,
        )

    def current_tab(self, tabs: str) -> str | None:
        cur = self.page.locator(f"{tabs} .lm-TabBar-tab.lm-mod-current")
        return (cur.first.text_content() or "").strip() if cur.count() else None

    def slider_value(self, selector: str) -> float:
        """A Float/IntSlider's value as the page shows it (its handle's ``aria-valuenow``)."""
        return float(self.page.locator(f"{selector} .noUi-handle").first.get_attribute("aria-valuenow"))

    def nudge_slider(self, selector: str, key: str = "ArrowLeft", presses: int = 1) -> float:
        """Move a slider by keyboard, as a user would: focus its handle, press ``key``. Each
        press moves one step; ipywidgets syncs on noUiSlider's 'change' (also with
        ``continuous_update=False``). Returns the value the handle then shows."""
        handle = self.page.locator(f"{selector} .noUi-handle").first
        handle.wait_for(state="visible")
        handle.focus()
        for _ in range(presses):
            handle.press(key)
        return self.slider_value(selector)

    def type_slider(self, selector: str, value: float) -> None:
        """Set a slider by typing into its readout (an editable ``.widget-readout``) + Enter."""
        readout = self.page.locator(f"{selector} .widget-readout").first
        readout.wait_for(state="visible")
        readout.click()
        readout.press("Control+A")
        readout.press_sequentially(f"{value:g}")
        readout.press("Enter")
        self.page.wait_for_function(
            "([sel, v]) => { const h = document.querySelector(sel + ' .noUi-handle');"
            " return !!h && Math.abs(parseFloat(h.getAttribute('aria-valuenow')) - v) < 1e-9; }",
            arg=[selector, float(value)],
            polling=20,
            timeout=10_000,
        )

    def set_checkbox(self, selector: str, checked: bool) -> None:
        box = self.page.locator(f"{selector} input[type=checkbox]").first
        box.wait_for(state="visible")
        if box.is_checked() != checked:
            box.click()
        assert box.is_checked() == checked

    def fill(self, selector: str, text: str) -> None:
        """Type into a Text/Textarea widget and commit it (ipywidgets syncs on change/Enter)."""
        box = self.page.locator(
            f"{selector}:is(input, textarea), {selector} input, {selector} textarea"
        ).first
        box.wait_for(state="visible")
        box.fill(text)
        box.press("Tab")  # blur => 'change' => the value is synced to the kernel

    def text(self, selector: str) -> str:
        """Text of the first element matching ``selector`` (textContent, whitespace collapsed;
        works for off-screen cells too)."""
        raw = self.page.locator(selector).first.text_content() or ""
        return re.sub(r"\s+", " ", raw.replace("\u00a0", " ")).strip()

    def table_rows(self, selector: str) -> list[list[str]]:
        """Cell texts of every ``<tr>`` under ``selector`` (header rows included), in order."""
        return self.page.evaluate(
            "sel => { const r = document.querySelector(sel); if (!r) return [];"
            " return Array.from(r.querySelectorAll('tr')).map(tr => Array.from(tr.cells)"
            ".map(c => c.textContent.replace(/\\u00a0/g, ' ').replace(/\\s+/g, ' ').trim())); }",
            selector,
        )

    def wait_for_text(self, selector: str, pattern: str, timeout: float = 30.0, flags: str = "i") -> str:
        """Wait until ``selector``'s text matches the (JS) regular expression ``pattern``."""
        try:
            self.page.wait_for_function(
                "([sel, pat, flags]) => { const el = document.querySelector(sel);"
                " return !!el && new RegExp(pat, flags).test("
                "el.textContent.replace(/\\u00a0/g, ' ').replace(/\\s+/g, ' ')); }",
                arg=[selector, pattern, flags],
                timeout=timeout * 1000,
                polling=50,
            )
        except Exception as exc:  # noqa: BLE001 - re-raised with what was actually shown
            shown = self.text(selector) if self.page.locator(selector).count() else "(no element)"
            raise AssertionError(
                f"{selector} did not come to match /{pattern}/{flags} in {timeout:.0f} s; it shows: "
                f"{shown[:1500]!r}"
            ) from exc
        return self.text(selector)

    # -- plots -------------------------------------------------------------------------------

    def plot_data(self, scope: str) -> list[dict] | None:
        """``SCOPE .js-plotly-plot``'s ``.data`` as plain JSON (typed arrays decoded), or None."""
        return self.page.evaluate(_PLOT_DATA_JS, f"{scope} .js-plotly-plot")

    def plot_points(self, scope: str) -> int:
        """Points plotted in ``SCOPE .js-plotly-plot`` (-1: no plot there)."""
        return self.page.evaluate("sel => window.__swPlotPoints(sel)", f"{scope} .js-plotly-plot")

    def wait_for_plot(self, scope: str, min_points: int = 1, timeout: float = 60.0) -> list[dict]:
        """Wait until ``SCOPE .js-plotly-plot`` exists and plots at least ``min_points`` points
        (an empty FigureWidget has traces but no points)."""
        self.page.wait_for_function(
            "([sel, n]) => window.__swPlotPoints(sel) >= n",
            arg=[f"{scope} .js-plotly-plot", min_points],
            timeout=timeout * 1000,
            polling=50,
        )
        return self.plot_data(scope)

    def plot_box(self, scope: str) -> dict | None:
        """Rendered sizes of the chart ``scope`` and of its plot's drawing (``svg.main-svg``), and
        the configuration plotly was given; None when there is no plot. Having ``.data`` is not
        being seen: a plot can hold data in a zero-height box."""
        return self.page.evaluate(_PLOT_BOX_JS, scope)

    def resize_window(self, width: int, height: int | None = None, settle_ms: int = 600) -> None:
        """Resize the browser window as a user would, and let JupyterLab and plotly re-lay out
        (plotly's own resize is deferred by ~100 ms)."""
        size = self.page.viewport_size or VIEWPORT
        self.page.set_viewport_size({"width": width, "height": height or size["height"]})
        self.page.wait_for_timeout(settle_ms)

    def plot_shown_problem(self, scope: str) -> str | None:
        """None if ``scope``'s plot is drawn and takes visible room on the page; else why not."""
        box = self.plot_box(scope)
        if box is None:
            return f"{scope}: no plot"
        if box["svg_h"] < 50 or box["svg_w"] < 50:
            return f"{scope}: the plot's drawing is {box['svg_w']:.0f}x{box['svg_h']:.0f} px"
        if box["h"] < 0.9 * box["svg_h"] or box["w"] < 50:
            return (
                f"{scope}: the plot is drawn {box['svg_w']:.0f}x{box['svg_h']:.0f} px but its box on the "
                f"page is {box['w']:.0f}x{box['h']:.0f} px, so it is not seen (clipped by "
                f"{box['clipper'] or 'an ancestor'}). Plotly container style: {box['container_style']!r}; "
                f"plotly config: {box['config']}."
            )
        return None

    def wait_for_plot_change(self, scope: str, before, timeout: float = 30.0) -> tuple[list, float]:
        """Wait until the plot data differs from ``before``; return (new data, seconds waited).

        Re-queries the element every poll (an Output-widget plot is replaced on update).
        """
        t0 = time.monotonic()
        self.page.wait_for_function(
            "([sel, before]) => { const d = window.__swPlotData(sel);"
            " return d !== null && JSON.stringify(d) !== JSON.stringify(before); }",
            arg=[f"{scope} .js-plotly-plot", before],
            timeout=timeout * 1000,
            polling=20,
        )
        return self.plot_data(scope), time.monotonic() - t0

    # -- screenshots -------------------------------------------------------------------------

    def screenshot(self, state: str, scope: str | None = None) -> Path:
        """Save ``<notebook>--<state>.png`` in the screenshot dir (element shot when scoped)."""
        stem = Path(self.notebook).stem
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", state)
        path = screenshot_dir() / f"{stem}--{safe}.png"
        if scope:
            el = self.page.locator(scope).first
            box = el.bounding_box()
            size = self.page.viewport_size or VIEWPORT
            # JupyterLab scrolls inside a fixed-height panel: an element taller than the viewport
            # would be cut off (and overlaid by the status bar). Grow the window for the shot.
            if box and box["height"] > size["height"] - 200:
                self.page.set_viewport_size(
                    {"width": size["width"], "height": min(int(box["height"]) + 400, 8000)}
                )
                self.page.wait_for_timeout(300)  # let JupyterLab re-lay out
            try:
                el.scroll_into_view_if_needed()
                el.screenshot(path=str(path), animations="disabled")
            finally:
                if self.page.viewport_size != size:
                    self.page.set_viewport_size(size)
        else:
            self.page.screenshot(path=str(path), animations="disabled")
        self.screenshots.append(path)
        return path

    def docs_screenshot(self, name: str, scope: str, width: int = DOCS_WIDTH, margin: int = 8) -> Path | None:
        """A README screenshot: only when ``$SW_DOCS_SCREENSHOT_DIR`` is set (no-op otherwise).

        Saves ``NAME.png``, exactly ``width`` px wide: ``scope`` (e.g. a whole dashboard) with a
        ``margin`` of page around it and no JupyterLab chrome. The window is resized so that
        ``scope`` lays out at ``width - 2 * margin`` px (and tall enough to hold it), then put back.
        """
        out = os.environ.get("SW_DOCS_SCREENSHOT_DIR")
        if not out:
            return None
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        size = self.page.viewport_size or VIEWPORT
        self.page.evaluate(
            "() => { const a = window.jupyterapp; if (a && a.shell && a.shell.collapseLeft)"
            " a.shell.collapseLeft(); }"
        )
        el = self.page.locator(scope).first
        target = width - 2 * margin
        try:
            win_w, win_h = size["width"], size["height"]
            for _ in range(4):  # the element's width follows the window's (JupyterLab has no max)
                self.page.set_viewport_size({"width": win_w, "height": win_h})
                self.page.wait_for_timeout(400)
                box = el.bounding_box()
                if box["height"] + 4 * margin > win_h:
                    win_h = min(int(box["height"]) + 300, 6000)
                    continue
                if abs(box["width"] - target) < 1:
                    break
                win_w = int(round(win_w + target - box["width"]))
            el.scroll_into_view_if_needed()
            self.page.mouse.move(0, 0)  # no hover effects (plotly's mode bar) in the picture
            self.page.wait_for_timeout(300)
            box = el.bounding_box()
            assert abs(box["width"] - target) < 1.5, f"could not lay {scope} out {target} px wide: {box}"
            self.page.screenshot(
                path=str(path),
                clip={"x": box["x"] - margin, "y": max(0, box["y"] - margin), "width": width,
                      "height": box["height"] + 2 * margin},
                animations="disabled",
            )
        finally:
            self.page.set_viewport_size(size)
            self.page.wait_for_timeout(300)
        return path

    # -- output checks -------------------------------------------------------------------------

    def assert_no_error_outputs(self, root: str = "body") -> None:
        """No error or stderr output is rendered (DOM check; LabPage adds a model check)."""
        found = self.page.evaluate(
            """root => {
                const r = document.querySelector(root) || document.body;
                const out = [];
                for (const el of r.querySelectorAll(
                    "[data-mime-type='application/vnd.jupyter.error'],"
                    + " [data-mime-type='application/vnd.jupyter.stderr']")) {
                    out.push(el.getAttribute('data-mime-type') + ': ' + el.textContent.slice(0, 2000));
                }
                return out;
            }""",
            root,
        )
        assert not found, "error/stderr outputs are shown:\n" + "\n---\n".join(found)

    def assert_no_widget_fallback(self, root: str = "body", output_selector: str = ".jp-OutputArea-output") -> None:
        """No widget is shown as its text repr (``VBox(children=...``) or a widget error.

        Uses ``textContent``: JupyterLab's default ``contentVisibility`` windowing leaves off-screen
        cells in the DOM but unlaid-out, where ``innerText`` would be empty.
        """
        texts = self.page.evaluate(
            "([root, sel]) => Array.from((document.querySelector(root) || document.body)"
            ".querySelectorAll(sel)).map(e => e.textContent)",
            [root, output_selector],
        )
        bad = []
        for text in texts:
            for pat in WIDGET_FALLBACK_PATTERNS:
                m = re.search(pat, text)
                if m:
                    bad.append(f"{m.group(0)!r} in: {text[:300]!r}")
        assert not bad, "widgets rendered as text / failed to render:\n" + "\n".join(bad)


class LabPage(GuardedPage):
    """A GuardedPage driving a notebook in JupyterLab through ``window.jupyterapp``."""

    def __init__(self, context, page, guard, server: Server):
        super().__init__(context, page, guard)
        self.server = server
        self.timings: dict[str, float] = {}

    def open(self, name: str, timeout: float = 60.0) -> float:
        """Open ``/lab/tree/NAME?reset`` and wait until its kernel is idle; returns seconds."""
        self.notebook = name
        t0 = time.monotonic()
        self.page.goto(self.server.url(f"/lab/tree/{name}?reset"), wait_until="domcontentloaded")
        self.wait_kernel_idle(timeout=timeout)
        self.timings["open_to_kernel_idle"] = time.monotonic() - t0
        self._opened_at = t0
        return self.timings["open_to_kernel_idle"]

    def wait_kernel_idle(self, timeout: float = 60.0) -> None:
        """Wait until the open notebook's kernel is ready and idle.

        Fails at once if JupyterLab asks the user to pick a kernel (the notebook has no
        ``kernelspec`` metadata: a user would get the same dialog).
        """
        handle = self.page.wait_for_function(
            """name => {
                const dlg = document.querySelector('.jp-Dialog .jp-Dialog-header');
                if (dlg && /kernel/i.test(dlg.textContent)) return 'dialog: ' + dlg.textContent;
                const app = window.jupyterapp;
                if (!app || !app.shell) return false;
                const w = app.shell.currentWidget;
                if (!w || !w.sessionContext || !w.content || !w.context) return false;
                if (w.context.path !== name) return false;
                const sc = w.sessionContext;
                const k = sc.session && sc.session.kernel;
                return sc.isReady && !!k && k.status === 'idle';
            }""",
            arg=self.notebook,
            timeout=timeout * 1000,
            polling=100,
        )
        result = handle.json_value()
        if isinstance(result, str) and result.startswith("dialog"):
            raise AssertionError(
                f"{self.notebook}: JupyterLab asks to select a kernel ({result!r}); the notebook "
                "needs kernelspec metadata (python3) so it starts without a dialog"
            )

    def _status(self) -> dict:
        return self.page.evaluate(_NOTEBOOK_STATUS_JS)

    def run_all(self, timeout: float = 120.0, first_plot: str | None = None) -> float:
        """Clear outputs, run all cells, wait until every code cell has an execution count and the
        kernel is idle again. Fails early (with the traceback) if a cell raised. Returns seconds.

        With ``first_plot`` (a scope), also records in ``timings['open_to_first_plot']`` when
        ``SCOPE .js-plotly-plot`` first plotted points, counted from :meth:`open` (0.1 s
        resolution; if it only happens after run-all, call :meth:`wait_for_plot` and
        :meth:`since_open`).
        """
        self.wait_kernel_idle()
        self.page.evaluate(
            "async () => { const c = window.jupyterapp.commands;"
            " await c.execute('notebook:clear-all-cell-outputs'); }"
        )
        t0 = time.monotonic()
        self.page.evaluate(
            "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
        )
        deadline = t0 + timeout
        status = None
        while time.monotonic() < deadline:
            status = self._status()
            if first_plot and "open_to_first_plot" not in self.timings:
                if self.plot_points(first_plot) > 0:
                    self.timings["open_to_first_plot"] = self.since_open()
            if status["errors"] and status["idle"]:
                raise AssertionError(
                    f"{self.notebook}: a cell raised during run-all:\n" + "\n---\n".join(status["errors"])
                )
            if status["code_cells"] > 0 and status["pending"] == 0 and status["idle"]:
                self.timings["run_all"] = time.monotonic() - t0
                return self.timings["run_all"]
            time.sleep(0.1)
        raise AssertionError(f"{self.notebook}: run-all did not finish in {timeout:.0f} s: {status}")

    def assert_no_error_outputs(self, root: str = ".jp-NotebookPanel") -> None:
        status = self._status()
        problems = status["errors"] + status["stderr"]
        assert not problems, f"{self.notebook}: error/stderr outputs:\n" + "\n---\n".join(problems)
        super().assert_no_error_outputs(root)

    def assert_no_widget_fallback(self, root: str = ".jp-NotebookPanel", output_selector: str = ".jp-OutputArea-output") -> None:
        super().assert_no_widget_fallback(root, output_selector)

    def since_open(self) -> float:
        return time.monotonic() - self._opened_at


_NOTEBOOK_STATUS_JS = r"""
() => {
    const w = window.jupyterapp.shell.currentWidget;
    const sc = w.sessionContext;
    const k = sc.session && sc.session.kernel;
    const cells = w.content.model.cells;
    let codeCells = 0, pending = 0;
    const errors = [], stderr = [];
    const strip = s => String(s).replace(/\x1b\[[0-9;]*m/g, '');
    for (let i = 0; i < cells.length; i++) {
        const c = cells.get(i);
        if (c.type !== 'code') continue;
        if (c.sharedModel.getSource().trim() === '') continue;  // JupyterLab skips empty cells
        codeCells += 1;
        if (c.executionCount === null || c.executionCount === undefined) pending += 1;
        for (let j = 0; j < c.outputs.length; j++) {
            const o = c.outputs.get(j).toJSON();
            if (o.output_type === 'error') {
                errors.push(`cell ${i}: ${o.ename}: ${o.evalue}\n` + strip((o.traceback || []).join('\n')).slice(-3000));
            } else if (o.output_type === 'stream' && o.name === 'stderr') {
                const t = Array.isArray(o.text) ? o.text.join('') : o.text;
                stderr.push(`cell ${i} stderr: ` + strip(t).slice(0, 3000));
            }
        }
    }
    return {code_cells: codeCells, pending, idle: !!k && k.status === 'idle', errors, stderr};
}
"""

# Installed on every page (context.add_init_script) so wait_for_function can reuse it.
PLOT_HELPERS_JS = r"""
(() => {
    const DTYPES = {i1: Int8Array, u1: Uint8Array, u1c: Uint8ClampedArray, i2: Int16Array,
                    u2: Uint16Array, i4: Int32Array, u4: Uint32Array, f4: Float32Array,
                    f8: Float64Array};
    const decode = (spec) => {
        const bin = atob(spec.bdata);
        const bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
        return Array.from(new DTYPES[spec.dtype](bytes.buffer));
    };
    const conv = (v, depth) => {
        if (depth > 10) return null;
        if (ArrayBuffer.isView(v)) return Array.from(v);
        if (Array.isArray(v)) return v.map(x => conv(x, depth + 1));
        if (v && typeof v === 'object') {
            if (typeof v.bdata === 'string' && v.dtype in DTYPES) return decode(v);
            const o = {};
            for (const k of Object.keys(v).sort()) {
                if (k.startsWith('_') || typeof v[k] === 'function') continue;
                o[k] = conv(v[k], depth + 1);
            }
            return o;
        }
        return v;
    };
    window.__swPlotData = (sel) => {
        const el = document.querySelector(sel);
        if (!el || !Array.isArray(el.data)) return null;
        return el.data.map(t => conv(t, 0));
    };
    // Number of plotted points (sum over traces of the longest of x / y / values), or -1.
    window.__swPlotPoints = (sel) => {
        const d = window.__swPlotData(sel);
        if (d === null) return -1;
        let n = 0;
        for (const t of d) {
            n += Math.max(...['x', 'y', 'values', 'z'].map(k => Array.isArray(t[k]) ? t[k].length : 0));
        }
        return n;
    };
})();
"""

_PLOT_DATA_JS = "sel => window.__swPlotData(sel)"

_PLOT_BOX_JS = r"""
scope => {
    const el = document.querySelector(scope);
    const plot = el && (el.matches('.js-plotly-plot') ? el : el.querySelector('.js-plotly-plot'));
    if (!plot) return null;
    const r = el.getBoundingClientRect();
    let svgW = 0, svgH = 0;
    for (const s of plot.querySelectorAll('svg.main-svg')) {
        const b = s.getBoundingClientRect();
        svgW = Math.max(svgW, b.width); svgH = Math.max(svgH, b.height);
    }
    // The nearest ancestor (up to the scope) that hides overflow and is smaller than the drawing.
    let clipper = null;
    for (let x = plot; x && x !== el.parentElement; x = x.parentElement) {
        const cs = getComputedStyle(x);
        if (!clipper && cs.overflow !== 'visible' && x.getBoundingClientRect().height < svgH * 0.9) {
            clipper = x.tagName.toLowerCase() + '.' + Array.from(x.classList).join('.') + ' (overflow: '
                + cs.overflow + ', height ' + Math.round(x.getBoundingClientRect().height) + ' px)';
        }
    }
    const cont = plot.querySelector('.svg-container');
    let config = null;
    try { config = JSON.stringify(plot._context ? {responsive: plot._context.responsive} : null); } catch (e) {}
    return {w: r.width, h: r.height, svg_w: svgW, svg_h: svgH, clipper,
            container_style: cont ? cont.getAttribute('style') : null, config};
}
"""


def new_guarded_context(browser, *, allow_file: bool = False):
    """A fresh browser context with the route guard and plot helpers installed (``allow_file``:
    ``file:`` URLs pass the guard too)."""
    guard = RequestGuard(allow_file=allow_file)
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    context.set_default_timeout(30_000)
    context.add_init_script(PLOT_HELPERS_JS)
    guard.attach(context)
    return context, guard


def traces_summary(data: list[dict] | None) -> list[tuple]:
    """(name, number of points, sum of y) per trace: a short, comparable digest for messages."""
    out = []
    for t in data or []:
        y = t.get("y") or []
        try:
            total = sum(v for v in y if isinstance(v, (int, float)))
        except TypeError:
            total = None
        out.append((t.get("name"), len(y), total))
    return out
