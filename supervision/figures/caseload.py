"""Caseload overview charts."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from supervision.figures.theme import ATTENDANCE_COLOURS, ATTENDANCE_LABELS, layout


def monthly_attendance(sessions: pd.DataFrame) -> pd.DataFrame:
    """Scheduled sessions per calendar month and attendance.

    Returns a tidy frame with columns ``month`` (first day of the month), ``attendance`` and
    ``sessions`` (count); every month between the first and last session appears for every
    attendance value (zero when none), so bars line up.
    """
    if sessions.empty:
        return pd.DataFrame({"month": pd.Series(dtype="datetime64[ns]"), "attendance": pd.Series(dtype=str),
                             "sessions": pd.Series(dtype=int)})
    month = sessions["session_date"].dt.to_period("M").dt.to_timestamp()
    counts = (sessions.assign(month=month).groupby(["month", "attendance"], observed=True).size())
    months = pd.date_range(month.min(), month.max(), freq="MS")
    full = pd.MultiIndex.from_product([months, list(ATTENDANCE_COLOURS)], names=["month", "attendance"])
    return counts.reindex(full, fill_value=0).rename("sessions").reset_index()


def sessions_per_month(sessions: pd.DataFrame, title: str = "Sessions per month") -> go.Figure:
    """Stacked bars of scheduled sessions per month by attendance (attended / cancelled / did not attend)."""
    tidy = monthly_attendance(sessions)
    fig = go.Figure()
    for att, colour in ATTENDANCE_COLOURS.items():
        part = tidy[tidy["attendance"] == att]
        fig.add_bar(x=part["month"], y=part["sessions"], name=ATTENDANCE_LABELS[att], marker_color=colour,
                    hovertemplate="%{x|%b %Y}: %{y} " + ATTENDANCE_LABELS[att].lower() + "<extra></extra>")
    n_clients = sessions["client_id"].nunique() if len(sessions) else 0
    layout(fig, f"{title} ({len(sessions)} scheduled sessions, {n_clients} client{'' if n_clients == 1 else 's'})")
    fig.update_layout(barmode="stack", xaxis_title="Month", yaxis_title="Scheduled sessions")
    return fig
