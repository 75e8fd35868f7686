"""Checks every dashboard test repeats: the status line, the error pane, charts that take room, titles."""

from __future__ import annotations

import re


def status_clients(lab, supervisee: str, *, status: str) -> int:
    """Clients counted in the status line for ``supervisee`` (waits for the line to name them)."""
    text = lab.wait_for_text(status, rf"^{re.escape(supervisee)}: \d+ clients")
    return int(re.match(rf"{re.escape(supervisee)}: (\d+) clients", text).group(1))


def assert_no_dashboard_error(lab, *, error: str) -> None:
    shown = lab.text(error)
    assert not shown, f"the dashboard shows an error: {shown[:2000]}"


def check_seen(lab, scope: str, state: str, unseen: list[str]) -> None:
    """Record (for a final assertion) a chart that holds data but takes no room on the page."""
    problem = lab.plot_shown_problem(scope)
    if problem:
        unseen.append(f"{state}: {problem}")


def wait_title(lab, scope: str, pattern: str, timeout: float = 15.0) -> str:
    """Wait until the chart's title matches ``pattern`` (a stale tab shows its old plot until redrawn)."""
    return lab.wait_for_text(f"{scope} .gtitle", pattern, timeout=timeout)
