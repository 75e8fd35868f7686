"""A corpus of hostile inputs (issue #18): every one is refused or reported in a sentence, never a traceback.

The inputs are generated here, in ``tmp_path``, rather than committed as binaries.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from supervision import demo_path


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "supervision.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def small_export(folder: Path, clinicians=("T01", "T02"), rename: dict | None = None) -> Path:
    """The demo clinic cut to ``clinicians`` (ids renamed by ``rename``), written as CSV into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rename = rename or {}
    for name in ("clients", "sessions", "clinicians"):
        f = pd.read_csv(demo_path() / f"{name}.csv", dtype=str, keep_default_na=False)
        f = f[f["clinician_id"].isin(clinicians)].copy()
        f["clinician_id"] = f["clinician_id"].replace(rename)
        f.to_csv(folder / f"{name}.csv", index=False)
    return folder


# --- report paths ---------------------------------------------------------------------------------------------------

def test_clinician_id_cannot_choose_where_a_report_is_written(tmp_path):
    evil = "x/../../../ESCAPED"
    data = small_export(tmp_path / "data", rename={"T02": evil})
    out = tmp_path / "a" / "b" / "out"
    r = run("report", data, "--clinician", "all", "--out", out)
    assert "Traceback" not in r.stderr
    assert r.returncode == 0, r.stderr
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2, written
    assert not list(tmp_path.rglob("ESCAPED*.html")) or all(out in p.parents for p in tmp_path.rglob("ESCAPED*.html"))
    assert all(p.resolve().parent == out.resolve() for p in out.iterdir())
    assert not (tmp_path / "a" / "ESCAPED.html").exists() and not (tmp_path / "ESCAPED.html").exists()


def test_report_target_refuses_names_that_leave_the_folder(tmp_path):
    from supervision.report import ReportError, report_target, safe_file_part

    assert "/" not in safe_file_part("../../etc/passwd") and not safe_file_part("..").startswith(".")
    assert safe_file_part("T01") == "T01"
    assert safe_file_part("a/b") != safe_file_part("a_b")  # two ids never share one file
    with pytest.raises(ReportError):
        report_target(tmp_path, "../x.html")
    with pytest.raises(ReportError):
        report_target(tmp_path, "sub/x.html")


def test_mistyped_notes_path_is_refused(tmp_path):
    data = small_export(tmp_path / "data", clinicians=("T01",))
    r = run("report", data, "--clinician", "T01", "--out", tmp_path / "r.html", "--notes", tmp_path / "nope.sqlite")
    assert r.returncode == 2 and "nope.sqlite" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r.html").exists()
