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
BI_CLIENT := .venv-duckdb1
BI_DUCKDB := 1.1.3

.PHONY: install demo test bench lint format ui browser-deps postgres-deps clean

install: $(VENV)/.installed $(MANIFEST) $(DAGSTER_HOME)/dagster.yaml $(BI_CLIENT)/.installed

# Bytecode is compiled here because interpreters running with PYTHONDONTWRITEBYTECODE would
# otherwise recompile dlt, dbt and Dagster in every process they start (~2 s each).
$(VENV)/.installed: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --extra dev --python $(PYTHON) --compile-bytecode
	@$(BIN)/python -m compileall -q -j 0 ingestion sandbox orchestration checks reverse_etl >/dev/null
	@touch $@

# The dbt manifest is built here, at install time, so nothing parses dbt at import.
$(MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	$(BIN)/trueup prepare

# A DuckDB 1.x client in an environment of its own, as BI tools' drivers embed one: the tests open
# the published copy with it (no network at test time). Without it they skip and say why.
$(BI_CLIENT)/.installed:
	@($(UV) venv -q --python $(PYTHON) $(BI_CLIENT) && $(UV) pip install -q --python $(BI_CLIENT)/bin/python \
		duckdb==$(BI_DUCKDB) pytz && touch $@) \
		|| echo "notice: could not prepare the DuckDB $(BI_DUCKDB) client in $(BI_CLIENT); its tests will be skipped"

# The Dagster instance: telemetry off, and a run queue that lets one warehouse writer run at a
# time (the config lives in orchestration/ui.py, which `trueup ui` also writes when missing).
$(DAGSTER_HOME)/dagster.yaml: orchestration/ui.py | $(VENV)/.installed
	@$(BIN)/trueup ui --write-instance-config >/dev/null

demo: install
	$(BIN)/trueup demo

test: install browser-deps postgres-deps
	$(BIN)/pytest -q

bench: install postgres-deps
	$(UV) sync --frozen --extra dev --extra bench --python $(PYTHON) --compile-bytecode --inexact
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

# `dagster dev` on 127.0.0.1:$(UI_PORT) with the sandbox serving the four APIs; Ctrl-C stops both.
UI_PORT ?= 3000
ui: install
	$(BIN)/trueup ui --port $(UI_PORT)

# Headless Chromium for the browser test (Debian's package; installed only when running as root).
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium and chromium-driver for the browser test ..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
			|| echo "notice: could not install chromium; the browser test will be skipped"; \
	else \
		echo "notice: chromium/chromedriver are missing (install Debian's chromium and chromium-driver as root); the browser test will be skipped"; \
	fi

# PostgreSQL and PL/Python for the server-warehouse tests (Debian's packages; installed only when
# running as root). The tests start their own server in a temporary directory and skip without one.
postgres-deps:
	@if ls /usr/lib/postgresql/*/lib/plpython3.so >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's postgresql and its PL/Python for the server-warehouse tests ..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
			&& major=$$(ls /usr/lib/postgresql | sort -n | tail -1) \
			&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-plpython3-$$major >/dev/null) \
			|| echo "notice: could not install postgresql; the server-warehouse tests will be skipped"; \
	else \
		echo "notice: PostgreSQL with PL/Python is missing (install Debian's postgresql and postgresql-plpython3-NN as root); the server-warehouse tests will be skipped"; \
	fi

clean:
	rm -rf $(TRUEUP_HOME) dbt_project/target dbt_project/logs $(BI_CLIENT)
