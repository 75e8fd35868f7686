"""Publish a service's export as one folder per clinician (``supervision publish``).

Each folder ``OUT/<safe clinician id>/`` holds

- that clinician's own clients in the data contract's tables (``clients.parquet``,
  ``sessions.parquet``, ``clinicians.parquet``), so ``load_caseload(folder)`` opens their own
  caseload and nothing else (:func:`supervision.privacy.apply_scope` of the whole export);
- ``service_benchmarks.csv``: service-wide aggregates computed on the WHOLE export before
  scoping, under the disclosure-control policy (:func:`supervision.privacy.service_benchmark`);
  only the policy's display columns are written (a hidden count is never in the file);
- ``manifest.json``: export name, publication time, policy, the clinician and the counts.

``OUT/publish_index.csv`` (the analyst's, not a clinician's) maps each clinician id to its folder
and supervisor (the ``supervisor_id`` column of the clinicians table); ``deploy/place_data.py``
reads it to give each folder to its clinician's and supervisor's accounts.

A clinician id comes from the data: it becomes a folder name only through :func:`safe_name`, and
every folder is checked to lie directly inside ``OUT``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

__all__ = ["publish", "safe_name", "service_benchmarks", "PublishError", "PublishSummary"]

TABLE_FILES = ("clients", "sessions", "clinicians")
BENCHMARK_FILE = "service_benchmarks.csv"
MANIFEST_FILE = "manifest.json"
INDEX_FILE = "publish_index.csv"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 64
# Per-client true/false figures of the engagement table published as service rates.
_RATES = ("single_session", "unilateral", "lost_contact")
# Session measures published as service means (per session; n counts clients).
_MEANS = ("srs_total", "ors_total", "phq9_total", "gad7_total", "core10_total")
# Session focus shares published as service means of a per-session true/false (n counts clients):
# the pooled share of docs/methods.md §9.5, e.g. goal coverage = sessions on an agreed goal / sessions judged.
_FOCUS = {"focus_on_goal": "on_goal", "focus_check_in": "check_in", "focus_agenda_set": "agenda_set"}
# Jacobson-Truax categories published per outcome measure as per-client rates (clients with two or more
# scores), as in :func:`supervision.metrics.outcome.clinician_outcomes` (docs/methods.md §2.1), suppressed as §9.3.
_OUTCOME_RATES = ("reliably_improved", "recovered", "deteriorated", "harmed")
# The policy's output columns that may leave the analyst: raw counts never do.
_PUBLIC = ["n_display", "n_suppressed", "events_display", "events_suppressed", "rate", "rate_suppressed",
           "mean", "mean_suppressed"]


class PublishError(ValueError):
    """The export cannot be published (unusable, unsafe output folder, clashing folder names)."""


def safe_name(identifier) -> str:
    """A folder name for ``identifier`` that cannot leave its parent folder.

    Letters, digits, ``.``, ``_`` and ``-`` are kept; anything else (``/``, ``\\``, spaces,
    control characters) becomes ``_``; leading dots are removed (no ``..`` or hidden folders)
    and the name is cut to 64 characters. When the name had to change, 8 hex characters of a
    hash of the original are appended, so that ``a/b`` and ``a_b`` do not share a folder.
    """
    raw = "" if identifier is None else str(identifier)
    name = _SAFE.sub("_", raw).lstrip(".")[:_MAX_NAME]
    if name != raw or not name:
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name[:_MAX_NAME - 9]}-{digest}" if name else f"id-{digest}"
    return name


def _inside(out: Path, name: str) -> Path:
    folder = (out / name).resolve()
    if folder.parent != out.resolve() or folder.name != name:
        raise PublishError(f"The folder for {name!r} would not be directly inside {out}; nothing was written for it.")
    return folder


@dataclass
class PublishSummary:
    """What :func:`publish` wrote."""

    out: Path
    folders: dict[str, Path] = field(default_factory=dict)   # clinician id -> folder
    clients: dict[str, int] = field(default_factory=dict)    # clinician id -> own clients
    benchmarks: pd.DataFrame | None = field(default=None, repr=False)
    policy: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"Published {len(self.folders)} clinician folder(s) to {self.out} in {self.seconds:.1f} s "
                f"(service benchmarks under the '{self.policy}' policy, {len(self.benchmarks)} rows).")


def _dimensions(caseload) -> list[str]:
    dims = list(caseload.settings["identity"].get("dimensions") or [])
    return [d for d in dims if d in caseload.clients.columns]


def service_benchmarks(caseload, policy=None) -> pd.DataFrame:
    """Service-wide benchmarks of the WHOLE ``caseload``, suppressed under ``policy``.

    Returns
    -------
    DataFrame
        One row per benchmark and group: ``benchmark`` (``clients``, a rate such as
        ``single_session`` or a mean such as ``srs_total``; the session focus shares
        ``focus_on_goal``, ``focus_check_in``, ``focus_agenda_set`` as the mean of 100 or 0 per
        session, i.e. the pooled percentage of sessions; per outcome measure the client rates ``<instrument>_reliably_improved``,
        ``_recovered``, ``_deteriorated``, ``_harmed`` among clients with two or more scores),
        ``kind`` (``count``, ``rate``, ``mean``), ``dimension`` (``all`` or an identity dimension), ``group``, ``is_total`` and
        the policy's display columns ``n_display, n_suppressed, events_display,
        events_suppressed, rate, rate_suppressed, mean, mean_suppressed`` (see
        :func:`supervision.privacy.service_benchmark`). Raw counts are left out.
    """
    from supervision.metrics.engagement import episode_engagement
    from supervision.privacy import service_benchmark

    settings = caseload.settings
    clients = caseload.clients
    dims = _dimensions(caseload)
    per_client = episode_engagement(clients, caseload.sessions).merge(
        clients[["client_id", *dims]], on="client_id", how="left")
    sessions = caseload.sessions
    if dims:
        sessions = sessions.merge(clients[["client_id", *dims]], on="client_id", how="left", suffixes=("_session", ""))
    jobs = [("clients", "count", clients, None)]
    jobs += [(r, "rate", per_client.assign(**{r: per_client[r].astype("boolean")}), r) for r in _RATES if r in per_client]
    jobs += [(m, "mean", sessions, m) for m in _MEANS if m in sessions and sessions[m].notna().any()]
    jobs += _focus_jobs(caseload, dims) + _outcome_jobs(caseload, dims)
    parts = []
    for name, kind, table, value in jobs:
        for dim in [None, *dims]:
            b = service_benchmark(table, value, by=dim, policy=policy, settings=settings)
            if dim is not None:
                b = b[~b["is_total"]]  # the service total is the dimension-free row
            b = b.rename(columns={dim: "group"}) if dim else b.assign(group="all")
            parts.append(b.assign(benchmark=name, kind=kind, dimension=dim or "all"))
    out = pd.concat(parts, ignore_index=True)
    for c in _PUBLIC:
        if c not in out:
            out[c] = pd.NA
    return out[["benchmark", "kind", "dimension", "group", "is_total", *_PUBLIC]]


def _focus_jobs(caseload, dims: list[str]) -> list:
    """Session focus shares (docs/methods.md §9.5): the pooled share of sessions; n counts clients."""
    from supervision.metrics.tables import focus_tables

    fs = focus_tables(caseload).get("focus_sessions")
    if fs is None or fs.empty:
        return []
    if dims:
        fs = fs.merge(caseload.clients[["client_id", *dims]], on="client_id", how="left")
    jobs = []
    for name, col in _FOCUS.items():
        if col in fs and fs[col].notna().any():
            # 100 or 0 per session, so the mean is the pooled percentage (a 0/1 column would be read as a
            # per-client rate, which these are not: a client has many sessions)
            jobs.append((name, "mean", fs.assign(**{col: fs[col].astype("Float64") * 100}), col))
    return jobs


def _outcome_jobs(caseload, dims: list[str]) -> list:
    """Per outcome measure: the share of clients with two or more scores in each Jacobson-Truax category."""
    from supervision.metrics.tables import outcome_tables

    co = outcome_tables(caseload).get("outcome_clients")
    if co is None or co.empty:
        return []
    co = co[co["category"].notna()]
    if dims:
        co = co.merge(caseload.clients[["client_id", *dims]], on="client_id", how="left")
    jobs = []
    for inst, part in co.groupby("instrument", sort=True):
        cat = part["category"].astype(str)
        flags = {"recovered": cat == "recovered", "reliably_improved": cat.isin(["recovered", "improved"]),
                 "deteriorated": cat == "deteriorated", "harmed": cat == "harmed"}
        for r in _OUTCOME_RATES:
            jobs.append((f"{inst}_{r}", "rate", part.assign(_flag=flags[r].astype("boolean")), "_flag"))
    return jobs


def _contract_frame(frame: pd.DataFrame, name: str, columns: dict) -> pd.DataFrame:
    """``frame`` as a published table holds it: the contract's columns, prorated totals left to the loader."""
    prorated = [c for c in frame.columns if c.endswith("_total_prorated") and c[:-len("_prorated")] in frame.columns]
    if prorated:  # a prorated total is left for the loader to prorate again from the items (as it was made)
        frame = frame.copy()
        for c in prorated:
            frame.loc[frame[c].fillna(False).astype(bool), c[:-len("_prorated")]] = None
    # the contract's columns only: no loader bookkeeping (source_row) or scoring by-products (*_prorated),
    # which the loader recomputes when the folder is opened
    return frame[[c for c in frame.columns if c in columns.get(name, frame.columns)]]


def _contract_columns(settings) -> dict:
    from supervision.schema import contract

    return {table: {c.name for c in cols} for table, cols in contract(settings).items()}


def _write_tables(scoped, folder: Path) -> None:
    columns = _contract_columns(scoped.settings)
    for name in TABLE_FILES:
        _contract_frame(getattr(scoped, name), name, columns).to_parquet(folder / f"{name}.parquet", index=False)


def _service_tables_arrow(caseload) -> dict:
    """The whole export's published tables as Arrow tables, made once (each clinician's file is a ``take``).

    A row-wise preparation followed by a slice is the slice's preparation, and with no index and
    no Python-object columns Arrow's types do not depend on the rows, so each clinician's file
    holds what :func:`_write_tables` of the scoped caseload writes. Tables with object columns
    are left out (written per clinician by pandas).
    """
    import pyarrow as pa

    columns = _contract_columns(caseload.settings)
    out = {}
    for name in TABLE_FILES:
        frame = _contract_frame(getattr(caseload, name), name, columns)
        if not any(dt == object for dt in frame.dtypes):
            out[name] = pa.Table.from_pandas(frame, preserve_index=False)
    return out


def _own_rows(caseload, ids: list[str]) -> dict[str, tuple]:
    """Each clinician's rows as :func:`supervision.privacy.apply_scope` picks them, found in one pass.

    ``{clinician id: (clients positions, sessions positions, clinicians positions)}``, positions in
    the tables' order: the clients whose ``clinician_id`` is the id, the sessions of those clients,
    the clinician's own row. One grouping of each table instead of a scan of the whole export per
    clinician (2,000 clinicians: 2,000 scans of a million sessions).
    """
    import numpy as np

    clients, sessions, clinicians = caseload.clients, caseload.sessions, caseload.clinicians
    empty = np.array([], dtype=np.intp)
    owner = clients["clinician_id"].astype(object)
    by_client = owner.groupby(owner, sort=False).indices if len(owner) else {}
    by_row = clinicians["clinician_id"].astype(object)
    by_row = by_row.groupby(by_row, sort=False).indices if len(by_row) else {}
    client_ids = clients["client_id"].astype(object)
    if client_ids.is_unique:  # each session belongs to at most one clinician: its client's
        session_owner = sessions["client_id"].astype(object).map(dict(zip(client_ids, owner)))
        by_session = session_owner.groupby(session_owner, sort=False).indices if len(session_owner) else {}
    else:  # a client id under two clinicians: their sessions go to both (as apply_scope does)
        sid = sessions["client_id"].astype(object)
        by_session = {cid: np.flatnonzero(sid.isin(set(client_ids.iloc[pos]))) for cid, pos in by_client.items()}
    return {cid: (by_client.get(cid, empty), by_session.get(cid, empty), by_row.get(cid, empty)) for cid in ids}


def _write_tables_one(caseload, name: str, rows, folder: Path, columns: dict) -> None:
    frame = getattr(caseload, name).iloc[rows].reset_index(drop=True)
    _contract_frame(frame, name, columns).to_parquet(folder / f"{name}.parquet", index=False)


#: The work of a publication, shared with forked worker processes (set before they start).
_JOB: dict = {}


def _publish_chunk(cids: list[str]) -> list[dict]:
    import pyarrow.parquet as pq

    job = _JOB
    done = []
    for cid in cids:
        t1 = time.perf_counter()
        folder = job["folders"][cid]
        folder.mkdir(exist_ok=True)
        rows = job["rows"][cid]
        arrow = job["arrow"]
        for k, name in enumerate(TABLE_FILES):
            if name in arrow:
                pq.write_table(arrow[name].take(rows[k]), folder / f"{name}.parquet")
            else:
                _write_tables_one(job["caseload"], name, rows[k], folder, job["columns"])
        n_clients, n_sessions = len(rows[0]), len(rows[1])
        (folder / BENCHMARK_FILE).write_bytes(job["bench_bytes"])  # the same file in every folder, written once
        s = job["sup"].get(cid) if cid in job["sup"].index else None
        s = None if s is None or pd.isna(s) else str(s)
        manifest = {**job["manifest"], "clinician_id": cid, "supervisor_id": s, "folder": folder.name,
                    "clients": int(n_clients), "sessions": int(n_sessions),
                    "benchmarks": BENCHMARK_FILE, "benchmarks_computed_on": "the whole export, before scoping",
                    "tables": [f"{n}.parquet" for n in TABLE_FILES]}
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        done.append({"clinician_id": cid, "folder": folder.name, "supervisor_id": s, "clients": manifest["clients"],
                     "seconds": time.perf_counter() - t1})
    return done


def publish(export, out, settings=None, *, policy: str | None = None,
            progress: Callable[[int, int, str, float], None] | None = None, workers: int | None = None) -> PublishSummary:
    """Write one folder per clinician of ``export`` into ``out`` (see the module docstring).

    Parameters
    ----------
    export : folder or .xlsx
        The whole service export (read once, whole, whatever ``privacy.self_review_clinician`` says).
    out : folder
        Created if needed, readable by its owner only (mode 0700: it holds every clinician's
        folder). Existing clinician folders are overwritten file by file.
    settings : path, dict or Settings, optional
    policy : ``"nhs"``, ``"cms"`` or ``"none"``, optional
        The disclosure-control policy of the benchmarks (default: the settings'); ``"none"`` is
        refused, since benchmarks are shared beyond the supervision pair.
    progress : callable, optional
        Called after each folder as ``progress(i, n, clinician_id, seconds)``, in the order of the ids.
    workers : int, optional
        Processes writing folders (default: every core when there are many clinicians, see
        :func:`supervision.parallel.default_workers`); the folders are the same whatever the number.

    Raises
    ------
    PublishError
        The export is unusable, the policy is ``none``, or two clinician ids give the same folder.
    """
    from supervision.config import load_settings
    from supervision.io import load_caseload
    from supervision.io.export import write_safe_csv
    from supervision.privacy import policy_rules

    t0 = time.perf_counter()
    values = load_settings(settings).as_dict()
    values["privacy"]["self_review_clinician"] = ""  # the whole export: benchmarks need it, then each folder is scoped
    settings = load_settings(values)
    rules = policy_rules(policy, settings)
    if rules.name == "none":
        raise PublishError("Service benchmarks are shared with every clinician: publish needs a disclosure policy "
                           "('nhs' or 'cms'), not 'none'.")
    cl = load_caseload(export, settings=settings)
    if not cl.usable:
        raise PublishError(f"{export} cannot be used: run `supervision validate {export}` to see why.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new output folder is the analyst's alone
    ids = sorted(set(cl.clinicians["clinician_id"].dropna().astype(str)) | set(cl.clients["clinician_id"].dropna().astype(str)))
    names: dict[str, str] = {}
    for cid in ids:
        name = safe_name(cid)
        if name in names.values():
            other = next(k for k, v in names.items() if v == name)
            raise PublishError(f"Clinician ids {other!r} and {cid!r} would share the folder {name!r}; rename one in the export.")
        names[cid] = name
    folders = {cid: _inside(out, name) for cid, name in names.items()}  # every folder checked before any is written
    bench = service_benchmarks(cl, rules)
    sup = cl.clinicians.set_index(cl.clinicians["clinician_id"].astype(str))["supervisor_id"] \
        if "supervisor_id" in cl.clinicians else pd.Series(dtype=object)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    summary = PublishSummary(out=out, benchmarks=bench, policy=rules.name)
    # the benchmarks file is the same in every folder: its bytes are made once
    bench_tmp = out / f".{BENCHMARK_FILE}.{os.getpid()}.tmp"
    try:
        write_safe_csv(bench, bench_tmp)
        bench_bytes = bench_tmp.read_bytes()
    finally:
        bench_tmp.unlink(missing_ok=True)
    _JOB.clear()
    _JOB.update(caseload=cl, rows=_own_rows(cl, ids), folders=folders, bench_bytes=bench_bytes, sup=sup,
                arrow=_service_tables_arrow(cl), columns=_contract_columns(cl.settings),
                manifest={"export": Path(cl.source).name, "published_at": when, "policy": rules.name,
                          "policy_max_suppressed": rules.max_suppressed, "policy_rounding": rules.rounding})
    from supervision.parallel import default_workers, run_chunks

    index = []
    try:
        n_workers = default_workers(len(ids)) if workers is None else max(1, int(workers))
        for done in run_chunks(_publish_chunk, ids, n_workers):
            for row in done:
                took = row.pop("seconds")
                cid = row["clinician_id"]
                summary.folders[cid] = folders[cid]
                summary.clients[cid] = row["clients"]
                index.append(row)
                if progress:
                    progress(len(index), len(ids), cid, took)
    finally:
        _JOB.clear()
    # read by deploy/place_data.py: ids written exactly as they are (no spreadsheet escaping)
    pd.DataFrame(index, columns=["clinician_id", "folder", "supervisor_id", "clients"]).to_csv(
        out / INDEX_FILE, index=False, encoding="utf-8")
    summary.seconds = time.perf_counter() - t0
    return summary
