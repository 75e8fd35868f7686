"""The supervision dashboard: the ranked agenda, the caseload, the views behind them, and notes.

One notebook (``notebooks/02-supervision.ipynb``) brings together what a supervision hour needs:

- **Agenda** (``sw-agenda``): the ranked, explained items for the supervisee; pick one to read its
  evidence and suggested question, and *Discuss this client* to open the client's tab.
- **Caseload** (``sw-caseload``): engagement, alliance and volume against the service.
- **Alliance** (``sw-alliance-heatmap``): the caseload heatmap (the full alliance view is
  ``01-alliance``).
- **Client** (``sw-client-view``): the picked client's alliance in detail, agenda items and notes.
- **Notes** (``sw-notes``): meeting, notes (general or about the picked client) and action items,
  saved at once to the notes database; the draft is never cleared by changing a picker, and every
  save says what happened.
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

import ipywidgets as w
import pandas as pd

from supervision.agenda import build_agenda
from supervision.caseload import Caseload
from supervision.figures.alliance import client_alliance_detail
from supervision.figures.engagement import session_count_comparison
from supervision.metrics import engagement as eng
from supervision.metrics.tables import metric_tables
from supervision.notes import NotesError, NotesStore
from supervision.widgets.alliance import AllianceModel, AllianceOptions, HeatmapView
from supervision.widgets.framework import Dashboard, FigureBox, Slice, View, unusable_notice

#: Where the dashboard's *Save report* button writes (git-ignored).
REPORT_DIR = Path(__file__).resolve().parents[2] / "data" / "reports"
SEVERITY_COLOUR = {"high": "#D55E00", "medium": "#E69F00", "low": "#56B4E9"}


CASELOAD_ITEM = "(caseload)"


def _since(v, lead: str = "") -> str:
    return "" if pd.isna(v) else f"{lead} since {v:%d %b %Y}" if lead else f" (since {v:%d %b %Y})"


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.0%}"


def _ci(row, name) -> str:
    return f"{_pct(row[name])} ({_pct(row[name + '_lower'])}–{_pct(row[name + '_upper'])})"


class AgendaView(View):
    css_class = "sw-agenda"

    def __init__(self, dashboard_ref):
        super().__init__()
        self._dash = dashboard_ref
        self.header = w.HTML()
        self.items = w.Select(options=[], rows=12, layout=w.Layout(width="100%"))
        self.items.add_class("sw-agenda-list")
        self.detail = w.HTML()
        self.detail.add_class("sw-agenda-detail")
        self.open_button = w.Button(description="Discuss this client", icon="user", button_style="info")
        self.open_button.add_class("sw-agenda-open")
        self.items.observe(lambda ch: self._dash.guard(self._show_item)(), names="value")
        self.open_button.on_click(lambda _b: self._dash.guard(self._open_client)())
        self.widget.children = (self.header, self.items, self.detail, self.open_button)
        self.agenda = pd.DataFrame()

    def update(self, data: Slice) -> None:
        ag = data.extras["agenda"]
        ids = set(data.clients["client_id"])
        mine = ag["clinician_id"] == data.selection.supervisee
        ag = ag[mine & (ag["client_id"].isin(ids) | (ag["client_id"] == CASELOAD_ITEM))].reset_index(drop=True)
        ag["rank"] = range(1, len(ag) + 1)  # ranked within this supervisee's agenda
        self.agenda = ag
        counts = ag["severity"].value_counts()
        self.header.value = (
            f"<h3>Agenda for {html.escape(str(data.selection.supervisee))}: {len(ag)} items</h3>"
            f"<p><b style='color:{SEVERITY_COLOUR['high']}'>{counts.get('high', 0)} high</b>, "
            f"<b style='color:{SEVERITY_COLOUR['medium']}'>{counts.get('medium', 0)} medium</b>, {counts.get('low', 0)} low. "
            "Ranked by seriousness, then by how recent (see <i>How the agenda is ranked</i> below). Pick an item to see "
            "the evidence.</p>")
        opts = [(f"{r.rank}. [{r.severity}] {r.client_id}: {r.flag.replace('_', ' ')}{_since(r.since)}", i)
                for i, r in enumerate(ag.itertuples())]
        self.items.options = opts
        self.items.value = 0 if opts else None  # the first item is shown at once
        self._show_item()

    def _show_item(self) -> None:
        i = self.items.value
        if i is None or self.agenda.empty:
            self.detail.value = "<p>No agenda items for this selection.</p>"
            self.open_button.disabled = True
            return
        r = self.agenda.iloc[i]
        self.open_button.disabled = r["client_id"] == CASELOAD_ITEM  # an item about the whole caseload
        self.detail.value = (
            f"<div style='border-left:6px solid {SEVERITY_COLOUR[r['severity']]};padding:4px 10px'>"
            f"<p><b>{html.escape(str(r['client_id']))}</b>: {html.escape(r['flag'].replace('_', ' '))} "
            f"({html.escape(r['area'])}, {r['severity']}, score {r['score']:.0f}){_since(r['since'], ',')}.</p>"
            f"<p><b>Evidence:</b> {html.escape(str(r['evidence']))}</p>"
            f"<p><b>A question for supervision:</b> {html.escape(str(r['question']))}</p></div>")

    def _open_client(self) -> None:
        i = self.items.value
        if i is None or self.agenda.empty or self.agenda.iloc[i]["client_id"] == CASELOAD_ITEM:
            return
        self._dash.open_client(str(self.agenda.iloc[i]["client_id"]))


class CaseloadView(View):
    css_class = "sw-caseload"

    def __init__(self):
        super().__init__()
        self.html = w.HTML()
        self.chart = FigureBox("sw-chart-sessions")
        self.widget.children = (self.html, self.chart.widget)

    def update(self, data: Slice) -> None:
        ep_all = data.extras["tables"]["engagement_clients"]
        me = data.selection.supervisee
        own = data.extras.get("scope") is not None  # a self-review: the "service" would be the clinician
        ep_me = ep_all[ep_all["client_id"].isin(data.clients["client_id"])]
        ep_svc = ep_all[ep_all["client_id"].isin(data.service_clients["client_id"])]
        cn = eng.clinician_engagement(pd.concat([ep_me, ep_svc.assign(clinician_id="__svc")], ignore_index=True))
        mine, svc = cn.set_index("scope").loc[me] if me in set(cn["scope"]) else None, cn.set_index("scope").loc["__svc"]
        al = data.extras["alliance"].clinicians.set_index("scope")
        rows = []
        if mine is not None:
            for label, fn in (("clients (open / ended)", lambda r: f"{r['n_clients']:.0f} ({r['n_open']:.0f} / {r['n_ended']:.0f})"),
                              ("most common number of sessions", lambda r: f"{r['mode_attended']:.0f}" if pd.notna(r['mode_attended']) else "–"),
                              ("mean attended sessions (ended)", lambda r: f"{r['mean_attended']:.1f}" if pd.notna(r['mean_attended']) else "–"),
                              ("single-session endings (planned / unplanned)",
                               lambda r: f"{_ci(r, 'single_rate')}; {r['n_single_planned']:.0f} / {r['n_single_unplanned']:.0f}"),
                              ("unilateral endings", lambda r: _ci(r, "unilateral_rate")),
                              ("did not attend, of scheduled", lambda r: _ci(r, "dna_rate")),
                              ("cancelled, of scheduled", lambda r: _ci(r, "cancel_rate")),
                              ("open episodes with lost contact", lambda r: f"{r['n_lost_contact']:.0f}"),
                              ("attended sessions without any measure", lambda r: _pct(r["no_measure_rate"]))):
                rows.append(f"<tr><td>{label}</td><td>{fn(mine)}</td>" + ("" if own else f"<td>{fn(svc)}</td>") + "</tr>")
        if me in al.index:
            for label, col in (("median SRS", "median_srs"), ("sessions at/below the SRS cut-off", "low_rate")):
                f = (lambda v: f"{v:.1f}") if col == "median_srs" else _pct
                rows.append(f"<tr><td>{label}</td><td>{f(al.at[me, col])}</td>"
                            + ("" if own else f"<td>{f(al.at['service', col])}</td>") + "</tr>")
        period = "the whole export" if data.start_date is None else f"since {data.start_date:%d %b %Y}"
        self.html.value = (
            f"<h3>Caseload of {html.escape(str(me))} ({period})</h3>"
            + ("<p>Self-review: only your own clients are loaded, so there is no service column.</p>" if own else "")
            + "<table class='sw-caseload-table' style='font-size:13px' cellpadding='4'><thead><tr><th></th>"
            f"<th>{html.escape(str(me))}</th>" + ("" if own else "<th>service</th>")
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "<p><i>How to read this:</i> rates are shown with a 95 % interval (Wilson). With few clients the interval is "
            "wide: a difference from the service inside it may be chance. Session-level rates treat sessions as "
            "independent, so their intervals are too narrow. Single sessions are not automatically dropout: many "
            "clients get what they came for in one session.</p>")
        self.chart.show(session_count_comparison(eng.session_count_distribution(ep_me),
                                                 None if own else eng.session_count_distribution(ep_svc), label=str(me)))


class ClientView(View):
    css_class = "sw-client-view"

    def __init__(self):
        super().__init__()
        self.html = w.HTML()
        self.chart = FigureBox("sw-chart-client")
        self.widget.children = (self.html, self.chart.widget)

    def update(self, data: Slice) -> None:
        cid = data.selection.client
        if not cid:
            self.html.value = ("<p>Pick a client in <b>Client</b> above, or press <i>Discuss this client</i> on an agenda "
                               "item, to see that client's alliance, agenda items and notes here.</p>")
            self.chart.clear()
            return
        ep = data.extras["tables"]["engagement_clients"].set_index("client_id")
        r = ep.loc[cid] if cid in ep.index else None
        ag = data.extras["agenda"]
        items = ag[ag["client_id"] == cid]
        facts = ("" if r is None else
                 f"<p>Episode from {r['start_date']:%d %b %Y}" + (f" to {r['end_date']:%d %b %Y} ({r['end_reason']})" if r["ended"] else ", open")
                 + f"; {r['n_attended']} attended, {r['n_cancelled']} cancelled, {r['n_no_show']} missed.</p>")
        lis = "".join(f"<li><b>{html.escape(i.flag.replace('_', ' '))}</b> ({i.severity}): {html.escape(str(i.evidence))}</li>"
                      for i in items.itertuples())
        self.html.value = (f"<h3>Client {html.escape(cid)}</h3>{facts}"
                           + (f"<p>Agenda items:</p><ul>{lis}</ul>" if lis else "<p>No agenda items for this client.</p>"))
        m = data.extras["alliance"]
        if (m.sessions["client_id"] == cid).any():
            self.chart.show(client_alliance_detail(m.sessions, m.ruptures, client_id=cid, srs_cutoff=m.options.srs_cutoff,
                                                   low_item_threshold=m.low_item_threshold))
        else:
            self.chart.clear()


class NotesView(View):
    css_class = "sw-notes"

    def __init__(self, store_factory, dashboard_ref):
        super().__init__()
        self._dash = dashboard_ref
        self._store_factory = store_factory
        self.meeting_id: int | None = None
        self.supervisor = w.Text(description="Supervisor:", placeholder="your id")
        self.supervisor.add_class("sw-supervisor")
        self.start = w.Button(description="Start today's meeting", icon="calendar")
        self.start.add_class("sw-meeting-start")
        self.meeting_label = w.HTML()
        self.text = w.Textarea(placeholder="Write a note. It is saved when you press Save.", layout=w.Layout(width="100%", height="110px"))
        self.text.add_class("sw-note-text")
        self.about = w.HTML()
        self.save = w.Button(description="Save note", button_style="success", icon="save")
        self.save.add_class("sw-note-save")
        self.action_text = w.Text(placeholder="Agreed action", layout=w.Layout(width="45%"))
        self.action_text.add_class("sw-action-text")
        self.action_owner = w.Text(placeholder="owner", layout=w.Layout(width="15%"))
        self.action_owner.add_class("sw-action-owner")
        self.action_due = w.DatePicker(description="due", layout=w.Layout(width="25%"))
        self.action_due.add_class("sw-action-due")
        self.add_action = w.Button(description="Add action", icon="check")
        self.add_action.add_class("sw-action-add")
        self.feedback = w.HTML()
        self.feedback.add_class("sw-note-feedback")
        self.listing = w.HTML()
        self.listing.add_class("sw-notes-list")
        self.start.on_click(lambda _b: self._dash.guard(self._start)())
        self.save.on_click(lambda _b: self._dash.guard(self._save)())
        self.add_action.on_click(lambda _b: self._dash.guard(self._add_action)())
        self.text.observe(lambda _ch: self._mark_draft(), names="value")
        self.widget.children = (w.HBox([self.supervisor, self.start]), self.meeting_label, self.about, self.text, self.save,
                                w.HBox([self.action_text, self.action_owner, self.action_due, self.add_action]),
                                self.feedback, self.listing)
        self._data: Slice | None = None

    # the store is opened per operation: nothing stays locked between clicks
    def _store(self) -> NotesStore:
        return self._store_factory()

    def _mark_draft(self) -> None:
        if self.text.value.strip():
            self.feedback.value = "<p style='color:#8a6d00'>Draft not saved yet.</p>"

    def update(self, data: Slice) -> None:
        self._data = data
        sup = data.extras.get("supervisor_of", {}).get(data.selection.supervisee)
        if not self.supervisor.value and isinstance(sup, str):
            self.supervisor.value = sup
        if self.meeting_id is not None and self._meeting_supervisee != data.selection.supervisee:
            self.meeting_id = None  # a meeting belongs to one supervisee
        who = f"client <b>{html.escape(data.selection.client)}</b>" if data.selection.client else "the supervisee's work in general"
        self.about.value = f"<p>A note saved now is about {who}.</p>"
        self.meeting_label.value = (f"<p>Meeting {self.meeting_id} with {html.escape(data.selection.supervisee)}.</p>"
                                    if self.meeting_id else "<p>No meeting started: notes are saved against the client "
                                    "(pick one), or start today's meeting first.</p>")
        self._refresh_listing()

    def _start(self) -> None:
        sup = self.supervisor.value.strip()
        if not sup:
            self.feedback.value = "<p style='color:#a00'>Type your supervisor id first.</p>"
            return
        with self._store() as store:
            self.meeting_id = store.start_meeting(sup, self._data.selection.supervisee, date.today())
        self._meeting_supervisee = self._data.selection.supervisee
        self.feedback.value = f"<p style='color:#060'>Meeting {self.meeting_id} started and saved.</p>"
        self.update(self._data)

    _meeting_supervisee: str | None = None

    def _save(self) -> None:
        text = self.text.value.strip()
        client = self._data.selection.client
        if not text:
            self.feedback.value = "<p style='color:#a00'>The note is empty: nothing was saved.</p>"
            return
        if self.meeting_id is None and not client:
            self.feedback.value = ("<p style='color:#a00'>Not saved: start today's meeting, or pick the client the note is "
                                   "about. Your text is still in the box.</p>")
            return
        author = self.supervisor.value.strip() or "supervisor"
        try:
            with self._store() as store:
                note_id = store.add_note(text, author=author, meeting_id=self.meeting_id, client_id=client)
        except NotesError as exc:
            self.feedback.value = (f"<p style='color:#a00'>Not saved: {html.escape(str(exc))} Your text is still in the box.</p>")
            return
        self.text.value = ""
        self.feedback.value = f"<p style='color:#060'>Saved (note {note_id}).</p>"
        self._refresh_listing()

    def _add_action(self) -> None:
        text, owner = self.action_text.value.strip(), self.action_owner.value.strip()
        if self.meeting_id is None:
            self.feedback.value = "<p style='color:#a00'>Start today's meeting first: actions belong to a meeting.</p>"
            return
        if not text or not owner:
            self.feedback.value = "<p style='color:#a00'>An action needs a text and an owner.</p>"
            return
        try:
            with self._store() as store:
                action_id = store.add_action(self.meeting_id, text, owner, due=self.action_due.value,
                                             client_id=self._data.selection.client)
        except NotesError as exc:
            self.feedback.value = f"<p style='color:#a00'>Not saved: {html.escape(str(exc))}</p>"
            return
        self.action_text.value = ""
        self.feedback.value = f"<p style='color:#060'>Action {action_id} saved.</p>"
        self._refresh_listing()

    def _refresh_listing(self) -> None:
        data = self._data
        try:
            with self._store() as store:
                notes = store.notes(client_id=data.selection.client) if data.selection.client else store.notes(
                    supervisee_id=data.selection.supervisee)
                actions = store.actions(supervisee_id=data.selection.supervisee)
        except NotesError as exc:
            self.listing.value = f"<p style='color:#a00'>The notes cannot be read: {html.escape(str(exc))}</p>"
            return
        lis = "".join(
            f"<li><b>{'' if pd.isna(n.meeting_date) else f'{n.meeting_date:%d %b %Y}'}</b> "
            f"{'' if pd.isna(n.client_id) else '[' + html.escape(str(n.client_id)) + '] '}{html.escape(str(n.text))}</li>"
            for n in notes.itertuples())
        acts = "".join(
            f"<li>[{html.escape(str(a.status))}] {html.escape(str(a.text))} ({html.escape(str(a.owner))}"
            f"{'' if pd.isna(a.due) else ', due ' + f'{pd.Timestamp(a.due):%d %b %Y}'})</li>" for a in actions.itertuples())
        self.listing.value = (f"<h4>Notes ({len(notes)})</h4><ul>{lis or '<li>none yet</li>'}</ul>"
                              f"<h4>Actions ({len(actions)})</h4><ul>{acts or '<li>none yet</li>'}</ul>")


class SupervisionDashboard(Dashboard):
    css_class = "sw-supervision"

    def __init__(self, caseload: Caseload, supervisee: str | None = None, notes_path=None, report_dir=None):
        self._caseload = caseload
        self._tables = metric_tables(caseload)
        self._agenda = build_agenda(caseload, self._tables)
        from supervision.metrics.alliance import alliance_options

        kw = alliance_options(caseload.settings)
        opts = AllianceOptions(kw.get("srs_cutoff", 36.0), kw.get("inclusive", True), kw.get("drop_points", 1.0),
                               kw.get("sd_criterion", 2.0))
        self._alliance = AllianceModel(caseload, opts, kw, tables=self._tables)  # the settings' options: no recompute
        clin = caseload.clinicians
        self._supervisor_of = dict(zip(clin["clinician_id"], clin["supervisor_id"])) if "supervisor_id" in clin else {}
        self.notes_path = notes_path
        views = [AgendaView(self), CaseloadView(), HeatmapView(), ClientView(),
                 NotesView(lambda: NotesStore(self.notes_path, settings=caseload.settings), self)]
        self.report_button = w.Button(description="Save report", icon="file", tooltip="Write this supervisee's report (HTML)")
        self.report_button.add_class("sw-report-save")
        self.report_feedback = w.HTML()
        self.report_feedback.add_class("sw-report-feedback")
        self.report_dir = Path(report_dir) if report_dir else REPORT_DIR
        super().__init__(caseload, views, tabs=["Agenda", "Caseload", "Alliance", "Client", "Notes"], supervisee=supervisee,
                         extra_controls=[w.HBox([self.report_button, self.report_feedback])])
        self.report_button.on_click(lambda _b: self.guard(self.save_report)())

    def save_report(self) -> Path:
        """Write the supervisee's report for the current period into ``report_dir``; say where."""
        from supervision.report import build_report, report_target, safe_file_part

        sel = self.selection
        self.report_feedback.value = "<span>Writing the report…</span>"
        self.report_dir.mkdir(parents=True, exist_ok=True)
        path = report_target(self.report_dir,
                             f"supervision-report-{safe_file_part(sel.supervisee)}-{date.today():%Y-%m-%d}.html")
        path.write_text(build_report(self._caseload, sel.supervisee, period=sel.period, notes_path=self.notes_path,
                                     tables=self._tables), encoding="utf-8")
        self.report_feedback.value = (f"<span style='color:#060'>Saved: <code>{html.escape(str(path))}</code> "
                                      f"({path.stat().st_size / 1e6:.1f} MB; opens in any browser, offline).</span>")
        return path

    def enrich(self, data: Slice) -> None:
        data.extras.update(tables=self._tables, agenda=self._agenda, alliance=self._alliance,
                           supervisor_of=self._supervisor_of)

    def open_client(self, client_id: str) -> None:
        """Drill down: pick ``client_id`` and show the Client tab."""
        self.client.value = client_id
        self.body.selected_index = 3


def supervision_dashboard(caseload: Caseload | None = None, supervisee: str | None = None, notes_path=None,
                          report_dir=None) -> w.Widget:
    """Build the supervision dashboard (default: the demo clinic, notes in the default database)."""
    if caseload is None:
        from supervision.io import load_caseload

        caseload = load_caseload()
    if not caseload.usable:
        return unusable_notice(caseload)
    return SupervisionDashboard(caseload, supervisee=supervisee, notes_path=notes_path, report_dir=report_dir).widget
