"""Findings ops can act on: record links, the published copy patched by a decision, the Dagster
job that records decisions from its run config."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from ingestion.warehouse import Paths
from orchestration.definitions import defs
from orchestration.findings import DecisionError, decide, read_findings, record_links

ACCOUNTS = {"crm.portal_id": "123", "crm.ui_domain": "app-eu1.hubspot.com", "billing.livemode": "true"}


def test_record_links_per_system():
    links = record_links(
        {
            "contact_id": "856",
            "customer_id": "cus_1x",
            "event_uri": "https://api.calendly.com/scheduled_events/ABC123",
            "meeting_id": "3843",
        },
        ACCOUNTS,
    )
    urls = {link.key: link.url for link in links}
    assert urls["contact_id"] == "https://app-eu1.hubspot.com/contacts/123/record/0-1/856"
    assert urls["customer_id"] == "https://dashboard.stripe.com/customers/cus_1x"  # live mode: no /test
    assert urls["event_uri"] == "https://calendly.com/app/scheduled_events/user/me?uuid=ABC123"
    assert urls["meeting_id"] is None  # no web page of its own: named, not linked
    assert record_links({"contact_id": "1"}, {})[0].url is None  # no portal id read yet
    assert (
        record_links({"invoice_id": "in_1"}, {})[0].url == "https://dashboard.stripe.com/test/invoices/in_1"
    )


def make_findings(file) -> None:
    with duckdb.connect(str(file)) as con:
        con.execute("create schema reconciliation")
        con.execute(
            "create table reconciliation.findings as select * from (values "
            "('f-open', 'email_mismatch', 'warn', 'open', 'email', "
            '\'{"contact_id":"1","customer_id":"cus_1"}\','
            " 'a@x.io', 'b@x.io', null, null, 'crm', 'a@x.io', 'push_to_billing', now(), now(),"
            " 'crm,billing'),"
            "('f-gone', 'email_mismatch', 'warn', 'resolved', 'email', '{\"contact_id\":\"2\"}',"
            " 'c@x.io', null, null, null, 'crm', 'c@x.io', 'review', now(), now(), 'crm,billing')"
            ") t(finding_id, rule, severity, status, field, record_keys, crm_value, billing_value,"
            " scheduling_value, ads_value, authoritative_system, authoritative_value, proposed_action,"
            " first_seen_at, last_seen_at, systems)"
        )


@pytest.fixture
def where(tmp_path, monkeypatch) -> Paths:
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    where = Paths(home=tmp_path)
    make_findings(where.warehouse)
    where.published.parent.mkdir(parents=True)
    make_findings(where.published)
    return where


def status_of(file, finding_id: str) -> str:
    with duckdb.connect(str(file), read_only=True) as con:
        return con.execute(
            "select status from reconciliation.findings where finding_id = ?", [finding_id]
        ).fetchall()[0][0]


def test_a_decision_reaches_the_warehouse_and_the_published_copy(where):
    done = decide("accept", ["f-open"], "same person", decided_by="ana", where=where)
    assert done.published
    assert status_of(where.warehouse, "f-open") == status_of(where.published, "f-open") == "accepted"
    with duckdb.connect(str(where.published), read_only=True) as con:
        [finding] = read_findings(con, statuses=["accepted"])
    assert finding.decision is not None and finding.decision["decided_by"] == "ana"
    assert finding.outcome == "conflict"  # both present, different (no outcome column yet)
    decide("reopen", ["f-open"], "by mistake", where=where)
    assert status_of(where.published, "f-open") == "open"
    with pytest.raises(DecisionError, match="not open"):
        decide("accept", ["f-gone"], "x", where=where)


def test_the_findings_review_job_records_decisions_from_its_run_config(where):
    config = {
        "ops": {
            "record_decisions": {"config": {"accept": ["f-open"], "reason": "known", "decided_by": "ops"}}
        }
    }
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("findings_review").execute_in_process(
            run_config=config, instance=instance
        )
    assert result.success
    assert status_of(where.warehouse, "f-open") == "accepted"
    with duckdb.connect(str(where.warehouse), read_only=True) as con:
        rows = con.execute(
            "select action, reason, decided_by, origin from reconciliation.finding_decisions"
        ).fetchall()
    assert rows == [("accept", "known", "ops", "dagster")]
