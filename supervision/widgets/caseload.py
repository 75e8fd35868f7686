"""The Caseload page: one row per client with a traffic-light status, sorted by concern.

Status (``status`` column of :func:`client_overview`), from the service tables:

- ``risk``: the client has a risk-item answer above 0 on the agenda (never capped);
- for an open episode, the latest expected-treatment-response status on the outcome measure of
  the settings (``[outcome] instrument``): ``not_on_track``, ``at_risk``, ``on_track``,
  ``not_measured``, ``too_early`` or ``no_reference`` (too few similar clients for a band);
- ``lost_contact`` for an open episode with no attended session for ``[engagement]
  lost_contact_days`` (the engagement tables' ``lost_contact``, docs/methods.md §2.7), unless its
  outcome status is of more concern (not on track, at risk): "too early" or "on track" would be untrue
  of a client who has stopped coming;
- ``ended`` for an ended episode.

CSS classes: ``sw-caseload-page`` (dashboard), ``sw-caseload-completion`` (measurement completion),
``sw-caseload-sort`` (sort picker), ``sw-caseload-open`` (open a client), ``sw-caseload-rows``
(the table, one ``tr.sw-row`` per client with ``data-client``).
"""

from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import pandas as pd

from supervision.caseload import Caseload
from supervision.widgets.framework import Dashboard, Slice, View, unusable_notice

STATUS = {  # key: (label, colour, concern rank)
    "risk": ("risk", "#B00020", 0),
    "not_on_track": ("not on track", "#D55E00", 1),
    "at_risk": ("at risk", "#E69F00", 2),
    "lost_contact": ("lost contact", "#CC79A7", 3),
    "on_track": ("on track", "#009E73", 4),
    "not_measured": ("not measured", "#8C8C8C", 5),
    "too_early": ("too early", "#56B4E9", 6),
    "no_reference": ("no expected band", "#BBBBBB", 7),
    "ended": ("ended", "#666666", 8),
}
#: What each status means, for the page's legend (docs/methods.md §2.4, §2.7).
STATUS_MEANING = {
    "risk": "a risk item answered above 0 (never capped)",
    "not_on_track": "reliably worse since intake, or improving less than {fail:g} % of similar clients do",
    "at_risk": "improving less than {risk:g} % of similar clients do",
    "lost_contact": "open episode with no attended session for {lost} days or more: too long for its outcome "
                    "status to be current (a client to contact, or an episode to close)",
    "on_track": "improving as similar clients do",
    "not_measured": "open episode without a score on the outcome measure",
    "too_early": "open episode with only the intake measured so far",
    "no_reference": "too few similar clients for an expected band",
    "ended": "the episode has an end date",
}
_TRACK = {"not_enough_reference_data": "no_reference"}

SORTS = [("Most concern first", "concern"), ("Longest since seen first", "last_seen"),
         ("Most sessions first", "sessions"), ("Least improvement first", "change"),
         ("Lowest alliance first", "alliance"), ("Client id", "client_id")]


def primary_instrument(caseload: Caseload) -> str:
    """The outcome measure of the settings when present, else the first outcome measure present."""
    present = caseload.measures_present()
    outcome = present.loc[present["kind"] == "outcome", "instrument"].tolist()
    want = caseload.rules.outcome.instrument
    return want if want in outcome else (outcome[0] if outcome else want)


def client_overview(caseload: Caseload, tables: dict, agenda: pd.DataFrame, clients: pd.DataFrame,
                    instrument: str | None = None) -> pd.DataFrame:
    """One row per client of ``clients`` (a supervisee's), sorted by concern.

    Returns
    -------
    DataFrame
        ``client_id, open, status, status_label, colour, concern, last_seen, sessions, scheduled,
        outcome_latest, outcome_change, improvement, alliance_latest, flags, n_flags``. ``sessions``
        counts attended sessions; ``outcome_latest`` is the last score on ``instrument``
        (:func:`supervision.metrics.outcome.session_scores`), ``outcome_change`` latest minus first
        (two scores or more; ``improvement`` the same signed so that positive is better); ``alliance_latest`` the last SRS
        total; ``flags`` the agenda's flags for the client (plain words, most important first).
    """
    from supervision.agenda import FLAGS

    instrument = instrument or primary_instrument(caseload)
    ids = clients["client_id"].astype(str).tolist()
    out = pd.DataFrame({"client_id": ids})
    ep = tables["engagement_clients"].set_index("client_id")
    out["open"] = ~ep["ended"].reindex(ids).fillna(False).astype(bool).to_numpy()
    out["last_seen"] = ep["last_attended"].reindex(ids).to_numpy()
    out["sessions"] = ep["n_attended"].reindex(ids).fillna(0).astype(int).to_numpy()
    out["scheduled"] = ep["n_scheduled"].reindex(ids).fillna(0).astype(int).to_numpy()
    from supervision.instruments import instruments as specs
    from supervision.metrics.outcome import session_scores

    inst = specs(caseload.settings).get(instrument)
    s = caseload.sessions[caseload.sessions["client_id"].isin(ids)]
    if inst is not None and any(c in s.columns for c in inst.columns):
        sc = session_scores(s, instrument=instrument, settings=caseload.settings).dropna(subset=["score"])
        g = sc.groupby("client_id", sort=False)["score"]
        first, latest, n = g.first(), g.last(), g.size()
        out["outcome_latest"] = latest.reindex(ids).to_numpy()
        change = (latest - first).where(n >= 2)
        out["outcome_change"] = change.reindex(ids).to_numpy()
        out["improvement"] = out["outcome_change"] * (1 if inst.higher_is_better else -1)
    else:
        out["outcome_latest"] = out["outcome_change"] = out["improvement"] = np.nan
    ca = tables["alliance_clients"].set_index("client_id")
    out["alliance_latest"] = ca["latest_srs"].reindex(ids).to_numpy()
    tr = tables.get("outcome_track")
    track = pd.Series("not_measured", index=ids, dtype=object)
    if tr is not None and len(tr):
        last = tr[tr["instrument"] == instrument].drop_duplicates("client_id", keep="last").set_index("client_id")["status"]
        track.update(last.reindex(ids).dropna())
    status = track.map(lambda s: _TRACK.get(s, s))
    # an open episode gone quiet: "lost contact" unless the outcome status is of more concern
    lost = ep["lost_contact"].reindex(ids).fillna(False).astype(bool).to_numpy()
    rank = status.map(lambda s: STATUS[s][2])
    status = status.where(~(lost & (rank > STATUS["lost_contact"][2]).to_numpy()), "lost_contact")
    status = status.where(out["open"].to_numpy(), "ended")
    ag = agenda[agenda["client_id"].isin(ids)]
    risk = set(ag.loc[ag["section"] == "risk", "client_id"])
    status = status.where(~status.index.isin(risk), "risk")
    out["status"] = status.to_numpy()
    out["status_label"] = out["status"].map(lambda s: STATUS[s][0])
    out["colour"] = out["status"].map(lambda s: STATUS[s][1])
    out["concern"] = out["status"].map(lambda s: STATUS[s][2])
    flags = {}
    for r in ag.itertuples():
        names = [FLAGS.get(f.strip(), ("", "", f.strip().replace("_", " ")))[2] for f in str(r.flags).split(",") if f.strip()]
        flags.setdefault(r.client_id, []).extend(n for n in names if n not in flags.get(r.client_id, []))
    out["flags"] = [", ".join(flags.get(c, [])) for c in ids]
    out["n_flags"] = [len(flags.get(c, [])) for c in ids]
    # The agenda's place of each client (its first item): "Most concern first" follows the agenda.
    placed = ag.sort_values("rank").drop_duplicates("client_id")
    out["agenda_rank"] = placed.set_index("client_id")["rank"].reindex(ids).to_numpy(dtype=float)
    out["agenda_today"] = np.isin(ids, placed.loc[placed["section"].isin(["risk", "today"]), "client_id"])
    return sort_overview(out, "concern")


def sort_overview(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Sort the overview.

    ``concern`` follows the supervision agenda, so the Caseload page, the Client picker and the
    agenda agree on who comes first: clients with a risk answer; then today's clients in the
    agenda's order; then anyone else not on track or at risk; then the agenda's further items in
    its order; then the rest by status (lost contact, on track, not measured, too early, ...),
    most flags and most recently seen first.
    """
    f = frame.copy()
    if by == "concern":
        today = f["agenda_today"] if "agenda_today" in f else pd.Series(False, index=f.index)
        rank = f["agenda_rank"] if "agenda_rank" in f else pd.Series(np.nan, index=f.index)
        group = np.select([f["status"].eq("risk"), today, f["concern"] <= 2, rank.notna()], [0, 1, 2, 3], 4)
        f = f.assign(_a=group, _r=rank.where(np.isin(group, [1, 3])), _c=f["concern"], _b=-f["n_flags"],
                     _d=f["last_seen"])
        f = f.sort_values(["_a", "_r", "_c", "_b", "_d", "client_id"], ascending=[True, True, True, True, False, True],
                          na_position="last")
    elif by == "last_seen":
        f = f.sort_values(["last_seen", "client_id"], na_position="first")
    elif by == "sessions":
        f = f.sort_values(["sessions", "client_id"], ascending=[False, True])
    elif by == "change":
        f = f.sort_values(["improvement", "client_id"], na_position="last")
    elif by == "alliance":
        f = f.sort_values(["alliance_latest", "client_id"], na_position="last")
    else:
        f = f.sort_values("client_id")
    return f.drop(columns=[c for c in f.columns if c.startswith("_")]).reset_index(drop=True)


def measurement_completion(sessions: pd.DataFrame, instrument: str, settings=None) -> dict:
    """Share of attended sessions with the outcome measure and with the SRS scored.

    A session counts as measured when :func:`supervision.metrics.outcome.session_scores` gives it a
    score (the total, or a total scored from the items). Returns ``{"attended", "outcome",
    "outcome_share", "srs", "srs_share"}`` (shares NaN with no attended session).
    """
    from supervision.instruments import instruments as specs
    from supervision.metrics.outcome import session_scores

    n = int((sessions["attendance"] == "attended").sum())
    known = specs(settings)

    def has(prefix):
        inst = known.get(prefix)
        if inst is None or not any(c in sessions.columns for c in inst.columns) or not n:
            return 0
        return int(session_scores(sessions, instrument=prefix, settings=settings)["score"].notna().sum())

    o, s = has(instrument), has("srs")
    return {"attended": n, "outcome": o, "outcome_share": o / n if n else np.nan, "srs": s,
            "srs_share": s / n if n else np.nan}


def status_legend(counts: pd.Series, rules) -> str:
    """The page's legend: each status present with its colour, count and meaning (from the settings)."""
    words = {"fail": 100 - rules.outcome.failure_percentile, "risk": 100 - rules.outcome.risk_percentile,
             "lost": rules.engagement.lost_contact_days}
    items = "".join(
        f"<li><span class='sw-dot' style='background:{c}'></span><b>{html.escape(lab)}</b> "
        f"({int(counts.get(k, 0))}): {html.escape(STATUS_MEANING[k].format(**words))}</li>"
        for k, (lab, c, _r) in STATUS.items() if counts.get(k, 0))
    return (f"<details class='sw-caseload-legend' style='font-size:13px'><summary>Status: " + " &nbsp; ".join(
        f"<span class='sw-dot' style='background:{c}'></span>{lab} <b>{int(counts.get(k, 0))}</b>"
        for k, (lab, c, _r) in STATUS.items() if counts.get(k, 0))
        + " <i>(what they mean)</i></summary><ul style='list-style:none;padding-left:8px'>" + items + "</ul>"
        "<p>Most concern first follows the agenda: risk first, then today's clients in the agenda's order, anyone "
        "else not on track or at risk, the agenda's further items, then the rest by status. "
        "Definitions: docs/methods.md §2.4 (outcome status) and §2.7 (lost contact).</p></details>")


def _num(v, fmt="{:.1f}", signed=False) -> str:
    if v is None or pd.isna(v):
        return "–"
    return (("+" if signed and v > 0 else "") + fmt.format(v)).replace("-", "−")


def _date(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{pd.Timestamp(v):%d %b %Y}"


TABLE_STYLE = ("<style>.sw-caseload-rows td,.sw-caseload-rows th{padding:3px 8px;border-bottom:1px solid #eee}"
               ".sw-caseload-rows th{text-align:left;background:#f5f5f5}.sw-caseload-rows td.n,.sw-caseload-rows th.n"
               "{text-align:right;font-variant-numeric:tabular-nums}.sw-dot{display:inline-block;width:11px;height:11px;"
               "border-radius:50%;margin-right:6px;vertical-align:-1px}</style>")


def overview_html(ov: pd.DataFrame, instrument_name: str) -> str:
    head = ("<tr><th>client</th><th>status</th><th class='n'>last seen</th><th class='n'>sessions</th>"
            f"<th class='n'>{html.escape(instrument_name)} latest</th><th class='n'>change</th>"
            "<th class='n'>SRS latest</th><th>open flags</th></tr>")
    rows = []
    for r in ov.itertuples():
        rows.append(
            f"<tr class='sw-row' data-client='{html.escape(r.client_id)}' data-status='{r.status}'>"
            f"<td>{html.escape(r.client_id)}</td>"
            f"<td><span class='sw-dot' style='background:{r.colour}'></span>{html.escape(r.status_label)}</td>"
            f"<td class='n'>{_date(r.last_seen)}</td><td class='n'>{r.sessions}</td>"
            f"<td class='n'>{_num(r.outcome_latest)}</td><td class='n'>{_num(r.outcome_change, signed=True)}</td>"
            f"<td class='n'>{_num(r.alliance_latest)}</td><td>{html.escape(r.flags) or '–'}</td></tr>")
    return (TABLE_STYLE + "<table class='sw-caseload-rows' style='border-collapse:collapse;font-size:13px'>"
            f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")


class OverviewView(View):
    css_class = "sw-caseload-overview"

    def __init__(self, dash: "CaseloadDashboard"):
        super().__init__()
        self.dash = dash
        self.completion = w.HTML()
        self.completion.add_class("sw-caseload-completion")
        self.legend = w.HTML()
        self.table = w.HTML()
        self.table.add_class("sw-caseload-table-box")
        self.widget.children = (self.completion, w.HBox([dash.sort, dash.open]), self.legend, self.table)
        self.overview = pd.DataFrame()

    def update(self, data: Slice) -> None:
        d = self.dash
        ov = client_overview(d._caseload, d.shared.tables, d.shared.agenda, data.clients, d.instrument)
        self.overview = sort_overview(ov, d.sort.value)
        comp = measurement_completion(data.sessions, d.instrument, d._caseload.settings)
        pct = lambda v: "–" if pd.isna(v) else f"{v:.0%}"  # noqa: E731
        counts = ov["status"].value_counts()
        self.completion.value = (
            f"<h3>Caseload of {html.escape(str(data.selection.supervisee))}: {len(ov)} clients</h3>"
            f"<p><b>Measurement completion</b>: {d.instrument_name} at <b>{pct(comp['outcome_share'])}</b> of attended "
            f"sessions ({comp['outcome']} of {comp['attended']}), SRS at <b>{pct(comp['srs_share'])}</b> ({comp['srs']}). "
            "Without a score there is no way to see who is not on track.</p>")
        self.legend.value = status_legend(counts, d._caseload.rules) + TABLE_STYLE
        self.table.value = overview_html(self.overview, d.instrument_name)
        with d.open.hold_trait_notifications():
            d.open.options = [("Open a client…", "")] + [
                (f"{r.client_id} · {r.status_label}", r.client_id) for r in ov.itertuples()]
            d.open.value = ""


class CaseloadDashboard(Dashboard):
    """Pickers (supervisee, period, episodes), a sort order and the client table."""

    css_class = "sw-caseload-page"

    def __init__(self, caseload: Caseload, supervisee: str | None = None, shared=None, open_client=None):
        from supervision.instruments import instruments
        from supervision.widgets.shared import Shared

        self._caseload = caseload
        self.shared = shared or Shared(caseload)
        self.instrument = primary_instrument(caseload)
        inst = instruments(caseload.settings).get(self.instrument)
        self.instrument_name = inst.name if inst is not None else self.instrument
        self.sort = w.Dropdown(options=SORTS, value="concern", description="Sort:", layout=w.Layout(width="330px"))
        self.sort.add_class("sw-caseload-sort")
        self.open = w.Dropdown(options=[("Open a client…", "")], value="", description="Client:",
                               layout=w.Layout(width="330px"))
        self.open.add_class("sw-caseload-open")
        self.view = OverviewView(self)
        super().__init__(caseload, [self.view], supervisee=supervisee)
        self.client.layout.display = "none"  # the table is the client list; "Client:" below opens one
        self._open_client = open_client
        if open_client is None:
            self.open.layout.display = "none"
        self.sort.observe(self.guard(self._resort), names="value")
        self.open.observe(self.guard(self._on_open), names="value")

    def _resort(self, _change) -> None:
        self.view.overview = sort_overview(self.view.overview, self.sort.value)
        self.view.table.value = overview_html(self.view.overview, self.instrument_name)

    def _on_open(self, change) -> None:
        if change["new"] and self._open_client is not None:
            self._open_client(change["new"])


def caseload_page(caseload: Caseload | None = None, supervisee: str | None = None) -> w.Widget:
    """Build the Caseload page for a loaded caseload (default: the demo clinic)."""
    if caseload is None:
        from supervision.io import load_caseload

        caseload = load_caseload()
    if not caseload.usable:
        return unusable_notice(caseload)
    return CaseloadDashboard(caseload, supervisee=supervisee).widget
