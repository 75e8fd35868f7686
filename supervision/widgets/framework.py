"""The shared dashboard framework: a state model, the common pickers, views, and a visible error pane.

Every area dashboard (alliance, outcome, focus, engagement, adaptation) is a :class:`Dashboard`
with a list of :class:`View` objects. The dashboard owns the pickers (supervisee, period, episode
status, client drill-down) and a :class:`Selection` state; when a picker changes, the state is
updated once, the caseload is sliced once, and every view redraws from that slice. Any exception
in a callback is shown in the dashboard's error pane (class ``sw-error``), never swallowed.

CSS classes (for browser tests and styling): ``sw-dashboard`` plus the dashboard's own class on the
outer box; ``sw-supervisee``, ``sw-period``, ``sw-episodes``, ``sw-client`` on the pickers;
``sw-status`` and ``sw-error`` on the panes; each view adds its own.
"""

from __future__ import annotations

import copy
import html
import json
import re
import time
import traceback
import weakref

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from supervision.caseload import Caseload
from supervision.selection import PERIODS, CaseloadIndex, Selection, Slice  # noqa: F401 (re-exported)

PERIOD_LABELS = [("Whole export", "all"), ("Last 3 months", "3m"), ("Last 6 months", "6m"), ("Last 12 months", "12m")]
EPISODE_LABELS = [("All episodes", "all"), ("Open episodes", "open"), ("Ended episodes", "ended")]


PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Not "responsive": inside an output area plotly would size the chart to a parent of height 0.
PLOTLY_CONFIG = {"displaylogo": False}
#: Page CSS for ``FigureBox(..., no_snapshot=True)``: the plot's own box (``.jp-RenderedPlotly``) has no
#: height and lets the plot show over its parents; the ``Output`` around them is as high as the figure.
NO_SNAPSHOT_CSS = """<style>
.sw-chart-no-snapshot .jp-OutputArea, .sw-chart-no-snapshot .jp-OutputArea-child { overflow: visible !important; }
.sw-chart-no-snapshot .jp-OutputArea-child { display: block !important; }
.sw-chart-no-snapshot .jp-RenderedPlotly { display: block !important; height: 0 !important; min-height: 0 !important;
  flex: 0 0 auto !important; overflow: visible !important; }
</style>"""


class FigureBox:
    """An output area showing one plotly figure through JupyterLab's plotly renderer.

    The figure goes into the ``Output`` widget's state as a plotly mime bundle, so it renders
    in JupyterLab and in Voila alike, is rebuilt from saved state (no lost updates), and needs
    neither a CDN nor ``FigureWidget`` (whose import costs seconds). The last figure is kept in
    ``.figure`` so tests can read it as data.

    ``no_snapshot=True`` (pages that redraw their charts often, e.g. the Client page, which must
    also show :data:`NO_SNAPSHOT_CSS`): JupyterLab's plotly renderer draws every new plot twice and
    then a third time into a PNG snapshot of it (``Plotly.toImage``, kept for saving the notebook's
    outputs; widget outputs are never saved), about half of the browser's work per chart. It takes
    the snapshot only when the plot's own box has a height, so here that box has none and the
    ``Output`` keeps the chart's room instead (its height set to the figure's); the plot is the same.
    """

    def __init__(self, css_class: str, *, no_snapshot: bool = False):
        self.widget = w.Output(layout=w.Layout(width="100%"))
        self.widget.add_class("sw-chart")
        self.widget.add_class(css_class)
        self.figure: go.Figure | None = None
        self.no_snapshot = no_snapshot
        if no_snapshot:
            self.widget.add_class("sw-chart-no-snapshot")

    #: Set by :meth:`Dashboard._draw` while a view draws: the dashboard's figure filter (colleagues unnamed).
    current_filter = None

    def show(self, fig: go.Figure) -> None:
        bundle = json.loads(pio.to_json(fig, validate=False))
        keep_out = FigureBox.current_filter
        if keep_out is not None and keep_out.applies(bundle):
            fig = keep_out(fig)
            bundle = json.loads(pio.to_json(fig, validate=False))
        self.figure = fig
        bundle["config"] = PLOTLY_CONFIG
        if self.no_snapshot:  # the box keeps the chart's room (see NO_SNAPSHOT_CSS)
            self.widget.layout.height = f"{int(bundle.get('layout', {}).get('height') or 360)}px"
        self.widget.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {PLOTLY_MIME: bundle, "text/plain": f"<chart: {fig.layout.title.text or ''}>"}},)

    def clear(self) -> None:
        self.figure = None
        self.widget.outputs = ()
        if self.no_snapshot:
            self.widget.layout.height = None


def _strings(value):
    """Every string value in a figure's JSON (a chart's texts, names, coordinates, hover texts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


class _Unnamed:
    """The dashboards' figure filter: every other clinician's id unnamed
    (:func:`supervision.figures.colleagues.unname_colleagues`).

    :meth:`applies` says whether a figure (as its JSON) holds any colleague's id at all; when none
    of its strings contains one, the filter would change nothing and is skipped (most charts of one
    client, e.g. the Client page's four): no walk through the figure's traces and axes.
    """

    def __init__(self, clinicians, keep: str | None):
        self.clinicians = list(clinicians)
        self.keep = keep
        others = sorted({str(c) for c in self.clinicians} - {str(keep)})
        self._any = re.compile("|".join(map(re.escape, others))) if others else None

    def applies(self, bundle: dict) -> bool:
        return self._any is not None and any(self._any.search(s) for s in _strings(bundle))

    def __call__(self, fig: go.Figure) -> go.Figure:
        from supervision.figures.colleagues import unname_colleagues

        return unname_colleagues(fig, self.clinicians, self.keep)


class View:
    """One panel of a dashboard. Subclasses build ``self.widget`` and implement :meth:`update`."""

    css_class = "sw-view"
    title = ""
    compares_with_service = False  # True: in a self-review, shows :meth:`self_review` instead (own clients only)

    def self_review(self, data, dashboard) -> dict | None:
        """In a self-review with published benchmarks: ``names`` (benchmarks), optional ``dimension``,
        ``group``, ``what`` and ``not_comparable`` for :func:`self_review_comparison`; None = a plain notice."""
        return None

    def __init__(self):
        self.widget = w.VBox()
        self.widget.add_class(self.css_class)

    def update(self, data: Slice) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def error_html(exc: BaseException) -> str:
    return ("<div style='color:#a00;border:1px solid #a00;padding:6px'><b>Something went wrong:</b> "
            f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}<details><summary>details for a bug "
            f"report</summary><pre>{html.escape(traceback.format_exc())}</pre></details></div>")


def guarded(error_pane: w.HTML, fn):
    """``fn`` wrapped so that any exception is shown in ``error_pane`` (never swallowed, never a traceback)."""
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed
            error_pane.value = error_html(exc)
            return None
    return run


def unusable_notice(caseload: Caseload) -> w.HTML:
    """What a dashboard shows instead of itself when the export cannot be used."""
    problems = caseload.report[caseload.report["severity"] == "error"].head(10)
    items = "".join(f"<li>{html.escape(str(p))}</li>" for p in problems["problem"])
    box = w.HTML(f"<div style='border:1px solid #a00;padding:8px'><b>This export cannot be used yet.</b> "
                 f"Open <i>00-start-here</i> to see the full validation report. First problems:<ul>{items}</ul></div>")
    box.add_class("sw-unusable")
    return box


def self_review_notice(clinician: str, published: bool = False) -> w.HTML:
    """What a view that compares with the service shows in a self-review without a valid comparison."""
    why = ("The service's figures published with your folder hold nothing that compares with this view, so there "
           "is no valid comparison here; the other views show yours beside the service's where one exists."
           if published else
           "The service's figures reach a self-review only as totals with small numbers hidden, in a folder made with "
           "<code>supervision publish</code>; this data came without them, so ask your service for such a folder "
           "or your supervisor.")
    box = w.HTML(
        f"<div style='border:1px solid #888;padding:8px'><b>Self-review of {html.escape(clinician)}:</b> only your own "
        f"clients are here, so this chart has no service to compare you with (it would compare you with yourself). {why}</div>")
    box.add_class("sw-self-review")
    return box


#: Plain names of the published service benchmarks (:func:`supervision.publish.service_benchmarks`).
BENCHMARK_LABELS = {
    "clients": "clients", "single_session": "single-session episodes", "unilateral": "unilateral endings",
    "lost_contact": "open episodes with lost contact", "srs_total": "mean SRS per rated session",
    "ors_total": "mean ORS per rated session", "phq9_total": "mean PHQ-9", "gad7_total": "mean GAD-7",
    "core10_total": "mean CORE-10", "focus_on_goal": "sessions on an agreed goal (goal coverage)",
    "focus_check_in": "sessions mainly a week review / check-in", "focus_agenda_set": "sessions with an agenda set",
}
_OUTCOME_WORDS = {"reliably_improved": "reliably improved (recovered or improved)", "recovered": "recovered",
                  "deteriorated": "reliably deteriorated", "harmed": "harmed (reliably worse into the clinical range)"}


def benchmark_label(name: str) -> str:
    """A benchmark's plain name (an outcome rate: "ORS: recovered")."""
    if name in BENCHMARK_LABELS:
        return BENCHMARK_LABELS[name]
    inst, _, rate = name.partition("_")
    if rate in _OUTCOME_WORDS:
        return f"{inst.upper().replace('PHQ9', 'PHQ-9').replace('GAD7', 'GAD-7').replace('CORE10', 'CORE-10')}: " \
               f"{_OUTCOME_WORDS[rate]}, of clients with two or more scores"
    return name.replace("_", " ")


def _hidden(r, col: str) -> bool:
    return str(r.get(col)).strip() in ("True", "true", "1")


def benchmark_cell(r, kind: str, name: str = "") -> str:
    """One benchmark row as text: the figure with its n, or "hidden (small number)"."""
    def empty(v) -> bool:
        return v is None or (not isinstance(v, str) and pd.isna(v)) or str(v).strip() in ("", "*", "nan", "<NA>")

    if kind == "count":
        return "hidden (small number)" if _hidden(r, "n_suppressed") or empty(r.get("n_display")) else f"{r['n_display']}"
    if _hidden(r, "n_suppressed"):
        return "hidden (small number)"
    if kind == "rate":
        if _hidden(r, "rate_suppressed") or empty(r.get("rate")):
            return "hidden (small number)"
        return f"{float(r['rate']):.0%} (n={r['n_display']})"
    if _hidden(r, "mean_suppressed") or empty(r.get("mean")):
        return "hidden (small number)"
    if name.startswith("focus_"):
        return f"{float(r['mean']):.0f}% of sessions (n={r['n_display']} clients)"
    return f"{float(r['mean']):.1f} (n={r['n_display']})"


_RIGHT = "text-align:right;padding-left:14px"  # figures under their headers, right-aligned


def own_benchmarks(caseload: Caseload, data: Slice | None = None, dimension: str = "all") -> pd.DataFrame:
    """A self-review's own figures, as :func:`supervision.publish.service_benchmarks` with no suppression,
    for the period and episodes picked in ``data`` (the whole folder when None or nothing is picked),
    over all clients and, unless ``dimension`` is ``"all"``, per group of that identity dimension only
    (the rows a view's panel shows; every dimension would cost seconds per period).

    The clients are the slice's (those with a session in the period, of the picked episodes). Counts and
    per-client rates (single-session and unilateral endings, lost contact, an outcome measure's reliable
    change categories) read each such client's whole episode, since an ending or a change from intake
    cannot be judged from a window of it; the means per rated session and the session focus shares
    read the period's sessions only. No client in the period: an empty table (each row then says
    "none of your clients").
    """
    from supervision.publish import service_benchmarks

    others = [d for d in (caseload.settings["identity"].get("dimensions") or []) if d != dimension]
    clients = caseload.clients.drop(columns=[c for c in others if c in caseload.clients.columns])
    whole_folder = data is None or (data.start_date is None and data.selection.episodes == "all")
    if not whole_folder:
        clients = clients[clients["client_id"].isin(data.clients["client_id"])]
    if clients.empty:
        return pd.DataFrame(columns=["benchmark", "kind", "dimension", "group", "is_total"])

    def cut(sessions: pd.DataFrame) -> Caseload:
        part = copy.copy(caseload)  # the same settings and rules, fewer rows and columns (no re-validation)
        for memo in [k for k in vars(part) if k.startswith("_")]:  # nothing computed on the whole folder
            delattr(part, memo)
        part.clients, part.sessions = clients, sessions
        return part

    if whole_folder:
        return service_benchmarks(cut(caseload.sessions), "none")
    whole = service_benchmarks(cut(caseload.sessions[caseload.sessions["client_id"].isin(clients["client_id"])]), "none")
    in_period = service_benchmarks(cut(data.sessions[data.sessions["client_id"].isin(clients["client_id"])]), "none")
    return pd.concat([whole[whole["kind"] != "mean"], in_period[in_period["kind"] == "mean"]], ignore_index=True)


def period_words(data: Slice | None) -> str:
    """The self-review's own period and episodes in words ("your whole folder", "07 Sep 2025 to 07 Dec 2025, open episodes only")."""
    if data is None:
        return "your whole folder"
    when = ("your whole folder" if data.start_date is None
            else f"{data.start_date:%d %b %Y} to {data.reference_date:%d %b %Y}")
    eps = {"open": ", open episodes only", "ended": ", ended episodes only"}.get(data.selection.episodes, "")
    return when + eps


def self_review_comparison(own: pd.DataFrame, bench: pd.DataFrame, names, *, dimension: str = "all",
                           group: str = "all", what: str = "", not_comparable: str = "", group_label: str = "",
                           period: str = "your whole folder") -> str:
    """A self-review's own figures beside the service's published ones, for the benchmarks ``names``.

    ``own`` is :func:`own_benchmarks` (the clinician's own data, no suppression) for ``period`` (its
    words, :func:`period_words`); ``bench`` the service's, as published with the folder for the whole
    export (under the disclosure policy, docs/methods.md §9.3). Rows where the service published
    nothing say so; the text ``not_comparable`` names what this view shows that has no published
    service figure.
    """
    def part(frame):
        f = frame[(frame["dimension"].astype(str) == dimension) & (frame["group"].astype(str) == str(group))]
        return f.drop_duplicates("benchmark").set_index("benchmark")

    mine, svc = part(own), part(bench)
    rows, missing = [], []
    for name in names:
        if name not in svc.index:
            if name in mine.index:
                missing.append(benchmark_label(name))
            continue
        kind = str(svc.loc[name, "kind"])
        you = benchmark_cell(mine.loc[name], kind, name) if name in mine.index else "none of your clients"
        rows.append(f"<tr><td>{html.escape(benchmark_label(name))}</td><td class='n' style='{_RIGHT}'>{html.escape(you)}</td>"
                    f"<td class='n' style='{_RIGHT}'>{html.escape(benchmark_cell(svc.loc[name], kind, name))}</td></tr>")
    scope = "" if dimension == "all" else (
        f" for clients recorded as {html.escape(dimension.replace('_', ' '))}: <b>{html.escape(group_label or str(group))}</b>")
    out = [f"<h4>You and the service{scope}{(' — ' + html.escape(what)) if what else ''}</h4>"]
    if rows:
        out.append("<table class='sw-benchmark-table' style='font-size:13px' cellpadding='4'><thead><tr><th></th>"
                   f"<th class='n' style='{_RIGHT}'>you, {html.escape(period)}</th><th class='n' style='{_RIGHT}'>the service, "
                   "whole export</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    else:
        out.append("<p><b>No valid comparison here:</b> the service's figures published with your folder hold none "
                   "of the figures this view shows" + (" for this group" if dimension != "all" else "") + ".</p>")
    if missing:
        out.append("<p>Not published for the service (no comparison possible): " + html.escape(", ".join(missing)) + ".</p>")
    if not_comparable:
        out.append(f"<p>{not_comparable}</p>")
    out.append("<p><i>How to read this:</i> the service's figures were computed on the whole service's export before "
               "your folder was made, with small numbers hidden and the others rounded (the disclosure policy in your "
               "folder's manifest); yours use the same definitions over "
               + ("your whole folder" if period == "your whole folder" else
                  f"{html.escape(period)}, as picked above: the clients you saw in that period, their whole episodes "
                  "for endings and change since intake, that period's sessions for means and shares of sessions")
               + ". The service's figures include your own clients. A difference is a question for supervision, not a "
               "verdict.</p>")
    return "".join(out)


_CELL: dict = {"id": None}
_BUILT_IN_CELL: dict = {}  # notebook cell id -> weak reference to the dashboard it built last


def _on_cell(info) -> None:
    _CELL["id"] = getattr(info, "cell_id", None)


def _follow_cells() -> None:
    """Note which notebook cell runs (IPython's pre_run_cell event), when in a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return
    ip = get_ipython()
    if ip is not None and _on_cell not in ip.events.callbacks.get("pre_run_cell", []):
        ip.events.register("pre_run_cell", _on_cell)


def _replace_in_cell(dashboard) -> None:
    """Close the dashboard the current cell built before this one (a re-run of the cell)."""
    cell = _CELL["id"]
    if cell is None:
        return
    before = _BUILT_IN_CELL.get(cell)
    before = before() if before is not None else None
    if before is not None and before is not dashboard:
        before.close()
    _BUILT_IN_CELL[cell] = weakref.ref(dashboard)


_follow_cells()


class Dashboard:
    """Pickers + state + views. Subclasses set ``css_class`` and pass their views.

    Parameters
    ----------
    caseload : Caseload
        A loaded, usable caseload.
    views : list of View
        Panels redrawn on every change, in order.
    tabs : list of str, optional
        Titles: when given, the views are shown as tabs (one view per tab) instead of stacked.
    supervisee : str, optional
        The clinician to open on (default: the first).
    """

    css_class = "sw-dashboard"

    def __init__(self, caseload: Caseload, views: list[View], tabs: list[str] | None = None,
                 supervisee: str | None = None, extra_controls: list[w.Widget] | None = None):
        if not caseload.usable:
            raise ValueError("This caseload cannot be used (see its validation report in the start-here notebook).")
        self.index = CaseloadIndex(caseload)
        self.views = views
        self._name_colleagues = caseload.rules.privacy.name_colleagues
        self._clinician_ids = sorted(set(caseload.clinicians["clinician_id"].astype(str))
                                     | set(caseload.clients["clinician_id"].astype(str)))
        self.scope = caseload.scope
        self._loaded = caseload
        self._own_benchmarks: dict = {}  # a self-review's own figures per (period, episodes, dimension)
        clinicians = sorted(self.index.sessions_by) or sorted(caseload.clinicians["clinician_id"])
        roles = dict(zip(caseload.clinicians["clinician_id"], caseload.clinicians.get("role", pd.Series(dtype=str))))
        n_clients = {k: self.index.clients_by.size(k) for k in self.index.clients_by}
        first = supervisee if supervisee in clinicians else (clinicians[0] if clinicians else None)
        self.selection = Selection(supervisee=first)
        self.supervisee = w.Dropdown(
            options=[(f"{c}" + (f" ({roles[c]})" if isinstance(roles.get(c), str) else "") + f": {n_clients.get(c, 0)} clients", c)
                     for c in clinicians], value=first, description="Supervisee:", layout=w.Layout(width="330px"))
        self.supervisee.add_class("sw-supervisee")
        self.period = w.Dropdown(options=PERIOD_LABELS, value="all", description="Period:")
        self.period.add_class("sw-period")
        self.episodes = w.Dropdown(options=EPISODE_LABELS, value="all", description="Episodes:")
        self.episodes.add_class("sw-episodes")
        self.client = w.Dropdown(options=[("Whole caseload", "")], value="", description="Client:")
        self.client.add_class("sw-client")
        self.status = w.HTML()
        self.status.add_class("sw-status")
        self.error = w.HTML()
        self.error.add_class("sw-error")
        for ctrl, name in ((self.supervisee, "supervisee"), (self.period, "period"), (self.episodes, "episodes")):
            ctrl.observe(self.guard(lambda ch, name=name: self._set(name, ch["new"])), names="value")
        self.client.observe(self.guard(lambda ch: self._set("client", ch["new"] or None)), names="value")
        controls = w.HBox([self.supervisee, self.period, self.episodes, self.client])
        body: w.Widget
        if tabs:
            body = w.Tab(children=[v.widget for v in views])
            for i, t in enumerate(tabs):
                body.set_title(i, t)
            body.add_class("sw-tabs")
            body.observe(self.guard(self._on_tab), names="selected_index")
        else:
            body = w.VBox([v.widget for v in views])
        self.body = body
        self.widget = w.VBox([controls, *(extra_controls or []), self.status, self.error, body])
        self.widget.add_class("sw-dashboard")
        self.widget.add_class(self.css_class)
        self.widget.dashboard = self  # reachable from the notebook and from headless tests
        self.last_slice: Slice | None = None
        self._stale: set[int] = set()
        self.guard(self.refresh)()
        _replace_in_cell(self)

    def close(self) -> None:
        """Close every widget of the dashboard, so the kernel can free it and its tables.

        Its view in the page goes blank. A dashboard built again in the same notebook cell closes
        the one that cell built before (a re-run would otherwise keep both, ~1 GB each for a
        service of a million sessions).
        """
        stack, seen = [self.widget], set()
        while stack:
            widget = stack.pop()
            if id(widget) in seen:
                continue
            seen.add(id(widget))
            stack.extend(getattr(widget, "children", None) or ())
            widget.close()

    def guard(self, fn):
        """Wrap a callback so any exception is shown in the error pane."""
        return guarded(self.error, fn)

    def _draw(self, i: int) -> None:
        self._stale.discard(i)
        if self.scope is not None and self.views[i].compares_with_service:
            self.views[i].widget.children = [self._self_review_panel(self.views[i])]
            return
        FigureBox.current_filter = self._figure_filter()
        try:
            self.views[i].update(self.last_slice)
        except Exception as exc:  # noqa: BLE001 - one broken view must not hide the others
            self.error.value += error_html(exc)
        finally:
            FigureBox.current_filter = None

    def _self_review_panel(self, view: View) -> w.HTML:
        """In a self-review: the view's figures beside the service's published benchmarks, or a plain notice."""
        bench = getattr(self._loaded, "benchmarks", None)
        spec = view.self_review(self.last_slice, self) if bench is not None and self.last_slice is not None else None
        if spec is None:
            return self_review_notice(self.scope, published=bench is not None)
        data = self.last_slice
        dim = spec.get("dimension", "all")
        key = (data.selection.period, data.selection.episodes, dim)
        if key not in self._own_benchmarks:  # the clinician's figures for the period picked, once per period
            self._own_benchmarks[key] = own_benchmarks(self._loaded, data, dim)
        box = w.HTML(self_review_comparison(self._own_benchmarks[key], bench, period=period_words(data), **spec))
        box.add_class("sw-self-review")
        box.add_class("sw-self-review-compare")
        return box

    def _figure_filter(self):
        """Other clinicians unnamed in every chart, unless ``[privacy] name_colleagues`` is true."""
        if self._name_colleagues:
            return None
        return _Unnamed(self._clinician_ids, self.selection.supervisee)

    def _on_tab(self, change) -> None:
        i = change["new"]
        if i is not None and i in self._stale:
            self._draw(i)

    def enrich(self, data: Slice) -> None:
        """Hook: add area-specific tables to ``data.extras`` before the views update."""

    def _set(self, name: str, value) -> None:
        setattr(self.selection, name, value)
        if name != "client":
            self.selection.client = None
        self.refresh(update_clients=name != "client")

    def refresh(self, update_clients: bool = True) -> Slice:
        t0 = time.perf_counter()
        self.error.value = ""
        data = self.index.slice(self.selection)
        if update_clients:
            ids = sorted(data.clients["client_id"].astype(str))
            with self.client.hold_trait_notifications():
                self.client.options = [("Whole caseload", "")] + [(c, c) for c in ids]
                self.client.value = ""
        data.extras["scope"] = self.scope  # a self-review: no service to compare with
        self.enrich(data)
        self.last_slice = data
        # With tabs, only the visible view is drawn now; the others when their tab is opened.
        visible = self.body.selected_index if isinstance(self.body, w.Tab) else None
        self._stale = set(range(len(self.views)))
        for i in range(len(self.views)):
            if visible is None or i == visible:
                self._draw(i)
        took = time.perf_counter() - t0
        period = "the whole export" if data.start_date is None else f"{data.start_date:%d %b %Y} to {data.reference_date:%d %b %Y}"
        self.status.value = (f"<p><b>{html.escape(str(self.selection.supervisee))}</b>: {len(data.clients)} clients, "
                             f"{len(data.sessions)} scheduled sessions, {period}"
                             + (f"; client <b>{html.escape(self.selection.client)}</b>" if self.selection.client else "")
                             + f". <span style='color:#777'>(updated in {took * 1000:.0f} ms)</span></p>")
        return data
