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


@pytest.mark.parametrize("me", ["T01", "T05", "T10"])
def test_with_no_gap_flagged_the_pickers_open_on_the_largest_unflagged_gap(caseload, me):
    """No flagged cell: the Group and Measure pickers open on the estimated cell furthest in the worse direction
    (shrunken difference over the measure's practical threshold), not on the biggest group; the summary says
    that no gap is flagged and names that cell. Oracle: the gap table, searched cell by cell."""
    from supervision.config import value_label

    dash = adaptation_dashboard(caseload, supervisee=me).dashboard
    gaps = dash.last_slice.extras["adaptation"].gaps(me, dash.last_slice)
    g = gaps[gaps["comparator"] == "clinician"]
    assert not g["verdict"].isin(["clear gap", "possible gap"]).any()  # the demo: nothing flagged for these
    best, best_by = None, -float("inf")
    for r in g.itertuples():
        if r.verdict != "no evidence" or str(r.group) in ("declined", "not_recorded"):
            continue
        by = r.shrunken_difference * (-1 if r.higher_is_better else 1) / r.practical_threshold
        if by > best_by:
            best, best_by = r, by
    assert best is not None and best_by > 0
    assert (dash.group_dimension, dash.group.value, dash.metric.value) == (best.dimension, str(best.group), best.metric)
    summary = dash.views[0].html.value
    assert "No gap is flagged" in summary and "sw-adapt-no-gap" in summary
    # what its interval says, as it is (T01's excludes 0: colleagues show the same difference)
    inside = best.lower <= 0 <= best.upper
    assert ("the interval includes no difference" in summary) == inside
    assert ("the interval excludes no difference" in summary) == (not inside)
    assert value_label(best.group, caseload.settings) in summary and f"(n={best.n_group})" in summary
    # the Groups tab draws that measure; the funnel that group
    dash.body.selected_index = 2
    assert value_label(best.group, caseload.settings) in dash.views[2].note.value and dash.error.value == ""
