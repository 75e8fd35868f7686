"""Pseudonymisation, file to file: a service's export turned into one that can leave the service.

:func:`pseudonymise` (``supervision pseudonymise IN OUT --key-file K``) replaces client and staff
ids by keyed hashes (HMAC-SHA256), drops direct identifiers, turns dates of birth into age bands
and writes every cell formula-safe (docs/methods.md §3.4). The command's printed summary is in
:mod:`supervision.cli`.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from supervision.caseload import id_text as _id_text
from supervision.config import load_settings
from supervision.privacy.suppression import privacy_rules

__all__ = ["PseudonymiseError", "PseudonymiseSummary", "read_key", "pseudonymise", "KEY_HOWTO"]

KEY_HOWTO = ('Make one with: python -c "import secrets; print(secrets.token_hex(32))" > key.txt '
             "and keep it outside the folder you share (the same key gives the same ids next time).")


def _norm(name) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


class PseudonymiseError(ValueError):
    """The export cannot be pseudonymised as asked; the message says why and what to do."""


def read_key(key_file, min_bytes: int = 32) -> bytes:
    """The secret key in ``key_file`` (its bytes, surrounding whitespace removed).

    Refuses (``PseudonymiseError``) a missing path, a folder, an empty file, a key shorter than
    ``min_bytes`` bytes, or one made of fewer than 8 different characters (``aaaa...``). A file
    made by ``secrets.token_hex(32)`` (64 hex characters) is what the error messages suggest.
    """
    if key_file is None or str(key_file).strip() == "":
        raise PseudonymiseError("No key file was given: pseudonymisation needs a secret key (--key-file K). " + KEY_HOWTO)
    p = Path(key_file)
    if not p.exists():
        raise PseudonymiseError(f"The key file '{p}' does not exist. " + KEY_HOWTO)
    if not p.is_file():
        raise PseudonymiseError(f"The key file '{p}' is not a file. " + KEY_HOWTO)
    try:
        key = p.read_bytes().strip()
    except OSError as exc:
        raise PseudonymiseError(f"The key file '{p}' cannot be read: {exc}.") from None
    if not key:
        raise PseudonymiseError(f"The key file '{p}' is empty. " + KEY_HOWTO)
    if len(key) < min_bytes:
        raise PseudonymiseError(
            f"The key in '{p}' is {len(key)} bytes long; at least {min_bytes} random bytes are needed "
            "so the ids cannot be guessed. " + KEY_HOWTO)
    if len(set(key)) < 8:
        raise PseudonymiseError(f"The key in '{p}' repeats a few characters only; it is not a random key. " + KEY_HOWTO)
    return key


def _key_permissions_warning(key_file) -> str | None:
    """A warning when others on this computer may read the key file (group or world permissions)."""
    import os
    import stat

    if os.name != "posix":
        return None
    mode = Path(key_file).stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        return (f"WARNING: the key file '{key_file}' can be read or changed by other users of this computer "
                f"(permissions {stat.filemode(mode)}). Anyone with the key can re-identify the ids: "
                f"restrict it with `chmod 600 {key_file}`.")
    return None


# Free-text columns of the contract (kind "text") keep a value only when it is written as a code
# (lowercase letters, digits, _ - + .; at most 40 characters), as the data contract asks; any
# other value (capitals, spaces, punctuation: how a person's name is written) becomes "other".
_CODE_LIKE = r"[a-z0-9][a-z0-9_+\-.]{0,39}"


def _codes_only(s: pd.Series) -> tuple[pd.Series, int]:
    """``s`` with values that are not code-like replaced by ``other``; and how many were replaced."""
    text = s.astype("string")
    bad = text.notna() & (text.str.strip() != "") & ~text.str.fullmatch(_CODE_LIKE).fillna(False).astype(bool)
    n = int(bad.sum())
    if not n:
        return s, 0
    return s.astype(object).where(~bad.to_numpy(), "other"), n


def _key_fingerprint(key: bytes) -> str:
    """A short tag that identifies the key (same key, same tag) without revealing it."""
    return hmac.new(key, b"supervision-workbook key fingerprint", hashlib.sha256).hexdigest()[:12]


class _Hasher:
    """Keyed, domain-separated hashing of ids; remembers every mapping to check for collisions."""

    def __init__(self, key: bytes, hex_chars: int, prefixes: dict[str, str]):
        self.key, self.hex_chars, self.prefixes = key, hex_chars, prefixes
        self.maps: dict[str, dict[str, str]] = {d: {} for d in prefixes}

    def one(self, domain: str, raw: str) -> str:
        m = self.maps[domain]
        out = m.get(raw)
        if out is None:
            digest = hmac.new(self.key, f"{domain}\x1f{raw}".encode("utf-8"), hashlib.sha256).hexdigest()
            out = m[raw] = self.prefixes[domain] + digest[: self.hex_chars]
        return out

    def series(self, domain: str, s: pd.Series) -> pd.Series:
        if isinstance(s.dtype, pd.StringDtype):  # text as read from CSV: vectorised trim
            text = s.str.strip()
            text = text.where(text != "").astype(object).where(text.notna() & (text != ""), None)
        else:
            text = s.map(_id_text).astype(object)
        uniq = pd.unique(text[text.notna()])
        table = {u: self.one(domain, u) for u in uniq}
        return text.map(table).astype(object).where(text.notna(), None)

    def collisions(self) -> dict[str, int]:
        return {d: len(m) - len(set(m.values())) for d, m in self.maps.items()}


def _age_bands(edges: Sequence[int]) -> list[tuple[int, int | None, str]]:
    edges = [int(e) for e in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] < 0:
        raise PseudonymiseError(
            f"privacy.age_band_edges must be increasing whole numbers of years, 0 or more; got {list(edges)}.")
    bands = []
    if edges[0] > 0:
        bands.append((0, edges[0], f"under_{edges[0]}"))
    for lo, hi in zip(edges, edges[1:]):
        bands.append((lo, hi, f"{lo}-{hi - 1}"))
    bands.append((edges[-1], None, f"{edges[-1]}+"))
    return bands


def _age_band_series(dob: pd.Series, ref: pd.Series, edges: Sequence[int]) -> tuple[pd.Series, int]:
    """Age bands (text) from birth dates at reference dates; unreadable or impossible -> not_recorded."""
    age = (ref.dt.year - dob.dt.year) - ((ref.dt.month * 100 + ref.dt.day) < (dob.dt.month * 100 + dob.dt.day))
    ok = dob.notna() & ref.notna() & (age >= 0) & (age <= 120)
    out = pd.Series("not_recorded", index=dob.index, dtype=object)
    for lo, hi, label in _age_bands(edges):
        m = ok & (age >= lo) & ((age < hi) if hi is not None else True)
        out[m] = label
    return out, int((~ok).sum())


@dataclass
class PseudonymiseSummary:
    """What :func:`pseudonymise` did (no key, no raw id). ``str(summary)`` is the report text."""

    input_name: str
    output: Path
    report_path: Path
    key_fingerprint: str
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    hashed: dict[str, list[str]] = field(default_factory=dict)
    dropped_identifiers: dict[str, list[str]] = field(default_factory=dict)
    dropped_unknown: dict[str, list[str]] = field(default_factory=dict)
    age_band: dict[str, dict[str, int]] = field(default_factory=dict)
    distinct_ids: dict[str, int] = field(default_factory=dict)
    collisions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    id_formats: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            "Pseudonymised export (supervision pseudonymise)",
            f"written: {_dt.datetime.now().replace(microsecond=0).isoformat(sep=' ')}",
            f"input: {self.input_name}",
            f"output: {self.output.name}",
            f"key fingerprint: {self.key_fingerprint} (names the key used, so runs can be matched; "
            "the key itself is not written anywhere in this output)",
            "",
            "Identifiers replaced by keyed hashes (HMAC-SHA256, the same key gives the same ids):",
        ]
        for domain, fmt in self.id_formats.items():
            lines.append(f"  {domain} ids -> {fmt}: {self.distinct_ids.get(domain, 0)} distinct, "
                         f"{self.collisions.get(domain, 0)} collisions")
        lines += ["", "Tables:"]
        for name, n in self.rows.items():
            lines.append(f"  {name}: {n} rows")
            if self.hashed.get(name):
                lines.append(f"    hashed: {', '.join(self.hashed[name])}")
            if self.dropped_identifiers.get(name):
                lines.append(f"    dropped (direct identifiers): {', '.join(self.dropped_identifiers[name])}")
            if self.dropped_unknown.get(name):
                lines.append(f"    dropped (not in the data contract): {', '.join(self.dropped_unknown[name])}")
            if self.age_band.get(name):
                a = self.age_band[name]
                lines.append(f"    date of birth -> age_band: {a['from_dob']} rows from the date of birth "
                             f"(age at start_date, else at the export date), {a['kept']} kept as given, "
                             f"{a['unreadable']} unreadable -> not_recorded")
        if self.notes:
            lines += ["", "Notes:"] + [f"  - {n}" for n in self.notes]
        lines += ["", "Files written:"] + [f"  {p.name}" for p in self.files]
        return "\n".join(lines) + "\n"


def _is_inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def pseudonymise(in_path, out_path, key_file, settings=None, *, as_of=None,
                 progress: Callable[[str], None] | None = None) -> PseudonymiseSummary:
    """Write a pseudonymised copy of a service's export.

    Parameters
    ----------
    in_path : str or Path
        The export: a folder of CSV/Parquet files or one ``.xlsx`` workbook (as
        :func:`supervision.load_caseload` reads). Cells are copied as written (no validation);
        only ids, identifiers and dates of birth are touched.
    out_path : str or Path
        A folder (created if needed) that receives ``clients.csv``, ``sessions.csv``, ... and
        ``pseudonymise_report.txt``; or a ``.xlsx`` path (one sheet per table, the report beside
        it as ``<name>.pseudonymise_report.txt``).
    key_file : str or Path
        A file with at least ``privacy.min_key_bytes`` (32) random bytes; see :func:`read_key`.
    settings : path, dict or Settings, optional
        ``[privacy]`` keys used: ``client_id_columns``, ``staff_id_columns``, ``client_prefix``,
        ``staff_prefix``, ``id_hex_chars``, ``min_key_bytes``, ``direct_identifiers``,
        ``date_of_birth_columns``, ``age_band_edges``, ``keep_unknown_columns``.
    as_of : date-like, optional
        The export date for ages where a row has no readable ``start_date`` (default: today).
    progress : callable, optional
        Called with a short message as each step starts (reading, each table, writing).

    Returns
    -------
    PseudonymiseSummary
        Rows per table, columns hashed and dropped, age bands made, notes; ``str()`` of it is
        the text of the report file.

    Raises
    ------
    PseudonymiseError
        No usable key; output inside the input or the key inside the output; an unreadable input
        file or no tables; an output folder holding files that would be read instead of the new
        ones; an id collision (raise ``id_hex_chars``).

    Notes
    -----
    Ids: ``prefix + first id_hex_chars hex digits of HMAC-SHA256(key, domain + 0x1F + id)``, with
    domain ``client`` (``client_id``) or ``staff`` (``clinician_id`` and ``supervisor_id``, so a
    supervisor who also sees clients keeps one id). Ids are trimmed first, as the loader does, so
    every table keeps joining. Column names match case-insensitively (spaces and hyphens read as
    ``_``); ``direct_identifiers`` entries may use ``*`` wildcards, but a wildcard never drops a
    column of the data contract (write its exact name for that). Columns outside the data contract
    (which the workbook ignores anyway) are dropped unless ``keep_unknown_columns = true``. A date
    of birth becomes ``age_band`` (age in whole years at the episode's ``start_date``) where the
    export has no age band of its own, then every date-of-birth column is dropped. Lines the
    reader could not split into columns are left out and counted. Keyed hashing is
    pseudonymisation, not anonymisation: whoever holds the key can re-identify, and rare
    combinations of the remaining columns may still point to a person.
    """
    settings = load_settings(settings)
    pr = privacy_rules(settings)  # [privacy] (supervision.rules.PrivacyRules)
    from supervision.io.export import write_safe_csv, write_safe_excel
    from supervision.io.readers import TABLES, read_export, text_frame
    from supervision.schema import SOURCE_ROW, contract, parse_dates

    min_bytes = int(pr.min_key_bytes)
    if min_bytes < 16:
        raise PseudonymiseError(f"privacy.min_key_bytes must be at least 16; got {min_bytes}.")
    key = read_key(key_file, min_bytes)
    key_warning = _key_permissions_warning(key_file)
    hex_chars = int(pr.id_hex_chars)
    if not 8 <= hex_chars <= 64:
        raise PseudonymiseError(f"privacy.id_hex_chars must be between 8 and 64; got {hex_chars}.")
    edges = list(pr.age_band_edges)
    _age_bands(edges)  # refuse bad edges before any work

    in_path, out_path, key_path = Path(in_path), Path(out_path), Path(key_file)
    to_excel = out_path.suffix.lower() in (".xlsx", ".xlsm")
    out_dir = out_path.parent if to_excel else out_path
    if not in_path.exists():
        raise PseudonymiseError(f"'{in_path}' does not exist. Give the export folder or .xlsx workbook.")
    if out_path.resolve() == in_path.resolve() or (in_path.is_dir() and _is_inside(out_path, in_path)):
        raise PseudonymiseError(
            f"The output '{out_path}' is the input or inside it. Choose a separate folder, so the "
            "original export is never overwritten or mixed with the pseudonymised one.")
    if (not to_excel and _is_inside(key_path, out_path)) or key_path.resolve() == out_path.resolve():
        raise PseudonymiseError(
            f"The key file '{key_path}' is inside the output '{out_dir}': sharing the output would "
            "share the key. Keep the key in another folder.")
    report_path = (out_path.with_name(out_path.name + ".pseudonymise_report.txt") if to_excel
                   else out_path / "pseudonymise_report.txt")

    say = progress or (lambda message: None)
    say(f"Reading {in_path.name} ...")
    problems: list = []
    raw, fmt = read_export(in_path, problems)
    bad = [p for p in problems if p.get("check") == "unreadable_file"]
    if bad:
        raise PseudonymiseError("The export cannot be read completely, so it was not pseudonymised: "
                                + " ".join(str(p["problem"]) for p in bad))
    if not raw:
        raise PseudonymiseError(f"No tables were found in '{in_path}' (clients.csv, sessions.csv, ... or an .xlsx "
                                "with sheets named clients, sessions, ...).")
    if not to_excel and out_path.exists():
        if not out_path.is_dir():
            raise PseudonymiseError(f"The output '{out_path}' exists and is not a folder.")
        stale = [p.name for p in out_path.iterdir()
                 if (p.suffix.lower() == ".parquet" and p.stem in TABLES)
                 or (p.suffix.lower() == ".csv" and p.stem in TABLES and p.stem not in raw)]
        if stale:
            raise PseudonymiseError(
                f"The output folder '{out_path}' already holds {', '.join(sorted(stale))}, which would be read "
                "together with (or instead of) the new files. Remove them or choose an empty folder.")

    client_cols = {_norm(c) for c in pr.client_id_columns}
    staff_cols = {_norm(c) for c in pr.staff_id_columns}
    hasher = _Hasher(key, hex_chars, {"client": str(pr.client_prefix),
                                      "staff": str(pr.staff_prefix)})
    patterns = [_norm(p) for p in pr.direct_identifiers]
    dob_cols = {_norm(c) for c in pr.date_of_birth_columns}
    keep_unknown = bool(pr.keep_unknown_columns)
    known = {t: {c.name for c in cols} for t, cols in contract(settings).items()}
    # free-text columns: a name typed into them must not pass through (scores.item is an item number)
    text_cols = {t: {c.name: c.kind == "text" and not (t == "scores" and c.name == "item") for c in cols}
                 for t, cols in contract(settings).items()}
    day_first = settings["data"]["day_first"]
    ref_default = pd.Timestamp(as_of).normalize() if as_of is not None else pd.Timestamp.today().normalize()

    summary = PseudonymiseSummary(in_path.name, out_path, report_path, _key_fingerprint(key))
    if key_warning:
        summary.notes.append(key_warning)
    summary.id_formats = {"client": f"{hasher.prefixes['client']}<{hex_chars} hex>",
                          "staff": f"{hasher.prefixes['staff']}<{hex_chars} hex>"}
    for p in problems:
        if p.get("check") in ("encoding", "unknown_table"):
            summary.notes.append(str(p["problem"]) + (" It was not copied." if p.get("check") == "unknown_table" else ""))

    out_frames: dict[str, pd.DataFrame] = {}
    for name, rt in raw.items():
        say(f"Pseudonymising {name} ({len(rt.frame)} rows) ...")
        frame = text_frame(rt.frame.drop(columns=[SOURCE_ROW], errors="ignore")).copy()
        frame = frame.loc[:, ~frame.columns.duplicated()]
        if rt.bad_rows is not None and len(rt.bad_rows):
            summary.notes.append(f"{rt.file}: {len(rt.bad_rows)} line(s) could not be split into the header's columns "
                                 "and were left out (run `supervision validate` on the original to see them).")
        contract_cols = known.get(name, set()) | {"age_band"}
        norm = {c: _norm(c) for c in frame.columns}
        hashed = []
        for c, n in norm.items():
            if n in client_cols or n in staff_cols:
                frame[c] = hasher.series("client" if n in client_cols else "staff", frame[c])
                hashed.append(str(c))
        # Dates of birth -> age band.
        dobs = [c for c, n in norm.items() if n in dob_cols]
        if dobs:
            dob = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
            for c in dobs:
                dob = dob.fillna(parse_dates(frame[c], day_first))
            start_col = next((c for c, n in norm.items() if n == "start_date"), None)
            ref = pd.Series(ref_default, index=frame.index)
            if start_col is not None:
                ref = parse_dates(frame[start_col], day_first).fillna(ref_default)
            band, _ = _age_band_series(dob, ref, edges)
            band_col = next((c for c, n in norm.items() if n == "age_band"), None)
            if band_col is None:
                band_col = "age_band"
                given = pd.Series(False, index=frame.index)
            else:
                text = frame[band_col].map(lambda v: "" if _id_text(v) is None else str(v).strip().lower())
                given = (text != "") & (text != "not_recorded")
            frame[band_col] = frame[band_col].where(given, band) if band_col in frame.columns else band
            summary.age_band[name] = {"from_dob": int((~given & dob.notna() & (band != "not_recorded")).sum()),
                                      "kept": int(given.sum()), "unreadable": int((~given & (band == "not_recorded")).sum())}
            frame = frame.drop(columns=dobs)
            summary.dropped_identifiers.setdefault(name, []).extend(str(c) for c in dobs)
        # Direct identifiers and columns outside the contract.
        drop_ident, drop_unknown = [], []
        for c in frame.columns:
            n = _norm(c)
            if n in client_cols or n in staff_cols:
                continue
            exact = n in patterns
            wild = any(fnmatch.fnmatchcase(n, p) for p in patterns if any(ch in p for ch in "*?["))
            if exact or (wild and c not in contract_cols):
                drop_ident.append(c)
            elif c not in contract_cols and not keep_unknown:
                drop_unknown.append(c)
        frame = frame.drop(columns=drop_ident + drop_unknown)
        for c in frame.columns:
            if text_cols.get(name, {}).get(c):
                frame[c], n_replaced = _codes_only(frame[c])
                if n_replaced:
                    summary.notes.append(
                        f"{name}.{c}: {n_replaced} value(s) not written as a code (capital letters, spaces or "
                        "punctuation, as a name would be) were replaced by 'other'. If they are categories, recode "
                        "them in the source as lowercase codes (e.g. in_person) and run again.")
        if drop_ident:
            summary.dropped_identifiers.setdefault(name, []).extend(str(c) for c in drop_ident)
        if drop_unknown:
            summary.dropped_unknown[name] = [str(c) for c in drop_unknown]
        summary.hashed[name] = hashed
        summary.rows[name] = len(frame)
        out_frames[name] = frame

    summary.collisions = hasher.collisions()
    summary.distinct_ids = {d: len(m) for d, m in hasher.maps.items()}
    if any(summary.collisions.values()):
        raise PseudonymiseError(
            f"Two different ids got the same pseudonym ({summary.collisions}); nothing was written. "
            f"Raise privacy.id_hex_chars (now {hex_chars}) and run again.")

    say(f"Writing {out_path.name} ...")
    out_dir.mkdir(parents=True, exist_ok=True)
    if to_excel:
        summary.files.append(write_safe_excel(out_frames, out_path))
    else:
        for name, frame in out_frames.items():
            summary.files.append(write_safe_csv(frame, out_path / f"{name}.csv"))
    summary.files.append(report_path)
    report_path.write_text(str(summary), encoding="utf-8")
    _check_no_key(key, summary.files)
    return summary


def _check_no_key(key: bytes, files: Iterable[Path]) -> None:
    """Last line of defence: the key (or its hex form) must not appear in any written file."""
    needles = {key, key.hex().encode()}
    try:
        needles.add(key.decode("ascii").encode("utf-8"))
    except UnicodeDecodeError:
        pass
    import html as _html
    import zipfile

    for n in list(needles):  # as XML writes text (an .xlsx cell): & < > " ' escaped
        try:
            needles.add(_html.escape(n.decode("utf-8"), quote=True).encode("utf-8"))
        except UnicodeDecodeError:
            pass
    for f in files:
        blobs = [Path(f).read_bytes()]
        if zipfile.is_zipfile(f):  # .xlsx: the cells are inside compressed XML, not in the file's bytes
            with zipfile.ZipFile(f) as z:
                blobs += [z.read(info) for info in z.infolist()]
        if any(n and n in data for n in needles for data in blobs):
            for g in files:
                Path(g).unlink(missing_ok=True)
            raise PseudonymiseError(
                f"The key was found inside the output ({Path(f).name}), probably because it was also pasted "
                "into the data; every output file was deleted. Use a new key and check the export.")
