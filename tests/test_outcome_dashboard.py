"""The outcome dashboard driven headlessly: supervisee, measure, client and tabs change what is shown."""

import pytest

from supervision import load_caseload
from supervision.widgets.outcome import outcome_dashboard


@pytest.fixture(scope="module")
def caseload():
    return load_caseload()


def _draw_all(dash):
    for i in range(len(dash.views)):
        dash.body.selected_index = i
    dash.body.selected_index = 0


def test_views_follow_supervisee_and_measure(caseload):
    dash = outcome_dashboard(caseload).dashboard
    _draw_all(dash)
    summary, jac, client, compare = dash.views
    before = (summary.html.value, jac.chart.figure.to_json(), compare.html.value)
    dash.supervisee.value = dash.supervisee.options[4][1]
    _draw_all(dash)
    after = (summary.html.value, jac.chart.figure.to_json(), compare.html.value)
    assert all(b != a for b, a in zip(before, after)) and dash.error.value == ""
    options = [v for _, v in dash.instrument.options]
    assert "ors" in options and "phq9" in options
    dash.instrument.value = "phq9"
    assert "Patient Health Questionnaire-9" in summary.html.value and dash.error.value == ""


def test_client_drill_down_shows_the_trajectory(caseload):
    dash = outcome_dashboard(caseload).dashboard
    dash.body.selected_index = 2
    model = dash.last_slice.extras["outcome"]
    cid = model.clients.loc[(model.clients["n_measured"] >= 3) & model.clients["client_id"].isin(
        [v for _, v in dash.client.options]), "client_id"].iloc[0]
    dash.client.value = cid
    fig = dash.views[2].chart.figure
    assert fig is not None and cid in (fig.layout.title.text or "")
    assert dash.error.value == ""


def test_no_outcome_measure_is_a_sentence(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id,clinician_id,start_date\nC1,T1,2025-01-01\n")
    (tmp_path / "sessions.csv").write_text("client_id,clinician_id,session_date,attendance,srs_total\nC1,T1,2025-01-01,attended,38\n")
    widget = outcome_dashboard(load_caseload(tmp_path))
    assert "no outcome measure" in widget.value


def test_summary_lists_clients_who_are_worse_with_or_without_a_band_and_who_ended_worse(caseload):
    """Issue #19: a client worse than intake without an expected band is listed, not only counted; clients who
    ended worse than intake are listed too."""
    from supervision.metrics.outcome import client_outcomes, track_status
    tr = track_status(caseload.sessions, clients=caseload.clients, instrument="core10")
    worse = tr[(tr["status"] == "not_enough_reference_data") & (tr["improvement"] < 0)]
    assert len(worse)
    row = worse.iloc[0]
    dash = outcome_dashboard(caseload, supervisee=row["clinician_id"], instrument="core10").dashboard
    html = dash.views[0].html.value
    assert f"<td>{row['client_id']}</td><td>not enough reference data</td>" in html
    co = client_outcomes(caseload.sessions, instrument="ors", clients=caseload.clients)
    ended = co[co["ended_worse"]]
    assert len(ended)
    dash = outcome_dashboard(caseload, supervisee=ended.iloc[0]["clinician_id"]).dashboard
    html = dash.views[0].html.value
    assert "ended episodes finished worse than at intake" in html and f"<td>{ended.iloc[0]['client_id']}</td>" in html
    assert "at 95% confidence" in html  # the reliable-change label
