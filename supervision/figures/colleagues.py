"""Colleagues unnamed: a figure that compares the supervisee with the service, others unlabelled.

Every other clinician's id in a figure (trace coordinates, texts, hover texts, names, title,
subtitle and annotations) becomes "colleague" (made distinct for a category axis with invisible
zero-width spaces, in a shuffled order so the original order of the ids cannot be read back).
The supervisee keeps their id; "service" rows are untouched. Used by every dashboard unless the
setting ``[privacy] name_colleagues`` is true (a service lead looking across clinicians).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

import numpy as np
import plotly.graph_objects as go

LABEL = "colleague"
_TEXT_FIELDS = ("x", "y", "text", "hovertext", "customdata", "ids")


def unname_colleagues(fig: go.Figure, clinicians: Iterable[str], keep: str | None) -> go.Figure:
    """Replace every clinician id but ``keep`` in ``fig`` (in place; returns ``fig``).

    Parameters
    ----------
    fig : go.Figure
        Any figure of the workbook.
    clinicians : iterable of str
        Every clinician id of the service.
    keep : str or None
        The supervisee, shown by name.
    """
    others = sorted({str(c) for c in clinicians} - {str(keep)}, key=lambda c: (-len(c), c))
    if not others:
        return fig
    order = others[:]
    random.Random(len(others) * 7919 + sum(map(ord, "".join(others)))).shuffle(order)
    token = {c: LABEL + "\u200b" * (i + 1) for i, c in enumerate(order)}
    words = re.compile(r"(?<![\w])(" + "|".join(map(re.escape, others)) + r")(?![\w])")

    def one(v):
        if isinstance(v, str):
            if v in token:
                return token[v]
            return words.sub(LABEL, v) if words.search(v) else v
        return v

    def many(values):
        if values is None:
            return None
        arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
        if arr.dtype.kind not in ("O", "U", "S"):
            return None
        flat = arr.ravel()
        out = np.array([one(v) for v in flat], dtype=object).reshape(arr.shape)
        return out if any(a is not b and a != b for a, b in zip(flat, out.ravel())) else None

    for trace in fig.data:
        for field in _TEXT_FIELDS:
            if field not in trace:
                continue
            v = trace[field]
            if isinstance(v, str):
                new = one(v)
                if new != v:
                    trace[field] = new
            elif v is not None and not isinstance(v, (int, float, dict)):
                new = many(v)
                if new is not None:
                    trace[field] = new.tolist()
        if isinstance(trace.name, str):
            trace.name = one(trace.name)
    lay = fig.layout
    if lay.title and lay.title.text:
        lay.title.text = one(lay.title.text)
    if lay.title and lay.title.subtitle and lay.title.subtitle.text:
        lay.title.subtitle.text = one(lay.title.subtitle.text)
    for key in [k for k in lay.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]:
        axis = lay[key]
        for field in ("categoryarray", "tickvals", "ticktext"):
            v = axis[field]
            if v is not None:
                new = many(v)
                if new is not None:
                    axis[field] = new.tolist()
        if axis.title and axis.title.text:
            axis.title.text = one(axis.title.text)
    for ann in lay.annotations or ():
        if ann.text:
            ann.text = one(ann.text)
    return fig
