"""The data contract (DESIGN §3, documented for users in ``data/README.md``) and its validation.

Validation happens once, at the boundary, lazily: every problem in every table is collected
into one report with the columns :data:`REPORT_COLUMNS`, and nothing past the loader re-checks.

How it works, per table:

1. required columns present (else the export is unusable: ``missing_column``);
2. text cleaned (trimmed, empty -> missing) and cells coerced: dates (ISO 8601, or d/m/y per the
   ``data.day_first`` setting), numbers, yes/no values, category codes (case and ``-`` or space
   folded to ``_``); a cell that cannot be coerced is reported with its original text;
3. the per-column rules of the contract run as a pandera schema with ``lazy=True``
   (required values, allowed codes, instrument ranges, no future dates);
4. cross-row and cross-table rules run as vectorised pandas (duplicates, unknown clients,
   clinician mismatch, sessions outside the episode, scores on non-attended sessions).

A problem's ``severity`` decides what happens to the row: ``error`` quarantines it (kept in
``Caseload.quarantine``, counted, never used), ``warning`` keeps it; where the warning is about
one cell (an out-of-range score, an unknown focus code) that cell is cleared so no metric uses
it. Invariant: for every table, rows read = rows loaded + rows quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from supervision.config import Settings
from supervision.instruments import instruments, measure_columns

REPORT_COLUMNS = ["table", "row", "column", "value", "problem", "fix", "severity", "check"]
SOURCE_ROW = "source_row"

ATTENDANCE = ("attended", "cancelled", "no_show")
END_REASONS = ("planned", "mutual", "unilateral", "referred_on", "other")
IDENTITY_MISSING = ("declined", "not_recorded")
TRUE_WORDS = {"true", "yes", "y", "1", "1.0", "t"}
FALSE_WORDS = {"false", "no", "n", "0", "0.0", "f"}


@dataclass(frozen=True)
class Col:
    """One column of the contract."""

    name: str
    kind: str  # id | text | date | category | code | codes | bool | number
    required: bool = False  # the column must exist
    nonnull: bool = False   # every row needs a value (else the row is quarantined)
    allowed: tuple[str, ...] = ()
    description: str = ""


def contract(settings: Settings) -> dict[str, list[Col]]:
    """The contract's tables and columns (identity dimensions and measures from the settings)."""
    identity = [Col(d, "text", description="identity/context dimension") for d in settings.identity_dimensions]
    measures = [Col(c, "number", description=f"{inst.name} ({lo:g}-{hi:g})")
                for c, (inst, lo, hi) in measure_columns(settings).items()]
    return {
        "clients": [
            Col("client_id", "id", True, True, description="pseudonymous client episode id, unique"),
            Col("clinician_id", "id", True, True, description="the clinician seeing this client"),
            Col("start_date", "date", True, True, description="first day of the episode"),
            Col("end_date", "date", description="last day; empty = ongoing"),
            Col("end_reason", "category", allowed=END_REASONS, description="why the episode ended"),
            Col("agreed_goals", "codes", description="';'-separated focus codes"),
            *identity,
        ],
        "sessions": [
            Col("client_id", "id", True, True),
            Col("clinician_id", "id", True, True),
            Col("session_date", "date", True, True),
            Col("attendance", "category", True, True, allowed=ATTENDANCE),
            Col("modality", "text"),
            Col("focus_primary", "code"),
            Col("focus_secondary", "codes"),
            Col("agenda_set", "bool"),
            Col("identity_addressed", "bool"),
            *measures,
        ],
        "clinicians": [
            Col("clinician_id", "id", True, True),
            Col("supervisor_id", "id"),
            Col("role", "text"),
        ],
        "scores": [
            Col("client_id", "id", True, True),
            Col("session_date", "date", True, True),
            Col("instrument", "category", True, True, allowed=tuple(instruments(settings))),
            Col("item", "text", True, True),
            Col("value", "number", True, True),
        ],
    }


REQUIRED_TABLES = ("clients", "sessions")


def _problem(table, row, column, value, problem, fix, severity, check) -> dict:
    return {"table": table, "row": row, "column": column, "value": value, "problem": problem,
            "fix": fix, "severity": severity, "check": check}


def _show_value(v):
    """A cell as the user wrote it, as nearly as a typed value allows (7.0 -> '7', dates ISO)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return v
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, pd.Timestamp):
        return f"{v:%Y-%m-%d}"
    return str(v)[:200]


class Collector:
    """Collects report rows; vectorised: one call adds the rows of many failing cells."""

    def __init__(self):
        self.frames: list[pd.DataFrame] = []
        self.rows: list[dict] = []

    def add(self, problem: dict) -> None:
        self.rows.append(problem)

    def add_many(self, table: str, frame: pd.DataFrame, mask, column: str, values, problem, fix,
                 severity: str, check: str) -> None:
        """Add one report row for every True in ``mask``.

        ``values``, ``problem`` and ``fix`` may be scalars, Series, or callables returning those
        (evaluated only when some row fails).
        """
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        # callables are evaluated only now, when some row fails (building texts for every row is slow)
        values, problem, fix = (x() if callable(x) else x for x in (values, problem, fix))
        def pick(x):
            return x[mask] if isinstance(x, (pd.Series, np.ndarray)) else x
        part = pd.DataFrame({
            "table": table,
            "row": frame[SOURCE_ROW].to_numpy()[mask],
            "column": column,
            "value": pd.Series(pick(values)).astype(object).to_numpy() if isinstance(values, (pd.Series, np.ndarray)) else values,
            "problem": pick(problem.to_numpy() if isinstance(problem, pd.Series) else problem),
            "fix": pick(fix.to_numpy() if isinstance(fix, pd.Series) else fix),
            "severity": severity,
            "check": check,
        })
        self.frames.append(part)

    def frame(self) -> pd.DataFrame:
        parts = [f for f in self.frames if len(f)]
        if self.rows:
            parts.append(pd.DataFrame(self.rows))
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in REPORT_COLUMNS})
        out = pd.concat(parts, ignore_index=True)[REPORT_COLUMNS]
        out["row"] = pd.to_numeric(out["row"], errors="coerce").astype("Int64")
        out["value"] = out["value"].map(_show_value).astype(object)
        return out.sort_values(["table", "row", "column"], na_position="first", kind="stable").reset_index(drop=True)


# --- coercion ----------------------------------------------------------------------------------
#
# A column of an export holds few distinct values (a million sessions, a thousand dates, three
# attendance codes, a few hundred thousand client ids), so every text operation below runs once
# per distinct value and is taken back to the rows by integer codes (``per_value``). Text columns
# stay pandas Categoricals inside the loader; ``supervision.io`` turns them into strings at the end.

def distinct(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``(codes, uniques)``: each row's position in ``uniques`` (-1 where missing)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(), s.cat.categories
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return codes, pd.Index(uniques)


def _is_text(res: pd.Series) -> bool:
    return res.dtype == object or pd.api.types.is_string_dtype(res.dtype)


def take_codes(res: pd.Series, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """Per-distinct-value results ``res`` taken back to every row (code -1 -> missing).

    Text results come back as a Categorical with sorted categories (so sorting by it sorts by the
    text); other results keep their dtype.
    """
    if _is_text(res):
        if _increasing(res):  # distinct and in order already: the codes stand as they are
            ru = res
        else:
            rc, ru = pd.factorize(res, sort=True, use_na_sentinel=True)
            # code -1 (a missing cell) takes the trailing -1; the new codes in the narrowest integer
            # type, as the Categorical keeps them (no wide temporary for a column of millions of rows)
            codes = np.append(rc, -1).astype(_codes_dtype(len(ru)))[codes]
        return pd.Series(pd.Categorical.from_codes(codes, categories=ru.astype("str"), validate=False), index=index)
    if isinstance(res.dtype, np.dtype) and res.dtype.kind in "fM":  # floats, datetimes: a plain gather
        values = res.to_numpy()
        missing = np.array(["NaT"], dtype=values.dtype) if values.dtype.kind == "M" else np.array([np.nan], dtype=values.dtype)
        return pd.Series(np.append(values, missing)[codes], index=index, copy=False)
    if isinstance(res.dtype, pd.BooleanDtype):  # yes/no: a gather of values and mask
        values = np.append(res.to_numpy(dtype=bool, na_value=False), False)[codes]
        mask = np.append(res.isna().to_numpy(), True)[codes]
        return pd.Series(pd.arrays.BooleanArray(values, mask, copy=False), index=index, copy=False)
    missing = pd.Series([None], dtype=res.dtype)
    ext = pd.concat([res.reset_index(drop=True), missing], ignore_index=True)
    return pd.Series(ext.take(codes).to_numpy(), index=index, dtype=res.dtype)


def _codes_dtype(n: int) -> type:
    """The integer type pandas keeps a Categorical's codes in for ``n`` categories."""
    for dtype in (np.int8, np.int16, np.int32):
        if n < np.iinfo(dtype).max:
            return dtype
    return np.int64


def _increasing(text: pd.Series) -> bool:
    """Text values strictly in order (so distinct), none missing."""
    values = text.to_numpy(dtype=object)
    if text.isna().any() or not all(isinstance(v, str) for v in values[:1]):
        return False
    try:
        return bool(np.all(values[1:] > values[:-1]))
    except TypeError:  # not all text
        return False


def per_value(s: pd.Series, fn) -> pd.Series:
    """``fn`` (a Series of distinct values -> a Series as long) run once per distinct value of ``s``."""
    codes, uniques = distinct(s)
    res = pd.Series(fn(pd.Series(uniques, dtype=uniques.dtype))).reset_index(drop=True)
    if (isinstance(s.dtype, pd.CategoricalDtype) and s.cat.categories.dtype == "str" and _is_text(res)
            and np.array_equal(res.to_numpy(dtype=object), uniques.to_numpy(dtype=object)) and _increasing(res)):
        return s.rename(None)  # nothing changed and the categories are in order: the column as it is
    return take_codes(res, codes, s.index)


def _clean_values(u: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(u) or pd.api.types.is_bool_dtype(u):
        return u.astype(object).map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)).astype(object)
    out = u.astype("str").str.strip()
    return out.where(out != "").astype(object)


def _clean_text(s: pd.Series) -> pd.Series:
    """Trimmed text with empty cells as missing, as a Categorical of strings."""
    return per_value(s, _clean_values)


def _fold_code(s: pd.Series) -> pd.Series:
    """Category codes compared case-blind, with '-' and spaces read as '_' (No-show = no_show)."""
    return per_value(s, lambda u: u.astype("str").str.lower().str.replace("-", "_", regex=False)
                     .str.replace(" ", "_", regex=False).astype(object))


def _parse_date_values(raw: pd.Series, day_first: bool) -> pd.Series:
    if raw.dtype == object and pd.api.types.infer_dtype(raw, skipna=True) in ("date", "datetime"):
        # Parquet date32 and Excel cells arrive as date/datetime objects
        return pd.to_datetime(raw, errors="coerce").dt.normalize()
    text = raw.astype("str").str.strip()
    text = text.where(text != "")
    # "2025-03-14T00:00:00" or "2025-03-14 00:00:00" (spreadsheets, databases): the date part
    stamped = text.str.contains("T", regex=False) | text.str.endswith(" 00:00:00")
    text = text.where(~stamped.fillna(False), text.str.slice(0, 10))
    out = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    rest = out.isna() & text.notna()
    if rest.any():
        sub = text[rest].str.replace(r"[./]", "-", regex=True)
        fmt = "%d-%m-%Y" if day_first else "%m-%d-%Y"
        out[rest] = pd.to_datetime(sub, format=fmt, errors="coerce")
    return out


def parse_dates(raw: pd.Series, day_first: bool) -> pd.Series:
    """Dates from ISO 8601 text (or datetime values); d/m/y or m/d/y text per ``day_first``.

    Returns a datetime64 Series normalised to midnight; unparseable or impossible dates
    (2025-02-30) are NaT, for the caller to report.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        out = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
        return pd.Series(_plausible(out.to_numpy()), index=raw.index, copy=False)
    return per_value(raw, lambda u: pd.Series(_plausible(_parse_date_values(u, day_first).to_numpy())))


def _plausible(when: np.ndarray, block: int = 1 << 18) -> np.ndarray:
    """Midnight of each datetime (floored, as ``Series.dt.normalize``), NaT outside 1900-2199
    (year 0, 9999: typing errors), as nanosecond datetimes.

    Worked out in row blocks into one new array: a column of millions of dates then takes no
    full-length temporaries.
    """
    out = np.empty(len(when), dtype="datetime64[ns]")
    for start in range(0, len(when), block):
        day = when[start:start + block].astype("datetime64[D]")
        ok = (day >= np.datetime64("1900-01-01")) & (day < np.datetime64("2200-01-01"))  # NaT: False
        out[start:start + block] = np.where(ok, day, np.datetime64("NaT"))
    return out


def _number_values(raw: pd.Series) -> pd.Series:
    text = raw.astype("str").str.strip().str.replace(",", ".", regex=False)
    return pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")


def parse_numbers(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    return per_value(raw, _number_values)


def _bool_values(text: pd.Series) -> pd.Series:
    low = text.map(lambda v: v if v is None else str(v).lower(), na_action="ignore")
    out = pd.Series(pd.NA, index=text.index, dtype="boolean")
    out[low.isin(TRUE_WORDS)] = True
    out[low.isin(FALSE_WORDS)] = False
    return out


def parse_bools(text: pd.Series) -> pd.Series:
    return per_value(text, _bool_values)


# --- table validation --------------------------------------------------------------------------

_FIX = {
    "missing_value": "Fill in this value; the row cannot be used without it.",
    "bad_date": "Write the date as YYYY-MM-DD (for example 2025-03-14) and check that the day exists.",
    "future_date": "Check the year: the export should only hold dates up to today.",
    "not_numeric": "Write a number (use . for decimals) or leave the cell empty if the measure was not taken.",
}


# Optional dates whose unreadable value quarantines the row instead of being cleared: an empty
# end_date means "ongoing", so clearing an unreadable one would turn an ended episode into an open one.
_STRICT_DATES = {("clients", "end_date")}


def _unless_missing(name: str, test) -> pa.Check:
    """A check that passes empty cells, without pandera's copy of the column minus its empty cells
    (``ignore_na``): a measure column of a service is mostly empty and a million rows long."""
    return pa.Check(lambda s: s.isna() | test(s), name=name, ignore_na=False)


def _pandera_rules(table: str, cols: list[Col], present: set[str], today: pd.Timestamp,
                   settings: Settings | None = None) -> tuple[pa.DataFrameSchema, dict]:
    """Per-column rules as a pandera schema; returns it and (column, check_number) -> check code."""
    columns, codes = {}, {}
    meas = measure_columns(settings)
    for col in cols:
        if col.name not in present:
            continue
        checks, names = [], []
        if col.kind == "category" and col.allowed:
            checks.append(_unless_missing("isin", lambda s, allowed=list(col.allowed): s.isin(allowed)))
            names.append("unknown_code")
        if col.kind == "date":
            checks.append(_unless_missing("less_than_or_equal_to", lambda s: s <= today))
            names.append("future_date")
        if col.kind == "number" and col.name in meas:
            _, lo, hi = meas[col.name]
            checks.append(_unless_missing("in_range", lambda s, lo=lo, hi=hi: (s >= lo) & (s <= hi)))
            names.append("out_of_range")
            inst = meas[col.name][0]
            if inst.whole_items and col.name != inst.total_column:
                checks.append(_unless_missing("whole", lambda s: s % 1 == 0))
                names.append("not_whole")
        if not checks and not col.nonnull:
            continue  # nothing to check in this column
        columns[col.name] = pa.Column(None, checks=checks, nullable=not col.nonnull, required=False)
        for i, name in enumerate(names):
            codes[(col.name, i)] = name
    return pa.DataFrameSchema(columns), codes


def _run_pandera(schema: pa.DataFrameSchema, frame: pd.DataFrame, codes: dict) -> pd.DataFrame:
    """Failure cases as (index, column, check code, value)."""
    try:
        schema.validate(frame, lazy=True, inplace=True)  # the rules only read: no copy of the table
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        fc = fc[fc["index"].notna()].copy()
        def code(r):
            if r["check"] == "not_nullable":
                return "missing_value"
            return codes.get((r["column"], int(r["check_number"])) if pd.notna(r["check_number"]) else None, str(r["check"]))
        fc["code"] = fc.apply(code, axis=1) if len(fc) else pd.Series(dtype=object)
        return fc[["index", "column", "code", "failure_case"]]
    return pd.DataFrame(columns=["index", "column", "code", "failure_case"])


@dataclass
class TableResult:
    frame: pd.DataFrame       # typed frame, all rows still present
    error: pd.Series          # bool per row: quarantine


def coerce_table(table: str, raw: pd.DataFrame, file: str, settings: Settings, today: pd.Timestamp,
                 rep: Collector) -> TableResult | None:
    """Check columns, coerce cells and run the per-column rules of one table.

    Returns None (and reports ``missing_column``) when a required column is missing.
    """
    cols = contract(settings)[table]
    by_name = {c.name: c for c in cols}
    present = [c for c in raw.columns if c != SOURCE_ROW]
    missing = [c.name for c in cols if c.required and c.name not in present]
    if not present:
        rep.add(_problem(table, pd.NA, pd.NA, pd.NA, f"{file} is empty: it has no header line and no rows.",
                         "Export the table again; the first line must name the columns (see data/README.md).",
                         "error", "missing_column"))
        return None
    if missing:
        for name in missing:
            rep.add(_problem(table, pd.NA, name, pd.NA,
                             f"{file} has no column '{name}', which the workbook needs.",
                             f"Add the column '{name}' (see data/README.md), or rename the column that holds it. "
                             f"Columns found: {', '.join(present) or '(none)'}.", "error", "missing_column"))
        return None
    for name in present:
        if name not in by_name:
            rep.add(_problem(table, pd.NA, name, pd.NA, f"Column '{name}' in {file} is not part of the data contract and was ignored.",
                             "Rename it if it holds one of the contract's columns (see data/README.md); otherwise nothing to do.",
                             "warning", "unknown_column"))
    dup_cols = pd.Index(present)[pd.Index(present).duplicated()].unique()
    for name in dup_cols:
        rep.add(_problem(table, pd.NA, name, pd.NA, f"Column '{name}' appears more than once in {file}; the first was used.",
                         "Remove or rename the duplicate column.", "warning", "duplicate_column"))
    raw = raw.loc[:, ~raw.columns.duplicated()]

    out = pd.DataFrame({SOURCE_ROW: raw[SOURCE_ROW].to_numpy()}, index=raw.index)
    error = pd.Series(False, index=raw.index)
    day_first = settings["data"]["day_first"]
    for col in cols:
        if col.name not in raw.columns:
            continue
        s = raw[col.name]
        if col.kind == "date":
            parsed = parse_dates(s, day_first)
            text = s if pd.api.types.is_datetime64_any_dtype(s) else _clean_text(s)
            bad = parsed.isna() & text.notna()
            strict = col.nonnull or (table, col.name) in _STRICT_DATES
            sev = "error" if strict else "warning"
            rep.add_many(table, raw, bad, col.name, text, f"'{col.name}' is not a valid date.",
                         _FIX["bad_date"] + ("" if strict else " The cell was cleared."), sev, "bad_date")
            if strict:
                error |= bad
            out[col.name] = parsed
        elif col.kind == "number":
            parsed = parse_numbers(s)
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                text, bad = s, pd.Series(False, index=s.index)  # typed numbers (Parquet): nothing to parse
            else:
                text = _clean_text(s)
                bad = parsed.isna() & text.notna()
            sev = "error" if col.nonnull else "warning"
            rep.add_many(table, raw, bad, col.name, text, f"'{col.name}' is not a number.",
                         _FIX["not_numeric"] + ("" if col.nonnull else " The cell was cleared."), sev, "not_numeric")
            if col.nonnull:
                error |= bad
            out[col.name] = parsed
        elif col.kind == "bool" and (pd.api.types.is_bool_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)):
            out[col.name] = s.astype("boolean")  # typed yes/no (Parquet): nothing to parse
        elif col.kind == "bool":
            text = _clean_text(s)
            parsed = parse_bools(text)
            bad = parsed.isna() & text.notna()
            rep.add_many(table, raw, bad, col.name, text, f"'{col.name}' should be true or false.",
                         "Write true or false (yes/no and 1/0 are also read). The cell was cleared.", "warning", "bad_boolean")
            out[col.name] = parsed
        elif col.kind == "category":
            out[col.name] = _fold_code(_clean_text(s))
        else:
            out[col.name] = _clean_text(s)

    # Per-column rules (pandera, lazy).
    schema, codes = _pandera_rules(table, cols, set(out.columns), today, settings)
    fc = _run_pandera(schema, out, codes)
    fc = fc[~fc["index"].isin(out.index[error])] if len(fc) else fc  # a cell already reported as unreadable
    for (column, code), part in fc.groupby(["column", "code"], sort=False):
        mask = out.index.isin(part["index"])
        col = by_name[column]
        values = _clean_text(raw[column]) if column in raw.columns else part["failure_case"]
        if code == "missing_value":
            if col.kind in ("date", "number"):
                mask = mask & (_clean_text(raw[column]).isna().to_numpy())  # unreadable values already reported
            rep.add_many(table, raw, mask, column, values, f"'{column}' is empty.", _FIX["missing_value"], "error", code)
            error |= mask
        elif code == "unknown_code":
            rep.add_many(table, raw, mask, column, values,
                         f"'{column}' has an unknown value.",
                         f"Use one of: {', '.join(col.allowed)}.", "error", code)
            error |= mask
        elif code == "future_date":
            if col.nonnull:
                rep.add_many(table, raw, mask, column, values, f"'{column}' is in the future.", _FIX["future_date"], "error", code)
                error |= mask
            else:
                rep.add_many(table, raw, mask, column, values, f"'{column}' is in the future.",
                             _FIX["future_date"] + " The cell was cleared.", "warning", code)
                out.loc[mask, column] = pd.NaT
        elif code == "not_whole":
            inst = measure_columns(settings)[column][0]
            rep.add_many(table, raw, mask, column, values,
                         f"'{column}' is not a whole number; {inst.name} answers score {inst.item_min:g} to "
                         f"{inst.item_max:g} in whole steps.",
                         f"Check the answer; {column} takes one of the questionnaire's scores. The cell was cleared.",
                         "warning", code)
            out.loc[mask, column] = np.nan
        elif code == "out_of_range":
            inst, lo, hi = measure_columns(settings)[column]
            sev = "error" if col.nonnull else "warning"
            rep.add_many(table, raw, mask, column, values, f"'{column}' is outside the {inst.name} range {lo:g}-{hi:g}.",
                         f"Check the score; {column} must be between {lo:g} and {hi:g}. The cell was cleared.", sev, code)
            out.loc[mask, column] = np.nan
    return TableResult(out, error)
