"""The reverse-ETL step: plan every target, record the plan, and push where pushing is on,
the guardrail allows and no integrity check failed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ingestion.http import RetryPolicy
from ingestion.warehouse import Paths, paths
from reverse_etl import ledger
from reverse_etl.config import TARGETS, Settings, load_settings
from reverse_etl.plan import PlanItem, TargetPlan, build_plan, new_plan_id, record_plan, record_status
from reverse_etl.push import Pusher, PushResult
from reverse_etl.targets import open_target
from reverse_etl.targets.base import Target

log = logging.getLogger(__name__)

REVERSE_ETL = "reverse ETL"  # what a warehouse that is not DuckDB is told cannot run

Progress = Callable[[str], None]


@dataclass
class TargetOutcome:
    target: str
    plan_id: str
    mode: str
    status: str
    message: str
    counts: dict[str, int]
    records_to_write: int
    push: PushResult | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    by_field: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "push"}
        data["push"] = self.push.as_dict() if self.push else None
        return data


def run(
    where: Paths | None = None,
    *,
    targets: Sequence[str] = TARGETS,
    dry_run: bool = False,
    run_id: str = "",
    settings: Settings | None = None,
    blocked_by: str | None = None,
    check_integrity: bool = True,
    progress: Progress | None = None,
    lock: bool = True,
    samples: int = 5,
) -> list[TargetOutcome]:
    """Plan each target, record the plan, and push it where allowed. `blocked_by` names a
    failed integrity check (else, with `check_integrity`, the latest check run's failed
    blocking checks do): the plan is recorded, nothing is written. `lock` takes the warehouse
    writer lock (a Dagster run holds it already)."""
    from orchestration.resources import writer_lock

    where = where or paths()
    where.engine.duckdb_file(REVERSE_ETL)  # refuse before taking the lock or reading settings
    settings = settings or load_settings()
    run_id = run_id or new_plan_id(ledger.now())
    outcomes = []
    with writer_lock(where) if lock else nullcontext(), connect(where) as con:
        ledger.ensure_tables(con)
        if blocked_by is None and check_integrity:
            blocked_by = integrity_failure(con)
        for system in targets:
            target = open_target(settings.targets[system])
            try:
                plan = plan_target(con, target, settings, dry_run, run_id, blocked_by, progress)
                pushed = push_plan(con, target, plan, settings, run_id, progress)
            finally:
                target.close()
            outcomes.append(outcome_of(plan, pushed, samples))
    return outcomes


def plan_all(
    where: Paths,
    *,
    targets: Sequence[str] = TARGETS,
    dry_run: bool = False,
    run_id: str,
    settings: Settings | None = None,
    blocked_by: str | None = None,
    progress: Progress | None = None,
) -> list[TargetOutcome]:
    """Plan and record every target without pushing (the Dagster plan step; its run holds the
    writer lock)."""
    settings = settings or load_settings()
    outcomes = []
    with connect(where) as con:
        ledger.ensure_tables(con)
        for system in targets:
            target = open_target(settings.targets[system])
            try:
                plan = plan_target(con, target, settings, dry_run, run_id, blocked_by, progress)
            finally:
                target.close()
            outcomes.append(outcome_of(plan, None))
    return outcomes


def push_all(
    where: Paths, *, run_id: str, settings: Settings | None = None, progress: Progress | None = None
) -> list[TargetOutcome]:
    """Push the plans `plan_all` recorded in this run (the Dagster push step)."""
    settings = settings or load_settings()
    outcomes = []
    with connect(where) as con:
        ledger.ensure_tables(con)
        plan_ids = [
            r[0]
            for r in con.execute(
                "select plan_id from reverse_etl.plans where run_id = ? and status = 'planned' "
                "order by target_system",
                [run_id],
            ).fetchall()
        ]
        for plan_id in plan_ids:
            plan = load_plan(con, plan_id)
            target = open_target(settings.targets[plan.target])
            try:
                pushed = push_plan(con, target, plan, settings, run_id, progress)
            finally:
                target.close()
            outcomes.append(outcome_of(plan, pushed))
    return outcomes


@contextmanager
def connect(where: Paths) -> Iterator[Any]:
    import duckdb

    # reverse ETL reads and writes its plans and ledger in a DuckDB warehouse: on another engine
    # it refuses here, before a file is opened (and so before an empty one is created)
    con = duckdb.connect(str(where.engine.duckdb_file(REVERSE_ETL)))
    try:
        yield con
    finally:
        con.close()


def plan_target(
    con: Any,
    target: Target,
    settings: Settings,
    dry_run: bool,
    run_id: str,
    blocked_by: str | None,
    progress: Progress | None = None,
) -> TargetPlan:
    """Build, judge and record one target's plan (settling writes an interrupted run left)."""
    system = target.system
    plan = build_plan(con, target, new_plan_id(ledger.now()), progress)
    settled = ledger.settle_in_sync(con, system, plan.with_action("in_sync"), run_id, plan.plan_id)
    if settled and progress:
        progress(f"{system}: {settled:,} interrupted writes found applied")
    plan.mode = "dry_run" if dry_run else ("push" if settings.targets[system].push else "plan_only")
    _judge(plan, settings, blocked_by)
    record_plan(con, plan, run_id)
    record_status(con, plan, run_id)
    return plan


def push_plan(
    con: Any,
    target: Target,
    plan: TargetPlan,
    settings: Settings,
    run_id: str,
    progress: Progress | None = None,
) -> PushResult | None:
    """Push a recorded plan when its mode is push and nothing stopped it; record the end."""
    if plan.status != "planned" or plan.mode != "push":
        return None
    backoff = RetryPolicy(backoff_base=settings.backoff_base)
    pusher = Pusher(con, target, plan, run_id, settings.max_rounds, backoff, progress, settings.in_flight)
    pushed = pusher.run()
    plan.status = "pushed"
    plan.message = f"{pushed.applied:,} records applied, {pushed.dead_letters:,} dead letters"
    record_status(con, plan, run_id)
    return pushed


def outcome_of(plan: TargetPlan, pushed: PushResult | None, samples: int = 5) -> TargetOutcome:
    return TargetOutcome(
        target=plan.target,
        plan_id=plan.plan_id,
        mode=plan.mode,
        status=plan.status,
        message=plan.message,
        counts=plan.counts(),
        records_to_write=sum(plan.records_to_write().values()),
        push=pushed,
        samples=_samples(plan, samples),
        by_field=plan.counts_by_field(),
    )


def load_plan(con: Any, plan_id: str) -> TargetPlan:
    """A recorded plan, as `plan_target` left it (its latest status)."""
    head = con.execute(
        "select target_system, mode, status, message, planned_at from reverse_etl.plans "
        "where plan_id = ? order by finished_at desc limit 1",
        [plan_id],
    ).fetchone()
    if head is None:
        raise ValueError(f"no plan {plan_id!r} recorded")
    rows = con.execute(
        "select target_system, object_type, record_id, field, finding_id, rule, outcome, policy, "
        "desired_value, live_value, action, reason from reverse_etl.plan_items where plan_id = ?",
        [plan_id],
    ).fetchall()
    items = [
        PlanItem(
            target_system=r[0],
            object_type=r[1],
            record_id=r[2],
            field=r[3],
            finding_id=r[4],
            rule=r[5],
            outcome=r[6],
            policy=r[7],
            desired_value=r[8],
            is_receiver=r[10] != "forbidden",
            live_value=r[9],
            action=r[10],
            reason=r[11],
        )
        for r in rows
    ]
    plan = TargetPlan(plan_id, head[0], items, {}, mode=head[1], status=head[2], message=head[3] or "")
    plan.planned_at = head[4]
    return plan


def _judge(plan: TargetPlan, settings: Settings, blocked_by: str | None) -> None:
    """Whether the plan may be pushed: blocked by an integrity failure, over the guardrail, or
    not pushing (dry run, plan-only)."""
    if blocked_by:
        plan.status, plan.message = "blocked", f"not pushed: integrity check failed ({blocked_by})"
        return
    over = plan.guardrail(settings.max_share, settings.guardrail_floor)
    if over:
        plan.status, plan.message = "aborted", over
        return
    if plan.mode == "dry_run":
        plan.message = "dry run: nothing written"
    elif plan.mode == "plan_only":
        plan.message = f"plan-only: set reverse_etl.{plan.target}.push = true to write"


def _samples(plan: TargetPlan, limit: int) -> list[dict[str, Any]]:
    chosen = plan.with_action("write")[:limit] + plan.with_action("conflict")[:limit]
    return [
        {
            "action": i.action,
            "object_type": i.object_type,
            "record_id": i.record_id,
            "field": i.field,
            "live": i.live_value,
            "desired": i.desired_value,
        }
        for i in chosen
    ]


def integrity_failure(con: Any) -> str | None:
    """The failed blocking (error-severity) checks of the latest check run, named; None when
    they passed or no checks ran."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'checks' and table_name = 'check_results'"
    ).fetchone()
    if not exists or not exists[0]:
        return None
    rows = con.execute(
        """
        with latest as (select run_id from checks.check_results order by checked_at desc limit 1)
        select check_name from checks.check_results
        where run_id in (select run_id from latest) and not passed and severity = 'error'
        order by 1
        """
    ).fetchall()
    return ", ".join(r[0] for r in rows) or None
