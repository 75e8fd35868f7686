"""Regenerate ``tests/corpus/broken/`` from ``tests/corpus/base/``.

Run ``python tests/corpus/make_corpus.py`` after changing the base export. Every case is the base
with ONE defect, plus an ``expected.json``:

``description``
    what is wrong, in words.
``usable``
    ``false`` when the export must be refused (nothing loaded).
``report``
    report rows that must be present. Each is matched as a subset of the report on the keys it
    gives (``table``, ``row``, ``column``, ``check``, ``severity``); a list value means "any of".
    ``row`` is the line number the user sees (header = line 1).
``absent``
    report rows that must NOT be present (same matching), e.g. a misleading follow-on warning.
``counts``
    ``{table: {"read", "loaded", "quarantined"}}`` expected in ``Caseload.counts``.
``clean``
    ``true`` when the report must be empty (the defect is a format variant the loader accepts).
``cleared``
    ``[{"table", "row", "column"}]``: cells whose invalid value must not be used: empty (NA) in
    the loaded table, or, with ``"or_sum_of": [items]``, re-scored as the sum of those items.
``values``
    ``[{"table", "row", "column", "value"}]``: cells that must hold ``value`` in the loaded table.
``same_as_base``
    ``[table]``: the loaded table must equal the base's loaded table (dates, ids, values).
``interpretation``
    present when the expectation goes beyond the letter of data/README.md (say why).

Row numbers in the base (``sessions.csv``): line 2 is the first session (C001 2025-01-13) ... see
``base/sessions.csv``; this script asserts the line it edits is the line it means.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
BROKEN = HERE / "broken"
TABLES = ("clients", "sessions", "clinicians", "scores")

BASE_ROWS = {"clients": 6, "sessions": 28, "clinicians": 2, "scores": 18}


def read_lines(table: str) -> list[str]:
    return (BASE / f"{table}.csv").read_text(encoding="utf-8").splitlines()


def counts(**changes) -> dict:
    """Base counts (everything loaded), with per-table overrides ``table=(read, loaded, q)``."""
    out = {t: {"read": n, "loaded": n, "quarantined": 0} for t, n in BASE_ROWS.items()}
    for table, (read, loaded, quarantined) in changes.items():
        out[table] = {"read": read, "loaded": loaded, "quarantined": quarantined}
    return out


class Case:
    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description
        self.files = {t: read_lines(t) for t in TABLES}  # table -> list of lines (no newline)
        self.raw: dict[str, bytes] = {}  # filename -> bytes written verbatim
        self.drop: set[str] = set()
        self.expected: dict = {"description": description, "usable": True, "report": []}

    # -- editing helpers (line numbers are the user's: header = 1) --------------------------
    def header(self, table: str) -> list[str]:
        return next(csv.reader([self.files[table][0]]))

    def fields(self, table: str, line: int) -> list[str]:
        return next(csv.reader([self.files[table][line - 1]]))

    def _fmt(self, values: list[str]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(values)
        return buf.getvalue()

    def set_cell(self, table: str, line: int, column: str, value: str, *, expect_start: str):
        assert self.files[table][line - 1].startswith(expect_start), (
            self.name,
            self.files[table][line - 1],
        )
        vals = self.fields(table, line)
        vals[self.header(table).index(column)] = value
        self.files[table][line - 1] = self._fmt(vals)

    def append(self, table: str, row: dict) -> int:
        head = self.header(table)
        unknown = set(row) - set(head)
        assert not unknown, unknown
        self.files[table].append(self._fmt([row.get(c, "") for c in head]))
        return len(self.files[table])  # the new line's number

    def insert_line(self, table: str, line: int, text: str):
        self.files[table].insert(line - 1, text)

    def drop_column(self, table: str, column: str):
        rows = list(csv.reader(self.files[table]))
        i = rows[0].index(column)
        self.files[table] = [self._fmt(r[:i] + r[i + 1 :]) for r in rows]

    # -- expectations ------------------------------------------------------------------------
    def expect(self, **row):
        self.expected["report"].append(row)

    def set(self, **kw):
        self.expected.update(kw)

    def write(self):
        folder = BROKEN / self.name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for table, lines in self.files.items():
            if table in self.drop or f"{table}.csv" in self.raw:
                continue
            (folder / f"{table}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for name, data in self.raw.items():
            (folder / name).write_bytes(data)
        self.expected.setdefault("counts", None if not self.expected["usable"] else counts())
        (folder / "expected.json").write_text(
            json.dumps(self.expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def client_row(**kw) -> dict:
    row = {
        "client_id": "C007",
        "clinician_id": "T02",
        "start_date": "2025-04-01",
        "end_date": "",
        "end_reason": "",
        "agreed_goals": "anxiety",
        "gender_identity": "woman",
        "race_ethnicity": "white_other",
        "sexual_orientation": "heterosexual",
        "personality_disorder": "no",
        "age_band": "25-34",
        "primary_language": "english",
    }
    row.update(kw)
    return row


def build() -> list[Case]:
    cases: list[Case] = []

    def case(name, description):
        c = Case(name, description)
        cases.append(c)
        return c

    # ---------------------------------------------------------------- unusable exports
    c = case("missing_sessions_file", "sessions.csv is not in the folder (a required table).")
    c.drop.add("sessions")
    c.set(usable=False)
    c.expect(table="sessions", check="missing_table", severity="error")

    c = case("missing_required_column", "sessions.csv has no `attendance` column.")
    c.drop_column("sessions", "attendance")
    c.set(usable=False)
    c.expect(table="sessions", column="attendance", check="missing_column", severity="error")

    c = case("missing_required_column_clients", "clients.csv has no `start_date` column.")
    c.drop_column("clients", "start_date")
    c.set(usable=False)
    c.expect(table="clients", column="start_date", check="missing_column", severity="error")

    c = case("empty_sessions_file", "sessions.csv is an empty (0-byte) file.")
    c.raw["sessions.csv"] = b""
    c.set(usable=False)
    c.expect(
        table="sessions",
        check=["unreadable_file", "missing_table", "missing_column"],
        severity="error",
    )

    # ---------------------------------------------------------------- dates (sessions)
    c = case("session_impossible_date", "A session dated 2025-02-30 (no such day).")
    c.set_cell("sessions", 7, "session_date", "2025-02-30", expect_start="C001,T01,2025-02-17")
    c.expect(
        table="sessions", row=7, column="session_date", value="2025-02-30", check="bad_date",
        severity="error",
    )
    c.set(counts=counts(sessions=(28, 27, 1)))

    c = case("session_unparseable_date", "A session dated 'next tuesday'.")
    c.set_cell("sessions", 12, "session_date", "next tuesday", expect_start="C002,T01,2025-02-10")
    c.expect(table="sessions", row=12, column="session_date", check="bad_date", severity="error")
    c.set(counts=counts(sessions=(28, 27, 1)))

    c = case("session_future_date", "A session dated 2099-02-24 (client still in therapy).")
    c.set_cell("sessions", 13, "session_date", "2099-02-24", expect_start="C002,T01,2025-02-24")
    c.expect(table="sessions", row=13, column="session_date", check="future_date", severity="error")
    c.set(counts=counts(sessions=(28, 27, 1)))

    c = case("session_missing_date", "A session with an empty session_date.")
    c.set_cell("sessions", 25, "session_date", "", expect_start="C005,T02,2025-03-17")
    c.expect(
        table="sessions", row=25, column="session_date", check="missing_value", severity="error"
    )
    c.set(counts=counts(sessions=(28, 27, 1)))

    c = case("session_missing_attendance", "A session with an empty attendance.")
    c.set_cell("sessions", 21, "attendance", "", expect_start="C004,T02,2025-03-10")
    c.expect(table="sessions", row=21, column="attendance", check="missing_value", severity="error")
    c.set(counts=counts(sessions=(28, 27, 1)))

    c = case(
        "session_short_line",
        "A sessions line cut short after the date (too few fields: attendance etc. missing).",
    )
    assert c.files["sessions"][25].startswith("C005,T02,2025-03-31")
    c.files["sessions"][25] = "C005,T02,2025-03-31"
    # a line with fewer fields than the header is quarantined as it stands (its values cannot be
    # matched to their columns), as a line with too many is
    c.expect(table="sessions", row=26, check="ragged_line", severity="error")
    c.set(counts=counts(sessions=(28, 27, 1)))

    c = case("ragged_line", "A sessions line with two fields too many (a stray comma export).")
    assert c.files["sessions"][8].startswith("C001,T01,2025-03-17")
    c.files["sessions"][8] += ",see notes,x"
    c.expect(table="sessions", row=9, severity="error")
    c.set(
        counts=counts(sessions=(28, 27, 1)),
        interpretation=(
            "data/README.md does not name a check for a line with too many fields. Expected: that "
            "one line is quarantined with an error report row (row 9); the other 27 sessions load. "
            "Refusing the whole file would hide 27 good rows."
        ),
    )

    c = case(
        "blank_line_before_bad_date",
        "sessions.csv has an empty line (line 5) and, below it, a session dated 2025-02-30 on "
        "line 8: the row number must count the blank line, as the user's editor does.",
    )
    c.set_cell("sessions", 7, "session_date", "2025-02-30", expect_start="C001,T01,2025-02-17")
    c.insert_line("sessions", 5, "")
    c.expect(table="sessions", row=8, column="session_date", check="bad_date", severity="error")
    c.set(counts=counts(sessions=(28, 27, 1)))

    c = case(
        "ragged_first_line",
        "The FIRST data line of sessions.csv has two fields too many (pandas then takes the "
        "first columns as an index and shifts every other line).",
    )
    c.files["sessions"][1] += ",see notes,x"
    c.expect(table="sessions", row=2, severity="error")
    c.set(
        counts=counts(sessions=(28, 27, 1)),
        interpretation="As ragged_line; found by the property test (the whole table was misread).",
    )

    c = case("clients_ragged_first_line", "The first data line of clients.csv (C001) has an extra field.")
    c.files["clients"][1] += ",x"
    c.expect(table="clients", row=2, severity="error")
    for r in range(2, 11):  # C001's nine sessions
        c.expect(table="sessions", row=r, severity="error")
    c.set(
        counts=counts(clients=(6, 5, 1), sessions=(28, 19, 9)),
        interpretation=(
            "As ragged_line, with the cascade of client_bad_start_cascade (C001's sessions are "
            "quarantined). Found by the property test: the loader raised TypeError."
        ),
    )

    # ---------------------------------------------------------------- episodes (clients)
    c = case("client_end_before_start", "A new client whose end_date is before start_date.")
    line = c.append(
        "clients", client_row(start_date="2025-03-10", end_date="2025-02-01", end_reason="planned")
    )
    c.expect(table="clients", row=line, check="date_order", severity="error")
    c.set(counts=counts(clients=(7, 6, 1)))

    c = case("client_future_start", "A new client starting 2099-01-01.")
    line = c.append("clients", client_row(start_date="2099-01-01"))
    c.expect(table="clients", row=line, column="start_date", check="future_date", severity="error")
    c.set(counts=counts(clients=(7, 6, 1)))

    c = case("client_missing_clinician", "A new client row with an empty clinician_id.")
    line = c.append("clients", client_row(clinician_id=""))
    c.expect(
        table="clients", row=line, column="clinician_id", check="missing_value", severity="error"
    )
    c.set(counts=counts(clients=(7, 6, 1)))

    c = case("duplicate_client_id", "The line of client C002 appears twice (the copy at the end).")
    c.files["clients"].append(c.files["clients"][2])
    c.expect(table="clients", row=8, column="client_id", check="duplicate_id", severity="error")
    c.set(counts=counts(clients=(7, 6, 1)))

    c = case("unknown_end_reason", "A new client with end_reason 'finished'.")
    line = c.append("clients", client_row(end_date="2025-06-30", end_reason="finished"))
    c.expect(table="clients", row=line, column="end_reason", check="unknown_code", severity="error")
    c.set(counts=counts(clients=(7, 6, 1)))

    c = case(
        "end_reason_without_end_date", "Ongoing client C005 has end_reason 'planned' but no end."
    )
    c.set_cell("clients", 6, "end_reason", "planned", expect_start="C005,T02,2025-03-03,,")
    c.expect(
        table="clients",
        row=6,
        column="end_reason",
        check="end_reason_without_end_date",
        severity="warning",
    )

    c = case("unknown_goal_code", "Client C001's agreed_goals contains a typo 'self_estem'.")
    c.set_cell("clients", 2, "agreed_goals", "mood;self_estem", expect_start="C001,T01")
    c.expect(
        table="clients", row=2, column="agreed_goals", check="unknown_code", severity="warning"
    )

    c = case("unknown_clinician", "A new client whose clinician T09 is not in clinicians.csv.")
    line = c.append("clients", client_row(clinician_id="T09"))
    c.expect(
        table="clients",
        row=line,
        column="clinician_id",
        check="unknown_clinician",
        severity="warning",
    )
    c.set(counts=counts(clients=(7, 7, 0)))

    c = case(
        "client_bad_start_cascade",
        "Client C006's start_date is 2025-02-30; C006 has 3 sessions (lines 27-29).",
    )
    c.set_cell("clients", 7, "start_date", "2025-02-30", expect_start="C006,T02,2025-01-06")
    c.expect(table="clients", row=7, column="start_date", check="bad_date", severity="error")
    for r in (27, 28, 29):
        c.expect(table="sessions", row=r, severity="error")
    c.set(
        counts=counts(clients=(6, 5, 1), sessions=(28, 25, 3)),
        interpretation=(
            "When a client is quarantined, its sessions cannot be loaded without the episode "
            "(DESIGN §3: nothing past the loader re-checks), so they are quarantined too, each "
            "with an error row (check not pinned; unknown_client is the natural one)."
        ),
    )

    c = case("clinicians_duplicate_id", "clinicians.csv lists T02 twice (the copy at the end).")
    c.files["clinicians"].append(c.files["clinicians"][2])
    c.expect(
        table="clinicians", row=4, column="clinician_id", check="duplicate_id", severity="error"
    )
    c.set(
        counts=counts(clinicians=(3, 2, 1)),
        interpretation="data/README.md: clinician_id is 'yes, unique' in clinicians.",
    )

    # ---------------------------------------------------------------- sessions: references
    c = case("duplicate_session_line", "The session C002 2025-02-10 appears twice in a row.")
    assert c.files["sessions"][11].startswith("C002,T01,2025-02-10")
    c.insert_line("sessions", 13, c.files["sessions"][11])
    c.expect(
        table="sessions", row=13, check="duplicate_session", severity="error"
    )
    c.set(counts=counts(sessions=(29, 28, 1)))

    c = case("session_unknown_client", "A session for client C999 (not in clients.csv).")
    c.set_cell("sessions", 17, "client_id", "C999", expect_start="C003,T01,2025-01-20")
    c.expect(table="sessions", row=17, column="client_id", check="unknown_client", severity="error")
    c.set(counts=counts(sessions=(28, 27, 1)))

    c = case("clinician_mismatch", "A session of C005 (clinician T02) recorded under T01.")
    c.set_cell("sessions", 24, "clinician_id", "T01", expect_start="C005,T02,2025-03-03")
    c.expect(
        table="sessions",
        row=24,
        column="clinician_id",
        check="clinician_mismatch",
        severity="warning",
    )

    c = case("session_after_episode_end", "C001 ended 2025-04-02; a session dated 2025-04-16.")
    c.set_cell("sessions", 10, "session_date", "2025-04-16", expect_start="C001,T01,2025-04-02")
    c.expect(
        table="sessions",
        row=10,
        column="session_date",
        check="session_after_end",
        severity="warning",
    )

    c = case("session_before_episode_start", "C005 started 2025-03-03; a session on 2025-02-24.")
    c.set_cell("sessions", 24, "session_date", "2025-02-24", expect_start="C005,T02,2025-03-03")
    c.expect(
        table="sessions",
        row=24,
        column="session_date",
        check="session_before_start",
        severity="warning",
    )

    # ---------------------------------------------------------------- sessions: codes, booleans
    c = case("unknown_attendance", "A session with attendance 'attnded'.")
    c.set_cell("sessions", 19, "attendance", "attnded", expect_start="C004,T02,2025-02-17")
    c.expect(
        table="sessions", row=19, column="attendance", value="attnded", check="unknown_code",
        severity="error",
    )
    c.set(
        counts=counts(sessions=(28, 27, 1)),
        absent=[{"table": "sessions", "row": 19, "check": "score_on_non_attended"}],
        interpretation=(
            "absent: a session whose attendance is unknown is not known to be non-attended; "
            "warning that its scores sit on 'a session that was attnded' is misleading noise on "
            "a row that is quarantined anyway."
        ),
    )

    c = case("unknown_focus_code", "A session with focus_primary 'moood'.")
    c.set_cell("sessions", 8, "focus_primary", "moood", expect_start="C001,T01,2025-03-03")
    c.expect(
        table="sessions", row=8, column="focus_primary", check="unknown_code", severity="warning"
    )
    c.set(cleared=[{"table": "sessions", "row": 8, "column": "focus_primary"}])

    c = case("bad_boolean", "A session with agenda_set 'maybe'.")
    c.set_cell("sessions", 11, "agenda_set", "maybe", expect_start="C002,T01,2025-02-03")
    c.expect(table="sessions", row=11, column="agenda_set", check="bad_boolean", severity="warning")
    c.set(cleared=[{"table": "sessions", "row": 11, "column": "agenda_set"}])

    c = case("unknown_column", "sessions.csv has an extra column 'therapist_notes'.")
    rows = list(csv.reader(c.files["sessions"]))
    rows[0].append("therapist_notes")
    for i, r in enumerate(rows[1:], start=1):
        r.append("talked about work" if i == 3 else "")
    c.files["sessions"] = [c._fmt(r) for r in rows]
    c.expect(
        table="sessions",
        column="therapist_notes",
        check="unknown_column",
        severity=["info", "warning"],
    )

    # ---------------------------------------------------------------- wide measures
    c = case("srs_total_out_of_range", "A session with srs_total 45 (range 0-40).")
    c.set_cell("sessions", 14, "srs_total", "45", expect_start="C002,T01,2025-03-10")
    c.expect(
        table="sessions", row=14, column="srs_total", value="45", check="out_of_range",
        severity="warning",
    )
    c.set(
        cleared=[
            {
                "table": "sessions",
                "row": 14,
                "column": "srs_total",
                "or_sum_of": ["srs_1", "srs_2", "srs_3", "srs_4"],
            }
        ],
        values=[{"table": "sessions", "row": 14, "column": "ors_total", "value": 19.8}],
    )

    c = case("srs_item_not_numeric", "A session with srs_2 'n/a'.")
    c.set_cell("sessions", 22, "srs_2", "n/a", expect_start="C004,T02,2025-04-14")
    c.expect(
        table="sessions", row=22, column="srs_2", value="n/a", check="not_numeric",
        severity="warning",
    )
    c.set(
        cleared=[{"table": "sessions", "row": 22, "column": "srs_2"}],
        values=[{"table": "sessions", "row": 22, "column": "srs_1", "value": 8.5}],
        interpretation=(
            "'n/a' is text in a number column: the brief asks for not_numeric (warning, cell "
            "cleared). A reader using pandas' default na_values would silently turn it into an "
            "empty cell with no report line."
        ),
    )

    c = case("scores_on_no_show", "The no_show session C001 2025-02-10 carries SRS/ORS scores.")
    for col, v in zip(
        ("srs_1", "srs_2", "srs_3", "srs_4", "srs_total", "ors_total"),
        ("9.0", "9.0", "9.0", "9.0", "36.0", "20.0"),
    ):
        c.set_cell("sessions", 6, col, v, expect_start="C001,T01,2025-02-10,no_show")
    c.expect(table="sessions", row=6, check="score_on_non_attended", severity="warning")
    c.set(
        cleared=[
            {"table": "sessions", "row": 6, "column": col}
            for col in ("srs_1", "srs_2", "srs_3", "srs_4", "srs_total", "ors_total")
        ]
    )

    # ---------------------------------------------------------------- long scores table
    c = case("scores_item_out_of_range", "scores.csv: PHQ-9 item 3 has value 7 (range 0-3).")
    c.set_cell("scores", 4, "value", "7", expect_start="C002,2025-02-03,phq9,3,")
    c.expect(
        table="scores", row=4, column="value", value="7", check="out_of_range", severity="error"
    )
    c.set(counts=counts(scores=(18, 17, 1)))

    c = case("scores_not_numeric", "scores.csv: a value 'two'.")
    c.set_cell("scores", 8, "value", "two", expect_start="C002,2025-02-03,phq9,7,")
    c.expect(
        table="scores", row=8, column="value", value="two", check="not_numeric", severity="error"
    )
    c.set(counts=counts(scores=(18, 17, 1)))

    c = case("scores_unknown_instrument", "scores.csv: instrument 'phq10'.")
    c.set_cell("scores", 12, "instrument", "phq10", expect_start="C002,2025-04-07,phq9,2,")
    c.expect(table="scores", row=12, column="instrument", check="unknown_code", severity="error")
    c.set(counts=counts(scores=(18, 17, 1)))

    c = case("scores_unknown_item", "scores.csv: PHQ-9 item 10 (PHQ-9 has 9 items).")
    c.set_cell("scores", 19, "item", "10", expect_start="C002,2025-04-07,phq9,9,")
    c.expect(table="scores", row=19, column="item", check="unknown_code", severity="error")
    c.set(counts=counts(scores=(18, 17, 1)))

    c = case("scores_item_not_integer", "scores.csv: PHQ-9 item '3.5' (not an item number).")
    c.set_cell("scores", 13, "item", "3.5", expect_start="C002,2025-04-07,phq9,3,")
    c.expect(table="scores", row=13, column="item", check="unknown_code", severity="error")
    c.set(
        counts=counts(scores=(18, 17, 1)),
        interpretation="Found by the property test: the loader raised TypeError on this input.",
    )

    c = case("score_without_session", "scores.csv: a PHQ-9 item for C002 on 2025-03-03 (no session).")
    line = c.append(
        "scores",
        {"client_id": "C002", "session_date": "2025-03-03", "instrument": "phq9", "item": "1",
         "value": "2"},
    )
    c.expect(table="scores", row=line, check="score_without_session", severity="error")
    c.set(counts=counts(scores=(19, 18, 1)))

    c = case("duplicate_score", "scores.csv: the line C002 2025-02-03 phq9 item 4 appears twice.")
    assert c.files["scores"][4].startswith("C002,2025-02-03,phq9,4,")
    c.files["scores"].append(c.files["scores"][4])
    c.expect(table="scores", row=20, check="duplicate_score", severity="error")
    c.set(counts=counts(scores=(19, 18, 1)))

    # ---------------------------------------------------------------- file formats
    c = case("cp1252_encoding", "clients.csv saved by Excel on Windows (cp1252), with 'français'.")
    c.raw["clients.csv"] = ("\r\n".join(c.files["clients"]) + "\r\n").encode("cp1252")
    c.expect(table="clients", check="encoding", severity="warning")
    c.set(
        values=[{"table": "clients", "row": 4, "column": "primary_language", "value": "français"}],
        same_as_base=["clients"],
    )

    c = case(
        "semicolon_bom",
        "clients.csv and sessions.csv are ';'-separated with a UTF-8 BOM (values with ';' quoted).",
    )
    for table in ("clients", "sessions"):
        rows = list(csv.reader(c.files[table]))
        buf = io.StringIO()
        csv.writer(buf, delimiter=";", lineterminator="\r\n").writerows(rows)
        c.raw[f"{table}.csv"] = buf.getvalue().encode("utf-8-sig")
    c.set(clean=True, same_as_base=["clients", "sessions"])

    c = case(
        "day_first_dates",
        "sessions.csv dates written day first (14/03/2025); scores.csv stays ISO, so a month-first "
        "reading would orphan the PHQ-9 scores of 03/02/2025 and 07/04/2025.",
    )
    rows = list(csv.reader(c.files["sessions"]))
    i = rows[0].index("session_date")
    for r in rows[1:]:
        y, m, d = r[i].split("-")
        r[i] = f"{d}/{m}/{y}"
    c.files["sessions"] = [c._fmt(r) for r in rows]
    c.set(clean=True, same_as_base=["sessions", "scores"])

    return cases


def write_parquet_cases() -> None:
    """Two Parquet folders: the valid base, and one with a truncated clients.parquet."""
    import pandas as pd

    dates = {
        "clients": ["start_date", "end_date"],
        "sessions": ["session_date"],
        "scores": ["session_date"],
        "clinicians": [],
    }
    frames = {}
    for t in TABLES:
        df = pd.read_csv(BASE / f"{t}.csv", dtype=str, keep_default_na=False, encoding="utf-8")
        df = df.replace("", None)
        for col in dates[t]:
            df[col] = pd.to_datetime(df[col], format="%Y-%m-%d")
        if t == "sessions":
            for col in [c for c in df.columns if c.startswith(("srs_", "ors_"))]:
                df[col] = pd.to_numeric(df[col])
            for col in ("agenda_set", "identity_addressed"):
                df[col] = df[col].map({"true": True, "false": False}).astype("boolean")
        if t == "scores":
            df["value"] = pd.to_numeric(df["value"])
        frames[t] = df

    for name in ("parquet_valid", "parquet_corrupt_file"):
        folder = BROKEN / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for t, df in frames.items():
            df.to_parquet(folder / f"{t}.parquet", index=False)

    (BROKEN / "parquet_valid" / "expected.json").write_text(
        json.dumps(
            {
                "description": "The base as a folder of Parquet files with native types.",
                "usable": True,
                "report": [],
                "counts": counts(),
                "clean": True,
                "same_as_base": list(TABLES),
            },
            indent=2,
        )
        + "\n"
    )
    bad = BROKEN / "parquet_corrupt_file" / "clients.parquet"
    bad.write_bytes(bad.read_bytes()[:200])
    (BROKEN / "parquet_corrupt_file" / "expected.json").write_text(
        json.dumps(
            {
                "description": "clients.parquet is truncated (a broken copy): it cannot be read.",
                "usable": False,
                "report": [
                    {"table": "clients", "check": "unreadable_file", "severity": "error"}
                ],
                "counts": None,
            },
            indent=2,
        )
        + "\n"
    )


def main() -> None:
    if BROKEN.exists():
        shutil.rmtree(BROKEN)
    BROKEN.mkdir()
    cases = build()
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), names
    for c in cases:
        c.write()
    write_parquet_cases()
    print(f"wrote {len(cases) + 2} cases to {BROKEN}")


if __name__ == "__main__":
    main()
