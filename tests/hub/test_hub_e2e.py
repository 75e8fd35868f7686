"""End to end: the workbook on JupyterHub (deploy/), access enforced by the system, on 127.0.0.1.

One hub for the module, set up as a service would: the demo export published
(`supervision publish`), placed by deploy/place_data.py for three new local accounts with random
passwords (clinician A = T01, clinician B = T02, supervisor S = S01), JupyterHub started with
deploy/jupyterhub_config.py and PAM. Checks: the hub starts; an unauthenticated request gets
nothing; A logs in (a real Chromium) and the app shows only A's clients; A's kernel, started
through the hub, runs as A and cannot read B's folder, the whole export or the published tree;
S sees exactly S's supervisees; no page requests anything beyond 127.0.0.1 (the hub's Voila uses the
workbook's template, without CDN links). Start-up time and memory per user are printed (run with -s).

Needs root (it creates OS accounts and the hub runs each server as its user), the hub software
(`make hub-env`: deploy/install.sh into /opt/supervision-hub, or SUPERVISION_HUB_PREFIX) and
Chromium. Without them it is skipped with the reason, except with CI=true, where it fails.
Everything it makes (accounts ``swtXXXX_*``, their groups and processes, the temp folder) is
removed at the end, also after a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy"))
import trial  # noqa: E402  (deploy/trial.py: accounts and hub start/stop helpers)

pytestmark = [pytest.mark.hub, pytest.mark.slow]

PREFIX = Path(os.environ.get("SUPERVISION_HUB_PREFIX", "/opt/supervision-hub"))
CHROMIUM = os.environ.get("SW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]
APP = "voila/render/00-start-here.ipynb"
A_ID, B_ID, S_ID = "T01", "T02", "S01"


def _unavailable() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: it creates local accounts and the hub starts each user's server as that user"
    missing = [t for t in ("useradd", "userdel", "groupadd", "groupdel", "gpasswd", "chpasswd", "runuser")
               if shutil.which(t) is None]
    if missing:
        return f"cannot create users here: {', '.join(missing)} not found"
    if not (PREFIX / "venv" / "bin" / "jupyterhub").exists() or not (PREFIX / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        return f"the hub software is not installed in {PREFIX}: run `make hub-env` (deploy/install.sh)"
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
        import websocket  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not importable: pip install the 'test' extra"
    return None


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _rss_kib(uid: int) -> dict[str, int]:
    """Resident memory (KiB) of each process of ``uid``, by a short name of its command."""
    out: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rss = int(re.search(r"VmRSS:\s+(\d+)", (entry / "status").read_text()).group(1))
        except (OSError, AttributeError):
            continue
        name = "kernel" if "ipykernel" in cmd else "server" if "singleuser" in cmd else cmd.split(" ")[0].rsplit("/", 1)[-1]
        out[name] = out.get(name, 0) + rss
    return out


@pytest.fixture(scope="module")
def hub():
    reason = _unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the hub end-to-end test cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    from supervision.io import demo_path
    from supervision.publish import publish

    prefix = f"swt{secrets.token_hex(2)}_"
    base = Path(tempfile.mkdtemp(prefix="swhub-", dir="/tmp"))
    os.chmod(base, 0o711)
    proc = None
    t0 = time.monotonic()
    try:
        users = {"A": prefix + "a", "B": prefix + "b", "S": prefix + "s"}
        (base / "home").mkdir(mode=0o711)
        passwords = {k: trial.create_account(u, base / "home") for k, u in users.items()}
        export = base / "export"
        shutil.copytree(demo_path(), export)
        published = base / "published"
        publish(export, published)
        accounts = base / "accounts.csv"
        accounts.write_text(f"role,id,username\nclinician,{A_ID},{users['A']}\nclinician,{B_ID},{users['B']}\n"
                            f"supervisor,{S_ID},{users['S']}\n", encoding="utf-8")
        data, state = base / "srv", base / "state"
        subprocess.run([sys.executable, str(REPO / "deploy" / "place_data.py"), str(published), "--accounts", str(accounts),
                        "--root", str(data), "--export", str(export), "--group-prefix", prefix],
                       check=True, capture_output=True, text=True)
        state.mkdir(mode=0o700)
        port, api_port, proxy_port = _free_ports(3)
        env = trial.hub_environment(PREFIX, data, state, port, api_port, proxy_port, auth="pam")
        log = open(base / "jupyterhub.log", "wb")
        proc = trial.start_hub(PREFIX, env, state, log=log)
        started = trial.wait_for_hub(port, proc, timeout=60)
        yield {"base": base, "url": f"http://127.0.0.1:{port}", "port": port, "users": users, "passwords": passwords,
               "data": data, "export": export, "published": published, "hub_start_s": started,
               "setup_s": time.monotonic() - t0, "metrics": {}}
    finally:
        if proc is not None:
            trial.stop_hub(proc, base / "state")
        if (base / "jupyterhub.log").exists() and os.environ.get("SW_HUB_LOG"):
            shutil.copy(base / "jupyterhub.log", os.environ["SW_HUB_LOG"])
        trial.remove_accounts(prefix)
        shutil.rmtree(base, ignore_errors=True)
        left = [p.pw_name for p in __import__("pwd").getpwall() if p.pw_name.startswith(prefix)]
        left += [g.gr_name for g in __import__("grp").getgrall() if g.gr_name.startswith(prefix)]
        assert not left, f"accounts or groups left behind: {left}"


class _BrowserThread:
    """Chromium driven from a thread of its own: Playwright's sync API refuses to start inside a thread
    whose event loop another sync Playwright (the browser tests' session-wide one) already runs, and
    its objects must be used from the thread that made them. ``run(fn, *args)`` calls ``fn(browser, *args)``
    there and returns its result."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-chromium")
        self._pw = self._browser = None
        self._pool.submit(self._start).result()

    def _start(self):
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

    def run(self, fn, *args):
        return self._pool.submit(fn, self._browser, *args).result()

    def close(self):
        def stop():
            self._browser.close()
            self._pw.stop()
        self._pool.submit(stop).result()
        self._pool.shutdown()


@pytest.fixture(scope="module")
def chromium(hub):
    browser = _BrowserThread()
    yield browser
    browser.close()


def _outside(outside: list[str]) -> list[str]:
    """Requests the route guard blocked: none allowed. The hub's Voila renders with the workbook's template
    (deploy/install.sh, ``--VoilaConfiguration.template=workbook``), which has none of the stock ``lab``
    template's Font Awesome links nor Voila's MathJax URL; the stock template would fail here."""
    from urllib.parse import unquote

    return [unquote(u) for u in outside]


def _login_in_browser(chromium, hub, who: str) -> tuple[dict, float]:
    """Log ``who`` in through the hub's form; returns what the app shows and login-to-rendered seconds."""
    context = chromium.new_context()
    outside = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        ("http://127.0.0.1", "data:", "blob:")) else (outside.append(route.request.url), route.abort()))
    page = context.new_page()
    try:
        page.goto(hub["url"] + "/hub/login")
        page.fill("#username_input", hub["users"][who])
        page.fill("#password_input", hub["passwords"][who])
        t0 = time.monotonic()
        page.click("#login_submit")
        page.wait_for_selector(".sw-start .sw-summary h3", timeout=120_000)
        took = time.monotonic() - t0
        shown = {
            "url": page.url,
            "summary": page.inner_text(".sw-start .sw-summary"),
            "status": page.inner_text(".sw-start .sw-status"),
            "error": page.inner_text(".sw-start .sw-error"),
            "clinicians": page.eval_on_selector(".sw-start .sw-clinician select",
                                                "s => Array.from(s.options).map(o => o.textContent.replace(/\\u00a0/g, ' '))"),
            "body": page.inner_text("body"),
            "outside": outside,
        }
        return shown, took
    finally:
        context.close()


def _kernel_run(hub, who: str, code: str) -> str:
    """Run ``code`` in a kernel of ``who``'s own server, started through the hub's API; returns its output."""
    import websocket

    s = requests.Session()
    page = s.get(hub["url"] + "/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    user = hub["users"][who]
    r = s.post(hub["url"] + "/hub/login", data={"username": user, "password": hub["passwords"][who], "_xsrf": xsrf},
               allow_redirects=False, timeout=60)
    assert r.status_code == 302, r.text[:300]
    r = s.post(f"{hub['url']}/hub/api/users/{user}/tokens", json={"note": "e2e test", "expires_in": 600},
               headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")}, timeout=30)
    assert r.status_code == 201, r.text[:300]
    auth = {"Authorization": f"token {r.json()['token']}"}
    r = requests.post(f"{hub['url']}/user/{user}/api/kernels", headers=auth, json={"name": "python3"}, timeout=60)
    assert r.status_code == 201, r.text[:300]
    kernel = r.json()["id"]
    ws = websocket.create_connection(f"ws://127.0.0.1:{hub['port']}/user/{user}/api/kernels/{kernel}/channels",
                                     header=[f"Authorization: {auth['Authorization']}"], timeout=60)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": user, "session": uuid.uuid4().hex, "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out, replied, idle = [], False, False
        while not (replied and idle):  # the reply (shell) and the outputs (iopub) arrive in no fixed order
            m = json.loads(ws.recv())
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            elif m["msg_type"] == "error":
                out.append(f"ERROR {m['content']['ename']}: {m['content']['evalue']}")
            elif m["msg_type"] == "execute_reply":
                replied = True
            elif m["msg_type"] == "status" and m["content"].get("execution_state") == "idle":
                idle = True
        return "".join(out)
    finally:
        ws.close()
        requests.delete(f"{hub['url']}/user/{user}/api/kernels/{kernel}", headers=auth, timeout=30)


PROBE = """
import json, os
def probe(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, 'rb').read(1)
        return 'read'
    except PermissionError:
        return 'denied'
    except FileNotFoundError:
        return 'missing'
print(json.dumps({'uid': os.getuid(), 'data': os.environ.get('SUPERVISION_DATA'),
                  'notes': os.environ.get('SUPERVISION_NOTES'),
                  'paths': {p: probe(p) for p in PATHS}}))
"""


def _probe(hub, who, paths):
    out = _kernel_run(hub, who, f"PATHS = {[str(p) for p in paths]!r}\n" + PROBE)
    assert out.strip(), "the kernel printed nothing"
    return json.loads(out.strip().splitlines()[-1])


def test_the_hub_starts(hub):
    r = requests.get(hub["url"] + "/hub/api", timeout=10)
    assert r.status_code == 200 and "version" in r.json()
    print(f"\nhub: set-up (accounts, publish, placement) {hub['setup_s'] - hub['hub_start_s']:.1f} s, "
          f"hub start {hub['hub_start_s']:.1f} s")


def test_an_unauthenticated_request_gets_nothing(hub):
    a = hub["users"]["A"]
    for path in (f"/user/{a}/{APP}", f"/user/{a}/api/contents", f"/user/{a}/files/00-start-here.ipynb"):
        r = requests.get(hub["url"] + path, allow_redirects=False, timeout=30)
        assert r.status_code in (302, 303, 401, 403), (path, r.status_code)
        if r.status_code in (302, 303):
            assert "/hub/login" in r.headers["location"] or "/hub/user/" in r.headers["location"], r.headers["location"]
        followed = requests.get(hub["url"] + path, timeout=30)
        assert "/hub/login" in followed.url
        assert not re.search(r"\bC0\d{4}\b|\bT0\d\b", followed.text)  # no client or clinician ids
    assert requests.get(hub["url"] + "/hub/api/users", timeout=30).status_code == 403
    # a wrong password does not log in
    s = requests.Session()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', s.get(hub["url"] + "/hub/login", timeout=30).text).group(1)
    r = s.post(hub["url"] + "/hub/login", data={"username": a, "password": "not-the-password", "_xsrf": xsrf},
               allow_redirects=False, timeout=60)
    assert r.status_code != 302 and "jupyterhub-hub-login" not in s.cookies.keys()


def test_clinician_a_sees_the_app_with_only_their_own_clients(hub, chromium):
    import pwd

    demo = pd.read_csv(REPO / "data" / "demo" / "clients.csv", dtype=str)
    own = int((demo["clinician_id"] == A_ID).sum())
    shown, took = chromium.run(_login_in_browser, hub, "A")
    assert shown["url"].endswith(f"/user/{hub['users']['A']}/{APP}")
    assert not shown["error"].strip()
    assert f"1 clinicians, {own} clients" in shown["summary"]
    assert shown["clinicians"] == ["All clinicians", f"{A_ID} (qualified): {own} clients"]
    assert str(hub["data"] / "clinicians" / A_ID) in shown["status"]
    assert B_ID not in shown["body"] and "T03" not in shown["body"]
    assert "VBox(children" not in shown["body"]
    assert not _outside(shown["outside"]), f"requests outside 127.0.0.1: {_outside(shown['outside'])}"
    rss = _rss_kib(pwd.getpwnam(hub["users"]["A"]).pw_uid)
    hub["metrics"]["A"] = {"login_to_app_s": round(took, 1), "rss_mib": {k: round(v / 1024) for k, v in rss.items()}}
    print(f"\nclinician A: login to rendered app {took:.1f} s; memory (RSS) "
          + ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in rss.items()) + f", total {sum(rss.values()) / 1024:.0f} MiB")
    assert took < 120


def test_clinician_a_kernel_cannot_read_b_or_the_whole_export(hub):
    import pwd

    d = hub["data"]
    own, other = d / "clinicians" / A_ID, d / "clinicians" / B_ID
    paths = [own / "clients.parquet", other / "clients.parquet", other, d / "clinicians", d / "supervisors" / S_ID,
             d / "notes" / hub["users"]["S"], d / "hub_accounts.json", hub["export"] / "clients.csv", hub["export"],
             hub["published"] / B_ID / "clients.parquet", hub["published"]]
    got = _probe(hub, "A", paths)
    assert got["uid"] == pwd.getpwnam(hub["users"]["A"]).pw_uid  # the kernel runs as A, not as root
    assert got["data"] == str(own) and got["notes"] is None
    expect = {str(own / "clients.parquet"): "read"}
    expect.update({str(p): "denied" for p in paths[1:]})
    assert got["paths"] == expect
    # the same from a plain process of B's account (not through the hub): B cannot read A's folder
    r = subprocess.run(["runuser", "-u", hub["users"]["B"], "--", str(PREFIX / "venv" / "bin" / "python"), "-c",
                        f"open({str(own / 'clients.parquet')!r}, 'rb')"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "PermissionError" in r.stderr


def test_supervisor_s_sees_exactly_their_supervisees(hub, chromium):
    import pwd

    clinicians = pd.read_csv(REPO / "data" / "demo" / "clinicians.csv", dtype=str)
    supervisees = sorted(clinicians.loc[clinicians["supervisor_id"] == S_ID, "clinician_id"])
    others = sorted(set(clinicians["clinician_id"]) - set(supervisees))
    shown, took = chromium.run(_login_in_browser, hub, "S")
    assert not shown["error"].strip()
    listed = [re.match(r"(\S+) \(", o).group(1) for o in shown["clinicians"][1:]]
    assert listed == supervisees
    assert f"{len(supervisees)} clinicians," in shown["summary"]
    assert not _outside(shown["outside"]), f"requests outside 127.0.0.1: {_outside(shown['outside'])}"
    rss = _rss_kib(pwd.getpwnam(hub["users"]["S"]).pw_uid)
    hub["metrics"]["S"] = {"login_to_app_s": round(took, 1), "rss_mib": {k: round(v / 1024) for k, v in rss.items()}}
    print(f"\nsupervisor S: login to rendered app {took:.1f} s; memory (RSS) "
          + ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in rss.items()) + f", total {sum(rss.values()) / 1024:.0f} MiB")
    d = hub["data"]
    paths = [d / "clinicians" / c / "clients.parquet" for c in supervisees + others] + [
        d / "supervisors" / S_ID / "clients.parquet", d / "notes" / hub["users"]["S"], hub["export"] / "clients.csv"]
    got = _probe(hub, "S", paths)
    assert got["uid"] == pwd.getpwnam(hub["users"]["S"]).pw_uid
    assert got["data"] == str(d / "supervisors" / S_ID)
    assert got["notes"] == str(d / "notes" / hub["users"]["S"] / "supervision-notes.sqlite")
    readable = sorted(Path(p).parent.name for p, v in got["paths"].items() if v == "read" and "/clinicians/" in p)
    assert readable == supervisees
    assert all(got["paths"][str(d / "clinicians" / c / "clients.parquet")] == "denied" for c in others)
    assert got["paths"][str(d / "supervisors" / S_ID / "clients.parquet")] == "read"
    assert got["paths"][str(d / "notes" / hub["users"]["S"])] == "read"
    assert got["paths"][str(hub["export"] / "clients.csv")] == "denied"
    # the notes folder is S's alone
    st = (d / "notes" / hub["users"]["S"]).stat()
    assert st.st_uid == pwd.getpwnam(hub["users"]["S"]).pw_uid and st.st_mode & 0o777 == 0o700
    # S's notes, written through the workbook's notes store in S's kernel, land in S's private folder
    notes = json.loads(_kernel_run(hub, "S", (
        "import json\nfrom supervision.notes import NotesStore\nstore = NotesStore()\n"
        f"m = store.start_meeting({S_ID!r}, {A_ID!r})\nstore.add_note('e2e note', author={S_ID!r}, meeting_id=m)\n"
        "print(json.dumps({'path': str(store.path), 'notes': len(store.notes())}))")).strip().splitlines()[-1])
    assert notes == {"path": got["notes"], "notes": 1}
    assert Path(notes["path"]).stat().st_uid == pwd.getpwnam(hub["users"]["S"]).pw_uid
    r = subprocess.run(["runuser", "-u", hub["users"]["A"], "--", str(PREFIX / "venv" / "bin" / "python"), "-c",
                        f"open({notes['path']!r}, 'rb')"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "PermissionError" in r.stderr  # not even S's supervisee can read them
    out = os.environ.get("SW_HUB_METRICS")
    if out:
        Path(out).write_text(json.dumps({"hub_start_s": round(hub["hub_start_s"], 1), **hub["metrics"]}, indent=2))
