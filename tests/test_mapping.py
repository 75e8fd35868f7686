"""Column-mapping import (supervision.io.mapping) and the two shipped example mappings.

Oracles: the synthetic example exports in tests/data/mapped/ (every expected value below is read
off those small files by hand), and plain-pandas recomputation (ORS items sum to the given total).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from supervision.io import load_caseload, load_tables
from supervision.cli import import_mapped_command
from supervision.io.mapping import MappingError, import_mapped, load_mapping, read_mapped

ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = ROOT / "data" / "mappings"
DATA = Path(__file__).resolve().parent / "data" / "mapped"
ORS_SRS = (DATA / "ors_srs", MAPPINGS / "ors_srs_platform.toml")
EHR = (DATA / "ehr", MAPPINGS / "ehr_appointments.toml")


def rows(cl, table, check):
    r = cl.report
    return r[(r["table"] == table) & (r["check"] == check)]


# --------------------------------------------------------------------------------------------
# the ORS/SRS platform example
# --------------------------------------------------------------------------------------------

def test_ors_srs_platform_example():
    raw, problems = read_mapped(*ORS_SRS)
    cl = load_tables(raw, reader_problems=problems)
    counts = cl.counts.set_index("table")
    assert counts.loc["sessions"].tolist() == [14, 12, 2] and counts.loc["clients"].tolist() == [4, 4, 0]
    # two session lines quarantined, each reported at its line in ors_srs_export.csv
    rs = rows(cl, "sessions", "unknown_code")
    assert rs[["row", "value"]].values.tolist() == [[10, "RS"]]                   # attendance "RS": not in the mapping
    hint = rows(cl, "sessions", "unmapped_value")
    assert hint["value"].tolist() == ["RS"] and "[sessions.values.attendance]" in hint["fix"].item()
    bad = rows(cl, "sessions", "bad_date")
    assert bad["row"].tolist() == [13] and bad["value"].item() == "31/02/2025 (not DD/MM/YYYY)"
    s = cl.sessions.set_index(["client_id", "session_date"])
    first = s.loc[("K-101", pd.Timestamp("2025-01-06"))]                          # DD/MM/YYYY read as day first
    assert first["attendance"] == "attended" and first["srs_total"] == 35.5 and first["ors_total"] == pytest.approx(17.9)
    assert s.loc[("K-101", pd.Timestamp("2025-01-20")), "attendance"] == "no_show"         # DNA
    assert s.loc[("K-103", pd.Timestamp("2025-01-16")), "attendance"] == "cancelled"       # CBP
    att = cl.sessions[cl.sessions["attendance"] == "attended"]
    assert (att[["ors_1", "ors_2", "ors_3", "ors_4"]].sum(axis=1) - att["ors_total"]).abs().max() < 1e-9
    c = cl.clients.set_index("client_id")
    assert c.loc["K-101", ["start_date", "end_date", "end_reason"]].tolist() == [
        pd.Timestamp("2025-01-06"), pd.Timestamp("2025-02-03"), "planned"]
    assert c.loc["K-103", ["end_date", "end_reason"]].tolist() == [pd.Timestamp("2025-02-20"), "unilateral"]
    assert pd.isna(c.loc["K-102", "end_date"])
    assert c["gender_identity"].tolist() == ["woman", "non_binary", "man", "declined"]
    assert c["clinician_id"].tolist() == ["W07", "W07", "W12", "W12"]
    # the free-text column is never read
    assert not any("Session Notes" in rt.frame.columns or "Notes" in " ".join(rt.frame.columns) for rt in raw.values())


# --------------------------------------------------------------------------------------------
# the EHR appointment-list example
# --------------------------------------------------------------------------------------------

def test_ehr_appointments_example():
    raw, problems = read_mapped(*EHR)
    cl = load_tables(raw, reader_problems=problems)
    counts = cl.counts.set_index("table")
    assert counts.loc["sessions"].tolist() == [15, 14, 1]      # 16 lines, the Admin slot left out by keep
    assert counts.loc["clients"].tolist() == [4, 4, 0]
    assert counts.loc["scores"].tolist() == [22, 21, 1]
    keep = rows(cl, "sessions", "kept_out_by_mapping")
    assert keep["value"].item() == "1 row" and "Appointment Type" in keep["problem"].item()
    assert rows(cl, "sessions", "unknown_code")[["row", "value"]].values.tolist() == [[15, "Rescheduled"]]
    assert rows(cl, "scores", "unknown_code")[["row", "value"]].values.tolist() == [[22, "WSAS"]]
    assert rows(cl, "sessions", "clinician_mismatch")["row"].tolist() == [17]
    s = cl.sessions.set_index(["client_id", "session_date"])
    assert s.loc[("R0001", pd.Timestamp("2025-01-21")), "phq9_total"] == 10     # 2+2+1+2+1+1+1+0+0, scored from items
    assert s.loc[("R0001", pd.Timestamp("2025-02-18")), "phq9_total"] == 5      # 1+1+1+1+0+1+0+0+0
    assert s.loc[("R0002", pd.Timestamp("2025-01-27")), "gad7_total"] == 12
    assert s.loc[("R0002", pd.Timestamp("2025-02-03")), "attendance"] == "attended"     # "Attended - late"
    assert s.loc[("R0002", pd.Timestamp("2025-02-10")), "attendance"] == "cancelled"    # by clinician
    assert s.loc[("R0002", pd.Timestamp("2025-01-27")), "modality"] == "phone"
    assert (pd.Timestamp("2025-02-18") == cl.sessions.loc[cl.sessions["client_id"] == "R0001", "session_date"]).sum() == 1
    c = cl.clients.set_index("client_id")
    assert c.loc["R0002", ["start_date", "end_date", "end_reason"]].tolist() == [
        pd.Timestamp("2025-01-20"), pd.Timestamp("2025-03-11"), "planned"]          # 20-Jan-2025, %d-%b-%Y
    assert c["race_ethnicity"].tolist() == ["white", "asian", "declined", "not_recorded"]
    assert cl.clinicians.set_index("clinician_id")["role"].to_dict() == {
        "CLN017": "trainee", "CLN042": "qualified", "CLN099": "qualified"}
    for rt in raw.values():                                  # names, patient refs, free text never read
        assert not {"Patient Ref", "Presenting Problem"} & set(rt.frame.columns)


def test_every_source_line_is_accounted_for():
    """Unknown values pass through to the validator: read = loaded + quarantined, plus the counted keep rule."""
    raw, problems = read_mapped(*EHR)
    cl = load_tables(raw, reader_problems=problems)
    lines = len(pd.read_csv(EHR[0] / "appointments.csv"))
    c = cl.counts.set_index("table").loc["sessions"]
    assert c["read"] == c["loaded"] + c["quarantined"] == lines - 1


def test_import_mapped_writes_an_ordinary_export(tmp_path):
    cl = import_mapped(*EHR, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"clients.csv", "sessions.csv", "clinicians.csv", "scores.csv",
                                                    "import_report.csv"}
    report = pd.read_csv(tmp_path / "import_report.csv", encoding="utf-8-sig")
    assert len(report) == len(cl.report)
    again = load_caseload(tmp_path)                    # the written folder is read like any export
    assert again.counts.set_index("table")["loaded"].to_dict() == cl.counts.set_index("table")["loaded"].to_dict()
    assert len(again.sessions) == len(cl.sessions)
    sessions = (tmp_path / "sessions.csv").read_text(encoding="utf-8-sig")
    assert "2025-01-21" in sessions and "21/01/2025" not in sessions


def test_cli_exit_codes(tmp_path, capsys):
    assert import_mapped_command(*ORS_SRS, tmp_path / "a") == 1
    out = capsys.readouterr().out
    assert "imported, with problems" in out and "unmapped_value" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[clients]\nfile = "x.csv"\n[clients.colums]\n')
    assert import_mapped_command(DATA / "ehr", bad, tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "colums" in err and "Allowed" in err and "Traceback" not in err
    assert import_mapped_command(tmp_path / "missing", EHR[1], tmp_path / "c") == 2


# --------------------------------------------------------------------------------------------
# mapping-file errors: the key, what is allowed, what was given
# --------------------------------------------------------------------------------------------

BASE = '''
[clients]
file = "c.csv"
[clients.columns]
client_id = "id"
clinician_id = "who"
start_date = "start"
[sessions]
file = "s.csv"
[sessions.columns]
client_id = "id"
clinician_id = "who"
session_date = "date"
attendance = "status"
'''


@pytest.mark.parametrize("extra, words", [
    ('colour = "blue"\n', ["'colour'", "Allowed at the top", "date_format"]),
    ("[sessions.values.attendance]\nDNA = \"noshow\"\n", ["[sessions.values.attendance]", "'DNA'", "'noshow'",
                                                          "attended, cancelled, no_show"]),
    ("[sessions.constants]\nmodality = [1]\n", ["[sessions.constants] modality", "[1]"]),
    ("[sessions.values.modality]\nV = \"video\"\n", ["'modality' is not mapped", "[sessions.columns]"]),
])
def test_mapping_errors_name_key_allowed_and_given(tmp_path, extra, words):
    f = tmp_path / "m.toml"
    f.write_text(extra + BASE if not extra.startswith("[") else BASE + extra)
    with pytest.raises(MappingError) as exc:
        load_mapping(f)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


@pytest.mark.parametrize("old, new, words", [
    ('attendance = "status"', 'attendence = "status"', ["[sessions.columns]", "'attendence' is not a column of the sessions",
                                                        "Allowed: client_id", "attendance", "srs_1..srs_4, srs_total"]),
    ('session_date = "date"', 'session_date = "date"\nsrs_totl = "SRS"', ["'srs_totl'", "srs_1..srs_4, srs_total"]),
    ('[sessions]\nfile = "s.csv"', '[sessions]\nfile = "s.csv"\ndate_format = "DD/MM/YYYY"',
     ["[sessions] 'date_format'", "got 'DD/MM/YYYY'", "%d/%m/%Y"]),
    ('[clients]\nfile = "c.csv"', '[clients]\nfile = "c.csv"\ncollapse = "client_id"\naggregate = { start_date = "earliest" }',
     ["[clients.aggregate] start_date", "first, last, min, max", "got 'earliest'"]),
    ('[sessions]\nfile = "s.csv"', '[sessions]\nfile = "s.csv"\nfiles = "t.csv"', ["[sessions]: unknown key 'files'",
                                                                               "Allowed: file, sheet, columns"]),
    ('client_id = "id"\nclinician_id = "who"\nstart_date = "start"', 'client_id = "id"\nclinician_id = "who"',
     ["[clients]", "'start_date'", "Required in clients: client_id, clinician_id, start_date"]),
    ('[clients]', '[clients\n', ["not a valid TOML file", "line 2"]),
])
def test_mapping_errors_more(tmp_path, old, new, words):
    f = tmp_path / "m.toml"
    assert old in BASE
    f.write_text(BASE.replace(old, new, 1))
    with pytest.raises(MappingError) as exc:
        load_mapping(f)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))


def test_missing_sections_and_file(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text(BASE.split("[sessions]")[0])
    with pytest.raises(MappingError, match=r"no \[sessions\] section"):
        load_mapping(f)
    with pytest.raises(MappingError, match="cannot be read"):
        load_mapping(tmp_path / "nope.toml")


def test_shipped_mappings_load():
    for f in MAPPINGS.glob("*.toml"):
        m = load_mapping(f)
        assert {"clients", "sessions"} <= set(m.tables) and m.description


# --------------------------------------------------------------------------------------------
# data-side rules
# --------------------------------------------------------------------------------------------

def test_missing_source_column_is_reported_with_columns_found(tmp_path):
    (tmp_path / "c.csv").write_text("id,who,start\nC1,T1,2025-01-02\n")
    (tmp_path / "s.csv").write_text("id,who,when,status\nC1,T1,2025-01-03,attended\n")
    f = tmp_path / "m.toml"
    f.write_text(BASE)
    raw, problems = read_mapped(tmp_path, f)
    p = [x for x in problems if x["check"] == "mapping_column_missing"]
    assert len(p) == 1 and "'date'" in p[0]["problem"] and "when" in p[0]["fix"]
    cl = load_tables(raw, reader_problems=problems)
    assert cl.status == "unusable"                     # session_date missing: the validator's verdict


def test_loose_matching_of_headers_and_values(tmp_path):
    (tmp_path / "c.csv").write_text("ID,Who,Start\nC1,T1,02/01/2025\n")
    (tmp_path / "s.csv").write_text("id ,who,date,STATUS\nC1,T1,03/01/2025,dna\nC1,T1,04/01/2025, Attended \n")
    f = tmp_path / "m.toml"
    f.write_text('date_format = "%d/%m/%Y"\n' + BASE + '[sessions.values.attendance]\n"DNA" = "no_show"\n"Attended" = "attended"\n')
    raw, problems = read_mapped(tmp_path, f)
    assert problems == []
    cl = load_tables(raw, reader_problems=problems)
    assert cl.status == "clean"
    assert cl.sessions["attendance"].tolist() == ["no_show", "attended"]
    assert cl.clients["start_date"].item() == pd.Timestamp("2025-01-02")


def test_excel_workbook_with_sheets_and_collapse_conflicts(tmp_path):
    book = tmp_path / "export.xlsx"
    sessions = pd.DataFrame({
        "Client": ["C1", "C1", "C2", "C1"],
        "Therapist": ["T1", "T1", "T2", "T3"],
        "When": pd.to_datetime(["2025-01-07", "2025-01-14", "2025-01-08", "2025-01-21"]),
        "Came": ["Y", "Y", "N", "Y"],
        "SRS": [36.5, 38, None, 39],
    })
    with pd.ExcelWriter(book) as w:
        pd.DataFrame({"note": ["not read"]}).to_excel(w, sheet_name="Cover", index=False)
        sessions.to_excel(w, sheet_name="Sessions", index=False)
    f = tmp_path / "m.toml"
    f.write_text('''
[sessions]
sheet = "Sessions"
[sessions.columns]
client_id = "Client"
clinician_id = "Therapist"
session_date = "When"
attendance = "Came"
srs_total = "SRS"
[sessions.values.attendance]
Y = "attended"
N = "no_show"
[clients]
sheet = "Sessions"
collapse = "client_id"
aggregate = { start_date = "min" }
[clients.columns]
client_id = "Client"
clinician_id = "Therapist"
start_date = "When"
''')
    raw, problems = read_mapped(book, f)
    conflict = [p for p in problems if p["check"] == "collapse_conflict"]
    assert len(conflict) == 1 and conflict[0]["value"] == "T1" and "T3" in conflict[0]["problem"]
    cl = load_tables(raw, reader_problems=problems)
    assert cl.clients.set_index("client_id")["start_date"].to_dict() == {
        "C1": pd.Timestamp("2025-01-07"), "C2": pd.Timestamp("2025-01-08")}
    assert cl.sessions["srs_total"].dropna().tolist() == [36.5, 38, 39]
    assert rows(cl, "sessions", "clinician_mismatch")["row"].tolist() == [5]   # the sheet's row, header = 1


def test_dates_not_in_the_declared_format_are_not_guessed(tmp_path):
    (tmp_path / "c.csv").write_text("id,who,start\nC1,T1,01/02/2025\n")
    (tmp_path / "s.csv").write_text("id,who,date,status\nC1,T1,02/13/2025,attended\nC1,T1,2025-02-14,attended\n")
    f = tmp_path / "m.toml"
    f.write_text(BASE.replace('file = "s.csv"', 'file = "s.csv"\ndate_format = "%d/%m/%Y"')
                 .replace('file = "c.csv"', 'file = "c.csv"\ndate_format = "%m/%d/%Y"'))
    raw, problems = read_mapped(tmp_path, f)
    cl = load_tables(raw, reader_problems=problems)
    assert cl.clients["start_date"].item() == pd.Timestamp("2025-01-02")      # month first, as declared
    bad = rows(cl, "sessions", "bad_date")
    assert bad["row"].tolist() == [2] and bad["value"].item() == "02/13/2025 (not DD/MM/YYYY)"
    assert cl.sessions["session_date"].tolist() == [pd.Timestamp("2025-02-14")]  # ISO always accepted


def test_missing_export_file_is_reported(tmp_path):
    (tmp_path / "c.csv").write_text("id,who,start\nC1,T1,2025-01-02\n")
    f = tmp_path / "m.toml"
    f.write_text(BASE)
    raw, problems = read_mapped(tmp_path, f)
    assert [p["check"] for p in problems] == ["unreadable_file"] and "s.csv" in problems[0]["problem"]
    assert load_tables(raw, reader_problems=problems).status == "unusable"
