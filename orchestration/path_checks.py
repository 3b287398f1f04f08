"""Integration-path health as Dagster asset checks, the `path_health` job and its schedule.

Five checks per registered path (orchestration/health.py), on the asset the path feeds. They
read the ops store and dlt's working folders, never the warehouse, so the job runs beside a
writer; its schedule evaluates them between runs (right after an ingest they would mostly
pass, and a failed ingest would skip them).
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from orchestration import health
from orchestration.resources import OpsSettings, setting

JOB = "path_health"
SCHEDULE = "path_health_schedule"
DEFAULT_CRON = "*/15 * * * *"


def check_name(path: health.IntegrationPath, metric: str) -> str:
    return f"{path.name}_{metric}"


def _spec(path: health.IntegrationPath, metric: str) -> dg.AssetCheckSpec:
    what = {
        "last_success": "time since the path last succeeded",
        "latency": "seconds its last successful attempt took",
        "failure_rate": f"share of its last {health.ATTEMPT_WINDOW} attempts that failed",
        "rejected": "records its last attempt rejected",
        "backlog": "work waiting for it",
    }[metric]
    return dg.AssetCheckSpec(
        check_name(path, metric),
        asset=dg.AssetKey(list(path.asset)),
        description=(
            f"Integration path `{path.name}` ({path.kind}): {what}, at most "
            f"{path.threshold(metric):g} {health.UNITS[metric]}. Runbook: {path.runbook_link(metric)}"
        ),
        metadata={"path": path.name, "metric": metric, "runbook": path.runbook_link(metric)},
    )


def build_path_checks() -> dg.AssetChecksDefinition:
    paths = health.registered_paths()
    specs = [_spec(p, m) for p in paths for m in health.METRICS]
    by_key = {
        dg.AssetCheckKey(dg.AssetKey(list(p.asset)), check_name(p, m)): (p, m)
        for p in paths
        for m in health.METRICS
    }

    @dg.multi_asset_check(
        name="integration_path_health",
        specs=specs,
        can_subset=True,
        description="Integration-path health: last success, latency, failure rate, rejected, backlog.",
    )
    def integration_path_health(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        wanted = {by_key[k][0].name for k in context.selected_asset_check_keys if k in by_key}
        for path, measured in health.evaluate():
            if path.name not in wanted:
                continue
            for verdict in health.judge(path, measured, _now()):
                key = dg.AssetCheckKey(dg.AssetKey(list(path.asset)), check_name(path, verdict.metric))
                if key in context.selected_asset_check_keys:
                    yield to_result(path, verdict)

    return integration_path_health


def _now() -> datetime:
    return datetime.now(UTC)


def to_result(path: health.IntegrationPath, verdict: health.Verdict) -> dg.AssetCheckResult:
    metadata: dict[str, dg.RawMetadataValue] = {
        "threshold": verdict.threshold,
        "runbook": verdict.runbook,
        "message": verdict.message,
    }
    if verdict.observed is not None:
        metadata["observed"] = round(verdict.observed, 4)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(list(path.asset)),
        check_name=check_name(path, verdict.metric),
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR if verdict.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
        description=f"{verdict.message}. Runbook: {verdict.runbook}",
        metadata=metadata,
    )


def path_health_defs(settings: OpsSettings) -> tuple[dg.Definitions, dg.AssetChecksDefinition]:
    checks = build_path_checks()
    job = dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.checks(checks),
        description="Evaluate every integration path's health checks (reads the ops store, never writes).",
        executor_def=dg.in_process_executor,
    )
    cron = setting("path_health_cron", DEFAULT_CRON) or DEFAULT_CRON
    schedule = dg.ScheduleDefinition(
        name=SCHEDULE,
        job=job,
        cron_schedule=cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Integration-path health at `{cron}` ({settings.timezone}).",
    )
    return dg.Definitions(asset_checks=[checks], jobs=[job], schedules=[schedule]), checks
