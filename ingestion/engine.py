"""Which engine holds the warehouse: one setting, `TRUEUP_WAREHOUSE`.

- unset, or a file path: DuckDB in one file (the embedded default; `make demo`).
- `postgresql://user[:password]@host[:port]/database`: PostgreSQL. Ingestion loads it with
  dlt's postgres destination, dbt builds it with dbt-postgres (target `postgres` of
  `dbt_project/profiles.yml`), the checks read it and publishing grants a read-only role.

The password may also come from `TRUEUP_WAREHOUSE_PASSWORD` (or `PGPASSWORD`), so the URL can
sit in a config file without it. Nothing here prints a password: `Engine.display` is the URL
without it, for logs and errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from ingestion.warehouse import Paths

POSTGRES_SCHEMES = ("postgresql", "postgres")
DBT_TARGETS = {"duckdb": "local", "postgres": "postgres"}


class WarehouseUrlError(ValueError):
    """TRUEUP_WAREHOUSE names no engine trueup can use."""


class DuckDBOnlyError(RuntimeError):
    """A step that runs on a DuckDB warehouse only was asked to run on another engine."""

    expected = True  # the CLI prints the message alone


def duckdb_only_message(what: str) -> str:
    return f"{what} runs on a DuckDB warehouse only; see docs/scaling.md"


@dataclass(frozen=True)
class Engine:
    kind: Literal["duckdb", "postgres"]
    path: Path | None = None  # DuckDB: the file
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    database: str = ""

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"

    @property
    def display(self) -> str:
        """Where the warehouse is, without any secret."""
        if self.kind == "duckdb":
            return str(self.path)
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def dsn(self) -> str:
        """A libpq connection string (carries the password: never log it)."""
        parts = {"host": self.host, "port": str(self.port), "user": self.user, "dbname": self.database}
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{key}='{_libpq_quote(value)}'" for key, value in parts.items())

    def url(self) -> str:
        """The URL with the password (for dlt's credentials: never log it)."""
        secret = f":{quote(self.password, safe='')}" if self.password else ""
        user = quote(self.user, safe="")
        return f"postgresql://{user}{secret}@{self.host}:{self.port}/{quote(self.database, safe='')}"

    def duckdb_file(self, what: str) -> Path:
        """The DuckDB file, for a step that runs on DuckDB only (`what` names it); on another
        engine a `DuckDBOnlyError` saying so, before anything opens or creates a file."""
        if self.kind != "duckdb" or self.path is None:
            raise DuckDBOnlyError(duckdb_only_message(what))
        return self.path

    def connect(self, *, autocommit: bool = False) -> Any:
        """A psycopg2 connection to the PostgreSQL warehouse."""
        if not self.is_postgres:
            raise TypeError("connect() opens a PostgreSQL warehouse; DuckDB files open with duckdb.connect")
        import psycopg2

        con = psycopg2.connect(self.dsn(), application_name="trueup")
        con.autocommit = autocommit
        return con

    def dlt_destination(self) -> Any:
        """dlt's destination for this warehouse."""
        import dlt

        if self.kind == "duckdb":
            return dlt.destinations.duckdb(str(self.path))
        return dlt.destinations.postgres(credentials=self.url())

    @property
    def loader_file_format(self) -> str | None:
        """The load file format dlt writes for this warehouse: Parquet for DuckDB (it ingests
        Parquet many times faster than INSERT statements); on PostgreSQL dlt's default, INSERT
        statements, which give json columns the jsonb type (its Parquet path needs an ADBC
        driver and writes json, not jsonb)."""
        return "parquet" if self.kind == "duckdb" else None

    def dbt_env(self) -> dict[str, str]:
        """What `dbt_project/profiles.yml` reads to pick and reach this warehouse."""
        env = {"TRUEUP_DBT_TARGET": DBT_TARGETS[self.kind]}
        if self.kind == "duckdb":
            env["TRUEUP_WAREHOUSE"] = str(self.path)
        else:
            env.update(
                TRUEUP_PG_HOST=self.host,
                TRUEUP_PG_PORT=str(self.port),
                TRUEUP_PG_USER=self.user,
                TRUEUP_PG_PASSWORD=self.password,
                TRUEUP_PG_DATABASE=self.database,
            )
        return env


def _libpq_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def parse(setting: str | None, default_path: Path) -> Engine:
    """The engine a `TRUEUP_WAREHOUSE` value names (None or empty: DuckDB at `default_path`)."""
    if not setting:
        return Engine(kind="duckdb", path=default_path)
    if "://" not in setting:
        return Engine(kind="duckdb", path=Path(setting))
    url = urlsplit(setting)
    if url.scheme not in POSTGRES_SCHEMES:
        raise WarehouseUrlError(
            f"TRUEUP_WAREHOUSE: unknown engine {url.scheme!r}; use a DuckDB file path or "
            "postgresql://user@host:port/database (docs/scaling.md lists the other engines)"
        )
    database = unquote(url.path.lstrip("/"))
    if not database or not url.hostname or not url.username:
        raise WarehouseUrlError(
            "TRUEUP_WAREHOUSE: a PostgreSQL warehouse needs a user, a host and a database: "
            "postgresql://user@host:port/database"
        )
    password = (
        unquote(url.password or "")
        or os.environ.get("TRUEUP_WAREHOUSE_PASSWORD")
        or os.environ.get("PGPASSWORD", "")
    )
    return Engine(
        kind="postgres",
        host=url.hostname,
        port=url.port or 5432,
        user=unquote(url.username),
        password=password,
        database=database,
    )


def engine(where: Paths | None = None) -> Engine:
    """The configured warehouse engine, read now (never at import)."""
    from ingestion.warehouse import paths

    where = where or paths()
    return parse(os.environ.get("TRUEUP_WAREHOUSE"), where.home / "warehouse.duckdb")
