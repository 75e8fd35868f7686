"""Session focus: are sessions working on the client's agreed goals, or on week reviews and drift?

Pure functions (house style, ../shared/DESIGN.md §6): a tidy DataFrame in, a new DataFrame out,
options as keyword arguments; an option left None comes from ``rules=`` (a
:class:`~supervision.rules.FocusRules` or :class:`~supervision.rules.Rules` such as ``caseload.rules``;
None = the ``[focus_metrics]`` section of ``supervision/defaults.toml``, the only place a default is
written; see :func:`focus_options`); the input is never modified. The focus taxonomy (code -> group)
is the ``[[focus.codes]]`` setting (:attr:`Settings.focus_codes`, ``rules.focus.codes``).

Pipeline::

    sf = session_focus(caseload.sessions, caseload.clients, caseload.settings)  # per attended session
    cf = client_focus(sf)                                                      # per client
    cn = clinician_focus(sf)                                                   # per clinician + service
    sa = supervision.metrics.alliance.session_alliance(caseload.sessions)
    ln = focus_alliance_link(sf, sa)                                           # SRS / WAI items on/off goal

Definitions (per attended session; a session whose primary focus is empty or not a code of the
taxonomy is *not recorded* and counts in no share):

- **on goal**: the primary focus is one of the client's agreed goals (``clients.agreed_goals``).
- **check-in**: the primary focus belongs to the ``check_in`` group (week review).
- **crisis**: the primary focus belongs to the ``crisis`` group. Crisis work is a legitimate
  reason to leave the goals, so crisis sessions are counted apart and are never *off goal*.
- **off goal**: the primary focus is neither an agreed goal nor crisis (check-in, a goal area
  nobody agreed, technique, process and admin sessions all count). Technique or process work may
  well serve a goal; ``goal_touched`` (an agreed goal as primary *or* secondary focus) is the
  lenient reading.
- **goal coverage**: on-goal sessions / sessions with a recorded primary focus (crisis sessions
  stay in the denominator, so read coverage beside the crisis share).
- **drift**: the share of consecutive attended-session pairs (both with a recorded focus) whose
  primary focus differs, and the longest run of consecutive off-goal sessions.
- **neglected goal**: an agreed goal that was neither the primary nor a secondary focus in the
  client's last ``neglected_after_sessions`` attended sessions (only judged once the client has
  had that many).
- **agenda-setting rate**: sessions with ``agenda_set`` true / sessions where it was recorded.

When a client has no agreed goals recorded, nothing goal-related can be judged: the goal columns
are <NA>/NaN and ``goals_recorded`` is False, never a coverage of 0.

Sources and certainty (docs/methods.md, ../shared/SYNTH_PARAMETERS.md §7): the
supervisor's question and the measures are the project design (DESIGN.md §1, §4 "Session
focus"). Agenda setting is CTS-R item 1 "agenda setting and adherence" (Blackburn et al. 2001)
[V]; prescribed CBT structure spends about 5 minutes on a mood check and sets the agenda in the
first 10 minutes [V2], so a session *mainly* spent on the week review is off the prescribed
structure. Observed routine rates (agenda 0.6-0.8 of CBT sessions; 1-3 topic shifts per session;
10-30 % off-goal time) are unverified [U]: no benchmark is built in; clinicians are compared with
their own service. Every cut-off here (N sessions for neglect, what counts as off goal) is a
design choice [U] and a setting. The SRS item names follow Duncan et al. (2003) [V2]; WAI-SR goal
items 4, 6, 8, 11 and task items 1, 2, 10, 12 (Hatcher & Gillaspy 2006 key) [V2]
(docs/methods.md §1.2, §1.3). Intervals: Wilson (1927) for rates (§3.1) [V]; Welch (1947) t
interval for mean differences. Sessions of one client are not independent, so every
session-based interval here is too narrow; read it with the number of clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats as _stats

from supervision.metrics._checks import require_columns
from supervision.metrics._frames import as_column, block_codes, sort_frame, sort_positions, take_values
from supervision.metrics.stats import wilson_interval
from supervision.rules import FocusRules, Rules, area_rules, default_rules

__all__ = [
    "session_focus", "client_focus", "clinician_focus", "focus_alliance_link", "focus_options",
    "FOCUS_CATEGORIES", "LINK_MEASURES",
]

#: Values of ``session_focus(...)["focus_category"]`` (mutually exclusive, first match wins in
#: the order: not_recorded, on_goal, crisis, check_in, no_agreed_goals, other_off_goal).
FOCUS_CATEGORIES = ("on_goal", "other_off_goal", "check_in", "crisis", "no_agreed_goals", "not_recorded")
#: Alliance measures compared by :func:`focus_alliance_link`: column of ``session_alliance`` -> label.
LINK_MEASURES = {
    "goals_topics": "SRS goals & topics (0-10)",
    "approach_method": "SRS approach / method (0-10)",
    "wai_goal": "WAI-SR goal subscale (4-20)",
    "wai_task": "WAI-SR task subscale (4-20)",
}
LINK_INTERVAL_NOTE = ("Welch t interval treating sessions as independent; sessions of one client are not, "
                      "so the interval is too narrow")
_CHECK_IN, _CRISIS, _GOAL_AREA = "check_in", "crisis", "goal_area"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_require = require_columns
_RULE_NAMES = ("neglected_after_sessions", "drift_definition", "confidence", "link_min_sessions")


def _rules(rules, function: str, given: dict) -> FocusRules:
    """The focus rules of a call: ``rules`` (None = the defaults), with the options given (not None) on top.

    An option out of range is refused as the settings loader refuses it (``SettingsError`` naming the key).
    """
    return area_rules(FocusRules, rules, function, **{k: given[k] for k in _RULE_NAMES if k in given})



def _check_int(name: str, value, minimum: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
    if not ok:
        raise ValueError(f"{name} must be a whole number >= {minimum}; got {value!r}.")
    return int(value)


def _check_confidence(confidence) -> float:
    ok = isinstance(confidence, (int, float, np.floating)) and not isinstance(confidence, bool)
    if not ok or not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be a number strictly between 0 and 1 (e.g. 0.95); got {confidence!r}.")
    return float(confidence)


def _taxonomy(taxonomy) -> pd.DataFrame:
    """Normalise a taxonomy to a frame ``code, label, group`` (one row per code)."""
    if taxonomy is None:
        taxonomy = default_rules().focus
    if isinstance(taxonomy, Rules):
        taxonomy = taxonomy.focus
    if isinstance(taxonomy, FocusRules):
        taxonomy = taxonomy.codes
    if hasattr(taxonomy, "focus_codes"):  # Settings
        taxonomy = taxonomy.focus_codes
    if isinstance(taxonomy, pd.DataFrame):
        _require(taxonomy, "taxonomy", ["code", "group"], "Give a frame with columns code, group (label optional).")
        label = taxonomy["label"] if "label" in taxonomy.columns else taxonomy["code"]
        frame = pd.DataFrame({"code": taxonomy["code"].astype(str).to_numpy(), "label": label.astype(str).to_numpy(),
                              "group": taxonomy["group"].astype(str).to_numpy()})
    elif isinstance(taxonomy, Mapping):
        frame = pd.DataFrame({"code": list(map(str, taxonomy)), "label": list(map(str, taxonomy)),
                              "group": [str(v) for v in taxonomy.values()]})
    elif isinstance(taxonomy, Iterable) and not isinstance(taxonomy, (str, bytes)):
        rows = []
        for entry in taxonomy:
            if isinstance(entry, Mapping):
                rows.append((str(entry["code"]), str(entry.get("label", entry["code"])), str(entry["group"])))
            elif hasattr(entry, "code") and hasattr(entry, "group"):
                rows.append((str(entry.code), str(getattr(entry, "label", entry.code)), str(entry.group)))
            else:
                raise ValueError(f"taxonomy entries must be FocusCode objects or dicts with code, label, group; "
                                 f"got {entry!r}.")
        frame = pd.DataFrame(rows, columns=["code", "label", "group"])
    else:
        raise ValueError("taxonomy must be Settings, a sequence of FocusCode / {code, label, group} entries, a "
                         f"{{code: group}} dict or a frame with code, group; got {type(taxonomy).__name__}. "
                         "Pass caseload.settings.")
    if frame.empty:
        raise ValueError("taxonomy has no focus codes; pass caseload.settings (its [[focus.codes]]).")
    if frame["code"].duplicated().any():
        dup = frame.loc[frame["code"].duplicated(), "code"].iloc[0]
        raise ValueError(f"taxonomy defines focus code {dup!r} twice.")
    return frame.reset_index(drop=True)


def _factor(values) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) of stripped, non-empty strings; code -1 = missing or empty. Only the distinct
    values are stripped, so a million rows cost one hash pass."""
    codes, raw = pd.factorize(values if isinstance(values, pd.Series) else pd.Series(values, dtype=object))
    cleaned = [str(u).strip() for u in raw]
    new_codes, uniques = pd.factorize(np.array([c if c else None for c in cleaned] + [None], dtype=object))
    return new_codes[codes], np.asarray(uniques, dtype=object)  # codes -1 pick the trailing None -> -1


def _take(uniques, codes) -> pd.api.extensions.ExtensionArray:
    """String array ``uniques[codes]`` (<NA> where the code is -1), built without a per-row Python loop."""
    small = pd.array([*(None if u is None else str(u) for u in uniques), None], dtype="str")
    codes = np.asarray(codes, dtype=np.int64)
    return small.take(np.where(codes < 0, len(small) - 1, codes))


def _split_codes(values, code_index: pd.Index, factored: tuple | None = None) -> pd.DataFrame:
    """Explode ';'-separated codes: frame ``row`` (position), ``code`` (index into ``code_index``), in
    the given order per row, unknown codes and repeats dropped. Only distinct strings are parsed."""
    codes, uniques = factored if factored is not None else _factor(values)
    # the codes of every distinct string, looked up at once; unknown codes and repeats within a string dropped
    parts = [(j, p.strip()) for j, u in enumerate(uniques) for p in str(u).split(";")]
    owner = np.array([j for j, _ in parts], dtype=np.int64)
    idx = code_index.get_indexer([p for _, p in parts]) if parts else np.zeros(0, np.int64)
    owner, idx = owner[idx >= 0], idx[idx >= 0].astype(np.int64)
    _, first = np.unique(owner * max(len(code_index), 1) + idx, return_index=True)
    first = np.sort(first)  # owners stay in order, codes in their given order
    owner, flat = owner[first], idx[first]
    lengths = np.append(np.bincount(owner, minlength=len(uniques)), 0).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    per_row = lengths[codes]  # -1 (missing) -> the trailing 0
    total = int(per_row.sum())
    row = np.repeat(np.arange(len(codes), dtype=np.int64), per_row)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    code = flat[offsets[codes[row]] + within] if total else np.zeros(0, np.int64)
    return pd.DataFrame({"row": row, "code": code})


def _member(keys: np.ndarray, members: np.ndarray, size: int) -> np.ndarray:
    """``np.isin(keys, members)`` for integer keys in ``[0, size)`` (client x code), by a lookup table."""
    if size > 50_000_000:  # a table that large would cost more than it saves
        return np.isin(keys, members)
    table = np.zeros(size, bool)
    table[members] = True
    return table[keys]


def _bool_na(values, known) -> pd.arrays.BooleanArray:
    known = np.asarray(known, dtype=bool)
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool) & known, ~known)


def _int_na(values, known) -> pd.arrays.IntegerArray:
    known = np.asarray(known, dtype=bool)
    return pd.arrays.IntegerArray(np.where(known, np.asarray(values), 0).astype(np.int64), ~known)


def _join_codes(rows: np.ndarray, codes: np.ndarray, names: np.ndarray, n_rows: int) -> np.ndarray:
    """';'-join the code names per row (in the given order within a row); '' for rows without codes."""
    out = np.full(n_rows, "", dtype=object)
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return out
    order = np.argsort(rows, kind="stable")
    rows, codes = rows[order], np.asarray(codes)[order]
    first = np.r_[True, rows[1:] != rows[:-1]]
    rank = np.arange(len(rows)) - np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
    for k in range(int(rank.max()) + 1):
        sel = rank == k
        r = rows[sel]
        out[r] = names[codes[sel]] if k == 0 else out[r] + ";" + names[codes[sel]]
    return out


def _ratio(k, n) -> np.ndarray:
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    return np.divide(k, n, out=np.full(k.shape, np.nan), where=n > 0)


def _flag(frame: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(value, known) arrays of a nullable boolean column."""
    v = frame[col].astype("boolean")
    return v.fillna(False).to_numpy(dtype=bool), v.notna().to_numpy()


# --------------------------------------------------------------------------------------------
# per session
# --------------------------------------------------------------------------------------------

_SESSION_COLUMNS = [
    "client_id", "clinician_id", "session_date", "session_number", "agreed_goals", "n_agreed_goals",
    "goals_recorded", "focus_primary", "focus_label", "focus_group", "focus_recorded", "on_goal", "check_in",
    "crisis", "off_goal", "unagreed_goal_area", "focus_secondary", "secondary_goals", "goal_in_secondary",
    "goal_touched", "focus_changed", "goal_switch", "focus_drift", "agenda_set", "focus_category",
]


DRIFT_DEFINITIONS = ("off_goal", "any_change")
_DRIFT_GROUPS = ("goal_area", "process", "admin")  # an off-goal focus in these groups is a drift move


def _drift_flags(focus: pd.DataFrame, drift_definition: str) -> tuple[np.ndarray, np.ndarray]:
    """(drifted, decidable) per session pair under ``drift_definition``."""
    if drift_definition not in DRIFT_DEFINITIONS:
        raise ValueError(f"drift_definition must be one of {', '.join(DRIFT_DEFINITIONS)}; got {drift_definition!r}.")
    if drift_definition == "off_goal" and "focus_drift" in focus.columns:
        return _flag(focus, "focus_drift")
    return _flag(focus, "focus_changed")


def session_focus(sessions: pd.DataFrame, clients: pd.DataFrame, taxonomy=None) -> pd.DataFrame:
    """Focus of every attended session, judged against the client's agreed goals.

    Parameters
    ----------
    sessions : DataFrame
        The canonical ``sessions`` table (data/README.md): ``client_id``, ``clinician_id``,
        ``session_date``, ``attendance`` and, when recorded, ``focus_primary`` (one code),
        ``focus_secondary`` (``;``-separated codes) and ``agenda_set`` (yes/no). Absent focus
        columns are read as not recorded. Only ``attendance == "attended"`` rows are used.
        Not modified.
    clients : DataFrame
        The canonical ``clients`` table: ``client_id`` and ``agreed_goals`` (``;``-separated
        focus codes; empty = no goals recorded). Sessions of a client missing from it are
        treated as having no goals recorded. Not modified.
    taxonomy : Settings, Rules, FocusRules, sequence of FocusCode, dict or DataFrame, optional
        The focus codes and their groups: ``caseload.rules`` or ``caseload.settings`` (its ``[[focus.codes]]``), a
        sequence of ``FocusCode``/``{code, label, group}``, a ``{code: group}`` dict or a frame
        with ``code, group`` (and ``label``). Default: the default settings' taxonomy.

    Returns
    -------
    DataFrame
        One row per attended session, sorted by ``client_id`` then ``session_date``:

        - ``client_id``, ``clinician_id``, ``session_date``: as given.
        - ``session_number``: 1-based number among the client's attended sessions (the same
          numbering as :func:`supervision.metrics.alliance.session_alliance`).
        - ``agreed_goals``: the client's agreed goals, ``;``-separated, known codes only, in the
          given order ('' when none); ``n_agreed_goals``; ``goals_recorded`` (bool): at least one.
        - ``focus_primary``: the code as given (<NA> when empty); ``focus_label``,
          ``focus_group``: from the taxonomy (<NA> when empty or not a taxonomy code).
        - ``focus_recorded`` (bool): the primary focus is a code of the taxonomy. Unknown codes
          count as not recorded (the loader already clears them with a warning).
        - ``on_goal`` (nullable bool): the primary focus is an agreed goal. <NA> when the focus
          is not recorded or the client has no agreed goals recorded.
        - ``check_in``, ``crisis`` (nullable bool): primary focus in the ``check_in`` /
          ``crisis`` group; <NA> when not recorded.
        - ``off_goal`` (nullable bool): neither an agreed goal nor crisis (check-in, other goal
          areas, technique, process, admin); <NA> when ``on_goal`` is <NA>.
        - ``unagreed_goal_area`` (nullable bool): the primary focus is a ``goal_area`` code that is
          not an agreed goal (drift to a topic nobody agreed on); <NA> as ``on_goal``.
        - ``focus_secondary``: as given (<NA> when empty).
        - ``secondary_goals``: the agreed goals among the secondary codes, ``;``-separated ('' when
          none; <NA> when no goals are recorded).
        - ``goal_in_secondary`` (nullable bool): at least one secondary code is an agreed goal
          (<NA> when no goals are recorded).
        - ``goal_touched`` (nullable bool): ``on_goal or goal_in_secondary`` (Kleene logic), the
          lenient reading of "worked on a goal".
        - ``focus_changed`` (nullable bool): the primary focus differs from that of the client's
          previous attended session; <NA> at the first session or when either focus is not
          recorded.
        - ``goal_switch`` (nullable bool): a focus change from one *agreed* goal to another (both
          sessions on goal); <NA> as ``focus_changed``.
        - ``focus_drift`` (nullable bool): the focus changed *to* a topic off the agreed goals:
          a goal area nobody agreed, process talk or admin (groups ``goal_area``, ``process``,
          ``admin``). Not drift: moving between agreed goals or back to one, a check-in (its own
          measure, check-in dominance), crisis work (legitimate) and technique work (skills,
          psychoeducation, homework review usually serve a goal). <NA> when ``focus_changed`` is <NA> or no goals are recorded.
          This is the default reading of drift (``drift_definition = "off_goal"``) [U: design
          reading of DESIGN.md §4 "working on the agreed goals, or on week reviews and drift?";
          no published drift definition].
        - ``agenda_set`` (nullable bool): as given (<NA> when not recorded).
        - ``focus_category``: one of :data:`FOCUS_CATEGORIES`, first match in the order
          ``not_recorded``, ``on_goal``, ``crisis``, ``check_in``, ``no_agreed_goals`` (recorded
          focus, but the client has no agreed goals to judge it by), ``other_off_goal``.
        - ``source_row``: the line in the user's file, when the input has it.

    Raises
    ------
    ValueError
        When a required column is missing or the taxonomy cannot be read.

    Notes
    -----
    Definitions and sources: see the module docstring. An agreed goal may be any taxonomy code
    (e.g. ``crisis_risk`` for a safety plan); ``on_goal`` then takes precedence over ``crisis``.
    """
    _require(sessions, "sessions", ["client_id", "clinician_id", "session_date", "attendance"],
             "Load the export with supervision.load_caseload() to get the canonical sessions table.")
    _require(clients, "clients", ["client_id", "agreed_goals"],
             "Pass the canonical clients table (supervision.load_caseload().clients).")
    tax = _taxonomy(taxonomy)
    code_index = pd.Index(tax["code"].to_numpy(dtype=object))
    names = tax["code"].to_numpy(dtype=object)
    labels = tax["label"].to_numpy(dtype=object)
    groups = tax["group"].to_numpy(dtype=object)
    K = len(code_index)

    attended = np.flatnonzero((sessions["attendance"] == "attended").fillna(False).to_numpy(dtype=bool))
    wanted = ["client_id", "clinician_id", "session_date", "focus_primary", "focus_secondary", "agenda_set",
              "source_row"]
    keys = ["client_id", "session_date"] + (["source_row"] if "source_row" in sessions.columns else [])
    rows = sort_positions(sessions, keys, attended)  # the attended sessions, sorted by keys
    s = sessions[[c for c in wanted if c in sessions.columns]].take(rows)
    n = len(s)

    out = pd.DataFrame({
        "client_id": take_values(sessions["client_id"], rows),
        "clinician_id": take_values(sessions["clinician_id"], rows),
        "session_date": sessions["session_date"].to_numpy()[rows],
    })
    ccode, cids = block_codes(out["client_id"])  # sorted: each client's rows are contiguous
    n_cl = len(cids)
    counts = np.bincount(ccode, minlength=n_cl)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    out["session_number"] = np.arange(n, dtype=np.int64) - starts[ccode] + 1

    # agreed goals per client (known codes, order kept, repeats dropped)
    c = clients.drop_duplicates("client_id")
    goal_pairs = _split_codes(c["agreed_goals"], code_index)
    goal_client = pd.Index(cids).get_indexer(c["client_id"].to_numpy()[goal_pairs["row"].to_numpy()])
    keep = goal_client >= 0
    g_client, g_code = goal_client[keep], goal_pairs["code"].to_numpy()[keep]
    n_goals = np.bincount(g_client, minlength=n_cl)
    goal_str = _join_codes(g_client, g_code, names, n_cl)
    goal_keys = g_client.astype(np.int64) * K + g_code
    has_goals = (n_goals > 0)[ccode]
    out["agreed_goals"] = _take(goal_str, ccode)
    out["n_agreed_goals"] = n_goals[ccode].astype(np.int64)
    out["goals_recorded"] = has_goals

    # primary focus
    if "focus_primary" in s.columns:
        p_codes, p_uniq = _factor(s["focus_primary"])
    else:
        p_codes, p_uniq = np.full(n, -1, dtype=np.int64), np.zeros(0, dtype=object)
    to_tax = np.append(code_index.get_indexer(p_uniq) if len(p_uniq) else np.zeros(0, np.int64), -1)
    pcode = to_tax[p_codes].astype(np.int64)  # index into the taxonomy, -1 = not recorded
    rec = pcode >= 0
    safe = np.maximum(pcode, 0)
    out["focus_primary"] = _take(p_uniq, p_codes)
    out["focus_label"] = _take(labels, pcode)
    out["focus_group"] = _take(groups, pcode)
    out["focus_recorded"] = rec
    on = rec & _member(np.where(rec, ccode.astype(np.int64) * K + pcode, 0), goal_keys, n_cl * K)
    judged = rec & has_goals
    is_ci = rec & (groups == _CHECK_IN)[safe]
    is_cr = rec & (groups == _CRISIS)[safe]
    is_area = rec & (groups == _GOAL_AREA)[safe]
    out["on_goal"] = _bool_na(on, judged)
    out["check_in"] = _bool_na(is_ci, rec)
    out["crisis"] = _bool_na(is_cr, rec)
    out["off_goal"] = _bool_na(~on & ~is_cr, judged)
    out["unagreed_goal_area"] = _bool_na(~on & is_area, judged)

    # secondary foci
    if "focus_secondary" in s.columns:
        sec_f = _factor(s["focus_secondary"])
    else:
        sec_f = (np.full(n, -1, dtype=np.int64), np.zeros(0, dtype=object))
    sec = _split_codes(None, code_index, factored=sec_f)
    out["focus_secondary"] = _take(sec_f[1], sec_f[0])
    srow, scode = sec["row"].to_numpy(dtype=np.int64), sec["code"].to_numpy(dtype=np.int64)
    hit = _member(ccode[srow].astype(np.int64) * K + scode, goal_keys, n_cl * K) if len(srow) else np.zeros(0, bool)
    sec_goals = _join_codes(srow[hit], scode[hit], names, n)
    in_sec = sec_goals != ""
    sg_codes, sg_uniq = pd.factorize(sec_goals)
    out["secondary_goals"] = _take(sg_uniq, np.where(has_goals, sg_codes, -1))
    out["goal_in_secondary"] = _bool_na(in_sec, has_goals)
    out["goal_touched"] = out["on_goal"] | out["goal_in_secondary"]

    # change of primary focus since the previous attended session of the same client
    prev_same = np.zeros(n, bool)
    changed = np.zeros(n, bool)
    if n > 1:
        prev_same[1:] = ccode[1:] == ccode[:-1]
        changed[1:] = pcode[1:] != pcode[:-1]
    prev_rec = np.zeros(n, bool)
    prev_rec[1:] = rec[:-1]
    out["focus_changed"] = _bool_na(changed, prev_same & rec & prev_rec)
    prev_on = np.zeros(n, bool)
    prev_on[1:] = on[:-1]
    out["goal_switch"] = _bool_na(changed & on & prev_on, prev_same & rec & prev_rec)
    is_drift_group = rec & np.isin(groups, _DRIFT_GROUPS)[safe]
    out["focus_drift"] = _bool_na(changed & ~on & is_drift_group, prev_same & rec & prev_rec & judged)

    if "agenda_set" in s.columns:
        try:
            agenda = s["agenda_set"].astype("boolean")
        except (TypeError, ValueError):
            bad = [v for v in pd.unique(s["agenda_set"].dropna()) if v not in (True, False, 0, 1)][:5]
            raise ValueError(f"sessions.agenda_set must be true/false or empty; got values such as {bad!r}. "
                             "Load the export with supervision.load_caseload(), which reads yes/no and 1/0.") from None
        out["agenda_set"] = pd.array(agenda.to_numpy(), dtype="boolean")
    else:
        out["agenda_set"] = pd.array([pd.NA] * n, dtype="boolean")

    cat_names = ["not_recorded", "on_goal", "crisis", "check_in", "no_agreed_goals", "other_off_goal"]
    cat = np.select([~rec, on, is_cr, is_ci, ~has_goals], [0, 1, 2, 3, 4], default=5)
    out["focus_category"] = _take(cat_names, cat)
    out = out[_SESSION_COLUMNS]
    if "source_row" in s.columns:
        out["source_row"] = s["source_row"].to_numpy()
    return out


# --------------------------------------------------------------------------------------------
# per client
# --------------------------------------------------------------------------------------------

_FOCUS_REQUIRED = ["client_id", "clinician_id", "session_date", "session_number", "agreed_goals", "goals_recorded",
                   "focus_primary", "focus_recorded", "on_goal", "check_in", "crisis", "off_goal",
                   "unagreed_goal_area", "secondary_goals", "goal_touched", "focus_changed", "agenda_set"]
_FOCUS_FIX = "Pass the output of session_focus(sessions, clients, settings)."


def client_focus(
    focus: pd.DataFrame,
    *,
    neglected_after_sessions: int | None = None,
    drift_definition: str | None = None,
    rules=None,
) -> pd.DataFrame:
    """Focus per client: goal coverage, check-in dominance, drift, neglected goals, agenda setting.

    Parameters
    ----------
    focus : DataFrame
        Output of :func:`session_focus`. Not modified.
    neglected_after_sessions : int, optional (default: the rules, ``[focus_metrics]`` in defaults.toml)
        An agreed goal is *neglected* when it was neither the primary nor a secondary focus in
        the client's last this-many attended sessions; clients with fewer attended sessions are
        not judged. [U] design choice: no published threshold; 4 is about a month of weekly
        sessions. Only sessions with a **recorded** primary focus count: a session with no
        focus recorded says nothing about which goal was worked on, so the window is the last
        this-many sessions *with a recorded focus*, and a client with fewer of them is not judged.
    drift_definition : {"off_goal", "any_change"}, optional (default: the rules, ``[focus_metrics]`` in defaults.toml)
        What counts as drift. ``"off_goal"``: a change of primary focus to an unagreed goal
        area, process talk or admin (``focus_drift`` of :func:`session_focus`); a switch between
        two agreed goals is the work, not drift, check-ins have their own measure, crisis and
        technique work serve the client. ``"any_change"``: every change of primary focus (the first wave's rule, under
        which a client alternating between two agreed goals scored 1.0). [U: design reading of
        DESIGN.md §4; no published drift definition.]

    Returns
    -------
    DataFrame
        One row per client with an attended session, sorted by ``client_id``:

        - ``client_id``, ``clinician_id`` (of the client's first attended session)
        - ``agreed_goals``, ``n_agreed_goals``, ``goals_recorded`` (bool): as in :func:`session_focus`
        - ``n_sessions``: attended sessions; ``n_focus_recorded``: those with a recorded primary focus
        - ``n_on_goal``, ``goal_coverage`` = n_on_goal / n_focus_recorded. NaN when no goals are
          recorded (``goals_recorded`` False: unknown, not 0) or no focus is recorded. Crisis
          sessions stay in the denominator.
        - ``n_check_in``, ``check_in_share`` = n_check_in / n_focus_recorded (check-in dominance)
        - ``n_crisis``, ``crisis_share`` = n_crisis / n_focus_recorded
        - ``n_off_goal``, ``off_goal_share`` = n_off_goal / n_focus_recorded (NaN without goals)
        - ``n_unagreed_goal_area``, ``unagreed_goal_share``: primary focus on a goal area nobody
          agreed, over n_focus_recorded (NaN without goals)
        - ``n_goal_touched``, ``goal_touched_share``: an agreed goal as primary or secondary focus,
          over n_focus_recorded (NaN without goals); the lenient coverage
        - ``n_pairs``: consecutive attended-session pairs with both foci recorded (and, for
          ``"off_goal"``, agreed goals to judge by); ``n_changes``: the pairs that drifted
          (``drift_definition``); ``drift_rate`` = n_changes / n_pairs (NaN if no pair);
          ``n_goal_switches``: pairs that switched from one agreed goal to another (not drift)
        - ``longest_off_goal_run`` (Int64): most consecutive attended sessions that were off goal
          (a crisis, on-goal or unrecorded session ends a run); <NA> without goals
        - ``n_agenda_recorded``, ``n_agenda_set``, ``agenda_rate`` = n_agenda_set / n_agenda_recorded
        - ``neglect_judged`` (bool): goals recorded and at least ``neglected_after_sessions``
          attended sessions with a recorded focus
        - ``neglected_goals``: agreed goals not worked on (primary or secondary) in the last
          ``neglected_after_sessions`` sessions with a recorded focus, ``;``-separated ('' none;
          <NA> not judged)
        - ``n_neglected_goals`` (Int64; <NA> when not judged)
        - ``last_session_date``: date of the latest attended session
    """
    r = _rules(rules, "client_focus()", locals())  # the rules, with the keywords given here on top
    neglected_after_sessions, drift_definition = r.neglected_after_sessions, r.drift_definition
    _require(focus, "focus", _FOCUS_REQUIRED, _FOCUS_FIX)
    N = _check_int("neglected_after_sessions", neglected_after_sessions, 1)

    f = sort_frame(focus, ["client_id", "session_number"])
    code, ids = block_codes(f["client_id"])
    k, n = len(ids), len(f)
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if n else np.zeros(0, np.int64)

    def total(flag: str) -> np.ndarray:
        v, _ = _flag(f, flag)
        return np.bincount(code, weights=v, minlength=k).astype(np.int64)

    out = pd.DataFrame({"client_id": as_column(ids)})
    out["clinician_id"] = take_values(f["clinician_id"], starts)
    out["agreed_goals"] = take_values(f["agreed_goals"], starts)
    if "n_agreed_goals" in f.columns:
        out["n_agreed_goals"] = f["n_agreed_goals"].to_numpy()[starts].astype(np.int64)
    else:
        out["n_agreed_goals"] = out["agreed_goals"].fillna("").map(lambda x: len([c for c in x.split(";") if c]))
    goals = f["goals_recorded"].astype(bool).to_numpy()[starts]
    out["goals_recorded"] = goals
    n_sess = np.bincount(code, minlength=k).astype(np.int64)
    out["n_sessions"] = n_sess
    n_rec = total("focus_recorded")
    out["n_focus_recorded"] = n_rec
    rec_with_goals = np.where(goals, n_rec, 0)

    for name, share, denom in (("on_goal", "goal_coverage", rec_with_goals), ("check_in", "check_in_share", n_rec),
                               ("crisis", "crisis_share", n_rec), ("off_goal", "off_goal_share", rec_with_goals),
                               ("unagreed_goal_area", "unagreed_goal_share", rec_with_goals),
                               ("goal_touched", "goal_touched_share", rec_with_goals)):
        cnt = total(name)
        out[f"n_{name}"] = cnt
        out[share] = _ratio(cnt, denom)

    changed, known = _drift_flags(f, drift_definition)
    switch, s_known = _flag(f, "goal_switch") if "goal_switch" in f.columns else (np.zeros(n, bool), np.zeros(n, bool))
    out["n_pairs"] = np.bincount(code, weights=known, minlength=k).astype(np.int64)
    out["n_changes"] = np.bincount(code, weights=changed & known, minlength=k).astype(np.int64)
    out["n_goal_switches"] = np.bincount(code, weights=switch & s_known, minlength=k).astype(np.int64)
    out["drift_rate"] = _ratio(out["n_changes"], out["n_pairs"])

    # longest run of consecutive off-goal sessions (runs never cross clients)
    off, _ = _flag(f, "off_goal")
    longest = np.zeros(k, np.int64)
    if off.any():
        prev_off = np.r_[False, off[:-1] & (code[1:] == code[:-1])]
        run_start = off & ~prev_off
        run_id = np.cumsum(run_start) - 1
        lengths = np.bincount(run_id[off])
        np.maximum.at(longest, code[run_start], lengths)
    out["longest_off_goal_run"] = _int_na(longest, goals)

    agenda, a_known = _flag(f, "agenda_set")
    out["n_agenda_recorded"] = np.bincount(code, weights=a_known, minlength=k).astype(np.int64)
    out["n_agenda_set"] = np.bincount(code, weights=agenda & a_known, minlength=k).astype(np.int64)
    out["agenda_rate"] = _ratio(out["n_agenda_set"], out["n_agenda_recorded"])

    # neglected goals: agreed goals not touched (primary or secondary) in the last N sessions
    # the window is the last N sessions with a recorded focus (an unrecorded session is no evidence)
    rec_f, _ = _flag(f, "focus_recorded")
    judged = goals & (n_rec >= N)
    out["neglect_judged"] = judged
    rank = np.cumsum(rec_f) - np.r_[0, np.cumsum(rec_f)][starts][code] if n else np.zeros(0, np.int64)
    recent = judged[code] & rec_f & (rank > (n_rec[code] - N))
    g_codes, g_uniq = _factor(out["agreed_goals"])
    p_codes, p_uniq = _factor(f["focus_primary"])
    vocab = [c.strip() for u in g_uniq for c in str(u).split(";")] + [str(u) for u in p_uniq]
    codes_idx = pd.Index(pd.unique(np.array(vocab, dtype=object))) if vocab else pd.Index([], dtype=object)
    K = max(len(codes_idx), 1)
    touched_keys = []
    r_idx = np.flatnonzero(recent)
    if len(r_idx):
        pc = np.append(codes_idx.get_indexer(p_uniq) if len(p_uniq) else np.zeros(0, np.int64), -1)[p_codes[r_idx]]
        touched_keys.append(code[r_idx][pc >= 0].astype(np.int64) * K + pc[pc >= 0])
        sec = _split_codes(f["secondary_goals"].iloc[r_idx], codes_idx)
        touched_keys.append(code[r_idx][sec["row"].to_numpy()].astype(np.int64) * K + sec["code"].to_numpy())
    touched = np.concatenate(touched_keys) if touched_keys else np.zeros(0, np.int64)
    gp = _split_codes(None, codes_idx, factored=(np.where(judged, g_codes, -1), g_uniq))
    grow, gcode = gp["row"].to_numpy(dtype=np.int64), gp["code"].to_numpy(dtype=np.int64)
    neglected = ~_member(grow * K + gcode, touched, k * K)
    names = codes_idx.to_numpy(dtype=object)
    neg_str = _join_codes(grow[neglected], gcode[neglected], names, k)
    ng_codes, ng_uniq = pd.factorize(neg_str)
    out["neglected_goals"] = _take(ng_uniq, np.where(judged, ng_codes, -1))
    out["n_neglected_goals"] = _int_na(np.bincount(grow[neglected], minlength=k), judged)
    out["last_session_date"] = f["session_date"].groupby(code).max().reindex(range(k)).to_numpy() if n else \
        f["session_date"].to_numpy()[:0]
    return out


# --------------------------------------------------------------------------------------------
# per clinician, with the whole service
# --------------------------------------------------------------------------------------------

_RATES = (  # rate, denominator column (numerators are set in clinician_focus)
    ("coverage_rate", "n_goal_judged"),
    ("check_in_rate", "n_focus_recorded"),
    ("drift_rate", "n_pairs"),
    ("unagreed_goal_rate", "n_goal_judged"),
    ("crisis_rate", "n_focus_recorded"),
    ("agenda_rate", "n_agenda_recorded"),
)


def clinician_focus(
    focus: pd.DataFrame,
    *,
    client_focus_frame: pd.DataFrame | None = None,
    confidence: float | None = None,
    neglected_after_sessions: int | None = None,
    drift_definition: str | None = None,
    rules=None,
) -> pd.DataFrame:
    """Focus per clinician, and the same figures for the whole service (``scope == "service"``).

    Parameters
    ----------
    focus : DataFrame
        Output of :func:`session_focus`. Not modified.
    client_focus_frame : DataFrame, optional
        Output of :func:`client_focus` for the same sessions; computed with
        ``neglected_after_sessions`` if not given.
    confidence : float, optional (default: the rules, ``[focus_metrics]`` in defaults.toml)
        Level of the Wilson intervals (Wilson 1927; Newcombe 1998; docs/methods.md §3.1 [V]).
    neglected_after_sessions : int, optional (default: the rules, ``[focus_metrics]`` in defaults.toml)
        As in :func:`client_focus`.
    drift_definition : {"off_goal", "any_change"}, optional (default: the rules, ``[focus_metrics]`` in defaults.toml)
        As in :func:`client_focus`: by default a switch between two agreed goals, a check-in or
        crisis work is not drift.

    Returns
    -------
    DataFrame
        One row per clinician (``scope`` = clinician id, sorted) and a last row ``scope ==
        "service"`` (all clinicians pooled, the clinician included). Session counts use the
        session's clinician, client counts the client's first attended session's clinician.

        - ``scope``, ``n_clients`` (with an attended session), ``n_clients_no_goals`` (no agreed
          goals recorded), ``n_sessions`` (attended), ``n_focus_recorded``, ``n_goal_judged``
          (focus recorded and the client has agreed goals)
        - ``n_on_goal``, ``coverage_rate`` = n_on_goal / n_goal_judged
        - ``n_check_in``, ``check_in_rate`` = n_check_in / n_focus_recorded
        - ``n_pairs``, ``n_changes``, ``drift_rate`` = n_changes / n_pairs (consecutive attended
          sessions, both recorded, that drifted: see ``drift_definition``)
        - ``n_unagreed_goal_area``, ``unagreed_goal_rate`` = n_unagreed_goal_area / n_goal_judged
          (primary focus on a goal area nobody agreed: drift in topic, not only in sequence)
        - ``n_crisis``, ``crisis_rate`` = n_crisis / n_focus_recorded
        - ``n_agenda_recorded``, ``n_agenda_set``, ``agenda_rate`` = n_agenda_set / n_agenda_recorded
        - for each rate ``X``: ``X_lower``, ``X_upper``, its Wilson interval. The unit is the
          session (or pair), but sessions of one client are not independent, so the intervals
          are too narrow, most for clinicians with few clients and long series; read them with
          ``n_clients``.
        - ``n_clients_coverage`` (clients with a defined ``goal_coverage``),
          ``mean_client_coverage`` (unweighted mean of the clients' ``goal_coverage``: every
          client counts once, however many sessions)
        - ``n_neglect_judged``, ``n_clients_neglected`` (judged clients with at least one
          neglected goal)
    """
    r = _rules(rules, "clinician_focus()", locals())  # the rules, with the keywords given here on top
    confidence, neglected_after_sessions, drift_definition = r.confidence, r.neglected_after_sessions, r.drift_definition
    _require(focus, "focus", _FOCUS_REQUIRED, _FOCUS_FIX)
    conf = _check_confidence(confidence)
    N = _check_int("neglected_after_sessions", neglected_after_sessions, 1)
    cf = (client_focus(focus, neglected_after_sessions=N, drift_definition=drift_definition)
          if client_focus_frame is None else client_focus_frame)
    _require(cf, "client_focus_frame", ["client_id", "clinician_id", "goals_recorded", "goal_coverage",
                                        "neglect_judged", "n_neglected_goals"],
             "Pass the output of client_focus(focus).")

    scopes = sorted(set(pd.unique(focus["clinician_id"].dropna()).tolist())
                    | set(pd.unique(cf["clinician_id"].dropna()).tolist()))
    index = pd.Index([*scopes, "service"], name="scope")
    k = len(scopes)
    sc_codes, sc_ids = pd.factorize(focus["clinician_id"])
    sc = np.append(pd.Index(scopes).get_indexer(sc_ids.to_numpy(dtype=object, na_value=None)), -1)[sc_codes]
    ok = sc >= 0

    def both(values: np.ndarray) -> np.ndarray:
        per = np.bincount(sc[ok], weights=values[ok], minlength=k)
        return np.append(per, values[ok].sum()).astype(np.int64)

    out = pd.DataFrame(index=index)
    ccl = pd.Index(scopes).get_indexer(cf["clinician_id"].to_numpy(dtype=object, na_value=None))
    cok = ccl >= 0

    def both_clients(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        per = np.bincount(ccl[cok], weights=values[cok], minlength=k)
        return np.append(per, values[cok].sum())

    goals_c = cf["goals_recorded"].astype(bool).to_numpy()
    out["n_clients"] = both_clients(np.ones(len(cf))).astype(np.int64)
    out["n_clients_no_goals"] = both_clients(~goals_c).astype(np.int64)
    ones = np.ones(len(focus))
    out["n_sessions"] = both(ones)
    rec, _ = _flag(focus, "focus_recorded")
    judged = rec & focus["goals_recorded"].astype(bool).to_numpy()
    out["n_focus_recorded"] = both(rec.astype(float))
    out["n_goal_judged"] = both(judged.astype(float))
    counts = {}
    for col in ("on_goal", "check_in", "unagreed_goal_area", "crisis"):
        v, _ = _flag(focus, col)
        counts[col] = both(v.astype(float))
    changed, known = _drift_flags(focus, drift_definition)
    agenda, a_known = _flag(focus, "agenda_set")
    out["n_pairs"] = both(known.astype(float))
    out["n_changes"] = both((changed & known).astype(float))
    out["n_agenda_recorded"] = both(a_known.astype(float))
    out["n_agenda_set"] = both((agenda & a_known).astype(float))
    numerators = {"coverage_rate": counts["on_goal"], "check_in_rate": counts["check_in"],
                  "drift_rate": out["n_changes"].to_numpy(), "unagreed_goal_rate": counts["unagreed_goal_area"],
                  "crisis_rate": counts["crisis"], "agenda_rate": out["n_agenda_set"].to_numpy()}
    count_names = {"coverage_rate": "n_on_goal", "check_in_rate": "n_check_in",
                   "unagreed_goal_rate": "n_unagreed_goal_area", "crisis_rate": "n_crisis"}
    for name, denom in _RATES:
        kk = numerators[name]
        nn = out[denom].to_numpy()
        if name in count_names:
            out[count_names[name]] = kk
        out[name] = _ratio(kk, nn)
        lo, hi = wilson_interval(kk, nn, conf)
        out[f"{name}_lower"], out[f"{name}_upper"] = lo, hi

    cov = pd.to_numeric(cf["goal_coverage"], errors="coerce").to_numpy(dtype=float)
    has_cov = ~np.isnan(cov)
    out["n_clients_coverage"] = both_clients(has_cov).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean_client_coverage"] = both_clients(np.where(has_cov, cov, 0.0)) / out["n_clients_coverage"].to_numpy()
    nj = cf["neglect_judged"].astype(bool).to_numpy()
    nneg = pd.array(cf["n_neglected_goals"], dtype="Int64").fillna(0).to_numpy(dtype=np.int64)
    out["n_neglect_judged"] = both_clients(nj).astype(np.int64)
    out["n_clients_neglected"] = both_clients(nj & (nneg > 0)).astype(np.int64)

    order = ["n_clients", "n_clients_no_goals", "n_sessions", "n_focus_recorded", "n_goal_judged"]
    for name, denom in _RATES:
        cnt = {"drift_rate": ["n_pairs", "n_changes"], "agenda_rate": ["n_agenda_recorded", "n_agenda_set"]}.get(
            name, [count_names.get(name)])
        order += [c for c in cnt if c not in order] + [name, f"{name}_lower", f"{name}_upper"]
    order += ["n_clients_coverage", "mean_client_coverage", "n_neglect_judged", "n_clients_neglected"]
    return out[order].reset_index()


# --------------------------------------------------------------------------------------------
# link to the client's own view of the session
# --------------------------------------------------------------------------------------------

def focus_alliance_link(
    focus: pd.DataFrame,
    alliance: pd.DataFrame,
    *,
    confidence: float | None = None,
    link_min_sessions: int | None = None,
    rules=None,
) -> pd.DataFrame:
    """Client-rated goals and method items on on-goal versus off-goal sessions, per clinician and service.

    Parameters
    ----------
    focus : DataFrame
        Output of :func:`session_focus`. Not modified.
    alliance : DataFrame
        Output of :func:`supervision.metrics.alliance.session_alliance` for the same sessions
        (``goals_topics`` = SRS item 2, ``approach_method`` = SRS item 3, ``wai_goal`` and
        ``wai_task``: WAI-SR subscale sums, present only when all four items were answered).
        Joined on ``client_id``, ``session_number`` and ``session_date``. Not modified.
    confidence : float, optional (default: the rules, ``[focus_metrics]`` in defaults.toml)
        Level of the Welch t interval of the difference.
    link_min_sessions : int, optional (default: the rules, ``[focus_metrics]`` in defaults.toml)
        Sessions needed in *each* group (on goal, off goal) before the difference is estimated
        [U design choice]; with fewer, the means are shown and the difference is NaN.

    Returns
    -------
    DataFrame
        One row per scope (each clinician, sorted, then ``"service"``) and measure (the order of
        :data:`LINK_MEASURES`), for measures with at least one score in the data:

        - ``scope``, ``measure`` (column name), ``measure_label``
        - ``n_on_goal``, ``n_off_goal``: scored sessions on goal / off goal (crisis sessions,
          sessions without a recorded focus and clients without agreed goals are left out)
        - ``n_clients_on_goal``, ``n_clients_off_goal``: distinct clients behind them
        - ``mean_on_goal``, ``mean_off_goal``, ``sd_on_goal``, ``sd_off_goal`` (ddof 1)
        - ``difference`` = mean_off_goal - mean_on_goal (negative: off-goal sessions rated lower)
        - ``difference_lower``, ``difference_upper``: Welch (1947) t interval at ``confidence``
        - ``df``: Welch-Satterthwaite degrees of freedom
        - ``estimated`` (bool): both groups have at least ``link_min_sessions`` sessions (else
          difference and interval are NaN)
        - ``interval_note``: the interval treats sessions as independent; several sessions of one
          client are not, so it is too narrow (a mixed model with a client effect would be the
          honest test; not done here).

    Notes
    -----
    The SRS items are those of Duncan et al. (2003) [V2]: item 2 "goals and topics" (we worked on
    what I wanted to work on), item 3 "approach or method"; WAI-SR goal items 4, 6, 8, 11, task
    items 1, 2, 10, 12 (docs/methods.md §1.2-1.3 [V2]). Sessions are the unit: a client with many
    sessions weighs more. The comparison is descriptive: who is off goal is not random (crisis,
    early sessions, clients who are harder to engage), so a difference is a prompt, not a cause.
    """
    r = _rules(rules, "focus_alliance_link()", locals())  # the rules, with the keywords given here on top
    confidence, link_min_sessions = r.confidence, r.link_min_sessions
    _require(focus, "focus", ["client_id", "clinician_id", "session_date", "session_number", "on_goal", "off_goal"],
             _FOCUS_FIX)
    _require(alliance, "alliance", ["client_id", "session_date", "session_number"],
             "Pass the output of supervision.metrics.alliance.session_alliance(sessions).")
    conf = _check_confidence(confidence)
    mins = _check_int("link_min_sessions", link_min_sessions, 2)
    measures = [m for m in LINK_MEASURES if m in alliance.columns]
    keys = ["client_id", "session_number", "session_date"]
    left = focus[keys + ["clinician_id", "on_goal", "off_goal"]]
    aligned = len(focus) == len(alliance) and all(
        np.array_equal(focus[k].to_numpy(), alliance[k].to_numpy()) for k in keys)
    if aligned:  # both built from the same sessions: same rows in the same order, no join needed
        j = pd.concat([left.reset_index(drop=True), alliance[measures].reset_index(drop=True)], axis=1)
    else:
        right = alliance[keys + measures].drop_duplicates(keys)
        j = left.merge(right, on=keys, how="inner", validate="many_to_one")
    on = j["on_goal"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    off = j["off_goal"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    scopes = sorted(pd.unique(focus["clinician_id"].dropna()).tolist())
    S = len(scopes) + 1  # the last scope is the service
    sc = pd.Index(scopes).get_indexer(j["clinician_id"].to_numpy(dtype=object, na_value=None))
    cc, _ = pd.factorize(j["client_id"])
    present = [m for m in measures if not np.isnan(pd.to_numeric(j[m], errors="coerce").to_numpy(dtype=float)).all()]
    if not present:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (
            ("scope", "str"), ("measure", "str"), ("measure_label", "str"), ("n_on_goal", "int64"),
            ("n_off_goal", "int64"), ("n_clients_on_goal", "int64"), ("n_clients_off_goal", "int64"),
            ("mean_on_goal", float), ("mean_off_goal", float), ("sd_on_goal", float), ("sd_off_goal", float),
            ("difference", float), ("difference_lower", float), ("difference_upper", float), ("df", float),
            ("estimated", bool), ("interval_note", "str"))})
    out = pd.DataFrame({"scope": np.tile(np.array([*scopes, "service"], dtype=object), len(present)),
                        "measure": np.repeat(np.array(present, dtype=object), S)})
    out["measure_label"] = out["measure"].map(LINK_MEASURES)
    cols: dict[str, list] = {f"{st}_{g}": [] for st in ("n", "n_clients", "mean", "sd")
                             for g in ("on_goal", "off_goal")}
    for m in present:
        x = pd.to_numeric(j[m], errors="coerce").to_numpy(dtype=float)
        for g, mask in (("on_goal", on), ("off_goal", off)):
            sel = mask & ~np.isnan(x) & (sc >= 0)
            xs, ss, cs = x[sel], sc[sel], cc[sel]
            cnt = np.append(np.bincount(ss, minlength=S - 1), len(xs)).astype(float)
            tot = np.append(np.bincount(ss, weights=xs, minlength=S - 1), xs.sum())
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = tot / cnt
                dev = xs - mean[ss]
                ss_per = np.bincount(ss, weights=dev * dev, minlength=S - 1)
                ss_all = float(((xs - mean[-1]) ** 2).sum()) if len(xs) else np.nan
                sd = np.sqrt(np.append(ss_per, ss_all) / (cnt - 1))
            sd = np.where(cnt > 1, sd, np.nan)
            pairs = np.unique(ss.astype(np.int64) * (int(cc.max(initial=0)) + 1) + cs)
            n_cl = np.bincount(pairs // (int(cc.max(initial=0)) + 1), minlength=S - 1)
            cols[f"n_{g}"].append(cnt.astype(np.int64))
            cols[f"n_clients_{g}"].append(np.append(n_cl, len(np.unique(cs))).astype(np.int64))
            cols[f"mean_{g}"].append(mean)
            cols[f"sd_{g}"].append(sd)
    for name in ("n_on_goal", "n_off_goal", "n_clients_on_goal", "n_clients_off_goal",
                 "mean_on_goal", "mean_off_goal", "sd_on_goal", "sd_off_goal"):
        out[name] = np.concatenate(cols[name])
    n1, n2 = out["n_on_goal"].to_numpy(dtype=float), out["n_off_goal"].to_numpy(dtype=float)
    v1, v2 = out["sd_on_goal"].to_numpy() ** 2, out["sd_off_goal"].to_numpy() ** 2
    est = (n1 >= mins) & (n2 >= mins)
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = v1 / n1, v2 / n2
        se2 = a + b
        df = se2 ** 2 / (a ** 2 / (n1 - 1) + b ** 2 / (n2 - 1))
        half = _stats.t.ppf(0.5 + conf / 2, df) * np.sqrt(se2)
    diff = out["mean_off_goal"].to_numpy() - out["mean_on_goal"].to_numpy()
    out["difference"] = np.where(est, diff, np.nan)
    out["difference_lower"] = np.where(est, diff - half, np.nan)
    out["difference_upper"] = np.where(est, diff + half, np.nan)
    out["df"] = np.where(est, df, np.nan)
    out["estimated"] = est
    out["interval_note"] = pd.array([LINK_INTERVAL_NOTE] * len(out), dtype="str")
    return out


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------

def focus_options(settings=None, function: Callable | None = None) -> dict:
    """Keyword arguments for the focus metrics from the ``[focus_metrics]`` settings.

    Parameters
    ----------
    settings : Settings, dict, path or None
        Anything :func:`supervision.config.load_settings` accepts (None = the defaults).
    function : callable, optional
        Keep only the options this function accepts, e.g.
        ``client_focus(sf, **focus_options(settings, client_focus))``.

    Returns
    -------
    dict
        ``{keyword: value}``; the keys are the setting names of ``[focus_metrics]`` in
        ``supervision/defaults.toml``, which are also the keyword names of the functions here.
        The taxonomy itself is ``[[focus.codes]]``: pass the settings to :func:`session_focus`.
    """
    return FocusRules.from_settings(settings).kwargs(function)
