# The two set-up commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# The browser tests: Debian's Chromium (never a downloaded browser) and axe-core from the npm registry.
CHROMIUM := /usr/bin/chromium
# The HTTP load generator of the benchmarks: Debian's wrk.
WRK := /usr/bin/wrk
AXE := tests/browser/node_modules/axe-core/axe.min.js
# The official AsyncAPI parser, which checks the document GET /api/v1/asyncapi.json serves (npm registry).
ASYNCAPI_PARSER := tests/contract/node_modules/@asyncapi/parser/package.json
HOST ?= 127.0.0.1
PORT ?= 8000

# Worker processes of the test suite (pytest-xdist): `auto` is one per CPU; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto

.PHONY: run test test-fast bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "verify-service needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools' notice on every editable install of a flat layout ("Editable installation ... folders in your working
# directory"), a box of asterisks that asks nothing of anyone, stays out of the install's output.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet

$(STAMP_RUN): $(BIN)/python setup.cfg pyproject.toml
	$(PIP_INSTALL) -e .
	@touch $@

$(STAMP_TEST): $(BIN)/python setup.cfg pyproject.toml
	$(PIP_INSTALL) -e ".[test]"
	@touch $@ $(STAMP_RUN)

## run: the embedded default (SQLite under instance/, sandbox Meet, web + scheduler in one process)
run: $(STAMP_RUN)
	$(BIN)/verify-service db upgrade
	$(BIN)/verify-service seed-demo
	$(BIN)/verify-service run --host $(HOST) --port $(PORT)

$(CHROMIUM):
	@echo "installing Debian's chromium package for the browser tests"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y --no-install-recommends chromium || \
	  ( $(if $(filter 0,$(shell id -u)),,sudo) apt-get update && \
	    $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y --no-install-recommends chromium )

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund
	@touch $@

$(ASYNCAPI_PARSER): tests/contract/package.json tests/contract/package-lock.json
	npm ci --prefix tests/contract --no-audit --no-fund
	@touch $@

## test: the whole suite (SQLite always; PostgreSQL too when VERIFY_TEST_DATABASE_URL is set; real Chromium),
## on TEST_WORKERS processes; PYTEST_ARGS come last, so they may override (PYTEST_ARGS="-n 0 tests/unit")
# The suite starts a hundred Python processes (CLI, gunicorn, schedulers) that import the same modules: let them
# keep compiled bytecode (__pycache__, ignored by git) even where the environment turns that off.
test test-fast: export PYTHONDONTWRITEBYTECODE :=
test: $(STAMP_TEST) $(CHROMIUM) $(AXE) $(ASYNCAPI_PARSER)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

## test-fast: the same without the tests marked slow (real processes, Chromium, fuzzers, state-machine runs)
test-fast: $(STAMP_TEST) $(ASYNCAPI_PARSER)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

$(WRK):
	@echo "installing Debian's wrk package for the HTTP benchmarks"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y --no-install-recommends wrk || \
	  ( $(if $(filter 0,$(shell id -u)),,sudo) apt-get update && \
	    $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y --no-install-recommends wrk )

## bench: every tests/bench/bench_*.py, one after the other (figures on stdout; not part of `make test`).
## PostgreSQL: VERIFY_BENCH_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/bench; the relay and
## pages benchmarks default to .../bench_pages), created, migrated and seeded by the scripts themselves.
## BENCH_ARGS go to every script; each takes the flags it knows (--check is common to all).
bench: $(STAMP_TEST) $(WRK)
	@set -e; for script in tests/bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script $(BENCH_ARGS); echo; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
