"""A cache of the service-wide metric tables on disk, shared by pages, supervisees and kernels.

Computing every metric table of a service takes seconds at scale (about 7 s at a million
sessions), and Voila starts a new kernel for every visit, so an in-memory cache is not enough: the
tables are stored as Parquet files, one folder per entry, under

- ``$SUPERVISION_CACHE_DIR`` when set (``off`` turns the cache off), else
- ``$XDG_CACHE_HOME/supervision`` (``~/.cache/supervision`` by default),

never inside the export's folder or the workbook's own folder (the cache is then not used).

An entry is found by a key (:func:`cache_key`): a hash of

- the export's files (path, size and modification time of each data file of the folder, or of the
  one workbook file), so changing, adding or removing a file gives another key;
- the settings the tables depend on (their canonical JSON; later also the metric rules built from
  them, which :func:`cache_key` takes as ``rules``);
- the workbook's own code (the size and modification time of its Python files), so an upgrade
  never reads tables of an older definition;
- the row counts of the loaded tables.

An entry is stored by a background thread (the page does not wait for it; :func:`wait` does).
Writers never leave a half-written entry: an entry is written into a temporary folder and
renamed into place in one step (two kernels writing the same entry: the first rename wins, the
other's copy is dropped). An entry that cannot be read (damaged, deleted half-way, another
version's files) is ignored, removed and computed again; nothing here raises to the user. Only the
few most recently used entries are kept (:data:`KEEP`).

A caseload that is not a whole export read from disk (a self-review scope, a folder published for
one clinician, an unusable export, one whose source is not a path) is never cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import pandas as pd

ENV_VAR = "SUPERVISION_CACHE_DIR"
FORMAT = 1  # bump when the layout of an entry changes
KEEP = 6  # entries kept (most recently used); a service's tables at 1M sessions take ~200 MB; an export with
# reports made also has its suppressed adaptation gaps (a small entry), hence two entries per export
MANIFEST = "manifest.json"
_NOT_DATA = (".sqlite", ".sqlite3", ".db", "-journal", "-wal", "-shm", ".md", ".lock", ".tmp")
_PACKAGE = Path(__file__).resolve().parent

#: what the last :func:`load_or_compute` did: ``hit``, ``miss`` (computed and stored), ``off`` or ``broken``
last_event: str = ""


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is turned off."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env.lower() in ("off", "0", "no", "false"):
        return None
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "supervision"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _data_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.iterdir()
                  if p.is_file() and not p.name.startswith(".") and not p.name.endswith(_NOT_DATA))


def export_fingerprint(source) -> list[list] | None:
    """``[name, size, mtime_ns]`` of each data file of the export at ``source``; None if it cannot be read."""
    try:
        src = Path(source)
        return [[p.name, (st := p.stat()).st_size, st.st_mtime_ns] for p in _data_files(src)] + [[str(src.resolve())]]
    except (OSError, ValueError, TypeError):
        return None


def _code_fingerprint() -> str:
    h = hashlib.sha256()
    for p in sorted(_PACKAGE.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(_PACKAGE)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _canonical(obj) -> str:
    if obj is None:
        return "null"
    if hasattr(obj, "as_dict"):
        obj = obj.as_dict()
    elif hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        obj = asdict(obj)
    return json.dumps(obj, sort_keys=True, default=repr, separators=(",", ":"))


def cache_key(caseload, rules=None) -> str | None:
    """The key of ``caseload``'s service tables (see the module docstring), or None when not cacheable.

    ``rules`` (optional) is anything the tables depend on beyond the settings (e.g. the metric
    rules built from them): an object with ``as_dict()``, a dataclass or plain JSON data.
    """
    if caseload is None or getattr(caseload, "scope", None) is not None or not getattr(caseload, "usable", False):
        return None
    if getattr(caseload, "benchmarks", None) is not None:  # a clinician's published folder
        return None
    files = export_fingerprint(caseload.source)
    if not files:
        return None
    doc = {"format": FORMAT, "export": files, "settings": _canonical(caseload.settings), "rules": _canonical(rules),
           "code": _code_fingerprint(),
           "rows": [len(caseload.clients), len(caseload.sessions), len(caseload.clinicians)]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def _usable_dir(caseload) -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    src = Path(caseload.source)
    export_folder = src if src.is_dir() else src.parent
    if _inside(root, export_folder) or _inside(root, _PACKAGE.parent):
        return None  # never inside the export or the workbook's folder
    return root


def read_entry(folder: Path) -> dict[str, pd.DataFrame]:
    """The tables of one entry (raises on anything missing or unreadable)."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValueError("another format")
    out = {}
    for name in manifest["tables"]:
        frame = pd.read_parquet(folder / f"{name}.parquet")
        frame.attrs = manifest["attrs"].get(name, {})
        out[name] = frame
    return out


def write_entry(root: Path, key: str, tables: dict[str, pd.DataFrame]) -> Path | None:
    """Store ``tables`` as the entry ``key`` (temporary folder, then one rename); None when it could not be."""
    final = root / key
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)  # the service's data: the user's alone
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        attrs = {}
        for name, frame in tables.items():
            frame.to_parquet(tmp / f"{name}.parquet")
            attrs[name] = json.loads(json.dumps(frame.attrs, default=str))
        (tmp / MANIFEST).write_text(json.dumps({"format": FORMAT, "tables": list(tables), "attrs": attrs}), encoding="utf-8")
        try:
            os.rename(tmp, final)  # atomic: readers see the whole entry or none
        except OSError:
            if not (final / MANIFEST).exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another kernel stored it first
        _prune(root, keep=final)
        return final
    except Exception:  # noqa: BLE001 - a full disk or read-only home must not stop the page
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        return None


def _mtime(p: Path) -> float | None:
    try:
        return p.stat().st_mtime
    except OSError:  # renamed or removed by another writer meanwhile
        return None


def _prune(root: Path, keep: Path) -> None:
    entries = [(t, p) for p in root.iterdir() if not p.name.startswith(".") and p != keep
               and (t := _mtime(p)) is not None and p.is_dir()]
    entries.sort(reverse=True)
    for _, old in entries[KEEP - 1:]:
        shutil.rmtree(old, ignore_errors=True)
    cutoff = time.time() - 3600  # temporary folders of writers that died an hour ago or more
    for p in root.iterdir():
        t = _mtime(p)
        if p.name.startswith(".") and t is not None and t < cutoff:
            shutil.rmtree(p, ignore_errors=True)


def load_or_compute(caseload, compute: Callable[[], dict[str, pd.DataFrame]], rules=None) -> dict[str, pd.DataFrame]:
    """The service tables from the cache when stored for this export and these settings, else ``compute()`` (stored)."""
    global last_event
    key = cache_key(caseload, rules)
    root = _usable_dir(caseload) if key else None
    if root is None:
        last_event = "off"
        return compute()
    wait(key)  # this process is storing it right now: read it once stored
    entry, event = root / key, "miss"
    if entry.is_dir():
        try:
            tables = read_entry(entry)
            try:
                os.utime(entry)  # most recently used
            except OSError:
                pass
            last_event = "hit"
            return tables
        except Exception:  # noqa: BLE001 - a damaged entry is computed again
            shutil.rmtree(entry, ignore_errors=True)
            event = "broken"
    tables = compute()
    # stored by a background thread while the page goes on (Arrow writes Parquet outside the GIL); the
    # thread is not a daemon, so a command's process finishes writing before it exits. Shallow copies:
    # with copy-on-write, a page changing a table never changes what is being written.
    snapshot = {name: frame.copy(deep=False) for name, frame in tables.items()}
    for name, frame in tables.items():
        snapshot[name].attrs = dict(frame.attrs)
    writer = threading.Thread(target=_write_quietly, args=(root, key, snapshot), name=f"table-cache-{key[:8]}")
    _writers[key] = writer
    if _deferring:
        _pending.append(writer)  # started when the page is built (deferred_writes)
    else:
        writer.start()
    last_event = event
    return tables


_writers: dict[str, threading.Thread] = {}
_pending: list[threading.Thread] = []
_deferring = 0


@contextlib.contextmanager
def deferred_writes():
    """Entries computed inside the block are stored once it ends, not while it runs.

    A page computing its tables on a cold cache is shown first and stored afterwards: writing
    Parquet beside the page's own work (the conversion holds the interpreter) only delays what the
    user waits for. Asking for the same entry again inside the block stores it first (:func:`wait`).
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring:
            _start_pending()


def _start_pending() -> None:
    while _pending:
        t = _pending.pop(0)
        if t.ident is None:  # not started yet
            t.start()


def _write_quietly(root: Path, key: str, tables: dict) -> None:
    try:  # Linux: this thread yields the cores to the page being built (and to other users' work)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
    except (AttributeError, OSError):
        pass
    write_entry(root, key, tables)  # never raises: a cache that cannot be written is just not used


def wait(key: str | None = None) -> None:
    """Wait until this process's entries (or the one of ``key``) are stored."""
    for k, t in list(_writers.items()):
        if key is None or k == key:
            if t.ident is None:  # deferred and not started: store it now
                if t in _pending:
                    _pending.remove(t)
                t.start()
            t.join()
            _writers.pop(k, None)
