"""Supervision meetings, notes and action items, kept in a SQLite file that never forgets.

What the supervisor writes is the one thing in the workbook that cannot be recomputed from the
service's export, so this module is built so that nothing written is ever lost:

* **Append-only.** Every change is an ``INSERT`` of a new *version* row: editing a note adds a
  version with the new text, deleting adds a version marked ``deleted`` (the text is kept),
  restoring adds another. Triggers in the database refuse ``UPDATE`` and ``DELETE`` on every
  table that holds what was written, and refuse an ``INSERT`` whose key is already there (an
  ``INSERT OR REPLACE`` deletes the old row without firing delete triggers) or a version that
  does not follow the latest one, so not even a future bug (or a hand-written SQL statement)
  can overwrite history. Readers see the latest version; :meth:`NotesStore.history` shows all.
* **Tamper-evident.** Every version is linked into a SHA-256 hash chain (``version_chain``: each
  link covers the version's stored fields, its record and the previous link).
  :meth:`NotesStore.integrity_check` recomputes it and checks that every protective trigger is
  still there, so a version changed, removed or added by hand (after dropping the triggers) is
  named. The chain has no secret key: it detects edits made with SQL tools, not a forger who
  recomputes every later link; keep backups elsewhere for that.
* **One transaction per change.** Each write runs inside ``BEGIN IMMEDIATE`` ... ``COMMIT``: the
  write lock is taken before anything is read, so two notebooks writing at once are serialised
  instead of failing half-way, and a change is either wholly saved or not at all (an exception,
  a Ctrl-C or a killed process in the middle leaves no half-written record).
* **Write-ahead log** (``journal_mode=WAL``): readers never block the writer nor the writer
  the readers, and a crash mid-write is rolled back on the next open.
* **synchronous=FULL**: in WAL mode the default ``NORMAL`` survives a crash of the program but
  may lose the last few *committed* transactions on a power cut or an operating-system crash,
  because the log is only flushed to disk at checkpoints. ``FULL`` flushes the log at every
  commit, so once a call returns the note is on disk. Notes are written a few at a time, so
  the cost (about a millisecond per commit on an SSD) is invisible. ``fullfsync`` is switched
  on too, which makes macOS flush the drive's own cache (elsewhere it does nothing).
* **Waiting for the lock is bounded.** Another writer holding the lock is waited for (SQLite's
  busy timeout, then retries with exponential backoff and jitter) for at most
  ``[notes] lock_timeout_seconds``; after that a :class:`NotesLockedError` says so in plain
  words. The change was then not saved, and nothing else was either.
* **Schema versions.** A ``schema_version`` table records each migration applied (version 1 is
  the first schema); opening a file applies pending migrations in one transaction, refuses a
  file written by a newer version of the package, and refuses files that are not notes
  databases (a marker in the SQLite header, ``application_id``) without touching them.

Privacy: only pseudonymous identifiers (supervisor, supervisee, client and author ids, as
given) and the text the supervisor typed are stored. The text is never logged and never put in
an error message. Keep the database on the local disk: SQLite's WAL mode needs all its users
on one computer (no network shares) and the file holds clinical notes, so it must stay out of
git — the default location, ``data/notes/`` in the project folder, should be git-ignored.

Example
-------
>>> with NotesStore("supervision-notes.sqlite") as store:          # doctest: +SKIP
...     m = store.start_meeting("SUP-1", "CLIN-7", date="2025-03-04")
...     store.add_note("Ruptures with two clients after session 3.", author="SUP-1", meeting_id=m)
...     store.add_note("Check the goal list.", author="SUP-1", meeting_id=m, client_id="C-0042")
...     store.add_action(m, "Review PHQ-9 trajectory", owner="CLIN-7", due="2025-03-18")
...     print(store.meeting_markdown(m))
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:  # pandas is imported lazily: opening a store and writing does not need it
    import pandas as pd

__all__ = [
    "NotesStore",
    "NotesError",
    "NotesLockedError",
    "NotesInputError",
    "ACTION_STATUSES",
    "REVIEW_STATUSES",
    "GOAL_STATUSES",
    "SCHEMA_VERSION",
    "default_notes_path",
]

ACTION_STATUSES = ("open", "done", "dropped")
KINDS = ("meeting", "note", "action", "item", "review", "goal")
#: How an earlier action, discussed item or practice goal was followed up in a later meeting.
REVIEW_STATUSES = ("done", "carried_over", "dropped")
#: A practice goal's status; metrics a goal can be tied to are in :mod:`supervision.followup`.
GOAL_STATUSES = ("active", "achieved", "not_achieved", "dropped")
# "SUPN" in the SQLite header: marks a file as a supervision-notes database.
APPLICATION_ID = 0x5355504E
DEFAULT_FILE = Path("data") / "notes" / "supervision-notes.sqlite"
MAX_TEXT_CHARS = 100_000
MAX_ID_CHARS = 200
# Longest single wait inside SQLite before our own backoff loop takes over (seconds).
_BUSY_SLICE = 1.0
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNCHANGED: Any = object()

# SQLite primary result codes (the low byte of the extended code).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26
# SQLITE_READONLY_RECOVERY, _CANTLOCK, _CANTINIT, _DIRECTORY: the '-shm'/'-wal' files cannot be made.
_READONLY_SIDE_FILES = {264, 520, 1288, 1544}


# --------------------------------------------------------------------------------------------
# Errors


class NotesError(Exception):
    """The notes database cannot be used as asked. The message says why and what to do.

    Attributes
    ----------
    path : str or None
        The database file concerned.
    fix : str
        What to do about it, in plain words (also part of the message).
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, fix: str = ""):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} {fix}".strip())


class NotesLockedError(NotesError):
    """Another program kept the notes database locked for longer than the lock timeout."""


class NotesInputError(NotesError, ValueError):
    """An argument that cannot be stored (empty text, unknown status, a due date that is not a
    date, an id that does not exist, ...). Nothing was saved."""


# --------------------------------------------------------------------------------------------
# Schema and migrations

_APPEND_ONLY_TABLES = ("meeting", "meeting_version", "note", "note_version", "action", "action_version",
                       "schema_version")


def _append_only_triggers(table: str) -> list[str]:
    message = (f"supervision notes are append-only: {table} rows are never changed or deleted "
               "(a change is a new version)")
    return [f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
            f"SELECT RAISE(ABORT, '{message}'); END" for op in ("UPDATE", "DELETE")]


_SCHEMA_V1 = [
    """CREATE TABLE meeting (
        meeting_id  INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL
    )""",
    """CREATE TABLE meeting_version (
        meeting_id    INTEGER NOT NULL REFERENCES meeting(meeting_id),
        version       INTEGER NOT NULL CHECK (version >= 1),
        meeting_date  TEXT NOT NULL CHECK (date(meeting_date) IS meeting_date),
        supervisor_id TEXT NOT NULL CHECK (length(supervisor_id) > 0),
        supervisee_id TEXT NOT NULL CHECK (length(supervisee_id) > 0),
        deleted       INTEGER NOT NULL CHECK (deleted IN (0, 1)),
        change        TEXT NOT NULL,
        author        TEXT NOT NULL CHECK (length(author) > 0),
        recorded_at   TEXT NOT NULL,
        PRIMARY KEY (meeting_id, version)
    )""",
    """CREATE TABLE note (
        note_id     INTEGER PRIMARY KEY AUTOINCREMENT,
        meeting_id  INTEGER REFERENCES meeting(meeting_id),
        client_id   TEXT CHECK (client_id IS NULL OR length(client_id) > 0),
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        CHECK (meeting_id IS NOT NULL OR client_id IS NOT NULL)
    )""",
    """CREATE TABLE note_version (
        note_id     INTEGER NOT NULL REFERENCES note(note_id),
        version     INTEGER NOT NULL CHECK (version >= 1),
        text        TEXT NOT NULL CHECK (length(trim(text)) > 0),
        deleted     INTEGER NOT NULL CHECK (deleted IN (0, 1)),
        change      TEXT NOT NULL,
        author      TEXT NOT NULL CHECK (length(author) > 0),
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (note_id, version)
    )""",
    """CREATE TABLE action (
        action_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        meeting_id  INTEGER NOT NULL REFERENCES meeting(meeting_id),
        client_id   TEXT CHECK (client_id IS NULL OR length(client_id) > 0),
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL
    )""",
    """CREATE TABLE action_version (
        action_id   INTEGER NOT NULL REFERENCES action(action_id),
        version     INTEGER NOT NULL CHECK (version >= 1),
        text        TEXT NOT NULL CHECK (length(trim(text)) > 0),
        owner       TEXT NOT NULL CHECK (length(owner) > 0),
        due         TEXT CHECK (due IS NULL OR date(due) IS due),
        status      TEXT NOT NULL CHECK (status IN ('open', 'done', 'dropped')),
        change      TEXT NOT NULL,
        author      TEXT NOT NULL CHECK (length(author) > 0),
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (action_id, version)
    )""",
    "CREATE INDEX note_by_meeting ON note(meeting_id)",
    "CREATE INDEX note_by_client ON note(client_id)",
    "CREATE INDEX action_by_meeting ON action(meeting_id)",
    "CREATE INDEX action_by_client ON action(client_id)",
    # Latest version of each record: what the readers show.
    """CREATE VIEW meeting_current AS
        SELECT m.meeting_id, m.created_at, m.created_by, v.version, v.meeting_date,
               v.supervisor_id, v.supervisee_id, v.deleted, v.author AS updated_by,
               v.recorded_at AS updated_at
        FROM meeting m JOIN meeting_version v ON v.meeting_id = m.meeting_id
        WHERE v.version = (SELECT max(version) FROM meeting_version WHERE meeting_id = m.meeting_id)""",
    """CREATE VIEW note_current AS
        SELECT n.note_id, n.meeting_id, n.client_id, n.created_at, n.created_by, v.version,
               v.text, v.deleted, v.author AS updated_by, v.recorded_at AS updated_at
        FROM note n JOIN note_version v ON v.note_id = n.note_id
        WHERE v.version = (SELECT max(version) FROM note_version WHERE note_id = n.note_id)""",
    """CREATE VIEW action_current AS
        SELECT a.action_id, a.meeting_id, a.client_id, a.created_at, a.created_by, v.version,
               v.text, v.owner, v.due, v.status, v.author AS updated_by,
               v.recorded_at AS updated_at
        FROM action a JOIN action_version v ON v.action_id = a.action_id
        WHERE v.version = (SELECT max(version) FROM action_version WHERE action_id = a.action_id)""",
    *[t for table in _APPEND_ONLY_TABLES for t in _append_only_triggers(table)],
]

_KEYS = {"meeting": ("meeting_id",), "note": ("note_id",), "action": ("action_id",),
         "meeting_version": ("meeting_id", "version"), "note_version": ("note_id", "version"),
         "action_version": ("action_id", "version"), "schema_version": ("version",),
         "version_chain": ("seq",)}


def _no_replace_trigger(table: str) -> str:
    """``INSERT OR REPLACE`` deletes the old row without firing the delete trigger (recursive
    triggers are off): refuse any insert whose key is already there, before SQLite resolves it."""
    keys = _KEYS[table]
    same = " AND ".join(f"{k} = NEW.{k}" for k in keys)
    message = (f"supervision notes are append-only: a {table} row with this key already exists and is never "
               "replaced (a change is a new version)")
    return (f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {same}) BEGIN SELECT RAISE(ABORT, '{message}'); END")


def _next_version_trigger(table: str, idcol: str) -> str:
    """A version row must be the next version of its record (1, 2, 3, ... without gaps)."""
    return (f"CREATE TRIGGER {table}_next_version BEFORE INSERT ON {table} "
            f"WHEN NEW.version IS NOT (SELECT coalesce(max(version), 0) + 1 FROM {table} WHERE {idcol} = NEW.{idcol}) "
            f"BEGIN SELECT RAISE(ABORT, 'supervision notes: a version must follow the latest one of its record'); END")


_GENESIS = "0" * 64


def _version_digest(conn: sqlite3.Connection, kind: str, record_id: int, version: int, prev: str) -> str | None:
    """SHA-256 over the previous link and every stored field of one version and of its record."""
    import hashlib
    import json

    table, vtable, idcol, _ = _KIND_TABLES[kind]
    record = conn.execute(f"SELECT * FROM {table} WHERE {idcol} = ?", (record_id,)).fetchone()
    row = conn.execute(f"SELECT * FROM {vtable} WHERE {idcol} = ? AND version = ?", (record_id, version)).fetchone()
    if record is None or row is None:
        return None
    payload = json.dumps([kind, list(record), list(row)], ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256((prev + payload).encode("utf-8")).hexdigest()


def _chain_tables(conn: sqlite3.Connection) -> list[str]:
    """The chain's tables in order: ``version_chain`` (schema 2) and, from schema 3, ``version_chain3``,
    which continues the same chain (its first link covers the last link of the first table)."""
    have = {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('version_chain', 'version_chain3')")}
    return [t for t in ("version_chain", "version_chain3") if t in have]


def _chain_link(conn: sqlite3.Connection, kind: str, record_id: int, version: int) -> None:
    """Append one version to the hash chain (inside the transaction that wrote it)."""
    tables = _chain_tables(conn)
    last = None
    for table in reversed(tables):
        last = conn.execute(f"SELECT digest FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
        if last:
            break
    digest = _version_digest(conn, kind, record_id, version, last[0] if last else _GENESIS)
    conn.execute(f"INSERT INTO {tables[-1]} (kind, record_id, version, digest) VALUES (?, ?, ?, ?)",
                 (kind, record_id, version, digest))


def _chain_existing(conn: sqlite3.Connection) -> None:
    """Migration 2: chain the versions written before the chain existed, oldest first."""
    rows = []
    for kind, (_, vtable, idcol, _) in list(_KIND_TABLES.items())[:3]:  # the kinds of schema 1
        rows += [(r[0], kind, r[1], r[2]) for r in conn.execute(f"SELECT recorded_at, {idcol}, version FROM {vtable}")]
    for _, kind, record_id, version in sorted(rows, key=lambda r: (r[0], KINDS.index(r[1]), r[2], r[3])):
        _chain_link(conn, kind, record_id, version)


_SCHEMA_V2 = [
    """CREATE TABLE version_chain (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        kind      TEXT NOT NULL CHECK (kind IN ('meeting', 'note', 'action')),
        record_id INTEGER NOT NULL,
        version   INTEGER NOT NULL,
        digest    TEXT NOT NULL CHECK (length(digest) = 64),
        UNIQUE (kind, record_id, version)
    )""",
    *_append_only_triggers("version_chain"),
    *[_no_replace_trigger(t) for t in (*_APPEND_ONLY_TABLES, "version_chain")],
    _next_version_trigger("meeting_version", "meeting_id"),
    _next_version_trigger("note_version", "note_id"),
    _next_version_trigger("action_version", "action_id"),
    _chain_existing,
]

_V3_TABLES = ("item", "item_version", "review", "review_version", "goal", "goal_version", "version_chain3")
_KEYS.update({"item": ("item_id",), "item_version": ("item_id", "version"), "review": ("review_id",),
              "review_version": ("review_id", "version"), "goal": ("goal_id",),
              "goal_version": ("goal_id", "version"), "version_chain3": ("seq",)})
_DATE_CHECK = "CHECK ({c} IS NULL OR date({c}) IS {c})"
_SCHEMA_V3 = [
    # an agenda item discussed in a meeting, with the evidence as it stood then
    """CREATE TABLE item (
        item_id     INTEGER PRIMARY KEY AUTOINCREMENT,
        meeting_id  INTEGER NOT NULL REFERENCES meeting(meeting_id),
        client_id   TEXT CHECK (client_id IS NULL OR length(client_id) > 0),
        flag        TEXT NOT NULL CHECK (length(flag) > 0),
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL
    )""",
    f"""CREATE TABLE item_version (
        item_id     INTEGER NOT NULL REFERENCES item(item_id),
        version     INTEGER NOT NULL CHECK (version >= 1),
        evidence    TEXT NOT NULL,
        data_date   TEXT {_DATE_CHECK.format(c='data_date')},
        deleted     INTEGER NOT NULL CHECK (deleted IN (0, 1)),
        change      TEXT NOT NULL,
        author      TEXT NOT NULL CHECK (length(author) > 0),
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (item_id, version)
    )""",
    # what a later meeting decided about an earlier action, item or goal
    """CREATE TABLE review (
        review_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        meeting_id  INTEGER NOT NULL REFERENCES meeting(meeting_id),
        target_kind TEXT NOT NULL CHECK (target_kind IN ('action', 'item', 'goal')),
        target_id   INTEGER NOT NULL,
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        UNIQUE (meeting_id, target_kind, target_id)
    )""",
    """CREATE TABLE review_version (
        review_id   INTEGER NOT NULL REFERENCES review(review_id),
        version     INTEGER NOT NULL CHECK (version >= 1),
        status      TEXT NOT NULL CHECK (status IN ('done', 'carried_over', 'dropped')),
        comment     TEXT,
        change      TEXT NOT NULL,
        author      TEXT NOT NULL CHECK (length(author) > 0),
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (review_id, version)
    )""",
    # a practice goal agreed in supervision, tied to one metric of the workbook
    """CREATE TABLE goal (
        goal_id       INTEGER PRIMARY KEY AUTOINCREMENT,
        meeting_id    INTEGER NOT NULL REFERENCES meeting(meeting_id),
        created_at    TEXT NOT NULL,
        created_by    TEXT NOT NULL
    )""",
    f"""CREATE TABLE goal_version (
        goal_id        INTEGER NOT NULL REFERENCES goal(goal_id),
        version        INTEGER NOT NULL CHECK (version >= 1),
        text           TEXT NOT NULL CHECK (length(trim(text)) > 0),
        metric         TEXT NOT NULL CHECK (length(metric) > 0),
        direction      TEXT NOT NULL CHECK (direction IN ('increase', 'decrease')),
        baseline_start TEXT NOT NULL {_DATE_CHECK.format(c='baseline_start')},
        baseline_end   TEXT NOT NULL {_DATE_CHECK.format(c='baseline_end')},
        review_date    TEXT NOT NULL {_DATE_CHECK.format(c='review_date')},
        status         TEXT NOT NULL CHECK (status IN ('active', 'achieved', 'not_achieved', 'dropped')),
        change         TEXT NOT NULL,
        author         TEXT NOT NULL CHECK (length(author) > 0),
        recorded_at    TEXT NOT NULL,
        PRIMARY KEY (goal_id, version)
    )""",
    "CREATE INDEX item_by_meeting ON item(meeting_id)",
    "CREATE INDEX review_by_target ON review(target_kind, target_id)",
    "CREATE INDEX goal_by_meeting ON goal(meeting_id)",
    """CREATE VIEW item_current AS
        SELECT i.item_id, i.meeting_id, i.client_id, i.flag, i.created_at, i.created_by, v.version,
               v.evidence, v.data_date, v.deleted, v.author AS updated_by, v.recorded_at AS updated_at
        FROM item i JOIN item_version v ON v.item_id = i.item_id
        WHERE v.version = (SELECT max(version) FROM item_version WHERE item_id = i.item_id)""",
    """CREATE VIEW review_current AS
        SELECT r.review_id, r.meeting_id, r.target_kind, r.target_id, r.created_at, r.created_by, v.version,
               v.status, v.comment, v.author AS updated_by, v.recorded_at AS updated_at
        FROM review r JOIN review_version v ON v.review_id = r.review_id
        WHERE v.version = (SELECT max(version) FROM review_version WHERE review_id = r.review_id)""",
    """CREATE VIEW goal_current AS
        SELECT g.goal_id, g.meeting_id, g.created_at, g.created_by, v.version, v.text, v.metric, v.direction,
               v.baseline_start, v.baseline_end, v.review_date, v.status, v.author AS updated_by,
               v.recorded_at AS updated_at
        FROM goal g JOIN goal_version v ON v.goal_id = g.goal_id
        WHERE v.version = (SELECT max(version) FROM goal_version WHERE goal_id = g.goal_id)""",
    # the chain goes on in a table that knows the new kinds (SQLite cannot widen a CHECK in place)
    """CREATE TABLE version_chain3 (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        kind      TEXT NOT NULL CHECK (kind IN ('meeting', 'note', 'action', 'item', 'review', 'goal')),
        record_id INTEGER NOT NULL,
        version   INTEGER NOT NULL,
        digest    TEXT NOT NULL CHECK (length(digest) = 64),
        UNIQUE (kind, record_id, version)
    )""",
    *[t for table in _V3_TABLES for t in _append_only_triggers(table)],
    *[_no_replace_trigger(t) for t in _V3_TABLES],
    _next_version_trigger("item_version", "item_id"),
    _next_version_trigger("review_version", "review_id"),
    _next_version_trigger("goal_version", "goal_id"),
    # the first chain table is closed: every new link goes to version_chain3
    "CREATE TRIGGER version_chain_closed BEFORE INSERT ON version_chain BEGIN SELECT RAISE(ABORT, "
    "'supervision notes: the chain goes on in version_chain3; version_chain takes no new links'); END",
]

# Triggers that must be present (a missing one means someone removed a protection by hand).
_REQUIRED_TRIGGERS = frozenset(
    [f"{t}_no_{op}" for t in (*_APPEND_ONLY_TABLES, "version_chain", *_V3_TABLES) for op in ("update", "delete")]
    + [f"{t}_no_replace" for t in (*_APPEND_ONLY_TABLES, "version_chain", *_V3_TABLES)]
    + [f"{t}_next_version" for t in ("meeting_version", "note_version", "action_version", "item_version",
                                     "review_version", "goal_version")] + ["version_chain_closed"])

# (version, description, statements). Append new migrations; never edit a released one. A
# statement is SQL, or a function of the connection (run in the same transaction).
_MIGRATIONS: list[tuple[int, str, list]] = [
    (1, "meetings, notes and action items as append-only versions", _SCHEMA_V1),
    (2, "no INSERT OR REPLACE of a stored row, versions in order, SHA-256 chain over every version", _SCHEMA_V2),
    (3, "discussed agenda items, reviews of earlier actions and items, practice goals", _SCHEMA_V3),
]
SCHEMA_VERSION = _MIGRATIONS[-1][0]

# Per kind: identity table, version table, id column, versioned fields.
_KIND_TABLES = {
    "meeting": ("meeting", "meeting_version", "meeting_id",
                ("meeting_date", "supervisor_id", "supervisee_id", "deleted")),
    "note": ("note", "note_version", "note_id", ("text", "deleted")),
    "action": ("action", "action_version", "action_id", ("text", "owner", "due", "status")),
    "item": ("item", "item_version", "item_id", ("evidence", "data_date", "deleted")),
    "review": ("review", "review_version", "review_id", ("status", "comment")),
    "goal": ("goal", "goal_version", "goal_id", ("text", "metric", "direction", "baseline_start", "baseline_end",
                                                 "review_date", "status")),
}


# --------------------------------------------------------------------------------------------
# Small helpers


def default_notes_path() -> Path:
    """Where notes are kept when ``[notes] path`` is empty: the file named by the
    ``SUPERVISION_NOTES`` environment variable (a hosted workbook sets it to the supervisor's
    private notes folder), else ``data/notes/supervision-notes.sqlite`` under the project folder
    (git-ignored; created on first use)."""
    env = os.environ.get("SUPERVISION_NOTES", "").strip()
    return Path(env) if env else Path(__file__).resolve().parents[1] / DEFAULT_FILE


def _now() -> str:
    """The current time in UTC, ISO 8601 with microseconds, e.g. ``2025-03-04T10:15:00.123456+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _commit(conn: sqlite3.Connection) -> None:
    # A separate function so the interrupted-write tests can stop a real write just before it.
    conn.execute("COMMIT")


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _is_busy(exc: sqlite3.Error) -> bool:
    if _primary_code(exc) in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    msg = str(exc).lower()
    return "database is locked" in msg or "database is busy" in msg or "database table is locked" in msg


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_text(value: Any, name: str = "text") -> str:
    # Never echo the text itself: it is clinical free text.
    if not isinstance(value, str):
        raise NotesInputError(f"{name} must be text (a str), got a value of type {_type_name(value)}.",
                              fix="Pass the note as a string.")
    if not value.strip():
        raise NotesInputError(f"{name} is empty.", fix="Write something before saving; nothing was saved.")
    if len(value) > MAX_TEXT_CHARS:
        raise NotesInputError(
            f"{name} is {len(value):,} characters long; the limit is {MAX_TEXT_CHARS:,}.",
            fix="Split it into several notes.")
    if "\x00" in value:  # SQLite's text functions stop at a NUL; pasted text can carry one
        raise NotesInputError(f"{name} contains an invisible NUL character (often pasted from another program).",
                              fix="Retype or re-paste the text without it; nothing was saved.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotesInputError(f"{name} contains characters that cannot be stored (an unpaired surrogate).",
                              fix="Retype or re-paste the text; nothing was saved.") from None
    return value


def _check_label(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    example = {"client_id": "'C-0042'", "owner": "'CLIN-7'"}.get(name, "'SUP-1'")
    if not isinstance(value, str):
        raise NotesInputError(
            f"{name} must be a pseudonymous id as text (e.g. {example}), got {value!r} ({_type_name(value)}).",
            fix=f"Pass {name} as a string.")
    label = value.strip()
    if not label or len(label) > MAX_ID_CHARS or any(c in label for c in "\r\n\t\x00"):
        raise NotesInputError(
            f"{name} must be a non-empty pseudonymous id on one line, at most {MAX_ID_CHARS} characters "
            f"(e.g. {example}), got {value!r}.", fix=f"Give a valid {name}.")
    return label


def _check_id(value: Any, name: str) -> int:
    if isinstance(value, bool):
        ok = False
    else:
        try:
            value = int(value.__index__())
            ok = value >= 1
        except (AttributeError, TypeError):
            ok = False
    if not ok:
        raise NotesInputError(f"{name} must be a whole number of 1 or more, as returned when it was created; "
                              f"got {value!r}.", fix="Look the id up with the listing methods (e.g. meetings()).")
    return value


def _check_date(value: Any, name: str, *, optional: bool = False) -> str | None:
    """A calendar date as ``YYYY-MM-DD`` text."""
    missing = value is None
    if not missing:
        try:  # NaN, pandas NaT and numpy NaT are "no date"
            missing = bool(value != value)
        except (TypeError, ValueError):
            missing = False
    if missing:
        if optional:
            return None
    elif isinstance(value, datetime):
        return value.date().isoformat()
    elif isinstance(value, date):
        return value.isoformat()
    elif str(getattr(value, "dtype", "")).startswith("datetime64") and getattr(value, "ndim", None) == 0:
        return str(value.astype("datetime64[D]"))
    elif isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise NotesInputError(
        f"{name} must be a date such as 2025-03-31 (a datetime.date or text in the form YYYY-MM-DD), "
        f"got {value!r}.", fix=f"Give {name} as YYYY-MM-DD{' or None' if optional else ''}.")


def _check_status(value: Any) -> str:
    if not isinstance(value, str) or value.strip().lower() not in ACTION_STATUSES:
        raise NotesInputError(
            f"status must be one of {', '.join(ACTION_STATUSES)}; got {value!r}.",
            fix="'open' = still to do, 'done' = completed, 'dropped' = no longer needed.")
    return value.strip().lower()


def _indent_continuation(text: str, prefix: str = "  ") -> str:
    lines = text.strip("\n").splitlines() or [""]
    return "\n".join([lines[0]] + [(prefix + ln) if ln.strip() else "" for ln in lines[1:]])


# --------------------------------------------------------------------------------------------
# The store


class NotesStore:
    """Supervision meetings, notes and action items in one SQLite file (append-only, see module doc).

    Parameters
    ----------
    path : str or Path, optional
        The database file. ``None`` uses ``[notes] path`` from the settings; when that is empty,
        ``data/notes/supervision-notes.sqlite`` under the project folder (its folder is created).
        A relative path is taken from the current working directory; ``store.path`` is always the
        absolute path actually used. A missing file is created (``store.created`` is then True),
        but its folder must exist.
    settings : path, dict or Settings, optional
        See :func:`supervision.config.load_settings`. Read for ``[notes]``.
    lock_timeout : float, optional
        Longest wait, in seconds, for another writer to release the database before a
        :class:`NotesLockedError` (default ``[notes] lock_timeout_seconds``).
    read_only : bool, default False
        Open without any right to write (SQLite ``mode=ro``): the file is never changed, and every
        write raises :class:`NotesError`.

    Raises
    ------
    NotesError
        The path is a folder, its folder does not exist, the file cannot be opened, is not a
        notes database (it is left untouched), is damaged, or was written by a newer version of
        this package. :class:`NotesLockedError` when it stays locked beyond ``lock_timeout``.

    Notes
    -----
    Use as a context manager (``with NotesStore(p) as store:``) or call :meth:`close`. One store
    may be used from several threads (calls are serialised); a store must not be carried into a
    child process — open a new one there. Several processes may each open the same file.
    """

    def __init__(self, path: str | Path | None = None, *, settings: Any = None,
                 lock_timeout: float | None = None, read_only: bool = False):
        cfg = None
        if path is None or lock_timeout is None:
            from supervision.config import load_settings

            cfg = load_settings(settings).get("notes", {}) or {}
        if lock_timeout is None:
            lock_timeout = cfg.get("lock_timeout_seconds", 10.0)
        if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) or not lock_timeout > 0:
            raise NotesInputError(f"lock_timeout must be a number of seconds above 0, got {lock_timeout!r}.",
                                  fix="Set [notes] lock_timeout_seconds (default 10) or pass lock_timeout=10.")
        self.lock_timeout = float(lock_timeout)
        self.read_only = bool(read_only)
        is_default = False
        if path is None:
            given = (cfg or {}).get("path", "")
            path = given if given else default_notes_path()
            is_default = not given
        self.path = Path(os.path.expanduser(str(path))).absolute()
        self.created = False
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._open(is_default)

    # -- lifecycle ------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else ("read-only" if self.read_only else "open")
        return f"NotesStore({str(self.path)!r}, {state})"

    def __enter__(self) -> "NotesStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (safe to call twice). Everything was already committed."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and os.getpid() == self._pid:
                conn.close()

    def _err(self, problem: str, fix: str, cls: type[NotesError] = NotesError) -> NotesError:
        return cls(f"Notes database '{self.path}': {problem}", path=self.path, fix=fix)

    def _open(self, is_default: bool) -> None:
        p = self.path
        try:
            if p.is_dir():
                raise self._err("this is a folder, not a file.",
                                "Give the path of a file, e.g. '<folder>/supervision-notes.sqlite'.")
            if not p.parent.is_dir():
                if is_default and not self.read_only:
                    p.parent.mkdir(parents=True, exist_ok=True)
                else:
                    raise self._err(f"the folder '{p.parent}' does not exist.",
                                    "Create the folder first, or correct the path in [notes] path.")
            if self.read_only and not p.exists():
                raise self._err("the file does not exist, so it cannot be opened read-only.",
                                "Check the path, or open it without read_only=True to start a new notes "
                                "database.")
        except OSError as exc:
            raise self._err(f"its folder cannot be reached or created ({exc.strerror or exc}).",
                            "Check that the folder exists and that you may read and write in it.") from None
        uri = p.as_uri() + ("?mode=ro" if self.read_only else "?mode=rwc")
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                   timeout=min(self.lock_timeout, _BUSY_SLICE))
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        self._conn = conn
        try:
            # Connection settings; none of these writes to the file (but SQLite may already
            # find here that a write-ahead-logged file cannot be opened by this user).
            try:
                for pragma in ("foreign_keys = ON", "synchronous = FULL", "fullfsync = ON",
                               "checkpoint_fullfsync = ON", "trusted_schema = OFF"):
                    conn.execute(f"PRAGMA {pragma}")
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            state = self._run(self._identify)  # before anything could write to a foreign file
            if state == "foreign":
                raise self._err(
                    "this file is not a supervision notes database (it belongs to another program, "
                    "or is damaged). It was not changed.",
                    "Choose another file name in [notes] path, or restore the notes file from a backup.")
            version = self._run(self._schema_version) if state == "notes" else 0
            self._check_not_newer(version)
            if self.read_only:
                if version < SCHEMA_VERSION:
                    raise self._err(
                        "this file has no notes tables yet, or an older layout, and it was opened read-only.",
                        "Open it once without read_only=True so it can be set up or upgraded.")
            else:
                self._ensure_wal()
                # The write lock is only taken when there is something to set up, so opening
                # never waits for another notebook that is busy writing.
                if version < SCHEMA_VERSION:
                    self.created = self._run(self._migrate, write=True)
        except BaseException:
            self.close()
            raise

    # -- transactions -----------------------------------------------------------------------

    def _run(self, fn: Callable[[sqlite3.Connection], Any], *, write: bool = False) -> Any:
        """Run ``fn(conn)`` in one transaction, retrying while the database is busy.

        Writes use ``BEGIN IMMEDIATE`` (take the write lock first, so a transaction never has to
        upgrade a read lock, which is the one case SQLite cannot wait for); reads use a deferred
        ``BEGIN`` so several SELECTs see one consistent snapshot. On any exception the transaction
        is rolled back and nothing is saved. A busy database is waited for (SQLite's busy handler,
        in slices of at most one second, then exponential backoff with jitter) until
        ``lock_timeout`` has passed; then :class:`NotesLockedError`.
        """
        with self._lock:
            conn = self._conn
            if conn is None:
                raise NotesError(f"Notes database '{self.path}' is closed.", path=self.path,
                                 fix="Open it again with NotesStore(path).")
            if os.getpid() != self._pid:
                raise NotesError(f"Notes database '{self.path}' was opened in another process.",
                                 path=self.path, fix="Open a new NotesStore in this process.")
            if self.read_only and write:
                raise self._err("it was opened read-only (read_only=True), so nothing can be changed.",
                                "Open it without read_only=True to write; nothing was saved.")
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.005
            attempt = 0
            while True:
                attempt += 1
                remaining = deadline - time.monotonic()
                try:
                    conn.execute(f"PRAGMA busy_timeout = {max(1, int(min(remaining, _BUSY_SLICE) * 1000))}")
                    if conn.in_transaction:  # never expected; do not let a stray transaction leak
                        conn.execute("ROLLBACK")
                    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    try:
                        result = fn(conn)
                        _commit(conn)
                        return result
                    except BaseException:
                        if conn.in_transaction:
                            try:
                                conn.execute("ROLLBACK")
                            except sqlite3.Error:
                                pass
                        raise
                except sqlite3.Error as exc:
                    remaining = deadline - time.monotonic()
                    if _is_busy(exc) and remaining > 0:
                        time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
                        delay = min(delay * 2, 0.25)
                        continue
                    raise self._translate(exc, waited=self.lock_timeout if _is_busy(exc) else None) from None

    def _translate(self, exc: sqlite3.Error, waited: float | None = None) -> NotesError:
        """A plain-language NotesError for a SQLite error (never contains note text)."""
        code = _primary_code(exc)
        if _is_busy(exc):
            return self._err(
                f"it is locked by another program or notebook that is writing to it; waited "
                f"{waited if waited is not None else self.lock_timeout:g} s.",
                "Nothing was saved. Wait a moment and try again; if it keeps happening, close other "
                "notebooks or programs using this file, or raise [notes] lock_timeout_seconds.",
                NotesLockedError)
        extended = getattr(exc, "sqlite_errorcode", None)
        if code == _SQLITE_READONLY and extended in _READONLY_SIDE_FILES:
            return self._err(
                "it cannot be opened here: its folder is read-only for this user, and SQLite must create "
                "the companion '-wal' and '-shm' files beside the database even to read it.",
                "Nothing was saved. Ask for write permission on the folder, or copy the file (while no one "
                "is writing to it) to a folder you can write to and set [notes] path.")
        if code == _SQLITE_READONLY:
            if self.read_only:
                return self._err("it was opened read-only (read_only=True), so nothing can be changed.",
                                 "Open it without read_only=True to write; nothing was saved.")
            return self._err(
                "it cannot be written: the file, or the folder it is in, is read-only for this user "
                "(or it is on a read-only disk).",
                "Nothing was saved. Ask for write permission on both the file and its folder (SQLite "
                "writes '-wal' and '-shm' files beside it), or copy it to a folder you can write to "
                "and set [notes] path.")
        if code == _SQLITE_NOTADB:
            return self._err("this file is not a supervision notes database (not a SQLite file). "
                             "It was not changed.",
                             "Choose another file name in [notes] path, or restore the notes file from a backup.")
        if code == _SQLITE_CORRUPT:
            return self._err("the file is damaged.",
                             "Stop writing to it, copy it together with its '-wal' file, and restore from "
                             "a backup (NotesStore.backup makes one); ask for help to recover it.")
        if code == _SQLITE_CANTOPEN:
            return self._err("it cannot be opened (missing folder, no permission, or the folder is read-only "
                             "and the companion '-wal'/'-shm' files cannot be created).",
                             "Check that the folder exists and that you may read and write in it.")
        if code == _SQLITE_FULL:
            return self._err("the disk is full.", "Nothing was saved. Free some space and try again.")
        if code == _SQLITE_IOERR:
            return self._err(f"the disk reported an error ({exc}).",
                             "Nothing was saved. Check the disk (or network share: do not keep notes on one) "
                             "and try again.")
        if isinstance(exc, sqlite3.IntegrityError):
            return self._err(f"the database refused the change ({exc}).", "Nothing was saved.",
                             NotesInputError)
        return self._err(f"SQLite error: {exc}.", "Nothing was saved. Try again; if it persists, report it.")

    # -- opening: identity, WAL, migrations ---------------------------------------------------

    @staticmethod
    def _identify(conn: sqlite3.Connection) -> str:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        n_objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == APPLICATION_ID:
            return "notes"
        if app_id == 0 and n_objects == 0:
            return "empty"
        return "foreign"

    def _ensure_wal(self) -> None:
        def mode(conn: sqlite3.Connection) -> str:
            return conn.execute("PRAGMA journal_mode").fetchone()[0]

        with self._lock:
            conn = self._conn
            assert conn is not None
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.005
            while True:
                try:
                    current = mode(conn)
                    if current.lower() != "wal":
                        # Cannot run inside a transaction; needs a moment of exclusive access.
                        current = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    break
                except sqlite3.Error as exc:
                    if _is_busy(exc) and time.monotonic() < deadline:
                        time.sleep(delay * random.uniform(0.5, 1.5))
                        delay = min(delay * 2, 0.25)
                        continue
                    raise self._translate(exc) from None
            if current.lower() != "wal":
                raise self._err(
                    f"SQLite could not switch it to write-ahead logging (journal mode is {current!r}).",
                    "Keep the notes file on a local disk (not a network share or a read-only medium).")

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        if not has:
            return 0
        return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])

    def _check_not_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise self._err(
                f"it was written by a newer version of the supervision workbook (notes schema {version}; "
                f"this version understands up to {SCHEMA_VERSION}). It was not changed.",
                "Update the supervision-workbook package, then open it again.")

    def _migrate(self, conn: sqlite3.Connection) -> bool:
        """Apply pending migrations (inside the write transaction). True when the file was new."""
        state = self._identify(conn)  # again, now that we hold the write lock
        if state == "foreign":
            raise self._err("this file is not a supervision notes database. It was not changed.",
                            "Choose another file name in [notes] path.")
        new = state == "empty"
        if new:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("""CREATE TABLE schema_version (
                version     INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at  TEXT NOT NULL)""")
        current = self._schema_version(conn)
        self._check_not_newer(current)
        for version, description, statements in _MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                statement(conn) if callable(statement) else conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                         (version, description, _now()))
            conn.execute(f"PRAGMA user_version = {version}")
        return new

    # -- generic versioned records ----------------------------------------------------------

    def _current(self, conn: sqlite3.Connection, kind: str, record_id: int) -> dict[str, Any]:
        _, vtable, idcol, fields = _KIND_TABLES[kind]
        row = conn.execute(
            f"SELECT version, {', '.join(fields)} FROM {vtable} WHERE {idcol} = ? "
            "ORDER BY version DESC LIMIT 1", (record_id,)).fetchone()
        if row is None:
            listing = {"meeting": "meetings()", "note": "notes()", "action": "actions()"}[kind]
            raise self._err(f"there is no {kind} with id {record_id}.",
                            f"Look the id up with store.{listing}.", NotesInputError)
        return dict(zip(("version", *fields), row))

    @staticmethod
    def _append(conn: sqlite3.Connection, kind: str, record_id: int, values: dict[str, Any],
                version: int, change: str, author: str) -> int:
        _, vtable, idcol, fields = _KIND_TABLES[kind]
        cols = [idcol, "version", *fields, "change", "author", "recorded_at"]
        row = [record_id, version, *[values[f] for f in fields], change, author, _now()]
        conn.execute(f"INSERT INTO {vtable} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", row)
        _chain_link(conn, kind, record_id, version)
        return version

    def _change(self, kind: str, record_id: Any, author: Any, change: str,
                update: Callable[[dict[str, Any], sqlite3.Connection], dict[str, Any] | None]) -> int:
        """Append a version of ``kind`` ``record_id`` with the fields ``update`` returns.

        ``update(current, conn)`` returns the changed fields, or None for no change (then no version
        is written and the current version number is returned).
        """
        record_id = _check_id(record_id, f"{kind}_id")
        author = _check_label(author, "author")

        def tx(conn: sqlite3.Connection) -> int:
            cur = self._current(conn, kind, record_id)
            changed = update(dict(cur), conn)
            if not changed or all(cur[k] == v for k, v in changed.items()):
                return int(cur["version"])
            return self._append(conn, kind, record_id, {**cur, **changed}, int(cur["version"]) + 1,
                                change, author)

        return self._run(tx, write=True)

    def _live_meeting(self, conn: sqlite3.Connection, meeting_id: int) -> dict[str, Any]:
        cur = self._current(conn, "meeting", meeting_id)
        if cur["deleted"]:
            raise self._err(f"meeting {meeting_id} was deleted.",
                            f"Restore it first with restore_meeting({meeting_id}, author); nothing was saved.",
                            NotesInputError)
        return cur

    # -- meetings ---------------------------------------------------------------------------

    def start_meeting(self, supervisor_id: str, supervisee_id: str, date: Any = None, *,
                      author: str | None = None) -> int:
        """Record a supervision meeting and return its ``meeting_id``.

        Parameters
        ----------
        supervisor_id, supervisee_id : str
            Pseudonymous ids, stored as given (stripped of surrounding spaces).
        date : date or 'YYYY-MM-DD', optional
            The day of the meeting (a calendar date, not a timestamp); default today (local date).
        author : str, optional
            Who recorded it; default ``supervisor_id``.
        """
        supervisor_id = _check_label(supervisor_id, "supervisor_id")
        supervisee_id = _check_label(supervisee_id, "supervisee_id")
        meeting_date = _check_date(date if date is not None else _today(), "date")
        author = _check_label(author, "author") if author is not None else supervisor_id

        def tx(conn: sqlite3.Connection) -> int:
            now = _now()
            mid = conn.execute("INSERT INTO meeting (created_at, created_by) VALUES (?, ?)",
                               (now, author)).lastrowid
            self._append(conn, "meeting", mid, {"meeting_date": meeting_date, "supervisor_id": supervisor_id,
                                                "supervisee_id": supervisee_id, "deleted": 0},
                         1, "created", author)
            return int(mid)

        return self._run(tx, write=True)

    def edit_meeting(self, meeting_id: int, author: str, *, date: Any = None,
                     supervisor_id: str | None = None, supervisee_id: str | None = None) -> int:
        """Correct a meeting's date or ids (a new version; the old one stays in the history).

        Returns the meeting's version number after the change (unchanged when nothing differs).
        """
        meeting_id = _check_id(meeting_id, "meeting_id")
        changes: dict[str, Any] = {}
        if date is not None:
            changes["meeting_date"] = _check_date(date, "date")
        if supervisor_id is not None:
            changes["supervisor_id"] = _check_label(supervisor_id, "supervisor_id")
        if supervisee_id is not None:
            changes["supervisee_id"] = _check_label(supervisee_id, "supervisee_id")

        def update(cur: dict[str, Any], conn: sqlite3.Connection) -> dict[str, Any]:
            if cur["deleted"]:
                self._live_meeting(conn, meeting_id)
            return changes

        return self._change("meeting", meeting_id, author, "edited", update)

    def delete_meeting(self, meeting_id: int, author: str) -> int:
        """Mark a meeting deleted (a soft delete recorded as a version; nothing is erased).

        Only an empty meeting can be deleted: delete its notes and drop its action items first.
        """
        def update(cur: dict[str, Any], conn: sqlite3.Connection) -> dict[str, Any]:
            live_notes = conn.execute("SELECT count(*) FROM note_current WHERE meeting_id = ? AND deleted = 0",
                                      (cur_id,)).fetchone()[0]
            live_actions = conn.execute(
                "SELECT count(*) FROM action_current WHERE meeting_id = ? AND status != 'dropped'",
                (cur_id,)).fetchone()[0]
            if live_notes or live_actions:
                raise self._err(
                    f"meeting {cur_id} still has {live_notes} note(s) and {live_actions} action item(s) "
                    "that are not deleted or dropped.",
                    "Delete its notes and drop its action items first; nothing was changed.",
                    NotesInputError)
            return {"deleted": 1}

        cur_id = _check_id(meeting_id, "meeting_id")
        return self._change("meeting", cur_id, author, "deleted", update)

    def restore_meeting(self, meeting_id: int, author: str) -> int:
        """Undo :meth:`delete_meeting` (recorded as a new version)."""
        meeting_id = _check_id(meeting_id, "meeting_id")
        return self._change("meeting", meeting_id, author, "restored", lambda cur, conn: {"deleted": 0})

    # -- notes ------------------------------------------------------------------------------

    def add_note(self, text: str, *, author: str, meeting_id: int | None = None,
                 client_id: str | None = None) -> int:
        """Save a note and return its ``note_id``.

        Parameters
        ----------
        text : str
            Free text (never logged). Must not be empty; at most 100,000 characters.
        author : str
            Pseudonymous id of who wrote it.
        meeting_id : int, optional
            The meeting it belongs to. Without ``client_id`` it is a *general* note of the meeting.
        client_id : str, optional
            The client it is about (pseudonymous id, stored as given). A note needs a meeting, a
            client, or both.
        """
        text = _check_text(text)
        author = _check_label(author, "author")
        client_id = _check_label(client_id, "client_id", optional=True)
        meeting_id = None if meeting_id is None else _check_id(meeting_id, "meeting_id")
        if meeting_id is None and client_id is None:
            raise NotesInputError("a note needs a meeting_id, a client_id, or both.",
                                  fix="Pass meeting_id= for a meeting note, client_id= for a note about a client.")

        def tx(conn: sqlite3.Connection) -> int:
            if meeting_id is not None:
                self._live_meeting(conn, meeting_id)
            now = _now()
            nid = conn.execute("INSERT INTO note (meeting_id, client_id, created_at, created_by) VALUES (?, ?, ?, ?)",
                               (meeting_id, client_id, now, author)).lastrowid
            self._append(conn, "note", nid, {"text": text, "deleted": 0}, 1, "created", author)
            return int(nid)

        return self._run(tx, write=True)

    def edit_note(self, note_id: int, text: str, author: str) -> int:
        """Replace a note's text with a new version (the old text stays in :meth:`history`).

        Returns the version number after the edit (unchanged when the text is the same).
        A deleted note must be restored (:meth:`restore_note`) before it can be edited.
        """
        note_id = _check_id(note_id, "note_id")
        text = _check_text(text)

        def update(cur: dict[str, Any], conn: sqlite3.Connection) -> dict[str, Any]:
            if cur["deleted"]:
                raise self._err(f"note {note_id} was deleted.",
                                f"Restore it first with restore_note({note_id}, author); nothing was saved.",
                                NotesInputError)
            return {"text": text}

        return self._change("note", note_id, author, "edited", update)

    def delete_note(self, note_id: int, author: str) -> int:
        """Mark a note deleted: a new version with ``deleted`` set; its text is kept in the history."""
        return self._change("note", note_id, author, "deleted", lambda cur, conn: {"deleted": 1})

    def restore_note(self, note_id: int, author: str) -> int:
        """Undo :meth:`delete_note` (recorded as a new version)."""
        note_id = _check_id(note_id, "note_id")

        def update(cur: dict[str, Any], conn: sqlite3.Connection) -> dict[str, Any]:
            meeting = conn.execute("SELECT meeting_id FROM note WHERE note_id = ?", (note_id,)).fetchone()[0]
            if meeting is not None and cur["deleted"]:
                self._live_meeting(conn, meeting)
            return {"deleted": 0}

        return self._change("note", note_id, author, "restored", update)

    # -- action items -----------------------------------------------------------------------

    def add_action(self, meeting_id: int, text: str, owner: str, *, due: Any = None,
                   client_id: str | None = None, author: str | None = None) -> int:
        """Record an action item agreed in a meeting; returns its ``action_id``. Status starts ``open``.

        Parameters
        ----------
        meeting_id : int
            The meeting where it was agreed.
        text : str
            What is to be done (free text, never logged).
        owner : str
            Pseudonymous id of who will do it.
        due : date or 'YYYY-MM-DD', optional
            When it is due; None for no due date.
        client_id : str, optional
            The client it concerns.
        author : str, optional
            Who recorded it; default the meeting's supervisor.
        """
        meeting_id = _check_id(meeting_id, "meeting_id")
        text = _check_text(text)
        owner = _check_label(owner, "owner")
        due = _check_date(due, "due", optional=True)
        client_id = _check_label(client_id, "client_id", optional=True)
        author = None if author is None else _check_label(author, "author")

        def tx(conn: sqlite3.Connection) -> int:
            meeting = self._live_meeting(conn, meeting_id)
            who = author or meeting["supervisor_id"]
            aid = conn.execute("INSERT INTO action (meeting_id, client_id, created_at, created_by) VALUES (?, ?, ?, ?)",
                               (meeting_id, client_id, _now(), who)).lastrowid
            self._append(conn, "action", aid, {"text": text, "owner": owner, "due": due, "status": "open"},
                         1, "created", who)
            return int(aid)

        return self._run(tx, write=True)

    def set_action_status(self, action_id: int, status: str, author: str) -> int:
        """Mark an action item ``open``, ``done`` or ``dropped`` (dropping is how an action is removed).

        Returns the version number after the change (unchanged when the status is the same).
        """
        status = _check_status(status)
        return self._change("action", action_id, author, "status", lambda cur, conn: {"status": status})

    def edit_action(self, action_id: int, author: str, *, text: str | None = None,
                    owner: str | None = None, due: Any = _UNCHANGED) -> int:
        """Change an action item's text, owner or due date (``due=None`` removes the due date).

        Returns the version number after the change.
        """
        changes: dict[str, Any] = {}
        if text is not None:
            changes["text"] = _check_text(text)
        if owner is not None:
            changes["owner"] = _check_label(owner, "owner")
        if due is not _UNCHANGED:
            changes["due"] = _check_date(due, "due", optional=True)
        return self._change("action", action_id, author, "edited", lambda cur, conn: changes)

    # -- follow-through: discussed items, reviews, practice goals ---------------------------

    def record_item(self, meeting_id: int, flag: str, evidence: str, *, client_id: str | None = None,
                    data_date: Any = None, author: str | None = None) -> int:
        """Record that an agenda item was discussed in a meeting; returns its ``item_id``.

        ``evidence`` is the item's evidence as it stood (kept, so the next meeting can say what
        changed since); ``data_date`` is the export's last session date at the time.
        """
        meeting_id = _check_id(meeting_id, "meeting_id")
        flag = _check_label(flag, "flag")
        evidence = _check_text(evidence, "evidence")
        client_id = _check_label(client_id, "client_id", optional=True)
        data_date = _check_date(data_date, "data_date", optional=True)
        author = None if author is None else _check_label(author, "author")

        def tx(conn: sqlite3.Connection) -> int:
            meeting = self._live_meeting(conn, meeting_id)
            who = author or meeting["supervisor_id"]
            same = conn.execute("SELECT item_id FROM item_current WHERE meeting_id = ? AND flag = ? AND "
                                "client_id IS ? AND deleted = 0", (meeting_id, flag, client_id)).fetchone()
            if same:  # discussed twice in one meeting: one record
                return int(same[0])
            iid = conn.execute("INSERT INTO item (meeting_id, client_id, flag, created_at, created_by) "
                               "VALUES (?, ?, ?, ?, ?)", (meeting_id, client_id, flag, _now(), who)).lastrowid
            self._append(conn, "item", iid, {"evidence": evidence, "data_date": data_date, "deleted": 0},
                         1, "created", who)
            return int(iid)

        return self._run(tx, write=True)

    def review(self, meeting_id: int, target_kind: str, target_id: int, status: str, *,
               comment: str | None = None, author: str | None = None) -> int:
        """Record in ``meeting_id`` what became of an earlier action, discussed item or goal.

        ``status`` is ``done``, ``carried_over`` (still to follow up next time) or ``dropped``.
        Reviewing an action ``done`` or ``dropped`` also sets the action's own status, in the same
        transaction; a second review of the same target in the same meeting is a new version of it.
        Returns the ``review_id``.
        """
        meeting_id = _check_id(meeting_id, "meeting_id")
        if target_kind not in ("action", "item", "goal"):
            raise NotesInputError(f"target_kind must be action, item or goal; got {target_kind!r}.",
                                  fix="Review an action item, a discussed agenda item or a practice goal.")
        target_id = _check_id(target_id, f"{target_kind}_id")
        if not isinstance(status, str) or status.strip().lower() not in REVIEW_STATUSES:
            raise NotesInputError(f"status must be one of {', '.join(REVIEW_STATUSES)}; got {status!r}.",
                                  fix="'done' = it happened, 'carried_over' = follow it up next time, 'dropped' = no longer needed.")
        status = status.strip().lower()
        comment = None if comment is None or not str(comment).strip() else _check_text(comment, "comment")
        author = None if author is None else _check_label(author, "author")

        def tx(conn: sqlite3.Connection) -> int:
            meeting = self._live_meeting(conn, meeting_id)
            who = author or meeting["supervisor_id"]
            target = self._current(conn, target_kind, target_id)
            if target_kind == "action" and status in ("done", "dropped") and target["status"] != status:
                self._append(conn, "action", target_id, {**target, "status": status}, int(target["version"]) + 1,
                             "status", who)
            if target_kind == "goal" and status == "dropped" and target["status"] != "dropped":
                self._append(conn, "goal", target_id, {**target, "status": "dropped"}, int(target["version"]) + 1,
                             "status", who)
            row = conn.execute("SELECT review_id FROM review WHERE meeting_id = ? AND target_kind = ? AND target_id = ?",
                               (meeting_id, target_kind, target_id)).fetchone()
            if row:
                cur = self._current(conn, "review", int(row[0]))
                if (cur["status"], cur["comment"]) != (status, comment):
                    self._append(conn, "review", int(row[0]), {"status": status, "comment": comment},
                                 int(cur["version"]) + 1, "edited", who)
                return int(row[0])
            rid = conn.execute("INSERT INTO review (meeting_id, target_kind, target_id, created_at, created_by) "
                               "VALUES (?, ?, ?, ?, ?)", (meeting_id, target_kind, target_id, _now(), who)).lastrowid
            self._append(conn, "review", rid, {"status": status, "comment": comment}, 1, "created", who)
            return int(rid)

        return self._run(tx, write=True)

    def add_goal(self, meeting_id: int, text: str, metric: str, *, direction: str, baseline_start: Any,
                 baseline_end: Any, review_date: Any, author: str | None = None) -> int:
        """Record a practice goal agreed in a meeting; returns its ``goal_id`` (status ``active``).

        ``metric`` names one metric of :data:`supervision.followup.GOAL_METRICS`; ``direction``
        (``increase`` or ``decrease``) says what counts as progress; the baseline window is compared
        with the time from the meeting to ``review_date``.
        """
        meeting_id = _check_id(meeting_id, "meeting_id")
        text = _check_text(text)
        metric = _check_label(metric, "metric")
        if direction not in ("increase", "decrease"):
            raise NotesInputError(f"direction must be increase or decrease; got {direction!r}.",
                                  fix="Say which way the metric should move for the goal to count as met.")
        start = _check_date(baseline_start, "baseline_start")
        end = _check_date(baseline_end, "baseline_end")
        review = _check_date(review_date, "review_date")
        if not start < end:
            raise NotesInputError(f"the baseline must start before it ends; got {start} to {end}.",
                                  fix="Give baseline_start before baseline_end.")
        author = None if author is None else _check_label(author, "author")

        def tx(conn: sqlite3.Connection) -> int:
            meeting = self._live_meeting(conn, meeting_id)
            if not review > meeting["meeting_date"]:
                raise self._err(f"the review date {review} must come after the meeting ({meeting['meeting_date']}).",
                                "Give a review date after the meeting; nothing was saved.", NotesInputError)
            who = author or meeting["supervisor_id"]
            gid = conn.execute("INSERT INTO goal (meeting_id, created_at, created_by) VALUES (?, ?, ?)",
                               (meeting_id, _now(), who)).lastrowid
            self._append(conn, "goal", gid, {"text": text, "metric": metric, "direction": direction,
                                             "baseline_start": start, "baseline_end": end, "review_date": review,
                                             "status": "active"}, 1, "created", who)
            return int(gid)

        return self._run(tx, write=True)

    def set_goal_status(self, goal_id: int, status: str, author: str) -> int:
        """Mark a practice goal ``active``, ``achieved``, ``not_achieved`` or ``dropped``."""
        if not isinstance(status, str) or status.strip().lower() not in GOAL_STATUSES:
            raise NotesInputError(f"status must be one of {', '.join(GOAL_STATUSES)}; got {status!r}.",
                                  fix="Use achieved / not_achieved after the review, dropped to stop following it.")
        return self._change("goal", goal_id, author, "status", lambda cur, conn: {"status": status.strip().lower()})

    def items(self, supervisee_id: str | None = None, meeting_id: int | None = None) -> "pd.DataFrame":
        """Discussed agenda items (not deleted), oldest meeting first; with the latest review, if any.

        Returns
        -------
        DataFrame
            ``item_id, meeting_id, meeting_date, supervisee_id, client_id, flag, evidence, data_date,
            review_status`` (``done``, ``carried_over``, ``dropped`` or empty when never reviewed),
            ``reviewed_on`` (date of that review's meeting).
        """
        where, args = self._filters("i", supervisee_id, None, meeting_id)
        sql = f"""
            SELECT i.item_id, i.meeting_id, m.meeting_date, m.supervisee_id, i.client_id, i.flag, i.evidence,
                   i.data_date, r.status, rm.meeting_date
            FROM item_current i JOIN meeting_current m ON m.meeting_id = i.meeting_id
            LEFT JOIN review_current r ON r.review_id = (
                SELECT r2.review_id FROM review r2 JOIN meeting_current m2 ON m2.meeting_id = r2.meeting_id
                WHERE r2.target_kind = 'item' AND r2.target_id = i.item_id AND m2.deleted = 0
                ORDER BY m2.meeting_date DESC, r2.review_id DESC LIMIT 1)
            LEFT JOIN meeting_current rm ON rm.meeting_id = r.meeting_id
            WHERE {' AND '.join(where)} AND i.deleted = 0 AND m.deleted = 0
            ORDER BY m.meeting_date, i.item_id"""
        rows = self._run(lambda conn: conn.execute(sql, args).fetchall())
        return _frame(rows, _ITEM_COLUMNS)

    def goals(self, supervisee_id: str | None = None, *, status: str | None = None) -> "pd.DataFrame":
        """Practice goals, newest first: ``goal_id, meeting_id, meeting_date, supervisor_id, supervisee_id, text,
        metric, direction, baseline_start, baseline_end, review_date, status``."""
        where, args = self._filters("g", supervisee_id, None, None)
        if status is not None:
            where.append("g.status = ?")
            args.append(status)
        sql = f"""
            SELECT g.goal_id, g.meeting_id, m.meeting_date, m.supervisor_id, m.supervisee_id, g.text, g.metric,
                   g.direction, g.baseline_start, g.baseline_end, g.review_date, g.status
            FROM goal_current g JOIN meeting_current m ON m.meeting_id = g.meeting_id
            WHERE {' AND '.join(where)} AND m.deleted = 0
            ORDER BY m.meeting_date DESC, g.goal_id DESC"""
        rows = self._run(lambda conn: conn.execute(sql, args).fetchall())
        return _frame(rows, _GOAL_COLUMNS)

    def reviews(self, supervisee_id: str | None = None, meeting_id: int | None = None) -> "pd.DataFrame":
        """Reviews (latest version each): ``review_id, meeting_id, meeting_date, target_kind, target_id, status, comment``."""
        where, args = self._filters("r", supervisee_id, None, meeting_id)
        sql = f"""
            SELECT r.review_id, r.meeting_id, m.meeting_date, r.target_kind, r.target_id, r.status, r.comment
            FROM review_current r JOIN meeting_current m ON m.meeting_id = r.meeting_id
            WHERE {' AND '.join(where)} AND m.deleted = 0 ORDER BY m.meeting_date, r.review_id"""
        rows = self._run(lambda conn: conn.execute(sql, args).fetchall())
        return _frame(rows, _REVIEW_COLUMNS)

    def to_follow_up(self, supervisee_id: str, meeting_id: int | None = None) -> "pd.DataFrame":
        """What a meeting with ``supervisee_id`` starts from: the earlier meetings' actions, discussed
        items and active goals that are not closed yet.

        An action is still to follow up while its status is ``open``; a discussed item while it was
        never reviewed as ``done`` or ``dropped`` in a later meeting (``carried_over`` keeps it);
        a goal while it is ``active``. Only meetings before ``meeting_id`` (when given) count, and the
        review made *in* ``meeting_id`` is shown as ``decided``.

        Returns
        -------
        DataFrame
            ``kind`` (``action``, ``item``, ``goal``), ``id``, ``meeting_id``, ``meeting_date``,
            ``client_id``, ``what`` (the action's text, the item's flag or the goal's text), ``detail``
            (owner and due date, the item's evidence then, or the goal's metric), ``decided`` (this
            meeting's review status, empty when not yet decided).
        """
        import pandas as pd

        supervisee_id = _check_label(supervisee_id, "supervisee_id")
        meetings = self.meetings(supervisee_id)
        if meeting_id is not None:
            meeting_id = _check_id(meeting_id, "meeting_id")
            this = meetings[meetings["meeting_id"] == meeting_id]
            if len(this):
                d = this["meeting_date"].iloc[0]
                meetings = meetings[(meetings["meeting_date"] < d)
                                    | ((meetings["meeting_date"] == d) & (meetings["meeting_id"] < meeting_id))]
        earlier = set(meetings["meeting_id"])
        decided = {}
        if meeting_id is not None:
            rv = self.reviews(meeting_id=meeting_id)
            decided = {(k, int(t)): st for k, t, st in zip(rv["target_kind"], rv["target_id"], rv["status"])}
        rows = []
        acts = self.actions(supervisee_id)
        for a in acts.itertuples():
            if a.meeting_id in earlier and (a.status == "open" or ("action", a.action_id) in decided):
                due = "" if pd.isna(a.due) else f", due {a.due:%d %b %Y}"
                rows.append(("action", a.action_id, a.meeting_id, a.meeting_date, a.client_id, a.text,
                             f"owner {a.owner}{due}", decided.get(("action", a.action_id), "")))
        its = self.items(supervisee_id)
        for i in its.itertuples():
            closed = i.review_status in ("done", "dropped") and ("item", i.item_id) not in decided
            if i.meeting_id in earlier and not closed:
                rows.append(("item", i.item_id, i.meeting_id, i.meeting_date, i.client_id, i.flag, i.evidence,
                             decided.get(("item", i.item_id), "")))
        gs = self.goals(supervisee_id)
        for g in gs.itertuples():
            if g.meeting_id in earlier and (g.status == "active" or ("goal", g.goal_id) in decided):
                rows.append(("goal", g.goal_id, g.meeting_id, g.meeting_date, None, g.text,
                             f"{g.metric} ({g.direction}); review on {g.review_date:%d %b %Y}",
                             decided.get(("goal", g.goal_id), "")))
        cols = ["kind", "id", "meeting_id", "meeting_date", "client_id", "what", "detail", "decided"]
        out = pd.DataFrame.from_records(rows, columns=cols)
        if len(out):
            out["client_id"] = [None if c is None or c != c or str(c) in ("", "None", "nan", "<NA>") else c
                                for c in out["client_id"]]
        return out

    # -- reading ----------------------------------------------------------------------------

    def meetings(self, supervisee_id: str | None = None, *, supervisor_id: str | None = None,
                 include_deleted: bool = False) -> "pd.DataFrame":
        """The meetings, newest first.

        Returns
        -------
        DataFrame
            One row per meeting, columns:

            - ``meeting_id`` (int)
            - ``meeting_date`` (datetime64, a calendar date)
            - ``supervisor_id``, ``supervisee_id`` (str)
            - ``n_notes`` (int): notes of the meeting that are not deleted
            - ``n_actions`` (int): its action items that are not dropped; ``n_open_actions`` (int)
            - ``deleted`` (bool)
            - ``version`` (int): number of versions recorded (1 = never changed)
            - ``created_at``, ``updated_at`` (datetime64, UTC); ``created_by``, ``updated_by`` (str)
        """
        where, args = ["1 = 1"], []
        if supervisee_id is not None:
            where.append("m.supervisee_id = ?")
            args.append(_check_label(supervisee_id, "supervisee_id"))
        if supervisor_id is not None:
            where.append("m.supervisor_id = ?")
            args.append(_check_label(supervisor_id, "supervisor_id"))
        if not include_deleted:
            where.append("m.deleted = 0")
        sql = f"""
            SELECT m.meeting_id, m.meeting_date, m.supervisor_id, m.supervisee_id,
                   (SELECT count(*) FROM note_current n WHERE n.meeting_id = m.meeting_id AND n.deleted = 0),
                   (SELECT count(*) FROM action_current a WHERE a.meeting_id = m.meeting_id
                        AND a.status != 'dropped'),
                   (SELECT count(*) FROM action_current a WHERE a.meeting_id = m.meeting_id
                        AND a.status = 'open'),
                   m.deleted, m.version, m.created_at, m.created_by, m.updated_at, m.updated_by
            FROM meeting_current m WHERE {' AND '.join(where)}
            ORDER BY m.meeting_date DESC, m.meeting_id DESC"""
        rows = self._run(lambda conn: conn.execute(sql, args).fetchall())
        return _frame(rows, _MEETING_COLUMNS)

    def notes(self, supervisee_id: str | None = None, client_id: str | None = None,
              meeting_id: int | None = None, *, include_deleted: bool = False) -> "pd.DataFrame":
        """The latest version of each note, oldest meeting first.

        Filters combine (AND). ``supervisee_id`` matches through the note's meeting, so a note
        about a client written outside any meeting is found by ``client_id``, not ``supervisee_id``.

        Returns
        -------
        DataFrame
            One row per note, columns:

            - ``note_id`` (int)
            - ``meeting_id`` (Int64, missing for a note outside a meeting)
            - ``meeting_date`` (datetime64), ``supervisor_id``, ``supervisee_id`` (str): of the meeting
            - ``client_id`` (str, missing for a general note)
            - ``scope`` (str): ``general`` (about the supervisee's work as a whole) or ``client``
            - ``text`` (str): the latest text
            - ``deleted`` (bool): only True with ``include_deleted=True``
            - ``version`` (int): number of versions recorded (1 = never changed)
            - ``created_at``, ``updated_at`` (datetime64, UTC); ``created_by``, ``updated_by`` (str)
        """
        where, args = self._filters("n", supervisee_id, client_id, meeting_id)
        if not include_deleted:
            where.append("n.deleted = 0")
        sql = f"""
            SELECT n.note_id, n.meeting_id, m.meeting_date, m.supervisor_id, m.supervisee_id, n.client_id,
                   CASE WHEN n.client_id IS NULL THEN 'general' ELSE 'client' END,
                   n.text, n.deleted, n.version, n.created_at, n.created_by, n.updated_at, n.updated_by
            FROM note_current n LEFT JOIN meeting_current m ON m.meeting_id = n.meeting_id
            WHERE {' AND '.join(where)}
            ORDER BY m.meeting_date IS NULL, m.meeting_date, n.created_at, n.note_id"""
        rows = self._run(lambda conn: conn.execute(sql, args).fetchall())
        return _frame(rows, _NOTE_COLUMNS)

    def actions(self, supervisee_id: str | None = None, client_id: str | None = None,
                meeting_id: int | None = None, *, owner: str | None = None,
                status: str | Iterable[str] | None = None) -> "pd.DataFrame":
        """Action items: open ones first (earliest due date first, undated last), then done, then dropped.

        Parameters
        ----------
        supervisee_id, client_id, meeting_id, owner : optional
            Filters (combined with AND); ``supervisee_id`` matches through the meeting.
        status : str or list of str, optional
            Only these statuses (``open``, ``done``, ``dropped``); default all.

        Returns
        -------
        DataFrame
            One row per action item, columns:

            - ``action_id`` (int), ``meeting_id`` (int)
            - ``meeting_date`` (datetime64), ``supervisor_id``, ``supervisee_id`` (str): of the meeting
            - ``client_id`` (str, missing when not about one client)
            - ``text`` (str), ``owner`` (str)
            - ``due`` (datetime64, a calendar date; NaT when none)
            - ``status`` (str): ``open``, ``done`` or ``dropped``
            - ``overdue`` (bool): open and due before today (local date)
            - ``version`` (int): number of versions recorded (1 = never changed)
            - ``created_at``, ``updated_at`` (datetime64, UTC); ``created_by``, ``updated_by`` (str)
        """
        where, args = self._filters("a", supervisee_id, client_id, meeting_id)
        if owner is not None:
            where.append("a.owner = ?")
            args.append(_check_label(owner, "owner"))
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            wanted = [_check_status(s) for s in wanted]
            where.append(f"a.status IN ({', '.join('?' * len(wanted))})" if wanted else "0")
            args.extend(wanted)
        sql = f"""
            SELECT a.action_id, a.meeting_id, m.meeting_date, m.supervisor_id, m.supervisee_id, a.client_id,
                   a.text, a.owner, a.due, a.status, coalesce(a.status = 'open' AND a.due < ?, 0), a.version,
                   a.created_at, a.created_by, a.updated_at, a.updated_by
            FROM action_current a JOIN meeting_current m ON m.meeting_id = a.meeting_id
            WHERE {' AND '.join(where)}
            ORDER BY CASE a.status WHEN 'open' THEN 0 WHEN 'done' THEN 1 ELSE 2 END,
                     a.due IS NULL, a.due, m.meeting_date, a.action_id"""
        today = _today().isoformat()
        rows = self._run(lambda conn: conn.execute(sql, [today, *args]).fetchall())
        return _frame(rows, _ACTION_COLUMNS)

    def history(self, kind: str, id: int) -> "pd.DataFrame":  # noqa: A002 (as in the column names)
        """Every version of one meeting, note or action item, oldest first.

        Parameters
        ----------
        kind : {'meeting', 'note', 'action'}
        id : int
            Its ``meeting_id``, ``note_id`` or ``action_id``.

        Returns
        -------
        DataFrame
            One row per version, columns ``kind`` (str), ``id`` (int), ``version`` (int, 1 = as
            created), ``change`` (str: ``created``, ``edited``, ``deleted``, ``restored`` or
            ``status``), ``recorded_at`` (datetime64, UTC), ``author`` (str), then the recorded fields:

            - meeting: ``meeting_date`` (datetime64), ``supervisor_id``, ``supervisee_id`` (str),
              ``deleted`` (bool)
            - note: ``text`` (str), ``deleted`` (bool)
            - action: ``text``, ``owner`` (str), ``due`` (datetime64), ``status`` (str)
        """
        if kind not in KINDS:
            raise NotesInputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.",
                                  fix="For example history('note', 12).")
        record_id = _check_id(id, f"{kind}_id")
        _, vtable, idcol, fields = _KIND_TABLES[kind]

        def tx(conn: sqlite3.Connection) -> list:
            self._current(conn, kind, record_id)  # unknown id -> clear error
            return conn.execute(
                f"SELECT ?, {idcol}, version, change, recorded_at, author, {', '.join(fields)} "
                f"FROM {vtable} WHERE {idcol} = ? ORDER BY version", (kind, record_id)).fetchall()

        columns = [("kind", "str"), ("id", "int"), ("version", "int"), ("change", "str"),
                   ("recorded_at", "utc"), ("author", "str")]
        columns += [(f, _FIELD_TYPES[f]) for f in fields]
        return _frame(self._run(tx), columns)

    def meeting_markdown(self, meeting_id: int) -> str:
        """The record of one meeting as Markdown: date, who, general notes, notes per client and
        action items with owner, due date and status (deleted notes are left out; dropped actions
        are shown struck through). Contains the note text: treat the result as clinical notes."""
        meeting_id = _check_id(meeting_id, "meeting_id")

        def tx(conn: sqlite3.Connection) -> tuple:
            self._current(conn, "meeting", meeting_id)
            meeting = conn.execute(
                "SELECT meeting_date, supervisor_id, supervisee_id, deleted FROM meeting_current "
                "WHERE meeting_id = ?", (meeting_id,)).fetchone()
            notes = conn.execute(
                "SELECT client_id, text, updated_by, updated_at, version FROM note_current "
                "WHERE meeting_id = ? AND deleted = 0 ORDER BY created_at, note_id", (meeting_id,)).fetchall()
            actions = conn.execute(
                "SELECT text, owner, due, status, client_id FROM action_current WHERE meeting_id = ? "
                "ORDER BY CASE status WHEN 'open' THEN 0 WHEN 'done' THEN 1 ELSE 2 END, "
                "due IS NULL, due, action_id", (meeting_id,)).fetchall()
            return meeting, notes, actions

        (mdate, supervisor, supervisee, deleted), notes, actions = self._run(tx)
        today = _today().isoformat()
        out = [f"# Supervision meeting, {mdate}", ""]
        if deleted:
            out += ["> This meeting was marked deleted.", ""]
        out += [f"- **Supervisor:** {supervisor}", f"- **Supervisee:** {supervisee}",
                f"- **Meeting id:** {meeting_id}", f"- **Exported:** {_now()[:16].replace('T', ' ')} UTC", ""]

        def note_item(text: str, who: str, when: str, version: int) -> str:
            changed = f", version {version}" if version > 1 else ""
            return f"- {_indent_continuation(text)}\n  *({who}, {when[:16].replace('T', ' ')} UTC{changed})*"

        general = [n for n in notes if n[0] is None]
        out += ["## General notes", ""]
        out += [note_item(*n[1:]) for n in general] or ["_None._"]
        out += ["", "## Notes per client", ""]
        clients = sorted({n[0] for n in notes if n[0] is not None})
        if not clients:
            out += ["_None._", ""]
        for client in clients:
            out += [f"### Client {client}", ""]
            out += [note_item(*n[1:]) for n in notes if n[0] == client]
            out += [""]
        out += ["## Action items", ""]
        if not actions:
            out += ["_None._"]
        for text, owner, due, status, client in actions:
            due_txt = "no due date" if due is None else f"due: {due}" + (
                " (overdue)" if status == "open" and due < today else "")
            body = f"**{status}**: {_indent_continuation(text)} — owner: {owner}; {due_txt}"
            body += f"; client: {client}" if client else ""
            out.append(f"- ~~{body}~~" if status == "dropped" else f"- {body}")
        return "\n".join(out).rstrip() + "\n"

    def _filters(self, alias: str, supervisee_id: Any, client_id: Any, meeting_id: Any) -> tuple[list, list]:
        where, args = ["1 = 1"], []
        if supervisee_id is not None:
            where.append("m.supervisee_id = ?")
            args.append(_check_label(supervisee_id, "supervisee_id"))
        if client_id is not None:
            where.append(f"{alias}.client_id = ?")
            args.append(_check_label(client_id, "client_id"))
        if meeting_id is not None:
            where.append(f"{alias}.meeting_id = ?")
            args.append(_check_id(meeting_id, "meeting_id"))
        return where, args

    # -- maintenance ------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """Check the file and its history; ``'ok'`` when all is well, otherwise the problems found,
        one per line.

        Runs SQLite's ``PRAGMA integrity_check`` and foreign-key check, checks that every
        append-only trigger is still in place, and recomputes the SHA-256 chain over every version
        (each link covers the previous one): a version changed, removed, replaced or added by hand
        outside this module breaks the chain from that version on, and is named here.
        """
        def tx(conn: sqlite3.Connection) -> str:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall() if r[0] != "ok"]
            problems += [f"foreign key: {r}" for r in conn.execute("PRAGMA foreign_key_check").fetchall()]
            triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            problems += [f"protection removed: trigger {t} is missing (history could have been rewritten)"
                         for t in sorted(_REQUIRED_TRIGGERS - triggers)]
            problems += self._chain_problems(conn)
            return "\n".join(problems) or "ok"

        return self._run(tx)

    @staticmethod
    def _chain_problems(conn: sqlite3.Connection) -> list[str]:
        """Versions whose stored content no longer matches the hash chain, and versions not in it."""
        problems, prev = [], _GENESIS
        chained = set()
        links = [row for table in _chain_tables(conn) for row in conn.execute(
            f"SELECT seq, kind, record_id, version, digest FROM {table} ORDER BY seq").fetchall()]
        for seq, kind, record_id, version, digest in links:
            chained.add((kind, record_id, version))
            got = _version_digest(conn, kind, record_id, version, prev)
            if got is None:
                problems.append(f"tampering: {kind} {record_id} version {version} is in the hash chain but no longer "
                                "in the database (removed by hand)")
            elif got != digest:
                problems.append(f"tampering: {kind} {record_id} version {version} does not match the hash chain "
                                f"(link {seq}): it was changed after it was written, or the chain was")
            prev = digest
        for kind, (_, vtable, idcol, _) in _KIND_TABLES.items():
            for record_id, version in conn.execute(f"SELECT {idcol}, version FROM {vtable}").fetchall():
                if (kind, record_id, version) not in chained:
                    problems.append(f"tampering: {kind} {record_id} version {version} is not in the hash chain "
                                    "(added by hand, outside the workbook)")
        return problems

    def backup(self, target: str | Path) -> Path:
        """Copy the whole database, consistently, to ``target`` (a new file) and return its path.

        Safe while others are writing (SQLite's online backup). The copy holds clinical notes:
        keep it as safe as the original.
        """
        target = Path(os.path.expanduser(str(target))).absolute()
        if target.exists():
            raise self._err(f"the backup target '{target}' already exists.",
                            "Choose a new file name; an existing file is never overwritten.", NotesInputError)
        with self._lock:
            if self._conn is None:
                raise NotesError(f"Notes database '{self.path}' is closed.", path=self.path,
                                 fix="Open it again with NotesStore(path).")
            try:
                dest = sqlite3.connect(target)
                try:
                    self._conn.backup(dest)
                finally:
                    dest.close()
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
        return target


def _today() -> date:
    return date.today()


# --------------------------------------------------------------------------------------------
# Output frames

_FIELD_TYPES = {"meeting_date": "date", "supervisor_id": "str", "supervisee_id": "str", "deleted": "bool",
                "text": "str", "owner": "str", "due": "date", "status": "str", "evidence": "str", "data_date": "date",
                "comment": "str", "metric": "str", "direction": "str", "baseline_start": "date",
                "baseline_end": "date", "review_date": "date"}
_AUDIT = [("version", "int"), ("created_at", "utc"), ("created_by", "str"), ("updated_at", "utc"),
          ("updated_by", "str")]
_MEETING_COLUMNS = [("meeting_id", "int"), ("meeting_date", "date"), ("supervisor_id", "str"),
                    ("supervisee_id", "str"), ("n_notes", "int"), ("n_actions", "int"),
                    ("n_open_actions", "int"), ("deleted", "bool"), ("version", "int"),
                    ("created_at", "utc"), ("created_by", "str"), ("updated_at", "utc"), ("updated_by", "str")]
_NOTE_COLUMNS = [("note_id", "int"), ("meeting_id", "Int64"), ("meeting_date", "date"), ("supervisor_id", "str"),
                 ("supervisee_id", "str"), ("client_id", "str"), ("scope", "str"), ("text", "str"),
                 ("deleted", "bool"), *_AUDIT]
_ACTION_COLUMNS = [("action_id", "int"), ("meeting_id", "int"), ("meeting_date", "date"), ("supervisor_id", "str"),
                   ("supervisee_id", "str"), ("client_id", "str"), ("text", "str"), ("owner", "str"),
                   ("due", "date"), ("status", "str"), ("overdue", "bool"), *_AUDIT]


_ITEM_COLUMNS = [("item_id", "int"), ("meeting_id", "int"), ("meeting_date", "date"), ("supervisee_id", "str"),
                 ("client_id", "str"), ("flag", "str"), ("evidence", "str"), ("data_date", "date"),
                 ("review_status", "str"), ("reviewed_on", "date")]
_GOAL_COLUMNS = [("goal_id", "int"), ("meeting_id", "int"), ("meeting_date", "date"), ("supervisor_id", "str"),
                 ("supervisee_id", "str"), ("text", "str"), ("metric", "str"), ("direction", "str"),
                 ("baseline_start", "date"), ("baseline_end", "date"), ("review_date", "date"), ("status", "str")]
_REVIEW_COLUMNS = [("review_id", "int"), ("meeting_id", "int"), ("meeting_date", "date"), ("target_kind", "str"),
                   ("target_id", "int"), ("status", "str"), ("comment", "str")]


def _frame(rows: list, columns: list[tuple[str, str]]) -> "pd.DataFrame":
    import pandas as pd

    names = [c for c, _ in columns]
    df = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame({c: [] for c in names})
    for name, kind in columns:
        col = df[name]
        if kind == "int":
            df[name] = col.astype("int64")
        elif kind == "Int64":
            df[name] = pd.array(col.tolist(), dtype="Int64")
        elif kind == "bool":
            df[name] = col.astype("bool")
        elif kind == "date":
            df[name] = pd.to_datetime(col, format="%Y-%m-%d").astype("datetime64[us]")
        elif kind == "utc":
            df[name] = pd.to_datetime(col, format="ISO8601", utc=True).astype("datetime64[us, UTC]")
        else:
            df[name] = col.astype("str")
    return df
