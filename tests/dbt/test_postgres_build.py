"""The dbt project on PostgreSQL gives DuckDB's answers: the same raw (a small world loaded into
DuckDB, its raw schemas copied table for table into a fresh PostgreSQL database), built on both
engines, yields the same findings, identity clusters and mart row counts; a dbt test fails on
broken raw on PostgreSQL as it does on DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion.warehouse import Paths
from tests.conftest import Warehouse, load_world

CONTACTS = 300

# DuckDB's types in raw (as dlt writes them) -> what dlt's postgres destination writes
_PG_TYPES = {
    "VARCHAR": "varchar",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "JSON": "jsonb",
    "DATE": "date",
}


def raw_tables(duckdb_file: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(schema, table) -> [(column, DuckDB type)] of every raw table (dlt's `_staging` left out)."""
    import duckdb

    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        rows = con.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            "where table_schema like 'raw\\_%' escape '\\' and table_schema not like '%\\_staging' escape '\\' "
            "order by table_schema, table_name, ordinal_position"
        ).fetchall()
    tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, kind in rows:
        tables.setdefault((schema, table), []).append((column, kind))
    return tables


def copy_raw(duckdb_file: Path, con: Any) -> int:
    """Copy every raw table of the DuckDB file into the PostgreSQL connection (same schemas,
    names and dlt's column types); the number of rows copied."""
    import duckdb
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    copied = 0
    tables = raw_tables(duckdb_file)
    with duckdb.connect(str(duckdb_file), read_only=True) as source, con.cursor() as cur:
        for (schema, table), columns in tables.items():
            unknown = [kind for _, kind in columns if kind not in _PG_TYPES]
            assert not unknown, f"{schema}.{table}: no PostgreSQL type for {unknown}"
            target = sql.Identifier(schema, table)
            cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
            cur.execute(
                sql.SQL("create table {} ({})").format(
                    target,
                    sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(_PG_TYPES[kind]))
                        for name, kind in columns
                    ),
                )
            )
            selected = ", ".join(f'"{name}"' for name, _ in columns)
            rows = source.execute(f'select {selected} from "{schema}"."{table}"').fetchall()
            if rows:
                insert = sql.SQL("insert into {} values %s").format(target)
                execute_values(cur, insert.as_string(cur), rows, page_size=1000)
            copied += len(rows)
    con.commit()
    return copied
