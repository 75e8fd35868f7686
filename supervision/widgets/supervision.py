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
from supervision.metrics.tables import service_tables
from supervision.notes import NotesError, NotesStore
from supervision.widgets.alliance import AllianceModel, HeatmapView
from supervision.widgets.framework import Dashboard, FigureBox, Slice, View, unusable_notice

#: Where the dashboard's *Save report* button writes (git-ignored).
REPORT_DIR = Path(__file__).resolve().parents[2] / "data" / "reports"
SEVERITY_COLOUR = {"high": "#D55E00", "medium": "#E69F00", "low": "#56B4E9"}


CASELOAD_ITEM = "(caseload)"


def _count(k: int, noun: str) -> str:
    """``1 client``, ``4 clients`` (no "client(s)" on screen)."""
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _since(v, lead: str = "") -> str:
    return "" if pd.isna(v) else f"{lead} since {v:%d %b %Y}" if lead else f" (since {v:%d %b %Y})"


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.0%}"


def _ci(row, name) -> str:
    return f"{_pct(row[name])} ({_pct(row[name + '_lower'])}–{_pct(row[name + '_upper'])})"


TABS = ["Agenda", "Follow-up", "Caseload", "Alliance", "Client", "Notes"]
SECTION_TITLES = {
    "risk": "Risk: discuss first",
    "today": "Today's clients",
    "patterns": "Patterns in the caseload",
    "housekeeping": "Housekeeping",
    "more": "More items",
}
RISK_COLOUR = "#B00020"


def _esc(v) -> str:
    return html.escape("" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))


def _sentence(text: str) -> str:
    """First letter upper-case, the rest as written (keeps 'SRS')."""
    return text[:1].upper() + text[1:]


def _flag_name(flag: str) -> str:
    from supervision.agenda import FLAGS

    return FLAGS.get(flag, ("", "", flag.replace("_", " ")))[2]


def _evidence_list(evidence) -> str:
    return "<ul class='sw-evidence'>" + "".join(f"<li>{_esc(e)}</li>" for e in str(evidence).split(" | ")) + "</ul>"


def support_html(prompts: pd.DataFrame) -> str:
    """The support prompts for a client off track, as a folded block."""
    rows = "".join(f"<tr><td><b>{_esc(r.field)}</b></td><td>{_esc(r.data)}</td><td><i>{_esc(r.question)}</i></td></tr>"
                   for r in prompts.itertuples())
    return ("<details class='sw-support'><summary>Support prompts (client off track)</summary>"
            "<table style='font-size:12px' cellpadding='3'><thead><tr><th>field</th><th>what the data says</th>"
            f"<th>a question</th></tr></thead><tbody>{rows}</tbody></table></details>")


class AgendaView(View):
    """The agenda in its sections: risk band, today's cards, patterns, housekeeping and more (folded).

    CSS classes: ``sw-agenda-summary``; ``sw-agenda-risk`` (one ``sw-agenda-risk-row`` per client);
    ``sw-agenda-today`` (one ``sw-agenda-card`` per client, each with a ``sw-agenda-open`` button
    and the class ``sw-client-<id>``); ``sw-agenda-patterns``; ``sw-agenda-housekeeping`` and
    ``sw-agenda-more`` (folded accordions).
    """

    css_class = "sw-agenda"

    def __init__(self, dashboard_ref):
        super().__init__()
        self._dash = dashboard_ref
        self.header = w.HTML()
        self.header.add_class("sw-agenda-summary")
        self.risk = w.VBox()
        self.risk.add_class("sw-agenda-risk")
        self.today_title = w.HTML()
        self.today = w.Box(layout=w.Layout(display="flex", flex_flow="row wrap", align_items="stretch", width="100%"))
        self.today.add_class("sw-agenda-today")
        self.patterns = w.HTML()
        self.patterns.add_class("sw-agenda-patterns")
        self.housekeeping_html, self.more_html = w.HTML(), w.HTML()
        self.housekeeping = w.Accordion(children=[self.housekeeping_html])
        self.housekeeping.add_class("sw-agenda-housekeeping")
        self.more = w.Accordion(children=[self.more_html])
        self.more.add_class("sw-agenda-more")
        self.widget.children = (self.header, self.risk, self.today_title, self.today, self.patterns, self.housekeeping,
                                self.more)
        self.agenda = pd.DataFrame()
        self.open_buttons: dict[str, w.Button] = {}

    def _button(self, cid: str) -> w.Button:
        b = w.Button(description=f"Discuss {cid}", icon="user", button_style="info", tooltip=f"Open client {cid}",
                     layout=w.Layout(width="auto", min_width="150px", flex="0 0 auto"))
        b.add_class("sw-agenda-open")
        b.add_class(f"sw-client-{cid}")
        b.on_click(lambda _b, c=cid: self._dash.guard(self._dash.discuss)(c))
        self.open_buttons[cid] = b
        return b

    def update(self, data: Slice) -> None:
        ag = data.extras["agenda"]
        ids = set(data.clients["client_id"])
        me = data.selection.supervisee
        ag = ag[(ag["clinician_id"] == me) & (ag["client_id"].isin(ids) | (ag["client_id"] == CASELOAD_ITEM))].reset_index(drop=True)
        self.agenda = ag
        self.open_buttons = {}
        by = {s: ag[ag["section"] == s] for s in SECTION_TITLES}
        n = {s: len(v) for s, v in by.items()}
        # risk band: always shown, so that "no risk" is a finding too
        rows = []
        if by["risk"].empty:
            rows.append(w.HTML("<div style='border:2px solid #2e7d32;padding:6px 10px;border-radius:4px'>"
                               "<b>Risk:</b> no current client's latest answer on a risk item (PHQ-9 item 9, CORE-10 "
                               "item 6) is above 0.</div>"))
        else:
            rows.append(w.HTML(f"<div style='color:{RISK_COLOUR};font-weight:bold;font-size:15px'>"
                               f"Risk: {_count(len(by['risk']), 'client')} whose latest risk-item answer is above 0. "
                               "Discuss first.</div>"))
            for r in by["risk"].itertuples():
                body = w.HTML(f"<div><b>{_esc(r.client_id)}</b>{_evidence_list(r.evidence)}"
                              f"<p style='margin:2px 0'><i>{_esc(r.question)}</i></p></div>",
                              layout=w.Layout(flex="1 1 auto"))
                row = w.HBox([body, self._button(r.client_id)],
                             layout=w.Layout(border=f"2px solid {RISK_COLOUR}", padding="4px 8px", margin="2px 0",
                                             align_items="center", width="100%"))
                row.add_class("sw-agenda-risk-row")
                rows.append(row)
        self.risk.children = tuple(rows)
        # today's cards
        self.today_title.value = (f"<h4 style='margin:10px 0 4px'>{SECTION_TITLES['today']} ({n['today']})</h4>"
                                  + ("" if n["today"] else "<p>No client has a clinical flag strong enough for today.</p>"))
        cards = []
        for r in by["today"].itertuples():
            support = ""
            if r.off_track:
                from supervision.agenda import support_prompts

                support = support_html(support_prompts(self._dash._caseload, self._dash._tables, r.client_id))
            colour = SEVERITY_COLOUR[r.severity]
            body = w.HTML(
                f"<div style='font-size:13px;line-height:1.35'><div><b class='sw-card-client' style='font-size:15px'>"
                f"{_esc(r.client_id)}</b> <span class='sw-card-severity' style='background:{colour};color:#fff;"
                f"border-radius:3px;padding:0 5px'>{_esc(r.severity)}</span></div>"
                f"<div><b class='sw-card-flag'>{_esc(_flag_name(r.flag).capitalize())}</b><span class='sw-card-since'>"
                f"{'' if pd.isna(r.since) else f' since {r.since:%d %b %Y}'}</span></div>{_evidence_list(r.evidence)}"
                f"<p style='margin:2px 0'><i>{_esc(r.question)}</i></p>{support}</div>")
            card = w.VBox([body, self._button(r.client_id)],
                          layout=w.Layout(width="calc(33% - 10px)", min_width="260px", margin="3px",
                                          padding="6px 8px", border=f"1px solid {colour}", border_left=f"6px solid {colour}"))
            card.add_class("sw-agenda-card")
            card.add_class(f"sw-severity-{r.severity}")
            cards.append(card)
        self.today.children = tuple(cards)
        # patterns
        lis = "".join(f"<li><b>{_esc(_flag_name(r.flag)).capitalize()}</b>: {_esc(r.evidence)}<br><i>{_esc(r.question)}</i></li>"
                      for r in by["patterns"].itertuples())
        self.patterns.value = (f"<h4 style='margin:10px 0 4px'>{SECTION_TITLES['patterns']} ({n['patterns']})</h4>"
                               + (f"<ul>{lis}</ul>" if lis else "<p>No pattern in this caseload differs from the service "
                                  "beyond chance (check-in, off-goal work, endings, missed sessions, adaptation).</p>"))

        def listing(rows_: pd.DataFrame) -> str:
            if rows_.empty:
                return "<p>Nothing here.</p>"
            return "<ul>" + "".join(
                f"<li><b>{_esc(r.client_id)}</b>: {_esc(_flag_name(r.flag))}{_since(r.since)}. {_esc(r.evidence)}</li>"
                for r in rows_.itertuples()) + "</ul>"
        self.housekeeping_html.value = listing(by["housekeeping"])
        self.more_html.value = listing(by["more"])
        self.housekeeping.set_title(0, f"Housekeeping ({n['housekeeping']}): episodes to close, measures missing")
        self.more.set_title(0, f"More items ({n['more']})")
        self.housekeeping.selected_index = None
        self.more.selected_index = None
        # the summary last: when it names this supervisee, the sections above have been sent
        self.header.value = (
            f"<h3>Agenda for {_esc(me)}</h3><p>{_count(n['risk'], 'client')} with a risk answer, {_count(n['today'], 'client')} "
            f"for today, {_count(n['patterns'], 'pattern')} in the caseload; {n['housekeeping']} housekeeping and "
            f"{_count(n['more'], 'further item')} "
            "folded below. Risk first; then the clients ranked clinical-first (see <i>How the agenda is ranked</i> below).</p>")


_BENCH_LABELS = {"clients": "clients", "single_session": "single-session episodes", "unilateral": "unilateral endings",
                 "lost_contact": "open episodes with lost contact", "srs_total": "mean SRS per rated session",
                 "ors_total": "mean ORS per rated session", "phq9_total": "mean PHQ-9", "gad7_total": "mean GAD-7",
                 "core10_total": "mean CORE-10"}


def benchmark_table(caseload: Caseload, bench: pd.DataFrame) -> str:
    """A self-review's own figures beside the service's published benchmarks (the same definitions,
    :func:`supervision.publish.service_benchmarks`); a hidden service figure is shown as hidden."""
    from supervision.publish import service_benchmarks

    mine = service_benchmarks(caseload, "none")
    mine = mine[mine["dimension"] == "all"].set_index("benchmark")
    svc = bench[bench["dimension"] == "all"].set_index("benchmark")

    def cell(r, kind) -> str:
        if kind == "count":
            return "hidden (small number)" if str(r.get("n_suppressed")) == "True" else f"{r['n_display']}"
        if kind == "rate":
            if str(r.get("rate_suppressed")) == "True" or r.get("rate") in ("", None):
                return "hidden (small number)"
            return f"{float(r['rate']):.0%} (n={r['n_display']})"
        if str(r.get("mean_suppressed")) == "True" or r.get("mean") in ("", None):
            return "hidden (small number)"
        return f"{float(r['mean']):.1f} (n={r['n_display']})"

    rows = []
    for name, label in _BENCH_LABELS.items():
        if name not in svc.index or name not in mine.index:
            continue
        kind = str(svc.loc[name, "kind"])
        rows.append(f"<tr><td>{label}</td><td>{html.escape(cell(mine.loc[name], kind))}</td>"
                    f"<td>{html.escape(cell(svc.loc[name], kind))}</td></tr>")
    return ("<h4>You and the service (as published with your folder)</h4>"
            "<table class='sw-benchmark-table' style='font-size:13px' cellpadding='4'><thead><tr><th></th><th>you</th>"
            f"<th>the service</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "<p><i>How to read this:</i> the service's figures were computed on the whole service's export before "
            "your folder was made, with small numbers hidden and the others rounded (the disclosure policy in your "
            "folder's manifest); yours use the same definitions. A difference is a question for supervision, not a "
            "verdict.</p>")


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
        bench = getattr(data.extras.get("caseload"), "benchmarks", None)
        self.html.value = (
            f"<h3>Caseload of {html.escape(str(me))} ({period})</h3>"
            + (("<p>Self-review: only your own clients are loaded, so the table has no service column; the service's "
                "figures, as published with your folder, are below it.</p>" if bench is not None else
                "<p>Self-review: only your own clients are loaded, so there is no service column.</p>") if own else "")
            + "<table class='sw-caseload-table' style='font-size:13px' cellpadding='4'><thead><tr><th></th>"
            f"<th>{html.escape(str(me))}</th>" + ("" if own else "<th>service</th>")
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "<p><i>How to read this:</i> rates are shown with a 95 % interval (Wilson). With few clients the interval is "
            "wide: a difference from the service inside it may be chance. Session-level rates treat sessions as "
            "independent, so their intervals are too narrow. Single sessions are not automatically dropout: many "
            "clients get what they came for in one session.</p>"
            + (benchmark_table(data.extras["caseload"], bench) if own and bench is not None else ""))
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
                 f"<p>Episode from {r['start_date']:%d %b %Y}" + (f" to {r['end_date']:%d %b %Y} ({_esc(str(r['end_reason']).replace('_', ' '))})" if r["ended"] else ", open")
                 + f"; {r['n_attended']} attended, {r['n_cancelled']} cancelled, {r['n_no_show']} missed.</p>")
        lis = "".join(f"<p><b>{_esc(SECTION_TITLES.get(i.section, i.section))}</b> ({i.severity}): "
                      f"{_esc(i.flags.replace('_', ' '))}</p>{_evidence_list(i.evidence)}<p><i>{_esc(i.question)}</i></p>"
                      for i in items.itertuples())
        support = ""
        if len(items) and bool(items["off_track"].any()):
            from supervision.agenda import support_prompts

            support = support_html(support_prompts(data.extras["caseload"], data.extras["tables"], cid))
        self.html.value = (f"<h3>Client {html.escape(cid)}</h3>{facts}"
                           + (f"<p>On the agenda:</p>{lis}{support}" if lis else "<p>No agenda items for this client.</p>"))
        m = data.extras["alliance"]
        if (m.sessions["client_id"] == cid).any():
            self.chart.show(client_alliance_detail(m.sessions, m.ruptures, client_id=cid, rules=m.options))
        else:
            self.chart.clear()


class FollowUpView(View):
    """Since the last meeting: earlier actions, discussed items and practice goals, each with what the
    data shows since, to mark done / carried over / dropped in today's meeting; practice goals
    (set, judged against chance); the supervisee's development by quarter.

    CSS classes: ``sw-followup-summary``, ``sw-followup-row`` (buttons ``sw-followup-done``,
    ``sw-followup-carry``, ``sw-followup-drop``), ``sw-goals-list``, the goal form (``sw-goal-text``,
    ``sw-goal-metric``, ``sw-goal-direction``, ``sw-goal-start``, ``sw-goal-end``, ``sw-goal-review``,
    ``sw-goal-add``), ``sw-followup-feedback``, ``sw-development-metric`` and chart ``sw-chart-development``.
    """

    css_class = "sw-followup"

    def __init__(self, dashboard_ref):
        from supervision.followup import DEVELOPMENT_METRICS, GOAL_METRICS

        super().__init__()
        self._dash = dashboard_ref
        self._data: Slice | None = None
        self.summary = w.HTML()
        self.summary.add_class("sw-followup-summary")
        self.rows = w.VBox()
        self.goals_html = w.HTML()
        self.goals_html.add_class("sw-goals-list")
        wide = w.Layout(width="auto")
        self.goal_text = w.Text(placeholder="The practice goal in the supervisee's words", layout=w.Layout(width="60%"))
        self.goal_text.add_class("sw-goal-text")
        self.goal_metric = w.Dropdown(options=[(_sentence(v[0]), k) for k, v in GOAL_METRICS.items()],
                                      description="Measured by:", style={"description_width": "initial"},
                                      layout=w.Layout(width="60%"))
        self.goal_metric.add_class("sw-goal-metric")
        self.goal_direction = w.Dropdown(options=[("should go down", "decrease"), ("should go up", "increase")],
                                         layout=wide)
        self.goal_direction.add_class("sw-goal-direction")
        self.goal_start = w.DatePicker(description="Baseline from", style={"description_width": "initial"}, layout=wide)
        self.goal_end = w.DatePicker(description="to", style={"description_width": "initial"}, layout=wide)
        self.goal_review = w.DatePicker(description="Review on", style={"description_width": "initial"}, layout=wide)
        for x, c in ((self.goal_start, "sw-goal-start"), (self.goal_end, "sw-goal-end"), (self.goal_review, "sw-goal-review")):
            x.add_class(c)
        self.goal_add = w.Button(description="Set practice goal", icon="bullseye", button_style="success",
                                 layout=w.Layout(width="auto"))
        self.goal_add.add_class("sw-goal-add")
        self.goal_add.on_click(lambda _b: self._dash.guard(self._add_goal)())
        self.feedback = w.HTML()
        self.feedback.add_class("sw-followup-feedback")
        from supervision.followup import OUTCOME_EFFECT_LABEL

        labels = {**{k: v[0] for k, v in GOAL_METRICS.items()}, "outcome_effect": OUTCOME_EFFECT_LABEL}
        self.dev_metric = w.Dropdown(options=[(_sentence(labels[k]), k) for k in DEVELOPMENT_METRICS],
                                     description="Development:", style={"description_width": "initial"},
                                     layout=w.Layout(width="60%"))
        self.dev_metric.add_class("sw-development-metric")
        self.dev_metric.observe(lambda _ch: self._dash.guard(self._draw_development)(), names="value")
        self.chart = FigureBox("sw-chart-development")
        self.dev_note = w.HTML()
        self._dev: pd.DataFrame | None = None
        self.widget.children = (
            self.summary, self.rows, w.HTML("<h4 style='margin:12px 0 4px'>Practice goals</h4>"), self.goals_html,
            w.HTML("<p style='margin:6px 0 2px'><b>Agree a new practice goal</b> (tied to one metric, re-measured "
                   "at the review date):</p>"),
            self.goal_text, w.HBox([self.goal_metric, self.goal_direction]),
            w.HBox([self.goal_start, self.goal_end, self.goal_review, self.goal_add]), self.feedback,
            w.HTML("<h4 style='margin:12px 0 4px'>The supervisee's development</h4>"), self.dev_metric, self.dev_note,
            self.chart.widget)

    def _store(self) -> NotesStore:
        return self._dash.notes_store()

    def update(self, data: Slice) -> None:
        from supervision.followup import development, follow_up_table

        self._data = data
        me = data.selection.supervisee
        meeting = self._dash.current_meeting()
        end = data.reference_date
        if self.goal_end.value is None and end is not None:
            self.goal_start.value = (end - pd.DateOffset(months=6)).date()
            self.goal_end.value = end.date()
            self.goal_review.value = (pd.Timestamp.today() + pd.DateOffset(months=3)).date()
        tables = data.extras["tables"]
        try:
            with self._store() as store:
                todo = follow_up_table(data.extras["caseload"], tables, store, me, meeting)
                goals = store.goals(me)
        except NotesError as exc:
            self.summary.value = f"<p style='color:#a00'>The notes cannot be read: {_esc(exc)}</p>"
            return
        last = todo["meeting_date"].max() if len(todo) else None
        self.summary.value = (
            f"<h3>Since the last meeting with {_esc(me)}</h3>"
            + ("<p>Nothing carried over: no open action, discussed item or active goal from an earlier meeting.</p>"
               if todo.empty else
               f"<p>{_count(len(todo), 'thing')} from earlier meetings (the latest on {last:%d %b %Y}), each with what the data "
               "shows since. " + ("Mark each <b>done</b>, <b>carried over</b> (follow up next time) or <b>dropped</b>."
                                  if meeting else "<b>Start today's meeting</b> (Notes tab) to record what happened.")
               + "</p>"))
        rows = []
        kinds = {"action": "Action", "item": "Discussed", "goal": "Practice goal"}
        for r in todo.itertuples():
            who = "" if not r.client_id else f" <b>{_esc(r.client_id)}</b>"
            what = _flag_name(r.what) if r.kind == "item" else r.what
            body = w.HTML(
                f"<div><b>{kinds[r.kind]}</b> ({r.meeting_date:%d %b %Y}){who}: {_esc(what)}"
                f"<div style='color:#555;font-size:12px'>{_esc(r.detail)}</div>"
                f"<div><i>Since:</i> {_esc(r.since)}</div>"
                + (f"<div><b>Today: {_esc(r.decided.replace('_', ' '))}</b></div>" if r.decided else "") + "</div>",
                layout=w.Layout(flex="1 1 auto"))
            buttons = []
            for label, status, cls in (("Done", "done", "sw-followup-done"), ("Carry over", "carried_over", "sw-followup-carry"),
                                       ("Drop", "dropped", "sw-followup-drop")):
                b = w.Button(description=label, disabled=meeting is None,
                             layout=w.Layout(width="auto", min_width="95px", flex="0 0 auto"),
                             button_style="success" if r.decided == status else "")
                b.add_class(cls)
                b.on_click(lambda _b, k=r.kind, i=r.id, st=status: self._dash.guard(self._decide)(k, i, st))
                buttons.append(b)
            row = w.HBox([body, *buttons], layout=w.Layout(border="1px solid #ccc", padding="4px 8px", margin="2px 0",
                                                          align_items="center", width="100%"))
            row.add_class("sw-followup-row")
            row.add_class(f"sw-followup-{r.kind}-{r.id}")
            rows.append(row)
        self.rows.children = tuple(rows)
        self._goals(goals, tables)
        self._dev = development(data.extras["caseload"], tables, me)
        self._draw_development()

    def _goals(self, goals: pd.DataFrame, tables: dict) -> None:
        from supervision.followup import evaluate_goal

        if goals.empty:
            self.goals_html.value = "<p>No practice goal yet.</p>"
            return
        tables = {**tables, "sessions": self._dash._caseload.sessions}
        end = self._data.reference_date
        lis = []
        for g in goals.itertuples():
            res = evaluate_goal(tables, g.supervisee_id, g.metric, g.direction, g.baseline_start, g.baseline_end,
                                g.meeting_date, g.review_date)
            due = " <b style='color:#B00020'>(due for review)</b>" if g.status == "active" and end is not None and g.review_date <= end else ""
            lis.append(f"<li><b>{_esc(g.text)}</b> [{_esc(g.status)}], set {g.meeting_date:%d %b %Y}, review "
                       f"{g.review_date:%d %b %Y}{due}.<br>{_esc(res.sentence)}</li>")
        self.goals_html.value = "<ul>" + "".join(lis) + "</ul>"

    def _draw_development(self) -> None:
        from supervision.figures.development import development_chart

        dev = self._dev
        if dev is None or dev.empty:
            self.chart.clear()
            self.dev_note.value = "<p>No sessions in this selection.</p>"
            return
        has = set(dev.loc[dev["value"].notna(), "metric"])
        if self.dev_metric.value not in has and has:  # open on a metric that has something to show
            self.dev_metric.value = next(k for _, k in self.dev_metric.options if k in has)
            return  # the dropdown's observer draws it
        if self.dev_metric.value not in has:
            self.chart.clear()
            self.dev_note.value = ("<p>Too few clients in every quarter to show this supervisee's development "
                                   "(the same minimum as the adaptation view).</p>")
            return
        self.dev_note.value = ""
        self.chart.show(development_chart(dev, self.dev_metric.value, label=str(self._data.selection.supervisee)))

    def _decide(self, kind: str, target_id: int, status: str) -> None:
        meeting = self._dash.current_meeting()
        if meeting is None:
            self.feedback.value = "<p style='color:#a00'>Start today's meeting first (Notes tab): nothing was saved.</p>"
            return
        try:
            with self._store() as store:
                store.review(meeting, kind, int(target_id), status, author=self._dash.supervisor_name())
        except NotesError as exc:
            self.feedback.value = f"<p style='color:#a00'>Not saved: {_esc(exc)}</p>"
            return
        self.feedback.value = f"<p style='color:#060'>Saved: {kind} {target_id} {status.replace('_', ' ')}.</p>"
        self.update(self._data)

    def _add_goal(self) -> None:
        meeting = self._dash.current_meeting()
        if meeting is None:
            self.feedback.value = "<p style='color:#a00'>Start today's meeting first (Notes tab): a goal belongs to a meeting.</p>"
            return
        text = self.goal_text.value.strip()
        if not text:
            self.feedback.value = "<p style='color:#a00'>Write the goal first: nothing was saved.</p>"
            return
        try:
            with self._store() as store:
                gid = store.add_goal(meeting, text, self.goal_metric.value, direction=self.goal_direction.value,
                                     baseline_start=self.goal_start.value, baseline_end=self.goal_end.value,
                                     review_date=self.goal_review.value, author=self._dash.supervisor_name())
        except NotesError as exc:
            self.feedback.value = f"<p style='color:#a00'>Not saved: {_esc(exc)} Your text is still in the box.</p>"
            return
        self.goal_text.value = ""
        self.feedback.value = f"<p style='color:#060'>Practice goal {gid} saved.</p>"
        self.update(self._data)


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
        if self._data is None:  # the tab was never drawn: take the dashboard's current selection
            self._data = self._dash.last_slice
        sup = self.supervisor.value.strip()
        if not sup:
            self.feedback.value = "<p style='color:#a00'>Type your supervisor id first.</p>"
            return
        with self._store() as store:
            self.meeting_id = store.start_meeting(sup, self._data.selection.supervisee, date.today())
        self._meeting_supervisee = self._data.selection.supervisee
        self.feedback.value = f"<p style='color:#060'>Meeting {self.meeting_id} started and saved.</p>"
        self.update(self._data)
        self._dash.meeting_changed()

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


def report_link_html(path: Path) -> str:
    """A link that opens a saved report from the browser, wherever the workbook is served.

    The report is embedded in the link (a ``data:`` URL with ``download``): the browser saves
    and opens it without the server having to serve the reports folder (Voila serves only the
    notebook's folder, and only images). The file's place on the computer is said beside it.
    """
    import base64

    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<span style='color:#060'>Saved. <a class='sw-report-link' download='{html.escape(path.name, quote=True)}' "
            f"href='data:text/html;base64,{data}' target='_blank' rel='noopener' "
            "style='font-weight:bold;text-decoration:underline'>Open the report</a> "
            f"({path.stat().st_size / 1e6:.1f} MB; opens in any browser, offline; also kept as "
            f"<code>{html.escape(str(path))}</code>).</span>")


class SupervisionDashboard(Dashboard):
    css_class = "sw-supervision"

    def __init__(self, caseload: Caseload, supervisee: str | None = None, notes_path=None, report_dir=None):
        from supervision import table_cache

        with table_cache.deferred_writes():  # on a cold cache the page is built first, its tables stored after
            self._open(caseload, supervisee, notes_path, report_dir)

    def _open(self, caseload: Caseload, supervisee: str | None, notes_path, report_dir) -> None:
        self._caseload = caseload
        self._tables = service_tables(caseload)  # stored once per export and settings, then read
        try:  # practice goals due for review come onto the agenda
            with NotesStore(notes_path, settings=caseload.settings, read_only=True) as store:
                goals = store.goals()
        except NotesError:
            goals = None
        self._agenda = build_agenda(caseload, self._tables, goals=goals)
        self._alliance = AllianceModel(caseload, caseload.rules.alliance, tables=self._tables)  # the same rules: no recompute
        clin = caseload.clinicians
        self._supervisor_of = dict(zip(clin["clinician_id"], clin["supervisor_id"])) if "supervisor_id" in clin else {}
        self.notes_path = notes_path
        self.notes_view = NotesView(lambda: NotesStore(self.notes_path, settings=caseload.settings), self)
        views = [AgendaView(self), FollowUpView(self), CaseloadView(), HeatmapView(), ClientView(), self.notes_view]
        self.report_button = w.Button(description="Save report", icon="file", tooltip="Write this supervisee's report (HTML)")
        self.report_button.add_class("sw-report-save")
        self.report_feedback = w.HTML()
        self.report_feedback.add_class("sw-report-feedback")
        self.report_dir = Path(report_dir) if report_dir else REPORT_DIR
        super().__init__(caseload, views, tabs=TABS, supervisee=supervisee,
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
        self.report_feedback.value = report_link_html(path)
        return path

    def enrich(self, data: Slice) -> None:
        data.extras.update(tables=self._tables, agenda=self._agenda, alliance=self._alliance,
                           supervisor_of=self._supervisor_of, caseload=self._caseload)

    def open_client(self, client_id: str) -> None:
        """Drill down (*Discuss*): pick ``client_id`` and show the Client tab."""
        self.client.value = client_id
        self.body.selected_index = TABS.index("Client")

    def discuss(self, client_id: str) -> None:
        """*Discuss* on an agenda row: record it as discussed in today's meeting (when one is started), open the client."""
        meeting = self.current_meeting()
        if meeting is not None:
            ag = self._agenda
            row = ag[(ag["clinician_id"] == self.selection.supervisee) & (ag["client_id"] == client_id)]
            if len(row):
                r = row.iloc[0]
                with self.notes_store() as store:
                    store.record_item(meeting, r["flag"], r["evidence"], client_id=client_id,
                                      data_date=self._caseload.sessions["session_date"].max(),
                                      author=self.supervisor_name())
        self.open_client(client_id)

    def notes_store(self) -> NotesStore:
        return NotesStore(self.notes_path, settings=self._caseload.settings)

    def current_meeting(self) -> int | None:
        """Today's meeting with the selected supervisee (started in the Notes tab), or None."""
        nv = self.notes_view
        return nv.meeting_id if nv.meeting_id is not None and nv._meeting_supervisee == self.selection.supervisee else None

    def supervisor_name(self) -> str | None:
        return self.notes_view.supervisor.value.strip() or None

    def meeting_changed(self) -> None:
        """A meeting was started: the follow-up view can now record decisions."""
        self._stale.add(TABS.index("Follow-up"))
        if self.body.selected_index == TABS.index("Follow-up"):
            self._draw(TABS.index("Follow-up"))


def supervision_dashboard(caseload: Caseload | None = None, supervisee: str | None = None, notes_path=None,
                          report_dir=None) -> w.Widget:
    """Build the supervision dashboard (default: the demo clinic, notes in the default database)."""
    if caseload is None:
        from supervision.io import load_caseload

        caseload = load_caseload()
    if not caseload.usable:
        return unusable_notice(caseload)
    return SupervisionDashboard(caseload, supervisee=supervisee, notes_path=notes_path, report_dir=report_dir).widget
