"""The loader's fast paths give exactly what the careful paths give.

CSV files are read by Arrow's reader when they are well formed, and by the pandas/csv-module
reader otherwise; both must give the same raw table (text as written, same line numbers), and the
loaded caseload must not depend on which path read it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from supervision.io import readers
from supervision.io.readers import SOURCE_ROW, read_csv_text

CASES = {
    "plain": "client_id,clinician_id,start_date\nC1,T1,2024-01-02\nC2,T1,2024-02-03\n",
    "no final newline": "client_id,clinician_id,start_date\nC1,T1,2024-01-02\nC2,T1,2024-02-03",
    "crlf": "client_id,clinician_id,start_date\r\nC1,T1,2024-01-02\r\nC2,T1,2024-02-03\r\n",
    "semicolons": "client_id;clinician_id;srs_total\nC1;T1;31,5\nC2;T1;\n",
    "quoted separators": 'client_id,clinician_id,role\nC1,T1,"lead, senior"\nC2,"T1",x\n',
    "quoted header": '"client_id","clinician_id"\nC1,T1\n',
    "spaces kept as written": "client_id,clinician_id\n C1 ,T1\nC2,  \n",
    "separators-only line": "client_id,clinician_id\nC1,T1\n,\nC2,T1\n",
    "short line": "client_id,clinician_id,start_date\nC1,T1\nC2,T1,2024-02-03\n",
    "header only": "client_id,clinician_id\n",
    "accents": "client_id,clinician_id,primary_language\nC1,T1,Español\nC2,T1,français\n",
    "quoted line break": 'client_id,clinician_id,role\nC1,T1,"two\nlines"\nC2,T1,x\n',
    "blank line": "client_id,clinician_id\nC1,T1\n\nC2,T1\n",
    "ragged line": "client_id,clinician_id\nC1,T1,extra\nC2,T1\n",
}


def _careful(text: str, problems: list):
    return read_csv_text(text, "clients", "clients.csv", problems)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = readers.text_frame(frame).copy()
    for c in out.columns:
        if c != SOURCE_ROW:
            out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out.reset_index(drop=True)


@pytest.mark.parametrize("name", list(CASES))
def test_fast_and_careful_csv_readers_agree(tmp_path, name):
    text = CASES[name]
    path = tmp_path / "clients.csv"
    path.write_bytes(("\ufeff" if name == "plain" else "").encode() + text.encode("utf-8"))
    fast_problems, careful_problems = [], []
    fast = readers._read_csv_file(path, "clients", fast_problems)
    careful = _careful(text, careful_problems)
    assert fast_problems == careful_problems
    pd.testing.assert_frame_equal(_as_text(fast.frame), _as_text(careful.frame), check_dtype=False)
    assert (fast.bad_rows is None) == (careful.bad_rows is None)


def test_arrow_path_is_taken_for_well_formed_files_and_refused_otherwise():
    ok = CASES["quoted separators"].encode()
    assert readers._read_csv_arrow(ok, ",", "clients", "clients.csv") is not None
    for name in ("quoted line break", "ragged line", "short line"):
        assert readers._read_csv_arrow(CASES[name].encode(), ",", "clients", "clients.csv") is None, name


def test_not_utf8_is_decoded_and_reported(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_bytes("client_id,clinician_id,primary_language\nC1,T1,Español\n".encode("cp1252"))
    problems = []
    rt = readers._read_csv_file(path, "clients", problems)
    assert [p["check"] for p in problems] == ["encoding"]
    assert rt.frame["primary_language"].astype(str).tolist() == ["Español"]


def test_per_value_coercion_matches_row_by_row_coercion():
    """Cleaning, folding and parsing once per distinct value equals doing it on every cell."""
    from supervision import schema

    rng = np.random.default_rng(3)
    words = np.array([" A ", "a", "", "No-Show", "no show", "2024-02-30", "2024-02-03", "03/02/2024", "7", "7.0", "x",
                      "true", "Yes", "0"], dtype=object)
    raw = pd.Series(words[rng.integers(0, len(words), 500)])
    raw[rng.integers(0, 500, 40)] = None
    for s in (raw, raw.astype("category"), raw.astype("str")):
        text = schema._clean_text(s)
        expect = [None if pd.isna(v) or str(v).strip() == "" else str(v).strip() for v in raw]
        assert text.astype(object).where(text.notna(), None).tolist() == expect
        folded = schema._fold_code(text)
        assert folded.astype(object).where(folded.notna(), None).tolist() == [
            None if v is None else v.lower().replace("-", "_").replace(" ", "_") for v in expect]
        dates = schema.parse_dates(s, day_first=True)
        one_by_one = [schema.parse_dates(pd.Series([v], dtype=object), day_first=True).iloc[0] for v in raw]
        assert [d if pd.notna(d) else None for d in dates] == [d if pd.notna(d) else None for d in one_by_one]
        nums = schema.parse_numbers(s)
        assert np.allclose(nums.to_numpy(), [schema.parse_numbers(pd.Series([v], dtype=object)).iloc[0] for v in raw],
                           equal_nan=True)
        bools = schema.parse_bools(text)
        assert bools.tolist() == [schema.parse_bools(pd.Series([v], dtype=object)).iloc[0] for v in expect]


def test_text_frame_keeps_repeated_column_names():
    """Found by the corruption property test: an export that repeats a column name."""
    frame = pd.DataFrame([["a", "b", 1]], columns=["x", "x", SOURCE_ROW])
    frame.isetitem(0, frame.iloc[:, 0].astype("category"))
    out = readers.text_frame(frame)
    assert list(out.columns) == ["x", "x", SOURCE_ROW]
    assert out.iloc[0, :2].tolist() == ["a", "b"] and str(out.dtypes.iloc[0]) == "str"


def test_non_utf8_rows_never_reach_arrow(tmp_path):
    """A ragged line in a cp1252 file: the careful path reads and reports it, silently."""
    import warnings

    path = tmp_path / "clients.csv"
    path.write_bytes("client_id,clinician_id\nC1,T1,Ñ\nC2,T1\n".encode("cp1252"))
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rt = readers._read_csv_file(path, "clients", problems)
    assert sorted(p["check"] for p in problems) == ["encoding", "ragged_line"]
    assert rt.frame["client_id"].astype(str).tolist() == ["C2"]


def _messy(tmp_path_factory):
    from supervision import synth

    out = tmp_path_factory.mktemp("messy")
    synth.write_clinic(out, fmt="csv", n_clinicians=6, seed=11, messy=True)
    return out


def _tables(cl):
    """Tables without line numbers; clients in id order (the loader keeps the file's order of clients)."""
    out = {n: getattr(cl, n).drop(columns=SOURCE_ROW) for n in ("clients", "sessions", "clinicians")}
    out["clients"] = out["clients"].sort_values("client_id", kind="stable")
    return {n: f.reset_index(drop=True) for n, f in out.items()}


def test_row_order_of_the_export_does_not_change_the_caseload(tmp_path, tmp_path_factory):
    """Sessions are put in order by codes, duplicates found by dense tables: a shuffled export
    must load to the same tables and the same problems (at their new line numbers)."""
    import shutil

    import supervision

    src = _messy(tmp_path_factory)
    shuffled = tmp_path / "shuffled"
    shutil.copytree(src, shuffled)
    moved = {}
    for name in ("clients", "sessions", "scores"):
        f = pd.read_csv(src / f"{name}.csv", dtype=str, keep_default_na=False)
        perm = np.random.default_rng(5).permutation(len(f))
        f.iloc[perm].to_csv(shuffled / f"{name}.csv", index=False)
        moved[name] = dict(zip(perm + 2, range(2, len(f) + 2)))  # old line -> new line
    a, b = supervision.load_caseload(src), supervision.load_caseload(shuffled)
    assert len(a.report) > 5
    for name, frame in _tables(a).items():
        pd.testing.assert_frame_equal(frame, _tables(b)[name])

    def problems(cl, lines=None):
        r = cl.report.copy()
        if lines is not None:
            r["row"] = [lines[t].get(int(x), x) if t in lines and pd.notna(x) else x for t, x in zip(r["table"], r["row"])]
        key = ["table", "row", "column", "check", "severity"]
        return r[key].astype(str).sort_values(key).reset_index(drop=True)

    # a problem of one line stays with that line; which of two equal lines is "the later one"
    # depends on the order, so those checks are compared by count only
    order_dependent = {"duplicate_id", "duplicate_session", "duplicate_score", "unknown_client"}
    pa_, pb = problems(a, moved), problems(b)
    keep_a, keep_b = ~pa_["check"].isin(order_dependent), ~pb["check"].isin(order_dependent)
    pd.testing.assert_frame_equal(pa_[keep_a].reset_index(drop=True), pb[keep_b].reset_index(drop=True))
    assert pa_["check"].value_counts().sort_index().equals(pb["check"].value_counts().sort_index())


def test_dense_and_hashed_duplicate_checks_agree(tmp_path_factory, monkeypatch):
    import supervision
    import supervision.io as sio

    src = _messy(tmp_path_factory)
    dense = supervision.load_caseload(src)
    monkeypatch.setattr(sio, "_DENSE_LIMIT", 0)
    hashed = supervision.load_caseload(src)
    assert "duplicate_score" in set(dense.report["check"])
    pd.testing.assert_frame_equal(dense.report, hashed.report)
    pd.testing.assert_frame_equal(dense.sessions, hashed.sessions)


def _text_only(monkeypatch):
    """Read every CSV column as text (the reader then types no number or date column)."""
    monkeypatch.setattr(readers, "_ARROW_KINDS", {})


def test_typed_csv_columns_load_as_text_columns_do(tmp_path_factory, monkeypatch):
    """Number and date columns that Arrow reads in full come typed (as from Parquet); the caseload
    and its report are those of the text path, except that a number is shown as a number ('91',
    not '91.0' as written)."""
    import supervision

    src = _messy(tmp_path_factory)
    kinds = {"srs_1": "number", "session_date": "date"}
    raw = readers._read_csv_file(src / "sessions.csv", "sessions", [], kinds).frame
    assert raw["srs_1"].dtype == "float64" and str(raw["session_date"].dtype).startswith("datetime64")
    typed = supervision.load_caseload(src)
    _text_only(monkeypatch)
    text = supervision.load_caseload(src)
    for name in ("clients", "sessions", "clinicians"):
        pd.testing.assert_frame_equal(getattr(typed, name), getattr(text, name))
    assert len(typed.report) > 5
    pd.testing.assert_frame_equal(typed.report.drop(columns="value"), text.report.drop(columns="value"))
    a, b = typed.report["value"], text.report["value"]
    same = (a.astype(str) == b.astype(str)) | (pd.to_numeric(a, errors="coerce") == pd.to_numeric(b, errors="coerce"))
    assert same.all(), pd.DataFrame({"typed": a[~same], "text": b[~same]})
    assert typed.counts.equals(text.counts)


@pytest.mark.parametrize("written, cell", [("n/a", "n/a"), ("nan", "nan"), ('"1,5"', "1,5"), ("7 points", "7 points")])
def test_a_number_column_arrow_cannot_read_comes_as_text(tmp_path, written, cell):
    path = tmp_path / "sessions.csv"
    path.write_text(f"client_id,srs_1,session_date\nC1,7,2024-01-02\nC2,{written},2024-01-03\n")
    frame = readers._read_csv_file(path, "sessions", [], {"srs_1": "number", "session_date": "date"}).frame
    assert isinstance(frame["srs_1"].dtype, pd.CategoricalDtype)
    assert frame["srs_1"].astype(str).tolist() == ["7", cell]


@pytest.mark.parametrize("cell", ["2024-6-3", "03/06/2024", "0201-01-02", "9999-12-31", "2024-02-30", "2024-01-02T10:00"])
def test_a_date_column_arrow_cannot_read_plainly_comes_as_text(tmp_path, cell):
    """Not ISO, impossible, or a year the validator reports as written: the text path reads it."""
    path = tmp_path / "sessions.csv"
    path.write_text(f"client_id,session_date\nC1,2024-01-02\nC2,{cell}\n")
    frame = readers._read_csv_file(path, "sessions", [], {"session_date": "date"}).frame
    assert isinstance(frame["session_date"].dtype, pd.CategoricalDtype)
    assert frame["session_date"].astype(str).tolist() == ["2024-01-02", cell]


def test_arrow_numbers_are_the_text_paths_numbers_to_the_bit(tmp_path):
    from supervision import schema

    rng = np.random.default_rng(8)
    mantissa = rng.integers(0, 10 ** 17, 20_000)
    cells = [f"{m}e{e}" for m, e in zip(mantissa[:10_000], rng.integers(-25, 5, 10_000))]
    cells += [f"{int(m) // 10 ** k}.{int(m) % 10 ** k:0{k}d}" for m, k in zip(mantissa[10_000:], rng.integers(1, 17, 10_000))]
    cells += ["-0", "+5", ".5", "5.", " 7 ", "1E-3", "inf", "-inf", ""]
    path = tmp_path / "scores.csv"
    path.write_text("item,value\n" + "".join(f"1,{c}\n" for c in cells))
    typed = readers._read_csv_file(path, "scores", [], {"value": "number"}).frame["value"]
    assert typed.dtype == "float64"
    text = schema.parse_numbers(pd.Series(cells, dtype=object)).to_numpy()
    assert np.array_equal(typed.to_numpy().view(np.int64), text.view(np.int64))
