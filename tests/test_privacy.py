"""Privacy: pseudonymisation, disclosure control (small-count suppression), safe CSV/Excel, scope.

Oracles are independent of the code under test: raw bytes of every output file are searched for
identifiers; suppression is audited by a linear-programming attacker (scipy) who knows every
published cell and every margin total exactly and tries to pin down each hidden cell; formula
safety is checked by reading the files back with openpyxl and the csv module.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy.optimize import linprog

from supervision import load_caseload
from supervision.io import demo_path
from supervision.cli import pseudonymise_command
from supervision.io.export import neutralise_formulas, write_safe_csv, write_safe_excel
from supervision.privacy import (
    PseudonymiseError, SelfReview, apply_scope, load_own_caseload, load_self_review, policy_rules,
    pseudonymise, read_key, service_benchmark, suppress,
)

DEMO = demo_path()
TABLES = ("clients", "sessions", "clinicians", "scores")

# OWASP "CSV Injection" payloads, plus DDE and leading-whitespace variants.
PAYLOADS = [
    "=1+1", "+1+1", "-1+1", "@SUM(1+1)", "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0",
    "=HYPERLINK(\"http://evil.example\",\"click\")", "@cmd|'/C notepad'!A0", "-2+3+cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0", "=DDE(\"cmd\";\"/C calc\";\"!A0\")", "  =1+1", "\n=1+1",
]


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------

def _key(path: Path, text: str | None = None) -> Path:
    import secrets

    path.write_text((text if text is not None else secrets.token_hex(32)) + "\n")
    return path


@pytest.fixture(scope="module")
def identified(tmp_path_factory) -> Path:
    """The demo clinic with direct identifiers added (names, contact details, free text, DOB)."""
    root = tmp_path_factory.mktemp("identified")
    src = root / "in"
    src.mkdir()
    for t in TABLES:
        shutil.copy(DEMO / f"{t}.csv", src / f"{t}.csv")
    clients = pd.read_csv(src / "clients.csv", dtype=str, keep_default_na=False)
    n = len(clients)
    rng = np.random.default_rng(7)
    clients = clients.drop(columns=["age_band"])
    clients["First Name"] = [f"Qzfirst{i:04d}" for i in range(n)]
    clients["last_name"] = [f"Qzlast{i:04d}" for i in range(n)]
    clients["EMAIL"] = [f"qzclient{i:04d}@example.org" for i in range(n)]
    clients["phone"] = [f"+44 7700 9{i:05d}" for i in range(n)]
    clients["nhs_number"] = [f"{9000000000 + i}" for i in range(n)]
    years = rng.integers(1940, 2008, n)
    clients["date_of_birth"] = [f"{y}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}" for y in years]
    clients["notes"] = [f"Qznote about client {i}: lives at 12 Qzstreet" for i in range(n)]
    clients["referrer_code"] = "RX-77"  # not in the data contract
    clients.to_csv(src / "clients.csv", index=False)
    clinicians = pd.read_csv(src / "clinicians.csv", dtype=str, keep_default_na=False)
    clinicians["therapist_name"] = [f"Qztherapist{i:02d}" for i in range(len(clinicians))]
    clinicians["Email"] = [f"qzstaff{i:02d}@example.org" for i in range(len(clinicians))]
    clinicians.to_csv(src / "clinicians.csv", index=False)
    return src


@pytest.fixture(scope="module")
def run_twice(identified, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    k1, k2 = _key(root / "k1.txt"), _key(root / "k2.txt")
    s1 = pseudonymise(identified, root / "out1", k1)
    s1b = pseudonymise(identified, root / "out1b", k1)
    s2 = pseudonymise(identified, root / "out2", k2)
    return {"root": root, "k1": k1, "k2": k2, "s1": s1, "s1b": s1b, "s2": s2}


def _all_bytes(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def _raw_identifiers(src: Path) -> dict[str, set[str]]:
    c = pd.read_csv(src / "clients.csv", dtype=str, keep_default_na=False)
    k = pd.read_csv(src / "clinicians.csv", dtype=str, keep_default_na=False)
    return {
        "client ids": set(c["client_id"]),
        "staff ids": set(c["clinician_id"]) | set(k["clinician_id"]) | set(k["supervisor_id"]) - {""},
        "names": set(c["First Name"]) | set(c["last_name"]) | set(k["therapist_name"]),
        "emails": set(c["EMAIL"]) | set(k["Email"]),
        "phones": set(c["phone"]) | {p.replace(" ", "") for p in c["phone"]},
        "nhs numbers": set(c["nhs_number"]),
        "dates of birth": set(c["date_of_birth"]),
        "notes": {"Qznote", "Qzstreet"},
    }


# --------------------------------------------------------------------------------------------
# pseudonymisation
# --------------------------------------------------------------------------------------------

def test_no_raw_identifier_survives_in_any_output_byte(identified, run_twice):
    out = run_twice["root"] / "out1"
    blob = _all_bytes(out)
    for kind, values in _raw_identifiers(identified).items():
        found = sorted(v for v in values if v and v.encode() in blob)
        assert not found, f"{kind} survived: {found[:5]}"
    # and no column that held them
    for t in ("clients", "clinicians"):
        header = (out / f"{t}.csv").read_text(encoding="utf-8-sig").splitlines()[0].lower()
        for col in ("name", "email", "phone", "nhs_number", "date_of_birth", "notes", "referrer_code"):
            assert col not in header


def test_pseudonymised_export_loads_with_the_same_counts_and_no_new_problems(identified, run_twice):
    before = load_caseload(DEMO)
    after = load_caseload(run_twice["root"] / "out1")
    assert after.status == "clean" and after.report.empty
    pd.testing.assert_frame_equal(before.counts, after.counts)
    sa, sb = before.summary(), after.summary()
    assert sa == sb
    # joins survive: every session's client and clinician match the clients table, per client
    per_a = before.sessions.groupby("client_id").size().sort_values().to_numpy()
    per_b = after.sessions.groupby("client_id").size().sort_values().to_numpy()
    assert (per_a == per_b).all()
    assert after.sessions["client_id"].isin(after.clients["client_id"]).all()
    assert after.clients["clinician_id"].isin(after.clinicians["clinician_id"]).all()
    # the same measures, scored the same way
    cols = [c for c in before.sessions.columns if c.endswith("_total")]
    np.testing.assert_allclose(np.sort(before.sessions[cols].fillna(-1).to_numpy(), axis=0),
                               np.sort(after.sessions[cols].fillna(-1).to_numpy(), axis=0))


def test_ids_have_the_documented_form_and_are_one_to_one(identified, run_twice):
    c = pd.read_csv(run_twice["root"] / "out1" / "clients.csv", dtype=str, encoding="utf-8-sig")
    assert c["client_id"].str.fullmatch(r"C-[0-9a-f]{16}").all()
    assert c["clinician_id"].str.fullmatch(r"T-[0-9a-f]{16}").all()
    raw = pd.read_csv(identified / "clients.csv", dtype=str)
    assert c["client_id"].nunique() == raw["client_id"].nunique() == len(c)
    assert c["clinician_id"].nunique() == raw["clinician_id"].nunique()
    assert run_twice["s1"].collisions == {"client": 0, "staff": 0}


def test_same_key_same_ids_different_key_different_ids(run_twice):
    root = run_twice["root"]
    for t in TABLES:
        assert (root / "out1" / f"{t}.csv").read_bytes() == (root / "out1b" / f"{t}.csv").read_bytes()
    a = pd.read_csv(root / "out1" / "clients.csv", dtype=str, encoding="utf-8-sig")
    b = pd.read_csv(root / "out2" / "clients.csv", dtype=str, encoding="utf-8-sig")
    assert not set(a["client_id"]) & set(b["client_id"])
    assert not set(a["clinician_id"]) & set(b["clinician_id"])
    assert run_twice["s1"].key_fingerprint == run_twice["s1b"].key_fingerprint != run_twice["s2"].key_fingerprint


def test_the_key_never_appears_in_any_output(run_twice):
    for out, key in (("out1", "k1"), ("out2", "k2")):
        blob = _all_bytes(run_twice["root"] / out)
        key_bytes = run_twice[key].read_bytes().strip()
        assert key_bytes not in blob
        assert key_bytes[:16] not in blob  # not even a part of it
        assert key_bytes.hex().encode() not in blob


def test_dates_of_birth_become_age_bands_at_the_episode_start(identified, run_twice):
    raw = pd.read_csv(identified / "clients.csv", dtype=str)
    out = pd.read_csv(run_twice["root"] / "out1" / "clients.csv", dtype=str, encoding="utf-8-sig")
    dob, start = pd.to_datetime(raw["date_of_birth"]), pd.to_datetime(raw["start_date"])
    age = start.dt.year - dob.dt.year - ((start.dt.month * 100 + start.dt.day) < (dob.dt.month * 100 + dob.dt.day))
    expect = pd.cut(age, [-1, 17, 24, 34, 44, 54, 64, 200],
                    labels=["under_18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]).astype(str)
    assert (out["age_band"].to_numpy() == expect.to_numpy()).all()
    assert run_twice["s1"].age_band["clients"]["from_dob"] == len(raw)
    assert "age_band" in load_caseload(run_twice["root"] / "out1").clients.columns


def test_age_band_edges_exact_birthdays_and_kept_bands(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "clients.csv").write_text(
        "client_id,clinician_id,start_date,dob,age_band\n"
        "A,T,2024-06-03,2000-06-04,\n"       # 23 the day before the birthday
        "B,T,2024-06-03,2000-06-03,\n"       # 24 on it
        "C,T,2024-06-03,1999-06-03,\n"       # 25
        "D,T,2024-06-03,2010-01-01,\n"       # 14
        "E,T,2024-06-03,1950-01-01,\n"       # 74
        "F,T,2024-06-03,1950-01-01,45-54\n"  # the export's own band is kept
        "G,T,2024-06-03,not a date,\n")
    (src / "sessions.csv").write_text("client_id,clinician_id,session_date,attendance\nA,T,2024-06-03,attended\n")
    s = pseudonymise(src, tmp_path / "out", _key(tmp_path / "k.txt"))
    out = pd.read_csv(tmp_path / "out" / "clients.csv", dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert list(out["age_band"]) == ["18-24", "18-24", "25-34", "under_18", "65+", "45-54", "not_recorded"]
    assert "dob" not in out.columns
    assert s.age_band["clients"] == {"from_dob": 5, "kept": 1, "unreadable": 1}


@pytest.mark.parametrize("content,needle", [
    (None, "does not exist"), ("", "empty"), ("abc123", "at least 32"), ("a" * 64, "not a random key"),
])
def test_refuses_without_a_usable_key(identified, tmp_path, content, needle, capsys):
    key = tmp_path / "key.txt"
    if content is not None:
        key.write_text(content)
    with pytest.raises(PseudonymiseError, match=needle):
        pseudonymise(identified, tmp_path / "out", key)
    assert pseudonymise_command(identified, tmp_path / "out", key) == 2
    err = capsys.readouterr().err
    assert "secrets.token_hex(32)" in err and needle in err
    assert not (tmp_path / "out").exists()


def test_refuses_no_key_argument(identified, tmp_path):
    with pytest.raises(PseudonymiseError, match="No key file"):
        pseudonymise(identified, tmp_path / "out", None)


def test_refuses_key_inside_output_and_output_inside_input(identified, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PseudonymiseError, match="inside the output"):
        pseudonymise(identified, out, _key(out / "key.txt"))
    with pytest.raises(PseudonymiseError, match="is the input or inside it"):
        pseudonymise(identified, identified, _key(tmp_path / "k.txt"))
    assert sorted(p.name for p in out.iterdir()) == ["key.txt"]


def test_refuses_stale_tables_in_the_output_folder(identified, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pd.DataFrame({"client_id": ["C1"]}).to_parquet(out / "clients.parquet")
    with pytest.raises(PseudonymiseError, match="clients.parquet"):
        pseudonymise(identified, out, _key(tmp_path / "k.txt"))


def test_formula_payloads_in_the_export_are_neutralised_and_still_load(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rows = "\n".join(f"C{i},T1,2024-01-0{1 + i % 9},2024-02-01,planned,mood,{_csv_cell(p)}"
                     for i, p in enumerate(PAYLOADS))
    (src / "clients.csv").write_text("client_id,clinician_id,start_date,end_date,end_reason,agreed_goals,gender_identity\n"
                                     + rows + "\n", newline="")
    (src / "sessions.csv").write_text("client_id,clinician_id,session_date,attendance,modality\n"
                                      + "C0,T1,2024-01-02,attended,\"=cmd|' /C calc'!A0\"\n", newline="")
    pseudonymise(src, tmp_path / "out", _key(tmp_path / "k.txt"))
    _assert_csv_safe(tmp_path / "out" / "clients.csv")
    _assert_csv_safe(tmp_path / "out" / "sessions.csv")
    cl = load_caseload(tmp_path / "out")
    assert cl.counts.set_index("table").loc["clients", "loaded"] == len(PAYLOADS)


def test_excel_input_and_excel_output(tmp_path):
    raw = {t: pd.read_csv(DEMO / f"{t}.csv", dtype=str, keep_default_na=False) for t in ("clients", "sessions", "clinicians")}
    keep = raw["clients"]["clinician_id"].isin(["T01", "T02"])
    raw["clients"] = raw["clients"][keep].assign(full_name="Qzperson")
    raw["sessions"] = raw["sessions"][raw["sessions"]["client_id"].isin(raw["clients"]["client_id"])]
    raw["clinicians"] = raw["clinicians"][raw["clinicians"]["clinician_id"].isin(["T01", "T02"])]
    xin = write_safe_excel(raw, tmp_path / "export.xlsx")
    key = _key(tmp_path / "k.txt")
    s = pseudonymise(xin, tmp_path / "out.xlsx", key)
    assert s.report_path.exists() and s.report_path.name == "out.xlsx.pseudonymise_report.txt"
    before, after = load_caseload(xin), load_caseload(tmp_path / "out.xlsx")
    assert set(before.report["check"]) == {"unknown_column"}  # full_name, ignored by the loader
    assert after.status == "clean"
    pd.testing.assert_frame_equal(before.counts, after.counts)
    wb = openpyxl.load_workbook(tmp_path / "out.xlsx")
    text = " ".join(str(c.value) for ws in wb for row in ws.iter_rows() for c in row)
    assert "Qzperson" not in text and "full_name" not in text and "C00001" not in text and "T01" not in text
    assert all(c.data_type != "f" for ws in wb for row in ws.iter_rows() for c in row)


def test_report_lists_what_was_done_without_ids(identified, run_twice):
    text = (run_twice["root"] / "out1" / "pseudonymise_report.txt").read_text()
    for word in ("First Name", "EMAIL", "phone", "nhs_number", "date_of_birth", "notes", "therapist_name",
                 "referrer_code", "age_band", "0 collisions", run_twice["s1"].key_fingerprint):
        assert word in text
    assert "C00001" not in text and "T01" not in text


def test_wildcards_never_drop_contract_columns_and_unknown_columns_can_be_kept(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "clients.csv").write_text("client_id,clinician_id,start_date,agreed_goals,clinic_name,site\nC1,T1,2024-01-01,mood,Qzclinic,north\n")
    (src / "sessions.csv").write_text("client_id,clinician_id,session_date,attendance\nC1,T1,2024-01-02,attended\n")
    settings = {"privacy": {"direct_identifiers": ["*_goals", "*_name"], "keep_unknown_columns": True}}
    pseudonymise(src, tmp_path / "out", _key(tmp_path / "k.txt"), settings)
    cols = pd.read_csv(tmp_path / "out" / "clients.csv", encoding="utf-8-sig").columns
    assert "agreed_goals" in cols and "site" in cols and "clinic_name" not in cols
    settings = {"privacy": {"direct_identifiers": ["agreed_goals"]}}  # an exact name does drop it
    pseudonymise(src, tmp_path / "out2", _key(tmp_path / "k2.txt"), settings)
    cols = pd.read_csv(tmp_path / "out2" / "clients.csv", encoding="utf-8-sig").columns
    assert "agreed_goals" not in cols and "site" not in cols


def test_cli_summary(identified, tmp_path, capsys):
    assert pseudonymise_command(identified, tmp_path / "out", _key(tmp_path / "k.txt")) == 0
    out = capsys.readouterr().out
    assert "416 client" in out and "Dropped identifier columns" in out and "C00001" not in out


# --------------------------------------------------------------------------------------------
# safe CSV / Excel export
# --------------------------------------------------------------------------------------------

def _csv_cell(v: str) -> str:
    return '"' + v.replace('"', '""') + '"'


def _dangerous(v: str) -> bool:
    if re.fullmatch(r"[+-]?\d+(\.\d*)?", v):  # a plain number is read as a number, not a formula
        return False
    return v.lstrip(" \n\r\t").startswith(("=", "+", "-", "@")) or v.startswith(("\t", "\r"))


def _assert_csv_safe(path: Path):
    text = path.read_text(encoding="utf-8-sig")
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            assert not _dangerous(cell) or cell.startswith("'"), repr(cell)


def test_csv_payloads_neutralised(tmp_path):
    frame = pd.DataFrame({"text": PAYLOADS, "n": range(len(PAYLOADS)), "neg": ["-3", "+1.5"] * (len(PAYLOADS) // 2)})
    frame[PAYLOADS[0]] = 1  # a formula in a column name too
    path = write_safe_csv(frame, tmp_path / "x.csv")
    _assert_csv_safe(path)
    back = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert list(back["text"]) == ["'" + p for p in PAYLOADS]
    assert list(back["neg"]) == list(frame["neg"])  # plain numbers stay numbers
    assert back.columns[-1] == "'" + PAYLOADS[0]
    assert list(frame["text"]) == PAYLOADS  # input not modified


def test_xlsx_payloads_are_never_formulas(tmp_path):
    frame = pd.DataFrame({"text": PAYLOADS + ["\x01control"], "n": range(len(PAYLOADS) + 1)})
    frame.insert(0, "=HEADER()", "ok")
    other = pd.DataFrame({"when": pd.to_datetime(["2025-01-02"]).tz_localize("UTC"), "flag": [True],
                          "missing": [np.nan], "na": pd.array([pd.NA], dtype="Int64")})
    path = write_safe_excel({"payloads": frame, "other": other}, tmp_path / "x.xlsx")
    wb = openpyxl.load_workbook(path)
    cells = [c for ws in wb for row in ws.iter_rows() for c in row]
    assert cells and all(c.data_type != "f" for c in cells)
    ws = wb["payloads"]
    values = [ws.cell(row=r, column=2).value for r in range(2, len(PAYLOADS) + 2)]
    # XML reads a carriage return back as a line feed; the cell is still text, neutralised
    assert values == ["'" + p.replace("\r", "\n") for p in PAYLOADS]
    assert ws.cell(row=1, column=1).value == "'=HEADER()"
    assert ws.cell(row=len(PAYLOADS) + 2, column=2).value == "\ufffdcontrol"
    # and through pandas (what a user's script would do): text, not computed values
    back = pd.read_excel(path, sheet_name="payloads", dtype=str)
    assert list(back["text"][: len(PAYLOADS)]) == ["'" + p.replace("\r", "\n") for p in PAYLOADS]


@pytest.mark.parametrize("name", ["a/b", "x" * 32, "", "what?"])
def test_bad_sheet_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="Sheet name"):
        write_safe_excel({name: pd.DataFrame({"a": [1]})}, tmp_path / "x.xlsx")


def test_neutralise_leaves_numbers_and_dates_alone():
    f = pd.DataFrame({"x": [-1.0, 2.0], "d": pd.to_datetime(["2025-01-01", "2025-01-02"]), "s": ["-", "ok"]})
    out = neutralise_formulas(f)
    pd.testing.assert_series_equal(out["x"], f["x"])
    pd.testing.assert_series_equal(out["d"], f["d"])
    assert list(out["s"]) == ["'-", "ok"]


# --------------------------------------------------------------------------------------------
# disclosure control
# --------------------------------------------------------------------------------------------

def test_nhs_preset_suppresses_1_to_7_and_rounds_to_5():
    t = pd.DataFrame({"n": [0, 1, 7, 8, 12, 13, 17, 18, 100]})
    out = suppress(t, "n", "nhs", complementary=False)
    assert list(out["n_display"]) == ["0", "*", "*", "10", "10", "15", "15", "20", "100"]
    assert list(out["n_suppressed"]) == [False, True, True] + [False] * 6
    assert out["n"].isna().tolist() == [False, True, True] + [False] * 6
    assert (out["n"].dropna() % 5 == 0).all()


def test_cms_preset_suppresses_1_to_10_without_rounding():
    t = pd.DataFrame({"n": [0, 1, 10, 11, 12, 99]})
    out = suppress(t, "n", "cms", complementary=False)
    assert list(out["n_display"]) == ["0", "*", "*", "11", "12", "99"]


def test_none_preset_changes_nothing():
    t = pd.DataFrame({"n": [0, 1, 3, 12]})
    out = suppress(t, "n", "none")
    assert not out["n_suppressed"].any() and list(out["n"]) == [0, 1, 3, 12]


def test_policy_comes_from_the_settings_and_thresholds_are_settings():
    t = pd.DataFrame({"n": [4, 9, 30]})
    assert list(suppress(t, "n", settings={"privacy": {"suppression_policy": "cms"}}, complementary=False)["n_display"]) == ["*", "*", "30"]
    s = {"privacy": {"nhs_max_suppressed": 5, "nhs_rounding": 1}}
    assert list(suppress(t, "n", "nhs", settings=s, complementary=False)["n_display"]) == ["*", "9", "30"]
    assert policy_rules("nhs").max_suppressed == 7 and policy_rules("cms").max_suppressed == 10
    with pytest.raises(ValueError, match="nhs"):
        policy_rules("hipaa")


def test_complementary_suppression_hides_the_next_smallest_cell():
    t = pd.DataFrame({"g": list("abcd"), "n": [3, 20, 30, 40]})
    out = suppress(t, "n", "cms")
    assert list(out["n_suppressed"]) == [True, True, False, False]
    # total 93 minus the shown 70 gives 23 for two hidden cells: neither can be recomputed
    assert set(out["n_display"][:2]) == {"*"}  # primary and complementary look the same
    assert out.attrs["suppression"] == {"policy": "cms", "max_suppressed": 10, "rounding": 1, "marker": "*",
                                        "primary": 1, "complementary": 1, "audit": "passed", "unprotected": 0}


def test_suppressed_cells_together_are_not_a_small_number():
    # 3 and 4 hidden together would reveal "7 people in these two groups": a third cell is hidden
    out = suppress(pd.DataFrame({"n": [3, 4, 50, 60]}), "n", "nhs")
    assert list(out["n_suppressed"]) == [True, True, True, False]


def test_rates_from_suppressed_counts_are_suppressed_and_complements_protected():
    t = pd.DataFrame({"g": list("abc"), "n": [20, 30, 40], "ev": [18, 15, 20]})
    t["rate"] = t["ev"] / t["n"]
    out = suppress(t, "ev", "cms", rates={"rate": ("ev", "n")})
    # 18 of 20 dropped out: the 2 who did not could be derived from n and ev -> ev and the rate hidden
    assert out.loc[0, "ev_suppressed"] and out.loc[0, "rate_suppressed"] and np.isnan(out.loc[0, "rate"])
    assert out["ev_suppressed"].sum() >= 2  # and the margin of ev protects it
    for _, r in out.iterrows():
        if not (r["ev_suppressed"] or r["n_suppressed"]):
            assert not 1 <= r["n"] - r["ev"] <= 10


def test_nhs_rates_are_computed_from_rounded_counts_keeping_the_scale():
    t = pd.DataFrame({"g": ["a", "b"], "n": [43, 61], "ev": [21, 32]})
    t["pct"] = 100 * t["ev"] / t["n"]
    out = suppress(t, [], "nhs", rates={"pct": ("ev", "n")})
    assert list(out["n"]) == [45, 60] and list(out["ev"]) == [20, 30]
    np.testing.assert_allclose(out["pct"], [100 * 20 / 45, 100 * 30 / 60])


def test_derived_statistics_hidden_with_their_count():
    t = pd.DataFrame({"g": ["a", "b", "c"], "n": [5, 30, 40], "mean_srs": [30.1, 35.2, 36.0]})
    out = suppress(t, "n", "nhs", derived={"mean_srs": ["n"]})
    assert out["mean_srs_suppressed"].tolist() == out["n_suppressed"].tolist()
    assert out["mean_srs"].isna().tolist() == out["n_suppressed"].tolist()


def test_suppress_does_not_modify_its_input_and_checks_it():
    t = pd.DataFrame({"n": [1, 50, 60]})
    before = t.copy()
    suppress(t, "n", "nhs")
    pd.testing.assert_frame_equal(t, before)
    with pytest.raises(ValueError, match="whole numbers"):
        suppress(pd.DataFrame({"n": [1.5]}), "n")
    with pytest.raises(ValueError, match="whole numbers"):
        suppress(pd.DataFrame({"n": [-1]}), "n")
    with pytest.raises(ValueError, match="no column"):
        suppress(t, "m")
    with pytest.raises(ValueError, match="exceeds"):
        suppress(pd.DataFrame({"n": [5], "e": [6], "r": [1.2]}), [], rates={"r": ("e", "n")})


# --- the attacker -------------------------------------------------------------------------------

def _attack(true: np.ndarray, out_counts: np.ndarray, supp: np.ndarray, groups: list[list[tuple[int, int]]],
            rounding: int = 1):
    """Bounds an attacker can put on every hidden cell.

    Knows: every published cell (exactly, or within +-rounding/2 when rounded), the exact true
    total of every group of cells in ``groups``, and that counts are >= 0. Returns
    {(i, j): (min, max)} for each suppressed cell, by linear programming.
    """
    n, k = true.shape
    idx = {(i, j): i * k + j for i in range(n) for j in range(k)}
    bounds = []
    for i in range(n):
        for j in range(k):
            if supp[i, j]:
                bounds.append((0, None))
            elif rounding > 1:
                half = rounding / 2
                v = out_counts[i, j]
                bounds.append((max(0, v - half), v + half) if v > 0 else (0, 0))
            else:
                bounds.append((true[i, j], true[i, j]))
    a_eq, b_eq = [], []
    for g in groups:
        row = np.zeros(n * k)
        for c in g:
            row[idx[c]] = 1
        a_eq.append(row)
        b_eq.append(sum(true[c] for c in g))
    res = {}
    for c in zip(*np.nonzero(supp)):
        obj = np.zeros(n * k)
        obj[idx[c]] = 1
        eq = {"A_eq": np.array(a_eq), "b_eq": b_eq} if a_eq else {}
        lo = linprog(obj, bounds=bounds, method="highs", **eq)
        hi = linprog(-obj, bounds=bounds, method="highs", **eq)
        assert lo.status == 0 and hi.status in (0, 3)  # 3: unbounded, the cell could be anything
        res[c] = (lo.fun, -hi.fun if hi.status == 0 else np.inf)
    return res


def _cross_table(rng, n_rows, n_cols):
    true = rng.choice([0, 1, 2, 3, 5, 7, 8, 9, 12, 15, 20, 30, 45], size=(n_rows, n_cols),
                      p=[.05, .08, .08, .08, .08, .08, .08, .07, .1, .1, .08, .06, .06])
    rows = [{"clin": f"T{i}", "grp": f"g{j}", "n": int(true[i, j])} for i in range(n_rows) for j in range(n_cols)]
    return true, pd.DataFrame(rows)


@pytest.mark.parametrize("policy", ["cms", "nhs"])
@pytest.mark.parametrize("seed", range(40))
def test_no_suppressed_cell_can_be_recomputed_from_published_totals(policy, seed):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = rng.integers(2, 6), rng.integers(2, 5)
    true, table = _cross_table(rng, n_rows, n_cols)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = suppress(table, "n", policy, group_columns=[["clin"], ["grp"]])
    supp = out["n_suppressed"].to_numpy().reshape(n_rows, n_cols)
    failed = out.attrs["suppression"]["audit"] == "failed"
    assert failed == any("can still be narrowed down" in str(w.message) for w in caught)
    shown = out["n"].astype("Float64").fillna(-1).to_numpy(dtype=float).reshape(n_rows, n_cols)
    T, rounding = (10, 1) if policy == "cms" else (7, 5)
    primary = (true >= 1) & (true <= T)
    assert supp[primary].all()
    groups = ([[(i, j) for j in range(n_cols)] for i in range(n_rows)]
              + [[(i, j) for i in range(n_rows)] for j in range(n_cols)])
    # published totals: a row or column total that is itself a small number is not published
    small_margin = any(1 <= sum(true[c] for c in g) <= T for g in groups)
    groups = [g for g in groups if not 1 <= sum(true[c] for c in g) <= T]
    # the only way protection can fail here: a small row or column, whose total the other
    # margins give away (all row totals minus the other column totals) -- then a warning says so
    assert not failed or small_margin
    # the simple attack: a row or column total minus its shown cells never isolates one hidden cell,
    # and the hidden cells of a row or column never add up to a small number
    for g in groups:
        hidden = [c for c in g if supp[c]]
        assert len(hidden) != 1
        if hidden and len(hidden) < len(g):
            assert sum(true[c] for c in hidden) > T
    # the full attack: linear programming on all margins at once
    bounds = _attack(true, shown, supp, groups, rounding)
    for c, (lo, hi) in bounds.items():
        assert hi - lo >= 1 - 1e-6, f"cell {c} (true {true[c]}) pinned to [{lo}, {hi}]"
        if primary[c] and not failed:
            assert hi > T + 1e-6, f"small cell {c} (true {true[c]}) proved to be at most {T}: [{lo}, {hi}]"


def test_totals_rows_are_suppressed_and_rounded_like_other_counts():
    t = pd.DataFrame({"g": ["a", "b", "all"], "n": [2, 3, 5], "total": [False, False, True]})
    out = suppress(t, "n", "nhs", total_rows="total")
    assert out["n_suppressed"].all()
    t = pd.DataFrame({"g": ["a", "b", "c", "all"], "n": [2, 30, 40, 72], "total": [False, False, False, True]})
    out = suppress(t, "n", "nhs", total_rows="total")
    assert list(out["n_display"]) == ["*", "*", "40", "70"]


# --------------------------------------------------------------------------------------------
# service benchmarks and the clinician's own caseload
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo():
    return load_caseload(DEMO)


def test_service_benchmark_reads_a_float_column_of_zeros_as_a_mean():
    """A share of sessions that is 0 for every session (a small caseload, a short period) is a mean of 0, not a
    true/false rate that would need one row per client."""
    s = pd.DataFrame({"client_id": ["a", "a", "b", "c"], "share": pd.array([0.0, 0.0, 0.0, 0.0], dtype="Float64")})
    out = service_benchmark(s, "share", policy="none")
    assert out.loc[out["is_total"], "mean"].iloc[0] == 0
    assert "rate" not in out.columns or out["rate"].isna().all()
    flags = pd.DataFrame({"client_id": ["a", "b"], "ended": [1, 0]})  # 0/1 integers stay a rate
    assert service_benchmark(flags, "ended", policy="none").loc[lambda f: f["is_total"], "rate"].iloc[0] == 0.5


def test_service_benchmark_matches_plain_pandas_under_the_policy(demo):
    clients = demo.clients.assign(dropout=demo.clients["end_reason"].eq("unilateral"))
    out = service_benchmark(clients, "dropout", by="personality_disorder", policy="nhs")
    truth = clients.groupby("personality_disorder")["dropout"].agg(["size", "sum"])
    body = out[~out["is_total"]].set_index("personality_disorder")
    for g, r in truth.iterrows():
        row = body.loc[g]
        if row["n_suppressed"]:
            assert np.isnan(row["rate"])
        else:
            assert row["n"] == 5 * np.floor(r["size"] / 5 + 0.5)
        if not (row["n_suppressed"] or row["events_suppressed"]):
            assert row["rate"] == pytest.approx(row["events"] / row["n"])
    total = out[out["is_total"]].iloc[0]
    assert total["personality_disorder"] == "all" and total["n"] == 5 * np.floor(len(clients) / 5 + 0.5)
    for col in ("n", "events"):
        shown = out.loc[~out[f"{col}_suppressed"], col]
        assert not ((shown >= 1) & (shown <= 7)).any()


def test_service_benchmark_mean_hidden_for_small_groups(demo):
    s = demo.sessions[demo.sessions["srs_total"].notna()].merge(
        demo.clients[["client_id", "gender_identity"]], on="client_id")
    out = service_benchmark(s, "srs_total", by="gender_identity", policy="cms")
    truth = s.groupby("gender_identity")["client_id"].nunique()
    body = out[~out["is_total"]].set_index("gender_identity")
    for g, n in truth.items():
        if n <= 10:
            assert body.loc[g, "mean_suppressed"] and np.isnan(body.loc[g, "mean"])
    shown = body[~body["mean_suppressed"]]
    for g in shown.index:
        assert shown.loc[g, "mean"] == pytest.approx(s.loc[s["gender_identity"] == g, "srs_total"].mean())


def test_apply_scope_keeps_only_the_clinicians_own_clients(demo):
    own = apply_scope(demo, "T03")
    assert (own.clients["clinician_id"] == "T03").all()
    assert len(own.clients) == (demo.clients["clinician_id"] == "T03").sum()
    assert own.sessions["client_id"].isin(own.clients["client_id"]).all()
    assert len(own.sessions) == demo.sessions["client_id"].isin(own.clients["client_id"]).sum()
    assert list(own.clinicians["clinician_id"]) == ["T03"]
    assert (own.counts["read"] == own.counts["loaded"] + own.counts["quarantined"]).all()
    assert "own caseload of T03" in own.source
    assert len(demo.clients) > len(own.clients)  # the original is untouched
    with pytest.raises(ValueError, match="T99"):
        apply_scope(demo, "T99")


def test_self_review_dashboards_do_not_compare_the_clinician_with_themselves(demo):
    """In a self-review the only "service" loaded is the clinician: the views that compare with
    the service say so instead of drawing the clinician against their own figures."""
    from supervision.widgets.adaptation import AdaptationDashboard
    from supervision.widgets.alliance import AllianceDashboard
    from supervision.widgets.focus import FocusDashboard
    from supervision.widgets.outcome import OutcomeDashboard
    from supervision.widgets.supervision import SupervisionDashboard

    own = apply_scope(demo, "T03")
    assert own.scope == "T03" and demo.scope is None
    for make in (AllianceDashboard, FocusDashboard, OutcomeDashboard, AdaptationDashboard):
        for caseload, scoped in ((own, True), (demo, False)):
            dash = make(caseload)
            comparing = [i for i, v in enumerate(dash.views) if v.compares_with_service]
            assert comparing, make.__name__
            for i in comparing:
                dash._draw(i)
                notice = [c for c in dash.views[i].widget.children if "sw-self-review" in c._dom_classes]
                assert bool(notice) == scoped, (make.__name__, i)
                if scoped:
                    assert "T03" in notice[0].value and "compare you with yourself" in notice[0].value
            assert not dash.error.value, dash.error.value
            dash.close()
    for caseload, scoped in ((own, True), (demo, False)):
        dash = SupervisionDashboard(caseload, supervisee="T03")
        i = next(i for i, v in enumerate(dash.views) if "sw-caseload" in v.widget._dom_classes)
        dash._draw(i)
        table = dash.views[i].html.value
        assert ("<th>service</th>" in table) != scoped and ("Self-review" in table) == scoped
        names = [t.name for t in dash.views[i].chart.figure.data] if dash.views[i].chart.figure is not None else []
        assert any(n.startswith("service") for n in names) != scoped, names
        dash.close()


def test_scope_filters_quarantine_and_report(tmp_path):
    (tmp_path / "clients.csv").write_text("client_id,clinician_id,start_date,end_reason\n"
                                          "A1,T1,2024-01-01,\nA2,T1,bad-date,\nB1,T2,2024-01-01,\nB2,T2,2024-01-01,weird\n")
    (tmp_path / "sessions.csv").write_text("client_id,clinician_id,session_date,attendance\n"
                                           "A1,T1,2024-01-02,attended\nB1,T2,2024-01-02,maybe\n")
    cl = load_caseload(tmp_path)
    own = apply_scope(cl, "T1")
    assert set(own.quarantine["clients"]["client_id"]) == {"A2"}
    assert own.quarantine["sessions"].empty
    assert not own.report["value"].astype(str).str.contains("weird|maybe|B1|B2").any()
    assert len(own.report) >= 1  # A2's bad date is theirs to see


def test_self_review_serves_service_figures_only_as_suppressed_aggregates(tmp_path):
    settings = tmp_path / "s.toml"
    settings.write_text('[privacy]\nself_review_clinician = "T05"\nsuppression_policy = "cms"\n')
    review = load_self_review(DEMO, settings=settings)
    assert isinstance(review, SelfReview) and review.clinician_id == "T05" and review.policy.name == "cms"
    assert set(review.caseload.clients["clinician_id"]) == {"T05"}
    b = review.benchmark(lambda cl: cl.clients.assign(dropout=cl.clients["end_reason"].eq("unilateral")),
                         "dropout", by="race_ethnicity")
    assert {"n", "n_suppressed", "n_display", "events", "rate", "rate_suppressed", "is_total"} <= set(b.columns)
    assert "client_id" not in b.columns
    for col in ("n", "events"):
        shown = b.loc[~b[f"{col}_suppressed"], col]
        assert not ((shown >= 1) & (shown <= 10)).any()
    own = load_own_caseload(DEMO, "T02")
    assert set(own.clients["clinician_id"]) == {"T02"}
    with pytest.raises(ValueError, match="self_review_clinician"):
        load_own_caseload(DEMO)


def test_importing_privacy_is_cheap():
    code = "import sys, supervision.privacy; print('openpyxl' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_read_key_strips_whitespace_and_accepts_binary(tmp_path):
    import secrets

    raw = secrets.token_bytes(40)
    p = tmp_path / "k.bin"
    p.write_bytes(raw)
    assert read_key(p) == raw.strip()
    p2 = _key(tmp_path / "k.txt", "  " + "0123456789abcdef" * 4 + "  ")
    assert read_key(p2) == ("0123456789abcdef" * 4).encode()


@pytest.mark.parametrize("policy", ["cms", "nhs"])
@pytest.mark.parametrize("seed", range(30))
def test_rates_do_not_reveal_small_counts_of_events_or_non_events(policy, seed):
    """Groups plus the service total row (as service_benchmark publishes them). An attacker with
    every published n and events (within the rounding) and the adding-up of the groups to the
    total bounds each events, non-events (n - events) and n; no small one (1..T) can be proved small."""
    rng = np.random.default_rng(500 + seed)
    g = int(rng.integers(2, 7))
    n = rng.choice([3, 9, 12, 20, 25, 40, 60], size=g)
    ev = np.array([rng.integers(0, m + 1) for m in n])
    n, ev = np.append(n, n.sum()), np.append(ev, ev.sum())  # last row: the total
    table = pd.DataFrame({"grp": [f"g{i}" for i in range(g)] + ["all"], "n": n, "ev": ev, "rate": ev / n,
                          "total": [False] * g + [True]})
    out = suppress(table, [], policy, rates={"rate": ("ev", "n")}, total_rows="total")
    T, half = (10, 0) if policy == "cms" else (7, 2.5)
    sn, se = out["n_suppressed"].to_numpy(), out["ev_suppressed"].to_numpy()
    assert (out["rate_suppressed"].to_numpy() == (sn | se)).all()
    m = g + 1  # variables: n_0..n_g, ev_0..ev_g
    bounds = []
    for vals, supp, shown in ((n, sn, out["n"]), (ev, se, out["ev"])):
        for i in range(m):
            if supp[i]:
                bounds.append((0, None))
            elif shown.iloc[i] > 0:
                bounds.append((max(0, shown.iloc[i] - half), shown.iloc[i] + half))
            else:
                bounds.append((0, 0))
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    for block in (0, m):  # groups add up to the total row
        row = np.zeros(2 * m)
        row[block:block + g] = 1
        row[block + g] = -1
        a_eq.append(row)
        b_eq.append(0)
    for i in range(m):  # events <= n
        row = np.zeros(2 * m)
        row[m + i], row[i] = 1, -1
        a_ub.append(row)
        b_ub.append(0)
    for i in range(m):
        e_obj, r_obj = np.zeros(2 * m), np.zeros(2 * m)
        e_obj[m + i] = 1
        r_obj[i], r_obj[m + i] = 1, -1
        for true, obj in ((ev[i], e_obj), (n[i] - ev[i], r_obj), (n[i], np.eye(2 * m)[i])):
            if not 1 <= true <= T:
                continue
            hi = linprog(-obj, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            assert hi.status in (0, 3)
            if hi.status == 0:
                assert -hi.fun > T + 1e-6, f"a count of {true} (row {i}) is provably <= {T}"


def test_unprotectable_small_numbers_are_reported():
    # 3 + 9 people, 2 + 7 events: whatever is hidden, the totals (12, 9) give 3 non-events
    t = pd.DataFrame({"g": ["a", "b"], "n": [3, 9], "ev": [2, 7]})
    t["rate"] = t["ev"] / t["n"]
    with pytest.warns(UserWarning, match="total"):
        out = suppress(t, [], "nhs", rates={"rate": ("ev", "n")})
    assert out.attrs["suppression"]["unprotected"] >= 1


def test_vectorised_and_cellwise_neutralising_agree():
    import random

    from supervision.io.export import neutralise_text

    rnd = random.Random(1)
    alpha = ["=", "+", "-", "@", "\t", "\r", "\n", " ", "1", "2", ".", "e", "a", "'", "\u00a0"]
    vals = ["".join(rnd.choice(alpha) for _ in range(rnd.randint(0, 5))) for _ in range(5000)] + [None]
    slow = neutralise_formulas(pd.DataFrame({"x": pd.Series(vals, dtype=object)}))["x"]
    for dtype in ("str", "string", "string[pyarrow]", "string[python]"):  # every pandas text dtype
        fast = neutralise_formulas(pd.DataFrame({"x": pd.Series(vals, dtype=dtype)}))["x"]
        assert list(fast.fillna("<NA>")) == list(slow.fillna("<NA>")), dtype
    assert list(slow[:-1]) == [neutralise_text(v) for v in vals[:-1]]


def test_parquet_input(tmp_path):
    from supervision import synth

    synth.write_clinic(tmp_path / "in", fmt="parquet", n_clinicians=2, months=4, seed=11)
    s = pseudonymise(tmp_path / "in", tmp_path / "out", _key(tmp_path / "k.txt"))
    before, after = load_caseload(tmp_path / "in"), load_caseload(tmp_path / "out")
    pd.testing.assert_frame_equal(before.counts, after.counts)
    assert len(before.report) == len(after.report)
    raw = pd.read_parquet(tmp_path / "in" / "clients.parquet")
    blob = _all_bytes(tmp_path / "out")
    assert not [c for c in raw["client_id"].astype(str) if c.encode() in blob]
    assert "ground_truth.json" not in {p.name for p in s.files}


def test_self_review_setting_loads_only_the_clinicians_own_clients():
    from supervision import load_caseload

    cl = load_caseload(settings={"privacy": {"self_review_clinician": "T02"}})
    assert set(cl.clients["clinician_id"]) == {"T02"} and set(cl.sessions["clinician_id"]) == {"T02"}
    full = load_caseload()
    assert len(cl.clients) == (full.clients["clinician_id"] == "T02").sum()


def test_self_review_benchmarks_still_see_the_service_as_aggregates():
    from supervision.privacy import load_self_review

    review = load_self_review(settings={"privacy": {"self_review_clinician": "T02"}})
    assert set(review.caseload.clients["clinician_id"]) == {"T02"}
    bench = review.benchmark("clients")
    assert len(bench) >= 1  # computed over the whole service, published under the policy


def test_weak_cells_with_one_programme_for_many_cells_equal_one_programme_per_cell():
    """The audit's shortcut (maximise the sum of the unproven cells; a cell above T in that table is
    safe) finds exactly the cells that one linear programme per cell finds weak. Oracle: scipy's
    linprog, once per sensitive cell, on random two-way tables with their row and column totals."""
    from scipy.optimize import linprog

    from supervision.privacy.suppression import _weak_cells

    rng = np.random.default_rng(7)
    T, checked, weak_seen = 4, 0, 0
    for _ in range(40):
        r, k = rng.integers(2, 5), rng.integers(2, 6)
        counts = rng.integers(0, 12, size=(r, k)).astype(float)
        # cells: the r*k counts, then the r row totals, the k column totals and the grand total
        value = np.concatenate([counts.ravel(), counts.sum(axis=1), counts.sum(axis=0), [counts.sum()]])
        m = len(value)
        cell = lambda i, j: i * k + j  # noqa: E731
        rows = [([cell(i, j) for j in range(k)], [r * k + i]) for i in range(r)]
        cols = [([cell(i, j) for i in range(r)], [r * k + r + j]) for j in range(k)]
        constraints = rows + cols + [(list(range(r * k, r * k + r)), [m - 1])]
        primary = np.zeros(m, dtype=bool)
        primary[: r * k] = (value[: r * k] >= 1) & (value[: r * k] <= T)
        supp = primary.copy()
        extra = rng.choice(r * k, size=rng.integers(0, 4), replace=False)  # some complementary cells
        supp[extra] = True
        hidden = np.zeros(m, dtype=bool)
        missing = np.zeros(m, dtype=bool)
        unknown = lambda c: bool(supp[c])  # noqa: E731
        got = sorted(_weak_cells(value, hidden, supp, unknown, primary, missing, constraints, T, 1))
        # one programme per sensitive cell, every equation of the table
        a_eq, b_eq = [], []
        for members, totals in constraints:
            row = np.zeros(m)
            row[members] = 1.0
            row[totals[0]] = -1.0
            a_eq.append(row)
            b_eq.append(0.0)
        bounds = [(0, None) if unknown(c) else (value[c], value[c]) for c in range(m)]
        want = []
        for c in range(m):
            if primary[c] and unknown(c):
                obj = np.zeros(m)
                obj[c] = -1.0
                res = linprog(obj, A_eq=np.array(a_eq), b_eq=np.array(b_eq), bounds=bounds, method="highs")
                if res.status == 0 and -res.fun < T + 1 - 1e-9:
                    want.append(c)
                checked += 1
        assert got == want
        weak_seen += len(want)
    assert checked > 50 and 0 < weak_seen < checked  # both kinds of cell were met
