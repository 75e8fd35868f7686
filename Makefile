# Task runner. The two commands a new user needs:
#   make lab    set up a local virtual environment and open the workbook on the demo data
#   make test   set up everything the tests need (Chromium too, where apt is available as root)
#               and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8866

.PHONY: lab app test install install-test browser clean-venv demo bench

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

lab: install
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.allow_root=True notebooks/02-supervision.ipynb

# App mode: the whole workbook without code (notebooks/app.ipynb), served by Voila on this computer.
# One kernel is kept ready (preheated) with the remembered data loaded, so the first page opens at once.
app: install-test
	$(BIN)/voila notebooks/app.ipynb --Voila.ip=127.0.0.1 --port=$(PORT) --preheat_kernel=True --pool_size=1

test: install-test
	$(BIN)/python -m pytest

demo: install
	$(BIN)/supervision demo --out data/demo

clean-venv:
	rm -rf $(VENV)

# Benchmarks at 10k, 100k and 1M sessions (add SIZES="10k 5M" for others); see benchmarks/README.md.
SIZES ?= 10k 100k 1M
bench: install
	$(BIN)/python benchmarks/run.py --sizes $(SIZES)
