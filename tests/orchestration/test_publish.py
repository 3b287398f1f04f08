"""The published copy: complete, stamped, swapped in atomically, readable while replaced."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import duckdb
import pytest

from ingestion.warehouse import Paths
from orchestration.publish import (
    CheckOutcome,
    publish,
    read_publication,
    read_sources,
    remove_stale_temporaries,
)


@pytest.fixture
def where(tmp_path, monkeypatch) -> Paths:
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    where = Paths(home=tmp_path / "home")
    where.home.mkdir()
    with duckdb.connect(str(where.warehouse)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.numbers as select range as n from range(1000)")
        con.execute("create schema raw_crm_staging")
        con.execute("create table raw_crm_staging.scratch as select 1 as x")
        con.execute("create schema staging")
        con.execute("create view staging.evens as select n from marts.numbers where n % 2 = 0")
    return where


def test_publish_copies_the_warehouse_and_stamps_what_it_holds(where):
    checks = [CheckOutcome("marts/numbers", "unique_n", True), CheckOutcome("marts/numbers", "rows", False)]
    result = publish(where, run_id="run-1", job="nightly", checks=checks)
    assert result.path == where.published
    # only the analysts' schemas, views as tables; dlt's *_staging schemas stay behind
    assert result.tables == {"marts.numbers": 1000, "staging.evens": 500}
    with duckdb.connect(str(where.published), read_only=True) as con:
        assert con.execute("select count(*) from staging.evens").fetchall() == [(500,)]
        assert con.execute("select run_id, job from _publication.run").fetchall() == [("run-1", "nightly")]
        assert con.execute('select table_name, "rows" from _publication.tables order by 1').fetchall() == [
            ("evens", 500),
            ("numbers", 1000),
        ]
        schemas = {r[0] for r in con.execute("select schema_name from duckdb_tables()").fetchall()}
        assert schemas == {"marts", "staging", "_publication"}
        stored = con.execute("select check_name, passed from _publication.asset_checks order by 1").fetchall()
    assert stored == [("rows", False), ("unique_n", True)]
    assert read_publication(where.published)["run_id"] == "run-1"
    assert list(where.published.parent.glob("*.tmp")) == []


def test_source_ingest_times_carry_over_between_copies(where):
    first, later = datetime(2026, 11, 1, 2, tzinfo=UTC), datetime(2026, 11, 2, 2, tzinfo=UTC)
    publish(where, ingested={"crm": first, "ads": later})
    publish(where, ingested={"crm": later})  # a run that ingested only the CRM
    assert read_sources(where.published) == {"crm": later, "ads": later}


def test_the_warehouse_itself_is_left_as_it_was(where):
    publish(where)
    with duckdb.connect(str(where.warehouse), read_only=True) as con:
        schemas = {
            r[0] for r in con.execute("select schema_name from information_schema.schemata").fetchall()
        }
    assert "_publication" not in schemas
    assert not where.warehouse.with_name("warehouse.duckdb.wal").exists()


def test_a_reader_holding_the_old_copy_keeps_reading_it_while_a_new_one_is_swapped_in(where):
    publish(where, run_id="run-1")
    reader = duckdb.connect(str(where.published), read_only=True)
    try:
        with duckdb.connect(str(where.warehouse)) as con:
            con.execute("insert into marts.numbers select range + 1000 from range(500)")
        publish(where, run_id="run-2")
        assert reader.execute("select count(*) from marts.numbers").fetchall() == [(1000,)]
        assert reader.execute("select run_id from _publication.run").fetchall() == [("run-1",)]
    finally:
        reader.close()
    with duckdb.connect(str(where.published), read_only=True) as con:
        assert con.execute("select count(*) from marts.numbers").fetchall() == [(1500,)]


def test_publish_refuses_while_another_process_writes_the_warehouse(where):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import duckdb, sys, time
                con = duckdb.connect({str(where.warehouse)!r})
                print("open", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(duckdb.Error):
            publish(where)
        assert not where.published.exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def test_publish_without_a_warehouse_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to publish"):
        publish(Paths(home=tmp_path))


def test_leftovers_of_a_killed_publish_are_cleaned_but_not_a_running_one(tmp_path):
    target = tmp_path / "warehouse.duckdb"
    old, fresh = tmp_path / ".warehouse.duckdb.aaa.tmp", tmp_path / ".warehouse.duckdb.bbb.tmp"
    old.write_text("x")
    fresh.write_text("x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    remove_stale_temporaries(target)
    assert not old.exists() and fresh.exists()


def test_reading_the_publication_of_a_missing_copy(tmp_path):
    assert read_publication(tmp_path / "nothing.duckdb") is None
