"""Reverse-ETL's warehouse tables: the plans, the append-only ledger of every write attempt,
conflicts, dead letters and approvals (schema `reverse_etl`, beside the outbox models)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

SCHEMA = "reverse_etl"

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    # one row per plan and target: what the plan found and what became of it
    "plans": (
        ("plan_id", "varchar"),
        ("run_id", "varchar"),
        ("target_system", "varchar"),
        ("mode", "varchar"),  # dry_run, plan_only, push
        ("status", "varchar"),  # planned, pushed, aborted, blocked
        ("message", "varchar"),
        ("records_in_target", "bigint"),
        ("records_to_write", "bigint"),
        ("counts", "varchar"),  # json: rows per action
        ("planned_at", "timestamptz"),
        ("finished_at", "timestamptz"),
    ),
    # one row per outbox row a plan judged
    "plan_items": (
        ("plan_id", "varchar"),
        ("target_system", "varchar"),
        ("object_type", "varchar"),
        ("record_id", "varchar"),
        ("field", "varchar"),
        ("finding_id", "varchar"),
        ("rule", "varchar"),
        ("outcome", "varchar"),
        ("policy", "varchar"),
        ("desired_value", "varchar"),
        ("live_value", "varchar"),
        ("action", "varchar"),  # write, in_sync, conflict, review, forbidden, gone, unread
        ("reason", "varchar"),
    ),
    # append-only: one row per record field and attempt (`sent` before the request goes out,
    # then its end: applied, retry, failed)
    "ledger": (
        ("attempt_id", "varchar"),
        ("plan_id", "varchar"),
        ("run_id", "varchar"),
        ("target_system", "varchar"),
        ("object_type", "varchar"),
        ("record_id", "varchar"),
        ("field", "varchar"),
        ("finding_id", "varchar"),
        ("before_value", "varchar"),
        ("after_value", "varchar"),
        ("idempotency_key", "varchar"),
        ("status", "varchar"),
        ("response_code", "integer"),
        ("message", "varchar"),
        ("recorded_at", "timestamptz"),
    ),
    "conflicts": (
        ("plan_id", "varchar"),
        ("run_id", "varchar"),
        ("target_system", "varchar"),
        ("object_type", "varchar"),
        ("record_id", "varchar"),
        ("field", "varchar"),
        ("finding_id", "varchar"),
        ("desired_value", "varchar"),
        ("live_value", "varchar"),
        ("expected_value", "varchar"),  # what trueup last saw or wrote there
        ("reason", "varchar"),
        ("detected_at", "timestamptz"),
    ),
    "dead_letters": (
        ("plan_id", "varchar"),
        ("run_id", "varchar"),
        ("target_system", "varchar"),
        ("object_type", "varchar"),
        ("record_id", "varchar"),
        ("field", "varchar"),
        ("finding_id", "varchar"),
        ("desired_value", "varchar"),
        ("response_code", "integer"),
        ("reason", "varchar"),
        ("dead_lettered_at", "timestamptz"),
    ),
    "approvals": (
        ("scope", "varchar"),  # finding, rule, plan
        ("value", "varchar"),
        ("approved_by", "varchar"),
        ("approved_at", "timestamptz"),
    ),
}

APPROVAL_SCOPES = ("finding", "rule", "plan")


def ensure_tables(con: Any) -> None:
    """Create the schema and tables that do not exist yet (never alters or drops)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    for name, columns in TABLES.items():
        spec = ", ".join(f"{column} {kind}" for column, kind in columns)
        con.execute(f"create table if not exists {SCHEMA}.{name} ({spec})")


def now() -> datetime:
    return datetime.now(UTC)


def append(con: Any, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows (dicts keyed by column; missing columns are null) in one statement: each
    column goes in as one list parameter, unnested (several times faster than VALUES rows)."""
    if not rows:
        return
    columns = TABLES[table]
    selected = ", ".join(f"unnest(cast(${name} as {kind}[]))" for name, kind in columns)
    data = {name: [row.get(name) for row in rows] for name, _ in columns}
    names = ", ".join(name for name, _ in columns)
    con.execute(f"insert into {SCHEMA}.{table} ({names}) select {selected}", data)


def approve(con: Any, scope: str, values: Iterable[str], by: str = "") -> int:
    """Record approvals (by finding id, rule or plan id); returns how many were new."""
    if scope not in APPROVAL_SCOPES:
        raise ValueError(f"approve by one of {APPROVAL_SCOPES}, not {scope!r}")
    ensure_tables(con)
    existing = {
        r[0] for r in con.execute(f"select value from {SCHEMA}.approvals where scope = ?", [scope]).fetchall()
    }
    new = [v for v in dict.fromkeys(values) if v not in existing]
    append(
        con, "approvals", [{"scope": scope, "value": v, "approved_by": by, "approved_at": now()} for v in new]
    )
    return len(new)


def approvals(con: Any) -> dict[str, set[str]]:
    rows = con.execute(f"select scope, value from {SCHEMA}.approvals").fetchall()
    found: dict[str, set[str]] = {scope: set() for scope in APPROVAL_SCOPES}
    for scope, value in rows:
        found.setdefault(scope, set()).add(value)
    return found


def last_written(con: Any, target: str) -> dict[tuple[str, str, str], str]:
    """(object type, record, field) -> the value trueup last applied there."""
    rows = con.execute(
        f"""
        select object_type, record_id, field, arg_max(after_value, recorded_at)
        from {SCHEMA}.ledger
        where target_system = ? and status = 'applied'
        group by all
        """,
        [target],
    ).fetchall()
    return {(r[0], r[1], r[2]): r[3] or "" for r in rows}


def unsettled(con: Any, target: str) -> dict[tuple[str, str, str, str], tuple[str, str, str, str]]:
    """Writes sent whose end was never recorded (the process died waiting): (object type,
    record, field, value) -> (plan id, idempotency key, attempt id, finding id), so a re-run
    settles them and re-sends under the same key."""
    rows = con.execute(
        f"""
        with ends as (
            select attempt_id from {SCHEMA}.ledger where status != 'sent' and target_system = ?
        )
        select object_type, record_id, field, after_value, plan_id, idempotency_key, attempt_id, finding_id
        from {SCHEMA}.ledger
        where target_system = ? and status = 'sent' and attempt_id not in (select attempt_id from ends)
        """,
        [target, target],
    ).fetchall()
    return {(r[0], r[1], r[2], r[3] or ""): (r[4], r[5], r[6], r[7]) for r in rows}


def settle_in_sync(con: Any, target: str, items: Iterable[Any], run_id: str, plan_id: str) -> int:
    """Interrupted writes whose values the target now holds (`items`: plan rows found in sync)
    landed: record them applied. Returns how many attempts were settled."""
    waiting = unsettled(con, target)
    rows = []
    at = now()
    for item in items:
        found = waiting.pop((item.object_type, item.record_id, item.field, item.desired_value), None)
        if found is None:
            continue
        rows.append(
            {
                "attempt_id": found[2],
                "plan_id": plan_id,
                "run_id": run_id,
                "target_system": target,
                "object_type": item.object_type,
                "record_id": item.record_id,
                "field": item.field,
                "finding_id": found[3],
                "after_value": item.desired_value,
                "idempotency_key": found[1],
                "status": "applied",
                "message": "found applied on re-read after an interrupted run",
                "recorded_at": at,
            }
        )
    append(con, "ledger", rows)
    return len({r["attempt_id"] for r in rows})
