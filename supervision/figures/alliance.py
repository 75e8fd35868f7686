"""Alliance charts: each client's SRS series, a caseload heatmap and a clinician-vs-service comparison.

Builders take the tidy frames of :mod:`supervision.metrics.alliance` and return a ``go.Figure``;
nothing is displayed here and no input is modified. Colours come only from
:mod:`supervision.figures.theme`; every mark that carries meaning also has a distinct marker
symbol or line style, so the charts read without colour.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from supervision.figures.theme import OKABE_ITO, figure, layout, layout_dict, merge, need_columns, plural, subtitle, subtitle_dict
from supervision.rules import AllianceRules, area_rules

_need = need_columns
_plural = plural
_subtitle = subtitle

__all__ = ["srs_small_multiples", "srs_heatmap", "low_alliance_comparison", "RUPTURE_STYLE"]

SRS_MAX = 40.0
#: Marker of a rupture per status: (label, symbol, colour). Symbols differ so colour is not needed.
RUPTURE_STYLE = {
    "repaired": ("Rupture, repaired", "triangle-up", OKABE_ITO["bluish_green"]),
    "unrepaired": ("Rupture, not repaired", "x", OKABE_ITO["vermillion"]),
    "open": ("Rupture, repair still possible", "diamond-open", OKABE_ITO["orange"]),
}
_SERIES = OKABE_ITO["blue"]
_CUTOFF = OKABE_ITO["grey"]


def _one_criterion(ruptures: pd.DataFrame | None) -> pd.DataFrame | None:
    if ruptures is None:
        return None
    _need(ruptures, "ruptures", ["client_id", "rupture_session", "rupture_score", "status"], "ruptures(alliance)")
    if "criterion" in ruptures.columns and ruptures["criterion"].nunique() > 1:
        raise ValueError("ruptures holds several criteria (" + ", ".join(map(str, ruptures["criterion"].unique()))
                         + "); pass one, e.g. ruptures[ruptures['criterion'] == '2sd'].")
    return ruptures


def _client_order(alliance: pd.DataFrame, clients: Sequence[str] | None) -> list[str]:
    present = sorted(pd.unique(alliance["client_id"]).tolist())
    if clients is None:
        return present
    unknown = [c for c in clients if c not in set(present)]
    if unknown:
        raise ValueError(f"clients not in the alliance frame: {', '.join(map(str, unknown))}. "
                         f"Known: {', '.join(map(str, present[:20]))}{' ...' if len(present) > 20 else ''}.")
    return list(dict.fromkeys(clients))


def srs_small_multiples(
    alliance: pd.DataFrame,
    ruptures: pd.DataFrame | None = None,
    *,
    srs_cutoff: float | None = None,
    clients: Sequence[str] | None = None,
    columns: int = 4,
    title: str = "SRS by session",
    rules=None,
) -> go.Figure:
    """One small panel per client: SRS total by session number, the cut-off line and ruptures.

    Parameters
    ----------
    alliance : DataFrame
        Output of :func:`supervision.metrics.alliance.session_alliance` (usually one clinician's
        caseload). Only measured sessions are drawn; the line joins consecutive measured sessions.
    ruptures : DataFrame, optional
        Output of :func:`supervision.metrics.alliance.ruptures` for one criterion. Each episode
        is marked at its ``rupture_session``: repaired = triangle, not repaired = x, still open =
        open diamond.
    srs_cutoff : float, optional
        Drawn as a dashed horizontal line in every panel; default: ``rules`` (an
        :class:`~supervision.rules.AllianceRules` or ``caseload.rules``; None = ``[alliance]`` of defaults.toml).
    clients : sequence of str, optional
        Clients to show, in this order (default: every client in ``alliance``, sorted).
    columns : int, default 4
        Panels per row.
    title : str
        Chart title; the number of clients is appended.

    Returns
    -------
    go.Figure
        Per client (panel titles are the client ids), in order: the SRS series trace
        (``name`` = client id) and the cut-off trace; then one marker trace per (client, status)
        with ruptures. Panels share the 0-40 y axis scale.
    """
    srs_cutoff = area_rules(AllianceRules, rules, "srs_small_multiples()", srs_cutoff=srs_cutoff).srs_cutoff
    _need(alliance, "alliance", ["client_id", "session_number", "srs_total"], "session_alliance(sessions)")
    rp = _one_criterion(ruptures)
    if int(columns) < 1:
        raise ValueError(f"columns must be 1 or more; got {columns!r}.")
    ids = _client_order(alliance, clients)
    n = len(ids)
    measured = alliance[alliance["srs_total"].notna()]
    if n == 0:
        fig = go.Figure()
        fig.add_annotation(text="No attended sessions to show.", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        return layout(fig, f"{title} (0 clients)")
    cols = min(int(columns), n)
    rows = math.ceil(n / cols)
    height = max(320, 200 * rows + 170)
    plot_height = height - 150 - 50  # the house margins (top 150 with the subtitle, bottom 50)
    v_space = min(65 / plot_height, 1 / (rows - 1) - 1e-9) if rows > 1 else 0.0
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[str(c) for c in ids], shared_yaxes=True,
                        horizontal_spacing=0.03, vertical_spacing=v_space)
    lo = float(np.floor(min(measured["srs_total"].min(), srs_cutoff) - 2)) if len(measured) else srs_cutoff - 4
    y_range = [max(0.0, lo), SRS_MAX + 0.8]
    by_client = {cid: part for cid, part in measured.groupby("client_id", sort=False)}
    last_sn = alliance.groupby("client_id")["session_number"].max()
    for i, cid in enumerate(ids):
        r, c = i // cols + 1, i % cols + 1
        part = by_client.get(cid, measured.iloc[:0])
        fig.add_trace(go.Scatter(
            x=part["session_number"].to_numpy(), y=part["srs_total"].to_numpy(), mode="lines+markers", name=str(cid),
            line={"color": _SERIES, "width": 2}, marker={"size": 6, "color": _SERIES, "symbol": "circle"},
            showlegend=False, hovertemplate=f"{cid}<br>session %{{x}}: SRS %{{y:.1f}}<extra></extra>",
        ), row=r, col=c)
        x_end = max(int(last_sn.get(cid, 1)), 2)
        fig.add_trace(go.Scatter(
            x=[1, x_end], y=[srs_cutoff, srs_cutoff], mode="lines", name=f"Cut-off ({srs_cutoff:g})",
            line={"color": _CUTOFF, "dash": "dash", "width": 1}, legendgroup="cutoff", showlegend=(i == 0),
            hoverinfo="skip",
        ), row=r, col=c)
    if rp is not None and len(rp):
        shown: set[str] = set()
        rp_show = rp[rp["client_id"].isin(ids)]
        for (cid, status), part in rp_show.groupby(["client_id", "status"], sort=False):
            label, symbol, colour = RUPTURE_STYLE.get(status, (str(status), "circle-open", OKABE_ITO["black"]))
            i = ids.index(cid)
            fig.add_trace(go.Scatter(
                x=part["rupture_session"].to_numpy(), y=part["rupture_score"].to_numpy(), mode="markers", name=label,
                marker={"symbol": symbol, "size": 13, "color": colour, "line": {"width": 2, "color": colour}},
                legendgroup=f"rupture_{status}", showlegend=status not in shown,
                hovertemplate=f"{cid}: {label.lower()} at session %{{x}} (SRS %{{y:.1f}})<extra></extra>",
            ), row=i // cols + 1, col=i % cols + 1)
            shown.add(status)
    layout(fig, f"{title} ({_plural(n, 'client')})", height=height)
    fig.update_yaxes(range=y_range)
    fig.update_xaxes(dtick=1 if last_sn.max() <= 12 else 2)
    return _subtitle(fig, f"Each panel is one client: SRS total (0-40) per attended session; dashed line = cut-off "
                          f"{srs_cutoff:g}. A score of 40 every time is uninformative, not reassuring.")


def _stepped_scale(zmin: float, zmax: float, cutoff: float) -> list[list]:
    """Warm colours up to the cut-off, cool above it: the cut-off is where the hue changes."""
    c = min(max((cutoff - zmin) / (zmax - zmin), 0.0), 1.0) if zmax > zmin else 0.5
    return [[0.0, OKABE_ITO["vermillion"]], [c, OKABE_ITO["orange"]],
            [min(c + 1e-6, 1.0), OKABE_ITO["sky_blue"]], [1.0, OKABE_ITO["blue"]]]


def srs_heatmap(
    alliance: pd.DataFrame,
    ruptures: pd.DataFrame | None = None,
    *,
    srs_cutoff: float | None = None,
    inclusive: bool | None = None,
    clients: Sequence[str] | None = None,
    title: str = "Caseload alliance (SRS)",
    rules=None,
) -> go.Figure:
    """Caseload heatmap: one row per client, one column per session number, colour = SRS total.

    Parameters
    ----------
    alliance : DataFrame
        Output of :func:`supervision.metrics.alliance.session_alliance`.
    ruptures : DataFrame, optional
        Output of :func:`supervision.metrics.alliance.ruptures` (one criterion), marked on the cells.
    srs_cutoff, inclusive : float, bool, optional
        Cells at or below (``inclusive``) / below the cut-off are orange-red and carry an open
        square; cells above are blue. The colour bar has a tick at the cut-off. Default: ``rules``
        (:class:`~supervision.rules.AllianceRules` or ``caseload.rules``; None = defaults.toml).
    clients : sequence of str, optional
        Rows to show, in order (default: all clients, sorted).
    title : str
        Chart title; the number of clients is appended.

    Returns
    -------
    go.Figure
        Trace 0: ``go.Heatmap`` with ``y`` = client ids (categorical, first client on top), ``x`` =
        session numbers 1..max, ``z`` = SRS totals (``None`` where not measured or not attended),
        the score printed in each cell. Trace 1: markers on the low cells (name "At or below
        cut-off"). Then one marker trace per rupture status present.
    """
    r = area_rules(AllianceRules, rules, "srs_heatmap()", srs_cutoff=srs_cutoff, inclusive=inclusive)
    srs_cutoff, inclusive = r.srs_cutoff, r.inclusive
    _need(alliance, "alliance", ["client_id", "session_number", "srs_total"], "session_alliance(sessions)")
    rp = _one_criterion(ruptures)
    ids = _client_order(alliance, clients)
    n = len(ids)
    fig = go.Figure()
    if n == 0:
        fig.add_annotation(text="No attended sessions to show.", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        return layout(fig, f"{title} (0 clients)")
    part = alliance[alliance["client_id"].isin(ids)]
    max_sn = int(part["session_number"].max())
    sessions = list(range(1, max_sn + 1))
    grid = (part.pivot_table(index="client_id", columns="session_number", values="srs_total", aggfunc="first")
            .reindex(index=ids, columns=sessions))
    z = grid.to_numpy(dtype=float)
    observed = z[~np.isnan(z)]
    zmin = float(max(0.0, np.floor(min(observed.min() if observed.size else srs_cutoff, srs_cutoff - 10))))
    fig.add_trace(go.Heatmap(
        z=[[None if np.isnan(v) else float(v) for v in row] for row in z], x=sessions, y=[str(c) for c in ids],
        zmin=zmin, zmax=SRS_MAX, colorscale=_stepped_scale(zmin, SRS_MAX, srs_cutoff), xgap=1, ygap=1,
        texttemplate="%{z:.0f}", textfont={"size": 10}, name="SRS total",
        colorbar={"title": {"text": "SRS"}, "tickvals": sorted({zmin, srs_cutoff, SRS_MAX}),
                  "ticktext": [f"{v:g} (cut-off)" if v == srs_cutoff else f"{v:g}" for v in
                               sorted({zmin, srs_cutoff, SRS_MAX})]},
        hovertemplate="%{y}, session %{x}: SRS %{z:.1f}<extra></extra>",
    ))
    rr, cc = np.nonzero(~np.isnan(z) & ((z <= srs_cutoff) if inclusive else (z < srs_cutoff)))
    sign = "≤" if inclusive else "<"
    fig.add_trace(go.Scatter(
        x=[sessions[j] for j in cc], y=[str(ids[i]) for i in rr], mode="markers",
        name=f"At or below cut-off ({sign} {srs_cutoff:g})" if inclusive else f"Below cut-off (< {srs_cutoff:g})",
        marker={"symbol": "square-open", "size": 16, "color": OKABE_ITO["black"], "line": {"width": 1}},
        hoverinfo="skip",
    ))
    if rp is not None and len(rp):
        rp_show = rp[rp["client_id"].isin(ids)]
        for status in ("repaired", "unrepaired", "open"):
            sub = rp_show[rp_show["status"] == status]
            if sub.empty:
                continue
            label, symbol, colour = RUPTURE_STYLE[status]
            fig.add_trace(go.Scatter(
                x=sub["rupture_session"].to_numpy(), y=sub["client_id"].astype(str).to_numpy(), mode="markers",
                name=label, marker={"symbol": symbol, "size": 11, "color": OKABE_ITO["black"],
                                    "line": {"width": 2, "color": OKABE_ITO["black"]}},
                hovertemplate=f"%{{y}}: {label.lower()} at session %{{x}}<extra></extra>",
            ))
    layout(fig, f"{title} ({_plural(n, 'client')})", height=max(320, 22 * n + 180))
    fig.update_yaxes(type="category", autorange="reversed", title_text="Client")
    fig.update_xaxes(title_text="Session number (attended sessions)", dtick=1 if max_sn <= 20 else 5)
    return _subtitle(fig, f"Warm cells: SRS {sign} {srs_cutoff:g} (also marked with a square); blue: above. "
                          "Empty cells: no score. Rows are clients, columns their 1st, 2nd, ... attended session.")


def low_alliance_comparison(
    clinician_alliance: pd.DataFrame,
    *,
    clinician_id: str | None = None,
    title: str = "Sessions at or below the SRS cut-off",
) -> go.Figure:
    """Low-alliance rate per clinician with Wilson intervals, against the whole service.

    Parameters
    ----------
    clinician_alliance : DataFrame
        Output of :func:`supervision.metrics.alliance.clinician_alliance` (rows per clinician
        and one ``scope == "service"`` row).
    clinician_id : str, optional
        The supervisee to highlight (open circle, thicker) among the other clinicians.
    title : str
        Chart title; the numbers of clinicians and clients are appended.

    Returns
    -------
    go.Figure
        Trace "Clinicians": ``x`` = ``low_rate`` per clinician, ``y`` = clinician ids, asymmetric
        error bars to the Wilson bounds. Trace "Whole service": the pooled rate (diamond). With
        ``clinician_id``, a third trace marks that clinician. A dotted vertical line (layout
        shape) sits at the service rate. Rows with no measured session are left out.
    """
    _need(clinician_alliance, "clinician_alliance",
          ["scope", "n_clients", "n_measured", "n_low", "low_rate", "low_rate_lower", "low_rate_upper"],
          "clinician_alliance(alliance)")
    frame = clinician_alliance[clinician_alliance["n_measured"] > 0]
    service = frame[frame["scope"] == "service"]
    clin = frame[frame["scope"] != "service"].sort_values("scope")
    if clinician_id is not None and clinician_id not in set(clin["scope"]):
        raise ValueError(f"clinician_id {clinician_id!r} has no measured sessions here; "
                         f"known: {', '.join(map(str, clin['scope']))}.")
    fig = go.Figure()

    def add(part: pd.DataFrame, name: str, symbol: str, colour: str, size: int) -> None:
        rate = part["low_rate"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(
            x=rate, y=part["scope"].astype(str).replace({"service": "Whole service"}).to_numpy(), mode="markers",
            name=name, marker={"symbol": symbol, "size": size, "color": colour, "line": {"width": 2, "color": colour}},
            error_x={"type": "data", "symmetric": False, "color": colour,
                     "array": part["low_rate_upper"].to_numpy(dtype=float) - rate,
                     "arrayminus": rate - part["low_rate_lower"].to_numpy(dtype=float)},
            customdata=np.column_stack([part["n_low"], part["n_measured"], part["n_clients"],
                                        part["low_rate_lower"], part["low_rate_upper"]]),
            hovertemplate=("%{y}: %{customdata[0]} of %{customdata[1]} sessions (%{x:.0%}; 95% CI "
                           "%{customdata[3]:.0%}-%{customdata[4]:.0%}), %{customdata[2]} clients<extra></extra>"),
        ))

    add(clin, "Clinicians", "circle", OKABE_ITO["blue"], 9)
    if len(service):
        add(service, "Whole service", "diamond", OKABE_ITO["black"], 12)
        fig.add_vline(x=float(service["low_rate"].iloc[0]), line_dash="dot", line_color=OKABE_ITO["grey"])
    if clinician_id is not None:
        add(clin[clin["scope"] == clinician_id], f"{clinician_id} (this supervisee)", "circle-open",
            OKABE_ITO["vermillion"], 15)
    n_clients = int(service["n_clients"].iloc[0]) if len(service) else int(clin["n_clients"].sum())
    layout(fig, f"{title} ({_plural(len(clin), 'clinician')}, {_plural(n_clients, 'client')})",
           height=max(320, 28 * (len(clin) + 1) + 200))
    fig.update_xaxes(title_text="Share of measured sessions at or below the cut-off", tickformat=".0%",
                     rangemode="tozero")
    fig.update_yaxes(type="category", autorange="reversed")
    return _subtitle(fig, "Bars: 95% Wilson intervals. Sessions of one client are not independent, so the bars are "
                          "too narrow for clinicians with few clients; compare overlap, not ranks.")


ITEM_STYLE = {  # SRS items and WAI-SR subscales: (label, dash) so lines read without colour
    "relationship": ("Relationship (0-10)", "solid"),
    "goals_topics": ("Goals & topics (0-10)", "dash"),
    "approach_method": ("Approach / method (0-10)", "dot"),
    "overall": ("Overall (0-10)", "dashdot"),
    "wai_goal": ("WAI-SR goal (4-20)", "solid"),
    "wai_task": ("WAI-SR task (4-20)", "dash"),
    "wai_bond": ("WAI-SR bond (4-20)", "dot"),
}


def client_alliance_detail(
    alliance: pd.DataFrame,
    ruptures: pd.DataFrame | None = None,
    *,
    client_id: str,
    srs_cutoff: float | None = None,
    low_item_threshold: float | None = None,
    rules=None,
) -> go.Figure:
    """One client's alliance in detail: SRS total with ruptures (top), items and subscales (bottom).

    Parameters
    ----------
    alliance : DataFrame
        Output of :func:`supervision.metrics.alliance.session_alliance` (any rows; the client's
        are picked).
    ruptures : DataFrame, optional
        Output of :func:`supervision.metrics.alliance.ruptures` for one criterion.
    client_id : str
        The client to show.
    srs_cutoff, low_item_threshold : float, optional
        Drawn as dashed lines on the total and on the item panel. Default: ``rules``
        (:class:`~supervision.rules.AllianceRules` or ``caseload.rules``; None = defaults.toml).

    Returns
    -------
    go.Figure
        Row 1: the SRS total (trace ``name`` "SRS total"), the cut-off, rupture markers.
        Row 2: one trace per SRS item present (names from ``ITEM_STYLE``) and, when WAI-SR was
        given, its goal/task/bond subscales on a second y axis scale (4-20).
    """
    r = area_rules(AllianceRules, rules, "client_alliance_detail()", srs_cutoff=srs_cutoff,
                   low_item_threshold=low_item_threshold)
    srs_cutoff, low_item_threshold = r.srs_cutoff, r.low_item_threshold
    _need(alliance, "alliance", ["client_id", "session_number", "srs_total"], "session_alliance(sessions)")
    part = alliance[alliance["client_id"] == client_id].sort_values("session_number")
    x = part["session_number"].to_numpy()
    top, bottom = {"xaxis": "x", "yaxis": "y"}, {"xaxis": "x2", "yaxis": "y2"}
    traces = [{"type": "scatter", "x": x, "y": part["srs_total"].to_numpy(), "mode": "lines+markers", "name": "SRS total",
               "line": {"color": _SERIES, "width": 3}, "hovertemplate": "session %{x}: SRS %{y:.1f}<extra></extra>", **top}]
    if len(x):
        traces.append({"type": "scatter", "x": [x.min(), max(x.max(), x.min() + 1)], "y": [srs_cutoff] * 2, "mode": "lines",
                       "name": f"Cut-off ({srs_cutoff:g})", "hoverinfo": "skip",
                       "line": {"color": _CUTOFF, "dash": "dash", "width": 1}, **top})
    rp = _one_criterion(ruptures)
    if rp is not None and len(rp):
        for status, grp in rp[rp["client_id"] == client_id].groupby("status", sort=False):
            label, symbol, colour = RUPTURE_STYLE.get(status, (str(status), "circle-open", OKABE_ITO["black"]))
            traces.append({"type": "scatter", "x": grp["rupture_session"].to_numpy(), "y": grp["rupture_score"].to_numpy(),
                           "mode": "markers", "name": label,
                           "marker": {"symbol": symbol, "size": 14, "color": colour, "line": {"width": 2, "color": colour}},
                           "hovertemplate": f"{label} at session %{{x}}<extra></extra>", **top})
    palette = [OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "reddish_purple", "vermillion", "sky_blue", "black")]
    for i, (col, (label, dash)) in enumerate(ITEM_STYLE.items()):
        if col in part.columns and part[col].notna().any():
            traces.append({"type": "scatter", "x": x, "y": part[col].to_numpy(dtype=float, na_value=np.nan),
                           "mode": "lines+markers", "name": label,
                           "line": {"color": palette[i % len(palette)], "dash": dash, "width": 2},
                           "hovertemplate": f"{label}: %{{y:.1f}} at session %{{x}}<extra></extra>", **bottom})
    if "goals_topics" in part.columns and part["goals_topics"].notna().any() and len(x):
        traces.append({"type": "scatter", "x": [x.min(), max(x.max(), x.min() + 1)], "y": [low_item_threshold] * 2,
                       "mode": "lines", "name": f"Low item ({low_item_threshold:g})", "hoverinfo": "skip",
                       "line": {"color": _CUTOFF, "dash": "dot", "width": 1}, **bottom})
    n_meas = int(part['srs_total'].notna().sum())
    lay = merge(_detail_grid(), layout_dict(f"Client {client_id}: alliance by session "
                                            f"({_plural(n_meas, 'measured session')})", height=560))
    merge(lay, {"xaxis2": {"title": {"text": "Attended session"}, "dtick": 1 if len(x) and x.max() <= 15 else 2},
                "yaxis": {"title": {"text": "SRS (0-40)"}, "range": [0, SRS_MAX + 1]},
                "yaxis2": {"title": {"text": "item / subscale"}}})
    subtitle_dict(lay, traces, "Low items on goals & topics or approach/method point to disagreement about the goals or "
                               "the way of working, even when the total looks fine.")
    return figure(traces, lay)


_GRID: list = []


def _detail_grid() -> dict:
    """The two stacked panels of :func:`client_alliance_detail` (axes and panel titles), as
    ``make_subplots`` lays them out: computed once, a copy per figure."""
    if not _GRID:
        grid = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, row_heights=[0.55, 0.45],
                             subplot_titles=["SRS total", "What the total is made of"]).to_plotly_json()["layout"]
        grid.pop("template", None)
        _GRID.append(grid)
    return copy.deepcopy(_GRID[0])
