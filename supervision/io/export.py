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
    neutralise_formulas(frame).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return path


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
