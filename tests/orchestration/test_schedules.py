"""Schedules and freshness checks: the hourly sync yields to a running writer."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from ingestion.tables import SYSTEMS, TABLES
from orchestration.resources import WRITER_TAG, WRITER_TAG_VALUE, OpsSettings
from orchestration.schedules import freshness_checks, schedules_defs, sync_schedule


def evaluate(schedule: dg.ScheduleDefinition, instance: dg.DagsterInstance) -> object:
    context = dg.build_schedule_context(instance=instance)
    [result] = list(schedule.evaluate_tick(context).run_requests or []) or [None]
    return result if result is not None else schedule.evaluate_tick(context).skip_message


def add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, tags: dict[str, str]) -> dg.DagsterRun:
    job = dg.JobDefinition(graph_def=dg.GraphDefinition(name="nightly", node_defs=[]), name="nightly")
    run = instance.create_run_for_job(job, tags=tags)
    event = {
        dg.DagsterRunStatus.STARTED: dg.DagsterEventType.RUN_START,
        dg.DagsterRunStatus.SUCCESS: dg.DagsterEventType.RUN_SUCCESS,
    }[status]
    instance.run_storage.handle_run_event(
        run.run_id, dg.DagsterEvent(event_type_value=event.value, job_name=run.job_name)
    )
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None and stored.status == status
    return stored


def test_the_sync_runs_when_no_writer_is_busy_and_skips_while_one_is():
    schedule = sync_schedule(OpsSettings())
    writer = {WRITER_TAG: WRITER_TAG_VALUE}
    with dg.instance_for_test() as instance:
        assert isinstance(evaluate(schedule, instance), dg.RunRequest)
        add_run(instance, dg.DagsterRunStatus.SUCCESS, writer)
        add_run(instance, dg.DagsterRunStatus.STARTED, {})  # not a writer
        assert isinstance(evaluate(schedule, instance), dg.RunRequest)
        busy = add_run(instance, dg.DagsterRunStatus.STARTED, writer)
        message = evaluate(schedule, instance)
        assert isinstance(message, str) and busy.run_id[:8] in message


def test_schedules_follow_the_settings():
    settings = OpsSettings(timezone="America/Chicago", nightly_cron="0 1 * * *", sync_cron="*/30 * * * *")
    definitions = schedules_defs(settings)
    schedules = {s.name: s for s in definitions.schedules or []}
    assert schedules["nightly_schedule"].cron_schedule == "0 1 * * *"
    assert schedules["sync_schedule"].cron_schedule == "*/30 * * * *"
    assert {s.execution_timezone for s in schedules.values()} == {"America/Chicago"}
    assert {s.default_status for s in schedules.values()} == {dg.DefaultScheduleStatus.RUNNING}


def test_one_freshness_check_per_source_over_its_raw_tables():
    hours = {"crm": 1.0, "billing": 2.0, "scheduling": 3.0, "ads": 30.0}
    checks = freshness_checks(OpsSettings(freshness_hours=hours))
    assert len(checks) == len(SYSTEMS)
    for system, check in zip(SYSTEMS, checks, strict=True):
        assets = {tuple(k.asset_key.path) for k in check.check_keys}
        assert assets == {(f"raw_{system}", t) for t in (*TABLES[system], "_quarantine")}
        params = next(iter(check.check_specs)).metadata["dagster/freshness_params"].value
        assert params["lower_bound_delta_seconds"] == timedelta(hours=hours[system]).total_seconds()
