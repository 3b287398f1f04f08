"""One connection to the warehouse, whichever engine holds it: the seam the ingest's own SQL
goes through (declared tables, quarantine history, counts, the audit's figures).

`connect(where)` opens the DuckDB file or the PostgreSQL database that `TRUEUP_WAREHOUSE`
names and gives the same small interface on both: `execute(sql, params)` with `?` parameters,
`fetchall()` / `fetchone()` / `description` on what it returns, `modified(sql, params)` (rows a
DML statement touched), `tables(schema)`, `columns(schema)`, `sql_type(dlt type)` and
`row_address` (DuckDB's `rowid`, PostgreSQL's `ctid`). SQL written for it sticks to what both
engines read alike: `insert into t (columns) values (...)`, `group by 1, 2`, `interval '1 day'`,
no `qualify`, no `insert ... by name`.

On PostgreSQL a block is one transaction, committed when it ends without an error and rolled
back otherwise; on DuckDB each statement commits on its own, as before. Errors name the
warehouse by `Engine.display`, never with the password.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # pragma: no cover
    from ingestion.engine import Engine
    from ingestion.warehouse import Paths

# What names a warehouse: a DuckDB file, trueup's Paths (the configured engine), or an Engine.
Target: TypeAlias = "Path | Paths | Engine | None"

# dlt data type -> column type, per engine (what dlt itself creates for that type there)
SQL_TYPES = {
    "duckdb": {
        "text": "VARCHAR",
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "double": "DOUBLE",
        "json": "JSON",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "decimal": "DECIMAL(38, 9)",
    },
    "postgres": {
        "text": "VARCHAR",
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "double": "DOUBLE PRECISION",
        "json": "JSONB",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "decimal": "NUMERIC(38, 9)",
    },
}


class Connection:
    """The engine-neutral face of one open warehouse connection."""

    def __init__(self, engine: Engine, raw: Any) -> None:
        self.engine, self.raw = engine, raw
        self.is_postgres = engine.is_postgres

    # -- statements -------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """Run one statement with `?` parameters; returns something with `fetchall()`,
        `fetchone()` and `description`."""
        if not self.is_postgres:
            return self.raw.execute(sql, list(params) if params is not None else None)
        cursor = self.raw.cursor()
        if params is None:
            cursor.execute(sql)
        else:
            cursor.execute(_pyformat(sql), [_adapt(value) for value in params])
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if not self.is_postgres:
            self.raw.executemany(sql, [list(row) for row in rows])
            return
        from psycopg2.extras import execute_batch

        with self.raw.cursor() as cursor:
            execute_batch(cursor, _pyformat(sql), [[_adapt(v) for v in row] for row in rows], page_size=500)

    def modified(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run a DML statement; the rows it inserted, updated or deleted."""
        cursor = self.execute(sql, params)
        if self.is_postgres:
            return max(int(cursor.rowcount), 0)
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(sql, params).fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    # -- the catalog ------------------------------------------------------------------------

    def tables(self, schema: str, *, views: bool = False) -> set[str]:
        """The tables of one schema (empty when it does not exist)."""
        kinds = "('BASE TABLE', 'VIEW')" if views else "('BASE TABLE')"
        return {
            str(r[0])
            for r in self.fetchall(
                "select table_name from information_schema.tables "
                f"where table_schema = ? and table_type in {kinds}",
                [schema],
            )
        }

    def columns(self, schema: str) -> dict[str, set[str]]:
        """Table -> its column names, for one schema."""
        found: dict[str, set[str]] = {}
        for table, column in self.fetchall(
            "select table_name, column_name from information_schema.columns where table_schema = ?",
            [schema],
        ):
            found.setdefault(str(table), set()).add(str(column))
        return found

    def sql_type(self, dlt_type: str) -> str:
        """The column type dlt gives a dlt data type on this engine."""
        return SQL_TYPES[self.engine.kind][dlt_type]

    @property
    def row_address(self) -> str:
        """The pseudo-column that tells two otherwise equal rows apart."""
        return "ctid" if self.is_postgres else "rowid"


def engine_of(where: Target) -> Engine:
    """The engine behind a Target (None: the configured warehouse)."""
    from ingestion.engine import Engine

    if isinstance(where, Engine):
        return where
    if isinstance(where, Path):
        return Engine(kind="duckdb", path=where)
    from ingestion.warehouse import paths

    return (where or paths()).engine


def exists(where: Target) -> bool:
    """Whether there is a warehouse to read: a DuckDB file that exists, or any PostgreSQL one
    (a database that does not answer raises when connected to)."""
    engine = engine_of(where)
    return engine.is_postgres or bool(engine.path and engine.path.exists())


@contextmanager
def connect(where: Target = None, *, read_only: bool = False) -> Iterator[Connection]:
    """Open the warehouse (`where`: a DuckDB file, Paths or an Engine; default the configured
    one)."""
    engine = engine_of(where)
    if not engine.is_postgres:
        import duckdb  # here, not at import: the Dagster code location imports the warehouse module

        with duckdb.connect(str(engine.path), read_only=read_only) as con:
            yield Connection(engine, con)
        return
    raw = pg_connect(engine)
    try:
        if read_only:
            raw.set_session(readonly=True)
        yield Connection(engine, raw)
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def pg_connect(engine: Engine) -> Any:
    import psycopg2

    try:
        return engine.connect()
    except psycopg2.OperationalError as exc:  # libpq's message names host, port and user, not the password
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseUnreachable(f"cannot connect to the warehouse {engine.display}: {detail}") from None


class WarehouseUnreachable(RuntimeError):
    """The PostgreSQL warehouse did not accept a connection."""

    expected = True


def wrap(con: Any) -> Connection:
    """A Connection for a connection opened elsewhere: a DuckDB connection, a psycopg2 one, or a
    Connection already."""
    if isinstance(con, Connection):
        return con
    from ingestion.engine import Engine

    module = type(con).__module__
    if module.startswith("psycopg2"):
        params = con.get_dsn_parameters()
        engine = Engine(
            kind="postgres",
            host=params.get("host", ""),
            port=int(params.get("port") or 5432),
            user=params.get("user", ""),
            database=params.get("dbname", ""),
        )
        return Connection(engine, con)
    return Connection(Engine(kind="duckdb"), con)


def _pyformat(sql: str) -> str:
    """`?` parameters -> psycopg2's `%s` (a literal `%` doubled); quoted text is left alone."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote:
            if char == quote:
                quote = None
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


def _adapt(value: Any) -> Any:
    """Python values psycopg2 cannot send as they are: dicts and lists go as JSON."""
    if isinstance(value, dict | list):
        from psycopg2.extras import Json

        return Json(value)
    return value
