"""Staging models on the default sandbox world: they build, keep every raw row, normalize
phones, dates and money as the truth says, and every staging test fails on broken input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import pytest

from orchestration.dbt import DbtError, run_dbt
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow

# staging model -> the raw table it reads one row per source row from (None: no 1:1 table)
ROW_SOURCES: dict[str, str | None] = {
    "stg_crm__contacts": "raw_crm.contacts",
    "stg_crm__companies": "raw_crm.companies",
    "stg_crm__deal_stages": "raw_crm.pipelines__stages",
    "stg_crm__deals": "raw_crm.deals",
    "stg_crm__meetings": "raw_crm.meetings",
    "stg_crm__owners": "raw_crm.owners",
    "stg_crm__contact_companies": "raw_crm.contacts_to_companies",
    "stg_crm__contact_deals": "raw_crm.contacts_to_deals",
    "stg_crm__contact_meetings": "raw_crm.contacts_to_meetings",
    "stg_crm__deal_companies": "raw_crm.deals_to_companies",
    "stg_billing__customers": "raw_billing.customers",
    "stg_billing__invoices": "raw_billing.invoices",
    "stg_billing__invoice_lines": "raw_billing.invoices__lines__data",
    "stg_billing__charges": "raw_billing.charges",
    "stg_billing__payment_intents": "raw_billing.payment_intents",
    "stg_billing__subscriptions": "raw_billing.subscriptions",
    # one row per invoice payment, but the default world's Stripe version (2024-06-20) has none
    "stg_billing__invoice_payments": None,
    "stg_scheduling__events": "raw_scheduling.scheduled_events",
    "stg_scheduling__invitees": "raw_scheduling.invitees",
    "stg_ads__campaigns": None,
    "stg_ads__google_campaign_days": "raw_ads.google_campaign_metrics",
    "stg_ads__meta_campaign_days": "raw_ads.meta_campaign_insights",
}


MACROS = Path(__file__).resolve().parents[2] / "dbt_project" / "macros"


def render(file: str, macro: str, *arguments: str) -> str:
    """The SQL a staging macro renders for the given SQL arguments (with the plain-SQL macros
    it calls, e.g. `tidy`, and the DuckDB spellings of the portable ones in scope)."""
    shared = "".join(
        (MACROS / name).read_text() for name in ("portable.sql", "normalize.sql") if name != file
    )
    module = jinja2.Environment().from_string(shared + (MACROS / file).read_text()).module
    return str(getattr(module, macro)(*arguments))


def macro_value(file: str, macro: str, *values: Any) -> Any:
    """Render a staging macro on literal inputs and evaluate the SQL in DuckDB."""
    literals = ["null" if v is None else f"'{v}'" if isinstance(v, str) else str(v) for v in values]
    with duckdb.connect() as connection:
        return connection.execute(f"select {render(file, macro, *literals)}").fetchall()[0][0]


@pytest.mark.parametrize(
    ("phone", "e164"),
    [
        ("(415) 555-0134", "+14155550134"),
        ("415.555.0134", "+14155550134"),
        ("+1 415 555 0134", "+14155550134"),
        ("4155550134", "+14155550134"),
        ("415-555-0134", "+14155550134"),
        ("1-415-555-0134", "+14155550134"),
        ("+14155550134", "+14155550134"),
        (" (415) 555-0134 ", "+14155550134"),
        ("call me at 415 555 0134 ext 2", "+14155550134"),
        ("415-555-0134 x70", "+14155550134"),
        ("415.555.0134 #12", "+14155550134"),
        ("+44 20 7946 0958", "+442079460958"),
        ("ask reception", None),
        ("n/a", None),
        ("555-0134", None),  # no area code: ambiguous
        ("123-456-7890", None),  # not a NANP number
        ("415 555 0134 or 415 555 0199", None),  # two numbers
        ("", None),
        (None, None),
    ],
)
def test_to_e164(phone: str | None, e164: str | None) -> None:
    assert macro_value("to_e164.sql", "to_e164", phone) == e164


@pytest.mark.parametrize(
    ("text", "parsed", "ambiguous"),
    [
        ("2026-04-15", date(2026, 4, 15), False),
        ("2026-04-15T00:00:00Z", date(2026, 4, 15), False),
        ("04/15/2026", date(2026, 4, 15), False),
        ("4/15/2026", date(2026, 4, 15), False),
        ("15/04/2026", date(2026, 4, 15), False),  # only day-first can be right
        ("04/04/2026", date(2026, 4, 4), False),  # both readings are the same day
        ("04/05/2026", None, True),
        ("13/13/2026", None, False),
        ("02/30/2026", None, False),
        ("next week", None, False),
        (None, None, False),
    ],
)
def test_parse_free_date(text: str | None, parsed: date | None, ambiguous: bool) -> None:
    assert macro_value("parse_free_date.sql", "parse_free_date", text) == parsed
    assert macro_value("parse_free_date.sql", "is_ambiguous_date", text) is ambiguous


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1500.00", 150000),
        ("1.005", 101),
        ("0.125", 13),
        ("-2.345", -235),
        (" 12.5 ", 1250),
        ("1,500.50", 150050),
        ("87.74", 8774),
        ("about 1500", None),
        (None, None),
    ],
)
def test_cents_from_decimal(amount: str | None, expected: int | None) -> None:
    assert macro_value("cents_from_decimal.sql", "cents_from_decimal", amount) == expected


@pytest.mark.parametrize(
    ("micros", "expected"),
    [(114100000, 11410), ("114105000", 11411), (114104999, 11410), (-5000, -1), (0, 0), (None, None)],
)
def test_cents_from_micros(micros: int | str | None, expected: int | None) -> None:
    assert macro_value("cents_from_micros.sql", "cents_from_micros", micros) == expected


@pytest.mark.parametrize(
    ("is_closed", "probability", "status"),
    [
        ("false", "0.2", "open"),
        ("true", "1.0", "won"),
        ("true", "0.0", "lost"),
        ("null", "0.5", None),
        ("true", "null", None),
    ],
)
def test_deal_status_from_stage(is_closed: str, probability: str, status: str | None) -> None:
    sql = render(
        "deal_status_from_stage.sql",
        "deal_status_from_stage",
        f"cast({is_closed} as boolean)",
        f"cast({probability} as double)",
    )
    with duckdb.connect() as connection:
        assert connection.execute(f"select {sql}").fetchall()[0][0] == status


# only the staging tests: `cautious` leaves out tests of later layers that also read staging
STAGING_BUILD = ["build", "--select", "staging", "--indirect-selection", "cautious"]
STAGING_FILES = ("models/staging/", "tests/staging/")


@pytest.fixture(scope="module")
def staged_build(
    loaded_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Warehouse, dict[str, Any]]:
    """A copy of the loaded warehouse with the staging layer built on it, and dbt's results."""
    warehouse = loaded_warehouse.copy_to(tmp_path_factory.mktemp("staged"))
    return warehouse, run_dbt(STAGING_BUILD, where=warehouse.paths)


@pytest.fixture(scope="module")
def staged(staged_build: tuple[Warehouse, dict[str, Any]]) -> Warehouse:
    return staged_build[0]


@pytest.fixture(scope="module")
def con(staged: Warehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(staged.file), read_only=True) as connection:
        yield connection


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_staging_tests_pass_on_clean_data(staged_build: tuple[Warehouse, dict[str, Any]]) -> None:
    statuses = {r["unique_id"]: r["status"] for r in staged_build[1]["results"]}
    tests = {uid: status for uid, status in statuses.items() if uid.startswith("test.")}
    assert len(tests) > 100
    assert set(tests.values()) == {"pass"}
    assert {statuses[f"model.trueup.{model}"] for model in ROW_SOURCES} == {"success"}


def test_every_contract_model_builds(con: duckdb.DuckDBPyConnection) -> None:
    views = {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'staging'"
        ).fetchall()
    }
    assert set(ROW_SOURCES) <= views


@pytest.mark.parametrize("model", [m for m, table in ROW_SOURCES.items() if table])
def test_row_count_equals_raw(con: duckdb.DuckDBPyConnection, model: str) -> None:
    (raw,) = con.execute(f"select count(*) from {ROW_SOURCES[model]}").fetchall()[0]
    (staged,) = con.execute(f"select count(*) from staging.{model}").fetchall()[0]
    assert staged == raw > 0


def test_campaigns_are_both_platforms_campaigns(con: duckdb.DuckDBPyConnection) -> None:
    (google, meta) = con.execute(
        "select (select count(*) from raw_ads.google_campaigns), "
        "(select count(*) from raw_ads.meta_campaigns)"
    ).fetchall()[0]
    counts = dict(
        con.execute("select platform, count(*) from staging.stg_ads__campaigns group by 1").fetchall()
    )
    assert counts == {"google": google, "meta": meta}


def test_every_model_keeps_the_load_id(con: duckdb.DuckDBPyConnection) -> None:
    for model in ROW_SOURCES:
        (missing,) = con.execute(f"select count(*) from staging.{model} where load_id is null").fetchall()[0]
        assert missing == 0, model


# -- phones, dates, emails against the truth ------------------------------------------------


def test_malformed_phones_are_parsed_or_flagged(con: duckdb.DuckDBPyConnection, staged: Warehouse) -> None:
    anomalies = staged.world.truth.of_kind("malformed_phone")
    assert anomalies
    contacts = {
        r["contact_id"]: r
        for r in rows(
            con,
            "select contact_id, phone_raw, phone_e164, is_phone_unparseable from staging.stg_crm__contacts",
        )
    }
    for anomaly in anomalies:
        contact = contacts[anomaly.keys["contact_id"]]
        assert contact["phone_raw"] == anomaly.detail["value"]
        assert contact["phone_e164"] == anomaly.detail["e164"], anomaly.detail
        assert contact["is_phone_unparseable"] is (anomaly.detail["e164"] is None)


def test_only_malformed_phones_lose_their_number(con: duckdb.DuckDBPyConnection, staged: Warehouse) -> None:
    unparseable = {
        a.keys["contact_id"]
        for a in staged.world.truth.of_kind("malformed_phone")
        if a.detail["e164"] is None
    }
    lost = {
        contact_id
        for (contact_id,) in con.execute(
            "select contact_id from staging.stg_crm__contacts "
            "where nullif(trim(phone_raw), '') is not null and phone_e164 is null"
        ).fetchall()
    }
    assert lost == unparseable


def test_malformed_phone_and_date_flags_find_exactly_the_truths(
    con: duckdb.DuckDBPyConnection, staged: Warehouse
) -> None:
    truth = staged.world.truth
    flagged_phones = {
        contact_id
        for (contact_id,) in con.execute(
            "select contact_id from staging.stg_crm__contacts "
            "where is_phone_free_text or is_phone_unparseable"
        ).fetchall()
    }
    # a raw date that is not the ISO text of the parsed date was typed some other way
    flagged_dates = {
        contact_id
        for (contact_id,) in con.execute(
            "select contact_id from staging.stg_crm__contact_dates "
            "where value_raw is distinct from cast(value_date as varchar)"
        ).fetchall()
    }
    assert flagged_phones == {a.keys["contact_id"] for a in truth.of_kind("malformed_phone")}
    assert flagged_dates == {a.keys["contact_id"] for a in truth.of_kind("malformed_date")}


def test_unparseable_typed_values_are_null_and_flagged_exactly_where_planted(
    con: duckdb.DuckDBPyConnection, staged: Warehouse
) -> None:
    """An amount that is no finite number and a close date that is no date stay null, keep
    their text and are flagged; every other deal's amount and close date parse."""
    rows = con.execute(
        "select deal_id, amount_cents, amount_raw, is_amount_unparseable, closed_at, closedate_raw, "
        "is_close_date_unparseable from staging.stg_crm__deals"
    ).fetchall()
    flagged = set()
    for deal_id, cents, amount_raw, bad_amount, closed_at, closedate_raw, bad_close in rows:
        assert bad_amount == (cents is None), (deal_id, amount_raw)
        assert bad_close == (closed_at is None), (deal_id, closedate_raw)
        flagged |= {(deal_id, "amount", amount_raw)} if bad_amount else set()
        flagged |= {(deal_id, "closedate", closedate_raw)} if bad_close else set()
    planted = staged.world.truth.of_kind("malformed_value")
    assert planted
    assert flagged == {(a.keys["deal_id"], a.keys["field"], a.detail["value"]) for a in planted}


def test_phones_in_every_format_are_the_persons_number(
    con: duckdb.DuckDBPyConnection, staged: Warehouse
) -> None:
    truth = staged.world.truth
    malformed = {a.keys["contact_id"] for a in truth.of_kind("malformed_phone")}
    mismatched = {a.keys["customer_id"]: a.detail["billing_phone"] for a in truth.of_kind("phone_mismatch")}
    crm = dict(con.execute("select contact_id, phone_e164 from staging.stg_crm__contacts").fetchall())
    billing = dict(
        con.execute("select customer_id, phone_e164 from staging.stg_billing__customers").fetchall()
    )
    scheduling = dict(
        con.execute("select invitee_uri, phone_e164 from staging.stg_scheduling__invitees").fetchall()
    )
    checked = 0
    for person in truth.persons:
        if not person.phone_e164:
            continue
        for contact_id in person.crm_contact_ids:
            if contact_id in crm and contact_id not in malformed and crm[contact_id] is not None:
                assert crm[contact_id] == person.phone_e164, contact_id
                checked += 1
        for customer_id in person.billing_customer_ids:
            if billing.get(customer_id) is not None:
                assert billing[customer_id] == mismatched.get(customer_id, person.phone_e164), customer_id
                checked += 1
        for invitee_uri in person.scheduling_invitee_uris:
            if scheduling.get(invitee_uri) is not None:
                assert scheduling[invitee_uri] == person.phone_e164, invitee_uri
                checked += 1
    assert checked > 500


def test_malformed_dates_are_parsed_or_flagged(con: duckdb.DuckDBPyConnection, staged: Warehouse) -> None:
    anomalies = staged.world.truth.of_kind("malformed_date")
    assert anomalies
    dates = {
        (r["contact_id"], r["field"]): r
        for r in rows(
            con,
            "select contact_id, field, value_raw, value_date, is_ambiguous "
            "from staging.stg_crm__contact_dates",
        )
    }
    for anomaly in anomalies:
        date_row = dates[(anomaly.keys["contact_id"], anomaly.keys["field"])]
        assert date_row["value_raw"] == anomaly.detail["value"]
        parsed = anomaly.detail["parsed"]
        assert (date_row["value_date"] and date_row["value_date"].isoformat()) == parsed
        assert date_row["is_ambiguous"] is (parsed is None)


def test_well_formed_trial_dates_parse(con: duckdb.DuckDBPyConnection) -> None:
    (unparsed, seen) = con.execute(
        "select count(*) filter (where is_iso_date and cast(value_date as varchar) "
        "is distinct from value_raw), count(*) filter (where is_iso_date) "
        "from staging.stg_crm__contact_dates"
    ).fetchall()[0]
    assert (unparsed, seen > 100) == (0, True)


def test_emails_are_trimmed_and_lower_cased(con: duckdb.DuckDBPyConnection) -> None:
    for model in ("stg_crm__contacts", "stg_billing__customers", "stg_scheduling__invitees"):
        (bad,) = con.execute(
            f"select count(*) from staging.{model} "
            "where email is distinct from nullif(lower(trim(email_raw)), '')"
        ).fetchall()[0]
        (noisy,) = con.execute(f"select count(*) from staging.{model} where email <> email_raw").fetchall()[0]
        assert bad == 0, model
        assert noisy > 0, model  # the sandbox's case and whitespace noise is really there


# -- statuses ---------------------------------------------------------------------------------


def test_deal_status_follows_stage_metadata(con: duckdb.DuckDBPyConnection) -> None:
    stages = rows(
        con, "select stage_id, is_closed, probability, deal_status from staging.stg_crm__deal_stages"
    )
    assert {s["deal_status"] for s in stages} == {"open", "won", "lost"}
    for stage in stages:
        expected = "open" if not stage["is_closed"] else ("won" if stage["probability"] == 1.0 else "lost")
        assert stage["deal_status"] == expected, stage
    # the custom pipeline's numeric stage ids get their outcome the same way
    won = {s["stage_id"] for s in stages if s["deal_status"] == "won"}
    assert "closedwon" in won and any(stage_id.isdigit() for stage_id in won)


def test_statuses_are_translated(con: duckdb.DuckDBPyConnection) -> None:
    pairs = {
        "stg_crm__meetings": (
            "outcome_raw",
            "appointment_status",
            {"COMPLETED": "completed", "NO_SHOW": "no_show"},
        ),
        "stg_scheduling__events": ("event_status_raw", "appointment_status", {"active": "scheduled"}),
        "stg_billing__invoices": ("invoice_status_raw", "invoice_status", {"paid": "paid"}),
        "stg_crm__contacts": (
            "lifecycle_stage_raw",
            "lifecycle_stage",
            {"marketingqualifiedlead": "marketing_qualified", "customer": "customer"},
        ),
    }
    for model, (raw, translated, expected) in pairs.items():
        seen = dict(con.execute(f"select distinct {raw}, {translated} from staging.{model}").fetchall())
        for raw_value, value in expected.items():
            assert seen[raw_value] == value, (model, raw_value)


# -- money ------------------------------------------------------------------------------------


def cents(amount: str) -> int | None:
    """Integer cents of a decimal text; None for text that is no finite number."""
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        return None
    return int(value.scaleb(2).quantize(Decimal(1), rounding=ROUND_HALF_UP)) if value.is_finite() else None


def test_deal_amounts_to_cents(con: duckdb.DuckDBPyConnection) -> None:
    deals = rows(con, "select amount_raw, amount_cents, currency from staging.stg_crm__deals")
    assert any(d["amount_raw"] for d in deals)
    for deal in deals:
        if deal["amount_raw"]:
            assert deal["amount_cents"] == cents(deal["amount_raw"])
            assert deal["currency"] == "USD"


def test_google_cost_micros_to_cents(con: duckdb.DuckDBPyConnection) -> None:
    days = rows(
        con,
        "select d.spend_cents, r.metrics__cost_micros as micros from staging.stg_ads__google_campaign_days d "
        "join raw_ads.google_campaign_metrics r on d.campaign_id = r.campaign__id and "
        "cast(d.spend_date as varchar) = r.segments__date",
    )
    assert days
    for day in days:
        expected = int((Decimal(int(day["micros"])) / 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert day["spend_cents"] == expected


def test_meta_spend_and_leads(con: duckdb.DuckDBPyConnection) -> None:
    days = rows(
        con,
        "select d.spend_cents, d.conversions, d.spend_raw, "
        "(select sum(cast(a.value as double)) from raw_ads.meta_campaign_insights__actions a "
        " where a._dlt_parent_id = r._dlt_id and a.action_type = 'lead') as leads "
        "from staging.stg_ads__meta_campaign_days d join raw_ads.meta_campaign_insights r "
        "on d.campaign_id = r.campaign_id and cast(d.spend_date as varchar) = r.date_start",
    )
    assert days and any(d["leads"] for d in days)
    for day in days:
        assert day["spend_cents"] == cents(day["spend_raw"])
        assert day["conversions"] == (day["leads"] or 0)


def test_stripe_amounts_and_timestamps_as_they_are(con: duckdb.DuckDBPyConnection, staged: Warehouse) -> None:
    invoice = next(i for i in staged.world.billing.invoices if i["status"] == "paid")
    staged_invoice = rows(
        con,
        "select total_cents, amount_paid_cents, currency, epoch(created_at) as created, "
        f"epoch(paid_at) as paid from staging.stg_billing__invoices where invoice_id = '{invoice['id']}'",
    )[0]
    assert staged_invoice["total_cents"] == invoice["total"]
    assert staged_invoice["amount_paid_cents"] == invoice["amount_paid"]
    assert staged_invoice["currency"] == invoice["currency"].upper()
    assert staged_invoice["created"] == invoice["created"]
    assert staged_invoice["paid"] == invoice["status_transitions"]["paid_at"]


def test_ad_days_carry_the_account_time_zone(con: duckdb.DuckDBPyConnection) -> None:
    zones = dict(
        con.execute(
            "select 'google', customer__time_zone from raw_ads.google_customers "
            "union all select 'meta', timezone_name from raw_ads.meta_accounts"
        ).fetchall()
    )
    for model in ("stg_ads__google_campaign_days", "stg_ads__meta_campaign_days"):
        seen = dict(
            con.execute(f"select distinct platform, account_time_zone from staging.{model}").fetchall()
        )
        for platform, zone in seen.items():
            assert zone == zones[platform]


# -- every staging test fails on broken input ---------------------------------------------------

# One raw edit per test (several tests may trip on the same edit). Rows are picked by
# position so no two edits touch the same row; `NN` drops a NOT NULL the loader declared,
# so a key can go missing. Each entry names the tests the edit must make fail.


def nth(table: str, key: str, n: int) -> str:
    return f"(select {key} from {table} order by {key} limit 1 offset {n})"


def copy_row(table: str, key: str, n: int, replace: str = "") -> str:
    columns = f" replace ({replace})" if replace else ""
    return f"insert into {table} select *{columns} from {table} order by {key} limit 1 offset {n}"


def update(table: str, key: str, n: int, assignment: str) -> str:
    return f"update {table} set {assignment} where {key} = {nth(table, key, n)}"


def keys_broken(model: str, table: str, key: str) -> list[tuple[list[str], list[str]]]:
    """A duplicated raw row and a row without its key."""
    column = model_key(model)
    return [
        ([copy_row(table, key, 0)], [f"unique {model}.{column}"]),
        (
            [
                f"alter table {table} alter column {key} drop not null",
                copy_row(table, key, 1, f"null as {key}"),
            ],
            [f"not_null {model}.{column}"],
        ),
    ]


def model_key(model: str) -> str:
    return {
        "stg_crm__contacts": "contact_id",
        "stg_crm__companies": "company_id",
        "stg_crm__deals": "deal_id",
        "stg_crm__meetings": "meeting_id",
        "stg_crm__owners": "owner_id",
        "stg_billing__customers": "customer_id",
        "stg_billing__invoices": "invoice_id",
        "stg_billing__charges": "charge_id",
        "stg_billing__payment_intents": "payment_intent_id",
        "stg_billing__subscriptions": "subscription_id",
        "stg_scheduling__events": "event_uri",
        "stg_scheduling__invitees": "invitee_uri",
    }[model]


def pairs_broken(model: str, table: str, left: str, right: str) -> list[tuple[list[str], list[str]]]:
    """An association duplicated, missing either side, or naming a record that does not exist."""
    return [
        ([copy_row(table, left, 0)], [f"unique_{model}_pair"]),
        (
            [
                f"alter table {table} alter column {left} drop not null",
                copy_row(table, left, 1, f"null as {left}"),
            ],
            [f"not_null {model}.{left}"],
        ),
        (
            [
                f"alter table {table} alter column {right} drop not null",
                copy_row(table, left, 2, f"null as {right}"),
            ],
            [f"not_null {model}.{right}"],
        ),
        ([copy_row(table, left, 3, f"'999999999' as {left}")], [f"relationships {model}.{left}"]),
        ([copy_row(table, left, 4, f"'999999999' as {right}")], [f"relationships {model}.{right}"]),
    ]


def ad_days_broken(
    model: str, table: str, account: str, campaign: str, day: str
) -> list[tuple[list[str], list[str]]]:
    """Campaign days duplicated, missing a key part, or of an unknown campaign and account."""
    broken: list[tuple[list[str], list[str]]] = [
        ([copy_row(table, "_dlt_id", 0)], [f"unique_{model}_account_campaign_date"]),
        (
            [copy_row(table, "_dlt_id", 5, f"'999' as {campaign}, '000' as {account}")],
            [f"relationships {model}.campaign_key", f"not_null {model}.account_time_zone"],
        ),
    ]
    for n, (column, staged_column) in enumerate(
        ((account, "account_id"), (campaign, "campaign_id"), (day, "spend_date"))
    ):
        broken.append(
            (
                [
                    f"alter table {table} alter column {column} drop not null",
                    copy_row(table, "_dlt_id", n + 1, f"null as {column}"),
                ],
                [f"not_null {model}.{staged_column}"],
            )
        )
    return broken


def status_broken(
    model: str, table: str, key: str, raw: str, column: str, seed: str | None, first: int = 2
) -> list[tuple[list[str], list[str]]]:
    """A raw status with no translation (null), and, through a seed row, one outside the vocabulary."""
    if seed is None:  # statuses kept as the source's, lower-cased
        return [
            ([update(table, key, first, f"{raw} = null")], [f"not_null {model}.{column}"]),
            (
                [update(table, key, first + 1, f"{raw} = 'not_a_status'")],
                [f"accepted_values {model}.{column}"],
            ),
        ]
    return [
        ([update(table, key, first, f"{raw} = 'NOT_A_STATUS'")], [f"not_null {model}.{column}"]),
        (
            [f"insert into {seed}", update(table, key, first + 1, f"{raw} = 'NEW_STATUS'")],
            [f"accepted_values {model}.{column}"],
        ),
    ]


def broken_inputs() -> list[tuple[list[str], list[str]]]:
    stages = "raw_crm.pipelines__stages"
    broken: list[tuple[list[str], list[str]]] = []
    # CRM
    broken += keys_broken("stg_crm__contacts", "raw_crm.contacts", "id")
    dated = "raw_crm.contacts where properties__trial_start_date is not null order by id"
    broken += [
        (
            [f"insert into raw_crm.contacts select * from {dated} limit 1 offset 5"],
            ["unique_stg_crm__contact_dates_contact_field", "unique stg_crm__contacts.contact_id"],
        ),
        (
            [f"insert into raw_crm.contacts select * replace (null as id) from {dated} limit 1 offset 6"],
            ["not_null stg_crm__contact_dates.contact_id", "not_null stg_crm__contacts.contact_id"],
        ),
    ]
    broken += keys_broken("stg_crm__companies", "raw_crm.companies", "id")
    broken += keys_broken("stg_crm__deals", "raw_crm.deals", "id")
    broken += keys_broken("stg_crm__meetings", "raw_crm.meetings", "id")
    broken += keys_broken("stg_crm__owners", "raw_crm.owners", "id")
    broken += [
        (
            [update("raw_crm.contacts", "id", 2, "properties__lifecyclestage = 'not_a_stage'")],
            ["not_null stg_crm__contacts.lifecycle_stage"],
        ),
        (
            [
                "insert into seeds.lifecycle_stages values ('crm', 'new_stage', 'champion', 7)",
                update("raw_crm.contacts", "id", 3, "properties__lifecyclestage = 'new_stage'"),
            ],
            ["accepted_values stg_crm__contacts.lifecycle_stage"],
        ),
        (
            [f"insert into {stages} select * from {stages} where id = 'closedwon'"],
            ["unique stg_crm__deal_stages.deal_stage_key"],
        ),
        (
            [copy_row(stages, "_dlt_id", 0, "null as id, 'stage_without_id' as _dlt_id")],
            ["not_null stg_crm__deal_stages.stage_id", "not_null stg_crm__deal_stages.deal_stage_key"],
        ),
        (
            [
                "alter table raw_crm.pipelines alter column id drop not null",
                copy_row("raw_crm.pipelines", "id", 0, "null as id, 'pipeline_without_id' as _dlt_id"),
                copy_row(
                    stages, "_dlt_id", 0, "'orphan_stage' as id, 'pipeline_without_id' as _dlt_parent_id"
                ),
            ],
            ["not_null stg_crm__deal_stages.pipeline_id"],
        ),
        (
            [copy_row(stages, "_dlt_id", 0, "'stage_without_metadata' as id, null as metadata__is_closed")],
            ["not_null stg_crm__deal_stages.deal_status"],
        ),
        (
            [update("raw_crm.deals", "id", 2, "properties__dealstage = 'not_a_stage'")],
            ["relationships stg_crm__deals.deal_stage_key", "not_null stg_crm__deals.deal_status"],
        ),
        (
            [update("raw_crm.deals", "id", 3, "properties__amount = '123456789012345678901.00'")],
            ["assert_decimal_amounts_parse_to_cents"],
        ),
        (
            [update("raw_crm.deals", "id", 4, "properties__deal_currency_code = 'dollars'")],
            ["assert_money_has_an_iso_currency"],
        ),
        *status_broken(
            "stg_crm__meetings",
            "raw_crm.meetings",
            "id",
            "properties__hs_meeting_outcome",
            "appointment_status",
            "seeds.appointment_statuses values ('crm', 'NEW_STATUS', 'postponed')",
        ),
        (
            [
                update(
                    "raw_crm.meetings",
                    "id",
                    4,
                    "properties__hs_meeting_end_time = '2000-01-01T00:00:00.000Z'",
                )
            ],
            ["assert_appointments_end_after_start"],
        ),
    ]
    broken += pairs_broken(
        "stg_crm__contact_companies", "raw_crm.contacts_to_companies", "contact_id", "company_id"
    )
    broken += pairs_broken("stg_crm__contact_deals", "raw_crm.contacts_to_deals", "contact_id", "deal_id")
    broken += pairs_broken(
        "stg_crm__contact_meetings", "raw_crm.contacts_to_meetings", "contact_id", "meeting_id"
    )
    broken += pairs_broken("stg_crm__deal_companies", "raw_crm.deals_to_companies", "deal_id", "company_id")
    broken += billing_broken() + scheduling_broken() + ads_broken()
    return broken


INVOICE_PAYMENT_COLUMNS = (
    "id varchar, object varchar, invoice varchar, status varchar, is_default boolean, "
    "payment__type varchar, payment__payment_intent varchar, payment__charge varchar, amount_paid bigint, "
    "amount_requested bigint, currency varchar, created bigint, status_transitions__paid_at bigint, "
    "status_transitions__canceled_at bigint, livemode boolean, _dlt_load_id varchar, _dlt_id varchar"
)


def invoice_payments_broken() -> list[tuple[list[str], list[str]]]:
    """Invoice payments (an account on Stripe 2025-03-31.basil or later) duplicated, without id or
    invoice, of an invoice that does not exist, or in a status Stripe does not have."""
    table = "raw_billing.invoice_payments"
    invoice = "(select id from raw_billing.invoices order by id limit 1)"

    def row(payment_id: str, invoice_id: str, status: str = "'paid'") -> str:
        return (
            f"insert into {table} (id, object, invoice, status, is_default, currency, amount_requested, "
            f"created, _dlt_load_id, _dlt_id) values ({payment_id}, 'invoice_payment', {invoice_id}, "
            f"{status}, false, 'usd', 100, 1700000000, '1', md5(random()::varchar))"
        )

    model = "stg_billing__invoice_payments"
    create = f"create table if not exists {table} ({INVOICE_PAYMENT_COLUMNS})"
    twice = [create, row("'inpay_twice'", invoice), row("'inpay_twice'", invoice)]
    return [
        (twice, [f"unique {model}.invoice_payment_id"]),
        (
            [f"alter table {table} alter column id drop not null", row("null", invoice)],
            [f"not_null {model}.invoice_payment_id"],
        ),
        ([row("'inpay_no_invoice'", "null")], [f"not_null {model}.invoice_id"]),
        ([row("'inpay_stray'", "'in_no_such_invoice'")], [f"relationships {model}.invoice_id"]),
        (
            [row("'inpay_refunded'", invoice, "'refunded'")],
            [f"accepted_values {model}.invoice_payment_status"],
        ),
    ]


def billing_broken() -> list[tuple[list[str], list[str]]]:
    invoices, lines = "raw_billing.invoices", "raw_billing.invoices__lines__data"
    broken: list[tuple[list[str], list[str]]] = invoice_payments_broken()
    for model, table in (
        ("stg_billing__customers", "raw_billing.customers"),
        ("stg_billing__invoices", invoices),
        ("stg_billing__charges", "raw_billing.charges"),
        ("stg_billing__payment_intents", "raw_billing.payment_intents"),
        ("stg_billing__subscriptions", "raw_billing.subscriptions"),
    ):
        broken += keys_broken(model, table, "id")
    for model, table, parents in (
        (
            "stg_billing__invoices",
            invoices,
            (("customer", "customer_id"), ("subscription", "subscription_id")),
        ),
        (
            "stg_billing__charges",
            "raw_billing.charges",
            (("customer", "customer_id"), ("invoice", "invoice_id")),
        ),
        (
            "stg_billing__payment_intents",
            "raw_billing.payment_intents",
            (("customer", "customer_id"), ("invoice", "invoice_id")),
        ),
        ("stg_billing__subscriptions", "raw_billing.subscriptions", (("customer", "customer_id"),)),
    ):
        for n, (raw, column) in enumerate(parents):
            broken.append(
                (
                    [update(table, "id", 10 + n, f"{raw} = 'no_such_{raw}'")],
                    [f"relationships {model}.{column}"],
                )
            )
    for model, table in (
        ("stg_billing__invoices", invoices),
        ("stg_billing__subscriptions", "raw_billing.subscriptions"),
    ):
        broken.append(([update(table, "id", 12, "customer = null")], [f"not_null {model}.customer_id"]))
    broken += status_broken(
        "stg_billing__invoices",
        invoices,
        "id",
        "status",
        "invoice_status",
        "seeds.invoice_statuses values ('billing', 'new_status', 'refunded', true, false)",
        first=14,
    )
    broken += status_broken(
        "stg_billing__charges", "raw_billing.charges", "id", "status", "charge_status", None, 14
    )
    broken += status_broken(
        "stg_billing__payment_intents",
        "raw_billing.payment_intents",
        "id",
        "status",
        "payment_intent_status",
        None,
        14,
    )
    broken += status_broken(
        "stg_billing__subscriptions",
        "raw_billing.subscriptions",
        "id",
        "status",
        "subscription_status",
        None,
        14,
    )
    broken += [
        ([copy_row(lines, "_dlt_id", 0)], ["unique stg_billing__invoice_lines.invoice_line_id"]),
        ([update(lines, "_dlt_id", 1, "id = null")], ["not_null stg_billing__invoice_lines.invoice_line_id"]),
        (
            [update(lines, "_dlt_id", 2, "_dlt_parent_id = 'no_such_invoice'")],
            ["not_null stg_billing__invoice_lines.invoice_id"],
        ),
        (
            [update(lines, "_dlt_id", 3, "amount = amount + 1")],
            ["assert_invoice_lines_sum_to_invoice_subtotal"],
        ),
    ]
    return broken


def scheduling_broken() -> list[tuple[list[str], list[str]]]:
    events, invitees = "raw_scheduling.scheduled_events", "raw_scheduling.invitees"
    return [
        *keys_broken("stg_scheduling__events", events, "uri"),
        *keys_broken("stg_scheduling__invitees", invitees, "uri"),
        *status_broken(
            "stg_scheduling__events",
            events,
            "uri",
            "status",
            "appointment_status",
            "seeds.appointment_statuses values ('scheduling', 'new_status', 'tentative')",
        ),
        ([update(events, "uri", 4, "start_time = null")], ["not_null stg_scheduling__events.start_at"]),
        ([update(invitees, "uri", 2, "event = null")], ["not_null stg_scheduling__invitees.event_uri"]),
        (
            [update(invitees, "uri", 3, "event = 'https://api.calendly.com/scheduled_events/NOSUCH'")],
            ["relationships stg_scheduling__invitees.event_uri"],
        ),
        *status_broken("stg_scheduling__invitees", invitees, "uri", "status", "invitee_status", None, 4),
    ]


def ads_broken() -> list[tuple[list[str], list[str]]]:
    google, meta = "raw_ads.google_campaign_metrics", "raw_ads.meta_campaign_insights"
    campaigns = "raw_ads.google_campaigns"
    return [
        ([copy_row(campaigns, "_dlt_id", 0)], ["unique stg_ads__campaigns.campaign_key"]),
        (
            [
                f"alter table {campaigns} alter column campaign__id drop not null",
                copy_row(campaigns, "_dlt_id", 1, "null as campaign__id"),
            ],
            ["not_null stg_ads__campaigns.campaign_key", "not_null stg_ads__campaigns.campaign_id"],
        ),
        (
            [
                f"alter table {campaigns} alter column customer__id drop not null",
                copy_row(
                    campaigns,
                    "_dlt_id",
                    2,
                    "null as customer__id, 'campaign_without_account' as campaign__id",
                ),
            ],
            ["not_null stg_ads__campaigns.account_id", "not_null stg_ads__campaigns.account_time_zone"],
        ),
        (
            [update("raw_ads.meta_campaigns", "id", 0, "status = 'LIMITED'")],
            ["not_null stg_ads__campaigns.campaign_status"],
        ),
        *ad_days_broken(
            "stg_ads__google_campaign_days", google, "customer__id", "campaign__id", "segments__date"
        ),
        *ad_days_broken("stg_ads__meta_campaign_days", meta, "account_id", "campaign_id", "date_start"),
        ([update(google, "_dlt_id", 6, "metrics__clicks = -1")], ["assert_ad_metrics_are_not_negative"]),
        (
            [update(meta, "_dlt_id", 6, "spend = '123456789012345678901.00'")],
            ["assert_decimal_amounts_parse_to_cents"],
        ),
        (
            [update(google, "_dlt_id", 7, "customer__currency_code = 'us dollars'")],
            ["assert_money_has_an_iso_currency"],
        ),
    ]


def label_of(node: dict[str, Any]) -> str:
    """`kind model.column` for a generic column test, else the test's name."""
    meta = node.get("test_metadata") or {}
    column = node.get("column_name") or ""
    model = (node.get("attached_node") or "").rsplit(".", 1)[-1]
    if meta.get("name") and column.isidentifier():
        return f"{meta['name']} {model}.{column}"
    return node["name"]


# dlt creates `metadata__*` columns only once a record carries the key
OPTIONAL_COLUMNS = {
    "raw_billing.customers": "metadata__hubspot_contact_id",
    "raw_billing.invoices": "metadata__hubspot_deal_id",
}


@dataclass
class BrokenRun:
    warehouse: Warehouse
    tests: dict[str, str]  # test label -> dbt status
    models: dict[str, str]  # model name -> dbt status


@pytest.fixture(scope="module")
def broken_run(loaded_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> BrokenRun:
    """Every broken input at once in a private copy (optional columns dropped too), built."""
    warehouse = loaded_warehouse.copy_to(tmp_path_factory.mktemp("broken"))
    with duckdb.connect(str(warehouse.file)) as connection:
        for statements, _ in broken_inputs():
            for statement in statements:
                connection.execute(statement)
        for table, column in OPTIONAL_COLUMNS.items():
            connection.execute(f"alter table {table} drop column {column}")
    with pytest.raises(DbtError) as failure:
        run_dbt(STAGING_BUILD, where=warehouse.paths)
    # the error names the failing tests
    assert "unique_stg_crm__contacts_contact_id" in str(failure.value)
    nodes = json.loads((warehouse.home / "dbt" / "target" / "manifest.json").read_text())["nodes"]
    results = [(nodes[r["unique_id"]], r["status"]) for r in failure.value.results["results"]]
    return BrokenRun(
        warehouse=warehouse,
        tests={
            label_of(node): status
            for node, status in results
            if node["resource_type"] == "test" and node["original_file_path"].startswith(STAGING_FILES)
        },
        models={node["name"]: status for node, status in results if node["resource_type"] == "model"},
    )


def test_every_staging_test_has_a_broken_input(broken_run: BrokenRun) -> None:
    covered = {name for _, names in broken_inputs() for name in names}
    assert len(broken_run.tests) > 100
    assert set(broken_run.tests) - covered == set()


@pytest.mark.parametrize("names", [names for _, names in broken_inputs()], ids=lambda names: names[0])
def test_broken_input_fails_its_test(broken_run: BrokenRun, names: list[str]) -> None:
    for name in names:
        # "warn": a test that only warns (drift, e.g. an account's own lifecycle stage) found them
        assert broken_run.tests.get(name) in ("fail", "warn"), (name, broken_run.tests.get(name))


def test_models_build_on_broken_input_and_without_optional_columns(broken_run: BrokenRun) -> None:
    assert {broken_run.models[model] for model in ROW_SOURCES} == {"success"}
    with duckdb.connect(str(broken_run.warehouse.file), read_only=True) as connection:
        linked = connection.execute(
            "select (select count(crm_contact_id) from staging.stg_billing__customers), "
            "(select count(crm_deal_id) from staging.stg_billing__invoices)"
        ).fetchall()[0]
    assert linked == (0, 0)
