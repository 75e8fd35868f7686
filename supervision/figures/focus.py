"""Session-focus charts: each client's focus timeline, a caseload overview, clinicians against the
service, and the client's own rating of goals and method on on-goal versus off-goal sessions.

Builders take the tidy frames of :mod:`supervision.metrics.focus` and return a ``go.Figure``;
nothing is displayed here and no input is modified. Colours come only from
:mod:`supervision.figures.theme`; every category also has its own marker symbol, so the charts
read without colour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from supervision.figures.theme import OKABE_ITO, figure, layout, layout_dict, need_columns, plural, subtitle, subtitle_dict

_need = need_columns
_plural = plural
_subtitle = subtitle

__all__ = ["focus_timeline", "focus_caseload", "focus_clinician_comparison", "focus_alliance_chart",
           "CATEGORY_STYLE", "RATE_LABELS"]

#: Marker per ``focus_category``: (legend label, symbol, colour), in legend order.
CATEGORY_STYLE = {
    "on_goal": ("On an agreed goal", "circle", OKABE_ITO["bluish_green"]),
    "other_off_goal": ("Off goal (other topic, technique, process, admin)", "diamond", OKABE_ITO["orange"]),
    "check_in": ("Mainly check-in / week review", "square", OKABE_ITO["vermillion"]),
    "crisis": ("Crisis / risk (counted apart)", "star", OKABE_ITO["reddish_purple"]),
    "no_agreed_goals": ("Focus recorded, no agreed goals to judge by", "triangle-up-open", OKABE_ITO["blue"]),
    "not_recorded": ("Focus not recorded", "circle-open", OKABE_ITO["grey"]),
}
#: Panel titles of the per-clinician rates of :func:`supervision.metrics.focus.clinician_focus`.
RATE_LABELS = {
    "coverage_rate": "Goal coverage",
    "check_in_rate": "Mainly check-in",
    "drift_rate": "Drift off the goals",
    "unagreed_goal_rate": "Unagreed topic",
    "crisis_rate": "Crisis / risk",
    "agenda_rate": "Agenda set",
}


def _empty(title: str, text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return layout(fig, title)


def _text(values) -> np.ndarray:
    series = pd.Series(values, dtype="object")
    return series.where(series.notna(), "").astype(str).to_numpy()


# --------------------------------------------------------------------------------------------
# focus timeline
# --------------------------------------------------------------------------------------------

def _row_label(client_id: str, goals: str, recorded: bool, names: dict | None = None) -> str:
    names = names or {}
    codes = [g.strip() for g in goals.split(";") if g.strip()]
    shown = ", ".join(names.get(g, g.replace("_", " ")) for g in codes) if recorded and codes else "no agreed goals recorded"
    return f"{client_id} · {shown}"


def focus_timeline(
    focus: pd.DataFrame,
    *,
    clients: Sequence[str] | None = None,
    title: str = "Session focus by client",
) -> go.Figure:
    """One row per client, one marker per attended session, shaped and coloured by its focus.

    Parameters
    ----------
    focus : DataFrame
        Output of :func:`supervision.metrics.focus.session_focus` (usually one clinician's caseload).
    clients : sequence of str, optional
        Clients to show, in this order (default: every client in ``focus``, sorted).
    title : str
        Chart title; the numbers of clients and sessions are appended.

    Returns
    -------
    go.Figure
        One marker trace per ``focus_category`` present, in the order of :data:`CATEGORY_STYLE`
        (``name`` = its label, ``meta`` = the category): ``x`` = session number, ``y`` = the row
        label "client_id · agreed goals" (the client's agreed goals by their taxonomy labels,
        comma-separated, or "no agreed goals recorded"), first client on top. Hover: date, primary focus, secondary foci, the
        agreed goals among them, agenda set.
    """
    used = ["client_id", "session_number", "session_date", "agreed_goals", "goals_recorded", "focus_primary",
            "focus_label", "focus_secondary", "secondary_goals", "agenda_set", "focus_category"]
    _need(focus, "focus", used, "session_focus(sessions, clients, settings)")
    focus = focus[used]  # only the columns drawn: every selection below copies fewer
    present = sorted(pd.unique(focus["client_id"]).tolist())
    if clients is None:
        ids = present
    else:
        unknown = [c for c in clients if c not in set(present)]
        if unknown:
            raise ValueError(f"clients not in the focus frame: {', '.join(map(str, unknown))}. "
                             f"Known: {', '.join(map(str, present[:20]))}{' ...' if len(present) > 20 else ''}.")
        ids = list(dict.fromkeys(clients))
    if not ids:
        return _empty(f"{title} (0 clients)", "No attended sessions to show.")
    part = focus[focus["client_id"].isin(ids)]
    first = part.drop_duplicates("client_id").set_index("client_id")
    # Goals by their labels in the settings' focus taxonomy (the codes' labels as the frame carries them).
    known = focus.dropna(subset=["focus_primary", "focus_label"]).drop_duplicates("focus_primary")
    names = dict(zip(known["focus_primary"].astype(str), known["focus_label"].astype(str)))
    labels = {cid: _row_label(str(cid), str(first.at[cid, "agreed_goals"]) if pd.notna(first.at[cid, "agreed_goals"])
                              else "", bool(first.at[cid, "goals_recorded"]), names) for cid in ids}
    traces = []
    for cat, (label, symbol, colour) in CATEGORY_STYLE.items():
        sub = part[part["focus_category"] == cat]
        if sub.empty:
            continue
        agenda = sub["agenda_set"].astype("boolean")
        agenda_txt = np.where(agenda.isna(), "not recorded", np.where(agenda.fillna(False), "yes", "no"))
        primary = np.where(sub["focus_label"].notna(), _text(sub["focus_label"]),
                           np.where(sub["focus_primary"].notna(), _text(sub["focus_primary"]) + " (unknown code)",
                                    "—"))
        custom = np.column_stack([
            pd.to_datetime(sub["session_date"]).dt.strftime("%Y-%m-%d").to_numpy(dtype=object),
            primary, _text(sub["focus_secondary"]), _text(sub["secondary_goals"]), agenda_txt,
        ])
        traces.append({
            "type": "scatter", "x": sub["session_number"].to_numpy(), "y": [labels[c] for c in sub["client_id"]],
            "mode": "markers", "name": label, "meta": cat,
            "marker": {"symbol": symbol, "size": 11, "color": colour, "line": {"width": 1.5, "color": colour}},
            "customdata": custom,
            "hovertemplate": ("%{y}<br>session %{x} (%{customdata[0]}): " + label.lower()
                              + "<br>primary: %{customdata[1]}<br>secondary: %{customdata[2]}"
                              + "<br>agreed goals among them: %{customdata[3]}<br>agenda set: %{customdata[4]}"
                              + "<extra></extra>"),
        })
    n = len(ids)
    max_sn = int(part["session_number"].max())
    lay = layout_dict(f"{title} ({_plural(n, 'client')}, {_plural(len(part), 'session')})", height=max(380, 26 * n + 320))
    lay["yaxis"] = {"type": "category", "categoryorder": "array", "categoryarray": [labels[c] for c in ids],
                    "autorange": "reversed", "title": {"text": ""}}
    lay["xaxis"] = {"title": {"text": "Session number (attended sessions)"}, "dtick": 1 if max_sn <= 20 else 5,
                    "range": [0.4, max_sn + 0.6]}
    subtitle_dict(lay, traces, "Each row is a client with their agreed goals; each marker an attended session. "
                               "Circles: the main topic was an agreed goal;",
                               "squares: mainly a week review; diamonds: something else; stars: crisis. "
                               "A row without circles is a client whose goals are not being worked on.")
    return figure(traces, lay)


# --------------------------------------------------------------------------------------------
# caseload overview
# --------------------------------------------------------------------------------------------

def focus_caseload(
    client_focus: pd.DataFrame,
    *,
    clinician_focus_frame: pd.DataFrame | None = None,
    title: str = "Goal coverage and check-in share per client",
) -> go.Figure:
    """Per client: goal coverage (x) against check-in share (y), marked by neglected goals.

    Parameters
    ----------
    client_focus : DataFrame
        Output of :func:`supervision.metrics.focus.client_focus` (usually one clinician's clients).
    clinician_focus_frame : DataFrame, optional
        Output of :func:`supervision.metrics.focus.clinician_focus`; its ``service`` row draws
        dotted reference lines at the service's coverage and check-in rates.
    title : str
        Chart title; the number of clients is appended.

    Returns
    -------
    go.Figure
        Up to three marker traces (``meta`` in parentheses; the name ends with the number of
        clients, e.g. "No neglected goal (11)"): "A goal neglected in the last sessions"
        (``neglected``, x-shaped), "No neglected goal" (``ok``, circle), "Too few sessions to
        judge neglect" (``not_judged``, open circle). ``x`` = ``goal_coverage``,
        ``y`` = ``check_in_share``, marker area grows with the number of sessions with a focus
        recorded; ``text`` = client ids. Clients without agreed goals (coverage unknown) or
        without a recorded focus are not plotted; an annotation counts them.
    """
    _need(client_focus, "client_focus", ["client_id", "goals_recorded", "goal_coverage", "check_in_share",
                                         "n_focus_recorded", "neglect_judged", "n_neglected_goals",
                                         "neglected_goals", "agreed_goals", "n_sessions"],
          "client_focus(session_focus(...))")
    cf = client_focus
    shown = cf[cf["goal_coverage"].notna() & cf["check_in_share"].notna()]
    n_hidden = len(cf) - len(shown)
    if cf.empty:
        return _empty(f"{title} (0 clients)", "No clients with attended sessions.")
    judged = shown["neglect_judged"].astype(bool)
    neg = pd.array(shown["n_neglected_goals"], dtype="Int64").fillna(0).to_numpy() > 0
    groups = (("neglected", "A goal neglected in the last sessions", "x", OKABE_ITO["vermillion"], judged & neg),
              ("ok", "No neglected goal", "circle", OKABE_ITO["bluish_green"], judged & ~neg),
              ("not_judged", "Too few sessions to judge neglect", "circle-open", OKABE_ITO["grey"], ~judged))
    fig = go.Figure()
    for meta, label, symbol, colour, mask in groups:
        sub = shown[np.asarray(mask, dtype=bool)]
        if sub.empty:
            continue
        size = 7 + 3 * np.sqrt(sub["n_focus_recorded"].to_numpy(dtype=float))
        fig.add_trace(go.Scatter(
            x=sub["goal_coverage"].to_numpy(dtype=float), y=sub["check_in_share"].to_numpy(dtype=float),
            mode="markers", name=f"{label} ({len(sub)})", meta=meta, text=sub["client_id"].astype(str).to_numpy(),
            marker={"symbol": symbol, "size": size, "color": colour, "opacity": 0.8,
                    "line": {"width": 2, "color": colour}},
            customdata=np.column_stack([sub["n_focus_recorded"].to_numpy(), _text(sub["agreed_goals"]),
                                        _text(sub["neglected_goals"]), sub["n_sessions"].to_numpy()]),
            hovertemplate=("%{text} (goals: %{customdata[1]})<br>on goal %{x:.0%}, check-in %{y:.0%} of "
                           "%{customdata[0]} sessions with a focus recorded (%{customdata[3]} attended)"
                           "<br>neglected: %{customdata[2]}<extra></extra>"),
        ))
    if clinician_focus_frame is not None:
        _need(clinician_focus_frame, "clinician_focus_frame", ["scope", "coverage_rate", "check_in_rate"],
              "clinician_focus(focus)")
        svc = clinician_focus_frame[clinician_focus_frame["scope"] == "service"]
        if len(svc):
            fig.add_vline(x=float(svc["coverage_rate"].iloc[0]), line_dash="dot", line_color=OKABE_ITO["grey"],
                          annotation_text="service coverage", annotation_position="bottom left")
            fig.add_hline(y=float(svc["check_in_rate"].iloc[0]), line_dash="dot", line_color=OKABE_ITO["grey"],
                          annotation_text="service check-in rate", annotation_position="top right")
    if n_hidden:
        fig.add_annotation(text=f"Not shown: {_plural(n_hidden, 'client')} without agreed goals or a recorded focus.",
                           showarrow=False, x=0, y=-0.22, xref="paper", yref="paper", xanchor="left")
    layout(fig, f"{title} ({_plural(len(shown), 'client')})", height=560)
    fig.update_xaxes(title_text="Goal coverage: sessions whose main topic was an agreed goal", tickformat=".0%",
                     range=[-0.05, 1.05])
    top = float(shown["check_in_share"].max()) if len(shown) else 0.0
    fig.update_yaxes(title_text="Sessions mainly a week review", tickformat=".0%", range=[-0.04, max(top, 0.2) + 0.06])
    fig.update_layout(margin_b=90)
    return _subtitle(fig, "Bottom right: focused work; top left: sessions spent reviewing the week.",
                     "Bigger markers rest on more sessions; a client with one or two sessions can sit anywhere.")


# --------------------------------------------------------------------------------------------
# clinicians against the service
# --------------------------------------------------------------------------------------------

_RATE_DENOM = {"coverage_rate": ("n_on_goal", "n_goal_judged"), "check_in_rate": ("n_check_in", "n_focus_recorded"),
               "drift_rate": ("n_changes", "n_pairs"), "unagreed_goal_rate": ("n_unagreed_goal_area", "n_goal_judged"),
               "crisis_rate": ("n_crisis", "n_focus_recorded"), "agenda_rate": ("n_agenda_set", "n_agenda_recorded")}


def focus_clinician_comparison(
    clinician_focus: pd.DataFrame,
    *,
    clinician_id: str | None = None,
    rates: Sequence[str] = ("coverage_rate", "check_in_rate"),
    title: str = "Session focus: clinicians and the service",
) -> go.Figure:
    """Per-clinician focus rates with Wilson intervals, beside the whole service, one panel per rate.

    Parameters
    ----------
    clinician_focus : DataFrame
        Output of :func:`supervision.metrics.focus.clinician_focus`.
    clinician_id : str, optional
        The supervisee to highlight (large open circle) among the other clinicians.
    rates : sequence of str, default ("coverage_rate", "check_in_rate")
        Rates to show, one panel each; any of :data:`RATE_LABELS`.
    title : str
        Chart title; the numbers of clinicians and clients are appended.

    Returns
    -------
    go.Figure
        Per panel (``xaxis``, ``xaxis2``, ...): trace "Clinicians" (``x`` = rate, ``y`` =
        clinician ids, asymmetric error bars to the Wilson bounds), trace "Whole service"
        (diamond) and, with ``clinician_id``, a trace "<id> (this supervisee)". Each trace's
        ``meta`` is the rate name. A dotted vertical line (layout shape) marks the service rate
        in each panel. Clinicians whose denominator is 0 are left out of that panel.
    """
    rates = list(rates)
    bad = [r for r in rates if r not in RATE_LABELS]
    if not rates or bad:
        raise ValueError(f"rates must be a non-empty list of {', '.join(RATE_LABELS)}; got {rates!r}.")
    need = ["scope", "n_clients"]
    for r in rates:
        need += [r, f"{r}_lower", f"{r}_upper", *_RATE_DENOM[r]]
    _need(clinician_focus, "clinician_focus", list(dict.fromkeys(need)), "clinician_focus(focus)")
    clin_all = clinician_focus[clinician_focus["scope"] != "service"].sort_values("scope")
    if clinician_id is not None and clinician_id not in set(clin_all["scope"]):
        raise ValueError(f"clinician_id {clinician_id!r} is not in clinician_focus; "
                         f"known: {', '.join(map(str, clin_all['scope']))}.")
    fig = make_subplots(rows=1, cols=len(rates), shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[RATE_LABELS[r] for r in rates])
    for j, r in enumerate(rates, start=1):
        num, den = _RATE_DENOM[r]
        frame = clinician_focus[clinician_focus[den] > 0]
        clin = frame[frame["scope"] != "service"].sort_values("scope")
        service = frame[frame["scope"] == "service"]

        def add(part: pd.DataFrame, name: str, symbol: str, colour: str, size: int, legend: bool) -> None:
            rate = part[r].to_numpy(dtype=float)
            fig.add_trace(go.Scatter(
                x=rate, y=part["scope"].astype(str).replace({"service": "Whole service"}).to_numpy(),
                mode="markers", name=name, meta=r, legendgroup=name, showlegend=legend,
                marker={"symbol": symbol, "size": size, "color": colour, "line": {"width": 2, "color": colour}},
                error_x={"type": "data", "symmetric": False, "color": colour,
                         "array": part[f"{r}_upper"].to_numpy(dtype=float) - rate,
                         "arrayminus": rate - part[f"{r}_lower"].to_numpy(dtype=float)},
                customdata=np.column_stack([part[num], part[den], part["n_clients"], part[f"{r}_lower"],
                                            part[f"{r}_upper"]]),
                hovertemplate=("%{y}: %{customdata[0]} of %{customdata[1]} (%{x:.0%}; 95% CI "
                               "%{customdata[3]:.0%}-%{customdata[4]:.0%}), %{customdata[2]} clients<extra></extra>"),
            ), row=1, col=j)

        add(clin, "Clinicians", "circle", OKABE_ITO["blue"], 9, j == 1)
        if len(service):
            add(service, "Whole service", "diamond", OKABE_ITO["black"], 12, j == 1)
            fig.add_vline(x=float(service[r].iloc[0]), line_dash="dot", line_color=OKABE_ITO["grey"], row=1, col=j)
        if clinician_id is not None and clinician_id in set(clin["scope"]):
            add(clin[clin["scope"] == clinician_id], f"{clinician_id} (this supervisee)", "circle-open",
                OKABE_ITO["vermillion"], 16, j == 1)
        fig.update_xaxes(tickformat=".0%", rangemode="tozero", row=1, col=j)
    svc_all = clinician_focus[clinician_focus["scope"] == "service"]
    n_clients = int(svc_all["n_clients"].iloc[0]) if len(svc_all) else int(clin_all["n_clients"].sum())
    layout(fig, f"{title} ({_plural(len(clin_all), 'clinician')}, {_plural(n_clients, 'client')})",
           height=max(340, 28 * (len(clin_all) + 1) + 220))
    fig.update_yaxes(type="category", autorange="reversed")
    return _subtitle(fig, "Dots: share of sessions (focus changes: of consecutive session pairs); bars: 95% Wilson "
                          "intervals; dotted line: the whole service.",
                     "Sessions of one client are not independent, so the bars are too narrow: compare overlap, not "
                     "ranks, and mind the number of clients.")


# --------------------------------------------------------------------------------------------
# link with the client's rating
# --------------------------------------------------------------------------------------------

def focus_alliance_chart(
    link: pd.DataFrame,
    *,
    measure: str = "goals_topics",
    clinician_id: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """The client's rating on on-goal versus off-goal sessions: means (left), difference (right).

    Parameters
    ----------
    link : DataFrame
        Output of :func:`supervision.metrics.focus.focus_alliance_link`.
    measure : str, default "goals_topics"
        Which measure (a value of ``link["measure"]``): ``goals_topics``, ``approach_method``,
        ``wai_goal`` or ``wai_task``.
    clinician_id : str, optional
        The supervisee to highlight (open circle on the difference panel).
    title : str, optional
        Chart title (default: the measure's label); the number of clinicians is appended.

    Returns
    -------
    go.Figure
        Left panel (``xaxis``): trace "On-goal sessions" (circle, ``meta`` "on_goal") and trace
        "Off-goal sessions" (diamond, ``meta`` "off_goal"), ``x`` = mean score, ``y`` = scope
        ("Whole service" for the service), and a grey connecting line per scope (trace
        "Gap", ``meta`` "gap"). Right panel (``xaxis2``): trace "Difference (off - on)"
        (``meta`` "difference"), ``x`` = ``difference`` with the Welch interval as error bars,
        only for rows with ``estimated``; with ``clinician_id`` a trace "<id> (this supervisee)".
        A dotted vertical line at 0 (layout shape). Scopes with no score on the measure (e.g.
        clinicians who record SRS totals only) are left out and named in an annotation.
    """
    _need(link, "link", ["scope", "measure", "measure_label", "n_on_goal", "n_off_goal", "mean_on_goal",
                         "mean_off_goal", "difference", "difference_lower", "difference_upper", "estimated"],
          "focus_alliance_link(focus, alliance)")
    available = list(pd.unique(link["measure"]))
    if measure not in available:
        raise ValueError(f"measure {measure!r} is not in the link table; "
                         f"available: {', '.join(map(str, available)) or '(none)'}.")
    part = link[link["measure"] == measure].copy()
    known = set(part["scope"])
    if clinician_id is not None and clinician_id not in known - {"service"}:
        raise ValueError(f"clinician_id {clinician_id!r} is not in the link table; "
                         f"known: {', '.join(sorted(map(str, known - {'service'})))}.")
    label = str(part["measure_label"].iloc[0])
    no_data = part[part["mean_on_goal"].isna() & part["mean_off_goal"].isna()]
    part = part[~part.index.isin(no_data.index)]
    part["row"] = part["scope"].astype(str).replace({"service": "Whole service"})
    clin = part[part["scope"] != "service"]
    title = title or f"{label}: on-goal vs off-goal sessions"
    order = [*sorted(clin["row"].tolist()), "Whole service"]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06, column_widths=[0.55, 0.45],
                        subplot_titles=["Mean rating", "Difference, off-goal minus on-goal (95% CI)"])
    both = part[part["mean_on_goal"].notna() & part["mean_off_goal"].notna()]
    xs, ys = [], []
    for _, r in both.iterrows():
        xs += [r["mean_on_goal"], r["mean_off_goal"], None]
        ys += [r["row"], r["row"], None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="Gap", meta="gap", showlegend=False, hoverinfo="skip",
                             line={"color": OKABE_ITO["grey"], "width": 2}), row=1, col=1)
    for g, name, symbol, colour in (("on_goal", "On-goal sessions", "circle", OKABE_ITO["bluish_green"]),
                                    ("off_goal", "Off-goal sessions", "diamond", OKABE_ITO["orange"])):
        sub = part[part[f"mean_{g}"].notna()]
        fig.add_trace(go.Scatter(
            x=sub[f"mean_{g}"].to_numpy(dtype=float), y=sub["row"].to_numpy(), mode="markers", name=name, meta=g,
            marker={"symbol": symbol, "size": 11, "color": colour, "line": {"width": 1.5, "color": colour}},
            customdata=sub[f"n_{g}"].to_numpy(),
            hovertemplate=f"%{{y}}, {name.lower()}: mean %{{x:.2f}} (%{{customdata}} sessions)<extra></extra>",
        ), row=1, col=1)

    def add_diff(sub: pd.DataFrame, name: str, meta: str, symbol: str, colour: str, size: int) -> None:
        d = sub["difference"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(
            x=d, y=sub["row"].to_numpy(), mode="markers", name=name, meta=meta,
            marker={"symbol": symbol, "size": size, "color": colour, "line": {"width": 2, "color": colour}},
            error_x={"type": "data", "symmetric": False, "color": colour,
                     "array": sub["difference_upper"].to_numpy(dtype=float) - d,
                     "arrayminus": d - sub["difference_lower"].to_numpy(dtype=float)},
            customdata=np.column_stack([sub["difference_lower"], sub["difference_upper"], sub["n_on_goal"],
                                        sub["n_off_goal"]]),
            hovertemplate=("%{y}: %{x:+.2f} (95% CI %{customdata[0]:+.2f} to %{customdata[1]:+.2f}); "
                           "%{customdata[2]} on-goal, %{customdata[3]} off-goal sessions<extra></extra>"),
        ), row=1, col=2)

    est = part[part["estimated"].astype(bool)]
    add_diff(est, "Difference (off - on)", "difference", "square", OKABE_ITO["blue"], 9)
    if clinician_id is not None:
        add_diff(est[est["scope"] == clinician_id], f"{clinician_id} (this supervisee)", "supervisee",
                 "circle-open", OKABE_ITO["vermillion"], 16)
    fig.add_vline(x=0, line_dash="dot", line_color=OKABE_ITO["grey"], row=1, col=2)
    n_not = int((~part["estimated"].astype(bool)).sum())
    if len(no_data):
        fig.add_annotation(text="No scores on this measure: " + ", ".join(sorted(map(str, no_data["scope"]))),
                           showarrow=False, x=0, y=-0.3, xref="paper", yref="paper", xanchor="left")
    layout(fig, f"{title} ({_plural(len(clin), 'clinician')})", height=max(380, 28 * len(order) + 260))
    fig.update_layout(margin_b=100)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=order, autorange="reversed")
    fig.update_xaxes(title_text=label, row=1, col=1)
    fig.update_xaxes(title_text="points" + (f" ({_plural(n_not, 'row')} with too few sessions: no difference)"
                                            if n_not else ""),
                     row=1, col=2)
    return _subtitle(fig, "Do clients rate the session lower when it was off their agreed goals? Left of zero: lower "
                          "off goal.",
                     "Intervals treat sessions as independent (they are not), so they are too narrow; "
                     "off-goal sessions are not chosen at random, so a gap is a prompt, not a cause.")
