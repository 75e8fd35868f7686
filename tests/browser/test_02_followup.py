"""Follow-through in a real JupyterLab: set a practice goal and an action in one meeting, open the
next meeting, and find both first in the Follow-up tab with what happened since.

The notebook is a copy of ``02-supervision.ipynb`` in the harness's workspace (``02-followup.ipynb``),
pointed at this test's own notes database; the repository's ``data/notes`` is not touched. The
"next meeting" is the same notebook reloaded (a new kernel, a new dashboard, a new meeting).
Follow-up tab: ``sw-followup`` (summary ``sw-followup-summary``, rows ``sw-followup-row``, goal form
``sw-goal-text`` / ``sw-goal-add``, goals ``sw-goals-list``, chart ``sw-chart-development``).
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from .test_02_supervision import (D, MEETING_START, NOTE_FEEDBACK, SUPERVISOR, TABS, ACTION_ADD, ACTION_OWNER,
                                  ACTION_TEXT, assert_no_dashboard_error, point_notebook_at, repo_state)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "02-supervision.ipynb"  # run from a copy of it, COPY
COPY = "02-followup.ipynb"
FOLLOWUP = f"{D} .sw-followup"
SUMMARY, ROWS = f"{D} .sw-followup-summary", f"{D} .sw-followup-row"
GOAL_TEXT, GOAL_ADD, GOALS = f"{D} .sw-goal-text", f"{D} .sw-goal-add", f"{D} .sw-goals-list"
FEEDBACK, DEV_CHART = f"{D} .sw-followup-feedback", f"{D} .sw-chart.sw-chart-development"


def start_meeting(lab, supervisor: str) -> str:
    lab.open_tab(TABS, "Notes")
    lab.fill(SUPERVISOR, supervisor)
    lab.click(MEETING_START)
    fb = lab.wait_for_text(NOTE_FEEDBACK, r"Meeting \d+ started and saved")
    return re.search(r"Meeting (\d+)", fb).group(1)


def test_goal_and_action_reach_the_next_meeting(lab, tmp_path, workspace, browser_timings):
    before_repo = repo_state()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, workspace / COPY)
    notes_db = tmp_path / "notes.sqlite"
    point_notebook_at(workspace / COPY, notes_db, tmp_path / "reports")
    goal = f"Open with the client's goal {uuid.uuid4().hex[:6]}"
    action = f"Read about check-ins {uuid.uuid4().hex[:6]}"

    # --- meeting 1: an action (Notes) and a practice goal (Follow-up) -----------------------------
    lab.open(COPY)
    lab.run_all()
    lab.page.locator(D).first.wait_for(state="visible")
    lab.assert_no_error_outputs()
    first = start_meeting(lab, "S01")
    lab.fill(ACTION_TEXT, action)
    lab.fill(ACTION_OWNER, "T01")
    lab.click(ACTION_ADD)
    lab.wait_for_text(NOTE_FEEDBACK, r"^Action \d+ saved")
    lab.open_tab(TABS, "Follow-up")
    lab.wait_for_text(SUMMARY, r"Since the last meeting with T01")
    lab.fill(GOAL_TEXT, goal)
    lab.click(GOAL_ADD)
    lab.wait_for_text(FEEDBACK, r"Practice goal \d+ saved")
    lab.wait_for_text(GOALS, re.escape(goal))
    lab.wait_for_plot(DEV_CHART)
    assert_no_dashboard_error(lab)
    lab.screenshot("followup-first-meeting", D)

    # --- meeting 2: the page reloaded, a new meeting: the goal and the action come first -----------
    lab.page.on("dialog", lambda d: d.accept())
    lab.page.reload(wait_until="domcontentloaded")
    lab.wait_kernel_idle()
    lab.run_all()
    lab.page.locator(D).first.wait_for(state="visible")
    second = start_meeting(lab, "S01")
    assert int(second) > int(first)
    lab.open_tab(TABS, "Follow-up")
    summary = lab.wait_for_text(SUMMARY, r"2 things from earlier meetings")
    assert "Mark each done" in summary, summary
    lab.page.wait_for_function("sel => document.querySelectorAll(sel).length >= 2", arg=ROWS, timeout=15_000)
    rows = [re.sub(r"\s+", " ", t.replace("\u00a0", " ")).strip() for t in lab.page.locator(ROWS).all_text_contents()]
    goal_row = next((r for r in rows if goal in r), None)
    action_row = next((r for r in rows if action in r), None)
    assert goal_row and action_row, rows
    assert goal_row.startswith("Practice goal") and "Since:" in goal_row and "before" in goal_row, goal_row
    assert action_row.startswith("Action") and "Since:" in action_row and "owner T01" in action_row, action_row
    # carry the action over: the decision is shown and saved
    lab.page.locator(f"{ROWS}:has-text('{action}') .sw-followup-carry button, "
                     f"{ROWS}:has-text('{action}') button.sw-followup-carry").first.click()
    lab.wait_for_text(FEEDBACK, r"Saved: action \d+ carried over")
    lab.wait_for_text(FOLLOWUP, r"Today: carried over")
    assert_no_dashboard_error(lab)
    lab.screenshot("followup-next-meeting", D)
    lab.assert_no_error_outputs()
    lab.assert_no_external_requests()
    assert repo_state() == before_repo
