"""FHIR R4 QuestionnaireResponse import (supervision.io.fhir).

Oracles: the HL7 US Core PHQ-9 example in ../shared/reference/ (items 2,2,2,2,1,1,2,0,0 -> 12,
its own total item 44261-6 = 12; read in place, never copied), the LOINC codes of
../shared/DEFINITIONS.md §4 (items, LL358-3 answer scores), and hand-built synthetic resources
whose scores are set here. Fixtures in tests/data/fhir/ are synthetic (made by the helpers below).
"""

from __future__ import annotations

import gzip
import json
import random
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from supervision.io import load_caseload, load_tables
from supervision.cli import import_fhir_command
from supervision.io.fhir import ANSWER_SCORES, ITEM_CODES, import_fhir, read_fhir

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
US_CORE = REFERENCE / "us_core_phq9_questionnaire_response.json"
FIXTURES = Path(__file__).resolve().parent / "data" / "fhir"

LA = {0: ("LA6568-5", "Not at all"), 1: ("LA6569-3", "Several days"), 2: ("LA6570-1", "More than half the days"),
      3: ("LA6571-9", "Nearly every day")}
PHQ9 = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
GAD7 = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]


def coded(code, score, link=None):
    c, d = LA[score]
    return {"linkId": link or "/" + code, "text": "(question wording not stored)",
            "answer": [{"valueCoding": {"system": "http://loinc.org", "code": c, "display": d}}]}


def qr(inst, scores, subject="P1", author="T01", authored="2025-02-03T10:00:00Z", total=None, status="completed",
       rid="r1"):
    codes, panel, tcode = (PHQ9, "44249-1", "44261-6") if inst == "phq9" else (GAD7, "69737-5", "70274-6")
    items = [coded(c, s) for c, s in zip(codes, scores)]
    if total is not None:
        items.append({"linkId": "/" + tcode, "answer": [{"valueInteger": total}]})
    r = {"resourceType": "QuestionnaireResponse", "id": rid, "questionnaire": f"http://loinc.org/q/{panel}",
         "status": status, "subject": {"reference": f"Patient/{subject}"}, "authored": authored, "item": items}
    if author:
        r["author"] = {"reference": f"Practitioner/{author}"}
    return r


def write_json(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def report(problems):
    return pd.DataFrame(problems, columns=["table", "row", "column", "value", "problem", "fix", "severity", "check"])


# --------------------------------------------------------------------------------------------
# the US Core oracle
# --------------------------------------------------------------------------------------------

def test_us_core_example_imports_to_phq9_total_12(tmp_path):
    raw, problems = read_fhir(US_CORE)
    assert problems == []
    sc = raw["scores"].frame
    items = sc[sc["item"] != "total"].assign(n=lambda d: d["item"].astype(int)).sort_values("n")
    assert items["value"].tolist() == [2, 2, 2, 2, 1, 1, 2, 0, 0]  # file order is item order here
    assert items["value"].sum() == 12
    assert sc.loc[sc["item"] == "total", "value"].tolist() == [12]  # the resource's own total item, carried
    assert set(sc["instrument"]) == {"phq9"}                        # the difficulty item 69722-7 is not scored
    assert raw["clients"].frame[["client_id", "clinician_id", "start_date"]].values.tolist() == [
        ["example", "practitioner-1", "2022-11-29"]]
    cl = import_fhir(US_CORE, tmp_path)
    assert cl.status == "clean"
    s = cl.sessions.iloc[0]
    assert s["phq9_total"] == 12 and s["attendance"] == "attended"
    assert s["session_date"] == pd.Timestamp("2022-11-29")
    for name in ("clients.csv", "sessions.csv", "scores.csv", "import_report.csv"):
        assert (tmp_path / name).exists()
    again = load_caseload(tmp_path)                 # the written folder is an ordinary export
    assert again.status == "clean" and again.sessions["phq9_total"].tolist() == [12]


def test_us_core_total_computed_from_items_when_not_given(tmp_path):
    res = json.loads(US_CORE.read_text())
    res["item"] = [i for i in res["item"] if i["linkId"] != "/44261-6"]
    raw, problems = read_fhir(write_json(tmp_path / "qr.json", res))
    assert problems == [] and "total" not in set(raw["scores"].frame["item"])
    cl = load_tables(raw, reader_problems=problems)
    assert cl.sessions["phq9_total"].tolist() == [12]           # scored by the loader from the items
    assert not cl.sessions["phq9_total_prorated"].any()


def test_codes_match_definitions():
    assert ANSWER_SCORES == {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}
    assert [ITEM_CODES[c] for c in PHQ9] == [("phq9", str(i)) for i in range(1, 10)]
    assert [ITEM_CODES[c] for c in GAD7] == [("gad7", str(i)) for i in range(1, 8)]
    assert ITEM_CODES["44261-6"] == ("phq9", "total") and ITEM_CODES["70274-6"] == ("gad7", "total")


# --------------------------------------------------------------------------------------------
# items by code, never by position
# --------------------------------------------------------------------------------------------

def test_items_mapped_by_code_not_position(tmp_path):
    scores = [3, 0, 1, 2, 0, 3, 1, 2, 0]
    res = qr("phq9", scores)
    random.Random(7).shuffle(res["item"])
    assert [i["linkId"] for i in res["item"]] != ["/" + c for c in PHQ9]
    raw, problems = read_fhir(write_json(tmp_path / "shuffled.json", res))
    assert problems == []
    sc = raw["scores"].frame.assign(n=lambda d: d["item"].astype(int)).sort_values("n")
    assert sc["value"].tolist() == scores


def test_opaque_link_ids_with_item_code_nested_groups_and_ordinals(tmp_path):
    # linkIds "q1".."q9" carry nothing; item.code carries LOINC. Items sit in a group, in reverse
    # order, answered partly by ordinal extension, partly by valueInteger, partly by LOINC code.
    scores = [1, 2, 3, 0, 1, 2, 3, 0, 1]
    items = []
    for n, (code, score) in enumerate(zip(PHQ9, scores), 1):
        item = {"linkId": f"q{n}", "code": [{"system": "http://loinc.org", "code": code}]}
        if n % 3 == 0:
            item["answer"] = [{"valueCoding": {"system": "http://example.org/my-codes", "code": f"opt{score}",
                                               "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue",
                                                              "valueDecimal": score}]}}]
        elif n % 3 == 1:
            item["answer"] = [{"valueInteger": score}]
        else:
            item["answer"] = coded(code, score)["answer"]
        items.append(item)
    res = {"resourceType": "QuestionnaireResponse", "status": "completed", "subject": {"reference": "Patient/P9"},
           "authored": "2025-01-10", "author": {"reference": "PractitionerRole/T09"},
           "item": [{"linkId": "grp", "item": items[::-1]}]}
    raw, problems = read_fhir(write_json(tmp_path / "opaque.json", res))
    assert problems == []
    sc = raw["scores"].frame.assign(n=lambda d: d["item"].astype(int)).sort_values("n")
    assert sc["value"].tolist() == scores
    assert raw["clients"].frame["clinician_id"].tolist() == ["T09"]


def test_opaque_link_ids_without_codes_are_reported_not_guessed(tmp_path):
    res = qr("phq9", [1] * 9)
    for n, item in enumerate(res["item"], 1):
        item["linkId"] = f"PHQ.{n}"                       # MII-style ids, no item.code
    raw, problems = read_fhir(write_json(tmp_path / "q.json", res))
    rep = report(problems)
    assert rep["check"].tolist()[0] == "no_answers" and (rep["check"] == "unknown_item").sum() == 9
    assert "position" in rep.loc[rep["check"] == "unknown_item", "problem"].iloc[0]
    assert len(raw["sessions"].frame) == 0 and "scores" not in raw


# --------------------------------------------------------------------------------------------
# bundles, NDJSON, mixtures, malformed input
# --------------------------------------------------------------------------------------------

def test_mixed_bundle_fixture():
    raw, problems = read_fhir(FIXTURES / "mixed_bundle.json")
    rep = report(problems)
    assert dict(zip(rep["row"], rep["check"])) == {
        2: "not_a_questionnaire_response", 3: "unknown_questionnaire", 4: "entered_in_error", 5: "bad_reference"}
    assert rep.loc[rep["row"] == 5, "column"].item() == "entry[5].resource.subject"
    cl = load_tables(raw, reader_problems=problems)
    s = cl.sessions.set_index("session_date")
    assert s.loc["2025-02-03", ["phq9_total", "gad7_total"]].tolist() == [6, 7]  # one session, two forms
    assert s.loc["2025-02-17", "phq9_total"] == 4
    assert cl.clients[["client_id", "clinician_id"]].values.tolist() == [["P001", "T01"]]
    assert cl.clients["start_date"].item() == pd.Timestamp("2025-02-03")


def test_mixed_ndjson_fixture():
    raw, problems = read_fhir(FIXTURES / "mixed.ndjson")
    rep = report(problems)
    assert dict(zip(rep["row"], rep["check"])) == {
        3: "malformed_json", 4: "not_a_questionnaire_response", 7: "no_answers", 9: "not_a_resource"}
    assert "line 3 of mixed.ndjson" in rep.loc[rep["row"] == 3, "problem"].item()
    cl = load_tables(raw, reader_problems=problems)
    assert cl.counts.set_index("table").loc["sessions", "loaded"] == 3
    s = cl.sessions.set_index(["client_id", "session_date"])
    assert s.loc[("P010", "2025-03-01"), ["phq9_total", "gad7_total"]].tolist() == [9, 7]
    assert s.loc[("P011", "2025-03-09"), "gad7_total"] == 3
    # rows of the derived tables point at the NDJSON line of their resource
    assert sorted(raw["sessions"].frame["source_row"].tolist()) == [1, 5, 8]


def test_transaction_bundle_in_ndjson_gzip_and_folder(tmp_path):
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": qr("gad7", [1] * 7, subject="P5"), "request": {"method": "POST", "url": "QuestionnaireResponse"}},
        {"request": {"method": "DELETE", "url": "QuestionnaireResponse/old"}},
    ]}
    folder = tmp_path / "export"
    folder.mkdir()
    with gzip.open(folder / "QuestionnaireResponse.ndjson.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(qr("phq9", [0] * 9, subject="P4")) + "\n" + json.dumps(tx) + "\n")
    write_json(folder / "single.json", qr("phq9", [1] * 9, subject="P6", authored="2025-04-01"))
    (folder / "manifest.txt").write_text("not read")
    raw, problems = read_fhir(folder)
    assert problems == []
    assert sorted(raw["clients"].frame["client_id"]) == ["P4", "P5", "P6"]
    cl = load_tables(raw, reader_problems=problems)
    assert cl.sessions.set_index("client_id")["gad7_total"].get("P5") == 7


def test_answers_partial_statuses_duplicates_and_mismatches(tmp_path):
    bad_answer = qr("phq9", [1] * 9, subject="A", rid="a")
    bad_answer["item"][4]["answer"] = [{"valueCoding": {"system": "http://loinc.org", "code": "LA6573-5"}}]  # a difficulty code
    out_of_range = qr("gad7", [1] * 7, subject="E")
    out_of_range["item"][0]["answer"] = [{"valueInteger": 5}]
    lines = [
        bad_answer,                                                                  # 1: one item unusable
        qr("phq9", [1] * 9, subject="B", total=13),                                  # 2: total != sum
        qr("phq9", [1] * 9, subject="B", authored="2025-02-03T18:00:00Z"),           # 3: duplicate PHQ-9 same day
        qr("gad7", [2] * 7, subject="C", status="in-progress"),                      # 4: not completed
        qr("gad7", [2] * 7, subject="D", author=None),                               # 5: self-reported, no clinician
        out_of_range,                                                                # 6: item 1 = 5
        qr("phq9", [1] * 9, subject="F", authored="2025-02"),                        # 7: partial date
        qr("phq9", [1] * 9, subject="G") | {"subject": {"display": "no reference"}},  # 8: no subject reference
    ]
    f = tmp_path / "x.ndjson"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    raw, problems = read_fhir(f)
    rep = report(problems)
    got = set(zip(rep["row"], rep["check"]))
    assert {(1, "unknown_answer"), (1, "incomplete_items"), (2, "total_mismatch"), (3, "duplicate_response"),
            (4, "not_completed"), (5, "no_clinician"), (7, "missing_date"),
            (8, "bad_reference")} <= got
    assert rep.loc[rep["check"] == "unknown_answer", "value"].item() == "LA6573-5"
    cl = load_tables(raw, reader_problems=problems)
    r = cl.report
    assert ((r["table"] == "scores") & (r["check"] == "out_of_range") & (r["row"] == 6)).any()   # the validator's
    assert ((r["table"] == "clients") & (r["column"] == "clinician_id") & (r["row"] == 5)).any()  # no clinician
    b = cl.sessions.set_index("client_id").loc["B"]
    assert b["phq9_total"] == 13                       # given total kept (and reported)
    # a default clinician makes self-reported responses usable
    raw2, _ = read_fhir(f, default_clinician="T99")
    assert raw2["clients"].frame.set_index("client_id").loc["D", "clinician_id"] == "T99"


def test_other_questionnaires_are_counted_once_per_questionnaire(tmp_path):
    audit = {"resourceType": "QuestionnaireResponse", "status": "completed", "subject": {"reference": "Patient/P1"},
             "authored": "2025-01-02", "questionnaire": "http://example.org/Questionnaire/audit-c",
             "item": [{"linkId": "1", "answer": [{"valueInteger": 2}]}]}
    f = tmp_path / "all.ndjson"
    f.write_text("\n".join([json.dumps(audit)] * 3 + [json.dumps(qr("phq9", [0] * 9))]) + "\n")
    raw, problems = read_fhir(f)
    rep = report(problems)
    assert rep[["row", "check", "value"]].values.tolist() == [
        [1, "unknown_questionnaire", "http://example.org/Questionnaire/audit-c"]]
    assert "3 responses" in rep["problem"].item()
    assert len(raw["sessions"].frame) == 1


def test_nothing_usable_and_missing_path_never_crash(tmp_path, capsys):
    (tmp_path / "broken.json").write_text('{"resourceType": "Bundle", "entry": [', encoding="utf-8")
    raw, problems = read_fhir(tmp_path / "broken.json")
    assert report(problems)["check"].tolist() == ["malformed_json"]
    assert import_fhir_command(tmp_path / "broken.json", tmp_path / "out") == 2
    assert import_fhir_command(tmp_path / "nope.ndjson", tmp_path / "out2") == 2
    assert "NOTHING could be imported" in capsys.readouterr().out
    raw, problems = read_fhir(tmp_path / "nope.ndjson")
    assert raw == {} and problems[0]["check"] == "unreadable_file"
    cl = load_tables(raw, reader_problems=problems)
    assert cl.status == "unusable"


def test_cli_exit_codes_and_report(tmp_path, capsys):
    assert import_fhir_command(US_CORE, tmp_path / "a") == 0
    assert import_fhir_command(FIXTURES / "mixed.ndjson", tmp_path / "b") == 1
    out = capsys.readouterr().out
    assert "imported, with problems" in out and "malformed_json" in out
    rep = pd.read_csv(tmp_path / "b" / "import_report.csv", encoding="utf-8-sig")
    assert {"fhir"} <= set(rep["table"]) and len(rep) == 4


# --------------------------------------------------------------------------------------------
# bulk export: streamed, bounded memory
# --------------------------------------------------------------------------------------------

def bulk_line(i: int, rng: random.Random) -> str:
    """One realistic, synthetic QuestionnaireResponse (with question text, as servers export it)."""
    inst = "phq9" if i % 3 else "gad7"
    n = 9 if inst == "phq9" else 7
    day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=(i // 2000) * 7 + i % 5)
    res = qr(inst, [rng.randrange(4) for _ in range(n)], subject=f"P{i % 2000:05d}", author=f"T{i % 40:02d}",
             authored=f"{day:%Y-%m-%d}T09:{i % 60:02d}:00Z", rid=f"qr-{i}")
    res["meta"] = {"lastUpdated": "2025-06-01T00:00:00Z", "profile": [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-questionnaireresponse"]}
    res["encounter"] = {"reference": f"Encounter/e{i}"}
    for item in res["item"]:
        item["text"] = "Over the last 2 weeks, how often have you been bothered by the following problem? " * 2
    return json.dumps(res)


def write_bulk(path: Path, n: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(bulk_line(i, rng) + "\n")
    return path


@pytest.mark.slow
def test_ndjson_is_streamed_with_bounded_memory(tmp_path):
    f = write_bulk(tmp_path / "QuestionnaireResponse.ndjson", 5_000)
    size = f.stat().st_size
    tracemalloc.start()
    raw, problems = read_fhir(f)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert problems == []
    assert len(raw["sessions"].frame) == raw["sessions"].frame[["client_id", "session_date"]].drop_duplicates().shape[0]
    assert raw["scores"].frame["item"].eq("1").sum() == 5_000
    # Holding the file's text alone would take `size` bytes, the parsed resources several times it;
    # the compact rows take about 0.3 x size here (150 bytes per response against 3 kB of JSON).
    assert peak < size / 2, (peak, size)
    # Control: a reader that kept the parsed resources would break the bound (measured on the
    # first 1,000 lines, a fifth of the file, to keep the test fast).
    tracemalloc.start()
    with f.open() as fh:
        held = [json.loads(line) for _, line in zip(range(1_000), fh)]
    _, naive = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held
    assert naive > size / 2 / 5
