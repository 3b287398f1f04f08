"""trueup's normalizations as PL/Python functions on PostgreSQL (created by the dbt project's
on-run-start hook) answer exactly as ingestion/normalize.py does on DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingestion import normalize
from ingestion.warehouse import Paths

SCHEMA = "trueup_functions"

PHONES: list[tuple[str | None, str]] = [
    ("+44 20 7946 0958", "US"),
    ("0044 20 7946 0958", "US"),  # `00` international prefix
    ("(0)20 7946 0958", "GB,US"),  # trunk prefix in brackets, read in the record's region
    ("020 7946 0958", "United Kingdom,US"),  # a country name as the region
    ("030 901820", "Deutschland,US"),
    ("06 12 34 56 78", "US,Europe/Paris"),  # only the booking's time zone reads it
    ("(415) 555-0134 ext 2", "US"),
    ("415.555.0134", ""),
    ("+1 415 555 0134", "JP"),
    ("call me", "US"),
    ("12345", "US"),
    ("   ", "US"),
    (None, "US"),
    ("+81 3-1234-5678", "US"),
    ("03-1234-5678", "日本,JP"),
    ("+7 495 123-45-67", "Russia"),
]

NAMES: list[str | None] = [
    "Jürgen  Østergaard",
    "Łukasz Żółć",
    "Straße",
    "Æsa Ðórsdóttir",
    "\u0130smail I\u015f\u0131k",  # dotted capital I, dotless i
    "王小明",
    "Ёлка Сергеевна",
    "محمد علي",
    "  ",
    "",
    None,
    "O'Brien-Smith\u00a0Jr.",
    "Zoë\u200bKrüger",
]

PAIRS = [("martha", "marhta"), ("dwayne", "duane"), ("jon", "john"), ("", "x"), ("abc", "abc"), ("ca", "abc")]


@pytest.fixture(scope="module")
def functions_database(postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh database where one dbt command (a seed) ran the hook that creates the functions."""
    from orchestration.dbt import run_dbt
    from orchestration.sandbox_runtime import patched_env

    postgres_server.psql("drop database if exists t_postgres_functions with (force)", database="postgres")
    postgres_server.psql("create database t_postgres_functions", database="postgres")
    url = str(postgres_server.url).rsplit("/", 1)[0] + "/t_postgres_functions"
    env = {"TRUEUP_WAREHOUSE": url, "TRUEUP_WAREHOUSE_PYTHON_PATH": str(postgres_server.python_path)}
    with patched_env(env):
        run_dbt(["seed", "--select", "ownership"], where=Paths(home=tmp_path_factory.mktemp("pg_functions")))
    return url


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


@pytest.mark.parametrize(("phone", "regions"), PHONES)
def test_e164_is_the_modules(functions_database: str, phone: str | None, regions: str) -> None:
    got = query(functions_database, f"select {SCHEMA}.trueup_e164(%s, %s)", phone, regions)[0][0]
    assert got == normalize.e164(phone, *regions.split(","))


def test_the_phones_read_as_a_person_would(functions_database: str) -> None:
    """Not only the module's answers: the right ones (so a broken module cannot pass)."""
    rows = query(
        functions_database,
        f"select {SCHEMA}.trueup_e164('0044 20 7946 0958', 'US'), "
        f"{SCHEMA}.trueup_e164('06 12 34 56 78', 'US,Europe/Paris'), {SCHEMA}.trueup_e164('call me', 'US')",
    )
    assert rows == [("+442079460958", "+33612345678", None)]


@pytest.mark.parametrize("name", NAMES)
def test_name_key_and_fold_are_the_modules(functions_database: str, name: str | None) -> None:
    got = query(
        functions_database, f"select {SCHEMA}.trueup_name_key(%s), {SCHEMA}.trueup_fold(%s)", name, name
    )
    assert got == [(normalize.name_key(name), normalize.fold(name))]


def test_names_transliterate(functions_database: str) -> None:
    rows = query(
        functions_database,
        f"select {SCHEMA}.trueup_name_key('Jürgen Østergaard'), {SCHEMA}.trueup_fold(' Łukasz  Żółć ')",
    )
    assert rows == [("jurgenostergaard", "lukasz zolc")]


@pytest.mark.parametrize(("left", "right"), PAIRS)
def test_name_scores_are_duckdbs(functions_database: str, left: str, right: str) -> None:
    import duckdb

    with duckdb.connect() as con:
        expected = con.execute(
            "select jaro_winkler_similarity($1, $2), damerau_levenshtein($1, $2)", [left, right]
        ).fetchall()
    got = query(
        functions_database,
        f"select {SCHEMA}.trueup_jaro_winkler(%s, %s), {SCHEMA}.trueup_damerau_levenshtein(%s, %s)",
        left,
        right,
        left,
        right,
    )
    assert got == expected


def test_the_module_runs_once_per_connection(functions_database: str) -> None:
    """The first call loads ingestion/normalize.py into the session's GD; later calls reuse it."""
    import psycopg2

    with psycopg2.connect(functions_database) as con, con.cursor() as cur:
        cur.execute(
            "create or replace function pg_temp.module_id() returns bigint language plpython3u as "
            "$$ return id(GD['trueup_normalize']) if 'trueup_normalize' in GD else None $$"
        )
        cur.execute("select pg_temp.module_id()")
        assert cur.fetchone() == (None,)
        cur.execute(f"select {SCHEMA}.trueup_name_key(name) from (values ('Ana'), ('Bo')) as names (name)")
        cur.execute("select pg_temp.module_id()")
        first = cur.fetchone()
        cur.execute(f"select {SCHEMA}.trueup_fold('Zoë'), {SCHEMA}.trueup_e164('+14155550134', 'US')")
        cur.execute("select pg_temp.module_id()")
        assert cur.fetchone() == first != (None,)


def test_try_cast_gives_null_where_the_cast_fails(functions_database: str) -> None:
    rows = query(
        functions_database,
        f"select {SCHEMA}.try_cast_bigint('12'), {SCHEMA}.try_cast_bigint('twelve'), "
        f"{SCHEMA}.try_cast_date('2025-02-30'), {SCHEMA}.try_cast_timestamptz('2025-01-02T03:04:05Z'), "
        f"{SCHEMA}.try_cast_boolean('maybe'), {SCHEMA}.try_cast_double('1e3')",
    )
    (bigint, bad_bigint, bad_date, stamp, bad_boolean, double) = rows[0]
    assert (bigint, bad_bigint, bad_date, bad_boolean, double) == (12, None, None, None, 1000.0)
    assert stamp.isoformat() == "2025-01-02T03:04:05+00:00"


def test_without_the_source_var_the_functions_must_exist(postgres_server: Any, tmp_path: Path) -> None:
    """dbt run by hand (no var trueup_normalize_source) on a database without the functions
    stops with a message that says what to do."""
    from orchestration.dbt import DbtError, run_dbt
    from orchestration.sandbox_runtime import patched_env

    postgres_server.psql("drop database if exists t_postgres_no_functions with (force)", database="postgres")
    postgres_server.psql("create database t_postgres_no_functions", database="postgres")
    url = str(postgres_server.url).rsplit("/", 1)[0] + "/t_postgres_no_functions"
    with patched_env({"TRUEUP_WAREHOUSE": url}), pytest.raises(DbtError) as failed:
        run_dbt(
            ["seed", "--select", "ownership", "--vars", "{trueup_normalize_source: null}"],
            where=Paths(home=tmp_path),
        )
    assert "are missing from schema trueup_functions" in str(failed.value) + str(failed.value.results)


def test_dbt_gets_the_postgres_target_and_the_module_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No server needed: what trueup hands every dbt command for a PostgreSQL warehouse."""
    from orchestration.dbt import dbt_env, dbt_vars

    where = Paths(home=tmp_path)
    (tmp_path / "published").mkdir()
    (tmp_path / "published" / "warehouse.duckdb").write_bytes(b"")  # a DuckDB copy exists too
    monkeypatch.setenv("TRUEUP_WAREHOUSE", "postgresql://ana:secret@db.example:6543/trueup")
    monkeypatch.setenv("TRUEUP_WAREHOUSE_PYTHON_PATH", "/srv/trueup/python")
    env = dbt_env(where)
    assert (env["TRUEUP_DBT_TARGET"], env["TRUEUP_PG_HOST"], env["TRUEUP_PG_PORT"], env["PGTZ"]) == (
        "postgres",
        "db.example",
        "6543",
        "UTC",
    )
    values = dbt_vars(where)
    assert values["trueup_normalize_source"] == Path(normalize.__file__).read_text(encoding="utf-8")
    assert values["warehouse_python_path"] == "/srv/trueup/python"
    assert "published_warehouse" not in values  # history reads published_reconciliation instead

    monkeypatch.delenv("TRUEUP_WAREHOUSE")
    assert dbt_env(where)["TRUEUP_DBT_TARGET"] == "local"
    assert "trueup_normalize_source" not in dbt_vars(where)
