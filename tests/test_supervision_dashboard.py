"""The supervision dashboard driven headlessly: agenda → client drill-down → note saved → found again."""

import pytest

from supervision import load_caseload
from supervision.widgets.supervision import supervision_dashboard


@pytest.fixture(scope="module")
def caseload():
    return load_caseload()


def test_agenda_item_opens_the_client_and_a_note_survives_a_reload(caseload, tmp_path):
    db = tmp_path / "notes.sqlite"
    dash = supervision_dashboard(caseload, notes_path=db).dashboard
    agenda = dash.views[0]
    today = agenda.agenda[agenda.agenda["section"] == "today"]
    assert 0 < len(agenda.today.children) == len(today) <= 5, "the demo supervisee has clients for today, as cards"
    assert len(agenda.risk.children) >= 2 and "Risk: 1 client" in agenda.risk.children[0].value  # T01: the planted risk answer
    client = today.iloc[1]["client_id"]
    card = agenda.today.children[1]
    assert client in card.children[0].value and today.iloc[1]["question"] in card.children[0].value
    card.children[1].click()
    assert dash.selection.client == client and dash.body.selected_index == 4
    assert f"Client {client}" in dash.views[4].html.value
    assert today.iloc[1]["evidence"].split(" | ")[0] in dash.views[4].html.value
    assert dash.views[4].chart.figure is None or client in dash.views[4].chart.figure.layout.title.text

    dash.body.selected_index = 5
    notes = dash.views[5]
    notes.text.value = "Explore the missed sessions with the supervisee."
    assert "not saved yet" in notes.feedback.value
    notes.save.click()  # no meeting yet, but a client is picked: saved as a client note
    assert "Saved" in notes.feedback.value and notes.text.value == ""
    notes.supervisor.value = "S01"
    notes.start.click()
    notes.text.value = "General: caseload is heavy on single sessions."
    notes.save.click()
    notes.action_text.value = "Phone the client"
    notes.action_owner.value = dash.selection.supervisee
    notes.add_action.click()
    assert "Action" in notes.feedback.value and dash.error.value == ""

    again = supervision_dashboard(load_caseload(), supervisee=dash.selection.supervisee, notes_path=db).dashboard
    again.client.value = client
    again.body.selected_index = 5
    listing = again.views[5].listing.value
    assert "Explore the missed sessions" in listing and "Phone the client" in listing


def test_empty_note_and_no_target_are_refused_without_losing_the_draft(caseload, tmp_path):
    dash = supervision_dashboard(caseload, notes_path=tmp_path / "n.sqlite").dashboard
    dash.body.selected_index = 5
    notes = dash.views[5]
    notes.save.click()
    assert "empty" in notes.feedback.value
    notes.text.value = "draft about nobody yet"
    notes.save.click()
    assert "Not saved" in notes.feedback.value and notes.text.value == "draft about nobody yet"
    dash.supervisee.value = dash.supervisee.options[1][1]  # changing the supervisee keeps the draft
    assert notes.text.value == "draft about nobody yet"


def test_every_tab_follows_the_supervisee(caseload, tmp_path):
    dash = supervision_dashboard(caseload, notes_path=tmp_path / "n.sqlite").dashboard
    def snapshot():
        out = []
        for i in range(4):
            dash.body.selected_index = i
        out.append(dash.views[0].header.value)
        out.append(dash.views[1].summary.value)
        out.append(dash.views[2].html.value)
        out.append(dash.views[2].chart.figure.data[0].y.tolist())
        out.append(dash.views[3].chart.figure.data[0].y)
        return out
    before = snapshot()
    dash.supervisee.value = dash.supervisee.options[3][1]
    after = snapshot()
    assert all(b != a for b, a in zip(before, after)) and dash.error.value == ""


def test_unreadable_notes_database_is_a_message_not_a_crash(caseload, tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("this is not a database")
    dash = supervision_dashboard(caseload, notes_path=bad).dashboard
    dash.body.selected_index = 5
    listing = dash.views[5].listing.value
    assert "The notes cannot be read" in listing and "not a supervision notes database" in listing
    dash.body.selected_index = 1
    assert "The notes cannot be read" in dash.views[1].summary.value
    assert bad.read_text() == "this is not a database"  # left untouched
    assert dash.error.value == ""


def test_save_report_button_writes_the_report_and_says_where(caseload, tmp_path):
    dash = supervision_dashboard(caseload, notes_path=tmp_path / "n.sqlite", report_dir=tmp_path / "reports").dashboard
    dash.report_button.click()
    files = list((tmp_path / "reports").glob("supervision-report-*.html"))
    assert len(files) == 1 and dash.selection.supervisee in files[0].name
    assert "Saved" in dash.report_feedback.value and str(files[0]) in dash.report_feedback.value
    assert dash.error.value == ""
    # a link the browser can open: the anchor carries the saved file itself (no server path needed)
    import base64
    import re

    a = re.search(r"<a class='sw-report-link' download='([^']+)' href='data:text/html;base64,([^']+)'",
                  dash.report_feedback.value)
    assert a, dash.report_feedback.value[:300]
    assert a.group(1) == files[0].name
    assert base64.b64decode(a.group(2)) == files[0].read_bytes()


def test_follow_up_across_three_meetings_in_the_dashboard(caseload, tmp_path):
    db = tmp_path / "n.sqlite"

    def meeting(supervisee="T01"):
        dash = supervision_dashboard(caseload, supervisee=supervisee, notes_path=db).dashboard
        notes = dash.views[5]
        notes.supervisor.value = "S01"
        notes.start.click()
        assert "started and saved" in notes.feedback.value
        return dash

    # meeting 1: discuss a client from today's cards, agree an action and a practice goal
    d1 = meeting()
    card = d1.views[0].today.children[0]
    client = d1.views[0].agenda[d1.views[0].agenda["section"] == "today"].iloc[0]["client_id"]
    card.children[1].click()  # Discuss: recorded as discussed in this meeting
    d1.views[5].action_text.value = "Ask about the low ratings"
    d1.views[5].action_owner.value = "T01"
    d1.views[5].add_action.click()
    d1.body.selected_index = 1
    fu = d1.views[1]
    assert not fu.rows.children and "Nothing carried over" in fu.summary.value
    fu.goal_text.value = "Open sessions with the goal"
    fu.goal_metric.value = "check_in_share"
    fu.goal_add.click()
    assert "Practice goal 1 saved" in fu.feedback.value and "Open sessions with the goal" in fu.goals_html.value
    assert d1.error.value == ""

    # meeting 2: the three things come first, each with what happened since; decide on two
    d2 = meeting()
    d2.body.selected_index = 1
    fu = d2.views[1]
    text = " ".join(r.children[0].value for r in fu.rows.children)
    assert len(fu.rows.children) == 3 and client in text and "Ask about the low ratings" in text
    assert "Since:" in text and "Share of sessions mainly a week review" in text
    by_kind = {next(c for c in r._dom_classes if c.startswith("sw-followup-") and c[12:].split("-")[0] in
                    ("action", "item", "goal")).split("-")[2]: r for r in fu.rows.children}
    by_kind["action"].children[2].click()  # carry over
    by_kind["item"].children[1].click()  # done
    assert "Saved" in fu.feedback.value and d2.error.value == ""

    # meeting 3: the item is closed; the action (carried over) and the goal remain
    d3 = meeting()
    d3.body.selected_index = 1
    kinds = sorted(c.split("-")[2] for r in d3.views[1].rows.children for c in r._dom_classes
                   if c.startswith("sw-followup-") and c.count("-") == 3)
    assert kinds == ["action", "goal"]
