"""The loaded caseload: valid tables, quarantined rows and the validation report."""

from __future__ import annotations

from dataclasses import dataclass, field

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
