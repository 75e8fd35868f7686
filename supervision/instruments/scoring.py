"""Scoring: item scores -> totals and subscales, with each instrument's missing-item rule.

Pure (house style, ../shared/DESIGN.md §6): a sessions table in, a new table out, the input
never modified. The loader calls :func:`score_sessions` on the canonical sessions, so every
:class:`~supervision.caseload.Caseload` carries totals whether the export gave items or totals.

Missing-item rules (the ``max_missing`` and ``missing_rule`` keys of ``instruments.toml``; sources
and certainty as in docs/methods.md §1):

========  ===========  =========================================================================
prefix    max_missing  rule
========  ===========  =========================================================================
srs       0            no prorating (visual-analogue items; no published rule) [U, conservative]
wai       0            no prorating (no rule found; subscales likewise) [U, conservative]
ors       0            a blank item invalidates the total [U] (docs/methods.md §1.1)
phq9      0 (opt-in 2) official totals are complete: no developer rule found; the research
                       convention "<= 2 missing, mean of the answered items x 9" (Arrieta et al.
                       2017, J Clin Psychol doi:10.1002/jclp.22390, as in R qscorer) [V2] is an
                       opt-in: ``max_missing={"phq9": 2}`` or ``[instruments.phq9] max_missing = 2``
gad7      0            no rule found; conservative [U]
core10    1            CORE rule: prorate only when <= 10 % of items are missing, one item for the
                       CORE-10: mean of the 9 answered items x 10; 2+ missing: not scored [V]
                       coresystemtrust.org.uk "Information about the CORE-10" and "What's in a
                       name (1): scoring CORE measures" (docs/methods.md §1.6)
========  ===========  =========================================================================

Reverse-keyed items (CORE-10 items 2 and 3 [V] CamCOPS core10.py) are scored
``item_min + item_max - answer`` before summing. A prorated total is the mean of the answered
(scored) items times the number of items, not rounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from supervision.instruments import Instrument
from supervision.instruments import instruments as _all_instruments

__all__ = ["score_sessions", "score_items", "total_scores"]

_BLOCK = 1 << 16  # rows scored at a time: a block's columns stay in the CPU cache between operations


def _as_instruments(instruments) -> dict[str, Instrument]:
    if instruments is None:
        return dict(_all_instruments())
    if isinstance(instruments, Instrument):
        return {instruments.prefix: instruments}
    if isinstance(instruments, Mapping):
        values = list(instruments.values())
    elif isinstance(instruments, Iterable) and not isinstance(instruments, str):
        values = list(instruments)
    else:
        raise TypeError("instruments must be None, an Instrument, a dict {prefix: Instrument} or a list of "
                        "Instrument (e.g. supervision.instruments.instruments(settings)); "
                        f"got {type(instruments).__name__}.")
    known = _all_instruments()
    out = {}
    for v in values:
        if isinstance(v, str):
            if v not in known:
                raise ValueError(f"unknown instrument {v!r}; known: {', '.join(known)}. "
                                 "Pass Instrument objects for instruments defined in the settings.")
            v = known[v]
        if not isinstance(v, Instrument):
            raise TypeError(f"instruments must hold Instrument objects or prefixes; got {v!r}.")
        out[v.prefix] = v
    return out


def _max_missing_for(inst: Instrument, max_missing) -> int:
    if max_missing is None:
        value = inst.max_missing
    elif isinstance(max_missing, Mapping):
        value = max_missing.get(inst.prefix, inst.max_missing)
    else:
        value = max_missing
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < inst.items
    if not ok:
        raise ValueError(f"max_missing for {inst.prefix} must be a whole number from 0 to {inst.items - 1} "
                         f"(items that may be missing and still be prorated); got {value!r}.")
    return int(value)


def score_items(items: np.ndarray, inst: Instrument, *, max_missing: int = 0,
                item_numbers: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Total of an (n rows x k items) array of raw answers, vectorised.

    Reverse-keyed items among ``item_numbers`` (default 1..k) are scored ``item_min + item_max -
    answer``. A row with no missing item gets the sum; with 1..``max_missing`` missing items, the
    mean of the answered items times k (prorated); otherwise NaN.

    Returns
    -------
    total, prorated : ndarray of float, ndarray of bool
    """
    x = np.array(items, dtype=float, copy=True)
    if x.ndim != 2:
        raise ValueError(f"items must be a 2-D array (rows x items); got shape {x.shape}.")
    numbers = list(item_numbers) if item_numbers is not None else list(range(1, x.shape[1] + 1))
    rev = [j for j, i in enumerate(numbers) if i in set(inst.reversed_items)]
    if rev:
        x[:, rev] = inst.item_min + inst.item_max - x[:, rev]
    k = x.shape[1]
    answered = ~np.isnan(x)
    n_answered = answered.sum(axis=1)
    n_missing = k - n_answered
    total = np.where(answered, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prorated_value = total / n_answered * k
    ok_prorate = (n_missing > 0) & (n_missing <= max_missing) & (n_answered > 0)
    out = np.where(n_missing == 0, total, np.where(ok_prorate, prorated_value, np.nan))
    return np.round(out, 10), ok_prorate


def score_sessions(sessions: pd.DataFrame, instruments=None, *, max_missing=None) -> pd.DataFrame:
    """Totals and subscales computed from item scores where the total is missing.

    Parameters
    ----------
    sessions : DataFrame
        Any table with the contract's wide measure columns (``<prefix>_<item>``,
        ``<prefix>_total``; data/README.md), typically the canonical ``sessions``. Not modified.
    instruments : None, dict, list or Instrument
        The instruments to score: ``{prefix: Instrument}`` (e.g.
        ``supervision.instruments.instruments(settings)``, which includes instruments added in the
        settings), a list of Instrument objects or built-in prefixes, or None for the built-in ones.
    max_missing : None, int or dict, optional
        Items that may be missing and still be prorated: None = each instrument's own rule (the
        ``max_missing`` key of its spec; see the module docstring for each rule and its source);
        an int for every instrument; or ``{prefix: int}`` for some (e.g. ``{"phq9": 2}``, the
        opt-in research convention of Arrieta et al. 2017 [V2]). Subscales always use the spec's
        ``subscale_max_missing``.

    Returns
    -------
    DataFrame
        A copy of ``sessions`` with, for every instrument that has at least one column in it:

        - ``<prefix>_total``: the given total where there is one (totals are accepted as given);
          otherwise computed from the items: their sum (reverse-keyed items reversed), or, when at
          most ``max_missing`` items are missing, the mean of the answered items times the number
          of items; NaN when more are missing. Not rounded to whole points.
        - ``<prefix>_total_prorated`` (bool): True where the total was computed with a
          missing-item rule (i.e. from an incomplete set of items).
        - ``<prefix>_<subscale>`` (e.g. ``wai_goal``, ``wai_task``, ``wai_bond``): sum of the
          subscale's items (same missing-item handling with ``subscale_max_missing``; subscales
          of WAI-SR per Hatcher & Gillaspy 2006 as given by two secondary sources [V2],
          docs/methods.md §1.3). A subscale column already present keeps its given values.

        New columns follow the instrument's existing columns; other columns and the row order
        are unchanged.

    Raises
    ------
    ValueError, TypeError
        For an unknown instrument or an out-of-range ``max_missing``.
    """
    if not isinstance(sessions, pd.DataFrame):
        raise TypeError(f"sessions must be a pandas DataFrame; got {type(sessions).__name__}.")
    insts = _as_instruments(instruments)
    new_values: dict[str, np.ndarray] = {}  # computed columns (new, or replacing the given ones)
    placed: dict[str, list[str]] = {}  # anchor column -> new columns to place after it
    for prefix, inst in insts.items():
        present = [c for c in (*inst.columns, *inst.subscale_columns.values()) if c in sessions.columns]
        if not present:
            continue
        mm = _max_missing_for(inst, max_missing)
        total, prorated, subscales = _score_instrument(sessions, inst, mm)
        new_cols = []
        if inst.total_column not in sessions.columns:
            new_cols.append(inst.total_column)
        new_values[inst.total_column] = total
        new_values[inst.prorated_column] = prorated
        if inst.prorated_column not in sessions.columns:
            new_cols.append(inst.prorated_column)
        for col, value in subscales.items():
            if col not in sessions.columns:
                new_cols.append(col)
            new_values[col] = value
        anchor = [c for c in sessions.columns if c in present or c == inst.total_column]
        placed[anchor[-1] if anchor else ""] = new_cols
    new = {c for cols in placed.values() for c in cols}
    order = []
    for c in sessions.columns:
        if c in new:
            continue
        order.append(c)
        order.extend(placed.get(c, []))
    order.extend(c for c in placed.get("", []) if c not in order)
    # one new frame: given columns are shared copy-on-write (pandas >= 3), never modified in place
    data = {c: new_values[c] if c in new_values else sessions[c] for c in order}
    return pd.DataFrame(data, index=sessions.index, columns=order, copy=False)


def _numeric(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A column as float (non-numbers NaN); a float64 column is read as it is, without a copy."""
    values = frame[col]
    if values.dtype == np.float64:
        return values.to_numpy()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _pairwise_sum(columns: list[np.ndarray]) -> np.ndarray:
    """Row sums of ``columns`` added in the order ``ndarray.sum(axis=1)`` adds a row of the stacked,
    C-ordered (rows x items) block: numpy's pairwise summation (one running sum below 8 items, eight
    up to 128, halves above), onto 0.0. Same bits as :func:`score_items`' sums, without the block."""
    k = len(columns)
    if k < 8:
        total = columns[0] + 0.0  # onto 0.0, as numpy: a sum of -0.0 is 0.0
        for c in columns[1:]:
            total += c
        return total
    if k > 128:
        half = k // 2 - k // 2 % 8
        total = _pairwise_sum(columns[:half])
        total += _pairwise_sum(columns[half:])
        return total
    main = k - k % 8
    acc = list(columns[:8])
    for i in range(8, main, 8):
        acc = [a + c for a, c in zip(acc, columns[i:i + 8])]
    total = acc[0] + acc[1]
    total += acc[2] + acc[3]
    right = acc[4] + acc[5]
    right += acc[6] + acc[7]
    total += right
    for c in columns[main:]:
        total += c
    total += 0.0  # onto 0.0, as numpy: a sum of -0.0 is 0.0
    return total


def _score_instrument(sessions: pd.DataFrame, inst: Instrument, max_missing: int,
                      subscales: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Total, prorated flag and subscales of one instrument, as :func:`score_sessions` defines them.

    A row gets a score from its items only when it needs one (no given value and at least one
    answered item); every other row keeps its given value (NaN when none).
    """
    n = len(sessions)
    items = {j: _numeric(sessions, c) for j, c in enumerate(inst.item_columns) if c in sessions.columns}

    def given(col: str) -> np.ndarray:
        """A new array of the given values of ``col``, to be filled in (NaN where there are none)."""
        return _numeric(sessions, col).copy() if col in sessions.columns else np.full(n, np.nan)

    total = given(inst.total_column)
    prorated = _score_into(total, inst, items, list(range(inst.items)), max_missing)
    subs = {}
    if subscales:
        for sub, numbers in inst.subscales.items():
            col = inst.subscale_columns[sub]
            subs[col] = given(col)
            _score_into(subs[col], inst, items, [i - 1 for i in numbers],
                        min(inst.subscale_max_missing, len(numbers) - 1))
    return total, prorated, subs


def _score_into(out: np.ndarray, inst: Instrument, items: dict[int, np.ndarray], positions: list[int],
                rule: int) -> np.ndarray:
    """Fill the NaN rows of ``out`` (given values) with the score of the items at ``positions``;
    return the prorated flag.

    Each filled value is :func:`score_items`' for that row, bit for bit, by a faster route: complete
    rows are summed column-wise (:func:`_pairwise_sum`) in blocks of rows, and only the rows with
    1..``rule`` items missing go through :func:`score_items`. A NaN score leaves the row as it is.
    """
    n = len(out)
    absent = sum(j not in items for j in positions)
    reverse = [j + 1 in inst.reversed_items for j in positions]
    low_high = inst.item_min + inst.item_max  # reverse-keyed: low_high - answer, as score_items does it
    partial = np.zeros(n, bool)
    for start in range(0, n, _BLOCK):
        block = slice(start, start + _BLOCK)
        todo = np.isnan(out[block])
        if positions and not absent:
            value = _pairwise_sum([low_high - items[j][block] if rev else items[j][block]
                                   for j, rev in zip(positions, reverse)])
            np.round(value, 10, out=value)
            np.copyto(out[block], value, where=todo & ~np.isnan(value))
        if rule > 0:
            missing = np.full(len(todo), absent)
            for j in positions:
                if j in items:
                    missing += np.isnan(items[j][block])
            partial[block] = todo & (missing > 0) & (missing <= rule)
    rows = np.flatnonzero(partial)
    x = np.full((len(rows), len(positions)), np.nan)  # C-ordered: numpy sums other layouts in another order
    for i, j in enumerate(positions):
        if j in items:
            x[:, i] = items[j][rows]
    value, prorated = score_items(x, inst, max_missing=rule, item_numbers=[j + 1 for j in positions])
    use = ~np.isnan(value)
    out[rows[use]] = value[use]
    flag = np.zeros(n, bool)
    flag[rows[use]] = prorated[use]
    return flag


def total_scores(sessions: pd.DataFrame, instrument: Instrument, *, max_missing=None) -> tuple[np.ndarray, np.ndarray]:
    """One instrument's ``<prefix>_total`` and ``<prefix>_total_prorated`` per row, as :func:`score_sessions`
    computes them, without building a new table.

    Parameters
    ----------
    sessions : DataFrame
        A table with (some of) the instrument's columns. Not modified.
    instrument : Instrument
    max_missing : None, int or dict, optional
        As in :func:`score_sessions`.

    Returns
    -------
    total, prorated : ndarray of float, ndarray of bool
        NaN / False on rows without a total and without enough items.
    """
    inst = next(iter(_as_instruments(instrument).values()))
    total, prorated, _ = _score_instrument(sessions, inst, _max_missing_for(inst, max_missing), subscales=False)
    return total, prorated


def item_total_disagreements(sessions: pd.DataFrame, instruments=None, *, tolerance: float = 0.5) -> pd.DataFrame:
    """Sessions where a given total and a complete set of its items disagree.

    A given total is used as given (:func:`score_sessions`), so an ORS total of 35 whose four items
    sum to 20 would otherwise load without a word. This lists every such row so the loader's
    validation report (see :class:`supervision.caseload.Caseload`) can warn about it.

    Parameters
    ----------
    sessions : DataFrame
        A table with the contract's wide measure columns. Not modified.
    instruments : None, dict, list or Instrument
        As in :func:`score_sessions`.
    tolerance : float, default 0.5
        Largest difference (points) still read as rounding: visual-analogue items entered to 0.1
        can make four items and their total differ by up to 0.2; integer scales by 0 [U: design
        choice; the ``[validation] item_total_tolerance`` setting].

    Returns
    -------
    DataFrame
        ``position`` (row position in ``sessions``), ``source_row`` (when present), ``instrument``,
        ``column`` (the total column), ``given_total``, ``item_total`` (score of the complete
        items, reverse-keyed items reversed), ``difference`` (given - items). Only rows with every
        item answered and a given total; prorated totals are not compared.
    """
    insts = _as_instruments(instruments)
    parts = []
    for prefix, inst in insts.items():
        if inst.total_column not in sessions.columns or not all(c in sessions.columns for c in inst.item_columns):
            continue
        given = _numeric(sessions, inst.total_column)
        items = {j: _numeric(sessions, c) for j, c in enumerate(inst.item_columns)}
        from_items = np.full(len(sessions), np.nan)
        _score_into(from_items, inst, items, list(range(inst.items)), 0)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(given) & ~np.isnan(from_items) & (np.abs(given - from_items) > float(tolerance) + 1e-9)
        rows = np.flatnonzero(bad)
        if not len(rows):
            continue
        part = pd.DataFrame({"position": rows, "instrument": prefix, "column": inst.total_column,
                             "given_total": given[rows], "item_total": from_items[rows],
                             "difference": given[rows] - from_items[rows]})
        if "source_row" in sessions.columns:
            part.insert(1, "source_row", sessions["source_row"].to_numpy()[rows])
        parts.append(part)
    if not parts:
        return pd.DataFrame({"position": pd.Series(dtype=np.int64), "instrument": pd.Series(dtype=object),
                             "column": pd.Series(dtype=object), "given_total": pd.Series(dtype=float),
                             "item_total": pd.Series(dtype=float), "difference": pd.Series(dtype=float)})
    return pd.concat(parts, ignore_index=True)
