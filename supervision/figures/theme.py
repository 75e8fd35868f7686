"""One colour-blind-safe theme for every chart (Okabe & Ito 2008 palette)."""

from __future__ import annotations

import threading

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


_LOCK = threading.Lock()
_TEMPLATE: list = []  # built once: by name, plotly rebuilds the whole template (every trace type) on every use
_TRACE_TYPES = ("scatter", "bar", "heatmap")  # the only trace types the workbook draws


def _template():
    """plotly's "plotly_white" look: its layout and its defaults for the trace types the workbook draws
    (the same chart, drawn in a third of the time and sent in half the bytes). Built from the template's
    plain JSON under a lock; should plotly refuse it, the named template is used (the same look, slower)."""
    with _LOCK:
        if not _TEMPLATE:
            import plotly.io as pio

            try:
                white = pio.templates["plotly_white"].to_plotly_json()
                data = {k: white["data"][k] for k in _TRACE_TYPES if k in white.get("data", {})}
                _TEMPLATE.append(go.layout.Template(layout=white["layout"], data=data))
            except (ValueError, KeyError, TypeError):  # seen once in CI: "Invalid value" from plotly's validator
                _TEMPLATE.append("plotly_white")
        return _TEMPLATE[0]


def layout_dict(title: str, *, height: int = 360) -> dict:
    """The house layout as a plain dict (what :func:`layout` applies), for builders that assemble a
    figure as one dict and validate it once (:func:`figure`)."""
    return {"template": _template(), "title": {"text": title, "x": 0, "xanchor": "left"}, "height": height,
            "margin": {"l": 60, "r": 20, "t": 70, "b": 50}, "colorway": SEQUENCE,
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
            "font": {"family": "Arial, Helvetica, sans-serif", "size": 13}}


def layout(fig: go.Figure, title: str, *, height: int = 360) -> go.Figure:
    """Apply the house layout (white, readable when printed, legend above the plot).

    The house template is set as :func:`figure` sets it, without copying and validating it again
    (through ``update_layout`` that took most of a simple figure's time)."""
    lay = layout_dict(title, height=height)
    template = lay.pop("template")
    fig.update_layout(**lay)
    _set_template(fig, template)
    return fig


def _set_template(fig: go.Figure, template) -> None:
    """Set the house template (validated once when built) on ``fig`` without validating it again."""
    if not isinstance(template, go.layout.Template):
        fig.update_layout(template=template)
        return
    fig.layout._validate = False
    try:
        fig.layout.template = template
    finally:
        fig.layout._validate = fig._validate


def merge(into: dict, update: dict) -> dict:
    """``into`` updated in place by ``update``, nested dicts merged key by key (as ``update_layout``)."""
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v
    return into


def figure(traces: list[dict], lay: dict) -> go.Figure:
    """A ``go.Figure`` from trace dicts and a layout dict, validated once by plotly.

    The same figure as adding the traces and layout updates one by one, built several times
    faster (each ``add_trace`` / ``update_layout`` call goes through plotly's update machinery).
    The house template (built and validated once, :func:`_template`) is set without validating
    it again, as plotly itself sets its default template; everything else is validated.
    """
    template = lay.get("template")
    if not isinstance(template, go.layout.Template):
        return go.Figure({"data": traces, "layout": lay})
    # An empty template stands in while validating (plotly would otherwise copy its default one in).
    fig = go.Figure({"data": traces, "layout": {**lay, "template": {}}})
    _set_template(fig, template)
    return fig


def warm_up() -> None:
    """Load, ahead of the first chart, what plotly loads lazily on its first figure of each kind: the
    house template and the validators of the trace types and layout parts the workbook draws (about
    0.1 s once per process). Called by the app in a preheated kernel while it waits for its visitor."""
    import plotly.io as pio

    fig = figure([{"type": t} for t in _TRACE_TYPES],
                 merge(layout_dict("warm-up"), {"shapes": [{"type": "rect"}], "annotations": [{"text": ""}],
                                               "xaxis2": {}, "yaxis2": {}}))
    pio.to_json(fig, validate=False)


def plural(n: int, word: str) -> str:
    """``1 client``, ``2 clients``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def need_columns(frame, name: str, columns, source: str) -> None:
    """Raise a plain error unless ``frame`` is a DataFrame with ``columns`` (the output of ``source``)."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} has no column {', '.join(map(repr, missing))}; pass the output of {source}.")


def _subtitle_update(texts, height: int, n_legend: int, width: int) -> dict:
    import math
    import textwrap

    lines = [line for t in texts for line in (textwrap.wrap(t, width) or [""])] or [""]
    legend_rows = math.ceil(n_legend / 3) if n_legend else 0
    top = 58 + 17 * len(lines)
    height = height + 17 * (len(lines) - 1) + 22 * max(legend_rows - 1, 0)
    return {"title": {"subtitle": {"text": "<br>".join(lines)}, "y": 1 - 22 / height, "yanchor": "top",
                      "yref": "container"},
            "height": height, "margin": {"t": top + 25 * legend_rows + 12},
            "legend": {"yref": "container", "y": 1 - (top + 4) / height, "yanchor": "top"}}


def subtitle(fig: go.Figure, *texts: str, width: int = 115) -> go.Figure:
    """How-to-read lines under the title (each text wrapped), the legend below them, clear of the plot."""
    n_legend = sum(1 for t in fig.data if t.name and t.showlegend is not False)
    fig.update_layout(_subtitle_update(texts, fig.layout.height or 360, n_legend, width))
    return fig


def subtitle_dict(lay: dict, traces: list[dict], *texts: str, width: int = 115) -> dict:
    """:func:`subtitle` for a layout dict and its trace dicts (updated in place and returned)."""
    n_legend = sum(1 for t in traces if t.get("name") and t.get("showlegend") is not False)
    return merge(lay, _subtitle_update(texts, lay.get("height") or 360, n_legend, width))
