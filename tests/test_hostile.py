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


def small_export(folder: Path, clinicians=("T01", "T02"), rename: dict | None = None, max_clients: int | None = None) -> Path:
    """The demo clinic cut to ``clinicians`` (ids renamed by ``rename``; at most ``max_clients`` clients
    each), written as CSV into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rename = rename or {}
    keep = pd.read_csv(demo_path() / "clients.csv", dtype=str, keep_default_na=False)
    keep = keep[keep["clinician_id"].isin(clinicians)]
    if max_clients:
        keep = keep.groupby("clinician_id").head(max_clients)
    for name in ("clients", "sessions", "clinicians"):
        f = pd.read_csv(demo_path() / f"{name}.csv", dtype=str, keep_default_na=False)
        f = f[f["clinician_id"].isin(clinicians)].copy()
        if name != "clinicians":
            f = f[f["client_id"].isin(keep["client_id"])]
        f["clinician_id"] = f["clinician_id"].replace(rename)
        f.to_csv(folder / f"{name}.csv", index=False)
    return folder


# --- report paths ---------------------------------------------------------------------------------------------------

def test_clinician_id_cannot_choose_where_a_report_is_written(tmp_path):
    evil = "x/../../../ESCAPED"
    data = small_export(tmp_path / "data", rename={"T02": evil}, max_clients=15)
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


@pytest.mark.parametrize("section, key, value", [
    ("outcome", "instrument", "phq10"), ("adaptation", "fdr_scope", "everything"),
    ("outcome", "multiple_sg_select", "random"),
])
def test_settings_with_a_fixed_set_of_values_are_checked(section, key, value):
    from supervision.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match=f"{section}.{key}"):
        load_settings({section: {key: value}})


def test_every_numeric_setting_has_a_declared_range():
    from supervision.config import _RANGES, _defaults

    def numbers(d, prefix=""):
        for k, v in d.items():
            dotted = prefix + k
            if dotted in ("instruments", "focus"):  # checked by their own loaders
                continue
            if isinstance(v, dict):
                yield from numbers(v, dotted + ".")
            elif isinstance(v, (int, float, list)) and not isinstance(v, bool) and not (
                    isinstance(v, list) and not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
                yield dotted

    missing = [k for k in numbers(_defaults()) if k not in _RANGES and "*." + k.rsplit(".", 1)[-1] not in _RANGES
               and k.rsplit(".", 1)[0] + ".*" not in _RANGES]  # a table's wildcard (agenda.weights.*)
    assert not missing, f"add these settings to supervision.config._RANGES: {missing}"


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


@pytest.mark.parametrize("text", ["[outcome]\nintake_bands = 100000000\n", "[alliance]\nsd_criterion = inf\n"])
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
    "INSERT OR REPLACE INTO version_chain3 (seq, kind, record_id, version, digest) VALUES (1, 'note', 1, 1, '"
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
        # schema 2 chained the 4 old versions; the edit's link goes on in schema 3's table
        assert c.execute("SELECT count(*) FROM version_chain").fetchone()[0] == 4
        assert c.execute("SELECT count(*) FROM version_chain3").fetchone()[0] == 1


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
    from supervision.privacy import pseudonymise

    assert not any("chmod" in n for n in pseudonymise(data, tmp_path / "out2", key).notes)


# --- file bombs: refused within declared limits, under a 1 GiB address-space cap ---------------------------------------

GIB = 2**30

_CAPPED = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from supervision.io import load_caseload
cl = load_caseload(sys.argv[1])
print(json.dumps({{"status": cl.status, "problems": cl.report["problem"].astype(str).tolist(),
                  "checks": cl.report["check"].astype(str).tolist(),
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}}))
"""


def load_capped(path: Path, cap: int = GIB) -> dict:
    """Load ``path`` in a child process whose address space is capped at ``cap`` bytes (RLIMIT_AS)."""
    import json
    import os

    r = subprocess.run([sys.executable, "-c", _CAPPED.format(cap=cap), str(path)], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _sparse_bomb(path: Path) -> Path:
    """An .xlsx of a few KB whose sessions sheet has a cell at XFD1 and one at A200000 (pandas pads every row
    to 16,384 columns: 3.3 billion cells)."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "sessions"
    ws.append(["client_id", "clinician_id", "session_date", "attendance"])
    ws.cell(row=1, column=16384, value="x")
    ws.cell(row=200_000, column=1, value="C1")
    clients = wb.create_sheet("clients")
    clients.append(["client_id", "clinician_id", "start_date"])
    clients.append(["C1", "T1", "2025-01-01"])
    wb.save(path)
    return path


def _string_bomb(path: Path, mib: int = 600) -> Path:
    """A valid small workbook plus, in an unused sheet, one cell of ``mib`` MiB of text (deflated to ~1 MB)."""
    import zipfile

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "clients"
    ws.append(["client_id", "clinician_id", "start_date"])
    ws.append(["C1", "T1", "2025-01-01"])
    s = wb.create_sheet("sessions")
    s.append(["client_id", "clinician_id", "session_date", "attendance"])
    s.append(["C1", "T1", "2025-01-08", "attended"])
    wb.create_sheet("unused").append(["x"])
    wb.save(path)
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    sheet = "xl/worksheets/sheet3.xml"
    head, tail = parts[sheet].split(b"<sheetData>")[0], b"</sheetData>" + parts[sheet].split(b"</sheetData>")[1]
    chunk = b"A" * 2**20
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            if name != sheet:
                z.writestr(name, data)
        with z.open(sheet, "w", force_zip64=True) as f:
            f.write(head + b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>')
            for _ in range(mib):
                f.write(chunk)
            f.write(b"</t></is></c></row>" + tail)
    return path


def test_a_sparse_xlsx_bomb_is_refused_under_1_gib(tmp_path):
    path = _sparse_bomb(tmp_path / "bomb.xlsx")
    assert path.stat().st_size < 100_000
    got = load_capped(path)
    assert got["status"] == "unusable"
    assert any("column 16384" in p and "beyond" in p for p in got["problems"]), got["problems"]
    print("sparse bomb: peak RSS", got["maxrss_mib"], "MiB")


def test_a_long_string_xlsx_bomb_is_refused_under_1_gib(tmp_path):
    path = _string_bomb(tmp_path / "bomb.xlsx")
    assert path.stat().st_size < 3_000_000
    got = load_capped(path)
    assert got["status"] == "unusable"
    assert any("unpacks to 600 MiB" in p for p in got["problems"]), got["problems"]
    print("string bomb: peak RSS", got["maxrss_mib"], "MiB")


def test_the_same_workbooks_without_the_bomb_load_under_the_cap(tmp_path):
    import openpyxl

    path = _sparse_bomb(tmp_path / "ok.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["sessions"].cell(row=1, column=16384).value = None
    wb["sessions"].cell(row=200_000, column=1).value = None
    wb["sessions"].append(["C1", "T1", "2025-01-08", "attended"])
    wb.save(path)
    got = load_capped(path)
    assert got["status"] in ("clean", "problems"), got
    small = _string_bomb(tmp_path / "small.xlsx", mib=1)
    got = load_capped(small)
    assert got["status"] in ("clean", "problems"), got


def test_a_formula_without_a_stored_value_is_reported(tmp_path):
    import openpyxl

    from supervision.io import load_caseload

    frames = {t: pd.read_csv(small_export(tmp_path / "d", clinicians=("T01",)) / f"{t}.csv", dtype=str,
                             keep_default_na=False) for t in ("clients", "sessions", "clinicians")}
    path = tmp_path / "f.xlsx"
    with pd.ExcelWriter(path) as xw:
        for t, f in frames.items():
            f.to_excel(xw, sheet_name=t, index=False)
    wb = openpyxl.load_workbook(path)
    ws = wb["sessions"]
    col = [c.value for c in ws[1]].index("srs_1") + 1
    ws.cell(row=2, column=col).value = "=4+5"  # openpyxl stores no result: as a script or a web export would
    wb.save(path)
    cl = load_caseload(path)
    rep = cl.report[cl.report["check"] == "formula_without_value"]
    assert len(rep) == 1 and rep["row"].tolist() == [2] and rep["table"].tolist() == ["sessions"]


# --- FHIR: one bad line never aborts the import ------------------------------------------------------------------------

def _qr(rid: str, subject: str, scores=(1, 2, 1, 0, 1, 2, 1, 0, 0), decimal: float | None = None) -> dict:
    codes = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
    items = [{"linkId": "/" + c, "answer": [{"valueInteger": s}]} for c, s in zip(codes, scores)]
    if decimal is not None:
        items[2]["answer"] = [{"valueDecimal": decimal}]
    return {"resourceType": "QuestionnaireResponse", "id": rid, "questionnaire": "http://loinc.org/q/44249-1",
            "status": "completed", "subject": {"reference": f"Patient/{subject}"},
            "author": {"reference": "Practitioner/T01"}, "authored": "2025-02-03T10:00:00Z", "item": items}


def _ndjson(resources: list) -> bytes:
    import json

    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in resources)


def test_a_deeply_nested_ndjson_line_is_reported_and_the_rest_imported(tmp_path):
    deep = b'{"resourceType": "QuestionnaireResponse", "item": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    medium = {"resourceType": "QuestionnaireResponse", "id": "m", "item": []}
    node = medium
    for _ in range(200):  # deep enough for a recursive walk, too shallow for json's own limit
        node["item"] = [{"linkId": "x", "item": []}]
        node = node["item"][0]
    path = tmp_path / "export.ndjson"
    path.write_bytes(_ndjson([_qr("a", "P1"), deep, medium, _qr("b", "P2")]))
    out = tmp_path / "out"
    r = run("import", "fhir", path, "--out", out)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "went wrong" not in r.stderr
    rep = pd.read_csv(out / "import_report.csv", encoding="utf-8-sig")
    assert sorted(rep.loc[rep["check"] == "too_deep", "row"].tolist()) == [2, 3]
    assert len(pd.read_csv(out / "clients.csv", encoding="utf-8-sig")) == 2


def test_a_truncated_gz_keeps_what_was_read_and_reports_the_rest(tmp_path):
    import gzip

    data = gzip.compress(_ndjson([_qr(f"r{i}", f"P{i}") for i in range(400)]))
    path = tmp_path / "export.ndjson.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out"
    r = run("import", "fhir", path, "--out", out)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "went wrong" not in r.stderr
    rep = pd.read_csv(out / "import_report.csv", encoding="utf-8-sig")
    assert "unreadable_file" in set(rep["check"])
    assert 0 < len(pd.read_csv(out / "clients.csv", encoding="utf-8-sig")) < 400


def test_a_line_longer_than_the_limit_is_skipped_without_holding_it(tmp_path, monkeypatch):
    import supervision.io.fhir as fhir

    monkeypatch.setattr(fhir, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "export.ndjson"
    path.write_bytes(_ndjson([_qr("a", "P1"), b'{"x": "' + b"y" * 5000 + b'"}', _qr("b", "P2")]))
    tables, problems = fhir.read_fhir(path)
    assert [p["check"] for p in problems if p["severity"] == "error"] == ["line_too_long"]
    assert len(tables["clients"].frame) == 2


def test_a_fractional_phq9_answer_is_not_imported_silently(tmp_path):
    from supervision.io.fhir import read_fhir

    path = tmp_path / "export.ndjson"
    path.write_bytes(_ndjson([_qr("a", "P1", decimal=2.5)]))
    tables, problems = read_fhir(path)
    hit = [p for p in problems if "2.5" in str(p["value"]) or "2.5" in p["problem"]]
    assert hit and "whole number" in hit[0]["problem"]


# --- lesser loader points ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("twin", ["\u0422" + "01", "T0\u200b1"])  # Cyrillic Te; a zero-width space
def test_lookalike_clinician_ids_are_reported(tmp_path, twin):
    from supervision.io import load_caseload

    data = small_export(tmp_path / "data", clinicians=("T01",))
    clients = pd.read_csv(data / "clients.csv", dtype=str, keep_default_na=False)
    sessions = pd.read_csv(data / "sessions.csv", dtype=str, keep_default_na=False)
    first = clients.loc[0, "client_id"]
    clients.loc[0, "clinician_id"] = twin
    sessions.loc[sessions["client_id"] == first, "clinician_id"] = twin
    clients.to_csv(data / "clients.csv", index=False)
    sessions.to_csv(data / "sessions.csv", index=False)
    cl = load_caseload(data)
    rep = cl.report[cl.report["check"] == "lookalike_id"]
    assert len(rep) and "T01" in " ".join(rep["problem"]) and cl.status == "problems"
    counts = cl.counts.set_index("table")
    assert (counts["read"] == counts["loaded"] + counts["quarantined"]).all()


def test_plain_ascii_ids_are_not_flagged():
    from supervision.io import load_caseload

    cl = load_caseload(demo_path())
    assert "lookalike_id" not in set(cl.report["check"])


def test_a_parquet_beside_a_csv_is_reported(tmp_path):
    from supervision.io import load_caseload

    data = small_export(tmp_path / "data", clinicians=("T01",))
    pd.read_csv(data / "clients.csv", dtype=str).head(3).to_parquet(data / "clients.parquet")
    cl = load_caseload(data)
    rep = cl.report[cl.report["check"] == "shadowed_table"]
    assert len(rep) == 1 and "clients.csv was ignored" in rep["problem"].iloc[0]


@pytest.mark.parametrize("encoding, sep", [("utf-16", ","), ("utf-16-le", ","), ("utf-16", "\t")])
def test_utf16_files_are_read_as_utf16(tmp_path, encoding, sep):
    from supervision.io import load_caseload

    data = small_export(tmp_path / "data", clinicians=("T01",))
    text = (data / "clinicians.csv").read_text().replace(",", sep)
    (data / "clinicians.csv").write_bytes(text.encode(encoding))
    cl = load_caseload(data)
    assert "missing_column" not in set(cl.report["check"])
    enc = cl.report[cl.report["check"] == "encoding"]
    assert len(enc) == 1 and "UTF-16" in enc["problem"].iloc[0]
    assert cl.clinicians["clinician_id"].tolist() == ["T01"]


def test_an_unreadable_end_date_quarantines_the_episode(tmp_path):
    from supervision.io import load_caseload

    data = small_export(tmp_path / "data", clinicians=("T01",))
    clients = pd.read_csv(data / "clients.csv", dtype=str, keep_default_na=False)
    i = clients.index[clients["end_date"] != ""][0]
    clients.loc[i, "end_date"] = "31/02/2025x"
    clients.to_csv(data / "clients.csv", index=False)
    cl = load_caseload(data)
    rep = cl.report[(cl.report["check"] == "bad_date") & (cl.report["column"] == "end_date")]
    assert rep["severity"].tolist() == ["error"]
    assert clients.loc[i, "client_id"] not in set(cl.clients["client_id"])  # not loaded as an open episode
    counts = cl.counts.set_index("table")
    assert (counts["read"] == counts["loaded"] + counts["quarantined"]).all()


# --- disclosure control of adaptation tables: an LP attacker against every margin, at every size ------------------------

_POLICY_T = {"nhs": 7, "cms": 10}


def _gap_table(counts: dict, seed: int = 0) -> pd.DataFrame:
    """A table shaped as adaptation_gaps: ``counts[(dimension, metric)]`` = clinicians x groups array."""
    import numpy as np

    rows = []
    for (dim, metric), arr in counts.items():
        arr = np.asarray(arr)
        tot, svc = arr.sum(axis=1), arr.sum(axis=0)
        for c in range(arr.shape[0]):
            for g in range(arr.shape[1]):
                if arr[c, g] == 0:
                    continue  # a clinician without clients in a group has no row
                for comp, n_comp in (("clinician", tot[c] - arr[c, g]), ("service", svc[g] - arr[c, g])):
                    rows.append({"clinician_id": f"T{c:03d}", "dimension": dim, "group": f"g{g}", "metric": metric,
                                 "comparator": comp, "n_group": int(arr[c, g]), "n_comparator": int(n_comp),
                                 "value_group": 0.5, "value_comparator": 0.5, "verdict": "no evidence"})
    return pd.DataFrame(rows)


def _attack(shown: pd.DataFrame, truth: pd.DataFrame, T: int) -> list:
    """Every hidden count of 1..T that an attacker can bound to at most T, by linear programming.

    The attacker knows every shown count exactly (the unrounded rates and intervals give them
    away even under rounding), that hidden counts are >= 0, each clinician's total in a block
    when any of its 'clinician' comparator counts is shown, and each group's service total
    when any of its 'service' comparator counts is shown.
    """
    import numpy as np
    from scipy.optimize import linprog

    weak = []
    key = ["clinician_id", "dimension", "metric", "group"]
    t = truth.set_index(key + ["comparator"])
    for (dim, metric), block in shown.groupby(["dimension", "metric"]):
        cells = block.drop_duplicates(key).reset_index(drop=True)
        true_n = t.xs("clinician", level="comparator").loc[[tuple(r) for r in cells[key].to_numpy()], "n_group"]
        true_n = true_n.to_numpy(dtype=float)
        hidden = cells["n_group"].isna().to_numpy()
        m = len(cells)
        bounds = [(0, None) if hidden[i] else (true_n[i], true_n[i]) for i in range(m)]
        a_eq, b_eq = [], []
        for comp, by in (("clinician", "clinician_id"), ("service", "group")):
            rows = block[(block["comparator"] == comp) & block["n_comparator"].notna() & block["n_group"].notna()]
            for name in rows[by].unique():
                r = rows[rows[by] == name].iloc[0]
                total = float(t.loc[(r["clinician_id"], dim, metric, r["group"], comp), "n_group"]
                              + t.loc[(r["clinician_id"], dim, metric, r["group"], comp), "n_comparator"])
                members = np.flatnonzero(cells[by].to_numpy() == name)
                row = np.zeros(m)
                row[members] = 1.0
                if comp == "service":
                    a_eq.append(row), b_eq.append(total)  # the group's cells add up to the service's group
                else:
                    a_eq.append(row), b_eq.append(total)  # the clinician's cells add up to the clinician's total
        for i in np.flatnonzero(hidden & (true_n >= 1) & (true_n <= T)):
            obj = np.zeros(m)
            obj[i] = -1.0
            res = linprog(obj, A_eq=np.array(a_eq) if a_eq else None, b_eq=b_eq or None, bounds=bounds, method="highs")
            if res.status == 0 and -res.fun < T + 1 - 1e-9:
                weak.append((dim, metric, cells.loc[i, "clinician_id"], cells.loc[i, "group"], true_n[i], -res.fun))
    return weak


def _check_published(shown: pd.DataFrame, truth: pd.DataFrame, T: int) -> None:
    # nothing small is shown: counts of 1..T are hidden, and so is every comparator count of 1..T
    n = shown["n_group"].astype("Float64")
    assert not ((n >= 1) & (n <= T)).fillna(False).any()
    comp = shown["n_comparator"].astype("Float64")
    assert not ((comp >= 1) & (comp <= T)).fillna(False).any()
    # and no estimate is shown where a count is hidden
    gone = shown["n_group"].isna() | shown["n_comparator"].isna()
    for col in ("value_group", "value_comparator"):
        assert shown.loc[gone, col].isna().all()
    weak = _attack(shown, truth, T)
    assert not weak, f"{len(weak)} hidden counts narrowed to 1..{T}: {weak[:5]}"


@pytest.mark.parametrize("policy", ["nhs", "cms"])
@pytest.mark.parametrize("shape, seed", [((2, 2), 1), ((3, 4), 2), ((6, 3), 3), ((12, 7), 4), ((40, 5), 5)])
def test_no_hidden_gap_count_can_be_narrowed_at_any_size(policy, shape, seed):
    import numpy as np

    from supervision.metrics.adaptation import suppress_gaps

    rng = np.random.default_rng(seed)
    counts = {}
    for dim in ("d1", "d2"):
        for metric in ("m1", "m2"):
            arr = rng.choice([0, 1, 2, 3, 4, 6, 9, 12, 20, 35], size=shape, p=[.1, .15, .15, .1, .1, .1, .1, .1, .05, .05])
            counts[(dim, metric)] = arr
    truth = _gap_table(counts)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        shown = suppress_gaps(truth, policy=policy)
    _check_published(shown, truth, _POLICY_T[policy])


@pytest.mark.parametrize("policy", ["nhs"])  # cms: the synthetic tables above (the demo takes ~10 s a policy)
def test_no_hidden_gap_count_of_the_demo_service_can_be_narrowed(policy):
    from supervision.io import load_caseload
    from supervision.metrics.adaptation import suppress_gaps
    from supervision.metrics.tables import metric_tables

    truth = metric_tables(load_caseload(demo_path()))["adaptation_gaps"]
    shown = suppress_gaps(truth, policy=policy)
    assert shown.attrs["suppression"]["audit"] == "passed"
    _check_published(shown, truth, _POLICY_T[policy])
    one = shown[shown["clinician_id"] == "T01"]  # what one clinician's report shows is a part of it
    assert len(one) and one["n_group"].notna().any()


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_a_fractional_phq9_answer_is_reported(tmp_path, layout):
    from supervision.io import load_caseload

    data = small_export(tmp_path / "data", clinicians=("T01",))
    sessions = pd.read_csv(data / "sessions.csv", dtype=str, keep_default_na=False)
    att = sessions.index[sessions["attendance"] == "attended"][0]
    if layout == "wide":
        sessions["phq9_1"] = ""
        sessions.loc[att, "phq9_1"] = "2.5"
        sessions.to_csv(data / "sessions.csv", index=False)
    else:
        pd.DataFrame({"client_id": [sessions.loc[att, "client_id"]] * 2,
                      "session_date": [sessions.loc[att, "session_date"]] * 2,
                      "instrument": ["phq9", "phq9"], "item": ["1", "2"], "value": ["2.5", "2"]}
                     ).to_csv(data / "scores.csv", index=False)
    cl = load_caseload(data)
    rep = cl.report[cl.report["check"] == "not_whole"]
    assert len(rep) == 1 and "2.5" in str(rep["value"].iloc[0])
    counts = cl.counts.set_index("table")
    assert (counts["read"] == counts["loaded"] + counts["quarantined"]).all()


def test_a_mapped_import_of_an_xlsx_bomb_is_refused_under_1_gib(tmp_path):
    import json
    import os

    book = _sparse_bomb(tmp_path / "bomb.xlsx")
    mapping = tmp_path / "m.toml"
    mapping.write_text('[sessions]\nsheet = "sessions"\n[sessions.columns]\nclient_id = "client_id"\n'
                       'clinician_id = "clinician_id"\nsession_date = "session_date"\nattendance = "attendance"\n'
                       '[clients]\nsheet = "clients"\n[clients.columns]\nclient_id = "client_id"\n'
                       'clinician_id = "clinician_id"\nstart_date = "start_date"\n')
    code = (f"import json, resource, sys\nresource.setrlimit(resource.RLIMIT_AS, ({GIB}, {GIB}))\n"
            "from supervision.io.mapping import read_mapped\n"
            "raw, problems = read_mapped(sys.argv[1], sys.argv[2])\n"
            "print(json.dumps([str(p['problem']) for p in problems]))\n")
    r = subprocess.run([sys.executable, "-c", code, str(book), str(mapping)], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    problems = json.loads(r.stdout.strip().splitlines()[-1])
    assert any("column 16384" in p for p in problems), problems


def test_a_parquet_declaring_more_cells_than_the_limit_is_refused(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    import supervision.io.readers as readers
    from supervision.io import load_caseload

    data = small_export(tmp_path / "data", clinicians=("T01",))
    n = 2_000_000  # a constant column: a few KB on disk, 2 million rows once read
    pq.write_table(pa.table({"client_id": pa.array(["C1"] * 1).take(pa.array([0] * n)),
                             "clinician_id": pa.array(["T01"] * 1).take(pa.array([0] * n))}),
                   data / "clinicians.parquet")
    (data / "clinicians.csv").unlink()
    assert (data / "clinicians.parquet").stat().st_size < 200_000
    monkeypatch.setattr(readers, "PARQUET_MAX_CELLS", 1_000_000)
    cl = load_caseload(data)
    rep = cl.report[cl.report["check"] == "unreadable_file"]
    assert len(rep) == 1 and "declares 2,000,000 rows" in rep["problem"].iloc[0]


def test_the_dashboard_save_report_stays_in_its_folder(tmp_path):
    from supervision.io import load_caseload
    from supervision.widgets.supervision import supervision_dashboard

    evil = "x/../../ESCAPED"
    cl = load_caseload(small_export(tmp_path / "data", rename={"T02": evil}, max_clients=15))
    reports = tmp_path / "a" / "reports"
    dash = supervision_dashboard(cl, supervisee=evil, notes_path=tmp_path / "n.sqlite", report_dir=reports).dashboard
    assert dash.selection.supervisee == evil
    dash.report_button.click()
    assert dash.error.value == "", dash.error.value
    files = list(reports.iterdir())
    assert len(files) == 1 and files[0].resolve().parent == reports.resolve()
    assert not list(tmp_path.glob("ESCAPED*")) and not list((tmp_path / "a").glob("ESCAPED*"))


def test_the_intake_bands_bomb_is_refused_under_1_gib(tmp_path):
    import os

    s = tmp_path / "s.toml"
    s.write_text("[outcome]\nintake_bands = 100000000\n")
    code = (f"import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, ({GIB}, {GIB}))\n"
            "from supervision.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    r = subprocess.run([sys.executable, "-c", code, "metrics", str(demo_path()), "--out", str(tmp_path / "m"),
                        "--settings", str(s)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2 and "outcome.intake_bands" in r.stderr and "between 1 and 20" in r.stderr, r.stderr
