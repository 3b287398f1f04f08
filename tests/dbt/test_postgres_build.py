"""The dbt project on PostgreSQL gives DuckDB's answers: the same raw (the session's built world,
its raw schemas copied table for table from the DuckDB file into a fresh PostgreSQL database),
built on both engines, yields the same findings, identity clusters and row counts of every
model; a dbt test fails on broken raw on PostgreSQL as it does on DuckDB."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion.warehouse import Paths
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow

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
            "where table_schema like 'raw\\_%' escape '\\' "
            "and table_schema not like '%\\_staging' escape '\\' "
            "order by table_schema, table_name, ordinal_position"
        ).fetchall()
    tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, kind in rows:
        tables.setdefault((schema, table), []).append((column, kind))
    return tables


def copy_raw(duckdb_file: Path, con: Any, schemas: tuple[str, ...] | None = None) -> int:
    """Copy every raw table (of `schemas`, default all) of the DuckDB file into the PostgreSQL
    connection (same schemas, names and dlt's column types); the number of rows copied."""
    import duckdb
    from psycopg2 import sql
    from psycopg2.extras import execute_values

    copied = 0
    tables = raw_tables(duckdb_file)
    tables = {key: columns for key, columns in tables.items() if not schemas or key[0] in schemas}
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


@contextlib.contextmanager
def on_postgres(url: str, server: Any) -> Iterator[None]:
    """dbt (run_dbt) pointed at the PostgreSQL database `url`, whose server's Python finds the
    normalizations' packages in the server's python_path."""
    from orchestration.sandbox_runtime import patched_env

    with patched_env({"TRUEUP_WAREHOUSE": url, "TRUEUP_WAREHOUSE_PYTHON_PATH": str(server.python_path)}):
        yield


def fresh_database(server: Any, name: str) -> str:
    server.psql(f"drop database if exists {name} with (force)", database="postgres")
    server.psql(f"create database {name}", database="postgres")
    return str(server.url).rsplit("/", 1)[0] + "/" + name


def connect(url: str) -> Any:
    import psycopg2

    return psycopg2.connect(url)


@pytest.fixture(scope="module")
def postgres_built(
    built_warehouse: Warehouse, postgres_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Paths]]:
    """The built warehouse's raw copied into a fresh PostgreSQL database, then seeded and built
    there with dbt-postgres: the database URL and the Paths dbt ran with."""
    from orchestration.dbt import run_dbt

    url = fresh_database(postgres_server, "t_postgres_build")
    with connect(url) as con:
        copy_raw(built_warehouse.file, con)
    where = Paths(home=tmp_path_factory.mktemp("pg_home"))
    with on_postgres(url, postgres_server):
        run_dbt(["seed"], where=where)
        run_dbt(["build"], where=where)
    yield url, where


SCHEMAS = ("staging", "intermediate", "marts", "reconciliation", "reverse_etl")


def duckdb_rows(file: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(file), read_only=True) as con:
        return con.execute(sql).fetchall()


def postgres_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with connect(url) as con, con.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def test_every_model_has_duckdbs_row_count(
    built_warehouse: Warehouse, postgres_built: tuple[str, Paths]
) -> None:
    url, _ = postgres_built
    listing = (
        f"select table_schema, table_name from information_schema.tables where table_schema in {SCHEMAS}"
    )
    tables = sorted(duckdb_rows(built_warehouse.file, listing))
    assert sorted(postgres_rows(url, listing)) == tables
    counts = {}
    for schema, table in tables:
        query = f'select count(*) from "{schema}"."{table}"'
        counts[f"{schema}.{table}"] = (
            duckdb_rows(built_warehouse.file, query)[0][0],
            postgres_rows(url, query)[0][0],
        )
    assert {name: pair for name, pair in counts.items() if pair[0] != pair[1]} == {}
    assert any(table.startswith("marts.") and duck > 0 for table, (duck, _) in counts.items())


FINDING_COLUMNS = (
    "finding_id, rule, severity, record_keys, field, crm_value, billing_value, scheduling_value, "
    "ads_value, authoritative_system, authoritative_value, outcome, proposed_action, status"
)


def test_every_finding_is_duckdbs(built_warehouse: Warehouse, postgres_built: tuple[str, Paths]) -> None:
    url, _ = postgres_built
    query = f"select {FINDING_COLUMNS} from reconciliation.findings"
    duck = set(duckdb_rows(built_warehouse.file, query))
    postgres = set(postgres_rows(url, query))
    assert len(duck) > 50
    assert {
        "only on DuckDB": sorted(duck - postgres)[:10],
        "only on PostgreSQL": sorted(postgres - duck)[:10],
    } == {
        "only on DuckDB": [],
        "only on PostgreSQL": [],
    }
    rules = "select rule, count(*) from reconciliation.findings group by rule"
    assert dict(postgres_rows(url, rules)) == dict(duckdb_rows(built_warehouse.file, rules))


def test_identity_clusters_are_duckdbs(built_warehouse: Warehouse, postgres_built: tuple[str, Paths]) -> None:
    url, _ = postgres_built
    query = (
        "select customer_id, record_key, is_anchor, match_method, match_confidence "
        "from intermediate.int_identity__resolved"
    )
    duck = {(*row[:4], round(float(row[4]), 6)) for row in duckdb_rows(built_warehouse.file, query)}
    postgres = {(*row[:4], round(float(row[4]), 6)) for row in postgres_rows(url, query)}
    assert duck == postgres
    assert len({row[0] for row in duck}) < len(duck)  # some customers hold several records
    golden = "select customer_id, email, first_name, last_name, phone_e164 from marts.dim_customers"
    assert set(postgres_rows(url, golden)) == set(duckdb_rows(built_warehouse.file, golden))


def test_history_starts_from_the_published_schema(
    postgres_built: tuple[str, Paths], postgres_server: Any
) -> None:
    """On PostgreSQL, `findings` carries over what published_reconciliation.findings holds."""
    from orchestration.dbt import run_dbt

    url, where = postgres_built
    with connect(url) as con, con.cursor() as cur:
        cur.execute("drop schema if exists published_reconciliation cascade")
        cur.execute("create schema published_reconciliation")
        cur.execute("create table published_reconciliation.findings as select * from reconciliation.findings")
        # a finding the published copy holds as open, long gone from the warehouse: resolved now
        cur.execute(
            "update published_reconciliation.findings set finding_id = 'published-only', "
            "first_seen_at = timestamptz '2020-01-01 00:00:00+00' where finding_id = "
            "(select min(finding_id) from reconciliation.findings where status = 'open')"
        )
    try:
        with on_postgres(url, postgres_server):
            run_dbt(["run", "--select", "findings"], where=where)
        rows = postgres_rows(
            url,
            "select status, first_seen_at from reconciliation.findings where finding_id = 'published-only'",
        )
        assert [status for status, _ in rows] == ["resolved"]
    finally:  # the last test of the built database: its findings keep the carried-over row
        with connect(url) as con, con.cursor() as cur:
            cur.execute("drop schema published_reconciliation cascade")


def plant_duplicate_contact(cursor: Any) -> None:
    """Raw CRM holds one contact twice (the same id, a second load): staging's unique test fails."""
    cursor.execute(
        "insert into raw_crm.contacts select * from raw_crm.contacts "
        "where id = (select min(id) from raw_crm.contacts)"
    )


def failed_tests(results: dict[str, Any]) -> set[str]:
    return {r["unique_id"] for r in results.get("results", []) if r["status"] in ("fail", "error")}


def test_a_dbt_test_fails_on_broken_raw_as_on_duckdb(
    scratch_warehouse: Warehouse, postgres_server: Any, tmp_path: Path
) -> None:
    import duckdb

    from orchestration.dbt import DbtError, run_dbt

    select = ["build", "--select", "+stg_crm__contacts", "--indirect-selection", "cautious"]
    with duckdb.connect(str(scratch_warehouse.file)) as con:
        plant_duplicate_contact(con)
    with pytest.raises(DbtError) as on_duckdb:
        run_dbt(select, where=scratch_warehouse.paths)

    url = fresh_database(postgres_server, "t_postgres_broken")
    with connect(url) as con:
        copy_raw(scratch_warehouse.file, con, ("raw_crm",))  # the duplicate comes along
    with on_postgres(url, postgres_server), pytest.raises(DbtError) as on_postgres_:
        run_dbt(select, where=Paths(home=tmp_path / "pg"))

    failed = failed_tests(on_duckdb.value.results)
    assert any(uid.startswith("test.trueup.unique_stg_crm__contacts_contact_id") for uid in failed)
    assert failed_tests(on_postgres_.value.results) == failed
