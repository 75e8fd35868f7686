"""Privacy: pseudonymised exports, small-count suppression and the clinician's own-caseload scope.

Three parts (issue 9, part 2):

1. :func:`pseudonymise` (``supervision pseudonymise IN OUT --key-file K``, see
   :func:`cli_pseudonymise`) turns a service's export into one that can leave the service:
   client and staff ids replaced by keyed hashes (HMAC-SHA256), direct identifiers dropped,
   dates of birth turned into age bands, every cell written formula-safe.
2. :func:`suppress` applies a disclosure-control policy to a table of counts (primary
   suppression of small counts, rounding, complementary suppression, derived rates), and
   :func:`service_benchmark` turns a service-wide table into aggregates under that policy.
3. :func:`apply_scope` / :func:`load_self_review` restrict a caseload to one clinician's own
   clients for self-review; service figures then reach the clinician only through
   :meth:`SelfReview.benchmark`, i.e. as suppressed aggregates.

Policies (``[privacy] suppression_policy``; every number is a setting):

- ``"nhs"``: counts 1-7 are replaced by ``*`` and every other count is rounded to the nearest 5;
  means and other simple statistics based on 1-7 individuals are not shown; percentages are
  computed from the rounded numbers. NHS Digital's secondary-care rule (HES/ECDS from September
  2018, SRHAD from 2019-20) [V] digital.nhs.uk "Disclosure control methodology for HES and ECDS";
  the counts rule itself [V2] (docs/methods.md §3.4). That rule was introduced to *replace*
  secondary suppression (the earlier HES rule, 1-5 plus secondary suppression [V]); the workbook
  still adds complementary suppression (``complementary = true``) because its tables are small
  and rounding alone leaves little doubt in two- or three-cell groups [U design choice].
- ``"cms"``: counts 1-10 are not shown, zero is; no cell may allow a value of 1-10 to be
  derived from other reported cells, percentages included. US CMS Cell Size Suppression Policy
  [V] resdac.org "CMS Cell Size Suppression Policy" (version 01/26/2024) and hhs.gov guidance
  "CMS Cell Suppression Policy". No rounding.
- ``"none"``: nothing is suppressed (for the supervision pair only).

Complementary (secondary) suppression, the same for every policy: within each set of cells whose
sum is published (a margin of the table, or a count and its parts), the suppressed cells are
either none, or at least two whose true sum is above the policy's threshold, so neither a single
cell nor the suppressed cells together can be recomputed as a small number (the CMS rule forbids
deriving 1-10 from other cells [V]). Cells are added smallest non-zero first. Then an audit
plays the attacker: with every published cell (within the rounding), every total that could be
published and counts >= 0, it bounds each small cell by linear programming (scipy HiGHS) and,
while one can be proved to be at most the threshold, hides a further neighbouring cell. Where no
cell is left to hide (a group whose own total is small is given away by the other totals), a
``UserWarning`` says so and ``attrs["suppression"]["unprotected"]`` counts the cells: merge such
groups before publishing. The audit runs at every table size: the cells fall into independent
blocks (those linked by the sums), and each block is solved on its own. Primary and secondary
cells are shown with the same marker, so a reader cannot tell which is which.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import hmac
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from supervision.config import Settings, load_settings

__all__ = [
    "PseudonymiseError", "PseudonymiseSummary", "read_key", "pseudonymise", "cli_pseudonymise",
    "Policy", "policy_rules", "suppress", "service_benchmark",
    "apply_scope", "load_own_caseload", "SelfReview", "load_self_review",
]

KEY_HOWTO = ('Make one with: python -c "import secrets; print(secrets.token_hex(32))" > key.txt '
             "and keep it outside the folder you share (the same key gives the same ids next time).")

# Fallbacks when a settings object predates a key (the defaults live in defaults.toml).
_PRIVACY_DEFAULTS: dict[str, Any] = {
    "suppression_policy": "nhs",
    "nhs_max_suppressed": 7,
    "nhs_rounding": 5,
    "cms_max_suppressed": 10,
    "cms_rounding": 1,
    "complementary": True,
    "suppressed_marker": "*",
    "self_review_clinician": "",
    "min_key_bytes": 32,
    "id_hex_chars": 16,
    "client_id_columns": ["client_id"],
    "staff_id_columns": ["clinician_id", "supervisor_id"],
    "client_prefix": "C-",
    "staff_prefix": "T-",
    "direct_identifiers": [],
    "date_of_birth_columns": ["date_of_birth", "dob", "birth_date", "birthdate"],
    "age_band_edges": [18, 25, 35, 45, 55, 65],
    "keep_unknown_columns": False,
}


def _priv(settings: Settings, key: str):
    section = settings.get("privacy", {}) or {}
    return section.get(key, _PRIVACY_DEFAULTS[key])


def _norm(name) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


# ================================================================================================
# 1. Pseudonymisation
# ================================================================================================

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


def _id_text(v) -> str | None:
    """An id cell as the loader reads it: trimmed text; 1001.0 -> '1001'; empty -> None."""
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    text = str(v).strip()
    return text or None


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
    from supervision.io.export import write_safe_csv, write_safe_excel
    from supervision.io.readers import TABLES, read_export, text_frame
    from supervision.schema import SOURCE_ROW, contract, parse_dates

    min_bytes = int(_priv(settings, "min_key_bytes"))
    if min_bytes < 16:
        raise PseudonymiseError(f"privacy.min_key_bytes must be at least 16; got {min_bytes}.")
    key = read_key(key_file, min_bytes)
    key_warning = _key_permissions_warning(key_file)
    hex_chars = int(_priv(settings, "id_hex_chars"))
    if not 8 <= hex_chars <= 64:
        raise PseudonymiseError(f"privacy.id_hex_chars must be between 8 and 64; got {hex_chars}.")
    edges = list(_priv(settings, "age_band_edges"))
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

    client_cols = {_norm(c) for c in _priv(settings, "client_id_columns")}
    staff_cols = {_norm(c) for c in _priv(settings, "staff_id_columns")}
    hasher = _Hasher(key, hex_chars, {"client": str(_priv(settings, "client_prefix")),
                                      "staff": str(_priv(settings, "staff_prefix"))})
    patterns = [_norm(p) for p in _priv(settings, "direct_identifiers")]
    dob_cols = {_norm(c) for c in _priv(settings, "date_of_birth_columns")}
    keep_unknown = bool(_priv(settings, "keep_unknown_columns"))
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


def cli_pseudonymise(in_path, out_path, key_file, settings=None) -> int:
    """``supervision pseudonymise IN OUT --key-file K``: print a summary; 0 = written, 2 = refused."""
    import sys

    from supervision.config import SettingsError

    try:
        summary = pseudonymise(in_path, out_path, key_file, settings, progress=lambda m: print(m, flush=True))
    except (PseudonymiseError, SettingsError) as exc:
        print(f"Not pseudonymised: {exc}", file=sys.stderr)
        return 2
    tables = ", ".join(f"{n} ({r} rows)" for n, r in summary.rows.items())
    dropped = sorted({c for cols in summary.dropped_identifiers.values() for c in cols})
    print(f"Wrote a pseudonymised export to {summary.output}: {tables}.")
    print(f"Ids hashed with key {summary.key_fingerprint} (fingerprint; the key is not in the output): "
          + ", ".join(f"{n} {d}" for d, n in ((d, summary.distinct_ids.get(d, 0)) for d in summary.id_formats)) + ".")
    if dropped:
        print(f"Dropped identifier columns: {', '.join(dropped)}.")
    unknown = sorted({c for cols in summary.dropped_unknown.values() for c in cols})
    if unknown:
        print(f"Dropped columns outside the data contract: {', '.join(unknown)}.")
    for note in summary.notes:
        print(f"Note: {note}")
    print(f"Details: {summary.report_path}")
    return 0


# ================================================================================================
# 2. Disclosure control
# ================================================================================================

@dataclass(frozen=True)
class Policy:
    """A disclosure-control policy: counts ``1..max_suppressed`` hidden, others rounded to ``rounding``."""

    name: str
    max_suppressed: int
    rounding: int
    complementary: bool
    marker: str


def policy_rules(policy: str | None = None, settings=None) -> Policy:
    """The :class:`Policy` for ``policy`` (``"nhs"``, ``"cms"``, ``"none"``; default from the settings)."""
    settings = load_settings(settings)
    name = policy if policy is not None else _priv(settings, "suppression_policy")
    if isinstance(name, Policy):
        return name
    marker = str(_priv(settings, "suppressed_marker"))
    comp = bool(_priv(settings, "complementary"))
    if name == "none":
        return Policy("none", 0, 1, False, marker)
    if name in ("nhs", "cms"):
        t, r = int(_priv(settings, f"{name}_max_suppressed")), int(_priv(settings, f"{name}_rounding"))
        if t < 0 or r < 1:
            raise ValueError(f"privacy.{name}_max_suppressed must be 0 or more and privacy.{name}_rounding 1 or more; "
                             f"got {t} and {r}.")
        return Policy(name, t, r, comp, marker)
    raise ValueError(f"Unknown suppression policy {name!r}; allowed: 'nhs', 'cms', 'none' (setting privacy.suppression_policy).")


def _as_list(x) -> list:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def _margins(group_columns) -> list[list[str]]:
    if group_columns is None:
        return [[]]
    if isinstance(group_columns, str):
        return [[group_columns]]
    items = list(group_columns)
    if all(isinstance(g, str) for g in items):
        return [items]
    return [_as_list(g) for g in items]


def _mask(table: pd.DataFrame, total_rows) -> np.ndarray:
    if total_rows is None:
        return np.zeros(len(table), dtype=bool)
    if isinstance(total_rows, str):
        if total_rows not in table.columns:
            raise ValueError(f"total_rows names column {total_rows!r}, which the table does not have; "
                             f"columns: {', '.join(map(str, table.columns))}.")
        m = table[total_rows]
    else:
        m = total_rows
    arr = np.asarray(pd.Series(m, index=table.index) if isinstance(m, pd.Series) else m).astype(bool)
    if arr.shape != (len(table),):
        raise ValueError(f"total_rows must be a column name or one true/false per row ({len(table)}); got shape {arr.shape}.")
    return arr


def suppress(table: pd.DataFrame, count_columns, policy: str | None = None, *, group_columns=None,
             total_rows=None, rates: dict[str, tuple[str, str]] | None = None,
             derived: dict[str, Sequence[str] | str] | None = None, parts: dict[str, Sequence[str]] | None = None,
             complementary: bool | None = None, exact_audit: bool = False, settings=None) -> pd.DataFrame:
    """Apply a disclosure-control policy to counts (and to figures derived from them).

    Parameters
    ----------
    table : DataFrame
        Tidy table, one row per cell group (e.g. one row per clinician and identity group).
        Not modified.
    count_columns : str or list of str
        Columns holding counts of individuals (non-negative whole numbers; missing = not known).
    policy : {"nhs", "cms", "none"} or Policy, optional
        Default: the ``privacy.suppression_policy`` setting. See the module docstring.
    group_columns : str, list of str, or list of lists, optional
        The margins whose totals are (or may be) published, as the columns held fixed in each:
        ``None`` = the whole column sums to a total; ``"clinician_id"`` = each clinician's rows
        sum to a total; ``[["clinician_id"], ["group"]]`` = a cross-table with row *and* column
        totals. Totals are assumed known even when they are not in ``table``.
    total_rows : str or boolean array, optional
        Rows that are themselves totals (a boolean column name or mask). They are suppressed and
        rounded like any count, are not used as complementary cells unless nothing else can
        protect a margin, and their suppression removes the margin's risk.
    rates : dict, optional
        ``{rate_column: (numerator, denominator)}``: suppressed when either count is; under a
        rounding policy recomputed from the rounded counts (NHS: percentages from rounded
        numbers), keeping the column's scale (proportion or percentage). Each pair also adds the
        part ``denominator - numerator`` (e.g. clients who did *not* drop out) as a hidden cell,
        so 18 of 20 cannot reveal the 2.
    derived : dict, optional
        ``{column: counts}``: other figures (means, medians, intervals) hidden when any listed
        count is suppressed (NHS: not shown when based on 1-7 individuals); otherwise unchanged.
    parts : dict, optional
        ``{total_column: [part_columns]}``: counts that add up within a row; a missing remainder
        is added as a hidden cell.
    complementary : bool, optional
        Apply complementary suppression (default: the ``privacy.complementary`` setting).
    exact_audit : bool, default False
        The audit's attacker knows every published count exactly, even under a rounding policy
        (use it when the published table also holds figures computed from the exact counts, such as
        unrounded rates, intervals or p-values, from which the exact counts can be worked out).
    settings : path, dict or Settings, optional

    Returns
    -------
    DataFrame
        ``table`` with, per count column ``c``: ``c`` (nullable integer, rounded, ``<NA>`` where
        suppressed), ``c_suppressed`` (bool) and ``c_display`` (text: the marker, e.g. ``*``, or the
        published number; empty where the count was missing); per rate or derived column ``r``:
        ``r`` (``NaN`` where suppressed) and ``r_suppressed``. ``attrs["suppression"]`` holds the
        policy and the numbers of primary and complementary cells (not which cells they are).

    Raises
    ------
    ValueError
        Unknown columns or policy, negative or fractional counts, a rate whose numerator exceeds
        its denominator.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"suppress needs a DataFrame, got {type(table).__name__}.")
    settings = load_settings(settings)
    pol = policy_rules(policy, settings)
    counts = _as_list(count_columns)
    rates, derived, parts = dict(rates or {}), dict(derived or {}), {k: _as_list(v) for k, v in (parts or {}).items()}
    for num, den in rates.values():
        for c in (num, den):
            if c not in counts:
                counts.append(c)
    for tot, ps in parts.items():
        for c in [tot, *ps]:
            if c not in counts:
                counts.append(c)
    needed = set(counts) | set(rates) | set(derived) | {c for m in _margins(group_columns) for c in m}
    needed |= {c for v in derived.values() for c in _as_list(v)}
    missing = sorted(map(str, needed - set(table.columns)))
    if missing:
        raise ValueError(f"suppress: the table has no column(s) {', '.join(missing)}; "
                         f"columns: {', '.join(map(str, table.columns))}.")
    for col, src in derived.items():
        unknown = [c for c in _as_list(src) if c not in counts]
        if unknown:
            raise ValueError(f"derived[{col!r}] names {unknown}, which are not count columns; add them to count_columns.")

    n, k = len(table), len(counts)
    vals = np.empty((n, k), dtype=float)
    for j, c in enumerate(counts):
        v = pd.to_numeric(table[c], errors="coerce").astype("float64").to_numpy()
        bad = ~np.isnan(v) & ((v < 0) | (v % 1 != 0))
        nonnum = table[c].notna().to_numpy() & np.isnan(v)
        if bad.any() or nonnum.any():
            raise ValueError(f"suppress: '{c}' must hold counts (whole numbers, 0 or more); "
                             f"found {table[c][bad | nonnum].iloc[0]!r}.")
        vals[:, j] = v
    for rate, (num, den) in rates.items():
        a, b = vals[:, counts.index(num)], vals[:, counts.index(den)]
        over = ~np.isnan(a) & ~np.isnan(b) & (a > b)
        if over.any():
            raise ValueError(f"rates[{rate!r}]: numerator '{num}' exceeds denominator '{den}' in {int(over.sum())} row(s); "
                             "a rate needs numerator <= denominator.")
        parts.setdefault(den, [])
        if num not in parts[den]:
            parts[den] = parts[den] + [num]

    for tot, ps in parts.items():
        rest = vals[:, counts.index(tot)] - vals[:, [counts.index(c) for c in ps]].sum(axis=1)
        if (rest < 0).any():
            raise ValueError(f"parts[{tot!r}]: the parts {ps} add up to more than '{tot}' in {int((rest < 0).sum())} row(s).")
    is_total = _mask(table, total_rows)
    use_comp = pol.complementary if complementary is None else bool(complementary)
    vis_primary, vis_supp, audit = _suppression_pattern(
        table, vals, counts, parts, _margins(group_columns), is_total, pol.max_suppressed,
        use_comp and pol.name != "none", 1 if exact_audit else pol.rounding)
    T = pol.max_suppressed
    out = table.copy()
    rounded = vals.copy()
    if pol.rounding > 1:
        rounded = np.floor(vals / pol.rounding + 0.5) * pol.rounding
    for j, c in enumerate(counts):
        col = pd.array(np.where(vis_supp[:, j], np.nan, rounded[:, j]), dtype="Float64").round().astype("Int64")
        out[c] = col
        out[f"{c}_suppressed"] = vis_supp[:, j]
        out[f"{c}_display"] = [pol.marker if s_ else ("" if np.isnan(v) else str(int(v)))
                               for s_, v in zip(vis_supp[:, j], rounded[:, j])]
    for rate, (num, den) in rates.items():
        jn, jd = counts.index(num), counts.index(den)
        gone = vis_supp[:, jn] | vis_supp[:, jd]
        given = pd.to_numeric(table[rate], errors="coerce").astype("float64").to_numpy()
        if pol.rounding > 1:
            exact = np.divide(vals[:, jn], vals[:, jd], out=np.full(n, np.nan), where=vals[:, jd] > 0)
            ok = ~np.isnan(given) & ~np.isnan(exact) & (exact > 0)
            scale = float(np.median(given[ok] / exact[ok])) if ok.any() else 1.0
            scale = 100.0 if abs(scale - 100.0) < 1.0 else 1.0
            given = np.divide(rounded[:, jn], rounded[:, jd], out=np.full(n, np.nan), where=rounded[:, jd] > 0) * scale
        out[rate] = np.where(gone, np.nan, given)
        out[f"{rate}_suppressed"] = gone
    for col, src in derived.items():
        js = [counts.index(c) for c in _as_list(src)]
        gone = vis_supp[:, js].any(axis=1)
        vals_d = pd.to_numeric(table[col], errors="coerce").astype("float64").to_numpy()
        out[col] = np.where(gone, np.nan, vals_d)
        out[f"{col}_suppressed"] = gone
    out.attrs["suppression"] = {
        "policy": pol.name, "max_suppressed": T, "rounding": pol.rounding, "marker": pol.marker,
        "primary": int(vis_primary.sum()), "complementary": int(vis_supp.sum() - vis_primary.sum()), **audit,
    }
    if audit["unprotected"]:
        warnings.warn(
            f"{audit['unprotected']} small number(s) in this table can still be narrowed down to {T} or fewer from "
            "the totals it adds up to: a group whose own total is small (e.g. 7 people in the whole service) is given "
            "away by the other totals, whatever is hidden inside it. Merge small groups (or leave them out) before "
            "publishing, or add the totals as rows (total_rows=...) so they can be suppressed too.",
            UserWarning, stacklevel=2)
    return out


def suppress_blocks(table: pd.DataFrame, count_column: str, blocks: Sequence[str], margins: Sequence[Sequence[str]],
                    policy: str | Policy | None = None, *, exact_audit: bool = True, settings=None) -> pd.DataFrame:
    """:func:`suppress` of a table made of independent blocks (e.g. one cross-table per dimension
    and metric), block by block, with the whole block hidden where its audit cannot protect it.

    Parameters
    ----------
    table : DataFrame
        One row per cell; not modified.
    count_column : str
        The count of individuals.
    blocks : list of str
        Columns whose values name a block: no published sum runs across blocks.
    margins : list of lists of str
        Within a block, the columns held fixed by each published sum (e.g.
        ``[["clinician_id"], ["group"]]``: row and column totals of a cross-table).
    policy, settings
        As for :func:`suppress`.
    exact_audit : bool, default True
        The attacker knows every shown count exactly (see :func:`suppress`).

    Returns
    -------
    DataFrame
        As :func:`suppress` (``<count>``, ``<count>_suppressed``, ``<count>_display``), rows in the
        table's order; ``attrs["suppression"]`` adds ``blocks``, ``blocks_hidden`` (blocks hidden
        whole because a small count in them could not be protected otherwise) and ``audit``
        (``passed`` when every block passed or was hidden whole).
    """
    pol = policy_rules(policy, settings)
    parts, info = [], {"primary": 0, "complementary": 0, "blocks": 0, "blocks_hidden": 0}
    for _, block in table.groupby(list(blocks), sort=False, dropna=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an unprotectable block is hidden whole below
            out = suppress(block, count_column, pol, group_columns=[list(m) for m in margins],
                           exact_audit=exact_audit, settings=settings)
        a = out.attrs.get("suppression", {})
        info["blocks"] += 1
        if a.get("unprotected") or a.get("audit") == "failed":
            v = pd.to_numeric(block[count_column], errors="coerce").to_numpy(dtype=float)
            hide = ~np.isnan(v)
            out[count_column] = pd.array(np.where(hide, np.nan, out[count_column].to_numpy(dtype=float)),
                                         dtype="Float64").round().astype("Int64")
            out[f"{count_column}_suppressed"] = hide | out[f"{count_column}_suppressed"].to_numpy(dtype=bool)
            out[f"{count_column}_display"] = np.where(hide, pol.marker, out[f"{count_column}_display"].astype(object))
            info["blocks_hidden"] += 1
        info["primary"] += int(a.get("primary", 0))
        info["complementary"] += int(a.get("complementary", 0))
        parts.append(out)
    if not parts:
        res = suppress(table, count_column, pol, settings=settings)
    else:
        res = pd.concat(parts).loc[table.index]
    res.attrs["suppression"] = {"policy": pol.name, "max_suppressed": pol.max_suppressed, "rounding": pol.rounding,
                                "marker": pol.marker, **info, "audit": "passed" if pol.name != "none" else "not run",
                                "unprotected": 0}
    return res


def _suppression_pattern(table: pd.DataFrame, vals: np.ndarray, counts: list[str], parts: dict[str, list[str]],
                         margins: list[list[str]], is_total: np.ndarray, T: int, complementary: bool,
                         rounding: int = 1):
    """Primary and final suppression masks (rows x count columns).

    Cells are the visible counts (``i * k + j``) plus, for every ``parts`` entry, a hidden
    remainder per row (total minus its parts: e.g. clients who did not drop out). A hidden cell
    is never published but is *known* when its row's total and parts are; it is unknown when one
    of them is suppressed, and it is sensitive (treated as unknown that needs protection) when
    its value is 1..T. Constraints are the sets of cells whose sum is known: every margin of every
    count column and of every remainder, and every row's total = parts + remainder. Rule per
    constraint whose total is known: the unknown cells are none, or at least two with a true sum
    above T. A hidden cell is made unknown by suppressing its smallest part in the row.
    """
    n, k = vals.shape
    value = list(vals.reshape(-1))
    hidden: list[bool] = [False] * (n * k)
    deps: list[list[int]] = [[] for _ in range(n * k)]      # visible cells a hidden cell is derived from
    proxy: list[int | None] = [None] * (n * k)              # visible cell to suppress to hide it
    constraints: list[tuple[list[int], list[int]]] = []     # (member cells, total cells)
    rest_cells: dict[str, list[int | None]] = {}
    for tot, ps in parts.items():
        jt, jp = counts.index(tot), [counts.index(p) for p in ps]
        col: list[int | None] = []
        for i in range(n):
            members = [i * k + j for j in jp]
            if np.isnan(vals[i, jt]) or any(np.isnan(vals[i, j]) for j in jp):
                col.append(None)
            else:
                value.append(vals[i, jt] - sum(vals[i, j] for j in jp))
                hidden.append(True)
                deps.append([i * k + jt, *members])
                proxy.append(min(members, key=lambda c: (vals[c // k, c % k] <= 0, vals[c // k, c % k], c))
                             if members else i * k + jt)
                members = members + [len(value) - 1]
                col.append(len(value) - 1)
            constraints.append((members, [i * k + jt]))
        rest_cells[tot] = col
    columns = [[i * k + j for i in range(n)] for j in range(k)] + list(rest_cells.values())
    for margin in margins:
        if margin:
            keys = table[margin].astype(object).where(table[margin].notna(), "\x00<NA>").apply(tuple, axis=1).to_numpy()
        else:
            keys = [()] * n
        groups: dict[Any, list[int]] = {}
        for i, key_ in enumerate(keys):
            groups.setdefault(key_, []).append(i)
        for rows in groups.values():
            for colcells in columns:
                members = [colcells[i] for i in rows if not is_total[i] and colcells[i] is not None]
                totals = [colcells[i] for i in rows if is_total[i] and colcells[i] is not None]
                if members:
                    constraints.append((members, totals))

    value_arr = np.array(value, dtype=float)
    missing = np.isnan(value_arr)
    primary = (~missing & (value_arr >= 1) & (value_arr <= T)) if T > 0 else np.zeros(len(value), bool)
    supp = primary.copy()  # for visible cells: suppressed; for hidden ones: sensitive
    supp[n * k:] = primary[n * k:]

    def unknown(c: int) -> bool:
        return bool(supp[c]) or (hidden[c] and any(supp[d] for d in deps[c]))

    def greedy() -> None:
        changed = True
        while changed:
            changed = False
            for members, totals in constraints:
                if totals and all(unknown(c) for c in totals):
                    continue  # the total is not known: nothing to subtract from
                unk = [c for c in members if unknown(c)]
                if not unk:
                    continue
                while len(unk) < 2 or float(np.nansum(value_arr[unk])) <= T:
                    cands = [c for c in members if not unknown(c) and not missing[c]]
                    if not cands:
                        for c in totals:
                            target = proxy[c] if hidden[c] else c
                            if target is not None and not supp[target]:
                                supp[target] = True
                                changed = True
                        break
                    hide(_smallest(cands, value_arr))
                    changed = True
                    unk = [c for c in members if unknown(c)]

    def hide(c: int) -> None:
        supp[proxy[c] if hidden[c] else c] = True

    unprotected = 0
    where: dict[int, list[tuple[list[int], list[int]]]] = {}  # cell -> the constraints it is in
    for con in constraints:
        for c in (*con[0], *con[1]):
            where.setdefault(c, []).append(con)
    if complementary and T > 0:
        greedy()
        # Audit: an attacker who knows every published cell (within the rounding) and every
        # publishable total solves for each sensitive cell; while one can be proved to be 1..T,
        # hide the smallest visible cell next to it and repeat.
        audit = "passed"
        proven: set[int] = set()  # cells shown safe stay safe: hiding more only widens the attacker's bounds
        while audit == "passed":  # each round hides one more cell, so this ends
            weak = _weak_cells(value_arr, hidden, supp, unknown, primary, missing, constraints, T, rounding, proven)
            unprotected = len(weak)
            if not weak:
                break
            picks = set()
            for w in weak:  # per weak cell, the smallest visible cell next to it (or next but one)
                near = [m for members, totals in where[w] for m in (*members, *totals)]
                cands = [c for c in dict.fromkeys(near) if not unknown(c) and not missing[c]]
                if not cands:
                    near2 = [m for c in near for members, totals in where[c] for m in (*members, *totals)]
                    cands = [c for c in dict.fromkeys(near2) if not unknown(c) and not missing[c]]
                if cands:
                    picks.add(_smallest(cands, value_arr))
            if not picks:
                audit = "failed"
                break
            for c in picks:
                hide(c)
            greedy()
    else:
        audit = "not run"
    vis = supp[: n * k].reshape(n, k)
    return primary[: n * k].reshape(n, k), vis, {"audit": audit, "unprotected": unprotected}




def _smallest(cands: list[int], value_arr: np.ndarray) -> int:
    positive = [c for c in cands if value_arr[c] > 0]
    return min(positive or cands, key=lambda c: (value_arr[c], c))


def _weak_cells(value_arr, hidden, supp, unknown, primary, missing, constraints, T, rounding,
                proven: set[int] | None = None) -> list[int]:
    """Sensitive cells (1..T) an attacker can prove to be at most T, by linear programming.

    The attacker knows each published count exactly (or within half the rounding base), every
    total that is in the table or would be publishable (0 or above T), and that counts are >= 0.
    """
    from scipy.optimize import linprog

    m = len(value_arr)
    proven = set() if proven is None else proven
    sensitive = [c for c in range(m) if primary[c] and unknown(c) and c not in proven]
    if not sensitive:
        return []
    bounds = []
    for c in range(m):
        if missing[c] or hidden[c] or unknown(c):
            bounds.append((0, None))
        elif rounding > 1:
            v = float(np.floor(value_arr[c] / rounding + 0.5) * rounding)
            bounds.append((0.0, 0.0) if v == 0 else (max(0.0, v - rounding / 2), v + rounding / 2))
        else:
            bounds.append((value_arr[c], value_arr[c]))
    a_eq, b_eq = [], []
    for members, totals in constraints:
        if any(missing[c] for c in members):
            continue
        row = np.zeros(m)
        row[members] = 1.0
        if len(totals) == 1 and not missing[totals[0]]:
            row[totals[0]] = -1.0
            a_eq.append(row)
            b_eq.append(0.0)
        elif not totals and not any(hidden[c] for c in members):
            # a total outside the table is taken as known when it could be published; totals of
            # the hidden remainders follow from those of the counts, so they are not added
            total = float(value_arr[members].sum())
            if total == 0 or total > T:
                a_eq.append(row)
                b_eq.append(total)
    # The constraints split the cells into independent blocks (e.g. one per dimension and metric):
    # each sensitive cell is bounded within its own block, so the audit runs at every table size.
    parent = list(range(m))

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for row in a_eq:
        cells = np.flatnonzero(row)
        for c in cells[1:]:
            ra, rb = find(int(cells[0])), find(int(c))
            if ra != rb:
                parent[rb] = ra
    blocks: dict[int, list[int]] = {}
    for c in range(m):
        blocks.setdefault(find(c), []).append(c)
    a_all = np.array(a_eq) if a_eq else np.zeros((0, m))
    b_all = np.array(b_eq, dtype=float)
    weak = []
    by_block: dict[int, list[int]] = {}
    for c in sensitive:
        by_block.setdefault(find(c), []).append(c)
    for root, cells_sens in by_block.items():
        cells = blocks[root]
        rows = np.flatnonzero(np.abs(a_all[:, cells]).sum(axis=1) > 0) if len(a_all) else np.array([], dtype=int)
        if not len(rows):
            continue  # in no sum: nothing bounds it
        a_sub, b_sub = a_all[np.ix_(rows, cells)], b_all[rows]
        sub_bounds = [bounds[c] for c in cells]
        pos = {c: i for i, c in enumerate(cells)}
        for c in cells_sens:
            obj = np.zeros(len(cells))
            obj[pos[c]] = -1.0
            res = linprog(obj, A_eq=a_sub, b_eq=b_sub, bounds=sub_bounds, method="highs")
            if res.status == 0 and -res.fun < T + 1 - 1e-9:
                weak.append(c)
            else:
                proven.add(c)
    return weak


def service_benchmark(table: pd.DataFrame, value: str | None = None, *, by=None, id_column: str = "client_id",
                      total: bool = True, policy: str | None = None, settings=None) -> pd.DataFrame:
    """A service-wide figure per group, as aggregates under the disclosure-control policy.

    The only way service figures should reach a clinician's self-review (see
    :class:`SelfReview`).

    Parameters
    ----------
    table : DataFrame
        Service-wide tidy rows: one per client for a rate (``value`` true/false, e.g. dropped out),
        or any rows with a numeric ``value`` (e.g. session SRS) for a mean.
    value : str, optional
        The column to summarise; ``None`` counts individuals only.
    by : str or list of str, optional
        Grouping columns (e.g. an identity dimension).
    id_column : str
        Individuals are counted as distinct values of this column (rows when it is absent).
    total : bool
        Add the service total row (``by`` columns = ``"all"``).
    policy, settings
        As in :func:`suppress`.

    Returns
    -------
    DataFrame
        ``*by, n, n_suppressed, n_display`` and, for a true/false ``value``: ``events,
        events_suppressed, events_display, rate, rate_suppressed`` (rate = events / n, computed
        from the rounded counts under a rounding policy); for a numeric ``value``: ``mean,
        mean_suppressed`` (hidden when ``n`` is). ``is_total`` marks the total row. Complementary
        suppression runs across the groups of each ``by`` column.
    """
    by = _as_list(by)
    cols = set(by) | ({value} if value else set())
    missing = sorted(cols - set(table.columns))
    if missing:
        raise ValueError(f"service_benchmark: the table has no column(s) {', '.join(missing)}; "
                         f"columns: {', '.join(map(str, table.columns))}.")
    work = table[[c for c in dict.fromkeys([*by, *( [value] if value else []), id_column]) if c in table.columns]].copy()
    has_id = id_column in work.columns
    kind = None
    if value is not None:
        v = work[value]
        if pd.api.types.is_bool_dtype(v) or set(pd.unique(v.dropna())) <= {True, False}:
            kind = "rate"
            work[value] = v.astype("boolean")
            if has_id and work[id_column].duplicated().any():
                raise ValueError(f"service_benchmark: a true/false value needs one row per individual, but "
                                 f"'{id_column}' repeats. Summarise to one row per {id_column} first.")
        elif pd.api.types.is_numeric_dtype(v):
            kind = "mean"
        else:
            raise ValueError(f"service_benchmark: '{value}' must be true/false (a rate) or numeric (a mean); got {v.dtype}.")
        work = work[work[value].notna()]

    def agg(frame: pd.DataFrame) -> dict:
        row = {"n": int(frame[id_column].nunique()) if has_id else len(frame)}
        if kind == "rate":
            row["events"] = int(frame[value].sum())
            row["rate"] = row["events"] / row["n"] if row["n"] else np.nan
        elif kind == "mean":
            row["mean"] = float(frame[value].mean()) if len(frame) else np.nan
        return row

    rows = []
    if by:
        for keys, g in work.groupby(by, dropna=False, sort=True):
            keys = keys if isinstance(keys, tuple) else (keys,)
            rows.append({**dict(zip(by, keys)), **agg(g), "is_total": False})
    if total or not by:
        rows.append({**{b: "all" for b in by}, **agg(work), "is_total": True})
    res = pd.DataFrame(rows)
    counts = ["n"] + (["events"] if kind == "rate" else [])
    margins = [[b for b in by if b != c] for c in by] or None
    return suppress(res, counts, policy, group_columns=margins, total_rows="is_total",
                    rates={"rate": ("events", "n")} if kind == "rate" else None,
                    derived={"mean": ["n"]} if kind == "mean" else None, settings=settings)


# ================================================================================================
# 3. Scope: a clinician's own caseload
# ================================================================================================

def apply_scope(caseload, clinician_id: str):
    """The part of ``caseload`` that belongs to one clinician's own clients (self-review).

    Parameters
    ----------
    caseload : Caseload
        A loaded export (:func:`supervision.load_caseload`).
    clinician_id : str
        The clinician reviewing their own caseload.

    Returns
    -------
    Caseload
        ``clients`` of that clinician; ``sessions`` of those clients (a session a colleague
        covered stays with the client's caseload; sessions this clinician held for a colleague's
        client are not included); ``clinicians`` = that clinician's row; ``quarantine`` and
        ``report`` only the rows that can be attributed to those clients or this clinician (plus
        file-level problems that name no value); ``counts`` recomputed for clients, sessions and
        clinicians (the ``scores`` row is left out, since merged scores cannot be counted back).
        ``source`` notes the scope.

    Raises
    ------
    ValueError
        When the clinician has no clients and is not in the clinicians table.

    Notes
    -----
    This is a scope for the views, not a security boundary: the process that builds it has read
    the whole export. To keep service data away from a clinician altogether, give them a
    pseudonymised export of their own clients and benchmarks computed elsewhere.
    """
    from supervision.caseload import Caseload

    cid = str(clinician_id).strip()
    cl = caseload.clients
    own_clients = cl[cl["clinician_id"].astype(object) == cid]
    if own_clients.empty and not (caseload.clinicians["clinician_id"].astype(object) == cid).any():
        raise ValueError(f"Clinician '{cid}' has no clients in this export and is not in its clinicians table. "
                         "Check the id (it is case-sensitive) or the export.")
    ids = set(own_clients["client_id"].astype(object))
    sess = caseload.sessions
    own_sessions = sess[sess["client_id"].astype(object).isin(ids)]
    clin = caseload.clinicians[caseload.clinicians["clinician_id"].astype(object) == cid]

    def raw_ids(frame: pd.DataFrame, col: str) -> pd.Series:
        return frame[col].map(_id_text) if col in frame.columns else pd.Series(None, index=frame.index, dtype=object)

    quarantine, own_rows = {}, {}
    for name, q in caseload.quarantine.items():
        if name == "clinicians":
            keep = raw_ids(q, "clinician_id") == cid
        else:
            keep = raw_ids(q, "client_id").isin(ids)
            if name in ("clients", "sessions"):
                keep |= raw_ids(q, "clinician_id") == cid
        keep = keep.fillna(False).astype(bool)
        quarantine[name] = q[keep].reset_index(drop=True)
        own_rows[name] = set(pd.to_numeric(quarantine[name].get("source_row", pd.Series(dtype=float)), errors="coerce").dropna().astype(int))
    for name, frame in (("clients", own_clients), ("sessions", own_sessions), ("clinicians", clin)):
        if "source_row" in frame.columns:
            own_rows.setdefault(name, set()).update(pd.to_numeric(frame["source_row"], errors="coerce").dropna().astype(int))
    rep = caseload.report
    if len(rep):
        rows = pd.to_numeric(rep["row"], errors="coerce")
        attributed = pd.Series([(not np.isnan(r)) and int(r) in own_rows.get(t, set()) for t, r in zip(rep["table"], rows)],
                               index=rep.index)
        file_level = rows.isna() & rep["value"].isna()
        rep = rep[attributed | file_level].reset_index(drop=True)
    counts = pd.DataFrame(
        [{"table": n, "read": len(f) + len(quarantine.get(n, ())), "loaded": len(f), "quarantined": len(quarantine.get(n, ()))}
         for n, f in (("clients", own_clients), ("sessions", own_sessions), ("clinicians", clin))
         if n in set(caseload.counts["table"])],
        columns=["table", "read", "loaded", "quarantined"])
    return Caseload(own_clients.reset_index(drop=True), own_sessions.reset_index(drop=True), clin.reset_index(drop=True),
                    quarantine, rep, counts, caseload.usable, f"{caseload.source} [own caseload of {cid}]",
                    caseload.format, caseload.settings, scope=cid)


def _resolve_clinician(clinician_id, settings: Settings) -> str:
    cid = clinician_id if clinician_id not in (None, "") else _priv(settings, "self_review_clinician")
    if not cid:
        raise ValueError("No clinician given for self-review: pass clinician_id (or --clinician) or set "
                         "privacy.self_review_clinician in the settings file.")
    return str(cid)


def load_own_caseload(path=None, clinician_id: str | None = None, settings=None):
    """Load an export and keep only one clinician's own clients (:func:`apply_scope`).

    ``clinician_id`` defaults to the ``privacy.self_review_clinician`` setting.
    """
    return load_self_review(path, clinician_id, settings).caseload


class SelfReview:
    """A clinician's own caseload, with service figures available only as suppressed aggregates.

    Attributes
    ----------
    caseload : Caseload
        :func:`apply_scope` of the service's caseload.
    clinician_id : str
    policy : Policy
        The disclosure policy applied to every benchmark (setting ``privacy.suppression_policy``).
    """

    def __init__(self, service, clinician_id: str, policy: str | None = None):
        self.clinician_id = str(clinician_id)
        self.caseload = apply_scope(service, self.clinician_id)
        self.policy = policy_rules(policy, service.settings)
        self._service = service  # not for views: read it only through benchmark()

    def benchmark(self, source: str | Callable[[Any], pd.DataFrame] = "clients", value: str | None = None, *,
                  by=None, id_column: str = "client_id", total: bool = True) -> pd.DataFrame:
        """:func:`service_benchmark` over the whole service under :attr:`policy`.

        ``source`` is ``"clients"``, ``"sessions"`` or a function that takes the service's
        Caseload and returns a tidy table (e.g. a per-client metric table).
        """
        if callable(source):
            table = source(self._service)
        elif source in ("clients", "sessions"):
            table = getattr(self._service, source)
        else:
            raise ValueError(f"source must be 'clients', 'sessions' or a function of the caseload; got {source!r}.")
        return service_benchmark(table, value, by=by, id_column=id_column, total=total, policy=self.policy,
                                 settings=self._service.settings)

    def __repr__(self) -> str:
        return f"SelfReview(clinician_id={self.clinician_id!r}, clients={len(self.caseload.clients)}, policy={self.policy.name!r})"


def load_self_review(path=None, clinician_id: str | None = None, settings=None) -> SelfReview:
    """Load an export for a clinician's self-review: own clients, benchmarks only as aggregates."""
    from supervision.io import load_caseload

    settings = load_settings(settings)
    cid = _resolve_clinician(clinician_id, settings)
    values = settings.as_dict()
    values["privacy"]["self_review_clinician"] = ""  # the service is read whole here, then scoped by SelfReview
    service = load_caseload(path, settings=load_settings(values))
    return SelfReview(service, cid)
