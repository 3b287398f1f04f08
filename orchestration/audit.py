"""The completeness audit in Dagster: an asset (`ops/completeness_audit`) with a check that
nothing the sources hold is missing from raw, the `audit` job that runs it, and its weekly
schedule (`TRUEUP_AUDIT_CRON`, by default Sunday 01:00, before the nightly run publishes the
figures)."""

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from ingestion.tables import SYSTEMS
from orchestration.publish import GROUP
from orchestration.resources import WRITER_TAG, WRITER_TAG_VALUE, OpsSettings

if TYPE_CHECKING:  # imports dlt: not at code-location load
    from ingestion.audit import ResourceAudit

AUDIT_KEY = dg.AssetKey(["ops", "completeness_audit"])
AUDIT_JOB = "audit"
AUDIT_SCHEDULE = "audit_schedule"
CHECK = "nothing_missing"


def audit_check(audits: Sequence["ResourceAudit"]) -> dg.AssetCheckResult:
    """Passes when every record the sources hold is in raw (or quarantined) after the audit's
    re-fetch; the numbers per system go into the metadata."""
    remaining = sum(a.remaining for a in audits)
    metadata: dict[str, Any] = {
        "missing": sum(a.missing for a in audits),
        "stale": sum(a.stale for a in audits),
        "refetched": sum(a.refetched for a in audits),
        "remaining": remaining,
        "requests": sum(a.requests for a in audits),
    }
    for system in SYSTEMS:
        mine = [a for a in audits if a.system == system]
        if mine:
            metadata[f"{system}_missing"] = sum(a.missing + a.stale for a in mine)
            metadata[f"{system}_budget_share"] = round(sum(a.budget_share for a in mine), 6)
    return dg.AssetCheckResult(
        asset_key=AUDIT_KEY,
        check_name=CHECK,
        passed=remaining == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=None
        if remaining == 0
        else f"{remaining:,} records are still missing or stale after the re-fetch",
    )


def build_audit_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=AUDIT_KEY,
        group_name=GROUP,
        kinds={"duckdb"},
        description=(
            "Every source's keys and stamps against raw: what is missing or stale is fetched again by "
            "id (`trueup audit` runs the same)."
        ),
        required_resource_keys={"warehouse_writer"},
        check_specs=[
            dg.AssetCheckSpec(CHECK, asset=AUDIT_KEY, description="nothing the sources hold is missing")
        ],
    )
    def completeness_audit(context: dg.AssetExecutionContext) -> Iterator[Any]:
        from ingestion.audit import run_audit

        audits = run_audit(SYSTEMS, report=context.log.info)
        yield dg.MaterializeResult(
            metadata={
                "resources": len(audits),
                "at_source": sum(a.at_source for a in audits),
                "refetched": sum(a.refetched for a in audits),
                "remaining": sum(a.remaining for a in audits),
                "seconds": round(sum(a.seconds for a in audits), 2),
            }
        )
        yield audit_check(audits)

    return completeness_audit


def audit_job() -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        AUDIT_JOB,
        selection=dg.AssetSelection.assets(AUDIT_KEY),
        description="Compare every source with raw, key by key, and fetch what is missing or stale.",
        executor_def=dg.in_process_executor,
        tags={WRITER_TAG: WRITER_TAG_VALUE},
    )


def audit_schedule(settings: OpsSettings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=AUDIT_SCHEDULE,
        job_name=AUDIT_JOB,
        cron_schedule=settings.audit_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"The completeness audit at `{settings.audit_cron}` ({settings.timezone}).",
    )


def audit_defs(settings: OpsSettings) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_audit_asset()], jobs=[audit_job()], schedules=[audit_schedule(settings)]
    )
