# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PROVTRACK_PORT ?= 8641
# The browser tests drive Debian's Chromium (Playwright's own browser downloads are not used).
CHROMIUM := /usr/bin/chromium
WRK := /usr/bin/wrk

.PHONY: run shell test lint typecheck unit integration bench bench-dashboard screenshots chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

$(WRK):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y wrk

run: $(RUN_STAMP)
	$(BIN)/provtrack db upgrade
	@echo "dashboard: http://127.0.0.1:$(PROVTRACK_PORT)/"
	$(BIN)/provtrack serve --port $(PROVTRACK_PORT) --demo

# A shell with .venv/bin on PATH, so that `provtrack ...` works as the README writes it.
shell: $(RUN_STAMP)
	@echo "provtrack is on PATH in this shell ($(BIN)); exit to leave"
	@PATH="$(CURDIR)/$(BIN):$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)" $${SHELL:-/bin/sh} -i

lint: $(DEV_STAMP)
	$(BIN)/ruff check provtrack tests bench
	$(BIN)/ruff format --check provtrack tests bench
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# Two test processes (pytest-xdist): many tests wait on servers and subprocesses, not on the CPU.
TEST_PROCESSES ?= 2

test: lint typecheck | $(CHROMIUM)
	$(BIN)/pytest -n $(TEST_PROCESSES)

# The whole suite (bench/suite.py --help); it rewrites the generated section of docs/benchmarks.md.
# The API benches load with Debian's wrk, installed here like Chromium when missing.
bench: $(DEV_STAMP) | $(WRK)
	$(BIN)/python bench/suite.py

bench-dashboard: $(DEV_STAMP)
	$(BIN)/python bench/dashboard.py --orders 100000

screenshots: $(DEV_STAMP) | $(CHROMIUM)
	$(BIN)/python -m tests.e2e.screenshots docs/screenshots

# The long form of the chaos test (the short one runs in `make test`): CHAOS_SECONDS of SIGKILLs.
CHAOS_SECONDS ?= 600
chaos: $(DEV_STAMP)
	$(BIN)/python -m tests.e2e.chaos --seconds $(CHAOS_SECONDS) $(if $(DATABASE),--database $(DATABASE))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache provtrack.db provtrack.db-*
