"""The shared dashboard framework, driven headlessly."""

import pandas as pd
import pytest

from supervision import load_caseload
from supervision.widgets.framework import Dashboard, View


class Recorder(View):
    css_class = "sw-test-view"

    def __init__(self, fail=False):
        super().__init__()
        self.seen, self.fail = [], fail

    def update(self, data):
        if self.fail:
            raise RuntimeError("view broke")
        self.seen.append(data)


@pytest.fixture
def caseload(tmp_path):
    (tmp_path / "clients.csv").write_text(
        "client_id,clinician_id,start_date,end_date,end_reason\n"
        "A1,T1,2024-01-10,2024-03-01,planned\nA2,T1,2025-01-12,,\nB1,T2,2025-02-01,,\n")
    (tmp_path / "sessions.csv").write_text(
        "client_id,clinician_id,session_date,attendance\n"
        "A1,T1,2024-01-10,attended\nA1,T1,2024-02-10,attended\nA2,T1,2025-01-12,attended\n"
        "A2,T1,2025-05-12,no_show\nB1,T2,2025-02-01,attended\nB1,T2,2025-06-01,attended\n")
    cl = load_caseload(tmp_path)
    assert cl.status == "clean"
    return cl


def test_supervisee_period_episode_and_client_pickers_slice_the_caseload(caseload):
    view = Recorder()
    dash = Dashboard(caseload, [view])
    assert dash.selection.supervisee == "T1"
    first = view.seen[-1]
    assert set(first.clients["client_id"]) == {"A1", "A2"} and len(first.sessions) == 4
    assert len(first.service_sessions) == 6
    assert [o[1] for o in dash.client.options] == ["", "A1", "A2"]

    dash.supervisee.value = "T2"
    assert set(view.seen[-1].sessions["client_id"]) == {"B1"}
    assert [o[1] for o in dash.client.options] == ["", "B1"]

    dash.supervisee.value = "T1"
    dash.period.value = "6m"  # counts back from the last session in the export (2025-06-01)
    s = view.seen[-1]
    assert s.reference_date == pd.Timestamp("2025-06-01") and s.start_date == pd.Timestamp("2024-12-01")
    assert set(s.sessions["client_id"]) == {"A2"} and set(s.clients["client_id"]) == {"A2"}

    dash.period.value = "all"
    dash.episodes.value = "ended"
    assert set(view.seen[-1].clients["client_id"]) == {"A1"}
    dash.episodes.value = "open"
    assert set(view.seen[-1].clients["client_id"]) == {"A2"}

    dash.episodes.value = "all"
    dash.client.value = "A1"
    s = view.seen[-1]
    assert s.selection.client == "A1" and set(s.client_sessions["client_id"]) == {"A1"}
    assert len(s.sessions) == 4  # the caseload stays available for context
    dash.supervisee.value = "T2"  # changing supervisee resets the drill-down
    assert dash.selection.client is None and dash.client.value == ""
    assert "ms" in dash.status.value and dash.error.value == ""


def test_a_failing_view_is_shown_and_does_not_hide_the_others(caseload):
    good = Recorder()
    dash = Dashboard(caseload, [Recorder(fail=True), good])
    assert "view broke" in dash.error.value
    assert good.seen, "the healthy view still updated"
    n = len(good.seen)
    dash.supervisee.value = "T2"
    assert len(good.seen) == n + 1 and "view broke" in dash.error.value


def test_tabs(caseload):
    dash = Dashboard(caseload, [Recorder(), Recorder()], tabs=["One", "Two"])
    assert dash.body.get_title(1) == "Two"


def test_unusable_caseload_is_refused_with_a_sentence(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id\nX\n")
    with pytest.raises(ValueError, match="cannot be used"):
        Dashboard(load_caseload(tmp_path), [])


def test_tabs_draw_only_the_visible_view_and_the_others_when_opened(caseload):
    a, b = Recorder(), Recorder()
    dash = Dashboard(caseload, [a, b], tabs=["A", "B"])
    assert len(a.seen) == 1 and len(b.seen) == 0
    dash.supervisee.value = "T2"
    assert len(a.seen) == 2 and len(b.seen) == 0
    dash.body.selected_index = 1
    assert len(b.seen) == 1 and set(b.seen[-1].sessions["client_id"]) == {"B1"}
    dash.body.selected_index = 0  # nothing changed since: not redrawn
    assert len(a.seen) == 2


def test_rerunning_a_cell_closes_the_dashboard_it_built_before():
    """A re-run of a notebook cell must not keep the old dashboard (and its tables) alive."""
    import gc
    import weakref
    from types import SimpleNamespace

    import supervision
    from supervision.widgets import framework
    from supervision.widgets.supervision import SupervisionDashboard

    cl = supervision.load_caseload()
    framework._on_cell(SimpleNamespace(cell_id="cell-7"))
    try:
        first = SupervisionDashboard(cl, notes_path=None)
        first_ref = weakref.ref(first)
        first_widget = first.widget
        del first
        second = SupervisionDashboard(cl, notes_path=None)
        assert first_widget.comm is None  # closed
        del first_widget
        gc.collect()
        assert first_ref() is None, "the first dashboard is still referenced"
        assert second.widget.comm is not None  # the new one is open
        framework._on_cell(SimpleNamespace(cell_id="cell-8"))
        third = SupervisionDashboard(cl, notes_path=None)  # another cell: both stay
        assert second.widget.comm is not None and third.widget.comm is not None
    finally:
        framework._CELL["id"] = None


def test_charts_unname_colleagues_and_skip_the_filter_when_none_is_named(caseload, monkeypatch):
    """The dashboard's figure filter: a chart naming another clinician shows "colleague"; a chart naming
    none is shown as built, without a walk through it (the filter is skipped)."""
    import json

    import plotly.graph_objects as go

    import supervision.figures.colleagues as colleagues
    from supervision.widgets.framework import PLOTLY_MIME, FigureBox

    calls = []
    real = colleagues.unname_colleagues
    monkeypatch.setattr(colleagues, "unname_colleagues", lambda *a, **k: calls.append(a[2]) or real(*a, **k))

    class Charts(View):
        def __init__(self):
            super().__init__()
            self.named, self.plain = FigureBox("sw-test-named"), FigureBox("sw-test-plain")

        def update(self, data):
            self.named.show(go.Figure(go.Bar(x=["T1", "T2"], y=[1, 2], hovertext=["mine", "seen by T2\nlast week"]),
                                      layout={"title": {"text": "T1 and T2"}}))
            self.plain.show(go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="A1"), layout={"title": {"text": "A1"}}))

    view = Charts()
    Dashboard(caseload, [view], supervisee="T1")
    assert calls == ["T1"]  # the named chart only
    shown = json.dumps(view.named.widget.outputs[0]["data"][PLOTLY_MIME])
    assert "T2" not in shown and "colleague" in shown and "T1" in shown
    assert list(view.named.figure.data[0].x) == ["T1", "colleague\u200b"]
    assert view.plain.figure.layout.title.text == "A1"
    assert view.plain.widget.outputs[0]["data"][PLOTLY_MIME]["data"][0]["name"] == "A1"
