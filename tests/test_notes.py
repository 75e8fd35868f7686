"""Supervision notes: nothing written is ever lost.

Oracles are independent of the module's own readers wherever it matters: raw ``sqlite3`` queries
(row counts in the version tables, ``PRAGMA integrity_check``), the list of notes a writer
process reported as saved, and a plain-Python model of the edit history (hypothesis test).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import os
import queue
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

import supervision.notes as notes_mod
from supervision.notes import (
    SCHEMA_VERSION,
    NotesError,
    NotesInputError,
    NotesLockedError,
    NotesStore,
    default_notes_path,
)

SUP, CLIN = "SUP-1", "CLIN-7"


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "notes.sqlite"


@pytest.fixture
def store(db):
    with NotesStore(db) as s:
        yield s


def fill(s: NotesStore) -> dict:
    """A small but complete record: two meetings, notes of every kind, edits, deletes, actions."""
    m1 = s.start_meeting(SUP, CLIN, date="2025-03-04")
    m2 = s.start_meeting(SUP, "CLIN-9", date=date(2025, 3, 11))
    general = s.add_note("Two ruptures this month.\nBoth after session 3.", author=SUP, meeting_id=m1)
    client = s.add_note("Goals drifted to week reviews.", author=SUP, meeting_id=m1, client_id="C-0042")
    loose = s.add_note("Between meetings: called about C-0050.", author=SUP, client_id="C-0050")
    gone = s.add_note("Written in the wrong meeting.", author=SUP, meeting_id=m2)
    s.edit_note(client, "Goals drifted to week reviews; agree a goal list.", SUP)
    s.delete_note(gone, SUP)
    a_open = s.add_action(m1, "Review PHQ-9 trajectory", CLIN, due="2025-03-18", client_id="C-0042")
    a_undated = s.add_action(m1, "Read the rupture-repair paper", CLIN)
    a_done = s.add_action(m1, "Book joint session", SUP, due="2025-03-05")
    a_dropped = s.add_action(m2, "Audio-record session", "CLIN-9", due="2025-03-20")
    s.set_action_status(a_done, "done", SUP)
    s.set_action_status(a_dropped, "dropped", SUP)
    return dict(m1=m1, m2=m2, general=general, client=client, loose=loose, gone=gone,
                a_open=a_open, a_undated=a_undated, a_done=a_done, a_dropped=a_dropped)


def snapshot(s: NotesStore, ids: dict) -> dict:
    return {
        "meetings": s.meetings(include_deleted=True),
        "notes": s.notes(include_deleted=True),
        "actions": s.actions(),
        **{f"history_note_{k}": s.history("note", ids[k]) for k in ("general", "client", "gone")},
        "history_action": s.history("action", ids["a_done"]),
        "history_meeting": s.history("meeting", ids["m1"]),
    }


# ---------------------------------------------------------------------------------------------
# Reading back what was written


def test_reopen_finds_everything(db):
    with NotesStore(db) as s:
        assert s.created
        ids = fill(s)
        before = snapshot(s, ids)
        md = s.meeting_markdown(ids["m1"])
    for read_only in (False, True):
        with NotesStore(db, read_only=read_only) as again:
            assert not again.created
            after = snapshot(again, ids)
            for key in before:
                pd.testing.assert_frame_equal(before[key], after[key], obj=key)
            assert again.meeting_markdown(ids["m1"]).split("- **Exported:**")[0] == md.split("- **Exported:**")[0]
            assert again.integrity_check() == "ok"
    # Independent count: 4 notes, 6 note versions (1 edit + 1 delete), 4 actions, 6 action versions.
    with raw(db) as c:
        assert c.execute("SELECT count(*), count(DISTINCT note_id) FROM note_version").fetchone() == (6, 4)
        assert c.execute("SELECT count(*), count(DISTINCT action_id) FROM action_version").fetchone() == (6, 4)


def test_notes_listing_filters_and_scope(store):
    ids = fill(store)
    n = store.notes()
    assert list(n["note_id"]) == [ids["general"], ids["client"], ids["loose"]]  # deleted one hidden
    assert list(n["scope"]) == ["general", "client", "client"]
    assert n.loc[n["note_id"] == ids["client"], "text"].item() == "Goals drifted to week reviews; agree a goal list."
    assert n.loc[n["note_id"] == ids["client"], "version"].item() == 2
    assert pd.isna(n.loc[n["note_id"] == ids["loose"], "meeting_id"].item())
    assert list(store.notes(supervisee_id=CLIN)["note_id"]) == [ids["general"], ids["client"]]
    assert list(store.notes(client_id="C-0050")["note_id"]) == [ids["loose"]]
    assert list(store.notes(meeting_id=ids["m2"])["note_id"]) == []
    assert store.notes(meeting_id=ids["m2"], include_deleted=True)["deleted"].tolist() == [True]


def test_actions_open_first_by_due_then_done_then_dropped(store, monkeypatch):
    monkeypatch.setattr(notes_mod, "_today", lambda: date(2025, 3, 12))
    ids = fill(store)
    a = store.actions()
    assert list(a["action_id"]) == [ids["a_open"], ids["a_undated"], ids["a_done"], ids["a_dropped"]]
    assert list(a["status"]) == ["open", "open", "done", "dropped"]
    assert list(a["overdue"]) == [False, False, False, False]
    monkeypatch.setattr(notes_mod, "_today", lambda: date(2025, 3, 19))
    assert store.actions()["overdue"].tolist() == [True, False, False, False]  # done/dropped never overdue
    assert list(store.actions(status="open")["action_id"]) == [ids["a_open"], ids["a_undated"]]
    assert list(store.actions(status=["done", "dropped"], supervisee_id="CLIN-9")["action_id"]) == [ids["a_dropped"]]
    assert list(store.actions(owner=SUP)["action_id"]) == [ids["a_done"]]
    assert list(store.actions(client_id="C-0042")["action_id"]) == [ids["a_open"]]
    # Editing: new due date moves it; due=None removes it; history keeps every version.
    store.edit_action(ids["a_undated"], SUP, due="2025-03-14", owner="CLIN-8")
    assert list(store.actions(status="open")["action_id"]) == [ids["a_undated"], ids["a_open"]]
    store.edit_action(ids["a_undated"], SUP, due=None)
    h = store.history("action", ids["a_undated"])
    assert h["owner"].tolist() == [CLIN, "CLIN-8", "CLIN-8"]
    assert h["due"].isna().tolist() == [True, False, True]
    assert h["change"].tolist() == ["created", "edited", "edited"]


def test_meetings_listing_and_delete_rules(store):
    ids = fill(store)
    m = store.meetings()
    assert list(m["meeting_id"]) == [ids["m2"], ids["m1"]]  # newest first
    row = m.set_index("meeting_id").loc[ids["m1"]]
    assert (row["n_notes"], row["n_actions"], row["n_open_actions"]) == (2, 3, 2)
    assert list(store.meetings(supervisee_id=CLIN)["meeting_id"]) == [ids["m1"]]
    with pytest.raises(NotesInputError, match="still has 2 note"):
        store.delete_meeting(ids["m1"], SUP)
    store.delete_meeting(ids["m2"], SUP)  # its note is deleted, its action dropped
    assert list(store.meetings()["meeting_id"]) == [ids["m1"]]
    with pytest.raises(NotesInputError, match="restore_meeting"):
        store.add_note("late", author=SUP, meeting_id=ids["m2"])
    store.restore_meeting(ids["m2"], SUP)
    store.edit_meeting(ids["m2"], SUP, date="2025-03-12")
    h = store.history("meeting", ids["m2"])
    assert h["change"].tolist() == ["created", "deleted", "restored", "edited"]
    assert h["meeting_date"].dt.strftime("%Y-%m-%d").tolist() == ["2025-03-11"] * 3 + ["2025-03-12"]


# ---------------------------------------------------------------------------------------------
# History: nothing is overwritten


def test_every_change_is_a_new_version_and_rows_cannot_be_changed(store, db):
    nid = store.add_note("first", author=SUP, client_id="C-1")
    store.add_action(store.start_meeting(SUP, CLIN), "an action", CLIN)
    assert store.edit_note(nid, "second", "SUP-2") == 2
    assert store.edit_note(nid, "second", "SUP-2") == 2  # same text: no new version
    assert store.delete_note(nid, SUP) == 3
    assert store.delete_note(nid, SUP) == 3  # already deleted: no-op
    with pytest.raises(NotesInputError, match=r"restore_note"):
        store.edit_note(nid, "third", SUP)
    assert store.restore_note(nid, SUP) == 4
    assert store.edit_note(nid, "third", SUP) == 5
    h = store.history("note", nid)
    assert h["text"].tolist() == ["first", "second", "second", "second", "third"]
    assert h["change"].tolist() == ["created", "edited", "deleted", "restored", "edited"]
    assert h["deleted"].tolist() == [False, False, True, False, False]
    assert h["author"].tolist() == [SUP, "SUP-2", SUP, SUP, SUP]
    assert h["recorded_at"].is_monotonic_increasing
    assert store.notes()["text"].tolist() == ["third"]
    # The database itself refuses to overwrite or erase (triggers), whatever code runs against it.
    with raw(db) as c:
        for sql in ("UPDATE note_version SET text = 'x'", "DELETE FROM note_version", "DELETE FROM note",
                    "UPDATE action_version SET status = 'done'", "DELETE FROM meeting_version",
                    "DELETE FROM schema_version"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                c.execute(sql)
        assert c.execute("SELECT count(*) FROM note_version").fetchone()[0] == 5


def test_timestamps_are_utc_iso(store, db):
    nid = store.add_note("x", author=SUP, client_id="C-1")
    with raw(db) as c:
        stamps = [r[0] for r in c.execute(
            "SELECT created_at FROM note UNION ALL SELECT recorded_at FROM note_version "
            "UNION ALL SELECT applied_at FROM schema_version")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", t) for t in stamps), stamps
    frame = store.notes()
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert abs(pd.Timestamp.now(tz="UTC") - frame.loc[0, "updated_at"]) < pd.Timedelta(minutes=1)
    assert store.history("note", nid)["recorded_at"].dt.tz is not None


# ---------------------------------------------------------------------------------------------
# Output columns are API


@pytest.mark.parametrize("method", ["meetings", "notes", "actions"])
def test_output_columns_are_documented_and_stable_when_empty(store, method):
    empty = getattr(store, method)()
    fill(store)
    full = getattr(store, method)()
    assert list(empty.columns) == list(full.columns)
    assert empty.dtypes.astype(str).tolist() == full.dtypes.astype(str).tolist()
    doc = getattr(NotesStore, method).__doc__
    for col in full.columns:
        assert f"``{col}``" in doc, f"{method}: column {col} is not documented"


def test_history_columns_are_documented(store):
    ids = fill(store)
    doc = NotesStore.history.__doc__
    for kind, key in (("meeting", "m1"), ("note", "client"), ("action", "a_done")):
        for col in store.history(kind, ids[key]).columns:
            assert f"``{col}``" in doc, (kind, col)


def test_meeting_markdown(store, monkeypatch):
    monkeypatch.setattr(notes_mod, "_today", lambda: date(2025, 3, 19))
    ids = fill(store)
    md = store.meeting_markdown(ids["m1"])
    assert md.startswith("# Supervision meeting, 2025-03-04\n")
    assert f"**Supervisor:** {SUP}" in md and f"**Supervisee:** {CLIN}" in md
    general = md.split("## General notes")[1].split("## Notes per client")[0]
    assert "- Two ruptures this month.\n  Both after session 3." in general  # continuation stays in the item
    per_client = md.split("## Notes per client")[1].split("## Action items")[0]
    assert "### Client C-0042" in per_client and "agree a goal list" in per_client
    assert "Goals drifted to week reviews.\n" not in md  # the superseded version is not exported
    actions = md.split("## Action items")[1]
    lines = [ln for ln in actions.splitlines() if ln.startswith("- ")]
    assert lines[0] == ("- **open**: Review PHQ-9 trajectory — owner: CLIN-7; due: 2025-03-18 (overdue); "
                        "client: C-0042")
    assert lines[1].startswith("- **open**: Read the rupture-repair paper") and "no due date" in lines[1]
    assert lines[2].startswith("- **done**: Book joint session — owner: SUP-1")
    md2 = store.meeting_markdown(ids["m2"])
    assert "wrong meeting" not in md2  # deleted note left out
    assert "- ~~**dropped**: Audio-record session" in md2
    assert "## General notes\n\n_None._" in md2
    with pytest.raises(NotesInputError, match="no meeting with id 99"):
        store.meeting_markdown(99)


# ---------------------------------------------------------------------------------------------
# Input validation


@pytest.mark.parametrize("call, words", [
    (lambda s, m: s.add_note("", author=SUP, meeting_id=m), ["text is empty"]),
    (lambda s, m: s.add_note(" \n\t", author=SUP, meeting_id=m), ["text is empty"]),
    (lambda s, m: s.add_note(42, author=SUP, meeting_id=m), ["text must be text", "int"]),
    (lambda s, m: s.add_note("\ud800", author=SUP, meeting_id=m), ["cannot be stored"]),
    (lambda s, m: s.add_note("\x00 hidden", author=SUP, meeting_id=m), ["NUL character"]),
    (lambda s, m: s.add_note("x" * 100_001, author=SUP, meeting_id=m), ["100,000"]),
    (lambda s, m: s.add_note("x", author="", meeting_id=m), ["author", "non-empty"]),
    (lambda s, m: s.add_note("x", author=SUP), ["meeting_id, a client_id, or both"]),
    (lambda s, m: s.add_note("x", author=SUP, client_id=42), ["client_id", "text", "42"]),
    (lambda s, m: s.add_note("x", author=SUP, meeting_id=99), ["no meeting with id 99", "meetings()"]),
    (lambda s, m: s.add_note("x", author=SUP, meeting_id=True), ["meeting_id", "whole number"]),
    (lambda s, m: s.add_action(m, "x", CLIN, due="next week"), ["due must be a date", "2025-03-31", "'next week'"]),
    (lambda s, m: s.add_action(m, "x", CLIN, due="2025-02-30"), ["due must be a date", "'2025-02-30'"]),
    (lambda s, m: s.add_action(m, "x", CLIN, due="20250301"), ["due must be a date"]),
    (lambda s, m: s.add_action(m, "x", CLIN, due=3.5), ["due must be a date"]),
    (lambda s, m: s.add_action(m, "", CLIN), ["text is empty"]),
    (lambda s, m: s.set_action_status(1, "finished", SUP), ["status must be one of open, done, dropped", "'finished'"]),
    (lambda s, m: s.set_action_status(99, "done", SUP), ["no action with id 99"]),
    (lambda s, m: s.start_meeting(SUP, CLIN, date="4 March"), ["date must be a date", "'4 March'"]),
    (lambda s, m: s.start_meeting(SUP, CLIN, date=pd.NaT), ["date must be a date", "NaT"]),
    (lambda s, m: s.start_meeting(SUP, "", date="2025-03-04"), ["supervisee_id", "non-empty"]),
    (lambda s, m: s.history("session", 1), ["kind must be one of meeting, note, action", "'session'"]),
    (lambda s, m: s.history("note", 99), ["no note with id 99"]),
])
def test_invalid_input_is_refused_with_a_clear_message_and_nothing_saved(store, db, call, words):
    m = store.start_meeting(SUP, CLIN, date="2025-03-04")
    store.add_action(m, "existing", CLIN)
    with raw(db) as c:
        before = c.execute("SELECT (SELECT count(*) FROM note_version) + (SELECT count(*) FROM action_version) "
                           "+ (SELECT count(*) FROM meeting_version)").fetchone()
    with pytest.raises(NotesInputError) as err:
        call(store, m)
    for w in words:
        assert w in str(err.value)
    assert isinstance(err.value, ValueError)
    with raw(db) as c:
        assert c.execute("SELECT (SELECT count(*) FROM note_version) + (SELECT count(*) FROM action_version) "
                         "+ (SELECT count(*) FROM meeting_version)").fetchone() == before


def test_dates_accept_date_datetime_timestamp_and_iso_text(store):
    m = store.start_meeting(SUP, CLIN, date=pd.Timestamp("2025-03-04 15:00"))
    for due in (date(2025, 4, 1), "2025-04-01", " 2025-04-01 ", pd.Timestamp("2025-04-01")):
        store.add_action(m, "x", CLIN, due=due)
    assert store.actions()["due"].dt.strftime("%Y-%m-%d").unique().tolist() == ["2025-04-01"]
    store.add_action(m, "no due", CLIN, due=pd.NaT)
    assert store.actions()["due"].isna().sum() == 1
    assert store.meetings()["meeting_date"].dt.strftime("%Y-%m-%d").tolist() == ["2025-03-04"]


def test_ids_read_back_from_frames_work_everywhere(store):
    # A dashboard takes ids out of the DataFrames: numpy integers, not Python ints.
    fill(store)
    m = store.meetings()["meeting_id"].iloc[-1]
    n = store.notes(meeting_id=m)["note_id"].iloc[0]
    a = store.actions(meeting_id=m)["action_id"].iloc[0]
    assert type(m).__module__ == "numpy"
    assert store.delete_note(n, SUP) == 2 and store.restore_note(n, SUP) == 3 and store.edit_note(n, "z", SUP) == 4
    assert store.set_action_status(a, "done", SUP) == 2 and store.edit_action(a, SUP, text="t") == 3
    assert store.edit_meeting(m, SUP, date="2025-03-05") == 2
    assert len(store.history("note", n)) == 4 and "# Supervision meeting, 2025-03-05" in store.meeting_markdown(m)


def test_note_text_is_never_logged_nor_in_error_messages(store, caplog, db):
    secret = "SECRET-clinical-text-7b1"
    caplog.set_level(logging.DEBUG)
    m = store.start_meeting(SUP, CLIN)
    nid = store.add_note(secret, author=SUP, meeting_id=m)
    store.edit_note(nid, secret + " edited", SUP)
    store.add_action(m, secret, CLIN)
    store.delete_note(nid, SUP)
    messages = []
    for bad in (lambda: store.edit_note(nid, secret, SUP),
                lambda: store.add_note(secret, author="", meeting_id=m),
                lambda: store.add_note(secret, author=SUP, meeting_id=999),
                lambda: store.add_action(m, secret, CLIN, due="soon")):
        with pytest.raises(NotesError) as err:
            bad()
        messages.append(str(err.value))
    with raw(db) as c:
        c.execute("BEGIN IMMEDIATE")
        with NotesStore(db, lock_timeout=0.2) as other, pytest.raises(NotesLockedError) as err:
            other.add_note(secret, author=SUP, meeting_id=m)
        messages.append(str(err.value))
        c.execute("ROLLBACK")
    assert not any(secret in msg for msg in messages)
    assert secret not in caplog.text and not caplog.records


# ---------------------------------------------------------------------------------------------
# Files that cannot be used: clear errors, and the file is never touched


def test_not_a_notes_database_is_refused_and_left_untouched(tmp_path):
    random_file = tmp_path / "random.bin"
    random_file.write_bytes(random.Random(1).randbytes(8192))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("Meeting on Tuesday: discuss client C-1.\n" * 50)
    foreign = tmp_path / "other.sqlite"
    with raw(foreign) as c:
        c.execute("CREATE TABLE recipes (name TEXT)")
        c.execute("INSERT INTO recipes VALUES ('soup')")
    for path in (random_file, text_file, foreign):
        digest = sha(path)
        with pytest.raises(NotesError) as err:
            NotesStore(path)
        msg = str(err.value)
        assert str(path) in msg and "not a supervision notes database" in msg and "was not changed" in msg
        assert "[notes] path" in msg and err.value.path == str(path)
        assert sha(path) == digest
        assert not Path(f"{path}-wal").exists()


def test_path_problems_are_explained(tmp_path):
    with pytest.raises(NotesError, match="this is a folder, not a file") as err:
        NotesStore(tmp_path)
    assert "supervision-notes.sqlite" in err.value.fix
    with pytest.raises(NotesError, match="does not exist") as err:
        NotesStore(tmp_path / "no-such-folder" / "notes.sqlite")
    assert "Create the folder" in str(err.value)
    assert not (tmp_path / "no-such-folder").exists()
    with pytest.raises(NotesError, match="cannot be opened read-only"):
        NotesStore(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_read_only_mode_reads_and_refuses_writes_without_changing_the_file(db):
    with NotesStore(db) as s:
        ids = fill(s)
    digest = sha(db)
    with NotesStore(db, read_only=True) as ro:
        assert len(ro.notes()) == 3 and repr(ro).endswith("read-only)")
        for write in (lambda: ro.add_note("x", author=SUP, client_id="C"),
                      lambda: ro.edit_note(ids["client"], "y", SUP),
                      lambda: ro.start_meeting(SUP, CLIN)):
            with pytest.raises(NotesError, match="opened read-only") as err:
                write()
            assert str(db) in str(err.value) and "nothing was saved" in str(err.value)
    assert sha(db) == digest


# Tests run as root, where chmod does not stop writes. When setpriv is available the child runs as
# 'nobody' against root-owned files, which exercises the real "attempt to write a readonly
# database" paths of SQLite; as a normal user the files are chmod-ed instead.
_PROBE = """
import sys
from supervision.notes import NotesStore, NotesError
for read_only in (False, True):
    try:
        with NotesStore(sys.argv[1], read_only=read_only) as s:
            print("read", read_only, s.integrity_check())  # reads every page; no pandas import
            s.add_note("x", author="A", client_id="C")
            print("WROTE")
    except NotesError as e:
        print("ERROR", read_only, e)
"""


def _as_other_user(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", _PROBE, *args]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"),
                    reason="root without setpriv: chmod has no effect")
def test_permission_denied_gives_a_plain_error():
    base = Path(tempfile.mkdtemp(prefix="notes-perm-"))
    try:
        base.chmod(0o755)
        locked_dir, open_dir = base / "locked", base / "open"
        locked_dir.mkdir()
        open_dir.mkdir()
        for d in (locked_dir, open_dir):
            with NotesStore(d / "n.sqlite") as s:
                s.add_note("kept", author="A", client_id="C")
            (d / "n.sqlite").chmod(0o444)
        locked_dir.chmod(0o555)
        open_dir.chmod(0o777)
        # File read-only, folder writable: readable, writes refused in plain words.
        r = _as_other_user([str(open_dir / "n.sqlite")])
        assert "read False ok" in r.stdout and "WROTE" not in r.stdout, r.stdout + r.stderr
        assert "it cannot be written: the file, or the folder it is in, is read-only" in r.stdout
        assert "it was opened read-only (read_only=True)" in r.stdout
        # Folder read-only too: SQLite cannot even create its '-shm' file to read.
        r = _as_other_user([str(locked_dir / "n.sqlite")])
        assert "WROTE" not in r.stdout and "Traceback" not in r.stderr, r.stdout + r.stderr
        assert r.stdout.count("its folder is read-only for this user") == 2
        # A new file in a folder that cannot be written.
        r = _as_other_user([str(locked_dir / "new.sqlite")])
        assert "ERROR False" in r.stdout and "Check that the folder exists" in r.stdout, r.stdout + r.stderr
        for d in (locked_dir, open_dir):  # what was saved is still there
            d.chmod(0o755)
            with NotesStore(d / "n.sqlite", read_only=True) as s:
                assert s.notes()["text"].tolist() == ["kept"]
    finally:
        for d in base.rglob("*"):
            d.chmod(0o755) if d.is_dir() else None
        shutil.rmtree(base, ignore_errors=True)


def test_schema_version_table_and_migrations(db, monkeypatch):
    with NotesStore(db):
        pass
    with raw(db) as c:
        assert c.execute("SELECT version FROM schema_version").fetchall() == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert c.execute("PRAGMA application_id").fetchone()[0] == notes_mod.APPLICATION_ID
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # A later release adds a migration: applied once, in order, recorded.
    n = SCHEMA_VERSION
    extra = (n + 1, "test: index on note authors", ["CREATE INDEX note_by_author ON note(created_by)"])
    monkeypatch.setattr(notes_mod, "_MIGRATIONS", [*notes_mod._MIGRATIONS, extra])
    monkeypatch.setattr(notes_mod, "SCHEMA_VERSION", n + 1)
    for _ in range(2):
        with NotesStore(db) as s:
            assert not s.created
    with raw(db) as c:
        assert [r[0] for r in c.execute("SELECT version FROM schema_version ORDER BY version")] == list(range(1, n + 2))
        assert c.execute("PRAGMA user_version").fetchone()[0] == n + 1
    # A file from the future is refused, unchanged.
    monkeypatch.setattr(notes_mod, "_MIGRATIONS", notes_mod._MIGRATIONS[:n])
    monkeypatch.setattr(notes_mod, "SCHEMA_VERSION", n)
    digest = sha(db)
    for read_only in (False, True):
        with pytest.raises(NotesError, match="newer version of the supervision workbook") as err:
            NotesStore(db, read_only=read_only)
        assert "Update the supervision-workbook package" in str(err.value)
    assert sha(db) == digest
    assert SCHEMA_VERSION == 3


def test_settings_choose_the_path_and_timeout(tmp_path):
    target = tmp_path / "mine.sqlite"
    with NotesStore(settings={"notes": {"path": str(target), "lock_timeout_seconds": 3}}) as s:
        assert s.path == target and s.lock_timeout == 3.0
    assert target.exists()
    default = default_notes_path()
    assert default.parts[-3:] == ("data", "notes", "supervision-notes.sqlite")
    assert default.parents[2] == Path(notes_mod.__file__).resolve().parents[1]
    with pytest.raises(NotesInputError, match="lock_timeout"):
        NotesStore(target, lock_timeout=0)


def test_backup_is_a_complete_copy(store, tmp_path):
    ids = fill(store)
    copy = store.backup(tmp_path / "backup.sqlite")
    with NotesStore(copy, read_only=True) as b:
        pd.testing.assert_frame_equal(b.notes(include_deleted=True), store.notes(include_deleted=True))
        assert len(b.history("note", ids["client"])) == 2
    with pytest.raises(NotesInputError, match="already exists"):
        store.backup(copy)


# ---------------------------------------------------------------------------------------------
# Transactions: interrupted writes, locks, concurrent writers, killed writers


def test_a_write_interrupted_in_process_leaves_nothing_half_written(store, db, monkeypatch):
    m = store.start_meeting(SUP, CLIN)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed stop between the two INSERTs

    with monkeypatch.context() as patch:
        patch.setattr(notes_mod.NotesStore, "_append", staticmethod(boom))
        with pytest.raises(KeyboardInterrupt):
            store.add_note("half", author=SUP, meeting_id=m)
    with raw(db) as c:
        assert c.execute("SELECT count(*) FROM note").fetchone()[0] == 0  # identity row rolled back too
    nid = store.add_note("whole", author=SUP, meeting_id=m)
    assert store.notes()["note_id"].tolist() == [nid]


def test_locked_database_waits_a_bounded_time_then_says_so(db):
    with NotesStore(db, lock_timeout=0.5) as s:
        m = s.start_meeting(SUP, CLIN)
        with raw(db) as holder:
            holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
            t0 = time.monotonic()
            with pytest.raises(NotesLockedError) as err:
                s.add_note("waiting", author=SUP, meeting_id=m)
            waited = time.monotonic() - t0
            assert 0.45 <= waited < 2.0, waited
            msg = str(err.value)
            assert str(db) in msg and "locked by another program" in msg and "Nothing was saved" in msg
            assert "lock_timeout_seconds" in msg
            assert len(s.notes()) == 0  # reading still works while someone else writes (WAL)
            with NotesStore(db, lock_timeout=0.3) as other:  # opening does not need the write lock
                assert len(other.meetings()) == 1
            holder.execute("ROLLBACK")
        nid = s.add_note("after", author=SUP, meeting_id=m)
        assert s.notes()["note_id"].tolist() == [nid]


def test_busy_database_is_retried_with_backoff_until_free(db, monkeypatch):
    busy_seen = []
    real = notes_mod._is_busy
    monkeypatch.setattr(notes_mod, "_is_busy", lambda exc: busy_seen.append(1) or real(exc))
    monkeypatch.setattr(notes_mod, "_BUSY_SLICE", 0.02)  # SQLite waits 20 ms, then our backoff loop
    with NotesStore(db, lock_timeout=5) as s:
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, lambda: holder.execute("ROLLBACK"))
        release.start()
        t0 = time.monotonic()
        nid = s.add_note("waited for the lock", author=SUP, client_id="C-1")
        assert 0.25 < time.monotonic() - t0 < 3
        release.join()
        holder.close()
        assert s.notes()["note_id"].tolist() == [nid]
    assert len(busy_seen) >= 2  # several attempts, not one long wait


def _threaded_writer(s: NotesStore, tag: str, n: int) -> None:
    for i in range(n):
        s.add_note(f"{tag}-{i}", author=tag, client_id="C-1")


def test_one_store_shared_by_threads(store):
    threads = [threading.Thread(target=_threaded_writer, args=(store, f"t{k}", 25)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = store.notes()["text"]
    assert len(texts) == 100 and texts.is_unique


def _process_writer(path: str, tag: str, n: int, barrier) -> None:
    barrier.wait(timeout=30)  # both processes open the brand-new file at the same moment
    with NotesStore(path, lock_timeout=30) as s:
        m = s.start_meeting(SUP, tag)
        for i in range(n):
            s.add_note(f"{tag}-{i}", author=tag, meeting_id=m, client_id=f"C-{i % 7}")
            if i % 25 == 0:
                s.notes(supervisee_id=tag)  # readers interleaved with the other writer


def test_two_processes_writing_at_once_lose_nothing(db):
    n = 150
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_process_writer, args=(str(db), tag, n, barrier)) for tag in ("w1", "w2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]  # no 'database is locked' (or anything) escaped
    with raw(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        texts = [r[0] for r in c.execute("SELECT text FROM note_version")]
        assert c.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION  # set up once
    expected = {f"{tag}-{i}" for tag in ("w1", "w2") for i in range(n)}
    assert len(texts) == 2 * n and set(texts) == expected  # every note exactly once
    with NotesStore(db) as s:
        assert len(s.meetings()) == 2 and len(s.notes()) == 2 * n


def _reader_thread(proc: subprocess.Popen) -> queue.Queue:
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            q.put(line.strip())
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


_STALL_BEFORE_COMMIT = """
import sys, time
import supervision.notes as notes
s = notes.NotesStore(sys.argv[1])
saved = [s.add_note(f"committed-{i}", author="A", client_id="C") for i in range(3)]
print("saved", *saved, flush=True)
s._conn.execute("PRAGMA cache_size = 1")  # make SQLite spill the uncommitted pages into the WAL file
def stall(conn):
    print("in-transaction", flush=True)
    time.sleep(60)
notes._commit = stall
s.add_note("UNCOMMITTED " + "x" * 90000, author="A", client_id="C")
"""


def test_writer_killed_before_commit(db):
    proc = subprocess.Popen([sys.executable, "-c", _STALL_BEFORE_COMMIT, str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = _reader_thread(proc)
        saved_line = lines.get(timeout=30)
        assert saved_line and saved_line.startswith("saved"), proc.stderr.read() if proc.poll() else saved_line
        saved = [int(x) for x in saved_line.split()[1:]]
        assert lines.get(timeout=30) == "in-transaction"
        wal = Path(f"{db}-wal")
        assert wal.stat().st_size > 90_000  # uncommitted frames really are on disk
        with NotesStore(db, lock_timeout=0.3) as other:  # the dying writer holds the lock
            assert other.notes()["note_id"].tolist() == saved  # committed notes visible, not the pending one
            with pytest.raises(NotesLockedError):
                other.add_note("blocked", author="B", client_id="C")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with raw(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with NotesStore(db) as s:
        assert s.integrity_check() == "ok"
        assert s.notes()["note_id"].tolist() == saved
        assert not s.notes()["text"].str.startswith("UNCOMMITTED").any()
        s.add_note("after the crash", author="B", client_id="C")  # writable again
        assert len(s.notes()) == 4


_TIGHT_LOOP = """
import sys
from supervision.notes import NotesStore
s = NotesStore(sys.argv[1])
i = 0
while True:
    s.add_note(f"{sys.argv[2]}-{i}", author="A", client_id="C")
    print(i, flush=True)
    i += 1
"""


def test_writer_killed_in_a_tight_write_loop(db):
    rng = random.Random(8)
    with NotesStore(db):
        pass
    reported_all: dict[str, set[int]] = {}
    for round_ in range(3):
        tag = f"loop{round_}"
        proc = subprocess.Popen([sys.executable, "-c", _TIGHT_LOOP, str(db), tag], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        lines = _reader_thread(proc)
        reported: set[int] = set()
        target = rng.randint(20, 60)
        while len(reported) < target:
            line = lines.get(timeout=30)
            assert line is not None, "writer died on its own"
            reported.add(int(line))
        time.sleep(rng.uniform(0, 0.003))  # land the kill at a different point of a write each round
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        while (line := lines.get(timeout=10)) is not None:
            reported.add(int(line))
        proc.stdout.close()
        reported_all[tag] = reported
        with raw(db) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with NotesStore(db) as s:  # opens after the crash (WAL recovery) and holds every saved note
            texts = s.notes()["text"]
        for t, rep in reported_all.items():
            got = sorted(int(x.rsplit("-", 1)[1]) for x in texts if x.startswith(f"{t}-"))
            assert len(got) == len(set(got))  # exactly once
            assert rep <= set(got)  # everything the writer was told was saved, is saved
            assert len(got) <= len(rep) + 1  # at most the one write in flight committed unreported
            assert got == list(range(len(got)))  # no gaps


# ---------------------------------------------------------------------------------------------
# Model-based property test: any sequence of edits keeps the latest text and the whole history


note_text = st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and "\x00" not in t)
ops = st.lists(st.tuples(st.sampled_from(["add", "edit", "delete", "restore"]), st.integers(0, 5), note_text),
               min_size=1, max_size=12)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_history_model(sequence):
    with tempfile.TemporaryDirectory() as tmp, NotesStore(Path(tmp) / "n.sqlite") as s:
        m = s.start_meeting(SUP, CLIN, date="2025-01-01")
        model: dict[int, list[tuple[str, bool]]] = {}  # note_id -> versions (text, deleted)
        for op, pick, text in sequence:
            ids = sorted(model)
            if op == "add" or not ids:
                nid = s.add_note(text, author=SUP, meeting_id=m, client_id=None if pick % 2 else f"C-{pick}")
                model[nid] = [(text, False)]
                continue
            nid = ids[pick % len(ids)]
            last_text, deleted = model[nid][-1]
            if op == "edit":
                if deleted:
                    with pytest.raises(NotesInputError):
                        s.edit_note(nid, text, SUP)
                elif text != last_text:
                    model[nid].append((text, False))
                    s.edit_note(nid, text, SUP)
                else:
                    s.edit_note(nid, text, SUP)
            elif op == "delete":
                s.delete_note(nid, SUP)
                if not deleted:
                    model[nid].append((last_text, True))
            else:
                s.restore_note(nid, SUP)
                if deleted:
                    model[nid].append((last_text, False))
        current = s.notes(include_deleted=True).set_index("note_id")
        for nid, versions in model.items():
            assert current.loc[nid, "text"] == versions[-1][0]
            assert bool(current.loc[nid, "deleted"]) == versions[-1][1]
            h = s.history("note", nid)
            assert list(zip(h["text"], h["deleted"])) == versions
        assert set(s.notes()["note_id"]) == {n for n, v in model.items() if not v[-1][1]}
