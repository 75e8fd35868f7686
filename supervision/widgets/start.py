"""The start-here dashboard: choose the data, load it, read the validation report and the summary.

A small state model (:class:`StartState`) holds what was chosen and loaded; the views read it.
Every callback is wrapped so that an unexpected error appears in the dashboard's error pane
instead of vanishing into the browser console.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as w
import pandas as pd

from supervision.caseload import Caseload
from supervision.figures.caseload import sessions_per_month
from supervision.io import demo_path, env_data_path, load_caseload
from supervision.widgets.framework import FigureBox, error_html

REPORT_ROWS_SHOWN = 100
_SEVERITY_STYLE = {"error": "background:#fbe3d6", "warning": "background:#fdf3d0"}


@dataclass
class StartState:
    source: str = "demo"          # "demo" or "folder"
    folder: str = ""
    clinician: str = "all"
    caseload: Caseload | None = field(default=None, repr=False)

    @property
    def path(self) -> Path:
        return demo_path() if self.source == "demo" else Path(self.folder).expanduser()

    def sessions_in_view(self) -> pd.DataFrame:
        s = self.caseload.sessions
        return s if self.clinician == "all" else s[s["clinician_id"] == self.clinician]


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


def _table_html(frame: pd.DataFrame, css_class: str, row_style=None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, r in frame.iterrows():
        style = f' style="{row_style(r)}"' if row_style else ""
        cells = "".join(f"<td>{'' if pd.isna(v) else html.escape(str(v))}</td>" for v in r)
        rows.append(f"<tr{style}>{cells}</tr>")
    return (f'<table class="{css_class}" style="border-collapse:collapse;font-size:13px" cellpadding="4">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def summary_html(cl: Caseload) -> str:
    """Plain-language caseload summary for the dashboard."""
    if not cl.usable:
        return ("<h3>This export cannot be used yet</h3><p>A table or a required column is missing, or a file "
                "could not be read. The report below says what to add or fix.</p>")
    s = cl.summary()
    dates = (f"{s['first_date']:%d %b %Y} to {s['last_date']:%d %b %Y}" if s["sessions"] else "no sessions")
    m = cl.measures_present()
    measures = ", ".join(f"{r.name} ({r.sessions} sessions, {r.clients} clients{', items' if r.item_level else ''})"
                         for r in m.itertuples()) or "none"
    counts = cl.counts.assign(**{"rows read": cl.counts["read"]})[["table", "rows read", "loaded", "quarantined"]]
    return (
        "<h3>Caseload</h3>"
        f"<p><b>{s['clinicians']}</b> clinicians, <b>{s['clients']}</b> clients, <b>{s['sessions']}</b> scheduled "
        f"sessions (<b>{s['attended']}</b> attended), {dates}.</p>"
        f"<p>Measures present: {html.escape(measures)}.</p>"
        + _table_html(counts, "sw-counts")
    )


def report_html(cl: Caseload) -> str:
    """The validation report as a readable table (errors first), or a short all-clear."""
    if cl.report.empty:
        return "<h3>Validation report</h3><p>No problems found: every row was loaded.</p>"
    rep = cl.report.assign(_o=cl.report["severity"].map({"error": 0, "warning": 1}))
    rep = rep.sort_values(["_o", "table", "row"], kind="stable").drop(columns="_o")
    shown = rep.head(REPORT_ROWS_SHOWN)[["severity", "table", "row", "column", "value", "problem", "fix"]]
    more = (f"<p>Showing the first {REPORT_ROWS_SHOWN} of {len(rep)} problems. Save the full list with "
            "<code>supervision validate PATH --report problems.csv</code>.</p>" if len(rep) > REPORT_ROWS_SHOWN else "")
    return (
        "<h3>Validation report</h3>"
        + (f"<p><b>{_n(cl.n_errors, 'error')}</b>: rows with an error were set aside (quarantined) and are not used. "
           if cl.usable else f"<p><b>{_n(cl.n_errors, 'error')}</b> {'stops' if cl.n_errors == 1 else 'stop'} the export from being used. ")
        + (f"<b>{_n(cl.n_warnings, 'warning')}</b>: those rows were loaded, with the problem noted. " if cl.n_warnings else "")
        + "<i>row</i> is the line number in your file (the header is line 1).</p>"
        + more + _table_html(shown, "sw-report-table", lambda r: _SEVERITY_STYLE.get(r["severity"], ""))
    )


class StartHere:
    """Choose the demo clinic or a folder, load it, and show report, summary and a first chart."""

    def __init__(self, data: str | Path | None = None, settings=None):
        self.settings = settings
        if data is None:
            data = env_data_path()  # a hosted workbook (deploy/) names the user's own folder; unset: the demo
        self.state = StartState(source="demo" if data is None else "folder", folder="" if data is None else str(data))
        self.source = w.Dropdown(options=[("The bundled demo clinic", "demo"), ("A folder of my own", "folder")],
                                 value=self.state.source, description="Data:")
        self.source.add_class("sw-source")
        self.path = w.Text(value=self.state.folder, placeholder="/path/to/export (folder or .xlsx)",
                           description="Folder:", layout=w.Layout(width="480px"))
        self.path.add_class("sw-path")
        self.load_button = w.Button(description="Load", button_style="primary", icon="upload")
        self.load_button.add_class("sw-load")
        self.status = w.HTML()
        self.status.add_class("sw-status")
        self.error = w.HTML()
        self.error.add_class("sw-error")
        self.summary = w.HTML()
        self.summary.add_class("sw-summary")
        self.report = w.HTML()
        self.report.add_class("sw-report")
        self.clinician = w.Dropdown(options=[("All clinicians", "all")], value="all", description="Clinician:")
        self.clinician.add_class("sw-clinician")
        self.chart = FigureBox("sw-chart-monthly")
        self.chart_help = w.HTML(
            "<p><i>How to read this:</i> each bar is one month's scheduled sessions, split into attended, cancelled "
            "and did-not-attend. A rising share of cancellations or missed sessions is worth a conversation; "
            "months with few sessions say little.</p>")
        self.source.observe(self._guard(self._on_source), names="value")
        self.load_button.on_click(self._guard(lambda _b: self.load()))
        self.clinician.observe(self._guard(self._on_clinician), names="value")
        self.widget = w.VBox([
            w.HBox([self.source, self.path, self.load_button]), self.status, self.error,
            self.summary, self.clinician, self.chart.widget, self.chart_help, self.report,
        ])
        self.widget.add_class("sw-start")
        self._on_source({"new": self.state.source})

    # -- callbacks -----------------------------------------------------------------------------
    def _guard(self, fn):
        def run(*args, **kwargs):
            try:
                self.error.value = ""
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed
                self.error.value = error_html(exc)
        return run

    def _on_source(self, change):
        self.state.source = change["new"]
        self.path.layout.display = "" if self.state.source == "folder" else "none"

    def _on_clinician(self, change):
        self.state.clinician = change["new"]
        self.redraw()

    # -- actions -------------------------------------------------------------------------------
    def load(self) -> Caseload:
        self.state.folder = self.path.value.strip()
        if self.state.source == "folder" and not self.state.folder:
            self.status.value = "<p>Type the folder of your export (or an .xlsx file), then press Load.</p>"
            return None
        self.status.value = f"<p>Loading {html.escape(str(self.state.path))} …</p>"
        cl = load_caseload(self.state.path, settings=self.settings)
        self.state.caseload = cl
        where = f"<code>{html.escape(str(self.state.path))}</code>"
        self.status.value = "<p>" + {
            "clean": f"Loaded {where}: no problems found.",
            "problems": f"Loaded {where}, with problems (see the report below).",
            "unusable": f"Read {where}, but it <b>cannot be used yet</b> (see the report below)."}[cl.status] + "</p>"
        self.summary.value = summary_html(cl)
        self.report.value = report_html(cl)
        clin = cl.clinicians
        n = cl.clients.groupby("clinician_id").size() if cl.usable else pd.Series(dtype=int)
        options = [("All clinicians", "all")] + [
            (f"{cid}" + (f" ({role})" if isinstance(role, str) and role else "") + f": {_n(int(n.get(cid, 0)), 'client')}", cid)
            for cid, role in zip(clin["clinician_id"], clin["role"] if "role" in clin else [None] * len(clin))]
        self.state.clinician = "all"
        with self.clinician.hold_trait_notifications():
            self.clinician.options = options
            self.clinician.value = "all"
        self.redraw()
        return cl

    def redraw(self):
        cl = self.state.caseload
        usable = cl is not None and cl.usable
        for part in (self.clinician, self.chart.widget, self.chart_help):
            part.layout.display = "" if usable else "none"
        if not usable:
            self.chart.clear()
            return
        who = "all clinicians" if self.state.clinician == "all" else f"clinician {self.state.clinician}"
        self.chart.show(sessions_per_month(self.state.sessions_in_view(), title=f"Sessions per month, {who}"))

    @property
    def figure(self):
        """The chart currently shown (a plotly Figure), for tests and exports."""
        return self.chart.figure


def start_here(data: str | Path | None = None, settings=None, load: bool = True) -> w.VBox:
    """Build the start-here dashboard; with ``load`` (default) the data is loaded at once.

    Parameters
    ----------
    data : folder or .xlsx path, optional
        Your export; ``None`` for the folder named by the ``SUPERVISION_DATA`` environment variable
        when it is set (a hosted workbook), else the bundled demo clinic.
    """
    dash = StartHere(data, settings=settings)
    if load:
        dash._guard(dash.load)()
    dash.widget.dashboard = dash  # keep the controller reachable (tests drive it headlessly)
    return dash.widget
