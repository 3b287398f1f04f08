"""Reconciliation findings against the sandbox truth, their life across runs, the reverse-ETL
outbox's limits, and every reconciliation test seen failing on broken input."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from orchestration.cli import main
from orchestration.dbt import DbtError, run_dbt
from orchestration.findings import DecisionError, decide
from tests.conftest import Warehouse

# a test finds the broken rows: "fail" at error severity, "warn" where drift only warns
FOUND_FAILURES = ("fail", "warn")

pytestmark = pytest.mark.slow

RULES = [
    "deal_won_no_invoice",
    "paid_invoice_crm_not_customer",
    "invoice_amount_mismatch",
    "appointment_time_mismatch",
    "appointment_status_mismatch",
    "email_mismatch",
    "name_mismatch",
    "phone_mismatch",
    "billing_orphan",
    "crm_duplicate",
    "ad_conversion_mismatch",
    "invoice_payment_mismatch",
    "malformed_date",
    "malformed_phone",
    "malformed_value",
]
SELECT_UPSTREAM = ("+reconciliation", "+reverse_etl")
# raw edits reach the rules through staging's person tables and identity (tables, not views)
SELECT_OWN = ("staging", "intermediate", "reconciliation", "reverse_etl")
THRESHOLD = 0.9  # dbt_project.yml var identity_confidence_threshold
# the files whose dbt tests this module must see failing on broken input
OWN_TEST_FILES = (
    "models/reconciliation/",
    "models/reverse_etl/",
    "tests/reconciliation/",
)


def canonical(keys: dict[str, Any] | str) -> str:
    """One text form of a record_keys object, whatever its key order."""
    value = json.loads(keys) if isinstance(keys, str) else keys
    return json.dumps({k: str(v) for k, v in value.items()}, sort_keys=True)


def query(file: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with duckdb.connect(str(file), read_only=True) as con:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def findings_by_id(file: Path) -> dict[str, dict[str, Any]]:
    return {row["finding_id"]: row for row in query(file, "select * from reconciliation.findings")}


# -- every rule against the truth --------------------------------------------------------------


@pytest.fixture(scope="module")
def current_findings(built_warehouse: Warehouse) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {rule: set() for rule in RULES}
    for row in query(built_warehouse.file, "select rule, record_keys from reconciliation.findings_current"):
        found.setdefault(row["rule"], set()).add(canonical(row["record_keys"]))
    return found


def test_every_rule_has_a_model_and_nothing_else_reports(current_findings: dict[str, set[str]]) -> None:
    assert set(current_findings) == set(RULES)


@pytest.mark.parametrize("rule", RULES)
def test_rule_matches_the_truth_exactly(
    built_warehouse: Warehouse, current_findings: dict[str, set[str]], rule: str
) -> None:
    truth = {canonical(a.keys) for a in built_warehouse.world.truth.of_kind(rule)}
    found = current_findings[rule]
    assert truth, f"the default world injects no active {rule}: nothing to measure"
    hits = found & truth
    precision = len(hits) / len(found) if found else 0.0
    recall = len(hits) / len(truth)
    diff = (
        f"{rule}: precision {precision:.3f}, recall {recall:.3f}\n"
        f"  reported, not in the truth: {sorted(found - truth)}\n"
        f"  in the truth, not reported: {sorted(truth - found)}"
    )
    assert (precision, recall) == (1.0, 1.0), diff


def test_findings_carry_values_ownership_and_action(built_warehouse: Warehouse) -> None:
    rows = query(built_warehouse.file, "select * from reconciliation.findings_current")
    by_rule = {row["rule"]: row for row in rows}
    email = by_rule["email_mismatch"]
    assert email["crm_value"] != email["billing_value"]
    assert (email["authoritative_system"], email["authoritative_value"]) == ("crm", email["crm_value"])
    assert email["proposed_action"] == "push_to_billing"
    lifecycle = by_rule["paid_invoice_crm_not_customer"]
    assert (lifecycle["authoritative_system"], lifecycle["authoritative_value"]) == ("billing", "customer")
    assert lifecycle["proposed_action"] == "push_to_crm"
    assert by_rule["appointment_time_mismatch"]["authoritative_system"] == "scheduling"
    # amounts are reviewed, never overwritten (ownership: deal.amount never)
    assert by_rule["invoice_amount_mismatch"]["proposed_action"] == "review"
    assert by_rule["billing_orphan"]["proposed_action"] == "review"


# -- findings across runs ------------------------------------------------------------------------


@dataclass
class Runs:
    """One scratch warehouse built three times, with raw data (and the accepted-findings seed and
    a reverse-ETL ledger) changed between the runs."""

    warehouse: Warehouse
    target: Path
    snapshots: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    run_at: list[datetime] = field(default_factory=list)
    outbox_finding_ids: set[str] = field(default_factory=set)  # after the last run
    fixed_id: str = ""  # email_mismatch: fixed before run 2, broken again before run 3
    new_id: str = ""  # name_mismatch: introduced before run 2, accepted before run 3
    pushed_id: str = ""  # phone_mismatch: fixed by a recorded push before run 3
    kept_id: str = ""  # name_mismatch: accepted through the CLI after run 1, its value changed before run 4


def build(warehouse: Warehouse, target: Path, *select: str) -> None:
    """dbt run of the reconciliation and reverse-ETL models (and, by default, all upstream);
    `target` is shared by the module's runs so dbt parses the project only partially."""
    run_dbt(["run", "--select", *(select or SELECT_UPSTREAM)], where=warehouse.paths, target_path=target)


def snapshot(runs: Runs) -> None:
    findings = findings_by_id(runs.warehouse.file)
    runs.snapshots.append(findings)
    runs.run_at.append(max(row["last_seen_at"] for row in findings.values()))


def finding_id_of(file: Path, rule: str, keys: dict[str, str]) -> str:
    rows = query(file, "select finding_id, record_keys from reconciliation.findings where rule = ?", [rule])
    matches = [r["finding_id"] for r in rows if canonical(r["record_keys"]) == canonical(keys)]
    assert len(matches) == 1, f"{rule} {keys}: {len(matches)} findings"
    return matches[0]


COPY_CRM_EMAIL = (
    "update raw_billing.customers set email = "
    "(select properties__email from raw_crm.contacts where id = ?) where id = ?"
)
CLEAN_CRM_KEY_LINK = """
    select contact_id, customer_id from reconciliation.link_crm_contacts_billing_customers
    where link_method = 'crm_key' and customer_id not in (
        select json_extract_string(record_keys, '$.customer_id') from reconciliation.findings_current
        where record_keys like '%customer_id%'
    )
    order by customer_id limit 1
"""


@pytest.fixture(scope="module")
def runs(loaded_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    warehouse = loaded_warehouse.copy_to(tmp_path_factory.mktemp("findings_runs"))
    result = Runs(warehouse, tmp_path_factory.mktemp("findings_dbt_target"))
    build(warehouse, result.target)
    snapshot(result)

    # after run 1 a standing name difference is accepted through the CLI (stays so in runs 2, 3)
    name = loaded_warehouse.world.truth.of_kind("name_mismatch")[0].keys
    result.kept_id = finding_id_of(warehouse.file, "name_mismatch", name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRUEUP_HOME", str(warehouse.home))
        env.delenv("TRUEUP_WAREHOUSE", raising=False)
        assert main(["findings", "accept", result.kept_id, "--reason", "known nickname", "--by", "ops"]) == 0

    # run 2: billing takes the CRM's email (fixed); a clean customer's name changes (new)
    email = loaded_warehouse.world.truth.of_kind("email_mismatch")[0].keys
    result.fixed_id = finding_id_of(warehouse.file, "email_mismatch", email)
    with duckdb.connect(str(warehouse.file)) as con:
        (billing_email,) = con.execute(
            "select email from raw_billing.customers where id = ?", [email["customer_id"]]
        ).fetchone() or (None,)
        con.execute(COPY_CRM_EMAIL, [email["contact_id"], email["customer_id"]])
        clean = con.execute(CLEAN_CRM_KEY_LINK).fetchone()
        assert clean is not None
        con.execute("update raw_billing.customers set name = name || '-Kowalczyk' where id = ?", [clean[1]])
    build(warehouse, result.target, *SELECT_OWN)
    snapshot(result)
    result.new_id = finding_id_of(
        warehouse.file, "name_mismatch", {"contact_id": clean[0], "customer_id": clean[1]}
    )

    # run 3: the old email is back (reopens); the name difference is accepted; a phone is fixed
    # by a push the reverse-ETL ledger recorded (repaired)
    phone = loaded_warehouse.world.truth.of_kind("phone_mismatch")[0].keys
    result.pushed_id = finding_id_of(warehouse.file, "phone_mismatch", phone)
    with duckdb.connect(str(warehouse.file)) as con:
        con.execute(
            "update raw_billing.customers set email = ? where id = ?", [billing_email, email["customer_id"]]
        )
        con.execute("create schema if not exists reverse_etl")
        con.execute(
            "create or replace table reverse_etl.ledger as select ? as finding_id, 'succeeded' as status",
            [result.pushed_id],
        )
        con.execute(
            "update raw_billing.customers set phone = "
            "(select properties__phone from raw_crm.contacts where id = ?) where id = ?",
            [phone["contact_id"], phone["customer_id"]],
        )
    decide("accept", [result.new_id], "known", decided_by="ops", where=warehouse.paths, hold_lock=False)
    build(warehouse, result.target, *SELECT_OWN)
    snapshot(result)
    outbox = query(warehouse.file, "select finding_id from reverse_etl.outbox_billing")
    result.outbox_finding_ids = {row["finding_id"] for row in outbox}

    # run 4: the accepted name difference changes value (reopens); the other stays accepted
    with duckdb.connect(str(warehouse.file)) as con:
        con.execute(
            "update raw_billing.customers set name = name || '-Nowak' where id = ?", [name["customer_id"]]
        )
    build(warehouse, result.target, *SELECT_OWN)
    snapshot(result)
    return result


def test_a_fixed_disagreement_is_resolved(runs: Runs) -> None:
    first, second = runs.snapshots[0][runs.fixed_id], runs.snapshots[1][runs.fixed_id]
    assert first["status"] == "open"
    assert second["status"] == "resolved"
    assert second["resolved_at"] == runs.run_at[1]
    assert second["last_seen_at"] == runs.run_at[0]
    assert second["first_seen_at"] == first["first_seen_at"]


def test_a_new_disagreement_opens_in_the_run_that_sees_it(runs: Runs) -> None:
    assert runs.new_id not in runs.snapshots[0]
    new = runs.snapshots[1][runs.new_id]
    assert (new["status"], new["first_seen_at"], new["resolved_at"]) == ("open", runs.run_at[1], None)


def test_a_standing_disagreement_keeps_its_first_seen(runs: Runs) -> None:
    first, second = runs.snapshots[0], runs.snapshots[1]
    standing = [i for i in first if i != runs.fixed_id]
    assert len(standing) > 50
    for finding_id in standing:
        assert second[finding_id]["status"] == ("accepted" if finding_id == runs.kept_id else "open")
        assert second[finding_id]["first_seen_at"] == first[finding_id]["first_seen_at"] == runs.run_at[0]
        assert second[finding_id]["last_seen_at"] == runs.run_at[1]
        assert second[finding_id]["seen_run_count"] == 2


def test_a_disagreement_that_returns_reopens(runs: Runs) -> None:
    again = runs.snapshots[2][runs.fixed_id]
    assert again["status"] == "open"
    assert again["resolved_at"] is None
    assert again["reopened_at"] == runs.run_at[2]
    assert again["first_seen_at"] == runs.run_at[0]


def test_a_disagreement_gone_after_a_recorded_push_is_repaired(runs: Runs) -> None:
    assert runs.snapshots[1][runs.pushed_id]["status"] == "open"
    repaired = runs.snapshots[2][runs.pushed_id]
    assert (repaired["status"], repaired["resolved_at"]) == ("repaired", runs.run_at[2])


def test_an_accepted_finding_is_accepted_and_leaves_the_outbox(runs: Runs) -> None:
    assert runs.snapshots[1][runs.new_id]["proposed_action"] == "push_to_billing"
    accepted = runs.snapshots[2][runs.new_id]
    assert (accepted["status"], accepted["first_seen_at"]) == ("accepted", runs.run_at[1])
    assert runs.new_id not in runs.outbox_finding_ids
    assert runs.outbox_finding_ids, "the other pushes stay in the outbox"


def test_an_accept_holds_over_nights_until_the_values_change(runs: Runs) -> None:
    states = [snap[runs.kept_id]["status"] for snap in runs.snapshots]
    assert states == ["open", "accepted", "accepted", "open"]
    assert runs.snapshots[3][runs.kept_id]["reopened_at"] == runs.run_at[3]
    assert runs.snapshots[3][runs.new_id]["status"] == "accepted"  # its values did not change
    [decision] = query(
        runs.warehouse.file,
        "select * from reconciliation.finding_decisions where finding_id = ?",
        [runs.kept_id],
    )
    assert (decision["action"], decision["decided_by"], decision["reason"]) == (
        "accept",
        "ops",
        "known nickname",
    )
    assert decision["billing_value"] == runs.snapshots[0][runs.kept_id]["billing_value"]


def test_a_decision_on_an_unknown_or_closed_finding_records_nothing(runs: Runs) -> None:
    with pytest.raises(DecisionError, match="no such finding"):
        decide("accept", ["nope"], "x", where=runs.warehouse.paths, hold_lock=False)
    with pytest.raises(DecisionError, match="not open"):
        decide("accept", [runs.pushed_id], "x", where=runs.warehouse.paths, hold_lock=False)
    with pytest.raises(DecisionError, match="reason"):
        decide("accept", [runs.new_id], " ", where=runs.warehouse.paths, hold_lock=False)
    decisions = query(runs.warehouse.file, "select count(*) as n from reconciliation.finding_decisions")
    assert decisions == [{"n": 2}]


def test_findings_daily_has_a_row_per_run_and_rule(runs: Runs) -> None:
    rows = query(runs.warehouse.file, "select * from reconciliation.findings_daily")
    by_run_rule = {(row["run_at"], row["rule"]): row for row in rows}
    assert len(rows) == len(by_run_rule) == 4 * len(RULES)
    assert {run for run, _ in by_run_rule} == set(runs.run_at)
    first, second, third, fourth = runs.run_at
    opened = sum(r["new_count"] for r in rows if r["run_at"] == first)
    assert opened == len(runs.snapshots[0])
    assert by_run_rule[(second, "email_mismatch")]["resolved_count"] == 1
    assert by_run_rule[(second, "name_mismatch")]["new_count"] == 1
    assert by_run_rule[(third, "email_mismatch")]["reopened_count"] == 1
    assert by_run_rule[(third, "phone_mismatch")]["repaired_count"] == 1
    assert by_run_rule[(third, "name_mismatch")]["accepted_count"] == 2
    assert by_run_rule[(fourth, "name_mismatch")]["reopened_count"] == 1
    assert by_run_rule[(fourth, "name_mismatch")]["accepted_count"] == 1
    for run, snap in zip(runs.run_at, runs.snapshots, strict=True):
        open_now = sum(1 for f in snap.values() if f["status"] == "open")
        assert sum(r["open_count"] for r in rows if r["run_at"] == run) == open_now


def test_history_counts_only_the_runs_that_published(runs: Runs) -> None:
    """A run that builds but never publishes (killed, or stopped by an integrity check) leaves
    no trace: the next run starts from the published copy's history, so a finding the failed
    run saw first is new in the next one, and the trend has no point for the failed run."""
    from orchestration.publish import publish

    warehouse = runs.warehouse
    publish(where=warehouse.paths, run_id="after-run-4", job="test")  # history as of run 4
    with duckdb.connect(str(warehouse.file)) as con:
        clean = con.execute(CLEAN_CRM_KEY_LINK).fetchone()
        assert clean is not None
        con.execute("update raw_billing.customers set name = name || '-Wójcik' where id = ?", [clean[1]])
    build(warehouse, runs.target, *SELECT_OWN)  # run 5: sees the new name, never publishes
    unpublished_run = max(r["last_seen_at"] for r in findings_by_id(warehouse.file).values())
    keys = {"contact_id": clean[0], "customer_id": clean[1]}
    seen_first = finding_id_of(warehouse.file, "name_mismatch", keys)
    assert findings_by_id(warehouse.file)[seen_first]["first_seen_at"] == unpublished_run

    build(warehouse, runs.target, *SELECT_OWN)  # run 6: starts from the published history
    after = findings_by_id(warehouse.file)
    next_run = max(r["last_seen_at"] for r in after.values())
    assert next_run > unpublished_run
    finding = after[seen_first]
    assert (finding["first_seen_at"], finding["seen_run_count"]) == (next_run, 1)
    standing = after[runs.kept_id]  # seen in runs 1-4 and 6: run 5 is not counted
    assert standing["seen_run_count"] == runs.snapshots[3][runs.kept_id]["seen_run_count"] + 1
    trend = {r["run_at"] for r in query(warehouse.file, "select run_at from reconciliation.findings_daily")}
    assert trend == {*runs.run_at, next_run}


# -- the outbox ----------------------------------------------------------------------------------

OUTBOX_SQL = """
    select outbox.*, findings.rule, findings.entity, findings.field as finding_field,
        findings.proposed_action, findings.status, findings.record_keys
    from (
        select * from reverse_etl.outbox_crm union all by name select * from reverse_etl.outbox_billing
    ) as outbox
    left join reconciliation.findings using (finding_id)
"""


def receivers(file: Path) -> dict[tuple[str, str], set[str]]:
    rows = query(file, "select entity, field, receiver_systems from seeds.ownership")
    return {
        (r["entity"], r["field"]): {s.strip() for s in (r["receiver_systems"] or "").split(",") if s.strip()}
        for r in rows
    }


def test_outbox_targets_only_receivers_named_in_ownership(built_warehouse: Warehouse) -> None:
    ownership = receivers(built_warehouse.file)
    rows = query(built_warehouse.file, OUTBOX_SQL)
    assert {r["target_system"] for r in rows} == {"crm", "billing"}
    for row in rows:
        fields = ["first_name", "last_name"] if row["finding_field"] == "name" else [row["finding_field"]]
        for owned in fields:
            assert row["target_system"] in ownership[(row["entity"], owned)], row
        assert row["proposed_action"] == f"push_to_{row['target_system']}", row
        assert row["status"] == "open", row
    pushed = query(
        built_warehouse.file,
        "select finding_id from reconciliation.findings where proposed_action like 'push_to_%'",
    )
    assert {r["finding_id"] for r in pushed} == {r["finding_id"] for r in rows}


def test_outbox_never_uses_review_links(built_warehouse: Warehouse) -> None:
    rows = query(built_warehouse.file, OUTBOX_SQL)
    review = query(built_warehouse.file, "select * from intermediate.int_identity__review")
    review_pairs = {
        frozenset({(r["left_system"], r["left_record_id"]), (r["right_system"], r["right_record_id"])})
        for r in review
    }
    under_review = {
        (r["record_system"], r["record_id"])
        for r in query(
            built_warehouse.file, "select * from intermediate.int_identity__resolved where needs_review"
        )
    }
    for row in rows:
        assert row["confidence"] >= THRESHOLD, row
        keys = json.loads(row["record_keys"])
        if "customer_id" in keys:
            contact, customer = ("crm", keys["contact_id"]), ("billing", keys["customer_id"])
            assert frozenset({contact, customer}) not in review_pairs, row
            assert contact not in under_review and customer not in under_review, row


def test_outbox_holds_back_writes_below_the_confidence_threshold(
    runs: Runs, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = runs.warehouse.copy_to(tmp_path_factory.mktemp("threshold"))
    before = query(warehouse.file, "select object_type from reverse_etl.outbox_crm")
    assert {"contacts", "meetings"} <= {r["object_type"] for r in before}
    # every CRM-billing link now counts as needing review; the meeting-event key is exact
    run_dbt(
        [
            "run",
            "--select",
            "link_crm_contacts_billing_customers+",
            "--vars",
            "{identity_confidence_threshold: 1.01}",
        ],
        where=warehouse.paths,
    )
    billing = query(warehouse.file, "select * from reverse_etl.outbox_billing")
    crm = query(warehouse.file, "select * from reverse_etl.outbox_crm")
    assert billing == []
    assert {r["object_type"] for r in crm} == {"meetings"}
    actions = query(
        warehouse.file,
        "select distinct proposed_action from reconciliation.findings_current "
        "where rule in ('email_mismatch', 'name_mismatch', 'phone_mismatch', "
        "'paid_invoice_crm_not_customer')",
    )
    assert [r["proposed_action"] for r in actions] == ["review"]


# -- every reconciliation test fails on broken input --------------------------------------------

BREAK_RULE_MODEL = """
    insert into reconciliation.{table} by name
    select 'broken' as finding_id, null as record_keys
    union all select 'broken', null
    union all select null, '{{}}'
"""
BREAK_STATEMENTS = [
    # unique + not_null of the link models' keys
    """insert into reconciliation.link_crm_contacts_billing_customers by name
       select 'broken' as customer_id, null as contact_id union all select 'broken', 'c1'
       union all select null, 'c2'""",
    """insert into reconciliation.link_meetings_current_events by name
       select 'broken' as meeting_id union all select 'broken' union all select null""",
    """insert into reconciliation.link_contact_appointments by name
       select 'broken' as contact_id, null as event_uri union all select 'broken', 'e1'
       union all select null, 'e2'""",
    # findings_current: keys, vocabularies, an id that is not the hash of its rule and keys, and
    # a finding detected now that findings does not carry as open
    """insert into reconciliation.findings_current by name
       select 'broken' as finding_id, 'no_such_rule' as rule, 'fatal' as severity,
           'delete_it' as proposed_action, '{}' as record_keys, 'equivalent' as outcome
       union all select 'broken', 'no_such_rule', 'fatal', 'delete_it', '{}', 'equivalent'
       union all select null, 'email_mismatch', 'warn', 'review', '{}', 'missing'""",
    # findings: keys, status vocabulary, missing stamps, resolved without resolved_at
    """insert into reconciliation.findings by name
       select 'broken' as finding_id, 'lost' as status, null::timestamptz as first_seen_at
       union all select 'broken', 'lost', null
       union all select null, null, now()""",
    """insert into reconciliation.findings by name
       select 'broken-resolved' as finding_id, 'resolved' as status, now() as first_seen_at,
           now() as last_seen_at, null::timestamptz as resolved_at""",
    # findings_daily: missing keys, and one run and rule twice
    """insert into reconciliation.findings_daily by name
       select null::timestamptz as run_at, null as rule""",
    """insert into reconciliation.findings_daily select * from reconciliation.findings_daily limit 1""",
]
BREAK_OUTBOX = """
    insert into reverse_etl.{table} by name
    select 'nowhere' as target_system, 'deals' as object_type, null as record_id, null as field,
        null as finding_id, 0.1 as confidence, 'equivalent' as outcome
    union all select '{target}', '{object_type}', 'r1', 'f1', 'no-such-finding', 0.1, 'malformed'
    union all select '{target}', '{object_type}', 'r1', 'f1', 'no-such-finding', 0.1, 'conflict'
"""


def own_tests(manifest_file: Path) -> set[str]:
    manifest = json.loads(manifest_file.read_text())
    return {
        uid
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "test" and node["original_file_path"].startswith(OWN_TEST_FILES)
    }


def test_every_reconciliation_test_fails_on_broken_input(
    runs: Runs, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = runs.warehouse.copy_to(tmp_path_factory.mktemp("broken"))
    with duckdb.connect(str(warehouse.file)) as con:
        for rule in RULES:
            con.execute(BREAK_RULE_MODEL.format(table=f"rec_{rule}"))
        for statement in BREAK_STATEMENTS:
            con.execute(statement)
        con.execute(BREAK_OUTBOX.format(table="outbox_crm", target="crm", object_type="contacts"))
        con.execute(BREAK_OUTBOX.format(table="outbox_billing", target="billing", object_type="customers"))
    with pytest.raises(DbtError) as failure:
        run_dbt(
            ["test", "--select", *SELECT_OWN],
            where=warehouse.paths,
            target_path=runs.target,
        )
    statuses = {r["unique_id"]: r["status"] for r in failure.value.results.get("results", [])}
    expected = own_tests(runs.target / "manifest.json")
    assert len(expected) > 60
    not_failing = {
        uid: statuses.get(uid, "not run") for uid in expected if statuses.get(uid) not in FOUND_FAILURES
    }
    assert not not_failing, f"tests that did not fail on broken input: {not_failing}"


# -- malformed values: broken input is found, clean input is not ------------------------------


def test_malformed_values_are_found_and_clean_ones_are_not(
    built_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Unparseable typed values in every kind of record staging reads typed are reported once
    each with the value as served; values that parse (a thousands separator, spaces, epoch
    milliseconds), empty ones, and the planted ones once fixed at the source are not."""
    warehouse = built_warehouse.copy_to(tmp_path_factory.mktemp("malformed"))
    planted = built_warehouse.world.truth.of_kind("malformed_value")
    with duckdb.connect(str(warehouse.file)) as con:

        def first(sql: str) -> tuple[Any, ...]:
            row = con.execute(sql).fetchone()
            assert row is not None, sql
            return row

        for a in planted:  # fixed at the source
            con.execute(
                f"update raw_crm.deals set properties__{a.keys['field']} = ? where id = ?",
                [a.detail["original"], a.keys["deal_id"]],
            )
        skip = ", ".join(f"'{a.keys['deal_id']}'" for a in planted)
        deals = [
            r[0]
            for r in con.execute(
                f"select id from raw_crm.deals where id not in ({skip}) order by id limit 5"
            ).fetchall()
        ]
        edits = {  # deal -> (property, value); only the first does not parse
            deals[0]: ("amount", " -Infinity "),
            deals[1]: ("amount", "1,500.50"),
            deals[2]: ("amount", " \t\u00a0"),
            deals[3]: ("closedate", "1735689600000"),
            deals[4]: ("closedate", " 2025-03-01 "),
        }
        for deal, (prop, value) in edits.items():
            con.execute(f"update raw_crm.deals set properties__{prop} = ? where id = ?", [value, deal])
        (meeting,) = first("select min(id) from raw_crm.meetings")
        con.execute(
            "update raw_crm.meetings set properties__hs_meeting_start_time = 'tomorrow at 3' where id = ?",
            [meeting],
        )
        (event,) = first("select min(uri) from raw_scheduling.scheduled_events")
        con.execute(
            "update raw_scheduling.scheduled_events set end_time = '2026-02-30T10:00:00Z' where uri = ?",
            [event],
        )
        pipeline, stage, stage_row = first(
            "select pipelines.id, stages.id, stages._dlt_id from raw_crm.pipelines__stages as stages "
            "join raw_crm.pipelines as pipelines on stages._dlt_parent_id = pipelines._dlt_id "
            "order by 1, 2 limit 1"
        )
        con.execute(
            "update raw_crm.pipelines__stages set metadata__probability = 'NaN' where _dlt_id = ?",
            [stage_row],
        )
        campaign, day, meta_row = first(
            "select campaign_id, date_start, _dlt_id from raw_ads.meta_campaign_insights "
            "order by date_start desc, campaign_id limit 1"
        )
        con.execute(
            "update raw_ads.meta_campaign_insights set spend = 'NaN', clicks = '12.5' where _dlt_id = ?",
            [meta_row],
        )
    run_dbt(["run", "--select", "+rec_malformed_value"], where=warehouse.paths)
    rows = query(warehouse.file, "select * from reconciliation.rec_malformed_value")
    found = {canonical(r["record_keys"]): r for r in rows}
    expected = {
        canonical({"deal_id": deals[0], "field": "amount"}): ("crm_value", " -Infinity ", "no finite number"),
        canonical({"meeting_id": meeting, "field": "hs_meeting_start_time"}): (
            "crm_value",
            "tomorrow at 3",
            "no date or time",
        ),
        canonical({"event_uri": event, "field": "end_time"}): (
            "scheduling_value",
            "2026-02-30T10:00:00Z",
            "no date or time",
        ),
        canonical({"pipeline_id": pipeline, "stage_id": stage, "field": "metadata.probability"}): (
            "crm_value",
            "NaN",
            "no finite number",
        ),
        canonical({"platform": "meta", "campaign_id": campaign, "date": day, "field": "spend"}): (
            "ads_value",
            "NaN",
            "no finite number",
        ),
        canonical({"platform": "meta", "campaign_id": campaign, "date": day, "field": "clicks"}): (
            "ads_value",
            "12.5",
            "no whole number",
        ),
    }
    assert set(found) == set(expected), sorted(set(found) ^ set(expected))
    for keys, (column, value, reason) in expected.items():
        row = found[keys]
        assert (row[column], row["reason"], row["outcome"], row["proposed_action"]) == (
            value,
            reason,
            "malformed",
            "review",
        ), row
        assert row["rule"] == "malformed_value" and row["severity"] == "warn"
    staged = query(
        warehouse.file,
        "select deal_id, amount_cents, closed_at from staging.stg_crm__deals where list_contains(?, deal_id)",
        [deals],
    )
    by_deal = {r["deal_id"]: r for r in staged}
    assert by_deal[deals[0]]["amount_cents"] is None
    assert by_deal[deals[1]]["amount_cents"] == 150050
    assert by_deal[deals[3]]["closed_at"] is not None and by_deal[deals[4]]["closed_at"] is not None
