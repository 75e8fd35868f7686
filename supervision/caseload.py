"""The loaded caseload: valid tables, quarantined rows and the validation report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from supervision.config import Settings
from supervision.instruments import instruments
from supervision.rules import Rules


@dataclass
class Caseload:
    """A service's export after validation.

    Attributes
    ----------
    clients, sessions, clinicians : DataFrame
        The valid rows in the canonical form (typed; measures wide on ``sessions`` whether they came
        wide or as a long ``scores`` table). Each keeps ``source_row``, the line in the user's file.
    quarantine : dict of DataFrame
        Per table, the rows with an ``error``, as they were written, with ``source_row``.
    report : DataFrame
        One row per problem: ``table, row, column, value, problem, fix, severity, check``.
    counts : DataFrame
        ``table, read, loaded, quarantined`` (read = loaded + quarantined, always).
    usable : bool
        False when a required table or column is missing or a file cannot be read; the report
        says why and the tables are empty.
    source : str
        The path that was read; ``format`` is ``csv``, ``parquet``, ``xlsx`` or a mix.
    scope : str or None
        The clinician whose own clients these are (a self-review, :func:`supervision.privacy.apply_scope`,
        or a folder made by ``supervision publish``); None for a whole service. Views that compare with
        the service say they cannot when set, or use ``benchmarks`` where those hold the figure.
    benchmarks : DataFrame or None
        A published folder's service benchmarks (suppressed service-wide aggregates).
    rules : Rules
        Every area's rules (thresholds, windows, weights) from ``settings``, built once when the
        caseload is made (:class:`supervision.rules.Rules`); the metrics, figures, views, report and
        agenda read them from here.
    """

    clients: pd.DataFrame
    sessions: pd.DataFrame
    clinicians: pd.DataFrame
    quarantine: dict[str, pd.DataFrame]
    report: pd.DataFrame
    counts: pd.DataFrame
    usable: bool
    source: str
    format: str
    settings: Settings = field(repr=False)
    scope: str | None = None
    #: Service benchmarks that came with a clinician's published folder (``supervision publish``):
    #: service-wide aggregates under the disclosure policy, the only view of the service a
    #: self-review has (:func:`supervision.publish.service_benchmarks`); None otherwise.
    benchmarks: pd.DataFrame | None = field(default=None, repr=False)
    rules: Rules = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rules = Rules.from_settings(self.settings)
        _warn_item_total_disagreements(self)

    @property
    def n_errors(self) -> int:
        return int((self.report["severity"] == "error").sum())

    @property
    def n_warnings(self) -> int:
        return int((self.report["severity"] == "warning").sum())

    @property
    def status(self) -> str:
        """``clean``, ``problems`` (loaded with problems) or ``unusable``."""
        if not self.usable:
            return "unusable"
        return "clean" if self.report.empty else "problems"

    def measures_present(self) -> pd.DataFrame:
        """Per instrument present: ``instrument, name, kind, sessions, clients, item_level``.

        ``sessions`` counts sessions with a total or at least one item; ``item_level`` says
        whether item scores were given.
        """
        rows = []
        s = self.sessions
        for prefix, inst in instruments(self.settings).items():
            cols = [c for c in inst.columns if c in s.columns]
            if not cols:
                continue
            has = s[cols].notna().any(axis=1)
            if not has.any():
                continue
            rows.append({
                "instrument": prefix, "name": inst.name, "kind": inst.kind,
                "sessions": int(has.sum()), "clients": int(s.loc[has, "client_id"].nunique()),
                "item_level": bool(any(c in s.columns and s[c].notna().any() for c in inst.item_columns)),
            })
        return pd.DataFrame(rows, columns=["instrument", "name", "kind", "sessions", "clients", "item_level"])

    def summary(self) -> dict:
        """Headline numbers: clinicians, clients, sessions (scheduled and attended), date range."""
        s = self.sessions
        dates = s["session_date"] if "session_date" in s.columns else pd.Series(dtype="datetime64[ns]")
        return {
            "clinicians": int(self.clinicians["clinician_id"].nunique()) if "clinician_id" in self.clinicians else 0,
            "clients": int(len(self.clients)),
            "sessions": int(len(s)),
            "attended": int((s["attendance"] == "attended").sum()) if "attendance" in s else 0,
            "first_date": dates.min() if len(dates) else pd.NaT,
            "last_date": dates.max() if len(dates) else pd.NaT,
            "errors": self.n_errors,
            "warnings": self.n_warnings,
        }

    def problems_by_kind(self) -> pd.DataFrame:
        """Report rows counted by ``table, check, severity`` (most frequent first)."""
        if self.report.empty:
            return pd.DataFrame(columns=["table", "check", "severity", "n"])
        return (self.report.groupby(["table", "check", "severity"], dropna=False).size()
                .rename("n").reset_index().sort_values("n", ascending=False, kind="stable")
                .reset_index(drop=True))


def _warn_item_total_disagreements(caseload: Caseload) -> None:
    """Add a warning to the report for every session whose given total disagrees with its complete items.

    The loader keeps a given total over its items (``supervision.instruments.scoring.score_sessions``);
    without this an ORS total of 35 whose items sum to 20 would load silently. Runs once per report
    (a caseload rebuilt from another, e.g. a self-review scope, keeps the rows it has).
    """
    from supervision.instruments.scoring import item_total_disagreements

    rep = caseload.report
    if not caseload.usable or caseload.sessions is None or not len(caseload.sessions):
        return
    if "check" in rep.columns and (rep["check"] == "total_items_mismatch").any():
        return
    tol = caseload.settings.get("validation.item_total_tolerance", 0.5)
    bad = item_total_disagreements(caseload.sessions, instruments(caseload.settings), tolerance=tol)
    if bad.empty:
        return
    rows = bad["source_row"] if "source_row" in bad.columns else pd.Series(pd.NA, index=bad.index)
    new = pd.DataFrame({
        "table": "sessions", "row": pd.array(rows.to_numpy(), dtype="Int64"), "column": bad["column"].to_numpy(),
        "value": [f"{v:.10g}" for v in bad["given_total"]],
        "problem": [f"The given total ({g:.10g}) differs from the score of its items ({i:.10g}) by {abs(d):.10g} points; "
                    "the given total was used." for g, i, d in zip(bad["given_total"], bad["item_total"], bad["difference"])],
        "fix": "Check which is right: correct the total or the items in the source system.",
        "severity": "warning", "check": "total_items_mismatch"})
    out = pd.concat([rep, new[list(rep.columns)]] if len(rep.columns) else [new], ignore_index=True)
    caseload.report = out.sort_values(["table", "row", "column"], na_position="first", kind="stable").reset_index(drop=True)


def id_text(v) -> str | None:
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
    Re-exported as :func:`supervision.privacy.apply_scope` (docs/methods.md §3.4); it lives here,
    with the Caseload, because the loader applies it (setting ``privacy.self_review_clinician``).
    This is a scope for the views, not a security boundary: the process that builds it has read
    the whole export. To keep service data away from a clinician altogether, give them a
    pseudonymised export of their own clients and benchmarks computed elsewhere.
    """
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
        return frame[col].map(id_text) if col in frame.columns else pd.Series(None, index=frame.index, dtype=object)

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
