# Task runner. The two commands a new user needs:
#   make lab    set up a local virtual environment and open the workbook on the demo data
#   make test   set up everything the tests need (Chromium and the hub's software too, where apt is
#               available as root) and run the whole suite
#   make hub    (as root) a local trial of the hosted workbook: JupyterHub on 127.0.0.1 with the demo
#               clinic and demo accounts; see deploy/README.md
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8866

.PHONY: lab app test install install-test browser clean-venv demo bench hub hub-env hub-remove

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test browser

# Debian's Chromium for the real-browser tests (Playwright never downloads a browser here).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "Note: /usr/bin/chromium is missing and cannot be installed here (needs apt as root): browser tests will be skipped."; fi

# The hosted workbook (deploy/README.md): JupyterHub, Voila and the workbook in a venv every account can
# read, and the hub's proxy from npm, under HUB_PREFIX. Needs root; reinstalled when the package changes.
HUB_PREFIX  ?= /opt/supervision-hub
HUB_PORT    ?= 8000
HUB_SOURCES := pyproject.toml deploy/install.sh $(shell find supervision notebooks share/jupyter -type f \( -name '*.py' -o -name '*.toml' -o -name '*.ipynb' -o -name '*.j2' -o -name '*.json' \) 2>/dev/null)

$(HUB_PREFIX)/.installed: $(HUB_SOURCES)
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	deploy/install.sh $(HUB_PREFIX)
	touch $@

hub-env:
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory $(HUB_PREFIX)/.installed; \
	else echo "Note: the hub's software installs as root only (deploy/install.sh): the hub end-to-end test will be skipped."; fi

hub: hub-env
	$(HUB_PREFIX)/venv/bin/python deploy/trial.py --prefix $(HUB_PREFIX) --port $(HUB_PORT)

hub-remove:
	python3 deploy/trial.py --remove

lab: install
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.allow_root=True notebooks/02-supervision.ipynb

# App mode: the whole workbook without code (notebooks/app.ipynb), served by Voila on this computer.
# One kernel is kept ready (preheated) with the remembered data loaded, so the first page opens at once.
# The "workbook" template (share/jupyter/voila/templates/workbook) is Voila's lab template without its CDN
# links: the app makes no request beyond this computer.
app: install-test
	JUPYTER_PATH=$(CURDIR)/share/jupyter $(BIN)/voila notebooks/app.ipynb --template=workbook --Voila.ip=127.0.0.1 \
		--port=$(PORT) --preheat_kernel=True --pool_size=1

test: install-test hub-env
	$(BIN)/python -m pytest

demo: install
	$(BIN)/supervision demo --out data/demo

clean-venv:
	rm -rf $(VENV)

# Benchmarks at 10k, 100k and 1M sessions (add SIZES="10k 5M" for others); see benchmarks/README.md.
SIZES ?= 10k 100k 1M
bench: install
	$(BIN)/python benchmarks/run.py --sizes $(SIZES)
