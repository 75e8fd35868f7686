"""Engagement charts."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from supervision.figures.theme import OKABE_ITO, layout


def session_count_comparison(mine: pd.DataFrame, service: pd.DataFrame | None, *, label: str = "this clinician",
                             cap: int = 15) -> go.Figure:
    """Share of ended episodes by attended sessions: one clinician beside the service.

    Parameters
    ----------
    mine, service : DataFrame
        Outputs of :func:`supervision.metrics.engagement.session_count_distribution`; ``service``
        None draws the clinician alone (a self-review has no service to show).
    label : str
        Name of the first group in the legend.
    cap : int, default 15
        Counts above ``cap`` are pooled into one "cap+" bar so the long tail stays readable.

    Returns
    -------
    go.Figure
        Two bar traces (``label`` and "service"), x = attended sessions ("0", "1", ... "15+"),
        y = share of ended episodes; the hover gives the counts.
    """
    fig = go.Figure()
    groups = [(mine, label, OKABE_ITO["blue"], "")] + ([] if service is None else [(service, "service", OKABE_ITO["grey"], "/")])
    for frame, name, colour, pattern in groups:
        f = frame.assign(bucket=frame["n_attended"].clip(upper=cap))
        g = f.groupby("bucket", as_index=False)[["n_episodes"]].sum()
        total = g["n_episodes"].sum()
        g["share"] = g["n_episodes"] / total if total else 0.0
        x = [f"{b}+" if b == cap else str(b) for b in g["bucket"]]
        fig.add_bar(x=x, y=g["share"], name=f"{name} (n={int(total)})", marker_color=colour, marker_pattern_shape=pattern,
                    customdata=g["n_episodes"], hovertemplate="%{x} sessions: %{y:.0%} (%{customdata} episodes)<extra></extra>")
    layout(fig, f"Attended sessions per ended episode: {label}" + ("" if service is None else " and the service"))
    fig.update_layout(barmode="group", xaxis_title="Attended sessions", yaxis_title="Share of ended episodes",
                      yaxis_tickformat=".0%", xaxis_type="category")
    return fig
