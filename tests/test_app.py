"""The workbook app headlessly: the remembered choice, every page, and every figure against the API.

Oracles: plain pandas on the loaded tables (sessions, attendance, scores), and the metrics API
(:func:`supervision.metrics.outcome.track_status`, :func:`supervision.agenda.build_agenda`) for the
same supervisee and client.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from supervision.remembered import ENV_VAR, Remembered, load_remembered, state_path


@pytest.fixture
def state(tmp_path, monkeypatch):
    p = tmp_path / "state.json"
    monkeypatch.setenv(ENV_VAR, str(p))
    return p


# ---------------------------------------------------------------- the remembered choice


def test_state_path_env_override(state):
    assert state_path() == state


def test_state_path_default_is_outside_the_project(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert state_path() == tmp_path / "supervision-workbook" / "state.json"


def test_remembered_round_trip_and_bad_files(state):
    assert Remembered.read() == Remembered()  # nothing remembered: the demo
    Remembered(data="/x", supervisee="T03", page="caseload").write()
    assert Remembered.read() == Remembered(data="/x", supervisee="T03", page="caseload")
    state.write_text("{not json")
    assert Remembered.read() == Remembered()
    state.write_text(json.dumps(["a list"]))
    assert Remembered.read() == Remembered()
    state.write_text(json.dumps({"supervisee": "T02", "unknown": 1}))
    assert Remembered.read().supervisee == "T02"


def test_missing_folder_and_bad_settings_fall_back_with_a_message(state, tmp_path):
    Remembered(data=str(tmp_path / "gone"), settings=str(tmp_path / "nope.toml"), supervisee="T02").write()
    cl, rem, note = load_remembered()
    assert cl.usable and len(cl.clients) > 0
    assert rem.data == "" and rem.settings == "" and rem.supervisee == "T02"
    assert "is not there any more" in note and "demo clinic" in note
    assert "settings could not be used" in note


# ---------------------------------------------------------------- the app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    p = tmp_path_factory.mktemp("app") / "state.json"
    mp.setenv(ENV_VAR, str(p))
    from supervision.widgets.app import WorkbookApp

    a = WorkbookApp()
    a.state_path = p
    yield a
    mp.undo()


def test_opening_writes_nothing_and_shows_the_agenda(app):
    assert not app.state_path.exists(), "opening the app must not write the remembered choice"
    assert app.nav.value == "supervision"
    assert "Agenda for" in app.pages["supervision"].views[0].header.value
    assert app.error.value == ""


def test_every_page_builds_without_error_and_follows_the_supervisee(app):
    from supervision.widgets.app import PAGES

    for key, _title in PAGES:
        app.nav.value = key
        assert app.error.value == "", (key, app.error.value)
        dash = app.pages[key]
        err = getattr(dash, "error", None)
        assert err is None or err.value == "", (key, err.value)
    other = [v for _, v in app.pages["start"].supervisee.options if v != app.supervisee][0]
    app.nav.value = "alliance"
    app.pages["alliance"].supervisee.value = other
    saved = json.loads(app.state_path.read_text())
    assert saved["supervisee"] == other and saved["page"] == "alliance"
    for key in ("supervision", "caseload", "client", "outcome"):
        app.nav.value = key
        assert app.pages[key].supervisee.value == other
        assert app.pages[key].last_slice.selection.supervisee == other


def _plain_overview(cl, me):
    """The Caseload page's numbers, recomputed with plain pandas from the loaded sessions."""
    s = cl.sessions[cl.sessions["clinician_id"] == me].sort_values(["client_id", "session_date"])
    att = s[s["attendance"] == "attended"]
    ors, srs = att["ors_total"], att["srs_total"]  # (the demo has every total; *_prorated is a flag)
    g = att.assign(ors=ors, srs=srs).groupby("client_id")
    return pd.DataFrame({
        "p_sessions": g.size(),
        "p_last_seen": g["session_date"].max(),
        "ors_latest": g["ors"].apply(lambda v: v.dropna().iloc[-1] if v.notna().any() else np.nan),
        "ors_change": g["ors"].apply(lambda v: v.dropna().iloc[-1] - v.dropna().iloc[0] if v.notna().sum() >= 2 else np.nan),
        "srs_latest": g["srs"].apply(lambda v: v.dropna().iloc[-1] if v.notna().any() else np.nan),
    })


def test_caseload_page_numbers_equal_plain_recomputation(app):
    app.nav.value = "caseload"
    dash = app.pages["caseload"]
    me = dash.selection.supervisee
    cl = app.shared.caseload
    ov = dash.view.overview.set_index("client_id")
    assert set(ov.index) == set(cl.clients.loc[cl.clients["clinician_id"] == me, "client_id"])
    plain = _plain_overview(cl, me)
    both = ov.join(plain, how="left")
    assert (both["sessions"] == both["p_sessions"].fillna(0)).all()
    seen = both.dropna(subset=["p_last_seen"])
    assert (pd.to_datetime(seen["last_seen"]) == seen["p_last_seen"]).all()
    assert both.loc[both["p_last_seen"].isna(), "last_seen"].isna().all()
    np.testing.assert_allclose(both["outcome_latest"], both["ors_latest"], equal_nan=True)
    np.testing.assert_allclose(both["outcome_change"], both["ors_change"], equal_nan=True)
    np.testing.assert_allclose(both["alliance_latest"], both["srs_latest"], equal_nan=True)
    # The shown table carries the same numbers (one row per client, in the sorted order).
    shown = re.findall(r"data-client='(C\d+)'", dash.view.table.value)
    assert shown == dash.view.overview["client_id"].tolist()


def test_caseload_status_and_completion_equal_the_api(app):
    from supervision.agenda import build_agenda
    from supervision.metrics import outcome as om

    app.nav.value = "caseload"
    dash = app.pages["caseload"]
    me, cl = dash.selection.supervisee, app.shared.caseload
    ov = dash.view.overview.set_index("client_id")
    ag = build_agenda(cl, app.shared.tables, clinician_id=me)
    risk = set(ag.loc[ag["section"] == "risk", "client_id"])
    assert set(ov.index[ov["status"] == "risk"]) == risk
    track = om.track_status(cl.sessions, clients=cl.clients, instrument="ors", settings=cl.settings,
                            **{k: v for k, v in om.outcome_options(cl.settings, om.track_status).items() if k != "instrument"})
    track = track.set_index("client_id")["status"]
    for cid, r in ov.iterrows():
        if r["status"] in ("not_on_track", "at_risk", "on_track", "too_early"):
            assert track.get(cid) == r["status"], cid
    # Sorted by concern, following the agenda: risk; today's clients in the agenda's order; anyone else
    # not on track or at risk; the agenda's further items in its order; then the rest.
    order = ov.index.tolist()
    first = ag.sort_values("rank").drop_duplicates("client_id")
    today = first.loc[first["section"].isin(["risk", "today"]), "client_id"].tolist()
    assert order[:len(today)] == today
    off = [c for c in order if c not in today and ov.at[c, "status"] in ("not_on_track", "at_risk")]
    assert order[len(today):len(today) + len(off)] == off
    more = [c for c in first["client_id"] if c not in today and c not in off]
    assert order[len(today) + len(off):len(today) + len(off) + len(more)] == more
    rest = ov.loc[order[len(today) + len(off) + len(more):], "concern"].tolist()
    assert rest == sorted(rest)
    # Measurement completion: attended sessions with an ORS / an SRS, by plain pandas.
    s = cl.sessions[(cl.sessions["clinician_id"] == me) & (cl.sessions["attendance"] == "attended")]
    n_ors, n_srs = int(s["ors_total"].notna().sum()), int(s["srs_total"].notna().sum())
    assert f"({n_ors} of {len(s)})" in dash.view.completion.value and f"({n_srs})" in dash.view.completion.value


def test_caseload_status_lost_contact_by_plain_pandas(app):
    """An open episode with no attended session for [engagement] lost_contact_days (from the export's last
    session) is "lost contact", not "too early" or "on track" (docs/methods.md §2.7); risk, not on track and
    at risk keep their status. Oracle: plain pandas over the loaded tables."""
    app.nav.value = "caseload"
    dash = app.pages["caseload"]
    before = dash.supervisee.value
    dash.supervisee.value = "T01"
    me, cl = dash.selection.supervisee, app.shared.caseload
    days = cl.rules.engagement.lost_contact_days
    ref = cl.sessions["session_date"].max()
    c = cl.clients[cl.clients["clinician_id"] == me].set_index("client_id")
    att = cl.sessions[(cl.sessions["clinician_id"] == me) & (cl.sessions["attendance"] == "attended")]
    last = att.groupby("client_id")["session_date"].max().reindex(c.index).fillna(c["start_date"])
    lost = c["end_date"].isna() & ((ref - last).dt.days >= days)
    ov = dash.view.overview.set_index("client_id")
    assert lost.sum() >= 3  # the demo supervisee has clients gone quiet
    for cid, r in ov.iterrows():
        if lost[cid]:
            assert r["status"] in ("lost_contact", "risk", "not_on_track", "at_risk"), cid
        else:
            assert r["status"] != "lost_contact", cid
        if r["status"] in ("too_early", "on_track", "not_measured", "no_reference"):
            assert not lost[cid] and pd.isna(c.at[cid, "end_date"]), cid
    # C00135: one session on 28 Oct 2024, open, listed elsewhere as an episode to close
    assert ov.at["C00135", "status"] == "lost_contact"
    assert "data-client='C00135' data-status='lost_contact'" in dash.view.table.value
    # the legend explains the status with the setting's number, and ranks it after at risk, before on track
    assert f"no attended session for {days} days or more" in dash.view.legend.value
    from supervision.widgets.caseload import STATUS

    assert STATUS["at_risk"][2] < STATUS["lost_contact"][2] < STATUS["on_track"][2]
    dash.supervisee.value = before


def test_caseload_sort_orders(app):
    from supervision.widgets.caseload import sort_overview

    ov = app.pages["caseload"].view.overview
    by = sort_overview(ov, "last_seen")
    seen = by["last_seen"].dropna()
    assert seen.is_monotonic_increasing
    by = sort_overview(ov, "sessions")
    assert by["sessions"].is_monotonic_decreasing
    dash = app.pages["caseload"]
    dash.sort.value = "client_id"
    assert re.findall(r"data-client='(C\d+)'", dash.view.table.value) == sorted(ov["client_id"])
    dash.sort.value = "concern"


def test_client_page_figures_equal_the_api(app):
    from supervision.metrics import outcome as om

    app.nav.value = "client"
    dash = app.pages["client"]
    cl = app.shared.caseload
    view = dash.views[0]
    # Opens on the client of most concern (the Caseload page's first row).
    app.nav.value = "caseload"
    first = app.pages["caseload"].view.overview["client_id"].iloc[0]
    app.nav.value = "client"
    for cid in dict.fromkeys([first, *dash.overview["client_id"].head(6)]):
        dash.pick.value = cid
        assert dash.selection.client == cid
        s = cl.sessions[cl.sessions["client_id"] == cid].sort_values("session_date")
        # Attendance: one marker per scheduled session, by attendance.
        att = view.attendance.chart.figure
        got = {t.meta: len(t.x) for t in att.data}
        assert got == s["attendance"].value_counts().to_dict(), cid
        # Outcome: the plotted scores are the API's per-session scores for this client.
        if view.outcome.chart.figure is not None:
            scores = om.session_scores(cl.sessions[cl.sessions["client_id"] == cid], instrument="ors", settings=cl.settings)
            tr = next(t for t in view.outcome.chart.figure.data if t.name == "Scores")
            np.testing.assert_allclose(np.asarray(tr.y, dtype=float), scores.sort_values("session_number")["score"].dropna().to_numpy())
        # Alliance: the plotted SRS totals are the client's recorded SRS totals, session by session.
        if view.alliance.chart.figure is not None:
            a = s[s["attendance"] == "attended"]
            srs = a["srs_total"].dropna().to_numpy()
            tr = next(t for t in view.alliance.chart.figure.data if t.name == "SRS total")
            np.testing.assert_allclose(np.asarray(tr.y, dtype=float)[~np.isnan(np.asarray(tr.y, dtype=float))], srs)
        # Focus: one marker per attended session with a recorded focus.
        if view.focus.chart.figure is not None:
            n = sum(len(t.x) for t in view.focus.chart.figure.data)
            a = s[s["attendance"] == "attended"]
            assert n == int(a["focus_primary"].notna().sum()), cid
        assert f"Client {cid}" in view.facts.value


def test_open_client_from_the_caseload_page(app):
    app.nav.value = "caseload"
    dash = app.pages["caseload"]
    cid = dash.view.overview["client_id"].iloc[-1]
    dash.open.value = cid
    assert app.nav.value == "client"
    assert app.pages["client"].selection.client == cid


def test_goal_labels_use_the_taxonomy():
    from supervision.config import load_settings
    from supervision.widgets.client import goal_labels

    st = load_settings()
    assert goal_labels("anxiety;work_study", st) == "Anxiety / worry, Work / study"
    assert goal_labels(None, st) == "none recorded"


def test_attendance_timeline_figure():
    from supervision.figures.engagement import attendance_timeline

    s = pd.DataFrame({"client_id": ["a"] * 4 + ["b"], "session_date": pd.to_datetime(
        ["2025-01-01", "2025-01-08", "2025-01-15", "2025-01-22", "2025-01-01"]),
        "attendance": ["attended", "no_show", "attended", "cancelled", "attended"]})
    fig = attendance_timeline(s, client_id="a", start_date="2025-01-01")
    assert {t.meta: len(t.x) for t in fig.data} == {"attended": 2, "no_show": 1, "cancelled": 1}
    assert "2 attended" in fig.layout.title.text


# ---------------------------------------------------------------- colleagues unnamed


def _figures(dash):
    """Every figure the dashboard's views hold, after drawing every tab."""
    for i in range(len(dash.views)):
        dash._draw(i)
    figs = []
    for v in dash.views:
        for part in vars(v).values():
            f = getattr(part, "figure", None)
            if f is not None:
                figs.append(f)
    return figs


@pytest.mark.parametrize("name_colleagues", [False, True])
def test_colleagues_are_unnamed_unless_the_setting_names_them(name_colleagues):
    from supervision.config import load_settings
    from supervision.io import load_caseload
    from supervision.widgets.adaptation import AdaptationDashboard
    from supervision.widgets.alliance import AllianceDashboard
    from supervision.widgets.focus import FocusDashboard
    from supervision.widgets.outcome import OutcomeDashboard

    cl = load_caseload(settings=load_settings({"privacy": {"name_colleagues": name_colleagues}}))
    ids = sorted(cl.clinicians["clinician_id"].astype(str))
    me = ids[2]
    others = re.compile(r"(?<!\w)(" + "|".join(c for c in ids if c != me) + r")(?!\w)")
    seen_other = False
    for cls in (AllianceDashboard, FocusDashboard, OutcomeDashboard, AdaptationDashboard):
        dash = cls(cl, supervisee=me)
        for fig in _figures(dash):
            text = fig.to_json()
            found = others.findall(text)
            if name_colleagues:
                seen_other |= bool(found)
            else:
                assert not found, (cls.__name__, fig.layout.title.text, sorted(set(found)))
                if "colleague" in text:
                    seen_other = True
    assert seen_other, "no comparison with colleagues was drawn at all"


def test_unname_colleagues_keeps_the_supervisee_and_the_service():
    import plotly.graph_objects as go

    from supervision.figures.colleagues import unname_colleagues

    fig = go.Figure(go.Scatter(x=[0.1, 0.2, 0.3, 0.4], y=["T01", "T02", "T03", "Whole service"], text=["T01", "T02", "T03", ""]))
    fig.update_layout(title_text="No estimate: T02 (3), T03 (4)")
    unname_colleagues(fig, ["T01", "T02", "T03"], "T01")
    y = list(fig.data[0].y)
    assert y[0] == "T01" and y[3] == "Whole service"
    assert y[1].startswith("colleague") and y[2].startswith("colleague") and y[1] != y[2]
    assert "T02" not in fig.layout.title.text and "T03" not in fig.layout.title.text


def test_caterpillar_says_so_when_it_carries_no_information():
    from supervision.figures.outcome import caterpillar_plot

    eff = pd.DataFrame({"clinician_id": ["A", "B", "C"], "n_cases": [20, 18, 16], "estimated": [True] * 3,
                        "effect": [0.0, 1e-15, -1e-15], "effect_lower": [-0.9] * 3, "effect_upper": [0.9] * 3})
    fig = caterpillar_plot(eff)
    assert not any(len(t.x or []) for t in fig.data)
    assert "cannot tell these clinicians apart" in fig.layout.annotations[0].text
    eff.loc[0, "effect"] = 2.0
    fig = caterpillar_plot(eff)
    assert len(fig.data[0].x) == 3


def _rendered_texts(widget):
    """Every HTML text and every figure/output bundle under ``widget`` (what the page shows as tables and charts)."""
    import ipywidgets as w

    stack, seen = [widget], set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, w.HTML):
            yield x.value
        if isinstance(x, w.Output):
            for o in x.outputs:
                yield json.dumps(o.get("data", {}))
        stack.extend(getattr(x, "children", None) or ())


@pytest.mark.parametrize("name_colleagues", [False, True])
def test_no_colleague_id_in_any_page_or_tab(tmp_path, monkeypatch, name_colleagues):
    """Every page and every tab of the app, drawn for two supervisees: with ``name_colleagues = false`` no
    other clinician's id appears in any HTML table or chart; with ``true`` they do (the scan can fail)."""
    from supervision.widgets.app import PAGES, WorkbookApp

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "state.json"))
    settings = tmp_path / "settings.toml"
    settings.write_text(f"[privacy]\nname_colleagues = {'true' if name_colleagues else 'false'}\n")
    Remembered(settings=str(settings)).write()
    app = WorkbookApp()
    assert app.message.value == "", app.message.value
    ids = sorted(app.shared.caseload.clinicians["clinician_id"].astype(str))
    named = set()
    for me in (ids[0], ids[2]):
        app.set_supervisee(me)
        others = re.compile(r"(?<![\w-])(" + "|".join(re.escape(c) for c in ids if c != me) + r")(?![\w-])")
        for key, _title in PAGES:
            app.nav.value = key
            page = app.pages[key]
            for i in range(len(getattr(page, "views", []) or [])):
                page._draw(i)
            texts = list(_rendered_texts(app.widgets[key]))
            assert texts, key
            found = {c for t in texts for c in others.findall(t)}
            named |= found
            if not name_colleagues:
                assert not found, (me, key, sorted(found))
    assert bool(named) == name_colleagues


def test_identity_values_are_shown_with_their_labels():
    """Group values read as the settings' [identity.labels] (``gay_lesbian`` -> "gay or lesbian") in the
    Adaptation page's picker, texts and charts; a settings file can relabel them."""
    from supervision.config import load_settings, value_label
    from supervision.io import load_caseload
    from supervision.widgets.adaptation import AdaptationDashboard

    assert value_label("gay_lesbian") == "gay or lesbian" and value_label("declined") == "declined to say"
    assert value_label("a_new_value") == "a new value"
    st = load_settings({"identity": {"labels": {"gay_lesbian": "gay / lesbian"}}})
    assert value_label("gay_lesbian", st) == "gay / lesbian"
    cl = load_caseload()
    dash = AdaptationDashboard(cl, supervisee="T03")
    dash.dimension.value = "sexual_orientation"
    labels = dict((v, k) for k, v in dash.group.options)
    assert labels["gay_lesbian"] == "gay or lesbian" and labels["declined"] == "declined to say"
    dash.group.value = "gay_lesbian"
    for i in range(len(dash.views)):
        dash._draw(i)
    shown = " ".join(_rendered_texts(dash.widget))
    assert "gay or lesbian" in shown
    assert "gay_lesbian" not in shown.replace("value=\"gay_lesbian\"", "") and "gay lesbian" not in shown
    assert dash.error.value == ""


def test_client_page_sentences_start_with_a_capital(app):
    app.nav.value = "client"
    facts = app.pages["client"].views[0].facts.value
    assert "<p>Episode from " in facts and "<p>episode" not in facts


def _fig(page, view_class: str, part: str = "chart"):
    v = next(v for v in page.views if type(v).__name__ == view_class)
    page._draw(page.views.index(v))
    return getattr(v, part).figure


def _trace(fig, prefix: str):
    return next(t for t in fig.data if (t.name or "").startswith(prefix))


def test_every_page_figure_equals_the_api(app):
    """The charts of Supervision hour, Alliance, Session focus, Outcome and Adaptation hold the numbers of
    the metrics API (or of plain pandas) for the same supervisee (whole export, all episodes)."""
    from supervision.metrics import adaptation as am
    from supervision.metrics.tables import metric_tables

    cl = app.shared.caseload
    me = sorted(cl.clinicians["clinician_id"].astype(str))[0]
    app.set_supervisee(me)
    tables = metric_tables(cl)
    s = cl.sessions
    att = s[(s["clinician_id"] == me) & (s["attendance"] == "attended")]

    # Supervision hour, Caseload tab: the supervisee's bars rest on their ended episodes (plain pandas).
    app.nav.value = "supervision"
    fig = _fig(app.pages["supervision"], "CaseloadView")
    ended = int((cl.clients["clinician_id"].eq(me) & cl.clients["end_date"].notna()).sum())
    assert _trace(fig, f"{me} (n=").name == f"{me} (n={ended})"

    # Alliance: the heatmap holds every rated session's SRS total; the supervisee's low-alliance share.
    app.nav.value = "alliance"
    page = app.pages["alliance"]
    z = np.asarray(_trace(_fig(page, "HeatmapView"), "SRS total").z, dtype=float)
    np.testing.assert_allclose(np.sort(z[~np.isnan(z)]), np.sort(att["srs_total"].dropna().to_numpy()))
    x = float(_trace(_fig(page, "CompareView"), f"{me} (this supervisee)").x[0])
    rated = att["srs_total"].dropna()
    assert x == pytest.approx((rated <= 36).mean())  # the default cut-off, inclusive (docs/methods.md, alliance)
    assert x == pytest.approx(tables["alliance_clinicians"].set_index("scope").at[me, "low_rate"])

    # Session focus: one mark per attended session with a recorded focus; the supervisee's goal coverage.
    app.nav.value = "focus"
    page = app.pages["focus"]
    fig = _fig(page, "TimelineView")
    from supervision.widgets.focus import MAX_TIMELINE

    n_att = att.groupby("client_id").size()
    shown = n_att[n_att >= 2].index  # clients with two or more attended sessions (all of them, if few enough)
    assert len(shown) <= MAX_TIMELINE
    assert sum(len(t.x) for t in fig.data if t.x is not None and t.mode and "markers" in t.mode) == \
        int(att.loc[att["client_id"].isin(shown), "focus_primary"].notna().sum())
    fn = tables["focus_clinicians"].set_index("scope")
    x = float(_trace(_fig(page, "CompareView"), f"{me} (this supervisee)").x[0])
    assert x == pytest.approx(fn.at[me, "coverage_rate"])

    # Outcome: one point per client with two or more ORS scores, each at (intake, latest).
    app.nav.value = "outcome"
    fig = _fig(app.pages["outcome"], "JacobsonView")
    co = tables["outcome_clients"]
    co = co[(co["instrument"] == "ors") & (co["clinician_id"] == me) & co["category"].notna()]
    pts = sorted((float(a), float(b)) for t in fig.data if t.mode == "markers" for a, b in zip(t.x, t.y))
    assert pts == sorted(zip(co["first_score"].astype(float), co["latest_score"].astype(float)))

    # Adaptation: the funnel's supervisee point is the API's funnel row for the same cell.
    app.nav.value = "adaptation"
    page = app.pages["adaptation"]
    fig = _fig(page, "FunnelView")
    fd = am.funnel_data(page._model.measures, dimension=page.group_dimension, group=page.group.value,
                        metric=page.metric.value, clinician_id=me)
    sup = _trace(fig, "Supervisee")
    row = fd[fd["clinician_id"] == me]
    assert len(row) == 1
    assert float(sup.x[0]) == pytest.approx(float(row["n"].iloc[0]))
    assert float(sup.y[0]) == pytest.approx(float(row["value"].iloc[0]))
    assert app.error.value == ""
