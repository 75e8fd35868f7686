"""Safe tabular export: cells a spreadsheet would run as a formula are neutralised.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return can be executed by
Excel or LibreOffice when the CSV is opened (CSV/formula injection, OWASP "CSV Injection"). Such
text cells (and column names) are prefixed with a single quote, so the spreadsheet shows the text
instead of running it; the same holds when the formula character follows leading spaces or line
breaks. Numbers are left alone, and so is text that is just a number (``-3``, ``+1.5``): a
spreadsheet reads those as numbers, not formulas.

:func:`write_safe_csv` writes one table as CSV, :func:`write_safe_excel` several tables as one
``.xlsx`` workbook (one sheet per table, every text cell stored as text, never as a formula).
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Characters skipped before looking for a formula start: a spreadsheet may ignore them.
_LEADING = " \n\r\t\u00a0"
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Excel refuses these sheet-name characters; the name is at most 31 characters.
_BAD_SHEET_CHARS = set("[]:*?/\\")


def _is_formula_like(v: str) -> bool:
    if not v:
        return False
    if v.startswith(("\t", "\r")):
        return True
    stripped = v.lstrip(_LEADING)
    if not stripped.startswith(FORMULA_START):
        return False
    return _PLAIN_NUMBER.fullmatch(stripped) is None or stripped != v


def neutralise_text(value):
    """``value`` with a leading single quote when a spreadsheet would run it as a formula.

    Non-text values are returned unchanged.
    """
    if isinstance(value, str) and _is_formula_like(value):
        return "'" + value
    return value


def _flags(x: pd.Series) -> np.ndarray:
    """A true/false array from any pandas boolean result (numpy, nullable or Arrow); missing = False."""
    return x.astype("boolean").fillna(False).to_numpy(dtype=bool)


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names cannot be executed as formulas."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
            continue
        if isinstance(s.dtype, pd.StringDtype):  # vectorised; the same rule as neutralise_text
            stripped = s.str.lstrip(_LEADING)
            plain = _flags(stripped.str.fullmatch(_PLAIN_NUMBER.pattern)) & _flags(stripped == s)
            mask = _flags(s.str.startswith(("\t", "\r"))) | (_flags(stripped.str.startswith(FORMULA_START)) & ~plain)
            if mask.any():
                out[col] = s.where(~mask, "'" + s)
            continue
        out[col] = s.map(neutralise_text)
    out.columns = [neutralise_text(c) for c in out.columns]
    return out


def write_safe_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV (with BOM, so Excel reads accents) after neutralising formulas.

    Lines end in CRLF (RFC 4180), so any cell holding a line break or a lone carriage return is
    quoted and cannot start a new row when the file is opened.
    """
    path = Path(path)
    safe = neutralise_formulas(frame)
    if not _fast_csv(safe, path):
        safe.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path


# -- a fast CSV writer: pandas' text, built column by column with Arrow -------------------------------
#
# ``DataFrame.to_csv`` formats every cell in Python; at service scale (a million sessions) the metric
# tables took ~45 s to write. :func:`_fast_csv` builds the same text with Arrow's compute kernels: each
# column becomes its cells' text (as pandas writes them: ``True``/``False``, ISO dates, floats in
# Python's shortest form, empty for missing, minimal quoting), the columns are joined row by row and
# the bytes are written in blocks. Byte-identical to ``to_csv(index=False, encoding="utf-8-sig",
# lineterminator="\r\n")`` (tests/test_export_csv.py); a frame it does not know how to format
# exactly is left to pandas (the caller falls back).

_CSV_BLOCK = 250_000  # rows per block: bounds the memory of the row texts
_NEEDS_QUOTES = r'[,"\r\n]'


def _quoted(text):
    """Arrow strings quoted as Python's csv module does (QUOTE_MINIMAL, delimiter ``,``, CRLF)."""
    import pyarrow.compute as pc

    needs = pc.fill_null(pc.match_substring_regex(text, _NEEDS_QUOTES), False)
    if not pc.any(needs).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, text)


def _float_text(values: np.ndarray):
    """float64 cells as pandas writes them (``repr``: ``1.0``, ``0.1``, ``1e-05``; missing empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = np.isnan(values)
    arr = pa.array(values, mask=missing)
    text = pc.cast(arr, pa.string())  # Arrow's shortest round-trip digits, as repr, but "1" for 1.0
    with np.errstate(invalid="ignore"):
        mag = np.abs(values)
        integral = (values == np.floor(values)) & (mag < 1e16)
        odd = ~missing & ((mag >= 1e16) | ((mag < 1e-4) & (values != 0)) | ~np.isfinite(values))
    # Arrow writes large round numbers with an exponent (1e+10) where Python does not: those cells too
    odd |= pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False) & ~odd
    if integral.any():
        text = pc.if_else(pa.array(integral & ~odd), pc.binary_join_element_wise(text, ".0", ""), text)
    if odd.any():  # exponents and infinities: Python's own text for these (few) cells
        text = pc.replace_with_mask(text, pa.array(odd), pa.array([repr(float(v)) for v in values[odd]], type=pa.string()))
    return text


def _pandas_text(s: pd.Series):
    """A column's cells formatted by pandas itself (for dtypes without a fast path), or None."""
    import pyarrow as pa

    if len(s) == 0:
        return pa.array([], type=pa.string())
    lines = s.to_frame().to_csv(index=False, header=False, lineterminator="\n").split("\n")[:-1]
    return pa.array(lines, type=pa.string()) if len(lines) == len(s) else None  # a quoted line break: unsure


def _column_text(s: pd.Series):
    """The text of one column's cells (Arrow strings, null = empty cell), or None when unsure."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        return _column_text(s.astype(dt.categories.dtype))
    if pd.api.types.is_bool_dtype(dt):
        missing = s.isna().to_numpy()
        arr = pa.array(s.astype("boolean").to_numpy(dtype=bool, na_value=False), mask=missing if missing.any() else None)
        return pc.if_else(arr, "True", "False")
    if pd.api.types.is_integer_dtype(dt):
        missing = s.isna().to_numpy()
        if missing.any():
            arr = pa.array(s.astype("Int64").to_numpy(dtype="int64", na_value=0), mask=missing)
        else:
            arr = pa.array(s.to_numpy())
        return pc.cast(arr, pa.string())
    if dt == np.float64 or dt == pd.Float64Dtype():
        return _float_text(s.to_numpy(dtype="float64", na_value=np.nan))
    if isinstance(dt, np.dtype) and dt.kind == "M":  # naive datetimes
        v = s.to_numpy()
        ok = ~np.isnat(v)
        day = v.astype("datetime64[D]")
        if (v[ok] == day[ok]).all():  # all at midnight: pandas writes the date alone
            return pc.cast(pa.array(day, mask=~ok), pa.string())
        return _pandas_text(s)
    if isinstance(dt, pd.StringDtype) or dt == object:
        if dt == object and not s.map(lambda v: v is None or isinstance(v, str)
                                      or (isinstance(v, float) and np.isnan(v))).all():
            return None  # mixed objects: pandas formats them
        if isinstance(dt, pd.StringDtype) and dt.storage == "pyarrow":
            arr = pa.array(s.array)  # Arrow's own strings: no copy through Python objects
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            arr = arr.cast(pa.string())
        else:
            arr = pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.string())
        return _quoted(arr)
    return _pandas_text(s)  # other numbers, times with a time of day, periods...: pandas' own text


class _Unsure(Exception):
    pass


def _fast_csv(frame: pd.DataFrame, path: Path) -> bool:
    """Write ``frame`` as pandas would (see above); False when a column is not handled (pandas then writes it)."""
    import csv
    import io

    import pyarrow as pa
    import pyarrow.compute as pc

    cols = list(frame.columns)
    if len(cols) < 2 or len(set(cols)) != len(cols) or not all(isinstance(c, str) for c in cols):
        return False  # one column (pandas quotes an empty cell) or unusual headers: pandas writes it
    head = io.StringIO()
    csv.writer(head, lineterminator="\r\n").writerow(cols)
    try:
        with open(path, "wb") as fh:
            fh.write(head.getvalue().encode("utf-8-sig"))
            for start in range(0, len(frame), _CSV_BLOCK):
                part = frame.iloc[start:start + _CSV_BLOCK]
                texts = [_column_text(part[c]) for c in cols]
                if any(t is None for t in texts):
                    raise _Unsure
                line = pc.binary_join_element_wise(*texts, ",", null_handling="replace", null_replacement="")
                line = pc.binary_join_element_wise(line, "", "\r\n")
                if isinstance(line, pa.ChunkedArray):
                    line = line.combine_chunks()
                offsets = np.frombuffer(line.buffers()[1], dtype=np.int64 if line.type == pa.large_string() else np.int32)
                first, last = offsets[line.offset], offsets[line.offset + len(line)]
                fh.write(memoryview(line.buffers()[2])[first:last])
    except _Unsure:
        return False
    return True


def _excel_value(v):
    """A value openpyxl can store: Python scalars, naive datetimes, None for missing."""
    if v is None:
        return None
    if isinstance(v, (list, tuple, set, dict)):
        return str(v)
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return str(v)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, _dt.datetime) and v.tzinfo is not None:
        v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    if isinstance(v, pd.Timedelta):
        return str(v)
    if isinstance(v, (int, float, _dt.datetime, _dt.date, _dt.time)):
        return v
    return str(v)


def _check_sheet_name(name) -> str:
    text = str(name)
    bad = sorted(set(text) & _BAD_SHEET_CHARS)
    if not text or len(text) > 31 or bad or text.startswith("'") or text.endswith("'"):
        raise ValueError(
            f"Sheet name {text!r} cannot be used in an Excel workbook: it must be 1-31 characters, "
            f"without any of [ ] : * ? / \\ and not start or end with a quote"
            + (f" (it contains {' '.join(bad)})" if bad else "") + ". Rename the table."
        )
    return text


def write_safe_excel(frames: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """Write tables as one ``.xlsx`` workbook (a sheet per table) with formulas neutralised.

    Parameters
    ----------
    frames : dict of str to DataFrame
        Sheet name -> table, written in the dict's order. Sheet names follow Excel's rules
        (1-31 characters, none of ``[ ] : * ? / \\``); others are refused with a ``ValueError``.
    path : str or Path
        The workbook to write (``.xlsx``).

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Text cells and column names are neutralised as in :func:`neutralise_formulas` (a leading
    single quote before ``=``, ``+``, ``-``, ``@``, tab or carriage return), and every text cell is
    stored with the *string* cell type, so no cell of the workbook is ever a formula (openpyxl's
    ``data_type`` is never ``'f'``). Control characters that XML cannot hold (``\\x00``-``\\x08``,
    ``\\x0b``, ``\\x0c``, ``\\x0e``-``\\x1f``) are replaced with U+FFFD. Time-zone-aware datetimes are
    written in UTC without the zone (Excel has no time zones).
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if not frames:
        raise ValueError("write_safe_excel needs at least one table (frames is empty).")
    names = [_check_sheet_name(n) for n in frames]
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"Sheet names must differ (Excel ignores case); got {names}.")
    path = Path(path)
    wb = Workbook(write_only=True)

    def cell(ws, v):
        v = _excel_value(v)
        if isinstance(v, str):
            v = neutralise_text(ILLEGAL_CHARACTERS_RE.sub("\ufffd", v))
        c = WriteOnlyCell(ws, value=v)
        if isinstance(v, str):
            c.data_type = "s"  # text, never a formula, whatever it starts with
        return c

    for name, frame in zip(names, frames.values()):
        ws = wb.create_sheet(title=name)
        ws.append([cell(ws, str(c)) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            ws.append([cell(ws, v) for v in row])
    wb.save(path)
    return path
