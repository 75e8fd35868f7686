"""The session-focus dashboard driven headlessly."""

import pytest

from supervision import load_caseload
from supervision.widgets.focus import focus_dashboard


@pytest.fixture(scope="module")
def caseload():
    return load_caseload()


def test_views_follow_the_supervisee_and_the_client(caseload):
    dash = focus_dashboard(caseload).dashboard
    for i in range(4):
        dash.body.selected_index = i
    before = (dash.views[0].html.value, dash.views[1].chart.figure.to_json(), dash.views[2].chart.figure.to_json())
    dash.supervisee.value = "T05"
    for i in range(4):
        dash.body.selected_index = i
    after = (dash.views[0].html.value, dash.views[1].chart.figure.to_json(), dash.views[2].chart.figure.to_json())
    assert all(b != a for b, a in zip(before, after)) and dash.error.value == ""
    dash.body.selected_index = 1
    client = dash.client.options[1][1]
    dash.client.value = client
    assert "1 client" in dash.views[1].chart.figure.layout.title.text
    assert dash.error.value == ""


def test_check_in_heavy_supervisee_shows_it(caseload):
    import json

    from supervision import demo_path

    truth = json.loads((demo_path() / "ground_truth.json").read_text())
    heavy = [c["clinician_id"] for c in truth["clinicians"] if c["check_in_heavy"]]
    assert heavy, "the demo plants check-in-heavy clinicians"
    dash = focus_dashboard(caseload, supervisee=heavy[0]).dashboard
    text = dash.views[0].html.value
    share = float(text.split("week review / check-in: <b>")[1].split("%")[0])
    assert share >= 15, text


def test_an_export_without_focus_codes_says_so(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id,clinician_id,start_date\nC1,T1,2025-01-01\n")
    (tmp_path / "sessions.csv").write_text("client_id,clinician_id,session_date,attendance,srs_total\nC1,T1,2025-01-01,attended,38\n")
    dash = focus_dashboard(load_caseload(tmp_path)).dashboard
    assert "No session focus recorded" in dash.views[0].html.value and dash.error.value == ""
