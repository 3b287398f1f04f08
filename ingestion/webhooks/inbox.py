"""The durable inbox: SQLite in WAL mode with `synchronous=FULL`, beside the warehouse (whose
one writer may be busy for an hour), never inside it.

- `deliveries`: every delivery that brought a new event, raw body and headers, for replay.
- `events`: one row per provider event key (a redelivery is absorbed by the primary key),
  with when it arrived, was drained into `raw_webhooks`, and was covered by a sync.
- `rejected`: authentic deliveries whose body is not what the provider sends, with the reason.
- `tallies`: refusals by reason and absorbed duplicates, per provider and minute (bounded,
  whatever a flood of forgeries sends; their bodies are never stored).

The receiver writes through one `InboxWriter` thread that commits whatever arrived together
in one transaction (one fsync for many deliveries) and only then answers each of them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ingestion.webhooks.events import InboundEvent
from ingestion.webhooks.settings import SYSTEM_OF

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
MAX_BATCH = 512  # deliveries per group commit

SCHEMA = """
create table if not exists deliveries (
    delivery_id integer primary key,
    provider text not null,
    received_us integer not null,
    headers blob not null,
    body blob not null
);
create table if not exists events (
    provider text not null,
    event_key text not null,
    event_id text not null,
    event_type text not null,
    system text not null,
    object_type text not null,
    object_id text not null,
    field text not null,
    occurred_us integer not null,
    received_us integer not null,
    delivery_id integer not null,
    payload blob not null,
    drained_us integer,
    synced_us integer,
    unique (provider, event_key)
);
create index if not exists events_undrained on events (received_us) where drained_us is null;
create index if not exists events_unsynced on events (system, received_us) where synced_us is null;
create index if not exists events_drained on events (drained_us);
create index if not exists events_received on events (received_us);
create index if not exists events_synced on events (synced_us);
create table if not exists rejected (
    provider text not null,
    body_sha text not null,
    reason text not null,
    received_us integer not null,
    headers blob not null,
    body blob not null,
    drained_us integer,
    primary key (provider, body_sha)
);
create table if not exists tallies (
    provider text not null,
    kind text not null,
    minute integer not null,
    count integer not null,
    primary key (provider, kind, minute)
);
"""

DUPLICATE = "duplicate"


def now_us() -> int:
    return time.time_ns() // 1000


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, fsync on every commit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(
        str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    con.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
    con.execute("pragma journal_mode = wal")
    con.execute("pragma synchronous = full")
    con.executescript(SCHEMA)
    return con


@contextlib.contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    con.execute("begin immediate")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


# -- what the receiver stores ---------------------------------------------------------------------


@dataclass(frozen=True)
class Accept:
    """A verified delivery and its events."""

    provider: str
    received_us: int
    headers: dict[str, str]
    body: bytes
    events: Sequence[InboundEvent]


@dataclass(frozen=True)
class Reject:
    """A verified delivery whose body cannot be read: kept with the reason, never loaded."""

    provider: str
    received_us: int
    headers: dict[str, str]
    body: bytes
    reason: str


@dataclass(frozen=True)
class Tally:
    """A refused delivery (forged, stale, ...): counted by reason, nothing else kept."""

    provider: str
    kind: str
    received_us: int


@dataclass(frozen=True)
class Stored:
    new: int
    duplicates: int


def apply(con: sqlite3.Connection, item: Accept | Reject | Tally) -> Stored:
    """Write one item inside the caller's transaction."""
    if isinstance(item, Tally):
        _tally(con, item.provider, item.kind, item.received_us)
        return Stored(0, 0)
    if isinstance(item, Reject):
        import hashlib

        con.execute(
            "insert or ignore into rejected (provider, body_sha, reason, received_us, headers, body) "
            "values (?, ?, ?, ?, ?, ?)",
            (
                item.provider,
                hashlib.sha256(item.body).hexdigest(),
                item.reason,
                item.received_us,
                orjson.dumps(item.headers),
                item.body,
            ),
        )
        return Stored(0, 0)
    return _accept(con, item)


def _accept(con: sqlite3.Connection, item: Accept) -> Stored:
    keys = [e.event_key for e in item.events]
    known = _known_keys(con, item.provider, keys)
    fresh = [e for e in _unique(item.events) if e.event_key not in known]
    duplicates = len(item.events) - len(fresh)
    if duplicates:
        _tally(con, item.provider, DUPLICATE, item.received_us, duplicates)
    if not fresh:
        return Stored(0, duplicates)
    cursor = con.execute(
        "insert into deliveries (provider, received_us, headers, body) values (?, ?, ?, ?)",
        (item.provider, item.received_us, orjson.dumps(item.headers), item.body),
    )
    delivery_id = cursor.lastrowid
    system = SYSTEM_OF[item.provider]
    con.executemany(
        "insert into events (provider, event_key, event_id, event_type, system, object_type, object_id, "
        "field, occurred_us, received_us, delivery_id, payload) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.provider,
                e.event_key,
                e.event_id,
                e.event_type,
                system,
                e.object_type,
                e.object_id,
                e.field,
                e.occurred_us,
                item.received_us,
                delivery_id,
                e.payload,
            )
            for e in fresh
        ],
    )
    return Stored(len(fresh), duplicates)


def _unique(events: Iterable[InboundEvent]) -> list[InboundEvent]:
    """One per key (a HubSpot batch may repeat an event within itself)."""
    return list({e.event_key: e for e in reversed(list(events))}.values())[::-1]


def _known_keys(con: sqlite3.Connection, provider: str, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = con.execute(
            f"select event_key from events where provider = ? and event_key in ({marks})", (provider, *chunk)
        )
        found.update(row[0] for row in rows)
    return found


def _tally(con: sqlite3.Connection, provider: str, kind: str, received_us: int, count: int = 1) -> None:
    con.execute(
        "insert into tallies (provider, kind, minute, count) values (?, ?, ?, ?) "
        "on conflict (provider, kind, minute) do update set count = count + excluded.count",
        (provider, kind, received_us // 60_000_000, count),
    )


class InboxWriter:
    """One thread owns the write connection; `submit` returns a future that resolves once the
    item is committed (durable), so the receiver answers 2xx only after that."""

    def __init__(self, path: Path, max_batch: int = MAX_BATCH) -> None:
        self.path = path
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._con = connect(path)
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self.commits = 0
        self._thread.start()

    def submit(self, item: Accept | Reject | Tally) -> concurrent.futures.Future[Stored]:
        future: concurrent.futures.Future[Stored] = concurrent.futures.Future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._con.close()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            with contextlib.suppress(queue.Empty):
                while len(batch) < self.max_batch:
                    nxt = self._queue.get_nowait()
                    if nxt is None:
                        self._queue.put(None)  # stop after this batch
                        break
                    batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Any, concurrent.futures.Future[Stored]]]) -> None:
        try:
            with transaction(self._con):
                results = [apply(self._con, item) for item, _ in batch]
        except Exception as exc:  # every delivery of the batch is answered 503 and retried
            log.error(
                "inbox commit failed (%s); %d deliveries refused for retry", type(exc).__name__, len(batch)
            )
            for _, future in batch:
                future.set_exception(exc)
            return
        self.commits += 1
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)


# -- what the drain and monitoring read -----------------------------------------------------------


@dataclass
class PendingEvent:
    rowid: int
    provider: str
    event_key: str
    event_id: str
    event_type: str
    system: str
    object_type: str
    object_id: str
    field: str
    occurred_us: int
    received_us: int
    payload: bytes


_PENDING_COLUMNS = (
    "rowid, provider, event_key, event_id, event_type, system, object_type, object_id, field, "
    "occurred_us, received_us, payload"
)


class Inbox:
    """Short-lived connections for the drain, the sensor, replay and monitoring."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        con = connect(self.path)
        try:
            yield con
        finally:
            con.close()

    def undrained(self, limit: int, after_rowid: int = 0) -> list[PendingEvent]:
        with self.connection() as con:
            rows = con.execute(
                f"select {_PENDING_COLUMNS} from events where drained_us is null and rowid > ? "
                "order by rowid limit ?",
                (after_rowid, limit),
            ).fetchall()
        return [PendingEvent(*row) for row in rows]

    def mark_drained(self, rowids: Sequence[int], drained_us: int) -> None:
        with self.connection() as con, transaction(con):
            con.executemany(
                "update events set drained_us = ? where rowid = ? and drained_us is null",
                [(drained_us, rowid) for rowid in rowids],
            )

    def undrained_rejected(self) -> list[tuple[str, str, str, int, bytes]]:
        with self.connection() as con:
            rows = con.execute(
                "select provider, body_sha, reason, received_us, body from rejected where drained_us is null"
            ).fetchall()
        return [(str(a), str(b), str(c), int(d), bytes(e)) for a, b, c, d, e in rows]

    def mark_rejected_drained(self, keys: Sequence[tuple[str, str]], drained_us: int) -> None:
        with self.connection() as con, transaction(con):
            con.executemany(
                "update rejected set drained_us = ? where provider = ? and body_sha = ?",
                [(drained_us, provider, sha) for provider, sha in keys],
            )

    def unsynced(self, after_us: int = 0) -> dict[str, int]:
        """Events per system that no sync has covered yet (drained or not), received after `after_us`."""
        with self.connection() as con:
            rows = con.execute(
                "select system, count(*) from events where synced_us is null and received_us > ? group by 1",
                (after_us,),
            )
            return {system: count for system, count in rows}

    def unsynced_objects(self, system: str, limit: int) -> list[str] | None:
        """The objects the unsynced events of `system` name (None when there are more than `limit`)."""
        with self.connection() as con:
            rows = con.execute(
                "select distinct object_id from events where synced_us is null and system = ? limit ?",
                (system, limit + 1),
            ).fetchall()
        return None if len(rows) > limit else sorted(row[0] for row in rows)

    def mark_synced_objects(
        self, system: str, prefixes: Sequence[str], before_us: int, synced_us: int
    ) -> int:
        """Like `mark_synced`, for a sync that read only some objects: the drained events of
        `system` whose object id starts with one of `prefixes`."""
        with self.connection() as con, transaction(con):
            total = 0
            for prefix in prefixes:
                cursor = con.execute(
                    "update events set synced_us = ? where synced_us is null and drained_us is not null "
                    "and received_us < ? and system = ? and substr(object_id, 1, ?) = ?",
                    (synced_us, before_us, system, len(prefix), prefix),
                )
                total += cursor.rowcount
            return total

    def mark_synced(self, systems: Sequence[str], before_us: int, synced_us: int) -> int:
        """A sync of `systems` that started at `before_us` covered every drained event of
        theirs that arrived before it: their changes were made before they were delivered."""
        if not systems:
            return 0
        marks = ",".join("?" * len(systems))
        with self.connection() as con, transaction(con):
            cursor = con.execute(
                f"update events set synced_us = ? where synced_us is null and drained_us is not null "
                f"and received_us < ? and system in ({marks})",
                (synced_us, before_us, *systems),
            )
            return cursor.rowcount

    def prune(self, before_us: int) -> int:
        """Forget what arrived before `before_us` and is in the warehouse: synced events, their
        deliveries once no event refers to them, drained rejects, tallies. Events no sync has
        covered stay, whatever their age. Returns the events removed."""
        with self.connection() as con, transaction(con):
            removed = con.execute(
                "delete from events where received_us < ? and synced_us is not null", (before_us,)
            ).rowcount
            con.execute(
                "delete from deliveries where received_us < ? and not exists "
                "(select 1 from events where events.delivery_id = deliveries.delivery_id)",
                (before_us,),
            )
            con.execute("delete from rejected where received_us < ? and drained_us is not null", (before_us,))
            con.execute("delete from tallies where minute < ?", (before_us // 60_000_000,))
            return removed

    def reopen(self, since_us: int | None = None, provider: str | None = None) -> int:
        """Make events (received since `since_us`, of `provider`) pending again, for replay."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if since_us is not None:
            where.append("received_us >= ?")
            params.append(since_us)
        if provider is not None:
            where.append("provider = ?")
            params.append(provider)
        with self.connection() as con, transaction(con):
            cursor = con.execute(
                f"update events set drained_us = null, synced_us = null where {' and '.join(where)}", params
            )
            con.execute(f"update rejected set drained_us = null where {' and '.join(where)}", params)
            return cursor.rowcount

    def figures(self, now: int | None = None, window_us: int = 3_600_000_000) -> InboxFigures:
        """Backlog, oldest waiting event, refusals by reason, latencies over the last window."""
        moment = now_us() if now is None else now
        with self.connection() as con:
            return _figures(con, moment, window_us)


@dataclass
class InboxFigures:
    now_us: int
    events: int = 0
    undrained: int = 0
    unsynced: int = 0
    oldest_undrained_us: int | None = None
    oldest_unsynced_us: int | None = None
    refused: dict[str, int] = field(default_factory=dict)  # reason -> deliveries, in the window
    refused_total: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0  # absorbed in the window
    rejected: int = 0  # authentic but unreadable, ever
    drained_latency: Latency | None = None  # arrival -> row in raw_webhooks, over the window
    synced_latency: Latency | None = None  # arrival -> the sync that followed committed, over the window


@dataclass(frozen=True)
class Latency:
    events: int
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float


def _latency(con: sqlite3.Connection, column: str, since: int) -> Latency | None:
    """Percentiles of `column` - received_us over the events that reached it since `since`."""
    count = con.execute(f"select count(*) from events where {column} >= ?", (since,)).fetchone()[0]
    if not count:
        return None

    def at(share: float) -> float:
        offset = min(count - 1, int(share * count))
        row = con.execute(
            f"select {column} - received_us from events where {column} >= ? order by 1 limit 1 offset ?",
            (since, offset),
        ).fetchone()
        return max(0, row[0]) / 1e6

    return Latency(count, at(0.5), at(0.95), at(0.99), at(1.0))


def _figures(con: sqlite3.Connection, moment: int, window_us: int) -> InboxFigures:
    figures = InboxFigures(now_us=moment)
    row = con.execute(
        "select count(*), count(*) filter (where drained_us is null), "
        "count(*) filter (where synced_us is null), min(received_us) filter (where drained_us is null), "
        "min(received_us) filter (where synced_us is null) from events"
    ).fetchone()
    figures.events, figures.undrained, figures.unsynced = row[0], row[1], row[2]
    figures.oldest_undrained_us, figures.oldest_unsynced_us = row[3], row[4]
    since_minute = (moment - window_us) // 60_000_000
    for kind, count, recent in con.execute(
        "select kind, sum(count), sum(count) filter (where minute >= ?) from tallies group by kind",
        (since_minute,),
    ):
        if kind == DUPLICATE:
            figures.duplicates = recent or 0
        else:
            figures.refused_total[kind] = count
            if recent:
                figures.refused[kind] = recent
    figures.rejected = con.execute("select count(*) from rejected").fetchone()[0]
    since = moment - window_us
    figures.drained_latency = _latency(con, "drained_us", since)
    figures.synced_latency = _latency(con, "synced_us", since)
    return figures
