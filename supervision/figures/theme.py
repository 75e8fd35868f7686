"""One colour-blind-safe theme for every chart (Okabe & Ito 2008 palette)."""

from __future__ import annotations

import plotly.graph_objects as go

# Okabe, M. & Ito, K. (2008) Color Universal Design: safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
    "grey": "#999999",
}
SEQUENCE = [OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion", "sky_blue",
                                   "reddish_purple", "yellow", "black")]
ATTENDANCE_COLOURS = {"attended": OKABE_ITO["blue"], "cancelled": OKABE_ITO["orange"],
                      "no_show": OKABE_ITO["vermillion"]}
ATTENDANCE_LABELS = {"attended": "Attended", "cancelled": "Cancelled", "no_show": "Did not attend"}


def layout(fig: go.Figure, title: str, *, height: int = 360) -> go.Figure:
    """Apply the house layout (white, readable when printed, legend above the plot)."""
    fig.update_layout(
        template="plotly_white", title={"text": title, "x": 0, "xanchor": "left"}, height=height,
        margin={"l": 60, "r": 20, "t": 70, "b": 50}, colorway=SEQUENCE,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
        font={"family": "Arial, Helvetica, sans-serif", "size": 13},
    )
    return fig
