"""Run the suites against the warehouse (read-only) and keep what they found (a separate write).

The warehouse is a DuckDB file or a PostgreSQL database (`ingestion.engine.Engine`); the suites'
SQL reads the same on both (`checks.sql`), and the connection is the one thing that differs:
`connect_reader` opens it, `store_results` writes the history into the same warehouse.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from checks import sql
from checks.results import RESULTS_COLUMNS, RESULTS_SCHEMA, RESULTS_TABLE, CheckResult, format_number
from checks.suites import Check, Settings, select
from ingestion.engine import Engine

if TYPE_CHECKING:
    from checks.judge import Verdict

log = logging.getLogger(__name__)

T = TypeVar("T")

SAMPLE_SIZE = 10
LOCK_TIMEOUT = 120.0  # seconds to wait for another process to finish writing the warehouse


@dataclass
class Measured:
    observed: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


def run_checks(
    database: Path | str | Engine,
    *,
    suites: Iterable[str] | None = None,
    keys: Iterable[str] | None = None,
    settings: Settings | None = None,
    sample_size: int = SAMPLE_SIZE,
) -> list[CheckResult]:
    """Run the selected checks (all by default) against `database` (a DuckDB file, opened
    read-only, or an `Engine`), measuring every number in the warehouse."""
    from checks.judge import Measurement, judge, warm_up

    engine = as_engine(database)
    if not engine.is_postgres and not (engine.path and engine.path.exists()):
        raise FileNotFoundError(f"no warehouse at {engine.display}: load and build it first")
    chosen = select(suites, keys)
    warm_up()  # GX imports while the config is read and DuckDB computes
    settings = settings or Settings()
    checks = [c.resolve(settings) for c in chosen]
    with connect_reader(engine) as con:
        existing = _relations(con)
        con.execute(sql.quarantine_view(_schemas_with_quarantine(existing)))
        built = [c for c in checks if not _missing(c, existing)]
        measured = measure(con, built)
        verdicts = judge(
            [
                Measurement(c.key, measured[c.key].observed, c.levels.warn_above, c.levels.error_above)
                for c in built
                if measured[c.key].error is None
            ]
        )
        return [_outcome(con, c, _missing(c, existing), measured, verdicts, sample_size) for c in checks]


def _outcome(
    con: Any,
    check: Check,
    missing: list[str],
    measured: dict[str, Measured],
    verdicts: dict[str, Verdict],
    sample_size: int,
) -> CheckResult:
    if missing:
        return _not_built(check, missing)
    m = measured[check.key]
    if m.error is not None:
        return _broken(check, m)
    verdict = verdicts[check.key]
    level = "error" if verdict.error else "warn" if verdict.warn else None
    return _judged(check, m, level, _sample(con, check, sample_size) if level else ())


def as_engine(database: Path | str | Engine) -> Engine:
    """The warehouse `database` names: an `Engine` as it is, a path as a DuckDB file."""
    return database if isinstance(database, Engine) else Engine(kind="duckdb", path=Path(database))


def connect_reader(engine: Engine, lock_timeout: float = LOCK_TIMEOUT) -> Any:
    """A connection the checks read through (`execute(sql)` returning a cursor), either engine."""
    if engine.is_postgres:
        return PostgresReader(engine)
    assert engine.path is not None
    return read_only(engine.path, lock_timeout)


class PostgresReader:
    """A PostgreSQL connection with the calls the runner makes on a DuckDB one.

    Autocommit: each query stands alone (one that fails leaves the next to run), and each sees
    the warehouse as committed when it starts; timestamps are rendered in UTC as on DuckDB.
    """

    def __init__(self, engine: Engine) -> None:
        self.con = engine.connect(autocommit=True)
        self.execute("set timezone to 'UTC'")

    def execute(self, query: str) -> Any:
        cursor = self.con.cursor()
        cursor.execute(query)  # no parameters: a % in the SQL is the SQL's own
        return cursor

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> PostgresReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def query_errors() -> tuple[type[Exception], ...]:
    """What a failed query raises on either engine."""
    import psycopg2

    return (duckdb.Error, psycopg2.Error)


def read_only(database: Path, lock_timeout: float = LOCK_TIMEOUT) -> duckdb.DuckDBPyConnection:
    """A read-only connection, waiting while another process writes the file.

    A process that already holds the file read-write (an in-process load) cannot open it
    read-only as well; there the checks share its connection settings and only read.
    """

    def connect() -> duckdb.DuckDBPyConnection | None:
        try:
            return duckdb.connect(str(database), read_only=True)
        except duckdb.ConnectionException:
            return None  # held read-write by this process: opened below, never retried

    con = _while_locked(connect, lock_timeout, "warehouse busy, waiting to read it: %s")
    return con if con is not None else duckdb.connect(str(database))


def _while_locked(attempt: Callable[[], T], lock_timeout: float, waiting: str) -> T:
    """`attempt()`, tried again every second while another process holds the warehouse's lock,
    until `lock_timeout` seconds have passed; `waiting` is the log message (one `%s`, the error)."""
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            return attempt()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            log.info(waiting, _first_line(exc))
            time.sleep(1.0)


def measure(con: Any, checks: Sequence[Check]) -> dict[str, Measured]:
    """Compute every check's number, one aggregate query per source the checks share."""
    errors = query_errors()
    groups: dict[str, list[Check]] = {}
    for check in checks:
        groups.setdefault(check.source, []).append(check)
    measured: dict[str, Measured] = {}
    for source, group in groups.items():
        try:
            measured.update(_measure_group(con, source, group))
        except errors as exc:
            if len(group) == 1:
                measured[group[0].key] = Measured(error=_first_line(exc))
                continue
            log.warning(
                "checks on %s failed together (%s); running them one by one", source, _first_line(exc)
            )
            for check in group:
                try:
                    measured.update(_measure_group(con, source, [check]))
                except errors as one:
                    measured[check.key] = Measured(error=_first_line(one))
    return measured


def _measure_group(con: Any, source: str, group: Sequence[Check]) -> dict[str, Measured]:
    columns: list[tuple[str, str]] = []
    for i, check in enumerate(group):
        columns.append((f"c{i}", check.observed))
        columns.extend((f"c{i}__{name}", expr) for name, expr in check.details)
    started = time.perf_counter()
    row = con.execute(sql.batch(source, columns)).fetchone()
    seconds = time.perf_counter() - started
    values = dict(zip([alias for alias, _ in columns], row or (), strict=False))
    return {
        check.key: Measured(
            observed=_float(values.get(f"c{i}")),
            details={name: _plain(values.get(f"c{i}__{name}")) for name, _ in check.details},
            seconds=seconds,
        )
        for i, check in enumerate(group)
    }


def _sample(con: Any, check: Check, size: int) -> tuple[str, ...]:
    if not check.sample or size <= 0:
        return ()
    try:
        rows = con.execute(sql.limited(check.sample, size)).fetchall()
    except query_errors() as exc:
        log.warning("sample of %s failed: %s", check.key, _first_line(exc))
        return ()
    return tuple(str(row[0]) for row in rows if row and row[0] is not None)


def _judged(check: Check, m: Measured, level: str | None, sample: tuple[str, ...]) -> CheckResult:
    if level is None:
        status, severity, message = "passed", _top_level(check), ""
    else:
        limit = check.levels.error_above if level == "error" else check.levels.warn_above
        observed = "no value" if m.observed is None else f"{format_number(m.observed)} {check.unit}"
        status, severity = "failed", level
        message = f"{observed} is above the {level} level of {format_number(limit)}"
    return CheckResult(
        check=check.name,
        suite=check.suite,
        asset=check.asset,
        status=status,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        observed=m.observed,
        unit=check.unit,
        warn_above=check.levels.warn_above,
        error_above=check.levels.error_above,
        sample=sample,
        details={**m.details, **dict(check.params)},
        message=message,
        seconds=m.seconds,
    )


def _not_built(check: Check, missing: list[str]) -> CheckResult:
    return CheckResult(
        check=check.name,
        suite=check.suite,
        asset=check.asset,
        status="not_built",
        severity="warn",
        observed=None,
        unit=check.unit,
        warn_above=check.levels.warn_above,
        error_above=check.levels.error_above,
        message=f"not built: {', '.join(missing)} missing from the warehouse",
    )


def _broken(check: Check, m: Measured) -> CheckResult:
    return CheckResult(
        check=check.name,
        suite=check.suite,
        asset=check.asset,
        status="error",
        severity="warn",
        observed=None,
        unit=check.unit,
        warn_above=check.levels.warn_above,
        error_above=check.levels.error_above,
        message=f"could not run: {m.error}",
    )


def _top_level(check: Check) -> str:
    return "error" if check.levels.error_above is not None else "warn"


def _relations(con: Any) -> set[str]:
    return {str(row[0]) for row in con.execute(sql.EXISTING_RELATIONS).fetchall()}


def _schemas_with_quarantine(existing: set[str]) -> list[str]:
    return [name.rsplit(".", 1)[0] for name in existing if name.endswith("._quarantine")]


def _missing(check: Check, existing: set[str]) -> list[str]:
    return [name for name in check.requires if name not in existing]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _plain(value: Any) -> Any:
    """Numbers as int or float, everything else as text (for JSON and Dagster metadata)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# -- history -------------------------------------------------------------------------------------


def store_results(
    results: Sequence[CheckResult],
    warehouse: Path | str | Engine,
    *,
    run_id: str | None = None,
    origin: str = "cli",
    checked_at: datetime | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> str:
    """Append the results to `checks.check_results` of the warehouse (created on first use);
    returns the run id.

    A separate read-write step: DuckDB allows one writer, so a busy file is retried until
    `lock_timeout` seconds have passed. On PostgreSQL the rows go in in one transaction.
    """
    run_id = run_id or uuid.uuid4().hex
    checked_at = checked_at or datetime.now(UTC)
    rows = [r.to_row(run_id, checked_at, origin) for r in results]
    table = sql.relation(RESULTS_SCHEMA, RESULTS_TABLE)
    columns = ", ".join(f"{sql.quote(name)} {kind}" for name, kind in RESULTS_COLUMNS)
    placeholders = ", ".join("?" for _ in RESULTS_COLUMNS)
    engine = as_engine(warehouse)
    if engine.is_postgres:
        _store_postgres(engine, rows)
        return run_id

    def write() -> None:
        with duckdb.connect(str(engine.path)) as con:
            con.execute(f"create schema if not exists {sql.quote(RESULTS_SCHEMA)}")
            con.execute(f"create table if not exists {table} ({columns})")
            if rows:
                con.executemany(f"insert into {table} values ({placeholders})", rows)

    _while_locked(write, lock_timeout, "warehouse busy, retrying the check results write: %s")
    return run_id


def _store_postgres(engine: Engine, rows: Sequence[tuple[Any, ...]]) -> None:
    from psycopg2.extras import execute_values

    table = sql.relation(RESULTS_SCHEMA, RESULTS_TABLE)
    columns = ", ".join(f"{sql.quote(name)} {_postgres_type(kind)}" for name, kind in RESULTS_COLUMNS)
    con = engine.connect()
    try:
        with con, con.cursor() as cursor:  # one transaction: all the rows or none
            cursor.execute(f"create schema if not exists {sql.quote(RESULTS_SCHEMA)}")
            cursor.execute(f"create table if not exists {table} ({columns})")
            if rows:
                execute_values(cursor, f"insert into {table} values %s", rows)
    finally:
        con.close()


def _postgres_type(kind: str) -> str:
    """A column type of `RESULTS_COLUMNS` in PostgreSQL's words (`double` is `double precision`)."""
    first, _, rest = kind.partition(" ")
    return f"double precision {rest}".strip() if first == "double" else kind
