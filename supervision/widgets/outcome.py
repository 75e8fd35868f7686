"""The outcome dashboard: who is getting better, who is stuck, who is getting worse, early enough to act.

Views: ``sw-outcome-summary`` (categories and the open clients not on track or at risk, with the
reason), ``sw-outcome-jacobson`` (intake against latest score for the caseload),
``sw-outcome-client`` (one client's trajectory with the expected band and sudden gains) and
``sw-outcome-compare`` (the supervisee's categories against the service, and the
severity-adjusted caterpillar). The instrument picker (``sw-instrument``) lists the outcome
measures present in the export; each instrument's tables are computed once for the whole service.
"""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd

from supervision.caseload import Caseload
from supervision.figures import outcome as figs
from supervision.instruments import instruments
from supervision.metrics import outcome as metrics
from supervision.widgets.framework import Dashboard, FigureBox, Slice, View, unusable_notice

CATEGORY_ORDER = ["recovered", "improved", "unchanged", "deteriorated", "harmed"]
STATUS_WORDS = {"not_on_track": "not on track", "at_risk": "at risk", "on_track": "on track", "too_early": "too early to tell",
                "not_enough_reference_data": "not enough reference data", "not_measured": "not measured"}


class OutcomeModel:
    """Service-wide outcome tables for one instrument (computed once, then sliced)."""

    def __init__(self, caseload: Caseload, instrument: str):
        s, c, st = caseload.sessions, caseload.clients, caseload.settings
        self.instrument = instruments(st)[instrument]
        rules = caseload.rules  # the picker decides the instrument; every other option is the rules'
        self.clients = metrics.client_outcomes(s, instrument=instrument, clients=c, settings=st, rules=rules)
        self.track = metrics.track_status(s, clients=c, instrument=instrument, settings=st, per_session=True, open_only=False,
                                          rules=rules)
        self.status = self.track.sort_values("session_number").groupby("client_id", sort=False).tail(1)
        self.clinicians = metrics.clinician_outcomes(self.clients, rules=rules)
        self.effects = metrics.clinician_effects(self.clients, rules=rules)
        scores = metrics.session_scores(s, instrument=instrument, settings=st)
        rc = self.instrument.reliable_change
        self.gains = (metrics.sudden_gains(scores, sg_crit1_cutoff=rc, higher_is_better=self.instrument.higher_is_better,
                                           rules=rules)
                      if rc is not None and len(scores) else pd.DataFrame(columns=["client_id"]))


def _clients_in(frame: pd.DataFrame, data: Slice) -> pd.DataFrame:
    return frame[frame["client_id"].isin(data.clients["client_id"])]


class SummaryView(View):
    css_class = "sw-outcome-summary"

    def __init__(self):
        super().__init__()
        self.html = w.HTML()
        self.widget.children = (self.html,)

    def update(self, data: Slice) -> None:
        m: OutcomeModel = data.extras["outcome"]
        co = _clients_in(m.clients, data)
        measured = co[co["n_measured"] >= 2]
        cats = measured["category"].value_counts()
        cat_text = ", ".join(f"<b>{cats.get(c, 0)}</b> {c}" for c in CATEGORY_ORDER)
        st = _clients_in(m.status, data)
        st = st[st["open"].fillna(False).astype(bool)]
        counts = st["status"].value_counts()
        # clients without a band who are worse than at intake are listed too, not only counted
        unbanded_worse = (st["status"] == "not_enough_reference_data") & (st["improvement"] < 0)
        worry = st[st["status"].isin(["not_on_track", "at_risk"]) | unbanded_worse].sort_values(
            ["status", "client_id"], ascending=[False, True])
        rows = "".join(
            f"<tr><td>{html.escape(str(r.client_id))}</td><td>{STATUS_WORDS.get(r.status, r.status)}</td>"
            f"<td>{r.session_number}</td><td>{'' if pd.isna(r.intake_score) else f'{r.intake_score:.1f}'}</td>"
            f"<td>{'' if pd.isna(r.score) else f'{r.score:.1f}'}</td><td>{html.escape(str(r.reason))}</td></tr>"
            for r in worry.itertuples())
        direction = "higher" if m.instrument.higher_is_better else "lower"
        ended = co[co["ended_worse"].fillna(False).astype(bool)] if "ended_worse" in co.columns else co.iloc[:0]
        ended_rows = "".join(
            f"<tr><td>{html.escape(str(r.client_id))}</td><td>{r.latest_session}</td><td>{r.first_score:.1f}</td>"
            f"<td>{r.latest_score:.1f}</td><td>{'reliably worse' if r.reliable_deterioration is True else 'worse'}</td></tr>"
            for r in ended.sort_values("client_id").itertuples())
        ended_html = ("" if ended.empty else
                      f"<p><b>{len(ended)}</b> ended episodes finished worse than at intake:</p>"
                      "<table class='sw-outcome-ended-worse' style='font-size:13px' cellpadding='4'><thead><tr><th>client</th>"
                      "<th>last session</th><th>intake</th><th>last score</th><th>change</th></tr></thead><tbody>"
                      + ended_rows + "</tbody></table>")
        rc_conf = co["reliable_change_confidence"].dropna().unique() if "reliable_change_confidence" in co.columns else []
        rc_label = f" at {rc_conf[0]:.0%} confidence" if len(rc_conf) == 1 else ""
        self.html.value = (
            f"<h3>{html.escape(m.instrument.name)}: {len(co)} clients, {len(measured)} with at least two scores</h3>"
            f"<p>From first to latest score: {cat_text} (Jacobson &amp; Truax; reliable change "
            f"{m.instrument.reliable_change:g} points{rc_label}, cut-off {m.instrument.cutoff:g}; {direction} is better).</p>"
            f"<p>Open episodes: <b>{counts.get('not_on_track', 0)}</b> not on track, <b>{counts.get('at_risk', 0)}</b> at risk, "
            f"{counts.get('on_track', 0)} on track, {counts.get('too_early', 0)} too early to tell, "
            f"{counts.get('not_enough_reference_data', 0)} without enough reference data.</p>"
            + ("<p>No open client is off track.</p>" if worry.empty else
               "<table class='sw-outcome-worry' style='font-size:13px' cellpadding='4'><thead><tr><th>client</th><th>status</th>"
               "<th>session</th><th>intake</th><th>latest</th><th>why</th></tr></thead><tbody>" + rows + "</tbody></table>")
            + ended_html
            + "<p><i>What this cannot tell:</i> the expected band comes from this service's own closed episodes with a "
              "similar intake score; for long episodes it pools the later sessions of those episodes (the reference n "
              "is shown in the client's chart); with few reference episodes there is no band, and the view says so "
              "instead of guessing. A client who is not on track needs a conversation, not a conclusion.</p>")


class JacobsonView(View):
    css_class = "sw-outcome-jacobson"

    def __init__(self):
        super().__init__()
        self.chart = FigureBox("sw-chart-jacobson")
        self.widget.children = (self.chart.widget, w.HTML(
            "<p><i>How to read this:</i> each point is a client: intake score across, latest score up. Points beyond the "
            "reliable-change band moved more than measurement error explains; the cut-off lines separate the clinical "
            "from the non-clinical range.</p>"))

    def update(self, data: Slice) -> None:
        m: OutcomeModel = data.extras["outcome"]
        self.chart.show(figs.jacobson_plot(_clients_in(m.clients, data), instrument=m.instrument,
                                           title=f"{m.instrument.name}: intake and latest, {data.selection.supervisee}"))


class ClientView(View):
    css_class = "sw-outcome-client"

    def __init__(self):
        super().__init__()
        self.note = w.HTML()
        self.chart = FigureBox("sw-chart-outcome-client")
        self.widget.children = (self.note, self.chart.widget)

    def update(self, data: Slice) -> None:
        m: OutcomeModel = data.extras["outcome"]
        cid = data.selection.client
        if not cid:
            st = _clients_in(m.status, data)
            order = {"not_on_track": 0, "at_risk": 1}
            worry = st.assign(_o=st["status"].map(order).fillna(9)).sort_values(["_o", "client_id"])
            cid = worry["client_id"].iloc[0] if len(worry) else None
            self.note.value = (f"<p>Showing {html.escape(str(cid))} (the first client to look at). Pick a client in "
                               "<b>Client</b> to see another.</p>" if cid else "<p>No client with scores.</p>")
        else:
            self.note.value = f"<p>Client {html.escape(cid)}.</p>"
        if cid is None or not (m.track["client_id"] == cid).any():
            self.chart.clear()
            if cid:
                self.note.value = f"<p>Client {html.escape(cid)} has no {html.escape(m.instrument.name)} scores.</p>"
            return
        self.chart.show(figs.outcome_trajectory(m.track, client_id=cid, instrument=m.instrument, gains=m.gains))


class CompareView(View):
    css_class = "sw-outcome-compare"
    compares_with_service = True

    def self_review(self, data, dashboard) -> dict:
        spec = data.extras["outcome"].instrument
        inst = getattr(spec, "prefix", spec)
        return {"names": [f"{inst}_{r}" for r in ("reliably_improved", "recovered", "deteriorated", "harmed")]
                         + [f"{inst}_total"], "what": f"outcome ({getattr(spec, 'name', inst)})",
                "not_comparable": "The clinicians' adjusted effects (the caterpillar chart) compare named colleagues "
                                  "and are not published: no valid comparison for them."}

    def __init__(self):
        super().__init__()
        self.html = w.HTML()
        self.chart = FigureBox("sw-chart-caterpillar")
        self.widget.children = (self.html, self.chart.widget)

    def update(self, data: Slice) -> None:
        m: OutcomeModel = data.extras["outcome"]
        cn = m.clinicians.set_index("scope") if "scope" in m.clinicians.columns else m.clinicians
        me = data.selection.supervisee
        rate_cols = [c for c in cn.columns if c.endswith("_rate")]

        def cell(scope, c):
            if scope not in cn.index or pd.isna(cn.at[scope, c]):
                return "–"
            base = c.removesuffix("_rate")
            lo, hi = cn.at[scope, base + "_lower"], cn.at[scope, base + "_upper"]
            return f"{cn.at[scope, c]:.0%}" + (f" ({lo:.0%}–{hi:.0%})" if pd.notna(lo) else "")
        rows = "".join(f"<tr><td>{c.removesuffix('_rate').replace('_', ' ')}</td><td>{cell(me, c)}</td><td>{cell('service', c)}</td></tr>"
                       for c in rate_cols)
        n_me = int(cn.at[me, "n"]) if me in cn.index else 0
        self.html.value = (
            f"<h3>{html.escape(me)} compared with the service ({n_me} clients with scores)</h3>"
            "<table class='sw-outcome-compare-table' style='font-size:13px' cellpadding='4'><thead><tr><th></th>"
            f"<th>{html.escape(me)}</th><th>service</th></tr></thead><tbody>{rows}</tbody></table>"
            "<p><i>How to read this:</i> rates with 95 % intervals. The chart adjusts each clinician's change for their "
            "clients' intake severity and pulls small caseloads towards the service average (shrinkage); clinicians "
            "with fewer than 15 clinical-range cases get no estimate. The intervals allow for the uncertainty of how "
            "much clinicians differ at all.</p>"
            + ("<p><b>No clinician differs from the service beyond chance</b> on this measure (Cochran's Q test "
               f"p = {m.effects.attrs.get('heterogeneity_p', float('nan')):.2f}): read the chart as noise, not a ranking.</p>"
               if m.effects.attrs.get("no_difference") and pd.notna(m.effects.attrs.get("heterogeneity_p")) else ""))
        self.chart.show(figs.caterpillar_plot(m.effects))


class OutcomeDashboard(Dashboard):
    css_class = "sw-outcome"

    def __init__(self, caseload: Caseload, supervisee: str | None = None, instrument: str | None = None):
        present = caseload.measures_present()
        outcome = present[present["kind"] == "outcome"]["instrument"].tolist()
        if not outcome:
            raise ValueError("This export has no outcome measure (ORS, PHQ-9, GAD-7, CORE-10).")
        names = {k: v.name for k, v in instruments(caseload.settings).items()}
        self.instrument = w.Dropdown(options=[(names[i], i) for i in outcome],
                                     value=instrument if instrument in outcome else outcome[0], description="Measure:")
        self.instrument.add_class("sw-instrument")
        self._caseload = caseload
        self._cache: dict[str, OutcomeModel] = {}
        super().__init__(caseload, [SummaryView(), JacobsonView(), ClientView(), CompareView()],
                         tabs=["Overview", "Caseload", "Client", "Compared with the service"], supervisee=supervisee,
                         extra_controls=[self.instrument])
        self.instrument.observe(self.guard(lambda _ch: self.refresh(update_clients=False)), names="value")

    def model(self) -> OutcomeModel:
        key = self.instrument.value
        if key not in self._cache:
            self._cache[key] = OutcomeModel(self._caseload, key)
        return self._cache[key]

    def enrich(self, data: Slice) -> None:
        data.extras["outcome"] = self.model()


def outcome_dashboard(caseload: Caseload | None = None, supervisee: str | None = None, instrument: str | None = None) -> w.Widget:
    """Build the outcome dashboard for a loaded caseload (default: the demo clinic)."""
    if caseload is None:
        from supervision.io import load_caseload

        caseload = load_caseload()
    if not caseload.usable:
        return unusable_notice(caseload)
    try:
        return OutcomeDashboard(caseload, supervisee=supervisee, instrument=instrument).widget
    except ValueError as exc:
        return w.HTML(f"<p>{html.escape(str(exc))}</p>")
