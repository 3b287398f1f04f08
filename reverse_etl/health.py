"""Each reverse-ETL target as an integration path (`orchestration/health.py`): five checks,
lines in the report and in `trueup status`, read from the published copy's `reverse_etl`
tables (never the live warehouse: the writer may be busy).

- last success: the end of the newest plan that pushed;
- latency: how long that plan took, from planning to its last write;
- failure rate: the share of the last pushing plans that were aborted (guardrail) or blocked
  (an integrity check failed);
- rejected: that plan's dead letters (records);
- backlog: writes that plan meant to make and did not apply.

A target that never pushed (plan-only, the default for a real account) is not in use: its
checks pass saying so.
"""

from __future__ import annotations

from typing import Any

from orchestration.health import ATTEMPT_WINDOW, RUNBOOK_DIR, HealthContext, PathHealth, integration_path
from reverse_etl.ledger import SCHEMA

TARGETS = ("crm", "billing")


def measure(target: str, context: HealthContext) -> PathHealth:
    import duckdb

    published = context.where.published
    if not published.exists():
        return PathHealth(in_use=False)
    with duckdb.connect(str(published), read_only=True) as con:
        present = {
            str(name)
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [SCHEMA]
            ).fetchall()
        }
        if not {"plans", "ledger", "dead_letters"} <= present:
            return PathHealth(in_use=False)
        return _from_tables(con, target)


def _from_tables(con: Any, target: str) -> PathHealth:
    plans = con.execute(
        f"select plan_id, status, planned_at, finished_at, records_to_write from {SCHEMA}.plans "
        "where target_system = ? and mode = 'push' order by finished_at desc limit ?",
        [target, ATTEMPT_WINDOW],
    ).fetchall()
    if not plans:
        return PathHealth(in_use=False)
    failures = sum(1 for _, status, *_ in plans if status in ("aborted", "blocked"))
    pushed = [p for p in plans if p[1] == "pushed"]
    health = PathHealth(attempts=len(plans), failures=failures, backlog_unit="writes")
    if failures:
        failed = next(p for p in plans if p[1] in ("aborted", "blocked"))
        (message,) = con.execute(
            f"select coalesce(message, status) from {SCHEMA}.plans where plan_id = ?", [failed[0]]
        ).fetchone()
        health.last_error = str(message)
    if not pushed:
        return health
    plan_id, _, planned_at, finished_at, to_write = pushed[0]
    health.last_success = finished_at
    health.latency_seconds = (finished_at - planned_at).total_seconds() if planned_at else None
    (applied,) = con.execute(
        f"select count(distinct object_type || '/' || record_id) from {SCHEMA}.ledger "
        "where plan_id = ? and status = 'applied'",
        [plan_id],
    ).fetchone()
    (dead,) = con.execute(
        f"select count(distinct object_type || '/' || record_id) from {SCHEMA}.dead_letters "
        "where plan_id = ?",
        [plan_id],
    ).fetchone()
    health.rejected = int(dead or 0)
    health.backlog = max(0, int(to_write or 0) - int(applied or 0) - int(dead or 0))
    return health


def _register() -> None:
    for target in TARGETS:

        def measure_target(context: HealthContext, target: str = target) -> PathHealth:
            return measure(target, context)

        integration_path(
            f"reverse_etl_{target}",
            kind="reverse-ETL target",
            asset=["reverse_etl", "push"],
            runbook=f"{RUNBOOK_DIR}/reverse-etl.md",
            defaults={"last_success": 48.0, "latency": 3600.0, "rejected": 0.0, "backlog": 0.0},
        )(measure_target)


_register()
