"""The Dagster code location: it loads cheaply and its graph is what ops expect."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from ingestion.tables import SYSTEMS, TABLES
from orchestration import transform
from orchestration.audit import AUDIT_KEY
from orchestration.definitions import defs
from orchestration.jobs import REVERSE_ETL_GROUP
from orchestration.publish import PUBLISH_KEY
from orchestration.report import REPORT_KEY
from orchestration.resources import ops_settings
from orchestration.reverse_etl import PLAN_KEY, PUSH_KEY

LAYERS = ("seeds", "staging", "intermediate", "marts", "reconciliation", "reverse_etl")


def keys() -> set[tuple[str, ...]]:
    return {tuple(k.path) for k in defs.resolve_all_asset_keys()}


def groups() -> dict[str, set[tuple[str, ...]]]:
    graph = defs.resolve_asset_graph()
    out: dict[str, set[tuple[str, ...]]] = {}
    for key in graph.get_all_asset_keys():
        out.setdefault(graph.get(key).group_name, set()).add(tuple(key.path))
    return out


def step_names(job: str) -> set[str]:
    return set(defs.resolve_job_def(job).graph.node_dict)


def test_every_raw_table_is_an_asset_keyed_like_its_dbt_source():
    for system in SYSTEMS:
        for table in (*TABLES[system], "_quarantine"):
            assert (f"raw_{system}", table) in keys()


def test_asset_groups_are_the_layers_plus_ingestion_and_ops():
    found = groups()
    # dlt child tables the dbt sources read (invoices__lines__data, ...) are not ingest assets
    # yet; Dagster keys them as external assets in the default group.
    assert all(k[0].startswith("raw_") and "__" in k[1] for k in found.pop("default", set()))
    assert set(found) == {"ingestion", *LAYERS, "ops", "webhooks", REVERSE_ETL_GROUP}
    assert groups()["ops"] == {tuple(PUBLISH_KEY.path), tuple(REPORT_KEY.path), tuple(AUDIT_KEY.path)}
    assert found[REVERSE_ETL_GROUP] == {tuple(PLAN_KEY.path), tuple(PUSH_KEY.path)}
    for layer in LAYERS:
        assert {k[0] for k in found[layer]} == {layer}, layer


def test_the_layers_hold_the_contract_models():
    expected = {
        ("staging", "stg_crm__contacts"),
        ("staging", "stg_billing__invoices"),
        ("staging", "stg_scheduling__events"),
        ("staging", "stg_ads__campaigns"),
        ("intermediate", "int_identity__resolved"),
        ("intermediate", "int_identity__review"),
        ("marts", "dim_customers"),
        ("marts", "mart_funnel_by_channel_month"),
        ("reconciliation", "findings"),
        ("reconciliation", "findings_daily"),
        ("reverse_etl", "outbox_crm"),
        ("reverse_etl", "outbox_billing"),
    }
    assert expected <= keys()


@pytest.mark.parametrize(
    ("model", "raw"),
    [
        ("stg_crm__contacts", ("raw_crm", "contacts")),
        ("stg_billing__invoices", ("raw_billing", "invoices")),
        ("stg_scheduling__events", ("raw_scheduling", "scheduled_events")),
        ("stg_ads__google_campaign_days", ("raw_ads", "google_campaign_metrics")),
    ],
)
def test_staging_models_depend_on_the_raw_tables(model, raw):
    parents = defs.resolve_asset_graph().get(dg.AssetKey(["staging", model])).parent_keys
    assert dg.AssetKey(list(raw)) in parents


def test_lineage_runs_from_raw_through_the_layers_to_the_report():
    graph = defs.resolve_asset_graph()
    upstream = graph.get(dg.AssetKey(["reconciliation", "findings"])).parent_keys
    assert dg.AssetKey(["reconciliation", "findings_current"]) in upstream
    ancestors = graph.upstream_key_iterator(dg.AssetKey(["reconciliation", "findings"]))
    assert dg.AssetKey(["raw_crm", "contacts"]) in set(ancestors)
    assert graph.get(REPORT_KEY).parent_keys == {PUBLISH_KEY}


def test_reverse_etl_plans_after_the_outboxes_and_pushes_before_publish():
    graph = defs.resolve_asset_graph()
    outboxes = {dg.AssetKey(["reverse_etl", "outbox_crm"]), dg.AssetKey(["reverse_etl", "outbox_billing"])}
    assert graph.get(PLAN_KEY).parent_keys == outboxes
    assert graph.get(PUSH_KEY).parent_keys == {PLAN_KEY}
    assert PUSH_KEY in graph.get(PUBLISH_KEY).parent_keys
    assert {"reverse_etl__plan", "reverse_etl__push"} <= step_names("nightly")
    assert not {"reverse_etl__plan", "reverse_etl__push"} & step_names("sync")


def test_publish_depends_on_every_asset_the_runs_build():
    graph = defs.resolve_asset_graph()
    built = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    assert graph.get(PUBLISH_KEY).parent_keys == built - {PUBLISH_KEY, REPORT_KEY}


def test_dbt_tests_and_code_checks_are_asset_checks():
    check_keys = defs.resolve_asset_graph().asset_check_keys
    by_asset: dict[tuple[str, ...], set[str]] = {}
    for key in check_keys:
        by_asset.setdefault(tuple(key.asset_key.path), set()).add(key.name)
    assert any(name.startswith("unique_") for name in by_asset[("staging", "stg_crm__contacts")])
    for system in SYSTEMS:  # a freshness check per source, on its raw tables
        assert "freshness_check" in by_asset[(f"raw_{system}", TABLES[system][0])]
    assert "source_count" in by_asset[("raw_crm", "contacts")]  # HubSpot's own total against raw
    assert "nothing_missing" in by_asset[tuple(AUDIT_KEY.path)]


def test_jobs_are_pinned_and_run_in_process_as_writers():
    names = {job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    assert names == {"nightly", "sync", "refresh", "webhooks", "audit", "findings_review", "path_health"}
    for name in names:
        job = defs.resolve_job_def(name)
        assert job.executor_def.name == "in_process"
        # path health reads the ops store only: it runs beside a writer
        assert job.tags.get("trueup/writer") == (None if name == "path_health" else "warehouse")


def test_nightly_runs_every_step_but_the_freshness_checks():
    steps = step_names("nightly")
    assert "ingest" in steps
    assert {f"dbt_{layer}" for layer in LAYERS} <= steps
    assert {"ops__published_warehouse", "ops__nightly_report"} <= steps
    assert any(s.startswith("checks_") for s in steps)
    assert not any(s.startswith("freshness_check") for s in steps)
    assert "integration_path_health" not in steps  # the path-health job's, between runs
    assert step_names("refresh") == steps


def test_sync_ingests_rebuilds_what_analysts_read_and_publishes():
    steps = step_names("sync")
    assert "ingest" in steps
    assert {"dbt_staging", "dbt_intermediate", "dbt_marts", "ops__published_warehouse"} <= steps
    assert not steps & {"dbt_reconciliation", "dbt_reverse_etl", "dbt_seeds", "ops__nightly_report"}


def default_op_config(job: str, op: str) -> dict:
    ops = defs.resolve_job_def(job).run_config_schema.config_type.fields["ops"].config_type
    return ops.fields[op].default_value


def test_refresh_reloads_every_source_by_run_config():
    assert default_op_config("refresh", "ingest") == {
        "config": {"full_refresh": list(SYSTEMS), "scheduling_events": []}
    }
    assert default_op_config("nightly", "ingest") == {"config": {"full_refresh": [], "scheduling_events": []}}


def test_schedules_and_sensors_are_pinned():
    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    assert set(schedules) == {
        "nightly_schedule",
        "sync_schedule",
        "audit_schedule",
        "path_health_schedule",
    }
    assert schedules["audit_schedule"].cron_schedule == "0 1 * * 0"  # weekly, before the nightly
    assert schedules["audit_schedule"].job_name == "audit"
    assert schedules["nightly_schedule"].cron_schedule == "0 2 * * *"
    assert schedules["nightly_schedule"].job_name == "nightly"
    assert schedules["sync_schedule"].cron_schedule == "0 * * * *"
    assert schedules["sync_schedule"].job_name == "sync"
    for schedule in schedules.values():
        assert schedule.execution_timezone == ops_settings().timezone  # UTC unless configured
    sensors = {s.name for s in defs.get_repository_def().sensor_defs}
    assert sensors == {"run_failure_alert", "freshness_checks_sensor", "webhook_inbox_sensor"}


def test_time_zone_and_crons_are_configuration(tmp_path):
    code = (
        "import json; from orchestration.definitions import defs; "
        "print(json.dumps({s.name: [s.cron_schedule, s.execution_timezone] "
        "for s in defs.get_repository_def().schedule_defs}))"
    )
    env = {**os.environ, "TRUEUP_TIMEZONE": "Europe/Berlin", "TRUEUP_NIGHTLY_CRON": "30 3 * * *"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    pinned = json.loads(out.stdout.strip().splitlines()[-1])
    assert pinned["nightly_schedule"] == ["30 3 * * *", "Europe/Berlin"]
    assert pinned["sync_schedule"] == ["0 * * * *", "Europe/Berlin"]


def test_a_bad_time_zone_fails_loading_with_a_clear_message():
    env = {**os.environ, "TRUEUP_TIMEZONE": "Mars/Olympus"}
    out = subprocess.run(
        [sys.executable, "-c", "import orchestration.definitions"], env=env, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "Mars/Olympus" in out.stderr and "IANA" in out.stderr


def test_loading_the_code_location_imports_no_heavy_library_but_dagster_dbt():
    # dagster-dbt, and dbt-core's Python package through it, are the one heavy import: `@dbt_assets`
    # is built when the code location loads (from the prepared manifest; nothing is parsed)
    code = (
        "import sys, json; from orchestration.definitions import defs; defs.resolve_asset_graph(); "
        "print(json.dumps([m for m in ('dlt', 'great_expectations', 'pandas', 'dbt.parser.manifest') "
        "if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_layers_follow_the_manifest():
    assert {a.node_def.name for a in transform.build_dbt_assets()} == {f"dbt_{layer}" for layer in LAYERS}


def manifest() -> dict:
    """The manifest as `trueup prepare` wrote it, read without the code under test."""
    from orchestration.dbt import MANIFEST

    return json.loads(MANIFEST.read_text())


def test_every_model_and_seed_is_an_asset_keyed_schema_and_name_in_its_layer():
    nodes = [n for n in manifest()["nodes"].values() if n["resource_type"] in ("model", "seed")]
    found = groups()
    assert nodes
    for node in nodes:
        assert (node["schema"], node["name"]) in found[node["schema"]], node["unique_id"]
    dbt_keys = set().union(*(found[layer] for layer in LAYERS))
    assert dbt_keys == {(n["schema"], n["name"]) for n in nodes}


def test_every_dbt_test_is_a_check_on_its_model_in_the_latest_layer_it_reads_blocking_at_error():
    raw = manifest()
    nodes = raw["nodes"]
    graph = defs.resolve_asset_graph()
    expected = {}
    for test in (n for n in nodes.values() if n["resource_type"] == "test"):
        parents = sorted(
            (nodes[u] for u in test["depends_on"]["nodes"] if u in nodes), key=lambda n: n["unique_id"]
        )
        latest = max(LAYERS.index(p["schema"]) for p in parents)
        in_latest = [p for p in parents if LAYERS.index(p["schema"]) == latest]
        attached = next((p for p in in_latest if p["unique_id"] == test.get("attached_node")), in_latest[0])
        key = dg.AssetCheckKey(dg.AssetKey([attached["schema"], attached["name"]]), test["name"])
        expected[key] = test["config"]["severity"].lower() == "error"
    assert expected
    dbt_checks = {
        k for k in graph.asset_check_keys if graph.get_check_spec(k).metadata.get("dagster_dbt/unique_id")
    }
    assert dbt_checks == set(expected)
    for key, blocking in expected.items():
        assert graph.get_check_spec(key).blocking == blocking, key
