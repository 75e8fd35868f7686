"""The start-here dashboard driven headlessly (the browser tests drive it in Chromium)."""

from pathlib import Path

import pandas as pd

from supervision.widgets.start import report_html, start_here, summary_html
from supervision import load_caseload

CORPUS = Path(__file__).parent / "corpus"


def _tiny(tmp_path: Path) -> Path:
    (tmp_path / "clients.csv").write_text(
        "client_id,clinician_id,start_date,end_date,end_reason\n"
        "C1,T1,2025-01-10,,\nC2,T2,2025-01-12,2025-02-01,planned\n")
    (tmp_path / "sessions.csv").write_text(
        "client_id,clinician_id,session_date,attendance,srs_total\n"
        "C1,T1,2025-01-10,attended,38\nC1,T1,2025-02-17,no_show,\nC2,T2,2025-01-12,attended,39\n"
        "C2,T2,2025-01-19,attended,41\nC9,T2,2025-01-19,attended,30\n")
    return tmp_path


def test_loads_a_folder_and_the_chart_follows_the_clinician(tmp_path):
    dash = start_here(_tiny(tmp_path)).dashboard
    assert dash.error.value == ""
    assert "2</b> clients" in dash.summary.value
    assert "out_of_range" not in dash.report.value and "outside" in dash.report.value
    assert "not in the clients table" in dash.report.value
    all_y = [list(t.y) for t in dash.figure.data]
    assert sum(map(sum, all_y)) == 4  # 4 valid scheduled sessions, C9 quarantined
    dash.clinician.value = "T1"
    t1_y = [list(t.y) for t in dash.figure.data]
    assert sum(map(sum, t1_y)) == 2 and t1_y != all_y
    assert "T1" in dash.figure.layout.title.text


def test_unusable_folder_is_explained_not_raised(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id\nC1\n")
    dash = start_here(tmp_path).dashboard
    assert dash.error.value == ""
    assert "cannot be used" in dash.summary.value
    assert "no sessions table" in dash.report.value


def test_folder_choice_needs_a_path():
    dash = start_here(load=False).dashboard
    dash.source.value = "folder"
    assert dash.path.layout.display == ""
    dash.path.value = ""
    dash.load_button.click()
    assert "Type the folder" in dash.status.value


def test_summary_and_report_html_escape_user_text(tmp_path):
    root = _tiny(tmp_path)
    (root / "sessions.csv").write_text((root / "sessions.csv").read_text() + "C1,T1,2025-01-24,<script>x</script>,\n")
    cl = load_caseload(root)
    assert "<script>" not in report_html(cl) and "&lt;script&gt;" in report_html(cl)
    assert "<h3>Caseload</h3>" in summary_html(cl)
