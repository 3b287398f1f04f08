"""PostgreSQL warehouse: publishing for readers, and moving tables between it and DuckDB.

Publishing (`publish_schemas`) copies every published schema `S` to `published_S` in one
transaction and grants the read-only role (setting `published_role`, default `trueup_reader`,
created NOLOGIN when missing) USAGE and SELECT on those schemas alone: a BI tool's login that is
granted the role reads the marts and the findings, never raw or the working schemas. Tables are
refreshed in place (delete and insert in that one transaction), so a reader's query, or its
repeatable-read transaction, sees the old copy or the new one, never a mix, and neither waits
for the other. Only a table whose columns changed is dropped and created again; that waits for
the readers of the old table to finish.

`copy_to_duckdb` writes PostgreSQL relations into a DuckDB database (the local published copy,
which trueup's own readers open), and `copy_from_duckdb` goes the other way (moving a DuckDB
warehouse's schemas onto a server). Both stream each table as CSV through a temporary file,
with the column types mapped one by one (`duckdb_type`, `postgres_type`); a type with no
counterpart travels as text (lists and structs as JSON text).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_ROLE = "trueup_reader"
PUBLISHED_PREFIX = "published_"
RELATION_KINDS = ("r", "v", "m", "p")  # tables, views, materialized views, partitioned tables


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def published_role() -> str:
    """The role BI tools are granted (setting `published_role`, default `trueup_reader`)."""
    from orchestration.resources import setting

    return setting("published_role") or DEFAULT_ROLE


def published_name(schema: str) -> str:
    return PUBLISHED_PREFIX + schema


# -- publishing on the server --------------------------------------------------------------------


def publish_schemas(engine: Engine, schemas: Sequence[str], role: str | None = None) -> dict[str, int]:
    """Copy each schema `S` to `published_S` and grant `role` read access to those alone, in one
    transaction. Returns rows per `S.table` (the source's names)."""
    role = role or published_role()
    con = engine.connect()
    counts: dict[str, int] = {}
    try:
        with con, con.cursor() as cursor:  # one transaction: readers see all of it or none
            _ensure_role(cursor, role)
            for schema in schemas:
                counts.update(_publish_schema(cursor, schema, role))
            _revoke_elsewhere(cursor, role, [published_name(s) for s in schemas])
    finally:
        con.close()
    return counts


def _ensure_role(cursor: Any, role: str) -> None:
    cursor.execute("select 1 from pg_roles where rolname = %s", [role])
    if cursor.fetchone() is None:
        # NOLOGIN: the role carries grants; people and BI tools log in as roles granted it
        cursor.execute(f"create role {quote(role)} nologin")


def _publish_schema(cursor: Any, schema: str, role: str) -> dict[str, int]:
    """Refresh `published_<schema>` from `schema`.

    A table whose columns did not change is refreshed in place (delete, insert): MVCC keeps the
    old rows for every reader's snapshot, and no reader waits or is waited for. A table whose
    shape changed (a model changed) is dropped and created again, which waits for the readers
    of the old one to finish.
    """
    target = published_name(schema)
    cursor.execute(f"create schema if not exists {quote(target)}")
    present = {name for name, _ in relations(cursor, target)}
    counts = {}
    for name, comment in relations(cursor, schema):
        source, copy = f"{quote(schema)}.{quote(name)}", f"{quote(target)}.{quote(name)}"
        if name in present and columns(cursor, target, name) == columns(cursor, schema, name):
            cursor.execute(f"delete from {copy}")
            cursor.execute(f"insert into {copy} select * from {source}")
        else:
            cursor.execute(f"drop table if exists {copy} cascade")
            cursor.execute(f"create table {copy} as select * from {source}")
        counts[f"{schema}.{name}"] = cursor.rowcount
        present.discard(name)
        _carry_comments(cursor, (schema, name), (target, name), comment)
    for gone in sorted(present):  # a model removed since the last publish
        cursor.execute(f"drop table {quote(target)}.{quote(gone)} cascade")
    _grant(cursor, target, role)
    return counts


def _carry_comments(
    cursor: Any, source: tuple[str, str], target: tuple[str, str], comment: str | None
) -> None:
    """The source's table and column comments on the copy, set only where they differ."""
    copy = f"{quote(target[0])}.{quote(target[1])}"
    cursor.execute(
        "select obj_description((quote_ident(%s) || '.' || quote_ident(%s))::regclass, 'pg_class')",
        list(target),
    )
    row = cursor.fetchone()
    if (row[0] if row else None) != comment and comment:
        cursor.execute(f"comment on table {copy} is {text(comment)}")
    have = dict(_column_comments(cursor, *target))
    for column, note in _column_comments(cursor, *source):
        if have.get(column) != note:
            cursor.execute(f"comment on column {copy}.{quote(column)} is {text(note)}")


def _grant(cursor: Any, schema: str, role: str) -> None:
    """USAGE on the schema and SELECT on each of its tables, where the role lacks them."""
    cursor.execute("select has_schema_privilege(%s, %s, 'USAGE')", [role, schema])
    if not cursor.fetchone()[0]:
        cursor.execute(f"grant usage on schema {quote(schema)} to {quote(role)}")
    cursor.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind = any(%s) and not has_table_privilege(%s, c.oid, 'SELECT')",
        [schema, list(RELATION_KINDS), role],
    )
    for (name,) in cursor.fetchall():
        cursor.execute(f"grant select on {quote(schema)}.{quote(name)} to {quote(role)}")


def _revoke_elsewhere(cursor: Any, role: str, published: Sequence[str]) -> None:
    """The role reads the published schemas only: drop any grant it holds on another schema
    (one a previous setting of `published_schemas` published, or granted by hand)."""
    cursor.execute(
        "select nspname from pg_namespace where has_schema_privilege(%s, oid, 'USAGE') "
        "and nspname not in ('pg_catalog', 'information_schema') and nspname not like 'pg\\_%%' "
        "and nspname <> 'public' and not (nspname = any(%s))",
        [role, list(published)],
    )
    for (schema,) in cursor.fetchall():
        cursor.execute(f"revoke all on all tables in schema {quote(schema)} from {quote(role)}")
        cursor.execute(f"revoke usage on schema {quote(schema)} from {quote(role)}")


def relations(cursor: Any, schema: str) -> list[tuple[str, str | None]]:
    """(name, comment) of every table and view of one schema, by name."""
    cursor.execute(
        "select c.relname, obj_description(c.oid, 'pg_class') from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace where n.nspname = %s "
        "and c.relkind = any(%s) order by c.relname",
        [schema, list(RELATION_KINDS)],
    )
    return [(str(name), comment) for name, comment in cursor.fetchall()]


def _column_comments(cursor: Any, schema: str, table: str) -> list[tuple[str, str]]:
    cursor.execute(
        "select a.attname, col_description(a.attrelid, a.attnum) from pg_attribute a "
        "where a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass and a.attnum > 0 "
        "and not a.attisdropped and col_description(a.attrelid, a.attnum) <> '' order by a.attnum",
        [schema, table],
    )
    return [(str(c), str(n)) for c, n in cursor.fetchall()]


# -- PostgreSQL to DuckDB --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # format_type(): e.g. "numeric(12,2)", "text[]", "timestamp with time zone"


def columns(cursor: Any, schema: str, table: str) -> list[Column]:
    cursor.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
        "where a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass and a.attnum > 0 "
        "and not a.attisdropped order by a.attnum",
        [schema, table],
    )
    return [Column(str(name), str(kind)) for name, kind in cursor.fetchall()]


_SAME = {
    "boolean": "BOOLEAN",
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "text": "VARCHAR",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMPTZ",
    "time without time zone": "TIME",
    "uuid": "UUID",
    "interval": "INTERVAL",
}


def duckdb_type(pg_type: str, integral: bool = False) -> str:
    """DuckDB's type for a PostgreSQL column; `integral`: an unconstrained numeric whose values
    are all whole numbers (a sum of integers) becomes HUGEINT, as DuckDB's own sum is."""
    if pg_type.endswith("[]"):
        element = duckdb_type(pg_type.removesuffix("[]"))
        return f"{element}[]" if element in _LIST_ELEMENTS else "VARCHAR[]"
    base = re.sub(r"\(\d+\)", "", pg_type) if pg_type.startswith(("timestamp", "time ")) else pg_type
    if base in _SAME:
        return _SAME[base]
    if pg_type.startswith(("character varying", "character")):
        return "VARCHAR"
    found = re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type)
    if found:
        precision, scale = int(found[1]), int(found[2])
        return f"DECIMAL({precision},{scale})" if precision <= 38 else "DOUBLE"
    if pg_type == "numeric":
        return "HUGEINT" if integral else "DOUBLE"
    return "VARCHAR"  # json, jsonb and anything else: its text


_LIST_ELEMENTS = ("BOOLEAN", "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR")


def _export_expression(column: Column) -> str:
    name = quote(column.name)
    if column.pg_type.endswith("[]"):
        return f"array_to_json({name})::text"  # a JSON list, which DuckDB casts to a list
    if duckdb_type(column.pg_type) == "VARCHAR" and column.pg_type != "text":
        return f"{name}::text"
    return name


def _integral_numerics(cursor: Any, schema: str, table: str, cols: Sequence[Column]) -> set[str]:
    numeric = [c.name for c in cols if c.pg_type == "numeric"]
    if not numeric:
        return set()
    tests = ", ".join(f"coalesce(bool_and({quote(n)} = trunc({quote(n)})), true)" for n in numeric)
    cursor.execute(f"select {tests} from {quote(schema)}.{quote(table)}")
    row = cursor.fetchone()
    return {n for n, whole in zip(numeric, row, strict=True) if whole}


def copy_to_duckdb(
    engine: Engine,
    duck: Any,
    tables: Iterable[tuple[str, str, str]],
    *,
    database: str | None = None,
    only_columns: Mapping[tuple[str, str], Sequence[str]] | None = None,
    snapshot: Any = None,
    comments: bool = False,
) -> dict[str, int]:
    """Copy PostgreSQL relations into an open DuckDB connection `duck`: each (source schema,
    table, target schema) becomes the table `target schema.table` (in catalog `database` when
    given). `only_columns` narrows some tables to a few columns. `snapshot`: a psycopg2
    connection to read through (one transaction for all of it); else one is opened.
    `comments`: carry the table and column comments over. Returns rows per `target schema.table`."""
    con = snapshot or engine.connect()
    prefix = f"{quote(database)}." if database else ""
    counts: dict[str, int] = {}
    try:
        with con.cursor() as cursor, tempfile.TemporaryDirectory(prefix="trueup-copy-") as scratch:
            cursor.execute("set timezone to 'UTC'")
            duck.execute("set TimeZone = 'UTC'")
            made: set[str] = set()
            for schema, table, target in tables:
                if target not in made:
                    duck.execute(f"create schema if not exists {prefix}{quote(target)}")
                    made.add(target)
                wanted = (only_columns or {}).get((schema, table))
                cols = [c for c in columns(cursor, schema, table) if wanted is None or c.name in wanted]
                file = Path(scratch) / "table.csv"
                name = f"{prefix}{quote(target)}.{quote(table)}"
                counts[f"{target}.{table}"] = _copy_one(cursor, duck, (schema, table), name, cols, file)
                if comments:
                    _copy_comments(cursor, duck, (schema, table), name)
    finally:
        if snapshot is None:
            con.close()
    return counts


def _copy_one(
    cursor: Any, duck: Any, source: tuple[str, str], target: str, cols: Sequence[Column], file: Path
) -> int:
    schema, table = source
    integral = _integral_numerics(cursor, schema, table, cols)
    types = [duckdb_type(c.pg_type, c.name in integral) for c in cols]
    definition = ", ".join(f"{quote(c.name)} {t}" for c, t in zip(cols, types, strict=True))
    duck.execute(f"create or replace table {target} ({definition})")
    if not cols:
        return 0
    select = ", ".join(_export_expression(c) for c in cols)
    with file.open("w", encoding="utf-8", newline="") as out:
        cursor.copy_expert(
            f"copy (select {select} from {quote(schema)}.{quote(table)}) to stdout with (format csv)", out
        )
    # read as text, then cast: lists arrive as JSON text, everything else as PostgreSQL wrote it
    read = ", ".join(f"{text(c.name)}: 'VARCHAR'" for c in cols)
    casts = ", ".join(
        f"cast({quote(c.name)} as {t})" if t != "VARCHAR" else quote(c.name)
        for c, t in zip(cols, types, strict=True)
    )
    duck.execute(
        f"insert into {target} select {casts} from read_csv({text(str(file))}, columns = {{{read}}}, "
        "header = false, auto_detect = false, quote = '\"', escape = '\"', nullstr = '', "
        "allow_quoted_nulls = false, strict_mode = true)"
    )
    row = duck.execute(f"select count(*) from {target}").fetchone()
    return int(row[0]) if row else 0


def _copy_comments(cursor: Any, duck: Any, source: tuple[str, str], target: str) -> None:
    schema, table = source
    cursor.execute(
        "select obj_description((quote_ident(%s) || '.' || quote_ident(%s))::regclass, 'pg_class')",
        [schema, table],
    )
    row = cursor.fetchone()
    if row and row[0]:
        duck.execute(f"comment on table {target} is {text(row[0])}")
    for column, note in _column_comments(cursor, schema, table):
        duck.execute(f"comment on column {target}.{quote(column)} is {text(note)}")


# What the publish step's ops summaries read from the schemas it leaves out (quarantine, loads,
# ingest health, accounts): dlt's and ingestion's bookkeeping tables of each raw schema, the
# audit, and two small facts about the accounts.
BOOKKEEPING_TABLES = (
    "_quarantine",
    "_quarantine_resolved",
    "_dlt_loads",
    "_resource_status",
    "_flagged",
    "_source_counts",
)
BOOKKEEPING_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("raw_billing", "customers"): ("livemode",),
}


def bookkeeping(cursor: Any) -> list[tuple[str, str, str]]:
    """(schema, table, schema) of the bookkeeping tables present on the server."""
    from ingestion.tables import SYSTEMS, dataset_name

    raw = [dataset_name(system) for system in SYSTEMS]
    wanted = {(schema, table) for schema in raw for table in BOOKKEEPING_TABLES}
    wanted |= {("raw_crm", "account_info"), *BOOKKEEPING_COLUMNS}
    cursor.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema = any(%s) or table_schema = 'audit' order by 1, 2",
        [raw],
    )
    return [(s, t, s) for s, t in cursor.fetchall() if (s, t) in wanted or s == "audit"]


# -- DuckDB to PostgreSQL --------------------------------------------------------------------------

_TO_POSTGRES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric",
    "HUGEINT": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIME": "time",
    "UUID": "uuid",
    "INTERVAL": "interval",
    "JSON": "jsonb",
}


def postgres_type(duck_type: str) -> str:
    """PostgreSQL's type for a DuckDB column (lists, structs and maps as jsonb)."""
    if duck_type in _TO_POSTGRES:
        return _TO_POSTGRES[duck_type]
    if duck_type.startswith("DECIMAL"):
        return "numeric" + duck_type.removeprefix("DECIMAL")
    return "jsonb"


def copy_from_duckdb(duckdb_path: Path, engine: Engine, schemas: Sequence[str]) -> dict[str, int]:
    """Copy `schemas` of a DuckDB warehouse (tables and views, as tables) into PostgreSQL, each
    table replaced, in one transaction. Returns rows per `schema.table`."""
    import duckdb

    counts: dict[str, int] = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as duck, tempfile.TemporaryDirectory() as scratch:
        duck.execute("set TimeZone = 'UTC'")
        found = duck.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            f"where table_schema in ({', '.join(text(s) for s in schemas)}) "
            "order by table_schema, table_name, ordinal_position"
        ).fetchall()
        layout: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, kind in found:
            layout.setdefault((schema, table), []).append((column, kind))
        con = engine.connect()
        try:
            with con, con.cursor() as cursor:
                for schema in schemas:
                    cursor.execute(f"create schema if not exists {quote(schema)}")
                for (schema, table), cols in layout.items():
                    file = Path(scratch) / "table.csv"
                    counts[f"{schema}.{table}"] = _copy_up(duck, cursor, schema, table, cols, file)
        finally:
            con.close()
    return counts


def _copy_up(
    duck: Any, cursor: Any, schema: str, table: str, cols: Sequence[tuple[str, str]], file: Path
) -> int:
    name = f"{quote(schema)}.{quote(table)}"
    definition = ", ".join(f"{quote(c)} {postgres_type(k)}" for c, k in cols)
    cursor.execute(f"drop table if exists {name} cascade")
    cursor.execute(f"create table {name} ({definition})")
    select = ", ".join(
        quote(c) if postgres_type(k) != "jsonb" or k == "JSON" else f"to_json({quote(c)})" for c, k in cols
    )
    duck.execute(f"copy (select {select} from {name}) to {text(str(file))} (format csv, header false)")
    with file.open(encoding="utf-8") as source:
        cursor.copy_expert(f"copy {name} from stdin with (format csv)", source)
    return int(cursor.rowcount)
