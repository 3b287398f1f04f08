"""Ingestion into a PostgreSQL warehouse (`TRUEUP_WAREHOUSE=postgresql://...`): a real server
(the session's throwaway one, a fresh database per test) against the sandbox.

The same world lands in DuckDB and in PostgreSQL with the same tables, columns, row counts
and keys, the types staging expects (json as jsonb, timestamps with time zone); a second run
adds nothing; a record that breaks its contract is quarantined with its id, fetched again by
id until it passes, and its history survives a full refresh; the writer lock keeps a second
writer (another machine: another lock file) off the same database; the password appears in
no output, log or error; the steps that run on DuckDB only say so.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ingestion import audit, health, mend, sqlconn
from ingestion.engine import DuckDBOnlyError, parse
from ingestion.pipeline import SYSTEMS, result_lines, run_system, run_systems
from ingestion.quarantine import open_quarantine_sql
from ingestion.tables import dataset_name
from ingestion.warehouse import Paths, drop_repeated_rows, table_counts
from sandbox.faults import Drift, FaultPlan
from sandbox.server import Sandbox

WORLD = {"contacts": 150}
# the column that identifies a row of a table, where one does (else its text columns together)
KEYS = ("id", "uri", "quarantine_id", "resolution_id", "flag_id")


@pytest.fixture
def pg_url(postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This test's database as the warehouse (TRUEUP_WAREHOUSE), its URL with the password."""
    monkeypatch.setenv("TRUEUP_WAREHOUSE", postgres_database)
    yield postgres_database


@pytest.fixture
def where(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A private TRUEUP_HOME (dlt's working files, the ops files) over the PostgreSQL warehouse."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRUEUP_HOME", str(home))
    return Paths(home=home)


def _password(url: str) -> str:
    password = urlsplit(url).password
    assert password, "the test server authenticates with a password"
    return password


def _raw_tables(where: Paths | Path) -> dict[str, dict[str, Any]]:
    """schema.table -> {columns: {name: type}, rows: count, keys: set} for every raw schema
    (dlt's merge staging datasets left out)."""
    found: dict[str, dict[str, Any]] = {}
    with sqlconn.connect(where, read_only=True) as con:
        for schema, table, column, kind in con.fetchall(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            f"where table_schema in ({', '.join('?' for _ in SYSTEMS)}) order by 1, 2, ordinal_position",
            [dataset_name(system) for system in SYSTEMS],
        ):
            entry = found.setdefault(f"{schema}.{table}", {"columns": {}})
            entry["columns"][column] = str(kind).lower()
        for name, entry in found.items():
            schema, table = name.split(".")
            columns = entry["columns"]
            key = next((k for k in KEYS if k in columns), None)
            if key:
                select = f'"{key}"'
            else:  # a child or link table: its text columns, bookkeeping left out
                texts = [c for c, t in columns.items() if not c.startswith("_dlt") and "char" in t]
                select = ", ".join(f'"{c}"' for c in texts) or "1"
            rows = con.fetchall(f'select {select} from "{schema}"."{table}"')
            entry["rows"] = len(rows)
            entry["keys"] = sorted({tuple(str(v) for v in row) for row in rows})
    return found


def _ingest(home: Path) -> list[str]:
    return result_lines(run_systems(SYSTEMS, where=Paths(home=home)))


def _same_type(duck: str, pg: str) -> bool:
    """DuckDB's and PostgreSQL's names for the type dlt gives a column on each."""
    names = {
        "varchar": "character varying",
        "json": "jsonb",
        "double": "double precision",
        "timestamp with time zone": "timestamp with time zone",
    }
    return names.get(duck, duck) == pg or (duck.startswith("decimal") and pg == "numeric")


@pytest.mark.parametrize("sandbox_world", [WORLD], indirect=True)
def test_the_same_world_loads_alike_into_duckdb_and_postgres_and_a_rerun_adds_nothing(
    sandbox: Sandbox,
    source_env: dict[str, str],
    tmp_path: Path,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    _ingest(tmp_path / "duck")
    duck = _raw_tables(tmp_path / "duck" / "warehouse.duckdb")

    monkeypatch.setenv("TRUEUP_WAREHOUSE", postgres_database)
    caplog.set_level(logging.DEBUG)
    pg_home = tmp_path / "pg"
    lines = _ingest(pg_home)
    engine = Paths(home=pg_home).engine
    assert engine.is_postgres
    assert not (pg_home / "warehouse.duckdb").exists()  # nothing went to a DuckDB file
    pg = _raw_tables(engine)

    assert set(pg) == set(duck)
    for name in sorted(duck):
        if name.split(".")[1].startswith("_dlt_"):  # dlt's loads, state and versions: ids of their own
            continue
        assert pg[name]["rows"] == duck[name]["rows"], name
        assert pg[name]["keys"] == duck[name]["keys"], name
        assert set(pg[name]["columns"]) == set(duck[name]["columns"]), name
        for column, kind in duck[name]["columns"].items():
            assert _same_type(kind, pg[name]["columns"][column]), (
                name,
                column,
                kind,
                pg[name]["columns"][column],
            )
    assert sum(entry["rows"] for entry in pg.values()) > 1_000
    kinds = {kind for entry in pg.values() for kind in entry["columns"].values()}
    assert {"jsonb", "timestamp with time zone"} <= kinds  # what staging reads on PostgreSQL

    again = run_systems(SYSTEMS, where=Paths(home=pg_home))
    assert all(t.new == 0 for result in again for t in result.tables)
    after = _raw_tables(engine)
    for name, entry in pg.items():
        if not name.split(".")[1].startswith("_dlt_"):
            assert (after[name]["rows"], after[name]["keys"]) == (entry["rows"], entry["keys"]), name

    printed = capfd.readouterr()  # this process's and the extract workers' output
    said = "\n".join([*lines, printed.out, printed.err, caplog.text])
    assert "contacts" in said and "crm" in said  # what the run said, to search
    password = _password(postgres_database)
    assert password not in said
    written = [f for f in pg_home.rglob("*") if f.is_file()]  # dlt's state, schemas, traces, ops files
    assert written and not [f for f in written if password.encode() in f.read_bytes()]


@pytest.mark.parametrize("sandbox_world", [{"contacts": 120}], indirect=True)
def test_quarantine_on_postgres_holds_the_record_heals_by_id_and_survives_a_full_refresh(
    sandbox: Sandbox, source_env: dict[str, str], where: Paths
):
    drift = Drift(kind="changed_type", field="properties.email", fraction=0.1)
    sandbox.faults.set(FaultPlan(drift={"crm/contacts": drift}))
    first = run_system("crm", where=where)

    def open_rows() -> set[str]:
        with sqlconn.connect(where) as con:
            present = con.tables("raw_crm")
            return {
                str(r[0])
                for r in con.fetchall(f"select record_key from ({open_quarantine_sql('raw_crm', present)}) q")
            }

    with sqlconn.connect(where) as con:
        held = con.fetchall("select record_key, resource, reason from raw_crm._quarantine")
        loaded = {r[0] for r in con.fetchall("select id from raw_crm.contacts")}
    drifted = {r[0] for r in held}
    assert first.quarantined == len(drifted) > 0
    assert {(r[1], r[2]) for r in held} == {("contacts", "properties.email is dict, expected a string")}
    assert not drifted & loaded and len(loaded) + len(drifted) == 120

    accepted = sorted(drifted)[:1]
    mend.accept("crm", "contacts", accepted, "known", where)
    run_system("crm", where=where)  # still drifted: the rest stay open, this one is accepted
    assert open_rows() == drifted - set(accepted)
    sandbox.faults.set(FaultPlan())
    run_system("crm", where=where)  # fixed at the source: fetched again by id, they load
    assert open_rows() == set()
    with sqlconn.connect(where) as con:
        assert {r[0] for r in con.fetchall("select id from raw_crm.contacts")} == loaded | (
            drifted - set(accepted)
        )
        resolved = dict(
            con.fetchall("select resolution, count(*) from raw_crm._quarantine_resolved group by 1")
        )
        history = con.scalar("select count(*) from raw_crm._quarantine")
    assert resolved == {"accepted": 1, "passed": len(drifted) - 1}

    run_system("crm", where=where, full_refresh=True)  # drops raw_crm's tables, keeps the history
    with sqlconn.connect(where) as con:
        assert con.scalar("select count(*) from raw_crm._quarantine") == history
        assert con.scalar("select count(*) from raw_crm.contacts") == 120
    assert open_rows() == set()


@pytest.mark.parametrize("sandbox_world", [{"contacts": 120}], indirect=True)
def test_the_audit_finds_and_fetches_what_postgres_raw_lacks(
    sandbox: Sandbox, source_env: dict[str, str], where: Paths
):
    run_system("crm", where=where)
    with sqlconn.connect(where) as con:
        con.execute(
            "delete from raw_crm.contacts where id in (select id from raw_crm.contacts order by id limit 4)"
        )
        con.execute(
            "update raw_crm.deals set properties__hs_lastmodifieddate = '2001-01-01T00:00:00.000Z' "
            "where id in (select id from raw_crm.deals order by id limit 2)"
        )
    audits = {(a.system, a.resource): a for a in audit.run_audit(["crm"], where=where)}
    found = {key: (a.missing, a.stale, a.remaining) for key, a in audits.items() if a.missing or a.stale}
    assert found == {("crm", "contacts"): (4, 0, 0), ("crm", "deals"): (0, 2, 0)}
    with sqlconn.connect(where) as con:
        assert con.fetchall("select sum(missing + stale), sum(remaining) from audit.completeness") == [(6, 0)]
        assert con.scalar("select count(*) from raw_crm.contacts") == 120
        present = {
            f"{s}.{t}"
            for s, t in con.fetchall("select table_schema, table_name from information_schema.tables")
        }

    # the ingest health the publish step stores, read from a plain psycopg2 connection
    raw = where.engine.connect()
    try:
        figures = health.collect(raw, present)
    finally:
        raw.close()
    assert {(r["system"], r["resource"]) for r in figures.audit} >= {("crm", "contacts"), ("crm", "deals")}
    assert figures.audit_remaining == 0
    assert ("crm", "contacts", 120, 120, 0) in figures.counts and figures.unaccounted == 0


def test_second_copies_of_rows_are_dropped_on_postgres(where: Paths):
    """What a resumed load can leave (dlt-hub/dlt#3023): rows sharing a `_dlt_id`. dlt declares
    `_dlt_id` unique on PostgreSQL, so the copies are planted in a table without that constraint."""
    with sqlconn.connect(where) as con:
        con.execute("create schema raw_crm")
        con.execute("create table raw_crm.contacts (id varchar, _dlt_id varchar)")
        rows = [(str(n), f"d{n}") for n in range(5)]
        con.executemany("insert into raw_crm.contacts values (?, ?)", [*rows, *rows[:3], rows[0]])
    assert table_counts(where, "raw_crm") == {"contacts": 9}
    assert drop_repeated_rows(where, "raw_crm") == {"contacts": 4}
    with sqlconn.connect(where, read_only=True) as con:
        assert sorted(con.fetchall("select id, _dlt_id from raw_crm.contacts")) == rows


def test_the_writer_lock_keeps_a_second_writer_off_the_same_postgres_warehouse(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    from orchestration.resources import WriterBusy, writer_lock

    first, second = Paths(home=tmp_path / "machine-a"), Paths(home=tmp_path / "machine-b")
    with writer_lock(first, wait_seconds=0):
        # another machine: its own lock file, so only the server's advisory lock stands between them
        with pytest.raises(WriterBusy) as busy, writer_lock(second, wait_seconds=0.3, poll=0.1):
            pass
        assert parse(pg_url, Path()).display in str(busy.value)
        assert _password(pg_url) not in str(busy.value)
        with sqlconn.connect(first) as con:  # readers are not held back
            assert con.scalar("select 1") == 1
    with writer_lock(second, wait_seconds=0):  # released with the block
        pass
    assert _password(pg_url) not in caplog.text


@pytest.mark.parametrize("sandbox_world", [{"contacts": 120}], indirect=True)
def test_trueup_ingest_loads_postgres_and_refuses_while_another_machine_writes(
    sandbox: Sandbox, where: Paths, pg_url: str, tmp_path: Path
):
    from orchestration.resources import writer_lock

    env = {**os.environ, "TRUEUP_HOME": str(where.home), "TRUEUP_WRITER_WAIT_SECONDS": "0"}
    command = [sys.executable, "-m", "orchestration.cli", "ingest", "--sandbox", sandbox.url]
    done = subprocess.run([*command, "--system", "billing"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "customers" in done.stdout and _password(pg_url) not in done.stdout + done.stderr
    assert table_counts(where, "raw_billing")["customers"] > 0
    assert not (where.home / "warehouse.duckdb").exists()

    with writer_lock(Paths(home=tmp_path / "other-machine"), wait_seconds=0):
        busy = subprocess.run(command, env=env, capture_output=True, text=True)
    said = busy.stdout + busy.stderr
    assert busy.returncode != 0
    assert f"another run holds the writer lock of {where.engine.display}" in said
    assert _password(pg_url) not in said


def test_an_unreachable_postgres_warehouse_is_named_without_its_password(
    postgres_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url = str(postgres_server.url).rsplit("/", 1)[0] + "/no_such_database"
    monkeypatch.setenv("TRUEUP_WAREHOUSE", url)
    with pytest.raises(sqlconn.WarehouseUnreachable) as failed, sqlconn.connect(Paths(home=tmp_path)):
        pass
    assert "no_such_database" in str(failed.value) and _password(url) not in str(failed.value)


def test_the_webhook_drain_refuses_a_postgres_warehouse(pg_url: str, tmp_path: Path):
    from ingestion.webhooks.drain import drain
    from ingestion.webhooks.inbox import Inbox

    stray = tmp_path / "warehouse.duckdb"
    with pytest.raises(DuckDBOnlyError, match=r"DuckDB warehouse only.*docs/scaling\.md"):
        drain(Inbox(tmp_path / "inbox.sqlite3"), stray)
    assert not stray.exists()
