"""The workbook as one application without code: navigation, lazy pages, a remembered choice.

``make app`` serves ``notebooks/app.ipynb`` with Voila; its only output is :func:`workbook_app`.
Pages (CSS class ``sw-page-<key>``): Start (choose the data, the settings and the supervisee once),
Supervision hour, Caseload, Client, Alliance, Session focus, Adaptation, Outcome, Data check.

- The data is loaded once and the service tables are computed once per data + settings (the
  supervision page's tables, reused by the Caseload and Client pages).
- A page is built on its first visit; the supervision page is built at once, so a preheated Voila
  kernel has it ready before anyone opens the app.
- The supervisee is shared: picking one on any page is what every page shows, and it is
  remembered (:mod:`supervision.remembered`) with the data, the settings and the page.
- In a preheated Voila kernel, :meth:`WorkbookApp.when_opened` waits for the visitor, then reads
  the remembered choice again (it may have changed since the kernel was heated).

CSS classes: ``sw-app`` (outer), ``sw-nav`` (the page buttons), ``sw-app-message`` (fallback and
load messages), ``sw-page`` + ``sw-page-<key>`` (each page), ``sw-app-start`` (the Start page:
``sw-app-source``, ``sw-app-folder``, ``sw-app-settings``, ``sw-app-supervisee``, ``sw-app-apply``).
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

import ipywidgets as w

from supervision.caseload import Caseload
from supervision.remembered import Remembered, load_remembered
from supervision.widgets.framework import guarded, unusable_notice
from supervision.widgets.shared import Shared  # noqa: F401 (here since the app began; caseload/client take it from shared)

PAGES = [
    ("start", "Start"),
    ("supervision", "Supervision hour"),
    ("caseload", "Caseload"),
    ("client", "Client"),
    ("alliance", "Alliance"),
    ("focus", "Session focus"),
    ("adaptation", "Adaptation"),
    ("outcome", "Outcome"),
    ("check", "Data check"),
]
PAGE_TITLES = dict(PAGES)

#: Layout fixes for every page: tab titles and button labels in full (not "Compared with the se…"),
#: table headers aligned with their values.
APP_CSS = """<style>
.sw-dashboard .lm-TabBar-tab, .sw-dashboard .p-TabBar-tab { flex: 0 0 auto !important; max-width: none !important; }
.sw-dashboard .lm-TabBar-tabLabel, .sw-dashboard .p-TabBar-tabLabel { overflow: visible !important; text-overflow: clip !important; }
.sw-dashboard .widget-button, .sw-app .widget-toggle-button { overflow: visible; text-overflow: clip; }
.sw-dashboard table th { text-align: left; }
.sw-dashboard table th.n { text-align: right; }
</style>"""


#: Pages where no view reads the client picker (it would change only the status line).
NO_CLIENT_VIEW = {"adaptation"}


def _clinician_options(caseload: Caseload) -> list[tuple[str, str]]:
    clin = caseload.clinicians
    n = caseload.clients.groupby("clinician_id", observed=True).size() if caseload.usable else {}
    roles = dict(zip(clin["clinician_id"], clin["role"])) if "role" in clin else {}
    return [(f"{c}" + (f" ({roles[c]})" if isinstance(roles.get(c), str) else "") + f": {int(n.get(c, 0))} clients", c)
            for c in sorted(clin["clinician_id"].astype(str))]


class StartPage:
    """Choose the data (demo or a folder), the settings file, and the supervisee, once."""

    def __init__(self, app: "WorkbookApp"):
        self.app = app
        rem = app.remembered
        self.source = w.Dropdown(options=[("The bundled demo clinic", "demo"), ("A folder of my own", "folder")],
                                 value="folder" if rem.data else "demo", description="Data:",
                                 layout=w.Layout(width="330px"))
        self.source.add_class("sw-app-source")
        self.folder = w.Text(value=rem.data, placeholder="/path/to/export (folder or .xlsx)", description="Folder:",
                             layout=w.Layout(width="520px"))
        self.folder.add_class("sw-app-folder")
        self.settings = w.Text(value=rem.settings, placeholder="empty = the default settings", description="Settings:",
                               layout=w.Layout(width="520px"))
        self.settings.add_class("sw-app-settings")
        self.apply = w.Button(description="Use this data", button_style="primary", icon="check",
                              layout=w.Layout(width="auto", align_self="flex-start", margin="4px 0 4px 90px"))
        self.apply.add_class("sw-app-apply")
        self.supervisee = w.Dropdown(description="Supervisee:", layout=w.Layout(width="330px"))
        self.supervisee.add_class("sw-app-supervisee")
        self.summary = w.HTML()
        self.summary.add_class("sw-app-summary")
        self.source.observe(lambda ch: self._show_folder(), names="value")
        self.apply.on_click(lambda _b: app.guard(self._apply)())
        self._filling = False
        self.supervisee.observe(lambda ch: None if self._filling or not ch["new"] else app.guard(app.set_supervisee)(ch["new"]),
                                names="value")
        self._show_folder()
        intro = w.HTML(
            "<h3>Start</h3><p>Choose the data and, if your service has one, its settings file; then the supervisee. "
            "The workbook remembers this choice on this computer for the next visit. "
            "Then open <b>Supervision hour</b> above.</p>")
        self.widget = w.VBox([intro, self.source, self.folder, self.settings, self.apply,
                              w.HTML("<hr style='margin:6px 0'>"), self.supervisee, self.summary])
        self.widget.add_class("sw-app-start")
        self.refresh()

    def _show_folder(self) -> None:
        self.folder.layout.display = "" if self.source.value == "folder" else "none"

    def refresh(self) -> None:
        """Show the loaded data's clinicians and summary."""
        from supervision.widgets.start import summary_html

        cl = self.app.shared.caseload
        opts = _clinician_options(cl) if cl.usable else []
        self._filling = True
        try:
            self.supervisee.options = opts
            self.supervisee.value = self.app.supervisee if self.app.supervisee in {v for _, v in opts} else None
        finally:
            self._filling = False
        where = "the bundled demo clinic" if not self.app.remembered.data else f"<code>{html.escape(self.app.remembered.data)}</code>"
        self.summary.value = f"<p>Now showing {where}.</p>" + summary_html(cl)

    def _apply(self) -> None:
        data = self.folder.value.strip() if self.source.value == "folder" else ""
        if self.source.value == "folder" and not data:
            self.app.message.value = "<p style='color:#a00'>Type the folder of your export (or an .xlsx file) first.</p>"
            return
        self.app.use_data(data, self.settings.value.strip())


class WorkbookApp:
    """The application: navigation, the pages (built on first visit) and the remembered choice."""

    def __init__(self, state_file: Path | None = None, page: str | None = None):
        self.state_file = state_file
        self.error = w.HTML()
        self.error.add_class("sw-error")
        self.message = w.HTML()
        self.message.add_class("sw-app-message")
        self.nav = w.ToggleButtons(options=[(t, k) for k, t in PAGES], value="supervision",
                                   style={"button_width": "auto"})
        self.nav.add_class("sw-nav")
        self.body = w.VBox(layout=w.Layout(width="100%"))
        self.widget = w.VBox([w.HTML(APP_CSS), self.nav, self.message, self.error, self.body])
        self.widget.add_class("sw-app")
        self.widget.app = self  # reachable from headless tests
        self.timings: dict[str, float] = {}
        self._switching = False
        self.nav.observe(self.guard(lambda ch: self.show(ch["new"])), names="value")
        self._load(first_page=page)

    # -- errors --------------------------------------------------------------------------------
    def guard(self, fn):
        return guarded(self.error, fn)

    # -- data and choice -----------------------------------------------------------------------
    def _load(self, first_page: str | None = None) -> None:
        t0 = time.perf_counter()
        caseload, rem, note = load_remembered(self.state_file)
        self.remembered = rem
        self.shared = Shared(caseload)
        self.pages: dict[str, object] = {}
        self.widgets: dict[str, w.Widget] = {}
        ids = sorted(caseload.clinicians["clinician_id"].astype(str)) if caseload.usable else []
        self.supervisee = rem.supervisee if rem.supervisee in ids else (ids[0] if ids else "")
        self.message.value = f"<p style='color:#a00'><b>{html.escape(note)}</b></p>" if note else ""
        self.timings["load"] = time.perf_counter() - t0
        page = first_page or rem.page or "supervision"
        if page not in PAGE_TITLES:
            page = "supervision"
        if not caseload.usable and page not in ("start", "check"):
            page = "check"
        if caseload.usable and page != "supervision":
            self.build("supervision")  # the tables every page shares are computed here, once
        self.show(page, remember=False)

    def save(self) -> None:
        self.remembered.supervisee = self.supervisee
        self.remembered.page = self.nav.value
        try:
            self.remembered.write(self.state_file)
        except OSError as exc:
            self.message.value = (f"<p style='color:#a00'>Your choice could not be remembered ({html.escape(str(exc))}); "
                                  "the workbook still works.</p>")

    def use_data(self, data: str, settings: str) -> None:
        """Switch to other data or settings (from the Start page): remember, reload, rebuild."""
        self.remembered.data, self.remembered.settings = data, settings
        self.save()
        self.message.value = "<p>Loading …</p>"
        self.body.children = ()
        for wid in self.widgets.values():
            wid.close()
        self._load(first_page="start")
        if self.shared.caseload.usable and not self.message.value:
            self.message.value = "<p style='color:#060'>Loaded. Open <b>Supervision hour</b> above.</p>"

    def set_supervisee(self, clinician: str) -> None:
        if not clinician or clinician == self.supervisee:
            return
        self.supervisee = clinician
        self.save()
        self._sync(self.nav.value)
        if "start" in self.pages and self.nav.value != "start":
            self.pages["start"].supervisee.value = clinician

    def when_opened(self) -> None:
        """In a preheated Voila kernel: wait for the visitor, then apply what is remembered *now*."""
        if os.environ.get("VOILA_PREHEAT", "False") == "False":
            return
        from voila.utils import wait_for_request

        from supervision.figures.theme import warm_up

        warm_up()  # plotly's lazy loading paid here, not on the visitor's first chart
        wait_for_request()
        rem = Remembered.read(self.state_file)
        if (rem.data, rem.settings) != (self.remembered.data, self.remembered.settings):
            self.remembered = rem
            self._load()
            return
        self.remembered = rem
        if rem.supervisee and rem.supervisee != self.supervisee:
            self.supervisee = rem.supervisee
            self._sync(self.nav.value)
        if rem.page in PAGE_TITLES and rem.page != self.nav.value:
            self.show(rem.page)

    # -- pages ---------------------------------------------------------------------------------
    def build(self, key: str):
        """Build a page (once); returns its controller (a dashboard, or the widget itself)."""
        if key in self.pages:
            return self.pages[key]
        t0 = time.perf_counter()
        cl, me = self.shared.caseload, self.supervisee or None
        if key == "start":
            page = StartPage(self)
            widget = page.widget
        elif key == "check":
            from supervision.widgets.start import StartHere

            page = StartHere(self.remembered.data or None, settings=cl.settings)
            page._guard(page.load)()
            page.widget.children[0].layout.display = "none"  # the data is chosen on the Start page
            widget = w.VBox([w.HTML("<h3>Data check</h3><p>The validation report of the data chosen on the "
                                    "<b>Start</b> page, and its sessions per month.</p>"), page.widget])
        elif not cl.usable:
            page, widget = None, unusable_notice(cl)
        elif key == "supervision":
            from supervision.widgets.supervision import SupervisionDashboard

            page = SupervisionDashboard(cl, supervisee=me)
            self.shared.adopt(page._tables, page._agenda)
            widget = page.widget
        elif key == "caseload":
            from supervision.widgets.caseload import CaseloadDashboard

            page = CaseloadDashboard(cl, supervisee=me, shared=self.shared, open_client=self.open_client)
            widget = page.widget
        elif key == "client":
            from supervision.widgets.client import ClientDashboard

            page = ClientDashboard(cl, supervisee=me, shared=self.shared, client=self.remembered.client or None)
            widget = page.widget
        else:
            from importlib import import_module

            mod = import_module(f"supervision.widgets.{key}")
            cls = {"alliance": "AllianceDashboard", "focus": "FocusDashboard", "adaptation": "AdaptationDashboard",
                   "outcome": "OutcomeDashboard"}[key]
            page = getattr(mod, cls)(cl, supervisee=me)
            widget = page.widget
        widget.add_class("sw-page")
        widget.add_class(f"sw-page-{key}")
        if key in NO_CLIENT_VIEW:
            page.client.layout.display = "none"  # no view of this page shows one client: no picker that does nothing
        if hasattr(page, "supervisee") and isinstance(getattr(page, "supervisee"), w.Dropdown) and key != "start":
            page.supervisee.observe(lambda ch: self.guard(self.set_supervisee)(ch["new"]), names="value")
        self.pages[key], self.widgets[key] = page, widget
        self.timings[f"build {key}"] = time.perf_counter() - t0
        return page

    def _sync(self, key: str) -> None:
        """Bring a built page to the shared supervisee."""
        page = self.pages.get(key)
        dd = getattr(page, "supervisee", None)
        if key != "start" and isinstance(dd, w.Dropdown) and dd.value != self.supervisee \
                and self.supervisee in {v for _, v in dd.options}:
            dd.value = self.supervisee

    def show(self, key: str, remember: bool = True) -> None:
        """Open a page (building it on its first visit); ``remember`` it for the next visit."""
        if self._switching:
            return
        self._switching = True
        try:
            if self.nav.value != key:
                self.nav.value = key
            if key not in self.pages:
                self.body.children = (w.HTML(f"<p>Opening {html.escape(PAGE_TITLES[key])} …</p>"),)
            self.build(key)
            self._sync(key)
            if key == "start":
                self.pages["start"].refresh()
            self.body.children = (self.widgets[key],)
            if remember:
                self.save()
        finally:
            self._switching = False

    def open_client(self, client_id: str) -> None:
        """Open the Client page on ``client_id`` (from the Caseload page)."""
        self.remembered.client = client_id
        self.show("client")
        self.pages["client"].open(client_id)


def workbook_app(state_file: str | Path | None = None, page: str | None = None) -> w.VBox:
    """Build the whole workbook as one application (the remembered data, settings and supervisee).

    Parameters
    ----------
    state_file : path, optional
        Where the choice is remembered (default: :func:`supervision.remembered.state_path`).
    page : str, optional
        The page to open (default: the remembered one, else *Supervision hour*).
    """
    return WorkbookApp(Path(state_file) if state_file else None, page=page).widget


def notebook_page(key: str, data: str | Path | None = None, supervisee: str | None = None, **options) -> w.Widget:
    """One page of the workbook in a notebook, on the choice remembered by the app.

    ``data`` / ``supervisee`` given in the notebook win; otherwise the remembered data (with its
    settings) and supervisee are used (the demo clinic and the first clinician the first time).
    A supervisee picked here is remembered for the app and the other notebooks. When the remembered
    folder is gone, the demo is shown with a message saying so.

    Parameters
    ----------
    key : {"alliance", "focus", "adaptation", "outcome", "caseload", "client"}
        The page.
    **options
        Passed to the dashboard (e.g. ``instrument="phq9"`` for the outcome page).
    """
    from importlib import import_module

    rem = Remembered.read()
    if data is not None:
        from supervision.io import load_caseload

        caseload, note = load_caseload(data), ""
    else:
        caseload, rem, note = load_remembered()
    me = supervisee or rem.supervisee or None
    if not caseload.usable:
        return unusable_notice(caseload)
    if key == "caseload":
        from supervision.widgets.caseload import CaseloadDashboard as cls
    elif key == "client":
        from supervision.widgets.client import ClientDashboard as cls
    else:
        cls = getattr(import_module(f"supervision.widgets.{key}"), {
            "alliance": "AllianceDashboard", "focus": "FocusDashboard", "adaptation": "AdaptationDashboard",
            "outcome": "OutcomeDashboard"}[key])
    dash = cls(caseload, supervisee=me, **options)

    def remember(change) -> None:
        if change["new"]:
            now = Remembered.read()
            now.supervisee = change["new"]
            try:
                now.write()
            except OSError:
                pass  # remembering is a convenience; the notebook works without it

    dash.supervisee.observe(remember, names="value")
    if key in NO_CLIENT_VIEW:
        dash.client.layout.display = "none"
    parts = [w.HTML(APP_CSS)]
    if note:
        msg = w.HTML(f"<p style='color:#a00'><b>{html.escape(note)}</b></p>")
        msg.add_class("sw-app-message")
        parts.append(msg)
    box = w.VBox(parts + [dash.widget])
    box.dashboard = dash
    return box


def remembered_data() -> str | None:
    """The remembered data folder (None: the demo clinic), for the start-here notebook."""
    rem = Remembered.read()
    return rem.data if rem.data and Path(rem.data).expanduser().exists() else None
