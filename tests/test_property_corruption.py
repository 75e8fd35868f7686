"""Property: whatever is done to a valid export, the loader reports it and loses no row.

Take the valid base export (tests/corpus/base), corrupt random cells (random text, empty, huge
numbers, impossible dates, unicode, spreadsheet formulas, delimiters and quotes inside values),
write it back with pandas (so the file stays parseable) and sometimes also damage raw lines (extra
or missing fields, a stray quote, a blank or garbage line, a duplicated line, a damaged header) or
the encoding. Then load it. Whatever happens:

- ``load_caseload`` never raises;
- for every table, read == loaded + quarantined, and the counts agree with the frames;
- a row is never both loaded and quarantined;
- every quarantined row has at least one ``error`` report line with its row number;
- an unusable export has empty tables and says why.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import supervision

BASE = Path(__file__).resolve().parent / "corpus" / "base"
TABLES = ("clients", "sessions", "clinicians", "scores")
FRAMES = {
    t: pd.read_csv(BASE / f"{t}.csv", dtype=str, keep_default_na=False, encoding="utf-8")
    for t in TABLES
}

NASTY = [
    "", " ", "   C002  ", "0000-00-00", "2025-13-45", "2025-02-30", "9999-99-99", "2099-01-01",
    "1900-01-01", "14/03/2025", "03/04/2025", "yesterday", "1e308", "-1e308", "1e-308",
    "99999999999999999999999999", "NaN", "nan", "inf", "-inf", "-0", "-5", "41", "3.5", "0x1F",
    "=cmd|' /C calc'!A0", "+SUM(A1:A9)", "@SUM(1)", "-2+3", "a,b", "a;b;c", 'he said "hi"', '"',
    "''", "line\nbreak", "cr\rlf", "\t", "ñandú", "日本語", "😀", "\u202eevil", "\x00", "NULL",
    "None", "N/A", "n/a", "#N/A", "true", "FALSE", "maybe", "yes", "0", "1", "C001", "C999",
    "T01", "T09", "attended", "no_show", "cancelled", "ATTENDED", "planned", "finished", "mood",
    "moood;;mood", "phq9", "srs", "total", "10", "declined", "not_recorded",
]  # fmt: skip

cell_values = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.dates().map(lambda d: d.isoformat()),
)

cell_edit = st.tuples(
    st.sampled_from(TABLES),
    st.integers(min_value=0, max_value=10**6),  # row, taken modulo the table's length
    st.integers(min_value=0, max_value=10**6),  # column, modulo
    cell_values,
)

RAW_KINDS = ("extra_fields", "drop_field", "stray_quote", "blank", "garbage", "duplicate",
             "delete", "truncate")  # fmt: skip
raw_edit = st.tuples(
    st.sampled_from(TABLES),
    st.integers(min_value=0, max_value=10**6),  # line, modulo (0 = header, rarely drawn)
    st.sampled_from(RAW_KINDS),
    st.text(max_size=20),
)


def corrupt_raw(text: str, line: int, kind: str, junk: str) -> str:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = line % len(lines)
    if kind == "extra_fields":
        lines[i] += ",x," + junk.replace("\n", " ")
    elif kind == "drop_field":
        lines[i] = lines[i].rsplit(",", 1)[0]
    elif kind == "stray_quote":
        cut = len(lines[i]) // 2
        lines[i] = lines[i][:cut] + '"' + lines[i][cut:]
    elif kind == "blank":
        lines.insert(i, "")
    elif kind == "garbage":
        lines.insert(i, junk)
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "delete" and i > 0:
        del lines[i]
    elif kind == "truncate":
        lines[i] = lines[i][: len(lines[i]) // 3]
    return "\n".join(lines) + "\n"


def write_export(folder: Path, cells, raws, encoding: str) -> None:
    frames = {t: df.copy() for t, df in FRAMES.items()}
    for table, r, c, value in cells:
        df = frames[table]
        df.iat[r % len(df), c % df.shape[1]] = value
    texts = {t: df.to_csv(index=False, lineterminator="\n") for t, df in frames.items()}
    for table, line, kind, junk in raws:
        texts[table] = corrupt_raw(texts[table], line, kind, junk)
    for t, text in texts.items():
        (folder / f"{t}.csv").write_bytes(text.encode(encoding, errors="replace"))


def check_invariants(cl) -> None:
    counts = cl.counts
    assert list(counts.columns) == ["table", "read", "loaded", "quarantined"]
    for rec in counts.to_dict("records"):
        assert rec["read"] == rec["loaded"] + rec["quarantined"], rec

    rep = cl.report
    if not cl.usable:
        for t in ("clients", "sessions", "clinicians"):
            assert len(getattr(cl, t)) == 0, f"unusable, but {t} has rows"
        assert (rep["severity"] == "error").any(), "unusable without an error saying why"
        return

    by_table = {rec["table"]: rec for rec in counts.to_dict("records")}
    errors = rep[rep["severity"] == "error"]
    for t, rec in by_table.items():
        q = cl.quarantine.get(t)
        q_rows = set() if q is None else set(q["source_row"].astype(int))
        assert rec["quarantined"] == (0 if q is None else len(q)), (t, rec)
        loaded = getattr(cl, t, None)
        if loaded is not None:
            assert rec["loaded"] == len(loaded), (t, rec, len(loaded))
            both = q_rows & set(loaded["source_row"].astype(int))
            assert not both, f"{t}: rows both loaded and quarantined: {sorted(both)}"
        err_rows = set(errors.loc[errors["table"] == t, "row"].dropna().astype(int))
        unexplained = q_rows - err_rows
        assert not unexplained, (
            f"{t}: quarantined rows without an error report line: {sorted(unexplained)}\n"
            + rep[rep["table"] == t].to_string()
        )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    cells=st.lists(cell_edit, min_size=1, max_size=6),
    raws=st.lists(raw_edit, max_size=2),
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "cp1252"]),
)
def test_corrupted_export_never_raises_and_loses_no_row(cells, raws, encoding):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_export(folder, cells, raws, encoding)
        cl = supervision.load_caseload(str(folder))  # must not raise
        check_invariants(cl)


def test_uncorrupted_base_satisfies_the_invariants():
    with tempfile.TemporaryDirectory() as tmp:
        write_export(Path(tmp), [], [], "utf-8")
        cl = supervision.load_caseload(tmp)
        check_invariants(cl)
        assert cl.usable and len(cl.report) == 0, cl.report.to_string()
