"""Schedules and freshness: the nightly run, the hourly sync, a freshness check per source.

Time zone, crons and freshness limits are settings read when the definitions load
(`TRUEUP_TIMEZONE`, `TRUEUP_NIGHTLY_CRON`, `TRUEUP_SYNC_CRON`,
`TRUEUP_FRESHNESS_HOURS[_<SYSTEM>]`; see orchestration/resources.py).
"""

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg

from ingestion.tables import SYSTEMS
from orchestration import ingest
from orchestration.jobs import NIGHTLY, SYNC
from orchestration.resources import WRITER_TAG, WRITER_TAG_VALUE, OpsSettings, ops_settings

NIGHTLY_SCHEDULE = "nightly_schedule"
SYNC_SCHEDULE = "sync_schedule"
FRESHNESS_SENSOR = "freshness_checks_sensor"
BUSY = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def nightly_schedule(settings: OpsSettings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=NIGHTLY_SCHEDULE,
        job_name=NIGHTLY,
        cron_schedule=settings.nightly_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"The nightly reconciliation at `{settings.nightly_cron}` ({settings.timezone}).",
    )


def sync_schedule(settings: OpsSettings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=SYNC_SCHEDULE,
        job_name=SYNC,
        cron_schedule=settings.sync_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"The intraday sync at `{settings.sync_cron}` ({settings.timezone}); skipped while "
            "another run writes the warehouse, so syncs never pile up behind the nightly run."
        ),
    )
    def _sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        busy = writer_in_progress(context.instance)
        if busy is not None:
            return dg.SkipReason(f"run {busy.run_id[:8]} ({busy.job_name}) is writing the warehouse")
        return dg.RunRequest()

    return _sync


def writer_in_progress(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A queued or running run that writes the warehouse, if any."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={WRITER_TAG: WRITER_TAG_VALUE}, statuses=BUSY), limit=1
    )
    return runs[0] if runs else None


def freshness_checks(settings: OpsSettings) -> list[dg.AssetChecksDefinition]:
    """One last-update check per source over its raw tables, with the source's own limit."""
    checks: list[dg.AssetChecksDefinition] = []
    with _superseded_ok():
        for system in SYSTEMS:
            checks += dg.build_last_update_freshness_checks(
                assets=ingest.table_keys(system),
                lower_bound_delta=timedelta(hours=settings.freshness_hours[system]),
                timezone=settings.timezone,
                severity=dg.AssetCheckSeverity.WARN,
            )
    return checks


@contextmanager
def _superseded_ok() -> Iterator[None]:
    # Dagster marks the freshness-check factories superseded by FreshnessPolicy; a policy's
    # state is not an asset check, and ops read these checks (and the report) in the UI.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*freshness_checks.* is superseded.*")
        yield


def schedules_defs(
    settings: OpsSettings | None = None, checks: Sequence[dg.AssetChecksDefinition] | None = None
) -> dg.Definitions:
    """The schedules, the freshness checks (built here unless given) and their sensor."""
    settings = settings or ops_settings()
    checks = list(checks) if checks is not None else freshness_checks(settings)
    with _superseded_ok():
        sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=FRESHNESS_SENSOR,
            minimum_interval_seconds=300,
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
    return dg.Definitions(
        schedules=[nightly_schedule(settings), sync_schedule(settings)],
        asset_checks=checks,
        sensors=[sensor],
    )
