#!/usr/bin/env bash
# Install the hub's software where every account can read it (run as root):
#   deploy/install.sh [PREFIX]          (default PREFIX: /opt/supervision-hub)
#
#   PREFIX/venv/          Python venv: the workbook (not editable: a copy every user can read),
#                         JupyterHub and Voila (the `hub` extra of pyproject.toml)
#   PREFIX/notebooks/     the workbook's notebooks, read-only for users (the app serves them)
#   PREFIX/venv/share/jupyter/voila/templates/workbook/   the workbook's Voila template (no CDN links)
#   PREFIX/node_modules/  configurable-http-proxy (npm), the hub's proxy
#
# Everything is root-owned and world-readable (a+rX), writable by root only. Re-running it
# upgrades in place. Needs python3.11 (or python3 >= 3.11), pip access to PyPI, and npm.
set -euo pipefail
PREFIX="${1:-/opt/supervision-hub}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# The venv's python is a link to its base interpreter: every account must be able to run that one,
# so the system's /usr/bin/python3.11 is preferred over one under /root (pyenv and the like).
PYTHON="${PYTHON:-$(for p in /usr/bin/python3.11 /usr/local/bin/python3.11 "$(command -v python3.11)" "$(command -v python3)"; do [ -x "$p" ] && echo "$p" && break; done)}"
CHP_VERSION="${CHP_VERSION:-5.3.0}"
umask 022
mkdir -p "$PREFIX"
if ! runuser -u nobody -- "$PYTHON" -c "import sys" 2>/dev/null; then
    echo "$PYTHON cannot be run by other accounts (is it under /root?): set PYTHON=/path/to/python3.11 that every user can run." >&2
    exit 2
fi
if [ -x "$PREFIX/venv/bin/python" ] && ! runuser -u nobody -- "$PREFIX/venv/bin/python" -c "import sys" 2>/dev/null; then
    rm -rf "$PREFIX/venv"   # made from an interpreter other accounts cannot run
fi
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    "$PYTHON" -m venv "$PREFIX/venv"
fi
# Build from a copy of the source, so nothing (build/, *.egg-info) is left in the checkout.
SRC="$(mktemp -d)"
trap 'rm -rf "$SRC"' EXIT
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/supervision" "$SRC/"
"$PREFIX/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$SRC[hub]" 2>&1 \
    | { grep -v "^WARNING: Location .* is ignored" || true; }
# The workbook's Voila template (Voila's lab template without its CDN links: the app makes no request
# beyond the server), where the venv's Voila finds it; the hub's servers use it (jupyterhub_config.py).
TEMPLATES="$PREFIX/venv/share/jupyter/voila/templates"
rm -rf "$TEMPLATES/workbook"
mkdir -p "$TEMPLATES"
cp -r "$REPO/share/jupyter/voila/templates/workbook" "$TEMPLATES/workbook"
rm -rf "$PREFIX/notebooks"
mkdir -p "$PREFIX/notebooks"
cp "$REPO"/notebooks/*.ipynb "$PREFIX/notebooks/"
if [ ! -x "$PREFIX/node_modules/.bin/configurable-http-proxy" ] || \
   [ "$("$PREFIX/node_modules/.bin/configurable-http-proxy" --version 2>/dev/null)" != "$CHP_VERSION" ]; then
    npm install --silent --no-audit --no-fund --prefix "$PREFIX" "configurable-http-proxy@$CHP_VERSION" >/dev/null
fi
chmod -R a+rX,go-w "$PREFIX"
echo "Hub software installed in $PREFIX (JupyterHub $("$PREFIX/venv/bin/jupyterhub" --version), proxy $("$PREFIX/node_modules/.bin/configurable-http-proxy" --version))."
