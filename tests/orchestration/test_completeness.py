"""The completeness figures in Dagster and the report: the audit's check and the per-run
source-count check fail on a gap, and the report's section shows skipped resources, counts
and the latest audit."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from ingestion import health
from ingestion.audit import ResourceAudit, store
from ingestion.guard import SKIPPED, Outcome
from ingestion.pipeline import SourceCount, SystemResult
from ingestion.warehouse import compare_counts, record_outcomes
from orchestration.audit import audit_check
from orchestration.ingest import SOURCE_COUNT, _count_results


def _audit(remaining: int) -> ResourceAudit:
    return ResourceAudit("crm", "contacts", 120, 118, 2, 1, 3, remaining, 2, 0.1)


def test_the_audit_check_fails_while_records_are_still_missing():
    assert audit_check([_audit(0)]).passed
    failed = audit_check([_audit(2)])
    assert not failed.passed and failed.metadata["remaining"].value == 2
    assert failed.metadata["crm_missing"].value == 3


def test_the_source_count_check_fails_when_raw_lacks_records_the_source_counts():
    result = SystemResult(
        "crm", 1.0, counts=[SourceCount("contacts", 120, 110, 4), SourceCount("deals", 40, 41, 0)]
    )
    keys = {dg.AssetCheckKey(dg.AssetKey(["raw_crm", name]), SOURCE_COUNT) for name in ("contacts", "deals")}
    checks = {r.asset_key.path[-1]: r for r in _count_results(result, keys)}
    assert not checks["contacts"].passed and checks["contacts"].metadata["unaccounted"].value == 6
    assert checks["deals"].passed  # raw may hold more: a record deleted at the source


def test_the_reports_completeness_section(tmp_path: Path):
    database = tmp_path / "published.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create schema raw_crm")
        con.execute("create table raw_crm.contacts (id varchar)")
        con.execute("insert into raw_crm.contacts values ('1'), ('2')")
    record_outcomes(
        database,
        "raw_crm",
        [{"resource": "owners", "status": SKIPPED, "reason": "HTTP 403", "scope": "crm.objects.owners.read"}],
    )
    compare_counts(database, "raw_crm", {"contacts": 5})
    store(database, [_audit(1)])
    with duckdb.connect(str(database), read_only=True) as con:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        figures = health.collect(con, tables)
    assert figures.unread[0][:3] == ("crm", "owners", "skipped")
    assert figures.unaccounted == 3 and figures.audit_remaining == 1
    text = health.markdown(figures)
    assert "crm.objects.owners.read" in text and "3 records unaccounted" in text and "1 still missing" in text
    assert Outcome("owners", SKIPPED, "HTTP 403", "x").text().endswith("grant the token the scope x")
