"""Load a service's export into the canonical caseload, with its validation report.

Public entry point: :func:`load_caseload`. Readers for other systems (FHIR, mapped exports) turn
their input into the contract's tables and then go through the same validation.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from supervision.caseload import Caseload, apply_scope
from supervision.config import Settings, load_settings
from supervision.instruments import instruments
from supervision.instruments.scoring import score_sessions
from supervision.io.readers import RawTable, categorical_text, read_export, text_frame
from supervision.schema import (
    IDENTITY_MISSING, REQUIRED_TABLES, SOURCE_ROW, Collector, TableResult, _problem, coerce_table, contract, distinct,
    per_value, take_codes,
)

__all__ = ["load_caseload", "load_tables", "demo_path", "env_data_path"]

#: Environment variable naming the data a hosted workbook opens by default (set per user by the
#: JupyterHub deployment in ``deploy/``: the user's own published folder).
DATA_ENV = "SUPERVISION_DATA"


def demo_path() -> Path:
    """The bundled demo clinic: ``data/demo`` of the source checkout (an editable install)."""
    here = Path(__file__).resolve().parents[2] / "data" / "demo"
    return here


def env_data_path() -> Path | None:
    """The folder named by the ``SUPERVISION_DATA`` environment variable, or None when it is unset or empty."""
    value = os.environ.get(DATA_ENV, "").strip()
    return Path(value) if value else None


def _code_list(v) -> list[str]:
    return [c.strip() for c in str(v).replace(",", ";").split(";") if c.strip()]


def _check_codes(table, frame, raw, column, known, rep, multi):
    """Unknown focus codes: warning, and the unknown codes are removed from the cell.

    Judged once per distinct cell value (a caseload repeats a few hundred code lists).
    """
    if column not in frame.columns:
        return
    s = frame[column]
    codes, uniq = distinct(s)
    if multi:
        lists = [_code_list(v) for v in uniq]
        bad_u = pd.Series([";".join(x for x in xs if x not in known) or None for xs in lists], dtype=object)
        clean_u = pd.Series([";".join(x for x in xs if x in known) or None for xs in lists], dtype=object)
        frame[column] = take_codes(clean_u, codes, frame.index)
    else:
        bad_u = pd.Series([None if v in known else v for v in uniq], dtype=object)
    values = take_codes(bad_u, codes, frame.index)
    mask = values.notna().to_numpy()
    if not multi and mask.any():
        frame.loc[mask, column] = None
    rep.add_many(table, frame, mask, column, values, f"'{column}' has a focus code that is not in the taxonomy.",
                 "Use a code from the focus taxonomy (data/README.md) or add it to focus.codes in your settings. "
                 "The unknown code was left out.", "warning", "unknown_code")


def _positions(keys: pd.Series, values) -> np.ndarray:
    """Each row's position among the distinct ``values`` (-1: missing or not there), looked up per distinct key."""
    codes, uniq = distinct(keys)
    pos = _lookup(uniq, values) if len(uniq) else np.array([], dtype=np.int32)
    return np.concatenate([pos, np.array([-1], dtype=pos.dtype)])[codes]


def _lookup(uniq, values) -> np.ndarray:
    """Position of each of ``uniq`` in the distinct ``values`` (-1: not there).

    Text is hashed by Arrow (its bytes), anything else by pandas (Python objects).
    """
    a, b = _arrow_text(uniq), _arrow_text(values)
    if a is not None and b is not None:
        return pc.index_in(a, value_set=b).fill_null(-1).to_numpy(zero_copy_only=False)
    return pd.Index(pd.Series(values).astype(object).to_numpy()).get_indexer(pd.Index(pd.Series(uniq).astype(object).to_numpy()))


def _arrow_text(values) -> pa.Array | None:
    """Text values (a Categorical or pandas' string dtype) as one Arrow array; None for other dtypes."""
    s = pd.Series(values, copy=False)
    if isinstance(s.dtype, pd.CategoricalDtype):
        if s.cat.categories.dtype != "str":
            return None
        s = categorical_text(s)
    if s.dtype != "str":
        return None
    arrow = pa.array(s.array)
    return arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow


def _at(values: pd.Series, pos: np.ndarray, index: pd.Index) -> pd.Series:
    """``values`` at positions ``pos`` (-1 -> missing), keeping the dtype."""
    ext = pd.concat([values.reset_index(drop=True), pd.Series([None], dtype=values.dtype)], ignore_index=True)
    return pd.Series(ext.take(pos).to_numpy(), index=index, dtype=values.dtype)


def _day_numbers(dates: pd.Series) -> np.ndarray:
    """Days since 1900-01-01 as int32 (dates are checked to 1900-2199), -1 where missing."""
    ns = dates.to_numpy(dtype="datetime64[ns]").view(np.int64)
    out = np.empty(len(ns), dtype=np.int32)  # no int64 temporaries: a scores table has millions of rows
    np.floor_divide(ns, 86_400_000_000_000, out=out, casting="unsafe")
    out -= _DAY_1900
    out[ns == np.iinfo(np.int64).min] = -1  # NaT
    return out


_DENSE_LIMIT = 2 ** 27  # (session, column) cells of the scores duplicate check: at most 512 MB of row numbers
_DAY_1900 = int(np.datetime64("1900-01-01", "D").astype(np.int64))


def _combine(*parts: tuple[np.ndarray, int]) -> np.ndarray | None:
    """One int64 key from integer codes (each ``(codes, n_values)``; -1 = missing -> key -1).

    None when the codes would not fit in 63 bits.
    """
    key = np.zeros(len(parts[0][0]), dtype=np.int64)
    missing = np.zeros(len(key), dtype=bool)
    span = 1
    for codes, n in parts:
        n = max(int(n), 1)
        span *= n
        if span >= 2 ** 62:
            return None
        key = key * n + np.where(codes >= 0, codes, 0)
        missing |= codes < 0
    key[missing] = -1
    return key


def _later_duplicates_fast(key: np.ndarray | None, frame: pd.DataFrame, keys: list[str], ok: pd.Series) -> pd.Series:
    if key is None:
        return _later_duplicates(frame, keys, ok)
    cand = ok.to_numpy() & (key >= 0)
    dup = np.zeros(len(key), dtype=bool)
    k = key[cand]
    if len(k) and np.all(k[1:] >= k[:-1]):  # rows in key order (a sorted export): compare neighbours
        dup[cand] = np.concatenate([[False], k[1:] == k[:-1]])
    else:
        dup[cand] = pd.Series(k).duplicated(keep="first").to_numpy()
    return pd.Series(dup, index=frame.index)


def _later_duplicates(frame: pd.DataFrame, keys: list[str], ok: pd.Series) -> pd.Series:
    """Rows (among ``ok`` rows with all keys present) that repeat an earlier row's keys."""
    cand = ok & frame[keys].notna().all(axis=1)
    dup = pd.Series(False, index=frame.index)
    dup[cand] = frame.loc[cand].duplicated(keys, keep="first")
    return dup


def _validate_clients(t: TableResult, clinicians: pd.DataFrame | None, settings: Settings, rep: Collector, file: str):
    c, err = t.frame, t.error
    dup = _later_duplicates(c, ["client_id"], ~err)
    def first_line():
        first = c.loc[~err].drop_duplicates("client_id")
        line = pd.Series(first[SOURCE_ROW].to_numpy(), index=first["client_id"].astype(object).to_numpy())
        return c["client_id"].astype(object).map(line).astype("Int64").astype(str)

    rep.add_many("clients", c, dup, "client_id", c["client_id"],
                 lambda: "This client_id appears earlier in the file (line " + first_line() + ").",
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
    from supervision.config import _defaults

    optional = set(_defaults()["identity"]["dimensions"])
    for dim in settings.identity_dimensions:
        if dim not in c.columns and dim not in optional:  # named in the user's settings: expected in the data
            rep.add(_problem("clients", pd.NA, dim, pd.NA,
                             f"The settings name the identity dimension '{dim}', but clients has no such column; "
                             "no adaptation gap can be estimated for it.",
                             "Check the spelling in [identity] dimensions against the clients columns, or add the "
                             "column to the export.", "warning", "unknown_dimension"))
        if dim in c.columns:
            v = per_value(c[dim], lambda u: u.map(
                lambda x: x.lower().replace(" ", "_") if x.lower().replace(" ", "_") in IDENTITY_MISSING else x).astype(object))
            if v.isna().any():
                if "not_recorded" not in v.cat.categories:
                    v = v.cat.add_categories(["not_recorded"])
                v = v.fillna("not_recorded")
            c[dim] = v
    if clinicians is not None and len(clinicians):
        unknown = c["clinician_id"].notna() & ~c["clinician_id"].isin(clinicians["clinician_id"])
        rep.add_many("clients", c, unknown, "clinician_id", c["clinician_id"],
                     "This clinician is not in the clinicians table.",
                     "Add the clinician to clinicians (with supervisor and role), or correct the id.",
                     "warning", "unknown_clinician")


def _validate_sessions(t: TableResult, clients_ok: pd.DataFrame, clients_bad: pd.DataFrame, settings: Settings,
                       rep: Collector) -> np.ndarray:
    """Cross-table rules of sessions; returns each session's row in ``clients_ok`` (-1: none)."""
    s, err = t.frame, t.error
    client_pos = _positions(s["client_id"], clients_ok["client_id"])
    known = client_pos >= 0
    unknown = s["client_id"].notna() & ~known & ~err
    if unknown.any():
        bad_line = (clients_bad.drop_duplicates("client_id").set_index(clients_bad.drop_duplicates("client_id")["client_id"]
                                                                         .astype(object))[SOURCE_ROW]
                    if len(clients_bad) else pd.Series(dtype=object))
        ids = s["client_id"].astype(object)
        in_bad = ids.isin(bad_line.index)
        problem = pd.Series("This client_id is not in the clients table.", index=s.index)
        problem[in_bad] = ("This client's row in the clients table has an error (line "
                           + ids[in_bad].map(bad_line).astype(str) + "), so the session cannot be used.")
        fix = pd.Series("Add the client to the clients table, or correct the client_id.", index=s.index)
        fix[in_bad] = "Fix the client's row in the clients table (see its report line); the session then loads."
        rep.add_many("sessions", s, unknown, "client_id", s["client_id"], problem, fix, "error", "unknown_client")
        err |= unknown

    day = _day_numbers(s["session_date"])
    client_codes = s["client_id"].cat.codes.to_numpy() if isinstance(s["client_id"].dtype, pd.CategoricalDtype) else None
    key = None if client_codes is None else _combine((client_codes, len(s["client_id"].cat.categories)), (day, 2 ** 17))
    dup = _later_duplicates_fast(key, s, ["client_id", "session_date"], ~err)
    rep.add_many("sessions", s, dup, "session_date", lambda: s["session_date"].dt.strftime("%Y-%m-%d"),
                 "This client already has a session on this date (an earlier line).",
                 "Remove the duplicate line, or correct its date.", "error", "duplicate_session")
    err |= dup

    ok = ~err
    clin_index = clients_ok["clinician_id"].dropna().unique()
    own_code = np.append(_positions(clients_ok["clinician_id"], clin_index), -1)[client_pos]
    session_code = _positions(s["clinician_id"], clin_index)
    mismatch = ok & (own_code >= 0) & (session_code != own_code)
    sev = settings["validation"]["clinician_mismatch"]
    rep.add_many("sessions", s, mismatch, "clinician_id", s["clinician_id"],
                 lambda: "The session's clinician differs from the client's clinician ("
                 + _at(clients_ok["clinician_id"].astype(object), client_pos, s.index).astype(str) + ").",
                 "Correct the clinician_id, or record the change of clinician as a new episode.", sev, "clinician_mismatch")
    if sev == "error":
        err |= mismatch
    start = _at(clients_ok["start_date"], client_pos, s.index)
    before = ok & (s["session_date"] < start)
    rep.add_many("sessions", s, before, "session_date", lambda: s["session_date"].dt.strftime("%Y-%m-%d"),
                 lambda: "The session is before the episode's start date (" + start.dt.strftime("%Y-%m-%d") + ").",
                 "Check the session date and the client's start_date.", "warning", "session_before_start")
    if "end_date" in clients_ok.columns:
        end = _at(clients_ok["end_date"], client_pos, s.index)
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
            if m.any():
                s.loc[m, col] = np.nan
    return client_pos


def _measure_cols(settings: Settings | None = None) -> set[str]:
    from supervision.instruments import measure_columns

    return set(measure_columns(settings))


def _validate_scores(t: TableResult, sessions_ok: pd.DataFrame, rep: Collector, settings: Settings | None = None):
    """Rules of the long scores table; returns what :func:`_merge_scores` needs (None when empty).

    A scores table has a row per item (several million at service scale), so the facts of each
    distinct (instrument, item) pair are worked out once and every row is judged by integer codes.
    """
    sc, err = t.frame, t.error
    if sc.empty:  # a scores file with a header and no rows: nothing to check
        return None
    insts = instruments(settings)
    inst_codes, inst_u = distinct(sc["instrument"])
    item_codes, item_u = distinct(sc["item"])
    n_inst, n_item = len(inst_u), len(item_u)
    norm_u = (pd.Series(item_u.astype("str")).str.lower().str.strip().str.removeprefix("item").str.strip()
              .str.replace(r"\.0$", "", regex=True))
    num_u = pd.to_numeric(norm_u, errors="coerce").to_numpy(dtype=float)
    total_u = (norm_u == "total").to_numpy(dtype=bool)
    # facts per (instrument, item) pair; the last slot is a row with no instrument or no item
    size = n_inst * n_item + 1
    p_valid, p_col = np.zeros(size, dtype=bool), np.full(size, -1, dtype=np.int64)
    p_items, p_lo, p_hi = np.full(size, np.nan), np.full(size, np.nan), np.full(size, np.nan)
    p_whole = np.zeros(size, dtype=bool)  # an item answered in whole steps (not a total)
    names: list[str] = []
    for i, inst in enumerate(inst_u):
        spec = insts.get(inst)
        for k in range(n_item):
            p, n = i * n_item + k, num_u[k]
            if spec is None:  # an unknown instrument: its rows are already reported
                p_valid[p] = total_u[k]
                continue
            p_items[p] = spec.items
            p_valid[p] = total_u[k] or (n == n and 1 <= n <= spec.items and n % 1 == 0)
            p_lo[p] = spec.total_min if total_u[k] else spec.item_min
            p_hi[p] = spec.total_max if total_u[k] else spec.item_max
            p_whole[p] = spec.whole_items and not total_u[k]
            if p_valid[p]:
                name = f"{inst}_{'total' if total_u[k] else int(n)}"
                if name not in names:
                    names.append(name)
                p_col[p] = names.index(name)
    # columns numbered in the order of their names (the order the merged table keeps them in)
    rank = np.append(np.argsort(np.argsort(names, kind="stable")), -1).astype(np.int32)
    p_col, names = rank[p_col], sorted(names)
    # the pair of each row, in int32 (a scores table has millions of rows; int64 temporaries cost)
    pair = inst_codes.astype(np.int32)
    pair *= n_item
    pair += item_codes
    pair[(inst_codes < 0) | (item_codes < 0)] = size - 1

    bad_item = ~err & (inst_codes >= 0) & ~p_valid[pair]
    rep.add_many("scores", sc, bad_item, "item", sc["item"],
                 lambda: "Unknown item for " + sc["instrument"].astype(str) + ".",
                 lambda: "Use an item number from 1 to " + pd.Series(p_items[pair]).astype("Int64").astype(str) + ", or 'total'.",
                 "error", "unknown_code")
    err |= bad_item
    value = sc["value"].to_numpy(dtype=float)
    oor = np.empty(len(value), dtype=bool)
    for rows in _blocks(len(value)):  # NaN (no value, or no range) compares False
        oor[rows] = (value[rows] < p_lo[pair[rows]]) | (value[rows] > p_hi[pair[rows]])
    oor &= ~err.to_numpy()
    rep.add_many("scores", sc, oor, "value", sc["value"],
                 lambda: "The value is outside the range " + pd.Series(p_lo[pair]).map("{:g}".format)
                 + "-" + pd.Series(p_hi[pair]).map("{:g}".format) + " of this item.",
                 "Check the score against the questionnaire.", "error", "out_of_range")
    err |= oor
    frac = ~err.to_numpy() & p_whole[pair] & (np.mod(value, 1) != 0) & ~np.isnan(value)
    rep.add_many("scores", sc, frac, "value", sc["value"],
                 lambda: "The value is not a whole number; answers of " + sc["instrument"].astype(str)
                 + " score in whole steps.",
                 "Check the answer against the questionnaire (a fraction is not one of its scores).", "error", "not_whole")
    err |= frac

    # the session of each score: (client, date) as one integer in the sessions' own client codes
    column = p_col[pair]
    day = _day_numbers(sc["session_date"])
    s_codes, s_clients = distinct(sessions_ok["client_id"])
    session_key = s_codes.astype(np.int64) * 2 ** 17 + _day_numbers(sessions_ok["session_date"])
    row = _session_rows(_positions(sc["client_id"], s_clients), day, session_key)

    # the same (client, date, instrument, item) twice: among rows with a session, by their
    # (session, column) cell of a dense table; among the rest (few), by hashing their keys
    cand = ~err.to_numpy() & (column >= 0) & (sc["client_id"].notna().to_numpy() & (day >= 0))
    dup = np.zeros(len(sc), dtype=bool)
    matched = cand & (row >= 0)
    dense = len(sessions_ok) * max(len(names), 1) <= _DENSE_LIMIT
    if dense and matched.any():
        dup[matched] = _repeated_cells(row[matched], column[matched], len(sessions_ok), len(names))
    rest = cand & ~matched if dense else cand
    if rest.any():
        client_codes, client_u = distinct(sc["client_id"])
        key = _combine((client_codes, len(client_u)), (day, 2 ** 17), (column, len(names)))
        dup |= _later_duplicates_fast(key, sc.assign(_column=column), ["client_id", "session_date", "_column"],
                                      pd.Series(rest, index=sc.index)).to_numpy()
    rep.add_many("scores", sc, dup, "value", sc["value"], "The same score is given twice (an earlier line).",
                 "Remove the duplicate line.", "error", "duplicate_score")
    err |= dup
    nosession = ~err & (row < 0)
    rep.add_many("scores", sc, nosession, "session_date", lambda: sc["session_date"].dt.strftime("%Y-%m-%d"),
                 "There is no (valid) session for this client on this date.",
                 "Check the client_id and date against the sessions table.", "error", "score_without_session")
    err |= nosession
    attended = np.append((sessions_ok["attendance"] == "attended").to_numpy(dtype=bool), True)
    nonatt = ~err & ~attended[row]
    rep.add_many("scores", sc, nonatt, "session_date", lambda: sc["session_date"].dt.strftime("%Y-%m-%d"),
                 lambda: "The score belongs to a session that was "
                 + _at(sessions_ok["attendance"].astype(object), row, sc.index).astype(str) + ".",
                 "Check the attendance or the date; the score was not used.", "error", "score_on_non_attended")
    err |= nonatt
    return row, column, names


def _blocks(n: int, size: int = 1 << 18):
    """Row slices of a long table: work on them in turn reuses the same small temporaries, where
    one pass over millions of rows would take fresh memory for each (which the system must clear)."""
    return [slice(start, start + size) for start in range(0, n, size)]


def _repeated_cells(row: np.ndarray, column: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
    """True where a (row, column) cell was already taken by an earlier entry.

    A table of one byte per cell tells whether any cell repeats (usually none does); only then
    is the earliest entry of every cell found, in a table of entry numbers.
    """
    slot = row.astype(np.int32) * np.int32(n_columns) + column.astype(np.int32)
    seen = np.zeros(n_rows * n_columns, dtype=bool)
    seen[slot] = True
    if np.count_nonzero(seen) == len(slot):
        return np.zeros(len(slot), dtype=bool)
    del seen
    idx = np.arange(len(slot), dtype=np.int64 if len(slot) >= 2 ** 31 else np.int32)
    first = np.empty(n_rows * n_columns, dtype=idx.dtype)
    first[slot[::-1]] = idx[::-1]  # repeated cells: the last assignment (the earliest entry) wins
    return first[slot] != idx


def _session_rows(client: np.ndarray, day: np.ndarray, session_key: np.ndarray) -> np.ndarray:
    """Each score's row in the sessions (keys ``client * 2**17 + day``, unique), -1 where none.

    A scores table lists a session's items on consecutive lines, so only the first line of each
    run of the same (client, day) is looked up.
    """
    if not len(client):
        return np.zeros(0, dtype=np.int32)
    head = np.empty(len(client), dtype=bool)
    head[0] = True
    np.not_equal(client[1:], client[:-1], out=head[1:])
    head[1:] |= day[1:] != day[:-1]
    starts = np.flatnonzero(head)
    c, d = client[starts], day[starts]
    key = np.where((c >= 0) & (d >= 0), c.astype(np.int64) * 2 ** 17 + d, -1)  # session keys are >= 0
    found = pd.Index(session_key).get_indexer(key).astype(np.int32)
    return np.repeat(found, np.diff(np.append(starts, len(client))))


def _merge_scores(sessions: pd.DataFrame, value: np.ndarray, row: np.ndarray, column: np.ndarray, valid: np.ndarray,
                  names: list[str], lines, rep: Collector) -> pd.DataFrame:
    """The ``valid`` scores of the long table into the sessions' wide measure columns (the sessions
    value wins a conflict).

    ``row`` and ``column`` are each score's session and its column in ``names`` (in name order);
    ``lines()`` gives the scores' line numbers, needed only to report a conflict. One scatter of
    every score into a (column x session) table (in row blocks); no pivot, no sort.
    """
    out = sessions.reset_index(drop=True)  # a frame of its own already (the valid rows of the sessions table)
    wide = np.full((len(names), len(out)), np.nan)
    for rows in _blocks(len(value)):
        use = valid[rows]
        wide[column[rows][use], row[rows][use]] = value[rows][use]
    new = []
    for k, col in enumerate(names):
        if col not in out.columns:
            new.append(k)
            continue
        given, old = wide[k], out[col].to_numpy(dtype=float)
        conflict = ~np.isnan(old) & ~np.isnan(given) & (old != given)
        if conflict.any():
            line = np.full(len(out), -1, dtype=np.int64)
            mine = valid & (column == k)
            line[row[mine]] = lines()[mine]
            rep.add_many("scores", pd.DataFrame({SOURCE_ROW: line}), conflict, "value", pd.Series(given),
                         f"{col} differs from the value in the sessions table; the sessions value was kept.",
                         "Keep each score in one place (the sessions table or the scores table).", "warning", "score_conflict")
        out[col] = np.where(np.isnan(old), given, old)
    if new:
        block = wide if len(new) == len(names) else wide[new]  # no copy when every column is new
        out = pd.concat([out, pd.DataFrame(block.T, columns=[names[k] for k in new], copy=False)], axis=1)
    return out


def _canonical(frame: pd.DataFrame, table: str, settings: Settings) -> pd.DataFrame:
    order = [c.name for c in contract(settings)[table] if c.name in frame.columns]
    if table == "sessions":
        measure_cols = _measure_cols(settings)
        extra = sorted(c for c in frame.columns if c in measure_cols and c not in order)
        order += extra
        order = [c for c in order if not (c in measure_cols and frame[c].isna().all())]

    def column(c):
        v = frame[c]
        if isinstance(v.dtype, pd.CategoricalDtype):
            v = categorical_text(v)
        elif v.dtype == object:
            v = v.astype("string")
        return v.array

    # text columns are made by Arrow, which lets go of the GIL: two at a time
    with ThreadPoolExecutor(max_workers=2) as pool:
        columns = dict(zip(order + [SOURCE_ROW], pool.map(column, order + [SOURCE_ROW])))
    return pd.DataFrame(columns, copy=False)  # the columns as they are, on a fresh row index (no copy)


def _in_session_order(frame: pd.DataFrame, ok: np.ndarray) -> pd.DataFrame:
    """The ``ok`` rows, by clinician, client and date (a stable sort, as ``sort_values(kind="stable")``).

    Done before the scores are merged in, while the table is narrow, and in one take with the
    selection of the valid rows: text columns are Categoricals with sorted categories here, so
    sorting by their codes sorts by the text.
    """
    rows = np.flatnonzero(ok)
    keys = [_sort_codes(frame[c])[rows] for c in ("session_date", "client_id", "clinician_id")]
    order = rows[np.lexsort(keys)]
    if len(order) == len(frame) and np.array_equal(order, np.arange(len(frame))):
        return frame  # every row valid and in order already (a sorted export): no copy
    return frame.take(order)


def _sort_codes(s: pd.Series) -> np.ndarray:
    if isinstance(s.dtype, pd.CategoricalDtype) and s.cat.categories.is_monotonic_increasing:
        return s.cat.codes.to_numpy()
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.to_numpy().view(np.int64)
    return pd.factorize(s, sort=True)[0]


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
                        {n: text_frame(rt.frame) for n, rt in raw.items()}, rep.frame(), counts, False, source, fmt, settings)

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

    _lookalike_ids(results, rep)
    se = results["sessions"]
    _validate_sessions(se, clients_ok, clients_bad, settings, rep)
    sessions_ok = _in_session_order(se.frame, ~se.error.to_numpy())

    sc = results.get("scores")
    if sc is not None:
        matched = _validate_scores(sc, sessions_ok, rep, settings)
        valid = ~sc.error.to_numpy()
        if matched is not None and valid.any():
            row, column, names = matched
            sessions_ok = _merge_scores(sessions_ok, sc.frame["value"].to_numpy(dtype=float), row, column, valid, names,
                                        lambda: sc.frame[SOURCE_ROW].to_numpy(), rep)

    if clinicians_ok is None:
        ids = clients_ok["clinician_id"].dropna().unique()
        clinicians_ok = pd.DataFrame({"clinician_id": sorted(ids), "supervisor_id": None, "role": None, SOURCE_ROW: pd.NA})

    quarantine, counts = {}, []
    for name, res in results.items():
        rt = raw[name]
        q = rt.frame.loc[res.error.to_numpy()].reset_index(drop=True)
        q = text_frame(q)
        if rt.bad_rows is not None:
            if not q.columns.is_unique:  # a repeated column name (reported): numbered, so the lines can be added
                q.columns = _numbered(list(q.columns))
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


# Letters of other scripts that look like Latin ones (Cyrillic, Greek): an id typed with one of
# them is a different id that nobody can tell apart on screen.
_CONFUSABLE = str.maketrans(
    "АВЕКМНОРСТХУаеорсухіјѕІЈЅԁɡΑΒΕΖΗΙΚΜΝΟΡΤΥΧοϲ",
    "ABEKMHOPCTXYaeopcyxijsIJSdgABEZHIKMNOPTYXoc")


def _invisible(text: str) -> list[str]:
    import unicodedata

    return [f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in ("Cf", "Cc", "Zs", "Zl", "Zp", "Mn")
            and ch != " "]


def _skeleton(text: str) -> str:
    """What an id looks like on screen: NFKC, invisible characters dropped, look-alike letters as Latin."""
    import unicodedata

    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Mn"))
    return text.translate(_CONFUSABLE).strip()


def _plain_ids(s: pd.Series) -> bool:
    """True when every distinct id of ``s`` is text of printable ASCII only (space to ``~``: what
    ``str.isascii() and str.isprintable()`` accept), checked by Arrow; False when not, or not text."""
    uniq = s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else s
    if uniq.dtype != "str":
        return False
    arrow = pa.array(pd.Series(uniq, copy=False).dropna().array)
    arrow = arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow
    return not len(arrow) or not pc.any(pc.match_substring_regex(arrow, "[^\\x20-\\x7e]")).as_py()


def _lookalike_ids(results: dict, rep: Collector) -> None:
    """Warn about ids holding invisible characters, or looking like another id of the export (a
    Cyrillic 'Т01' beside 'T01'): each would silently be a second client or clinician."""
    families = {"client": [("clients", "client_id"), ("sessions", "client_id"), ("scores", "client_id")],
                "staff": [("clients", "clinician_id"), ("sessions", "clinician_id"), ("clinicians", "clinician_id"),
                          ("clinicians", "supervisor_id")]}
    for family in families.values():
        cols = [(t, c) for t, c in family if results.get(t) is not None and c in results[t].frame.columns]
        if all(_plain_ids(results[t].frame[c]) for t, c in cols):
            continue  # the usual case (checked by Arrow, no Python string per id): nothing can look alike
        values: set[str] = set()
        for t, c in cols:
            s = results[t].frame[c]
            uniq = s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else pd.unique(s.dropna())
            values.update(str(v) for v in uniq)
        if not values or all(v.isascii() and v.isprintable() for v in values):
            continue  # the usual case: plain ASCII ids, nothing can look alike
        by_look: dict[str, set[str]] = {}
        for v in values:
            by_look.setdefault(_skeleton(v), set()).add(v)
        why: dict[str, str] = {}
        for v in values:
            odd = _invisible(v)
            twins = sorted(by_look[_skeleton(v)] - {v})
            if odd:
                why[v] = f"This id contains invisible or unusual characters ({', '.join(odd)})"
            if twins:
                why[v] = (why.get(v, "This id") + (" and" if v in why else "") +
                          f" looks the same as {', '.join(repr(x) for x in twins)} but is a different id")
        if not why:
            continue
        for t, c in cols:
            frame = results[t].frame
            text = frame[c].astype(object)
            mask = text.isin(list(why)).to_numpy()
            rep.add_many(t, frame, mask, c, text.map(lambda v: ascii(v) if isinstance(v, str) else v),
                         lambda text=text, mask=mask: text.map(why).fillna("") + ": it counts as a separate person.",
                         "Retype the id with plain letters and digits (a look-alike letter from another alphabet, or a "
                         "zero-width space pasted from a document, makes a second person).", "warning", "lookalike_id")


def _numbered(names: list) -> list:
    """Column names made unique: a repeated name gets ``.1``, ``.2``, ... (as pandas names them)."""
    seen: dict = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}.{k}")
    return out


def _published(path) -> tuple[str, pd.DataFrame] | None:
    """``(clinician_id, benchmarks)`` when ``path`` is a clinician's folder made by ``supervision publish``."""
    import json

    folder = Path(path)
    manifest = folder / "manifest.json" if folder.is_dir() else None
    if manifest is None or not manifest.is_file():
        return None
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        bench = pd.read_csv(folder / str(meta.get("benchmarks", "service_benchmarks.csv")), encoding="utf-8-sig",
                            dtype=str, keep_default_na=False)
    except (OSError, ValueError):
        return None
    who = meta.get("clinician_id")
    return (str(who), bench) if isinstance(who, str) and who else None


def load_caseload(path=None, settings=None) -> Caseload:
    """Read, validate and normalise a service's export.

    Parameters
    ----------
    path : str or Path, optional
        A folder of CSV or Parquet files (``clients``, ``sessions``, optional ``clinicians`` and
        ``scores``) or one ``.xlsx`` workbook with a sheet per table. Default: the ``data.path``
        setting; when that is empty, the ``SUPERVISION_DATA`` environment variable (a hosted
        workbook sets it to the user's own folder); else the bundled demo clinic.
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
        path = settings["data"]["path"] or env_data_path() or demo_path()
    problems: list = []
    kinds = {table: {c.name: c.kind for c in cols if c.kind in ("number", "date")} for table, cols in contract(settings).items()}
    raw, fmt = read_export(path, problems, kinds)
    caseload = load_tables(raw, settings, source=str(path), fmt=fmt, reader_problems=problems)
    published = _published(path)
    if published is not None and caseload.usable:
        # a clinician's own folder from `supervision publish`: a self-review with the service's benchmarks
        caseload.scope, caseload.benchmarks = published
    own = settings["privacy"].get("self_review_clinician")
    if own and caseload.usable:
        # self-review: only this clinician's own clients are loaded into the views
        caseload = apply_scope(caseload, own)
    return caseload
