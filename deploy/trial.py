#!/usr/bin/env python3
"""A local trial of the hosted workbook on 127.0.0.1 with the demo clinic (``make hub``; run as root).

    python deploy/trial.py [--port 8000] [--prefix /opt/supervision-hub]   set up, then run the hub
    python deploy/trial.py --remove                                        delete the trial's accounts,
                                                                           groups and folders

It creates four local demo accounts with fresh random passwords (printed): two clinicians
(``swdemo_t01``, ``swdemo_t02``) and their supervisors (``swdemo_s01``, ``swdemo_s02``), publishes the
demo clinic, places each folder for its accounts (deploy/place_data.py) and runs JupyterHub
(deploy/jupyterhub_config.py) with PAM, the system's own password check. Stop it with Ctrl-C.

The helpers here (accounts, starting and stopping the hub) are also used by the end-to-end test
(tests/hub/test_hub_e2e.py).
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

TRIAL_PREFIX = "swdemo_"
TRIAL_DATA = Path("/srv/supervision-trial")
TRIAL_STATE = Path("/var/lib/supervision-hub-trial")
# clinician T01 and T03 are supervised by S01, T02 by S02 (data/demo/clinicians.csv)
TRIAL_ACCOUNTS = [("clinician", "T01", "t01"), ("clinician", "T02", "t02"), ("supervisor", "S01", "s01"),
                  ("supervisor", "S02", "s02")]


def create_account(username: str, home_base: Path | None = None) -> str:
    """A local account with a fresh random password (returned); no login shell."""
    if not _exists(username):
        cmd = ["useradd", "--create-home", "--shell", "/usr/sbin/nologin", "--user-group"]
        if home_base is not None:
            cmd += ["--home-dir", str(home_base / username)]
        subprocess.run([*cmd, username], check=True)
    password = secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{username}:{password}\n", text=True, check=True)
    return password


def remove_accounts(prefix: str) -> list[str]:
    """Delete every account and group whose name starts with ``prefix`` (their processes first)."""
    users = [p for p in pwd.getpwall() if p.pw_name.startswith(prefix)]
    for p in users:
        kill_user_processes(p.pw_uid)
        subprocess.run(["userdel", "--remove", p.pw_name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for g in grp.getgrall():
        if g.gr_name.startswith(prefix):
            subprocess.run(["groupdel", g.gr_name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [p.pw_name for p in users]


def kill_user_processes(uid: int) -> None:
    """SIGKILL each process owned by ``uid``, by pid (only ever called for accounts this module made)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass


def _exists(username: str) -> bool:
    try:
        pwd.getpwnam(username)
        return True
    except KeyError:
        return False


def hub_environment(prefix: Path, data: Path, state: Path, port: int, api_port: int, proxy_api_port: int,
                    auth: str = "pam") -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "TERM")}
    env.update({"SUPERVISION_HUB_PREFIX": str(prefix), "SUPERVISION_HUB_DATA": str(data),
                "SUPERVISION_HUB_STATE": str(state), "SUPERVISION_HUB_URL": f"http://127.0.0.1:{port}",
                "SUPERVISION_HUB_API_PORT": str(api_port), "SUPERVISION_HUB_PROXY_API_PORT": str(proxy_api_port),
                "SUPERVISION_HUB_AUTH": auth})
    return env


def start_hub(prefix: Path, env: dict, state: Path, log=None) -> subprocess.Popen:
    """Start JupyterHub with deploy/jupyterhub_config.py in its own process group."""
    return subprocess.Popen([str(prefix / "venv" / "bin" / "jupyterhub"), "-f", str(HERE / "jupyterhub_config.py")],
                            cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT if log else None,
                            start_new_session=True)


def wait_for_hub(port: int, proc: subprocess.Popen, timeout: float = 90) -> float:
    """Seconds until the hub answers ``/hub/api`` (raises when it exits or the time runs out)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterHub exited with code {proc.returncode} while starting.")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hub/api", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"JupyterHub did not answer on 127.0.0.1:{port} within {timeout:.0f} s.")


def stop_hub(proc: subprocess.Popen, state: Path, timeout: float = 20) -> None:
    """SIGTERM to the hub's process group (the hub stops the proxy and the users' servers), then SIGKILL;
    a proxy left behind (it runs in a session of its own) is stopped by the pid in its pid file."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass
    pid_file = state / "proxy.pid"
    try:
        pid = int(pid_file.read_text().strip())
        if "configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def setup(prefix: Path, data: Path, state: Path, account_prefix: str, accounts, export: Path,
          home_base: Path | None = None) -> dict[str, str]:
    """Accounts, publication and placement; returns {username: password}."""
    from place_data import place

    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    passwords = {account_prefix + short: create_account(account_prefix + short, home_base) for _, _, short in accounts}
    accounts_csv = state / "accounts.csv"
    accounts_csv.write_text("role,id,username\n" + "".join(f"{r},{i},{account_prefix + s}\n" for r, i, s in accounts),
                            encoding="utf-8")
    published = state / "published"
    shutil.rmtree(published, ignore_errors=True)
    subprocess.run([str(prefix / "venv" / "bin" / "supervision"), "publish", str(export), "--out", str(published)],
                   check=True, stdout=subprocess.DEVNULL)
    place(published, accounts_csv, data, analyst="root", group_prefix=account_prefix)
    return passwords


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Local trial of the hosted workbook (run as root).")
    p.add_argument("--prefix", type=Path, default=Path(os.environ.get("SUPERVISION_HUB_PREFIX", "/opt/supervision-hub")))
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--remove", action="store_true", help="delete the trial's accounts, groups and folders")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("The trial creates local accounts and runs each user's server as that user: run it as root.", file=sys.stderr)
        return 2
    if args.remove:
        gone = remove_accounts(TRIAL_PREFIX)
        shutil.rmtree(TRIAL_DATA, ignore_errors=True)
        shutil.rmtree(TRIAL_STATE, ignore_errors=True)
        print(f"Removed the trial: accounts {', '.join(gone) or '(none)'}, {TRIAL_DATA}, {TRIAL_STATE}.")
        return 0
    if not (args.prefix / "venv" / "bin" / "jupyterhub").exists():
        print(f"The hub software is not installed in {args.prefix}: run `make hub-env` (deploy/install.sh) first.", file=sys.stderr)
        return 2
    passwords = setup(args.prefix, TRIAL_DATA, TRIAL_STATE, TRIAL_PREFIX, TRIAL_ACCOUNTS, REPO / "data" / "demo")
    env = hub_environment(args.prefix, TRIAL_DATA, TRIAL_STATE, args.port, args.port + 81, args.port + 1)
    proc = start_hub(args.prefix, env, TRIAL_STATE, log=open(TRIAL_STATE / "jupyterhub.log", "ab"))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        wait_for_hub(args.port, proc)
        roles = {TRIAL_PREFIX + s: f"{r} {i}" for r, i, s in TRIAL_ACCOUNTS}
        print(f"\nThe workbook hub is running: open http://127.0.0.1:{args.port}/ and log in as one of")
        for user, password in passwords.items():
            print(f"    {user:<12} password {password:<18} ({roles[user]})")
        print(f"(passwords are new on every start). Log: {TRIAL_STATE / 'jupyterhub.log'}. "
              "Ctrl-C stops it; `make hub-remove` deletes the demo accounts.")
        while proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop_hub(proc, TRIAL_STATE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
