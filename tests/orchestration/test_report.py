"""The nightly report: every section from the published copy, degrading when tables are absent."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ingestion.warehouse import Paths
from orchestration import report
from orchestration.publish import publish

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
RUNS = [NOW - timedelta(days=2), NOW - timedelta(days=1), NOW]


@pytest.fixture(autouse=True)
def utc(monkeypatch, tmp_path_factory):
    monkeypatch.delenv("TRUEUP_TIMEZONE", raising=False)
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    # the ops store (ingest attempts, path health) of a home of the test's own
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path_factory.mktemp("ops_home")))


def svgs(markdown: str) -> list[ET.Element]:
    found = re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", markdown)
    return [ET.fromstring(base64.b64decode(blob)) for blob in found]


def small_warehouse(home: Path) -> Paths:
    """Three nights of findings for two rules, quarantine, identity, loads and a funnel."""
    where = Paths(home=home)
    home.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(where.warehouse)) as con:
        con.execute("create schema reconciliation")
        con.execute(
            "create table reconciliation.findings_daily (run_at timestamptz, run_date date, rule varchar, "
            "new_count bigint, reopened_count bigint, open_count bigint, accepted_count bigint, "
            "resolved_count bigint, repaired_count bigint)"
        )
        daily = [
            # run, rule, new, reopened, open, accepted, resolved, repaired
            (RUNS[0], "email_mismatch", 3, 0, 3, 0, 0, 0),
            (RUNS[0], "deal_won_no_invoice", 2, 0, 2, 0, 0, 0),
            (RUNS[1], "email_mismatch", 1, 0, 4, 0, 0, 0),
            (RUNS[1], "deal_won_no_invoice", 0, 0, 2, 0, 0, 0),
            (RUNS[2], "email_mismatch", 1, 1, 3, 1, 2, 1),
            (RUNS[2], "deal_won_no_invoice", 0, 0, 1, 0, 1, 0),
        ]
        con.executemany(
            "insert into reconciliation.findings_daily values (?, cast(? as date), ?, ?, ?, ?, ?, ?, ?)",
            [(r[0], r[0].date(), *r[1:]) for r in daily],
        )
        con.execute("create table reconciliation.findings (rule varchar, severity varchar)")
        con.execute(
            "insert into reconciliation.findings values ('email_mismatch', 'warn'), "
            "('deal_won_no_invoice', 'error')"
        )
        con.execute("create schema raw_crm")
        con.execute(
            "create table raw_crm._dlt_loads (load_id varchar, status bigint, inserted_at timestamptz)"
        )
        con.execute(
            "insert into raw_crm._dlt_loads values ('1', 0, ?), ('2', 1, ?)", [NOW - timedelta(hours=5), NOW]
        )
        con.execute("create table raw_crm._quarantine (resource varchar, reason varchar)")
        con.execute(
            "insert into raw_crm._quarantine values ('contacts', 'missing key field ''id'''), "
            "('contacts', 'missing key field ''id''')"
        )
        con.execute("create schema intermediate")
        con.execute(
            "create table intermediate.int_identity__resolved as select * from (values "
            "('crm', 'c1', 'k1', 'exact_email', false), ('billing', 'b1', 'k1', 'crm_key', false), "
            "('crm', 'c2', 'k2', 'unmatched', false), ('scheduling', 's1', 'k2', 'name_company', true)) "
            "as t(record_system, record_id, customer_id, match_method, needs_review)"
        )
        con.execute("create schema marts")
        con.execute(
            "create table marts.mart_funnel_by_channel_month as select * from (values (10, 4, 2, 1), "
            "(5, 1, 1, 1)) as t(leads, opportunities, won_deals, new_customers)"
        )
    return where


@pytest.fixture
def published(tmp_path) -> Path:
    where = small_warehouse(tmp_path / "home")
    publish(where, run_id="abcdef1234", job="nightly")
    return where.published


def test_findings_by_rule_with_the_previous_night_and_the_trend(published):
    collected = report.collect(published, now=NOW)
    rows = {r.rule: r for r in collected.rules or []}
    email, deal = rows["email_mismatch"], rows["deal_won_no_invoice"]
    assert (email.new, email.open, email.resolved, email.accepted, email.previous_open) == (2, 3, 3, 1, 4)
    assert (deal.new, deal.open, deal.resolved, deal.previous_open) == (0, 1, 1, 2)
    assert email.history == [3, 4, 3] and deal.severity == "error"
    assert (collected.rules or [])[0].rule == "deal_won_no_invoice"  # errors first
    assert [(p.open, p.new, p.resolved) for p in collected.trend or []] == [(5, 5, 0), (6, 1, 0), (4, 2, 4)]
    assert collected.totals == {"open": 4, "new": 2, "resolved": 4, "accepted": 1}


def test_the_other_sections(published):
    collected = report.collect(published, now=NOW)
    assert collected.publication is not None and collected.publication["run_id"] == "abcdef1234"
    assert [(q.system, q.resource, q.records) for q in collected.quarantine or []] == [("crm", "contacts", 2)]
    identity = collected.identity
    assert identity is not None and identity.customers == 2 and identity.review_links is None
    assert {r.system: (r.records, r.matched, r.needs_review) for r in identity.rows} == {
        "billing": (1, 1, 0),
        "crm": (2, 2, 0),
        "scheduling": (1, 1, 1),
    }
    fresh = {f.system: f for f in collected.freshness}
    assert fresh["crm"].age_hours == pytest.approx(5.0) and not fresh["crm"].fresh  # 3 h limit
    assert fresh["billing"].last_loaded_at is None and not fresh["billing"].fresh
    assert collected.funnel == [("Leads", 15), ("Opportunities", 5), ("Won deals", 3), ("New customers", 2)]
    assert collected.checks == []


def test_freshness_counts_from_the_last_ingest_even_without_new_records(tmp_path):
    where = small_warehouse(tmp_path / "home")
    publish(where, ingested={"crm": NOW - timedelta(hours=1)})
    crm = next(f for f in report.collect(where.published, now=NOW).freshness if f.system == "crm")
    assert crm.age_hours == pytest.approx(1.0) and crm.fresh
    assert crm.last_loaded_at and crm.last_ingested_at and crm.last_loaded_at < crm.last_ingested_at


def test_markdown_has_every_section_and_two_pictures(published):
    markdown = report.to_markdown(report.collect(published, now=NOW))
    for heading in (
        "Findings by rule",
        "Quarantined records",
        "Check results",
        "Identity resolution",
        "Freshness",
        "Funnel",
    ):
        assert f"## {heading}" in markdown
    assert "| deal_won_no_invoice | error | 0 | 1 | 1 | -1 |" in markdown
    pictures = svgs(markdown)
    assert len(pictures) == 2
    texts = ["".join(p.itertext()) for p in pictures]
    assert "Drift" in texts[0] and "Funnel" in texts[1]


def test_text_has_the_same_sections(published):
    text = report.to_text(report.collect(published, now=NOW))
    for heading in (
        "Findings by rule",
        "Quarantined records",
        "Check results",
        "Identity resolution",
        "Freshness",
        "Funnel",
    ):
        assert f"\n{heading}" in text
    assert "email_mismatch" in text and "▆█▆" in text  # open 3, 4, 3: bars from zero


def test_without_a_published_copy_every_section_says_so(tmp_path):
    collected = report.collect(tmp_path / "missing.duckdb", now=NOW)
    markdown = report.to_markdown(collected)
    assert "No published warehouse yet" in markdown
    assert markdown.count(report.NOT_BUILT) == 6  # findings, findings to act on, ..., funnel
    assert all(f.last_loaded_at is None for f in collected.freshness)
    assert "not built yet" in report.to_text(collected)


def test_a_half_built_warehouse_reports_what_exists(tmp_path):
    where = Paths(home=tmp_path)
    with duckdb.connect(str(where.warehouse)) as con:
        con.execute("create schema raw_ads")
        con.execute(
            "create table raw_ads._dlt_loads (load_id varchar, status bigint, inserted_at timestamptz)"
        )
    publish(where)
    collected = report.collect(where.published, now=NOW)
    assert collected.rules is None and collected.identity is None and collected.funnel is None
    assert collected.quarantine == []
    assert "None: every record met its contract." in report.to_markdown(collected)


def test_times_are_shown_in_the_configured_time_zone(published, monkeypatch):
    monkeypatch.setenv("TRUEUP_TIMEZONE", "Asia/Tokyo")
    collected = report.collect(published, now=NOW)
    assert collected.timezone == "Asia/Tokyo"
    assert "JST" in report.to_markdown(collected)


def test_the_metadata_ops_see(published):
    metadata = report.report_metadata(report.collect(published, now=NOW))
    assert isinstance(metadata["report"], dg.MarkdownMetadataValue)
    assert isinstance(metadata["findings_by_rule"], dg.TableMetadataValue)
    assert (metadata["open_findings"], metadata["new_findings"], metadata["resolved_findings"]) == (4, 2, 4)
    assert metadata["quarantined_records"] == 2 and metadata["stale_sources"] == 4


@pytest.mark.slow
def test_report_of_a_built_warehouse(built_warehouse, tmp_path):
    home = built_warehouse.copy_to(tmp_path / "home")
    publish(home.paths, run_id="built", job="nightly")
    collected = report.collect(home.paths.published)
    assert collected.rules and collected.totals["open"] > 0
    assert collected.identity is not None and collected.identity.customers > 0
    assert collected.funnel and collected.funnel[0][1] > 0
    markdown = report.to_markdown(collected)
    assert report.NOT_BUILT not in markdown
    assert len(svgs(markdown)) == 2


def test_source_values_are_escaped_for_html_and_markdown():
    hostile = "<img src=x onerror=alert(1)> **Bold** [click](http://evil) | `x` _em_ ~~s~~\n\t\u2028end"
    cell = report._cell(hostile)
    assert "<" not in cell and ">" not in cell and "\n" not in cell and "\t" not in cell
    for raw in ("**", "[click]", "`x`", " _em_", "~~"):
        assert raw not in cell, raw
    assert not re.search(r"(?<!\\)\|", cell)  # every pipe escaped
    assert "&lt;img src=x onerror=alert(1)&gt;" in cell and "\\*\\*Bold\\*\\*" in cell
    table = report._md_table(("value",), [(hostile,)])
    assert table.count("\n") == 2  # header, rule, one row: the value cannot break the table
    assert report._cell("name_mismatch") == "name_mismatch" and report._cell(-1) == "-1"


def test_sparklines_scale_from_zero_so_steady_counts_are_not_flat():
    assert report.sparkline([3, 3, 3]) == "███"
    assert report.sparkline([0, 4, 8]) == "▁▅█"
    assert report.sparkline([0, 0]) == "▁▁"
    assert report.sparkline([]) == ""
