#!/usr/bin/env python3
"""Place a published export where only the right accounts can read it (run as root).

    python deploy/place_data.py PUBLISHED --accounts accounts.csv --root /srv/supervision
        [--analyst root] [--export EXPORT] [--group-prefix swd_]

PUBLISHED is the output of ``supervision publish EXPORT --out PUBLISHED``. ``accounts.csv`` maps
the export's pseudonymous ids to login names (the service's single sign-on names, or local
accounts): columns ``role`` (``clinician`` or ``supervisor``), ``id`` (the ``clinician_id`` or
``supervisor_id`` of the export) and ``username``. The ``supervisor_id`` column of the export's
clinicians table (in ``PUBLISHED/publish_index.csv``) decides who supervises whom.

What it makes (the operating system enforces every line; nothing depends on a setting):

    ROOT/                         root:root     0711  (enter, not list)
      clinicians/<folder>/        root:<g>      0750  files 0640; g = {the clinician, their supervisor}
      supervisors/<supervisor>/   root:<g>      0750  the supervisees' tables in one folder; g = {the supervisor}
      notes/<username>/           <user>:<user> 0700  the supervisor's private notes database
      hub_accounts.json           root:root     0600  read by the hub (jupyterhub_config.py)

One group per folder (``<group-prefix><folder>``), so two clinicians of the same supervisor
cannot read each other's folders; membership is reset on every run (a change of supervisor
takes effect at the next placement and the user's next server start). PUBLISHED (and EXPORT when
given) are made readable by the analyst account only (owner analyst, mode 0700 / files 0600).
Re-running replaces the folders with the newly published ones.
"""

from __future__ import annotations

import argparse
import csv
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

INDEX = "publish_index.csv"
TABLES = ("clients", "sessions", "clinicians")
_GROUP_OK = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class PlaceError(Exception):
    pass


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def _group_name(prefix: str, folder: str) -> str:
    name = prefix + re.sub(r"[^a-z0-9_-]", "_", folder.lower())
    if not _GROUP_OK.match(name):
        raise PlaceError(f"Group name {name!r} (for folder {folder!r}) is not a valid Linux group name of at most "
                         "32 characters: use a shorter --group-prefix.")
    return name


def _ensure_group(name: str, members: list[str]) -> int:
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        subprocess.run(["groupadd", name], check=True)
        gid = grp.getgrnam(name).gr_gid
    subprocess.run(["gpasswd", "-M", ",".join(members), name], check=True, stdout=subprocess.DEVNULL)
    return gid


def _lock_tree(path: Path, uid: int, gid: int, dir_mode: int, file_mode: int) -> None:
    for base, dirs, files in os.walk(path):
        os.chown(base, uid, gid)
        os.chmod(base, dir_mode)
        for f in files:
            p = os.path.join(base, f)
            os.chown(p, uid, gid, follow_symlinks=False)
            if not os.path.islink(p):
                os.chmod(p, file_mode)


def _replace(src_fill, dest: Path) -> None:
    """Fill a new folder next to ``dest`` with ``src_fill(folder)``, then swap it in."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".placing-", dir=dest.parent))
    os.chmod(tmp, 0o700)
    try:
        src_fill(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _inside(parent: Path, name: str) -> Path:
    p = (parent / name).resolve()
    if p.parent != parent.resolve():
        raise PlaceError(f"{name!r} would not stay inside {parent}.")
    return p


def _merge_supervisees(published: Path, folders: list[str], sup_id: str, dest: Path) -> None:
    import pandas as pd

    for table in TABLES:
        frames = [pd.read_parquet(published / f / f"{table}.parquet") for f in folders]
        pd.concat(frames, ignore_index=True).to_parquet(dest / f"{table}.parquet", index=False)
    shutil.copy2(published / folders[0] / "service_benchmarks.csv", dest / "service_benchmarks.csv")
    first = json.loads((published / folders[0] / "manifest.json").read_text(encoding="utf-8"))
    manifest = {k: first[k] for k in ("export", "published_at", "policy") if k in first}
    manifest.update({"supervisor_id": sup_id, "supervisee_folders": folders})
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def place(published, accounts_csv, root, *, analyst: str = "root", export=None, group_prefix: str = "swd_") -> dict:
    """Place ``published`` under ``root`` (see the module docstring); returns the hub's accounts map."""
    if os.geteuid() != 0:
        raise PlaceError("place_data.py changes owners and groups: run it as root.")
    published, root = Path(published).resolve(), Path(root).resolve()
    index = _read_csv(published / INDEX)
    accounts = _read_csv(Path(accounts_csv))
    missing_cols = {"role", "id", "username"} - set(accounts[0] if accounts else {})
    if missing_cols:
        raise PlaceError(f"{accounts_csv} needs the columns role, id, username (missing: {', '.join(sorted(missing_cols))}).")
    clinician_user = {a["id"]: a["username"] for a in accounts if a["role"] == "clinician"}
    supervisor_user = {a["id"]: a["username"] for a in accounts if a["role"] == "supervisor"}
    bad_roles = sorted({a["role"] for a in accounts} - {"clinician", "supervisor"})
    if bad_roles:
        raise PlaceError(f"Unknown role(s) {bad_roles} in {accounts_csv}: use 'clinician' or 'supervisor'.")
    upper = sorted(u for u in [*clinician_user.values(), *supervisor_user.values()] if u != u.lower())
    if upper:
        raise PlaceError(f"JupyterHub logs users in by lower-case names; these are not: {', '.join(upper)}.")
    unknown = sorted(u for u in [*clinician_user.values(), *supervisor_user.values(), analyst] if not _user_exists(u))
    if unknown:
        raise PlaceError(f"These accounts do not exist on this system: {', '.join(unknown)}. Create them (or connect "
                         "the system to the service's directory) first.")
    both = sorted(set(clinician_user.values()) & set(supervisor_user.values()))
    if both:
        raise PlaceError(f"Account(s) {', '.join(both)} are both a clinician and a supervisor: give each role its own account.")
    known_ids = {r["clinician_id"] for r in index}
    stray = sorted(set(clinician_user) - known_ids)
    if stray:
        print(f"Note: no published folder for clinician id(s) {', '.join(stray)} of {accounts_csv}.", file=sys.stderr)

    an = pwd.getpwnam(analyst)
    for top in (root, root / "clinicians", root / "supervisors", root / "notes"):
        top.mkdir(parents=True, exist_ok=True)
        os.chown(top, 0, 0)
        os.chmod(top, 0o711)
    hub: dict[str, dict] = {}
    by_supervisor: dict[str, list[str]] = {}
    for row in index:
        cid, folder, sid = row["clinician_id"], row["folder"], (row.get("supervisor_id") or "").strip()
        dest = _inside(root / "clinicians", folder)
        members = [u for u in (clinician_user.get(cid), supervisor_user.get(sid)) if u]
        gid = _ensure_group(_group_name(group_prefix, "c_" + folder), members)
        _replace(lambda d, f=folder: _copy_folder(published / f, d), dest)
        _lock_tree(dest, 0, gid, 0o750, 0o640)
        if sid:
            by_supervisor.setdefault(sid, []).append(folder)
        if cid in clinician_user:
            hub[clinician_user[cid]] = {"role": "clinician", "id": cid, "data": str(dest), "notes": None,
                                        "supervisor": supervisor_user.get(sid)}
    for sid, folders in sorted(by_supervisor.items()):
        user = supervisor_user.get(sid)
        if not user:
            print(f"Note: supervisor {sid} has no account in {accounts_csv}; their supervisees' folders stay "
                  "readable by the clinicians only.", file=sys.stderr)
            continue
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", sid).lstrip(".") or "supervisor"
        dest = _inside(root / "supervisors", safe)
        gid = _ensure_group(_group_name(group_prefix, "s_" + safe), [user])
        _replace(lambda d, fs=sorted(folders), s=sid: _merge_supervisees(published, fs, s, d), dest)
        _lock_tree(dest, 0, gid, 0o750, 0o640)
        notes = _inside(root / "notes", user)
        notes.mkdir(exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(notes, pw.pw_uid, pw.pw_gid)
        os.chmod(notes, 0o700)
        hub[user] = {"role": "supervisor", "id": sid, "data": str(dest), "notes": str(notes / "supervision-notes.sqlite"),
                     "supervisees": [r["clinician_id"] for r in index if (r.get("supervisor_id") or "").strip() == sid]}
    for private in [published, *([Path(export).resolve()] if export else [])]:
        _lock_tree(private, an.pw_uid, an.pw_gid, 0o700, 0o600)
    accounts_file = root / "hub_accounts.json"
    accounts_file.write_text(json.dumps(hub, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.chown(accounts_file, 0, 0)
    os.chmod(accounts_file, 0o600)
    return hub


def _copy_folder(src: Path, dest: Path) -> None:
    for item in src.iterdir():
        if item.is_file() and not item.is_symlink():
            shutil.copy2(item, dest / item.name)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("published", help="the output folder of `supervision publish`")
    p.add_argument("--accounts", required=True, help="CSV: role (clinician|supervisor), id, username")
    p.add_argument("--root", required=True, help="where the hub's users read their data, e.g. /srv/supervision")
    p.add_argument("--analyst", default="root", help="the only account that may read the whole export (default root)")
    p.add_argument("--export", help="the whole export's folder, locked to the analyst as well")
    p.add_argument("--group-prefix", default="swd_", help="prefix of the groups made per folder (default swd_)")
    args = p.parse_args(argv)
    try:
        hub = place(args.published, args.accounts, args.root, analyst=args.analyst, export=args.export,
                    group_prefix=args.group_prefix)
    except (PlaceError, OSError, subprocess.CalledProcessError) as exc:
        print(f"Placement problem: {exc}", file=sys.stderr)
        return 2
    roles = [v["role"] for v in hub.values()]
    print(f"Placed data for {roles.count('clinician')} clinician and {roles.count('supervisor')} supervisor account(s) "
          f"under {args.root}; the hub reads {Path(args.root) / 'hub_accounts.json'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
