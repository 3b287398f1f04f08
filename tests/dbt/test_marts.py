"""Marts against staging and the sandbox truth: facts reconcile to staging totals, the golden
record follows the ownership seed, dashboards add up to the facts, and every marts test is
seen failing on broken input."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from orchestration.dbt import DbtError, run_dbt
from tests.conftest import Warehouse
from tests.dbt.test_identity import generic_breaks, own_tests, query

# a test finds the broken rows: "fail" at error severity, "warn" where drift only warns
FOUND_FAILURES = ("fail", "warn")

pytestmark = pytest.mark.slow

OWN_TEST_FILES = ("models/marts/", "tests/marts/")


def scalar(warehouse: Warehouse, sql: str) -> Any:
    with duckdb.connect(str(warehouse.file), read_only=True) as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


# -- facts reconcile to staging -----------------------------------------------------------------

RECONCILED = [
    ("marts.fct_invoices", "staging.stg_billing__invoices", "count(*)"),
    ("marts.fct_invoices", "staging.stg_billing__invoices", "sum(total_cents)"),
    ("marts.fct_invoices", "staging.stg_billing__invoices", "sum(amount_paid_cents)"),
    ("marts.fct_payments", "staging.stg_billing__charges", "count(*)"),
    ("marts.fct_payments", "staging.stg_billing__charges", "sum(amount_cents)"),
    ("marts.fct_deals", "staging.stg_crm__deals", "count(*)"),
    ("marts.fct_deals", "staging.stg_crm__deals", "sum(amount_cents)"),
    ("marts.fct_ad_spend_daily", "intermediate.int_ads__campaign_days", "sum(spend_cents)"),
    ("marts.fct_ad_spend_daily", "intermediate.int_ads__campaign_days", "sum(clicks)"),
    ("marts.fct_appointments", "staging.stg_scheduling__events", "count(event_uri)"),
]


@pytest.mark.parametrize(("fact", "staged", "measure"), RECONCILED)
def test_facts_reconcile_to_staging(built_warehouse: Warehouse, fact: str, staged: str, measure: str) -> None:
    fact_value = scalar(built_warehouse, f"select {measure} from {fact}")
    assert fact_value == scalar(built_warehouse, f"select {measure} from {staged}")
    assert fact_value


def test_ad_spend_reconciles_to_both_platforms(built_warehouse: Warehouse) -> None:
    staged = scalar(
        built_warehouse,
        "select (select sum(spend_cents) from staging.stg_ads__google_campaign_days)"
        " + (select sum(spend_cents) from staging.stg_ads__meta_campaign_days)",
    )
    assert scalar(built_warehouse, "select sum(spend_cents) from marts.fct_ad_spend_daily") == staged


def test_every_fact_row_has_a_customer(built_warehouse: Warehouse) -> None:
    for fact in ("fct_invoices", "fct_payments", "fct_deals", "fct_appointments"):
        assert scalar(built_warehouse, f"select count(*) from marts.{fact} where customer_id is null") == 0, (
            fact
        )


def test_one_dim_row_per_resolved_customer(built_warehouse: Warehouse) -> None:
    resolved = scalar(
        built_warehouse, "select count(distinct customer_id) from intermediate.int_identity__resolved"
    )
    assert scalar(built_warehouse, "select count(*) from marts.dim_customers") == resolved
    persons = len(built_warehouse.world.truth.persons)
    assert resolved == persons


# -- the golden record follows ownership --------------------------------------------------------


def _customers_by_contact(warehouse: Warehouse) -> dict[str, dict[str, object]]:
    rows = query(
        warehouse.file,
        """
        select resolved.record_id as contact_id, customers.*
        from intermediate.int_identity__resolved as resolved
        inner join marts.dim_customers as customers using (customer_id)
        where resolved.record_system = 'crm'
        """,
    )
    return {str(r["contact_id"]): r for r in rows}


def test_golden_record_takes_the_crm_side_of_each_mismatch(built_warehouse: Warehouse) -> None:
    truth = built_warehouse.world.truth
    customers = _customers_by_contact(built_warehouse)
    contacts = {
        r["contact_id"]: r
        for r in query(
            built_warehouse.file,
            "select contact_id, email, first_name, last_name, phone_e164 from staging.stg_crm__contacts",
        )
    }
    for anomaly in truth.of_kind("email_mismatch"):
        customer = customers[anomaly.keys["contact_id"]]
        assert (
            customer["email"] == anomaly.detail["crm_email"] == contacts[anomaly.keys["contact_id"]]["email"]
        )
        assert customer["email_source_system"] == "crm"
    for anomaly in truth.of_kind("phone_mismatch"):
        assert customers[anomaly.keys["contact_id"]]["phone_e164"] == anomaly.detail["crm_phone"]
    for anomaly in truth.of_kind("name_mismatch"):
        customer, contact = customers[anomaly.keys["contact_id"]], contacts[anomaly.keys["contact_id"]]
        assert (customer["first_name"], customer["last_name"]) == (
            contact["first_name"],
            contact["last_name"],
        )
        assert str(customer["full_name"]).lower() == anomaly.detail["crm_name"].lower()
    assert (
        truth.of_kind("email_mismatch") and truth.of_kind("phone_mismatch") and truth.of_kind("name_mismatch")
    )


def test_billing_owns_the_lifecycle_of_paying_customers(built_warehouse: Warehouse) -> None:
    customers = _customers_by_contact(built_warehouse)
    anomalies = built_warehouse.world.truth.of_kind("paid_invoice_crm_not_customer")
    assert anomalies
    for anomaly in anomalies:
        customer = customers[anomaly.keys["contact_id"]]
        assert customer["lifecycle_stage"] == "customer"
        assert customer["lifecycle_stage_source_system"] == "billing"
        assert customer["is_paying_customer"]


def test_billing_orphans_are_customers_the_crm_does_not_know(built_warehouse: Warehouse) -> None:
    orphans = {a.keys["customer_id"] for a in built_warehouse.world.truth.of_kind("billing_orphan")}
    rows = query(
        built_warehouse.file,
        "select primary_billing_customer_id, primary_contact_id, acquisition_channel, anchor_record_system "
        "from marts.dim_customers where crm_contact_count = 0",
    )
    assert {r["primary_billing_customer_id"] for r in rows} == orphans
    assert all(r["acquisition_channel"] == "unknown" and r["anchor_record_system"] == "billing" for r in rows)


def test_customer_since_is_the_first_paid_invoice(built_warehouse: Warehouse) -> None:
    mismatched = scalar(
        built_warehouse,
        """
        select count(*)
        from marts.dim_customers as customers
        left join (
            select customer_id, min(paid_at) as first_paid_at
            from marts.fct_invoices where invoice_status = 'paid' group by customer_id
        ) as paid using (customer_id)
        where customers.customer_since is distinct from paid.first_paid_at
        """,
    )
    assert mismatched == 0
    assert scalar(built_warehouse, "select count(*) from marts.dim_customers where is_paying_customer") > 100


def test_crm_duplicates_count_once(built_warehouse: Warehouse) -> None:
    duplicates = built_warehouse.world.truth.of_kind("crm_duplicate")
    customers = _customers_by_contact(built_warehouse)
    for anomaly in duplicates:
        customer = customers[anomaly.keys["duplicate_contact_id"]]
        assert customer["primary_contact_id"] == anomaly.keys["contact_id"]
        assert customer["has_crm_duplicates"] and customer["crm_contact_count"] == 2
    assert scalar(
        built_warehouse, "select count(*) from marts.dim_customers where has_crm_duplicates"
    ) == len(duplicates)


# -- ads and dashboards --------------------------------------------------------------------------


def test_ad_conversions_differ_from_crm_leads_only_where_the_truth_says(built_warehouse: Warehouse) -> None:
    # a day the platform has not reported yet (today in the account's time zone) is no mismatch
    rows = query(
        built_warehouse.file,
        "select platform, campaign_id, strftime(spend_date, '%Y-%m-%d') as day from marts.fct_ad_spend_daily "
        "where is_reported_by_platform and platform_conversions != crm_leads",
    )
    found = {(r["platform"], r["campaign_id"], r["day"]) for r in rows}
    expected = {
        (a.keys["platform"], a.keys["campaign_id"], a.keys["date"])
        for a in built_warehouse.world.truth.of_kind("ad_conversion_mismatch")
    }
    assert expected and found == expected


def test_funnel_adds_up_to_the_facts(built_warehouse: Warehouse) -> None:
    funnel = query(
        built_warehouse.file,
        "select sum(spend_cents) as spend, sum(leads) as leads, sum(opportunities) as opportunities, "
        "sum(won_deals) as won, sum(billed_cents) as billed, sum(collected_cents) as collected "
        "from marts.mart_funnel_by_channel_month",
    )[0]
    facts = query(
        built_warehouse.file,
        """
        select
            (select sum(spend_cents) from marts.fct_ad_spend_daily) as spend,
            (select count(*) from staging.stg_crm__contacts) - (select count(*)
                from intermediate.int_identity__resolved where is_crm_duplicate) as leads,
            (select count(*) from marts.fct_deals) as opportunities,
            (select count(*) from marts.fct_deals where is_won) as won,
            (select sum(total_cents) from marts.fct_invoices where is_billed) as billed,
            (select sum(net_amount_cents) from marts.fct_payments) as collected
        """,
    )[0]
    assert funnel == facts
    assert all(facts.values())


def test_paid_channels_carry_their_campaigns(built_warehouse: Warehouse) -> None:
    rows = query(
        built_warehouse.file,
        "select channel, platform, count(*) as n from marts.mart_funnel_by_channel_month "
        "where campaign_key is not null group by all order by all",
    )
    assert {(r["channel"], r["platform"]) for r in rows} == {
        ("paid_search", "google"),
        ("paid_social", "meta"),
    }


def test_customer_value_by_channel(built_warehouse: Warehouse) -> None:
    rows = {
        r["channel"]: r
        for r in query(built_warehouse.file, "select * from marts.mart_customer_value_by_channel")
    }
    assert sum(r["customer_count"] for r in rows.values()) == scalar(
        built_warehouse, "select count(*) from marts.dim_customers"
    )
    for channel in ("paid_search", "paid_social"):
        row = rows[channel]
        assert row["ad_spend_cents"] > 0 and row["paying_customer_count"] > 0
        assert (
            abs(row["acquisition_cost_cents"] - row["ad_spend_cents"] / row["paying_customer_count"]) <= 0.5
        )
        assert abs(row["lifetime_value_cents"] - row["collected_cents"] / row["paying_customer_count"]) <= 0.5
    assert rows["organic_search"]["ad_spend_cents"] == 0


def test_pipeline_by_stage_covers_every_stage_and_deal(built_warehouse: Warehouse) -> None:
    stages = scalar(built_warehouse, "select count(*) from staging.stg_crm__deal_stages")
    assert (
        scalar(built_warehouse, "select count(*) from marts.mart_pipeline_by_stage where is_defined_stage")
        == stages
    )
    assert scalar(built_warehouse, "select sum(deal_count) from marts.mart_pipeline_by_stage") == scalar(
        built_warehouse, "select count(*) from marts.fct_deals"
    )
    won = query(
        built_warehouse.file,
        "select sum(weighted_amount_cents) as weighted, sum(amount_cents) as amount "
        "from marts.mart_pipeline_by_stage where deal_status = 'won'",
    )[0]
    assert won["weighted"] == won["amount"] > 0


def test_revenue_by_channel_adds_up(built_warehouse: Warehouse) -> None:
    revenue = query(
        built_warehouse.file,
        "select sum(billed_cents) as billed, sum(collected_cents) as collected, "
        "sum(new_customer_count) as new_customers from marts.mart_revenue_by_channel",
    )[0]
    assert revenue["billed"] == scalar(
        built_warehouse, "select sum(total_cents) from marts.fct_invoices where is_billed"
    )
    assert revenue["collected"] == scalar(
        built_warehouse, "select sum(net_amount_cents) from marts.fct_payments"
    )
    assert revenue["new_customers"] == scalar(
        built_warehouse, "select count(*) from marts.dim_customers where is_paying_customer"
    )


# -- every marts test fails on broken input ------------------------------------------------------

SINGULAR_BREAKS = [
    # a golden email that is not the CRM's, a paying customer left a lead
    """update marts.dim_customers set email = 'someone.else@example.com', lifecycle_stage = 'lead'
       where customer_id = (
           select min(customer_id) from marts.dim_customers
           where primary_contact_id is not null and is_paying_customer
       )""",
    # a cent of spend that neither staging nor the funnel has
    """update marts.fct_ad_spend_daily set spend_cents = spend_cents + 1
       where campaign_day_key = (select min(campaign_day_key) from marts.fct_ad_spend_daily)""",
    # an invoice in another currency
    """update marts.fct_invoices set currency = 'EUR'
       where invoice_id = (select min(invoice_id) from marts.fct_invoices)""",
]


def test_every_marts_test_fails_on_broken_input(
    built_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = built_warehouse.copy_to(tmp_path_factory.mktemp("broken-marts"))
    manifest_file = built_warehouse.home / "dbt" / "target" / "manifest.json"  # from its build
    tests = own_tests(manifest_file, OWN_TEST_FILES)
    assert len(tests) > 40
    with duckdb.connect(str(warehouse.file)) as con:
        for statement in SINGULAR_BREAKS + generic_breaks(manifest_file, tests):
            con.execute(statement)
    with pytest.raises(DbtError) as failure:
        run_dbt(["test", "--select", "marts", "path:tests/marts"], where=warehouse.paths)
    statuses = {r["unique_id"]: r["status"] for r in failure.value.results.get("results", [])}
    not_failing = {
        uid: statuses.get(uid, "not run") for uid in tests if statuses.get(uid) not in FOUND_FAILURES
    }
    assert not not_failing, f"tests that did not fail on broken input: {not_failing}"


def test_raw_changes_break_the_staging_reconciliation(
    built_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = built_warehouse.copy_to(tmp_path_factory.mktemp("raw-changes"))
    with duckdb.connect(str(warehouse.file)) as con:
        # billing corrects an invoice after the marts were built; a charge arrives twice
        con.execute(
            "update raw_billing.invoices set total = total + 100 "
            "where id = (select min(id) from raw_billing.invoices)"
        )
        con.execute(
            "insert into raw_billing.charges select * replace ('dup-' || _dlt_id as _dlt_id) "
            "from raw_billing.charges limit 1"
        )
    # rebuild the payments fact only: fct_invoices stays as built, staging follows raw
    with pytest.raises(DbtError) as failure:
        run_dbt(
            ["build", "--select", "fct_payments", "assert_fct_invoices_reconcile_to_staging"],
            where=warehouse.paths,
        )
    failed = {r["unique_id"].split(".")[2] for r in failure.value.results["results"] if r["status"] == "fail"}
    assert {"assert_fct_invoices_reconcile_to_staging", "unique_fct_payments_payment_id"} <= failed
