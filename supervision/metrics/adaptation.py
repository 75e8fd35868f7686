"""Adaptation gaps: does a clinician do worse with some kinds of clients than with others?

Pure functions (house style, ../shared/DESIGN.md §6): a tidy DataFrame in, a new DataFrame out,
options as keyword arguments; an option left None comes from ``rules=`` (an
:class:`~supervision.rules.AdaptationRules` or :class:`~supervision.rules.Rules` such as ``caseload.rules``;
None = the ``[adaptation]`` section of ``supervision/defaults.toml``, the only place a default is
written; see :func:`adaptation_options`). An option given is checked as the settings are; the input is never modified.

Pipeline::

    m = client_measures(caseload.clients, caseload.sessions)   # one row per client
    gaps = adaptation_gaps(m, clinician_id="T03")              # one row per cell and comparator
    f = funnel_data(m, dimension="religion_spirituality", group="muslim", metric="unilateral")

What is compared
----------------
For every identity dimension of the settings (``[identity] dimensions``) and every group of it
that the clinician has seen - ``declined`` and ``not_recorded`` included, never dropped - seven
client-level measures (:data:`METRICS`) of the group's clients are compared with

- ``clinician``: the same clinician's other clients (every client not in the group), and
- ``service``: the other clinicians' clients in the same group.

Rates (unilateral termination, unplanned single-session ending, reliable improvement, recovery)
get a Newcombe hybrid-score interval for the difference (Newcombe 1998, method 10) and the
'N - 1' chi-squared / Fisher-Irwin test (Campbell 2007); means (first-session and mean SRS,
share of sessions in which identity was addressed) get Welch's t interval and test, with each
group's variance moderated towards the service's (Smyth 2004) so that five clients who happen to
score alike do not pose as a precise estimate. Every client counts once, so sessions of one
client never pose as independent observations. p-values are one-sided, for the group faring
worse: a gap is a one-sided question, and a group faring better is not a gap.

Why two comparators are not enough on their own: against colleagues' clients in the same group,
every group of a clinician whose clients in general drop out more looks "worse"; against the
clinician's other clients, a group that fares worse everywhere in the service (say clients with
personality-disorder features) looks "worse" for every clinician. Neither is an *adaptation* gap.
So each cell also carries the **excess gap**, a difference in differences: (group - the
clinician's other clients) - (colleagues' group - colleagues' other clients), with Newcombe's
(2001) square-and-add interval for rates and a Welch-Satterthwaite interval for means. A clear gap
must show there too.

Small groups: a cell needs ``min_n`` contributing clients in the group and ``min_n_comparator``
in the comparator; below that it is ``too few clients`` and carries **no estimate at all** (NaN),
never a gap. Shrinkage: empirical Bayes across the service's clinicians (beta-binomial for rates,
normal-normal for means, docs/methods.md §3.2 and §2.6), so a group of six clients
is pulled towards what colleagues see with that group.

Verdicts (:data:`VERDICTS`), per row; "worse" means in the clinically unfavourable direction of
the metric (lower alliance, more dropout, less improvement, identity addressed less often):

- ``clear gap``: all of (1) worse, with the interval excluding 0; (2) Benjamini-Hochberg q-value
  <= ``fdr_q``, the family being every estimated row of the clinician for that comparator
  (dimensions x groups x metrics); (3) the shrunken difference at least the metric's practical
  threshold in the worse direction; (4) the excess gap worse, its interval excluding 0.
- ``possible gap``: (1) and (4) (or (1) when colleagues have too few clients for an excess gap),
  but not (2) or (3): worth a look, but it may be chance given how many cells were screened, or
  small once shrunk. On the synthetic clinics about 1 estimated row in 70 with nothing planted
  is a possible gap.
- ``no evidence``: neither (including differences that favour the group). Not evidence of *no*
  gap: read the interval and n.
- ``too few clients``: under the minimum n; no estimate.

Measured on synthetic clinics (``supervision.synth``, seeds 1-20, 12 clinicians, 18 months): a clear
gap was declared for 0.9 % of the clinician x dimension pairs where none was planted, and in the
planted group for 19 of the 40 planted gaps; with 8 clinicians over 12 months (seeds 101-120,
smaller caseloads) 0.4 % and 5 of 40. Before the excess-gap screen and the shrinkage floor of
issue #19 the same clinics gave 1.3 % and 22 of 40, 0.5 % and 8 of 40: the screen trades a few
planted gaps (now "possible") for fewer false ones. See tests/test_adaptation.py.

Sources and certainty: [V] read in the source, [V2] secondary source, [U] unverified design
choice. Min n, FDR level and the practical thresholds are [U] settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from supervision.metrics._checks import require_columns
from supervision.metrics._frames import reindex_first, sort_positions, take_values
from supervision.rules import AdaptationRules, Rules, area_rules, default_rules
from supervision.metrics.stats import (
    FUNNEL_LEVELS, benjamini_hochberg, beta_binomial_shrinkage, funnel_limits, funnel_overdispersion,
    newcombe_interaction_interval, newcombe_interval, normal_shrinkage, two_proportion_test, welch_interaction,
    welch_test,
)

__all__ = [
    "METRICS", "COMPARATORS", "VERDICTS", "MISSING_GROUPS", "MetricSpec",
    "client_measures", "adaptation_gaps", "funnel_data", "suppress_gaps", "adaptation_options",
    "outcome_instrument", "adjusted_gaps",
]


@dataclass(frozen=True)
class MetricSpec:
    """One compared measure: ``kind`` "rate" (0/1 per client) or "mean"; the better direction."""

    name: str
    kind: str
    higher_is_better: bool
    label: str
    unit: str
    denominator: str


#: The compared measures, in display order.
METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("first_srs", "mean", True, "First-session alliance (SRS)", "SRS points",
               "clients with an SRS total at their first measured session"),
    MetricSpec("mean_srs", "mean", True, "Mean alliance (SRS)", "SRS points",
               "clients with at least one SRS total"),
    MetricSpec("unilateral", "rate", False, "Unilateral termination", "share of ended episodes",
               "ended episodes"),
    MetricSpec("unplanned_single_session", "rate", False, "Unplanned single-session ending",
               "share of ended episodes", "ended episodes"),
    MetricSpec("reliable_improvement", "rate", True, "Reliable improvement", "share of clients",
               "clients with a change category (two measured sessions; ended episodes by default)"),
    MetricSpec("recovery", "rate", True, "Recovery (reliable and clinically significant)",
               "share of clients", "clients with a change category who started in the clinical range"),
    MetricSpec("identity_addressed", "mean", True, "Identity addressed in session",
               "mean share of a client's sessions", "clients with an attended session with identity_addressed recorded"),
)}
#: Comparators: the clinician's other clients, and colleagues' clients in the same group.
COMPARATORS = ("clinician", "service")
COMPARATOR_LABELS = {"clinician": "the clinician's other clients",
                     "service": "other clinicians' clients in the same group"}
#: Verdicts, most to least urgent; "suppressed" is added only by :func:`suppress_gaps`.
VERDICTS = ("clear gap", "possible gap", "no evidence", "too few clients")
#: Group values that say the identity is unknown; kept as groups of their own.
MISSING_GROUPS = ("declined", "not_recorded")

#: ``[adaptation.practical]`` of defaults.toml (written there only).
DEFAULT_PRACTICAL = dict(default_rules().adaptation.practical)

_COLUMNS = ["clinician_id", "dimension", "group", "metric", "comparator", "n_group", "n_comparator",
            "value_group", "value_comparator", "difference", "lower", "upper", "p_value", "q_value",
            "shrunken_difference", "verdict", "recording_rate", "excess_gap", "excess_lower", "excess_upper",
            "kind", "higher_is_better", "practical_threshold", "excess_p_value", "excess_q_value"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_require = require_columns
_RULE_NAMES = frozenset(f.name for f in fields(AdaptationRules))


def _rules(rules, function: str, given: dict) -> AdaptationRules:
    """The adaptation rules of a call: ``rules`` (None = the defaults) with the options given (not None) on top."""
    return area_rules(AdaptationRules, rules, function, **{k: v for k, v in given.items() if k in _RULE_NAMES})



def _check_int(name: str, value, minimum: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
    if not ok:
        raise ValueError(f"{name} must be a whole number >= {minimum}; got {value!r}.")
    return int(value)


def _check_unit(name: str, value) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and 0 < value < 1
    if not ok:
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {value!r}.")
    return float(value)


def _groups(values: pd.Series) -> pd.Series:
    """Identity values as text; empty or missing -> ``not_recorded`` (as the loader reads them)."""
    codes, names = _group_codes(values)
    return pd.Series(names[codes], index=values.index, dtype=object)


def _group_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(_groups(values), sort=True)``: each row's group code and the sorted group names.
    Only the distinct values are cleaned, so a column costs one hash pass."""
    codes, raw = pd.factorize(values)  # missing -> -1
    s = pd.Series(raw).astype("string").str.strip()
    clean = np.append(s.mask(s.isna() | (s == ""), "not_recorded").astype(object).to_numpy(), "not_recorded")
    new, names = pd.factorize(clean, sort=True)
    return new[codes], np.asarray(names, dtype=object)  # code -1 picks the trailing "not_recorded"


def _default_dimensions(frame: pd.DataFrame) -> list[str]:
    from supervision.config import load_settings

    return [d for d in load_settings().identity_dimensions if d in frame.columns]


def _dimensions(frame: pd.DataFrame, dimensions) -> list[str]:
    if dimensions is None:
        dims = list(frame.attrs.get("dimensions", [])) or _default_dimensions(frame)
        return [d for d in dims if d in frame.columns]
    dims = [dimensions] if isinstance(dimensions, str) else list(dimensions)
    missing = [d for d in dims if d not in frame.columns]
    if missing:
        raise ValueError(f"dimension(s) {', '.join(map(repr, missing))} are not columns of the table; "
                         f"identity columns present: "
                         f"{', '.join(c for c in frame.columns if c not in _MEASURE_COLUMNS) or '(none)'}.")
    return dims


def _metrics(frame: pd.DataFrame, metrics) -> list[str]:
    if metrics is None:
        return [m for m in METRICS if m in frame.columns
                and pd.to_numeric(frame[m], errors="coerce").notna().any()]
    ms = [metrics] if isinstance(metrics, str) else list(metrics)
    bad = [m for m in ms if m not in METRICS]
    if bad:
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, bad))}; allowed: {', '.join(METRICS)}.")
    missing = [m for m in ms if m not in frame.columns]
    if missing:
        raise ValueError(f"the table has no column(s) {', '.join(missing)}; pass the output of client_measures().")
    return ms


def _practical(practical) -> dict[str, float]:
    out = dict(DEFAULT_PRACTICAL)
    if practical is None:
        return out
    if not isinstance(practical, dict):
        raise ValueError(f"practical must be a dict {{metric: threshold}}; got {practical!r}.")
    for k, v in practical.items():
        if k not in METRICS:
            raise ValueError(f"practical names unknown metric {k!r}; allowed: {', '.join(METRICS)}.")
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and v >= 0
        if not ok:
            raise ValueError(f"practical[{k!r}] must be a number >= 0 (in the metric's units); got {v!r}.")
        out[k] = float(v)
    return out


def _group_order(groups) -> list[str]:
    """Groups sorted by name, with ``declined`` and ``not_recorded`` last."""
    gs = sorted({str(g) for g in groups})
    return [g for g in gs if g not in MISSING_GROUPS] + [g for g in MISSING_GROUPS if g in gs]


# --------------------------------------------------------------------------------------------
# per client
# --------------------------------------------------------------------------------------------

_MEASURE_COLUMNS = ("client_id", "clinician_id", "ended", "n_attended", *METRICS)


def client_measures(
    clients: pd.DataFrame,
    sessions: pd.DataFrame,
    *,
    dimensions: Sequence[str] | None = None,
    alliance: pd.DataFrame | None = None,
    engagement: pd.DataFrame | None = None,
    outcomes: pd.DataFrame | None = None,
    instrument: str | None = None,
    outcome_closed_only: bool | None = None,
    settings=None,
    rules=None,
) -> pd.DataFrame:
    """One row per client episode: identity groups and the seven compared measures.

    Parameters
    ----------
    clients, sessions : DataFrame
        Canonical tables of a :class:`~supervision.caseload.Caseload`. Not modified.
    dimensions : sequence of str, optional
        Identity columns to keep; default the ``[identity] dimensions`` setting that are columns of
        ``clients``. Empty or missing values become ``not_recorded``.
    alliance : DataFrame, optional
        Output of :func:`supervision.metrics.alliance.client_alliance` (``first_srs``,
        ``mean_srs``); computed with its defaults when not given.
    engagement : DataFrame, optional
        Output of :func:`supervision.metrics.engagement.episode_engagement` (``ended``,
        ``unilateral``, ``single_session_type``); computed when not given.
    outcomes : DataFrame, optional
        Output of :func:`supervision.metrics.outcome.client_outcomes` (``category``,
        ``clinical_first``, ``open``); computed for ``instrument`` when not given. When the
        instrument has no scores at all, the two outcome measures are left out (NaN).
    instrument : str, optional
        Outcome instrument for the change categories; default ``[outcome] instrument`` of ``rules``
        (a :class:`~supervision.rules.Rules`; else of defaults.toml).
    outcome_closed_only : bool, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Count reliable improvement and recovery for ended episodes only (the latest score of an
        open episode is an interim score) [U: design choice, as ``[outcome] effect_closed_only``].
    settings : optional
        Settings (identity dimensions, user instruments).

    Returns
    -------
    DataFrame
        One row per client of ``clients``, sorted by ``client_id``:

        - ``client_id``, ``clinician_id``, one column per identity dimension (text)
        - ``ended`` (bool), ``n_attended`` (attended sessions)
        - ``first_srs``: SRS total at the first measured session; ``mean_srs``: mean SRS total
          over measured sessions (:func:`~supervision.metrics.alliance.client_alliance`; NaN
          without SRS)
        - ``unilateral``: 1.0 when the ended episode ended ``unilateral``, 0.0 when it ended
          otherwise, NaN while open (Swift & Greenberg 2012 family of dropout definitions [V])
        - ``unplanned_single_session``: 1.0 for an ended episode with exactly one attended session
          whose end reason is not planned/mutual/referred_on (``single_session_type ==
          "unplanned"``, :func:`~supervision.metrics.engagement.episode_engagement`), 0.0 for
          other ended episodes, NaN while open
        - ``reliable_improvement``: 1.0 when the Jacobson-Truax category is ``recovered`` or
          ``improved`` (reliable change index beyond 1.96, Jacobson & Truax 1991 [V]), 0.0 for
          ``unchanged``/``deteriorated``/``harmed``, NaN without a category (fewer than two
          measured sessions) or, with ``outcome_closed_only``, while open
        - ``recovery``: 1.0 for ``recovered``, 0.0 for the other categories, among clients in the
          clinical range at intake only (``clinical_first``); NaN otherwise
        - ``identity_addressed``: share of the client's attended sessions with
          ``identity_addressed`` true (a cultural opportunity engaged); NaN when none is recorded

        ``attrs["dimensions"]`` lists the identity columns.
    """
    r = _rules(rules, "client_measures()", locals())  # the rules, with the keywords given here on top
    outcome_closed_only = r.outcome_closed_only
    every = rules if isinstance(rules, Rules) else None  # the other areas' rules for the tables computed here
    if instrument is None:  # the [outcome] instrument of the same rules
        instrument = (every or default_rules()).outcome.instrument
    from supervision.config import load_settings
    from supervision.metrics.alliance import client_alliance, session_alliance
    from supervision.metrics.engagement import episode_engagement
    from supervision.metrics.outcome import client_outcomes

    _require(clients, "clients", ["client_id", "clinician_id"],
             "Pass the canonical clients table (supervision.load_caseload().clients).")
    _require(sessions, "sessions", ["client_id", "clinician_id", "session_date", "attendance"],
             "Pass the canonical sessions table (supervision.load_caseload().sessions).")
    if not isinstance(outcome_closed_only, (bool, np.bool_)):
        raise ValueError(f"outcome_closed_only must be true or false; got {outcome_closed_only!r}.")
    if dimensions is None:
        dims = [d for d in load_settings(settings).identity_dimensions if d in clients.columns]
    else:
        dims = [dimensions] if isinstance(dimensions, str) else list(dimensions)
        missing = [d for d in dims if d not in clients.columns]
        if missing:
            raise ValueError(f"clients has no identity column(s) {', '.join(map(repr, missing))}; "
                             f"columns: {', '.join(map(str, clients.columns))}.")

    # each client's first row (clients.drop_duplicates("client_id")), sorted by client_id
    rows = sort_positions(clients, ["client_id"], np.flatnonzero(~clients["client_id"].duplicated().to_numpy()))
    ids = pd.Index(take_values(clients["client_id"], rows))
    out = pd.DataFrame({"client_id": take_values(clients["client_id"], rows),
                        "clinician_id": take_values(clients["clinician_id"], rows)})
    for d in dims:
        codes, names = _group_codes(clients[d].take(rows))
        out[d] = pd.array(names.astype(str), dtype="str").take(codes)

    if engagement is None:
        engagement = episode_engagement(clients, sessions, rules=every)
    _require(engagement, "engagement", ["client_id", "ended", "n_attended", "unilateral", "single_session_type"],
             "Pass the output of episode_engagement(clients, sessions).")
    e = reindex_first(engagement, "client_id", ids, ["ended", "n_attended", "unilateral", "single_session_type"])
    ended = e["ended"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    out["ended"] = ended
    out["n_attended"] = pd.to_numeric(e["n_attended"], errors="coerce").fillna(0).to_numpy(dtype=np.int64)

    if alliance is None:
        alliance = client_alliance(session_alliance(sessions, rules=every), clients=clients, rules=every)
    _require(alliance, "alliance", ["client_id", "first_srs", "mean_srs"],
             "Pass the output of client_alliance(session_alliance(sessions)).")
    a = reindex_first(alliance, "client_id", ids, ["first_srs", "mean_srs"])
    out["first_srs"] = pd.to_numeric(a["first_srs"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out["mean_srs"] = pd.to_numeric(a["mean_srs"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    uni = e["unilateral"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    out["unilateral"] = np.where(ended, uni.astype(float), np.nan)
    sst = e["single_session_type"].astype("string")
    unpl = (sst == "unplanned").fillna(False).to_numpy(dtype=bool)
    out["unplanned_single_session"] = np.where(ended, unpl.astype(float), np.nan)

    ri = np.full(len(out), np.nan)
    rec = np.full(len(out), np.nan)
    if outcomes is None:
        try:
            outcomes = client_outcomes(sessions, instrument=instrument, clients=clients, settings=settings, rules=every)
        except (ValueError, KeyError):  # no such instrument / no reliable-change value: no outcome measures
            outcomes = None
    if outcomes is not None and len(outcomes):
        _require(outcomes, "outcomes", ["client_id", "category", "clinical_first"],
                 "Pass the output of client_outcomes(sessions, clients=clients).")
        o = reindex_first(outcomes, "client_id", ids,
                          [c for c in ("category", "clinical_first", "open") if c in outcomes.columns])
        cat = o["category"].astype("string")
        has = cat.notna().to_numpy(dtype=bool).copy()
        if outcome_closed_only:
            closed = (~o["open"].astype("boolean").fillna(True)).to_numpy(dtype=bool) if "open" in o.columns else ended
            has &= closed
        better = cat.isin(["recovered", "improved"]).fillna(False).to_numpy(dtype=bool)
        recovered = (cat == "recovered").fillna(False).to_numpy(dtype=bool)
        clinical = o["clinical_first"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        ri = np.where(has, better.astype(float), np.nan)
        rec = np.where(has & clinical, recovered.astype(float), np.nan)
    out["reliable_improvement"] = ri
    out["recovery"] = rec

    ia = np.full(len(out), np.nan)
    if "identity_addressed" in sessions.columns:
        att = (sessions["attendance"] == "attended").fillna(False).to_numpy(dtype=bool)
        code, sess_ids = pd.factorize(sessions["client_id"])
        value = sessions["identity_addressed"].astype("boolean").astype("Float64").to_numpy(
            dtype=float, na_value=np.nan)
        use = att & ~np.isnan(value) & (code >= 0)
        share = pd.Series(value[use]).groupby(code[use]).mean()  # per client of the sessions
        ia = share.reindex(sess_ids.get_indexer(ids)).to_numpy(dtype=float)
    out["identity_addressed"] = ia
    out.attrs["dimensions"] = list(dims)
    return out


# --------------------------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------------------------
#
# adaptation_gaps reads as its definition (docs/methods.md §9.6); each step is one private
# function below it, in the order the definition takes them, computed on whole columns. The
# words used throughout:
#
# - a *cell* is one clinician x one group of one identity dimension; every clinician's cells are
#   kept (the comparators and the shrinkage priors need the colleagues' cells too);
# - a *unit* is a cell x a measure; it holds the (n, sum, sum of squares) of its four client sets;
# - a *row* is a reported unit x a comparator: one row of the returned table.

#: The four client sets of a unit, in the order of the ``sets`` arrays.
_SETS = ("group", "own_other", "colleagues_group", "colleagues_other")
#: Each comparator's client set: the clinician's other clients, or colleagues' clients in the group.
_COMPARATOR_SET = {"clinician": _SETS.index("own_other"), "service": _SETS.index("colleagues_group")}


@dataclass(frozen=True)
class _GapOptions:
    """The checked options of :func:`adaptation_gaps` (``d0`` = variance_prior_df, ``w_min`` = min_own_weight)."""

    min_n: int
    min_n_comparator: int
    confidence: float
    fdr_q: float
    fdr_scope: str
    thresholds: dict
    d0: float
    w_min: float
    excess_multiplicity: str


@dataclass(frozen=True)
class _Cells:
    """Every clinician x group cell of every dimension, the dimensions one after another; within a
    dimension sorted by clinician, then group name. ``group`` indexes ``group_names`` (each
    dimension's groups, one after another)."""

    clin: np.ndarray            # the cell's clinician (index into the sorted clinician names)
    dim: np.ndarray             # the cell's dimension (index into dims)
    group: np.ndarray           # the cell's group (index into group_names)
    reported: np.ndarray        # the cell's clinician was asked for
    recording_rate: np.ndarray  # the clinician's share of clients with the dimension recorded
    group_names: list[str]
    group_rank: np.ndarray      # per group name: its place in the dimension's order (missing groups last)
    client_cell: list[np.ndarray]   # per dimension: each client's cell, counted from the dimension's first
    client_group: list[np.ndarray]  # per dimension: each client's group, counted likewise
    starts: np.ndarray          # per dimension: its first cell and first group (two columns), and the ends


@dataclass(frozen=True)
class _Units:
    """Per unit (measure ``mi`` x cell ``c`` at ``mi * n_cells + c``): the four client sets' sums."""

    sets: np.ndarray      # (units, 4, 3): n, sum, sum of squares of each set of _SETS
    n_cells: int
    kind: np.ndarray      # per measure: "rate" or "mean"
    s0: np.ndarray        # per measure: the service-wide variance of the measure (means; NaN for rates)


@dataclass(frozen=True)
class _Rows:
    """The returned table's rows in table order: each a unit and a comparator (index into COMPARATORS)."""

    unit: np.ndarray
    cell: np.ndarray
    metric: np.ndarray
    comparator: np.ndarray
    clin: np.ndarray
    higher_is_better: np.ndarray
    rate: np.ndarray      # the measure is a rate (else a mean)


def adaptation_gaps(
    measures: pd.DataFrame,
    *,
    clinician_id: str | Sequence[str] | None = None,
    dimensions: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    min_n: int | None = None,
    min_n_comparator: int | None = None,
    confidence: float | None = None,
    fdr_q: float | None = None,
    fdr_scope: str | None = None,
    practical: dict | None = None,
    variance_prior_df: float | None = None,
    min_own_weight: float | None = None,
    excess_multiplicity: str | None = None,
    rules=None,
) -> pd.DataFrame:
    """Screen a clinician's identity groups for gaps against two comparators, with honest uncertainty.

    Parameters
    ----------
    measures : DataFrame
        Output of :func:`client_measures` for the **whole service** (the service comparator and
        the shrinkage priors use every clinician). Not modified.
    clinician_id : str or sequence of str, optional
        Clinician(s) to report; default every clinician.
    dimensions : sequence of str, optional
        Identity columns to screen; default ``measures.attrs["dimensions"]`` or the settings'.
    metrics : sequence of str, optional
        Measures to compare (keys of :data:`METRICS`); default every one with data.
    min_n : int, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Contributing clients needed in the group before a gap is estimated [U].
    min_n_comparator : int, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Contributing clients needed in the comparator [U].
    confidence : float, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Level of the intervals.
    fdr_q : float, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Benjamini-Hochberg false-discovery rate for ``clear gap`` [U].
    fdr_scope : {"clinician", "all"}, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        The FDR family: every estimated row of one clinician against one comparator (dimensions
        x groups x metrics), or every estimated row of the table.
    practical : dict, optional
        ``{metric: threshold}`` in the metric's units: the smallest shrunken difference (in the
        worse direction) that counts as a clear gap [U]; unnamed metrics keep
        :data:`DEFAULT_PRACTICAL` (2 SRS points, 10 percentage points for rates, 5 points of
        sessions for identity addressed).
    variance_prior_df : float, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Means only: each group's variance is moderated towards the service-wide variance of the
        measure, s~^2 = (d0 s0^2 + (n - 1) s^2) / (d0 + n - 1), with d0 prior degrees of freedom
        and d0 + n - 1 degrees of freedom in Welch's test (the empirical-Bayes moderated t of
        Smyth 2004, Stat Appl Genet Mol Biol 3:3 [U: method from memory, not re-read], with d0
        fixed instead of estimated [U]).
        It stops a small group whose clients happen to score alike (e.g. five clients with no
        session addressing identity: SD 0) from posing as a precise estimate. 0 = plain Welch.
    min_own_weight : float, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Floor on the weight of a cell's own data in the shrunken difference (0-1) [U: design
        choice]. Empirical-Bayes shrinkage estimates the spread between clinicians from a
        handful of them; when that estimate is 0 (DerSimonian-Laird tau^2 = 0, or a beta-binomial
        prior of unbounded precision) the cell is fully pooled and a gap of 7 SRS points with an
        interval excluding 0 shrinks to under 2. With the floor, a cell keeps at least this share
        of its own difference from the prior mean. 0 = plain empirical Bayes.
    excess_multiplicity : {"bh_selected", "none"}, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        The excess gap that a ``clear gap`` needs is a second test, run on the rows that passed
        the first (Benjamini-Hochberg q <= ``fdr_q``). "bh_selected": its one-sided p-value
        (the level at which its interval touches 0) gets a Benjamini-Hochberg q among the selected
        rows of the same family, and a clear gap needs that q <= ``fdr_q`` too (a two-stage
        screen: Benjamini & Hochberg 1995 [V] applied within the selected set [U: design
        choice]). "none": the nominal interval excluding 0 is enough (the first wave's rule, under
        which a chance excess gap passed: T07, disability = no).

    Returns
    -------
    DataFrame
        One row per clinician x dimension x group (every group the clinician has a client in,
        ``declined`` and ``not_recorded`` included) x metric x comparator:

        - ``clinician_id``, ``dimension``, ``group``, ``metric``, ``comparator`` (``clinician``:
          the clinician's other clients; ``service``: other clinicians' clients in the group)
        - ``n_group``, ``n_comparator``: clients contributing to the metric (e.g. ended episodes
          for rates of endings)
        - ``value_group``, ``value_comparator``: rate (0-1) or mean
        - ``difference`` = group - comparator; ``lower``, ``upper``: Newcombe hybrid-score interval
          (rates; Newcombe 1998 method 10 [V2]: Table II values via R propint's tests) or Welch t interval
          (means; Welch 1947, as scipy.stats.ttest_ind [V])
        - ``p_value``: one-sided p for the group faring worse: 'N - 1' chi-squared or Fisher-Irwin
          test (rates; Campbell 2007 [U: recommendation from memory]) or Welch t-test with moderated variances (means);
          ``q_value``: Benjamini-Hochberg (1995) adjusted p within the ``fdr_scope`` family [V]
        - ``shrunken_difference``: empirical-Bayes group value - comparator value. Rates: the
          clinician's group rate under a Beta prior fitted by beta-binomial maximum likelihood to
          every clinician's rate in the group (docs/methods.md §3.2 [V]); for the ``clinician``
          comparator the other-clients rate is shrunk the same way, the ``service`` comparator is
          already a pooled service figure. Means: normal-normal shrinkage with a DerSimonian-Laird
          between-clinician variance (Morris 1983; stats.normal_shrinkage). With few clients the estimate moves towards
          what colleagues see with the group. NaN when fewer than two clinicians have the group.
        - ``verdict``: ``clear gap``, ``possible gap``, ``no evidence``, ``too few clients`` (see
          the module docstring)
        - ``recording_rate``: share of the clinician's clients whose value in this dimension is
          not ``not_recorded`` (``declined`` counts as recorded: the question was asked)
        - ``excess_gap``, ``excess_lower``, ``excess_upper``: (group - the clinician's other
          clients) - (colleagues' group - colleagues' other clients) with its interval (Newcombe
          2001 square-and-add for rates [V2: §4.1 example via propint's tests];
          Welch-Satterthwaite for means); the same on both
          comparator rows of a cell; NaN when any of the four has too few clients
        - ``excess_p_value``, ``excess_q_value``: one-sided p of the excess gap and its
          Benjamini-Hochberg q among the rows selected in the family (``excess_multiplicity``);
          only for rows with q_value <= ``fdr_q`` and an excess gap, NaN otherwise
        - ``kind`` (``rate``/``mean``), ``higher_is_better``, ``practical_threshold``

        ``attrs`` holds the options (``min_n``, ``confidence``, ``fdr_q``, ...). Rows under the
        minimum n have NaN in every estimate column. Sorted by clinician, dimension
        (settings order), group (``declined``/``not_recorded`` last), metric (:data:`METRICS`
        order), comparator.
    """
    r = _rules(rules, "adaptation_gaps()", locals())  # the rules, with the keywords given here on top
    min_n, min_n_comparator, confidence = r.min_n, r.min_n_comparator, r.confidence
    fdr_q, fdr_scope, variance_prior_df = r.fdr_q, r.fdr_scope, r.variance_prior_df
    min_own_weight, excess_multiplicity, practical = r.min_own_weight, r.excess_multiplicity, r.practical
    _require(measures, "measures", ["client_id", "clinician_id"],
             "Pass the output of client_measures(clients, sessions).")
    opts = _gap_options(min_n, min_n_comparator, confidence, fdr_q, fdr_scope, practical, variance_prior_df,
                        min_own_weight, excess_multiplicity)
    dims, mets = _dimensions(measures, dimensions), _metrics(measures, metrics)
    clinician, names, asked = _clinicians(measures, clinician_id)
    cells = _identity_cells(measures, dims, clinician, asked)           # clinician x group, every dimension
    if not cells.reported.any():
        return _empty()
    units = _client_sets(measures, mets, cells, clinician, len(names))  # each cell's four client sets, per measure
    rows = _table_rows(cells, units, mets)                              # reported cell x measure x comparator
    gap = _gap_against_comparator(units, rows, opts)                    # minimum n; difference, interval, p
    shrunken = _shrunken_difference(units, cells, rows, gap, opts)      # empirical Bayes, own weight floored
    excess = _excess_gap(units, cells, opts)                            # against colleagues' pattern
    q, family = _false_discovery(gap, rows, opts)                       # Benjamini-Hochberg within the family
    excess_p, excess_q = _excess_screen(units, rows, excess, gap, q, family, opts)  # its own multiplicity step
    verdict = _verdicts(gap, q, shrunken, excess, excess_q, rows, mets, opts)
    return _gap_table(names, dims, mets, cells, rows, gap, q, shrunken, excess, excess_p, excess_q, verdict, opts)


def _gap_options(min_n, min_n_comparator, confidence, fdr_q, fdr_scope, practical, variance_prior_df,
                 min_own_weight, excess_multiplicity) -> _GapOptions:
    """The options of :func:`adaptation_gaps` checked, in that order; a bad one is named in plain words."""
    min_n = _check_int("min_n", min_n, 2)
    min_n_comparator = _check_int("min_n_comparator", min_n_comparator, 2)
    confidence = _check_unit("confidence", confidence)
    fdr_q = _check_unit("fdr_q", fdr_q)
    if fdr_scope not in ("clinician", "all"):
        raise ValueError(f"fdr_scope must be 'clinician' or 'all'; got {fdr_scope!r}.")
    thresholds = _practical(practical)
    ok_d0 = isinstance(variance_prior_df, (int, float, np.integer, np.floating)) and not isinstance(
        variance_prior_df, bool) and variance_prior_df >= 0
    if not ok_d0:
        raise ValueError(f"variance_prior_df must be a number >= 0 (0 = plain Welch); got {variance_prior_df!r}.")
    ok_w = isinstance(min_own_weight, (int, float, np.integer, np.floating)) and not isinstance(
        min_own_weight, bool) and 0 <= min_own_weight <= 1
    if not ok_w:
        raise ValueError(f"min_own_weight must be a number from 0 to 1 (0 = plain empirical Bayes); got {min_own_weight!r}.")
    if excess_multiplicity not in ("bh_selected", "none"):
        raise ValueError(f"excess_multiplicity must be 'bh_selected' or 'none'; got {excess_multiplicity!r}.")
    return _GapOptions(min_n, min_n_comparator, confidence, fdr_q, fdr_scope, thresholds, float(variance_prior_df),
                       float(min_own_weight), excess_multiplicity)


def _clinicians(measures: pd.DataFrame, clinician_id) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each client's clinician (index into the sorted names, -1 for none), the names, and which were asked for."""
    codes, uniques = pd.factorize(measures["clinician_id"].astype(object), sort=True)
    names = np.asarray(uniques, dtype=object)
    if clinician_id is None:
        return codes, names, np.ones(len(names), dtype=bool)
    asked = {clinician_id} if isinstance(clinician_id, str) else set(clinician_id)
    unknown = sorted(map(str, asked - set(names)))
    if unknown:
        raise ValueError(f"clinician_id {', '.join(unknown)} has no clients in the table; "
                         f"clinicians: {', '.join(map(str, names))}.")
    return codes, names, np.isin(names, list(asked))


def _identity_cells(measures: pd.DataFrame, dims: list[str], clinician: np.ndarray, asked: np.ndarray) -> _Cells:
    """Every clinician x group cell of each dimension (docs/methods.md §9.6; "What is compared" in the
    module docstring): every group a clinician has a client in, ``declined`` and ``not_recorded``
    included, and each clinician's recording rate of the dimension (``declined`` counts as recorded:
    the question was asked). Clients without a clinician are left out."""
    valid = clinician >= 0
    cc = clinician[valid].astype(np.int64)
    K = len(asked)
    clin, dim, group, rec, client_cell, client_group = [], [], [], [], [], []
    group_names: list[str] = []
    group_rank: list[int] = []
    cell_start, group_start = [0], [0]
    for di, d in enumerate(dims):
        codes, names = _group_codes(measures[d])
        present = np.unique(codes[valid])  # the groups of rows with a clinician, sorted by name
        gr, gr_names = np.searchsorted(present, codes[valid]), names[present]
        G = len(gr_names)
        cell_of_client, cell_key = pd.factorize(cc * G + gr, sort=True)  # np.unique, by hashing
        recorded = (names != "not_recorded")[codes[valid]]
        rate = np.bincount(cc, weights=recorded.astype(float), minlength=K) / np.maximum(np.bincount(cc, minlength=K), 1)
        clin.append(cell_key // G)
        dim.append(np.full(cell_key.size, di))
        group.append(group_start[-1] + cell_key % G)
        rec.append(rate[cell_key // G])
        client_cell.append(cell_of_client)
        client_group.append(gr)
        order = {g: i for i, g in enumerate(_group_order(gr_names))}
        group_names.extend(str(g) for g in gr_names)
        group_rank.extend(order[str(g)] for g in gr_names)
        cell_start.append(cell_start[-1] + cell_key.size)
        group_start.append(group_start[-1] + G)
    cat = (lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype))
    clin_all = cat(clin, np.int64)
    return _Cells(clin=clin_all, dim=cat(dim, np.int64), group=cat(group, np.int64), reported=asked[clin_all],
                  recording_rate=cat(rec, float), group_names=group_names,
                  group_rank=np.asarray(group_rank, dtype=np.int64), client_cell=client_cell,
                  client_group=client_group, starts=np.column_stack([cell_start, group_start]))


def _client_sets(measures: pd.DataFrame, mets: list[str], cells: _Cells, clinician: np.ndarray, K: int) -> _Units:
    """The four client sets of each cell and measure (docs/methods.md §9.6 "Comparators"), as counts,
    sums and sums of squares of the clients with a value (every client counts once):

    - ``group``: the clinician's clients in the group;
    - ``own_other``: the clinician's other clients (the ``clinician`` comparator);
    - ``colleagues_group``: other clinicians' clients in the group (the ``service`` comparator);
    - ``colleagues_other``: other clinicians' other clients (the excess gap's fourth set).

    Also each mean measure's service-wide variance (the s0^2 towards which variances are moderated).
    """
    valid = clinician >= 0
    cc = clinician[valid]
    C = cells.clin.size
    sets = np.empty((len(mets) * C, len(_SETS), 3))
    s0 = np.full(len(mets), np.nan)
    for mi, m in enumerate(mets):
        x = pd.to_numeric(measures[m], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[valid]
        if METRICS[m].kind == "mean" and np.sum(~np.isnan(x)) > 1:
            s0[mi] = float(np.nanvar(x, ddof=1))
        has = ~np.isnan(x)
        xv = np.where(has, x, 0.0)
        terms = (has.astype(float), xv, xv * xv)
        clinician_all = _sums(terms, cc, K)
        service_all = _sums(terms, np.zeros(cc.size, dtype=np.int64), 1)
        out = sets[mi * C:(mi + 1) * C]
        for d in range(len(cells.client_cell)):
            (c0, g0), (c1, g1) = cells.starts[d], cells.starts[d + 1]
            group = _sums(terms, cells.client_cell[d], c1 - c0)
            clinician_total = clinician_all[cells.clin[c0:c1]]
            service_group = _sums(terms, cells.client_group[d], g1 - g0)[cells.group[c0:c1] - g0]
            out[c0:c1, 0] = group
            out[c0:c1, 1] = clinician_total - group
            out[c0:c1, 2] = service_group - group
            out[c0:c1, 3] = (service_all - clinician_total) - (service_group - group)
    return _Units(sets=sets, n_cells=C, kind=np.array([METRICS[m].kind for m in mets], dtype=object), s0=s0)


def _sums(terms: tuple[np.ndarray, ...], idx: np.ndarray, size: int) -> np.ndarray:
    """Each term (has a value, value, value squared) summed per ``idx`` (0..size-1): a (size, 3) array."""
    return np.stack([np.bincount(idx, weights=w, minlength=size) for w in terms], axis=1)


def _table_rows(cells: _Cells, units: _Units, mets: list[str]) -> _Rows:
    """The rows of the table in its order: clinician, dimension (settings order), group (``declined`` /
    ``not_recorded`` last), measure (:data:`METRICS` order), comparator; reported clinicians only."""
    reported = np.flatnonzero(cells.reported)
    by_cell = reported[np.lexsort((cells.group_rank[cells.group[reported]], cells.dim[reported],
                                   cells.clin[reported]))]
    slots = sorted((list(METRICS).index(m), ci, mi) for mi, m in enumerate(mets) for ci in range(len(COMPARATORS)))
    metric = np.tile(np.array([mi for _, _, mi in slots], dtype=np.int64), by_cell.size)
    cell = np.repeat(by_cell, len(slots))
    hib = np.array([METRICS[m].higher_is_better for m in mets], dtype=bool)
    return _Rows(unit=metric * units.n_cells + cell, cell=cell, metric=metric,
                 comparator=np.tile(np.array([ci for _, ci, _ in slots], dtype=np.int64), by_cell.size),
                 clin=cells.clin[cell], higher_is_better=hib[metric], rate=(units.kind == "rate")[metric])


def _gap_against_comparator(units: _Units, rows: _Rows, opts: _GapOptions) -> dict[str, np.ndarray]:
    """Each row's group against its comparator (docs/methods.md §9.6 "Comparators", "Minimum n").

    ``n_group`` / ``n_comparator`` count the clients with a value. A row is ``estimated`` with at least
    ``min_n`` in the group and ``min_n_comparator`` in the comparator; the others get no estimate. The
    difference is group - comparator with its interval, and the p-value is one-sided for the group
    faring worse (a group faring better is not a gap): :func:`_rate_gap`, :func:`_mean_gap`.
    """
    comparator_set = np.array([_COMPARATOR_SET[c] for c in COMPARATORS])[rows.comparator]
    group, comp = units.sets[rows.unit, 0], units.sets[rows.unit, comparator_set]
    n_g, n_c = group[:, 0], comp[:, 0]
    estimated = (n_g >= opts.min_n) & (n_c >= opts.min_n_comparator)
    mean_g, sd_g = _mean_sd(n_g, group[:, 1], group[:, 2])
    mean_c, sd_c = _mean_sd(n_c, comp[:, 1], comp[:, 2])
    out = {"n_group": n_g.astype(np.int64), "n_comparator": n_c.astype(np.int64), "estimated": estimated,
           **{col: np.full(n_g.size, np.nan) for col in ("value_group", "value_comparator", "difference", "lower",
                                                         "upper", "p_value")}}
    for rate in (True, False):
        for hib in (True, False):
            at = np.flatnonzero(estimated & (rows.rate == rate) & (rows.higher_is_better == hib))
            if not at.size:
                continue
            worse = "less" if hib else "greater"
            if rate:
                d, lo, hi, p = _rate_gap(group[at], comp[at], worse, opts.confidence)
            else:
                s0 = units.s0[rows.metric[at]]
                d, lo, hi, p = _mean_gap(mean_g[at], sd_g[at], n_g[at], mean_c[at], sd_c[at], n_c[at], s0, worse, opts)
            out["value_group"][at], out["value_comparator"][at] = mean_g[at], mean_c[at]
            out["difference"][at], out["lower"][at], out["upper"][at], out["p_value"][at] = d, lo, hi, p
    return out


def _mean_sd(n, s, ss):
    """Mean and SD (ddof 1) from n, sum and sum of squares; NaN where n is 0 (mean) or under 2 (SD)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        var = np.where(n > 1, np.maximum(ss - n * mean * mean, 0.0) / np.maximum(n - 1, 1), np.nan)
    return mean, np.sqrt(var)


def _rate_gap(group: np.ndarray, comp: np.ndarray, worse: str, confidence: float):
    """A difference of two rates (docs/methods.md §9.6, §3.1): the Newcombe hybrid-score interval
    (Newcombe 1998, method 10) and the one-sided 'N - 1' chi-squared / Fisher-Irwin test (Campbell 2007 [U])."""
    k_g, k_c = np.round(group[:, 1]), np.round(comp[:, 1])
    n_g, n_c = group[:, 0], comp[:, 0]
    lo, hi = newcombe_interval(k_g, n_g, k_c, n_c, confidence)
    p = two_proportion_test(k_g, n_g, k_c, n_c, alternative=worse)
    return group[:, 1] / n_g - comp[:, 1] / n_c, lo, hi, p


def _mean_gap(mean_g, sd_g, n_g, mean_c, sd_c, n_c, s0, worse: str, opts: _GapOptions):
    """A difference of two means (docs/methods.md §9.6): Welch's t interval and one-sided test, each
    side's variance moderated towards the service's s0^2 with ``variance_prior_df`` prior degrees of
    freedom (:func:`_moderate`; Smyth 2004 [U]), so five clients who happen to score alike do not pose
    as a precise estimate."""
    var_g, df_g = _moderate(sd_g, n_g, s0, opts.d0)
    var_c, df_c = _moderate(sd_c, n_c, s0, opts.d0)
    w = welch_test(mean_g, np.sqrt(var_g), n_g, mean_c, np.sqrt(var_c), n_c, opts.confidence,
                   df1=df_g, df2=df_c, alternative=worse)
    return w["difference"], w["lower"], w["upper"], w["p_value"]


def _moderate(sd: np.ndarray, n: np.ndarray, s0, d0: float) -> tuple[np.ndarray, np.ndarray]:
    """Variance moderated towards s0^2 with d0 prior degrees of freedom, and its df (docs/methods.md §9.6,
    Smyth 2004 [U]): (d0 s0 + (n - 1) s^2) / (d0 + n - 1) on d0 + n - 1 df. ``s0`` is one variance or
    one per row; where d0 is 0 or s0 is not finite, the plain variance on n - 1 df (NaN under 2 clients)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(n > 1, sd * sd, 0.0)
        dfo = np.maximum(n - 1, 0)
        plain = (d0 <= 0) | ~np.isfinite(s0)
        var = (d0 * s0 + dfo * own) / (d0 + dfo)
    return (np.where(plain, np.where(n > 1, own, np.nan), var),
            np.where(plain, np.where(n > 1, dfo, np.nan), d0 + dfo))


def _shrunken_difference(units: _Units, cells: _Cells, rows: _Rows, gap: dict, opts: _GapOptions) -> np.ndarray:
    """Empirical-Bayes group value - comparator value, per estimated row (docs/methods.md §9.6 "Shrinkage").

    The group's value is shrunk towards what colleagues see with the group: beta-binomial for rates
    (§3.2), normal-normal for means (§2.6), the prior fitted per group across every clinician's cell,
    the cell's own data keeping at least ``min_own_weight`` of the weight. Against the clinician's
    other clients, those are shrunk the same way; the service comparator is already a pooled figure.
    """
    C = units.n_cells
    out = np.full(rows.unit.size, np.nan)
    for mi, kind in enumerate(units.kind):
        sets = units.sets[mi * C:(mi + 1) * C]
        shrink = _shrink_rates if kind == "rate" else _shrink_means
        group_ok = cells.reported & (sets[:, 0, 0] >= opts.min_n)  # the groups a reported row can need
        own_other_ok = group_ok & (sets[:, 1, 0] >= opts.min_n_comparator)
        group = shrink(sets[:, 0], cells.group, group_ok, opts.w_min)
        own_other = shrink(sets[:, 1], cells.group, own_other_ok, opts.w_min)
        at = np.flatnonzero(gap["estimated"] & (rows.metric == mi))
        cell = rows.cell[at]
        against = np.where(rows.comparator[at] == COMPARATORS.index("clinician"), own_other[cell],
                           gap["value_comparator"][at])
        out[at] = group[cell] - against
    return out


def _shrink_rates(sums: np.ndarray, group_codes: np.ndarray, wanted: np.ndarray,
                  min_own_weight: float = 0.0) -> np.ndarray:
    """Beta-binomial EB rate per cell (docs/methods.md §3.2), the prior fitted per group across the
    clinicians with clients in the set; only groups with a ``wanted`` cell are fitted (NaN elsewhere).

    ``sums`` holds each cell's (n, events, -). The cell's own rate keeps at least ``min_own_weight``
    of the weight (§9.6): n / (n + a + b) is floored, so a prior fitted as "no difference between
    clinicians" cannot erase the cell's own data.
    """
    n, k = sums[:, 0], sums[:, 1]
    out = np.full(n.shape, np.nan)
    for g in np.unique(group_codes[wanted]):
        idx = np.flatnonzero(group_codes == g)
        units = idx[n[idx] > 0]
        if units.size < 2:
            continue
        eb = beta_binomial_shrinkage(k[units], n[units], interval=False)
        est = np.asarray(eb["estimate"], dtype=float)
        a0, b0 = float(eb["alpha"]), float(eb["beta"])
        if min_own_weight > 0 and np.isfinite(a0) and np.isfinite(b0) and a0 + b0 > 0:
            weight = n[units] / (n[units] + a0 + b0)
            prior = a0 / (a0 + b0)
            raw = k[units] / n[units]
            est = np.where(weight < min_own_weight, prior + min_own_weight * (raw - prior), est)
        elif min_own_weight > 0 and not (np.isfinite(a0) and np.isfinite(b0)):  # a point-mass prior: no spread at all
            prior = float(np.sum(k[units]) / np.sum(n[units]))
            est = prior + min_own_weight * (k[units] / n[units] - prior)
        out[units] = est
    return out


def _shrink_means(sums: np.ndarray, group_codes: np.ndarray, wanted: np.ndarray,
                  min_own_weight: float = 0.0) -> np.ndarray:
    """Normal-normal EB mean per cell (docs/methods.md §2.6), per group across clinicians; sampling
    variance = pooled within-clinician SD^2 / n; only groups with a ``wanted`` cell (NaN elsewhere).

    The shrinkage factor tau^2 / (tau^2 + v) is floored at ``min_own_weight`` (§9.6): with a
    DerSimonian-Laird tau^2 of 0 (common with a handful of clinicians) every cell would otherwise be
    fully pooled to the service mean, whatever its own clients scored.
    """
    n, s, ss = sums[:, 0], sums[:, 1], sums[:, 2]
    out = np.full(n.shape, np.nan)
    for g in np.unique(group_codes[wanted]):
        idx = np.flatnonzero(group_codes == g)
        units = idx[n[idx] > 0]
        if units.size < 2:
            continue
        mean = s[units] / n[units]
        within = np.maximum(ss[units] - n[units] * mean * mean, 0.0).sum()
        dof = (n[units] - 1).sum()
        if dof <= 0 or within <= 0:
            continue
        var = within / dof / n[units]
        eb = normal_shrinkage(mean, var)
        weight = np.maximum(np.asarray(eb["shrinkage"], dtype=float), float(min_own_weight))
        out[units] = eb["mu"] + weight * (mean - eb["mu"])
    return out


def _rate_counts(sets: np.ndarray) -> list[np.ndarray]:
    """k1, n1, ..., k4, n4 of the four client sets of each unit (the events rounded; n at least 1)."""
    return [v for j in range(len(_SETS)) for v in (np.round(sets[:, j, 1]), np.maximum(sets[:, j, 0], 1.0))]


def _mean_moments(sets: np.ndarray, s0: np.ndarray, d0: float) -> tuple[list, list, list, list]:
    """Means, moderated SDs, sizes and degrees of freedom of the four client sets of each unit."""
    ms, sds, ns, dfs = [], [], [], []
    for j in range(len(_SETS)):
        n = sets[:, j, 0]
        m, sd = _mean_sd(n, sets[:, j, 1], sets[:, j, 2])
        var, df = _moderate(sd, n, s0, d0)
        ms.append(m), sds.append(np.sqrt(var)), ns.append(n), dfs.append(df)
    return ms, sds, ns, dfs


def _excess_gap(units: _Units, cells: _Cells, opts: _GapOptions) -> dict[str, np.ndarray]:
    """The excess gap of each unit (docs/methods.md §9.6 "Clear gap"), a difference in differences:
    (group - the clinician's other clients) - (colleagues' group - colleagues' other clients), with
    Newcombe's (2001) square-and-add interval for rates and a Welch-Satterthwaite interval (moderated
    variances) for means. Only where the group has ``min_n`` clients and each other set
    ``min_n_comparator``; NaN elsewhere. It belongs to the cell, so both comparator rows show it."""
    U = units.sets.shape[0]
    metric = np.repeat(np.arange(units.kind.size), units.n_cells)
    n = units.sets[:, :, 0]
    ok = (cells.reported[np.tile(np.arange(units.n_cells), units.kind.size)] & (n[:, 0] >= opts.min_n)
          & (n[:, 1:] >= opts.min_n_comparator).all(axis=1))
    out = {col: np.full(U, np.nan) for col in ("gap", "lower", "upper")}
    rate = (units.kind == "rate")[metric]
    at = np.flatnonzero(ok & rate)
    if at.size:
        kn = _rate_counts(units.sets[at])
        out["lower"][at], out["upper"][at] = newcombe_interaction_interval(*kn, confidence=opts.confidence)
        out["gap"][at] = kn[0] / kn[1] - kn[2] / kn[3] - (kn[4] / kn[5] - kn[6] / kn[7])
    at = np.flatnonzero(ok & ~rate)
    if at.size:
        wi = welch_interaction(*_mean_moments(units.sets[at], units.s0[metric[at]], opts.d0), opts.confidence)
        out["gap"][at], out["lower"][at], out["upper"][at] = wi["difference"], wi["lower"], wi["upper"]
    return out


def _false_discovery(gap: dict, rows: _Rows, opts: _GapOptions) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg q-values within each FDR family (docs/methods.md §9.6 "Clear gap"): every
    estimated row of one clinician against one comparator (``fdr_scope="clinician"``), or every
    estimated row of the table (``"all"``). Returns the q-values and each row's family."""
    family = (rows.clin * len(COMPARATORS) + rows.comparator if opts.fdr_scope == "clinician"
              else np.zeros(rows.unit.size, int))
    q = np.full(rows.unit.size, np.nan)
    tested = gap["estimated"] & ~np.isnan(gap["p_value"])
    q[tested] = benjamini_hochberg(gap["p_value"][tested], families=family[tested])
    return q, family


def _excess_screen(units: _Units, rows: _Rows, excess: dict, gap: dict, q: np.ndarray, family: np.ndarray,
                   opts: _GapOptions) -> tuple[np.ndarray, np.ndarray]:
    """The excess gap's own multiplicity step (docs/methods.md §9.6, ``excess_multiplicity``).

    For the rows that passed the first screen (q <= ``fdr_q``) and have an excess gap: its one-sided
    p-value for the worse direction, the level at which its interval touches 0 (means: the
    Welch-Satterthwaite t of the contrast; rates: the Newcombe (2001) interval inverted by bisection
    on z), and its Benjamini-Hochberg q among those rows of the same family (``"bh_selected"``;
    ``"none"``: q = min(2p, 1), unused by the verdict). NaN for the other rows.
    """
    from scipy import special as _special
    from scipy import stats as _st

    p = np.full(rows.unit.size, np.nan)
    with np.errstate(invalid="ignore"):
        selected = gap["estimated"] & ~np.isnan(gap["p_value"]) & (q <= opts.fdr_q)
    selected &= ~np.isnan(excess["gap"][rows.unit])
    at = np.flatnonzero(selected & rows.rate)
    if at.size:
        kn = _rate_counts(units.sets[rows.unit[at]])
        up = rows.higher_is_better[at]  # higher is better: worse = the contrast below 0
        lo_z, hi_z = np.zeros(at.size), np.full(at.size, 8.0)
        for _ in range(50):  # the largest z whose interval still excludes 0 on the worse side
            mid = (lo_z + hi_z) / 2
            lo, hi = _newcombe_interaction_z(kn, mid)
            excludes = np.where(up, hi < 0, lo > 0)
            lo_z, hi_z = np.where(excludes, mid, lo_z), np.where(excludes, hi_z, mid)
        p[at] = _special.ndtr(-lo_z)  # one-sided: (1 - level) / 2 with level = 2 ndtr(z) - 1
    at = np.flatnonzero(selected & ~rows.rate)
    if at.size:
        wi = welch_interaction(*_mean_moments(units.sets[rows.unit[at]], units.s0[rows.metric[at]], opts.d0))
        tstat = np.where(rows.higher_is_better[at], -1.0, 1.0) * wi["difference"] / wi["se"]
        p[at] = _st.t.sf(tstat, wi["df"])
    q2 = np.full(rows.unit.size, np.nan)
    has = ~np.isnan(p)
    if has.any():
        q2[has] = (benjamini_hochberg(p[has], families=family[has]) if opts.excess_multiplicity == "bh_selected"
                   else np.minimum(2 * p[has], 1))
    return p, q2


def _wilson_z(k: np.ndarray, n: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`supervision.metrics.stats.wilson_interval` with one z per row (same formula and edge rules)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    lower = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    upper = np.where(k == n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return lower, upper


def _newcombe_interaction_z(kn: list[np.ndarray], z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`supervision.metrics.stats.newcombe_interaction_interval` with one z per row."""
    a1, b1, a2, b2, a3, b3, a4, b4 = kn
    lim = [_wilson_z(a, b, z) for a, b in ((a1, b1), (a2, b2), (a3, b3), (a4, b4))]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = [a1 / b1, a2 / b2, a3 / b3, a4 / b4]
    d1, d2 = p[0] - p[1], p[2] - p[3]
    l1 = d1 - np.sqrt((p[0] - lim[0][0]) ** 2 + (lim[1][1] - p[1]) ** 2)
    u1 = d1 + np.sqrt((lim[0][1] - p[0]) ** 2 + (p[1] - lim[1][0]) ** 2)
    l2 = d2 - np.sqrt((p[2] - lim[2][0]) ** 2 + (lim[3][1] - p[3]) ** 2)
    u2 = d2 + np.sqrt((lim[2][1] - p[2]) ** 2 + (p[3] - lim[3][0]) ** 2)
    d = d1 - d2
    return d - np.sqrt((d1 - l1) ** 2 + (u2 - d2) ** 2), d + np.sqrt((u1 - d1) ** 2 + (d2 - l2) ** 2)


def _verdicts(gap: dict, q: np.ndarray, shrunken: np.ndarray, excess: dict, excess_q: np.ndarray, rows: _Rows,
              mets: list[str], opts: _GapOptions) -> np.ndarray:
    """Each row's verdict (index into :data:`VERDICTS`; docs/methods.md §9.6, the module docstring).

    ``clear gap``: (1) worse, the interval excluding 0; (2) q <= ``fdr_q``; (3) the shrunken
    difference at least the practical threshold in the worse direction; (4) the excess gap worse, its
    interval excluding 0 (and with ``"bh_selected"`` its q <= ``fdr_q``). ``possible gap``: (1) and the
    excess gap worse with its interval excluding 0 (or no excess gap), not clear. ``too few clients``:
    not estimated. ``no evidence``: the rest.
    """
    hib = rows.higher_is_better
    threshold = np.array([opts.thresholds[m] for m in mets])[rows.metric]
    xg, xlo, xhi = (excess[k][rows.unit] for k in ("gap", "lower", "upper"))
    sign = np.where(hib, -1.0, 1.0)  # the worse direction
    with np.errstate(invalid="ignore"):
        significant = q <= opts.fdr_q
        worse = (sign * gap["difference"]) > 0
        excludes = np.where(hib, gap["upper"] < 0, gap["lower"] > 0)
        big = (sign * shrunken) >= threshold
        corroborated_nominal = np.where(hib, xhi < 0, xlo > 0)
        corroborated = (corroborated_nominal & (excess_q <= opts.fdr_q) if opts.excess_multiplicity == "bh_selected"
                        else corroborated_nominal)
    nominal = gap["estimated"] & worse & excludes
    clear = nominal & significant & big & corroborated
    possible = nominal & (corroborated_nominal | np.isnan(xg)) & ~clear
    return np.select([~gap["estimated"], clear, possible],
                     [VERDICTS.index("too few clients"), VERDICTS.index("clear gap"), VERDICTS.index("possible gap")],
                     VERDICTS.index("no evidence"))


def _text(names, codes) -> pd.api.extensions.ExtensionArray:
    """``names[codes]`` as a text column, converting only the distinct names."""
    return pd.array(np.asarray(names, dtype=object).astype(str), dtype="str").take(codes)


def _gap_table(names, dims, mets, cells: _Cells, rows: _Rows, gap: dict, q, shrunken, excess: dict, excess_p,
               excess_q, verdict, opts: _GapOptions) -> pd.DataFrame:
    """The steps' columns as the returned table (:data:`_COLUMNS`), the options in ``attrs``."""
    data = {
        "clinician_id": _text(names, rows.clin),
        "dimension": _text(dims, cells.dim[rows.cell]),
        "group": _text(cells.group_names, cells.group[rows.cell]),
        "metric": _text(mets, rows.metric),
        "comparator": _text(COMPARATORS, rows.comparator),
        **{col: gap[col] for col in ("n_group", "n_comparator", "value_group", "value_comparator", "difference",
                                     "lower", "upper", "p_value")},
        "q_value": q,
        "shrunken_difference": shrunken,
        "verdict": _text(VERDICTS, verdict),
        "recording_rate": cells.recording_rate[rows.cell],
        "excess_gap": excess["gap"][rows.unit],
        "excess_lower": excess["lower"][rows.unit],
        "excess_upper": excess["upper"][rows.unit],
        "excess_p_value": excess_p,
        "excess_q_value": excess_q,
        "kind": _text([METRICS[m].kind for m in mets], rows.metric),
        "higher_is_better": rows.higher_is_better,
        "practical_threshold": np.array([opts.thresholds[m] for m in mets])[rows.metric],
    }
    out = pd.DataFrame({c: data[c] for c in _COLUMNS}, copy=False)  # the arrays are new: no second copy
    out.attrs.update({"min_n": opts.min_n, "min_n_comparator": opts.min_n_comparator, "confidence": opts.confidence,
                      "fdr_q": opts.fdr_q, "fdr_scope": opts.fdr_scope,
                      "practical": {m: opts.thresholds[m] for m in mets}, "min_own_weight": opts.w_min,
                      "excess_multiplicity": opts.excess_multiplicity})
    return out


def _empty() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="float64") for c in _COLUMNS})
    for col in ("clinician_id", "dimension", "group", "metric", "comparator", "verdict", "kind"):
        out[col] = pd.Series(dtype="str")
    for col in ("n_group", "n_comparator"):
        out[col] = pd.Series(dtype="int64")
    out["higher_is_better"] = pd.Series(dtype="bool")
    return out[_COLUMNS]


# --------------------------------------------------------------------------------------------
# funnel plot data
# --------------------------------------------------------------------------------------------

def funnel_data(
    measures: pd.DataFrame,
    *,
    dimension: str,
    group: str,
    metric: str,
    clinician_id: str | None = None,
    overdispersion: str | None = None,
    trim: float = 0.1,
    levels: Sequence[float] = FUNNEL_LEVELS,
    min_n: int = 1,
) -> pd.DataFrame:
    """Every clinician's value for one identity group and metric, with Spiegelhalter funnel limits.

    Parameters
    ----------
    measures : DataFrame
        Output of :func:`client_measures` for the whole service. Not modified.
    dimension, group, metric : str
        The identity dimension, its group (e.g. ``"religion_spirituality"``, ``"muslim"``) and a
        key of :data:`METRICS`.
    clinician_id : str, optional
        The supervisee, marked ``highlight``.
    overdispersion : {None, "multiplicative", "additive"}
        None: the plain binomial / normal limits. "multiplicative": widened by sqrt(phi) when the
        Winsorised phi > 1 (Spiegelhalter 2005 [V2]: as docs/methods.md §3.3). "additive": random-effects tau^2 added
        to the variance (FunnelPlotR; docs/methods.md §3.3 [V]). phi and tau^2 are reported either
        way; with few clinicians they are unstable, so look at the unadjusted limits too.
    trim : float, default 0.1
        Winsorisation of the z-scores for phi (each tail).
    levels : sequence of float, default (0.95, 0.998)
        Coverage of the limits.
    min_n : int, default 1
        Clinicians with fewer contributing clients in the group are left out.

    Returns
    -------
    DataFrame
        One row per clinician with at least ``min_n`` contributing clients in the group, sorted by
        ``n``: ``clinician_id``, ``dimension``, ``group``, ``metric``, ``kind`` (``proportion`` or
        ``mean``), ``n``, ``events`` (rates: clients with the event; NaN for means), ``value``,
        ``target`` (pooled service value: sum(x)/sum(n), or the pooled mean), ``sd`` (means: the
        pooled within-clinician SD of one client; NaN for rates), ``z`` (on the transformed
        scale, with the chosen adjustment), per level ``lower_<level>`` and ``upper_<level>``
        (``lower_95``, ``upper_95``, ``lower_99_8``, ``upper_99_8``) at the clinician's n,
        ``outside_95`` and ``outside_99_8`` (``"above"``, ``"below"`` or ``""``), ``worse_99_8``
        (beyond the 99.8 % limit in the metric's worse direction), ``highlight`` (the supervisee),
        ``overdispersion`` (the option), ``phi``, ``tau2`` (estimated), ``phi_used``, ``tau2_used``.

    Notes
    -----
    Spiegelhalter (2005) Stat Med 24:1185-1202: proportions on the arcsine-square-root scale,
    target the pooled proportion; limits at 95 % and 99.8 %; see
    :func:`supervision.metrics.stats.funnel_limits`.
    """
    _require(measures, "measures", ["client_id", "clinician_id", dimension, metric],
             "Pass the output of client_measures(clients, sessions) and a dimension and metric it has.")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}.")
    if overdispersion not in (None, "multiplicative", "additive"):
        raise ValueError(f"overdispersion must be None, 'multiplicative' or 'additive'; got {overdispersion!r}.")
    min_n = _check_int("min_n", min_n, 1)
    spec = METRICS[metric]
    grp = _groups(measures[dimension])
    x = pd.to_numeric(measures[metric], errors="coerce").astype(float)
    sel = (grp == group).to_numpy() & x.notna().to_numpy()
    f = pd.DataFrame({"clinician_id": measures["clinician_id"].to_numpy()[sel], "x": x.to_numpy()[sel]})
    agg = f.groupby("clinician_id", sort=True)["x"].agg(n="size", s="sum", ss=lambda v: float(np.sum(v * v)))
    agg = agg[agg["n"] >= min_n]
    kind = "proportion" if spec.kind == "rate" else "mean"
    n = agg["n"].to_numpy(dtype=float)
    s = agg["s"].to_numpy(dtype=float)
    out = pd.DataFrame({"clinician_id": agg.index.to_numpy(dtype=object), "dimension": dimension, "group": group,
                        "metric": metric, "kind": kind, "n": n.astype(np.int64)})
    if not len(out):
        for col in ("events", "value", "target", "sd", "z", "phi", "tau2", "phi_used", "tau2_used"):
            out[col] = pd.Series(dtype=float)
        return out
    value = s / n
    target = float(s.sum() / n.sum())
    sd = None
    if kind == "mean":
        within = float(np.sum(np.maximum(agg["ss"].to_numpy() - n * value * value, 0.0)))
        dof = float(np.sum(n - 1))
        sd = float(np.sqrt(within / dof)) if dof > 0 and within > 0 else float("nan")
    out["events"] = np.round(s) if kind == "proportion" else np.nan
    out["value"] = value
    out["target"] = target
    out["sd"] = np.nan if sd is None else sd
    if kind == "mean" and not sd > 0:
        od = {"phi": float("nan"), "tau2": float("nan")}
        phi_used, tau2_used = 1.0, 0.0
        for lv in levels:
            label = f"{lv * 100:g}".replace(".", "_")
            out[f"lower_{label}"] = np.nan
            out[f"upper_{label}"] = np.nan
        out["z"] = np.nan
    else:
        od = funnel_overdispersion(value, n, target, kind=kind, sd=sd, trim=trim)
        phi_used = max(1.0, od["phi"]) if overdispersion == "multiplicative" and np.isfinite(od["phi"]) else 1.0
        tau2_used = od["tau2"] if overdispersion == "additive" and np.isfinite(od["tau2"]) else 0.0
        lim = funnel_limits(n, target, kind=kind, sd=sd, levels=levels, phi=phi_used, tau2=tau2_used)
        for key, v in lim.items():
            if key != "n":
                out[key] = v
        if kind == "proportion":
            y, se, t = np.arcsin(np.sqrt(value)), 1 / (2 * np.sqrt(n)), np.arcsin(np.sqrt(target))
        else:
            y, se, t = value, sd / np.sqrt(n), target
        out["z"] = (y - t) / np.sqrt(phi_used * se * se + tau2_used)
    for lv in levels:
        label = f"{lv * 100:g}".replace(".", "_")
        lo, hi = out[f"lower_{label}"].to_numpy(), out[f"upper_{label}"].to_numpy()
        out[f"outside_{label}"] = np.where(value > hi, "above", np.where(value < lo, "below", ""))
    top = f"{max(levels) * 100:g}".replace(".", "_")
    out[f"worse_{top}"] = out[f"outside_{top}"] == ("below" if spec.higher_is_better else "above")
    out["highlight"] = out["clinician_id"] == clinician_id if clinician_id is not None else False
    out["overdispersion"] = overdispersion or "none"
    out["phi"], out["tau2"] = od["phi"], od["tau2"]
    out["phi_used"], out["tau2_used"] = phi_used, tau2_used
    out["clinician_id"] = out["clinician_id"].astype("str")
    return out.sort_values(["n", "clinician_id"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# disclosure control
# --------------------------------------------------------------------------------------------

_ESTIMATES = ("value_group", "value_comparator", "difference", "lower", "upper", "p_value", "q_value",
              "shrunken_difference")


def suppress_gaps(gaps: pd.DataFrame, *, policy: str | None = None, settings=None) -> pd.DataFrame:
    """Disclosure control of an :func:`adaptation_gaps` table for sharing beyond the supervision pair.

    Parameters
    ----------
    gaps : DataFrame
        Output of :func:`adaptation_gaps`. Not modified.
    policy : {"nhs", "cms", "none"}, optional
        Default the ``[privacy] suppression_policy`` setting (see :func:`supervision.privacy.suppress`).
    settings : optional

    Returns
    -------
    DataFrame
        ``gaps`` with the small counts controlled by :func:`supervision.privacy.suppress` (primary
        and complementary suppression within each clinician x dimension x metric, whose groups add
        up to the clinician's total, and within each dimension x metric x group, whose clinicians
        add up to the service's group; audited at every size by an attacker who knows every shown
        count exactly; counts rounded as the policy says. Pass the whole service's table, then keep
        one clinician's rows): ``n_group`` and
        ``n_comparator`` become nullable integers (<NA> where hidden; others rounded as the policy
        says), every estimate is NaN and ``verdict`` is ``"suppressed"`` where the group's count is
        hidden or the comparator rests on 1 to the policy's threshold of clients (NHS: means and
        rates based on 1-7 individuals are not shown, docs/methods.md §3.4 [V2]), and
        ``n_group_display`` holds the published text (e.g. ``*``). The comparator count of a
        hidden cell is hidden too (the clinician's total minus it would give the cell away).
        Zero counts are not hidden; such rows stay ``too few clients``.
    """
    from supervision.privacy.suppression import policy_rules, suppress_blocks

    _require(gaps, "gaps", ["clinician_id", "dimension", "group", "metric", "comparator", "n_group", "n_comparator",
                            "verdict"], "Pass the output of adaptation_gaps(measures).")
    pol = policy_rules(policy, settings)
    keys = ["clinician_id", "dimension", "metric", "group"]
    cells = gaps.drop_duplicates(keys)[keys + ["n_group"]].reset_index(drop=True)
    # Both margins the table publishes: each clinician's groups add up to the clinician's total (the
    # 'clinician' comparator = total - group), and each group's clinicians add up to the service's
    # group (the 'service' comparator = service group - group). The estimates are computed from the
    # exact counts, so the audit's attacker knows every shown count exactly, whatever the rounding.
    sup = suppress_blocks(cells, "n_group", ["dimension", "metric"], [["clinician_id"], ["group"]], pol,
                          exact_audit=True, settings=settings)
    key = pd.MultiIndex.from_frame(gaps[keys])
    look = sup.set_index(keys)
    hidden = look["n_group_suppressed"].reindex(key).to_numpy(dtype=bool)
    n_comp = gaps["n_comparator"].to_numpy(dtype=float)
    small_comp = (n_comp >= 1) & (n_comp <= pol.max_suppressed)
    gone = hidden | small_comp
    out = gaps.copy()
    out["n_group"] = pd.array(look["n_group"].reindex(key).to_numpy(), dtype="Int64")
    out["n_group_display"] = look["n_group_display"].reindex(key).to_numpy()
    rounded = np.floor(n_comp / pol.rounding + 0.5) * pol.rounding if pol.rounding > 1 else n_comp
    out["n_comparator"] = pd.array(np.where(gone, np.nan, rounded), dtype="Float64").round().astype("Int64")
    for col in _ESTIMATES:
        if col in out.columns:
            out[col] = np.where(gone, np.nan, out[col].to_numpy(dtype=float))
    for col in ("excess_gap", "excess_lower", "excess_upper"):
        if col in out.columns:
            out[col] = np.where(gone, np.nan, out[col].to_numpy(dtype=float))
    out["verdict"] = pd.array(np.where(gone, "suppressed", out["verdict"].astype(str).to_numpy()), dtype="str")
    if "recording_rate" in out.columns and pol.max_suppressed > 0:  # 1 - rate = not_recorded / clients: hidden with any cell
        any_hidden = pd.Series(hidden, index=out.index).groupby([out["clinician_id"], out["dimension"]]).transform("any")
        out["recording_rate"] = np.where(any_hidden.to_numpy(), np.nan, out["recording_rate"].to_numpy(dtype=float))
    info = dict(sup.attrs.get("suppression", {}))
    info["comparator_suppressed_rows"] = int((small_comp & ~hidden).sum())
    out.attrs["suppression"] = info
    return out


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------

def adjusted_gaps(
    measures: pd.DataFrame,
    gaps: pd.DataFrame,
    *,
    clinician_id: str | Sequence[str] | None = None,
    confidence: float | None = None,
    min_n: int | None = None,
    rules=None,
) -> pd.DataFrame:
    """Each flagged gap re-estimated with the clinician's other flagged groups held fixed.

    Identity dimensions overlap (in one clinic most clients with personality-disorder features may
    be men), so a gap planted in one dimension shows up in a correlated one. For every row of
    ``gaps`` with a ``clear gap`` or ``possible gap`` verdict, this fits, within the clinician's
    own clients with the metric, the linear model

        metric ~ 1 + [client in the group] + [client in G_1] + ... + [client in G_k]

    by ordinary least squares (a linear probability model for rates, so the coefficient stays a
    difference in the metric's own units), where G_1..G_k are the groups of *other* dimensions
    that are flagged (clear or possible against the clinician's other clients) for the same
    clinician and metric. Only gaps against the clinician's other clients are re-estimated: that is
    the comparison an overlap within the caseload confounds.
    The coefficient of the group is the gap with those groups held fixed; its interval is the
    usual t interval (classical OLS standard errors, df = n - parameters). [U: design choice;
    regression adjustment for confounding is standard, e.g. Rothman, Greenland & Lash, Modern
    Epidemiology; a linear probability model for a binary outcome is an approximation.]

    Parameters
    ----------
    measures : DataFrame
        Output of :func:`client_measures` (the same used for ``gaps``).
    gaps : DataFrame
        Output of :func:`adaptation_gaps`.
    clinician_id : str or sequence of str, optional
        Only these clinicians; default every clinician in ``gaps``.
    confidence : float, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Level of the interval (the ``[adaptation] confidence`` setting).
    min_n : int, optional (default: the rules, ``[adaptation]`` in defaults.toml)
        Clients needed in the group *outside* the adjusting groups, and in the adjusting groups
        outside the group, before an adjusted gap is estimated (the ``[adaptation] min_n`` setting).

    Returns
    -------
    DataFrame
        One row per flagged (clinician, dimension, group, metric) against the clinician's other
        clients: ``clinician_id``, ``dimension``, ``group``, ``metric``, ``verdict`` (unadjusted), ``n`` (the clinician's clients with the metric), ``n_group``,
        ``difference`` (unadjusted: group - the clinician's other clients), ``adjusted_for``
        (``dimension = group`` items, ``;``-separated; "" when nothing else is flagged),
        ``n_overlap`` (clients in the group and in an adjusting group), ``adjusted_difference``,
        ``adjusted_lower``, ``adjusted_upper`` (NaN when not estimable), ``note`` (plain words:
        "nothing else flagged to adjust for", "persists with ... held fixed", "largely explained by
        the overlap with ...", "uncertain once ... is held fixed", or why it cannot be estimated).
    """
    r = _rules(rules, "adjusted_gaps()", locals())  # the rules, with the keywords given here on top
    confidence, min_n = r.confidence, r.min_n
    from scipy import stats as _st

    _require(gaps, "gaps", ["clinician_id", "dimension", "group", "metric", "comparator", "verdict", "difference"],
             "Pass the output of adaptation_gaps(measures).")
    confidence = _check_unit("confidence", confidence)
    min_n = _check_int("min_n", min_n, 2)
    # within-clinician gaps (the "clinician" comparator): the comparison a within-caseload overlap confounds
    flagged = gaps[gaps["verdict"].isin(["clear gap", "possible gap"]) & (gaps["comparator"] == "clinician")]
    if clinician_id is not None:
        ids = {clinician_id} if isinstance(clinician_id, str) else set(clinician_id)
        flagged = flagged[flagged["clinician_id"].isin(ids)]
    cols = ["clinician_id", "dimension", "group", "metric", "verdict", "n", "n_group", "difference", "adjusted_for",
            "n_overlap", "adjusted_difference", "adjusted_lower", "adjusted_upper", "note"]
    if flagged.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    rank = {v: i for i, v in enumerate(VERDICTS)}
    cells = (flagged.assign(_r=flagged["verdict"].map(rank))
             .sort_values("_r").drop_duplicates(["clinician_id", "dimension", "group", "metric"]))
    rows = []
    for (cid, metric), part in cells.groupby(["clinician_id", "metric"], sort=True):
        mine = measures[measures["clinician_id"] == cid]
        y_all = pd.to_numeric(mine[metric], errors="coerce").to_numpy(dtype=float)
        has = ~np.isnan(y_all)
        y = y_all[has]
        member = {(r.dimension, r.group): (_groups(mine[r.dimension]).to_numpy() == r.group)[has]
                  for r in part.itertuples()}
        for r in part.sort_values(["dimension", "group"]).itertuples():
            x0 = member[(r.dimension, r.group)]
            others = [(d, g) for (d, g) in member if d != r.dimension]
            unadj = float(y[x0].mean() - y[~x0].mean()) if x0.any() and (~x0).any() else np.nan
            base = {"clinician_id": cid, "dimension": r.dimension, "group": r.group, "metric": metric,
                    "verdict": r.verdict, "n": int(len(y)), "n_group": int(x0.sum()), "difference": unadj,
                    "adjusted_for": "; ".join(f"{d} = {g}" for d, g in others), "n_overlap": 0,
                    "adjusted_difference": np.nan, "adjusted_lower": np.nan, "adjusted_upper": np.nan}
            if not others:
                rows.append({**base, "note": "nothing else flagged to adjust for"})
                continue
            xo = np.column_stack([member[o] for o in others])
            any_other = xo.any(axis=1)
            base["n_overlap"] = int((x0 & any_other).sum())
            alone = int((x0 & ~any_other).sum())
            thin = [f"{d} = {g}" for j, (d, g) in enumerate(others) if int((xo[:, j] & ~x0).sum()) < min_n]
            X = np.column_stack([np.ones(len(y)), x0.astype(float), xo.astype(float)])
            dof = len(y) - X.shape[1]
            if alone < min_n or thin or dof < 2 or np.linalg.matrix_rank(X) < X.shape[1]:
                why = (f"fewer than {min_n} clients of the group are outside {base['adjusted_for']}" if alone < min_n
                       else f"fewer than {min_n} clients of {', '.join(thin)} are outside the group" if thin
                       else "too few clients for the model")
                rows.append({**base, "note": f"cannot be estimated: {why} (the groups overlap too much to separate)"})
                continue
            beta, *_ = np.linalg.lstsq(X, y, rcond=None)
            resid = y - X @ beta
            s2 = float(resid @ resid) / dof
            cov = s2 * np.linalg.inv(X.T @ X)
            se = float(np.sqrt(cov[1, 1]))
            t = float(_st.t.ppf(0.5 + confidence / 2, dof))
            adj = float(beta[1])
            lo, hi = adj - t * se, adj + t * se
            held = base["adjusted_for"]
            if lo > 0 or hi < 0:
                note = f"persists with {held} held fixed"
            elif np.isfinite(unadj) and abs(adj) <= 0.5 * abs(unadj):
                note = f"largely explained by the overlap with {held} ({base['n_overlap']} clients are in both)"
            else:
                note = f"uncertain once {held} is held fixed (the interval includes 0)"
            rows.append({**base, "adjusted_difference": adj, "adjusted_lower": lo, "adjusted_upper": hi, "note": note})
    return pd.DataFrame(rows, columns=cols)


def outcome_instrument(present: Sequence[str], choice: str = "auto", preferred: str = "ors") -> tuple[str | None, str]:
    """The outcome measure of the reliable-improvement and recovery gaps, and a sentence saying why.

    Parameters
    ----------
    present : sequence of str
        Outcome instruments with scores in the export, in the settings' instrument order
        (:meth:`supervision.caseload.Caseload.measures_present`).
    choice : str, default "auto"
        The ``[adaptation] outcome_instrument`` setting: "auto", or an instrument prefix.
    preferred : str, default "ors"
        The ``[outcome] instrument`` setting, tried first by "auto".

    Returns
    -------
    (str or None, str)
        The prefix (None when no outcome measure can be used) and a plain-language note, e.g.
        "outcome gaps use PHQ-9: the export has no ORS scores".
    """
    present = list(present)
    if choice != "auto":
        if choice in present:
            return choice, f"outcome gaps use {choice} (setting)"
        return None, (f"outcome gaps are not shown: the setting asks for {choice}, which has no scores in this "
                      f"export (outcome measures present: {', '.join(present) or 'none'})")
    if preferred in present:
        return preferred, f"outcome gaps use {preferred}"
    if present:
        return present[0], f"outcome gaps use {present[0]}: the export has no {preferred} scores"
    return None, "outcome gaps are not shown: the export has no outcome measure"


def adaptation_options(settings=None, function: Callable | None = None) -> dict:
    """Keyword arguments for the adaptation metrics from the ``[adaptation]`` settings.

    Parameters
    ----------
    settings : Settings, dict, path or None
        Anything :func:`supervision.config.load_settings` accepts (None = the defaults).
    function : callable, optional
        Keep only the options this function accepts, e.g.
        ``adaptation_gaps(m, **adaptation_options(settings, adaptation_gaps))``.

    Returns
    -------
    dict
        ``{keyword: value}``; the keys are the setting names of ``[adaptation]`` in
        ``supervision/defaults.toml`` (``practical`` is the ``[adaptation.practical]`` table as a
        dict), which are also the keyword names of the functions here.
    """
    return AdaptationRules.from_settings(settings).kwargs(function)
