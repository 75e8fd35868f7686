"""Read another system's export without code: a column-mapping file (TOML) -> the contract's tables.

A mapping file says, for each table of the data contract (data/README.md), which file (or Excel
sheet) of the export holds it, which source column becomes which contract column, how the
system's category codes translate (``"DNA"`` -> ``no_show``), how its dates are written, and which
of its measure columns are ours (``"SRS Total"`` -> ``srs_total``). The result goes through the
same validator as any export (:func:`supervision.io.load_tables`), and every problem is reported
against the line of the *source* file.

The mapping file
----------------
::

    name = "My platform's session export"        # optional, shown in messages
    description = "..."                           # optional
    date_format = "%d/%m/%Y"                      # optional: how dates are written (strftime codes)

    [sessions]                                    # one section per table: clients and sessions
    file = "sessions_export.csv"                  # required; clinicians and scores optional
    # sheet = "Sessions"                          # for an .xlsx workbook: the sheet (default: first)
    # date_format = "%d/%m/%Y %H:%M"              # this table's dates (overrides the top one)
    # keep = { "Appointment Type" = ["Therapy"] } # read only rows with these values (counted)

    [sessions.columns]                            # contract column = "source column"
    client_id = "Client ID"
    clinician_id = "Practitioner"
    session_date = "Date"
    attendance = "Status"
    srs_total = "SRS Total"                       # measures: any <instrument>_<item> or _total

    [sessions.values.attendance]                  # "source value" = contract value
    "Attended" = "attended"
    "DNA" = "no_show"
    "Cancelled by patient" = "cancelled"

    [sessions.constants]                          # contract column = value for every row
    modality = "video"

    [clients]
    file = "sessions_export.csv"                  # a clients table made from the session rows:
    collapse = "client_id"                        # one row per client
    aggregate = { start_date = "min" }            # first (default), last, min or max

    [clients.columns]
    client_id = "Client ID"
    clinician_id = "Practitioner"
    start_date = "Date"

Keys of a table section: ``file``, ``sheet``, ``columns``, ``values``, ``constants``,
``date_format``, ``date_formats`` (per column: ``{ end_date = "%Y%m%d" }``), ``keep``, ``collapse``,
``aggregate``. Every required contract column must come from a source column or a constant.

Rules
-----
- Only mapped columns are read: everything else in the export (names, notes, contact details)
  is left behind.
- A source column is found by its exact name, or else by the same name ignoring case and
  spaces (``"client id"`` finds ``Client ID``); a missing one is reported with the columns found.
- ``values``: source values are matched exactly, or else ignoring case and surrounding spaces.
  A value that is not listed is **passed on unchanged** (never dropped), so the validator
  reports it (e.g. an unknown attendance code quarantines that session), and the import report
  names it once with how many lines have it, so it can be added to the mapping. A value mapped
  to ``""`` becomes empty.
- ``date_format``: dates in that format become ISO dates; a date with a time (``14/03/2025
  10:30``) is read by its date when the format has no time. A cell in another format is passed
  on as ``<value> (not DD/MM/YYYY)`` so the validator reports it; ISO dates are always accepted.
  Without a ``date_format``, dates are read as any export (ISO, or d/m/y per ``data.day_first``).
  Excel date cells need no format.
- ``keep``: rows whose value is not listed are left out; one warning per table says how many.
- ``collapse``: one row per value of that contract column (rows with it empty are kept as they
  are, for the validator to report). Each column takes the first non-empty value in file order
  (``first``), the last (``last``), or the smallest / largest (``min`` / ``max``: dates or
  numbers). When ``first``/``last`` choose among different values, a warning names them.
- A mapping file that cannot be used raises :class:`MappingError`, naming the key, what is
  allowed and what was given. Problems with the *data* are never raised: they are report rows.

Public functions: :func:`load_mapping`, :func:`read_mapped`, :func:`import_mapped`; the
``supervision import mapped`` command is in :mod:`supervision.cli`. Two documented examples:
``data/mappings/*.toml``.
"""

from __future__ import annotations

import datetime as _dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from supervision.io.readers import SOURCE_ROW, RawTable, _decode, read_csv_text, read_excel_sheet, text_frame

__all__ = ["MappingError", "Mapping", "TableMapping", "load_mapping", "read_mapped", "import_mapped",
           "TABLE_KEYS", "AGGREGATES"]

TABLES = ("clients", "sessions", "clinicians", "scores")
REQUIRED = ("clients", "sessions")
TOP_KEYS = ("name", "description", "date_format", *TABLES)
#: Keys of a table section and what each must be.
TABLE_KEYS: dict[str, str] = {
    "file": "text: the export's file name (in the export folder)",
    "sheet": "text: a sheet of an .xlsx workbook",
    "columns": "a table of contract column = \"source column\"",
    "values": "a table of [<table>.values.<contract column>] tables of \"source value\" = \"contract value\"",
    "constants": "a table of contract column = value",
    "date_format": "text: a strftime pattern such as \"%d/%m/%Y\"",
    "date_formats": "a table of date column = strftime pattern",
    "keep": "a table of \"source column\" = [values to keep]",
    "collapse": "text: a contract column (one row per value)",
    "aggregate": "a table of contract column = \"first\", \"last\", \"min\" or \"max\"",
}
AGGREGATES = ("first", "last", "min", "max")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HUMAN = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%H": "hh", "%M": "mm", "%S": "ss", "%b": "Mon",
          "%B": "Month", "%I": "hh", "%p": "AM/PM", "%j": "DDD"}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the key, what is allowed and the value."""


@dataclass
class TableMapping:
    table: str
    file: str | None = None
    sheet: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str | None]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)   # resolved per date column
    keep: dict[str, list[str]] = field(default_factory=dict)
    collapse: str | None = None
    aggregate: dict[str, str] = field(default_factory=dict)


@dataclass
class Mapping:
    """A checked mapping file."""

    source: str
    name: str
    description: str
    tables: dict[str, TableMapping]


# --------------------------------------------------------------------------------------------
# the mapping file
# --------------------------------------------------------------------------------------------

def _human_format(fmt: str) -> str:
    out = fmt
    for code, word in _HUMAN.items():
        out = out.replace(code, word)
    return out


def _check_format(where: str, fmt: Any) -> str:
    if not isinstance(fmt, str) or "%" not in fmt:
        raise MappingError(f"{where} must be a date pattern with strftime codes, such as \"%d/%m/%Y\" "
                           f"(%d day, %m month, %Y 4-digit year, %b month name, %H:%M time); got {fmt!r}.")
    sample = _dt.datetime(2025, 3, 14, 10, 30, 5)
    try:
        back = _dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as exc:
        raise MappingError(f"{where}: the date pattern {fmt!r} cannot be used ({exc}). Use strftime codes such as "
                           "\"%d/%m/%Y\" or \"%Y-%m-%d %H:%M\".") from None
    if back.date() != sample.date():
        raise MappingError(f"{where}: the date pattern {fmt!r} must contain a day, a month and a year "
                           "(e.g. %d, %m or %b, %Y).")
    return fmt


def _scalar(v: Any) -> str | None:
    """A TOML scalar as the text a cell would hold."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (int, float, str)):
        return str(v)
    return None


def _allowed_columns(table: str, settings) -> tuple[dict[str, Any], str]:
    from supervision.instruments import instruments
    from supervision.schema import contract

    cols = {c.name: c for c in contract(settings)[table]}
    if table == "sessions":
        measures = "; or a measure column: " + ", ".join(
            f"{p}_1..{p}_{i.items}, {p}_total" for p, i in instruments(settings).items())
        plain = [n for n, c in cols.items() if c.kind != "number" or n in ("value",)]
        shown = ", ".join(plain) + measures
    else:
        shown = ", ".join(cols)
    return cols, shown


def load_mapping(mapping_file: str | Path, settings=None) -> Mapping:
    """Read and check a mapping file.

    Raises
    ------
    MappingError
        The file is missing, not TOML, or a key or value is wrong; the message names the key
        (``[sessions.values.attendance] "DNA"``), what is allowed and what was given.
    """
    from supervision.config import load_settings

    settings = load_settings(settings)
    path = Path(mapping_file)
    src = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MappingError(f"The mapping file {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{src} is not a valid TOML file: {exc}. Check quotes around names with spaces "
                           "(\"Client ID\") and that each [section] appears once.") from None
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise MappingError(f"{src}: unknown key {', '.join(repr(k) for k in unknown)}. Allowed at the top: "
                           f"{', '.join(TOP_KEYS)} (tables are [clients], [sessions], [clinicians], [scores]).")
    for k in ("name", "description"):
        if k in data and not isinstance(data[k], str):
            raise MappingError(f"{src}: '{k}' must be text; got {data[k]!r}.")
    top_format = _check_format(f"{src}: 'date_format'", data["date_format"]) if "date_format" in data else None
    tables = {}
    for table in TABLES:
        if table in data:
            tables[table] = _table_mapping(src, table, data[table], top_format, settings)
    missing = [t for t in REQUIRED if t not in data]
    if missing:
        raise MappingError(f"{src}: no [{missing[0]}] section. A mapping must describe at least [clients] and "
                           "[sessions] (a clients table can be made from the session rows with collapse = \"client_id\").")
    return Mapping(str(path), data.get("name", path.stem), data.get("description", ""), tables)


def _table_mapping(src: str, table: str, spec: Any, top_format: str | None, settings) -> TableMapping:
    where = f"{src}: [{table}]"
    if not isinstance(spec, dict):
        raise MappingError(f"{where} must be a section ([{table}] with file = ... and [{table}.columns]); got {spec!r}.")
    unknown = [k for k in spec if k not in TABLE_KEYS]
    if unknown:
        raise MappingError(f"{where}: unknown key {', '.join(repr(k) for k in unknown)}. Allowed: {', '.join(TABLE_KEYS)}.")
    tm = TableMapping(table)
    for key in ("file", "sheet"):
        if key in spec:
            if not isinstance(spec[key], str) or not spec[key].strip():
                raise MappingError(f"{where} '{key}' must be {TABLE_KEYS[key]}; got {spec[key]!r}.")
            setattr(tm, key, spec[key].strip())
    allowed, shown = _allowed_columns(table, settings)

    def contract_col(key: str, part: str) -> str:
        if key not in allowed:
            raise MappingError(f"{src}: {part}: {key!r} is not a column of the {table} table. Allowed: {shown}.")
        return key

    columns = spec.get("columns", {})
    if not isinstance(columns, dict):
        raise MappingError(f"{where} 'columns' must be {TABLE_KEYS['columns']}; got {columns!r}.")
    for key, source in columns.items():
        contract_col(key, f"[{table}.columns]")
        if not isinstance(source, str) or not source.strip():
            raise MappingError(f"{src}: [{table}.columns] {key} must be the name of a column in the export "
                               f"(text in quotes); got {source!r}.")
        tm.columns[key] = source.strip()
    constants = spec.get("constants", {})
    if not isinstance(constants, dict):
        raise MappingError(f"{where} 'constants' must be {TABLE_KEYS['constants']}; got {constants!r}.")
    for key, value in constants.items():
        contract_col(key, f"[{table}.constants]")
        if key in tm.columns:
            raise MappingError(f"{where}: {key!r} is both in [{table}.columns] and [{table}.constants]; keep one.")
        text = _scalar(value)
        if text is None:
            raise MappingError(f"{src}: [{table}.constants] {key} must be text, a number or true/false; got {value!r}.")
        _check_target(src + ":", table, key, allowed[key], text, f"[{table}.constants] {key}")
        tm.constants[key] = text
    required = [c.name for c in allowed.values() if c.required]
    lacking = [c for c in required if c not in tm.columns and c not in tm.constants]
    if lacking:
        raise MappingError(f"{where}: no source for the required column {', '.join(repr(c) for c in lacking)}. Add "
                           f"{lacking[0]} = \"<source column>\" under [{table}.columns] (or a value under "
                           f"[{table}.constants]). Required in {table}: {', '.join(required)}.")
    values = spec.get("values", {})
    if not isinstance(values, dict):
        raise MappingError(f"{where} 'values' must be {TABLE_KEYS['values']}; got {values!r}.")
    for key, table_of in values.items():
        contract_col(key, f"[{table}.values.{key}]")
        if key not in tm.columns:
            raise MappingError(f"{src}: [{table}.values.{key}]: {key!r} is not mapped from a source column; add it to "
                               f"[{table}.columns] first (values translate that column's codes).")
        if not isinstance(table_of, dict) or not table_of:
            raise MappingError(f"{src}: [{table}.values.{key}] must be a table of \"source value\" = \"{key} value\"; "
                               f"got {table_of!r}.")
        out: dict[str, str | None] = {}
        for source_value, target in table_of.items():
            text = _scalar(target)
            if text is None:
                raise MappingError(f"{src}: [{table}.values.{key}] {source_value!r} must map to text or a number; "
                                   f"got {target!r}.")
            _check_target(src + ":", table, key, allowed[key], text, f"[{table}.values.{key}] {source_value!r}")
            out[str(source_value).strip()] = text if text != "" else None
        tm.values[key] = out
    # dates
    date_cols = [c for c, col in allowed.items() if col.kind == "date"]
    fmt = _check_format(f"{where} 'date_format'", spec["date_format"]) if "date_format" in spec else top_format
    formats = spec.get("date_formats", {})
    if not isinstance(formats, dict):
        raise MappingError(f"{where} 'date_formats' must be {TABLE_KEYS['date_formats']}; got {formats!r}.")
    for key, f in formats.items():
        if key not in date_cols:
            raise MappingError(f"{src}: [{table}.date_formats]: {key!r} is not a date column of {table}. "
                               f"Date columns: {', '.join(date_cols)}.")
        _check_format(f"{src}: [{table}.date_formats] {key}", f)
    for c in date_cols:
        if c in tm.columns and (formats.get(c) or fmt):
            tm.date_formats[c] = formats.get(c) or fmt
    keep = spec.get("keep", {})
    if not isinstance(keep, dict):
        raise MappingError(f"{where} 'keep' must be {TABLE_KEYS['keep']}; got {keep!r}.")
    for source, vals in keep.items():
        vals = [vals] if not isinstance(vals, list) else vals
        texts = [_scalar(v) for v in vals]
        if not texts or any(t is None for t in texts):
            raise MappingError(f"{src}: [{table}.keep] {source!r} must be a list of values to keep, such as "
                               f"[\"Therapy\", \"Assessment\"]; got {keep[source]!r}.")
        tm.keep[str(source).strip()] = [t.strip() for t in texts]
    if "collapse" in spec:
        c = spec["collapse"]
        if not isinstance(c, str) or (c not in tm.columns and c not in tm.constants):
            raise MappingError(f"{where} 'collapse' must name a mapped column of {table} (usually \"client_id\"); "
                               f"got {c!r}. Mapped: {', '.join(tm.columns) or '(none)'}.")
        tm.collapse = c
    agg = spec.get("aggregate", {})
    if agg and tm.collapse is None:
        raise MappingError(f"{where} 'aggregate' needs collapse = \"<column>\" (it says how rows are combined).")
    if not isinstance(agg, dict):
        raise MappingError(f"{where} 'aggregate' must be {TABLE_KEYS['aggregate']}; got {agg!r}.")
    for key, how in agg.items():
        if key not in tm.columns:
            raise MappingError(f"{src}: [{table}.aggregate]: {key!r} is not mapped from a source column. "
                               f"Mapped: {', '.join(tm.columns)}.")
        if how not in AGGREGATES:
            raise MappingError(f"{src}: [{table}.aggregate] {key} must be one of {', '.join(AGGREGATES)}; got {how!r}.")
        tm.aggregate[key] = how
    return tm


def _check_target(where, table, key, col, text: str, part: str) -> None:
    """A translated value of a fixed-vocabulary column must be allowed (or empty)."""
    allowed = col.allowed
    if col.kind == "category" and allowed and text != "" and text not in allowed:
        raise MappingError(f"{where} {part} = {text!r}: not an allowed {key}. Allowed: {', '.join(allowed)} "
                           "(or \"\" for empty).")


# --------------------------------------------------------------------------------------------
# reading the export
# --------------------------------------------------------------------------------------------

def _problem(table, row, column, value, problem, fix, severity, check) -> dict:
    return {"table": table, "row": row, "column": column, "value": value, "problem": problem,
            "fix": fix, "severity": severity, "check": check}


def _text(s: pd.Series) -> pd.Series:
    """Cells as trimmed text (object dtype, None for empty); Excel numbers without a trailing .0."""
    def one(v):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, (pd.Timestamp, _dt.datetime, _dt.date)):
            return v.strftime("%Y-%m-%d")  # a spreadsheet date (a time of day is not part of the contract)
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        t = str(v).strip()
        return t or None
    return s.astype(object).map(one)


class _Sources:
    """Reads each (file, sheet) once; reader problems reported once."""

    def __init__(self, root: Path, problems: list):
        self.root = root
        self.problems = problems
        self.cache: dict[tuple[Path, str | None], RawTable | None] = {}
        self.used: set[tuple[Path, str | None]] = set()

    def path_for(self, tm: TableMapping) -> Path:
        if self.root.is_dir():
            return self.root / tm.file if tm.file else self.root
        if tm.file is None or tm.file == self.root.name:
            return self.root
        return self.root.parent / tm.file

    def get(self, tm: TableMapping) -> tuple[RawTable | None, bool]:
        """(raw table, first use) for a table's source."""
        path = self.path_for(tm)
        key = (path, tm.sheet)
        first = key not in self.used
        self.used.add(key)
        if key in self.cache:
            return self.cache[key], first
        label = path.name + (f"[{tm.sheet}]" if tm.sheet else "")
        rt = None
        if path.is_dir():
            self.problems.append(_problem(pd.NA, pd.NA, pd.NA, str(path),
                                          f"The mapping's [{tm.table}] has no file = ..., and {path} is a folder.",
                                          f"Add file = \"<export file>\" to [{tm.table}] in the mapping file.", "error",
                                          "unreadable_file"))
        elif not path.exists():
            self.problems.append(_problem(tm.table, pd.NA, pd.NA, path.name,
                                          f"{path.name}, which the mapping names for the {tm.table} table, is not in {path.parent}.",
                                          "Put the export file there, or correct file = ... in the mapping file.",
                                          "error", "unreadable_file"))
        else:
            try:
                if path.suffix.lower() in (".xlsx", ".xlsm"):
                    frame = read_excel_sheet(path, tm.sheet or None, tm.table, label, self.problems)
                    frame.columns = [str(c).strip() for c in frame.columns]
                    frame[SOURCE_ROW] = range(2, len(frame) + 2)
                    blank = frame.drop(columns=SOURCE_ROW).isna().all(axis=1)
                    rt = RawTable(tm.table, frame.loc[~blank].reset_index(drop=True), label)
                else:
                    text = _decode(path.read_bytes(), path.name, tm.table, self.problems)
                    rt = read_csv_text(text, tm.table, label, self.problems)
            except Exception as exc:  # noqa: BLE001 - any failure to read is a report row
                self.problems.append(_problem(tm.table, pd.NA, pd.NA, label, f"{label} cannot be read: {exc}",
                                              "Check that it is a CSV or .xlsx export (and the sheet name) and that it is "
                                              "not open in another program.", "error", "unreadable_file"))
        self.cache[key] = rt
        return rt, first


def _find_column(columns: list[str], name: str) -> str | None:
    if name in columns:
        return name
    fold = re.sub(r"\s+", "", name).casefold()
    hits = [c for c in columns if re.sub(r"\s+", "", str(c)).casefold() == fold]
    return hits[0] if len(hits) == 1 else None


def _parse_dates(text: pd.Series, fmt: str) -> tuple[pd.Series, pd.Series]:
    """(ISO text or None, bad mask) of text dates written in ``fmt``."""
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    rest = parsed.isna() & text.notna()
    if rest.any() and not re.search(r"%[HIMSpf]", fmt):
        first = text[rest].str.split(r"[ T]", n=1, regex=True).str[0]
        parsed[rest] = pd.to_datetime(first, format=fmt, errors="coerce")
    rest = parsed.isna() & text.notna()
    iso = rest & text.str.match(_ISO.pattern).fillna(False).astype(bool)
    if iso.any():
        parsed[iso] = pd.to_datetime(text[iso], format="%Y-%m-%d", errors="coerce")
    out = parsed.dt.strftime("%Y-%m-%d").astype(object).where(parsed.notna(), None)
    bad = parsed.isna() & text.notna()
    return out, bad


def _build(tm: TableMapping, mapping: Mapping, sources: _Sources, problems: list, settings) -> RawTable | None:
    rt, first_use = sources.get(tm)
    if rt is None:
        return None
    src = text_frame(rt.frame)
    label = rt.file
    mfile = Path(mapping.source).name
    table = tm.table
    found = [c for c in src.columns if c != SOURCE_ROW]
    keep_mask = pd.Series(True, index=src.index)
    for col, vals in tm.keep.items():
        real = _find_column(found, col)
        if real is None:
            problems.append(_problem(table, pd.NA, col, pd.NA,
                                     f"The mapping keeps rows of {label} by column {col!r}, which it does not have.",
                                     f"Correct [{table}.keep] in {mfile}. Columns found: {', '.join(found)}.", "error",
                                     "mapping_column_missing"))
            continue
        keep_mask &= _text(src[real]).isin(vals)
    if not keep_mask.all():
        n_out = int((~keep_mask).sum())
        rule = "; ".join(f"{c!r} is " + (", ".join(v[:-1]) + " or " + v[-1] if len(v) > 1 else v[0])
                         for c, v in tm.keep.items())
        problems.append(_problem(table, pd.NA, ", ".join(tm.keep), f"{n_out} row{'s' if n_out != 1 else ''}",
                                 f"{n_out:,} of {len(src):,} rows of {label} were left out by the mapping's keep rule "
                                 f"(only rows where {rule}).",
                                 f"Nothing to do if these rows are not {table}; otherwise widen [{table}.keep] in {mfile}.",
                                 "warning", "kept_out_by_mapping"))
        src = src.loc[keep_mask]
    out = pd.DataFrame(index=src.index)
    for col, source in tm.columns.items():
        real = _find_column(found, source)
        if real is None:
            problems.append(_problem(table, pd.NA, col, source,
                                     f"The mapping takes {table}.{col} from column {source!r}, but {label} has no such column.",
                                     f"Correct [{table}.columns] {col} in {mfile}. Columns found: {', '.join(found)}.",
                                     "error", "mapping_column_missing"))
            continue
        out[col] = _text(src[real])
    for col, value in tm.constants.items():
        out[col] = value
    for col, table_of in tm.values.items():
        if col not in out.columns:
            continue
        s = out[col].astype(object).where(out[col].notna(), None)
        folded = {k.casefold(): v for k, v in table_of.items()}
        exact = s.notna() & s.isin(list(table_of))
        loose_keys = s.map(lambda v: v.casefold(), na_action="ignore")
        loose = s.notna() & ~exact & loose_keys.isin(list(folded))
        unknown = s.notna() & ~exact & ~loose
        mapped = pd.Series(None, index=s.index, dtype=object)
        mapped[exact] = s[exact].map(table_of)
        mapped[loose] = loose_keys[loose].map(folded)
        mapped[unknown] = s[unknown]
        out[col] = mapped.astype(object).where(mapped.notna(), None)
        if unknown.any():
            allowed = ", ".join(dict.fromkeys(v for v in table_of.values() if v))
            lines = src.loc[unknown, SOURCE_ROW]
            for value, idx in s[unknown].groupby(s[unknown], sort=False).groups.items():
                rows = lines.loc[idx]
                problems.append(_problem(table, rows.iloc[0], col, value,
                                         f"{value!r} in column {tm.columns[col]!r} of {label} ({len(rows):,} "
                                         f"row{'s' if len(rows) != 1 else ''}, the first at line {rows.iloc[0]}) is not in the "
                                         f"mapping's [{table}.values.{col}]; it was passed on unchanged.",
                                         f"Add \"{value}\" = \"...\" to [{table}.values.{col}] in {mfile} (values used so "
                                         f"far: {allowed}).", "warning", "unmapped_value"))
    for col, fmt in tm.date_formats.items():
        if col not in out.columns:
            continue
        iso, bad = _parse_dates(out[col].astype("str").where(out[col].notna()), fmt)
        shown = _human_format(fmt)
        out[col] = iso.where(~bad, out[col].map(lambda v: f"{v} (not {shown})", na_action="ignore"))
    out[SOURCE_ROW] = src[SOURCE_ROW].to_numpy()
    if tm.collapse and tm.collapse in out.columns:
        out = _collapse(out, tm, label, problems)
    bad_rows = rt.bad_rows if first_use else None
    return RawTable(table, out.reset_index(drop=True), label, bad_rows)


def _collapse(frame: pd.DataFrame, tm: TableMapping, label: str, problems: list) -> pd.DataFrame:
    key = tm.collapse
    has = frame[key].notna()
    alone, rows = frame[~has], frame[has]
    if rows.empty:
        return frame
    groups = rows.groupby(key, sort=False)
    out = pd.DataFrame({key: list(groups.groups)})
    out[SOURCE_ROW] = groups[SOURCE_ROW].first().to_numpy()
    date_like = set(tm.date_formats) | {"start_date", "end_date", "session_date"}
    for col in [c for c in frame.columns if c not in (key, SOURCE_ROW)]:
        how = tm.aggregate.get(col, "first")
        s = rows[col]
        if how in ("min", "max"):
            if col in date_like:
                val = s.where(s.map(lambda v: isinstance(v, str) and bool(_ISO.match(v)), na_action="ignore")
                              .fillna(False).astype(bool))
            else:
                val = pd.to_numeric(s, errors="coerce")
            agg = getattr(val.groupby(rows[key], sort=False), how)()
            first_any = s.groupby(rows[key], sort=False).first()
            res = agg.reindex(out[key]).to_numpy(dtype=object)
            fallback = first_any.reindex(out[key]).to_numpy(dtype=object)
            missing = pd.isna(res)
            out[col] = np.where(missing, fallback, res)
            ignored = s.notna() & val.isna()
            if ignored.any():
                for k, part in rows.loc[ignored].groupby(key, sort=False):
                    problems.append(_problem(tm.table, int(part[SOURCE_ROW].iloc[0]), col, part[col].iloc[0],
                                             f"{label}: {part[col].iloc[0]!r} for {key} {k} is not a "
                                             f"{'date' if col in date_like else 'number'}, so it was not considered for "
                                             f"the {'earliest' if how == 'min' else 'latest'} {col}.",
                                             "Correct the value in the export (see the validator's line for it).",
                                             "warning", "collapse_ignored"))
        else:
            firsts = s.groupby(rows[key], sort=False).first() if how == "first" else s.groupby(rows[key], sort=False).last()
            out[col] = firsts.reindex(out[key]).to_numpy(dtype=object)
            given = rows.loc[s.notna(), [key, col, SOURCE_ROW]]
            groups_ = given.groupby(key, sort=False)
            distinct = groups_[col].unique()
            first_line = groups_[SOURCE_ROW].first()
            for k, vals in distinct[distinct.map(len) > 1].items():
                chosen = firsts.loc[k]
                problems.append(_problem(tm.table, int(first_line.loc[k]), col, chosen,
                                         f"{label}: {key} {k} has {len(vals)} different values of {col} "
                                         f"({', '.join(map(str, vals))}); the {how} ({chosen}) was used.",
                                         f"Nothing to do if {how} is right; otherwise set [{tm.table}.aggregate] {col}, or "
                                         "split the episode in the export.", "warning", "collapse_conflict"))
    out = out.where(pd.notna(out), None)
    if len(alone):
        out = pd.concat([out, alone[out.columns]], ignore_index=True)
    return out.sort_values(SOURCE_ROW, kind="stable")


def read_mapped(path: str | Path, mapping_file: str | Path, settings=None) -> tuple[dict[str, RawTable], list[dict]]:
    """Read an export with a mapping file into the contract's raw tables.

    Parameters
    ----------
    path : str or Path
        The export: a folder holding the files the mapping names, or one file (CSV or .xlsx) that
        the mapping's tables share (then ``file`` may be left out, and ``sheet`` picks a sheet).
    mapping_file : str or Path
        The TOML mapping (module docstring; examples in ``data/mappings/``).
    settings : optional
        Anything :func:`supervision.config.load_settings` accepts (identity dimensions and
        instruments decide which contract columns exist).

    Returns
    -------
    tables : dict of RawTable
        ``clients``, ``sessions`` and, if mapped, ``clinicians`` and ``scores``: the contract's
        column names, cells as text (dates ISO where a ``date_format`` was given), and
        ``source_row`` = the line in the source file. Tables whose file cannot be read are absent.
    problems : list of dict
        Report rows (``table, row, column, value, problem, fix, severity, check``) for the
        mapping step (missing source columns, values not in the mapping, rows left out by
        ``keep``, unreadable files). Pass both to :func:`supervision.io.load_tables`.

    Raises
    ------
    MappingError
        Only for a mapping file that cannot be used; bad data never raises.
    """
    from supervision.config import load_settings

    settings = load_settings(settings)
    mapping = load_mapping(mapping_file, settings)
    path = Path(path)
    problems: list[dict] = []
    if not path.exists():
        problems.append(_problem(pd.NA, pd.NA, pd.NA, str(path), f"'{path}' does not exist.",
                                 "Give the folder that holds the export's files (or the export file itself).",
                                 "error", "unreadable_file"))
        return {}, problems
    sources = _Sources(path, problems)
    tables = {}
    for name, tm in mapping.tables.items():
        rt = _build(tm, mapping, sources, problems, settings)
        if rt is not None:
            tables[name] = rt
    return tables, problems


def import_mapped(path: str | Path, mapping_file: str | Path, out_dir: str | Path, settings=None):
    """Read an export with a mapping file, validate it, and write the contract CSVs.

    Writes ``clients.csv``, ``sessions.csv`` (and ``clinicians.csv``, ``scores.csv`` when mapped)
    and ``import_report.csv`` to ``out_dir``; the report rows point at the lines of the source
    files. Returns the :class:`~supervision.caseload.Caseload` of
    :func:`supervision.io.load_tables`. Raises :class:`MappingError` for a bad mapping file.
    """
    from supervision.config import load_settings
    from supervision.io import load_tables
    from supervision.io.fhir import write_import

    settings = load_settings(settings)
    raw, problems = read_mapped(path, mapping_file, settings)
    cl = load_tables(raw, settings, source=str(path), fmt=f"mapped ({Path(mapping_file).name})",
                     reader_problems=problems)
    write_import(raw, cl, out_dir)
    return cl
