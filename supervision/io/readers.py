"""Readers: a folder of CSV or Parquet files, or one Excel workbook -> raw tables.

Raw tables keep every cell as it was written (text for CSV and Excel, the stored type for
Parquet; a CSV column of the contract's numbers or dates comes typed when every cell of it reads
as a plain number or ISO date) plus an integer column ``source_row``: the line number a user sees
in their file (header = line 1). Nothing is validated here; problems that stop a file from being
read at all (unreadable file, ragged lines, encoding) are returned as report rows for the validator.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

TABLES = ("clients", "sessions", "clinicians", "scores")
SOURCE_ROW = "source_row"


@dataclass
class RawTable:
    name: str
    frame: pd.DataFrame  # columns as in the file + SOURCE_ROW
    file: str            # what the user calls it: "sessions.csv" or "export.xlsx[sessions]"
    bad_rows: pd.DataFrame | None = None  # lines that could not be split into the header's fields


def _problem(table, row, column, value, problem, fix, severity, check):
    return {"table": table, "row": row, "column": column, "value": value, "problem": problem,
            "fix": fix, "severity": severity, "check": check}


def _utf16(data: bytes) -> str | None:
    """'utf-16' when the bytes are UTF-16 text (a byte-order mark, or every other byte zero in the
    first line, as Excel's 'Unicode text' and PowerShell write it), else None."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = data[:4096]
    if len(head) >= 4 and head[1::2].count(0) > 0.9 * len(head[1::2]) and not head[0::2].count(0):
        return "utf-16-le"
    if len(head) >= 4 and head[0::2].count(0) > 0.9 * len(head[0::2]) and not head[1::2].count(0):
        return "utf-16-be"
    return None


def _decode(data: bytes, file: str, table: str, problems: list) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    wide = _utf16(data)
    if wide:
        try:
            text = data.decode(wide)
        except UnicodeDecodeError:
            text = None
        if text is not None:
            problems.append(_problem(
                table, pd.NA, pd.NA, pd.NA, f"{file} is UTF-16 text; it was read as UTF-16.",
                "Nothing is lost; save the file as 'CSV UTF-8' to avoid this note.", "warning", "encoding"))
            return text.lstrip("\ufeff")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(_problem(
            table, pd.NA, pd.NA, pd.NA,
            f"{file} is not UTF-8; it was read as Windows-1252 (cp1252).",
            "Check accented letters in the loaded data; save the file as 'CSV UTF-8' to avoid this.",
            "warning", "encoding"))
        return data.decode("cp1252", errors="replace")


def _sniff_delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    if header.count("\t") > max(header.count(","), header.count(";")):  # Excel's "Unicode text" is tab-separated
        return "\t"
    return ";" if header.count(";") > header.count(",") else ","


def categorical_text(s: pd.Series) -> pd.Series:
    """A Categorical of text as pandas' string dtype (one Arrow take, not a string per row)."""
    codes = s.cat.codes.to_numpy()
    cats = s.cat.categories
    if cats.dtype == "str":  # Arrow strings already: no conversion of the categories
        words = pa.array(cats.array)
        words = (words.combine_chunks() if isinstance(words, pa.ChunkedArray) else words).cast(pa.large_string())
    else:
        words = pa.array(cats.astype(object).to_numpy(), type=pa.large_string())
    arrow = words.take(pa.array(codes, mask=codes < 0))
    return pd.Series(pd.array(arrow, dtype="str"), index=s.index, name=s.name, copy=False)


def text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A raw table with its Categorical columns as plain text (for code that edits cells)."""
    cats = [i for i, dtype in enumerate(frame.dtypes) if isinstance(dtype, pd.CategoricalDtype)]
    if not cats:
        return frame
    out = frame.copy(deep=False)
    for i in cats:  # by position: an export may repeat a column name
        out.isetitem(i, categorical_text(frame.iloc[:, i]))
    return out


def _blank_rows(frame: pd.DataFrame, columns: list[str]) -> np.ndarray | None:
    """Rows whose every cell is empty or spaces (a missing field counts as empty); None when there
    are none. Text columns are Categoricals; typed columns (numbers, dates) are empty where missing."""
    blank = None
    for c in columns:
        s = frame[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            empty = np.append(s.cat.categories.astype("str").str.strip() == "", True)  # code -1 takes True
            codes = s.cat.codes.to_numpy()
            if not empty[:-1].any() and not (codes < 0).any():
                return None  # a column with a value in every row: no blank row (the usual case, found cheaply)
            cells = empty[codes]
        else:
            cells = s.isna().to_numpy()
            if not cells.any():
                return None
        blank = cells if blank is None else blank & cells
    return blank if blank is not None and blank.any() else None


def _without(frame: pd.DataFrame, blank: np.ndarray | None) -> pd.DataFrame:
    """The frame without its blank rows (itself when there are none: no copy)."""
    return frame if blank is None else frame.loc[~blank].reset_index(drop=True)


def _csv_by_line(text: str, sep: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Split with the csv module, keeping the physical line where each record starts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header, rows, lines = None, [], []
    start = 1
    for record in reader:
        if header is None:
            header = record
        elif record and any(cell.strip() for cell in record):
            rows.append(record)
            lines.append(start)
        start = reader.line_num + 1
    return header or [], rows, lines


def _maybe_short(text: str, sep: str) -> bool:
    """Whether some non-blank line may have fewer fields than the header (always, with quotes)."""
    if '"' in text:
        return True
    lines = text.split("\n")
    width = lines[0].count(sep)
    return any(line.count(sep) < width and line.strip("\r\t ") for line in lines[1:])


def read_csv_text(text: str, table: str, file: str, problems: list) -> RawTable:
    """Parse CSV text into a raw table, reporting lines with more fields than the header."""
    sep = _sniff_delimiter(text)
    try:
        # header=None: the C parser then refuses a line with more fields than the first line
        # (with a header row it would silently take the first column as the index instead).
        # Every column is read as a Categorical of the text as written: few distinct values per
        # column, so the validator works on those, not on every cell.
        every = pd.read_csv(io.StringIO(text), sep=sep, dtype="category", keep_default_na=False, header=None,
                            skip_blank_lines=False, engine="c", quoting=csv.QUOTE_MINIMAL)
        columns = [str(c).strip() for c in every.iloc[0].astype(object).fillna("")]
        frame = every.iloc[1:].reset_index(drop=True)
        n_body = text.rstrip("\r\n").count("\n")
        # a line with fewer fields than the header comes padded with empty cells: such a file
        # takes the careful path, which reports the line (with quotes, a separator may be inside
        # a value, so only the csv module can count the fields)
        short = _maybe_short(text, sep)
        if len(frame) == n_body and len(set(columns)) == len(columns) and not short:
            frame.columns = columns
            blank = _blank_rows(frame, columns)
            frame[SOURCE_ROW] = np.arange(2, len(frame) + 2)
            return RawTable(table, _without(frame, blank), file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        pass
    # Slow path: quoted line breaks, ragged lines, or an empty file.
    header, rows, lines = _csv_by_line(text, sep)
    header = [h.strip() for h in header]
    width = len(header)
    # fields a line needs: up to the last named column (a header may end in unnamed empty fields)
    needed = max((i + 1 for i, h in enumerate(header) if h), default=0)
    good, good_lines, bad = [], [], []
    for record, line in zip(rows, lines):
        if not needed <= len(record) <= width:
            # too many fields: a separator inside a value; too few: a cut or hand-edited line.
            # Either way the values cannot be matched to their columns: the line is quarantined.
            bad.append({SOURCE_ROW: line, "raw": sep.join(record)})
            more = len(record) > width
            problems.append(_problem(
                table, line, pd.NA, sep.join(record)[:200],
                f"Line {line} of {file} has {len(record)} fields but the header has {width}.",
                "An unquoted separator is probably inside a value: put that value in double quotes, "
                "or remove the extra separator." if more else
                "The line is cut short or a separator is missing: restore the missing fields "
                f"(a line needs {needed} fields, empty ones included), or export the file again.",
                "error", "ragged_line"))
            continue
        good.append(record + [""] * (width - len(record)))
        good_lines.append(line)
    frame = pd.DataFrame(good, columns=header, dtype=object) if header else pd.DataFrame()
    frame[SOURCE_ROW] = good_lines
    bad_frame = pd.DataFrame(bad) if bad else None
    return RawTable(table, frame, file, bad_frame)


@dataclass
class _Scan:
    """What one pass over a CSV file's bytes tells, before any parsing."""

    head: bytes = b""      # the first bytes (BOM removed): header line and delimiter
    utf8: bool = True
    quotes: bool = False   # any double quote at all (else no value can hold a line break)


def _scan(chunks) -> _Scan:
    """Scan byte chunks (the whole file in order) without holding the file in memory."""
    out, decoder, first = _Scan(), codecs.getincrementaldecoder("utf-8")(), True
    for chunk in chunks:
        if first:
            chunk = chunk[3:] if chunk.startswith(b"\xef\xbb\xbf") else chunk
            out.head, first = bytes(chunk[:65536]), False
        if out.utf8 and not chunk.isascii():
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                out.utf8 = False
        out.quotes = out.quotes or b'"' in chunk
    if out.utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            out.utf8 = False
    return out


def _line_count(chunks) -> int:
    """Line ends in the byte chunks, not counting those at the very end of the file."""
    lines = trailing = 0
    for chunk in chunks:
        n = chunk.count(b"\n")
        lines += n
        i = len(chunk) - 1
        while i >= 0 and chunk[i] in b"\r\n":  # the run of line ends this chunk ends with
            i -= 1
        ends = n if i < 0 else chunk.count(b"\n", i + 1)
        trailing = trailing + ends if i < 0 else ends
    return lines - trailing


def _chunks(source):
    return [source] if isinstance(source, bytes) else _file_chunks(source)


def _file_chunks(path: Path, size: int = 1 << 23):
    """A file's bytes in chunks read into one buffer (the file is never in memory at once)."""
    buffer = bytearray(size)
    with open(path, "rb") as f:
        while n := f.readinto(buffer):
            yield memoryview(buffer)[:n].tobytes() if n < size else buffer


def _read_csv_arrow(source, sep: str, table: str, file: str, scan: _Scan | None = None,
                    kinds: dict[str, str] | None = None) -> RawTable | None:
    """The fast path for a well-formed UTF-8 CSV file: Arrow's multi-threaded reader.

    ``source`` is the file's path or its bytes (``scan`` is then worked out here). Every column
    comes as a Categorical of the text as written (as :func:`read_csv_text` gives), except the
    columns ``kinds`` names as ``number`` or ``date``: these come typed when every cell of them
    is a plain number or an ISO date (1900-2199) (as Parquet gives them), else the whole file is
    read as text. Returns None when the file needs the careful path of :func:`read_csv_text`: a
    line with too many or too few fields, a line break inside quotes, or an odd header.
    """
    if scan is None:
        scan = _scan(_chunks(source))
    end = scan.head.find(b"\n")
    first = scan.head[:end if end >= 0 else len(scan.head)].decode("utf-8", errors="replace").rstrip("\r")
    header = next(csv.reader([first], delimiter=sep), [])
    names = [h.strip() for h in header]
    if not header or len(set(header)) != len(header) or len(set(names)) != len(names) or "" in names:
        return None
    dictionary = pa.dictionary(pa.int32(), pa.string())
    typed = {h: _ARROW_KINDS[kinds[n]] for h, n in zip(header, names) if kinds and kinds.get(n) in _ARROW_KINDS}
    arrow = _arrow_csv(source, sep, scan, {h: typed.get(h, dictionary) for h in header}) if typed else None
    if arrow is not None and not _plain_values(arrow, list(typed)):
        arrow = None
    if arrow is None:  # some number or date Arrow did not read (or "nan", or a far year): all as text
        arrow = _arrow_csv(source, sep, scan, {h: dictionary for h in header})
    if arrow is None or arrow.num_columns != len(names):
        return None
    # a column of its own per column (no consolidating copy), each freed in Arrow as it is converted
    frame = arrow.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)
    frame.columns = names
    blank = _blank_rows(frame, names)
    frame[SOURCE_ROW] = np.arange(2, len(frame) + 2)
    return RawTable(table, _without(frame, blank), file)


_ARROW_KINDS = {"number": pa.float64(), "date": pa.date32()}


def _arrow_csv(source, sep: str, scan: _Scan, types: dict) -> pa.Table | None:
    """Arrow's reading of the file with these column types; None when a cell does not convert,
    or when its records are not the file's lines (a line with too many or too few fields, a line
    break in a value).

    Without a quote in the file, every line is one record (Arrow reports any other line); only
    with quotes are the lines counted.
    """
    invalid: list = []
    try:
        arrow = pcsv.read_csv(
            io.BytesIO(source) if isinstance(source, bytes) else source,  # Arrow skips a UTF-8 BOM itself
            # a file without a quote has no line break inside a value: Arrow may then split it into
            # blocks at any line end (faster); with quotes, it must read them first
            # an empty line is a record of empty fields (dropped as blank), so records stay lines
            parse_options=pcsv.ParseOptions(delimiter=sep, newlines_in_values=scan.quotes, ignore_empty_lines=False,
                                            invalid_row_handler=lambda row: invalid.append(row) or "skip"),
            convert_options=pcsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=False,
                                                quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a cell that does not convert, or not CSV Arrow can split
        return None
    if invalid:
        return None
    if scan.quotes and arrow.num_rows != _line_count(_chunks(source)):
        return None  # a line break inside quotes: a record of two lines
    return arrow


def _plain_values(arrow: pa.Table, columns: list[str]) -> bool:
    """The typed columns hold what the text path reads the same way: no "nan" text (which it
    reports as not a number) and no date outside 1900-2199 (which it reports as written)."""
    for c in columns:
        col = arrow.column(c)
        if pa.types.is_floating(col.type) and pc.any(pc.is_nan(col)).as_py():
            return False
        if pa.types.is_date(col.type) and col.null_count < len(col):
            span = pc.min_max(col)
            if span["min"].as_py().year < 1900 or span["max"].as_py().year >= 2200:
                return False
    return True


def _read_csv_file(path: Path, table: str, problems: list, kinds: dict[str, str] | None = None) -> RawTable:
    # one pass over the file in chunks first: a file of millions of lines is not held in memory
    # beside the table Arrow makes of it
    scan = _scan(_file_chunks(path))
    if scan.utf8 and b"\x00" in scan.head:
        scan.utf8 = False  # UTF-16 without a byte-order mark is valid UTF-8 byte by byte: the careful path
    if scan.utf8:  # anything else takes the careful path (which reports the encoding)
        fast = _read_csv_arrow(path, _sniff_delimiter(scan.head.decode("utf-8", errors="ignore")), table, path.name, scan,
                               kinds)
        if fast is not None:
            return fast
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = _decode(data, path.name, table, problems)
    return read_csv_text(text, table, path.name, problems)


# Limit of what a Parquet file may make the reader hold: its footer declares the rows and columns,
# so a small file that would unpack to more (an encoded constant repeated a billion times) is
# refused before anything is read. About 8 bytes per cell once loaded.
PARQUET_MAX_CELLS = 1_000_000_000


def _check_parquet(path: Path) -> None:
    meta = pq.ParquetFile(path).metadata
    cells = meta.num_rows * max(meta.num_columns, 1)
    if cells > PARQUET_MAX_CELLS:
        raise WorkbookLimit(
            f"{path.name} declares {meta.num_rows:,} rows x {meta.num_columns} columns, more than the "
            f"{PARQUET_MAX_CELLS:,} cells the reader accepts (about {PARQUET_MAX_CELLS * 8 / 2**30:.0f} GiB once "
            "loaded); nothing was read from it.")


def _read_parquet_file(path: Path, table: str) -> RawTable:
    _check_parquet(path)
    # Text columns as Categoricals (Parquet stores them dictionary-encoded already) and dates as
    # datetime64: the validator then works per distinct value
    schema = pq.read_schema(path)
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    # yes/no columns with empty cells as pandas' nullable boolean (not objects)
    frame = pq.read_table(path, read_dictionary=text).to_pandas(
        date_as_object=False, types_mapper={pa.bool_(): pd.BooleanDtype()}.get, split_blocks=True, self_destruct=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.reset_index(drop=True)
    frame[SOURCE_ROW] = np.arange(2, len(frame) + 2)  # a spreadsheet view of it: header on line 1
    return RawTable(table, frame, path.name)


# Limits of what an .xlsx workbook may make the reader hold (a small file can unpack to gigabytes):
# refused with a message when exceeded. Larger exports are read as CSV or Parquet.
XLSX_MAX_MEMBER_BYTES = 256 * 2**20   # one part of the workbook (a sheet's XML, the shared strings), unpacked
XLSX_MAX_TOTAL_BYTES = 512 * 2**20    # all parts together, unpacked
XLSX_MAX_COLUMNS = 512                # cells beyond this column
XLSX_MAX_CELLS = 10_000_000           # rows x columns of one sheet
XLSX_MAX_TEXT = 32_767                # characters in one cell (Excel's own limit)


class WorkbookLimit(ValueError):
    """A workbook beyond the reader's limits; the message says which and what to do."""


def _check_zip(path: Path) -> None:
    import zipfile

    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise WorkbookLimit(f"{path.name} is not an .xlsx workbook (not a zip container).") from None
    with z:
        total = 0
        for info in z.infolist():
            total += info.file_size
            if info.file_size > XLSX_MAX_MEMBER_BYTES:
                raise WorkbookLimit(
                    f"{path.name}: its part '{info.filename}' unpacks to {info.file_size / 2**20:,.0f} MiB, more than "
                    f"the {XLSX_MAX_MEMBER_BYTES // 2**20} MiB the reader accepts (a workbook this large, or built to "
                    "exhaust memory).")
        if total > XLSX_MAX_TOTAL_BYTES:
            raise WorkbookLimit(f"{path.name} unpacks to {total / 2**20:,.0f} MiB, more than the "
                                f"{XLSX_MAX_TOTAL_BYTES // 2**20} MiB the reader accepts.")


def _sheet_rows(ws, wb, name: str, formulas: list):
    """The rows of a read-only sheet as (row number, sparse list of (column, value)), without
    padding rows to the sheet's declared size; formula cells without a stored value go to ``formulas``."""
    from openpyxl.worksheet._reader import FORMULA_TAG, VALUE_TAG, WorkSheetParser

    class Parser(WorkSheetParser):
        def parse_cell(self, element):
            cell = super().parse_cell(element)
            if element.find(FORMULA_TAG) is not None and not element.findtext(VALUE_TAG):
                formulas.append((cell["row"], cell["column"]))
            return cell

    with ws._get_source() as src:
        parser = Parser(src, ws._shared_strings, data_only=True, epoch=wb.epoch, date_formats=wb._date_formats,
                        timedelta_formats=wb._timedelta_formats)
        for idx, cells in parser.parse():
            yield idx, [(c["column"], c["value"], c["data_type"]) for c in cells]


def _excel_value(value, data_type):
    """A cell as pandas' Excel reader gives it (whole numbers as int, error cells as missing)."""
    if value is None:
        return ""
    if data_type == "e":
        return np.nan
    if data_type == "n" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if float(value).is_integer() else float(value)
    return value


def _sheet_frame(ws, wb, sheet: str, file: str, problems: list, table: str) -> pd.DataFrame:
    """One sheet as a frame of objects (header = row 1), within the limits above."""
    formulas: list = []
    rows: list[list] = []
    width = 0
    for idx, cells in _sheet_rows(ws, wb, sheet, formulas):
        if not cells:
            continue
        last = max(c for c, _, _ in cells)
        if last > XLSX_MAX_COLUMNS:
            raise WorkbookLimit(f"{file}: a cell in column {last} (row {idx}) is beyond the {XLSX_MAX_COLUMNS} "
                                "columns the reader accepts; delete the stray cells or export CSV files.")
        values = [""] * last
        for col, value, data_type in cells:
            if isinstance(value, str) and len(value) > XLSX_MAX_TEXT:
                raise WorkbookLimit(f"{file}: the cell in row {idx}, column {col} holds {len(value):,} characters, more "
                                    f"than Excel's own limit of {XLSX_MAX_TEXT:,}.")
            values[col - 1] = _excel_value(value, data_type)
        while len(rows) < idx - 1:  # empty rows keep their place (row numbers as in Excel)
            rows.append([])
        rows.append(values)
        width = max(width, last)
        if len(rows) * width > XLSX_MAX_CELLS:
            raise WorkbookLimit(f"{file}: the sheet reaches row {idx} and column {width}, more than the "
                                f"{XLSX_MAX_CELLS:,} cells the reader accepts from a workbook; export CSV or "
                                "Parquet files for a table this large.")
    for row, col in formulas:
        from openpyxl.utils import get_column_letter

        problems.append(_problem(
            table, row, pd.NA, f"{get_column_letter(col)}{row}",
            f"Cell {get_column_letter(col)}{row} of {file} holds a formula without a stored result, so its value "
            "cannot be read (the file was not last saved by a spreadsheet program that calculates).",
            "Open the workbook in Excel or LibreOffice and save it (results are then stored), or replace the "
            "formula by its value.", "warning", "formula_without_value"))
    if not rows:
        return pd.DataFrame()
    rows = [r + [""] * (width - len(r)) for r in rows]
    from pandas.io.parsers import TextParser

    return TextParser(rows, header=0, dtype=object, skip_blank_lines=False).read()


def read_excel_sheet(path: Path, sheet: str | None, table: str, label: str, problems: list) -> pd.DataFrame:
    """One sheet (the first when ``sheet`` is None) as a frame of objects, header = row 1, within the
    workbook limits above (a :class:`WorkbookLimit` names what was exceeded); KeyError for an unknown sheet."""
    import openpyxl

    _check_zip(path)
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        name = wb.sheetnames[0] if sheet is None else sheet
        if name not in wb.sheetnames:
            raise KeyError(f"Worksheet named '{name}' not found; sheets: {', '.join(wb.sheetnames)}")
        return _sheet_frame(wb[name], wb, name, label, problems, table)
    finally:
        wb.close()


def _read_excel(path: Path, problems: list) -> dict[str, RawTable]:
    import openpyxl

    _check_zip(path)
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    out = {}
    try:
        for sheet in wb.sheetnames:
            name = str(sheet).strip().lower()
            if name not in TABLES:
                problems.append(_problem(
                    name, pd.NA, pd.NA, pd.NA, f"Sheet '{sheet}' in {path.name} is not a table of the data contract; it was ignored.",
                    f"Name the sheets {', '.join(TABLES)} (clinicians and scores are optional).", "warning", "unknown_table"))
                continue
            if name in out:
                problems.append(_problem(
                    name, pd.NA, pd.NA, pd.NA, f"{path.name} has two sheets named '{name}' (apart from capitals or "
                    f"spaces); only the first ({out[name].file}) was read.",
                    "Delete or rename the other sheet.", "warning", "shadowed_table"))
                continue
            file = f"{path.name}[{sheet}]"
            frame = _sheet_frame(wb[sheet], wb, sheet, file, problems, name)
            frame.columns = [str(c).strip() for c in frame.columns]
            frame[SOURCE_ROW] = range(2, len(frame) + 2)
            blank = frame.drop(columns=SOURCE_ROW).isna().all(axis=1)
            out[name] = RawTable(name, frame.loc[~blank].reset_index(drop=True), file)
    finally:
        wb.close()
    return out


def read_export(path: str | Path, problems: list,
                kinds: dict[str, dict[str, str]] | None = None) -> tuple[dict[str, RawTable], str]:
    """Read every contract table found at ``path``.

    Returns the raw tables found and the format (``csv``, ``parquet`` or ``xlsx``). Files that
    cannot be read become ``unreadable_file`` rows in ``problems``; missing tables are for the
    validator to judge (some are optional). ``kinds`` (``{table: {column: "number" or "date"}}``)
    lets the CSV reader read those columns typed, as Parquet stores them, when every cell reads.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            return _read_excel(path, problems), "xlsx"
        except WorkbookLimit as exc:
            problems.append(_problem(pd.NA, pd.NA, pd.NA, path.name, f"{exc} Nothing was read from it.",
                                     "Export the tables as CSV or Parquet files instead (no size limit but the "
                                     "computer's), or remove what makes the workbook this large.",
                                     "error", "unreadable_file"))
            return {}, "xlsx"
        except Exception as exc:  # noqa: BLE001 - any failure of the Excel reader is a user-facing problem
            problems.append(_problem(pd.NA, pd.NA, pd.NA, path.name, f"{path.name} cannot be read as an Excel workbook: {exc}",
                                     "Open it in Excel and save it again as .xlsx, or export CSV files instead.",
                                     "error", "unreadable_file"))
            return {}, "xlsx"
    if not path.is_dir():
        problems.append(_problem(pd.NA, pd.NA, pd.NA, str(path), f"'{path}' is not a folder or an .xlsx workbook, or does not exist.",
                                 "Give the folder that holds clients.csv and sessions.csv (or .parquet files), or an .xlsx workbook.",
                                 "error", "unreadable_file"))
        return {}, "unknown"
    xlsx = sorted(p for p in path.glob("*.xlsx") if not p.name.startswith("~$"))
    tables: dict[str, RawTable] = {}
    formats = set()
    for name in TABLES:
        both = [path / f"{name}.{ext}" for ext in ("parquet", "csv") if (path / f"{name}.{ext}").exists()]
        if len(both) > 1:
            problems.append(_problem(
                name, pd.NA, pd.NA, both[1].name,
                f"The folder holds both {both[0].name} and {both[1].name}; {both[0].name} was read and "
                f"{both[1].name} was ignored.",
                f"Keep one file per table: remove (or move away) the one that is out of date.", "warning",
                "shadowed_table"))
        for ext in ("parquet", "csv"):
            file = path / f"{name}.{ext}"
            if not file.exists():
                continue
            formats.add(ext)
            try:
                tables[name] = (_read_parquet_file(file, name) if ext == "parquet"
                                else _read_csv_file(file, name, problems, (kinds or {}).get(name)))
            except WorkbookLimit as exc:
                problems.append(_problem(name, pd.NA, pd.NA, file.name, str(exc),
                                         "Split the export, or check that the file is the one meant (a file built "
                                         "to exhaust memory declares far more rows than it holds bytes).",
                                         "error", "unreadable_file"))
            except Exception as exc:  # noqa: BLE001 - reported, never raised
                problems.append(_problem(name, pd.NA, pd.NA, file.name, f"{file.name} cannot be read: {exc}",
                                         "Check that the file is a CSV (or Parquet) export and not open in another program.",
                                         "error", "unreadable_file"))
            break
    if not tables and len(xlsx) == 1:
        return read_export(xlsx[0], problems, kinds)
    return tables, "+".join(sorted(formats)) or "none"
