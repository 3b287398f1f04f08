"""The check suites on a PostgreSQL warehouse: the same numbers as on DuckDB for the same data,
and the same failures on the same broken data."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from checks.results import CheckResult
from checks.runner import run_checks, store_results
from checks.suites import Settings
from ingestion.engine import Engine, parse
from orchestration.postgres import copy_from_duckdb
from tests.conftest import Warehouse

NO_CONFIG = Settings(use_config=False)
SCHEMAS = ("raw_crm", "raw_billing", "raw_scheduling", "raw_ads", "staging", "intermediate", "marts")
SCHEMAS += ("reconciliation", "reverse_etl")


def engine_of(url: str) -> Engine:
    return parse(url, Path("unused.duckdb"))


def by_key(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.key: r for r in results}


def same_number(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def sample_text(sample: tuple[str, ...]) -> tuple[str, ...]:
    """A sample's keys with whole floats written alike (DuckDB writes 5.0 where PostgreSQL writes 5)."""
    return tuple(re.sub(r"(\d)\.0\b", r"\1", line) for line in sample)


def differences(duck: dict[str, CheckResult], pg: dict[str, CheckResult]) -> list[str]:
    """What the two engines measured differently (freshness, which reads the clock, within a minute)."""
    found = []
    assert duck.keys() == pg.keys()
    for key, d in duck.items():
        p = pg[key]
        clock = d.suite == "freshness"
        if (d.status, d.severity, sample_text(d.sample)) != (p.status, p.severity, sample_text(p.sample)):
            found.append(f"{key}: {d.status}/{d.severity}/{d.sample} vs {p.status}/{p.severity}/{p.sample}")
        elif clock:
            if d.observed is None or p.observed is None or abs(d.observed - p.observed) > 1 / 60:
                found.append(f"{key}: observed {d.observed} vs {p.observed}")
        elif not same_number(d.observed, p.observed):
            found.append(f"{key}: observed {d.observed} vs {p.observed}")
        else:
            details = {k for k in d.details if not (clock and k == "last_load_at")}
            off = [k for k in details if not same_number(d.details[k], p.details.get(k))]
            if off:
                found.append(f"{key}: details {[(k, d.details[k], p.details.get(k)) for k in off]}")
    return found


@pytest.fixture(scope="module")
def postgres_copy(built_warehouse: Warehouse, postgres_server: Any) -> Engine:
    """The built warehouse's schemas copied into a PostgreSQL database (views as tables)."""
    postgres_server.psql("drop database if exists checks_copy with (force)", database="postgres")
    postgres_server.psql("create database checks_copy", database="postgres")
    engine = engine_of(str(postgres_server.url).rsplit("/", 1)[0] + "/checks_copy")
    copied = copy_from_duckdb(built_warehouse.file, engine, SCHEMAS)
    assert copied["marts.dim_customers"] > 0
    return engine


def test_the_clean_world_measures_the_same_numbers_on_both_engines(
    built_warehouse: Warehouse, postgres_copy: Engine
):
    duck = by_key(run_checks(built_warehouse.file, settings=NO_CONFIG))
    pg = by_key(run_checks(postgres_copy, settings=NO_CONFIG))
    assert not differences(duck, pg)
    assert not [key for key, r in pg.items() if r.status in ("error", "not_built")]
    assert not [key for key, r in pg.items() if r.is_blocking_failure]
    # real numbers, not an empty match: rows were counted on the server
    assert (
        pg["marts/dim_customers:uniqueness"].details["rows"]
        == duck["marts/dim_customers:uniqueness"].details["rows"]
        > 0
    )


def test_results_are_stored_in_the_postgres_warehouse(postgres_copy: Engine):
    results = run_checks(postgres_copy, suites=["uniqueness"], settings=NO_CONFIG)
    run_id = store_results(results, postgres_copy, origin="test")
    store_results(results, postgres_copy, origin="test")  # the table exists now: appended
    con = postgres_copy.connect()
    try:
        with con.cursor() as cursor:
            cursor.execute(
                "select count(*), count(*) filter (where passed), min(origin) from checks.check_results "
                "where run_id = %s",
                [run_id],
            )
            stored, passed, origin = cursor.fetchone()
            cursor.execute("select count(distinct run_id) from checks.check_results")
            runs = cursor.fetchone()[0]
    finally:
        con.close()
    assert (stored, passed, origin) == (len(results), sum(r.passed for r in results), "test")
    assert runs == 2


BROKEN_KEYS = (
    "marts/fct_invoices:uniqueness",
    "marts/fct_deals:completeness",
    "marts/fct_invoices:parity__paid_invoices_payments",
    "staging/stg_crm__contacts:validity__email",
)


def break_warehouse(file: Path) -> None:
    """A duplicated invoice, a deal lost on its way to the mart, payments lost for a tenth of the
    paid invoices (a parity gap) and bad emails."""
    with duckdb.connect(str(file)) as con:
        con.execute(
            "insert into marts.fct_invoices select * from marts.fct_invoices order by invoice_id limit 1"
        )
        con.execute("delete from marts.fct_deals where deal_id = (select min(deal_id) from marts.fct_deals)")
        con.execute(
            "delete from marts.fct_payments where invoice_id in (select invoice_id from marts.fct_invoices "
            "where is_paid order by invoice_id limit (select count(*) // 10 + 1 from marts.fct_invoices "
            "where is_paid))"
        )
        con.execute(
            "update staging.stg_crm__contacts set email = 'not-an-email' where contact_id in "
            "(select contact_id from staging.stg_crm__contacts order by contact_id limit 40)"
        )


def test_broken_data_fails_on_postgres_as_on_duckdb(
    built_warehouse: Warehouse, postgres_database: str, tmp_path: Path
):
    broken = built_warehouse.copy_to(tmp_path / "broken")
    break_warehouse(broken.file)
    engine = engine_of(postgres_database)
    copy_from_duckdb(broken.file, engine, ["staging", "marts"])
    duck = by_key(run_checks(broken.file, keys=BROKEN_KEYS, settings=NO_CONFIG))
    pg = by_key(run_checks(engine, keys=BROKEN_KEYS, settings=NO_CONFIG))
    assert not differences(duck, pg)
    assert {key: r.status for key, r in pg.items()} == dict.fromkeys(BROKEN_KEYS, "failed")
    assert pg["marts/fct_invoices:uniqueness"].observed == 1
    assert pg["marts/fct_invoices:uniqueness"].severity == "error"
    assert pg["marts/fct_deals:completeness"].details["missing"] == 1
    assert pg["marts/fct_invoices:parity__paid_invoices_payments"].severity == "warn"
    assert pg["staging/stg_crm__contacts:validity__email"].details["bad_rows"] == 40
    assert pg["marts/fct_deals:completeness"].sample  # the lost deal named, as on DuckDB


def test_a_relation_missing_on_the_server_is_not_built(postgres_database: str):
    results = run_checks(
        engine_of(postgres_database), keys=["marts/fct_deals:uniqueness"], settings=NO_CONFIG
    )
    assert [(r.status, r.message) for r in results] == [
        ("not_built", "not built: marts.fct_deals missing from the warehouse")
    ]
