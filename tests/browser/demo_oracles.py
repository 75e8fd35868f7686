"""Oracles for the notebook tests, computed with plain pandas from the demo's raw CSV files.

Independent of the package where that is cheap: what a chart or a text on the page should show is
recomputed here from ``sessions.csv`` / ``clients.csv`` / ``clinicians.csv`` / ``scores.csv``, and
the page is compared with it. Periods count back from the last session date of the whole export
(as the dashboards do).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PERIOD_MONTHS = {"Last 3 months": 3, "Last 6 months": 6, "Last 12 months": 12}
SRS_ITEMS = ["srs_1", "srs_2", "srs_3", "srs_4"]
ORS_ITEMS = ["ors_1", "ors_2", "ors_3", "ors_4"]
# scores.csv instruments: number of items of a complete questionnaire
ITEMS = {"phq9": 9, "gad7": 7, "core10": 10}


def demo_folder() -> Path:
    try:
        from supervision import demo_path

        return Path(demo_path())
    except Exception:  # noqa: BLE001 - fall back to the checkout's copy
        return REPO / "data" / "demo"


def load_raw() -> dict:
    import pandas as pd

    demo = demo_folder()
    read = lambda name: pd.read_csv(demo / name, dtype=str, keep_default_na=False, na_values=[""])  # noqa: E731
    sessions = read("sessions.csv")
    sessions["line"] = range(2, len(sessions) + 2)
    sessions["date"] = pd.to_datetime(sessions["session_date"])
    raw = {"sessions": sessions, "clients": read("clients.csv"), "clinicians": read("clinicians.csv")}
    if (demo / "scores.csv").is_file():
        scores = read("scores.csv")
        scores["date"] = pd.to_datetime(scores["session_date"])
        raw["scores"] = scores
    return raw


def period_start(raw, period: str = "Whole export"):
    import pandas as pd

    if period not in PERIOD_MONTHS:
        return None
    return raw["sessions"]["date"].max() - pd.DateOffset(months=PERIOD_MONTHS[period])


def caseload_clients(raw, clinician: str, period: str = "Whole export") -> set[str]:
    """The supervisee's clients in the period: all of them, or those with any scheduled session
    on or after the period's start."""
    c = raw["clients"]
    ids = set(c.loc[c["clinician_id"] == clinician, "client_id"])
    start = period_start(raw, period)
    if start is not None:
        s = raw["sessions"]
        ids &= set(s.loc[s["date"] >= start, "client_id"])
    return ids


def ended_episodes(raw, clinician: str | None = None) -> int:
    c = raw["clients"]
    if clinician is not None:
        c = c[c["clinician_id"] == clinician]
    return int(c["end_date"].notna().sum())


def _num(v) -> float | None:
    return float(v) if isinstance(v, str) and v.strip() else None


def srs_series(raw, client: str) -> tuple[list[int], list[float | None]]:
    """(session numbers, SRS totals) over the client's attended sessions in date order: the given
    total, else the sum of the four items when all are present, else None."""
    s = raw["sessions"]
    s = s[(s["client_id"] == client) & (s["attendance"] == "attended")].sort_values(["date", "line"], kind="stable")
    totals: list[float | None] = []
    for _, r in s.iterrows():
        if _num(r.get("srs_total")) is not None:
            totals.append(_num(r["srs_total"]))
        elif all(_num(r.get(k)) is not None for k in SRS_ITEMS):
            totals.append(sum(_num(r[k]) for k in SRS_ITEMS))
        else:
            totals.append(None)
    return list(range(1, len(totals) + 1)), totals


def has_srs(raw, client: str) -> bool:
    return any(v is not None for v in srs_series(raw, client)[1])


def last_srs(raw, client: str) -> tuple[float, str] | None:
    """(latest SRS total, its date as '%d %b %Y') of the client's attended sessions."""
    s = raw["sessions"]
    s = s[(s["client_id"] == client) & (s["attendance"] == "attended")].sort_values(["date", "line"], kind="stable")
    _, totals = srs_series(raw, client)
    last = None
    for (_, r), t in zip(s.iterrows(), totals):
        if t is not None:
            last = (t, f"{r['date']:%d %b %Y}")
    return last


def ors_scores(raw, client: str) -> list[float]:
    """ORS totals of the client's attended sessions, in date order (total, else the four items)."""
    s = raw["sessions"]
    s = s[(s["client_id"] == client) & (s["attendance"] == "attended")].sort_values(["date", "line"], kind="stable")
    out = []
    for _, r in s.iterrows():
        if _num(r.get("ors_total")) is not None:
            out.append(_num(r["ors_total"]))
        elif all(_num(r.get(k)) is not None for k in ORS_ITEMS):
            out.append(sum(_num(r[k]) for k in ORS_ITEMS))
    return out


def questionnaire_scores(raw, client: str, instrument: str) -> list[float]:
    """Totals of one questionnaire in scores.csv for a client, in date order: the ``total`` row,
    else the sum of a complete set of items (incomplete sets are not scored)."""
    sc = raw["scores"]
    sc = sc[(sc["client_id"] == client) & (sc["instrument"] == instrument)]
    out = []
    for _, g in sc.groupby("date", sort=True):
        tot = g[g["item"] == "total"]
        items = g[g["item"] != "total"]
        if len(tot):
            out.append(float(tot["value"].iloc[0]))
        elif items["item"].nunique() == ITEMS[instrument]:
            out.append(float(items["value"].astype(float).sum()))
    return out


def measured_clients(raw, clinician: str, instrument: str, period: str = "Whole export", min_scores: int = 2) -> set[str]:
    """The supervisee's clients (in the period) with at least ``min_scores`` scores of a measure."""
    ids = caseload_clients(raw, clinician, period)
    score = (lambda c: ors_scores(raw, c)) if instrument == "ors" else (lambda c: questionnaire_scores(raw, c, instrument))
    return {c for c in ids if len(score(c)) >= min_scores}


def supervisor_of(raw, clinician: str) -> str | None:
    cl = raw["clinicians"]
    if "supervisor_id" not in cl:
        return None
    hit = cl.loc[cl["clinician_id"] == clinician, "supervisor_id"]
    return hit.iloc[0] if len(hit) and isinstance(hit.iloc[0], str) else None


def attended_in_period(raw, client: str, period: str = "Whole export") -> int:
    s = raw["sessions"]
    s = s[(s["client_id"] == client) & (s["attendance"] == "attended")]
    start = period_start(raw, period)
    if start is not None:
        s = s[s["date"] >= start]
    return len(s)


def client_id_of(label: str) -> str | None:
    m = re.search(r"\b(C\d+)\b", label)
    return m.group(1) if m else None
