"""Webhook intake in Dagster: a sensor that turns the inbox into runs, the drain, the sync that
follows it, and the intake's health as an asset check.

- `webhook_inbox_sensor` (every `webhooks.sensor_interval_seconds`, default 30 s) reads the
  inbox (SQLite, beside the warehouse) and, while events wait that no sync has covered,
  requests a `webhooks` run for the systems they belong to (behind a running writer, the run
  queues; see `evaluate`).
- The run holds the writer lock from its first step to its last. `webhooks_drain` moves the
  inbox into `raw_webhooks` (events, latest per object, quarantine); the `ingest` step runs the
  incremental sync of the affected systems only (CRM and billing read what changed since their
  cursors; scheduling reads the events named, which may lie outside its re-scan window);
  `webhooks/intake` then marks the events that sync covered, with the latency from delivery to
  the warehouse, and its check judges the intake against the thresholds in config.

The run does not publish: the published copy carries the checks of the run that built the
models, and the hourly `sync` (or the nightly run) publishes the rows webhooks brought in.
Loading this module reads no inbox and imports neither dlt nor DuckDB.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from ingestion.tables import SYSTEMS
from ingestion.warehouse import paths
from ingestion.webhooks.settings import SYSTEM_OF, WebhookSettings, inbox_path, load_settings
from orchestration import ingest
from orchestration.resources import WRITER_TAG, WRITER_TAG_VALUE

GROUP = "webhooks"
JOB = "webhooks"
SENSOR = "webhook_inbox_sensor"
EVENTS_KEY = dg.AssetKey(["raw_webhooks", "events"])
LATEST_KEY = dg.AssetKey(["raw_webhooks", "latest"])
QUARANTINE_KEY = dg.AssetKey(["raw_webhooks", "_quarantine"])
INTAKE_KEY = dg.AssetKey(["webhooks", "intake"])
HEALTH_CHECK = "intake_health"
SYSTEMS_TAG = "trueup/webhook_systems"
WEBHOOK_SYSTEMS = tuple(s for s in SYSTEMS if s in SYSTEM_OF.values())
NAMED_EVENTS_MAX = 200  # more waiting Calendly events than this: re-scan the window instead
DRAIN_PRIORITY = "100"  # first step of the run: what arrived until now goes in before the sync


def raw_table_keys(systems: Sequence[str]) -> list[dg.AssetKey]:
    return [key for system in systems for key in ingest.table_keys(system)]


def build_drain_asset() -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(EVENTS_KEY, group_name=GROUP, kinds={"duckdb"}, description="Every webhook event once."),
        dg.AssetSpec(
            LATEST_KEY,
            group_name=GROUP,
            kinds={"duckdb"},
            description="The newest event per object (and changed property), by the source's own time.",
        ),
        dg.AssetSpec(
            QUARANTINE_KEY,
            group_name=GROUP,
            kinds={"duckdb"},
            description="Authentic webhook deliveries whose body could not be read, with the reason.",
        ),
    ]

    @dg.multi_asset(
        name="webhooks_drain",
        specs=specs,
        required_resource_keys={"warehouse_writer"},
        op_tags={"dagster/priority": DRAIN_PRIORITY},
    )
    def webhooks_drain(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        from ingestion.webhooks.drain import drain
        from ingestion.webhooks.inbox import Inbox

        # the drain writes raw_webhooks into the DuckDB warehouse; on another engine it says so
        warehouse = paths().engine.duckdb_file("the webhook inbox drain")
        result = drain(Inbox(inbox_path()), warehouse, report=context.log.info)
        by_system = ", ".join(f"{s} {n}" for s, n in sorted(result.by_system.items())) or "none"
        context.log.info(f"drained {result.events} events ({result.new} new; {by_system})")
        yield dg.MaterializeResult(
            asset_key=EVENTS_KEY,
            metadata={
                "drained": result.events,
                "new": result.new,
                "seconds": round(result.seconds, 2),
                **{f"events_{s}": n for s, n in result.by_system.items()},
            },
        )
        objects = sum(len(found) for found in result.objects.values())
        yield dg.MaterializeResult(asset_key=LATEST_KEY, metadata={"objects_touched": objects})
        yield dg.MaterializeResult(asset_key=QUARANTINE_KEY, metadata={"quarantined": result.quarantined})

    return webhooks_drain


def build_intake_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=INTAKE_KEY,
        deps=[EVENTS_KEY, *raw_table_keys(WEBHOOK_SYSTEMS)],
        group_name=GROUP,
        description=(
            "Webhook intake: marks the events the run's sync covered and reports the backlog, the "
            "oldest waiting event, refusals by reason and the latency from delivery to the warehouse."
        ),
    )
    def intake(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from ingestion.webhooks.inbox import Inbox, now_us
        from ingestion.webhooks.monitor import intake_health

        inbox = Inbox(inbox_path())
        covered = mark_covered(context, inbox)
        retention = load_settings(with_secrets=False).retention_days
        pruned = inbox.prune(before_us=now_us() - int(retention * 86_400 * 1_000_000))
        health = intake_health(paths())
        metadata = {"covered_by_this_run": covered, "pruned": pruned, **(health.metadata() if health else {})}
        return dg.MaterializeResult(metadata=metadata)

    return intake


def mark_covered(context: dg.AssetExecutionContext, inbox: Any) -> int:
    """Mark the events this run's sync covered: those of the systems it synced that arrived
    before the run started (for scheduling read by name, only the named events' invitees)."""
    from ingestion.webhooks.inbox import now_us

    systems = synced_systems(context)
    record = context.instance.get_run_record_by_id(context.run_id)
    started = record.start_time if record is not None and record.start_time else None
    before = int(started * 1_000_000) if started else now_us()
    named = named_events(context.dagster_run.run_config)
    whole = [s for s in systems if not (s == "scheduling" and named)]
    covered = int(inbox.mark_synced(whole, before_us=before, synced_us=now_us()))
    if "scheduling" in systems and named:
        prefixes = [f"{uri}/invitees/" for uri in named]
        covered += inbox.mark_synced_objects("scheduling", prefixes, before_us=before, synced_us=now_us())
    context.log.info(f"{covered} webhook events covered by the sync of {', '.join(systems) or 'nothing'}")
    return covered


def synced_systems(context: dg.AssetExecutionContext) -> list[str]:
    """The systems whose ingest materialized its tables in this run."""
    done = {
        entry.dagster_event.asset_key
        for entry in context.instance.all_logs(
            context.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        if entry.dagster_event is not None
    }
    return [s for s in WEBHOOK_SYSTEMS if done & set(ingest.table_keys(s))]


def execute(
    request: dg.RunRequest, instance: dg.DagsterInstance, defs: dg.Definitions
) -> dg.ExecuteInProcessResult:
    """Run what a sensor's request asks in this process (what the daemon launches, for the CLI,
    tests and benchmarks): the request's assets and checks only."""
    job = defs.resolve_job_def(JOB).get_subset(
        asset_selection=set(request.asset_selection or ()),
        asset_check_selection=set(request.asset_check_keys or ()),
    )
    return job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
    )


def build_health_check(settings: WebhookSettings) -> dg.AssetChecksDefinition:
    limits = settings.thresholds

    @dg.asset_check(
        asset=INTAKE_KEY,
        name=HEALTH_CHECK,
        description=(
            f"Fails when more than {limits.backlog:,} events wait, one waits longer than "
            f"{limits.oldest_seconds:.0f} s, or the p95 delivery-to-warehouse latency of the last "
            f"hour exceeds {limits.latency_p95_seconds:.0f} s (settings webhooks.backlog_max, "
            "oldest_max_seconds, latency_p95_max_seconds)."
        ),
    )
    def intake_health_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        from ingestion.webhooks.monitor import intake_health

        health = intake_health(paths(), load_settings(with_secrets=False))
        if health is None:
            return dg.AssetCheckResult(passed=True, description="no webhook inbox yet")
        problems = health.problems()
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(problems) or "within the thresholds",
            metadata=health.metadata(),
        )

    return intake_health_check


def job_selection(check: dg.AssetChecksDefinition) -> dg.AssetSelection:
    """The drain, every webhook system's raw tables, the intake; no check but the intake's."""
    assets = dg.AssetSelection.assets(
        EVENTS_KEY, LATEST_KEY, QUARANTINE_KEY, INTAKE_KEY, *raw_table_keys(WEBHOOK_SYSTEMS)
    )
    return assets.without_checks() | dg.AssetSelection.checks(check)


def build_job(check: dg.AssetChecksDefinition) -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        JOB,
        selection=job_selection(check),
        description="Drain the webhook inbox into raw_webhooks, then sync the affected systems.",
        executor_def=dg.in_process_executor,
        tags={WRITER_TAG: WRITER_TAG_VALUE},
    )


def run_request(unsynced: dict[str, int], scheduling_events: Sequence[str] | None = None) -> dg.RunRequest:
    """A run for the systems with waiting events; for scheduling, a read of the named events
    when they are known (Calendly's window re-scan misses changes to events outside it)."""
    systems = [s for s in WEBHOOK_SYSTEMS if unsynced.get(s)]
    config: dict[str, Any] = {}
    if "scheduling" in systems and scheduling_events:
        config = {"ops": {"ingest": {"config": {"scheduling_events": list(scheduling_events)}}}}
    return dg.RunRequest(
        asset_selection=[EVENTS_KEY, LATEST_KEY, QUARANTINE_KEY, *raw_table_keys(systems), INTAKE_KEY],
        asset_check_keys=[dg.AssetCheckKey(INTAKE_KEY, HEALTH_CHECK)],
        run_config=config,
        tags={SYSTEMS_TAG: ",".join(systems)},
    )


def scheduling_events(inbox: Any, limit: int = NAMED_EVENTS_MAX) -> list[str] | None:
    """The scheduled events whose invitees waiting Calendly events name; None (re-scan the
    window) when there are too many, or an event names something else."""
    objects = inbox.unsynced_objects("scheduling", limit)
    if not objects or any("/invitees/" not in uri for uri in objects):
        return None
    events = sorted({uri.split("/invitees/", 1)[0] for uri in objects})
    return events if len(events) <= limit else None


def named_events(run_config: Any) -> list[str]:
    """The scheduling events a run's config names (empty: the window was re-scanned)."""
    ingest_config = ((run_config or {}).get("ops") or {}).get("ingest") or {}
    return list((ingest_config.get("config") or {}).get("scheduling_events") or [])


def build_sensor(settings: WebhookSettings) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR,
        job_name=JOB,
        minimum_interval_seconds=max(1, settings.sensor_interval_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Requests a `webhooks` run while the inbox holds events no sync has covered; behind a "
            "running writer it queues one (the events wait, durable, until it ends)."
        ),
    )
    def webhook_inbox_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        return evaluate(context.instance)

    return webhook_inbox_sensor


def evaluate(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    """The sensor's decision (apart, so tests can call it on any instance).

    A writer run that has not started yet will drain whatever waits when it does: skip. While
    one runs, request a run that queues behind it (the run queue lets one writer run at a time,
    and the writer lock holds anyway), unless it is a `webhooks` run that began after every
    waiting event arrived: it covers them.
    """
    from ingestion.engine import duckdb_only_message
    from ingestion.webhooks.inbox import Inbox

    if paths().engine.is_postgres:  # the drain would refuse: no run that can only fail
        return dg.SkipReason(duckdb_only_message("the webhook inbox drain"))
    path = inbox_path()
    if not path.exists():
        return dg.SkipReason("no webhook inbox yet (`trueup webhooks serve` creates it)")
    inbox = Inbox(path)
    unsynced = inbox.unsynced()
    waiting = sum(unsynced.get(s, 0) for s in WEBHOOK_SYSTEMS)
    if not waiting:
        return dg.SkipReason("every webhook event is in the warehouse")
    pending = _writer_runs(instance, PENDING)
    if pending:
        run = pending[0]
        return dg.SkipReason(
            f"{waiting} webhook events wait for run {run.run_id[:8]} ({run.job_name}) to start"
        )
    for record in _writer_records(instance):
        started = record.start_time
        if record.dagster_run.job_name == JOB and started and not inbox.unsynced(after_us=int(started * 1e6)):
            return dg.SkipReason(
                f"{waiting} webhook events wait for the running run {record.dagster_run.run_id[:8]}"
            )
    return run_request(unsynced, scheduling_events(inbox) if unsynced.get("scheduling") else None)


PENDING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


def _writer_runs(instance: dg.DagsterInstance, statuses: list[dg.DagsterRunStatus]) -> list[dg.DagsterRun]:
    return list(
        instance.get_runs(
            filters=dg.RunsFilter(tags={WRITER_TAG: WRITER_TAG_VALUE}, statuses=statuses), limit=5
        )
    )


def _writer_records(instance: dg.DagsterInstance) -> list[Any]:
    filters = dg.RunsFilter(tags={WRITER_TAG: WRITER_TAG_VALUE}, statuses=[dg.DagsterRunStatus.STARTED])
    return list(instance.get_run_records(filters=filters, limit=5))


def webhooks_defs(settings: WebhookSettings | None = None) -> dg.Definitions:
    settings = settings or load_settings(with_secrets=False)
    check = build_health_check(settings)
    return dg.Definitions(
        assets=[build_drain_asset(), build_intake_asset()],
        asset_checks=[check],
        jobs=[build_job(check)],
        sensors=[build_sensor(settings)],
    )
