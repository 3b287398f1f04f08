"""Settings read at definition or run time, and the one-writer lock on the warehouse (a file
lock, plus an advisory lock on a PostgreSQL warehouse).

Settings come from environment variables (`TRUEUP_TIMEZONE`, ...), then dlt-style
variables (`ORCHESTRATION__TIMEZONE`), then the `[orchestration]` table of
`.dlt/secrets.toml` and `.dlt/config.toml`. The TOML files are read with `tomllib`, so
loading the code location never imports dlt.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from ingestion.warehouse import Paths, paths

log = logging.getLogger(__name__)

WRITER_TAG = "trueup/writer"  # runs that write the warehouse file carry it; the run queue allows one
WRITER_TAG_VALUE = "warehouse"

# Hours after which a source's raw tables count as stale. CRM, billing and scheduling are
# synced hourly; ad platforms report a day's metrics once, so a day and a bit is normal.
DEFAULT_FRESHNESS_HOURS = {"crm": 3.0, "billing": 3.0, "scheduling": 3.0, "ads": 26.0}


def setting(name: str, default: str | None = None) -> str | None:
    """One orchestration setting: `TRUEUP_<NAME>`, `ORCHESTRATION__<NAME>`, then `.dlt/*.toml`."""
    for variable in (f"TRUEUP_{name.upper()}", f"ORCHESTRATION__{name.upper()}"):
        value = os.environ.get(variable)
        if value:
            return value
    for file in ("secrets.toml", "config.toml"):
        value = _toml_setting(dlt_project_dir() / file, name.lower())
        if value is not None:
            return str(value)
    return default


def dlt_project_dir() -> Path:
    """Where dlt looks for its config: `DLT_PROJECT_DIR`, else `.dlt` in the working directory."""
    return Path(os.environ.get("DLT_PROJECT_DIR") or ".") / ".dlt"


def _toml_setting(path: Path, key: str) -> Any:
    if not path.is_file():
        return None
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("orchestration") or {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        log.warning("ignoring %s: %s", path.name, type(exc).__name__)
        return None
    return table.get(key)


@dataclass(frozen=True)
class OpsSettings:
    """Schedules, time zone and freshness limits; secrets (the webhook URL) are read apart."""

    timezone: str = "UTC"
    nightly_cron: str = "0 2 * * *"
    sync_cron: str = "0 * * * *"
    audit_cron: str = "0 1 * * 0"  # weekly, before the nightly run that publishes the figures
    freshness_hours: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FRESHNESS_HOURS))
    writer_wait_seconds: float = 6 * 3600.0


def ops_settings() -> OpsSettings:
    """Read the settings now (definition or run time, never at import); validate them."""
    timezone = setting("timezone", "UTC") or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"TRUEUP_TIMEZONE={timezone!r} is not an IANA time zone") from exc
    defaults = OpsSettings()
    every_source = setting("freshness_hours")
    hours = {
        system: _float_setting(f"freshness_hours_{system}", every_source, limit)
        for system, limit in DEFAULT_FRESHNESS_HOURS.items()
    }
    return OpsSettings(
        timezone=timezone,
        nightly_cron=setting("nightly_cron", defaults.nightly_cron) or defaults.nightly_cron,
        sync_cron=setting("sync_cron", defaults.sync_cron) or defaults.sync_cron,
        audit_cron=setting("audit_cron", defaults.audit_cron) or defaults.audit_cron,
        freshness_hours=hours,
        writer_wait_seconds=_float_setting("writer_wait_seconds", None, defaults.writer_wait_seconds),
    )


def _float_setting(name: str, fallback: str | None, default: float) -> float:
    raw = setting(name) or fallback
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a number, got {raw!r}") from exc


class WriterBusy(RuntimeError):
    """Another process holds the warehouse writer lock for longer than we may wait."""

    expected = True  # the CLI prints the message alone


def lock_path(where: Paths) -> Path:
    """The file whose `flock` is the warehouse's writer lock."""
    return where.home / "locks" / "warehouse.lock"


# The key of the session-level advisory lock a writer holds on a PostgreSQL warehouse ("trueup"
# in ASCII, then 1): fixed, so every trueup process on any machine asks for the same lock.
ADVISORY_LOCK_KEY = 0x7472756575700001


@contextmanager
def writer_lock(where: Paths | None = None, wait_seconds: float = 0.0, poll: float = 1.0) -> Iterator[Path]:
    """Hold the warehouse's writer lock (an exclusive `flock`) for the whole block.

    Two runs never write the DuckDB file at once: the second waits up to `wait_seconds`,
    then gives up with WriterBusy. The lock is released when the process dies.

    On a PostgreSQL warehouse the block also holds a session-level advisory lock
    (`pg_try_advisory_lock(ADVISORY_LOCK_KEY)`) on a connection of its own, so two machines
    sharing the warehouse never write it at once either; the server releases it when that
    connection ends (the process exits or dies).
    """
    where = where or paths()
    lock_file = lock_path(where)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    with open(lock_file, "a+") as handle:
        _wait(
            lambda: _flocked(handle),
            deadline,
            poll,
            f"another run holds {lock_file}; try again when it ends",
        )
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            with _advisory_lock(where, deadline, poll):
                yield lock_file
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _flocked(handle: Any) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait(attempt: Any, deadline: float, poll: float, busy: str) -> None:
    """Call `attempt` until it returns True; WriterBusy(`busy`) once the deadline has passed."""
    announced = False
    while not attempt():
        if time.monotonic() >= deadline:
            raise WriterBusy(busy)
        if not announced:
            log.warning("waiting for the run that is writing the warehouse to finish")
            announced = True
        time.sleep(poll)


@contextmanager
def _advisory_lock(where: Paths, deadline: float, poll: float) -> Iterator[None]:
    """On PostgreSQL: the writer's advisory lock, held on its own connection for the block."""
    engine = where.engine
    if not engine.is_postgres:
        yield
        return
    from ingestion.sqlconn import pg_connect

    con = pg_connect(engine)
    try:
        con.autocommit = True  # a session-level lock: no transaction stays open for the block

        def attempt() -> bool:
            with con.cursor() as cursor:
                cursor.execute("select pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
                row = cursor.fetchone()
            return bool(row and row[0])

        _wait(
            attempt,
            deadline,
            poll,
            f"another run holds the writer lock of {engine.display} (PostgreSQL advisory lock "
            f"{ADVISORY_LOCK_KEY}); try again when it ends",
        )
        try:
            yield
        finally:
            if not con.closed:
                with con.cursor() as cursor:
                    cursor.execute("select pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    finally:
        con.close()


class WarehouseWriter(dg.ConfigurableResource):
    """Held for a whole run (the in-process executor sets resources up once per run), so the
    run is the warehouse's only writer from its first step to its publish step."""

    wait_seconds: float | None = None  # None: the `writer_wait_seconds` setting

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[WarehouseWriter]:
        wait = self.wait_seconds if self.wait_seconds is not None else ops_settings().writer_wait_seconds
        where = paths()
        with writer_lock(where, wait_seconds=wait) as lock_file:
            if context.log is not None:
                engine = where.engine
                also = f" and the advisory lock of {engine.display}" if engine.is_postgres else ""
                context.log.info(f"holding the warehouse writer lock {lock_file}{also}")
            yield self


def resources() -> dict[str, Any]:
    """The resources every area shares, built in one place."""
    return {"warehouse_writer": WarehouseWriter()}
