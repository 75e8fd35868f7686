"""The `supervision` command as a user runs it: exit codes, plain sentences, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from supervision import demo_path


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "supervision.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_validate_demo_is_clean():
    r = run("validate", demo_path())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no problems found" in r.stdout and "Traceback" not in r.stderr


def test_metrics_writes_the_tables(tmp_path):
    r = run("metrics", demo_path(), "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    clients = pd.read_csv(tmp_path / "alliance_clients.csv", encoding="utf-8-sig")
    assert len(clients) == len(pd.read_csv(demo_path() / "clients.csv"))
    assert {"client_id", "first_srs", "n_unrepaired"} <= set(clients.columns)


def test_metrics_on_an_unusable_export_says_why(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id\nC1\n")
    r = run("metrics", tmp_path, "--out", tmp_path / "out")
    assert r.returncode == 2 and "cannot be used" in r.stderr and "Traceback" not in r.stderr


def test_bad_settings_file_is_a_sentence(tmp_path):
    s = tmp_path / "s.toml"
    s.write_text("[alliance]\nsrs_cutof = 30\n")
    r = run("validate", demo_path(), "--settings", s)
    assert r.returncode == 2 and "srs_cutof" in r.stderr and "Traceback" not in r.stderr


def test_report_file_neutralises_formulas(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id,clinician_id,start_date\n=HYPERLINK(1),T1,2025-01-01\nC2,T1,2025-01-01\nC2,T1,2025-01-02\n")
    (tmp_path / "sessions.csv").write_text("client_id,clinician_id,session_date,attendance\n=1+1,T1,2025-01-01,attended\n")
    r = run("validate", tmp_path, "--report", tmp_path / "rep.csv")
    assert r.returncode == 1
    text = (tmp_path / "rep.csv").read_text(encoding="utf-8-sig")
    assert "'=1+1" in text and "\n=1+1" not in text and ",=1+1" not in text


REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def test_import_fhir_command_on_the_us_core_example(tmp_path):
    r = run("import", "fhir", REFERENCE / "us_core_phq9_questionnaire_response.json", "--out", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    scores = pd.read_csv(tmp_path / "scores.csv")
    items = scores[scores["item"].astype(str) != "total"].sort_values("item", key=lambda s: s.astype(int))
    assert items["value"].tolist() == [2, 2, 2, 2, 1, 1, 2, 0, 0]


def test_import_mapped_command_reports_unmapped_codes(tmp_path):
    root = Path(__file__).resolve().parents[1]
    r = run("import", "mapped", root / "tests" / "data" / "mapped" / "ors_srs", "--mapping",
            root / "data" / "mappings" / "ors_srs_platform.toml", "--out", tmp_path)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr
    assert (tmp_path / "sessions.csv").exists() and (tmp_path / "import_report.csv").exists()


def test_import_mapped_without_a_mapping_is_a_sentence(tmp_path):
    r = run("import", "mapped", tmp_path, "--out", tmp_path / "o")
    assert r.returncode == 2 and "--mapping" in r.stderr
