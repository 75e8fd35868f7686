"""The supervision agenda: what to look at first in a one-hour supervision meeting, and why.

Every flag the areas raise becomes an explained item (what, how serious, the numbers and dates
behind it, since when, and a question to open the conversation). Items are then put in five
**sections**, in this order, so that the hour starts with what matters most:

``risk``
    Every current client whose **latest** answer on a risk item is above the item's minimum
    (PHQ-9 item 9 and CORE-10 item 6 by default: the instruments' ``risk_items``, so a user
    instrument can declare its own). Never capped, never ranked below anything else. One row per
    client, with the item, its answer, its date and the trend of that item.
``today``
    At most ``today_clients`` clients (``[agenda]``), **one row per client** carrying all its
    flags, ranked clinical-first (see the score below): reliably worse or not on track
    (including episodes that ended within ``recency_days`` while reliably worse), unrepaired and
    open ruptures, falling low alliance, then the rest. Clients below ``today_min_score`` are
    not "today" material and go to ``more``.
``patterns``
    At most ``patterns`` caseload-level items (``[agenda]``) from the workbook's areas, each only
    when the supervisee's interval excludes the service's figure: check-in dominance, off-goal
    work (drift and topics outside the agreed goals), engagement (unilateral endings, single
    sessions, missed sessions) and adaptation gaps (one item per dimension and group, merged
    over metrics, worded after the comparator each verdict rests on).
``housekeeping``
    Administrative items, never above a clinical one: episodes to close (no attended session
    for more than ``lost_contact_decay_days``) and measures missing from recent sessions.
``more``
    Everything else, folded in the views.

**The score** (one formula for every item; :func:`item_score`)::

    score = weight[flag] * 0.5 ** (age_days / half_life_days)

``age_days`` is the time from the flag's ``since`` date to the reference date (the export's last
session); caseload-level patterns have no date and do not decay. So a stale flag can never
outrank a fresh one of the same kind, and a year-old item fades below a fresh one of a lower
weight. A client's score is the best of its items' scores plus ``extra_flag_points`` for each
other clinical flag it carries. The weights are ordered clinical-first in the defaults
(``[agenda.weights]``); patterns add up to ``pattern_distance_points`` for how far the
supervisee's interval lies from the service's figure (one point per percentage point).
Severity follows the score: ``high`` from ``high_from``, ``medium`` from ``medium_from``.

Only current clients get items: open episodes and episodes that ended within ``recency_days``.
Every number above is a setting (``[agenda]`` in ``supervision/defaults.toml``, the only place a
default is written); :class:`AgendaRules` reads and checks them once.

Sources. The risk items: Kroenke, Spitzer & Williams (2001), PHQ-9; Barkham et al. (2013),
CORE-10 (``supervision/instruments/instruments.toml``). The support prompts for clients off
track (:func:`support_prompts`): the Clinical Support Tools of Lambert's OQ system (Whipple et
al. 2003, J Couns Psychol 50:59-68; Harmon et al. 2007, Psychother Res 17:379-392), whose domains
are the alliance, motivation, social support and life events, with a risk screen first; emotion
regulation is added as the issue asks [U: not in the papers as read]. The weights, decay and caps
are design choices [U]. Definitions: docs/methods.md §9.1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from supervision.caseload import Caseload
from supervision.rules import AgendaRules, Rules  # the agenda's rules live in supervision.rules

SECTIONS = ("risk", "today", "patterns", "housekeeping", "more")
ITEM_COLUMNS = ["rank", "section", "clinician_id", "client_id", "area", "flag", "flags", "severity", "score", "since",
                "evidence", "question", "off_track"]
CASELOAD_ITEM = "(caseload)"

# What each flag is: its area, its kind (clinical items compete for "today"; admin items are
# housekeeping; pattern items are about the caseload) and its plain-language name.
FLAGS: dict[str, tuple[str, str, str]] = {
    "risk_item": ("risk", "risk", "risk item answered"),
    "reliable_deterioration": ("outcome", "clinical", "reliably worse than at intake"),
    "ended_worse": ("outcome", "clinical", "ended reliably worse"),
    "not_on_track": ("outcome", "clinical", "not on track"),
    "unrepaired_rupture": ("alliance", "clinical", "unrepaired rupture"),
    "open_rupture": ("alliance", "clinical", "recent rupture"),
    "low_alliance_falling": ("alliance", "clinical", "low and falling alliance"),
    "low_alliance": ("alliance", "clinical", "low alliance"),
    "lost_contact": ("engagement", "clinical", "drifting away"),
    "repeated_no_shows": ("engagement", "clinical", "missed sessions"),
    "neglected_goal": ("focus", "clinical", "agreed goal not worked on"),
    "check_in_dominance": ("focus", "clinical", "sessions mostly check-in"),
    "low_item": ("alliance", "clinical", "a low item in the session rating"),
    "ceiling_only": ("alliance", "clinical", "only ratings near the maximum"),
    "episode_to_close": ("engagement", "admin", "episode to close"),
    "measures_missing": ("measurement", "admin", "measures missing"),
    "check_in_pattern": ("focus", "pattern", "check-in dominance across the caseload"),
    "off_goal_pattern": ("focus", "pattern", "work off the agreed goals"),
    "unilateral_endings": ("engagement", "pattern", "unilateral endings"),
    "single_sessions": ("engagement", "pattern", "single-session endings"),
    "missed_sessions": ("engagement", "pattern", "missed sessions"),
    "adaptation_gap": ("adaptation", "pattern", "adaptation gap"),
    "goal_review": ("follow-up", "pattern", "practice goal due for review"),
}
OUTCOME_FLAGS = ("reliable_deterioration", "ended_worse", "not_on_track")


def _isin(column: pd.Series, values) -> np.ndarray:
    """``column.isin(values)`` for many values: Arrow's ``is_in`` on the values as one array (pandas'
    own ``isin`` of an Arrow string column converts each value to a Python scalar first, most of the
    agenda's time at a million sessions)."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        data = pa.array(column.array)  # the column's own Arrow data, not copied
        values = values if isinstance(values, (pd.Series, pd.Index)) else pd.Index(list(values), dtype=object)
        wanted = (pa.array(values.array) if values.dtype == column.dtype
                  else pa.array(values.to_numpy(dtype=object), from_pandas=True)).cast(data.type)
        return np.asarray(pc.is_in(data, value_set=wanted).fill_null(False))
    return column.isin(values).to_numpy()


def _plural(n: int, word: str) -> str:
    """``1 session``, ``3 sessions`` (the evidence says neither "session(s)" nor "1 sessions")."""
    return f"{n} {word}{'' if n == 1 else 's'}"

QUESTIONS = {
    "risk_item": "The client's latest answer on a risk item is above 0. Has risk been assessed since, what is the safety plan, and who else knows?",
    "unrepaired_rupture": "The alliance dipped sharply and has not come back. What happened in that session, and has it been talked about with the client?",
    "open_rupture": "The alliance dipped sharply recently. How could the next session invite the client to say what went wrong?",
    "low_alliance_falling": "The client's ratings of the session are low and falling. What might the client not be getting from the work?",
    "low_alliance": "The client rates the session at or below the cut-off. What does the client want more or less of?",
    "low_item": "One part of the session rating is low even if the total is not. Do you and the client agree on what to work on, and how?",
    "ceiling_only": "Every rating is at or near the maximum. How could you make it safe for the client to give critical feedback?",
    "neglected_goal": "An agreed goal has not been worked on for several sessions. Is it still the client's goal, and what is in the way?",
    "check_in_dominance": "Most of this client's sessions are spent on the week's events. How could the session get to the client's goals sooner?",
    "reliable_deterioration": "The client is reliably worse than at intake. What has changed, is there risk, and does the plan need to change?",
    "ended_worse": "The episode ended with the client reliably worse than at intake. What happened, is the client safe, and is follow-up or a re-referral needed?",
    "not_on_track": "The client is improving less than most similar clients in this service by now. What might need to change in the work?",
    "lost_contact": "The client has not attended for {days} days and the episode is still open. What might be keeping them away, and how will you reach out?",
    "repeated_no_shows": "The client missed several recent sessions. What is getting in the way of coming, and is it about the therapy?",
    "episode_to_close": "No attended session for {days} days. Close the episode with a planned-ending letter, or is there a reason to keep it open?",
    "measures_missing": "Recent sessions have no measures. What gets in the way of asking for them?",
    "check_in_pattern": "Across your caseload, more sessions are spent on the week's events than in the service. What makes it hard to move to the client's goals?",
    "off_goal_pattern": "Across your caseload, sessions move off the agreed goals more often than in the service. How do you and your clients decide what a session is for?",
    "unilateral_endings": "More of your clients end therapy without agreeing it than in the service. What do these endings have in common?",
    "single_sessions": "More of your clients come only once than in the service. What happens in first sessions, and which of them got what they needed?",
    "missed_sessions": "Your clients miss more booked sessions than the service's. What gets in the way, and how is it talked about?",
    "goal_review": "A practice goal agreed in supervision is due for review. What do the before and after figures (Follow-up) show, what helped, and what is the next goal?",
}


def item_score(weight, age_days, rules: AgendaRules):
    """``weight * 0.5 ** (age_days / half_life_days)``; no age (a pattern) means no decay."""
    age = pd.Series(age_days, dtype="float64").clip(lower=0).fillna(0).to_numpy()
    return np.asarray(weight, dtype="float64") * np.power(0.5, age / rules.half_life_days)


# --------------------------------------------------------------------------- formatting helpers
def _items(frame: pd.DataFrame, flag: str, since, evidence, question=None) -> pd.DataFrame:
    area = FLAGS[flag][0]
    return pd.DataFrame({
        "clinician_id": frame["clinician_id"].to_numpy(), "client_id": frame["client_id"].to_numpy(),
        "area": area, "flag": flag, "since": pd.to_datetime(pd.Series(since).to_numpy()),
        "evidence": pd.Series(evidence).astype("string").to_numpy(),
        "question": (pd.Series(question).astype("string").to_numpy() if question is not None else QUESTIONS.get(flag, "")),
    })


def _by_client(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` indexed by ``client_id`` (for ``Series.map``)."""
    return pd.Series(frame[column].to_numpy(), index=pd.Index(frame["client_id"]), name=column).loc[
        lambda x: ~x.index.duplicated()]


def _per_value(s: pd.Series, text) -> pd.Series:
    """``text(v)`` for each distinct value of ``s``, "–" where missing (formats once per value)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    words = np.array([text(v) for v in uniques] + ["–"], dtype=object)
    return pd.Series(words[codes], index=s.index, dtype="string")


def _num(s: pd.Series, pattern: str = "{:.1f}") -> pd.Series:
    return _per_value(pd.to_numeric(s), pattern.format)


def _date(s: pd.Series) -> pd.Series:
    return _per_value(pd.to_datetime(s), lambda v: f"{v:%d %b %Y}")


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{100 * v:.0f} %"


def short_name(prefix: str) -> str:
    """``phq9`` -> ``PHQ-9``, ``core10`` -> ``CORE-10`` (the way clinicians write them)."""
    head = prefix.rstrip("0123456789")
    return f"{head.upper()}-{prefix[len(head):]}" if head != prefix and head else prefix.upper()


def _join_runs(keys: list[pd.Series], values: pd.Series, sep: str) -> list[str]:
    """``sep.join`` of ``values`` over each run of equal ``keys`` (rows already sorted by the keys), in
    order: the runs' texts in one pass over plain lists (a grouped ``agg(sep.join)`` slices a Series per group)."""
    n = len(values)
    if n == 0:
        return []
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        a = k.to_numpy()
        change[1:] |= a[1:] != a[:-1]
    starts = np.flatnonzero(change)
    ends = np.r_[starts[1:], n]
    vals = values.astype(str).tolist()
    return [sep.join(vals[a:b]) for a, b in zip(starts.tolist(), ends.tolist())]


def _all_rules(t: dict) -> Rules:
    """Every area's rules of the caseload the tables came from (``t["rules"]``, else from ``t["settings"]``)."""
    return t["rules"] if t.get("rules") is not None else Rules.from_settings(t.get("settings"))


# --------------------------------------------------------------------------- client-level flags
def risk_items(t: dict, rules: AgendaRules) -> list[pd.DataFrame]:
    """Current clients whose latest answer on a risk item is above the item's minimum.

    The risk items are instrument data (``risk_items`` in ``instruments.toml`` or a user's
    ``[instruments.<prefix>]``): PHQ-9 item 9 and CORE-10 item 6 by default. "Latest" is the last
    session with an answer on that item; the evidence gives the answer, its date and the item's
    recent answers (the trend).
    """
    from supervision.instruments import instruments

    s, settings = t.get("sessions"), t.get("settings")
    if s is None or not len(s):
        return []
    out = []
    for prefix, inst in instruments(settings).items():
        for item in inst.risk_items:
            col = f"{prefix}_{item}"
            if col not in s.columns:
                continue
            a = s.loc[s[col].notna(), ["client_id", "clinician_id", "session_date", col]]
            if a.empty:
                continue
            a = a.sort_values(["client_id", "session_date"], kind="stable")
            last = a.groupby("client_id", sort=False).tail(1).set_index("client_id")
            hot = last[last[col] > inst.item_min]
            if hot.empty:
                continue
            tail = a[_isin(a["client_id"], hot.index)].groupby("client_id", sort=False).tail(4)
            g = tail.groupby("client_id", sort=False)[col]
            recent = g.agg(list).reindex(hot.index)
            prev = g.nth(-2).set_axis(tail.loc[g.nth(-2).index, "client_id"]).reindex(hot.index)

            def trend(latest, before):
                if pd.isna(before):
                    return "the first answer on this item"
                return "rising" if latest > before else "falling" if latest < before else "unchanged"

            words = [f"{short_name(prefix)} item {item} answered "
                     f"{v:g} (of {inst.item_max:g}) on {d:%d %b %Y}; last answers "
                     f"{', '.join(f'{x:g}' for x in r)} ({trend(v, p)})"
                     for v, d, r, p in zip(hot[col], hot["session_date"], recent, prev)]
            frame = hot.reset_index()
            out.append(_items(frame, "risk_item", frame["session_date"], words))
    return out


def alliance_items(t: dict, rules: AgendaRules) -> list[pd.DataFrame]:
    """Unrepaired and open ruptures, low (and falling) latest alliance, low items, ceiling-only series."""
    rp, ca = t.get("alliance_ruptures"), t.get("alliance_clients")
    out = []
    if rp is not None and len(rp):
        rp = rp[rp["criterion"] == rp["criterion"].iloc[0]] if "criterion" in rp.columns else rp
        for status, flag in (("unrepaired", "unrepaired_rupture"), ("open", "open_rupture")):
            part = rp[rp["status"] == status]
            ev = ("SRS fell from " + _num(part["pre_score"]) + " (session " + part["pre_session"].astype("string") + ") to "
                  + _num(part["rupture_score"]) + " (session " + part["rupture_session"].astype("string") + ", "
                  + _date(part["rupture_date"]) + "): " + _num(part["depth_sd"]) + " of the client's SDs; "
                  + (pd.Series(np.where(part["status_reason"].astype("string").fillna("").eq("lost_contact").to_numpy(),
                                        "not seen since, so not repaired", "no return to the earlier level"),
                               index=part.index, dtype="string")
                     if status == "unrepaired" and "status_reason" in part.columns
                     else ("no return to the earlier level" if status == "unrepaired" else "repair still possible")))
            out.append(_items(part, flag, part["rupture_date"], ev))
    if ca is not None and len(ca):
        low = ca[ca["latest_low"].fillna(False).astype(bool)]
        falling = low["trend"].fillna(0) <= rules.falling_trend
        for sub, flag in ((low[falling], "low_alliance_falling"), (low[~falling], "low_alliance")):
            ev = ("latest SRS " + _num(sub["latest_srs"]) + " on " + _date(sub["latest_date"]) + " (session "
                  + sub["latest_session"].astype("string") + "); first " + _num(sub["first_srs"]) + "; "
                  + (_num(sub["trend"], "trend {:+.2f} per session")).replace("–", "too few sessions for a trend") + "; " + _num(sub["share_low"] * 100, "{:.0f}") + " % of sessions low")
            out.append(_items(sub, flag, sub["latest_date"], ev))
        li = ca[ca["latest_low_item"].fillna(False).astype(bool) & ~ca["latest_low"].fillna(False).astype(bool)]
        which = (li["low_items"].astype("string").str.replace(";", ", ").str.replace("_", " ").fillna("an item")
                 if "low_items" in li.columns else pd.Series("an item", index=li.index, dtype="string"))
        out.append(_items(li, "low_item", li["latest_date"],
                          which + " below the item threshold in the latest rating, while the total is "
                          + _num(li["latest_srs"]) + " (" + _date(li["latest_date"]) + ")"))
        ceil = ca[ca["ceiling_only"].fillna(False).astype(bool) & (ca["n_measured"] >= 3)]
        at = _all_rules(t).alliance.ceiling_at
        out.append(_items(ceil, "ceiling_only", ceil["latest_date"],
                          f"an SRS of {at:g} or more (near the maximum of 40) at all " + ceil["n_measured"].astype("string")
                          + " rated sessions"))
    return out


def engagement_items(t: dict, rules: AgendaRules) -> list[pd.DataFrame]:
    """Lost contact (recent: clinical; older than ``lost_contact_decay_days``: an episode to close) and no-show runs."""
    ep, sessions = t.get("engagement_clients"), t.get("sessions")
    out = []
    if ep is None or not len(ep):
        return out
    lost = ep[ep["lost_contact"].fillna(False).astype(bool)]
    days = lost["days_since_contact"].astype("Int64")
    old = (days > rules.lost_contact_decay_days).fillna(False).to_numpy()
    ev = ("open episode; last attended " + _date(lost["last_attended"]) + " (" + days.astype("string")
          + " days before the export's last session); " + lost["n_attended"].astype("string")
          + np.where(lost["n_attended"] == 1, " session", " sessions") + " attended")
    since = lost["last_attended"].fillna(lost["start_date"])
    for mask, flag in ((~old, "lost_contact"), (old, "episode_to_close")):
        q = [QUESTIONS[flag].format(days=d) for d in days[mask].fillna(0)]
        out.append(_items(lost[mask], flag, since[mask], ev[mask], q))
    if sessions is not None and len(sessions):
        open_ids = ep.loc[~ep["ended"] & ~ep["lost_contact"], "client_id"]
        s = sessions[_isin(sessions["client_id"], open_ids)].sort_values(["client_id", "session_date"])
        tail_ok = s["attendance"].ne("no_show")
        # the last session that was not a no-show, per client, aligned with the rows (empty-safe)
        last_ok = s["session_date"].where(tail_ok).groupby(s["client_id"], observed=True).transform("max")
        after = s[s["session_date"] > last_ok.fillna(pd.Timestamp.min)]
        runs = after[after["attendance"] == "no_show"].groupby("client_id").agg(n=("session_date", "size"), since=("session_date", "min"))
        runs = runs[runs["n"] >= rules.no_show_run].reset_index()
        runs["clinician_id"] = runs["client_id"].map(_by_client(ep, "clinician_id"))
        out.append(_items(runs, "repeated_no_shows", runs["since"],
                          runs["n"].astype("string") + " missed sessions in a row since " + _date(runs["since"])))
        out.append(_measures_missing(sessions, ep, rules))
    return out


def _measures_missing(sessions: pd.DataFrame, ep: pd.DataFrame, rules: AgendaRules) -> pd.DataFrame:
    """Open episodes whose last ``measures_missing_sessions`` attended sessions have no measure at all."""
    total_cols = [c for c in sessions.columns if c.endswith("_total") and not c.endswith("_prorated")]
    open_ids = ep.loc[~ep["ended"] & ~ep["lost_contact"].fillna(False).astype(bool), "client_id"]
    att = sessions[(sessions["attendance"] == "attended") & _isin(sessions["client_id"], open_ids)]
    if att.empty or not total_cols:
        return _items(att.head(0), "measures_missing", [], [])
    att = att.assign(_m=att[total_cols].notna().any(axis=1)).sort_values(["client_id", "session_date"], kind="stable")
    k = rules.measures_missing_sessions
    tail = att.groupby("client_id", sort=False).tail(k)
    g = tail.groupby("client_id", sort=False).agg(n=("_m", "size"), measured=("_m", "sum"), since=("session_date", "min"),
                                                    clinician_id=("clinician_id", "first"))
    ever = att.groupby("client_id", sort=False)["_m"].any()
    g = g[(g["n"] >= k) & (g["measured"] == 0) & ever.reindex(g.index).to_numpy()].reset_index()
    return _items(g, "measures_missing", g["since"],
                  "no measure at the last " + g["n"].astype("string") + " attended sessions (since " + _date(g["since"]) + ")")


def outcome_items(t: dict, rules: AgendaRules) -> list[pd.DataFrame]:
    """Open clients not on track or reliably worse; episodes that ended reliably worse (recently)."""
    out = []
    tr = t.get("outcome_track")
    ep = t.get("engagement_clients")
    if tr is not None and len(tr):
        tr = tr[tr["open"].fillna(False).astype(bool)]
        det = tr[tr["reliable_deterioration"].fillna(False).astype(bool)]
        nat = tr[(tr["status"] == "not_on_track") & ~tr["reliable_deterioration"].fillna(False).astype(bool)]
        for part, flag in ((det, "reliable_deterioration"), (nat, "not_on_track")):
            ev = (part["instrument"].map(short_name).astype("string") + " " + _num(part["intake_score"]) + " at intake, " + _num(part["score"])
                  + " at session " + part["session_number"].astype("string") + ": " + part["reason"].astype("string"))
            since = (part["client_id"].map(_by_client(ep, "last_attended")) if ep is not None
                     else pd.Series(pd.NaT, index=part.index))
            out.append(_items(part, flag, since, ev))
    oc = t.get("outcome_clients")
    if oc is not None and len(oc):
        ended = oc[~oc["open"].fillna(True).astype(bool) & oc["reliable_deterioration"].fillna(False).astype(bool)]
        ev = (ended["instrument"].map(short_name).astype("string") + " " + _num(ended["first_score"]) + " at intake, " + _num(ended["latest_score"])
              + " at the last measured session (" + _date(ended["latest_date"]) + "); the episode ended "
              + _date(ended["end_date"]) + " (" + ended["end_reason"].astype("string").fillna("reason not recorded") + ")")
        out.append(_items(ended, "ended_worse", ended["end_date"], ev))
    return out


def focus_items(t: dict, rules: AgendaRules) -> list[pd.DataFrame]:
    """Neglected agreed goals (with what the last sessions were about), and clients whose sessions are mostly check-ins."""
    fc = t.get("focus_clients")
    if fc is None or not len(fc):
        return []
    out = []
    labels = _all_rules(t).focus.labels
    neg = fc[fc["n_neglected_goals"].fillna(0) > 0]
    fs = t.get("focus_sessions")
    worked = pd.Series("", index=neg.index, dtype="string")
    if fs is not None and len(neg):
        n_last = _all_rules(t).focus.neglected_after_sessions
        last = fs[_isin(fs["client_id"], neg["client_id"])].sort_values(["client_id", "session_date"]).groupby("client_id").tail(n_last)
        lab = last["focus_primary"].astype("object").map(labels).fillna(last["focus_primary"].astype("object"))
        lab = lab.where(lab.notna() & (lab != ""), "not recorded").astype(str)
        # per client: each focus with its count, most frequent first (counted once over all clients)
        cnt = (pd.DataFrame({"client_id": last["client_id"].astype(str).to_numpy(), "label": lab.to_numpy()})
               .value_counts().reset_index(name="n")
               .sort_values(["client_id", "n", "label"], ascending=[True, False, True], kind="stable"))
        text = cnt["label"] + " (" + cnt["n"].astype(str) + ")"
        summary = pd.Series(_join_runs([cnt["client_id"]], text, ", "),
                            index=cnt["client_id"].drop_duplicates().to_numpy())
        worked = neg["client_id"].astype(str).map(summary).astype("string").fillna("–")
    goals = neg["neglected_goals"].astype("string").map(
        lambda g: ", ".join(labels.get(x, x) for x in str(g).split(";") if x), na_action="ignore")
    out.append(_items(neg, "neglected_goal", neg["last_session_date"],
                      np.where(neg["neglected_goals"].astype("string").fillna("").str.count(";[^;]") >= 1,
                               "agreed goals ", "agreed goal ") + goals.fillna("–")
                      + " not the focus of the last sessions, which were on: " + worked))
    heavy = fc[(fc["check_in_share"].fillna(0) >= rules.check_in_share) & (fc["n_focus_recorded"] >= rules.check_in_min_sessions)]
    out.append(_items(heavy, "check_in_dominance", heavy["last_session_date"],
                      _num(heavy["check_in_share"] * 100, "{:.0f}") + " % of " + heavy["n_focus_recorded"].astype("string")
                      + " sessions mainly a week review / check-in; " + _num(heavy["goal_coverage"] * 100, "{:.0f}")
                      + " % on an agreed goal"))
    return out


# --------------------------------------------------------------------------- caseload patterns
def _pattern(clin, flag, score_extra, evidence, question=None) -> dict:
    return {"clinician_id": clin, "client_id": CASELOAD_ITEM, "area": FLAGS[flag][0], "flag": flag, "since": pd.NaT,
            "evidence": evidence, "question": question or QUESTIONS.get(flag, ""), "_extra": score_extra}


def pattern_items(t: dict, rules: AgendaRules) -> list[pd.DataFrame]:
    """Caseload-level patterns where the supervisee's interval excludes the service's figure.

    Focus (check-in share, drift and unagreed topics) and missed sessions are compared as the mean
    of the clients' own shares with a t interval over clients, so that one client's many sessions do
    not make the interval look precise; unilateral and single-session endings as rates over ended
    episodes with Wilson intervals (Wilson 1927). The service figure is the whole service's.
    """
    rows: list[dict] = []
    conf, k_min = rules.pattern_confidence, rules.pattern_min_clients
    pts = rules.pattern_distance_points

    def extra(distance):
        return min(pts, 100 * abs(distance))

    def beyond_mean(values: pd.Series, by: pd.Series, flag: str, words: Callable[[float, float, float, int], str]) -> None:
        """Per clinician: the mean of the clients' values with a t interval; an item where it lies above the service."""
        from supervision.metrics.stats import mean_interval

        v = pd.to_numeric(values, errors="coerce")
        svc = v.mean()
        g = v.groupby(by.to_numpy(), sort=True).agg(["mean", "std", "count"])
        lo, hi = mean_interval(g["mean"].to_numpy(), g["std"].to_numpy(), g["count"].to_numpy(), conf)
        hit = (g["count"].to_numpy() >= k_min) & (np.nan_to_num(lo, nan=-np.inf) > svc)
        for clin, m, lo_, hi_, n in zip(g.index[hit], g["mean"][hit], lo[hit], hi[hit], g["count"][hit]):
            rows.append(_pattern(clin, flag, extra(lo_ - svc), words(m, lo_, hi_, int(n)) + f" against {_pct(svc)} in the service"))

    def beyond_rate(x: pd.Series, by: pd.Series, flag: str, what: str) -> None:
        """Per clinician: a rate over episodes with its Wilson interval; an item where it lies above the service."""
        from supervision.metrics.stats import wilson_interval

        svc = x.mean() if len(x) else np.nan
        g = x.groupby(by.to_numpy(), sort=True).agg(["sum", "count"])
        lo, hi = wilson_interval(g["sum"].to_numpy(), g["count"].to_numpy(), conf)
        hit = (g["count"].to_numpy() >= k_min) & (np.nan_to_num(np.asarray(lo, float), nan=-np.inf) > svc)
        for clin, k, n, lo_, hi_ in zip(g.index[hit], g["sum"][hit], g["count"][hit], np.asarray(lo)[hit], np.asarray(hi)[hit]):
            rows.append(_pattern(clin, flag, extra(lo_ - svc),
                                 f"{int(k)} of {int(n)} ended episodes {what}: {_pct(k / n)} ({_pct(lo_)}–{_pct(hi_)}) against "
                                 f"{_pct(svc)} in the service"))

    fc = t.get("focus_clients")
    if fc is not None and len(fc):
        f = fc[fc["n_focus_recorded"].fillna(0) >= rules.check_in_min_sessions]
        for col, flag, what in (("check_in_share", "check_in_pattern", "of a client's sessions mainly a week review / check-in"),
                                ("unagreed_goal_share", "off_goal_pattern", "of a client's sessions on a topic outside the agreed goals"),
                                ("drift_rate", "off_goal_pattern", "of a client's session-to-session moves going off the agreed goals")):
            if col in f.columns:
                beyond_mean(f[col], f["clinician_id"], flag,
                            lambda m, lo, hi, n, what=what: f"on average {_pct(m)} {what} ({_pct(lo)}–{_pct(hi)}, {n} clients)")
    ep = t.get("engagement_clients")
    if ep is not None and len(ep):
        ended = ep[ep["ended"].fillna(False).astype(bool)]
        for col, flag, what in (("unilateral", "unilateral_endings", "ended unilaterally"),
                                ("single_session", "single_sessions", "came only once")):
            if col in ended.columns:
                beyond_rate(ended[col].fillna(False).astype(bool), ended["clinician_id"], flag, what)
        sch = ep[ep["n_scheduled"].fillna(0) > 0]
        beyond_mean(sch["n_no_show"] / sch["n_scheduled"], sch["clinician_id"], "missed_sessions",
                    lambda m, lo, hi, n: f"on average {_pct(m)} of a client's booked sessions missed ({_pct(lo)}–{_pct(hi)}, "
                                         f"{n} clients)")
    rows.extend(_adaptation_patterns(t, rules))
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    # one off-goal item per clinician (drift and unagreed topics merged)
    merged = (frame.groupby(["clinician_id", "flag"], sort=False, as_index=False)
              .agg(client_id=("client_id", "first"), area=("area", "first"), since=("since", "first"),
                   evidence=("evidence", "; ".join), question=("question", "first"), _extra=("_extra", "max")))
    adapt = frame[frame["flag"] == "adaptation_gap"]
    merged = pd.concat([merged[merged["flag"] != "adaptation_gap"], adapt], ignore_index=True)
    return [merged]


_METRIC_WORDS = {
    "first_srs": ("first-session SRS", "lower"), "mean_srs": ("mean SRS", "lower"),
    "unilateral": ("unilateral endings", "more"), "unplanned_single_session": ("unplanned single sessions", "more"),
    "reliable_improvement": ("reliable improvement", "less"), "recovery": ("recovery", "less"),
    "identity_addressed": ("sessions with identity addressed", "fewer"),
}


def _adaptation_patterns(t: dict, rules: AgendaRules) -> list[dict]:
    """Clear adaptation gaps: one item per clinician, dimension and group, merged over metrics and comparators."""
    from supervision.config import value_label
    g = t.get("adaptation_gaps")
    if g is None or not len(g):
        return []
    clear = g[g["verdict"] == "clear gap"]
    if clear.empty:
        return []
    metric = clear["metric"].astype(str)
    name = metric.map(lambda m: _METRIC_WORDS.get(m, (m.replace("_", " "), ""))[0])
    srs = ((clear["kind"].astype(str) == "mean") & metric.str.contains("srs")).to_numpy()

    def val(v: pd.Series) -> pd.Series:
        return pd.Series(np.where(srs, _num(v, "{:.1f}"), _num(v * 100, "{:.0f}") + " %"), index=v.index)

    comp = clear["comparator"].astype(str)
    who = np.where(comp == "clinician", "your other clients", "colleagues' clients of the same group")
    bits = (name + " " + val(clear["value_group"]) + " (n=" + clear["n_group"].astype(str) + ") against "
            + val(clear["value_comparator"]) + " with " + who + " (n=" + clear["n_comparator"].astype(str) + ")")
    frame = pd.DataFrame({"clinician_id": clear["clinician_id"].astype(str), "dimension": clear["dimension"].astype(str),
                          "group": clear["group"].astype(str), "bits": bits.astype(str),
                          "own": comp == "clinician", "svc": comp == "service",
                          "diff": clear["shrunken_difference"].abs() if "shrunken_difference" in clear else 0.0})
    per = frame.groupby(["clinician_id", "dimension", "group"], sort=True).agg(
        bits=("bits", "; ".join), own=("own", "any"), svc=("svc", "any"), diff=("diff", "max"))
    rows = []
    for (clin, dim, grp), r in zip(per.index, per.itertuples(index=False)):
        group = f"{dim.replace('_', ' ')}: {value_label(grp, t.get('settings'))}"  # the settings' label, not the code
        if r.own and not r.svc:
            q = (f"Clients recorded as {group} fare worse with you than your other clients, beyond chance. "
                 "What might they need that is different?")
        elif r.svc and not r.own:
            q = (f"Clients recorded as {group} fare worse with you than with colleagues, beyond chance. "
                 "What do colleagues do differently with them, and what might these clients need?")
        else:
            q = (f"Clients recorded as {group} fare worse with you than both your other clients and colleagues' clients of "
                 "the same group, beyond chance. What might they need that is different?")
        rows.append(_pattern(clin, "adaptation_gap", min(rules.pattern_distance_points, 100 * float(r.diff or 0)),
                             f"{group}: {r.bits}", q))
    return rows


PROVIDERS: list[Callable[[dict, AgendaRules], list[pd.DataFrame]]] = [
    risk_items, alliance_items, engagement_items, outcome_items, focus_items]


# --------------------------------------------------------------------------- sections and ranking
def _empty() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=object) for c in ITEM_COLUMNS})
    out["since"] = pd.Series(dtype="datetime64[ns]")
    return out


def _severity(score, rules: AgendaRules) -> np.ndarray:
    return np.select([score >= rules.high_from, score >= rules.medium_from], ["high", "medium"], "low")


def arrange(items: pd.DataFrame, patterns: pd.DataFrame, rules: AgendaRules, reference_date: pd.Timestamp) -> pd.DataFrame:
    """Score the items, merge them into one row per client, and put every row in its section.

    ``items`` are client-level flag rows (``clinician_id, client_id, area, flag, since, evidence,
    question``); ``patterns`` caseload-level rows with ``_extra`` points. Returns the agenda
    (:data:`ITEM_COLUMNS`), ranked within each clinician: risk, today, patterns, housekeeping, more.
    """
    rows = pd.DataFrame()
    if len(items):
        age = (reference_date - pd.to_datetime(items["since"])).dt.days
        w = items["flag"].map(rules.weights).fillna(0).astype(float)
        kind = items["flag"].map({f: v[1] for f, v in FLAGS.items()})
        items = items.assign(score=item_score(w, age, rules), kind=kind,
                             _k=kind.map({"risk": 0, "clinical": 1, "admin": 2}),
                             _ev=items["flag"].map({f: v[2].capitalize() for f, v in FLAGS.items()}) + ": "
                             + items["evidence"].astype("string"))
        # within a client: risk first, then clinical, then admin; each by score (the lead flag is the first row)
        items = items.sort_values(["clinician_id", "client_id", "_k", "score", "flag"],
                                  ascending=[True, True, True, False, True], kind="stable")
        key = ["clinician_id", "client_id"]
        g = items.groupby(key, sort=False, observed=True)
        lead = g.head(1).set_index(key)
        n_clinical = items["kind"].eq("clinical").groupby([items[c] for c in key], sort=False, observed=True).sum()
        n_other = (n_clinical - lead["kind"].eq("clinical").astype(int)).reindex(lead.index)
        section = lead["_k"].map({0: "risk", 1: "candidate", 2: "housekeeping"})
        bonus = np.where(section == "housekeeping", 0.0, rules.extra_flag_points * n_other.to_numpy())
        # items are sorted by client, so each client's rows are one run: flags and evidence joined run by run
        uniq = items.drop_duplicates(key + ["flag"])
        flags = _join_runs([uniq[c] for c in key], uniq["flag"], ", ")
        evidence = _join_runs([items[c] for c in key], items["_ev"], " | ")
        rows = pd.DataFrame({
            "section": section, "area": lead["area"], "flag": lead["flag"], "flags": flags,
            "score": lead["score"] + bonus, "since": lead["since"],
            "evidence": evidence, "question": lead["question"],
            "off_track": items["flag"].isin(OUTCOME_FLAGS).groupby([items[c] for c in key], sort=False,
                                                                   observed=True).any().reindex(lead.index),
        }).reset_index()
    if len(patterns):
        p = patterns.assign(score=patterns["flag"].map(rules.weights).fillna(0).astype(float) + patterns["_extra"],
                            section="pattern_candidate", flags=patterns["flag"], off_track=False).drop(columns="_extra")
        rows = pd.concat([rows, p], ignore_index=True) if len(rows) else p
    if rows.empty:
        return _empty()
    rows = rows.sort_values(["clinician_id", "score", "client_id"], ascending=[True, False, True], kind="stable")
    # today: the best clinical clients of each clinician, up to the cap and above the minimum score
    cand = rows["section"] == "candidate"
    pos = rows[cand].groupby("clinician_id", observed=True).cumcount()
    today = pd.Series(False, index=rows.index)
    today[pos.index] = (pos < rules.today_clients) & (rows.loc[pos.index, "score"] >= rules.today_min_score)
    rows.loc[cand, "section"] = np.where(today[cand], "today", "more")
    pc = rows["section"] == "pattern_candidate"
    ppos = rows[pc].groupby("clinician_id", observed=True).cumcount()
    rows.loc[pc, "section"] = np.where(ppos < rules.patterns, "patterns", "more")
    rows["severity"] = _severity(rows["score"].to_numpy(), rules)
    rows.loc[rows["section"] == "risk", "severity"] = "high"  # any risk answer is for today
    rows.loc[rows["section"] == "housekeeping", "severity"] = "low"
    order = {s: i for i, s in enumerate(SECTIONS)}
    rows = rows.assign(_o=rows["section"].map(order)).sort_values(
        ["clinician_id", "_o", "score", "client_id"], ascending=[True, True, False, True], kind="stable")
    rows["rank"] = rows.groupby("clinician_id", observed=True).cumcount() + 1
    rows["score"] = rows["score"].astype(float).round(1)
    rows["since"] = pd.to_datetime(rows["since"])
    return rows[ITEM_COLUMNS].reset_index(drop=True)


def goal_items(goals: pd.DataFrame | None, today, rules: AgendaRules) -> list[dict]:
    """Practice goals (from the notes database, :meth:`NotesStore.goals`) that are active and due for review."""
    if goals is None or not len(goals):
        return []
    due = goals[(goals["status"] == "active") & (pd.to_datetime(goals["review_date"]) <= pd.Timestamp(today))]
    return [_pattern(g.supervisee_id, "goal_review", rules.pattern_distance_points,
                     f"'{g.text}' (measured by {g.metric.replace('_', ' ')}), agreed {g.meeting_date:%d %b %Y}, "
                     f"review due {g.review_date:%d %b %Y}") for g in due.itertuples()]


def build_agenda(caseload: Caseload, tables: dict | None = None, *, clinician_id: str | None = None,
                 rules: AgendaRules | None = None, goals: pd.DataFrame | None = None, today=None,
                 **overrides) -> pd.DataFrame:
    """The agenda for one clinician (or every clinician when ``clinician_id`` is None), in sections.

    Parameters
    ----------
    caseload : Caseload
    tables : dict, optional
        Precomputed metric tables (:func:`supervision.metrics.tables.metric_tables`); computed
        when not given.
    clinician_id : str, optional
        Keep only this clinician's rows.
    rules : AgendaRules, optional
        Default: from the caseload's settings (``[agenda]``); keyword ``overrides`` (for example
        ``today_clients=3``) change single rules.
    goals : DataFrame, optional
        Practice goals from the notes database (:meth:`supervision.notes.NotesStore.goals`): those
        active and due for review by ``today`` (default: today's date) come onto the agenda as
        patterns.

    Returns
    -------
    DataFrame
        One row per client (or caseload pattern), ranked within each clinician:
        ``rank`` (1 = first), ``section`` (``risk``, ``today``, ``patterns``, ``housekeeping``,
        ``more``), ``clinician_id``, ``client_id`` (``"(caseload)"`` for patterns), ``area`` and
        ``flag`` of the leading flag, ``flags`` (every flag of the row, comma-separated),
        ``severity`` (``high``, ``medium``, ``low``), ``score`` (see the module docstring),
        ``since`` (the leading flag's date), ``evidence`` (every flag's numbers and dates,
        separated by `` | ``), ``question`` (for the leading flag), ``off_track`` (the client is
        not on track or reliably worse: see :func:`support_prompts`).
    """
    from supervision.metrics.tables import metric_tables

    if rules is None:
        rules = caseload.rules.agenda
    if overrides:
        rules = rules.replace(**overrides)
    tables = dict(tables if tables is not None else metric_tables(caseload))
    tables.setdefault("sessions", caseload.sessions)
    tables.setdefault("settings", caseload.settings)
    tables.setdefault("rules", caseload.rules)
    if not len(caseload.sessions):
        return _empty()
    ref = caseload.sessions["session_date"].max()
    parts = [p for provider in PROVIDERS for p in provider(tables, rules) if len(p)]
    items = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["clinician_id", "client_id", "flag", "since"])
    items = current_only(items, caseload.clients, ref, rules)
    found = pattern_items(tables, rules)
    due = goal_items(goals, today if today is not None else pd.Timestamp.today().normalize(), rules)
    if due:
        found.append(pd.DataFrame(due))
    patterns = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["clinician_id", "flag", "_extra"])
    if clinician_id is not None:
        items = items[items["clinician_id"] == clinician_id]
        patterns = patterns[patterns["clinician_id"] == clinician_id] if len(patterns) else patterns
    return arrange(items, patterns, rules, ref)


def current_only(items: pd.DataFrame, clients: pd.DataFrame, reference_date: pd.Timestamp, rules: AgendaRules) -> pd.DataFrame:
    """Keep items of open episodes, and the outcome, rupture and risk items of episodes ended within ``recency_days``.

    Supervision looks at the clients a therapist is seeing now; an episode that ended long ago
    is history (it still counts in the per-clinician rates). Of a recently ended episode only
    what is still worth discussing is kept: how it ended (reliably worse), an alliance that broke
    and was not repaired, a risk answer.
    """
    if items.empty or "end_date" not in clients.columns:
        return items
    end = items["client_id"].map(_by_client(clients, "end_date"))
    open_ = end.isna()
    recent = end >= reference_date - pd.Timedelta(days=rules.recency_days)
    still = items["flag"].isin(["ended_worse", "unrepaired_rupture", "risk_item", "reliable_deterioration"])
    keep = open_ | (recent & still)
    return items[keep.to_numpy()]


# --------------------------------------------------------------------------- support prompts
SUPPORT_FIELDS = ("risk and crisis", "motivation and goals", "the relationship", "social support and life events",
                  "emotion regulation")


def support_prompts(caseload: Caseload, tables: dict, client_id: str) -> pd.DataFrame:
    """For a client off track: the five fields a clinical support tool asks about, with the export's data.

    Fields after the Clinical Support Tools of the OQ system (Whipple et al. 2003, J Couns Psychol
    50:59-68; Harmon et al. 2007, Psychother Res 17:379-392): a risk screen, the therapeutic
    alliance, motivation, social support and life events; emotion regulation added as issue #20
    asks [U]. Where the export holds nothing on a field, the row says so rather than guess.

    Returns
    -------
    DataFrame
        ``field, data, question``, one row per field in :data:`SUPPORT_FIELDS` order.
    """
    t = dict(tables)
    t.setdefault("sessions", caseload.sessions)
    t.setdefault("settings", caseload.settings)
    t.setdefault("rules", caseload.rules)
    rules = caseload.rules.agenda
    labels = caseload.rules.focus.labels
    data = {}
    risk = [r for r in risk_items({**t, "sessions": caseload.sessions[caseload.sessions["client_id"] == client_id]}, rules)]
    crisis = None
    fs = t.get("focus_sessions")
    if fs is not None and len(fs):
        mine = fs[fs["client_id"] == client_id]
        crisis = int(mine["crisis"].fillna(False).astype(bool).sum()) if "crisis" in mine else None
    data["risk and crisis"] = ("; ".join(r["evidence"].iloc[0] for r in risk) if risk else "no risk item above 0 in the latest answers"
                               ) + ("" if crisis is None else f"; {_plural(crisis, 'session')} mainly on crisis / risk")
    fc = t.get("focus_clients")
    r = fc[fc["client_id"] == client_id] if fc is not None else pd.DataFrame()
    ep = t.get("engagement_clients")
    e = ep[ep["client_id"] == client_id] if ep is not None else pd.DataFrame()
    if len(r):
        r = r.iloc[0]
        goals = ", ".join(labels.get(g, g) for g in str(r["agreed_goals"] or "").split(";") if g) or "none recorded"
        data["motivation and goals"] = (f"agreed goals: {goals}; {_pct(r['goal_coverage'])} of sessions on an agreed goal"
                                        + (f"; not worked on lately: {', '.join(labels.get(g, g) for g in str(r['neglected_goals']).split(';') if g)}"
                                           if pd.notna(r.get("n_neglected_goals")) and r["n_neglected_goals"] > 0 else ""))
    else:
        data["motivation and goals"] = "no session focus recorded"
    if len(e):
        e = e.iloc[0]
        data["motivation and goals"] += (f"; attendance: {e['n_attended']} attended, {e['n_cancelled']} cancelled, "
                                         f"{e['n_no_show']} missed")
    ca = t.get("alliance_clients")
    a = ca[ca["client_id"] == client_id] if ca is not None else pd.DataFrame()
    if len(a) and pd.notna(a.iloc[0]["latest_srs"]):
        a = a.iloc[0]
        judged = pd.notna(a["n_ruptures"])
        data["the relationship"] = (f"latest SRS {a['latest_srs']:.1f} (first {a['first_srs']:.1f}); "
                                    + (f"{_plural(int(a['n_ruptures']), 'rupture')}, {int(a['n_repaired'])} repaired" if judged
                                       else "too few rated sessions to judge ruptures")
                                    + ("; a session-rating item below the threshold at the latest session"
                                       if bool(pd.notna(a["latest_low_item"]) and a["latest_low_item"]) else ""))
    else:
        data["the relationship"] = "no alliance measure recorded"
    data["social support and life events"] = "the export holds no data on this"
    data["emotion regulation"] = "the export holds no data on this"
    questions = {
        "risk and crisis": "Has risk been asked about since the client went off track, and what is the plan if it rises?",
        "motivation and goals": "Are the goals still the client's own, and does the client want what the work is offering?",
        "the relationship": "Has the client been asked, directly, what is not working for them in the sessions?",
        "social support and life events": "Has something changed in the client's life or support, and who can help outside the sessions?",
        "emotion regulation": "Is the client overwhelmed by feelings between or in sessions, and would skills for that help first?",
    }
    return pd.DataFrame({"field": list(SUPPORT_FIELDS), "data": [data[f] for f in SUPPORT_FIELDS],
                         "question": [questions[f] for f in SUPPORT_FIELDS]})

