# JupyterHub configuration for the supervision workbook (see deploy/README.md).
#
#   jupyterhub -f deploy/jupyterhub_config.py        (as root: it starts each user's server as that user)
#
# Everything site-specific comes from environment variables, with these defaults:
#   SUPERVISION_HUB_PREFIX   /opt/supervision-hub      software (deploy/install.sh)
#   SUPERVISION_HUB_DATA     /srv/supervision          placed data (deploy/place_data.py), hub_accounts.json
#   SUPERVISION_HUB_STATE    /var/lib/supervision-hub  hub database, cookie secret (root only)
#   SUPERVISION_HUB_URL      http://127.0.0.1:8000     where users connect (put TLS in front of it)
#   SUPERVISION_HUB_API_PORT 8081                      the hub's internal API (loopback)
#   SUPERVISION_HUB_PROXY_API_PORT 8001                the proxy's API (loopback)
#   SUPERVISION_HUB_AUTH     pam                       authenticator: pam (the system's accounts and
#                                                      passwords), or any JupyterHub authenticator class
#                                                      (e.g. "oauthenticator.generic.GenericOAuthenticator"
#                                                      or "ldapauthenticator.LDAPAuthenticator" for the
#                                                      service's single sign-on; configure it below)
import json
import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

PREFIX = Path(os.environ.get("SUPERVISION_HUB_PREFIX", "/opt/supervision-hub"))
DATA = Path(os.environ.get("SUPERVISION_HUB_DATA", "/srv/supervision"))
STATE = Path(os.environ.get("SUPERVISION_HUB_STATE", "/var/lib/supervision-hub"))
STATE.mkdir(parents=True, exist_ok=True, mode=0o700)

# Who may log in, and what each account opens: written by deploy/place_data.py.
ACCOUNTS = json.loads((DATA / "hub_accounts.json").read_text(encoding="utf-8"))

# -- network: loopback only; a TLS-terminating reverse proxy (nginx, Apache) serves it to the network
c.JupyterHub.bind_url = os.environ.get("SUPERVISION_HUB_URL", "http://127.0.0.1:8000")
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("SUPERVISION_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(os.environ.get('SUPERVISION_HUB_PROXY_API_PORT', '8001'))}"
c.ConfigurableHTTPProxy.command = [str(PREFIX / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")

# -- authentication: pluggable; the accounts placed by place_data.py are the only ones allowed
auth = os.environ.get("SUPERVISION_HUB_AUTH", "pam")
c.JupyterHub.authenticator_class = auth
c.Authenticator.allowed_users = set(ACCOUNTS)
c.Authenticator.admin_users = set()  # no hub admin: an admin could open other users' servers
c.JupyterHub.admin_access = False
if auth == "pam":
    c.PAMAuthenticator.open_sessions = False  # no login sessions (utmp, pam_systemd) for app servers

# -- each user's server: started as that user (LocalProcessSpawner needs the hub to run as root)
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(PREFIX / "venv" / "bin" / "jupyterhub-singleuser")]
c.Spawner.notebook_dir = str(PREFIX / "notebooks")  # read-only for users: the app, not a workspace
c.Spawner.default_url = "/voila/render/00-start-here.ipynb"  # the workbook app is each user's first page
c.Spawner.env_keep = ["LANG", "LC_ALL"]  # nothing else from the hub's (root's) environment
c.Spawner.environment = {"PATH": f"{PREFIX / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin"}
c.Spawner.args = [
    # Voila renders with the workbook's template (installed by deploy/install.sh): Voila's lab template
    # without its Font Awesome CDN links
    "--VoilaConfiguration.template=workbook",
    # ... and no MathJax from a CDN: as a server extension, Voila's page loads it from cdnjs unless the server
    # sets neither a MathJax URL nor a MathJax config (standalone `make app` sets neither); the workbook shows
    # no formulas
    '--ServerApp.tornado_settings={"mathjax_url": None, "mathjax_config": None}',
    # a Voila page starts a kernel; close the kernels of closed pages after an idle hour
    "--MappingKernelManager.cull_idle_timeout=3600",
    "--MappingKernelManager.cull_interval=300",
]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120


def _user_data(spawner):
    """SUPERVISION_DATA (and, for supervisors, SUPERVISION_NOTES) of the user being started."""
    entry = ACCOUNTS.get(spawner.user.name)
    if entry is None:
        raise RuntimeError(f"{spawner.user.name} has no placed data (deploy/place_data.py).")
    env = dict(spawner.environment)  # a new dict: the configured one is shared by every spawner
    env["SUPERVISION_DATA"] = entry["data"]
    if entry.get("notes"):
        env["SUPERVISION_NOTES"] = entry["notes"]
    spawner.environment = env


c.Spawner.pre_spawn_hook = _user_data

# Site overrides (e.g. the single sign-on's client id and secret) without editing this file.
_local = os.environ.get("SUPERVISION_HUB_LOCAL_CONFIG")
if _local:
    load_subconfig(_local)  # noqa: F821 - provided by JupyterHub
