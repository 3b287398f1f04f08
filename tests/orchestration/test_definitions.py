"""The Dagster code location: it loads cheaply and its graph is what ops expect."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg

from ingestion.tables import SYSTEMS, TABLES
from orchestration.definitions import defs


def test_every_raw_table_is_an_asset_keyed_like_its_dbt_source():
    keys = {tuple(k.path) for k in defs.resolve_all_asset_keys()}
    for system in SYSTEMS:
        for table in (*TABLES[system], "_quarantine"):
            assert (f"raw_{system}", table) in keys


def test_staging_models_depend_on_the_raw_tables():
    graph = defs.resolve_asset_graph()
    parents = graph.get(dg.AssetKey(["staging", "stg_crm__contacts"])).parent_keys
    assert dg.AssetKey(["raw_crm", "contacts"]) in parents


def test_jobs_run_in_process():
    job = defs.resolve_job_def("nightly")
    assert job.executor_def.name == "in_process"


def test_loading_the_code_location_imports_no_heavy_library():
    code = (
        "import sys, json; from orchestration.definitions import defs; "
        "print(json.dumps([m for m in ('dlt', 'dbt', 'great_expectations', 'pandas', 'dagster_dbt') "
        "if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
