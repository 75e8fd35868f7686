"""Outcome charts: a client's trajectory against the expected band, a caseload Jacobson plot and a
clinician caterpillar plot.

Builders take the tidy frames of :mod:`supervision.metrics.outcome` and return a ``go.Figure``;
nothing is displayed here and no input is modified. Colours come only from
:mod:`supervision.figures.theme`; every mark that carries meaning also has its own marker symbol
or line style, so the charts read without colour. Each chart says how to read it and how many
clients (or cases) it rests on.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import plotly.graph_objects as go

from supervision.figures.theme import OKABE_ITO, figure, layout, layout_dict, need_columns, subtitle, subtitle_dict

_need = need_columns
_subtitle = subtitle
from supervision.instruments import Instrument, instruments
from supervision.rules import OutcomeRules, area_rules, default_rules

__all__ = ["outcome_trajectory", "jacobson_plot", "caterpillar_plot", "CATEGORY_STYLE"]

#: Jacobson-Truax category -> (label, marker symbol, colour).
CATEGORY_STYLE = {
    "recovered": ("Recovered", "circle", OKABE_ITO["bluish_green"]),
    "improved": ("Reliably improved", "triangle-up", OKABE_ITO["sky_blue"]),
    "unchanged": ("No reliable change", "square-open", OKABE_ITO["grey"]),
    "deteriorated": ("Reliably deteriorated", "triangle-down", OKABE_ITO["orange"]),
    "harmed": ("Deteriorated into the clinical range", "x", OKABE_ITO["vermillion"]),
}
_SERIES = OKABE_ITO["blue"]
_CUTOFF = OKABE_ITO["grey"]
_BAND = "rgba(0, 158, 115, {a})"  # bluish green, Okabe-Ito


def _inst(instrument, settings=None) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    known = instruments(settings)
    if instrument not in known:
        raise ValueError(f"unknown instrument {instrument!r}; known: {', '.join(known)}.")
    return known[instrument]


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return layout(fig, title)


def outcome_trajectory(
    track: pd.DataFrame,
    *,
    client_id: str,
    instrument=None,
    gains: pd.DataFrame | None = None,
    settings=None,
    reliable_change: float | None = None,
    cutoff: float | None = None,
    title: str | None = None,
    rules=None,
) -> go.Figure:
    """One client's scores by session with cut-off, reliable-change band, expected band and sudden gains.

    Parameters
    ----------
    track : DataFrame
        Output of :func:`supervision.metrics.outcome.track_status` with ``per_session=True``
        (``client_id``, ``session_number``, ``score``, ``intake_score`` and the ``expected_p<XX>``
        columns), or of :func:`~supervision.metrics.outcome.session_scores` (no expected band).
    client_id : str
        The client to draw.
    instrument : str or Instrument, optional
        Default: ``rules`` (:class:`~supervision.rules.OutcomeRules` or ``caseload.rules``; None =
        ``[outcome] instrument`` of defaults.toml).
        For the scale range, direction, cut-off and reliable-change value.
    gains : DataFrame, optional
        Output of :func:`~supervision.metrics.outcome.sudden_gains` (``client_id``,
        ``pregain_time``, ``postgain_time``, ``score_n``, ``score_np1``, ``reversal``); the client's
        gains are drawn as an arrow-like segment from pregain to postgain with a star (open star:
        later reversed).
    reliable_change, cutoff : float, optional
        Overrides of the instrument's values.

    Returns
    -------
    go.Figure
        Traces, in order (those without data are left out): ``Expected range (10th-90th
        percentile)`` and ``Expected (25th-75th)`` (filled bands), ``Expected (median)`` (dashed),
        ``Scores`` (the client's series), ``Sudden gain`` / ``Sudden gain, later reversed``
        (markers with their segments); shapes: the cut-off line and the reliable-change band
        around the intake score.
    """
    _need(track, "track", ["client_id", "session_number", "score"], "track_status(..., per_session=True)")
    inst = _inst(area_rules(OutcomeRules, rules, "outcome figure", instrument=instrument).instrument, settings)
    rc = inst.reliable_change if reliable_change is None else reliable_change
    cut = inst.cutoff if cutoff is None else cutoff
    part = track[track["client_id"] == client_id]
    part = part[part["score"].notna()].sort_values("session_number", kind="stable")
    ttl = title or f"{client_id}: {inst.name}"
    if part.empty:
        return _empty(ttl, f"No {inst.prefix} score recorded for {client_id}.")
    x = part["session_number"].to_numpy(dtype=float)
    y = part["score"].to_numpy(dtype=float)
    intake = float(part["intake_score"].iloc[0]) if "intake_score" in part.columns else float(y[0])
    traces: list[dict] = []
    cols = [c for c in part.columns if c.startswith("expected_p")]
    pct = sorted(float(c.removeprefix("expected_p")) for c in cols)
    n_ref = int(part["n_reference"].iloc[-1]) if "n_reference" in part.columns else 0

    def band(lo_p: float, hi_p: float, name: str, alpha: float) -> None:
        lo = part[f"expected_p{lo_p:g}"].to_numpy(dtype=float)
        hi = part[f"expected_p{hi_p:g}"].to_numpy(dtype=float)
        ok = ~(np.isnan(lo) | np.isnan(hi)) & (x > x[0])
        if not ok.any():
            return
        traces.append({"type": "scatter", "x": x[ok], "y": hi[ok], "mode": "lines", "line": {"width": 0},
                       "showlegend": False, "hoverinfo": "skip", "legendgroup": name})
        traces.append({"type": "scatter", "x": x[ok], "y": lo[ok], "mode": "lines", "line": {"width": 0},
                       "fill": "tonexty", "fillcolor": _BAND.format(a=alpha), "name": name, "legendgroup": name,
                       "hovertemplate": f"{name}: %{{y:.1f}}<extra></extra>"})

    if len(pct) >= 2:
        band(pct[0], pct[-1], f"Expected range ({pct[0]:g}th-{pct[-1]:g}th percentile)", 0.15)
        if len(pct) >= 4:
            band(pct[1], pct[-2], f"Expected ({pct[1]:g}th-{pct[-2]:g}th)", 0.30)
    if "expected_median" in part.columns:
        med = part["expected_median"].to_numpy(dtype=float)
        ok = ~np.isnan(med) & (x > x[0])
        if ok.any():
            traces.append({"type": "scatter", "x": x[ok], "y": med[ok], "mode": "lines", "name": "Expected (median)",
                           "line": {"color": OKABE_ITO["bluish_green"], "dash": "dash", "width": 2},
                           "hovertemplate": "expected median %{y:.1f}<extra></extra>"})
    traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines+markers", "name": "Scores",
                   "line": {"color": _SERIES, "width": 2}, "marker": {"size": 7, "color": _SERIES},
                   "hovertemplate": f"session %{{x}}: {inst.prefix.upper()} %{{y:.1f}}<extra></extra>"})
    if gains is not None:
        _need(gains, "gains", ["client_id", "pregain_time", "postgain_time", "score_n", "score_np1", "reversal"],
              "sudden_gains(...)")
        g = gains[gains["client_id"] == client_id]
        for rev, sub in g.groupby(g["reversal"].astype(bool), sort=True):
            label = "Sudden gain, later reversed" if rev else "Sudden gain"
            xs, ys = [], []
            for a, b, ya, yb in zip(sub["pregain_time"], sub["postgain_time"], sub["score_n"], sub["score_np1"]):
                xs += [a, b, None]
                ys += [ya, yb, None]
            traces.append({
                "type": "scatter", "x": xs, "y": ys, "mode": "lines+markers", "name": label, "legendgroup": label,
                "line": {"color": OKABE_ITO["reddish_purple"], "width": 4, "dash": "dot" if rev else "solid"},
                "marker": {"symbol": ["circle-open", "star-open" if rev else "star", "circle"] * len(sub),
                           "size": [6, 15, 0] * len(sub), "color": OKABE_ITO["reddish_purple"]},
                "hovertemplate": f"{label.lower()}: session %{{x}}, %{{y:.1f}}<extra></extra>"})
    x_end = float(max(x.max(), 2))
    shapes, notes = [], []
    if rc is not None:
        shapes.append({"type": "rect", "x0": 0.5, "x1": x_end + 0.5, "y0": intake - rc, "y1": intake + rc,
                       "line": {"width": 0}, "fillcolor": "rgba(153, 153, 153, 0.15)", "layer": "below"})
        notes.append({"x": x_end + 0.5, "y": intake + rc, "xanchor": "right", "yanchor": "bottom", "showarrow": False,
                      "text": f"intake \u00b1 {rc:g}: change not reliable", "font": {"size": 11, "color": "#555555"}})
    if cut is not None:
        shapes.append({"type": "line", "x0": 0.5, "x1": x_end + 0.5, "y0": cut, "y1": cut,
                       "line": {"color": _CUTOFF, "dash": "dash", "width": 1.5}})
        notes.append({"x": 0.5, "y": cut, "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                      "text": f"clinical cut-off {cut:g}", "font": {"size": 11, "color": "#555555"}})
    lay = layout_dict(ttl, height=420)
    if shapes:
        lay.update(shapes=shapes, annotations=notes)
    lay["xaxis"] = {"title": {"text": "Attended session"}, "range": [0.5, x_end + 0.5], "dtick": 1 if x_end <= 16 else 2}
    lay["yaxis"] = {"title": {"text": f"{inst.name} total"}, "range": [inst.total_min, inst.total_max]}
    better = "higher" if inst.higher_is_better else "lower"
    ref_text = (f"the green band is how closed episodes with a similar intake went (from {n_ref} at the latest session)"
                if cols and n_ref else "no expected band: not enough reference data")
    status = ""
    if "status" in part.columns and pd.notna(part["status"].iloc[-1]):
        status = f" Latest: {str(part['status'].iloc[-1]).replace('_', ' ')}."
    subtitle_dict(lay, traces, f"{better.capitalize()} is better; {ref_text}; grey band = change too small to be "
                               f"reliable.{status} One client's scores cannot show why they changed.")
    return figure(traces, lay)


def jacobson_plot(
    client_outcomes: pd.DataFrame,
    *,
    instrument=None,
    settings=None,
    reliable_change: float | None = None,
    cutoff: float | None = None,
    title: str | None = None,
    rules=None,
) -> go.Figure:
    """Caseload Jacobson plot: intake (x) against latest score (y), with cut-off and reliable-change lines.

    Parameters
    ----------
    client_outcomes : DataFrame
        Output of :func:`supervision.metrics.outcome.client_outcomes` (``client_id``,
        ``first_score``, ``latest_score``, ``category``); clients without a category (one measured
        session) are left out and counted in the subtitle.
    instrument : str or Instrument, optional
        Default: ``rules`` (:class:`~supervision.rules.OutcomeRules` or ``caseload.rules``; None =
        ``[outcome] instrument`` of defaults.toml).
    reliable_change, cutoff : float, optional
        Overrides of the instrument's values.

    Returns
    -------
    go.Figure
        One marker trace per Jacobson-Truax category present (``name`` = the label of
        :data:`CATEGORY_STYLE`), then the line traces ``No change`` (y = x), ``Reliable change
        boundary`` (y = x +/- reliable change) and, with a cut-off, ``Clinical cut-off``
        (vertical and horizontal).
    """
    _need(client_outcomes, "client_outcomes", ["client_id", "first_score", "latest_score", "category"],
          "client_outcomes(sessions, ...)")
    inst = _inst(area_rules(OutcomeRules, rules, "outcome figure", instrument=instrument).instrument, settings)
    rc = inst.reliable_change if reliable_change is None else reliable_change
    cut = inst.cutoff if cutoff is None else cutoff
    co = client_outcomes
    has = co["category"].notna() & co["latest_score"].notna()
    d = co[has]
    n, n_out = int(len(d)), int((~has).sum())
    ttl = (title or f"Intake and latest {inst.name}") + f" ({n} client{'s' if n != 1 else ''})"
    if n == 0:
        return _empty(ttl, "No client has two measured sessions yet.")
    fig = go.Figure()
    for cat, (label, symbol, colour) in CATEGORY_STYLE.items():
        part = d[d["category"] == cat]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["first_score"].to_numpy(dtype=float), y=part["latest_score"].to_numpy(dtype=float),
            mode="markers", name=f"{label} ({len(part)})", customdata=part["client_id"].astype(str).to_numpy(),
            marker={"symbol": symbol, "size": 9, "color": colour, "line": {"width": 1.5, "color": colour}},
            hovertemplate="%{customdata}: intake %{x:.1f} -> latest %{y:.1f}<extra>" + label + "</extra>"))
    lo, hi = inst.total_min, inst.total_max
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="No change",
                             line={"color": OKABE_ITO["black"], "width": 1}, hoverinfo="skip"))
    if rc is not None:
        fig.add_trace(go.Scatter(x=[lo, hi - rc, None, lo + rc, hi], y=[lo + rc, hi, None, lo, hi - rc],
                                 mode="lines", name=f"Reliable change boundary (\u00b1{rc:g})",
                                 line={"color": OKABE_ITO["black"], "width": 1, "dash": "dot"}, hoverinfo="skip"))
    if cut is not None:
        fig.add_trace(go.Scatter(x=[cut, cut, None, lo, hi], y=[lo, hi, None, cut, cut], mode="lines",
                                 name=f"Clinical cut-off ({cut:g})",
                                 line={"color": _CUTOFF, "width": 1.5, "dash": "dash"}, hoverinfo="skip"))
    layout(fig, ttl, height=520)
    fig.update_xaxes(title_text=f"Intake {inst.prefix.upper()}", range=[lo, hi], constrain="domain")
    fig.update_yaxes(title_text=f"Latest {inst.prefix.upper()}", range=[lo, hi], scaleanchor="x", scaleratio=1)
    side = "above" if inst.higher_is_better else "below"
    left = f" {n_out} client{'s' if n_out != 1 else ''} with one measured session not shown." if n_out else ""
    return _subtitle(fig, f"Each mark is a client. Marks {side} the diagonal got better; beyond the dotted line the "
                          f"change is reliable. Latest is not always the end of treatment.{left}")


def caterpillar_plot(effects: pd.DataFrame, *, title: str = "Severity-adjusted outcome by clinician") -> go.Figure:
    """Clinician caterpillar plot: shrunken severity-adjusted effects with their intervals, sorted.

    Parameters
    ----------
    effects : DataFrame
        Output of :func:`supervision.metrics.outcome.clinician_effects`. Clinicians without an
        estimate (too few cases) are named in the subtitle, never drawn.

    Returns
    -------
    go.Figure
        Trace ``Clinician effect`` (horizontal: x = effect in points, y = clinician ordered from
        lowest to highest, error bars to ``effect_lower`` / ``effect_upper``) and the trace
        ``Service expectation`` (x = 0). When every estimate is the same point with the same
        interval (the data cannot tell the clinicians apart), a sentence saying so replaces the
        chart and ``Clinician effect`` is left empty.
    """
    _need(effects, "effects", ["clinician_id", "n_cases", "estimated", "effect", "effect_lower", "effect_upper"],
          "clinician_effects(client_outcomes)")
    est = effects[effects["estimated"].astype(bool)].sort_values("effect", kind="stable")
    rest = effects[~effects["estimated"].astype(bool)]
    level = effects.attrs.get("confidence", default_rules().outcome.effect_confidence)  # attrs lost: the defaults' rules
    alike = (len(est) > 1 and float(np.ptp(est["effect"].to_numpy(dtype=float))) < 0.05
             and float(np.ptp((est["effect_upper"] - est["effect_lower"]).to_numpy(dtype=float))) < 0.05)
    if est.empty:
        fig = _empty(title, "No clinician has enough cases for an estimate.")
    elif alike:
        # Every clinician at the same point with the same bar carries no information: say so instead.
        fig = _empty(f"{title} ({len(est)} clinicians, {int(est['n_cases'].sum())} cases)",
                     "The data cannot tell these clinicians apart: after allowing for intake severity,<br>"
                     f"every estimate is the service's ({float(est['effect'].iloc[0]):+.1f} points, the same interval). "
                     "With caseloads of this size<br>that is the expected result; it does not show that everyone works alike.")
        fig.add_trace(go.Scatter(x=[], y=[], name="Clinician effect", showlegend=False))
    else:
        fig = go.Figure()
        e = est["effect"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(
            x=e, y=est["clinician_id"].astype(str).to_numpy(), mode="markers", name="Clinician effect",
            marker={"symbol": "diamond", "size": 10, "color": OKABE_ITO["blue"]},
            error_x={"type": "data", "symmetric": False, "array": est["effect_upper"].to_numpy(dtype=float) - e,
                     "arrayminus": e - est["effect_lower"].to_numpy(dtype=float), "color": OKABE_ITO["blue"],
                     "thickness": 2, "width": 4},
            customdata=np.stack([est["n_cases"].to_numpy(), est["effect_lower"].to_numpy(dtype=float),
                                 est["effect_upper"].to_numpy(dtype=float)], axis=1),
            hovertemplate="%{y}: %{x:+.1f} points (%{customdata[1]:+.1f} to %{customdata[2]:+.1f}), "
                          "%{customdata[0]} cases<extra></extra>"))
        fig.add_trace(go.Scatter(x=[0, 0], y=[est["clinician_id"].astype(str).iloc[0],
                                             est["clinician_id"].astype(str).iloc[-1]],
                                 mode="lines", name="Service expectation",
                                 line={"color": OKABE_ITO["grey"], "dash": "dash"}, hoverinfo="skip"))
        layout(fig, f"{title} ({len(est)} clinicians, {int(est['n_cases'].sum())} cases)",
               height=max(320, 40 * len(est) + 220))
        fig.update_xaxes(title_text="Points better (+) or worse (-) than the service expects for the intake",
                         zeroline=False)
        fig.update_yaxes(type="category")
    missing = ""
    if len(rest):
        missing = (f" No estimate (fewer than {effects.attrs.get('min_cases', 15)} cases): "
                   + ", ".join(f"{c} ({n})" for c, n in zip(rest["clinician_id"], rest["n_cases"])) + ".")
    return _subtitle(fig, f"Shrunken towards the service; bars are {level:.0%} intervals. Overlapping bars mean "
                          f"the data cannot tell these clinicians apart.{missing}")
