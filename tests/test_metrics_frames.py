"""The shared row-order and look-up helpers of the metrics (supervision.metrics._frames) against the
pandas expressions they stand for, on tables with ties, missing keys, duplicates and any row order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from supervision.metrics._frames import (
    as_column, block_codes, first_rows, is_sorted, isin, positions_in, reindex_first, sort_frame, sort_positions,
    take_values,
)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(21)
    n = 3000
    ids = pd.array(rng.choice([f"C{i:03d}" for i in range(120)] + [None], n), dtype="str")
    dates = pd.to_datetime("2025-01-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    dates = pd.Series(dates).mask(rng.random(n) < 0.03)  # missing dates sort last
    return pd.DataFrame({"client_id": ids, "session_date": dates.to_numpy(), "source_row": rng.permutation(n) + 2,
                         "score": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, n).astype(float)),
                         "kind": pd.array(rng.choice(["a", "b", None], n), dtype="str")})


@pytest.mark.parametrize("keys", [["client_id"], ["client_id", "session_date"], ["client_id", "session_date", "source_row"],
                                  ["kind", "score"], ["score", "client_id"], ["source_row"]])
def test_sort_positions_is_sort_values(table, keys):
    want = table.sort_values(keys, kind="stable").index.to_numpy()
    assert np.array_equal(sort_positions(table, keys), want)
    rows = np.flatnonzero(table["score"].notna().to_numpy())[::-1]  # a subset, in any order
    want = table.iloc[rows].sort_values(keys, kind="stable").index.to_numpy()
    assert np.array_equal(table.index.to_numpy()[sort_positions(table, keys, rows)], want)


def test_sort_frame_and_is_sorted(table):
    keys = ["client_id", "session_date"]
    pd.testing.assert_frame_equal(sort_frame(table, keys), table.sort_values(keys, kind="stable"))
    assert not is_sorted(table, keys)  # missing ids: never taken for sorted
    clean = table[table["client_id"].notna() & table["session_date"].notna()]
    ordered = clean.sort_values(["client_id", "session_date"], kind="stable")
    assert is_sorted(ordered, keys) and sort_frame(ordered, keys) is ordered
    assert not is_sorted(ordered.iloc[::-1], keys)


def test_block_codes_is_factorize(table):
    for frame in (table, table.dropna(subset=["client_id"]).sort_values("client_id", kind="stable")):
        codes, uniques = block_codes(frame["client_id"])
        want_codes, want_uniques = pd.factorize(frame["client_id"])
        assert np.array_equal(codes, want_codes) and uniques.equals(want_uniques)
        assert uniques.dtype == want_uniques.dtype


def test_first_rows_and_reindex_first_are_drop_duplicates_then_reindex(table):
    ids = pd.Index(["C005", "C999", "C000", "C005", "C119"])
    want = table.drop_duplicates("client_id").set_index("client_id").reindex(ids)[["score", "kind", "session_date"]]
    got = reindex_first(table, "client_id", ids, ["score", "kind", "session_date"])
    pd.testing.assert_frame_equal(got, want)
    rows = first_rows(table, "client_id", ids)
    assert rows[1] == -1 and rows[0] == rows[3] == int(np.flatnonzero(table["client_id"] == "C005")[0])


def test_isin_positions_and_column_values(table):
    ids = table["client_id"]
    some = ids.dropna().unique()[:40]
    assert np.array_equal(isin(ids, some), pd.Index(ids).isin(some))
    index = pd.Index(sorted(some))
    assert np.array_equal(positions_in(index, ids), index.get_indexer(ids))
    rows = np.array([5, 0, 17, 17])
    pd.testing.assert_frame_equal(pd.DataFrame({"a": take_values(ids, rows), "b": take_values(table["score"], rows)}),
                                  pd.DataFrame({"a": ids.to_numpy()[rows], "b": table["score"].to_numpy()[rows]}))
    pd.testing.assert_frame_equal(pd.DataFrame({"a": as_column(ids)}), pd.DataFrame({"a": ids.to_numpy()}))
