"""The Client page: one client's whole story on one page.

Outcome against the expected band, alliance with ruptures and items, an attendance timeline
(attended, cancelled, did not attend), session focus against the agreed goals, the client's
agenda items and the notes about the client. The client picker lists the supervisee's clients in
order of concern (the Caseload page's order) and opens on the first.

CSS classes: ``sw-client-page`` (dashboard), ``sw-story-client`` (picker), ``sw-story-facts``,
``sw-story-outcome`` / ``sw-chart-story-outcome``, ``sw-story-alliance`` / ``sw-chart-story-alliance``,
``sw-story-attendance`` / ``sw-chart-story-attendance``, ``sw-story-focus`` / ``sw-chart-story-focus``,
``sw-story-agenda``, ``sw-story-notes``.
"""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd

from supervision.caseload import Caseload
from supervision.widgets.caseload import STATUS, client_overview, primary_instrument
from supervision.widgets.framework import NO_SNAPSHOT_CSS, Dashboard, FigureBox, Slice, View, unusable_notice


def _esc(v) -> str:
    return html.escape("" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))


def goal_labels(codes, settings) -> str:
    """``anxiety;work_study`` -> ``Anxiety / worry, Work / study`` (the focus taxonomy's labels)."""
    if codes is None or (isinstance(codes, float) and pd.isna(codes)) or not str(codes).strip():
        return "none recorded"
    labels = {c.code: c.label for c in settings.focus_codes} if hasattr(settings, "focus_codes") else {}
    return ", ".join(labels.get(c.strip(), c.strip().replace("_", " ")) for c in str(codes).replace(",", ";").split(";")
                     if c.strip())


class Part:
    """A titled block of the story: a sentence and, when it carries information, a chart."""

    def __init__(self, css: str, chart: str | None):
        self.note = w.HTML()
        self.chart = FigureBox(chart, no_snapshot=True) if chart else None
        self.widget = w.VBox([self.note] + ([self.chart.widget] if self.chart else []))
        self.widget.add_class(css)

    def say(self, text: str, fig=None) -> None:
        self.note.value = text
        if self.chart is not None:
            if fig is None:
                self.chart.clear()
            else:
                self.chart.show(fig)


class StoryView(View):
    css_class = "sw-client-story"

    def __init__(self, dash: "ClientDashboard"):
        super().__init__()
        self.dash = dash
        self.facts = w.HTML()
        self.facts.add_class("sw-story-facts")
        self.outcome = Part("sw-story-outcome", "sw-chart-story-outcome")
        self.alliance = Part("sw-story-alliance", "sw-chart-story-alliance")
        self.attendance = Part("sw-story-attendance", "sw-chart-story-attendance")
        self.focus = Part("sw-story-focus", "sw-chart-story-focus")
        self.agenda = Part("sw-story-agenda", None)
        self.notes = Part("sw-story-notes", None)
        style = w.HTML(NO_SNAPSHOT_CSS, layout=w.Layout(display="none"))
        self.widget.children = (style, dash.pick, self.facts, self.agenda.widget, self.outcome.widget, self.alliance.widget,
                                self.attendance.widget, self.focus.widget, self.notes.widget)

    def update(self, data: Slice) -> None:
        d = self.dash
        cid = data.selection.client
        if not cid:
            self.facts.value = "<p>This supervisee has no clients in the chosen period.</p>"
            for p in (self.outcome, self.alliance, self.attendance, self.focus, self.agenda, self.notes):
                p.say("")
            return
        cl, tables, st = d._caseload, d.shared.tables, d._caseload.settings
        row = d.overview.set_index("client_id").loc[cid] if cid in set(d.overview["client_id"]) else None
        ep = tables["engagement_clients"].set_index("client_id")
        e = ep.loc[cid] if cid in ep.index else None
        goals = cl.clients.set_index("client_id")["agreed_goals"].get(cid) if "agreed_goals" in cl.clients else None
        status = "" if row is None else (f"<span class='sw-dot' style='display:inline-block;width:12px;height:12px;"
                                         f"border-radius:50%;background:{row['colour']};margin-right:6px'></span>"
                                         f"<b>{_esc(row['status_label'])}</b>")
        period = "" if e is None else (f"Episode from {e['start_date']:%d %b %Y}"
                                       + (f" to {e['end_date']:%d %b %Y} ({_esc(e['end_reason']).replace('_', ' ')})"
                                          if e["ended"] else ", open")
                                       + f"; {e['n_attended']} attended, {e['n_cancelled']} cancelled, "
                                         f"{e['n_no_show']} did not attend")
        self.facts.value = (f"<h3>Client {_esc(cid)} {status}</h3><p>{period}.<br>Agreed goals: "
                            f"<b>{_esc(goal_labels(goals, st))}</b>."
                            + ("" if row is None or not row["flags"] else f"<br>Open flags: {_esc(row['flags'])}.")
                            + "</p>")
        self._agenda(data, cid)
        self._outcome(cid)
        self._alliance(cid)
        self._attendance(data, cid, e)
        self._focus(cid, goals)
        self._notes(data, cid)

    def _agenda(self, data: Slice, cid: str) -> None:
        from supervision.widgets.supervision import SECTION_TITLES

        ag = self.dash.shared.agenda
        items = ag[(ag["client_id"] == cid) & (ag["clinician_id"] == data.selection.supervisee)]
        if not len(items):
            self.agenda.say("<h4>On the agenda</h4><p>Nothing on the agenda for this client.</p>")
            return
        lis = "".join(f"<li><b>{_esc(SECTION_TITLES.get(i.section, i.section))}</b> ({_esc(i.severity)}): "
                      f"{'; '.join(_esc(e) for e in str(i.evidence).split(' | '))}<br><i>{_esc(i.question)}</i></li>"
                      for i in items.itertuples())
        self.agenda.say(f"<h4>On the agenda</h4><ul>{lis}</ul>")

    def _outcome(self, cid: str) -> None:
        from supervision.figures.outcome import outcome_trajectory

        m = self.dash.outcome_model()
        if m is None or not (m.track["client_id"] == cid).any():
            self.outcome.say(f"<h4>Outcome</h4><p>No {_esc(self.dash.instrument_name)} scores for this client: "
                             "nothing to compare with the expected change.</p>")
            return
        self.outcome.say(
            f"<h4>Outcome</h4><p><i>How to read this:</i> the client's {_esc(m.instrument.name)} score by session; the "
            "shaded band is how clients who started at a similar score usually change. Below the band (or above, "
            "for a measure where lower is better) is <i>not on track</i>.</p>",
            outcome_trajectory(m.track, client_id=cid, instrument=m.instrument, gains=m.gains))

    def _alliance(self, cid: str) -> None:
        from supervision.figures.alliance import client_alliance_detail

        m = self.dash.shared.alliance
        if not (m.sessions["client_id"] == cid).any() or not m.sessions.loc[m.sessions["client_id"] == cid, "measured"].any():
            self.alliance.say("<h4>Alliance</h4><p>No session ratings (SRS) for this client.</p>")
            return
        self.alliance.say(
            "<h4>Alliance</h4><p><i>How to read this:</i> the client's rating of each session (SRS, 0–40) with the "
            f"cut-off at {m.options.srs_cutoff:g}; ruptures (sharp drops) are marked, and the lower panel shows the "
            "four items, so a low rating can be traced to the relationship, the goals or the approach.</p>",
            client_alliance_detail(m.sessions, m.ruptures, client_id=cid, rules=m.options))

    def _attendance(self, data: Slice, cid: str, e) -> None:
        from supervision.figures.engagement import attendance_timeline

        s = self.dash._caseload.sessions
        mine = s[s["client_id"] == cid]
        if not len(mine):
            self.attendance.say("<h4>Attendance</h4><p>No scheduled sessions.</p>")
            return
        self.attendance.say(
            "<h4>Attendance</h4><p><i>How to read this:</i> every scheduled session on the calendar. Gaps, and "
            "cancellations or missed sessions that come in runs, are worth asking about.</p>",
            attendance_timeline(mine, client_id=cid, start_date=None if e is None else e["start_date"],
                                end_date=None if e is None else e["end_date"]))

    def _focus(self, cid: str, goals) -> None:
        from supervision.figures.focus import focus_timeline

        tables = self.dash.shared.tables
        fs = tables.get("focus_sessions")
        if fs is None or not ((fs["client_id"] == cid) & fs["focus_recorded"]).any():
            self.focus.say("<h4>Session focus</h4><p>No session focus recorded for this client.</p>")
            return
        fc = tables["focus_clients"].set_index("client_id").loc[cid]
        neglected = fc["neglected_goals"] if isinstance(fc["neglected_goals"], str) and fc["neglected_goals"] else ""
        cov = "" if pd.isna(fc["goal_coverage"]) else f"{fc['goal_coverage']:.0%}"
        text = (f"<h4>Session focus</h4><p>Agreed goals worked on as the main focus in <b>{cov or '–'}</b> of "
                f"{int(fc['n_focus_recorded'])} sessions with a recorded focus"
                + (f"; <b>not worked on lately: {_esc(goal_labels(neglected, self.dash._caseload.settings))}</b>" if neglected else "")
                + ". Each mark is an attended session, by its main focus.</p>")
        self.focus.say(text, focus_timeline(fs[fs["client_id"] == cid], clients=[cid], title=f"Session focus of {cid}"))

    def _notes(self, data: Slice, cid: str) -> None:
        from supervision.notes import NotesError, NotesStore

        try:
            with NotesStore(self.dash.notes_path, settings=self.dash._caseload.settings) as store:
                notes = store.notes(client_id=cid)
                actions = store.actions(client_id=cid)
        except NotesError as exc:
            self.notes.say(f"<h4>Notes</h4><p style='color:#a00'>The notes cannot be read: {_esc(exc)}</p>")
            return
        lis = "".join(f"<li><b>{'' if pd.isna(n.meeting_date) else f'{n.meeting_date:%d %b %Y}'}</b> {_esc(n.text)}</li>"
                      for n in notes.itertuples())
        acts = "".join(f"<li>[{_esc(a.status)}] {_esc(a.text)} ({_esc(a.owner)})</li>" for a in actions.itertuples())
        self.notes.say(f"<h4>Notes about {_esc(cid)}</h4>"
                       + (f"<ul>{lis}</ul>" if lis else "<p>No notes yet (write them in Supervision hour → Notes).</p>")
                       + (f"<p>Actions:</p><ul>{acts}</ul>" if acts else ""))


class ClientDashboard(Dashboard):
    """Pickers (supervisee, period, episodes) and one client's whole story."""

    css_class = "sw-client-page"

    def __init__(self, caseload: Caseload, supervisee: str | None = None, shared=None, client: str | None = None,
                 notes_path=None):
        from supervision.instruments import instruments
        from supervision.widgets.shared import Shared

        self._caseload = caseload
        self.shared = shared or Shared(caseload)
        self.notes_path = notes_path
        self.instrument = primary_instrument(caseload)
        inst = instruments(caseload.settings).get(self.instrument)
        self.instrument_name = inst.name if inst is not None else self.instrument
        self._wanted = client
        self._key = None
        self._filling = False
        self.overview = pd.DataFrame(columns=["client_id"])
        self.pick = w.Dropdown(description="Client:", layout=w.Layout(width="420px"))
        self.pick.add_class("sw-story-client")
        self.pick.observe(self._on_pick, names="value")
        super().__init__(caseload, [StoryView(self)], supervisee=supervisee)
        self.client.layout.display = "none"  # replaced by the picker in order of concern

    def outcome_model(self):
        return self.shared.outcome(self.instrument)

    def _on_pick(self, change) -> None:
        if self._filling or not change["new"]:
            return
        self.guard(self._set)("client", change["new"])

    def enrich(self, data: Slice) -> None:
        key = (self.selection.supervisee, self.selection.period, self.selection.episodes)
        if key != self._key:
            self._key = key
            self.overview = client_overview(self._caseload, self.shared.tables, self.shared.agenda, data.clients,
                                            self.instrument)
            ids = self.overview["client_id"].tolist()
            want = self._wanted if self._wanted in ids else (self.selection.client if self.selection.client in ids else
                                                             (ids[0] if ids else None))
            self._filling = True
            try:
                self.pick.options = [(f"{r.client_id} · {r.status_label}" + (f" · {r.n_flags} flag{'s' * (r.n_flags != 1)}"
                                                                               if r.n_flags else ""), r.client_id)
                                     for r in self.overview.itertuples()]
                self.pick.value = want
            finally:
                self._filling = False
            self._wanted = None
            self.selection.client = want
            data.selection.client = want

    def open(self, client_id: str) -> None:
        """Show ``client_id`` (one of the supervisee's clients in the period)."""
        if client_id in set(self.overview["client_id"]):
            self.pick.value = client_id
        else:
            self._wanted = client_id
            self._key = None
            self.refresh(update_clients=False)


def client_page(caseload: Caseload | None = None, supervisee: str | None = None, client: str | None = None) -> w.Widget:
    """Build the Client page for a loaded caseload (default: the demo clinic)."""
    if caseload is None:
        from supervision.io import load_caseload

        caseload = load_caseload()
    if not caseload.usable:
        return unusable_notice(caseload)
    return ClientDashboard(caseload, supervisee=supervisee, client=client).widget
