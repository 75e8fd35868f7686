"""The supervisee's development over quarters: one practice metric against their own start and the service."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from supervision.figures.theme import OKABE_ITO, layout, need_columns, subtitle


def development_chart(dev: pd.DataFrame, metric: str, *, label: str = "this supervisee") -> go.Figure:
    """One metric of :func:`supervision.followup.development` by quarter.

    The supervisee's value with its 95 % interval (quarters with too few clients left empty and
    said so), the service's value that quarter (dashed) and the supervisee's first measured
    quarter (dotted), so a change can be read against both.
    """
    need_columns(dev, "dev", ["quarter", "metric", "label", "value", "lower", "upper", "n_clients", "service",
                              "baseline", "too_few"], "supervision.followup.development")
    d = dev[dev["metric"] == metric].sort_values("quarter")
    points = "kind" in d.columns and (d["kind"] == "points").any()
    scale = 1 if points else 100
    fig = go.Figure()
    x = d["quarter"].dt.strftime("%Y Q") + d["quarter"].dt.quarter.astype(str)
    shown = d["value"].notna()
    lower, upper = (d["lower"], d["upper"]) if points else (d["lower"].clip(lower=0), d["upper"].clip(upper=1))
    fig.add_trace(go.Scatter(
        x=x[shown], y=d.loc[shown, "value"] * scale, mode="lines+markers", name=label,
        line={"color": OKABE_ITO["blue"], "width": 3},
        error_y={"type": "data", "symmetric": False, "array": (upper[shown] - d.loc[shown, "value"]) * scale,
                 "arrayminus": (d.loc[shown, "value"] - lower[shown]) * scale, "color": OKABE_ITO["blue"]},
        customdata=d.loc[shown, ["n_clients", "n_units"]].to_numpy(),
        hovertemplate="%{x}: %{y:.1f}" + ("" if points else " %") + "<br>%{customdata[0]} clients, %{customdata[1]} sessions or endings<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=d["service"] * scale, mode="lines", name="service" + (" expectation" if points else ""),
                             line={"color": OKABE_ITO["grey"], "dash": "dash"}))
    if d["baseline"].notna().any():
        fig.add_trace(go.Scatter(x=x, y=d["baseline"] * scale, mode="lines", name=f"{label}'s first quarter",
                                 line={"color": OKABE_ITO["orange"], "dash": "dot"}))
    few = ", ".join(x[d["too_few"]].tolist())
    title = (d["label"].iloc[0][:1].upper() + d["label"].iloc[0][1:]) if len(d) else metric
    layout(fig, f"{title}, by quarter", height=340)
    subtitle(fig, ("Dots: the supervisee, with a 90 % interval (shrunk towards the service, which sits at 0); "
                   if points else "Dots: the supervisee, with a 95 % interval over clients; dashed: the service; ")
             + "dotted: the supervisee's first quarter with enough clients."
             + (f" Too few clients to show: {few}." if few else ""))
    if points:
        fig.update_yaxes(title_text="points")
    else:
        fig.update_yaxes(title_text="%", range=[0, 100])
    fig.update_xaxes(categoryorder="array", categoryarray=x.tolist())  # quarters in time order, gaps included
    return fig
