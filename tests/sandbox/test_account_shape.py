"""The sandbox answering as accounts of other shapes (a token without a scope, a fresh account,
object types an account does not use, ad accounts listed twice, a skewed clock), the listing
faults (cut short, stuck, older copies, future stamps), and write and admin input refused the
way the real APIs refuse it."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from sandbox.config import DEFAULT_TOKENS, AccountShape
from sandbox.faults import FaultPlan
from sandbox.server import Sandbox
from sandbox.store import World
from sandbox.world import generate

HUBSPOT = {"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"}
STRIPE = {"Authorization": f"Bearer {DEFAULT_TOKENS['stripe']}"}
CALENDLY = {"Authorization": f"Bearer {DEFAULT_TOKENS['calendly']}"}
GOOGLE = {"Authorization": f"Bearer {DEFAULT_TOKENS['google-ads']}", "developer-token": "dev"}


@pytest.fixture(scope="module")
def world() -> World:
    return generate(contacts=120)


@pytest.fixture
def sandbox(world: World) -> Iterator[Sandbox]:
    with Sandbox(world) as running:
        yield running


def get(sandbox: Sandbox, api: str, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{sandbox.base_urls[api]}{path}", headers=headers, params=params, timeout=10)


def test_a_token_without_the_owners_scope_gets_hubspots_403(sandbox: Sandbox) -> None:
    sandbox.set_account(AccountShape(forbidden=["crm/owners"]))
    refused = get(sandbox, "hubspot", "/crm/v3/owners", HUBSPOT)
    assert refused.status_code == 403
    body = refused.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.owners.read"]
    assert get(sandbox, "hubspot", "/crm/v3/objects/contacts", HUBSPOT).status_code == 200


def test_a_fresh_account_lists_nothing(sandbox: Sandbox) -> None:
    sandbox.set_account(AccountShape(empty=["crm/*", "billing/*", "scheduling/*"]))
    assert get(sandbox, "hubspot", "/crm/v3/objects/deals", HUBSPOT).json()["results"] == []
    assert get(sandbox, "stripe", "/v1/payment_intents", STRIPE).json()["data"] == []
    assert get(sandbox, "stripe", "/v1/events", STRIPE).json()["data"] == []
    org = sandbox.world.scheduling.organization
    assert (
        get(sandbox, "calendly", "/scheduled_events", CALENDLY, organization=org).json()["collection"] == []
    )


def test_object_types_the_account_does_not_use_answer_as_the_apis_do(sandbox: Sandbox) -> None:
    sandbox.set_account(AccountShape(unused=["crm/meetings", "billing/subscriptions"]))
    meetings = get(sandbox, "hubspot", "/crm/v3/objects/meetings", HUBSPOT)
    assert meetings.status_code == 400
    assert meetings.json()["message"] == "Unable to infer object type from: meetings"
    subscriptions = get(sandbox, "stripe", "/v1/subscriptions", STRIPE)
    assert subscriptions.status_code == 404
    assert "Unrecognized request URL" in subscriptions.json()["error"]["message"]


def test_a_restricted_stripe_key_names_the_permission_it_lacks(sandbox: Sandbox) -> None:
    sandbox.set_account(AccountShape(forbidden=["billing/invoices"]))
    refused = get(sandbox, "stripe", "/v1/invoices", STRIPE)
    assert refused.status_code == 403
    assert "'rak_invoice_read' permission" in refused.json()["error"]["message"]


def test_discovery_can_list_an_ad_account_twice(sandbox: Sandbox) -> None:
    sandbox.set_account(AccountShape(duplicate_accounts=True))
    names = get(sandbox, "google-ads", "/v21/customers:listAccessibleCustomers", GOOGLE).json()
    assert len(names["resourceNames"]) == 2 * len(set(names["resourceNames"]))


def test_the_date_header_can_run_behind_the_world(sandbox: Sandbox) -> None:
    sandbox.set_account(AccountShape(clock_skew_seconds=-4 * 3600))
    answer = get(sandbox, "hubspot", "/crm/v3/owners", HUBSPOT)
    behind = (sandbox.world.clock() - parsedate_to_datetime(answer.headers["date"])).total_seconds()
    assert 4 * 3600 - 5 < behind < 4 * 3600 + 5


# -- listing faults ----------------------------------------------------------------------------


def test_a_truncated_listing_drops_its_next_cursor(sandbox: Sandbox) -> None:
    sandbox.faults.set(FaultPlan(truncate=["crm/contacts", "billing/customers"]))
    contacts = get(sandbox, "hubspot", "/crm/v3/objects/contacts", HUBSPOT, limit=10).json()
    assert len(contacts["results"]) == 10 and "paging" not in contacts
    customers = get(sandbox, "stripe", "/v1/customers", STRIPE, limit=10).json()
    assert len(customers["data"]) == 10 and customers["has_more"] is False


def test_a_stalled_listing_answers_the_same_page_whatever_the_cursor(sandbox: Sandbox) -> None:
    sandbox.faults.set(FaultPlan(stall=["billing/invoices"]))
    first = get(sandbox, "stripe", "/v1/invoices", STRIPE, limit=5).json()["data"]
    again = get(sandbox, "stripe", "/v1/invoices", STRIPE, limit=5, starting_after=first[-1]["id"]).json()
    assert [i["id"] for i in again["data"]] == [i["id"] for i in first]


def test_a_duplicating_listing_carries_an_older_copy_of_a_record(sandbox: Sandbox) -> None:
    sandbox.faults.set(FaultPlan(duplicate=["crm/contacts"]))
    first = get(
        sandbox, "hubspot", "/crm/v3/objects/contacts", HUBSPOT, limit=5, properties="lastmodifieddate"
    )
    results = first.json()["results"]
    assert results[0]["id"] == results[1]["id"]
    assert results[0]["properties"]["lastmodifieddate"] < results[1]["properties"]["lastmodifieddate"]
    second = get(
        sandbox,
        "hubspot",
        "/crm/v3/objects/contacts",
        HUBSPOT,
        limit=5,
        after=first.json()["paging"]["next"]["after"],
    ).json()["results"]
    assert second[-1]["id"] == results[-1]["id"]  # the previous page's last record, older


def test_a_future_fault_stamps_records_years_ahead(sandbox: Sandbox) -> None:
    sandbox.faults.set(FaultPlan(future={"crm/contacts": 1.0}))
    contact = get(
        sandbox, "hubspot", "/crm/v3/objects/contacts", HUBSPOT, limit=1, properties="lastmodifieddate"
    )
    stamp = contact.json()["results"][0]["properties"]["lastmodifieddate"]
    assert stamp[:4] > str(sandbox.world.clock().year + 2)


# -- write and admin input ---------------------------------------------------------------------


def test_writes_refuse_what_the_real_apis_refuse(sandbox: Sandbox) -> None:
    lone = b'{"properties": {"firstname": "\\ud800"}}'
    created = httpx.post(
        f"{sandbox.base_urls['hubspot']}/crm/v3/objects/contacts",
        content=lone,
        headers={**HUBSPOT, "Content-Type": "application/json"},
    )
    assert created.status_code == 400 and created.json()["category"] == "VALIDATION_ERROR"
    customer = next(iter(sandbox.world.billing.customers))["id"]
    for form, code in (
        ({"customer": customer, "amount": str(2**63), "currency": "usd"}, "parameter_invalid"),
        ({"customer": customer, "amount": "100000000", "currency": "usd"}, "amount_too_large"),
    ):
        refused = httpx.post(f"{sandbox.base_urls['stripe']}/v1/invoiceitems", data=form, headers=STRIPE)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"].get("code") == code
    surrogate = httpx.post(
        f"{sandbox.base_urls['stripe']}/v1/customers",
        content=b"name=%ED%A0%80",
        headers={**STRIPE, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert surrogate.status_code == 400
    listed = get(sandbox, "stripe", "/v1/customers", STRIPE, limit=100)
    assert listed.status_code == 200  # nothing unservable was stored


@pytest.mark.parametrize("days", [-1, 0, "2", 1.5, 100_000])
def test_advance_refuses_a_day_count_that_is_not_a_whole_positive_number(sandbox: Sandbox, days: Any) -> None:
    before = sandbox.world.now
    answer = httpx.post(f"{sandbox.url}/_admin/advance", json={"days": days})
    assert answer.status_code == 400 and "days must be" in answer.json()["message"]
    assert sandbox.world.now == before
