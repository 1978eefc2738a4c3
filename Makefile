# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PROVTRACK_PORT ?= 8641

.PHONY: run test lint typecheck unit integration bench chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/provtrack db upgrade
	$(BIN)/provtrack serve --port $(PROVTRACK_PORT) --demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check provtrack tests bench
	$(BIN)/ruff format --check provtrack tests bench
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: $(DEV_STAMP)
	$(BIN)/python bench/create_orders.py

# The long form of the chaos test (the short one runs in `make test`): CHAOS_SECONDS of SIGKILLs.
CHAOS_SECONDS ?= 600
chaos: $(DEV_STAMP)
	$(BIN)/python -m tests.e2e.chaos --seconds $(CHAOS_SECONDS) $(if $(DATABASE),--database $(DATABASE))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache provtrack.db provtrack.db-*
