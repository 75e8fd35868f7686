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


# --- loader: ragged lines, encodings, look-alike ids, shadowed files -------------------------------------------------

def test_a_cut_short_line_is_quarantined_and_reported(tmp_path):
    data = small_export(tmp_path / "data", clinicians=("T01",))
    lines = (data / "sessions.csv").read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if k and line.split(",")[9])  # a line with SRS scores
    lines[i] = ",".join(lines[i].split(",")[:6])  # cut to 6 of 31 fields
    (data / "sessions.csv").write_text("\n".join(lines) + "\n")
    r = run("validate", data)
    assert r.returncode == 1, r.stdout
    assert "no problems found" not in r.stdout and "ragged_line" in r.stdout and "Traceback" not in r.stderr
    from supervision.io import load_caseload

    cl = load_caseload(data)
    rep = cl.report[cl.report["check"] == "ragged_line"]
    assert rep["row"].tolist() == [i + 1]
    counts = cl.counts.set_index("table")
    assert (counts["read"] == counts["loaded"] + counts["quarantined"]).all()
    assert counts.loc["sessions", "read"] == len(lines) - 1 and counts.loc["sessions", "quarantined"] == 1


# --- settings: every number has a checked range ----------------------------------------------------------------------

@pytest.mark.parametrize("section, key, value", [
    ("outcome", "confidence", 1.5), ("outcome", "min_attended", -2), ("alliance", "srs_cutoff", 1e308),
    ("alliance", "sd_criterion", float("inf")), ("alliance", "sd_criterion", float("nan")),
    ("adaptation", "min_n", -1), ("adaptation", "fdr_q", 2.0), ("outcome", "intake_bands", 100_000_000),
    ("outcome", "percentiles", [10.0, 120.0]), ("privacy", "nhs_rounding", 0), ("privacy", "min_key_bytes", 1),
])
def test_out_of_range_settings_are_refused_in_a_sentence(section, key, value):
    from supervision.config import SettingsError, load_settings

    with pytest.raises(SettingsError) as err:
        load_settings({section: {key: value}})
    assert f"{section}.{key}" in str(err.value)


def test_the_defaults_are_within_their_ranges():
    from supervision.config import _defaults, _merge

    _merge(_defaults(), _defaults(), "", "defaults")  # every default passes its own checks


def test_unknown_identity_dimensions_are_refused_or_reported(tmp_path):
    from supervision.config import SettingsError, load_settings
    from supervision.io import load_caseload

    with pytest.raises(SettingsError, match="identity.dimensions"):
        load_settings({"identity": {"dimensions": ["gender identity"]}})
    with pytest.raises(SettingsError, match="twice"):
        load_settings({"identity": {"dimensions": ["age_band", "age_band"]}})
    data = small_export(tmp_path / "data", clinicians=("T01",))
    cl = load_caseload(data, settings={"identity": {"dimensions": ["gender_identiy"]}})
    assert "gender_identiy" in set(cl.report.loc[cl.report["check"] == "unknown_dimension", "column"])


@pytest.mark.parametrize("text", ["[outcome]\nintake_bands = 100000000\n", "[adaptation]\nmin_n = -3\n",
                                  "[adaptation]\nfdr_q = 2\n", "[alliance]\nsd_criterion = inf\n"])
def test_cli_refuses_out_of_range_settings_with_exit_2(tmp_path, text):
    s = tmp_path / "s.toml"
    s.write_text(text)
    r = run("validate", demo_path(), "--settings", s)
    assert r.returncode == 2 and "Settings problem" in r.stderr and "Traceback" not in r.stderr
    assert "went wrong" not in r.stderr


# --- notes: history cannot be rewritten, tampering is detected ----------------------------------------------------------

def _notes_db(tmp_path):
    from supervision.notes import NotesStore

    db = tmp_path / "notes.sqlite"
    with NotesStore(db) as s:
        m = s.start_meeting("S1", "T01", date="2025-03-04")
        nid = s.add_note("first words", author="S1", meeting_id=m)
        s.edit_note(nid, "second words", "S1")
        s.add_action(m, "read the chapter", owner="T01")
    return db, nid


def _raw(db):
    import sqlite3

    return sqlite3.connect(db, isolation_level=None)


@pytest.mark.parametrize("sql", [
    "INSERT OR REPLACE INTO note_version (note_id, version, text, deleted, change, author, recorded_at) "
    "VALUES (1, 1, 'rewritten', 0, 'created', 'S1', '2025-01-01T00:00:00.000000+00:00')",
    "REPLACE INTO note (note_id, meeting_id, client_id, created_at, created_by) VALUES (1, 1, NULL, 'x', 'y')",
    "INSERT INTO note_version (note_id, version, text, deleted, change, author, recorded_at) "
    "VALUES (1, 2, 'x', 0, 'edited', 'S1', 'x') ON CONFLICT DO UPDATE SET text = 'rewritten'",
    "INSERT INTO note_version (note_id, version, text, deleted, change, author, recorded_at) "
    "VALUES (1, 9, 'a later version out of order', 0, 'edited', 'S1', 'x')",
    "INSERT OR REPLACE INTO version_chain (seq, kind, record_id, version, digest) VALUES (1, 'note', 1, 1, '"
    + "0" * 64 + "')",
])
def test_notes_history_cannot_be_replaced_by_hand(tmp_path, sql):
    import sqlite3

    from supervision.notes import NotesStore

    db, nid = _notes_db(tmp_path)
    with _raw(db) as c:
        with pytest.raises(sqlite3.IntegrityError, match="supervision notes"):
            c.execute(sql)
    with NotesStore(db) as s:
        assert s.history("note", nid)["text"].tolist() == ["first words", "second words"]
        assert s.integrity_check() == "ok"


def test_tampering_after_dropping_the_triggers_is_detected(tmp_path):
    from supervision.notes import NotesStore

    db, nid = _notes_db(tmp_path)
    c = _raw(db)
    c.execute("DROP TRIGGER note_version_no_update")
    c.execute("UPDATE note_version SET text = 'rewritten' WHERE note_id = 1 AND version = 1")
    c.close()
    with NotesStore(db) as s:
        found = s.integrity_check()
    assert "note_version_no_update is missing" in found and "note 1 version 1 does not match" in found

    (tmp_path / "b").mkdir()
    db, nid = _notes_db(tmp_path / "b")
    c = _raw(db)
    for t in ("note_version_next_version", "note_version_no_replace"):
        c.execute(f"DROP TRIGGER {t}")
    c.execute("INSERT INTO note_version (note_id, version, text, deleted, change, author, recorded_at) "
              "VALUES (1, 3, 'slipped in', 0, 'edited', 'S1', '2025-01-01T00:00:00.000000+00:00')")
    c.execute("CREATE TRIGGER note_version_next_version BEFORE INSERT ON note_version BEGIN SELECT 1; END")
    c.execute("CREATE TRIGGER note_version_no_replace BEFORE INSERT ON note_version BEGIN SELECT 1; END")
    c.close()
    with NotesStore(db) as s:
        assert "note 1 version 3 is not in the hash chain" in s.integrity_check()


def test_a_notes_file_of_schema_1_is_chained_on_upgrade(tmp_path, monkeypatch):
    import supervision.notes as notes_mod
    from supervision.notes import NotesStore

    monkeypatch.setattr(notes_mod, "_MIGRATIONS", notes_mod._MIGRATIONS[:1])
    monkeypatch.setattr(notes_mod, "SCHEMA_VERSION", 1)
    monkeypatch.setattr(notes_mod, "_chain_link", lambda *a: None)  # the release before the chain
    db, nid = _notes_db(tmp_path)
    monkeypatch.undo()
    with NotesStore(db) as s:
        assert s.integrity_check() == "ok"
        s.edit_note(nid, "third words", "S1")
        assert s.integrity_check() == "ok"
    with _raw(db) as c:
        assert c.execute("SELECT count(*) FROM version_chain").fetchone()[0] == 5


# --- pseudonymisation: no key in the output, no name through free-text columns, key file permissions ------------------

def _key_file(path: Path, mode: int = 0o600) -> Path:
    import secrets

    path.write_text(secrets.token_hex(32))
    path.chmod(mode)
    return path


def test_a_key_pasted_into_the_data_is_caught_in_xlsx_output(tmp_path):
    from supervision.privacy import PseudonymiseError, pseudonymise

    data = small_export(tmp_path / "data", clinicians=("T01",))
    key = _key_file(tmp_path / "k.txt")
    clients = pd.read_csv(data / "clients.csv", dtype=str, keep_default_na=False)
    clients["memo"] = key.read_text()  # a column outside the contract, kept on request
    clients.to_csv(data / "clients.csv", index=False)
    with pytest.raises(PseudonymiseError, match="key was found"):
        pseudonymise(data, tmp_path / "out.xlsx", key, settings={"privacy": {"keep_unknown_columns": True}})
    assert not (tmp_path / "out.xlsx").exists()


def test_names_in_free_text_contract_columns_do_not_pass_through(tmp_path):
    from supervision.privacy import pseudonymise

    data = small_export(tmp_path / "data", clinicians=("T01",))
    sessions = pd.read_csv(data / "sessions.csv", dtype=str, keep_default_na=False)
    sessions.loc[0, "modality"] = "Seen with Qzjane Doe"
    sessions.to_csv(data / "sessions.csv", index=False)
    clients = pd.read_csv(data / "clients.csv", dtype=str, keep_default_na=False)
    clients.loc[0, "primary_language"] = "Qzinterpreter Mr Smith"
    clients.to_csv(data / "clients.csv", index=False)
    clinicians = pd.read_csv(data / "clinicians.csv", dtype=str, keep_default_na=False)
    clinicians.loc[0, "role"] = "Trainee (Qzalice Brown)"
    clinicians.to_csv(data / "clinicians.csv", index=False)
    s = pseudonymise(data, tmp_path / "out", _key_file(tmp_path / "k.txt"))
    blob = b"".join(p.read_bytes() for p in (tmp_path / "out").iterdir())
    assert b"Qz" not in blob
    assert any("sessions.modality" in n for n in s.notes) and any("clinicians.role" in n for n in s.notes)
    out = pd.read_csv(tmp_path / "out" / "sessions.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert set(out["modality"]) <= {"in_person", "video", "phone", "other", ""}  # codes pass unchanged


def test_a_world_readable_key_file_is_warned_about(tmp_path):
    data = small_export(tmp_path / "data", clinicians=("T01",))
    key = _key_file(tmp_path / "k.txt", 0o644)
    r = run("pseudonymise", data, tmp_path / "out", "--key-file", key)
    assert r.returncode == 0 and "chmod 600" in r.stdout and "Traceback" not in r.stderr
    key.chmod(0o600)
    r = run("pseudonymise", data, tmp_path / "out2", "--key-file", key)
    assert r.returncode == 0 and "chmod" not in r.stdout
