"""The alliance dashboard driven headlessly on the demo clinic: every control changes what is shown."""

import pytest

from supervision import load_caseload
from supervision.widgets.alliance import alliance_dashboard


@pytest.fixture(scope="module")
def caseload():
    return load_caseload()


def _fig(view):
    return view.chart.figure


def _draw_all(dash):
    for i in range(len(dash.views)):
        dash.body.selected_index = i
    dash.body.selected_index = 0


def test_every_view_follows_the_supervisee(caseload):
    dash = alliance_dashboard(caseload).dashboard
    _draw_all(dash)
    summary, heat, series, compare = dash.views
    before = (summary.html.value, _fig(heat).data[0].y, [t.name for t in _fig(series).data], compare.html.value)
    others = [v for _, v in dash.supervisee.options if v != dash.selection.supervisee]
    dash.supervisee.value = others[0]
    _draw_all(dash)
    after = (summary.html.value, _fig(heat).data[0].y, [t.name for t in _fig(series).data], compare.html.value)
    assert dash.error.value == ""
    for b, a, what in zip(before, after, ["summary", "heatmap", "small multiples", "comparison"]):
        assert b != a, f"the {what} did not change with the supervisee"
    assert others[0] in _fig(heat).layout.title.text


def test_client_drill_down_shows_items_and_subscales(caseload):
    dash = alliance_dashboard(caseload).dashboard
    dash.body.selected_index = 2
    client = dash.client.options[1][1]
    dash.client.value = client
    fig = _fig(dash.views[2])
    names = [t.name for t in fig.data]
    assert "SRS total" in names and "Relationship (0-10)" in names
    assert client in fig.layout.title.text
    dash.client.value = ""
    assert "SRS total" not in [t.name for t in _fig(dash.views[2]).data]


def test_thresholds_recompute_the_flags(caseload):
    dash = alliance_dashboard(caseload).dashboard
    low_36 = dash.views[0].html.value
    dash.cutoff.value = 30.0
    low_30 = dash.views[0].html.value
    assert "cut-off of 30" in low_30 and low_36 != low_30
    dash.sd.value = 1.0
    assert "1-SD rule" in dash.views[0].html.value
    assert dash.error.value == ""


def test_period_and_episode_filters_shrink_the_heatmap(caseload):
    dash = alliance_dashboard(caseload).dashboard
    dash.body.selected_index = 1
    rows_all = len(set(_fig(dash.views[1]).data[0].y))
    dash.period.value = "3m"
    rows_3m = len(set(_fig(dash.views[1]).data[0].y))
    assert 0 < rows_3m < rows_all
    dash.period.value = "all"
    dash.episodes.value = "open"
    assert len(set(_fig(dash.views[1]).data[0].y)) < rows_all
    assert dash.error.value == ""


def test_unusable_export_gets_a_notice_not_a_traceback(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id\nC1\n")
    widget = alliance_dashboard(load_caseload(tmp_path))
    assert "cannot be used" in widget.value
