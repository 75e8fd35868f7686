"""FHIR R4 ``QuestionnaireResponse`` (PHQ-9, GAD-7) -> the data contract's tables.

Reads what a service's FHIR server or EHR exports and turns it into ``clients``, ``sessions`` and a
long ``scores`` table (data/README.md), as :class:`~supervision.io.readers.RawTable` objects, so
the same validator (:func:`supervision.io.load_tables`) checks them as any CSV export.

Inputs (``path``)
-----------------
- a single JSON resource (``.json``);
- a ``Bundle`` of any type (``searchset``, ``collection``, ``transaction``, ``batch``, ...): every
  ``entry[].resource`` is read, nested Bundles too;
- an NDJSON bulk-export file (``.ndjson``, ``.jsonl``, or ``.json`` whose first line is a complete
  resource followed by more lines): read **line by line**; only compact rows are kept (one
  small record per usable questionnaire), never the file or the parsed resources, so memory
  grows with the number of responses, not with the size of the file;
- any of these gzip-compressed (``.gz``), or a folder of them (``*.json``, ``*.ndjson``,
  ``*.jsonl`` and ``.gz`` variants, in name order; other files are ignored).

How resources are read (codes: docs/methods.md §4, LOINC)
------------------------------------------------------------------
- **Which questionnaire.** Items decide: every item whose LOINC code is a PHQ-9 or GAD-7 item is
  imported as that item, whatever the form is called, so a combined form (PHQ-9 and GAD-7 in one
  response) gives both. The declared questionnaire is read too, to report problems: the
  ``questionnaire`` canonical URL names PHQ-9 or GAD-7 when it contains the panel code
  ``44249-1`` or ``69737-5`` as a token (``http://loinc.org/q/44249-1``,
  ``.../Questionnaire/44249-1|2.72``); a (non-standard) top-level ``code`` or a ``meta.tag`` with
  that code counts as well. A response with neither a known panel code nor a single PHQ-9/GAD-7
  item is an *unknown questionnaire*; a known panel with no usable answer is *no answers*.
- **Items by LOINC code, never by position.** An item's code is taken from ``item.code[]``
  (system ``http://loinc.org`` or no system), else from ``linkId`` only when the linkId (or its last
  ``/``-segment: ``/44250-9``) is itself a known LOINC item code. Opaque linkIds without a LOINC
  ``code`` (``PHQ.1``, ``14363``) are reported, not guessed. Nested groups (``item[].item[]``,
  ``answer[].item[]``) are searched.

  ======  =========================================================================  =========
  form    items 1..n (LOINC, in the form's order)                                     total
  ======  =========================================================================  =========
  PHQ-9   44250-9 44255-8 44259-0 44254-1 44251-7 44258-2 44252-5 44253-3 44260-8      44261-6
  GAD-7   69725-0 68509-9 69733-4 69734-2 69735-9 69689-8 69736-7                      70274-6
  ======  =========================================================================  =========

  The functional-difficulty question (69722-7; 44256-6) is recognised and deliberately not
  imported: it is not part of the total and the contract has no column for it.
- **Answers** score by the LOINC answer list LL358-3: ``valueCoding.code`` LA6568-5 = 0,
  LA6569-3 = 1, LA6570-1 = 2, LA6571-9 = 3; otherwise by an ordinal value: the ``ordinalValue``
  (or ``itemWeight``, ``iso21090-CO-value``) extension on the coding or the answer, or
  ``valueInteger`` / ``valueDecimal``. Any other answer is reported and that item left empty.
  Values outside 0-3 are passed on so the validator reports them.
- **Totals.** The total item (44261-6, 70274-6) becomes item ``total`` (``valueDecimal``,
  ``valueInteger``, ``valueQuantity.value`` or a numeric ``valueString``): totals are accepted as
  given; the loader computes the total from the items when none is given. A given total that
  differs from the sum of a complete set of items is reported (warning).
- **Who and when.** ``subject`` (a ``Patient`` reference; its id, e.g. ``Patient/p1`` -> ``p1``) is
  the ``client_id``; ``author`` when it is a ``Practitioner`` or ``PractitionerRole`` is the
  ``clinician_id``; the date part of ``authored`` (as written, no time-zone shift) is the
  ``session_date``. One ``attended`` session per client and date (several questionnaires on one
  day share it; the ``encounter`` is not needed). A client's ``clinician_id`` is the practitioner
  author of their earliest response that names one (or ``default_clinician``), ``start_date`` the
  earliest ``authored`` date imported.
- **Status.** ``completed`` and ``amended`` are imported; ``in-progress`` and ``stopped`` are
  imported with a warning (a total is computed only when every item is answered);
  ``entered-in-error`` is left out and reported.

Problems
--------
Every resource that cannot be used, or only partly, gives one report row (never an exception):
``table`` = ``"fhir"``, ``row`` = the line number in an NDJSON file, or the entry index in a Bundle
(0-based, as in the JSON path), or empty for a single-resource file; ``column`` = the JSON path
(``entry[3].resource.item[2].answer[0].valueCoding.code``); ``value``; ``problem`` (naming the
file); ``fix``; ``severity`` (``error``: the resource, or that questionnaire in it, was not
imported; ``warning``: imported, or left out on purpose); ``check``. Resources of other types
(Patient, Observation, ...) are counted in one warning per file and type, and responses to other
questionnaires in one error per file and questionnaire (a service's export may hold thousands). Rows the validator then
reports for ``clients``, ``sessions`` and ``scores`` carry the same row number: the line (or entry)
of the resource they came from.

Public functions: :func:`read_fhir`, :func:`import_fhir`; the ``supervision import fhir`` command
is in :mod:`supervision.cli`.
"""

from __future__ import annotations

import datetime
import gzip
import zlib
import json
import math
import re
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from supervision.io.readers import SOURCE_ROW, RawTable

__all__ = ["read_fhir", "import_fhir", "import_fhir_counted", "PANELS", "ITEM_CODES", "ANSWER_SCORES",
           "NOT_SCORED", "write_import"]

LOINC = "http://loinc.org"
#: LOINC panel code -> instrument prefix.
PANELS: dict[str, str] = {"44249-1": "phq9", "69737-5": "gad7"}
_PHQ9 = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
_GAD7 = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
#: LOINC item code -> (instrument prefix, item: "1".."9" or "total").
ITEM_CODES: dict[str, tuple[str, str]] = {
    **{c: ("phq9", str(i)) for i, c in enumerate(_PHQ9, 1)}, "44261-6": ("phq9", "total"),
    **{c: ("gad7", str(i)) for i, c in enumerate(_GAD7, 1)}, "70274-6": ("gad7", "total"),
}
#: Recognised LOINC items that are not imported (functional difficulty, answer list LL359-1).
NOT_SCORED: dict[str, str] = {"69722-7": "difficulty question", "44256-6": "difficulty question"}
#: LOINC answer list LL358-3 (PHQ-9/GAD-7 frequency): answer code -> item score.
ANSWER_SCORES: dict[str, int] = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}
_ORDINAL_URLS = {
    "http://hl7.org/fhir/StructureDefinition/ordinalValue",
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
    "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value",
}
_N_ITEMS = {"phq9": 9, "gad7": 7}
_INSTRUMENTS = ("phq9", "gad7")
_NAMES = {"phq9": "PHQ-9", "gad7": "GAD-7"}
_WIDTH = 10                       # compact record: items 1..9 (GAD-7 uses 1..7) + total
_TOTAL = _WIDTH - 1
_IMPORTED = {"completed", "amended"}
_PARTIAL = {"in-progress", "stopped"}
_PANEL_RE = re.compile(r"(?<![0-9A-Za-z.-])(" + "|".join(re.escape(c) for c in PANELS) + r")(?![0-9])")
_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})")
_CLINICIAN_TYPES = ("Practitioner", "PractitionerRole")
_SUFFIXES = (".json", ".ndjson", ".jsonl")
FHIR_TABLE = "fhir"


def _problem(row, column, value, problem, fix, severity, check) -> dict:
    if isinstance(value, str) and len(value) > 200:
        value = value[:200] + "..."
    return {"table": FHIR_TABLE, "row": row, "column": column, "value": value, "problem": problem,
            "fix": fix, "severity": severity, "check": check}


class _Accumulator:
    """Compact rows of the usable responses (never the resources themselves).

    Identifiers and dates are interned (one string each); everything else lives in typed
    arrays: about 150 bytes per imported questionnaire, however large the resources are.
    """

    def __init__(self, default_clinician: str | None):
        self.default_clinician = default_clinician
        self.problems: list[dict] = []
        self.client_index: dict[str, int] = {}
        self.date_index: dict[str, int] = {}
        self.dates: list[str] = []
        self.clinician_index: dict[str, int] = {}
        # one entry per imported questionnaire (instrument within a response)
        self.r_client = array("q")
        self.r_date = array("q")
        self.r_inst = array("b")
        self.r_row = array("q")
        self.r_vals = array("d")
        self.seen: dict[int, int] = {}          # (client, date, instrument) -> row of the first
        # per client index: first date, its row, date of the first practitioner author, that clinician
        self.c_start = array("q")
        self.c_row = array("q")
        self.c_clin_date = array("q")
        self.c_clin = array("q")
        # per session (client, date): client, date, row, clinician
        self.session_index: dict[int, int] = {}
        self.s_client = array("q")
        self.s_date = array("q")
        self.s_row = array("q")
        self.s_clin = array("q")
        self.ignored: dict[tuple[str, str], list] = {}  # (file, resourceType) -> [count, row, path, where]
        self.unknown: dict[tuple[str, str], list] = {}  # (file, questionnaire) -> [count, row, path, where]
        self.n_resources = 0
        self.n_responses = 0
        self.n_used = 0

    @staticmethod
    def intern(table: dict[str, int], key: str) -> int:
        i = table.get(key)
        if i is None:
            i = table[key] = len(table)
        return i

    def client(self, sid: str) -> int:
        i = self.client_index.get(sid)
        if i is None:
            i = self.client_index[sid] = len(self.client_index)
            for a in (self.c_start, self.c_row, self.c_clin_date, self.c_clin):
                a.append(-1)
        return i

    def date(self, date: str) -> int:
        i = self.date_index.get(date)
        if i is None:
            i = self.date_index[date] = len(self.dates)
            self.dates.append(date)
        return i

    def add_session(self, c: int, d: int, row: int, k: int) -> None:
        key = (c << 32) | d
        j = self.session_index.get(key)
        if j is None:
            self.session_index[key] = len(self.s_client)
            self.s_client.append(c)
            self.s_date.append(d)
            self.s_row.append(row)
            self.s_clin.append(k)
        elif self.s_clin[j] < 0 <= k:
            self.s_clin[j] = k
        dates = self.dates
        if self.c_start[c] < 0 or dates[d] < dates[self.c_start[c]]:
            self.c_start[c], self.c_row[c] = d, row
        if k >= 0 and (self.c_clin_date[c] < 0 or dates[d] < dates[self.c_clin_date[c]]):
            self.c_clin_date[c], self.c_clin[c] = d, k


# --------------------------------------------------------------------------------------------
# references, dates, codes
# --------------------------------------------------------------------------------------------

def _reference(ref: Any) -> tuple[str | None, str | None]:
    """(resource type, id) of a FHIR Reference; (None, None) when it has neither."""
    if not isinstance(ref, dict):
        return None, None
    text = ref.get("reference")
    if isinstance(text, str) and text.strip():
        text = text.strip()
        if text.startswith("urn:uuid:") or text.startswith("urn:oid:"):
            return ref.get("type") if isinstance(ref.get("type"), str) else None, text.split(":", 2)[2]
        if text.startswith("#"):
            return None, None  # contained resource: no identity of its own
        parts = [p for p in text.split("?")[0].split("/") if p]
        if "_history" in parts:
            parts = parts[:parts.index("_history")]
        if len(parts) >= 2:
            return parts[-2], parts[-1]
        return (ref.get("type") if isinstance(ref.get("type"), str) else None), parts[-1] if parts else None
    ident = ref.get("identifier")
    if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"].strip():
        return (ref.get("type") if isinstance(ref.get("type"), str) else None), ident["value"].strip()
    return None, None


def _codings(value: Any) -> list[dict]:
    """Codings of a CodeableConcept, a list of Codings or of CodeableConcepts."""
    out: list[dict] = []
    for v in value if isinstance(value, list) else [value]:
        if not isinstance(v, dict):
            continue
        if isinstance(v.get("coding"), list):
            out.extend(c for c in v["coding"] if isinstance(c, dict))
        elif "code" in v:
            out.append(v)
    return out


def _is_loinc(coding: dict) -> bool:
    system = coding.get("system")
    return system is None or (isinstance(system, str) and system.rstrip("/") == LOINC)


def _declared(res: dict) -> set[str]:
    """Instruments the resource says it is (questionnaire URL, top-level code, meta.tag)."""
    found: set[str] = set()
    q = res.get("questionnaire")
    if isinstance(q, str):
        found.update(PANELS[m] for m in _PANEL_RE.findall(q))
    meta = res.get("meta") if isinstance(res.get("meta"), dict) else {}
    for c in _codings(res.get("code")) + _codings(meta.get("tag", [])):
        if _is_loinc(c) and c.get("code") in PANELS:
            found.add(PANELS[c["code"]])
    return found


def _item_code(item: dict) -> str | None:
    for c in _codings(item.get("code", [])):
        code = c.get("code")
        if _is_loinc(c) and isinstance(code, str) and (code in ITEM_CODES or code in NOT_SCORED):
            return code
    link = item.get("linkId")
    if isinstance(link, str):
        last = link.strip().rstrip("/").rsplit("/", 1)[-1]
        if last in ITEM_CODES or last in NOT_SCORED:
            return last
    return None


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def _ordinal(element: Any) -> float | None:
    if not isinstance(element, dict):
        return None
    for ext in element.get("extension", []) if isinstance(element.get("extension"), list) else []:
        if isinstance(ext, dict) and ext.get("url") in _ORDINAL_URLS:
            for key in ("valueDecimal", "valueInteger"):
                n = _number(ext.get(key))
                if n is not None:
                    return n
    return None


def _score_answer(answer: dict, total: bool) -> tuple[float | None, str, Any, str]:
    """(value, path suffix, shown value, why not) of one answer."""
    coding = answer.get("valueCoding")
    if not total and isinstance(coding, dict):
        code = coding.get("code")
        ordinal = _ordinal(coding)
        if ordinal is None:
            ordinal = _ordinal(answer)
        if _is_loinc(coding) and code in ANSWER_SCORES:
            return float(ANSWER_SCORES[code]), "valueCoding.code", code, ""
        if ordinal is not None:
            return ordinal, "valueCoding.extension", ordinal, ""
        return None, "valueCoding.code", code, (f"the answer code {code!r} is not in the LOINC answer list LL358-3 "
                                                "(LA6568-5, LA6569-3, LA6570-1, LA6571-9) and carries no ordinal value")
    for key in ("valueInteger", "valueDecimal"):
        if key in answer:
            n = _number(answer[key])
            return n, key, answer[key], "" if n is not None else f"{key} is not a number"
    if total:
        q = answer.get("valueQuantity")
        if isinstance(q, dict) and _number(q.get("value")) is not None:
            return _number(q["value"]), "valueQuantity.value", q["value"], ""
        s = answer.get("valueString")
        if isinstance(s, str):
            try:
                n = float(s.strip())
            except ValueError:
                n = None
            if n is not None and math.isfinite(n):
                return n, "valueString", s, ""
            return None, "valueString", s, "the total is text that is not a number"
    ordinal = _ordinal(answer)
    if ordinal is not None:
        return ordinal, "extension", ordinal, ""
    kinds = [k for k in answer if k.startswith("value")]
    return None, kinds[0] if kinds else "", json.dumps(answer)[:200], (
        f"the answer ({', '.join(kinds) or 'no value'}) is not a number" if total else
        f"the answer ({', '.join(kinds) or 'no value'}) is neither a LOINC answer code nor an ordinal value")


def _walk(items: Any, path: str):
    """(item, path) for every item, depth first, including items nested in answers."""
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        p = f"{path}item[{i}]"
        yield item, p
        yield from _walk(item.get("item"), p + ".")
        answers = item.get("answer")
        if isinstance(answers, list):
            for j, a in enumerate(answers):
                if isinstance(a, dict) and a.get("item"):
                    yield from _walk(a["item"], f"{p}.answer[{j}].")


# --------------------------------------------------------------------------------------------
# one resource
# --------------------------------------------------------------------------------------------

def _resource(acc: _Accumulator, res: Any, row, path: str, where: str, file: str) -> None:
    """Read one resource (a QuestionnaireResponse, a Bundle, or anything else)."""
    acc.n_resources += 1
    if not isinstance(res, dict):
        acc.problems.append(_problem(row, path or "$", json.dumps(res)[:200],
                                     f"{where} is not a FHIR resource (a JSON object).",
                                     "Export FHIR resources (JSON objects with a resourceType).", "error", "not_a_resource"))
        return
    rtype = res.get("resourceType")
    if rtype == "Bundle":
        acc.n_resources -= 1
        entries = res.get("entry", [])
        if not isinstance(entries, list):
            acc.problems.append(_problem(row, f"{path}entry", str(entries)[:200], f"{where}: the Bundle's entry is not a list.",
                                         "Export the Bundle again; entry must be a list of {resource: ...}.", "error",
                                         "not_a_resource"))
            return
        for i, entry in enumerate(entries):
            r = i if row is None else row
            w = f"entry {i} of {file}" if row is None else f"{where}, entry {i}"
            if not isinstance(entry, dict) or "resource" not in entry:
                if isinstance(entry, dict) and isinstance(entry.get("request"), dict):
                    continue  # e.g. a DELETE in a transaction: no resource to read
                acc.n_resources += 1
                acc.problems.append(_problem(r, f"{path}entry[{i}]", json.dumps(entry)[:200],
                                             f"{w}: has no resource.", "Nothing to do if this entry is not a response; "
                                             "otherwise export the Bundle with its resources.", "warning", "not_a_resource"))
                continue
            _resource(acc, entry["resource"], r, f"{path}entry[{i}].resource.", w, file)
        return
    if rtype != "QuestionnaireResponse":
        key = (file, str(rtype) if rtype is not None else "(no resourceType)")
        if key not in acc.ignored:
            acc.ignored[key] = [0, row, path or "$", where]
        acc.ignored[key][0] += 1
        return
    acc.n_responses += 1
    _questionnaire_response(acc, res, row, path, where, file)


def _questionnaire_response(acc: _Accumulator, res: dict, row, path: str, where: str, file: str) -> None:
    add = acc.problems.append
    status = res.get("status")
    if status == "entered-in-error":
        add(_problem(row, f"{path}status", status, f"{where}: the response is marked entered-in-error; it was left out.",
                     "Nothing to do: the source system says it was recorded in error.", "warning", "entered_in_error"))
        return
    declared = _declared(res)
    # --- items -------------------------------------------------------------------------------
    vals = {inst: [math.nan] * _WIDTH for inst in _INSTRUMENTS}
    found = {inst: 0 for inst in _INSTRUMENTS}   # recognised items of each instrument (answered or not)
    answered = {inst: 0 for inst in _INSTRUMENTS}
    seen_codes: set[str] = set()
    unrecognised: list[tuple[dict, str]] = []
    item_problems: list[dict] = []
    for item, ipath in _walk(res.get("item"), path):
        code = _item_code(item)
        answers = item.get("answer")
        has_answers = isinstance(answers, list) and len(answers) > 0
        if code is None:
            if has_answers and not item.get("item"):
                unrecognised.append((item, ipath))
            continue
        if code in NOT_SCORED:
            continue
        inst, number = ITEM_CODES[code]
        found[inst] += 1
        if code in seen_codes:
            item_problems.append(_problem(row, f"{ipath}.linkId", item.get("linkId"),
                                          f"{where}: LOINC item {code} ({_NAMES[inst]} item {number}) appears twice; the first was used.",
                                          "Check the export: each question should be answered once.", "warning", "duplicate_item"))
            continue
        seen_codes.add(code)
        if not has_answers:
            continue
        scorable = [a for a in answers if isinstance(a, dict)]
        if len(scorable) != 1:
            item_problems.append(_problem(row, f"{ipath}.answer", len(answers),
                                          f"{where}: {_NAMES[inst]} item {number} ({code}) has {len(answers)} answers; one is expected. "
                                          "The item was left empty.", "Check the export: the question takes one answer.",
                                          "warning", "multiple_answers"))
            continue
        value, suffix, shown, why = _score_answer(scorable[0], number == "total")
        if value is not None and number != "total" and not float(value).is_integer():
            # PHQ-9 and GAD-7 answers score 0, 1, 2 or 3: a fraction is not an answer of the questionnaire
            value, why = None, f"the answer score {shown!r} is not a whole number (the answers score 0, 1, 2 or 3)"
        apath = f"{ipath}.answer[0]" + (f".{suffix}" if suffix else "")
        if value is None:
            item_problems.append(_problem(row, apath, shown,
                                          f"{where}: {_NAMES[inst]} {'total' if number == 'total' else 'item ' + number} ({code}): {why}. "
                                          "The item was left empty.",
                                          "Answer with a LOINC answer code (LL358-3) or an integer score 0-3; totals as a number.",
                                          "warning", "unknown_answer"))
            continue
        vals[inst][_TOTAL if number == "total" else int(number) - 1] = value
        answered[inst] += 1

    present = [inst for inst in _INSTRUMENTS if answered[inst] > 0]
    if not present:
        if declared or any(found.values()):
            names = " and ".join(_NAMES[i] for i in sorted(declared | {i for i in _INSTRUMENTS if found[i]}))
            add(_problem(row, f"{path}item", pd.NA,
                         f"{where}: a {names} response with no usable answer; it was not imported.",
                         "Check that the questions are answered with LOINC answer codes (LL358-3) or scores, and that "
                         "each question carries its LOINC code (item.code or linkId).", "error", "no_answers"))
            acc.problems.extend(item_problems)
            for item, ipath in unrecognised[:20]:
                add(_unrecognised_problem(row, item, ipath, where))
        else:  # counted per questionnaire: a service's export may hold many other forms
            q = res.get("questionnaire")
            key = (file, q if isinstance(q, str) else "(not given)")
            if key not in acc.unknown:
                acc.unknown[key] = [0, row, f"{path}questionnaire", where]
            acc.unknown[key][0] += 1
        return

    # --- who and when ------------------------------------------------------------------------
    stype, sid = _reference(res.get("subject"))
    if sid is None or (stype is not None and stype != "Patient"):
        shown = (res.get("subject") or {}).get("reference") if isinstance(res.get("subject"), dict) else res.get("subject")
        add(_problem(row, f"{path}subject", shown if shown is not None else pd.NA,
                     f"{where}: the subject is {'missing' if sid is None else f'a {stype}, not a Patient'}, so the client is unknown; "
                     "the response was not imported.",
                     "Export the responses with subject = the Patient reference (Patient/<pseudonymous id>).", "error",
                     "bad_reference"))
        return
    authored = res.get("authored")
    m = _DATE_RE.match(authored.strip()) if isinstance(authored, str) else None
    date = m.group(1) if m else None
    if date is not None and date not in acc.date_index:
        try:
            datetime.date.fromisoformat(date)
        except ValueError:
            date = None
    if date is None:
        add(_problem(row, f"{path}authored", authored if authored is not None else pd.NA,
                     f"{where}: {'no authored date' if authored is None else 'the authored date is not a full date'}, so the "
                     "session date is unknown; the response was not imported.",
                     "Export the responses with authored as a full date (YYYY-MM-DD or a dateTime).", "error", "missing_date"))
        return
    atype, aid = _reference(res.get("author"))
    clinician = aid if (aid is not None and atype in _CLINICIAN_TYPES) else None

    # --- report partial responses --------------------------------------------------------------
    acc.problems.extend(item_problems)
    if declared and not (declared & set(present)):
        add(_problem(row, f"{path}questionnaire", res.get("questionnaire"),
                     f"{where}: the questionnaire says {' and '.join(_NAMES[i] for i in sorted(declared))} but the answers are "
                     f"{' and '.join(_NAMES[i] for i in present)} items; they were imported as such.",
                     "Check the export's questionnaire reference.", "warning", "questionnaire_mismatch"))
    if declared:  # a PHQ-9/GAD-7 form: its unrecognised answered questions are worth a look
        for item, ipath in unrecognised[:20]:
            add(_unrecognised_problem(row, item, ipath, where))
    if status in _PARTIAL or (status is not None and status not in _IMPORTED):
        add(_problem(row, f"{path}status", status,
                     f"{where}: the response's status is {status!r}, not completed; its answers were imported "
                     "(a total is computed only if every item is answered).",
                     "Check whether the questionnaire was finished.", "warning", "not_completed"))

    c = acc.client(sid)
    d = acc.date(date)
    k = acc.intern(acc.clinician_index, clinician) if clinician is not None else -1
    r = row if row is not None else -1
    used = False
    for inst in present:
        v = vals[inst]
        i = _INSTRUMENTS.index(inst)
        key = (((c << 32) | d) << 2) | i
        first = acc.seen.get(key)
        if first is not None:
            add(_problem(row, f"{path}authored", date,
                         f"{where}: a second {_NAMES[inst]} for client {sid} on {date} (the first: "
                         f"{'row ' + str(first) if first >= 0 else 'another file'}); only the first was imported.",
                         "Remove the duplicate response, or correct its date.", "error", "duplicate_response"))
            continue
        acc.seen[key] = r
        n = _N_ITEMS[inst]
        items = v[:n]
        missing = sum(math.isnan(x) for x in items)
        total = v[_TOTAL]
        if missing and math.isnan(total):
            add(_problem(row, f"{path}item", f"{n - missing} of {n}",
                         f"{where}: {missing} of the {n} {_NAMES[inst]} items are unanswered and no total is given; the "
                         "answered items were imported, but the total is not computed (setting max_missing).",
                         "Nothing to do if the client skipped questions; otherwise export the complete response.",
                         "warning", "incomplete_items"))
        elif not missing and not math.isnan(total) and abs(sum(items) - total) > 1e-9:
            add(_problem(row, f"{path}item", f"{total:g}",
                         f"{where}: the given {_NAMES[inst]} total {total:g} differs from the sum of its items "
                         f"{sum(items):g}; the given total was kept.",
                         "Check the source system's scoring.", "warning", "total_mismatch"))
        acc.r_client.append(c)
        acc.r_date.append(d)
        acc.r_inst.append(i)
        acc.r_row.append(r)
        acc.r_vals.extend(v)
        used = True
    if used:
        acc.n_used += 1
        acc.add_session(c, d, r, k)


def _unrecognised_problem(row, item: dict, ipath: str, where: str) -> dict:
    return _problem(row, f"{ipath}.linkId", item.get("linkId"),
                    f"{where}: question {item.get('linkId')!r} has no PHQ-9/GAD-7 LOINC code (in item.code or as linkId); "
                    "it was not imported (items are matched by code, never by position).",
                    "Export the responses with the LOINC question codes (item.code), or map the export with a "
                    "mapping file.", "warning", "unknown_item")


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------

def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")


# Limits of what one input may make the reader hold; beyond them a resource (or file) is refused
# with a report row, and the rest is read.
MAX_LINE_BYTES = 16 * 2**20        # one NDJSON line (one resource)
MAX_JSON_BYTES = 256 * 2**20       # one whole JSON file or Bundle, unpacked
MAX_DEPTH = 64                     # nesting of objects and arrays in one resource
_READ_ERRORS = (OSError, EOFError, zlib.error)  # unreadable, or a corrupt or truncated .gz


def _lines(fh):
    """(line number, bytes) of a binary file; bytes is None for a line longer than MAX_LINE_BYTES
    (whose rest is skipped without being held in memory)."""
    lineno = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(MAX_LINE_BYTES)
            yield lineno, None
            continue
        yield lineno, raw


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v if isinstance(x, (dict, list)))
    return False


def _deep_problem(row, where: str) -> dict:
    return _problem(row, "$", where, f"{where} nests objects or arrays more than {MAX_DEPTH} levels deep (a FHIR "
                    "QuestionnaireResponse needs a few); it was skipped.",
                    "Check the export: this is not a resource the exporting system writes.", "error", "too_deep")


def _base_suffix(path: Path) -> str:
    name = path.name.lower()
    return Path(name[:-3]).suffix if name.endswith(".gz") else path.suffix.lower()


def _looks_ndjson(path: Path) -> bool:
    if _base_suffix(path) in (".ndjson", ".jsonl"):
        return True
    with _open(path) as fh:
        first = None
        for _, raw in _lines(fh):
            if raw is None:
                return True  # a line too long for one JSON document: read line by line (and reported)
            if raw.strip():
                if first is None:
                    first = raw
                    try:
                        if not isinstance(json.loads(first.removeprefix(b"\xef\xbb\xbf")), dict):
                            return False
                    except (ValueError, RecursionError):
                        return False
                else:
                    return True
    return False


def _read_ndjson(acc: _Accumulator, path: Path) -> None:
    with _open(path) as fh:
        for lineno, raw in _lines(fh):
            where = f"line {lineno} of {path.name}"
            if raw is None:
                acc.n_resources += 1
                acc.problems.append(_problem(lineno, "$", where, f"{where} is longer than {MAX_LINE_BYTES // 2**20} MiB "
                                             "(one resource); it was skipped.",
                                             "Check the export: a QuestionnaireResponse is a few KB.", "error",
                                             "line_too_long"))
                continue
            if lineno == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            try:
                res = json.loads(raw.strip())
                if _too_deep(res):
                    raise RecursionError
            except RecursionError:
                acc.n_resources += 1
                acc.problems.append(_deep_problem(lineno, where))
                continue
            except UnicodeDecodeError:
                acc.n_resources += 1
                acc.problems.append(_problem(lineno, "$", raw[:200].decode("utf-8", "replace"),
                                             f"{where} is not UTF-8 text; it was skipped.",
                                             "Export the NDJSON as UTF-8.", "error", "malformed_json"))
                continue
            except ValueError as exc:
                acc.n_resources += 1
                acc.problems.append(_problem(lineno, "$", raw[:200].decode("utf-8", "replace").strip(),
                                             f"{where} is not valid JSON ({exc.msg} at column {getattr(exc, 'colno', '?')}); it was skipped.",
                                             "Each line of an NDJSON file must be one complete JSON resource; check for a "
                                             "truncated or wrapped line.", "error", "malformed_json"))
                continue
            _resource(acc, res, lineno, "", where, path.name)
            del res


def _read_json(acc: _Accumulator, path: Path) -> None:
    try:
        with _open(path) as fh:
            text = fh.read(MAX_JSON_BYTES + 1)
        if len(text) > MAX_JSON_BYTES:
            acc.problems.append(_problem(pd.NA, "$", path.name, f"{path.name} is larger than {MAX_JSON_BYTES // 2**20} "
                                         "MiB (unpacked); it was not read.",
                                         "Export large volumes as NDJSON (one resource per line), which is read line by "
                                         "line, or split the Bundle.", "error", "file_too_large"))
            return
        data = json.loads(text)
        del text
        if _too_deep(data, MAX_DEPTH + 2):  # a Bundle adds two levels (entry, resource)
            raise RecursionError
    except RecursionError:
        acc.problems.append(_deep_problem(pd.NA, path.name))
        return
    except UnicodeDecodeError:
        acc.problems.append(_problem(pd.NA, "$", path.name, f"{path.name} is not UTF-8 text; it was not read.",
                                     "Export the JSON as UTF-8.", "error", "malformed_json"))
        return
    except ValueError as exc:
        acc.problems.append(_problem(getattr(exc, "lineno", pd.NA), "$", path.name,
                                     f"{path.name} is not valid JSON ({exc.msg}, line {getattr(exc, 'lineno', '?')} column "
                                     f"{getattr(exc, 'colno', '?')}); it was not read.",
                                     "Export the file again; it must be one JSON resource or Bundle (or NDJSON: one "
                                     "resource per line, named .ndjson).", "error", "malformed_json"))
        return
    _resource(acc, data, None, "", path.name, path.name)


def _sources(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir()
                      if p.is_file() and _base_suffix(p) in _SUFFIXES and not p.name.startswith("."))
    return [path]


def _strings(codes: np.ndarray, categories: list[str]) -> pd.Series:
    """Text column from interned codes (-1 = missing), built in Arrow: no Python string per row."""
    codes = np.asarray(codes, dtype=np.int64)
    arr = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pa.array(categories, type=pa.string()))
    return pd.Series(pd.array(arr.dictionary_decode(), dtype=pd.StringDtype("pyarrow", na_value=np.nan)))


def _rows(values: np.ndarray) -> pd.arrays.IntegerArray:
    values = np.asarray(values, dtype=np.int64)
    return pd.arrays.IntegerArray(np.where(values < 0, 0, values), values < 0)


def _frames(acc: _Accumulator) -> dict[str, RawTable]:
    """The contract tables from the compact rows."""
    def arr(a: array) -> np.ndarray:
        return np.frombuffer(a, dtype=np.int64) if len(a) else np.empty(0, np.int64)

    default_k = acc.intern(acc.clinician_index, acc.default_clinician) if acc.default_clinician is not None else -1
    clinicians = list(acc.clinician_index)
    clients_ = list(acc.client_index)
    # clients: those with at least one imported response
    c_start = arr(acc.c_start)
    used = np.flatnonzero(c_start >= 0)
    c_clin = arr(acc.c_clin)[used]
    c_clin = np.where(c_clin >= 0, c_clin, default_k)
    c_row = arr(acc.c_row)[used]
    for cid, k, row in zip(used.tolist(), c_clin.tolist(), c_row.tolist()):
        if k < 0:
            acc.problems.append(_problem(row if row >= 0 else pd.NA, "author", clients_[cid],
                                         f"No response of client {clients_[cid]} names a Practitioner (or PractitionerRole) "
                                         "as its author, so the client's clinician is unknown.",
                                         "Export the responses with author = the clinician, or give a default clinician "
                                         "(import_fhir(..., default_clinician='T01')).", "warning", "no_clinician"))
    clients = pd.DataFrame({
        "client_id": _strings(used, clients_),
        "clinician_id": _strings(c_clin, clinicians),
        "start_date": _strings(c_start[used], acc.dates),
        SOURCE_ROW: _rows(c_row),
    })
    # sessions: one per client and date; the clinician of that day's response, else the client's
    s_client = arr(acc.s_client)
    client_clin = np.full(len(clients_), -1, dtype=np.int64)
    client_clin[used] = c_clin
    s_clin = arr(acc.s_clin)
    s_clin = np.where(s_clin >= 0, s_clin, client_clin[s_client] if len(s_client) else s_clin)
    sessions = pd.DataFrame({
        "client_id": _strings(s_client, clients_),
        "clinician_id": _strings(s_clin, clinicians),
        "session_date": _strings(arr(acc.s_date), acc.dates),
        "attendance": _strings(np.zeros(len(s_client), dtype=np.int64), ["attended"]),
        SOURCE_ROW: _rows(arr(acc.s_row)),
    })
    # scores (long): one row per answered item or given total
    n = len(acc.r_client)
    vals = np.frombuffer(acc.r_vals, dtype=np.float64).reshape(n, _WIDTH) if n else np.empty((0, _WIDTH))
    rec, col = np.nonzero(~np.isnan(vals))
    labels = [str(i) for i in range(1, _WIDTH + 1)]
    labels[_TOTAL] = "total"
    scores = pd.DataFrame({
        "client_id": _strings(arr(acc.r_client)[rec], clients_),
        "session_date": _strings(arr(acc.r_date)[rec], acc.dates),
        "instrument": _strings(np.frombuffer(acc.r_inst, dtype=np.int8)[rec].astype(np.int64) if n else rec,
                               list(_INSTRUMENTS)),
        "item": _strings(col, labels),
        "value": vals[rec, col],
        SOURCE_ROW: _rows(arr(acc.r_row)[rec]),
    })
    label = "FHIR import"
    out = {"clients": RawTable("clients", clients, f"clients ({label})"),
           "sessions": RawTable("sessions", sessions, f"sessions ({label})")}
    if len(scores):
        out["scores"] = RawTable("scores", scores, f"scores ({label})")
    return out


def read_fhir(path: str | Path, *, default_clinician: str | None = None) -> tuple[dict[str, RawTable], list[dict]]:
    """Read FHIR R4 QuestionnaireResponses (PHQ-9, GAD-7) into the contract's raw tables.

    Parameters
    ----------
    path : str or Path
        A JSON resource, a Bundle, an NDJSON bulk-export file (optionally ``.gz``), or a folder of
        them. NDJSON is streamed line by line (memory grows with the number of usable responses,
        not the file size).
    default_clinician : str, optional
        ``clinician_id`` for clients none of whose responses has a Practitioner author (e.g.
        self-reported questionnaires).

    Returns
    -------
    tables : dict of RawTable
        ``clients`` (``client_id, clinician_id, start_date``), ``sessions`` (``client_id,
        clinician_id, session_date, attendance`` = ``attended``) and, when any score was read,
        ``scores`` (``client_id, session_date, instrument`` = ``phq9``/``gad7``, ``item`` = ``1``..``9``
        or ``total``, ``value``), each with ``source_row`` (NDJSON line, or Bundle entry index).
        Empty dict when ``path`` cannot be read at all.
    problems : list of dict
        Report rows (``table`` = ``fhir``, ``row, column`` = JSON path, ``value, problem, fix,
        severity, check``) for every resource that could not be used, or only partly. Pass both to
        :func:`supervision.io.load_tables`, which validates the tables.

    Never raises for bad input; see the module docstring for every rule and its source.
    """
    tables, problems, _ = _read(path, default_clinician)
    return tables, problems


def _read(path, default_clinician) -> tuple[dict[str, RawTable], list[dict], dict[str, int]]:
    path = Path(path)
    acc = _Accumulator(default_clinician)
    if not path.exists():
        return {}, [{"table": pd.NA, "row": pd.NA, "column": pd.NA, "value": str(path),
                     "problem": f"'{path}' does not exist.",
                     "fix": "Give a FHIR JSON or NDJSON file, or a folder of them.", "severity": "error",
                     "check": "unreadable_file"}], {}
    files = _sources(path)
    if not files:
        return {}, [{"table": pd.NA, "row": pd.NA, "column": pd.NA, "value": str(path),
                     "problem": f"The folder '{path}' has no .json, .ndjson or .jsonl file.",
                     "fix": "Give a FHIR JSON or NDJSON file, or a folder of them.", "severity": "error",
                     "check": "unreadable_file"}], {}
    for f in files:
        try:
            if _looks_ndjson(f):
                _read_ndjson(acc, f)
            else:
                _read_json(acc, f)
        except _READ_ERRORS as exc:  # unreadable, or a corrupt or truncated .gz: what was read before is kept
            acc.problems.append(_problem(pd.NA, "$", f.name, f"{f.name} cannot be read to its end ({exc}); the "
                                         "resources before that point were imported.",
                                         "Check the file (a .gz file may have been cut short when copied) and import "
                                         "it again.", "error", "unreadable_file"))
    for (file, rtype), (count, row, p, first) in acc.ignored.items():
        acc.problems.append(_problem(row, f"{p}resourceType" if p != "$" else "resourceType", rtype,
                                     f"{file}: {count:,} {rtype} resource{'s' if count != 1 else ''} (the first: "
                                     f"{first}) "
                                     f"{'are' if count != 1 else 'is'} not QuestionnaireResponse and {'were' if count != 1 else 'was'} ignored.",
                                     "Nothing to do; only QuestionnaireResponse resources are read.", "warning",
                                     "not_a_questionnaire_response"))
    for (file, q), (count, row, p, first) in acc.unknown.items():
        acc.problems.append(_problem(row, p, q,
                                     f"{file}: {count:,} response{'s' if count != 1 else ''} to an unknown questionnaire "
                                     f"({q}; the first: {first}): neither the questionnaire nor any item carries a PHQ-9 "
                                     "(44249-1) or GAD-7 (69737-5) LOINC code; not imported.",
                                     "Only PHQ-9 and GAD-7 responses are read. If these are one of them, export them with "
                                     "LOINC codes on the questions (item.code, or the LOINC code as linkId).", "error",
                                     "unknown_questionnaire"))
    if acc.n_responses == 0 and not any(p["severity"] == "error" for p in acc.problems):
        acc.problems.append(_problem(pd.NA, pd.NA, str(path), f"No QuestionnaireResponse was found in {path.name}.",
                                     "Export QuestionnaireResponse resources (PHQ-9, GAD-7) as JSON, a Bundle or NDJSON.",
                                     "error", "no_responses"))
    tables = _frames(acc)
    for p in acc.problems:
        if p["row"] is None:
            p["row"] = pd.NA
    counts = {"resources": acc.n_resources, "responses": acc.n_responses, "imported": acc.n_used}
    return tables, acc.problems, counts


# --------------------------------------------------------------------------------------------
# import to a folder, and the command line
# --------------------------------------------------------------------------------------------

def write_import(raw: dict[str, RawTable], caseload, out_dir: str | Path) -> list[Path]:
    """Write the raw contract tables (without ``source_row``) and ``import_report.csv``.

    The folder is then an export the workbook reads like any other (``supervision validate``).
    Cells are written with :func:`supervision.io.export.write_safe_csv`.
    """
    from supervision.io.export import write_safe_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("clients", "sessions", "clinicians", "scores"):
        if name not in raw:
            continue
        frame = raw[name].frame.drop(columns=[SOURCE_ROW], errors="ignore")
        for c in frame.columns:
            if pd.api.types.is_float_dtype(frame[c]):
                v = frame[c]
                whole = v.notna() & (v == v.round())
                frame[c] = v.astype(object).where(~whole, v.where(whole).astype("Int64").astype(object))
        paths.append(write_safe_csv(frame, out / f"{name}.csv"))
    paths.append(write_safe_csv(caseload.report, out / "import_report.csv"))
    return paths


def import_fhir(path: str | Path, out_dir: str | Path, settings=None, *, default_clinician: str | None = None):
    """Read FHIR responses (:func:`read_fhir`), validate them, write the contract CSVs.

    Writes ``clients.csv``, ``sessions.csv``, ``scores.csv`` and ``import_report.csv`` (every
    problem: the FHIR reader's rows, ``table = fhir``, and the validator's) to ``out_dir``.

    Returns
    -------
    Caseload
        From :func:`supervision.io.load_tables` (``source`` = ``path``, ``format`` = ``fhir``).
    """
    return import_fhir_counted(path, out_dir, settings, default_clinician=default_clinician)[0]


def import_fhir_counted(path: str | Path, out_dir: str | Path, settings=None, *, default_clinician: str | None = None):
    """:func:`import_fhir`, also returning the reader's counts.

    Returns
    -------
    (Caseload, dict)
        The caseload and ``{"resources", "responses", "imported"}``: resources read,
        QuestionnaireResponses found and those used (``supervision import fhir`` prints them).
    """
    from supervision.io import load_tables

    raw, problems, counts = _read(path, default_clinician)
    cl = load_tables(raw, settings, source=str(path), fmt="fhir", reader_problems=problems)
    write_import(raw, cl, out_dir)
    return cl, counts
