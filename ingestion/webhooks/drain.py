"""Drain the inbox into the warehouse's `raw_webhooks` schema (the caller holds the writer lock).

- `raw_webhooks.events`: every event once (keyed by provider and event key), with the source's
  time of the change, when it arrived and when it was drained.
- `raw_webhooks.latest`: per object (and, for HubSpot property changes, per property) the
  event with the newest source time (ties: the larger event key). It is settled by the source's
  own clock, never by arrival: any order, any duplication and any split of the same deliveries
  over drains ends in the same rows.
- `raw_webhooks._quarantine`: authentic deliveries whose body could not be read, with the reason.

Each batch commits in DuckDB before the inbox marks it drained; a drain killed in between
drains the batch again, and the keyed insert and the newest-wins upsert make that a no-op.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.webhooks.inbox import Inbox, PendingEvent, now_us

log = logging.getLogger(__name__)

SCHEMA = "raw_webhooks"
BATCH = 5_000

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.events (
    provider text not null,
    event_key text not null,
    event_id text not null,
    event_type text not null,
    system text not null,
    object_type text not null,
    object_id text not null,
    field text not null,
    occurred_at timestamptz not null,
    received_at timestamptz not null,
    drained_at timestamptz not null,
    load_id text not null,
    payload json not null,
    primary key (provider, event_key)
);
create table if not exists {SCHEMA}.latest (
    provider text not null,
    system text not null,
    object_type text not null,
    object_id text not null,
    field text not null,
    event_key text not null,
    event_type text not null,
    occurred_at timestamptz not null,
    load_id text not null,
    payload json not null,
    primary key (provider, object_type, object_id, field)
);
create table if not exists {SCHEMA}._quarantine (
    quarantine_id text primary key,
    system text not null,
    resource text not null,
    record_key text not null,
    reason text not null,
    payload text,
    quarantined_at timestamp not null,
    load_id text not null
);
"""

_INSERT_EVENTS = f"""
insert into {SCHEMA}.events
select provider, event_key, event_id, event_type, system, object_type, object_id, field,
       occurred_at, received_at, drained_at, load_id, payload::json
from incoming
on conflict do nothing
"""

# The newest event per object and field within the batch, then newest-wins against the table.
_UPSERT_LATEST = f"""
insert into {SCHEMA}.latest
select provider, system, object_type, object_id, field, event_key, event_type, occurred_at, load_id,
       payload::json
from incoming
qualify row_number() over (
    partition by provider, object_type, object_id, field order by occurred_at desc, event_key desc
) = 1
on conflict (provider, object_type, object_id, field) do update set
    system = excluded.system,
    event_key = excluded.event_key,
    event_type = excluded.event_type,
    occurred_at = excluded.occurred_at,
    load_id = excluded.load_id,
    payload = excluded.payload
where (excluded.occurred_at, excluded.event_key) > (latest.occurred_at, latest.event_key)
"""


@dataclass
class DrainResult:
    events: int = 0  # drained from the inbox (redrains included)
    new: int = 0  # rows added to raw_webhooks.events
    quarantined: int = 0
    by_system: Counter[str] = field(default_factory=Counter)
    objects: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # system -> (type, id)
    seconds: float = 0.0


def drain(
    inbox: Inbox,
    warehouse: Path,
    batch: int = BATCH,
    report: Callable[[str], None] | None = None,
) -> DrainResult:
    """Move every undrained event (and rejected delivery) of the inbox into `raw_webhooks`.

    DuckDB only: on a PostgreSQL warehouse it stops with `DuckDBOnlyError` before it
    touches the inbox (the events stay there, undrained), rather than fill a DuckDB file
    nothing reads."""
    import duckdb

    from ingestion.engine import engine

    engine().duckdb_file("the webhook inbox drain")  # says so on another engine

    started = time.monotonic()
    result = DrainResult()
    load_id = f"{time.time():.6f}"
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(DDL)
        after = 0
        while pending := inbox.undrained(batch, after):
            drained = now_us()
            result.new += _load(con, pending, drained, load_id)
            inbox.mark_drained([p.rowid for p in pending], drained)
            _count(result, pending)
            after = pending[-1].rowid
            if report:
                report(f"webhooks: drained {result.events:,} events ({result.new:,} new)")
        result.quarantined = _quarantine(con, inbox, load_id)
    result.seconds = time.monotonic() - started
    return result


def _load(con: Any, pending: Sequence[PendingEvent], drained_us: int, load_id: str) -> int:
    """Insert one batch in one transaction; the number of new event rows."""
    table = _arrow(pending, drained_us, load_id)
    con.register("incoming", table)
    try:
        con.execute("begin transaction")
        before = _count_rows(con)
        con.execute(_INSERT_EVENTS)
        con.execute(_UPSERT_LATEST)
        added = _count_rows(con) - before
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("incoming")
    return added


def _count_rows(con: Any) -> int:
    row = con.execute(f"select count(*) from {SCHEMA}.events").fetchone()
    return int(row[0]) if row else 0


def _arrow(pending: Sequence[PendingEvent], drained_us: int, load_id: str) -> Any:
    import pyarrow as pa

    moment = pa.timestamp("us", tz="UTC")
    n = len(pending)
    return pa.table(
        {
            "provider": [p.provider for p in pending],
            "event_key": [p.event_key for p in pending],
            "event_id": [p.event_id for p in pending],
            "event_type": [p.event_type for p in pending],
            "system": [p.system for p in pending],
            "object_type": [p.object_type for p in pending],
            "object_id": [p.object_id for p in pending],
            "field": [p.field for p in pending],
            "occurred_at": pa.array([p.occurred_us for p in pending], type=moment),
            "received_at": pa.array([p.received_us for p in pending], type=moment),
            "drained_at": pa.array([drained_us] * n, type=moment),
            "load_id": [load_id] * n,
            "payload": [bytes(p.payload).decode("utf-8", "replace") for p in pending],
        }
    )


def _count(result: DrainResult, pending: Sequence[PendingEvent]) -> None:
    result.events += len(pending)
    for p in pending:
        result.by_system[p.system] += 1
        result.objects.setdefault(p.system, set()).add((p.object_type, p.object_id))


def _quarantine(con: Any, inbox: Inbox, load_id: str) -> int:
    """Authentic deliveries that could not be read, in the shape of every `_quarantine` table
    (resource: the provider; record key: the body's SHA-256)."""
    rejected = inbox.undrained_rejected()
    if not rejected:
        return 0
    rows = [
        (f"{provider}:{sha}", provider, sha, reason, body.decode("utf-8", "replace"), received_us, load_id)
        for provider, sha, reason, received_us, body in rejected
    ]
    con.executemany(
        f"insert into {SCHEMA}._quarantine (quarantine_id, system, resource, record_key, reason, payload, "
        "quarantined_at, load_id) values (?, 'webhooks', ?, ?, ?, ?, make_timestamp(?::bigint), ?) "
        "on conflict do nothing",
        rows,
    )
    inbox.mark_rejected_drained([(r[1], r[2]) for r in rows], now_us())
    log.warning("webhooks: %d authentic deliveries could not be read; see %s._quarantine", len(rows), SCHEMA)
    return len(rows)
