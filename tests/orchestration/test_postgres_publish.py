"""Publishing a PostgreSQL warehouse: `published_S` for the reader role (and nothing else), a
consistent snapshot for readers while it is refreshed, and the local DuckDB copy trueup's own
readers open, the same as a DuckDB warehouse publishes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import psycopg2.errors
import pytest

from ingestion.engine import Engine, parse
from ingestion.warehouse import Paths
from orchestration.postgres import copy_from_duckdb
from orchestration.publish import DEFAULT_SCHEMAS, publish
from tests.conftest import Warehouse

LOGIN, LOGIN_PASSWORD = "bi_tool", "bi-tool-local"
RAW = ("raw_crm", "raw_billing", "raw_scheduling", "raw_ads")


@pytest.fixture(scope="module")
def server(built_warehouse: Warehouse, postgres_server: Any) -> Engine:
    """The built warehouse's schemas copied into a PostgreSQL database, and a login for a BI tool
    that is granted the reader role (created NOLOGIN by the first publish, or here)."""
    postgres_server.psql("drop database if exists publish_copy with (force)", database="postgres")
    postgres_server.psql("create database publish_copy", database="postgres")
    engine = parse(str(postgres_server.url).rsplit("/", 1)[0] + "/publish_copy", Path("unused"))
    with duckdb.connect(str(built_warehouse.file), read_only=True) as con:
        schemas = [
            str(row[0])
            for row in con.execute(
                "select distinct table_schema from information_schema.tables "
                "where table_catalog = current_database() and table_schema <> 'main'"
            ).fetchall()
        ]
    copy_from_duckdb(built_warehouse.file, engine, schemas)
    postgres_server.psql(
        "do $$ begin "
        "if not exists (select from pg_roles where rolname = 'trueup_reader') then "
        "create role trueup_reader nologin; end if; "
        f"if not exists (select from pg_roles where rolname = '{LOGIN}') then "
        f"create role {LOGIN} login password '{LOGIN_PASSWORD}'; end if; end $$",
        database="postgres",
    )
    postgres_server.psql(f"grant trueup_reader to {LOGIN}", database="postgres")
    return engine


@pytest.fixture
def where(server: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv("TRUEUP_WAREHOUSE", server.url())
    monkeypatch.delenv("TRUEUP_PUBLISHED_SCHEMAS", raising=False)
    return Paths(home=tmp_path / "home")


def bi_login(server: Engine) -> Any:
    return psycopg2.connect(
        host=server.host, port=server.port, user=LOGIN, password=LOGIN_PASSWORD, dbname=server.database
    )


def one(con: Any, sql: str) -> Any:
    with con.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def rows(con: Any, sql: str) -> list[tuple[Any, ...]]:
    with con.cursor() as cursor:
        cursor.execute(sql)
        return sorted(cursor.fetchall(), key=repr)


def test_the_reader_role_reads_the_published_schemas_only(server: Engine, where: Paths):
    publication = publish(where, run_id="r1", job="nightly")
    owner = server.connect()
    reader = bi_login(server)
    try:
        with owner:
            customers = one(owner, "select count(*) from marts.dim_customers")
            findings = one(owner, "select count(*) from reconciliation.findings")
        assert customers > 0 and findings > 0
        assert publication.tables["marts.dim_customers"] == customers
        assert one(reader, "select count(*) from published_marts.dim_customers") == customers
        assert one(reader, "select count(*) from published_reconciliation.findings") == findings
        reader.rollback()
        assert one(reader, "select pg_has_role(current_user, 'trueup_reader', 'member')")
        for schema in DEFAULT_SCHEMAS:
            assert one(reader, f"select has_schema_privilege('published_{schema}', 'usage')")
        for relation in (
            "raw_crm.contacts",
            "marts.dim_customers",
            "staging.stg_crm__contacts",
            "intermediate.int_identity__resolved",
        ):
            reader.rollback()
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                one(reader, f"select count(*) from {relation}")
    finally:
        reader.close()
        owner.close()


def test_the_local_copy_holds_the_published_rows_and_the_same_stamps_as_a_duckdb_publish(
    server: Engine, where: Paths, built_warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    publication = publish(where, run_id="r1", job="nightly")
    owner = server.connect()
    try:
        with duckdb.connect(str(where.published), read_only=True) as copy:
            for name, count in publication.tables.items():
                assert copy.execute(f"select count(*) from {name}").fetchall()[0][0] == count, name
            for table in ("marts.fct_invoices", "reconciliation.findings"):
                schema, _, name = table.partition(".")
                assert rows(copy, f"select * from {table}") == rows(
                    owner, f"select * from published_{schema}.{name}"
                )
            stamps = {t: rows(copy, f"select * from _publication.{t}") for t in STAMPS}
            assert copy.execute("select run_id from _publication.run").fetchall() == [("r1",)]
    finally:
        owner.close()
    # the same warehouse published from DuckDB stamps the same figures
    monkeypatch.delenv("TRUEUP_WAREHOUSE")
    local = built_warehouse.copy_to(tmp_path / "duckdb")
    duck = publish(local.paths, run_id="r1", job="nightly")
    assert duck.tables == publication.tables
    with duckdb.connect(str(local.paths.published), read_only=True) as copy:
        assert {t: rows(copy, f"select * from _publication.{t}") for t in STAMPS} == stamps
    assert stamps["loads"] and stamps["accounts"] and stamps["completeness"]


STAMPS = ("tables", "quarantine", "loads", "accounts", "completeness")


def test_a_reader_sees_the_old_snapshot_or_the_new_never_a_mix(
    server: Engine, where: Paths, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TRUEUP_PUBLISHED_SCHEMAS", "marts reconciliation")  # the two it reads
    publish(where, run_id="before")
    owner = server.connect()
    reader = bi_login(server)
    reader.set_session(isolation_level="REPEATABLE READ", readonly=True)
    with owner:  # kept, to put back for the other tests
        for table in CHANGED:
            with owner.cursor() as cursor:
                cursor.execute(f"create table public.{table.replace('.', '__')} as select * from {table}")
        findings_before = one(owner, "select count(*) from published_reconciliation.findings")
    try:
        customers = one(reader, "select count(*) from published_marts.dim_customers")  # the snapshot starts
        for _ in range(2):  # published twice while the reader's transaction stays open
            with owner, owner.cursor() as cursor:
                cursor.execute(
                    "delete from marts.dim_customers where customer_id in "
                    "(select customer_id from marts.dim_customers order by customer_id limit 5)"
                )
                cursor.execute(
                    "delete from reconciliation.findings where finding_id in "
                    "(select finding_id from reconciliation.findings order by finding_id limit 3)"
                )
            finished = run_with_timeout(lambda: publish(where, run_id="after"))
            assert finished, "publish waited on a reader"
            # the old snapshot: a table read before and one read for the first time alike
            assert one(reader, "select count(*) from published_marts.dim_customers") == customers
            assert one(reader, "select count(*) from published_reconciliation.findings") == findings_before
        reader.commit()
        with owner:
            now_customers = one(owner, "select count(*) from marts.dim_customers")
            now_findings = one(owner, "select count(*) from reconciliation.findings")
        assert now_customers == customers - 10
        assert one(reader, "select count(*) from published_marts.dim_customers") == now_customers
        assert one(reader, "select count(*) from published_reconciliation.findings") == now_findings
        with duckdb.connect(str(where.published), read_only=True) as copy:
            assert copy.execute("select count(*) from marts.dim_customers").fetchall()[0][0] == now_customers
    finally:
        reader.close()
        with owner, owner.cursor() as cursor:
            for table in CHANGED:
                kept = f"public.{table.replace('.', '__')}"
                cursor.execute(f"delete from {table}")
                cursor.execute(f"insert into {table} select * from {kept}")
                cursor.execute(f"drop table {kept}")
        owner.close()


CHANGED = ("marts.dim_customers", "reconciliation.findings")


def run_with_timeout(step: Any, seconds: float = 120) -> bool:
    """Run `step` in a thread; whether it finished in time (a publish blocked by a reader does not)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            step()
        except BaseException as exc:  # re-raised below
            errors.append(exc)
        done.set()

    threading.Thread(target=target, daemon=True).start()
    finished = done.wait(seconds)
    if errors:
        raise errors[0]
    return finished


def test_types_and_awkward_values_survive_the_copy_to_duckdb(postgres_database: str):
    """Nulls and empty text kept apart, quotes, commas and newlines in text, lists, JSON, sums of
    integers as whole numbers, decimals, time stamps in UTC."""
    from orchestration.postgres import copy_to_duckdb

    engine = parse(postgres_database, Path("unused"))
    con = engine.connect()
    with con, con.cursor() as cursor:
        cursor.execute(
            "create schema s; create table s.t (id int, note text, flag boolean, tags text[], doc jsonb, "
            "total numeric, price numeric(10,2), at timestamptz, ratio float8); insert into s.t values "
            "(1, 'plain', true, array['a', 'b,c'], '{\"k\": 1}', 2, 12.50, "
            "'2026-01-02 03:04:05.678+02', 0.1), "
            "(2, '', false, array[]::text[], null, null, null, null, null), "
            "(3, null, null, null, null, 3, null, null, null), "
            "(4, e'two\\nlines, \"quoted\"', null, array[null, 'x'], null, null, null, null, null)"
        )
    con.close()
    with duckdb.connect(":memory:") as duck:
        counts = copy_to_duckdb(engine, duck, [("s", "t", "copied")])
        assert counts == {"copied.t": 4}
        types = dict(duck.execute("select column_name, data_type from information_schema.columns").fetchall())
        got = duck.execute("select * from copied.t order by id").fetchall()
    assert types["total"] == "HUGEINT" and types["price"] == "DECIMAL(10,2)" and types["tags"] == "VARCHAR[]"
    assert types["at"] == "TIMESTAMP WITH TIME ZONE" and types["ratio"] == "DOUBLE"
    first = got[0]
    assert first[:6] == (1, "plain", True, ["a", "b,c"], '{"k": 1}', 2)
    assert (
        str(first[6]) == "12.50"
        and first[7].isoformat().startswith("2026-01-02T01:04:05.678")
        and first[8] == 0.1
    )
    assert got[1][1:4] == ("", False, [])  # empty text is not null
    assert got[2][1] is None and got[2][5] == 3
    assert got[3][1] == 'two\nlines, "quoted"' and got[3][3] == [None, "x"]
