"""The nightly job on PostgreSQL: the same sandbox world run once on the embedded DuckDB file and
once on a PostgreSQL server (TRUEUP_WAREHOUSE=postgresql://...), in-process. Both must find the
same findings (every rule, the same keys), resolve the same customers and fill every mart with
the same rows; BI readers on the server read the published schemas through the reader role."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from orchestration.cli import print_summary, run_job
from orchestration.sandbox_runtime import embedded_sandbox

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

CONTACTS = 400
SEED = 7


@dataclass
class Night:
    home: Path
    run_id: str
    printed: str

    @property
    def published(self) -> Path:
        return self.home / "published" / "warehouse.duckdb"


@dataclass
class Nights:
    duckdb: Night
    postgres: Night
    url: str


def _night(home: Path, warehouse: str | None, env: pytest.MonkeyPatch) -> Night:
    env.setenv("TRUEUP_HOME", str(home))
    env.setenv("DAGSTER_HOME", str(home / "dagster"))
    if warehouse:
        env.setenv("TRUEUP_WAREHOUSE", warehouse)
    else:
        env.delenv("TRUEUP_WAREHOUSE", raising=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        run_id = run_job("nightly")
        print_summary(run_id, 1.0)
    return Night(home, run_id, printed.getvalue())


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory, postgres_server: Any) -> Nights:
    root = tmp_path_factory.mktemp("engines")
    postgres_server.psql("drop database if exists nightly with (force)", database="postgres")
    postgres_server.psql("create database nightly", database="postgres")
    url = str(postgres_server.url).rsplit("/", 1)[0] + "/nightly"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("TRUEUP_TIMEZONE", raising=False)
        # the server's Python reads phonenumbers, anyascii and tzdata from here (docs/scaling.md)
        env.setenv("TRUEUP_WAREHOUSE_PYTHON_PATH", str(postgres_server.python_path))
        with embedded_sandbox(contacts=CONTACTS, seed=SEED):
            on_duckdb = _night(root / "duckdb", None, env)
            on_postgres = _night(root / "postgres", url, env)
    return Nights(on_duckdb, on_postgres, url)


def _rows(published: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(published), read_only=True) as con:
        return sorted(con.execute(sql).fetchall(), key=repr)


def test_the_same_findings_on_both_engines(nights: Nights) -> None:
    sql = "select finding_id, rule, field from reconciliation.findings_current"
    on_duckdb, on_postgres = (_rows(n.published, sql) for n in (nights.duckdb, nights.postgres))
    assert on_duckdb, "the DuckDB night found nothing: the comparison would prove nothing"
    rules = {row[1] for row in on_duckdb}
    assert len(rules) >= 8, rules
    missing, extra = set(on_duckdb) - set(on_postgres), set(on_postgres) - set(on_duckdb)
    assert not missing and not extra, (sorted(missing)[:10], sorted(extra)[:10])


def test_the_same_customers_on_both_engines(nights: Nights) -> None:
    sql = "select customer_id, record_key from intermediate.int_identity__resolved"
    on_duckdb, on_postgres = (_rows(n.published, sql) for n in (nights.duckdb, nights.postgres))
    assert len({row[0] for row in on_duckdb}) > CONTACTS / 2
    assert on_duckdb == on_postgres


def test_every_mart_has_the_same_rows_on_both_engines(nights: Nights) -> None:
    sql = (
        'select table_schema, table_name, "rows" from _publication.tables '
        "where table_schema in ('marts', 'reconciliation', 'intermediate')"
    )
    on_duckdb = {(s, t): r for s, t, r in _rows(nights.duckdb.published, sql)}
    on_postgres = {(s, t): r for s, t, r in _rows(nights.postgres.published, sql)}
    assert {k for k in on_duckdb if k[0] == "marts"}, "no marts were published"
    assert on_duckdb == on_postgres


def test_bi_readers_read_the_published_marts_on_the_server(nights: Nights, postgres_server: Any) -> None:
    from ingestion.engine import parse

    engine = parse(nights.url, Path("unused"))
    with contextlib.closing(engine.connect(autocommit=True)) as con, con.cursor() as cur:
        cur.execute("select count(*) from published_marts.dim_customers")
        customers = cur.fetchone()[0]
    on_duckdb = _rows(nights.duckdb.published, "select count(*) from marts.dim_customers")[0][0]
    assert customers == on_duckdb > 0


def test_the_server_password_is_never_printed(nights: Nights) -> None:
    from sandbox.postgres import PASSWORD

    assert PASSWORD not in nights.postgres.printed
    assert "postgresql://postgres@127.0.0.1" in nights.postgres.printed
