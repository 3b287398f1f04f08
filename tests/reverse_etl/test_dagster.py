"""The plan and push assets in a real (in-process) Dagster run: counts in metadata, approval
through the plan step's run config."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.resources import WarehouseWriter
from orchestration.reverse_etl import PLAN_KEY, PUSH_KEY, build_reverse_etl_assets
from orchestration.sandbox_runtime import source_env
from tests.reverse_etl.conftest import Stage


def materialize(config: dict[str, object] | None = None) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {"reverse_etl__plan": {"config": config}}} if config else None
    return dg.materialize(
        build_reverse_etl_assets(),
        resources={"warehouse_writer": WarehouseWriter(wait_seconds=0)},
        run_config=run_config,
        instance=dg.DagsterInstance.ephemeral(),
    )


def metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_plan_counts_in_metadata_and_approval_through_run_config(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUEUP_HOME", str(stage.warehouse.home))
    for name, value in source_env(stage.sandbox.base_urls).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REVERSE_ETL__CRM__PUSH", "true")
    monkeypatch.setenv("REVERSE_ETL__BILLING__PUSH", "true")
    stage.execute(
        "update seeds.ownership set conflict_policy = 'review' where entity = 'contact' and field = 'email'"
    )
    first = materialize()
    assert first.success
    plan = metadata(first, PLAN_KEY)
    held = plan["billing_review"]
    assert isinstance(held, int) and held >= 1
    assert plan["crm_write"] and plan["crm_mode"] == "push"
    pushed = metadata(first, PUSH_KEY)
    assert pushed["crm_applied"] == plan["crm_records_to_write"]
    assert not [w for w in stage.writes("billing") if "email" in w["fields"]]
    second = materialize({"approve_rules": ["email_mismatch"], "approved_by": "ops"})
    assert second.success
    assert metadata(second, PLAN_KEY)["billing_write"] == held
    assert len([w for w in stage.writes("billing") if "email" in w["fields"]]) == held
