"""Outcome change: reliable and clinically significant change, sudden gains and losses, NHS Talking
Therapies outcomes, expected treatment response (on track / not on track) and clinician effects.

Pure functions (house style, ../shared/DESIGN.md §6): a tidy DataFrame in, a new DataFrame out,
options as keyword arguments; an option left None comes from ``rules=`` (an
:class:`~supervision.rules.OutcomeRules` or :class:`~supervision.rules.Rules` such as ``caseload.rules``;
None = the ``[outcome]`` section of ``supervision/defaults.toml``, the only place a default is
written; :func:`outcome_options`). An option given is checked as the settings are; the input is
never modified. The change functions (:func:`jacobson_truax`, :func:`sudden_gains`, :func:`talking_therapies`) work on any
pre/post or long table, not only on the data contract's instruments.

Pipeline on a caseload::

    co = client_outcomes(cl.sessions, instrument="ors", clients=cl.clients)   # one row per client
    cc = clinician_outcomes(co)                                              # per clinician + service
    ts = track_status(cl.sessions, clients=cl.clients, instrument="ors")     # open clients
    ce = clinician_effects(co)                                               # severity-adjusted, EB
    tt = talking_therapies(paired_scores(cl.sessions))                      # PHQ-9 + GAD-7

Sources and their certainty are those of docs/methods.md (§1 instruments, §2.1
Jacobson-Truax, §2.2 NHS Talking Therapies, §2.3 sudden gains, §2.4 expected treatment response,
§2.6 therapist effects, §3 small samples): [V] read in the source, [V2] secondary source only,
[U] unverified design choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields

import numpy as np
import pandas as pd
from scipy import stats as _stats

from supervision.metrics._checks import require_columns
from supervision.metrics._frames import (as_column, block_codes, positions_in, reindex_first, sort_positions,
                                        take_values)
from supervision.instruments import Instrument, instruments
from supervision.instruments.scoring import total_scores
from supervision.metrics.stats import normal_shrinkage, tau2_qprofile, wilson_interval
from supervision.rules import FROM_RULES, OutcomeRules, area_rules

__all__ = [
    "reliable_change_value", "jacobson_truax", "sudden_gains", "sudden_losses", "sudden_gains_by_person",
    "talking_therapies", "talking_therapies_rates", "paired_scores", "session_scores", "outcome_scores",
    "client_outcomes",
    "clinician_outcomes", "expected_trajectories", "track_status", "clinician_effects", "outcome_options",
    "JT_CATEGORIES", "TT_CATEGORIES", "TRACK_STATUSES",
]

#: Values of the Jacobson-Truax ``category`` column, best first.
JT_CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated", "harmed")
#: Values of :func:`talking_therapies` ``category``.
TT_CATEGORIES = ("reliable_recovery", "recovery", "reliable_improvement", "no_reliable_change",
                 "reliable_deterioration", "not_at_caseness", "not_finished", "incomplete_scores")
#: Values of :func:`track_status` ``status``.
TRACK_STATUSES = ("on_track", "at_risk", "not_on_track", "not_enough_reference_data", "too_early", "not_measured")
_SELECT = ("first", "last", "largest", "smallest")
_EPS = 1e-9  # scores are entered to 0.1; comparisons of differences allow floating-point noise


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_require = require_columns
_RULE_NAMES = frozenset(f.name for f in fields(OutcomeRules))


def _rules(rules, function: str, given: dict) -> OutcomeRules:
    """The outcome rules of a call: ``rules`` (None = the defaults), with the options given on top.

    Options that are None (or :data:`~supervision.rules.FROM_RULES`) come from the rules; one out of
    range is refused as the settings loader refuses it (``SettingsError`` naming the key).
    """
    return area_rules(OutcomeRules, rules, function,
                      **{k: v for k, v in given.items() if k in _RULE_NAMES and v is not FROM_RULES})



def _check_number(name: str, value, *, minimum: float | None = None, maximum: float | None = None,
                  strict: bool = False, integer: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and np.isfinite(value)
    if ok and integer:
        ok = float(value) == int(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if strict else value <= maximum
    if not ok:
        kind = "a whole number" if integer else "a number"
        rng = []
        if minimum is not None:
            rng.append(f"{'>' if strict else '>='} {minimum}")
        if maximum is not None:
            rng.append(f"{'<' if strict else '<='} {maximum}")
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be {kind}{' ' + ' and '.join(rng) if rng else ''}{extra}; got {value!r}.")


def _check_bool(name: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}.")


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _nbool(values, known) -> pd.arrays.BooleanArray:
    """Nullable boolean: ``values`` where ``known``, <NA> elsewhere."""
    known = np.asarray(known, dtype=bool)
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool) & known, ~known)


def _instrument(instrument, settings=None) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    known = instruments(settings)
    if instrument not in known:
        raise ValueError(f"unknown instrument {instrument!r}; known: {', '.join(known)}. Add one in the settings "
                         "([instruments.<prefix>]) and pass settings=..., or pass an Instrument.")
    return known[instrument]


def _rates(index: pd.Index, code: np.ndarray, flags: dict[str, np.ndarray], denom: np.ndarray,
           confidence: float) -> pd.DataFrame:
    """Counts, rates and Wilson intervals per key (clinician: ``code``, its position in ``index``, -1 for
    none) plus a 'service' row."""
    k = len(index) - 1
    use = denom & (code >= 0)
    out = pd.DataFrame(index=index)
    n = np.append(np.bincount(code[use], minlength=k), use.sum()).astype(int)
    out["n"] = n
    for name, flag in flags.items():
        hit = use & np.asarray(flag, dtype=bool)
        c = np.append(np.bincount(code[hit], minlength=k), hit.sum()).astype(int)
        out[f"n_{name}"] = c
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{name}_rate"] = np.where(n > 0, c / np.maximum(n, 1), np.nan)
        lo, hi = wilson_interval(c, n, confidence)
        out[f"{name}_lower"], out[f"{name}_upper"] = lo, hi
    return out


# --------------------------------------------------------------------------------------------
# Jacobson & Truax (1991)
# --------------------------------------------------------------------------------------------

def reliable_change_value(sd: float, reliability: float, *, z: float = 1.96) -> float:
    """Reliable-change threshold in score points: z * sqrt(2) * SD * sqrt(1 - r).

    Jacobson & Truax (1991) J Consult Clin Psychol 59(1):12-19; as ``define_crit1_cutoff`` of the
    R package suddengains [V] (its tests: SD 6.396073, r .931 -> 4.65703; docs/methods.md §1.9).
    """
    _check_number("sd", sd, minimum=0, strict=True)
    _check_number("reliability", reliability, minimum=0, maximum=1, strict=True)
    _check_number("z", z, minimum=0, strict=True)
    return float(z * np.sqrt(2.0) * sd * np.sqrt(1.0 - reliability))


def jacobson_truax(
    data: pd.DataFrame,
    *,
    pre: str = "pre",
    post: str = "post",
    higher_is_better: bool = False,
    reliability: float | None = None,
    reliable_change: float | None = None,
    sd_pre: float | None = None,
    critical_value: float | None = None,
    cutoff: float | None = None,
    cutoff_type: str | None = "a",
    m_clinical: float | None = None,
    sd_clinical: float | None = None,
    m_functional: float | None = None,
    sd_functional: float | None = None,
    cutoff_inclusive: bool = False,
    reliable_change_inclusive: bool = True,
    rules=None,
) -> pd.DataFrame:
    """Reliable and clinically significant change (Jacobson & Truax 1991) for any pre/post table.

    Parameters
    ----------
    data : DataFrame
        One row per case with a pre and a post score (other columns are kept). Not modified.
    pre, post : str
        Column names of the two scores.
    higher_is_better : bool, default False
        Direction of "better" (False: symptom scales such as the GDS, PHQ-9; True: DAS, ORS).
    reliability : float, optional
        Reliability r_xx for the RCI: S_diff = sqrt(2) * SD_pre * sqrt(1 - r); RCI = (post - pre) /
        S_diff; reliable when |RCI| > ``critical_value`` (**strict**, as in R clinicalsignificance
        tests/testthat/test-rci-utils.R [V]; docs/methods.md §2.1).
    reliable_change : float, optional
        Instead of ``reliability``: a published reliable-change value in points (PHQ-9 6, ORS 5;
        docs/methods.md §1.9). Reliable when the change is at least this (``reliable_change_inclusive``,
        the NHS Talking Therapies reading "a change of 6 or more" [V2]) or more than it. Give
        exactly one of ``reliability`` and ``reliable_change``.
    sd_pre : float, optional
        SD of the pre scores for S_diff; default the sample SD (n - 1) of the pre scores of the
        complete pairs [R] (as clinicalsignificance).
    critical_value : float, optional (default: the rules, ``[outcome]`` in defaults.toml)
        |RCI| must exceed this (1.96 = 95 % two-sided).
    cutoff : float, optional
        Clinical cut-off. When not given it is computed by ``cutoff_type``:

        - ``"a"``: m_clinical + 2 SD_clinical in the healthy direction;
        - ``"b"``: m_functional - 2 SD_functional towards the dysfunctional side (J&T's own
          definition; R clinicalsignificance uses SD_clinical here [V] R/calc_cutoff.R, which we
          do not follow);
        - ``"c"``: (SD_clin * m_func + SD_func * m_clin) / (SD_clin + SD_func);
        - ``None``: no cut-off (categories improved / unchanged / deteriorated only).

        m_clinical and sd_clinical default to the mean and SD of the complete pairs' pre scores;
        m_functional and sd_functional (a non-clinical norm) are needed for ``"b"`` and ``"c"``.
    cutoff_inclusive : bool, default False
        False (Jacobson & Truax; clinicalsignificance R/calc_cutoff.R [V]): clinical at pre when
        strictly on the dysfunctional side of the cut-off and functional at post when strictly on
        the healthy side (a score equal to the cut-off is neither). True (instrument conventions
        such as PHQ-9 ">= 10 caseness", ORS "<= 25"): a score equal to the cut-off is clinical.

    Returns
    -------
    DataFrame
        A copy of ``data`` with these columns added:

        - ``change``: post - pre; ``improvement``: the change signed so that positive = better.
        - ``s_diff``: standard error of the difference (NaN with ``reliable_change``).
        - ``rci``: change / s_diff (NaN with ``reliable_change``).
        - ``reliable_improvement``, ``reliable_deterioration`` (nullable bool; <NA> without both scores).
        - ``cutoff``: the cut-off used (NaN without one).
        - ``clinical_pre``, ``functional_post`` (nullable bool).
        - ``category``: ``recovered`` (clinical at pre, functional at post, reliably improved),
          ``improved`` (reliably improved, not recovered), ``unchanged``, ``deteriorated``
          (reliably worse, not harmed), ``harmed`` (reliably worse, not clinical at pre and not
          functional at post, i.e. crossed into the dysfunctional range); <NA> without both scores.
          Category rules as R clinicalsignificance R/calc_recovered.R [V] (docs/methods.md §2.1).

        ``DataFrame.attrs`` holds ``sd_pre``, ``s_diff``, ``reliable_change`` (threshold in points:
        critical_value * s_diff, or the value given), ``cutoff`` and ``n_complete``.

    Raises
    ------
    ValueError
        When a column is missing, both or neither of ``reliability`` / ``reliable_change`` are
        given, or a cut-off cannot be computed from what was given.
    """
    r = _rules(rules, "jacobson_truax()", locals())  # the rules, with the keywords given here on top
    critical_value = r.critical_value
    _require(data, "data", [pre, post], "Pass a table with one row per case and a pre and a post score column.")
    _check_bool("higher_is_better", higher_is_better)
    _check_bool("cutoff_inclusive", cutoff_inclusive)
    _check_bool("reliable_change_inclusive", reliable_change_inclusive)
    if (reliability is None) == (reliable_change is None):
        raise ValueError("give exactly one of reliability (for the RCI, e.g. 0.80) and reliable_change (a value in "
                         f"points, e.g. 6 for the PHQ-9); got reliability={reliability!r}, "
                         f"reliable_change={reliable_change!r}.")
    _check_number("reliability", reliability, minimum=0, maximum=1, strict=True, allow_none=True)
    _check_number("reliable_change", reliable_change, minimum=0, strict=True, allow_none=True)
    _check_number("critical_value", critical_value, minimum=0, strict=True)
    _check_number("sd_pre", sd_pre, minimum=0, strict=True, allow_none=True)
    if cutoff_type not in ("a", "b", "c", None):
        raise ValueError(f"cutoff_type must be 'a', 'b', 'c' or None; got {cutoff_type!r}.")
    direction = 1.0 if higher_is_better else -1.0

    x0, x1 = _num(data, pre), _num(data, post)
    complete = ~(np.isnan(x0) | np.isnan(x1))
    pre_c = x0[complete]
    sd = float(sd_pre) if sd_pre is not None else (float(np.std(pre_c, ddof=1)) if pre_c.size > 1 else np.nan)
    change = x1 - x0
    improvement = direction * change
    out = data.copy()
    out["change"] = change
    out["improvement"] = improvement
    if reliability is not None:
        s_diff = float(np.sqrt(2.0) * sd * np.sqrt(1.0 - reliability))
        with np.errstate(invalid="ignore", divide="ignore"):
            rci = change / s_diff
        out["s_diff"] = s_diff
        out["rci"] = rci
        with np.errstate(invalid="ignore"):
            better = direction * rci > critical_value
            worse = direction * rci < -critical_value
        rc_points = critical_value * s_diff
    else:
        out["s_diff"] = np.nan
        out["rci"] = np.nan
        rc = float(reliable_change)
        with np.errstate(invalid="ignore"):
            if reliable_change_inclusive:
                better, worse = improvement >= rc - _EPS, improvement <= -rc + _EPS
            else:
                better, worse = improvement > rc + _EPS, improvement < -rc - _EPS
        s_diff, rc_points = np.nan, rc
    out["reliable_improvement"] = _nbool(better, complete)
    out["reliable_deterioration"] = _nbool(worse, complete)

    if cutoff is None and cutoff_type is not None:
        m_c = float(m_clinical) if m_clinical is not None else (float(pre_c.mean()) if pre_c.size else np.nan)
        s_c = float(sd_clinical) if sd_clinical is not None else sd
        if cutoff_type == "a":
            cutoff = m_c + direction * 2.0 * s_c
        else:
            if m_functional is None or sd_functional is None:
                raise ValueError(f"cutoff_type {cutoff_type!r} needs the functional (non-clinical) norm: give "
                                 "m_functional and sd_functional, or give cutoff=..., or use cutoff_type='a'.")
            _check_number("sd_functional", sd_functional, minimum=0, strict=True)
            if cutoff_type == "b":
                cutoff = float(m_functional) - direction * 2.0 * float(sd_functional)
            else:
                cutoff = (s_c * float(m_functional) + float(sd_functional) * m_c) / (s_c + float(sd_functional))
    if cutoff is not None:
        _check_number("cutoff", cutoff)
        c = float(cutoff)
        with np.errstate(invalid="ignore"):
            clinical = direction * x0 <= direction * c if cutoff_inclusive else direction * x0 < direction * c
            functional = direction * x1 > direction * c
        out["cutoff"] = c
        out["clinical_pre"] = _nbool(clinical, ~np.isnan(x0))
        out["functional_post"] = _nbool(functional, ~np.isnan(x1))
        recovered = clinical & functional & better
        harmed = ~clinical & ~functional & worse
    else:
        out["cutoff"] = np.nan
        out["clinical_pre"] = pd.array([pd.NA] * len(out), dtype="boolean")
        out["functional_post"] = pd.array([pd.NA] * len(out), dtype="boolean")
        recovered = np.zeros(len(out), bool)
        harmed = np.zeros(len(out), bool)
    cat = np.select([recovered, better, harmed, worse], [0, 1, 2, 3], default=4)  # the text is written per category
    out["category"] = pd.array(["recovered", "improved", "harmed", "deteriorated", "unchanged"], dtype="str").take(
        np.where(complete, cat, -1), allow_fill=True)
    out.attrs.update({"sd_pre": sd, "s_diff": s_diff, "reliable_change": rc_points,
                      "cutoff": np.nan if cutoff is None else float(cutoff), "n_complete": int(complete.sum())})
    return out


# --------------------------------------------------------------------------------------------
# sudden gains and losses (Tang & DeRubeis 1999, as in R suddengains 0.7.2)
# --------------------------------------------------------------------------------------------

def _series_matrix(data: pd.DataFrame, id: str, time: str, score: str):
    _require(data, "data", [id, time, score], "Pass a long table: one row per person and measurement occasion.")
    t = pd.to_numeric(data[time], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(t) | (t != np.round(t))
    if bad.any():
        raise ValueError(f"'{time}' must hold whole numbers (session or measurement numbers); got "
                         f"{data.loc[bad, time].head(3).tolist()}.")
    keys = data[id]
    if keys.isna().any():
        raise ValueError(f"'{id}' has missing values; every row needs a person id.")
    codes, ids = pd.factorize(keys, sort=True)
    ti = t.astype(np.int64)
    if len(ti) == 0:
        return ids, np.zeros((0, 0)), 0
    tmin, tmax = int(ti.min()), int(ti.max())
    width = tmax - tmin + 1
    cell = pd.Index(codes.astype(np.int64) * width + (ti - tmin))  # one integer per (person, occasion)
    if not cell.is_unique:
        first = data.loc[cell.duplicated(), [id, time]].iloc[0].tolist()
        raise ValueError(f"each person may have one row per '{time}'; {id}={first[0]!r} has {time}={first[1]!r} twice.")
    x = np.full((len(ids), width), np.nan)
    x[codes, ti - tmin] = _num(data, score)
    return ids, x, tmin


def _sd(values: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis=1) / count
        ss = np.nansum((values - mean[:, None]) ** 2, axis=1)
        return np.sqrt(ss / (count - 1))


def _sg_options(sg_crit1_cutoff, sg_crit2_pct, sg_crit3, sg_crit3_alpha, sg_crit3_adjust, sg_crit3_critical_value,
                higher_is_better, identify) -> dict:
    """Check the sudden-gain options; the criteria as :func:`_sudden_intervals` takes them."""
    if identify not in ("gains", "losses"):
        raise ValueError(f"identify must be 'gains' or 'losses'; got {identify!r}.")
    _check_number("sg_crit1_cutoff", sg_crit1_cutoff, allow_none=True)
    _check_number("sg_crit2_pct", sg_crit2_pct, minimum=0, allow_none=True)
    _check_bool("sg_crit3", sg_crit3)
    _check_bool("sg_crit3_adjust", sg_crit3_adjust)
    _check_bool("higher_is_better", higher_is_better)
    _check_number("sg_crit3_alpha", sg_crit3_alpha, minimum=0, maximum=1, strict=True)
    _check_number("sg_crit3_critical_value", sg_crit3_critical_value, minimum=0, strict=True)
    if sg_crit1_cutoff is None and sg_crit2_pct is None and not sg_crit3:
        raise ValueError("no criterion applied: give sg_crit1_cutoff, sg_crit2_pct or sg_crit3=True.")
    # s: sign that turns x_{n+1} - x_n into the size of the event (positive = event direction)
    gains = identify == "gains"
    return {"s": (1.0 if higher_is_better else -1.0) * (1.0 if gains else -1.0),
            "cut1": None if sg_crit1_cutoff is None else abs(float(sg_crit1_cutoff)),
            "pct": None if sg_crit2_pct is None else float(sg_crit2_pct), "crit3": bool(sg_crit3),
            "alpha": float(sg_crit3_alpha), "adjust": bool(sg_crit3_adjust),
            "critical_value": float(sg_crit3_critical_value)}


def _sudden_intervals(x: np.ndarray, *, s: float, cut1: float | None, pct: float | None, crit3: bool, alpha: float,
                      adjust: bool, critical_value: float, intervals: bool = False) -> dict[str, np.ndarray]:
    """The criteria at every testable interval of a (persons x occasions) score matrix, vectorised.

    Pregain columns run from the second to the third-last occasion (package rule). With
    ``intervals`` False only the intervals that are events are returned, otherwise all of them;
    either way in person then pregain order. Returns arrays: ``code`` (row of ``x``), ``col``
    (pregain column), ``met``, ``decided``, the applied criteria ``crit1``/``crit2``/``crit3`` as
    (value, known) pairs, ``critical_value``, ``n_pre``, ``n_post``, ``mean_pre``, ``mean_post``,
    ``pre`` (x_{n-2}..x_n) and ``post`` (x_{n+1}..x_{n+3}).
    """
    n_ids, width = x.shape
    # critical values by degrees of freedom (2, 3 or 4 with 2-3 values on each side)
    t_by_df = np.abs(_stats.t.ppf(alpha / 2.0, np.arange(1, 5)))
    known_x = ~np.isnan(x)
    if intervals:
        cand = np.ones((n_ids, width), bool)
    elif cut1 is not None or pct is not None:  # criteria 1 and 2 need x_n and x_{n+1}
        cand = np.zeros((n_ids, width), bool)
        cand[:, :-1] = known_x[:, :-1] & known_x[:, 1:]
    else:  # criterion 3 alone needs two of x_{n-2}..x_n
        cand = known_x.copy()
        cand[:, 1:] |= known_x[:, :-1]
        cand[:, 2:] |= known_x[:, :-2]
    cand[:, :1] = False
    cand[:, max(width - 2, 0):] = False
    code, col = np.nonzero(cand)  # row-major: person, then pregain occasion
    if not intervals and (cut1 is not None or pct is not None):
        # an event meets criteria 1 and 2: test those first, on every interval at once
        xn, d = x[code, col], s * (x[code, col + 1] - x[code, col])
        with np.errstate(invalid="ignore"):
            ok = (d >= cut1 - _EPS) if cut1 is not None else np.ones(len(code), bool)
            if pct is not None:
                ok &= d >= pct * xn - _EPS
        code, col = code[ok], col[ok]

    def at(c: np.ndarray) -> np.ndarray:
        inside = (c >= 0) & (c < width)
        return np.where(inside, x[code, np.clip(c, 0, max(width - 1, 0))], np.nan) if len(c) else np.zeros(0)

    pre = np.stack([at(col - 2), at(col - 1), at(col)], axis=1)
    post = np.stack([at(col + 1), at(col + 2), at(col + 3)], axis=1)
    m = len(code)
    xn, xn1 = pre[:, 2], post[:, 0]
    d = s * (xn1 - xn)
    known = ~(np.isnan(xn) | np.isnan(xn1))
    crit = {}
    if cut1 is not None:
        crit["crit1"] = (d >= cut1 - _EPS, known)
    if pct is not None:
        with np.errstate(invalid="ignore"):
            crit["crit2"] = (d >= pct * xn - _EPS, known)
    n_pre = np.sum(~np.isnan(pre), axis=1)
    n_post = np.sum(~np.isnan(post), axis=1)
    enough = (n_pre >= 2) & (n_post >= 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_pre = np.nansum(pre, axis=1) / n_pre
        m_post = np.nansum(post, axis=1) / n_post
        sp = np.sqrt(((n_pre - 1) * _sd(pre, n_pre) ** 2 + (n_post - 1) * _sd(post, n_post) ** 2)
                     / (n_pre + n_post - 2))
    df = np.clip(n_pre + n_post - 2, 1, 4)
    tcrit = t_by_df[df - 1] if adjust else np.full(m, critical_value)
    tcrit = np.where(enough, tcrit, np.nan)
    if crit3:
        with np.errstate(invalid="ignore"):
            crit["crit3"] = (s * (m_post - m_pre) > tcrit * sp, enough)
    decided = np.ones(m, bool)
    met = np.ones(m, bool)
    for v, k in crit.values():
        decided &= k
        met &= np.asarray(v, dtype=bool) & k
    keep = slice(None) if intervals else (met & decided)
    out = {"code": code[keep], "col": col[keep], "met": met[keep], "decided": decided[keep],
           "critical_value": tcrit[keep], "n_pre": n_pre[keep], "n_post": n_post[keep], "mean_pre": m_pre[keep],
           "mean_post": m_post[keep], "pre": pre[keep], "post": post[keep]}
    for name, (v, k) in crit.items():
        out[name] = (np.asarray(v, dtype=bool)[keep], np.asarray(k, dtype=bool)[keep])
    return out


def _event_details(x: np.ndarray, tmin: int, s: float, code: np.ndarray, col: np.ndarray,
                   score_n: np.ndarray, score_np1: np.ndarray, reversal_start: int = 3) -> dict[str, np.ndarray]:
    """Magnitude, the person's first and last score, and reversal of the events at (code, col)."""
    n_ids, width = x.shape
    # person's first and last score, vectorised over the matrix
    has = ~np.isnan(x)
    any_has = has.any(axis=1) if width else np.zeros(n_ids, bool)
    first_i = np.argmax(has, axis=1) if width else np.zeros(n_ids, np.int64)
    last_i = width - 1 - np.argmax(has[:, ::-1], axis=1) if width else np.zeros(n_ids, np.int64)
    rowsel = np.arange(n_ids)
    tx_start = np.where(any_has, x[rowsel, first_i] if width else np.nan, np.nan)
    tx_end = np.where(any_has, x[rowsel, last_i] if width else np.nan, np.nan)
    magnitude = s * (score_np1 - score_n)
    tx_start, tx_end = tx_start[code], tx_end[code]
    tx_change = s * (tx_end - tx_start)
    with np.errstate(invalid="ignore", divide="ignore"):
        prop = magnitude / tx_change
    rev_value = score_np1 - s * magnitude / 2.0
    # reversal: any score from n + reversal_start on strictly beyond the reversal value (back towards x_n)
    cols = np.arange(width)
    start = col.astype(np.int64) + int(reversal_start)
    later = x[code] if len(code) else np.zeros((0, width))
    with np.errstate(invalid="ignore"):
        beyond = (s * (later - rev_value[:, None]) < -_EPS) & (cols[None, :] >= start[:, None])
    reversed_ = beyond.any(axis=1)
    first_rev = np.argmax(beyond, axis=1) + tmin if beyond.size else np.zeros(len(code), np.int64)
    return {"magnitude": magnitude, "tx_start": tx_start, "tx_end": tx_end, "tx_change": tx_change,
            "change_proportion": np.where(np.isfinite(prop), prop, np.nan), "reversal_value": rev_value,
            "reversal": reversed_, "reversal_time": np.where(reversed_, first_rev, 0).astype(np.int64),
            "n_events": np.bincount(code, minlength=n_ids)[code] if len(code) else np.zeros(0, int)}


def sudden_gains(
    data: pd.DataFrame,
    *,
    sg_crit1_cutoff: float | None,
    id: str = "client_id",
    time: str = "session_number",
    score: str = "score",
    higher_is_better: bool = False,
    sg_crit2_pct: float | None = FROM_RULES,
    sg_crit3: bool | None = None,
    sg_crit3_alpha: float | None = None,
    sg_crit3_adjust: bool | None = None,
    sg_crit3_critical_value: float | None = None,
    sg_reversal_start: int | None = None,
    identify: str = "gains",
    intervals: bool = False,
    rules=None,
) -> pd.DataFrame:
    """Sudden gains (or losses) by the Tang & DeRubeis (1999) criteria, as R ``suddengains`` 0.7.2.

    For an interval from measurement n (pregain, x_n) to n + 1 (postgain) on a lower-is-better
    scale, a sudden gain needs every applied criterion (docs/methods.md §2.3 [V]; R suddengains
    R/identify_sg.R, R/check_interval.R; Tang & DeRubeis 1999 J Consult Clin Psychol 67:894-904):

    1. x_n - x_{n+1} >= ``sg_crit1_cutoff`` (e.g. 7 BDI points, or the reliable-change value,
       :func:`reliable_change_value`);
    2. x_n - x_{n+1} >= ``sg_crit2_pct`` * x_n;
    3. mean(x_{n-2}, x_{n-1}, x_n) - mean(x_{n+1}, x_{n+2}, x_{n+3}) > t * pooled SD, where missing
       values are dropped, at least 2 values are needed on each side, the pooled SD is
       sqrt(((n_pre - 1) s_pre^2 + (n_post - 1) s_post^2) / (n_pre + n_post - 2)) and t is
       |t_{alpha/2, n_pre + n_post - 2}| (2.776 / 3.182 / 4.303 for 3+3 / 3+2 / 2+2 values at
       alpha .05: the missing-data adjustment of Lutz et al. 2013) or, with ``sg_crit3_adjust``
       False, the fixed ``sg_crit3_critical_value``.

    An interval with any applied criterion undecidable (a missing x_n or x_{n+1}, fewer than 2
    values on a side) is not a gain, so gains spanning a missing session are not identified.
    Testable intervals: pregain from the second to the third-last measurement occasion of the
    table (``time`` from its minimum + 1 to its maximum - 2), as the package (which tests s2->s3 to
    s10->s11 of s1..s12; prefix a baseline occasion to test 1->2).

    Parameters
    ----------
    data : DataFrame
        Long table: one row per person (``id``) and occasion (``time``, whole numbers; gaps are
        missing occasions) with a ``score``. Not modified.
    sg_crit1_cutoff : float or None
        Criterion 1 in points (positive; for losses the size of the rise). None: not applied.
    higher_is_better : bool, default False
        For a higher-is-better scale (ORS) the criteria are mirrored: a gain is a rise. Criterion 2
        is then a rise of at least ``sg_crit2_pct`` of the pregain score [U: no published rule for
        such scales].
    sg_crit2_pct : float or None, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Criterion 2 share of the pregain score. None: not applied.
    sg_crit3 : bool, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Apply criterion 3.
    sg_crit3_alpha : float, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Two-tailed alpha of criterion 3's critical value.
    sg_crit3_adjust : bool, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Adjust the critical value for missing values (df = n_pre + n_post - 2).
    sg_crit3_critical_value : float, optional (default: the rules, ``[outcome]`` in defaults.toml)
        The fixed critical value used when ``sg_crit3_adjust`` is False.
    sg_reversal_start : int, optional (default: the rules, ``[outcome]`` in defaults.toml)
        The reversal search starts at occasion n + this. R suddengains 0.7.2 R/create_bysg.R
        starts at n + 3 (with ``identify_sg_1to2 = FALSE``, its default) and at n + 2 with a
        baseline (docs/methods.md §2.3 quirk [V code reading]); 3 follows the package's default,
        2 also counts a fall-back at the first session after the postgain session.
    identify : {"gains", "losses"}
        Sudden losses mirror the gains (criterion 1 a rise of at least the cut-off, criterion 3
        mean_post - mean_pre). Criterion 2 for losses is a rise of at least ``sg_crit2_pct`` of the
        pregain score; the package's identify_sl instead tests x_n - x_{n+1} <= pct * x_n, which
        every rise satisfies (docs/methods.md §2.3 quirk) — we apply the rule as stated.
    intervals : bool, default False
        Return every testable interval with its criteria instead of the events only.

    Returns
    -------
    DataFrame
        With ``intervals=False``: one row per sudden gain (loss), sorted by ``id`` then pregain
        occasion, with columns

        - ``id`` (named as the input column), ``kind`` (``gain`` / ``loss``)
        - ``pregain_time`` (n; the package's ``sg_session_n``), ``postgain_time`` (n + 1)
        - ``score_nm2``, ``score_nm1``, ``score_n``, ``score_np1``, ``score_np2``, ``score_np3``:
          the scores at n-2 .. n+3 (NaN where missing)
        - ``magnitude``: size of the event, positive (gains: x_n - x_{n+1} on a lower-is-better
          scale, as the package's ``sg_magnitude``; losses: the rise, which the package reports
          negative)
        - ``mean_pre``, ``mean_post``, ``n_pre``, ``n_post``, ``critical_value`` (criterion 3)
        - ``tx_start``, ``tx_end``: the person's first and last score in the table;
          ``tx_change``: total change in the direction of the event (gains: improvement);
          ``change_proportion``: magnitude / tx_change (NaN when tx_change is 0)
        - ``reversal_value``: x_{n+1} plus half the magnitude back towards x_n
        - ``reversal`` (bool): a later score (from n + ``sg_reversal_start`` on, n + 3 as the
          package by default) lies strictly beyond ``reversal_value`` (Tang & DeRubeis: lost
          >= 50 % of the gain; package R/create_bysg.R [V]); ``reversal_time``: the first such occasion
        - ``n_events``: gains (losses) of this person (the package's ``sg_freq_byperson``)

        With ``intervals=True``: one row per person and testable interval with ``id``,
        ``pregain_time``, ``postgain_time``, ``crit1``, ``crit2``, ``crit3`` (nullable bool; <NA>
        when undecidable or not applied), ``critical_value``, ``n_pre``, ``n_post`` and ``event``
        (nullable bool: all applied criteria met; <NA> when any applied one is undecidable).

    Raises
    ------
    ValueError
        On missing columns, non-whole ``time``, duplicated occasions, no criterion applied, or an
        option out of range.
    """
    r = _rules(rules, "sudden_gains()", locals())  # the rules, with the keywords given here on top
    sg_crit3, sg_crit3_alpha, sg_crit3_adjust = r.sg_crit3, r.sg_crit3_alpha, r.sg_crit3_adjust
    sg_crit3_critical_value, sg_reversal_start = r.sg_crit3_critical_value, r.sg_reversal_start
    sg_crit2_pct = r.sg_crit2_pct if sg_crit2_pct is FROM_RULES else sg_crit2_pct  # None: criterion 2 off
    opts = _sg_options(sg_crit1_cutoff, sg_crit2_pct, sg_crit3, sg_crit3_alpha, sg_crit3_adjust,
                       sg_crit3_critical_value, higher_is_better, identify)
    s = opts["s"]
    ids, x, tmin = _series_matrix(data, id, time, score)
    iv = _sudden_intervals(x, **opts, intervals=intervals)
    cols_iv = [id, "pregain_time", "postgain_time", "crit1", "crit2", "crit3", "critical_value", "n_pre",
               "n_post", "event"]
    nk = len(iv["code"])
    if not nk:
        allv = pd.DataFrame({c: pd.Series(dtype=float) for c in ["_code", *cols_iv[1:], "mean_pre", "mean_post",
                                                                  "score_nm2", "score_nm1", "score_n", "score_np1",
                                                                  "score_np2", "score_np3"]})
        allv["event"] = allv["event"].astype("boolean")
    else:
        part = {"_code": iv["code"], "pregain_time": iv["col"] + tmin, "postgain_time": iv["col"] + 1 + tmin,
                "event": _nbool(iv["met"], iv["decided"]), "critical_value": iv["critical_value"],
                "n_pre": iv["n_pre"], "n_post": iv["n_post"], "mean_pre": iv["mean_pre"], "mean_post": iv["mean_post"]}
        for name in ("crit1", "crit2", "crit3"):
            part[name] = _nbool(*iv[name]) if name in iv else pd.array([pd.NA] * nk, dtype="boolean")
        for j, lab in enumerate(("score_nm2", "score_nm1", "score_n")):
            part[lab] = iv["pre"][:, j]
        for j, lab in enumerate(("score_np1", "score_np2", "score_np3")):
            part[lab] = iv["post"][:, j]
        allv = pd.DataFrame(part)  # already in person, then pregain order
    allv.insert(0, id, np.asarray(ids)[allv["_code"].to_numpy(dtype=np.int64)] if len(allv) else [])
    if intervals:
        return allv[cols_iv].reset_index(drop=True)

    ev = allv[allv["event"].fillna(False).to_numpy(dtype=bool)].copy()
    code = ev["_code"].to_numpy(dtype=np.int64)
    _check_number("sg_reversal_start", sg_reversal_start, minimum=2, integer=True)
    det = _event_details(x, tmin, s, code, ev["pregain_time"].to_numpy(dtype=np.int64) - tmin,
                         ev["score_n"].to_numpy(), ev["score_np1"].to_numpy(), sg_reversal_start)
    ev["kind"] = "gain" if identify == "gains" else "loss"
    for c in ("magnitude", "tx_start", "tx_end", "tx_change", "change_proportion", "reversal_value", "reversal"):
        ev[c] = det[c]
    ev["reversal_time"] = pd.arrays.IntegerArray(det["reversal_time"], ~det["reversal"])
    ev["n_events"] = det["n_events"]
    cols = [id, "kind", "pregain_time", "postgain_time", "score_nm2", "score_nm1", "score_n", "score_np1",
            "score_np2", "score_np3", "magnitude", "mean_pre", "mean_post", "n_pre", "n_post", "critical_value",
            "tx_start", "tx_end", "tx_change", "change_proportion", "reversal_value", "reversal", "reversal_time",
            "n_events"]
    return ev[cols].reset_index(drop=True)


def sudden_losses(data: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Sudden losses: :func:`sudden_gains` with ``identify="losses"`` (same options and columns)."""
    kwargs["identify"] = "losses"
    return sudden_gains(data, **kwargs)


def sudden_gains_by_person(events: pd.DataFrame, *, id: str = "client_id", persons=None,
                           multiple_sg_select: str | None = None, rules=None) -> pd.DataFrame:
    """One row per person with their selected sudden gain (loss), as ``create_byperson`` of suddengains.

    Parameters
    ----------
    events : DataFrame
        Output of :func:`sudden_gains` / :func:`sudden_losses`. Not modified.
    id : str
        The person id column.
    persons : array-like, optional
        Every person to list (e.g. all ids of the input data); persons without an event get
        ``n_events`` 0 and missing event columns. Default: persons with an event.
    multiple_sg_select : {"first", "last", "largest", "smallest"}, optional
        Default: the rules (``[outcome]`` in defaults.toml).
        Which event to keep when a person has several: earliest / latest pregain occasion, or the
        largest / smallest magnitude (ties: the earliest), as the package [V].

    Returns
    -------
    DataFrame
        One row per person, sorted by ``id``: the columns of ``events`` for the selected event, and
        ``has_event`` (bool) and ``n_events`` (0 for persons without one).
    """
    _require(events, "events", [id, "pregain_time", "magnitude", "n_events"],
             "Pass the output of sudden_gains(...) or sudden_losses(...).")
    multiple_sg_select = _rules(rules, "sudden_gains_by_person()", locals()).multiple_sg_select
    if multiple_sg_select not in _SELECT:
        raise ValueError(f"multiple_sg_select must be one of {', '.join(_SELECT)}; got {multiple_sg_select!r}.")
    e = events
    if multiple_sg_select in ("first", "last"):
        e = e.sort_values([id, "pregain_time"], ascending=[True, multiple_sg_select == "first"], kind="stable")
    else:
        e = e.sort_values([id, "magnitude", "pregain_time"], ascending=[True, multiple_sg_select == "smallest", True],
                          kind="stable")
    out = e.drop_duplicates(id, keep="first").sort_values(id, kind="stable").reset_index(drop=True)
    out.insert(1, "has_event", True)
    if persons is not None:
        allp = pd.DataFrame({id: pd.unique(np.asarray(persons, dtype=object))}).sort_values(id, kind="stable")
        out = allp.merge(out, on=id, how="left")
        out["has_event"] = out["has_event"].fillna(False).astype(bool)
        out["n_events"] = out["n_events"].fillna(0).astype(int)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# NHS Talking Therapies (formerly IAPT)
# --------------------------------------------------------------------------------------------

def paired_scores(sessions: pd.DataFrame, *, measures: Sequence[str] = ("phq9", "gad7"), settings=None) -> pd.DataFrame:
    """First and last score per client of each measure, with the number of attended sessions.

    Parameters
    ----------
    sessions : DataFrame
        The canonical ``sessions`` table (items are scored with :func:`score_sessions` when a
        total is missing). Not modified.
    measures : sequence of str, default ("phq9", "gad7")
        Instrument prefixes.
    settings : optional
        For instruments defined in the settings.

    Returns
    -------
    DataFrame
        One row per client with an attended session, sorted by ``client_id``: ``client_id``,
        ``clinician_id``, ``n_attended``, and per measure ``<m>_first``, ``<m>_last`` (NaN unless
        the measure was taken at two or more attended sessions: a pair needs two scores),
        ``<m>_n`` (sessions with a score).
    """
    base = None
    for m in measures:
        ss = session_scores(sessions, instrument=m, settings=settings)
        if base is None:
            base = ss.groupby("client_id", sort=True).agg(clinician_id=("clinician_id", "first"),
                                                         n_attended=("session_number", "size"))
        meas = ss[ss["score"].notna()]
        g = meas.groupby("client_id", sort=True)["score"]
        n = g.size().reindex(base.index, fill_value=0)
        base[f"{m}_first"] = g.first().reindex(base.index)
        base[f"{m}_last"] = g.last().reindex(base.index).where(n >= 2)
        base[f"{m}_n"] = n.astype(int)
    if base is None:
        raise ValueError("measures must name at least one instrument, e.g. ('phq9', 'gad7').")
    return base.reset_index()


def talking_therapies(
    episodes: pd.DataFrame,
    *,
    phq9_first: str = "phq9_first",
    phq9_last: str = "phq9_last",
    gad7_first: str = "gad7_first",
    gad7_last: str = "gad7_last",
    attended: str = "n_attended",
    phq9_caseness: float | None = None,
    gad7_caseness: float | None = None,
    phq9_reliable_change: float | None = None,
    gad7_reliable_change: float | None = None,
    min_attended: int | None = None,
    no_opposite_deterioration: bool | None = None,
    rules=None,
) -> pd.DataFrame:
    """NHS Talking Therapies outcomes for paired PHQ-9 + GAD-7 first and last scores.

    Definitions (docs/methods.md §2.2): caseness = PHQ-9 >= ``phq9_caseness`` (10) or GAD-7 >=
    ``gad7_caseness`` (8) [V concept, NHS Digital IAPT outcome pages and fingertips glossary;
    thresholds V2: cbtwatch.com quoting the IAPT manual, BMC Psychiatry 2018 MindStep Table 1];
    finished treatment = at least ``min_attended`` (2) attended treatment appointments [V]
    fingertips glossary, nhsengland/Talking-Therapies dashboard SQL; recovery = at caseness at the
    first and not at the last score; reliable improvement / deterioration = a fall / rise of at
    least the reliable-change value (PHQ-9 6, GAD-7 4) [V2] on at least one measure, and - with
    ``no_opposite_deterioration`` (default, the stricter manual wording [U]) - no reliable change
    the other way on the other measure; reliable recovery = recovery and reliable improvement [V].
    Scores equal to the caseness value are at caseness; a change exactly equal to the
    reliable-change value is reliable.

    Parameters
    ----------
    episodes : DataFrame
        One row per referral / episode with first and last PHQ-9 and GAD-7 scores and the number
        of attended sessions (e.g. :func:`paired_scores`). Not modified.
    phq9_first, phq9_last, gad7_first, gad7_last, attended : str
        Column names.
    phq9_caseness, gad7_caseness, phq9_reliable_change, gad7_reliable_change, min_attended, no_opposite_deterioration
        Thresholds and rules as above (settings ``[outcome]``).

    Returns
    -------
    DataFrame
        A copy of ``episodes`` with (nullable booleans are <NA> where a needed score is missing):

        - ``finished_treatment`` (bool); ``paired`` (bool: all four scores present)
        - ``caseness_first``, ``caseness_last``
        - ``phq9_change``, ``gad7_change``: last - first
        - ``phq9_reliable_improvement``, ``phq9_reliable_deterioration``,
          ``gad7_reliable_improvement``, ``gad7_reliable_deterioration``
        - ``reliable_improvement``, ``reliable_deterioration``, ``recovery``, ``reliable_recovery``
        - ``in_outcome_denominator``: finished and paired (denominator of the reliable improvement
          and deterioration rates); ``in_recovery_denominator``: also at caseness at the start
          (recovery rate = recovered / (finished - not at caseness) [V] NHS Digital)
        - ``category``: the first that applies of ``not_finished``, ``incomplete_scores``,
          ``reliable_deterioration``, ``reliable_recovery``, ``recovery`` (recovered without reliable
          improvement), ``reliable_improvement`` (without recovery), ``not_at_caseness``,
          ``no_reliable_change``.
    """
    r = _rules(rules, "talking_therapies()", locals())  # the rules, with the keywords given here on top
    phq9_caseness, gad7_caseness, phq9_reliable_change = r.phq9_caseness, r.gad7_caseness, r.phq9_reliable_change
    gad7_reliable_change, min_attended = r.gad7_reliable_change, r.min_attended
    no_opposite_deterioration = r.no_opposite_deterioration
    _require(episodes, "episodes", [phq9_first, phq9_last, gad7_first, gad7_last, attended],
             "Pass one row per episode with first and last PHQ-9 and GAD-7 totals and attended sessions "
             "(paired_scores(sessions) builds it).")
    for name, v in (("phq9_caseness", phq9_caseness), ("gad7_caseness", gad7_caseness)):
        _check_number(name, v, minimum=0)
    for name, v in (("phq9_reliable_change", phq9_reliable_change), ("gad7_reliable_change", gad7_reliable_change)):
        _check_number(name, v, minimum=0, strict=True)
    _check_number("min_attended", min_attended, minimum=1, integer=True)
    _check_bool("no_opposite_deterioration", no_opposite_deterioration)
    p0, p1 = _num(episodes, phq9_first), _num(episodes, phq9_last)
    g0, g1 = _num(episodes, gad7_first), _num(episodes, gad7_last)
    n_att = _num(episodes, attended)
    out = episodes.copy()
    finished = np.nan_to_num(n_att, nan=0.0) >= min_attended
    known0 = ~(np.isnan(p0) | np.isnan(g0))
    known1 = ~(np.isnan(p1) | np.isnan(g1))
    paired = known0 & known1
    with np.errstate(invalid="ignore"):
        case0 = (p0 >= phq9_caseness - _EPS) | (g0 >= gad7_caseness - _EPS)
        case1 = (p1 >= phq9_caseness - _EPS) | (g1 >= gad7_caseness - _EPS)
        dp, dg = p1 - p0, g1 - g0
        p_ri, p_rd = dp <= -phq9_reliable_change + _EPS, dp >= phq9_reliable_change - _EPS
        g_ri, g_rd = dg <= -gad7_reliable_change + _EPS, dg >= gad7_reliable_change - _EPS
    if no_opposite_deterioration:
        ri = (p_ri | g_ri) & ~(p_rd | g_rd)
        rd = (p_rd | g_rd) & ~(p_ri | g_ri)
    else:
        ri, rd = p_ri | g_ri, p_rd | g_rd
    recovery = case0 & ~case1
    out["finished_treatment"] = finished
    out["paired"] = paired
    out["caseness_first"] = _nbool(case0, known0)
    out["caseness_last"] = _nbool(case1, known1)
    out["phq9_change"] = dp
    out["gad7_change"] = dg
    kp, kg = ~np.isnan(dp), ~np.isnan(dg)
    out["phq9_reliable_improvement"] = _nbool(p_ri, kp)
    out["phq9_reliable_deterioration"] = _nbool(p_rd, kp)
    out["gad7_reliable_improvement"] = _nbool(g_ri, kg)
    out["gad7_reliable_deterioration"] = _nbool(g_rd, kg)
    out["reliable_improvement"] = _nbool(ri, paired)
    out["reliable_deterioration"] = _nbool(rd, paired)
    out["recovery"] = _nbool(recovery, paired)
    out["reliable_recovery"] = _nbool(recovery & ri, paired)
    out["in_outcome_denominator"] = finished & paired
    out["in_recovery_denominator"] = finished & paired & case0
    cat = np.select(
        [~finished, ~paired, rd, recovery & ri, recovery, ri, ~case0],
        ["not_finished", "incomplete_scores", "reliable_deterioration", "reliable_recovery", "recovery",
         "reliable_improvement", "not_at_caseness"], default="no_reliable_change")
    out["category"] = pd.array(cat, dtype="str")
    return out


def talking_therapies_rates(tt: pd.DataFrame, *, by: str = "clinician_id", confidence: float | None = None,
                            rules=None) -> pd.DataFrame:
    """NHS Talking Therapies rates per group (clinician) and for the service, with Wilson intervals.

    Parameters
    ----------
    tt : DataFrame
        Output of :func:`talking_therapies` with a ``by`` column. Not modified.
    by : str, default "clinician_id"
    confidence : float, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Level of the Wilson intervals (Wilson 1927; Newcombe 1998; docs/methods.md §3.1).

    Returns
    -------
    DataFrame
        One row per group (``scope``, sorted) and a last row ``scope == "service"``, with
        ``n_finished`` (finished and paired), ``n_recovery_denominator`` (also at caseness at the
        start), and for each outcome ``n_<outcome>``, ``<outcome>_rate``, ``<outcome>_lower``,
        ``<outcome>_upper``: ``recovery`` and ``reliable_recovery`` over the recovery denominator
        (NHS Digital: recovered / (finished - not at caseness) [V]); ``reliable_improvement`` and
        ``reliable_deterioration`` over ``n_finished`` [V].
    """
    confidence = _rules(rules, "talking_therapies_rates()", locals()).confidence
    _require(tt, "tt", [by, "in_outcome_denominator", "in_recovery_denominator", "recovery",
                        "reliable_recovery", "reliable_improvement", "reliable_deterioration"],
             "Pass the output of talking_therapies(...) with a clinician_id column.")
    groups = sorted(pd.unique(tt[by].dropna()).tolist())
    index = pd.Index([*groups, "service"], name="scope")
    keys = positions_in(index[:-1], tt[by])

    def flag(c):
        return tt[c].astype("boolean").fillna(False).to_numpy(dtype=bool)

    fin = tt["in_outcome_denominator"].astype(bool).to_numpy()
    rec = tt["in_recovery_denominator"].astype(bool).to_numpy()
    a = _rates(index, keys, {"reliable_improvement": flag("reliable_improvement"),
                             "reliable_deterioration": flag("reliable_deterioration")}, fin, confidence)
    b = _rates(index, keys, {"recovery": flag("recovery"), "reliable_recovery": flag("reliable_recovery")}, rec,
               confidence)
    out = pd.concat([a.rename(columns={"n": "n_finished"}), b.rename(columns={"n": "n_recovery_denominator"})], axis=1)
    first = ["n_finished", "n_recovery_denominator"]
    return out[first + [c for c in out.columns if c not in first]].reset_index()


# --------------------------------------------------------------------------------------------
# per session, per client, per clinician
# --------------------------------------------------------------------------------------------

def _attended_order(sessions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the attended sessions sorted by client then date (stable, missing last), and
    their 1-based session numbers within the client: the order and numbering of :func:`session_scores`."""
    _require(sessions, "sessions", ["client_id", "clinician_id", "session_date", "attendance"],
             "Load the export with supervision.load_caseload() to get the canonical sessions table.")
    att = np.flatnonzero((sessions["attendance"] == "attended").fillna(False).to_numpy(dtype=bool))
    pos = sort_positions(sessions, ["client_id", "session_date"], att)
    client, _ = block_codes(sessions["client_id"].take(pos))  # sorted: each client's rows are contiguous
    starts = np.flatnonzero(np.r_[True, client[1:] != client[:-1]]) if len(pos) else np.zeros(0, np.int64)
    number = np.arange(len(pos), dtype=np.int64) - np.repeat(starts, np.diff(np.r_[starts, len(pos)])) + 1
    return pos, number


def _score_frames(sessions: pd.DataFrame, insts: Sequence[Instrument]) -> dict[str, pd.DataFrame]:
    """:func:`session_scores` of several instruments, the sessions filtered and sorted once."""
    pos, number = _attended_order(sessions)
    base = {c: take_values(sessions[c], pos) for c in ("client_id", "clinician_id")}
    base["session_date"] = sessions["session_date"].to_numpy()[pos]
    base["session_number"] = number
    out = {}
    for inst in insts:
        if inst.prefix in out:
            continue
        if any(c in sessions.columns for c in inst.columns):
            score = total_scores(sessions, inst)[0][pos]
        else:
            score = np.full(len(pos), np.nan)
        out[inst.prefix] = pd.DataFrame({**base, "score": score})
    return out


def session_scores(sessions: pd.DataFrame, *, instrument=None, settings=None, rules=None) -> pd.DataFrame:
    """One instrument's total at every attended session, numbered within the client.

    Parameters
    ----------
    sessions : DataFrame
        The canonical ``sessions`` table (``client_id``, ``clinician_id``, ``session_date``,
        ``attendance`` and the instrument's columns; a missing total is scored from the items by
        :func:`supervision.instruments.scoring.score_sessions`). Not modified.
    instrument : str or Instrument, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Prefix (``ors``, ``phq9``, ``gad7``, ``core10``, ... or one defined in the settings).
    settings : optional
        Settings holding user instruments.

    Returns
    -------
    DataFrame
        One row per attended session, sorted by ``client_id`` then ``session_date``:
        ``client_id``, ``clinician_id``, ``session_date``, ``session_number`` (1-based among the
        client's attended sessions), ``score`` (the total; NaN when not measured).
    """
    _require(sessions, "sessions", ["client_id", "clinician_id", "session_date", "attendance"],
             "Load the export with supervision.load_caseload() to get the canonical sessions table.")
    inst = _instrument(_rules(rules, "session_scores()", locals()).instrument, settings)
    return _score_frames(sessions, [inst])[inst.prefix]


def outcome_scores(sessions: pd.DataFrame, *, clients: pd.DataFrame, instruments: Sequence = ("ors",),
                   settings=None) -> dict[str, pd.DataFrame]:
    """Every outcome instrument's session scores with each client's intake: the service's score tables.

    :func:`client_outcomes`, :func:`expected_trajectories` and :func:`track_status` all start from
    these tables; compute them once (the sessions are filtered, scored and sorted once for every
    instrument) and pass each as ``scores=...``.

    Parameters
    ----------
    sessions, clients : DataFrame
        The canonical tables. Not modified.
    instruments : sequence of str or Instrument, default ("ors",)
    settings : optional
        Settings holding user instruments.

    Returns
    -------
    dict of DataFrame
        ``{prefix: table}``, each table the instrument's :func:`session_scores` (one row per
        attended session, sorted by ``client_id`` then ``session_date``) with ``intake`` (the
        client's first measured score; NaN when none) and ``closed`` (bool: the client's episode
        has an ``end_date``).
    """
    _require(clients, "clients", ["client_id", "end_date"],
             "Pass the canonical clients table (supervision.load_caseload().clients).")
    insts = [_instrument(i, settings) for i in ([instruments] if isinstance(instruments, (str, Instrument))
                                                else instruments)]
    frames = _score_frames(sessions, insts)
    if not frames:
        return {}
    # the instruments' tables share their rows: find each row's client and its episode once
    codes, ids = _client_codes(next(iter(frames.values())))
    closed = _closed(clients, ids)
    return {p: _with_intake(ss, clients, (codes, ids, closed)) for p, ss in frames.items()}


def _client_codes(ss: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    """Integer code per row (0..k-1 in order of first appearance: sorted ids for a sorted table) and the ids,
    as ``pd.factorize(ss["client_id"])``."""
    return block_codes(ss["client_id"])


def _first_last(codes: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row of the first and last of ``rows`` (default all) per code; -1 where a code has none."""
    rows = np.arange(len(codes)) if rows is None else rows
    c = codes[rows]
    first = np.full(k, -1, dtype=np.int64)
    last = np.full(k, -1, dtype=np.int64)
    if len(c) and (c[1:] >= c[:-1]).all():  # a sorted table: each code's rows are one block
        start = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        end = np.r_[start[1:] - 1, len(c) - 1]
        first[c[start]], last[c[end]] = rows[start], rows[end]
        return first, last
    u, i = np.unique(c, return_index=True)
    first[u] = rows[i]
    u, i = np.unique(c[::-1], return_index=True)
    last[u] = rows[::-1][i]
    return first, last


def _closed(clients: pd.DataFrame, ids) -> np.ndarray:
    """Whether each client's episode has ended (an ``end_date`` on its first row of ``clients``)."""
    _require(clients, "clients", ["client_id", "end_date"],
             "Pass the canonical clients table (supervision.load_caseload().clients).")
    return reindex_first(clients, "client_id", ids, ["end_date"])["end_date"].notna().to_numpy(dtype=bool)


def _with_intake(ss: pd.DataFrame, clients: pd.DataFrame, known: tuple | None = None) -> pd.DataFrame:
    """Session scores with ``intake`` (first measured score of the client) and ``closed``; ``known``: the
    table's (client codes, ids, closed per client) when already found."""
    if "intake" in ss.columns and "closed" in ss.columns:
        return ss
    codes, ids, closed = known if known is not None else (*_client_codes(ss), None)
    score = ss["score"].to_numpy(dtype=float)
    first, _ = _first_last(codes, len(ids), np.flatnonzero(~np.isnan(score)))
    intake = np.where(first >= 0, score[np.maximum(first, 0)], np.nan)
    closed = _closed(clients, ids) if closed is None else closed
    return ss.assign(intake=intake[codes], closed=closed[codes])


def client_outcomes(
    sessions: pd.DataFrame,
    *,
    instrument=None,
    clients: pd.DataFrame | None = None,
    settings=None,
    reliable_change: float | None = None,
    cutoff: float | None = None,
    sg_crit1_cutoff: float | None = None,
    sg_crit2_pct: float | None = FROM_RULES,
    sg_crit3: bool | None = None,
    sg_crit3_alpha: float | None = None,
    sg_crit3_adjust: bool | None = None,
    sg_crit3_critical_value: float | None = None,
    sg_reversal_start: int | None = None,
    rescale_reliable_change: bool | None = None,
    scores: pd.DataFrame | None = None,
    rules=None,
) -> pd.DataFrame:
    """Per client: first and latest score, change, Jacobson-Truax category, sudden gains and losses.

    Parameters
    ----------
    sessions : DataFrame
        The canonical ``sessions`` table. Not modified.
    instrument : str or Instrument, optional (default: the rules, ``[outcome]`` in defaults.toml)
        An outcome instrument with a reliable-change value (ORS, PHQ-9, GAD-7, CORE-10, or one
        from the settings).
    clients : DataFrame, optional
        The ``clients`` table, for ``open``, ``end_date``, ``end_reason``.
    settings : optional
        Settings holding user instruments.
    reliable_change, cutoff : float, optional
        Override the instrument's reliable-change value (points; a change of at least it is
        reliable, docs/methods.md §1.9: ORS 5 [V2], PHQ-9 6 [V2], GAD-7 4 [V2], CORE-10 6 at 90 %
        confidence [V]) and clinical cut-off (ORS 25, PHQ-9 10, GAD-7 8, CORE-10 11; a score equal
        to it is clinical per the spec's ``cutoff_inclusive``).
    sg_crit1_cutoff : float, optional
        Sudden-gain criterion 1; default the instrument's reliable-change value.
    rescale_reliable_change : bool, optional (default: the rules, ``[outcome]`` in defaults.toml)
        The published reliable-change values are not all at one confidence level: CORE-10's 6
        points is a **90 %** value (Barkham et al. 2013 [V], the instrument spec's
        ``reliable_change_confidence``), the others 95 %. False (default) uses each value as
        published and labels it (``reliable_change_confidence``); True rescales a value published
        at level c to 95 % two-sided: RC x 1.96 / z_{(1+c)/2} (CORE-10: 6 x 1.96 / 1.645 = 7.15),
        so "reliable" means the same in every row [U: assumes the published value is z x S_diff].
    sg_crit2_pct, sg_crit3, sg_crit3_alpha, sg_crit3_adjust, sg_crit3_critical_value, sg_reversal_start
        As in :func:`sudden_gains`.
    scores : DataFrame, optional
        The instrument's :func:`session_scores` of ``sessions`` (or its :func:`outcome_scores`
        table), computed when not given: pass it when several functions need the same scores.

    Returns
    -------
    DataFrame
        One row per client with an attended session, sorted by ``client_id``:

        - ``client_id``, ``clinician_id``, ``instrument`` (prefix)
        - ``n_sessions`` (attended), ``n_measured`` (with a score)
        - ``first_score``, ``first_session``, ``first_date``: the intake (first measured) score
        - ``latest_score``, ``latest_session``, ``latest_date``: the latest measured score (NaN /
          <NA> unless the client has two or more measured sessions)
        - ``change`` (latest - first), ``improvement`` (signed: positive = better)
        - ``reliable_improvement``, ``reliable_deterioration``, ``clinical_first``,
          ``functional_latest`` (nullable bool)
        - ``category``: ``recovered``, ``improved``, ``unchanged``, ``deteriorated``, ``harmed``
          (Jacobson & Truax 1991 categories with the instrument's reliable-change value and
          cut-off; see :func:`jacobson_truax`); <NA> with fewer than two measured sessions
        - ``n_sudden_gains``, ``n_sudden_losses``; ``first_gain_session`` (pregain session of the
          first gain), ``first_gain_magnitude``, ``gain_reversed`` (any gain reversed)
        - ``reliable_change`` (points used), ``reliable_change_confidence`` (the level it stands for:
          0.90 for CORE-10 as published, NaN when unknown, e.g. a value given by hand)
        - with ``clients``: ``open`` (no end date), ``end_date``, ``end_reason``, ``ended_worse``
          (bool: the episode ended with its latest score worse than intake, by any amount; read with
          ``reliable_deterioration`` for whether the change is beyond measurement error). The
          not-on-track view (:func:`track_status`) covers open episodes only, so a client who got
          worse and left is listed through this column rather than only counted.
    """
    r = _rules(rules, "client_outcomes()", locals())  # the rules, with the keywords given here on top
    sg_crit3, sg_crit3_alpha, sg_crit3_adjust = r.sg_crit3, r.sg_crit3_alpha, r.sg_crit3_adjust
    sg_crit3_critical_value, sg_reversal_start = r.sg_crit3_critical_value, r.sg_reversal_start
    rescale_reliable_change, instrument = r.rescale_reliable_change, r.instrument
    sg_crit2_pct = r.sg_crit2_pct if sg_crit2_pct is FROM_RULES else sg_crit2_pct  # None: criterion 2 off
    inst = _instrument(instrument, settings)
    rc = inst.reliable_change if reliable_change is None else reliable_change
    if rc is None:
        raise ValueError(f"{inst.prefix} has no reliable-change value; give reliable_change=... (points) or add "
                         f"reliable_change to [instruments.{inst.prefix}] in the settings.")
    _check_bool("rescale_reliable_change", rescale_reliable_change)
    rc_conf = inst.reliable_change_confidence if reliable_change is None else None
    if rescale_reliable_change and rc_conf is not None and abs(rc_conf - 0.95) > 1e-9:
        from scipy.stats import norm

        rc = float(rc) * float(norm.ppf(0.975)) / float(norm.ppf((1 + rc_conf) / 2))
        rc_conf = 0.95
    cut = inst.cutoff if cutoff is None else cutoff
    sg = _sg_options(float(rc) if sg_crit1_cutoff is None else sg_crit1_cutoff, sg_crit2_pct, sg_crit3,
                     sg_crit3_alpha, sg_crit3_adjust, sg_crit3_critical_value, inst.higher_is_better, "gains")
    if scores is None:
        ss = session_scores(sessions, instrument=inst)
    else:
        _require(scores, "scores", ["client_id", "clinician_id", "session_date", "session_number", "score"],
                 "Pass session_scores(sessions, instrument=...) or outcome_scores(...)[instrument].")
        ss = scores
    code, ids = _client_codes(ss)  # ss is sorted by client: codes follow the sorted ids
    k = len(ids)
    score = ss["score"].to_numpy(dtype=float)
    number = ss["session_number"].to_numpy(dtype=np.int64)
    dates = ss["session_date"].to_numpy()
    measured = np.flatnonzero(~np.isnan(score))
    n_meas = np.bincount(code[measured], minlength=k)
    first, last = _first_last(code, k, measured)
    has, two = first >= 0, n_meas >= 2
    fi, li = np.maximum(first, 0), np.maximum(last, 0)
    out = pd.DataFrame({"client_id": as_column(ids)})
    out["clinician_id"] = as_column(ss["clinician_id"].groupby(code, sort=True).first()) if k else \
        ss["clinician_id"].to_numpy()[:0]
    out["instrument"] = inst.prefix
    out["n_sessions"] = np.bincount(code, minlength=k).astype(np.int64)
    out["n_measured"] = n_meas.astype(np.int64)
    out["first_score"] = np.where(has, score[fi], np.nan)  # (k == 0 when there are no rows)
    out["first_session"] = pd.arrays.IntegerArray(np.where(has, number[fi], 0).astype(np.int64), ~has)
    out["first_date"] = pd.Series(dates[fi]).where(has).to_numpy()
    out["latest_score"] = np.where(two, score[li], np.nan)
    out["latest_session"] = pd.arrays.IntegerArray(np.where(two, number[li], 0).astype(np.int64), ~two)
    out["latest_date"] = pd.Series(dates[li]).where(two).to_numpy()
    jt = jacobson_truax(out[["first_score", "latest_score"]], pre="first_score", post="latest_score",
                        higher_is_better=inst.higher_is_better, reliable_change=float(rc),
                        cutoff=cut, cutoff_type=None, cutoff_inclusive=inst.cutoff_inclusive)
    out["change"] = jt["change"].to_numpy()
    out["improvement"] = jt["improvement"].to_numpy()
    out["reliable_improvement"] = jt["reliable_improvement"].array
    out["reliable_deterioration"] = jt["reliable_deterioration"].array
    out["clinical_first"] = jt["clinical_pre"].array
    out["functional_latest"] = jt["functional_post"].array
    out["category"] = jt["category"].array

    # sudden gains and losses (as sudden_gains / sudden_losses on the client's series), one matrix for both
    tmin = int(number.min()) if len(number) else 0
    width = int(number.max()) - tmin + 1 if len(number) else 0
    cell = code * width + (number - tmin)  # one per client and session, increasing when each is unique
    if len(number) and ss["session_number"].dtype.kind in "iu" and (np.diff(cell) > 0).all():
        x = np.full((k, width), np.nan)
        x[code, number - tmin] = score
    else:  # checked and laid out by the public path
        ids_m, x, tmin = _series_matrix(ss[["client_id", "session_number", "score"]], "client_id",
                                        "session_number", "score")
        x = x[pd.Index(ids_m).get_indexer(ids)] if len(ids_m) else np.zeros((k, 0))
    gains = _sudden_intervals(x, **sg)
    losses = _sudden_intervals(x, **{**sg, "s": -sg["s"]})
    g_code = gains["code"]
    out["n_sudden_gains"] = np.bincount(g_code, minlength=k).astype(np.int64)
    out["n_sudden_losses"] = np.bincount(losses["code"], minlength=k).astype(np.int64)
    _check_number("sg_reversal_start", sg_reversal_start, minimum=2, integer=True)
    det = _event_details(x, tmin, sg["s"], g_code, gains["col"], gains["pre"][:, 2], gains["post"][:, 0],
                         sg_reversal_start)
    g_first, _ = _first_last(g_code, k)  # events are in client, then pregain order
    got = g_first >= 0
    gi = np.maximum(g_first, 0)
    pregain = np.append(gains["col"] + tmin, 0)[np.where(got, gi, len(g_code))]
    out["first_gain_session"] = pd.arrays.IntegerArray(pregain.astype(np.int64), ~got)
    out["first_gain_magnitude"] = np.append(det["magnitude"], np.nan)[np.where(got, gi, len(g_code))]
    out["gain_reversed"] = np.bincount(g_code, weights=det["reversal"], minlength=k) > 0
    out["reliable_change"] = float(rc)
    out["reliable_change_confidence"] = np.nan if rc_conf is None else float(rc_conf)
    if clients is not None:
        _require(clients, "clients", ["client_id", "end_date"],
                 "Pass the canonical clients table (supervision.load_caseload().clients).")
        c = reindex_first(clients, "client_id", ids,
                          [col for col in ("end_date", "end_reason") if col in clients.columns])
        out["open"] = c["end_date"].isna().to_numpy()
        out["end_date"] = c["end_date"].to_numpy()
        out["end_reason"] = (as_column(c["end_reason"]) if "end_reason" in c.columns
                             else pd.array([pd.NA] * len(out), dtype="str"))
        # ended while worse than at intake: the track view judges open episodes only, so these are listed here
        worse = ~out["open"].to_numpy() & (np.nan_to_num(out["improvement"].to_numpy(dtype=float), nan=0.0) < -_EPS)
        out["ended_worse"] = worse
    return out.reset_index(drop=True)


def clinician_outcomes(client_outcomes: pd.DataFrame, *, confidence: float | None = None,
                       closed_only: bool = False, rules=None) -> pd.DataFrame:
    """Jacobson-Truax category rates per clinician and for the whole service, with Wilson intervals.

    Parameters
    ----------
    client_outcomes : DataFrame
        Output of :func:`client_outcomes`. Not modified.
    confidence : float, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Level of the Wilson intervals (Wilson 1927; Newcombe 1998; docs/methods.md §3.1 [V]).
    closed_only : bool, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Count only ended episodes (needs ``open``, i.e. ``client_outcomes(..., clients=...)``).

    Returns
    -------
    DataFrame
        One row per clinician (``scope`` = clinician id, sorted) and a last row ``scope ==
        "service"``. Columns: ``n`` (clients with a category: two or more measured sessions),
        and for each of ``recovered``, ``improved``, ``unchanged``, ``deteriorated``, ``harmed``
        and ``reliably_improved`` (recovered or improved): ``n_<c>``, ``<c>_rate``, ``<c>_lower``,
        ``<c>_upper``; then ``mean_improvement`` and ``median_improvement`` (points, positive =
        better) and ``n_sudden_gains`` (clients with at least one); ``reliable_change_confidence``
        (the level of the reliable-change value behind the rates, e.g. 0.90 for CORE-10; NaN if
        mixed or unknown) when the client table has it.
    """
    confidence = _rules(rules, "clinician_outcomes()", locals()).confidence
    _require(client_outcomes, "client_outcomes", ["clinician_id", "category", "improvement", "n_sudden_gains"],
             "Pass the output of client_outcomes(sessions, ...).")
    _check_bool("closed_only", closed_only)
    co = client_outcomes
    if closed_only:
        _require(co, "client_outcomes", ["open"], "Compute client_outcomes(..., clients=clients) for closed_only.")
        co = co[~co["open"].astype(bool)]
    cat = co["category"].astype("str")
    has = cat.notna().to_numpy()
    scopes = sorted(pd.unique(co["clinician_id"].dropna()).tolist())
    index = pd.Index([*scopes, "service"], name="scope")
    k = len(scopes)
    code = positions_in(index[:-1], co["clinician_id"])  # -1: no clinician (counted for the service)
    flags = {c: (cat == c).fillna(False).to_numpy(dtype=bool) for c in JT_CATEGORIES}
    flags["reliably_improved"] = flags["recovered"] | flags["improved"]
    out = _rates(index, code, flags, has, confidence)
    imp = co["improvement"].to_numpy(dtype=float)
    # each client once under its clinician and once under the service (k), as one grouped pass
    mine = has & (code >= 0)
    grouped = pd.Series(np.concatenate([imp[mine], imp[has]])).groupby(
        np.concatenate([code[mine], np.full(int(has.sum()), k)]))
    out["mean_improvement"] = grouped.mean().reindex(range(k + 1)).to_numpy()
    out["median_improvement"] = grouped.median().reindex(range(k + 1)).to_numpy()
    g = co["n_sudden_gains"].to_numpy() > 0
    out["n_sudden_gains"] = np.append(np.bincount(code[code >= 0], weights=g[code >= 0], minlength=k),
                                      g.sum()).astype(int)
    if "reliable_change_confidence" in co.columns:  # the level "reliable" stands for (CORE-10: 0.90)
        levels = pd.unique(co["reliable_change_confidence"].dropna())
        out["reliable_change_confidence"] = float(levels[0]) if len(levels) == 1 else np.nan
    return out.reset_index()


# --------------------------------------------------------------------------------------------
# expected treatment response and not-on-track
# --------------------------------------------------------------------------------------------

def _intake_table(sessions, clients, inst, scores=None):
    ss = session_scores(sessions, instrument=inst) if scores is None else scores
    return _with_intake(ss, clients)


def _band_edges(intakes: np.ndarray, bands: int) -> np.ndarray:
    if intakes.size == 0:
        return np.zeros(0)
    qs = np.quantile(intakes, np.arange(1, bands) / bands) if bands > 1 else np.zeros(0)
    return np.unique(qs)


def expected_trajectories(
    sessions: pd.DataFrame,
    *,
    clients: pd.DataFrame,
    instrument=None,
    settings=None,
    intake_bands: int | None = None,
    min_reference: int | None = None,
    percentiles: Sequence[float] | None = None,
    pool_later_sessions: bool | None = None,
    scores: pd.DataFrame | None = None,
    rules=None,
) -> pd.DataFrame:
    """Expected treatment response from the service's own closed episodes, by intake band.

    The model (docs/methods.md §2.4; a nonparametric, data-driven stand-in for the mixed-model
    recovery curves of Finch, Lambert & Schaalje 2001 [V abstract] - the OQ and PCOMS equations are
    proprietary and not replicated [U]):

    1. Reference episodes: closed episodes (an ``end_date``) with an intake score (the first
       measured attended session) and at least one later measured session.
    2. Intake bands: the reference intakes are cut at their quantiles into ``intake_bands``
       groups of about equal size (ties merge bands), so "clients with a similar intake score".
    3. For each band and attended-session number k >= 2: the percentiles of the improvement from
       intake (score at k - intake, signed so that positive = better) among the band's reference
       episodes measured at session k.
    4. Long episodes (``pool_later_sessions``, default): a band-session with fewer than
       ``min_reference`` episodes measured exactly at session k pools the later sessions. The pool
       is every reference measurement at sessions >= ``pooled_from`` = min(k, J), where J is the
       last session at which at least ``min_reference`` of the band's episodes were still measured
       (at J or later); each episode contributes once, with its measurement nearest to k (ties:
       the later one). So beyond J the band is "similar clients measured from session J on",
       which assumes the improvement curve has flattened by then: outcome trajectories are
       negatively accelerated, roughly linear in log(session) (Finch, Lambert & Schaalje 2001;
       Howard et al. 1986 [V]; the flat tail is [U]). ``n_reference`` then counts the pooled
       episodes and ``pooled_from`` / ``pooled_to`` show the sessions they came from.
    5. A band-session still short of ``min_reference`` episodes has no percentiles
       (``enough`` False): "not enough reference data", never an invented band.

    A client's expected score at session k is their own intake plus these improvement
    percentiles (see :func:`track_status`).

    Parameters
    ----------
    sessions, clients : DataFrame
        The canonical tables. Not modified.
    instrument : str or Instrument, optional (default: the rules, ``[outcome]`` in defaults.toml)
    settings : optional
        Settings holding user instruments.
    intake_bands : int, optional (default: the rules, ``[outcome]`` in defaults.toml)
    min_reference : int, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Minimum reference episodes per band and session [U: design choice; with 20, the 10th
        percentile rests on 2 episodes below it].
    percentiles : sequence of float, optional (default: the rules, ``[outcome]`` in defaults.toml)
    pool_later_sessions : bool, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Pool later sessions for band-sessions with too few episodes (point 4). False: the first
        wave's rule, under which every band ran out of reference episodes by about session 10.
    scores : DataFrame, optional
        The instrument's :func:`outcome_scores` table (or its :func:`session_scores`), computed
        from ``sessions`` when not given.

    Returns
    -------
    DataFrame
        One row per intake band and session number (2 .. the last measured session of any
        client when pooling, else of a reference episode), sorted: ``band`` (0 holds the lowest
        intake scores), ``band_from``,
        ``band_to`` (the band is intake >= band_from and < band_to; -inf / inf at the ends),
        ``band_low``, ``band_high`` (the band's lowest / highest reference intake),
        ``session_number``, ``n_reference``, ``enough`` (bool), ``pooled`` (bool: the later
        sessions were pooled), ``pooled_from``, ``pooled_to`` (the sessions of the reference
        measurements used; both equal ``session_number`` when not pooled), and
        ``p<XX>`` (improvement percentiles in points; NaN when not enough). ``attrs`` holds
        ``edges`` (the cut points), ``instrument``, ``min_reference``, ``percentiles``,
        ``n_reference_episodes``.
    """
    r = _rules(rules, "expected_trajectories()", locals())  # the rules, with the keywords given here on top
    intake_bands, min_reference, percentiles = r.intake_bands, r.min_reference, r.percentiles
    pool_later_sessions, instrument = r.pool_later_sessions, r.instrument
    inst = _instrument(instrument, settings)
    _check_number("intake_bands", intake_bands, minimum=1, integer=True)
    _check_number("min_reference", min_reference, minimum=1, integer=True)
    _check_bool("pool_later_sessions", pool_later_sessions)
    pcts = [float(p) for p in percentiles]
    for p in pcts:
        _check_number("percentiles", p, minimum=0, maximum=100)
    ss = _intake_table(sessions, clients, inst, scores)
    code, ids = _client_codes(ss)
    score = ss["score"].to_numpy(dtype=float)
    intake = ss["intake"].to_numpy(dtype=float)
    number = ss["session_number"].to_numpy(dtype=np.int64)
    sel = ss["closed"].to_numpy(dtype=bool) & ~np.isnan(score) & ~np.isnan(intake)
    n_meas = np.bincount(code[sel], minlength=len(ids))
    sel &= n_meas[code] >= 2
    first, _ = _first_last(code, len(ids), np.flatnonzero(sel))
    ref_clients = np.flatnonzero(first >= 0)  # reference episodes
    intakes = intake[first[ref_clients]]
    edges = _band_edges(intakes, int(intake_bands))
    band_of = np.zeros(len(ids), dtype=np.int64)
    band_of[ref_clients] = np.searchsorted(edges, intakes, side="right")
    rows = np.flatnonzero(sel & (number >= 2))
    ref = pd.DataFrame({"band": band_of[code[rows]], "session_number": number[rows],
                        "improvement": inst.direction * (score[rows] - intake[rows]), "episode": code[rows]})
    n_bands = len(edges) + 1
    max_k = int(ref["session_number"].max()) if len(ref) else 1
    if pool_later_sessions and len(ref):  # cover every open client's session too
        measured_k = number[~np.isnan(score)]
        max_k = max(max_k, int(measured_k.max()) if len(measured_k) else 1)
    grid = pd.MultiIndex.from_product([range(n_bands), range(2, max_k + 1)], names=["band", "session_number"])
    grp = ref.groupby(["band", "session_number"])["improvement"]
    out = pd.DataFrame(index=grid)
    out["n_reference"] = grp.size().reindex(grid, fill_value=0).astype(int)
    out["enough"] = out["n_reference"] >= int(min_reference)
    out["pooled"] = False
    kk = grid.get_level_values("session_number").to_numpy()
    out["pooled_from"] = kk
    out["pooled_to"] = kk
    qs = list(dict.fromkeys(p / 100.0 for p in pcts))
    quantiles = grp.quantile(qs) if len(ref) and qs else None  # every percentile in one grouped pass
    for p in pcts:
        q = quantiles.xs(p / 100.0, level=-1).reindex(grid) if quantiles is not None else pd.Series(np.nan, index=grid)
        out[f"p{p:g}"] = q.where(out["enough"]).to_numpy(dtype=float)
    if pool_later_sessions and len(ref):
        _pool_later(out, ref, int(min_reference), pcts)
    out = out.reset_index()
    by_band = pd.Series(intakes).groupby(band_of[ref_clients])
    lo, hi = by_band.min(), by_band.max()
    cuts = np.concatenate([[-np.inf], edges, [np.inf]])
    b = out["band"].to_numpy(dtype=int)
    out.insert(1, "band_from", cuts[b])
    out.insert(2, "band_to", cuts[b + 1])
    out.insert(3, "band_low", out["band"].map(lo).to_numpy(dtype=float))
    out.insert(4, "band_high", out["band"].map(hi).to_numpy(dtype=float))
    out.attrs.update({"edges": edges.tolist(), "instrument": inst.prefix, "min_reference": int(min_reference),
                      "percentiles": pcts, "n_reference_episodes": int(len(intakes))})
    return out


def _pool_later(out: pd.DataFrame, ref: pd.DataFrame, min_reference: int, pcts: list[float]) -> None:
    """Fill the band-sessions short of ``min_reference`` episodes from the pooled later sessions (in place).

    See :func:`expected_trajectories`, point 4: pool = measurements at sessions >= min(k, J), one per
    episode (nearest to k, ties to the later), J = the band's last session with ``min_reference``
    episodes measured at or after it.
    """
    short = ~out["enough"].to_numpy(dtype=bool)
    if not short.any():
        return
    # filled as arrays and written back once (a cell write per row was most of the model's time)
    cols = {c: out[c].to_numpy(copy=True) for c in ("n_reference", "enough", "pooled", "pooled_from", "pooled_to")}
    pc = {p: out[f"p{p:g}"].to_numpy(dtype=float, copy=True) for p in pcts}
    bands = out.index.get_level_values("band")
    sessions = out.index.get_level_values(1)
    for b, part in ref.groupby("band", sort=True):
        last = part.groupby("episode")["session_number"].max().to_numpy()
        ks = np.sort(last)[::-1]
        if len(ks) < min_reference:
            continue  # fewer episodes than needed in the whole band: nothing to pool
        J = int(ks[min_reference - 1])  # at least min_reference episodes measured at J or later
        sn = part["session_number"].to_numpy(dtype=np.int64)
        ep = part["episode"].to_numpy()
        imp = part["improvement"].to_numpy(dtype=float)
        top = int(sn.max())
        rows = np.flatnonzero((bands == b) & short)
        picked: dict[int, np.ndarray] = {}  # beyond the band's last session every k has the same pool
        for r in rows:
            k = min(int(sessions[r]), top)
            if k not in picked:
                sel = np.flatnonzero(sn >= min(k, J))
                # one measurement per episode: the nearest to k, ties to the later session
                order = np.lexsort((-sn[sel], np.abs(sn[sel] - k), ep[sel]))
                picked[k] = sel[order][np.r_[True, ep[sel][order][1:] != ep[sel][order][:-1]]]
            pick = picked[k]
            if len(pick) < min_reference:
                continue
            cols["n_reference"][r] = len(pick)
            cols["enough"][r] = True
            cols["pooled"][r] = True
            cols["pooled_from"][r] = int(sn[pick].min())
            cols["pooled_to"][r] = int(sn[pick].max())
            vals = np.percentile(imp[pick], pcts)  # linear interpolation, as pandas' quantile
            for p, v in zip(pcts, vals):
                pc[p][r] = float(v)
    for c, v in cols.items():
        out[c] = v
    for p, v in pc.items():
        out[f"p{p:g}"] = v


def track_status(
    sessions: pd.DataFrame,
    *,
    clients: pd.DataFrame,
    instrument=None,
    settings=None,
    reference: pd.DataFrame | None = None,
    intake_bands: int | None = None,
    min_reference: int | None = None,
    percentiles: Sequence[float] | None = None,
    pool_later_sessions: bool | None = None,
    failure_percentile: float | None = None,
    risk_percentile: float | None = None,
    reliable_change: float | None = None,
    open_only: bool = True,
    per_session: bool = False,
    scores: pd.DataFrame | None = None,
    rules=None,
) -> pd.DataFrame:
    """On track, at risk or not on track, against the expected treatment response.

    At the client's latest measured session k (docs/methods.md §2.4; Lambert / Finch et al. 2001
    tolerance bands [V abstract]; thresholds [U] design choices, settings ``[outcome]``):

    - ``not_on_track``: reliable deterioration (worse than intake by at least the instrument's
      reliable-change value: ORS 5, PHQ-9 6, ... [V2]) - decided even without reference data - or
      an improvement strictly below the ``failure_percentile`` (10th) of the reference clients with
      a similar intake at session k (below the failure band);
    - ``at_risk``: below the ``risk_percentile`` (25th) but not below the failure band;
    - ``on_track``: otherwise;
    - ``not_enough_reference_data``: fewer than ``min_reference`` reference episodes for the
      client's intake band at session k (no band is invented);
    - ``too_early``: only the intake is measured; ``not_measured``: no score at all.

    Parameters
    ----------
    sessions, clients : DataFrame
        The canonical tables. Not modified.
    instrument : str or Instrument, optional (default: the rules, ``[outcome]`` in defaults.toml)
    settings : optional
        Settings holding user instruments.
    reference : DataFrame, optional
        Output of :func:`expected_trajectories` (computed from these tables with the options
        below when not given).
    intake_bands, min_reference, percentiles, pool_later_sessions
        As in :func:`expected_trajectories`.
    failure_percentile, risk_percentile : float, default 10 and 25
        Must be among ``percentiles``.
    reliable_change : float, optional
        Override of the instrument's reliable-change value.
    open_only : bool, default True
        Only open episodes (closed ones are the reference).
    per_session : bool, default False
        One row per measured session instead of per client (for the trajectory figure).
    scores : DataFrame, optional
        The instrument's :func:`outcome_scores` table (or its :func:`session_scores`), computed
        from ``sessions`` when not given; also used for ``reference`` when that is not given.

    Returns
    -------
    DataFrame
        One row per client (sorted by ``client_id``) with ``client_id``, ``clinician_id``,
        ``open``, ``intake_score``, ``band``, ``session_number`` (the latest measured session),
        ``score``, ``improvement`` (signed, positive = better), ``n_reference``,
        ``expected_median`` (score), ``expected_risk``, ``expected_failure`` (scores at the risk
        and failure percentiles: below them = at risk / not on track), ``expected_p<XX>`` (scores at
        every percentile of improvement; for a lower-is-better scale the 10th percentile is the
        *highest* score), ``reliable_deterioration`` (nullable bool), ``status`` and ``reason``
        (plain words). With ``per_session=True``: the same columns for every measured session
        plus ``session_date``.
    """
    r = _rules(rules, "track_status()", locals())  # the rules, with the keywords given here on top
    intake_bands, min_reference, percentiles = r.intake_bands, r.min_reference, r.percentiles
    pool_later_sessions, failure_percentile = r.pool_later_sessions, r.failure_percentile
    risk_percentile, instrument = r.risk_percentile, r.instrument
    inst = _instrument(instrument, settings)
    _check_bool("open_only", open_only)
    _check_bool("per_session", per_session)
    pcts = [float(p) for p in percentiles]
    for name, p in (("failure_percentile", failure_percentile), ("risk_percentile", risk_percentile)):
        _check_number(name, p, minimum=0, maximum=100)
        if float(p) not in pcts:
            raise ValueError(f"{name} ({p!r}) must be one of percentiles {pcts}.")
    if float(failure_percentile) > float(risk_percentile):
        raise ValueError(f"failure_percentile ({failure_percentile!r}) must not exceed risk_percentile "
                         f"({risk_percentile!r}).")
    rc = inst.reliable_change if reliable_change is None else reliable_change
    if rc is None:
        raise ValueError(f"{inst.prefix} has no reliable-change value; give reliable_change=... (points).")
    ss = _intake_table(sessions, clients, inst, scores)
    if reference is None:
        reference = expected_trajectories(sessions, clients=clients, instrument=inst, intake_bands=intake_bands,
                                          min_reference=min_reference, percentiles=pcts,
                                          pool_later_sessions=pool_later_sessions, scores=ss)
    _require(reference, "reference", ["band", "band_from", "session_number", "n_reference", "enough"],
             "Pass the output of expected_trajectories(...).")
    missing = [f"p{p:g}" for p in pcts if f"p{p:g}" not in reference.columns]
    if missing:
        raise ValueError(f"reference has no column {', '.join(missing)}; compute it with the same percentiles.")
    froms = reference["band_from"].to_numpy(dtype=float)
    edges = np.unique(froms[np.isfinite(froms)])

    code, ids = _client_codes(ss)
    closed = ss["closed"].to_numpy(dtype=bool)
    keep = ~closed if open_only else np.ones(len(ss), bool)
    score_all = ss["score"].to_numpy(dtype=float)
    number = ss["session_number"].to_numpy(dtype=np.int64)
    meas = np.flatnonzero(keep & ~np.isnan(score_all))
    if per_session:
        rows = meas
    else:
        _, last = _first_last(code, len(ids), meas)
        rows = last[last >= 0]
    intake = ss["intake"].to_numpy(dtype=float)[rows]
    band = np.searchsorted(edges, intake, side="right")
    k = number[rows]
    # the reference row of each (band, session number); -1 = none
    at = reference.set_index(["band", "session_number"]).index.get_indexer(pd.MultiIndex.from_arrays([band, k]))

    def matched(values: np.ndarray, fill) -> np.ndarray:
        return np.append(values, fill)[np.where(at >= 0, at, len(values))]

    n_ref = matched(reference["n_reference"].fillna(0).to_numpy(dtype=int), 0)
    enough = matched(reference["enough"].astype("boolean").fillna(False).to_numpy(dtype=bool), False)
    score = score_all[rows]
    first_k = np.full(len(ids), np.iinfo(np.int64).max)
    np.minimum.at(first_k, code[meas], number[meas])
    first_k = first_k[code[rows]]
    improvement = inst.direction * (score - intake)
    later = k > first_k
    out = pd.DataFrame({"client_id": take_values(ss["client_id"], rows),
                        "clinician_id": take_values(ss["clinician_id"], rows),
                        "open": ~closed[rows], "intake_score": intake, "band": band, "session_number": k})
    if per_session:
        out["session_date"] = ss["session_date"].to_numpy()[rows]
    out["score"] = score
    out["improvement"] = improvement
    out["n_reference"] = n_ref
    quantile = {p: matched(reference[f"p{p:g}"].to_numpy(dtype=float), np.nan) for p in pcts}
    for p in pcts:
        out[f"expected_p{p:g}"] = intake + inst.direction * quantile[p]
    mid = 50.0 if 50.0 in pcts else pcts[len(pcts) // 2]
    out["expected_median"] = out[f"expected_p{mid:g}"]
    out["expected_risk"] = out[f"expected_p{float(risk_percentile):g}"]
    out["expected_failure"] = out[f"expected_p{float(failure_percentile):g}"]
    fail_q = quantile[float(failure_percentile)]
    risk_q = quantile[float(risk_percentile)]
    with np.errstate(invalid="ignore"):
        rd = later & (improvement <= -float(rc) + _EPS)
        below_fail = later & enough & (improvement < fail_q - _EPS)
        below_risk = later & enough & (improvement < risk_q - _EPS)
    out["reliable_deterioration"] = _nbool(rd, later)
    rule = np.select([~later, rd, later & ~enough, below_fail, below_risk], [0, 1, 2, 3, 4], default=5)
    status = ["too_early", "not_on_track", "not_enough_reference_data", "not_on_track", "at_risk", "on_track"]
    reason = ["only the intake score so far",
              f"reliable deterioration: worse than intake by {float(rc):g} points or more",
              f"not enough reference data: fewer than {reference.attrs.get('min_reference', min_reference)} closed "
              "episodes with a similar intake were measured at this session",
              f"below the failure band: less improvement than {float(failure_percentile):g} % of similar closed "
              "episodes",
              f"below the {float(risk_percentile):g}th percentile of similar closed episodes",
              "within the expected range"]
    out["status"] = pd.array(status, dtype="str").take(rule)  # the text is written once per rule
    out["reason"] = pd.array(reason, dtype="str").take(rule)
    if not per_session:
        # clients without any measured score (the sort below puts them in place)
        kept_first, _ = _first_last(code, len(ids), np.flatnonzero(keep))
        kept_first[np.unique(code[meas])] = -1
        absent = kept_first[kept_first >= 0]
        if len(absent):
            extra = pd.DataFrame({"client_id": take_values(ss["client_id"], absent),
                                  "clinician_id": take_values(ss["clinician_id"], absent), "open": ~closed[absent]})
            extra["status"] = "not_measured"
            extra["reason"] = f"no {inst.prefix} score recorded"
            out = pd.concat([out, extra], ignore_index=True)
            out["status"] = out["status"].astype("str")
            out["reason"] = out["reason"].astype("str")
            out["band"] = out["band"].astype("Int64")
            out["session_number"] = out["session_number"].astype("Int64")
            out["n_reference"] = out["n_reference"].fillna(0).astype(int)
        out = out.sort_values("client_id", kind="stable")
    out.attrs.update({"instrument": inst.prefix, "reliable_change": float(rc)})
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# severity-adjusted clinician effects with empirical-Bayes shrinkage
# --------------------------------------------------------------------------------------------

def clinician_effects(
    client_outcomes: pd.DataFrame,
    *,
    min_cases: int | None = None,
    confidence: float | None = None,
    closed_only: bool | None = None,
    clinical_only: bool = True,
    tau2_uncertainty: bool | None = None,
    rules=None,
) -> pd.DataFrame:
    """Severity-adjusted effectiveness per clinician: residualised change, shrunken by empirical Bayes.

    Method (docs/methods.md §2.6): over the service's cases (clinical range at intake, two or more
    measured sessions, closed episodes by default), regress the latest score on the intake score
    by ordinary least squares; a case's residual (observed - predicted, signed so that positive
    = better than expected for its intake) is its severity-adjusted change (residualised change;
    Saxon, Firth & Barkham 2017 used model residuals to identify more and less effective
    therapists [V abstract]; Wampold & Brown 2005 [V abstract]). A clinician's raw effect is the
    mean residual of their cases, with sampling variance sigma^2 / n_j (sigma^2 the pooled
    within-clinician residual variance). These are shrunk towards the service mean by
    normal-normal empirical Bayes (:func:`supervision.metrics.stats.normal_shrinkage`,
    DerSimonian-Laird tau^2; shrinkage factor tau^2 / (tau^2 + sigma^2 / n_j) [U standard]), the
    recommended alternative to ranking raw means (caterpillar plot). ``effect_size`` divides by
    the SD of the intake scores (severity-adjusted effect size, Brown et al. 2005 / OpenFIT
    [V2/V]).

    Parameters
    ----------
    client_outcomes : DataFrame
        Output of :func:`client_outcomes` (with ``clients=...`` when ``closed_only``). Not modified.
    min_cases : int, optional (default: the rules, ``[outcome]`` in defaults.toml)
        No estimate for a clinician with fewer cases (they still inform the service model).
    confidence : float, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Level of the posterior interval.
    closed_only : bool, optional (default: the rules, ``[outcome]`` in defaults.toml)
        Only ended episodes (the latest score is then the end score).
    clinical_only : bool, default True
        Only cases in the clinical range at intake.
    tau2_uncertainty : bool, optional (default: the rules, ``[outcome]`` in defaults.toml)
        The between-clinician variance tau^2 is estimated, not known. True: each interval is the
        union of the posterior intervals over the Q-profile ``confidence`` interval of tau^2
        (Viechtbauer 2007 [U]; :func:`supervision.metrics.stats.tau2_qprofile`), so an estimate
        of tau^2 = 0 (every clinician pulled to the service mean) does not give falsely narrow
        intervals; and Cochran's Q test says whether any clinician differs beyond chance. False:
        tau^2 treated as known (the first wave's intervals).

    Returns
    -------
    DataFrame
        One row per clinician (sorted by ``clinician_id``): ``clinician_id``, ``n_cases``,
        ``estimated`` (bool: ``n_cases >= min_cases``), ``mean_residual`` (raw, points),
        ``shrinkage`` (weight of the clinician's own data, 0-1), ``effect`` (shrunken, points;
        positive = better than the service expects), ``effect_lower``, ``effect_upper``
        (``confidence`` interval), ``effect_size`` (effect / SD of intake), ``differs`` (nullable
        bool: the interval excludes 0, the result the service model expects for the intake), ``note``. The estimate columns are NaN
        when not ``estimated``. When Cochran's Q test finds no heterogeneity (p >= 1 -
        ``confidence``), every estimated clinician's ``note`` says so in plain words: "no clinician
        differs from the service beyond chance". ``attrs``: ``intercept``, ``slope``, ``sigma2``,
        ``tau2``, ``tau2_lower``, ``tau2_upper``, ``heterogeneity_q``, ``heterogeneity_p``,
        ``no_difference`` (bool), ``mu``, ``n_cases`` (service), ``sd_intake``, ``min_cases``,
        ``confidence``.
    """
    r = _rules(rules, "clinician_effects()", {"min_cases": min_cases, "effect_confidence": confidence,  # settings' names
                                              "effect_closed_only": closed_only, "effect_tau2_uncertainty": tau2_uncertainty})
    min_cases, confidence, closed_only = r.min_cases, r.effect_confidence, r.effect_closed_only
    tau2_uncertainty = r.effect_tau2_uncertainty
    _require(client_outcomes, "client_outcomes", ["clinician_id", "first_score", "latest_score", "clinical_first"],
             "Pass the output of client_outcomes(sessions, clients=clients).")
    _check_number("min_cases", min_cases, minimum=1, integer=True)
    _check_number("confidence", confidence, minimum=0, maximum=1, strict=True)
    _check_bool("closed_only", closed_only)
    _check_bool("clinical_only", clinical_only)
    _check_bool("tau2_uncertainty", tau2_uncertainty)
    co = client_outcomes
    use = co["latest_score"].notna().to_numpy() & co["first_score"].notna().to_numpy()
    if clinical_only:
        use &= co["clinical_first"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    if closed_only:
        _require(co, "client_outcomes", ["open"], "Compute client_outcomes(..., clients=clients) for closed_only.")
        use &= ~co["open"].astype(bool).to_numpy()
    # direction of "better" from the outcome table itself: improvement = direction * change
    direction = 1.0
    if "improvement" in co.columns and "change" in co.columns:
        ch = co["change"].to_numpy(dtype=float)
        im = co["improvement"].to_numpy(dtype=float)
        nz = ~np.isnan(ch) & (np.abs(ch) > _EPS)
        if nz.any():
            direction = float(np.sign(im[nz][0] / ch[nz][0]))
    d = co.loc[use, ["clinician_id", "first_score", "latest_score"]]
    x = d["first_score"].to_numpy(dtype=float)
    y = d["latest_score"].to_numpy(dtype=float)
    scopes = sorted(pd.unique(co["clinician_id"].dropna()).tolist())
    out = pd.DataFrame({"clinician_id": scopes})
    n_j = d.groupby("clinician_id").size().reindex(scopes, fill_value=0).to_numpy(dtype=int)
    out["n_cases"] = n_j
    out["estimated"] = n_j >= int(min_cases)
    attrs = {"min_cases": int(min_cases), "confidence": float(confidence), "n_cases": int(len(d))}
    if len(d) >= 3 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        resid = direction * (y - (intercept + slope * x))
        r = pd.Series(resid, index=d.index)
        g = r.groupby(d["clinician_id"].to_numpy())
        mean_j = g.mean().reindex(scopes).to_numpy(dtype=float)
        # within-clinician sum of squared deviations from the clinician's mean, all clinicians at once
        ss_within = ((r - g.transform("mean")) ** 2).groupby(d["clinician_id"].to_numpy()).sum()
        ss_within = ss_within.reindex(scopes).fillna(0).sum()
        k_used = int((n_j > 0).sum())
        dof = len(d) - k_used
        sigma2 = float(ss_within / dof) if dof > 0 else float(np.var(resid, ddof=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            var_j = np.where(n_j > 0, sigma2 / np.maximum(n_j, 1), np.nan)
        eb = normal_shrinkage(mean_j, var_j, confidence=float(confidence))
        tau2 = eb["tau2"]
        lower, upper = eb["lower"], eb["upper"]
        qp = tau2_qprofile(mean_j, var_j, confidence=float(confidence))
        if tau2_uncertainty:  # the union of the intervals over the plausible tau^2
            grid = np.unique(np.r_[np.linspace(qp["lower"], qp["upper"], 21), tau2])
            for t2 in grid:
                alt = normal_shrinkage(mean_j, var_j, confidence=float(confidence), tau2=float(t2))
                lower, upper = np.fmin(lower, alt["lower"]), np.fmax(upper, alt["upper"])
        sd_intake = float(np.std(x, ddof=1))
        est = out["estimated"].to_numpy()
        out["mean_residual"] = np.where(est, mean_j, np.nan)
        out["shrinkage"] = np.where(est, eb["shrinkage"], np.nan)
        out["effect"] = np.where(est, eb["posterior"], np.nan)
        out["effect_lower"] = np.where(est, lower, np.nan)
        out["effect_upper"] = np.where(est, upper, np.nan)
        out["effect_size"] = out["effect"] / sd_intake if sd_intake > 0 else np.nan
        no_difference = bool(qp["p"] >= 1.0 - float(confidence)) if np.isfinite(qp["p"]) else True
        attrs.update({"intercept": float(intercept), "slope": float(slope), "sigma2": sigma2, "tau2": float(tau2),
                      "tau2_lower": qp["lower"], "tau2_upper": qp["upper"], "heterogeneity_q": qp["q"],
                      "heterogeneity_p": qp["p"], "no_difference": no_difference,
                      "mu": float(eb["mu"]), "sd_intake": sd_intake})
    else:
        for c in ("mean_residual", "shrinkage", "effect", "effect_lower", "effect_upper", "effect_size"):
            out[c] = np.nan
        out["estimated"] = False
        attrs.update({"intercept": np.nan, "slope": np.nan, "sigma2": np.nan, "tau2": np.nan, "mu": np.nan,
                      "sd_intake": np.nan, "tau2_lower": np.nan, "tau2_upper": np.nan, "heterogeneity_q": np.nan,
                      "heterogeneity_p": np.nan, "no_difference": True})
    est_b = out["estimated"].to_numpy(dtype=bool)
    with np.errstate(invalid="ignore"):
        differs = (out["effect_lower"].to_numpy(dtype=float) > 0) | (out["effect_upper"].to_numpy(dtype=float) < 0)
    out["differs"] = pd.arrays.BooleanArray(differs & est_b, ~est_b)
    est_text = "estimated"
    if attrs["no_difference"] and np.isfinite(attrs.get("heterogeneity_p", np.nan)):
        est_text = (f"estimated; no clinician differs from the service beyond chance (Cochran's Q p = "
                    f"{attrs['heterogeneity_p']:.2f}; between-clinician variance {attrs['tau2']:.2g})")
    note = np.where(est_b, est_text, f"fewer than {int(min_cases)} clinical-range cases: no estimate")
    if len(d) < 3:
        note = np.full(len(out), "not enough cases in the service for a severity adjustment")
    out["note"] = pd.array(note.astype(str) if len(out) else [], dtype="str")
    out.attrs.update(attrs)
    return out


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------

#: Settings keys that carry another keyword name in one function.
_RENAMES: dict[str, dict[str, str]] = {
    "clinician_effects": {"effect_confidence": "confidence", "effect_closed_only": "closed_only",
                          "effect_tau2_uncertainty": "tau2_uncertainty"},
}


def outcome_options(settings=None, function: Callable | None = None) -> dict:
    """Keyword arguments for the outcome metrics from the ``[outcome]`` settings.

    Parameters
    ----------
    settings : Settings, dict, path or None
        Anything :func:`supervision.config.load_settings` accepts (None = the defaults).
    function : callable, optional
        Keep only the options this function accepts, e.g.
        ``track_status(s, clients=c, **outcome_options(settings, track_status))``. Settings
        ``effect_confidence`` and ``effect_closed_only`` become ``confidence`` and ``closed_only``
        of :func:`clinician_effects`.

    Returns
    -------
    dict
        ``{keyword: value}`` (lists become tuples).
    """
    renames = _RENAMES.get(getattr(function, "__name__", ""), {})
    values = OutcomeRules.from_settings(settings).kwargs()
    values = {**{k: v for k, v in values.items() if k not in renames and k not in renames.values()},
              **{renames[k]: v for k, v in values.items() if k in renames}}
    if function is None:
        return values
    import inspect

    accepted = inspect.signature(function).parameters
    return {k: v for k, v in values.items() if k in accepted}
