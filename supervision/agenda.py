"""The supervision agenda: every flag from the areas becomes an explained, ranked agenda item.

Each item says **what** was flagged (``flag``, ``area``), **how serious** it is (``severity``),
the **evidence** (the numbers and dates behind it), **since when**, and a **suggested
supervision question**. Items are ranked by a documented, configurable rule:

    score = weight[flag] + recency_bonus

``weight`` comes from the ``[agenda.weights]`` settings (defaults below: unrepaired ruptures
and lost contact first, ceiling scores last); ``recency_bonus`` is up to ``recency_points``
points, falling linearly to 0 for flags older than ``recency_days`` days before the reference
date (the last session in the export), so that of two equally serious items the fresher one
comes first. Ties are broken by client id. Severity bands follow the score: ``high`` at or above
``high_from``, ``medium`` at or above ``medium_from``, else ``low``.

Only current clients get items: open episodes, and episodes that ended within ``recency_days``
(see :func:`current_only`).

The agenda works with whatever a service records: each area's flags are produced only when that
area's data is present (no SRS: no alliance items; no focus codes: no focus items), never an
error. Flag providers are plain functions from precomputed tables to item rows, so a new area
adds one function to :data:`PROVIDERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from supervision.caseload import Caseload

ITEM_COLUMNS = ["rank", "clinician_id", "client_id", "area", "flag", "severity", "score", "since", "evidence", "question"]

DEFAULT_WEIGHTS = {
    "unrepaired_rupture": 90,
    "lost_contact": 85,
    "reliable_deterioration": 85,
    "not_on_track": 80,
    "open_rupture": 70,
    "low_alliance_falling": 70,
    "repeated_no_shows": 60,
    "low_alliance": 55,
    "neglected_goal": 50,
    "check_in_dominance": 45,
    "adaptation_gap": 55,
    "low_item": 40,
    "ceiling_only": 20,
}
QUESTIONS = {
    "unrepaired_rupture": "The alliance dipped sharply and has not come back. What happened in that session, and has it been talked about with the client?",
    "open_rupture": "The alliance dipped sharply recently. How could the next session invite the client to say what went wrong?",
    "low_alliance_falling": "The client's ratings of the session are low and falling. What might the client not be getting from the work?",
    "low_alliance": "The client rates the session at or below the cut-off. What does the client want more or less of?",
    "low_item": "The goals/topics or approach item is low even if the total is not. Do you and the client agree on what to work on, and how?",
    "ceiling_only": "Every rating is the maximum. How could you make it safe for the client to give critical feedback?",
    "neglected_goal": "An agreed goal has not been worked on for several sessions. Is it still the client's goal, and what is in the way?",
    "check_in_dominance": "Most sessions are spent on the week's events. How could the session get to the client's goals sooner?",
    "adaptation_gap": "Clients of this group fare worse with you than your other clients, beyond chance. What might they need that is different?",
    "reliable_deterioration": "The client is reliably worse than at intake. What has changed, is there risk, and does the plan need to change?",
    "not_on_track": "The client is improving less than most similar clients in this service by now. What might need to change in the work?",
    "lost_contact": "The client has not attended for weeks and the episode is still open. Reach out, or close the episode with a planned ending?",
    "repeated_no_shows": "The client missed several recent sessions. What is getting in the way of coming, and is it about the therapy?",
}


@dataclass(frozen=True)
class AgendaOptions:
    weights: dict
    recency_days: int = 90
    recency_points: float = 10.0
    high_from: float = 80.0
    medium_from: float = 50.0
    no_show_run: int = 2
    falling_trend: float = -0.5
    check_in_share: float = 0.5
    check_in_min_sessions: int = 4

    @classmethod
    def from_settings(cls, settings) -> AgendaOptions:
        section = settings.get("agenda", {}) if settings is not None else {}
        weights = {**DEFAULT_WEIGHTS, **(section.get("weights", {}) if isinstance(section, dict) else {})}
        kw = {k: section[k] for k in ("recency_days", "recency_points", "high_from", "medium_from", "no_show_run",
                                      "falling_trend", "check_in_share", "check_in_min_sessions")
              if isinstance(section, dict) and k in section}
        return cls(weights=weights, **kw)


def _items(frame: pd.DataFrame, area: str, flag: str, since, evidence) -> pd.DataFrame:
    return pd.DataFrame({
        "clinician_id": frame["clinician_id"].to_numpy(), "client_id": frame["client_id"].to_numpy(),
        "area": area, "flag": flag, "since": pd.to_datetime(pd.Series(since).to_numpy()),
        "evidence": pd.Series(evidence).to_numpy(), "question": QUESTIONS.get(flag, ""),
    })


def _by_client(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` indexed by ``client_id`` (for ``Series.map``: a hashed lookup, not a dict built row by row)."""
    return pd.Series(frame[column].to_numpy(), index=pd.Index(frame["client_id"]), name=column).loc[
        lambda x: ~x.index.duplicated()]


def _per_value(s: pd.Series, text) -> pd.Series:
    """``text(v)`` for each distinct value of ``s`` (a few hundred scores or dates), "–" where missing."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    words = np.array([text(v) for v in uniques] + ["–"], dtype=object)  # code -1 (missing) takes the dash
    return pd.Series(words[codes], index=s.index, dtype="string")


def _num(s: pd.Series, pattern: str = "{:.1f}") -> pd.Series:
    return _per_value(pd.to_numeric(s), pattern.format)


def _date(s: pd.Series) -> pd.Series:
    return _per_value(pd.to_datetime(s), lambda v: f"{v:%d %b %Y}")


def alliance_items(t: dict, opts: AgendaOptions) -> list[pd.DataFrame]:
    """Unrepaired and open ruptures, low (and falling) latest alliance, low items, ceiling-only series."""
    rp, ca = t.get("alliance_ruptures"), t.get("alliance_clients")
    out = []
    if rp is not None and len(rp):
        for status, flag in (("unrepaired", "unrepaired_rupture"), ("open", "open_rupture")):
            part = rp[rp["status"] == status]
            ev = ("SRS fell from " + _num(part["pre_score"]) + " (session " + part["pre_session"].astype("string") + ") to "
                  + _num(part["rupture_score"]) + " (session " + part["rupture_session"].astype("string") + ", "
                  + _date(part["rupture_date"]) + "): " + _num(part["depth_sd"]) + " of the client's SDs; "
                  + ("no return to the earlier level" if status == "unrepaired" else "repair still possible"))
            out.append(_items(part, "alliance", flag, part["rupture_date"], ev))
    if ca is not None and len(ca):
        low = ca[ca["latest_low"].fillna(False).astype(bool)]
        falling = low["trend"].fillna(0) <= opts.falling_trend
        for sub, flag in ((low[falling], "low_alliance_falling"), (low[~falling], "low_alliance")):
            ev = ("latest SRS " + _num(sub["latest_srs"]) + " on " + _date(sub["latest_date"]) + " (session "
                  + sub["latest_session"].astype("string") + "); first " + _num(sub["first_srs"]) + ", trend "
                  + _num(sub["trend"], "{:+.2f}") + " per session; " + _num(sub["share_low"] * 100, "{:.0f}") + " % of sessions low")
            out.append(_items(sub, "alliance", flag, sub["latest_date"], ev))
        li = ca[ca["latest_low_item"].fillna(False).astype(bool) & ~ca["latest_low"].fillna(False).astype(bool)]
        out.append(_items(li, "alliance", "low_item", li["latest_date"],
                          "latest goals/topics or approach item below the threshold while the total is "
                          + _num(li["latest_srs"]) + " (" + _date(li["latest_date"]) + ")"))
        ceil = ca[ca["ceiling_only"].fillna(False).astype(bool) & (ca["n_measured"] >= 3)]
        out.append(_items(ceil, "alliance", "ceiling_only", ceil["latest_date"],
                          "the maximum SRS (40) at all " + ceil["n_measured"].astype("string") + " rated sessions"))
    return out


def engagement_items(t: dict, opts: AgendaOptions) -> list[pd.DataFrame]:
    """Lost contact and repeated recent no-shows (open episodes only)."""
    ep, sessions = t.get("engagement_clients"), t.get("sessions")
    out = []
    if ep is None or not len(ep):
        return out
    lost = ep[ep["lost_contact"]]
    out.append(_items(lost, "engagement", "lost_contact", lost["last_attended"].fillna(lost["start_date"]),
                      "open episode; last attended " + _date(lost["last_attended"]) + " ("
                      + lost["days_since_contact"].astype("Int64").astype("string") + " days before the export's last session); "
                      + lost["n_attended"].astype("string") + np.where(lost["n_attended"] == 1, " session", " sessions") + " attended"))
    if sessions is not None and len(sessions):
        open_ids = ep.loc[~ep["ended"] & ~ep["lost_contact"], "client_id"]
        s = sessions[sessions["client_id"].isin(open_ids)].sort_values(["client_id", "session_date"])
        # length of the run of no-shows at the end of each open client's schedule
        tail_ok = s["attendance"].ne("no_show")
        last_ok = s["session_date"].where(tail_ok).groupby(s["client_id"]).max()
        after = s[s["session_date"] > s["client_id"].map(last_ok).fillna(pd.Timestamp.min)]
        runs = after[after["attendance"] == "no_show"].groupby("client_id").agg(n=("session_date", "size"), since=("session_date", "min"))
        runs = runs[runs["n"] >= opts.no_show_run].reset_index()
        runs["clinician_id"] = runs["client_id"].map(_by_client(ep, "clinician_id"))
        out.append(_items(runs, "engagement", "repeated_no_shows", runs["since"],
                          runs["n"].astype("string") + " missed sessions in a row since " + _date(runs["since"])))
    return out


def outcome_items(t: dict, opts: AgendaOptions) -> list[pd.DataFrame]:
    """Open clients not on track (below the service's failure band) or reliably deteriorated, per measure."""
    tr = t.get("outcome_track")
    if tr is None or not len(tr):
        return []
    tr = tr[tr["open"].fillna(False).astype(bool)]
    out = []
    det = tr[tr["reliable_deterioration"].fillna(False).astype(bool)]
    nat = tr[(tr["status"] == "not_on_track") & ~tr["reliable_deterioration"].fillna(False).astype(bool)]
    for part, flag in ((det, "reliable_deterioration"), (nat, "not_on_track")):
        ev = (part["instrument"].str.upper() + " " + _num(part["intake_score"]) + " at intake, " + _num(part["score"])
              + " at session " + part["session_number"].astype("string") + ": " + part["reason"].astype("string"))
        ep = t.get("engagement_clients")
        since = (part["client_id"].map(_by_client(ep, "last_attended")) if ep is not None
                 else pd.Series(pd.NaT, index=part.index))
        out.append(_items(part, "outcome", flag, since, ev))
    return out


def focus_items(t: dict, opts: AgendaOptions) -> list[pd.DataFrame]:
    """Neglected agreed goals, and clients whose sessions are mostly week reviews."""
    fc = t.get("focus_clients")
    if fc is None or not len(fc):
        return []
    out = []
    neg = fc[fc["n_neglected_goals"].fillna(0) > 0]
    out.append(_items(neg, "focus", "neglected_goal", neg["last_session_date"],
                      "agreed goal(s) " + neg["neglected_goals"].astype("string").str.replace(";", ", ")
                      + " not worked on in the last sessions; " + _num(neg["goal_coverage"] * 100, "{:.0f}")
                      + " % of sessions on an agreed goal"))
    heavy = fc[(fc["check_in_share"].fillna(0) >= opts.check_in_share) & (fc["n_focus_recorded"] >= opts.check_in_min_sessions)]
    out.append(_items(heavy, "focus", "check_in_dominance", heavy["last_session_date"],
                      _num(heavy["check_in_share"] * 100, "{:.0f}") + " % of " + heavy["n_focus_recorded"].astype("string")
                      + " sessions mainly a week review / check-in; " + _num(heavy["goal_coverage"] * 100, "{:.0f}")
                      + " % on an agreed goal"))
    return out


def adaptation_items(t: dict, opts: AgendaOptions) -> list[pd.DataFrame]:
    """A clear adaptation gap: one item per clinician, dimension and group (not per client)."""
    g = t.get("adaptation_gaps")
    if g is None or not len(g):
        return []
    clear = g[(g["verdict"] == "clear gap")]
    if clear.empty:
        return []
    pct = ~clear["metric"].isin(["first_srs", "mean_srs"])
    val = lambda v: _num(v.where(~pct, v * 100), "{:.0f}").where(pct, _num(v))  # noqa: E731
    ev = (clear["dimension"].str.replace("_", " ") + " = " + clear["group"].astype("string") + ": "
          + clear["metric"].str.replace("_", " ") + " " + val(clear["value_group"]) + np.where(pct, " %", "")
          + " (n=" + clear["n_group"].astype("string") + ") against " + val(clear["value_comparator"]) + np.where(pct, " %", "")
          + " (n=" + clear["n_comparator"].astype("string") + ", " + clear["comparator"].astype("string") + " comparator)")
    items = _items(clear.assign(client_id="(caseload)"), "adaptation", "adaptation_gap", pd.Series(pd.NaT, index=clear.index), ev)
    return [items.drop_duplicates(["clinician_id", "evidence"])]


PROVIDERS: list[Callable[[dict, AgendaOptions], list[pd.DataFrame]]] = [alliance_items, engagement_items, outcome_items,
                                                                         focus_items, adaptation_items]


def rank_items(items: pd.DataFrame, opts: AgendaOptions, reference_date: pd.Timestamp) -> pd.DataFrame:
    """Score, band and rank items by the documented rule (see the module docstring)."""
    if items.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ITEM_COLUMNS})
    age = (reference_date - items["since"]).dt.days.clip(lower=0).fillna(opts.recency_days)
    bonus = opts.recency_points * np.clip(1 - age / max(opts.recency_days, 1), 0, 1)
    items = items.assign(score=items["flag"].map(opts.weights).fillna(0).astype(float) + bonus)
    items["severity"] = np.select([items["score"] >= opts.high_from, items["score"] >= opts.medium_from], ["high", "medium"], "low")
    items = items.sort_values(["score", "client_id", "flag"], ascending=[False, True, True], kind="stable").reset_index(drop=True)
    items["rank"] = np.arange(1, len(items) + 1)
    items["score"] = items["score"].round(1)
    return items[ITEM_COLUMNS]


def build_agenda(caseload: Caseload, tables: dict | None = None, *, clinician_id: str | None = None,
                 options: AgendaOptions | None = None) -> pd.DataFrame:
    """The ranked agenda for one clinician (or the whole service when ``clinician_id`` is None).

    Parameters
    ----------
    caseload : Caseload
    tables : dict, optional
        Precomputed metric tables (:func:`supervision.metrics.tables.metric_tables`); computed
        when not given.
    clinician_id : str, optional
        Keep only this clinician's items.
    options : AgendaOptions, optional
        Default: from the caseload's settings (``[agenda]``).

    Returns
    -------
    DataFrame
        ``rank, clinician_id, client_id, area, flag, severity, score, since, evidence, question``,
        one row per item, best first.
    """
    from supervision.metrics.tables import metric_tables

    tables = dict(tables if tables is not None else metric_tables(caseload))
    tables.setdefault("sessions", caseload.sessions)
    opts = options or AgendaOptions.from_settings(caseload.settings)
    parts = [p for provider in PROVIDERS for p in provider(tables, opts) if len(p)]
    items = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ITEM_COLUMNS)
    if clinician_id is not None:
        items = items[items["clinician_id"] == clinician_id]
    ref = caseload.sessions["session_date"].max() if len(caseload.sessions) else pd.Timestamp.today().normalize()
    return rank_items(current_only(items, caseload.clients, ref, opts), opts, ref)


def current_only(items: pd.DataFrame, clients: pd.DataFrame, reference_date: pd.Timestamp, opts: AgendaOptions) -> pd.DataFrame:
    """Keep items of open episodes and of episodes that ended within ``recency_days``.

    Supervision looks at the clients a therapist is seeing now; an episode that ended long ago
    is history (it still counts in the per-clinician rates), not an agenda item.
    """
    if items.empty or "end_date" not in clients.columns:
        return items
    end = items["client_id"].map(_by_client(clients, "end_date"))
    caseload_wide = items["client_id"].eq("(caseload)")  # adaptation gaps are about the caseload, not one episode
    recent = caseload_wide | end.isna() | (end >= reference_date - pd.Timedelta(days=opts.recency_days))
    return items[recent.to_numpy()]
