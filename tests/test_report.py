"""The supervision report: self-contained, offline, one plotly.js, the supervisee's content."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from supervision import demo_path, load_caseload
from supervision.notes import NotesStore
from supervision.report import ReportError, build_report


@pytest.fixture(scope="module")
def caseload():
    return load_caseload()


def test_report_is_self_contained_and_offline(caseload, tmp_path):
    notes = tmp_path / "n.sqlite"
    with NotesStore(notes) as store:
        m = store.start_meeting("S01", "T01", "2025-11-30")
        store.add_note("Discussed the unrepaired rupture.", author="S01", meeting_id=m, client_id="C00001")
        store.add_action(m, "Invite feedback at the next session", "T01", due="2025-12-07")
    html = build_report(caseload, "T01", notes_path=notes)
    assert html.count("plotly.js v") <= 2 and "Plotly" in html  # the library once, in the head
    # no resource from another host: outside the embedded library, no src/href to http(s) at all
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)
    assert "Supervision report: T01" in html and "Agenda" in html
    assert "Discussed the unrepaired rupture." in html and "Invite feedback" in html
    assert html.count("class='chart'") >= 3


def test_report_only_holds_the_supervisees_clients(caseload):
    html = build_report(caseload, "T02", include_notes=False)
    mine = set(caseload.clients.loc[caseload.clients["clinician_id"] == "T02", "client_id"])
    others = set(caseload.clients["client_id"]) - mine
    found = set(re.findall(r"C\d{5}", html))
    assert found and found <= mine, f"other clinicians' clients in the report: {sorted(found & others)[:5]}"


def test_unknown_supervisee_and_bad_period_are_sentences(caseload):
    with pytest.raises(ReportError, match="Unknown supervisee"):
        build_report(caseload, "nobody")
    with pytest.raises(ReportError, match="period"):
        build_report(caseload, "T01", period="2y")


def test_cli_batch_shows_progress(tmp_path):
    from supervision.notes import NotesStore

    NotesStore(tmp_path / "n.sqlite").close()  # an empty notes database (a missing one is refused)
    r = subprocess.run([sys.executable, "-m", "supervision.cli", "report", str(demo_path()), "--clinician", "all",
                        "--out", str(tmp_path / "reports"), "--notes", str(tmp_path / "n.sqlite")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    n = load_caseload().clinicians["clinician_id"].nunique()
    assert f"[{n}/{n}]" in r.stdout and len(list((tmp_path / "reports").glob("*.html"))) == n


def test_adaptation_counts_follow_the_disclosure_policy(caseload):
    safe = build_report(caseload, "T03", include_notes=False)
    assert "small-numbers policy" in safe and "'nhs'" in safe
    open_ = build_report(caseload, "T03", include_notes=False, policy="none")
    section = open_[open_.index("<h2>Adaptation"):]
    assert "clear gap" in section and "personality disorder" in section


def test_pdf_is_printed_by_headless_chromium(caseload, tmp_path):
    import os
    import shutil

    from supervision.report import html_to_pdf

    if not shutil.which("chromium") and os.environ.get("CI") != "true":
        pytest.skip("Chromium is not installed (make test installs it where apt is available)")
    html_path = tmp_path / "r.html"
    html_path.write_text(build_report(caseload, "T01", include_notes=False), encoding="utf-8")
    pdf = html_to_pdf(html_path, tmp_path / "r.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 100_000  # charts are drawn, not blank pages


def test_single_report_creates_its_folder(tmp_path):
    from supervision.report import write_reports

    from supervision.notes import NotesStore

    NotesStore(tmp_path / "n.sqlite").close()
    paths = write_reports(load_caseload(), ["T01"], tmp_path / "new" / "r.html", notes_path=tmp_path / "n.sqlite")
    assert paths[0].exists()


def test_notes_are_formatted_escaped_and_complete(tmp_path):
    from supervision.notes import NotesStore
    from supervision.report import build_report

    db = tmp_path / "n.sqlite"
    with NotesStore(db) as s:
        m = s.start_meeting("S01", "T01", date="2025-11-01")
        s.add_note("**Plan**: first paragraph\nsecond line\n\n<script>alert(1)</script> para two", author="S01", meeting_id=m)
        s.add_action(m, "Phone C00345", "T01", due="2025-11-15", client_id="C00345")
        s.add_note("Written outside any meeting about a client", author="S01", client_id="C00345")
    html = build_report(load_caseload(), "T01", notes_path=db)
    notes = html[html.index("<h2>Notes and agreed actions</h2>"):]
    assert "<p>**Plan**: first paragraph<br>second line</p>" in notes  # paragraphs and line breaks, Markdown not raw in <pre>
    assert "&lt;script&gt;alert(1)&lt;/script&gt; para two" in notes and "<script>alert" not in notes
    assert "Written outside any meeting about a client" in notes and "Phone C00345" in notes
    assert "<pre" not in notes


def test_one_disclosure_decision_and_no_agenda_gap_hidden(caseload):
    """Under the default policy the agenda's gap (T03, personality disorder) is in the adaptation section too,
    with the numbers the policy hides hidden in both; the small-numbers sentence appears once."""
    from supervision.agenda import build_agenda
    from supervision.metrics.tables import metric_tables

    tables = metric_tables(caseload)
    ag = build_agenda(caseload, tables, clinician_id="T03")
    gaps = ag.loc[ag["flag"] == "adaptation_gap", "evidence"]
    assert any(e.startswith("personality disorder: yes:") for e in gaps)  # the demo's planted gap is on the agenda
    for policy, hidden in ((None, True), ("none", False)):
        page = build_report(caseload, "T03", include_notes=False, tables=tables, policy=policy)
        assert page.count("sw-disclosure") == 1 and page.count("Small numbers:") == 1
        assert page.count("small-numbers policy") == (1 if hidden else 0)
        section = page[page.index("<h2>Adaptation"):page.index("<h2>Follow-through")]
        agenda = page[page.index("<h2>Agenda"):page.index("<h2>Caseload compared")]
        assert "personality disorder</td><td>yes</td><td>unplanned single sessions" in section
        assert ("clear gap (numbers hidden)" in section) == hidden
        assert ("unplanned single sessions 73 % (n=15)" in agenda) != hidden
        assert ("numbers hidden: see Small numbers above" in agenda) == hidden


def test_batch_reports_in_worker_processes_are_the_ones_written_alone(tmp_path):
    """``--clinician all`` split over forked workers (issue 24) writes the same reports as one process."""
    import multiprocessing

    from supervision.report import write_reports

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("worker processes need fork")
    cl = load_caseload()
    ids = sorted(cl.clinicians["clinician_id"])[:5]
    seen = []
    one = write_reports(cl, ids, tmp_path / "one", workers=1)
    many = write_reports(cl, ids, tmp_path / "many", workers=2, progress=lambda i, n, cid, s: seen.append((i, cid)))
    assert seen == list(enumerate(ids, start=1))
    assert [p.name for p in one] == [p.name for p in many] == [f"supervision-report-{c}.html" for c in ids]

    def stable(text):  # the minute it was made and plotly's random element ids aside
        text = re.sub(r"Made on .*? UTC", "Made on -", text)
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)

    for a, b in zip(one, many):
        assert stable(a.read_text(encoding="utf-8")) == stable(b.read_text(encoding="utf-8")), a.name
    alone = build_report(cl, ids[2], include_notes=True)
    assert stable(alone) == stable(many[2].read_text(encoding="utf-8"))


def test_batch_reports_are_the_single_reports(tmp_path):
    """The batch path (agenda and development built once for every clinician, each report taking its rows)
    writes, for each supervisee, the report that ``report --clinician X`` writes alone (issue 24)."""
    from supervision.metrics.tables import metric_tables
    from supervision.report import write_reports

    cl = load_caseload()
    ids = sorted(cl.clinicians["clinician_id"])
    batch = write_reports(cl, ids, tmp_path / "all", workers=1)
    tables = metric_tables(cl)

    def stable(text):
        text = re.sub(r"Made on .*? UTC", "Made on -", text)
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)

    assert len(batch) == len(ids) > 2
    for cid, path in zip(ids, batch):
        alone = build_report(cl, cid, tables=tables)
        assert "<h2>Agenda</h2>" in alone and "Development by quarter" in alone, cid
        assert stable(alone) == stable(path.read_text(encoding="utf-8")), cid
