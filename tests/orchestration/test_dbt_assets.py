"""The dbt layers as dagster-dbt assets, run for real on a copy of the built warehouse: a
failed blocking dbt test stops the next layer, and materializations carry row counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration import transform
from tests.conftest import Warehouse

GOOGLE_DAYS = dg.AssetKey(["staging", "stg_ads__google_campaign_days"])
CAMPAIGN_DAYS = dg.AssetKey(["intermediate", "int_ads__campaign_days"])
UNIQUE = "unique_stg_ads__google_campaign_days_account_campaign_date"
JOB = "google_days_and_campaign_days"


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    """The code location plus a job: one staging model with its dbt tests, and an intermediate
    model downstream of it (two layers, so two dbt steps)."""
    from orchestration.definitions import build_defs

    code_location = build_defs()
    graph = code_location.resolve_asset_graph()
    dbt_checks = [
        key
        for key in graph.asset_check_keys
        if key.asset_key == GOOGLE_DAYS and graph.get_check_spec(key).metadata.get("dagster_dbt/unique_id")
    ]
    job = dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.assets(GOOGLE_DAYS, CAMPAIGN_DAYS).without_checks()
        | dg.AssetSelection.checks(*dbt_checks),
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions.merge(code_location, dg.Definitions(jobs=[job]))


@pytest.fixture
def home(built_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    copy = built_warehouse.copy_to(tmp_path / "home")
    monkeypatch.setenv("TRUEUP_HOME", str(copy.home))
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    yield copy


@pytest.mark.slow
def test_a_failed_dbt_test_stops_the_next_layer_and_counts_are_in_the_metadata(
    defs: dg.Definitions, home: Warehouse
):
    with duckdb.connect(str(home.file)) as con:  # one metrics row twice: the staging key repeats
        metrics = "raw_ads.google_campaign_metrics"
        con.execute(f"insert into {metrics} select * from {metrics} limit 1")
    result = defs.resolve_job_def(JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    evaluations = {
        e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == GOOGLE_DAYS
    }
    assert not evaluations[UNIQUE].passed and evaluations[UNIQUE].severity == dg.AssetCheckSeverity.ERROR
    assert evaluations["not_null_stg_ads__google_campaign_days_campaign_id"].passed
    materialized = {e.asset_key: e for e in result.get_asset_materialization_events() if e.asset_key}
    assert GOOGLE_DAYS in materialized
    assert CAMPAIGN_DAYS not in materialized  # the blocking check stopped the intermediate step
    assert not result.success
    with duckdb.connect(str(home.file), read_only=True) as con:
        rows = con.execute("select count(*) from staging.stg_ads__google_campaign_days").fetchall()[0][0]
    metadata = materialized[GOOGLE_DAYS].materialization.metadata  # type: ignore[union-attr]
    assert metadata["dagster/row_count"].value == rows


def test_a_test_reading_two_layers_is_shown_and_run_on_the_later_one():
    manifest = transform._manifest()
    nodes = manifest["nodes"]
    test = next(n for n in nodes.values() if n["name"] == "assert_fct_ad_spend_reconcile_to_staging")
    assert nodes[transform.check_target(test, nodes)]["name"] == "fct_ad_spend_daily"
    assert test["config"]["meta"]["dagster"]["ref"] == {"name": "fct_ad_spend_daily"}
    # a test reading a model that no model of its layer depends on is named in the layer's selection
    review = next(n for n in nodes.values() if n["name"] == "assert_outbox_never_uses_review_links")
    assert transform.layer_select("reverse_etl", manifest).split() == [
        "config.schema:reverse_etl",
        review["name"],
    ]
    assert transform.layer_select("staging", manifest) == "config.schema:staging"
