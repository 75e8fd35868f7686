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


def test_metrics_parquet_and_csv_hold_the_same_tables(tmp_path):
    import pandas as pd

    from supervision import demo_path
    from supervision.cli import main

    assert main(["metrics", str(demo_path()), "--out", str(tmp_path / "csv")]) == 0
    assert main(["metrics", str(demo_path()), "--out", str(tmp_path / "pq"), "--format", "parquet"]) == 0
    csvs = sorted(p.stem for p in (tmp_path / "csv").glob("*.csv"))
    assert csvs == sorted(p.stem for p in (tmp_path / "pq").glob("*.parquet")) and len(csvs) >= 10
    for name in csvs:
        pq = pd.read_parquet(tmp_path / "pq" / f"{name}.parquet")
        cs = pd.read_csv(tmp_path / "csv" / f"{name}.csv", encoding="utf-8-sig", keep_default_na=False, na_values=[""])
        assert list(pq.columns) == list(cs.columns) and len(pq) == len(cs), name
        for col in pq.columns:  # the same values, compared as the text a reader sees
            a = pq[col]
            a = a.dt.strftime("%Y-%m-%d") if pd.api.types.is_datetime64_any_dtype(a) else a
            b = cs[col]
            if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
                an, bn = a.astype(float), pd.to_numeric(b, errors="coerce")
                assert ((an.isna() & bn.isna()) | ((an - bn).abs() <= 1e-9 * an.abs().clip(lower=1))).all(), (name, col)
            else:
                sa = a.astype("string").fillna("").str.replace("^'", "", regex=True)
                sb = b.astype("string").fillna("").str.replace("^'", "", regex=True)
                assert (sa.str.lower() == sb.str.lower()).all(), (name, col)


def test_metrics_for_one_clinician_and_one_area(tmp_path, capsys):
    import pandas as pd

    from supervision import demo_path
    from supervision.cli import main

    assert main(["metrics", str(demo_path()), "--out", str(tmp_path), "--format", "parquet", "--clinician", "T03",
                 "--area", "alliance", "engagement"]) == 0
    names = sorted(p.stem for p in tmp_path.glob("*.parquet"))
    assert names and all(n.split("_")[0] in ("alliance", "engagement") for n in names)
    ac = pd.read_parquet(tmp_path / "alliance_clients.parquet")
    assert set(ac["clinician_id"]) == {"T03"}
    assert set(pd.read_parquet(tmp_path / "alliance_clinicians.parquet")["scope"]) == {"T03", "service"}
    out = capsys.readouterr().out
    assert "[1/" in out and "rows in" in out  # progress per table
    assert main(["metrics", str(demo_path()), "--out", str(tmp_path / "x"), "--clinician", "NOPE"]) == 2
