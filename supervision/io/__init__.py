"""Load a service's export into the canonical caseload, with its validation report.

Public entry point: :func:`load_caseload`. Readers for other systems (FHIR, mapped exports) turn
their input into the contract's tables and then go through the same validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from supervision.caseload import Caseload
from supervision.config import Settings, load_settings
from supervision.instruments import instruments
from supervision.instruments.scoring import score_sessions
from supervision.io.readers import RawTable, read_export
from supervision.schema import (
    IDENTITY_MISSING, REQUIRED_TABLES, SOURCE_ROW, Collector, TableResult, _problem, coerce_table, contract,
)

__all__ = ["load_caseload", "load_tables", "demo_path"]


def demo_path() -> Path:
    """The bundled demo clinic: ``data/demo`` of the source checkout (an editable install)."""
    here = Path(__file__).resolve().parents[2] / "data" / "demo"
    return here


def _split_codes(s: pd.Series) -> pd.Series:
    return s.map(lambda v: [c.strip() for c in str(v).replace(",", ";").split(";") if c.strip()], na_action="ignore")


def _check_codes(table, frame, raw, column, known, rep, multi):
    """Unknown focus codes: warning, and the unknown codes are removed from the cell."""
    if column not in frame.columns:
        return
    s = frame[column]
    if multi:
        lists = _split_codes(s)
        bad = lists.map(lambda xs: [x for x in xs if x not in known], na_action="ignore")
        mask = bad.map(lambda xs: bool(xs), na_action="ignore").fillna(False).astype(bool)
        values = bad[mask].map(";".join)
        cleaned = lists.map(lambda xs: ";".join(x for x in xs if x in known) or None, na_action="ignore")
        frame[column] = cleaned.where(cleaned.notna(), None)
    else:
        mask = s.notna() & ~s.isin(known)
        values = s[mask]
        frame.loc[mask, column] = None
    if mask.any():
        full = pd.Series(False, index=frame.index)
        full[mask[mask].index] = True
        vals = pd.Series(None, index=frame.index, dtype=object)
        vals[values.index] = values
        rep.add_many(table, frame, full, column, vals, f"'{column}' has a focus code that is not in the taxonomy.",
                     "Use a code from the focus taxonomy (data/README.md) or add it to focus.codes in your settings. "
                     "The unknown code was left out.", "warning", "unknown_code")


def _lookup(keys: pd.Series, values: pd.Series) -> pd.Series:
    """``values`` (indexed by a unique key) looked up for each of ``keys``, keeping the dtype."""
    return pd.Series(values.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=values.dtype)


def _later_duplicates(frame: pd.DataFrame, keys: list[str], ok: pd.Series) -> pd.Series:
    """Rows (among ``ok`` rows with all keys present) that repeat an earlier row's keys."""
    cand = ok & frame[keys].notna().all(axis=1)
    dup = pd.Series(False, index=frame.index)
    dup[cand] = frame.loc[cand].duplicated(keys, keep="first")
    return dup


def _validate_clients(t: TableResult, clinicians: pd.DataFrame | None, settings: Settings, rep: Collector, file: str):
    c, err = t.frame, t.error
    dup = _later_duplicates(c, ["client_id"], ~err)
    first_line = c.loc[~err].drop_duplicates("client_id").set_index("client_id")[SOURCE_ROW]
    rep.add_many("clients", c, dup, "client_id", c["client_id"],
                 lambda: "This client_id appears earlier in the file (line " + c["client_id"].map(first_line).astype(str) + ").",
                 "Each episode needs its own client_id. Give this episode a new id, or remove the duplicate line.",
                 "error", "duplicate_id")
    err |= dup
    if "end_date" in c.columns:
        bad = c["end_date"].notna() & c["start_date"].notna() & (c["end_date"] < c["start_date"])
        rep.add_many("clients", c, bad, "end_date", lambda: c["end_date"].dt.strftime("%Y-%m-%d"),
                     "end_date is before start_date.", "Check both dates; the episode must end on or after its start.",
                     "error", "date_order")
        err |= bad
    if "end_reason" in c.columns:
        no_end = c["end_reason"].notna() & (c["end_date"].isna() if "end_date" in c.columns else True)
        rep.add_many("clients", c, no_end, "end_reason", c["end_reason"],
                     "The episode has an end reason but no end date.",
                     "Add the end date, or clear the end reason if the episode is still open.",
                     settings["validation"]["end_reason_without_end_date"], "end_reason_without_end_date")
        if settings["validation"]["end_reason_without_end_date"] == "error":
            err |= no_end
    _check_codes("clients", c, None, "agreed_goals", settings.focus_code_set, rep, multi=True)
    for dim in settings.identity_dimensions:
        if dim in c.columns:
            v = c[dim].map(lambda x: x.lower().replace(" ", "_") if x.lower().replace(" ", "_") in IDENTITY_MISSING else x,
                           na_action="ignore")
            c[dim] = v.where(v.notna(), "not_recorded")
    if clinicians is not None and len(clinicians):
        unknown = c["clinician_id"].notna() & ~c["clinician_id"].isin(clinicians["clinician_id"])
        rep.add_many("clients", c, unknown, "clinician_id", c["clinician_id"],
                     "This clinician is not in the clinicians table.",
                     "Add the clinician to clinicians (with supervisor and role), or correct the id.",
                     "warning", "unknown_clinician")


def _validate_sessions(t: TableResult, clients_ok: pd.DataFrame, clients_bad: pd.DataFrame, settings: Settings,
                       rep: Collector):
    s, err = t.frame, t.error
    known = s["client_id"].isin(clients_ok["client_id"])
    unknown = s["client_id"].notna() & ~known & ~err
    bad_line = clients_bad.drop_duplicates("client_id").set_index("client_id")[SOURCE_ROW] if len(clients_bad) else pd.Series(dtype=object)
    in_bad = s["client_id"].isin(bad_line.index)
    problem = pd.Series("This client_id is not in the clients table.", index=s.index)
    problem[in_bad] = ("This client's row in the clients table has an error (line "
                       + s.loc[in_bad, "client_id"].map(bad_line).astype(str) + "), so the session cannot be used.")
    fix = pd.Series("Add the client to the clients table, or correct the client_id.", index=s.index)
    fix[in_bad] = "Fix the client's row in the clients table (see its report line); the session then loads."
    rep.add_many("sessions", s, unknown, "client_id", s["client_id"], problem, fix, "error", "unknown_client")
    err |= unknown

    dup = _later_duplicates(s, ["client_id", "session_date"], ~err)
    rep.add_many("sessions", s, dup, "session_date", lambda: s["session_date"].dt.strftime("%Y-%m-%d"),
                 "This client already has a session on this date (an earlier line).",
                 "Remove the duplicate line, or correct its date.", "error", "duplicate_session")
    err |= dup

    info = clients_ok.set_index("client_id")
    ok = ~err
    own = _lookup(s["client_id"], info["clinician_id"])
    mismatch = ok & own.notna() & (s["clinician_id"] != own)
    sev = settings["validation"]["clinician_mismatch"]
    rep.add_many("sessions", s, mismatch, "clinician_id", s["clinician_id"],
                 lambda: "The session's clinician differs from the client's clinician (" + own.astype(str) + ").",
                 "Correct the clinician_id, or record the change of clinician as a new episode.", sev, "clinician_mismatch")
    if sev == "error":
        err |= mismatch
    start = _lookup(s["client_id"], info["start_date"])
    before = ok & (s["session_date"] < start)
    rep.add_many("sessions", s, before, "session_date", lambda: s["session_date"].dt.strftime("%Y-%m-%d"),
                 lambda: "The session is before the episode's start date (" + start.dt.strftime("%Y-%m-%d") + ").",
                 "Check the session date and the client's start_date.", "warning", "session_before_start")
    if "end_date" in info.columns:
        end = _lookup(s["client_id"], info["end_date"])
        tol = pd.Timedelta(days=settings["data"]["after_end_tolerance_days"])
        after = ok & end.notna() & (s["session_date"] > end + tol)
        sev = settings["validation"]["session_after_end"]
        rep.add_many("sessions", s, after, "session_date", lambda: s["session_date"].dt.strftime("%Y-%m-%d"),
                     lambda: "The session is after the episode's end date (" + end.dt.strftime("%Y-%m-%d") + ").",
                     "Check the session date and the client's end_date.", sev, "session_after_end")
        if sev == "error":
            err |= after

    known_codes = settings.focus_code_set
    _check_codes("sessions", s, None, "focus_primary", known_codes, rep, multi=False)
    _check_codes("sessions", s, None, "focus_secondary", known_codes, rep, multi=True)

    measures = [c for c in s.columns if c in _measure_cols(settings)]
    if measures:
        has = s[measures].notna()
        not_att = ~err & s["attendance"].isin(["cancelled", "no_show"])
        for col in measures:
            m = not_att & has[col]
            rep.add_many("sessions", s, m, col, s[col],
                         lambda: "A score is recorded for a session that was " + s["attendance"].astype(str) + ".",
                         "Check the attendance or the date; the score was not used.",
                         settings["validation"]["score_on_non_attended"], "score_on_non_attended")
            s.loc[m, col] = np.nan


def _measure_cols(settings: Settings | None = None) -> set[str]:
    from supervision.instruments import measure_columns

    return set(measure_columns(settings))


def _validate_scores(t: TableResult, sessions_ok: pd.DataFrame, rep: Collector, settings: Settings | None = None):
    sc, err = t.frame, t.error
    if sc.empty:  # a scores file with a header and no rows: nothing to check
        return
    insts = instruments(settings)
    item = (sc["item"].astype("str").str.lower().str.strip().str.removeprefix("item").str.strip()
            .str.replace(r"\.0$", "", regex=True))
    codes, uniques = pd.factorize(sc["instrument"])  # per-instrument facts by code, not by string lookups

    def per(attr):
        table = np.array([getattr(insts[u], attr) if u in insts else np.nan for u in uniques] + [np.nan], dtype=float)
        return pd.Series(table[codes], index=sc.index)  # code -1 (missing) takes the trailing NaN

    n_items = per("items")
    num = pd.to_numeric(item, errors="coerce")
    valid_item = (item == "total") | (num.notna() & (num >= 1) & (num <= n_items) & (num % 1 == 0))
    bad_item = ~err & sc["instrument"].notna() & ~valid_item
    rep.add_many("scores", sc, bad_item, "item", sc["item"],
                 lambda: "Unknown item for " + sc["instrument"].astype(str) + ".",
                 lambda: "Use an item number from 1 to " + n_items.astype("Int64").astype(str) + ", or 'total'.", "error",
                 "unknown_code")
    err |= bad_item
    whole = num.where(valid_item & (item != "total")).astype("Int64").astype("string")
    sc["item"] = np.where(item == "total", "total", whole.fillna(""))
    total = (item == "total").to_numpy()
    lo = np.where(total, per("total_min"), per("item_min"))
    hi = np.where(total, per("total_max"), per("item_max"))
    lo, hi = pd.Series(lo, index=sc.index, dtype=float), pd.Series(hi, index=sc.index, dtype=float)
    oor = ~err & sc["value"].notna() & ((sc["value"] < lo) | (sc["value"] > hi))
    rep.add_many("scores", sc, oor, "value", sc["value"],
                 lambda: "The value is outside the range " + lo.map("{:g}".format) + "-" + hi.map("{:g}".format) + " of this item.",
                 "Check the score against the questionnaire.", "error", "out_of_range")
    err |= oor
    dup = _later_duplicates(sc, ["client_id", "session_date", "instrument", "item"], ~err)
    rep.add_many("scores", sc, dup, "value", sc["value"], "The same score is given twice (an earlier line).",
                 "Remove the duplicate line.", "error", "duplicate_score")
    err |= dup
    key = sessions_ok.set_index(["client_id", "session_date"])["attendance"]
    idx = pd.MultiIndex.from_frame(sc[["client_id", "session_date"]])
    att = pd.Series(key.reindex(idx).to_numpy(), index=sc.index)
    nosession = ~err & att.isna()
    rep.add_many("scores", sc, nosession, "session_date", lambda: sc["session_date"].dt.strftime("%Y-%m-%d"),
                 "There is no (valid) session for this client on this date.",
                 "Check the client_id and date against the sessions table.", "error", "score_without_session")
    err |= nosession
    nonatt = ~err & (att != "attended")
    rep.add_many("scores", sc, nonatt, "session_date", lambda: sc["session_date"].dt.strftime("%Y-%m-%d"),
                 lambda: "The score belongs to a session that was " + att.astype(str) + ".",
                 "Check the attendance or the date; the score was not used.", "error", "score_on_non_attended")
    err |= nonatt


def _merge_scores(sessions: pd.DataFrame, scores: pd.DataFrame, rep: Collector) -> pd.DataFrame:
    if scores.empty:
        return sessions
    sc = scores.assign(column=scores["instrument"] + "_" + scores["item"])
    wide = sc.pivot(index=["client_id", "session_date"], columns="column", values="value")
    rows = sc.pivot(index=["client_id", "session_date"], columns="column", values=SOURCE_ROW)
    out = sessions.copy()
    idx = pd.MultiIndex.from_frame(out[["client_id", "session_date"]])
    for col in wide.columns:
        given = wide[col].reindex(idx).to_numpy()
        if col in out.columns:
            old = out[col].to_numpy()
            conflict = ~np.isnan(old) & ~np.isnan(given) & (old != given)
            if conflict.any():
                line = rows[col].reindex(idx).to_numpy()
                part = pd.DataFrame({SOURCE_ROW: line})
                rep.add_many("scores", part, conflict, "value", pd.Series(given),
                             f"{col} differs from the value in the sessions table; the sessions value was kept.",
                             "Keep each score in one place (the sessions table or the scores table).", "warning", "score_conflict")
            out[col] = np.where(np.isnan(old), given, old)
        else:
            out[col] = given
    return out


def _canonical(frame: pd.DataFrame, table: str, settings: Settings) -> pd.DataFrame:
    order = [c.name for c in contract(settings)[table] if c.name in frame.columns]
    if table == "sessions":
        measure_cols = _measure_cols(settings)
        extra = sorted(c for c in frame.columns if c in measure_cols and c not in order)
        order += extra
        order = [c for c in order if not (c in measure_cols and frame[c].isna().all())]
    out = frame[order + [SOURCE_ROW]].reset_index(drop=True)
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].astype("string")
    if table == "sessions":
        out = out.sort_values(["clinician_id", "client_id", "session_date"], kind="stable").reset_index(drop=True)
    return out


def _empty(table: str, settings: Settings) -> pd.DataFrame:
    cols = [c.name for c in contract(settings)[table] if c.required] + [SOURCE_ROW]
    return pd.DataFrame({c: pd.Series(dtype="string") for c in cols})


def load_tables(raw: dict[str, RawTable], settings=None, source: str = "", fmt: str = "",
                reader_problems: list | None = None) -> Caseload:
    """Validate raw tables (as read from any source) into a :class:`Caseload`."""
    settings = load_settings(settings)
    rep = Collector()
    for p in reader_problems or []:
        rep.add(p)
    today = pd.Timestamp.today().normalize() + pd.Timedelta(days=settings["data"]["future_tolerance_days"])
    usable = True
    unreadable = {p.get("table") if isinstance(p.get("table"), str) else "*" for p in (reader_problems or [])
                  if p.get("check") == "unreadable_file"}
    if unreadable & {"*", *REQUIRED_TABLES}:
        usable = False
    for name in REQUIRED_TABLES:
        if name not in raw and not unreadable & {"*", name}:
            usable = False
            rep.add(_problem(name, pd.NA, pd.NA, pd.NA, f"The export has no {name} table ({name}.csv, {name}.parquet or an Excel sheet '{name}').",
                             f"Add {name}.csv to the folder (see data/README.md for its columns).", "error", "missing_table"))
    results: dict[str, TableResult | None] = {}
    for name, rt in raw.items():
        results[name] = coerce_table(name, rt.frame, rt.file, settings, today, rep)
        if results[name] is None and name in REQUIRED_TABLES + ("scores",):
            usable = False
        if results[name] is None and name == "clinicians":
            usable = False

    if not usable:
        counts = pd.DataFrame([{"table": n, "read": len(rt.frame) + (0 if rt.bad_rows is None else len(rt.bad_rows)),
                                "loaded": 0, "quarantined": len(rt.frame) + (0 if rt.bad_rows is None else len(rt.bad_rows))}
                               for n, rt in raw.items()], columns=["table", "read", "loaded", "quarantined"])
        return Caseload(_empty("clients", settings), _empty("sessions", settings), _empty("clinicians", settings),
                        {n: rt.frame for n, rt in raw.items()}, rep.frame(), counts, False, source, fmt, settings)

    clin = results.get("clinicians")
    if clin is not None:
        dup = _later_duplicates(clin.frame, ["clinician_id"], ~clin.error)
        rep.add_many("clinicians", clin.frame, dup, "clinician_id", clin.frame["clinician_id"],
                     "This clinician_id appears earlier in the file.", "Remove the duplicate line.", "error", "duplicate_id")
        clin.error |= dup
    clinicians_ok = clin.frame[~clin.error] if clin is not None else None

    cl = results["clients"]
    _validate_clients(cl, clinicians_ok, settings, rep, raw["clients"].file)
    clients_ok, clients_bad = cl.frame[~cl.error], cl.frame[cl.error]

    se = results["sessions"]
    _validate_sessions(se, clients_ok, clients_bad, settings, rep)
    sessions_ok = se.frame[~se.error]

    sc = results.get("scores")
    if sc is not None:
        _validate_scores(sc, sessions_ok, rep, settings)
        sessions_ok = _merge_scores(sessions_ok, sc.frame[~sc.error], rep)

    if clinicians_ok is None:
        ids = clients_ok["clinician_id"].dropna().unique()
        clinicians_ok = pd.DataFrame({"clinician_id": sorted(ids), "supervisor_id": None, "role": None, SOURCE_ROW: pd.NA})

    quarantine, counts = {}, []
    for name, res in results.items():
        rt = raw[name]
        q = rt.frame.loc[res.error.to_numpy()].reset_index(drop=True)
        if rt.bad_rows is not None:
            q = pd.concat([q, rt.bad_rows], ignore_index=True)
        quarantine[name] = q
        read = len(rt.frame) + (0 if rt.bad_rows is None else len(rt.bad_rows))
        counts.append({"table": name, "read": read, "loaded": int((~res.error).sum()), "quarantined": len(q)})
    tables = {
        "clients": _canonical(clients_ok, "clients", settings),
        "sessions": score_sessions(_canonical(sessions_ok, "sessions", settings), instruments(settings)),
        "clinicians": _canonical(clinicians_ok, "clinicians", settings),
    }
    return Caseload(tables["clients"], tables["sessions"], tables["clinicians"], quarantine, rep.frame(),
                    pd.DataFrame(counts, columns=["table", "read", "loaded", "quarantined"]), True, source, fmt, settings)


def load_caseload(path=None, settings=None) -> Caseload:
    """Read, validate and normalise a service's export.

    Parameters
    ----------
    path : str or Path, optional
        A folder of CSV or Parquet files (``clients``, ``sessions``, optional ``clinicians`` and
        ``scores``) or one ``.xlsx`` workbook with a sheet per table. Default: the ``data.path``
        setting, or the bundled demo clinic when that is empty.
    settings : path, dict or Settings, optional
        See :func:`supervision.config.load_settings`. With ``[privacy] self_review_clinician`` set,
        only that clinician's own clients are kept (:func:`supervision.privacy.apply_scope`), so
        the views of a clinician's self-review never hold other clinicians' clients.

    Returns
    -------
    Caseload
        Never raises for bad data: problems are in ``.report`` (columns ``table, row, column,
        value, problem, fix, severity, check``), rows with errors in ``.quarantine``, and
        ``.usable`` is False when the export cannot be used at all.
    """
    settings = load_settings(settings)
    if path is None:
        path = settings["data"]["path"] or demo_path()
    problems: list = []
    raw, fmt = read_export(path, problems)
    caseload = load_tables(raw, settings, source=str(path), fmt=fmt, reader_problems=problems)
    own = settings["privacy"].get("self_review_clinician")
    if own and caseload.usable:
        # self-review: only this clinician's own clients are loaded into the views
        from supervision.privacy import apply_scope

        caseload = apply_scope(caseload, own)
    return caseload
