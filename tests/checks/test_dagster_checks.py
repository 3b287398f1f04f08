"""The suites as Dagster asset checks: attached to the assets they judge, blocking at error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from checks import suites
from orchestration.checks import build_asset_checks, check_key
from tests.conftest import Warehouse

CAMPAIGN_DAYS = dg.AssetKey(["intermediate", "int_ads__campaign_days"])
AD_SPEND = dg.AssetKey(["marts", "fct_ad_spend_daily"])
JOB = "ad_days_with_checks"


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    """The code location (checks included) plus a job over one asset and its checks."""
    from orchestration.definitions import build_defs

    ours = [check_key(c) for c in suites.catalogue() if dg.AssetKey(list(c.asset)) == CAMPAIGN_DAYS]
    job = dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.assets(CAMPAIGN_DAYS, AD_SPEND).without_checks()
        | dg.AssetSelection.checks(*ours),
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions.merge(build_defs(), dg.Definitions(jobs=[job]))


def test_every_check_is_on_an_asset_of_the_code_location(defs: dg.Definitions):
    graph = defs.resolve_asset_graph()
    check_keys = set(graph.asset_check_keys)
    ours = {check_key(c) for c in suites.catalogue()}
    assert ours <= check_keys
    assets = set(graph.get_all_asset_keys())
    assert {k.asset_key for k in ours} <= assets


def test_error_levels_block_and_warnings_do_not(defs: dg.Definitions):
    graph = defs.resolve_asset_graph()
    contacts = dg.AssetKey(["staging", "stg_crm__contacts"])
    specs = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys if k.asset_key == contacts}
    assert specs["completeness"].blocking and specs["uniqueness"].blocking
    # odd values are drift to report: they never block
    assert not specs["validity__email"].blocking and not specs["validity__dates"].blocking
    assert specs["completeness"].additional_deps[0].asset_key == dg.AssetKey(["raw_crm", "contacts"])


def test_every_step_that_reads_a_layer_waits_for_its_checks(defs: dg.Definitions):
    from orchestration.definitions import NIGHTLY

    assert [d.node_def.name for d in build_asset_checks()] == [f"checks_{layer}" for layer in suites.LAYERS]
    graph = defs.resolve_job_def(NIGHTLY).graph
    producers = {f"checks_{layer}": f"dbt_{layer}" for layer in suites.LAYERS[1:]}
    waits = 0
    for node in graph.node_names():
        upstream = {o.node.name for o in graph.dependency_structure.all_upstream_outputs_from_node(node)}
        if node.startswith("checks_"):
            continue
        for check_step, producer in [*producers.items(), ("checks_raw", "ingest")]:
            if producer in upstream:
                assert check_step in upstream, (node, check_step)
                waits += 1
    assert waits >= len(suites.LAYERS)


@pytest.fixture
def home(built_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    copy = built_warehouse.copy_to(tmp_path / "home")
    monkeypatch.setenv("TRUEUP_HOME", str(copy.home))
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    yield copy


def run_job(defs: dg.Definitions) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == CAMPAIGN_DAYS}


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events() if e.asset_key}


def inflate_google_conversions(w: Warehouse, off_by_pct: float) -> None:
    """Make Google report `off_by_pct` per cent more conversions than the CRM has paid leads."""
    window = "between current_date - 90 and current_date - 1"
    with duckdb.connect(str(w.file)) as con:
        row = con.execute(
            "select (select sum(crm_leads) from intermediate.int_crm__paid_leads_by_campaign_day "
            f"where platform = 'google' and lead_date {window}) / (select sum(conversions) "
            f"from intermediate.int_ads__campaign_days where platform = 'google' and spend_date {window})"
        ).fetchone()
        assert row is not None
        factor = (1 + off_by_pct / 100) * float(row[0])
        raw = "raw_ads.google_campaign_metrics"
        con.execute(f"update {raw} set metrics__conversions = {factor} * metrics__conversions")


@pytest.mark.slow
def test_an_integrity_failure_stops_the_assets_downstream(defs: dg.Definitions, home: Warehouse):
    with duckdb.connect(str(home.file)) as con:  # one ad day loaded twice: a key is no longer unique
        con.execute(
            "insert into raw_ads.google_campaign_metrics select * replace ('twice' as _dlt_id) "
            "from raw_ads.google_campaign_metrics order by _dlt_id limit 1"
        )
    result = run_job(defs)
    failed = evaluations(result)["uniqueness"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["observed"].value == 1
    assert CAMPAIGN_DAYS in materialized(result)
    assert AD_SPEND not in materialized(result)
    assert not result.success
    with duckdb.connect(str(home.file), read_only=True) as con:
        stored = con.execute(
            "select check_name, status, severity from checks.check_results where not passed and run_id = ?",
            [result.run_id],
        ).fetchall()
    assert stored == [("uniqueness", "failed", "error")]


@pytest.mark.slow
def test_drift_warns_and_does_not_stop_them(defs: dg.Definitions, home: Warehouse):
    inflate_google_conversions(home, 200)  # far over the warn level: still only drift
    result = run_job(defs)
    warned = evaluations(result)["parity__google_conversions"]
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.metadata["observed"].value == pytest.approx(200, abs=1)
    assert all(e.passed for name, e in evaluations(result).items() if name != "parity__google_conversions")
    assert AD_SPEND in materialized(result)
    assert result.success
