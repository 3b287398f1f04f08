"""Reverse ETL in Dagster: a plan asset and a push asset after the outboxes, in the nightly
job (group `jobs.REVERSE_ETL_GROUP`), before publish. The plan's counts go into metadata;
approvals of `review` fields come through the plan step's run config. Nothing is pushed
while an integrity check of the run failed. Loading this module imports neither dlt nor duckdb.
"""

import json
from typing import Any

import dagster as dg

from ingestion.warehouse import paths
from orchestration.jobs import REVERSE_ETL_GROUP
from orchestration.publish import run_check_outcomes

PLAN_KEY = dg.AssetKey(["reverse_etl", "plan"])
PUSH_KEY = dg.AssetKey(["reverse_etl", "push"])
OUTBOX_KEYS = [dg.AssetKey(["reverse_etl", "outbox_crm"]), dg.AssetKey(["reverse_etl", "outbox_billing"])]
PLAN_STEP = "reverse_etl__plan"


class ReverseEtlConfig(dg.Config):
    """Run config of the plan step: approvals (finding ids, rules, a plan id or `latest`)
    recorded before planning, and a dry run (plan and record, push nothing)."""

    approve_findings: list[str] = []
    approve_rules: list[str] = []
    approve_plan: str = ""
    approved_by: str = "dagster"
    dry_run: bool = False


def skipped_here() -> dg.MaterializeResult | None:
    """On a warehouse that is not DuckDB, the step's result saying why it did nothing (the
    plans and the ledger live in the DuckDB warehouse); None where it runs."""
    from ingestion.engine import duckdb_only_message
    from reverse_etl.run import REVERSE_ETL

    engine = paths().engine
    if not engine.is_postgres:
        return None
    return dg.MaterializeResult(
        metadata={"skipped": duckdb_only_message(REVERSE_ETL), "warehouse": engine.display}
    )


def integrity_failures(context: dg.AssetExecutionContext) -> str | None:
    """The blocking checks (severity error) that failed in this run, named."""
    failed = [
        f"{c.asset}:{c.check}"
        for c in run_check_outcomes(context.instance, context.run_id)
        if not c.passed and c.severity == "ERROR"
    ]
    return ", ".join(sorted(failed)) or None


def plan_metadata(outcomes: list[Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for o in outcomes:
        metadata[f"{o.target}_plan_id"] = o.plan_id
        metadata[f"{o.target}_mode"] = o.mode
        metadata[f"{o.target}_status"] = o.status
        metadata[f"{o.target}_records_to_write"] = o.records_to_write
        for action, count in sorted(o.counts.items()):
            metadata[f"{o.target}_{action}"] = count
        if o.message:
            metadata[f"{o.target}_message"] = o.message
    metadata["plans"] = dg.MetadataValue.json([o.as_dict() for o in outcomes])
    return metadata


def build_reverse_etl_assets() -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=PLAN_KEY,
        deps=OUTBOX_KEYS,
        group_name=REVERSE_ETL_GROUP,
        kinds={"duckdb"},
        description=(
            "The outboxes against each target record's live value under the ownership contract: "
            "writes, in sync, conflicts (human edits), review, forbidden; recorded in reverse_etl.plans "
            "and plan_items. Run config approves review items before planning."
        ),
        required_resource_keys={"warehouse_writer"},
    )
    def reverse_etl_plan(context: dg.AssetExecutionContext, config: ReverseEtlConfig) -> dg.MaterializeResult:
        from reverse_etl import approve as approvals
        from reverse_etl.run import plan_all

        skipped = skipped_here()
        if skipped is not None:
            context.log.warning(str(skipped.metadata["skipped"]))  # type: ignore[index]
            return skipped
        where = paths()
        if config.approve_findings or config.approve_rules or config.approve_plan:
            recorded = approvals.approve(
                findings=config.approve_findings,
                rules=config.approve_rules,
                plan=config.approve_plan or None,
                by=config.approved_by,
                where=where,
                lock=False,  # the run holds the writer lock
            )
            context.log.info(f"approvals recorded: {recorded}")
        outcomes = plan_all(
            where,
            dry_run=config.dry_run,
            run_id=context.run_id,
            blocked_by=integrity_failures(context),
            progress=context.log.info,
        )
        return dg.MaterializeResult(metadata=plan_metadata(outcomes))

    @dg.asset(
        key=PUSH_KEY,
        deps=[PLAN_KEY],
        group_name=REVERSE_ETL_GROUP,
        kinds={"duckdb"},
        description=(
            "This run's plans pushed where pushing is on and nothing stopped them: batched, paced, "
            "retried; every attempt in reverse_etl.ledger, failures in dead_letters."
        ),
        required_resource_keys={"warehouse_writer"},
    )
    def reverse_etl_push(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from reverse_etl.run import push_all

        skipped = skipped_here()
        if skipped is not None:
            return skipped
        outcomes = push_all(paths(), run_id=context.run_id, progress=context.log.info)
        metadata: dict[str, Any] = {}
        for o in outcomes:
            metadata[f"{o.target}_status"] = o.status
            if o.push is not None:
                metadata[f"{o.target}_applied"] = o.push.applied
                metadata[f"{o.target}_dead_letters"] = o.push.dead_letters
                metadata[f"{o.target}_requests"] = o.push.requests
        metadata["pushes"] = dg.MetadataValue.json(
            json.loads(json.dumps([o.as_dict() for o in outcomes], default=str))
        )
        return dg.MaterializeResult(metadata=metadata)

    return [reverse_etl_plan, reverse_etl_push]


def reverse_etl_defs() -> dg.Definitions:
    return dg.Definitions(assets=build_reverse_etl_assets())
