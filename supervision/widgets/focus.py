"""The session-focus dashboard: are sessions working on the client's goals, or on week reviews and drift?

Views: ``sw-focus-summary`` (headline and the clients to look at), ``sw-focus-timeline`` (each
client's sessions by focus), ``sw-focus-caseload`` (goal coverage against check-in share per
client), ``sw-focus-compare`` (the supervisee against the other clinicians and the service) and
``sw-focus-link`` (the client's own rating of goals & topics on on-goal and off-goal sessions).
"""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd

from supervision.caseload import Caseload
from supervision.figures import focus as figs
from supervision.metrics import focus as metrics
from supervision.metrics.alliance import session_alliance
from supervision.widgets.framework import Dashboard, FigureBox, Slice, View, unusable_notice

MAX_TIMELINE = 30


class FocusModel:
    """Service-wide focus tables (computed once, then sliced)."""

    def __init__(self, caseload: Caseload):
        # an export without focus columns gets empty ones: the view then says nothing was recorded
        sessions = caseload.sessions.assign(**{c: pd.Series(pd.NA, index=caseload.sessions.index, dtype="string")
                                               for c in ("focus_primary", "focus_secondary") if c not in caseload.sessions})
        clients = caseload.clients if "agreed_goals" in caseload.clients else caseload.clients.assign(
            agreed_goals=pd.Series(pd.NA, index=caseload.clients.index, dtype="string"))
        rules = caseload.rules
        self.sessions = metrics.session_focus(sessions, clients, rules)
        self.clients = metrics.client_focus(self.sessions, rules=rules)
        self.clinicians = metrics.clinician_focus(self.sessions, client_focus_frame=self.clients, rules=rules)
        self.link = metrics.focus_alliance_link(self.sessions, session_alliance(caseload.sessions, rules=rules), rules=rules)
        self.recorded = bool(self.sessions["focus_recorded"].any()) if len(self.sessions) else False
        self.labels = rules.focus.labels  # codes -> the taxonomy's labels

    def goal_text(self, codes) -> str:
        """``mood;substance_use`` -> ``Mood / depression, Substance use``."""
        if not isinstance(codes, str):
            return ""
        return ", ".join(self.labels.get(c.strip(), c.strip().replace("_", " ")) for c in codes.split(";") if c.strip())


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.0%}"


def _in(frame: pd.DataFrame, data: Slice) -> pd.DataFrame:
    part = frame[frame["client_id"].isin(data.clients["client_id"])]
    if data.start_date is not None and "session_date" in part.columns:
        part = part[part["session_date"] >= data.start_date]
    return part


class SummaryView(View):
    css_class = "sw-focus-summary"

    def __init__(self):
        super().__init__()
        self.html = w.HTML()
        self.widget.children = (self.html,)

    def update(self, data: Slice) -> None:
        m: FocusModel = data.extras["focus"]
        me = data.selection.supervisee
        cn = m.clinicians.set_index("scope")
        if not m.recorded:
            self.html.value = ("<h3>No session focus recorded</h3><p>This export has no <code>focus_primary</code> codes, "
                               "so this view has nothing to show. See data/README.md for the focus codes.</p>")
            return
        cf = _in(m.clients, data)
        no_goals = int((~cf["goals_recorded"].fillna(False).astype(bool)).sum()) if "goals_recorded" in cf else 0
        look = cf[(cf["check_in_share"].fillna(0) >= 0.5) | (cf["n_neglected_goals"].fillna(0) > 0)
                  | (cf["goal_coverage"].fillna(1) < 0.34)]
        look = look.sort_values(["n_neglected_goals", "check_in_share"], ascending=False).head(20)
        rows = "".join(
            f"<tr><td>{html.escape(str(r.client_id))}</td><td>{r.n_sessions}</td><td>{_pct(r.goal_coverage)}</td>"
            f"<td>{_pct(r.check_in_share)}</td><td>{_pct(r.drift_rate)}</td>"
            f"<td>{html.escape(m.goal_text(r.neglected_goals))}</td></tr>"
            for r in look.itertuples())

        def both(col):
            if me not in cn.index:
                return "–"
            return (f"{_pct(cn.at[me, col])} ({_pct(cn.at[me, col.replace('_rate', '_rate_lower')])}–"
                    f"{_pct(cn.at[me, col.replace('_rate', '_rate_upper')])})"
                    + ("" if data.extras.get("scope") is not None else f"; service {_pct(cn.at['service', col])}"))
        self.html.value = (
            f"<h3>Session focus: {html.escape(str(me))}</h3><ul>"
            f"<li>Sessions whose main focus was one of the client's agreed goals: <b>{both('coverage_rate')}</b>.</li>"
            f"<li>Sessions spent mainly on a week review / check-in: <b>{both('check_in_rate')}</b>.</li>"
            f"<li>Sessions where the main focus moved off the agreed goals (to an unagreed topic, process talk or admin; "
            f"not a check-in, crisis, technique or a switch between agreed goals): <b>{both('drift_rate')}</b>.</li>"
            f"<li>Sessions where an agenda was set: <b>{both('agenda_rate')}</b>.</li>"
            f"<li>{no_goals} clients have no agreed goals recorded (their coverage cannot be judged).</li></ul>"
            + ("<p>No client stands out.</p>" if look.empty else
               "<p><b>Clients to look at</b> (a goal not worked on in the last sessions, mostly check-ins, or little time on goals):</p>"
               "<table class='sw-focus-look' style='font-size:13px' cellpadding='4'><thead><tr><th>client</th><th>sessions</th>"
               "<th>on goal</th><th>check-in</th><th>focus changes</th><th>neglected goals</th></tr></thead><tbody>"
               + rows + "</tbody></table>")
            + "<p><i>What this cannot tell:</i> focus is recorded by the clinician, not observed. Crisis sessions are "
              "legitimately off-goal and are counted apart. Intervals treat sessions as independent, so they are too narrow.</p>")


class TimelineView(View):
    css_class = "sw-focus-timeline"

    def __init__(self):
        super().__init__()
        self.note = w.HTML()
        self.chart = FigureBox("sw-chart-focus-timeline")
        self.widget.children = (self.note, self.chart.widget)

    def update(self, data: Slice) -> None:
        m: FocusModel = data.extras["focus"]
        sf = _in(m.sessions, data)
        if data.selection.client:
            ids = [data.selection.client]
        else:
            order = _in(m.clients, data).sort_values(["n_neglected_goals", "check_in_share", "client_id"],
                                                     ascending=[False, False, True])
            ids = order.loc[order["n_sessions"] >= 2, "client_id"].head(MAX_TIMELINE).tolist()
        self.note.value = (("<p>One client. " if data.selection.client else
                            f"<p>{len(ids)} clients (those with most to discuss first; pick a client above to see one). ")
                           + "Each mark is an attended session, by its main focus.</p>")
        self.chart.show(figs.focus_timeline(sf, clients=ids, title=f"Session focus by client, {data.selection.supervisee}"))


class CaseloadView(View):
    css_class = "sw-focus-caseload"

    def __init__(self):
        super().__init__()
        self.chart = FigureBox("sw-chart-focus-caseload")
        self.widget.children = (self.chart.widget,)

    def update(self, data: Slice) -> None:
        m: FocusModel = data.extras["focus"]
        self.chart.show(figs.focus_caseload(_in(m.clients, data),
                                            title=f"Goal coverage and check-in share per client, {data.selection.supervisee}"))


class CompareView(View):
    css_class = "sw-focus-compare"
    compares_with_service = True

    def self_review(self, data, dashboard) -> dict:
        return {"names": ["focus_on_goal", "focus_check_in", "focus_agenda_set", "srs_total"], "what": "session focus",
                "not_comparable": "Focus drift and the link between focus and the SRS are not published for the "
                                  "service: no valid comparison for them."}

    def __init__(self):
        super().__init__()
        self.chart = FigureBox("sw-chart-focus-compare")
        self.link = FigureBox("sw-chart-focus-link")
        self.widget.children = (self.chart.widget, self.link.widget, w.HTML(
            "<p><i>How to read this:</i> the first chart places the supervisee among the other clinicians and the "
            "service; the second shows how clients rated the session's goals and topics when the session was on one "
            "of their goals and when it was not.</p>"))

    def update(self, data: Slice) -> None:
        m: FocusModel = data.extras["focus"]
        me = data.selection.supervisee
        self.chart.show(figs.focus_clinician_comparison(m.clinicians, clinician_id=me))
        self.link.show(figs.focus_alliance_chart(m.link, clinician_id=me))


class FocusDashboard(Dashboard):
    css_class = "sw-focus"

    def __init__(self, caseload: Caseload, supervisee: str | None = None):
        self._model = FocusModel(caseload)
        super().__init__(caseload, [SummaryView(), TimelineView(), CaseloadView(), CompareView()],
                         tabs=["Overview", "Timeline", "Caseload", "vs service"], supervisee=supervisee)

    def enrich(self, data: Slice) -> None:
        data.extras["focus"] = self._model


def focus_dashboard(caseload: Caseload | None = None, supervisee: str | None = None) -> w.Widget:
    """Build the session-focus dashboard for a loaded caseload (default: the demo clinic)."""
    if caseload is None:
        from supervision.io import load_caseload

        caseload = load_caseload()
    if not caseload.usable:
        return unusable_notice(caseload)
    return FocusDashboard(caseload, supervisee=supervisee).widget
