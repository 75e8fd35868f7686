"""Engagement charts."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from supervision.figures.theme import ATTENDANCE_COLOURS, ATTENDANCE_LABELS, OKABE_ITO, figure, layout, layout_dict, merge


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


def attendance_timeline(sessions: pd.DataFrame, *, client_id: str, start_date=None, end_date=None,
                        title: str | None = None) -> go.Figure:
    """One client's scheduled sessions on a date axis: attended, cancelled, did not attend.

    Parameters
    ----------
    sessions : DataFrame
        Scheduled sessions with ``client_id``, ``session_date`` and ``attendance`` (``attended``,
        ``cancelled``, ``no_show``); the client's rows are picked.
    client_id : str
        The client to draw.
    start_date, end_date : date-like, optional
        The episode's start and end, drawn as dotted vertical lines when given.

    Returns
    -------
    go.Figure
        One marker trace per attendance value present, in the order attended, cancelled, did not
        attend (``name`` = its label with the count, ``meta`` = the value): ``x`` = session date,
        ``y`` = the label (one row each).
    """
    s = sessions[sessions["client_id"] == client_id].sort_values("session_date")
    traces, counts = [], []
    for value in ("attended", "cancelled", "no_show"):
        part = s[s["attendance"] == value]
        if not len(part):
            continue
        label = ATTENDANCE_LABELS[value]
        counts.append(f"{len(part)} {label.lower()}")
        traces.append({"type": "scatter", "x": part["session_date"], "y": [label] * len(part), "mode": "markers",
                       "name": f"{label} ({len(part)})", "meta": value,
                       "marker": {"color": ATTENDANCE_COLOURS[value], "size": 12,
                                  "symbol": {"attended": "circle", "cancelled": "square", "no_show": "x"}[value]},
                       "hovertemplate": f"%{{x|%d %b %Y}}: {label.lower()}<extra></extra>"})
    shapes, notes = [], []
    for when, what in ((start_date, "start"), (end_date, "end")):
        if when is not None and not pd.isna(when):  # a dotted vertical line with its label on top (as add_vline)
            x = pd.Timestamp(when).timestamp() * 1000
            shapes.append({"type": "line", "x0": x, "x1": x, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain",
                           "line": {"dash": "dot", "color": "#777"}})
            notes.append({"text": f"episode {what}", "showarrow": False, "x": x, "xanchor": "center", "xref": "x",
                          "y": 1, "yanchor": "bottom", "yref": "y domain"})
    lay = layout_dict(title or f"Attendance of {client_id}: " + (", ".join(counts) or "no scheduled sessions"), height=230)
    merge(lay, {"showlegend": False, "margin": {"l": 110, "r": 20, "t": 60, "b": 40},
                "yaxis": {"categoryorder": "array", "categoryarray": [ATTENDANCE_LABELS[v] for v in
                                                                     ("no_show", "cancelled", "attended")]}})
    if shapes:
        lay.update(shapes=shapes, annotations=notes)
    return figure(traces, lay)
