# trueup: `make demo` runs the whole job on the embedded sandbox; `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
UV := $(PYTHON) -m uv

export RUNTIME__DLTHUB_TELEMETRY := false
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export UV_PYTHON_DOWNLOADS := never
export TRUEUP_HOME ?= $(CURDIR)/.trueup
export DAGSTER_HOME ?= $(TRUEUP_HOME)/dagster

DBT_SOURCES := $(shell find dbt_project/models dbt_project/seeds dbt_project/macros dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml
MANIFEST := dbt_project/target/manifest.json

.PHONY: install demo test bench lint format ui clean

install: $(VENV)/.installed $(MANIFEST) $(DAGSTER_HOME)/dagster.yaml

$(VENV)/.installed: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --extra dev --python $(PYTHON)
	@touch $@

# The dbt manifest is built here, at install time, so nothing parses dbt at import.
$(MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	$(BIN)/trueup prepare

$(DAGSTER_HOME)/dagster.yaml:
	@mkdir -p $(DAGSTER_HOME)
	@printf 'telemetry:\n  enabled: false\n' > $@

demo: install
	$(BIN)/trueup demo

test: install
	$(BIN)/pytest -q

bench: install
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/tests

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/sqlfluff fix dbt_project/models dbt_project/tests

ui: install
	$(BIN)/trueup ui

clean:
	rm -rf $(TRUEUP_HOME) dbt_project/target dbt_project/logs
