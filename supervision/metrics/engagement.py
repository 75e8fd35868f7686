"""Engagement: how many sessions clients come to, who ends after one, who ends unplanned, who has gone quiet.

Definitions (sources in ``docs/methods.md`` §2.7 and ``SYNTH_PARAMETERS.md`` §1):

- The number of **attended** sessions per episode; its distribution and mode. The most common
  number of sessions in routine therapy is one (Dryden, *Single-Session Therapy*; Talmon 1990) [V].
- **Single-session episode**: an ended episode with exactly one attended session. It is its own
  category, not automatically dropout (docs/methods.md §2.7 recommendation): **planned** when the end
  reason is one of ``planned_reasons`` (default ``planned``, ``mutual``: "got what I needed"),
  **unplanned** otherwise (``unilateral``, ``other``). ``referred_on`` is neither and is counted
  apart. An episode with an end date but **no end reason** is ``unknown``, not unplanned:
  docs/methods.md §2.7 asks for an explicit ending type (planned / unilateral / unknown) [V2 design
  recommendation], and reading a blank as a dropout would blame the clinician for missing data.
- **Unilateral termination**: the client ended without the therapist's agreement
  (``end_reason == "unilateral"``; Swift & Greenberg 2012 report a weighted dropout rate of 19.7 %
  with this family of definitions) [V]. Rates are over ended episodes.
- **Did-not-attend** and **cancellation** rates: ``no_show`` and ``cancelled`` sessions over all
  scheduled sessions. The contract does not distinguish late cancellations.
- **Lost contact**: an open episode (no end date) whose last attended session (or start, if none)
  is at least ``lost_contact_days`` days before the reference date. The boundary day counts as lost
  (``>=``). The default of 42 days (six weeks) is a design choice [U]: the setting
  ``[engagement] lost_contact_days`` (see :func:`engagement_options`).
- **Measure completion**: attended sessions with no alliance measure and no outcome measure at all.

The reference date is the last session date in the export unless one is given, so an export read
months later still shows who had gone quiet when it was made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from supervision.instruments import instruments
from supervision.metrics.stats import wilson_interval
from supervision.rules import EngagementRules, area_rules

PLANNED_REASONS = ("planned", "mutual")


def _measure_columns(sessions: pd.DataFrame) -> tuple[list[str], list[str]]:
    alliance, outcome = [], []
    for inst in instruments().values():
        cols = [c for c in inst.columns if c in sessions.columns]
        (alliance if inst.kind == "alliance" else outcome).extend(cols)
    return alliance, outcome


def episode_engagement(
    clients: pd.DataFrame,
    sessions: pd.DataFrame,
    *,
    lost_contact_days: int | None = None,
    reference_date: pd.Timestamp | str | None = None,
    planned_reasons: Sequence[str] = PLANNED_REASONS,
    rules=None,
) -> pd.DataFrame:
    """One row per client episode with its attendance and engagement flags.

    Parameters
    ----------
    clients, sessions : DataFrame
        Canonical tables of a :class:`~supervision.caseload.Caseload`.
    lost_contact_days : int, optional
        Days without an attended session after which an open episode counts as lost contact [U];
        default: ``rules`` (``[engagement] lost_contact_days`` in defaults.toml).
    reference_date : date, optional
        "Now" for lost contact; default the last session date in ``sessions``.
    planned_reasons : sequence of str, default ("planned", "mutual")
        End reasons that make a single-session episode *planned*.
    rules : EngagementRules or Rules, optional
        The engagement rules (``caseload.rules``); None = the defaults. Options given above go on top,
        checked as the settings are (:mod:`supervision.rules`).

    Returns
    -------
    DataFrame
        ``client_id, clinician_id, start_date, end_date, end_reason, ended, n_scheduled,
        n_attended, n_cancelled, n_no_show, first_attended, last_attended, median_gap_days,
        days_since_contact, lost_contact, single_session, single_session_type`` (``planned``,
        ``unplanned``, ``referred_on``, ``unknown`` (ended with no end reason) or empty), ``unilateral``, ``n_no_measure`` (attended
        sessions without any alliance or outcome measure).
    """
    lost_contact_days = area_rules(EngagementRules, rules, "episode_engagement()",
                                   lost_contact_days=lost_contact_days).lost_contact_days
    if lost_contact_days < 1:
        raise ValueError(f"lost_contact_days must be 1 or more; got {lost_contact_days!r}.")
    ref = pd.Timestamp(reference_date) if reference_date is not None else (
        sessions["session_date"].max() if len(sessions) else pd.Timestamp.today().normalize())
    # per client of the sessions, on integer codes (each million-row column is hashed once)
    code, ids = pd.factorize(sessions["client_id"])
    k, has_id = len(ids), code >= 0
    status = sessions["attendance"]
    attended = (status == "attended").fillna(False).to_numpy(dtype=bool)
    a_cols, o_cols = _measure_columns(sessions)
    any_measure = np.zeros(len(sessions), bool)
    for c in a_cols + o_cols:
        any_measure |= sessions[c].notna().to_numpy()

    def count(rows: np.ndarray) -> np.ndarray:
        return np.bincount(code[rows & has_id], minlength=k)

    n_scheduled = count(np.ones(len(sessions), bool))
    n_attended = count(attended)
    n_cancelled = count((status == "cancelled").fillna(False).to_numpy(dtype=bool))
    n_no_show = count((status == "no_show").fillna(False).to_numpy(dtype=bool))
    n_no_measure = count(attended & ~any_measure)
    # attended sessions in date order within the client (missing dates last): first, last and median gap
    rows = np.flatnonzero(attended & has_id)
    dates = sessions["session_date"].to_numpy()[rows]
    ac = code[rows]
    nat = np.isnat(dates)
    order = np.lexsort((dates.view(np.int64), nat, ac))
    dates, ac, nat = dates[order], ac[order], nat[order]
    by_client = pd.Series(dates).groupby(ac)
    first = by_client.min().reindex(range(k)).to_numpy()
    last = by_client.max().reindex(range(k)).to_numpy()
    gaps = np.full(len(dates), np.nan)
    same = np.r_[False, (ac[1:] == ac[:-1]) & ~nat[1:] & ~nat[:-1]]
    gaps[same] = (dates[1:][same[1:]] - dates[:-1][same[1:]]) // np.timedelta64(1, "D")
    median_gap = pd.Series(gaps).groupby(ac).median().reindex(range(k)).to_numpy()

    cols = ["client_id", "clinician_id", "start_date"] + [c for c in ("end_date", "end_reason") if c in clients.columns]
    out = clients[cols].copy()
    if "end_date" not in out.columns:
        out["end_date"] = pd.NaT
    if "end_reason" not in out.columns:
        out["end_reason"] = pd.NA
    at = ids.get_indexer(out["client_id"])  # each episode's client among the sessions' (-1: none)

    def per_episode(values: np.ndarray, fill):
        return np.append(values, np.asarray([fill], dtype=values.dtype))[np.where(at >= 0, at, len(values))]

    out["ended"] = out["end_date"].notna().to_numpy()
    out["n_scheduled"] = per_episode(n_scheduled, 0).astype(int)
    out["n_attended"] = per_episode(n_attended, 0).astype(int)
    out["n_cancelled"] = per_episode(n_cancelled, 0).astype(int)
    out["n_no_show"] = per_episode(n_no_show, 0).astype(int)
    out["first_attended"] = per_episode(first, np.datetime64("NaT"))
    out["last_attended"] = per_episode(last, np.datetime64("NaT"))
    out["median_gap_days"] = per_episode(median_gap, np.nan)
    since = out["last_attended"].fillna(out["start_date"])
    out["days_since_contact"] = (ref - since).dt.days.where(~out["ended"])
    out["lost_contact"] = (~out["ended"]) & (out["days_since_contact"] >= lost_contact_days)
    reason = out["end_reason"].astype("string")
    single = out["ended"] & (out["n_attended"] == 1)
    no_reason = reason.isna() | (reason.str.strip() == "").fillna(True)
    kind = pd.Series(pd.NA, index=out.index, dtype="string")
    kind[single & reason.isin(list(planned_reasons)).fillna(False)] = "planned"
    kind[single & (reason == "referred_on").fillna(False)] = "referred_on"
    kind[single & no_reason & kind.isna()] = "unknown"
    kind[single & kind.isna()] = "unplanned"
    out["single_session"] = single
    out["single_session_type"] = kind
    out["unilateral"] = out["ended"] & (reason == "unilateral").fillna(False)
    out["n_no_measure"] = per_episode(n_no_measure, 0).astype(int)
    return out.reset_index(drop=True)


def session_count_distribution(episodes: pd.DataFrame, *, ended_only: bool = True) -> pd.DataFrame:
    """Distribution of attended sessions per episode.

    Returns
    -------
    DataFrame
        ``n_attended, n_episodes, share, is_mode`` for every count from 0 to the maximum (zero
        rows included, so the shape is visible). ``ended_only`` (default) counts ended episodes,
        as open ones are still growing.
    """
    ep = episodes[episodes["ended"]] if ended_only else episodes
    counts = ep["n_attended"].value_counts().sort_index()
    full = counts.reindex(range(0, int(counts.index.max()) + 1 if len(counts) else 1), fill_value=0)
    total = full.sum()
    out = pd.DataFrame({"n_attended": full.index, "n_episodes": full.to_numpy()})
    out["share"] = out["n_episodes"] / total if total else np.nan
    # the mode among episodes with at least one attended session
    pos = out[out["n_attended"] >= 1]
    mode = pos.loc[pos["n_episodes"].idxmax(), "n_attended"] if len(pos) and pos["n_episodes"].max() > 0 else None
    out["is_mode"] = out["n_attended"] == mode
    return out


def _rate(k: np.ndarray, n: np.ndarray, confidence: float):
    k, n = np.asarray(k, float), np.asarray(n, float)
    rate = np.divide(k, n, out=np.full_like(k, np.nan), where=n > 0)
    lo, hi = wilson_interval(k, n, confidence)
    return rate, lo, hi


def clinician_engagement(episodes: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Engagement per clinician and for the whole service (``scope == "service"``).

    Parameters
    ----------
    episodes : DataFrame
        Output of :func:`episode_engagement`.
    confidence : float, default 0.95
        Level of the Wilson intervals.

    Returns
    -------
    DataFrame
        ``scope, n_clients, n_ended, n_open, mean_attended, median_attended, mode_attended,
        n_single, single_rate, single_rate_lower, single_rate_upper, n_single_planned,
        n_single_unplanned, n_single_unknown (ended with no end reason), n_unilateral, unilateral_rate, unilateral_rate_lower,
        unilateral_rate_upper, n_scheduled, n_no_show, dna_rate, dna_rate_lower, dna_rate_upper,
        n_cancelled, cancel_rate, cancel_rate_lower, cancel_rate_upper, n_lost_contact,
        n_attended_sessions, n_no_measure, no_measure_rate``. Single-session and unilateral
        rates are over ended episodes; DNA and cancellation rates over scheduled sessions (their
        intervals treat sessions as independent, so they are too narrow); ``mode_attended`` is
        the most common attended count among ended episodes with at least one session.
    """
    # integer scopes: 0..k-1 the clinicians (sorted), k the whole service; each episode counts in both
    code, clinicians = pd.factorize(episodes["clinician_id"], sort=True)
    k = len(clinicians)
    keep = code >= 0  # episodes without a clinician count for the service only
    scope = np.concatenate([code[keep], np.full(len(code), k)])

    def both(values) -> np.ndarray:
        v = np.asarray(values)
        return np.concatenate([v[keep], v])

    kind = episodes["single_session_type"]
    frame = pd.DataFrame({
        "scope": scope, "ended": both(episodes["ended"].to_numpy(dtype=bool)),
        "n_attended": both(episodes["n_attended"].to_numpy()),
        "single_session": both(episodes["single_session"].to_numpy()),
        "planned": both((kind == "planned").fillna(False).to_numpy(dtype=bool)),
        "unplanned": both((kind == "unplanned").fillna(False).to_numpy(dtype=bool)),
        "unknown": both((kind == "unknown").fillna(False).to_numpy(dtype=bool)),
        **{c: both(episodes[c].to_numpy()) for c in ("unilateral", "n_scheduled", "n_no_show", "n_cancelled",
                                                      "lost_contact", "n_no_measure")},
    })
    index = pd.Index([*clinicians, "service"], name="clinician_id")
    g = frame.groupby("scope", sort=True)
    ended = frame[frame["ended"].to_numpy()]
    ge = ended.groupby("scope", sort=True)

    def per_scope(series: pd.Series) -> pd.Series:
        return pd.Series(series.reindex(range(k + 1)).to_numpy(), index=index)

    out = pd.DataFrame({
        "n_clients": per_scope(g.size()),
        "n_ended": per_scope(g["ended"].sum()),
        "mean_attended": per_scope(ge["n_attended"].mean()),
        "median_attended": per_scope(ge["n_attended"].median()),
        "n_single": per_scope(ge["single_session"].sum()),
        "n_single_planned": per_scope(ge["planned"].sum()),
        "n_single_unplanned": per_scope(ge["unplanned"].sum()),
        "n_single_unknown": per_scope(ge["unknown"].sum()),
        "n_unilateral": per_scope(ge["unilateral"].sum()),
        "n_scheduled": per_scope(g["n_scheduled"].sum()),
        "n_no_show": per_scope(g["n_no_show"].sum()),
        "n_cancelled": per_scope(g["n_cancelled"].sum()),
        "n_lost_contact": per_scope(g["lost_contact"].sum()),
        "n_attended_sessions": per_scope(g["n_attended"].sum()),
        "n_no_measure": per_scope(g["n_no_measure"].sum()),
    })
    # the mode among ended episodes with a session: the commonest count, ties to the one seen first
    pos = ended[ended["n_attended"].to_numpy() >= 1]
    sc, na = pos["scope"].to_numpy(dtype=np.int64), pos["n_attended"].to_numpy(dtype=np.int64)
    mode = pd.Series(dtype=np.int64)
    if len(pos):
        keys, first, count = np.unique(sc * (int(na.max()) + 1) + na, return_index=True, return_counts=True)
        pick = np.lexsort((first, -count, keys // (int(na.max()) + 1)))
        best = pick[np.r_[True, np.diff((keys // (int(na.max()) + 1))[pick]) != 0]]
        mode = pd.Series(na[first[best]], index=sc[first[best]])
    out["mode_attended"] = per_scope(mode)
    for c in ("n_ended", "n_single", "n_single_planned", "n_single_unplanned", "n_single_unknown", "n_unilateral"):
        out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0)  # clinicians with no ended episode
    out["n_open"] = out["n_clients"] - out["n_ended"]
    for name, k, n in (("single_rate", "n_single", "n_ended"), ("unilateral_rate", "n_unilateral", "n_ended"),
                       ("dna_rate", "n_no_show", "n_scheduled"), ("cancel_rate", "n_cancelled", "n_scheduled")):
        out[name], out[f"{name}_lower"], out[f"{name}_upper"] = _rate(out[k].to_numpy(), out[n].to_numpy(), confidence)
    out["no_measure_rate"] = np.divide(out["n_no_measure"], out["n_attended_sessions"],
                                       out=np.full(len(out), np.nan), where=out["n_attended_sessions"].to_numpy() > 0)
    int_cols = ["n_clients", "n_ended", "n_open", "n_single", "n_single_planned", "n_single_unplanned",
                "n_single_unknown", "n_unilateral",
                "n_scheduled", "n_no_show", "n_cancelled", "n_lost_contact", "n_attended_sessions", "n_no_measure"]
    out[int_cols] = out[int_cols].astype(int)
    out = out.reset_index().rename(columns={"clinician_id": "scope"})
    order = ["scope", "n_clients", "n_ended", "n_open", "mean_attended", "median_attended", "mode_attended",
             "n_single", "single_rate", "single_rate_lower", "single_rate_upper", "n_single_planned", "n_single_unplanned",
             "n_single_unknown", "n_unilateral", "unilateral_rate", "unilateral_rate_lower", "unilateral_rate_upper",
             "n_scheduled", "n_no_show", "dna_rate", "dna_rate_lower", "dna_rate_upper",
             "n_cancelled", "cancel_rate", "cancel_rate_lower", "cancel_rate_upper", "n_lost_contact",
             "n_attended_sessions", "n_no_measure", "no_measure_rate"]
    service_last = out["scope"].eq("service")
    return pd.concat([out[~service_last], out[service_last]], ignore_index=True)[order]


def engagement_options(settings=None, function=None) -> dict:
    """Keyword arguments for the engagement metrics from the ``[engagement]`` settings.

    The setting names of ``[engagement]`` in ``supervision/defaults.toml`` are the keyword names
    of :func:`episode_engagement`; ``fn(..., **engagement_options(settings, fn))`` applies them.
    """
    return EngagementRules.from_settings(settings).kwargs(function)
