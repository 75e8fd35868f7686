"""The adaptation-gaps dashboard: does this therapist do worse with some kinds of clients, beyond chance?

Views: ``sw-adapt-summary`` (the overview matrix and the gaps in words), ``sw-adapt-forest``
(every group of the chosen metric with its interval and n; groups under the minimum shown as
"too few clients", never as a bar) and ``sw-adapt-funnel`` (all clinicians for one group and
metric, with Spiegelhalter limits). Controls: ``sw-dimension``, ``sw-group``, ``sw-metric``,
``sw-comparator``. Gaps are computed once per supervisee and cached.
"""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd

from supervision.caseload import Caseload
from supervision.config import value_label
from supervision.figures import adaptation as figs
from supervision.metrics import adaptation as metrics
from supervision.widgets.framework import Dashboard, FigureBox, Slice, View, unusable_notice

METRIC_LABELS = {
    "first_srs": "first-session alliance (SRS)", "mean_srs": "mean alliance (SRS)", "unilateral": "unilateral endings",
    "unplanned_single_session": "unplanned single-session endings", "reliable_improvement": "reliable improvement",
    "recovery": "recovery", "identity_addressed": "identity addressed in session",
}
COMPARATORS = [("the clinician's other clients", "clinician"), ("the service's clients in the same group", "service")]


class AdaptationModel:
    def __init__(self, caseload: Caseload):
        st, rules = caseload.settings, caseload.rules
        present = caseload.measures_present()
        usable = present.loc[present["kind"] == "outcome", "instrument"].tolist()
        inst, note = metrics.outcome_instrument(usable, rules.adaptation.outcome_instrument, rules.outcome.instrument)
        import re

        from supervision.instruments import instruments

        names = {k: v.name for k, v in instruments(st).items()}  # "ors" -> "Outcome Rating Scale" (no codes on screen)
        self.outcome_note = re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: names[m.group(1)], note) \
            if names else note
        self.measures = metrics.client_measures(caseload.clients, caseload.sessions, settings=st,
                                                instrument=inst or rules.outcome.instrument, rules=rules)
        self.rules = rules.adaptation
        self.options = self.rules.kwargs(metrics.adaptation_gaps)
        self.dimensions = [d for d in st.identity_dimensions if d in self.measures.columns]
        self.metrics = [m for m in METRIC_LABELS if m in self.measures.columns and self.measures[m].notna().any()]
        self._gaps: dict[tuple, pd.DataFrame] = {}

    def gaps(self, clinician_id: str, data: Slice | None = None) -> pd.DataFrame:
        """Gaps for one clinician among the clients in the slice's period and episodes (cached)."""
        key = (clinician_id, None if data is None else (data.selection.period, data.selection.episodes))
        if key not in self._gaps:
            m = self.measures if data is None else self.measures[self.measures["client_id"].isin(data.service_clients["client_id"])]
            self._gaps[key] = metrics.adaptation_gaps(m, clinician_id=clinician_id, **self.options)
        return self._gaps[key]


_NOT_A_GROUP = ("declined", "not_recorded")


def closest_unflagged(gaps: pd.DataFrame, comparator: str) -> pd.Series | None:
    """With no gap flagged, the most informative cell to open on: the unflagged gap that is largest.

    Among the cells with an estimate (verdict ``no evidence``: enough clients, docs/methods.md §9.6)
    against ``comparator``, leaving out ``declined`` / ``not_recorded``, the one whose shrunken
    difference (``shrunken_difference``, small groups pulled toward the comparator) is furthest in the
    worse direction for the measure, in units of the measure's practically important difference
    (``practical_threshold``, ``[adaptation.practical]``), so alliance points and rates compare.
    Returns the gap row with ``worse_by`` (that ratio; > 0 is worse than the comparator), or None
    when no cell has an estimate.
    """
    g = gaps[(gaps["comparator"] == comparator) & (gaps["verdict"] == "no evidence")
             & ~gaps["group"].astype(str).isin(_NOT_A_GROUP)]
    sign = g["higher_is_better"].map(lambda v: -1.0 if bool(v) else 1.0)
    worse = (g["shrunken_difference"] * sign / g["practical_threshold"]).astype(float)
    g = g.assign(worse_by=worse)[worse.notna() & (g["practical_threshold"] > 0)]
    if g.empty:
        return None
    return g.sort_values(["worse_by", "n_group"], ascending=False, kind="stable").iloc[0]


class SummaryView(View):
    css_class = "sw-adapt-summary"

    def __init__(self, dash):
        super().__init__()
        self._dash = dash
        self.html = w.HTML()
        self.chart = FigureBox("sw-chart-adapt-overview")
        self.widget.children = (self.html, self.chart.widget)

    def update(self, data: Slice) -> None:
        m: AdaptationModel = data.extras["adaptation"]
        me = data.selection.supervisee
        gaps = m.gaps(me, data)
        comp = self._dash.comparator.value
        g = gaps[gaps["comparator"] == comp]
        found = g[g["verdict"].isin(["clear gap", "possible gap"])].sort_values(["verdict", "dimension", "group"])
        adjusted = {}
        if comp == "clinician" and len(found):  # overlapping groups: each gap with the others held fixed
            mm = m.measures if data is None else m.measures[m.measures["client_id"].isin(data.service_clients["client_id"])]
            adj = metrics.adjusted_gaps(mm, gaps, clinician_id=me, rules=m.rules)
            adjusted = {(r.dimension, r.group, r.metric): r for r in adj.itertuples()}

        def adj_text(r) -> str:
            a = adjusted.get((r.dimension, r.group, r.metric))
            if a is None or not a.adjusted_for:
                return ""
            est = ("" if pd.isna(a.adjusted_difference) else
                   f": {_diff(a.adjusted_difference, r.metric)} ({_diff(a.adjusted_lower, r.metric)} to "
                   f"{_diff(a.adjusted_upper, r.metric)})")
            return f"<br><i>With {html.escape(a.adjusted_for)} held fixed{est}: {html.escape(a.note)}.</i>"

        items = "".join(
            f"<li><b>{html.escape(r.verdict)}</b>: {html.escape(str(r.dimension).replace('_', ' '))} = "
            f"<b>{html.escape(value_label(r.group, self._dash._settings))}</b>, {METRIC_LABELS.get(r.metric, r.metric)}: "
            f"{_val(r.value_group, r.metric)} (n={r.n_group}) against {_val(r.value_comparator, r.metric)} (n={r.n_comparator}); "
            f"difference {_diff(r.difference, r.metric)} ({_diff(r.lower, r.metric)} to {_diff(r.upper, r.metric)})"
            f"{adj_text(r)}</li>"
            for r in found.itertuples())
        too_few = int((g["verdict"] == "too few clients").sum())
        self.html.value = (
            f"<h3>Adaptation: {html.escape(me)} compared with {dict((v, k) for k, v in COMPARATORS)[comp]}</h3>"
            + ("<p class='sw-self-review'>Self-review: only your own clients are here, so each group is compared with "
               "your other clients; the service's figures for the same group, as published with your folder, are in "
               "the <i>Clinicians (funnel)</i> tab.</p>" if self._dash.scope is not None else "")
            + (f"<ul>{items}</ul>" if items else self._no_gap_text(g, comp))
            + f"<p>Reliable improvement and recovery: {html.escape(m.outcome_note)}.</p>"
            + f"<p>{too_few} group-by-measure cells have too few clients (fewer than {m.rules.min_n}) to estimate "
              "anything: they are shown as such, never as a gap.</p>"
              "<p><i>How to raise a gap in supervision:</i> as a question about the work, not a judgement of the therapist. "
              "What is it like for clients of this group to work with you? What might they need that is different? "
              "A gap can come from who is referred, from the measures, or from chance; the interval says how sure we can be. "
              "Groups overlap (e.g. personality-disorder features and gender): against the clinician's other clients each "
              "gap is also shown with the clinician's other flagged groups held fixed (a linear model within the caseload), "
              "or why that cannot be estimated.</p>")
        self.chart.show(figs.gap_overview(gaps, clinician_id=me, comparator=comp))


    def _no_gap_text(self, gaps: pd.DataFrame, comp: str) -> str:
        """No gap flagged: say so, and name the largest unflagged gap (what the pickers open on)."""
        top = closest_unflagged(gaps, comp)
        out = "<p class='sw-adapt-no-gap'><b>No gap is flagged</b> for this clinician (docs/methods.md §9.6)."
        if top is None or not top["worse_by"] > 0:
            return out + " No group with enough clients does worse than the comparator on any measure.</p>"
        return out + (
            f" The largest difference in the worse direction is for {html.escape(str(top['dimension']).replace('_', ' '))} = "
            f"<b>{html.escape(value_label(top['group'], self._dash._settings))}</b>, {METRIC_LABELS.get(top['metric'], top['metric'])}: "
            f"{_val(top['value_group'], top['metric'])} (n={top['n_group']}) against {_val(top['value_comparator'], top['metric'])} "
            f"(n={top['n_comparator']}); difference {_diff(top['difference'], top['metric'])} ({_diff(top['lower'], top['metric'])} "
            f"to {_diff(top['upper'], top['metric'])}){self._why_not_flagged(top)} Largest after small groups are pulled toward "
            "the comparator, measured against each measure's practically important difference; the Group and Measure "
            "pickers open on it when the page is first drawn.</p>")

    @staticmethod
    def _why_not_flagged(r) -> str:
        """Why a cell with an estimate is no gap (docs/methods.md §9.6), from its own intervals."""
        if pd.isna(r["lower"]) or pd.isna(r["upper"]) or r["lower"] <= 0 <= r["upper"]:
            return ": the interval includes no difference, so chance may explain it."
        if pd.notna(r.get("excess_lower")) and pd.notna(r.get("excess_upper")) and r["excess_lower"] <= 0 <= r["excess_upper"]:
            return (": the interval excludes no difference, but colleagues' clients of this group differ in the same "
                    "way (the excess gap over colleagues' pattern includes 0), so it is not flagged as this "
                    "clinician's gap.")
        return ": the interval excludes no difference, but it does not meet the other conditions of a gap (docs/methods.md §9.6)."


def _val(v, metric) -> str:
    if pd.isna(v):
        return "–"
    return f"{v:.1f}" if metric in ("first_srs", "mean_srs") else f"{v:.0%}"


def _diff(v, metric) -> str:
    if pd.isna(v):
        return "–"
    return f"{v:+.1f}" if metric in ("first_srs", "mean_srs") else f"{v * 100:+.0f} points"


class ForestView(View):
    css_class = "sw-adapt-forest"

    def __init__(self, dash):
        super().__init__()
        self._dash = dash
        self.chart = FigureBox("sw-chart-adapt-forest")
        self.widget.children = (self.chart.widget, w.HTML(
            "<p><i>How to read this:</i> each row is one group of clients. The bar is the difference from the comparator "
            "with its 95 % interval; a bar that crosses zero is compatible with no difference. Rows without a bar have too "
            "few clients to estimate anything. The small caseloads make intervals wide: that is the honest picture.</p>"))

    def update(self, data: Slice) -> None:
        m: AdaptationModel = data.extras["adaptation"]
        d = self._dash
        dims = None if d.dimension.value == "all" else [d.dimension.value]
        self.chart.show(figs.gap_forest(m.gaps(data.selection.supervisee, data), metric=d.metric.value, comparator=d.comparator.value,
                                        clinician_id=data.selection.supervisee, dimensions=dims))


class FunnelView(View):
    css_class = "sw-adapt-funnel"
    compares_with_service = True

    def self_review(self, data, dashboard) -> dict | None:
        dim, group = self._dash.group_dimension, self._dash.group.value
        if dim is None or not group:
            return None
        return {"names": ["clients", "single_session", "unilateral", "lost_contact", "srs_total", "ors_total",
                          "focus_on_goal"], "dimension": dim, "group": group,
                "what": "the same group of clients", "group_label": value_label(group, self._dash._settings),
                "not_comparable": "The funnel places every clinician's figure for this group; a self-review has only "
                                  "the service's published totals per group, shown here: no funnel can be drawn."}

    def __init__(self, dash):
        super().__init__()
        self._dash = dash
        self.note = w.HTML()
        self.chart = FigureBox("sw-chart-adapt-funnel")
        self.widget.children = (self.note, self.chart.widget)

    def update(self, data: Slice) -> None:
        m: AdaptationModel = data.extras["adaptation"]
        d = self._dash
        dim = d.group_dimension
        group = d.group.value
        if dim is None or not group:
            self.note.value = "<p>Pick a dimension and a group.</p>"
            self.chart.clear()
            return
        in_period = m.measures[m.measures["client_id"].isin(data.service_clients["client_id"])]
        fd = metrics.funnel_data(in_period, dimension=dim, group=group, metric=d.metric.value,
                                 clinician_id=data.selection.supervisee)
        self.note.value = (f"<p>Every clinician's {METRIC_LABELS.get(d.metric.value, d.metric.value)} for clients with "
                           f"{html.escape(dim.replace('_', ' '))} = <b>{html.escape(value_label(group, d._settings))}</b>, against how many such "
                           "clients they saw. Points inside the funnel differ from the service by no more than chance would "
                           "make them; the funnel is wide on the left because small numbers vary a lot.</p>")
        self.chart.show(figs.gap_funnel(fd))


class AdaptationDashboard(Dashboard):
    css_class = "sw-adaptation"

    def __init__(self, caseload: Caseload, supervisee: str | None = None):
        self._model = AdaptationModel(caseload)
        self._settings = caseload.settings  # the value labels ([identity.labels])
        m = self._model
        self.dimension = w.Dropdown(options=[("All dimensions", "all")] + [(d.replace("_", " "), d) for d in m.dimensions],
                                    value="all", description="Dimension:")
        self.dimension.add_class("sw-dimension")
        self.group = w.Dropdown(options=[], description="Group:")
        self.group.add_class("sw-group")
        self.metric = w.Dropdown(options=[(METRIC_LABELS[k], k) for k in m.metrics], description="Measure:",
                                 layout=w.Layout(width="360px"))
        self.metric.add_class("sw-metric")
        # a self-review holds only the clinician's clients: "the service's clients" would be the clinician again,
        # so that comparator is not offered (the funnel tab shows the published service figures of the group)
        self.comparator = w.Dropdown(options=COMPARATORS if caseload.scope is None else COMPARATORS[:1], value="clinician",
                                     description="Against:", layout=w.Layout(width="420px"))
        self.comparator.add_class("sw-comparator")
        self._all_dimension: str | None = None  # with "All dimensions": the dimension of the flagged cell
        self._flagged_cell: tuple | None = None
        self._defaulted = False
        self._set_groups()
        controls = w.HBox([self.dimension, self.group, self.metric, self.comparator], layout=w.Layout(flex_flow="row wrap"))
        super().__init__(caseload, [SummaryView(self), ForestView(self), FunnelView(self)],
                         tabs=["Overview", "Groups", "Clinicians (funnel)"], supervisee=supervisee, extra_controls=[controls])
        self.dimension.observe(self.guard(self._on_dimension), names="value")
        for ctrl in (self.group, self.metric, self.comparator):
            ctrl.observe(self.guard(lambda _ch: self.refresh(update_clients=False)), names="value")

    @property
    def group_dimension(self) -> str | None:
        """The dimension the group picker and the funnel use ("All dimensions": the flagged cell's)."""
        m = self._model
        if self.dimension.value != "all":
            return self.dimension.value
        return self._all_dimension or (m.dimensions[0] if m.dimensions else None)

    def _set_groups(self) -> None:
        m = self._model
        dim = self.group_dimension
        groups = sorted(m.measures[dim].dropna().astype(str).unique()) if dim else []
        # with "All dimensions" the group is named with its dimension ("disability: yes", not a bare "yes")
        prefix = f"{dim.replace('_', ' ')}: " if dim and self.dimension.value == "all" else ""
        self.group.options = [(prefix + value_label(g, self._settings), g) for g in groups]
        self.group.value = self._default_group(dim, groups)

    def _default_group(self, dim, groups):
        """The flagged cell's group (or with none flagged the largest unflagged gap's), else the largest group
        that is not declined / not recorded."""
        if not groups:
            return None
        if self._flagged_cell and self._flagged_cell[0] == dim and self._flagged_cell[1] in groups:
            return self._flagged_cell[1]
        counts = self._model.measures[dim].astype(str).value_counts()
        real = [g for g in counts.index if g in groups and g not in _NOT_A_GROUP]
        return real[0] if real else groups[0]

    def _flag_default(self, data: Slice) -> None:
        """Open on the supervisee's most urgent gap (clear, then possible) or, with none flagged, on the largest
        unflagged gap (:func:`closest_unflagged`), on first drawing only."""
        from supervision.figures.adaptation import VERDICT_STYLE

        gaps = self._model.gaps(data.selection.supervisee, data)
        g = gaps[~gaps["group"].astype(str).isin(_NOT_A_GROUP) & (gaps["comparator"] == self.comparator.value)]
        urgency = g["verdict"].astype(str).map({k: v[3] for k, v in VERDICT_STYLE.items()}).fillna(0)
        g = g.assign(_u=urgency).sort_values(["_u", "n_group"], ascending=False, kind="stable")
        top = g.iloc[0] if len(g) else None
        if top is not None and top["_u"] < 2:  # nothing flagged: the largest unflagged gap, not the biggest group
            top = closest_unflagged(gaps, self.comparator.value)
        if top is not None:
            self._flagged_cell = (top["dimension"], str(top["group"]), top["metric"])
            self._all_dimension = top["dimension"]
            if top["metric"] in {v for _, v in self.metric.options}:
                self.metric.value = top["metric"]
        self._set_groups()

    def _on_dimension(self, _change) -> None:
        self._set_groups()  # resets the group, which redraws through its own observer
        self.refresh(update_clients=False)

    def enrich(self, data: Slice) -> None:
        data.extras["adaptation"] = self._model
        if not self._defaulted:  # the first drawing, before the pickers are observed
            self._defaulted = True
            self._flag_default(data)


def adaptation_dashboard(caseload: Caseload | None = None, supervisee: str | None = None) -> w.Widget:
    """Build the adaptation-gaps dashboard for a loaded caseload (default: the demo clinic)."""
    if caseload is None:
        from supervision.io import load_caseload

        caseload = load_caseload()
    if not caseload.usable:
        return unusable_notice(caseload)
    return AdaptationDashboard(caseload, supervisee=supervisee).widget
