"""Row orders, text columns and look-ups shared by the metrics modules, computed on integer codes.

A service export has a million sessions with text ids (Arrow-backed ``str`` columns). Sorting a
whole frame, turning an id column into Python objects and back, or ``isin`` against a long list
of ids each cost a hash or a copy of every row; these helpers do the same work once, on codes.
Each one returns exactly what the pandas expression in its docstring returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def sort_positions(frame: pd.DataFrame, keys: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Positions ``p`` with ``frame.iloc[p]`` equal to ``frame.iloc[rows].sort_values(keys, kind="stable")``.

    The keys are ranked as pandas ranks them for a multi-column sort (each key's sorted distinct
    values, missing values last; whole numbers by value), the ranks combined into one integer key
    (``np.lexsort`` when they would not fit in 62 bits) and the rows sorted stably by it.
    """
    whole = rows is None
    rows = np.arange(len(frame)) if whole else np.asarray(rows, dtype=np.int64)
    if not keys or not len(rows):
        return rows
    codes, sizes = [], []
    for key in keys:
        col = frame[key] if whole else frame[key].take(rows)
        if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iu":  # whole numbers: their offset from the least
            values = col.to_numpy().astype(np.int64)
            codes.append(values - values.min())
            sizes.append(int(values.max()) - int(values.min()) + 1)
            continue
        c, uniques = pd.factorize(col, sort=True)  # rank among the sorted distinct values
        codes.append(np.where(c < 0, len(uniques), c).astype(np.int64))  # missing last
        sizes.append(len(uniques) + 1)
    if np.prod(np.array(sizes, dtype=float)) < 2.0 ** 62:  # one integer key, sorted stably
        combined = codes[0]
        for c, size in zip(codes[1:], sizes[1:]):
            combined = combined * size + c
        return rows[np.argsort(combined, kind="stable")]
    return rows[np.lexsort(codes[::-1])]


def take_values(column: pd.Series, positions: np.ndarray):
    """``column.to_numpy()[positions]`` as a new frame column holds it, without the Python objects.

    A ``str`` column stays an Arrow array (a new frame would convert the objects back to it); other
    columns are taken from their NumPy values.
    """
    if column.dtype == "str":
        return column.array.take(np.asarray(positions, dtype=np.int64))
    return column.to_numpy()[positions]


def isin(values, candidates) -> np.ndarray:
    """``pd.Index(values).isin(candidates)`` as a bool array, matched on integer codes."""
    left, right = pd.Index(values), pd.Index(candidates)
    if not len(left) or not len(right):
        return pd.Index(left).isin(right)
    codes, _ = pd.factorize(left.append(right))
    return np.isin(codes[:len(left)], codes[len(left):])


def is_sorted(frame: pd.DataFrame, keys: Sequence[str]) -> bool:
    """Whether the rows are already in ``keys`` order (no missing key; each row's keys, compared in
    turn, not less than the row before), found by comparing neighbours."""
    tied = np.ones(max(len(frame) - 1, 0), bool)  # pairs equal on the keys so far
    for key in keys:
        values = frame[key].array
        if frame[key].isna().any():
            return False
        after, before = values[1:], values[:-1]
        try:
            if (tied & np.asarray(after < before, dtype=bool)).any():
                return False
            tied &= np.asarray(after == before, dtype=bool)
        except TypeError:  # values that do not compare: let the sort decide
            return False
    return True


def sort_frame(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``frame.sort_values(keys, kind="stable")``; the frame itself when its rows are already in that order."""
    if is_sorted(frame, keys):
        return frame
    return frame.take(sort_positions(frame, keys))


def block_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(values)``. When equal values are contiguous and ascending (a table sorted by them)
    the codes are read from where the value changes, without hashing every row."""
    n = len(values)
    if n and not values.isna().any():
        v = values.array
        try:
            starts = np.flatnonzero(np.r_[True, np.asarray(v[1:] != v[:-1], dtype=bool)])
            first = v.take(starts)
            ascending = np.asarray(first[1:] > first[:-1], dtype=bool).all()
        except TypeError:  # values that do not compare
            ascending = False
        if ascending:  # each value in one block
            return np.repeat(np.arange(len(starts), dtype=np.int64), np.diff(np.r_[starts, n])), pd.Index(first)
    return pd.factorize(values)


def as_column(series: pd.Series):
    """``series.to_numpy()`` as a new frame column holds it (text stays an Arrow array)."""
    return series.array if series.dtype == "str" else series.to_numpy()


def first_rows(frame: pd.DataFrame, key: str, ids) -> np.ndarray:
    """Position of the first row of ``frame`` with each of ``ids`` as ``key``; -1 where there is none."""
    codes, uniques = pd.factorize(frame[key])  # codes number the keys in order of first appearance
    seen = np.maximum.accumulate(np.r_[-1, codes])
    first_of = np.flatnonzero(codes > seen[:-1])  # where each code appears first, in code order
    at = uniques.get_indexer(ids)
    return np.where(at >= 0, first_of[np.maximum(at, 0)] if len(first_of) else -1, -1)


def reindex_first(frame: pd.DataFrame, key: str, ids, columns: Sequence[str]) -> pd.DataFrame:
    """``frame.drop_duplicates(key).set_index(key).reindex(ids)[columns]``: each id's first row (missing
    values for an id without one), taking only ``columns``."""
    out = frame[list(columns)].reset_index(drop=True).reindex(first_rows(frame, key, ids))
    out.index = ids if isinstance(ids, pd.Index) else pd.Index(ids, name=key)  # named as reindex names it
    return out


def positions_in(index: pd.Index, values) -> np.ndarray:
    """``index.get_indexer(values)`` (-1 where absent), looking up each distinct value once."""
    codes, uniques = pd.factorize(values)
    return np.append(index.get_indexer(uniques), -1)[codes]
