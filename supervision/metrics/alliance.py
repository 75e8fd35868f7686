"""Alliance metrics: SRS and WAI-SR per session, rupture-repair episodes, per client and per clinician.

Pure functions (house style, ../shared/DESIGN.md §6): a tidy DataFrame in, a new DataFrame out,
options as keyword arguments; an option left None comes from ``rules=`` (an
:class:`~supervision.rules.AllianceRules` or :class:`~supervision.rules.Rules`, such as
``caseload.rules``; None = the ``[alliance]`` section of ``supervision/defaults.toml``, the only
place a default is written). An option given here is checked as the settings are
(:mod:`supervision.rules`); the input is never modified.

Pipeline::

    sa = session_alliance(caseload.sessions)          # one row per attended session
    rp = ruptures(sa, clients=caseload.clients, rules=caseload.rules)  # one row per rupture episode
    ca = client_alliance(sa, clients=caseload.clients, ruptures=rp)
    cc = clinician_alliance(sa, clients=caseload.clients, ruptures=rp)

Sources and their certainty are those of docs/methods.md (§1.2 SRS, §1.3 WAI-SR,
§2.5 ruptures, §2.7 dropout, §3.1 Wilson): [V] read in the source, [V2] secondary source only,
[U] unverified design choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields

import numpy as np
import pandas as pd

from supervision.metrics._checks import require_columns
from supervision.metrics._frames import (as_column, block_codes, isin, reindex_first, sort_frame, sort_positions,
                                        take_values)
from supervision.instruments import instruments
from supervision.metrics.stats import wilson_interval
from supervision.rules import AllianceRules, area_rules

__all__ = [
    "session_alliance", "ruptures", "client_alliance", "clinician_alliance", "alliance_options",
    "SRS_ITEM_NAMES", "RUPTURE_STATUSES", "RUPTURE_RULE_BY_NOISE", "within_client_sd",
]

#: Output names of the four SRS items (srs_1..srs_4), from the instrument spec.
SRS_ITEM_NAMES = ("relationship", "goals_topics", "approach_method", "overall")
#: Values of ``ruptures(...)["status"]``.
RUPTURE_STATUSES = ("repaired", "unrepaired", "open")
_PLANNED_REASONS = ("planned", "mutual", "referred_on")
#: How well the default rupture rule (2 SD, sd_basis "before_rupture", min 5 sessions) finds the ruptures
#: planted by the synthetic clinic generator (``supervision.synth``, generator version 3) at five levels of
#: within-client SRS reading noise (``SynthParams.srs_noise_sd``; the demo uses 0.5). Five clinics
#: (seeds 20261126, 1, 2, 3, 4; 12 clinicians x 18 months; 204 planted ruptures in judged clients); a
#: detection matches a planted rupture within +/- 1 session. ``observed_sd``: the median within-client SD
#: of the SRS total (clients with >= 5 measured sessions) that each noise level produces, to set beside
#: a service's own (:func:`within_client_sd`). Recomputed by tests/test_synth.py. Literature suggests a
#: within-client SD of 1.5-2.5 points [U] (../shared/SYNTH_PARAMETERS.md §2): there the rule's precision
#: is about 0.2-0.3, i.e. most flags are noise.
RUPTURE_RULE_BY_NOISE = (
    # noise_sd, observed_sd, recall, precision
    (0.5, 0.56, 0.98, 0.88),
    (1.0, 0.81, 0.97, 0.50),
    (1.5, 1.08, 0.93, 0.32),
    (2.0, 1.28, 0.90, 0.24),
    (2.5, 1.51, 0.86, 0.20),
)
#: Values of the ``sd_basis`` option of :func:`ruptures`.
SD_BASES = ("before_rupture", "through_rupture", "whole_series")
_RULE_NAMES = tuple(f.name for f in fields(AllianceRules))
_EPS = 1e-9  # scores are entered to 0.1; comparisons of differences allow floating-point noise


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_require = require_columns


def _rules(rules, function: str, given: dict) -> AllianceRules:
    """The alliance rules of a call: ``rules`` (None = the defaults), with the options given (not None) on top.

    An option out of range is refused as the settings loader refuses it (``SettingsError`` naming the key).
    """
    return area_rules(AllianceRules, rules, function, **{k: given[k] for k in _RULE_NAMES if k in given})



def _check_number(name: str, value, *, minimum: float, strict: bool = False, integer: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value) == int(value)
    if ok:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        kind = "a whole number" if integer else "a number"
        rel = ">" if strict else ">="
        raise ValueError(f"{name} must be {kind} {rel} {minimum}; got {value!r}.")


class _Rows:
    """Some rows of a frame, in a given order, read column by column (no copy of the frame)."""

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray):
        self.frame, self.rows, self.columns = frame, rows, frame.columns

    def __len__(self) -> int:
        return len(self.rows)


def _float_col(frame: pd.DataFrame | _Rows, col: str) -> np.ndarray:
    if isinstance(frame, _Rows):
        return _float_col(frame.frame, col)[frame.rows] if col in frame.columns else np.full(len(frame), np.nan)
    if col in frame.columns:
        return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.full(len(frame), np.nan)


def _sum_complete(frame: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Row sum of the columns, NaN unless every one is present (no prorating)."""
    total = np.zeros(len(frame)) if cols else np.full(len(frame), np.nan)
    for c in cols:
        total = total + _float_col(frame, c)  # NaN propagates: any missing item -> NaN
    return total


def _bool_na(values: np.ndarray, known: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool) & known, ~np.asarray(known, dtype=bool))


def _group_bounds(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by group code: first row index and size of every group."""
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return starts, counts


def _status_counts(index: pd.Index, keys: pd.Series, status: pd.Series) -> np.ndarray:
    """Episodes per key (rows, in ``index`` order) and status (columns, RUPTURE_STATUSES order)."""
    row = index.get_indexer(keys)
    col = pd.Index(RUPTURE_STATUSES).get_indexer(status)
    ok = (row >= 0) & (col >= 0)
    flat = np.bincount(row[ok] * len(RUPTURE_STATUSES) + col[ok], minlength=len(index) * len(RUPTURE_STATUSES))
    return flat.reshape(len(index), len(RUPTURE_STATUSES))


def _criteria(sd_criterion) -> list[float]:
    values = list(np.atleast_1d(sd_criterion)) if not isinstance(sd_criterion, (int, float)) else [sd_criterion]
    if not values:
        raise ValueError("sd_criterion must be a number (1 or 2 client SDs) or a list of numbers; got an empty list.")
    for v in values:
        _check_number("sd_criterion", v, minimum=0, strict=True)
    return [float(v) for v in values]


def _criterion_label(k: float) -> str:
    return f"{k:g}sd"


# --------------------------------------------------------------------------------------------
# per session
# --------------------------------------------------------------------------------------------

def session_alliance(
    sessions: pd.DataFrame,
    *,
    srs_cutoff: float | None = None,
    inclusive: bool | None = None,
    drop_points: float | None = None,
    low_item_threshold: float | None = None,
    low_item_items: Sequence[str] | None = None,
    ceiling_at: float | None = None,
    rules=None,
) -> pd.DataFrame:
    """Alliance per attended session: SRS total and items, WAI-SR total and subscales, flags.

    Parameters
    ----------
    sessions : DataFrame
        The canonical ``sessions`` table (data/README.md): ``client_id``, ``clinician_id``,
        ``session_date``, ``attendance`` and any of ``srs_1..srs_4``, ``srs_total``,
        ``wai_1..wai_12``, ``wai_total`` (absent measure columns are read as missing). Only rows
        with ``attendance == "attended"`` are used. Not modified.
    srs_cutoff : float, optional (default: the rules, ``[alliance]`` in defaults.toml)
        SRS alliance alert cut-off. "<= 36 = discuss" [V2] hiboop.com SRS page; "36 or above
        indicates positive alliance", i.e. < 36, [V2] cauceos.com (docs/methods.md §1.2).
    inclusive : bool, optional (default: the rules, ``[alliance]`` in defaults.toml)
        True: low when total <= cut-off (hiboop); False: low when total < cut-off (cauceos).
    drop_points : float, optional (default: the rules, ``[alliance]`` in defaults.toml)
        A fall of at least this many points from the client's previous measured session is a
        ``drop``. OpenFIT alerts flag any drop of >= 1 point since the last session [V2]
        (support.openfit.care alerts page, quoted in ../shared/SYNTH_PARAMETERS.md §2).
    low_item_threshold : float, optional (default: the rules, ``[alliance]`` in defaults.toml)
        ``low_item`` when any of ``low_item_items`` is strictly below this.
        Uncertain [V2]: hiboop says "any item below 8-9/10" prompts a conversation, so 8 is as
        defensible as 9; the default 9 is the more sensitive reading.
    low_item_items : sequence of str, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Which items are checked (names of :data:`SRS_ITEM_NAMES`). docs/methods.md §1.2: "any item
        below ~9 prompts a conversation" [V2], so every item by default; a relationship item of
        7/10 inside a total of 37 is exactly the quiet signal the total hides.
    ceiling_at : float, optional (default: the rules, ``[alliance]`` in defaults.toml)
        ``ceiling`` when the total is at or above this. The SRS ceiling is a band, not a point:
        the non-official banding "39-40 good" [V2] (cindyhansencft.com, docs/methods.md §1.2) and
        the ceiling-effect review (SYNTH_PARAMETERS.md §2 [V]); 40 restores the exact-maximum rule.

    Returns
    -------
    DataFrame
        One row per attended session, sorted by ``client_id`` then ``session_date``, with columns:

        - ``client_id``, ``clinician_id``, ``session_date``: as given.
        - ``session_number``: 1-based number of the session among the client's attended sessions.
        - ``srs_total``: the given total; when it is missing and all four items are present, the
          sum of the items (no prorating). NaN when not measured.
        - ``srs_from_items``: True where ``srs_total`` was computed from the items.
        - ``relationship``, ``goals_topics``, ``approach_method``, ``overall``: SRS items 1-4
          (0-10), named as in the SRS v3 (Duncan et al. 2003; docs/methods.md §1.2 [V2]).
        - ``wai_total``: WAI-SR total (12-60): the given ``wai_total``, else the sum of the 12 items
          when all are present.
        - ``wai_goal``, ``wai_task``, ``wai_bond``: WAI-SR subscales (4-20), the sum of their 4 items,
          only when all 4 are present. Items per the instrument spec: task 1, 2, 10, 12; bond
          3, 5, 7, 9; goal 4, 6, 8, 11 [V2] (Hatcher & Gillaspy 2006 key as reproduced by two
          secondary sources; primary not read; docs/methods.md §1.3).
        - ``measured``: True when ``srs_total`` is known.
        - ``prev_srs_total``: SRS total of the client's previous *measured* attended session.
        - ``srs_change``: ``srs_total - prev_srs_total``.
        - ``low`` (nullable bool): total at or below (``inclusive``) / below the cut-off.
        - ``drop`` (nullable bool): ``srs_change <= -drop_points``; <NA> at the first measured session.
        - ``low_item`` (nullable bool): any of ``low_item_items`` below ``low_item_threshold``
          (<NA> when no checked item is low and some are missing).
        - ``low_items``: the names of the low items, ``;``-separated ("" when none).
        - ``ceiling`` (nullable bool): total at or above ``ceiling_at`` (39 by default): uninformative,
          not reassuring (ceiling effects in client-rated alliance: ../shared/SYNTH_PARAMETERS.md §2 [V]).
        - ``source_row``: the line in the user's file, when the input has it.

        Flags are <NA> on sessions without an SRS total.

    Raises
    ------
    ValueError
        When a required column is missing or an option is out of range.
    """
    r = _rules(rules, "session_alliance()", locals())  # the rules, with the keywords given here on top
    srs_cutoff, inclusive, drop_points = r.srs_cutoff, r.inclusive, r.drop_points
    low_item_threshold, low_item_items, ceiling_at = r.low_item_threshold, r.low_item_items, r.ceiling_at
    _require(sessions, "sessions", ["client_id", "clinician_id", "session_date", "attendance"],
             "Load the export with supervision.load_caseload() to get the canonical sessions table.")
    _check_number("srs_cutoff", srs_cutoff, minimum=0)
    _check_number("drop_points", drop_points, minimum=0, strict=True)
    _check_number("low_item_threshold", low_item_threshold, minimum=0)
    _check_number("ceiling_at", ceiling_at, minimum=0)
    checked_items = [low_item_items] if isinstance(low_item_items, str) else list(low_item_items)
    unknown_items = [i for i in checked_items if i not in SRS_ITEM_NAMES]
    if not checked_items or unknown_items:
        raise ValueError(f"low_item_items must be a non-empty list of {', '.join(SRS_ITEM_NAMES)}; "
                         f"got {low_item_items!r}.")
    if not isinstance(inclusive, (bool, np.bool_)):
        raise ValueError(f"inclusive must be True (low when <= cut-off) or False (< cut-off); got {inclusive!r}.")

    srs = instruments()["srs"]
    wai = instruments()["wai"]
    attended = np.flatnonzero((sessions["attendance"] == "attended").fillna(False).to_numpy(dtype=bool))
    keys = ["client_id", "session_date"] + (["source_row"] if "source_row" in sessions.columns else [])
    rows = sort_positions(sessions, keys, attended)  # the attended sessions, sorted by keys
    s = _Rows(sessions, rows)

    out = pd.DataFrame({
        "client_id": take_values(sessions["client_id"], rows),
        "clinician_id": take_values(sessions["clinician_id"], rows),
        "session_date": sessions["session_date"].to_numpy()[rows],
    })
    codes, uniques = block_codes(out["client_id"])  # sorted, so each client's rows are contiguous
    starts, _ = _group_bounds(codes, len(uniques))
    out["session_number"] = np.arange(len(out), dtype=np.int64) - starts[codes] + 1

    given = _float_col(s, srs.total_column)
    from_items = _sum_complete(s, srs.item_columns)
    use_items = np.isnan(given) & ~np.isnan(from_items)
    total = np.where(use_items, from_items, given)
    out["srs_total"] = total
    out["srs_from_items"] = use_items
    for col, name in zip(srs.item_columns, SRS_ITEM_NAMES):
        out[name] = _float_col(s, col)

    wai_given = _float_col(s, wai.total_column)
    wai_sum = _sum_complete(s, wai.item_columns)
    out["wai_total"] = np.where(np.isnan(wai_given), wai_sum, wai_given)
    for sub in ("goal", "task", "bond"):
        items = wai.subscales.get(sub, ())
        out[f"wai_{sub}"] = _sum_complete(s, [f"wai_{i}" for i in items])

    measured = ~np.isnan(total)
    out["measured"] = measured
    # previous measured session of the same client (rows are sorted by client, then date)
    prev = np.full(len(out), np.nan)
    idx = np.flatnonzero(measured)
    if len(idx) > 1:
        same = codes[idx[1:]] == codes[idx[:-1]]
        prev[idx[1:]] = np.where(same, total[idx[:-1]], np.nan)
    out["prev_srs_total"] = prev
    change = total - prev
    out["srs_change"] = change

    with np.errstate(invalid="ignore"):
        low = total <= srs_cutoff if inclusive else total < srs_cutoff
        drop = change <= -float(drop_points) + _EPS
        ceiling = total >= min(float(ceiling_at), srs.total_max) - _EPS
    out["low"] = _bool_na(low, measured)
    out["drop"] = _bool_na(drop, ~np.isnan(change))
    low_item = pd.array(np.zeros(len(out), dtype=bool), dtype="boolean")
    names = np.full(len(out), "", dtype=object)
    for name in checked_items:
        v = pd.array(out[name].to_numpy(), dtype="Float64")
        below = v < low_item_threshold
        low_item = low_item | below  # Kleene logic: NA if unknown and no other item is low
        hit = below.fillna(False).to_numpy(dtype=bool)
        names[hit] = np.where(names[hit] == "", name, names[hit] + ";" + name)
    out["low_item"] = pd.array(low_item, dtype="boolean")
    out["low_items"] = pd.array(names.astype(str), dtype="str")
    out["ceiling"] = _bool_na(ceiling, measured)
    if "source_row" in sessions.columns:
        out["source_row"] = sessions["source_row"].to_numpy()[rows]
    return out


# --------------------------------------------------------------------------------------------
# rupture-repair episodes
# --------------------------------------------------------------------------------------------

_RUPTURE_COLUMNS = [
    "client_id", "clinician_id", "criterion", "sd_criterion", "n_measured", "client_sd", "sd_used", "threshold",
    "pre_session", "pre_date", "pre_score", "rupture_session", "rupture_date", "rupture_score", "depth", "depth_sd",
    "decline_sessions", "repair_session", "repair_date", "repair_score", "repaired", "status", "status_reason",
]


def _empty_ruptures() -> pd.DataFrame:
    return pd.DataFrame({
        "client_id": pd.Series(dtype="str"), "clinician_id": pd.Series(dtype="str"),
        "criterion": pd.Series(dtype="str"), "sd_criterion": pd.Series(dtype=float),
        "n_measured": pd.Series(dtype=int), "client_sd": pd.Series(dtype=float),
        "sd_used": pd.Series(dtype=float), "threshold": pd.Series(dtype=float),
        "pre_session": pd.Series(dtype=int), "pre_date": pd.Series(dtype="datetime64[ns]"),
        "pre_score": pd.Series(dtype=float), "rupture_session": pd.Series(dtype=int),
        "rupture_date": pd.Series(dtype="datetime64[ns]"), "rupture_score": pd.Series(dtype=float),
        "depth": pd.Series(dtype=float), "depth_sd": pd.Series(dtype=float),
        "decline_sessions": pd.Series(dtype=int), "repair_session": pd.Series(dtype="Int64"),
        "repair_date": pd.Series(dtype="datetime64[ns]"), "repair_score": pd.Series(dtype=float),
        "repaired": pd.Series(dtype=bool), "status": pd.Series(dtype="str"),
        "status_reason": pd.Series(dtype="str"),
    })[_RUPTURE_COLUMNS]


def ruptures(
    alliance: pd.DataFrame,
    *,
    sd_criterion: float | Sequence[float] | None = None,
    sd_floor: float | None = None,
    min_sessions: int | None = None,
    max_decline_sessions: int | None = None,
    repair_window: int | None = None,
    repair_tolerance: float | None = None,
    sd_basis: str | None = None,
    lost_contact_days: int | None = None,
    reference_date: pd.Timestamp | str | None = None,
    clients: pd.DataFrame | None = None,
    rules=None,
) -> pd.DataFrame:
    """Rupture-repair episodes found in each client's own SRS series.

    Definition (see Notes for sources and what is a design choice):

    1. The series is the client's measured attended sessions (``srs_total`` known) in order.
       Clients with fewer than ``min_sessions`` measured sessions are not judged (no rows).
    2. A session *falls* when its total is below the previous measured one. A run of falling
       sessions is a decline; its *bottom* is the last session of the run (the next measured
       score is equal or higher, or the series ends). The *pre-rupture level* ``pre_score`` is
       the score just before the decline began, looking back at most ``max_decline_sessions``
       sessions (a longer slide is measured from ``max_decline_sessions`` back).
    3. The bottom is a rupture when ``depth = pre_score - rupture_score`` is strictly greater than
       ``sd_criterion x sd_used``, where ``sd_used = max(client SD, sd_floor)`` and the client SD
       is the sample SD (ddof 1) of the client's measured totals **before the rupture session**
       (``sd_basis="before_rupture"``, the default): the flag is decided as of that session, from
       the data up to it, so it does not appear or vanish as later sessions accrue, and the
       trough does not inflate its own yardstick. ``"through_rupture"`` includes the trough;
       ``"whole_series"`` is the first wave's retrospective SD of the whole series.
    4. Repaired when a later measured score reaches ``pre_score - repair_tolerance`` within
       ``repair_window`` attended sessions after the rupture session (by session number).
       Otherwise ``open`` while the window has not yet passed (the client's last attended
       session is before the window's end and, when ``clients`` is given, the episode has no
       end date), else ``unrepaired``. A rupture whose client has not attended for
       ``lost_contact_days`` (by ``reference_date``) is ``unrepaired`` ("ended without repair",
       ``status_reason == "lost_contact"``) even if the window has not passed in sessions: a
       client who stopped coming without an end date cannot repair, and leaving the rupture
       "open" for ever would keep it out of the repair-rate denominator.
    5. A further bottom that falls inside an earlier episode (before that episode's repair
       session or, if unrepaired, within its repair window) belongs to that episode and is not
       counted again.

    Parameters
    ----------
    alliance : DataFrame
        Output of :func:`session_alliance` (needs ``client_id``, ``clinician_id``,
        ``session_date``, ``session_number``, ``srs_total``). Not modified.
    sd_criterion : float or sequence of float, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Depth needed, in client SDs. 2 = Stiles et al. (2004); 1 = Strauss et al. (2006) [V, via
        Gumz et al. 2012, docs/methods.md §2.5]. Give ``(1, 2)`` to get both; rows are labelled by
        ``criterion`` ("1sd", "2sd"). Gumz et al. recommend reporting both.
    sd_floor : float, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Smallest SD used, in SRS points [U design choice]: a ceiling-only or near-constant series
        (SD 0 or tiny) would otherwise turn a 0.2-point wobble into a "rupture". No verified SRS
        measurement-error figure exists to anchor it (docs/methods.md §8, open item 5).
    min_sessions : int, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Measured sessions needed before a client is judged [U]; docs/methods.md §2.5 suggests
        ">= 5" for a stable SD. A client is judged once the series has this many; every trough is
        then decided as of its own session (``sd_basis``), so recomputing with the data up to any
        later meeting gives the same flags. (With the whole-series SD a single trough in an
        otherwise flat series of n sessions is sqrt(n) SDs deep, so the 2-SD rule could rarely fire
        below 5 sessions.)
    max_decline_sessions : int, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Longest decline measured from its start [U]. Gumz et al. (2012) saw declines of up to
        6 sessions, the commonest pattern being a simple V (1 session) [V].
    repair_window : int, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Attended sessions after the rupture within which a return counts as repair [U]; Stiles'
        exact windowing was not read (docs/methods.md §2.5, open item 6).
    repair_tolerance : float, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Points below ``pre_score`` that still count as a return [U], for measurement noise.
    sd_basis : {"before_rupture", "through_rupture", "whole_series"}, optional
        Default: the rules (``[alliance]`` in defaults.toml).
        Which of the client's scores give the client SD (point 3). Stiles et al. (2004) speak of
        the SD of the client's own session-to-session scores without (in what we could read) fixing
        the window [U]; "before_rupture" is the reading under which a flag shown in a supervision
        meeting is reproduced later from the data up to that meeting.
    lost_contact_days : int, optional (default: the rules, ``[engagement] lost_contact_days``)
        The ``[engagement]`` lost-contact window (days without an attended session; design
        choice [U], as :func:`supervision.metrics.engagement.episode_engagement`).
    reference_date : date, optional
        "Now" for lost contact; default the latest session date in ``alliance``.
    clients : DataFrame, optional
        The ``clients`` table. When given, a rupture of a client whose episode has ended
        (``end_date`` set) is ``unrepaired`` rather than ``open`` even if the window had not
        passed: the client left before a repair could be seen.

    Returns
    -------
    DataFrame
        One row per rupture episode and criterion (criteria in the order given, then client and
        session):

        - ``client_id``, ``clinician_id``
        - ``criterion`` ("1sd"/"2sd"), ``sd_criterion`` (k)
        - ``n_measured``: the client's measured sessions; ``client_sd``: SD (ddof 1) of their
          totals; ``sd_used``: ``max(client_sd, sd_floor)``; ``threshold``: ``k x sd_used``
        - ``pre_session``, ``pre_date``, ``pre_score``: the session before the decline began
        - ``rupture_session``, ``rupture_date``, ``rupture_score``: the bottom of the V (lowest
          point of the decline); session numbers are those of :func:`session_alliance`
        - ``depth`` (``pre_score - rupture_score``), ``depth_sd`` (``depth / sd_used``)
        - ``decline_sessions``: sessions from ``pre_session`` to ``rupture_session``
        - ``repair_session``, ``repair_date``, ``repair_score``: first return (missing if none)
        - ``repaired`` (bool), ``status``: ``repaired``, ``unrepaired`` or ``open``
        - ``status_reason``: ``repaired``, ``window_open``, ``window_passed`` (attended on, no
          return), ``episode_ended`` or ``lost_contact`` (ended without repair before the window
          passed)
        - ``n_measured`` is the client's whole series; ``client_sd``, ``sd_used``, ``threshold`` are
          those of the rupture session (``sd_basis``)

    Notes
    -----
    [V] (docs/methods.md §2.5, Gumz, Brähler, Geyer & Erices 2012, BMC Med Res Methodol 12:10):
    Stiles et al. (2004) J Couns Psychol 51:81-92 defined a rupture-repair sequence as a
    V-shaped deflection deeper than 2 SDs of the client's own session-to-session alliance
    scores, followed by a return, and called the criterion ad hoc and preliminary; Strauss et
    al. (2006) JCCP used a similar method with 1 SD. Everything else here (the SD of the scores
    before the trough, the look-back, the window, the tolerance, the floor, the merging, the
    lost-contact closure) is [U]: a documented design choice to check against Stiles et al. (2004)
    pp. 84-85. Under ``sd_basis="whole_series"`` the measure is retrospective and a trough
    inflates its own SD ([38, 38, 38, 30, 38] gives a 2-SD threshold of 7.16, four more 38s 5.33).

    Base rate: the rule is relative to the client's own variability, so on pure session-to-session
    noise it still fires. On simulated i.i.d. normal series of 10 sessions the whole-series rule
    flagged about 11 sessions per 100 under 2 SD (20 under 1 SD); 7 per 100 with
    ``max_decline_sessions=1``. For the default rule at several noise levels see
    :data:`RUPTURE_RULE_BY_NOISE` (precision about 0.2-0.3 at a within-client SD of 1.1-1.5).
    Real alliance series are autocorrelated and should flag fewer, but read a single episode as
    a prompt to ask, not as evidence that a rupture happened.

    Raises
    ------
    ValueError
        When a required column is missing or an option is out of range.
    """
    r = _rules(rules, "ruptures()", locals())  # the rules, with the keywords given here on top
    sd_criterion, sd_floor, min_sessions = r.sd_criterion, r.sd_floor, r.min_sessions
    max_decline_sessions, repair_window, repair_tolerance = r.max_decline_sessions, r.repair_window, r.repair_tolerance
    sd_basis, lost_contact_days = r.sd_basis, r.lost_contact_days
    _require(alliance, "alliance", ["client_id", "clinician_id", "session_date", "session_number", "srs_total"],
             "Pass the output of session_alliance(sessions).")
    crits = _criteria(sd_criterion)
    if sd_basis not in SD_BASES:
        raise ValueError(f"sd_basis must be one of {', '.join(SD_BASES)}; got {sd_basis!r}.")
    _check_number("sd_floor", sd_floor, minimum=0, strict=True)
    _check_number("min_sessions", min_sessions, minimum=2, integer=True)
    _check_number("max_decline_sessions", max_decline_sessions, minimum=1, integer=True)
    _check_number("repair_window", repair_window, minimum=1, integer=True)
    _check_number("repair_tolerance", repair_tolerance, minimum=0)
    _check_number("lost_contact_days", lost_contact_days, minimum=1, integer=True)
    if clients is not None:
        _require(clients, "clients", ["client_id", "end_date"], "Pass the canonical clients table or None.")
    W, L = int(repair_window), int(max_decline_sessions)

    a = sort_frame(alliance, ["client_id", "session_number"])
    codes_all, ids_all = block_codes(a["client_id"])
    last_sn_all = pd.Series(a["session_number"].to_numpy()).groupby(codes_all).max()  # per client code
    last_date_all = pd.Series(a["session_date"].to_numpy()).groupby(codes_all).max()
    ref = (pd.Timestamp(reference_date) if reference_date is not None
           else (a["session_date"].max() if len(a) else pd.NaT))
    x_all = pd.to_numeric(a["srs_total"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    m = a.loc[~np.isnan(x_all)]
    if m.empty:
        return _empty_ruptures()
    x = x_all[~np.isnan(x_all)]
    codes, of_all = pd.factorize(codes_all[~np.isnan(x_all)])  # the measured clients, in order
    uniques = ids_all[of_all]
    n_groups = len(uniques)
    starts, counts = _group_bounds(codes, n_groups)
    N = len(x)
    idx = np.arange(N)
    pos = idx - starts[codes]
    n_i = counts[codes]
    sn = m["session_number"].to_numpy(dtype=np.int64)
    dates = m["session_date"].to_numpy()

    # client SD (ddof 1) of all measured totals
    s1 = np.bincount(codes, weights=x, minlength=n_groups)
    mean = s1 / counts
    dev2 = np.bincount(codes, weights=(x - mean[codes]) ** 2, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd_g = np.sqrt(dev2 / (counts - 1))
    if sd_basis == "whole_series":
        sd_i = sd_g[codes]
    else:
        # as of each session: the SD of the client's scores before it ("before_rupture") or up to and
        # including it ("through_rupture"), from running sums centred on the client's mean
        xc = x - mean[codes]
        c1, c2 = np.cumsum(xc), np.cumsum(xc * xc)
        base1 = np.r_[0.0, c1][starts][codes]
        base2 = np.r_[0.0, c2][starts][codes]
        shift = 0 if sd_basis == "through_rupture" else 1
        end = idx - shift  # last position included
        m_n = (pos + 1 - shift).astype(float)
        r1 = np.where(end >= 0, c1[np.maximum(end, 0)], 0.0) - base1
        r2 = np.where(end >= 0, c2[np.maximum(end, 0)], 0.0) - base2
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (r2 - r1 * r1 / m_n) / (m_n - 1)
        sd_i = np.where(m_n >= 2, np.sqrt(np.maximum(var, 0.0)), np.nan)
    sd_used = np.maximum(np.nan_to_num(sd_i, nan=0.0), float(sd_floor))

    prev = np.empty(N)
    prev[0] = np.nan
    prev[1:] = x[:-1]
    falling = (pos > 0) & (x < prev - _EPS)
    nxt = np.empty(N)
    nxt[-1] = np.nan
    nxt[:-1] = x[1:]
    is_last = pos == n_i - 1
    bottom = falling & (is_last | (nxt >= x - _EPS))
    last_nonfalling = np.maximum.accumulate(np.where(~falling, idx, 0))
    pre_idx = np.maximum(last_nonfalling, idx - L)
    depth = x[pre_idx] - x
    client_ended = np.zeros(n_groups, dtype=bool)
    if clients is not None:
        ended_ids = clients.loc[clients["end_date"].notna(), "client_id"]
        client_ended = isin(uniques, ended_ids)
    last_sn_g = last_sn_all.reindex(of_all).to_numpy(dtype=np.int64)
    quiet_days = (ref - pd.DatetimeIndex(last_date_all.reindex(of_all).to_numpy())).days.to_numpy(dtype=float,
                                                                                                 na_value=np.nan)
    lost_contact = np.nan_to_num(quiet_days, nan=-1) >= int(lost_contact_days)

    frames = []
    for k in crits:
        thr = k * sd_used
        c = np.flatnonzero(bottom & (n_i >= min_sessions) & (depth > thr + _EPS))
        if len(c) == 0:
            continue
        pre_c = x[pre_idx[c]]
        rep = np.full(len(c), -1)
        for step in range(1, W + 1):
            j = c + step
            inside = j < N
            jj = np.where(inside, j, 0)
            hit = (inside & (rep < 0) & (codes[jj] == codes[c]) & (sn[jj] - sn[c] <= W)
                   & (x[jj] >= pre_c - float(repair_tolerance) - _EPS))
            rep[hit] = jj[hit]
        repaired = rep >= 0
        cover_end = np.where(repaired, sn[np.maximum(rep, 0)], sn[c] + W)
        # merge troughs inside an earlier episode of the same client
        cov = pd.Series(cover_end)
        grp = pd.Series(codes[c])
        prev_cover = cov.groupby(grp).cummax().groupby(grp).shift(1).to_numpy(dtype=float, na_value=np.nan)
        keep = ~(sn[c] <= prev_cover)
        c, pre_c, rep, repaired = c[keep], pre_c[keep], rep[keep], repaired[keep]
        g = codes[c]
        in_window = last_sn_g[g] < sn[c] + W
        window_open = in_window & ~client_ended[g] & ~lost_contact[g]
        status = np.where(repaired, "repaired", np.where(window_open, "open", "unrepaired"))
        reason = np.select([repaired, window_open, in_window & client_ended[g], in_window & lost_contact[g]],
                           ["repaired", "window_open", "episode_ended", "lost_contact"], default="window_passed")
        r = np.maximum(rep, 0)
        p = pre_idx[c]
        frames.append(pd.DataFrame({
            "client_id": m["client_id"].to_numpy()[c],
            "clinician_id": m["clinician_id"].to_numpy()[c],
            "criterion": _criterion_label(k),
            "sd_criterion": k,
            "n_measured": counts[g],
            "client_sd": sd_i[c],
            "sd_used": sd_used[c],
            "threshold": thr[c],
            "pre_session": sn[p],
            "pre_date": dates[p],
            "pre_score": pre_c,
            "rupture_session": sn[c],
            "rupture_date": dates[c],
            "rupture_score": x[c],
            "depth": depth[c],
            "depth_sd": depth[c] / sd_used[c],
            "decline_sessions": sn[c] - sn[p],
            "repair_session": pd.arrays.IntegerArray(np.where(repaired, sn[r], 0), ~repaired),
            "repair_date": pd.Series(dates[r]).where(repaired).to_numpy(),
            "repair_score": np.where(repaired, x[r], np.nan),
            "repaired": repaired,
            "status": status,
            "status_reason": reason,
        }))
    if not frames:
        return _empty_ruptures()
    out = pd.concat(frames, ignore_index=True)[_RUPTURE_COLUMNS]
    return out


_find_ruptures = ruptures  # the summaries below take a ``ruptures`` keyword that shadows the name


def within_client_sd(alliance: pd.DataFrame, *, min_sessions: int | None = None, rules=None) -> tuple[float, int]:
    """The service's median within-client SD of the SRS total, and the clients it rests on.

    Parameters
    ----------
    alliance : DataFrame
        Output of :func:`session_alliance`.
    min_sessions : int, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Clients with at least this many measured sessions count (as ``ruptures``).

    Returns
    -------
    (float, int)
        Median over those clients of the sample SD (ddof 1) of their SRS totals (NaN when none),
        and their number. Set it beside :data:`RUPTURE_RULE_BY_NOISE`: the rupture rule was
        checked on synthetic series of known noise only.
    """
    min_sessions = _rules(rules, "within_client_sd()", locals()).min_sessions
    _require(alliance, "alliance", ["client_id", "srs_total"], "Pass the output of session_alliance(sessions).")
    x = pd.to_numeric(alliance["srs_total"], errors="coerce")
    m = pd.DataFrame({"client_id": alliance["client_id"].to_numpy(), "x": x.to_numpy()}).dropna(subset=["x"])
    g = m.groupby("client_id")["x"]
    sd = g.std()[g.size() >= int(min_sessions)]
    return (float(sd.median()) if len(sd) else float("nan")), int(len(sd))


# --------------------------------------------------------------------------------------------
# per client
# --------------------------------------------------------------------------------------------

def _rupture_opts(kwargs: dict) -> dict:
    return {k: kwargs[k] for k in ("sd_criterion", "sd_floor", "min_sessions", "max_decline_sessions",
                                   "repair_window", "repair_tolerance", "sd_basis", "lost_contact_days",
                                   "reference_date")}


def _single_criterion(rp: pd.DataFrame) -> None:
    crit = rp["criterion"].unique() if "criterion" in rp.columns else []
    if len(crit) > 1:
        raise ValueError(f"ruptures holds several criteria ({', '.join(map(str, crit))}); summaries need one. "
                         "Pass ruptures[ruptures['criterion'] == '2sd'] (or '1sd').")


def client_alliance(
    alliance: pd.DataFrame,
    *,
    clients: pd.DataFrame | None = None,
    ruptures: pd.DataFrame | None = None,
    sd_criterion: float | None = None,
    sd_floor: float | None = None,
    min_sessions: int | None = None,
    max_decline_sessions: int | None = None,
    repair_window: int | None = None,
    repair_tolerance: float | None = None,
    sd_basis: str | None = None,
    lost_contact_days: int | None = None,
    reference_date: pd.Timestamp | str | None = None,
    min_trend_sessions: int | None = None,
    planned_reasons: Sequence[str] = _PLANNED_REASONS,
    rules=None,
) -> pd.DataFrame:
    """Alliance summary per client.

    Parameters
    ----------
    alliance : DataFrame
        Output of :func:`session_alliance` (its ``low``/``drop``/``low_item``/``ceiling`` flags
        carry the cut-off options). Not modified.
    clients : DataFrame, optional
        The ``clients`` table; adds ``end_date``, ``end_reason`` and ``dropout``, and lets ruptures
        of ended episodes count as unrepaired (see :func:`ruptures`).
    ruptures : DataFrame, optional
        Output of :func:`ruptures` for one criterion; computed here with the rupture options
        below when not given.
    sd_criterion, sd_floor, min_sessions, max_decline_sessions, repair_window, repair_tolerance
        Passed to :func:`ruptures` (``min_sessions`` also decides ``rupture_judged``).
    min_trend_sessions : int, optional (default: the rules, ``[alliance]`` in defaults.toml)
        Measured sessions needed for ``trend`` [U]; two points give a difference, not a trend.
    planned_reasons : sequence of str, default ("planned", "mutual", "referred_on")
        End reasons that are not unplanned (used for single-session dropout).

    Returns
    -------
    DataFrame
        One row per client with at least one attended session, sorted by ``client_id``:

        - ``client_id``, ``clinician_id`` (the clinician of the client's first attended session)
        - ``n_sessions``: attended sessions; ``n_measured``: those with an SRS total
        - ``first_srs``, ``first_srs_session``: total and session number of the first measured session
        - ``latest_srs``, ``latest_session``, ``latest_date``: the last measured session
        - ``mean_srs``: mean total over measured sessions
        - ``trend``: OLS slope of ``srs_total`` on ``session_number`` (points per session), NaN with
          fewer than ``min_trend_sessions`` measured sessions
        - ``n_low``, ``share_low``: measured sessions flagged ``low`` and their share
        - ``n_drop``, ``n_low_item``, ``n_ceiling``: counts of the session flags
        - ``ceiling_only``: every measured total at the ceiling (``ceiling_at`` of
          :func:`session_alliance`, 39 by default): the SRS cannot show a problem here, so this is
          uninformative rather than reassuring
        - ``latest_low``, ``latest_drop``, ``latest_low_item`` (nullable bool): flags of the last
          measured session
        - ``rupture_judged``: ``n_measured >= min_sessions``
        - ``n_ruptures``, ``n_repaired``, ``n_unrepaired``, ``n_open`` (Int64; <NA> when not judged)
        - ``flags``: ``;``-separated summary of ``latest_low``, ``latest_drop``, ``latest_low_item``,
          ``unrepaired_rupture``, ``open_rupture``, ``ceiling_only`` ("" when none)
        - with ``clients``: ``end_date``, ``end_reason``, ``dropout`` (bool): the episode ended
          with ``end_reason == "unilateral"``, or ended after exactly one attended session with a
          reason not in ``planned_reasons``. Unilateral termination = dropout (docs/methods.md
          §2.7 [V]; OpenFIT: unplanned closure [V]); the single-session rule is a design choice
          [U]. An ended episode with **no** end reason is not counted as dropout but as
          ``ending_unknown`` (bool): docs/methods.md §2.7 asks for an explicit "unknown" ending type.
          Without ``clients`` these are missing.
    """
    r = _rules(rules, "client_alliance()", locals())  # the rules, with the keywords given here on top
    sd_criterion, sd_floor, min_sessions = r.sd_criterion, r.sd_floor, r.min_sessions
    max_decline_sessions, repair_window, repair_tolerance = r.max_decline_sessions, r.repair_window, r.repair_tolerance
    sd_basis, lost_contact_days, min_trend_sessions = r.sd_basis, r.lost_contact_days, r.min_trend_sessions
    _require(alliance, "alliance",
             ["client_id", "clinician_id", "session_date", "session_number", "srs_total", "low", "drop",
              "low_item", "ceiling"], "Pass the output of session_alliance(sessions).")
    _check_number("min_trend_sessions", min_trend_sessions, minimum=2, integer=True)
    ropts = _rupture_opts(locals())
    if ruptures is None:
        rp = _find_ruptures(alliance, clients=clients, **ropts)
    else:
        _require(ruptures, "ruptures", ["client_id", "status"], "Pass the output of ruptures(alliance).")
        rp = ruptures
    _single_criterion(rp)

    a = sort_frame(alliance, ["client_id", "session_number"])
    codes_all, uniques = block_codes(a["client_id"])  # sorted, so groups are contiguous
    ids = pd.Index(uniques)
    k = len(ids)
    starts_all, n_sessions = _group_bounds(codes_all, k)
    out = pd.DataFrame({"client_id": as_column(ids)})
    out["clinician_id"] = take_values(a["clinician_id"], starts_all if k else starts_all[:0])
    out["n_sessions"] = n_sessions

    x_all = pd.to_numeric(a["srs_total"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    meas = ~np.isnan(x_all)
    m = a.loc[meas]
    x = x_all[meas]
    codes = codes_all[meas]
    n_measured = np.bincount(codes, minlength=k)
    out["n_measured"] = n_measured
    has = n_measured > 0
    first_i = np.zeros(k, dtype=np.int64)
    last_i = np.zeros(k, dtype=np.int64)
    if len(codes):
        boundary = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        first_i[codes[boundary]] = boundary
        last_i[codes[boundary]] = np.r_[boundary[1:] - 1, len(codes) - 1]
    sn_m = m["session_number"].to_numpy(dtype=np.int64)
    date_m = m["session_date"].to_numpy()

    def pick(values: np.ndarray, at: np.ndarray, fill):
        if not len(values):
            return np.full(k, fill)
        return np.where(has, values[at], fill)

    out["first_srs"] = pick(x, first_i, np.nan)
    out["first_srs_session"] = pd.arrays.IntegerArray(pick(sn_m, first_i, 0).astype(np.int64), ~has)
    out["latest_srs"] = pick(x, last_i, np.nan)
    out["latest_session"] = pd.arrays.IntegerArray(pick(sn_m, last_i, 0).astype(np.int64), ~has)
    out["latest_date"] = pd.Series(date_m[last_i] if len(date_m) else np.full(k, np.datetime64("NaT"), "M8[ns]"),
                                   dtype="datetime64[ns]").where(has).to_numpy()

    # OLS slope per client via grouped centred sums (vectorised, no per-client loop)
    t = m["session_number"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cnt = np.bincount(codes, minlength=k).astype(float)
        tbar = np.bincount(codes, weights=t, minlength=k) / cnt
        ybar = np.bincount(codes, weights=x, minlength=k) / cnt
        dt = t - tbar[codes]
        sxy = np.bincount(codes, weights=dt * (x - ybar[codes]), minlength=k)
        sxx = np.bincount(codes, weights=dt * dt, minlength=k)
        slope = sxy / sxx
    out["mean_srs"] = ybar
    out["trend"] = np.where((cnt >= min_trend_sessions) & (sxx > 0), slope, np.nan)

    def count(flag: str) -> np.ndarray:
        v = m[flag].astype("boolean").fillna(False).to_numpy(dtype=bool)
        return np.bincount(codes, weights=v, minlength=k).astype(int)

    out["n_low"] = count("low")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_low"] = np.where(n_measured > 0, out["n_low"] / np.maximum(n_measured, 1), np.nan)
    out["n_drop"] = count("drop")
    out["n_low_item"] = count("low_item")
    out["n_ceiling"] = count("ceiling")
    out["ceiling_only"] = (n_measured > 0) & (out["n_ceiling"].to_numpy() == n_measured)
    for flag in ("low", "drop", "low_item"):
        values = m[flag].astype("boolean")
        data = values.fillna(False).to_numpy(dtype=bool)
        unknown = values.isna().to_numpy()
        out[f"latest_{flag}"] = pd.arrays.BooleanArray(pick(data, last_i, False).astype(bool),
                                                       pick(unknown, last_i, True).astype(bool))

    judged = n_measured >= min_sessions
    out["rupture_judged"] = judged
    tab = _status_counts(ids, rp["client_id"], rp["status"])
    for col, values in (("n_ruptures", tab.sum(axis=1)), ("n_repaired", tab[:, 0]),
                        ("n_unrepaired", tab[:, 1]), ("n_open", tab[:, 2])):
        out[col] = pd.arrays.IntegerArray(np.asarray(values, dtype=np.int64), ~judged)

    parts = {
        "latest_low": out["latest_low"].fillna(False).to_numpy(dtype=bool),
        "latest_drop": out["latest_drop"].fillna(False).to_numpy(dtype=bool),
        "latest_low_item": out["latest_low_item"].fillna(False).to_numpy(dtype=bool),
        "unrepaired_rupture": out["n_unrepaired"].fillna(0).to_numpy(dtype=int) > 0,
        "open_rupture": out["n_open"].fillna(0).to_numpy(dtype=int) > 0,
        "ceiling_only": out["ceiling_only"].to_numpy(dtype=bool),
    }
    # each client's set of flags as bits; the text is written once per distinct set (at most 64)
    bits = np.zeros(len(out), dtype=np.int64)
    for i, on in enumerate(parts.values()):
        bits |= np.asarray(on, dtype=np.int64) << i
    sets, which = np.unique(bits, return_inverse=True)
    text = [";".join(name for i, name in enumerate(parts) if s >> i & 1) for s in sets]
    out["flags"] = pd.array(text, dtype="str").take(which) if len(out) else pd.array([], dtype="str")

    if clients is not None:
        _require(clients, "clients", ["client_id", "end_date", "end_reason"],
                 "Pass the canonical clients table (supervision.load_caseload().clients).")
        c = reindex_first(clients, "client_id", ids, ["end_date", "end_reason"])
        ended = c["end_date"].notna().to_numpy()
        reason = c["end_reason"].astype("str").where(c["end_reason"].notna(), "").str.strip()
        unilateral = (reason == "unilateral").to_numpy()
        unknown = (reason == "").to_numpy()
        unplanned = ~reason.isin(list(planned_reasons)).to_numpy() & ~unknown
        out["end_date"] = c["end_date"].to_numpy()
        out["end_reason"] = as_column(c["end_reason"])
        out["dropout"] = ended & (unilateral | ((out["n_sessions"].to_numpy() == 1) & unplanned))
        out["ending_unknown"] = ended & unknown
    else:
        out["end_date"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
        out["end_reason"] = pd.Series(pd.NA, index=out.index, dtype="str")
        out["dropout"] = pd.array([pd.NA] * len(out), dtype="boolean")
        out["ending_unknown"] = pd.array([pd.NA] * len(out), dtype="boolean")
    return sort_frame(out, ["client_id"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# per clinician, with the whole service for comparison
# --------------------------------------------------------------------------------------------

def clinician_alliance(
    alliance: pd.DataFrame,
    *,
    clients: pd.DataFrame | None = None,
    ruptures: pd.DataFrame | None = None,
    confidence: float = 0.95,
    sd_criterion: float | None = None,
    sd_floor: float | None = None,
    min_sessions: int | None = None,
    max_decline_sessions: int | None = None,
    repair_window: int | None = None,
    repair_tolerance: float | None = None,
    sd_basis: str | None = None,
    lost_contact_days: int | None = None,
    reference_date: pd.Timestamp | str | None = None,
    planned_reasons: Sequence[str] = _PLANNED_REASONS,
    client_alliance_frame: pd.DataFrame | None = None,
    rules=None,
) -> pd.DataFrame:
    """Alliance per clinician, and the same figures for the whole service.

    Parameters
    ----------
    alliance : DataFrame
        Output of :func:`session_alliance`. Not modified.
    clients : DataFrame, optional
        The ``clients`` table, needed for the dropout comparison (else those columns are missing).
    ruptures : DataFrame, optional
        Output of :func:`ruptures` for one criterion; computed with the options below if not given.
    confidence : float, default 0.95
        Level of the Wilson intervals (Wilson 1927; Newcombe 1998; docs/methods.md §3.1 [V]).
    sd_criterion, sd_floor, min_sessions, max_decline_sessions, repair_window, repair_tolerance, planned_reasons
        As in :func:`ruptures` and :func:`client_alliance`.
    client_alliance_frame : DataFrame, optional
        Output of :func:`client_alliance` for the same alliance, clients and ruptures (computed
        with the options above when not given).

    Returns
    -------
    DataFrame
        One row per clinician (``scope`` = the clinician id, sorted) followed by one row with
        ``scope == "service"`` (all clinicians pooled, the clinician included). Columns:

        - ``scope``; ``n_clients`` (with an attended session); ``n_sessions`` (attended);
          ``n_measured`` (with an SRS total)
        - ``median_srs``, ``q1_srs``, ``q3_srs``, ``iqr_srs``: over measured sessions
        - ``n_low``, ``low_rate`` (= n_low / n_measured), ``low_rate_lower``, ``low_rate_upper``:
          sessions at/below the cut-off with a Wilson interval. Sessions of one client are not
          independent, so with long series this interval is too narrow; read it with ``n_clients``.
        - ``n_judged_sessions``: measured sessions of clients judged for ruptures
        - ``n_ruptures``, ``ruptures_per_100``: episodes per 100 ``n_judged_sessions``
        - ``n_repaired``, ``n_unrepaired``, ``n_open``; ``repair_rate`` = repaired / (repaired +
          unrepaired), open episodes left out; ``repair_rate_lower``, ``repair_rate_upper`` (Wilson)
        - ``n_dropout``, ``n_stayed`` (clients with a first SRS; "stayed" = every other client,
          ongoing ones included), ``first_srs_dropout``, ``first_srs_stayed`` (mean first measured
          SRS of each group), ``first_srs_difference`` (dropout - stayed). Missing without ``clients``.
    """
    r = _rules(rules, "clinician_alliance()", locals())  # the rules, with the keywords given here on top
    sd_criterion, sd_floor, min_sessions = r.sd_criterion, r.sd_floor, r.min_sessions
    max_decline_sessions, repair_window, repair_tolerance = r.max_decline_sessions, r.repair_window, r.repair_tolerance
    sd_basis, lost_contact_days = r.sd_basis, r.lost_contact_days
    _require(alliance, "alliance", ["client_id", "clinician_id", "srs_total", "low"],
             "Pass the output of session_alliance(sessions).")
    ropts = _rupture_opts(locals())
    if ruptures is None:
        rp = _find_ruptures(alliance, clients=clients, **ropts)
    else:
        rp = ruptures
    _single_criterion(rp)
    if client_alliance_frame is None:
        ca = client_alliance(alliance, clients=clients, ruptures=rp, min_sessions=min_sessions,
                             planned_reasons=planned_reasons,
                             **{k: v for k, v in ropts.items() if k != "min_sessions"})
    else:
        _require(client_alliance_frame, "client_alliance_frame",
                 ["client_id", "clinician_id", "n_measured", "rupture_judged", "first_srs"]
                 + (["dropout"] if clients is not None else []),
                 "Pass the output of client_alliance(alliance, clients=clients, ruptures=ruptures).")
        ca = client_alliance_frame

    # integer scope codes: 0..k-1 the clinicians (sorted), k the whole service; no frame is copied
    scopes = sorted(pd.unique(ca["clinician_id"]).tolist())
    index = pd.Index([*scopes, "service"], name="scope")
    k = len(scopes)
    raw_code, raw_ids = pd.factorize(alliance["clinician_id"])
    sess_code = np.append(pd.Index(scopes).get_indexer(raw_ids), -1)[raw_code]  # -1 (missing id) -> -1
    x_all = pd.to_numeric(alliance["srs_total"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    meas = ~np.isnan(x_all) & (sess_code >= 0)
    x, code = x_all[meas], sess_code[meas]
    low = alliance["low"].astype("boolean").fillna(False).to_numpy(dtype=bool)[meas]

    def with_service(per_clinician: np.ndarray, service) -> np.ndarray:
        return np.append(np.asarray(per_clinician, dtype=float), service)

    out = pd.DataFrame(index=index)
    cl_code = pd.Index(scopes).get_indexer(ca["clinician_id"])
    out["n_clients"] = with_service(np.bincount(cl_code, minlength=k), len(ca)).astype(int)
    out["n_sessions"] = with_service(np.bincount(sess_code[sess_code >= 0], minlength=k),
                                     int((sess_code >= 0).sum())).astype(int)
    out["n_measured"] = with_service(np.bincount(code, minlength=k), len(x)).astype(int)
    g = pd.Series(x).groupby(code)
    for col, q in (("median_srs", 0.5), ("q1_srs", 0.25), ("q3_srs", 0.75)):
        per = g.quantile(q).reindex(range(k)).to_numpy(dtype=float) if len(x) else np.full(k, np.nan)
        out[col] = with_service(per, float(np.quantile(x, q)) if len(x) else np.nan)
    out["iqr_srs"] = out["q3_srs"] - out["q1_srs"]
    out["n_low"] = with_service(np.bincount(code, weights=low, minlength=k), low.sum()).astype(int)
    n_meas = out["n_measured"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["low_rate"] = np.where(n_meas > 0, out["n_low"] / np.maximum(n_meas, 1), np.nan)
    lo, hi = wilson_interval(out["n_low"].to_numpy(), n_meas, confidence)
    out["low_rate_lower"], out["low_rate_upper"] = lo, hi

    cl = ca.assign(scope=ca["clinician_id"])
    rr = rp[["clinician_id", "status"]].assign(scope=rp["clinician_id"])
    cl = pd.concat([cl, cl.assign(scope="service")], ignore_index=True)      # one row per client: small
    rr = pd.concat([rr, rr.assign(scope="service")], ignore_index=True)
    judged = cl[cl["rupture_judged"]]
    out["n_judged_sessions"] = judged.groupby("scope")["n_measured"].sum().reindex(index, fill_value=0)
    tab = _status_counts(index, rr["scope"], rr["status"])
    out["n_ruptures"] = tab.sum(axis=1)
    nj = out["n_judged_sessions"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ruptures_per_100"] = np.where(nj > 0, 100.0 * out["n_ruptures"] / np.maximum(nj, 1), np.nan)
    out["n_repaired"], out["n_unrepaired"], out["n_open"] = tab[:, 0], tab[:, 1], tab[:, 2]
    closed = (out["n_repaired"] + out["n_unrepaired"]).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["repair_rate"] = np.where(closed > 0, out["n_repaired"] / np.maximum(closed, 1), np.nan)
    lo, hi = wilson_interval(out["n_repaired"].to_numpy(), closed, confidence)
    out["repair_rate_lower"], out["repair_rate_upper"] = lo, hi

    if clients is not None:
        has = cl[cl["first_srs"].notna()]
        drop = has["dropout"].astype(bool)
        out["n_dropout"] = has[drop].groupby("scope").size().reindex(index, fill_value=0)
        out["n_stayed"] = has[~drop].groupby("scope").size().reindex(index, fill_value=0)
        out["first_srs_dropout"] = has[drop].groupby("scope")["first_srs"].mean().reindex(index)
        out["first_srs_stayed"] = has[~drop].groupby("scope")["first_srs"].mean().reindex(index)
        out["first_srs_difference"] = out["first_srs_dropout"] - out["first_srs_stayed"]
    else:
        for col in ("n_dropout", "n_stayed"):
            out[col] = pd.array([pd.NA] * len(out), dtype="Int64")
        for col in ("first_srs_dropout", "first_srs_stayed", "first_srs_difference"):
            out[col] = np.nan
    return out.reset_index()


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------

def alliance_options(settings=None, function: Callable | None = None) -> dict:
    """Keyword arguments for the alliance metrics from the ``[alliance]`` settings.

    Parameters
    ----------
    settings : Settings, dict, path or None
        Anything :func:`supervision.config.load_settings` accepts (None = the defaults).
    function : callable, optional
        Keep only the options this function accepts, e.g.
        ``session_alliance(s, **alliance_options(settings, session_alliance))``.

    Returns
    -------
    dict
        ``{keyword: value}``; the keys are the setting names of ``[alliance]`` in
        ``supervision/defaults.toml``, which are also the keyword names of the functions here,
        and ``lost_contact_days`` from ``[engagement]``.
    """
    return AllianceRules.from_settings(settings).kwargs(function)
