"""Account setups (sandbox/accounts.py): each switch changes the accounts as WORLD.md says, and the
ground truth stays exact under it, also after the world advances."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import world as world_module
from sandbox.accounts import (
    BUILTIN_NEXT_APPOINTMENT,
    CURRENT_STRIPE_VERSION,
    CUSTOM_NEXT_APPOINTMENT,
    CUSTOM_UTM_CAMPAIGN,
    AccountSetup,
    mapping_for,
)
from sandbox.config import DEFAULT_TOKENS, STRIPE_API_VERSION
from sandbox.server import Sandbox
from sandbox.store import World
from sandbox.world.common import to_ms

CONTACTS = 600
SEED = 5


def _world(text: str, days: int = 0) -> World:
    world = world_module.generate(seed=SEED, contacts=CONTACTS, setup=AccountSetup.parse(text))
    if days:
        world_module.advance(world, days)
    return world


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).lower()


def test_switches_by_name():
    assert AccountSetup.parse("") == AccountSetup() and AccountSetup().is_default
    every = AccountSetup.parse("all")
    assert every == AccountSetup.every_switch()
    assert every.switches == ["custom_properties", "no_metadata_links", "no_crm_meetings", "current_stripe"]
    assert AccountSetup.parse("no_crm_meetings").next_appointment_property == BUILTIN_NEXT_APPOINTMENT
    assert every.next_appointment_property == CUSTOM_NEXT_APPOINTMENT
    with pytest.raises(ValueError, match="unknown account setup switch 'no_deals'"):
        AccountSetup.parse("no_deals")
    assert mapping_for(every)["mapping"]["crm_contact_properties"]["utm_campaign"] == CUSTOM_UTM_CAMPAIGN


# -- no CRM meetings: a date property holds the next appointment ---------------------------------


def _property_events(world: World) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None, str]]:
    """Per contact with a next appointment: (contact, the person's event at that time, value)."""
    name = world.setup.next_appointment_property
    assert name is not None
    starts: dict[tuple[str, int], dict[str, Any]] = {}
    for person in world.truth.persons:
        for uri in person.scheduling_invitee_uris:
            invitee = world.scheduling.invitees.get(uri)
            event = world.scheduling.events.get(invitee["event"]) if invitee else None
            for cid in person.crm_contact_ids[:1]:
                if event is not None:
                    starts[(cid, to_ms(event["start_time"]))] = event
    for contact in world.crm.contacts:
        value = contact["properties"].get(name)
        if value:
            yield contact, starts.get((contact["id"], to_ms(value))), value


@pytest.mark.parametrize("days", [0, 3])
def test_without_meetings_the_property_shows_the_booking_or_a_planted_mismatch(days: int):
    world = _world("no_crm_meetings", days)
    assert len(world.crm.meetings) == 0
    assert not any(world.crm.associations.get(("contacts", "meetings"), {}).values())
    planted = {
        (a.keys["contact_id"], a.keys["event_uri"]): a
        for a in world.truth.anomalies
        if a.active and a.kind.startswith("appointment_")
    }
    assert {a.kind for a in planted.values()} == {"appointment_time_mismatch", "appointment_status_mismatch"}
    assert all(set(a.keys) == {"contact_id", "event_uri"} for a in planted.values())
    shown = 0
    for contact, event, _ in _property_events(world):
        assert event is not None, f"contact {contact['id']}: its next appointment is no event of the person"
        key = (contact["id"], event["uri"])
        if event["status"] == "canceled":
            assert key in planted, f"contact {contact['id']} shows a canceled event no anomaly names"
        else:
            assert key not in planted
        shown += 1
    assert shown > 100
    found = {(c["id"], e["uri"]) for c, e, _ in _property_events(world) if e and e["status"] == "canceled"}
    assert found == set(planted)


def test_without_meetings_fixes_clear_the_property():
    world = _world("no_crm_meetings", 6)
    fixed = [a for a in world.truth.anomalies if not a.active and a.kind.startswith("appointment_")]
    active = {
        (a.keys["contact_id"], a.keys["event_uri"])
        for a in world.truth.anomalies
        if a.active and a.kind.startswith("appointment_")
    }
    assert fixed, "six days fix some appointment anomalies"
    shown = {(c["id"], e["uri"]) for c, e, _ in _property_events(world) if e is not None}
    for a in fixed:
        key = (a.keys["contact_id"], a.keys["event_uri"])
        assert key not in shown and key not in active


# -- custom properties -----------------------------------------------------------------------------


def test_custom_properties_carry_the_campaign_name():
    world = _world("custom_properties", 2)
    names = {c["id"]: _norm(c["name"]) for c in [*world.ads.google_campaigns, *world.ads.meta_campaigns]}
    paid = [
        c["properties"]
        for c in world.crm.contacts
        if c["properties"].get("hs_analytics_source") in ("PAID_SEARCH", "PAID_SOCIAL")
    ]
    assert paid
    for props in paid:
        assert props.get("hs_analytics_source_data_2") is None
        assert _norm(props[CUSTOM_UTM_CAMPAIGN]) in names.values()
    styled = {props[CUSTOM_UTM_CAMPAIGN] for props in paid}
    assert any(value != value.strip() or "  " in value for value in styled)  # typed with stray spaces
    assert any(value.islower() for value in styled)
    assert len(world.crm.meetings) > 0  # the other parts of the account stay as they were


# -- no Stripe metadata links ----------------------------------------------------------------------


def test_without_metadata_links_nothing_in_stripe_names_the_crm():
    world = _world("no_metadata_links", 4)
    assert not any(c["metadata"] for c in world.billing.customers)
    assert not any(i["metadata"] for i in world.billing.invoices)
    orphans = [a for a in world.truth.anomalies if a.active and a.kind == "billing_orphan"]
    persons = {cid: p for p in world.truth.persons for cid in p.billing_customer_ids}
    assert orphans
    for a in orphans:
        assert not persons[a.keys["customer_id"]].crm_contact_ids
    kinds = {a.kind for a in world.truth.anomalies if a.active}
    assert {"deal_won_no_invoice", "invoice_amount_mismatch", "email_mismatch"} <= kinds


# -- the current Stripe version --------------------------------------------------------------------


@pytest.fixture(scope="module")
def current_stripe() -> Iterator[tuple[World, httpx.Client]]:
    world = _world("current_stripe", 2)
    with (
        Sandbox(world) as sandbox,
        httpx.Client(
            base_url=sandbox.base_urls["stripe"],
            headers={"Authorization": f"Bearer {DEFAULT_TOKENS['stripe']}"},
            timeout=30,
        ) as client,
    ):
        yield world, client


def test_events_keep_the_version_they_were_created_with(current_stripe: tuple[World, httpx.Client]):
    world, client = current_stripe
    upgrade = world.truth.engine.stripe_upgrade // 1000
    versions = {(e["created"] >= upgrade, e["api_version"]) for e in world.billing.events}
    assert versions == {(False, STRIPE_API_VERSION), (True, CURRENT_STRIPE_VERSION)}
    paid = [e for e in world.billing.events if e["type"] == "invoice_payment.paid"]
    assert paid and all(e["created"] >= upgrade for e in paid)
    served = client.get("/v1/events", params={"limit": 100, "types[]": ["invoice.paid"]}).json()["data"]
    for event in served:
        invoice = event["data"]["object"]
        assert ("charge" in invoice) == (event["api_version"] == STRIPE_API_VERSION)
    assert {e["api_version"] for e in served} == {STRIPE_API_VERSION, CURRENT_STRIPE_VERSION}


def test_objects_come_in_the_version_asked_for(current_stripe: tuple[World, httpx.Client]):
    _, client = current_stripe
    response = client.get("/v1/invoices", params={"limit": 100})
    assert response.headers["Stripe-Version"] == CURRENT_STRIPE_VERSION  # the account's own
    invoices = response.json()["data"]
    assert not any({"charge", "payment_intent", "paid", "subscription"} & set(i) for i in invoices)
    with_subscription = [i for i in invoices if i["parent"]]
    assert with_subscription and all(
        i["parent"]["subscription_details"]["subscription"].startswith("sub_") for i in with_subscription
    )
    pinned = client.get("/v1/invoices", params={"limit": 100}, headers={"Stripe-Version": "2024-06-20"})
    assert all("charge" in i and "parent" not in i for i in pinned.json()["data"])
    subscriptions = client.get("/v1/subscriptions", params={"status": "all", "limit": 5}).json()["data"]
    assert all("current_period_end" not in s for s in subscriptions)
    assert all("current_period_end" in item for s in subscriptions for item in s["items"]["data"])
    charges = client.get("/v1/charges", params={"limit": 20}).json()["data"]
    assert charges and not any("invoice" in c for c in charges)


def test_invoice_payments_page_and_filter(current_stripe: tuple[World, httpx.Client]):
    world, client = current_stripe
    expected = {"inpay_" + pi["id"][3:]: pi for pi in world.billing.payment_intents if pi.get("invoice")}
    seen: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"starting_after": after} if after else {})}
        page = client.get("/v1/invoice_payments", params=params).json()
        seen.extend(page["data"])
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    newest_first = sorted(expected, key=lambda i: (expected[i]["created"], i), reverse=True)
    assert [p["id"] for p in seen] == newest_first
    for payment in seen:
        intent = expected[payment["id"]]
        assert payment["invoice"] == intent["invoice"]
        assert (payment["status"] == "paid") == (intent["status"] == "succeeded")
    one = seen[0]
    by_invoice = client.get("/v1/invoice_payments", params={"invoice": one["invoice"]}).json()["data"]
    assert one in by_invoice
    assert client.get(f"/v1/invoice_payments/{one['id']}").json() == one
    assert client.get("/v1/invoice_payments/inpay_nope").status_code == 404
    paid = client.get("/v1/invoice_payments", params={"status": "paid", "limit": 100}).json()["data"]
    assert paid and all(p["status"] == "paid" for p in paid)


def _fixtures() -> dict[str, Any]:
    override = os.environ.get("TRUEUP_SHARED_DIR")
    shared = Path(override) if override else Path(__file__).resolve().parents[3] / "shared"
    for candidate in (shared / "reference", shared):
        path = candidate / "stripe_fixtures_subset.json"
        if path.exists():
            resources: dict[str, Any] = json.loads(path.read_text())["resources"]
            return resources
    pytest.skip("stripe_fixtures_subset.json is not available")


@pytest.mark.parametrize("resource", ["invoices", "charges", "payment_intents", "subscriptions"])
def test_current_objects_have_no_field_stripes_current_fixtures_lack(
    current_stripe: tuple[World, httpx.Client], resource: str
):
    """Stripe's own fixtures are of the current version: what the sandbox serves in it has no
    field they do not have (the pinned-only ones included), nested invoice lines too."""
    fixtures = _fixtures()
    _, client = current_stripe
    params: dict[str, Any] = {"limit": 20, **({"status": "all"} if resource == "subscriptions" else {})}
    for record in client.get(f"/v1/{resource}", params=params).json()["data"]:
        reference = fixtures[record["object"]]
        assert not set(record) - set(reference), sorted(set(record) - set(reference))
        if resource == "invoices":
            line, reference_line = record["lines"]["data"][0], reference["lines"]["data"][0]
            assert not set(line) - set(reference_line)
            assert set(line["parent"]) <= set(reference_line["parent"])
