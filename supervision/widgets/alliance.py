"""The alliance dashboard: who has a weak, falling, or ruptured-and-unrepaired working alliance.

Views (each with a CSS class for tests): ``sw-alliance-summary`` (plain-language headline and the
flagged clients), ``sw-alliance-heatmap`` (clients x session number), ``sw-alliance-series``
(small multiples, or one client's detail with items and subscales when a client is picked) and
``sw-alliance-compare`` (the supervisee against the other clinicians and the service).
Threshold controls (``sw-cutoff``, ``sw-inclusive``, ``sw-sd``, ``sw-drop``) recompute the
metrics for the whole service once per setting (cached), then every view redraws.
"""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd

from supervision.caseload import Caseload
from supervision.figures import alliance as figs
from supervision.metrics import alliance as metrics
from supervision.rules import AllianceRules
from supervision.widgets.framework import Dashboard, FigureBox, Slice, View, unusable_notice

MAX_PANELS = 16


class AllianceModel:
    """Service-wide alliance tables for one set of alliance rules (computed once, then sliced).

    ``rules`` (:class:`supervision.rules.AllianceRules`; default ``caseload.rules.alliance``) are the
    thresholds; the views read them as ``model.options`` (``options.srs_cutoff``, ``options.sd_criterion``).
    ``tables`` (from :func:`supervision.metrics.tables.metric_tables`) are used as they are when
    given: they were computed with ``caseload.rules``, so pass them only with those rules (the
    supervision dashboard does; the alliance notebook's live thresholds recompute).
    """

    def __init__(self, caseload: Caseload, rules: AllianceRules | None = None, tables: dict | None = None):
        self.options = rules = rules if rules is not None else caseload.rules.alliance
        names = ("alliance_sessions", "alliance_ruptures", "alliance_clients", "alliance_clinicians")
        if tables is not None and all(n in tables for n in names):
            self.sessions, self.ruptures, self.clients, self.clinicians = (tables[n] for n in names)
            return
        self.sessions = metrics.session_alliance(caseload.sessions, rules=rules)
        now = caseload.sessions["session_date"].max() if len(caseload.sessions) else None  # as the metric tables
        self.ruptures = metrics.ruptures(self.sessions, clients=caseload.clients, reference_date=now, rules=rules)
        self.clients = metrics.client_alliance(self.sessions, clients=caseload.clients, ruptures=self.ruptures,
                                               reference_date=now, rules=rules)
        self.clinicians = metrics.clinician_alliance(self.sessions, clients=caseload.clients, ruptures=self.ruptures,
                                                     reference_date=now, rules=rules)

    @property
    def low_item_threshold(self) -> float:
        return self.options.low_item_threshold

    @property
    def ceiling_at(self) -> float:
        return self.options.ceiling_at

    @property
    def min_sessions(self) -> int:
        return self.options.min_sessions


def _by_concern(ca: pd.DataFrame) -> pd.DataFrame:
    """Clients ordered: unrepaired ruptures first, then open ones, then a low latest score, then share of low sessions."""
    key = ca.assign(_u=ca["n_unrepaired"].fillna(0), _o=ca["n_open"].fillna(0),
                    _l=ca["latest_low"].fillna(False).astype(int), _s=ca["share_low"].fillna(0))
    return key.sort_values(["_u", "_o", "_l", "_s", "client_id"], ascending=[False, False, False, False, True]).drop(
        columns=["_u", "_o", "_l", "_s"])


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _fmt(v, pattern="{:.1f}") -> str:
    return "–" if v is None or pd.isna(v) else pattern.format(v)


class SummaryView(View):
    css_class = "sw-alliance-summary"

    def __init__(self):
        super().__init__()
        self.html = w.HTML()
        self.widget.children = (self.html,)

    def update(self, data: Slice) -> None:
        m: AllianceModel = data.extras["alliance"]
        ids = set(data.clients["client_id"])
        ca = m.clients[m.clients["client_id"].isin(ids)]
        measured = ca[ca["n_measured"] > 0]
        low_latest = int(measured["latest_low"].fillna(False).sum())
        unrep = int((ca["n_unrepaired"].fillna(0) > 0).sum())
        open_ = int((ca["n_open"].fillna(0) > 0).sum())
        ceiling = int(ca["ceiling_only"].fillna(False).sum())
        judged = int(ca["rupture_judged"].fillna(False).sum())
        op = "at or below" if m.options.inclusive else "below"
        head = (f"<h3>Alliance: {len(measured)} of {_n(len(ca), 'client')} have SRS scores</h3><ul>"
                f"<li><b>{_n(low_latest, 'client')}</b>: latest SRS {op} the cut-off of {m.options.srs_cutoff:g}.</li>"
                f"<li><b>{_n(unrep, 'client')}</b> with a rupture that was not repaired, <b>{open_}</b> with one whose repair "
                f"is still possible ({m.options.sd_criterion:g}-SD rule; {_n(judged, 'client')} had enough sessions to judge).</li>"
                f"<li><b>{_n(ceiling, 'client')}</b> scored at the ceiling ({m.ceiling_at:g} or more) every time: "
                "uninformative, worth exploring, not reassuring.</li></ul>")
        flagged = _by_concern(ca[(ca["flags"].fillna("") != "") | (ca["n_unrepaired"].fillna(0) > 0)]).head(25)
        rows = "".join(
            f"<tr><td>{html.escape(str(r.client_id))}</td><td>{r.n_measured}</td><td>{_fmt(r.first_srs)}</td>"
            f"<td>{_fmt(r.latest_srs)}</td><td>{_fmt(r.trend, '{:+.2f}')}</td><td>{_fmt(r.share_low, '{:.0%}')}</td>"
            f"<td>{'' if pd.isna(r.n_ruptures) else int(r.n_ruptures)}</td><td>{'' if pd.isna(r.n_unrepaired) else int(r.n_unrepaired)}</td>"
            f"<td>{html.escape(str(r.flags or '').replace(';', ', ').replace('_', ' '))}</td></tr>"
            for r in flagged.itertuples())
        table = ("<p>No client is flagged.</p>" if flagged.empty else
                 "<p><b>Clients to look at first</b> (unrepaired ruptures, then a low latest score):</p>"
                 "<table class='sw-alliance-flags' style='border-collapse:collapse;font-size:13px' cellpadding='4'><thead><tr>"
                 "<th>client</th><th>measured sessions</th><th>first SRS</th><th>latest SRS</th><th>trend / session</th>"
                 "<th>share low</th><th>ruptures</th><th>not repaired</th><th>flags</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>")
        sd, n_sd = metrics.within_client_sd(m.sessions, min_sessions=m.min_sessions)
        rows_n = "".join(f"<tr><td>{noise:g}</td><td>{obs:.2f}</td><td>{rec:.0%}</td><td>{prec:.0%}</td></tr>"
                         for noise, obs, rec, prec in metrics.RUPTURE_RULE_BY_NOISE)
        limits = ("<p><i>What this cannot tell:</i> a rupture here is a V-shaped dip deeper than "
                  f"{m.options.sd_criterion:g} of the client's own SDs, decided with the scores up to that session. "
                  "How often such a flag is a real rupture depends on how much a client's SRS wobbles from session to "
                  "session anyway. On synthetic clinics with planted ruptures (the default rule, 2 of the client's SDs):</p>"
                  "<table class='sw-alliance-noise' style='font-size:12px' cellpadding='3'><thead><tr><th>reading noise</th>"
                  "<th>within-client SD</th><th>ruptures found</th><th>flags that were real</th></tr></thead>"
                  f"<tbody>{rows_n}</tbody></table>"
                  + (f"<p>This service's median within-client SD is <b>{sd:.2f}</b> SRS points ({_n(n_sd, 'client')} with "
                     f"at least {m.min_sessions} rated sessions). Where it is well above the demo's 0.6, read a rupture flag "
                     "as a prompt to ask, not as evidence that a rupture happened.</p>" if n_sd else
                     "<p>Too few clients have enough rated sessions to estimate this service's within-client SD.</p>"))
        self.html.value = head + table + limits


class HeatmapView(View):
    css_class = "sw-alliance-heatmap"

    def __init__(self):
        super().__init__()
        self.chart = FigureBox("sw-chart-heatmap")
        self.help = w.HTML("<p><i>How to read this:</i> one row per client, one column per attended session. "
                           "Cells at or below the cut-off are marked; markers show ruptures. Blank cells: no SRS that "
                           "session. A row of short length is a client who came few times: there is little to judge.</p>")
        self.widget.children = (self.chart.widget, self.help)

    def update(self, data: Slice) -> None:
        m: AllianceModel = data.extras["alliance"]
        sa = _in_view(m.sessions, data)
        self.chart.show(figs.srs_heatmap(sa, m.ruptures[m.ruptures["client_id"].isin(sa["client_id"])],
                                        rules=m.options,
                                        title=f"Caseload alliance (SRS), {data.selection.supervisee}"))


class SeriesView(View):
    css_class = "sw-alliance-series"

    def __init__(self):
        super().__init__()
        self.chart = FigureBox("sw-chart-series")
        self.note = w.HTML()
        self.widget.children = (self.note, self.chart.widget)

    def update(self, data: Slice) -> None:
        m: AllianceModel = data.extras["alliance"]
        sa = _in_view(m.sessions, data)
        if data.selection.client:
            self.note.value = ("<p>One client in detail. Pick <i>Whole caseload</i> in <b>Client</b> to go back.</p>")
            self.chart.show(figs.client_alliance_detail(sa, m.ruptures, client_id=data.selection.client,
                                                       rules=m.options))
            return
        ca = m.clients[m.clients["client_id"].isin(sa["client_id"])]
        ids = _by_concern(ca[ca["n_measured"] >= 2])["client_id"].tolist()
        shown = ids[:MAX_PANELS]
        self.note.value = (f"<p>The {len(shown)} clients most in need of discussion first (of {len(ids)} with at least two "
                           "SRS scores; clients rated once are in the heatmap). "
                           "Pick a client in <b>Client</b> to see the items and subscales behind the total.</p>")
        self.chart.show(figs.srs_small_multiples(sa, m.ruptures, rules=m.options, clients=shown))


class CompareView(View):
    css_class = "sw-alliance-compare"
    compares_with_service = True

    def self_review(self, data, dashboard) -> dict:
        return {"names": ["clients", "srs_total"], "what": "alliance",
                "not_comparable": "The share of sessions at or below the SRS cut-off, ruptures and repairs, and the "
                                  "first SRS of clients who dropped out are not published for the service: there is no "
                                  "valid comparison for them, so the chart of clinicians is not drawn. Your own figures "
                                  "are in the <i>Overview</i> and <i>Heatmap</i> tabs."}

    def __init__(self):
        super().__init__()
        self.chart = FigureBox("sw-chart-compare")
        self.html = w.HTML()
        self.widget.children = (self.chart.widget, self.html)

    def update(self, data: Slice) -> None:
        m: AllianceModel = data.extras["alliance"]
        op = "at or below" if m.options.inclusive else "below"
        self.chart.show(figs.low_alliance_comparison(m.clinicians, clinician_id=data.selection.supervisee,
                                                     title=f"Sessions {op} the SRS cut-off of {m.options.srs_cutoff:g}"))
        cn = m.clinicians.set_index("scope")
        me = data.selection.supervisee
        if me not in cn.index:
            self.html.value = "<p>No SRS scores for this supervisee.</p>"
            return
        rows = []
        for label, col, pat in (("clients", "n_clients", "{:.0f}"), ("measured sessions", "n_measured", "{:.0f}"),
                                ("median SRS", "median_srs", "{:.1f}"), ("sessions low (see the cut-off above)", "low_rate", "{:.0%}"),
                                ("ruptures per 100 sessions", "ruptures_per_100", "{:.1f}"), ("repair rate", "repair_rate", "{:.0%}"),
                                ("first SRS, clients who dropped out", "first_srs_dropout", "{:.1f}"),
                                ("first SRS, clients who stayed", "first_srs_stayed", "{:.1f}")):
            rows.append(f"<tr><td>{label}</td><td>{_fmt(cn.at[me, col], pat)}</td><td>{_fmt(cn.at['service', col], pat)}</td></tr>")
        low_ci = (f"{_fmt(cn.at[me, 'low_rate_lower'], '{:.0%}')}–{_fmt(cn.at[me, 'low_rate_upper'], '{:.0%}')}")
        self.html.value = (
            f"<table class='sw-alliance-compare-table' style='font-size:13px'><thead><tr><th></th><th>{html.escape(me)}</th>"
            f"<th>service</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p><i>What this cannot tell:</i> the interval for {html.escape(me)}'s low-alliance rate is {low_ci} "
            "(Wilson 95 %), and it is too narrow because one client's sessions are not independent. A caseload of a few "
            "clients can differ from the service by chance; lower scores can also mean clients feel safe to say so.</p>")


def _in_view(table: pd.DataFrame, data: Slice) -> pd.DataFrame:
    """Rows of a per-session table for the clients in the slice, from the period's start."""
    part = table[table["client_id"].isin(data.clients["client_id"])]
    if data.start_date is not None:
        part = part[part["session_date"] >= data.start_date]
    return part


class AllianceDashboard(Dashboard):
    css_class = "sw-alliance"

    def __init__(self, caseload: Caseload, supervisee: str | None = None):
        rules = caseload.rules.alliance  # the settings' rules are where every control starts
        wide = w.Layout(width="320px", min_width="260px")
        self.cutoff = w.FloatSlider(value=rules.srs_cutoff, min=min(30.0, rules.srs_cutoff), max=40, step=0.5,
                                    description="SRS cut-off:", continuous_update=False,
                                    style={"description_width": "initial"}, layout=wide)
        self.cutoff.add_class("sw-cutoff")
        self.inclusive = w.Checkbox(value=rules.inclusive, description="equal counts as low", indent=False,
                                    layout=w.Layout(width="auto", min_width="170px"))
        self.inclusive.add_class("sw-inclusive")
        self.drop = w.FloatSlider(value=rules.drop_points, min=min(0.5, rules.drop_points), max=max(5.0, rules.drop_points),
                                  step=0.5, description="Drop of (points):", continuous_update=False,
                                  style={"description_width": "initial"}, layout=wide)
        self.drop.add_class("sw-drop")
        sd_choices = [("2 SD (Stiles et al. 2004)", 2.0), ("1 SD (Strauss et al. 2006)", 1.0)]
        if float(rules.sd_criterion) not in (1.0, 2.0):  # the user's own rule is offered, never replaced by 2 SD
            sd_choices.insert(0, (f"{rules.sd_criterion:g} SD (your settings)", float(rules.sd_criterion)))
        self.sd = w.Dropdown(options=sd_choices, value=float(rules.sd_criterion), description="Rupture rule:",
                             style={"description_width": "initial"})
        self.sd.add_class("sw-sd")
        self._caseload = caseload
        self._cache: dict[AllianceRules, AllianceModel] = {}
        thresholds = w.HBox([self.cutoff, self.inclusive, self.drop, self.sd], layout=w.Layout(flex_flow="row wrap"))
        thresholds.add_class("sw-thresholds")
        super().__init__(caseload, [SummaryView(), HeatmapView(), SeriesView(), CompareView()],
                         tabs=["Overview", "Heatmap", "Clients", "vs service"],
                         supervisee=supervisee, extra_controls=[thresholds])
        for ctrl in (self.cutoff, self.inclusive, self.drop, self.sd):
            ctrl.observe(self.guard(lambda _ch: self.refresh(update_clients=False)), names="value")

    @property
    def options(self) -> AllianceRules:
        """The caseload's alliance rules with the four controls' values (checked as the settings are)."""
        return self._caseload.rules.alliance.replace(srs_cutoff=float(self.cutoff.value), inclusive=bool(self.inclusive.value),
                                                     drop_points=float(self.drop.value), sd_criterion=float(self.sd.value))

    def model(self) -> AllianceModel:
        opts = self.options
        if opts not in self._cache:
            self._cache[opts] = AllianceModel(self._caseload, opts)
        return self._cache[opts]

    def enrich(self, data: Slice) -> None:
        data.extras["alliance"] = self.model()


def alliance_dashboard(caseload: Caseload | None = None, supervisee: str | None = None) -> w.Widget:
    """Build the alliance dashboard for a loaded caseload (default: the demo clinic)."""
    if caseload is None:
        from supervision.io import load_caseload

        caseload = load_caseload()
    if not caseload.usable:
        return unusable_notice(caseload)
    return AllianceDashboard(caseload, supervisee=supervisee).widget
