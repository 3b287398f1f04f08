"""Reverse ETL on the sandbox: only the difference, never over a human edit, only what the
contract and ops allow, and a second plan on an unchanged world writes nothing."""

from __future__ import annotations

import shutil
from collections import Counter

import duckdb
import httpx
import pytest

from reverse_etl import report
from reverse_etl.approve import approve
from reverse_etl.targets.base import RecordWrite
from reverse_etl.targets.stripe import StripeTarget
from sandbox.config import DEFAULT_TOKENS
from tests.reverse_etl.conftest import Stage


def written_fields(stage: Stage) -> Counter[tuple[str, str, str]]:
    """(system, record, field) -> how many times the sandbox applied a write of it."""
    return Counter((w["system"], w["record_id"], f) for w in stage.writes() for f in w["fields"])


def test_push_writes_only_the_difference_once_and_converges(stage: Stage) -> None:
    outbox = stage.outbox()
    assert {r["target_system"] for r in outbox} == {"crm", "billing"}
    first = stage.run()
    wanted = {(r["target_system"], r["record_id"], r["field"]): r["desired_value"] for r in outbox}
    written = written_fields(stage)
    # every outbox field written exactly once, nothing else
    assert set(written) == set(wanted) and set(written.values()) == {1}
    for entry in stage.writes():
        for name, value in entry["fields"].items():
            assert value == wanted[(entry["system"], entry["record_id"], name)]
    stripe = [w for w in stage.writes("billing")]
    assert all(w["idempotency_key"] and w["idempotency_key"].startswith("trueup-") for w in stripe)
    assert {o.status for o in first.values()} == {"pushed"}
    applied = stage.query("select distinct finding_id from reverse_etl.ledger where status = 'applied'")
    assert {r["finding_id"] for r in applied} == {r["finding_id"] for r in outbox}
    # the next plan on the unchanged world finds every value in place and writes nothing
    before = len(stage.writes())
    second = stage.run()
    assert len(stage.writes()) == before
    assert all(set(o.counts) == {"in_sync"} for o in second.values())


def test_a_human_edit_becomes_a_conflict_and_is_not_overwritten(stage: Stage) -> None:
    row = next(r for r in stage.outbox() if r["target_system"] == "billing" and r["field"] == "email")
    edited = "someone.else@example.org"
    headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['stripe']}"}
    url = f"{stage.sandbox.base_urls['stripe']}/v1/customers/{row['record_id']}"
    httpx.post(url, data={"email": edited}, headers=headers).raise_for_status()
    httpx.delete(f"{stage.sandbox.url}/_admin/writes")
    stage.run()
    assert ("billing", row["record_id"], "email") not in written_fields(stage)
    conflict = stage.query(
        "select * from reverse_etl.conflicts where record_id = ? and field = 'email'", [row["record_id"]]
    )
    assert len(conflict) == 1
    assert conflict[0]["live_value"] == edited and conflict[0]["desired_value"] == row["desired_value"]
    live = httpx.get(url, headers=headers).json()
    assert live["email"] == edited  # the human's value stands
    # the other fields were pushed
    assert stage.query("select count(*) as n from reverse_etl.ledger where status = 'applied'")[0]["n"] > 0


def test_an_equivalent_live_value_is_never_written(stage: Stage) -> None:
    row = next(r for r in stage.outbox() if r["target_system"] == "billing" and r["field"] == "email")
    headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['stripe']}"}
    url = f"{stage.sandbox.base_urls['stripe']}/v1/customers/{row['record_id']}"
    httpx.post(url, data={"email": row["desired_value"].upper()}, headers=headers).raise_for_status()
    httpx.delete(f"{stage.sandbox.url}/_admin/writes")
    stage.run()
    assert ("billing", row["record_id"], "email") not in written_fields(stage)
    item = stage.query(
        "select action from reverse_etl.plan_items where record_id = ? and field = 'email'",
        [row["record_id"]],
    )
    assert [i["action"] for i in item] == ["in_sync"]


def test_a_forbidden_field_is_never_written_through_any_entry_point(stage: Stage) -> None:
    # the contract says never: planned as forbidden, approvals cannot lift it
    stage.execute(
        "update seeds.ownership set conflict_policy = 'never' where entity = 'contact' and field = 'email'"
    )
    # an outbox row the contract does not allow at all (billing receives no deal stage)
    stage.execute(
        "insert into reverse_etl.outbox_billing by name select 'billing' as target_system, "
        "'customers' as object_type, record_id, 'description' as field, 'rewritten' as desired_value, "
        "finding_id, outcome from reconciliation.findings f, "
        "(select record_id from reverse_etl.outbox_billing limit 1) "
        "where f.rule = 'deal_won_no_invoice' limit 1"
    )
    email_findings = [r["finding_id"] for r in stage.outbox() if r["field"] == "email"]
    approve(
        findings=email_findings, rules=["email_mismatch", "deal_won_no_invoice"], where=stage.warehouse.paths
    )
    outcomes = stage.run()
    fields = {f for (_, _, f) in written_fields(stage)}
    assert "email" not in fields and "description" not in fields
    assert outcomes["billing"].counts["forbidden"] == len(email_findings) + 1
    # and the target itself refuses a field it does not write
    target = StripeTarget(stage.settings().targets["billing"])
    try:
        with pytest.raises(ValueError, match="does not write"):
            target.write("customers", [_write("cus_x", {"balance": "0"})])
    finally:
        target.close()


def _write(record_id: str, fields: dict[str, str]) -> RecordWrite:
    return RecordWrite("customers", record_id, fields, "k")


def test_plan_only_and_dry_run_write_nothing_but_record_the_plan(stage: Stage) -> None:
    plan_only = stage.run(push=False)
    dry = stage.run(dry_run=True)
    assert stage.writes() == []
    assert {o.mode for o in plan_only.values()} == {"plan_only"}
    assert {o.mode for o in dry.values()} == {"dry_run"}
    assert all(o.counts.get("write") for o in dry.values())
    plans = stage.query("select mode, status from reverse_etl.plans")
    assert {(p["mode"], p["status"]) for p in plans} == {("plan_only", "planned"), ("dry_run", "planned")}
    assert stage.query("select count(*) as n from reverse_etl.ledger")[0]["n"] == 0


def test_the_guardrail_aborts_a_plan_over_its_share_before_writing(stage: Stage) -> None:
    outcomes = stage.run(settings=stage.settings(max_share=0.001, guardrail_floor=2))
    assert stage.writes() == []
    assert {o.status for o in outcomes.values()} == {"aborted"}
    assert "guardrail" in outcomes["billing"].message


def test_a_failed_integrity_check_blocks_the_push(stage: Stage) -> None:
    from checks.results import RESULTS_COLUMNS

    columns = ", ".join(f"{name} {kind.replace(' not null', '')}" for name, kind in RESULTS_COLUMNS)
    stage.execute(
        f"create schema if not exists checks; create table if not exists checks.check_results ({columns})"
    )
    stage.execute(
        "insert into checks.check_results (run_id, checked_at, suite, asset_key, check_name, status, "
        "passed, severity) values "
        "('r1', now(), 'raw', 'raw_crm/contacts', 'contacts_unique', 'failed', false, 'error')"
    )
    outcomes = stage.run()
    assert stage.writes() == []
    assert {o.status for o in outcomes.values()} == {"blocked"}
    assert "contacts_unique" in outcomes["crm"].message


def test_review_fields_wait_for_approval_and_are_pushed_after_it(stage: Stage) -> None:
    stage.execute(
        "update seeds.ownership set conflict_policy = 'review' where entity = 'contact' and field = 'email'"
    )
    first = stage.run()
    assert first["billing"].counts["review"] >= 1
    assert "email" not in {f for (_, _, f) in written_fields(stage)}
    counts = approve(plan=first["billing"].plan_id, where=stage.warehouse.paths)
    assert counts["plan"] == first["billing"].counts["review"]
    second = stage.run()
    assert "review" not in second["billing"].counts
    emails = [k for k in written_fields(stage) if k[2] == "email"]
    assert len(emails) == first["billing"].counts["review"]


def test_the_report_section_and_status_line_count_per_target(stage: Stage) -> None:
    row = next(r for r in stage.outbox() if r["target_system"] == "billing" and r["field"] == "phone")
    headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['stripe']}"}
    url = f"{stage.sandbox.base_urls['stripe']}/v1/customers/{row['record_id']}"
    httpx.post(url, data={"phone": "+15550000000"}, headers=headers).raise_for_status()
    stage.run()
    published = stage.warehouse.paths.published
    published.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(stage.warehouse.file, published)
    lines = report.status_lines(stage.warehouse.paths)
    billing = next(line for line in lines if "billing:" in line)
    expected = len({r["record_id"] for r in stage.outbox() if r["target_system"] == "billing"}) - 1
    assert f"{expected:,} pushed" in billing and "1 conflicts" in billing and "0 dead letters" in billing
    with duckdb.connect(str(published), read_only=True) as con:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        rows = report.collect(con, tables)
    text = report.render(rows, markdown=False)
    markdown = report.render(rows, markdown=True)
    assert "Reverse ETL" in text and "| billing | push | pushed |" in markdown
    assert report.render(None, markdown=True).startswith("## Reverse ETL")
