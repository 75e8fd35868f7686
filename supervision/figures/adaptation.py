"""Adaptation-gap charts: a forest plot of one clinician's gaps, a funnel plot across clinicians,
and an overview matrix that says where to look.

Tidy frames in (outputs of :mod:`supervision.metrics.adaptation`), ``go.Figure`` out, never
displayed. Colours come from :mod:`supervision.figures.theme` only, and every verdict is also
written as text or drawn with its own marker shape, so the charts read without colour. Groups
with too few clients (or hidden by disclosure control) are named with their n but never drawn as
an estimate.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from supervision.figures.theme import OKABE_ITO, layout, need_columns, subtitle

_need = need_columns
_subtitle = subtitle
from supervision.metrics.adaptation import COMPARATOR_LABELS, METRICS
from supervision.metrics.stats import funnel_limits
from supervision.rules import default_rules

__all__ = ["gap_forest", "gap_funnel", "gap_overview", "VERDICT_STYLE"]

#: verdict -> (legend label, marker symbol, colour, urgency for the overview)
VERDICT_STYLE = {
    "clear gap": ("Clear gap", "diamond", OKABE_ITO["vermillion"], 3),
    "possible gap": ("Possible gap", "triangle-up", OKABE_ITO["orange"], 2),
    "no evidence": ("No evidence of a gap", "circle-open", OKABE_ITO["blue"], 1),
    "too few clients": ("Too few clients (no estimate)", "line-ew", OKABE_ITO["grey"], 0),
    "suppressed": ("Suppressed (small numbers)", "line-ew", OKABE_ITO["grey"], 0),
}
_NO_ESTIMATE = ("too few clients", "suppressed")


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return layout(fig, title)


def _label(name: str) -> str:
    """A group's label from the default ``[identity.labels]`` (``gay_lesbian`` -> "gay or lesbian")."""
    from supervision.config import value_label

    return value_label(name)


def _dim_label(name: str) -> str:
    return _label(name).capitalize()


def _wrap(text: str, width: int = 16) -> str:
    return "<br>".join(textwrap.wrap(text, width)) or text


def _one_clinician(gaps: pd.DataFrame, clinician_id: str | None) -> tuple[pd.DataFrame, str]:
    ids = pd.unique(gaps["clinician_id"].astype(str))
    if clinician_id is None:
        if len(ids) != 1:
            raise ValueError(f"the table holds {len(ids)} clinicians; choose one with clinician_id= "
                             f"(one of {', '.join(map(str, ids[:10]))}{'...' if len(ids) > 10 else ''}).")
        clinician_id = str(ids[0])
    sub = gaps[gaps["clinician_id"].astype(str) == str(clinician_id)]
    if sub.empty:
        raise ValueError(f"clinician {clinician_id!r} is not in the table; clinicians: {', '.join(map(str, ids))}.")
    return sub, str(clinician_id)


def _n_text(row) -> str:
    disp = row.get("n_group_display") if hasattr(row, "get") else None
    if isinstance(disp, str) and disp:
        return disp
    n = row["n_group"]
    return "?" if pd.isna(n) else str(int(n))


def _fmt(value: float, kind: str, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    if kind == "rate":
        return f"{value * 100:+.0f} points" if signed else f"{value:.0%}"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


# --------------------------------------------------------------------------------------------
# forest plot
# --------------------------------------------------------------------------------------------

def gap_forest(
    gaps: pd.DataFrame,
    *,
    metric: str,
    comparator: str = "clinician",
    clinician_id: str | None = None,
    dimensions: Sequence[str] | None = None,
    show_no_estimate: bool = True,
    title: str | None = None,
) -> go.Figure:
    """Forest plot of one clinician's gaps for one metric: a row per identity group, with n.

    Parameters
    ----------
    gaps : DataFrame
        Output of :func:`supervision.metrics.adaptation.adaptation_gaps` (or of
        :func:`~supervision.metrics.adaptation.suppress_gaps`).
    metric : str
        A key of :data:`~supervision.metrics.adaptation.METRICS`.
    comparator : {"clinician", "service"}, default "clinician"
        Against the clinician's other clients, or other clinicians' clients in the same group.
    clinician_id : str, optional
        Needed when the table holds several clinicians.
    dimensions : sequence of str, optional
        Dimensions to show (default all in the table, in its order).
    show_no_estimate : bool, default True
        Keep the rows without an estimate (too few clients, suppressed) as labelled rows; False
        leaves them out and counts them in the subtitle.
    title : str, optional

    Returns
    -------
    go.Figure
        Horizontal forest plot; y = "Dimension: group (n = group vs comparator)" (top to bottom in
        the table's order). One ``Scatter`` trace per verdict present (names from
        :data:`VERDICT_STYLE`: x = ``difference``, error bars to ``lower`` / ``upper``, marker
        shape per verdict), a trace ``Shrunken estimate`` (hollow diamonds at
        ``shrunken_difference``) and a text-only trace ``No estimate`` that writes "too few
        clients" or "suppressed" at x = 0 for rows without an estimate (no marker, no bar). The
        verdict of every row is also written at the right edge. Vertical lines: 0 and the
        practical threshold in the worse direction.
    """
    _need(gaps, "gaps", ["clinician_id", "dimension", "group", "metric", "comparator", "n_group", "n_comparator",
                         "difference", "lower", "upper", "shrunken_difference", "verdict"], "adaptation_gaps(measures)")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}.")
    if comparator not in COMPARATOR_LABELS:
        raise ValueError(f"comparator must be one of {', '.join(COMPARATOR_LABELS)}; got {comparator!r}.")
    spec = METRICS[metric]
    sub, cid = _one_clinician(gaps, clinician_id)
    sub = sub[(sub["metric"] == metric) & (sub["comparator"] == comparator)]
    if dimensions is not None:
        dims = [dimensions] if isinstance(dimensions, str) else list(dimensions)
        sub = sub[sub["dimension"].isin(dims)]
    title = title or f"{spec.label}: {cid}'s clients by identity group, against {COMPARATOR_LABELS[comparator]}"
    hidden_rows = 0
    if not show_no_estimate:
        keep = ~sub["verdict"].astype(str).isin(_NO_ESTIMATE)
        hidden_rows = int((~keep).sum())
        sub = sub[keep]
    if sub.empty:
        return _empty(title, "No identity group to show for this metric"
                      + (f" ({hidden_rows} groups have too few clients for an estimate)." if hidden_rows else "."))
    sub = sub.reset_index(drop=True)
    labels = [f"{_dim_label(r['dimension'])}: {_label(r['group'])} (n = {_n_text(r)} vs "
              f"{'*' if pd.isna(r['n_comparator']) else int(r['n_comparator'])})" for _, r in sub.iterrows()]
    sub["label"] = labels
    verdict = sub["verdict"].astype(str)
    fig = go.Figure()
    for v, (name, symbol, colour, _) in VERDICT_STYLE.items():
        if v in _NO_ESTIMATE:
            continue
        part = sub[verdict == v]
        if part.empty:
            continue
        x = part["difference"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(
            x=x, y=part["label"], mode="markers", name=name,
            marker={"symbol": symbol, "size": 11, "color": colour, "line": {"width": 2, "color": colour}},
            error_x={"type": "data", "symmetric": False, "array": part["upper"].to_numpy(dtype=float) - x,
                     "arrayminus": x - part["lower"].to_numpy(dtype=float), "color": colour, "thickness": 2,
                     "width": 5},
            customdata=np.stack([part["lower"].to_numpy(dtype=float), part["upper"].to_numpy(dtype=float),
                                 part["shrunken_difference"].to_numpy(dtype=float),
                                 part["verdict"].astype(str).to_numpy()], axis=1),
            hovertemplate="%{y}<br>difference %{x:.3f} (%{customdata[0]:.3f} to %{customdata[1]:.3f})"
                          "<br>shrunken %{customdata[2]:.3f}<br>%{customdata[3]}<extra></extra>"))
    est = sub[~verdict.isin(_NO_ESTIMATE)]
    if not est.empty:
        fig.add_trace(go.Scatter(
            x=est["shrunken_difference"], y=est["label"], mode="markers", name="Shrunken estimate",
            marker={"symbol": "diamond-open", "size": 9, "color": OKABE_ITO["black"]},
            hovertemplate="%{y}<br>shrunken towards colleagues: %{x:.3f}<extra></extra>"))
    none = sub[verdict.isin(_NO_ESTIMATE)]
    if not none.empty:
        fig.add_trace(go.Scatter(
            x=np.zeros(len(none)), y=none["label"], mode="text", name="No estimate",
            text=[f"{v}: no estimate" for v in none["verdict"].astype(str)], textposition="middle right",
            textfont={"color": OKABE_ITO["grey"]}, showlegend=False, hoverinfo="text",
            hovertext=[f"{lab}: {v}" for lab, v in zip(none["label"], none["verdict"].astype(str))]))
    for lab, v in zip(sub["label"], verdict):
        fig.add_annotation(x=1.0, xref="paper", xanchor="left", y=lab, yref="y", text=f" {v}", showarrow=False,
                           font={"size": 11, "color": OKABE_ITO["black"] if v in ("clear gap", "possible gap")
                                 else OKABE_ITO["grey"]})
    fig.add_vline(x=0, line={"color": OKABE_ITO["grey"], "width": 1})
    thr = float(sub["practical_threshold"].iloc[0]) if "practical_threshold" in sub.columns else np.nan
    worse_sign = -1.0 if spec.higher_is_better else 1.0
    if np.isfinite(thr) and thr > 0:
        fig.add_vline(x=worse_sign * thr, line={"color": OKABE_ITO["vermillion"], "dash": "dash", "width": 1})
    n_rows = len(sub)
    layout(fig, title, height=max(360, 26 * n_rows + 200))
    unit = "percentage points" if spec.kind == "rate" else spec.unit
    arrow = "<- worse for the group" if spec.higher_is_better else "worse for the group ->"
    fig.update_xaxes(title_text=f"Group minus comparator ({unit}); {arrow}", zeroline=False,
                     tickformat="+.0%" if spec.kind == "rate" else "+.1f")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=list(reversed(labels)), automargin=True)
    fig.update_layout(margin_r=120)
    fallback = default_rules().adaptation  # a table without its attrs: the defaults' rules
    conf = gaps.attrs.get("confidence", fallback.confidence)
    min_n = gaps.attrs.get("min_n", fallback.min_n)
    n_none = int(len(none)) + hidden_rows
    return _subtitle(fig, (
        f"Each row compares the group's clients with {COMPARATOR_LABELS[comparator]}; n counts clients "
        f"contributing to this measure ({spec.denominator}). Bars are {conf:.0%} intervals; the hollow diamond is "
        f"the estimate shrunk towards what colleagues see with the group. The dashed line is the practical "
        f"threshold. A clear gap also holds after allowing for the number of comparisons and is specific to this "
        f"clinician and group. Groups under {min_n} clients get no estimate ({n_none} here). "
        + ("When most groups sit on the same side against colleagues, the difference is with the clinician's "
           "clients in general, not with one group. " if comparator == "service" else "")
        + "A gap says where to look, not why: the clients, not only the clinician, differ between groups."))


# --------------------------------------------------------------------------------------------
# funnel plot
# --------------------------------------------------------------------------------------------

def gap_funnel(funnel: pd.DataFrame, *, title: str | None = None, points: int = 200) -> go.Figure:
    """Funnel plot of every clinician's value for one identity group and metric.

    Parameters
    ----------
    funnel : DataFrame
        Output of :func:`supervision.metrics.adaptation.funnel_data`.
    title : str, optional
    points : int, default 200
        Resolution of the limit curves.

    Returns
    -------
    go.Figure
        x = clients in the group (n), y = the clinician's value. Traces: ``Service average``
        (target line), ``95% limits`` and ``99.8% limits`` (upper and lower curve in one trace
        each, broken by a gap), ``Clinicians`` (grey circles, squares outside 95 %, diamonds
        outside 99.8 %) and the supervisee (``highlight``) as a labelled star.
    """
    _need(funnel, "funnel", ["clinician_id", "n", "value", "target", "kind", "metric", "group", "dimension",
                             "phi_used", "tau2_used", "sd", "highlight", "outside_95", "outside_99_8"],
          "funnel_data(measures, ...)")
    if funnel.empty:
        return _empty(title or "Funnel plot", "No clinician has clients in this group.")
    r0 = funnel.iloc[0]
    spec = METRICS[str(r0["metric"])]
    kind = str(r0["kind"])
    group, dim = _label(r0["group"]), _dim_label(r0["dimension"])
    title = title or f"{spec.label} by clinician: clients with {dim.lower()} '{group}'"
    fig = go.Figure()
    n_max = float(funnel["n"].max())
    grid = np.linspace(1.0, max(n_max * 1.08, 2.0), points)
    target = float(r0["target"])
    sd = None if kind == "proportion" else float(r0["sd"])
    if kind == "mean" and not (sd is not None and sd > 0):
        lim = None
    else:
        lim = funnel_limits(grid, target, kind=kind, sd=sd, phi=float(r0["phi_used"]), tau2=float(r0["tau2_used"]))
    fig.add_trace(go.Scatter(x=[grid[0], grid[-1]], y=[target, target], mode="lines", name="Service average",
                             line={"color": OKABE_ITO["grey"], "width": 2}, hoverinfo="skip"))
    if lim is not None:
        for label, key, dash in (("95% limits", "95", "dash"), ("99.8% limits", "99_8", "dot")):
            xs = np.concatenate([grid, [np.nan], grid])
            ys = np.concatenate([lim[f"lower_{key}"], [np.nan], lim[f"upper_{key}"]])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=label, hoverinfo="skip",
                                     line={"color": OKABE_ITO["black"], "dash": dash, "width": 1}))
    others = funnel[~funnel["highlight"].astype(bool)]
    if not others.empty:
        sym = np.where(others["outside_99_8"] != "", "diamond", np.where(others["outside_95"] != "", "square", "circle"))
        fig.add_trace(go.Scatter(
            x=others["n"], y=others["value"], mode="markers", name="Clinicians",
            marker={"symbol": sym, "size": 9, "color": OKABE_ITO["grey"], "line": {"width": 1, "color": "#000000"}},
            text=others["clinician_id"], hovertemplate="%{text}: %{y:.3f} (n = %{x})<extra></extra>"))
    me = funnel[funnel["highlight"].astype(bool)]
    if not me.empty:
        fig.add_trace(go.Scatter(
            x=me["n"], y=me["value"], mode="markers+text", name=f"Supervisee ({me['clinician_id'].iloc[0]})",
            marker={"symbol": "star", "size": 16, "color": OKABE_ITO["vermillion"],
                    "line": {"width": 1, "color": "#000000"}},
            text=me["clinician_id"], textposition="top center",
            hovertemplate="%{text}: %{y:.3f} (n = %{x})<extra></extra>"))
    layout(fig, title, height=460)
    fig.update_xaxes(title_text=f"Clients in the group ({spec.denominator})", rangemode="tozero")
    ytitle = spec.label + (" (share)" if kind == "proportion" else f" ({spec.unit})")
    fig.update_yaxes(title_text=ytitle, tickformat=".0%" if kind == "proportion" else None)
    od = str(r0.get("overdispersion", "none"))
    od_text = ("Limits are not adjusted for overdispersion" if od == "none"
               else f"Limits adjusted for overdispersion ({od}: phi = {float(r0['phi_used']):.2f}, "
                    f"tau^2 = {float(r0['tau2_used']):.4f})")
    n_total = int(funnel["n"].sum())
    worse = "below" if spec.higher_is_better else "above"
    return _subtitle(fig, (
        f"Each point is one clinician's clients in this group ({len(funnel)} clinicians, {n_total} clients). The "
        f"funnel narrows as n grows: a point outside the 95% limits happens by chance for about 1 clinician in 20, "
        f"outside 99.8% for 1 in 500. Worse is {worse} the funnel. {od_text}; estimated phi = "
        f"{float(r0['phi']):.2f}. With few clinicians or small n the limits cannot separate clinicians. "
        f"Spiegelhalter (2005)."))


# --------------------------------------------------------------------------------------------
# overview matrix
# --------------------------------------------------------------------------------------------

def gap_overview(
    gaps: pd.DataFrame,
    *,
    clinician_id: str | None = None,
    comparator: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Overview matrix: dimension x metric, each cell the most urgent verdict among the groups, with n.

    Parameters
    ----------
    gaps : DataFrame
        Output of :func:`supervision.metrics.adaptation.adaptation_gaps` (or of ``suppress_gaps``).
    clinician_id : str, optional
        Needed when the table holds several clinicians.
    comparator : {"clinician", "service"}, optional
        Only this comparator; default both (the more urgent verdict of the two).
    title : str, optional

    Returns
    -------
    go.Figure
        One ``Heatmap`` trace: y = dimensions (table order, top to bottom), x = metric labels,
        z = urgency (3 clear gap, 2 possible gap, 1 no evidence, 0 no estimate), colours from the
        theme, and cell text naming the verdict in words with the group(s) concerned and their n
        (e.g. "CLEAR GAP / yes n=15"), so the matrix reads without colour. ``customdata`` holds
        the verdict of each cell.
    """
    _need(gaps, "gaps", ["clinician_id", "dimension", "group", "metric", "comparator", "n_group", "verdict"],
          "adaptation_gaps(measures)")
    sub, cid = _one_clinician(gaps, clinician_id)
    if comparator is not None:
        if comparator not in COMPARATOR_LABELS:
            raise ValueError(f"comparator must be one of {', '.join(COMPARATOR_LABELS)}; got {comparator!r}.")
        sub = sub[sub["comparator"] == comparator]
    title = title or f"Where to look: adaptation gaps for {cid}"
    if sub.empty:
        return _empty(title, "No identity group to show.")
    dims = list(pd.unique(sub["dimension"]))
    mets = [m for m in METRICS if m in set(sub["metric"])]
    urgency = {v: s[3] for v, s in VERDICT_STYLE.items()}
    z = np.zeros((len(dims), len(mets)))
    text = np.empty((len(dims), len(mets)), dtype=object)
    verdicts = np.empty((len(dims), len(mets)), dtype=object)
    for i, d in enumerate(dims):
        for j, m in enumerate(mets):
            cell = sub[(sub["dimension"] == d) & (sub["metric"] == m)]
            if cell.empty:
                z[i, j], text[i, j], verdicts[i, j] = 0, "no clients", "too few clients"
                continue
            u = cell["verdict"].astype(str).map(urgency).fillna(0).to_numpy()
            top = int(u.max())
            worst = cell[u == top]
            v = str(worst["verdict"].iloc[0])
            z[i, j], verdicts[i, j] = top, v
            if top >= 2:
                rows = worst.drop_duplicates("group")
                names = [f"{_label(g)} n={_n_text(r)}" for g, (_, r) in zip(rows["group"], rows.iterrows())]
                more = f" +{len(names) - 2} more" if len(names) > 2 else ""
                text[i, j] = f"<b>{v.upper()}</b><br>" + "<br>".join(names[:2]) + more
            elif top == 1:
                k = cell.loc[cell["verdict"] == "no evidence", "group"].nunique()
                text[i, j] = f"no evidence<br>{k} group{'s' if k != 1 else ''} compared"
            else:
                sup = (cell["verdict"] == "suppressed").any()
                text[i, j] = "suppressed" if sup else "too few clients"
    # z 0..3 -> grey (no estimate), sky blue (no evidence), orange (possible), vermillion (clear)
    fig = go.Figure(go.Heatmap(
        z=z, x=[_wrap(METRICS[m].label) for m in mets], y=[_dim_label(d) for d in dims], zmin=0, zmax=3,
        colorscale=[[0.0, OKABE_ITO["grey"]], [0.1666, OKABE_ITO["grey"]], [0.1666, OKABE_ITO["sky_blue"]],
                    [0.5, OKABE_ITO["sky_blue"]], [0.5, OKABE_ITO["orange"]], [0.8333, OKABE_ITO["orange"]],
                    [0.8333, OKABE_ITO["vermillion"]], [1.0, OKABE_ITO["vermillion"]]],
        showscale=False, text=text, texttemplate="%{text}", textfont={"size": 11, "color": OKABE_ITO["black"]},
        customdata=verdicts, xgap=3, ygap=3, name="Verdict",
        hovertemplate="%{y} / %{x}: %{customdata}<extra></extra>"))
    layout(fig, title, height=max(360, 58 * len(dims) + 200))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(side="top", automargin=True, tickangle=0)
    n_clear = int((verdicts == "clear gap").sum())
    n_possible = int((verdicts == "possible gap").sum())
    which = ("both comparators (the clinician's other clients, colleagues' clients in the group)"
             if comparator is None else COMPARATOR_LABELS[comparator])
    return _subtitle(fig, (
        f"Each cell is the most urgent verdict among the groups of a dimension, against {which}: "
        f"{n_clear} clear and {n_possible} possible gaps. Start with the cells that say CLEAR GAP, then open the "
        f"forest plot of that measure. 'No evidence' is not evidence of no gap when groups are small; grey cells "
        f"have too few clients for any estimate. By chance alone about 1 comparison in 70 is a possible gap."))
