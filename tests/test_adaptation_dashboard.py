"""The adaptation-gaps dashboard driven headlessly on the demo clinic."""

import json

import pytest

from supervision import demo_path, load_caseload
from supervision.widgets.adaptation import adaptation_dashboard


@pytest.fixture(scope="module")
def caseload():
    return load_caseload()


def test_the_planted_gap_is_named_and_the_controls_change_the_charts(caseload):
    planted = json.loads((demo_path() / "ground_truth.json").read_text())["adaptation_gaps"][0]
    dash = adaptation_dashboard(caseload, supervisee=planted["clinician_id"]).dashboard
    summary = dash.views[0].html.value
    assert "clear gap" in summary and planted["dimension"].replace("_", " ") in summary
    for i in range(3):
        dash.body.selected_index = i
    forest_before = dash.views[1].chart.figure.to_json()
    dash.metric.value = "unilateral"
    dash.body.selected_index = 1
    assert dash.views[1].chart.figure.to_json() != forest_before
    dash.dimension.value = planted["dimension"]
    dash.group.value = planted["group"]
    dash.body.selected_index = 2
    funnel = dash.views[2].chart.figure
    assert funnel is not None and len(funnel.data) >= 2
    dash.comparator.value = "service"
    dash.body.selected_index = 0
    assert "same group" in dash.views[0].html.value
    others = [v for _, v in dash.supervisee.options if v != planted["clinician_id"]]
    dash.supervisee.value = others[0]
    assert dash.views[0].html.value != summary and dash.error.value == ""


def test_small_groups_are_never_a_gap(caseload):
    dash = adaptation_dashboard(caseload, supervisee="T01").dashboard
    gaps = dash.last_slice.extras["adaptation"].gaps("T01")
    small = gaps[gaps["n_group"] < 5]
    assert len(small) and (small["verdict"] == "too few clients").all() and small["difference"].isna().all()
