"""Safe tabular export: cells a spreadsheet would run as a formula are neutralised.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return can be executed by
Excel or LibreOffice when the CSV is opened (CSV/formula injection, OWASP). Such text cells are
prefixed with a single quote; numbers are left alone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot be executed as spreadsheet formulas."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
            continue
        out[col] = s.map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    return out


def write_safe_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV (with BOM, so Excel reads accents) after neutralising formulas."""
    path = Path(path)
    neutralise_formulas(frame).to_csv(path, index=False, encoding="utf-8-sig")
    return path
