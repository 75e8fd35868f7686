"""The loader against a corpus of deliberately broken exports.

``tests/corpus/base/`` is a small valid export that follows data/README.md exactly.
``tests/corpus/broken/<case>/`` is the base with ONE defect and an ``expected.json`` (format in
``tests/corpus/make_corpus.py``, which regenerates the corpus). Each case checks that:

- loading never raises, and ``usable`` is as expected;
- the expected report rows are present (matched as a subset, on the keys given);
- for every table, read == loaded + quarantined, and the counts agree with the frames;
- the valid rest still loads (the loaded/quarantined counts are as expected);
- quarantined rows are in ``.quarantine`` (by ``source_row``) and not in the loaded table; rows
  with only warnings are loaded;
- no row is quarantined without being expected (every error row is an expected one);
- cleared cells are empty, other cells keep their values, format variants load like the base.

An Excel workbook is built from the base at test time (with one defect) to check that ``row`` is
the sheet row. The CLI is run as a subprocess: exit codes 0/1/2 and the problem text, never a
traceback.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import supervision

CORPUS = Path(__file__).resolve().parent / "corpus"
BASE = CORPUS / "base"
BROKEN = CORPUS / "broken"
CASES = sorted(p.name for p in BROKEN.iterdir() if (p / "expected.json").is_file())
TABLES = ("clients", "sessions", "clinicians", "scores")

REPORT_COLUMNS = ["table", "row", "column", "value", "problem", "fix", "severity", "check"]
KNOWN_CHECKS = {
    "missing_table", "missing_column", "unreadable_file", "encoding", "missing_value",
    "bad_date", "future_date", "date_order", "duplicate_id", "duplicate_session",
    "unknown_client", "unknown_clinician", "clinician_mismatch", "session_after_end",
    "session_before_start", "end_reason_without_end_date", "unknown_code", "bad_boolean",
    "not_numeric", "out_of_range", "score_on_non_attended", "score_without_session",
    "duplicate_score", "unknown_column", "unknown_dimension", "formula_without_value", "shadowed_table", "lookalike_id", "not_whole",
    # not in the brief's list, which names no check for a line with too many fields:
    "ragged_line",
}  # fmt: skip
KNOWN_CHECKS |= {"total_items_mismatch"}  # issue #19: a given total that disagrees with its items (warning)
MATCH_KEYS = ("table", "row", "column", "value", "check", "severity")


# ----------------------------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=None)
def load(path: str):
    return supervision.load_caseload(path)


def expected(case: str) -> dict:
    return json.loads((BROKEN / case / "expected.json").read_text(encoding="utf-8"))


def report_records(cl) -> list[dict]:
    rep = cl.report
    out = []
    for rec in rep.to_dict("records"):
        row = rec.get("row")
        rec["row"] = None if row is None or pd.isna(row) else int(row)
        for k in ("table", "column", "value", "check", "severity"):
            v = rec.get(k)
            rec[k] = None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
        out.append(rec)
    return out


def matches(rec: dict, exp: dict) -> bool:
    for key in MATCH_KEYS:
        if key not in exp:
            continue
        want = exp[key]
        if isinstance(want, list):
            if rec.get(key) not in want:
                return False
        elif rec.get(key) != want:
            return False
    return True


def fmt_report(cl, table=None) -> str:
    rep = cl.report
    if table is not None:
        rep = rep[rep["table"] == table]
    cols = [c for c in REPORT_COLUMNS if c in rep.columns]
    with pd.option_context("display.width", 250, "display.max_colwidth", 70):
        return rep[cols].to_string(index=False) if len(rep) else "(report is empty)"


def table_of(cl, table: str):
    """The loaded table, or None when the Caseload has no attribute for it (e.g. scores are
    merged into sessions)."""
    return getattr(cl, table, None)


def counts_by_table(cl) -> dict:
    c = cl.counts
    return {
        r["table"]: {k: int(r[k]) for k in ("read", "loaded", "quarantined")}
        for r in c.to_dict("records")
    }


def row_of(df: pd.DataFrame, source_row: int) -> pd.Series:
    hit = df[df["source_row"] == source_row]
    assert len(hit) == 1, f"expected one loaded row with source_row={source_row}, got {len(hit)}"
    return hit.iloc[0]


def same_value(got, want) -> bool:
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return math.isclose(float(got), float(want), rel_tol=0, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return str(got) == str(want)


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("source_row").reset_index(drop=True)


# ----------------------------------------------------------------------------------------- base
def test_base_loads_with_zero_problems():
    cl = load(str(BASE))
    assert cl.usable is True
    assert len(cl.report) == 0, "the base export must load clean:\n" + fmt_report(cl)
    assert counts_by_table(cl) == {
        "clients": {"read": 6, "loaded": 6, "quarantined": 0},
        "sessions": {"read": 28, "loaded": 28, "quarantined": 0},
        "clinicians": {"read": 2, "loaded": 2, "quarantined": 0},
        "scores": {"read": 18, "loaded": 18, "quarantined": 0},
    }
    assert len(cl.clients) == 6 and len(cl.sessions) == 28 and len(cl.clinicians) == 2


def test_base_report_has_the_documented_columns():
    cl = load(str(BASE))
    assert list(cl.report.columns) == REPORT_COLUMNS
    assert list(cl.counts.columns) == ["table", "read", "loaded", "quarantined"]


def test_base_source_row_is_the_users_line_number():
    cl = load(str(BASE))
    s = cl.sessions
    # line 2 is the first data row, line 29 the last (see tests/corpus/base/sessions.csv)
    assert sorted(s["source_row"].tolist()) == list(range(2, 30))
    first = row_of(s, 2)
    assert first["client_id"] == "C001"
    assert pd.Timestamp(first["session_date"]) == pd.Timestamp("2025-01-13")
    last = row_of(s, 29)
    assert (last["client_id"], last["attendance"]) == ("C006", "cancelled")
    assert sorted(cl.clients["source_row"].tolist()) == list(range(2, 8))
    assert row_of(cl.clients, 4)["client_id"] == "C003"


# ----------------------------------------------------------------------------------------- corpus
def test_corpus_is_big_enough():
    assert len(CASES) >= 20, CASES


@pytest.mark.parametrize("case", CASES)
def test_loads_without_raising_and_usable_flag(case):
    exp = expected(case)
    cl = load(str(BROKEN / case))
    assert cl.usable is exp["usable"], f"{case}: usable={cl.usable}\n" + fmt_report(cl)
    if not exp["usable"]:
        for t in ("clients", "sessions", "clinicians"):
            df = table_of(cl, t)
            assert df is None or len(df) == 0, f"{case}: unusable but {t} has {len(df)} rows"
        assert (cl.report["severity"] == "error").any(), "unusable export must say why"


@pytest.mark.parametrize("case", CASES)
def test_expected_report_rows_present(case):
    exp = expected(case)
    cl = load(str(BROKEN / case))
    recs = report_records(cl)
    missing = [e for e in exp["report"] if not any(matches(r, e) for r in recs)]
    assert not missing, (
        f"{case}: expected report rows not found: {missing}\nactual report:\n" + fmt_report(cl)
    )


@pytest.mark.parametrize("case", [c for c in CASES if expected(c).get("absent")])
def test_no_misleading_report_rows(case):
    cl = load(str(BROKEN / case))
    recs = report_records(cl)
    for e in expected(case)["absent"]:
        hits = [r for r in recs if matches(r, e)]
        assert not hits, (
            f"{case}: report rows that should not be there ({e}); "
            f"{expected(case).get('interpretation', '')}\n" + fmt_report(cl)
        )


@pytest.mark.parametrize("case", CASES)
def test_report_is_well_formed(case):
    cl = load(str(BROKEN / case))
    assert list(cl.report.columns) == REPORT_COLUMNS
    assert set(cl.report["severity"]) <= {"error", "warning", "info"}
    assert set(cl.report["check"]) <= KNOWN_CHECKS, set(cl.report["check"]) - KNOWN_CHECKS
    # every problem is explained in words and says how to fix it
    for col in ("problem", "fix"):
        blank = cl.report[col].isna() | (cl.report[col].astype(str).str.strip() == "")
        assert not blank.any(), f"{case}: report rows without `{col}`:\n" + fmt_report(cl)


@pytest.mark.parametrize("case", CASES)
def test_counts_invariant_and_agree_with_frames(case):
    cl = load(str(BROKEN / case))
    counts = counts_by_table(cl)
    for t, c in counts.items():
        assert c["read"] == c["loaded"] + c["quarantined"], f"{case} {t}: {c}"
    if not cl.usable:
        return
    for t, c in counts.items():
        q = cl.quarantine.get(t)
        nq = 0 if q is None else len(q)
        assert c["quarantined"] == nq, f"{case} {t}: counts say {c}, quarantine has {nq}"
        df = table_of(cl, t)
        if df is not None:
            assert c["loaded"] == len(df), f"{case} {t}: counts say {c}, table has {len(df)}"


@pytest.mark.parametrize("case", CASES)
def test_expected_counts(case):
    exp = expected(case)
    if exp.get("counts") is None:
        pytest.skip("unusable export: no counts expected")
    cl = load(str(BROKEN / case))
    got = counts_by_table(cl)
    for t, want in exp["counts"].items():
        assert got.get(t) == want, (
            f"{case} {t}: counts {got.get(t)} != expected {want}\n" + fmt_report(cl)
        )


@pytest.mark.parametrize("case", CASES)
def test_quarantined_rows_are_in_quarantine_and_warned_rows_load(case):
    exp = expected(case)
    if not exp["usable"]:
        pytest.skip("unusable export")
    cl = load(str(BROKEN / case))
    for e in exp["report"]:
        if "row" not in e:
            continue
        t, r = e["table"], e["row"]
        q = cl.quarantine.get(t)
        in_q = q is not None and (q["source_row"] == r).any()
        df = table_of(cl, t)
        in_loaded = df is not None and (df["source_row"] == r).any()
        if e.get("severity") == "error":
            assert in_q, f"{case}: {t} line {r} should be in quarantine[{t!r}]"
            assert not in_loaded, f"{case}: {t} line {r} is quarantined AND loaded"
        elif e.get("severity") == "warning" and df is not None:
            assert in_loaded, f"{case}: {t} line {r} has only a warning but was not loaded"
            assert not in_q, f"{case}: {t} line {r} has only a warning but is quarantined"


@pytest.mark.parametrize("case", CASES)
def test_no_unexpected_error_rows(case):
    """Every row-level error is one the case expects (no collateral quarantine)."""
    exp = expected(case)
    if not exp["usable"]:
        pytest.skip("unusable export")
    cl = load(str(BROKEN / case))
    want = {(e["table"], e["row"]) for e in exp["report"] if e.get("severity") == "error"}
    got = {
        (r["table"], r["row"])
        for r in report_records(cl)
        if r["severity"] == "error" and r["row"] is not None
    }
    assert got <= want, f"{case}: unexpected error rows {sorted(got - want)}\n" + fmt_report(cl)


@pytest.mark.parametrize("case", [c for c in CASES if expected(c).get("clean")])
def test_format_variants_load_clean(case):
    cl = load(str(BROKEN / case))
    assert len(cl.report) == 0, f"{case} should load clean:\n" + fmt_report(cl)


@pytest.mark.parametrize("case", [c for c in CASES if expected(c).get("cleared")])
def test_invalid_cells_are_cleared(case):
    cl = load(str(BROKEN / case))
    for e in expected(case)["cleared"]:
        row = row_of(table_of(cl, e["table"]), e["row"])
        got = row[e["column"]]
        if pd.isna(got):
            continue
        # a total may be re-scored from its valid items (data/README.md: items are scored)
        items = e.get("or_sum_of")
        rescored = items is not None and same_value(got, round(sum(row[i] for i in items), 6))
        assert rescored, (
            f"{case}: {e['table']} line {e['row']} `{e['column']}` should be cleared"
            + (f" or re-scored from {items}" if items else "")
            + f", is {got!r}"
        )


@pytest.mark.parametrize("case", [c for c in CASES if expected(c).get("values")])
def test_other_cells_keep_their_values(case):
    cl = load(str(BROKEN / case))
    for e in expected(case)["values"]:
        got = row_of(table_of(cl, e["table"]), e["row"])[e["column"]]
        assert same_value(got, e["value"]), (
            f"{case}: {e['table']} line {e['row']} `{e['column']}` = {got!r}, "
            f"expected {e['value']!r}"
        )


@pytest.mark.parametrize("case", [c for c in CASES if expected(c).get("same_as_base")])
def test_variant_loads_like_the_base(case):
    cl = load(str(BROKEN / case))
    base = load(str(BASE))
    for t in expected(case)["same_as_base"]:
        got, want = table_of(cl, t), table_of(base, t)
        if want is None:  # e.g. scores merged into sessions: covered by comparing sessions
            continue
        pd.testing.assert_frame_equal(comparable(got), comparable(want), check_dtype=False)


# ----------------------------------------------------------------------------------------- xlsx
def _base_frames() -> dict[str, pd.DataFrame]:
    """The base tables as an Excel user would have them: real dates, numbers and booleans."""
    frames = {}
    for t in TABLES:
        df = pd.read_csv(BASE / f"{t}.csv", dtype=str, keep_default_na=False)
        df = df.astype(object).where(df != "", None)
        for col in ("start_date", "end_date", "session_date"):
            if col in df:
                # object dtype, so a defect can put a text cell among the real dates
                df[col] = pd.Series(
                    [None if v is None else pd.Timestamp(v).to_pydatetime() for v in df[col]],
                    index=df.index,
                    dtype=object,
                )
        for col in df.columns:
            if col.startswith(("srs_", "ors_")) or col == "value":
                df[col] = [None if v is None else float(v) for v in df[col]]
            if col in ("agenda_set", "identity_addressed"):
                df[col] = [None if v is None else v == "true" for v in df[col]]
        frames[t] = df
    return frames


def _write_xlsx(path: Path, frames: dict[str, pd.DataFrame]) -> Path:
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for t, df in frames.items():
            df.to_excel(xw, sheet_name=t, index=False)
    return path


def test_xlsx_base_loads_clean(tmp_path):
    cl = supervision.load_caseload(str(_write_xlsx(tmp_path / "export.xlsx", _base_frames())))
    assert cl.usable is True
    assert len(cl.report) == 0, fmt_report(cl)
    assert counts_by_table(cl)["sessions"] == {"read": 28, "loaded": 28, "quarantined": 0}
    assert sorted(cl.sessions["source_row"].tolist()) == list(range(2, 30))


def test_xlsx_bad_date_is_reported_at_the_sheet_row(tmp_path):
    frames = _base_frames()
    s = frames["sessions"]
    # DataFrame position 19 is sheet row 21 (header in row 1): C004 2025-03-10
    assert (s.loc[19, "client_id"], s.loc[19, "session_date"].day) == ("C004", 10)
    s.loc[19, "session_date"] = "2025-02-30"  # typed as text: Excel could not make it a date
    cl = supervision.load_caseload(str(_write_xlsx(tmp_path / "export.xlsx", frames)))
    recs = report_records(cl)
    want = {"table": "sessions", "row": 21, "column": "session_date", "check": "bad_date",
            "severity": "error"}  # fmt: skip
    assert any(matches(r, want) for r in recs), fmt_report(cl)
    assert counts_by_table(cl)["sessions"] == {"read": 28, "loaded": 27, "quarantined": 1}
    assert cl.quarantine["sessions"]["source_row"].tolist() == [21]


def test_xlsx_row_numbers_count_an_empty_sheet_row(tmp_path):
    import openpyxl

    frames = _base_frames()
    frames["sessions"].loc[19, "session_date"] = "2025-02-30"  # sheet row 21 ...
    path = _write_xlsx(tmp_path / "export.xlsx", frames)
    wb = openpyxl.load_workbook(path)
    wb["sessions"].insert_rows(5)  # ... an empty row 5 pushes it to sheet row 22
    wb.save(path)
    cl = supervision.load_caseload(str(path))
    want = {"table": "sessions", "row": 22, "column": "session_date", "check": "bad_date",
            "severity": "error"}  # fmt: skip
    assert any(matches(r, want) for r in report_records(cl)), fmt_report(cl)
    assert cl.quarantine["sessions"]["source_row"].tolist() == [22]
    assert 5 not in set(cl.sessions["source_row"]) and 29 in set(cl.sessions["source_row"])


# ----------------------------------------------------------------------------------------- CLI
def run_cli(*args) -> subprocess.CompletedProcess:
    """``supervision ARGS`` as a user runs it (the venv's python, ``-m supervision.cli``)."""
    return subprocess.run(
        [sys.executable, "-m", "supervision.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("folder", "code", "texts"),
    [
        (BASE, 0, []),
        (BROKEN / "semicolon_bom", 0, []),
        (BROKEN / "session_impossible_date", 1, ["2025-02-30", "session_date", "7"]),
        (BROKEN / "clinician_mismatch", 1, ["clinician_id", "24"]),
        (BROKEN / "cp1252_encoding", 1, ["clients"]),
        (BROKEN / "missing_sessions_file", 2, ["sessions"]),
        (BROKEN / "missing_required_column", 2, ["attendance"]),
        (BROKEN / "parquet_corrupt_file", 2, ["clients"]),
        (BROKEN / "empty_sessions_file", 2, ["sessions"]),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_cli_validate_exit_codes_and_text(folder, code, texts):
    proc = run_cli("validate", folder)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}\n{out}"
    for text in texts:
        assert text in out, f"{text!r} not in CLI output:\n{out}"


def test_cli_writes_the_report_csv(tmp_path):
    dest = tmp_path / "problems.csv"
    proc = run_cli("validate", BROKEN / "session_impossible_date", "--report", dest)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 1
    rep = pd.read_csv(dest, dtype=str, keep_default_na=False)
    for col in ("table", "row", "column", "value", "problem", "fix", "severity"):
        assert col in rep.columns, list(rep.columns)
    hit = rep[(rep["table"] == "sessions") & (rep["row"] == "7")]
    assert len(hit) >= 1 and hit["value"].iloc[0] == "2025-02-30", rep.to_string()
