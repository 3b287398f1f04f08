"""The sandbox sends signed webhooks for its own changes, as the providers do: what changed, to a
real receiver, at least once, again and again until it gets a 2xx."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest
import stripe

from ingestion.webhooks.inbox import Inbox
from ingestion.webhooks.settings import WebhookSettings
from sandbox import world as world_module
from sandbox.config import DEFAULT_TOKENS, DEFAULT_WEBHOOK_SECRETS
from sandbox.server import Sandbox
from sandbox.store import World
from sandbox.webhooks import WebhookConfig
from tests.webhooks.conftest import running


def sandbox_settings(inbox: Path) -> WebhookSettings:
    return WebhookSettings(secrets={p: (s,) for p, s in DEFAULT_WEBHOOK_SECRETS.items()}, inbox=inbox)


@pytest.fixture(scope="module")
def anchor() -> datetime:
    from orchestration.sandbox_runtime import today_anchor

    return today_anchor()


@pytest.fixture
def world(anchor: datetime) -> World:
    return world_module.generate(seed=11, contacts=100, anchor=anchor)


@pytest.fixture
def wired(world: World, tmp_path: Path) -> Iterator[tuple[Sandbox, Inbox]]:
    """A receiver and a sandbox that sends it webhooks (a third of them twice)."""
    settings = sandbox_settings(tmp_path / "inbox.sqlite3")
    with running(settings) as url:
        config = WebhookConfig(url=f"{url}/webhooks", duplicate_rate=0.3, seed=3)
        sandbox = Sandbox(world, webhooks=config).start()
        try:
            yield sandbox, Inbox(settings.inbox)
        finally:
            sandbox.stop()


def rows(inbox: Inbox, sql: str) -> list[tuple]:
    with sqlite3.connect(inbox.path) as con:
        return con.execute(sql).fetchall()


def auth(system: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {DEFAULT_TOKENS[system]}"}


def test_api_writes_arrive_as_the_providers_webhooks(wired, world):
    sandbox, inbox = wired
    contact = next(iter(world.crm.contacts))
    patched = httpx.patch(
        f"{sandbox.base_urls['hubspot']}/crm/v3/objects/contacts/{contact['id']}",
        json={"properties": {"email": "moved@example.com", "jobtitle": "not subscribed"}},
        headers=auth("hubspot"),
    )
    assert patched.status_code == 200
    created = httpx.post(
        f"{sandbox.base_urls['hubspot']}/crm/v3/objects/contacts",
        json={"properties": {"email": "new@example.com"}},
        headers=auth("hubspot"),
    ).json()
    customer = next(iter(world.billing.customers))
    updated = httpx.post(
        f"{sandbox.base_urls['stripe']}/v1/customers/{customer['id']}",
        data={"name": "Renamed Customer"},
        headers=auth("stripe"),
    )
    assert updated.status_code == 200
    event = next(
        e for e in world.scheduling.events if e["status"] == "active" and e["invitees_counter"]["active"]
    )
    uuid = event["uri"].rsplit("/", 1)[1]
    canceled = httpx.post(
        f"{sandbox.base_urls['calendly']}/scheduled_events/{uuid}/cancellation",
        json={"reason": "webhook test"},
        headers=auth("calendly"),
    )
    assert canceled.status_code == 201
    assert sandbox.webhooks is not None and sandbox.webhooks.flush(30)

    hub = rows(inbox, "select event_type, object_id, field, payload from events where provider = 'hubspot'")
    changes = {(t, o, f): orjson.loads(p).get("propertyValue") for t, o, f, p in hub}
    assert changes == {
        ("contact.propertyChange", contact["id"], "email"): "moved@example.com",
        ("contact.creation", created["id"], ""): None,
    }
    ((stripe_type, stripe_object),) = rows(
        inbox, "select event_type, object_id from events where provider = 'stripe'"
    )
    assert (stripe_type, stripe_object) == ("customer.updated", customer["id"])
    canceled_invitees = rows(
        inbox, "select object_id from events where provider = 'calendly' and event_type = 'invitee.canceled'"
    )
    assert {uri for (uri,) in canceled_invitees} == {
        uri
        for uri in world.scheduling.invitees_by_event[event["uri"]]
        if world.scheduling.invitees.get(uri)["cancellation"]["reason"] == "webhook test"
    }
    assert canceled_invitees


def test_the_sandboxs_stripe_signature_passes_the_official_sdk(wired, world):
    sandbox, inbox = wired
    customer = next(iter(world.billing.customers))
    httpx.post(
        f"{sandbox.base_urls['stripe']}/v1/customers/{customer['id']}",
        data={"name": "X"},
        headers=auth("stripe"),
    )
    assert sandbox.webhooks is not None and sandbox.webhooks.flush(30)
    (body, headers), *_ = rows(inbox, "select body, headers from deliveries where provider = 'stripe'")
    header = orjson.loads(headers)["stripe-signature"]
    event = stripe.Webhook.construct_event(body, header, DEFAULT_WEBHOOK_SECRETS["stripe"])
    assert event["type"] == "customer.updated" and event["data"]["object"]["id"] == customer["id"]


def test_a_day_of_business_is_delivered_and_redeliveries_are_absorbed(wired, world):
    sandbox, inbox = wired
    with world.lock:
        world_module.advance(world, days=1)
    assert sandbox.webhooks is not None and sandbox.webhooks.flush(60)
    summary = sandbox.webhooks.summary()
    assert summary["acknowledged"] == summary["queued"] > 0 and summary["duplicates"] > 0
    figures = inbox.figures()
    assert figures.events == sum(summary["events"].values())  # every event once
    assert figures.duplicates >= summary["duplicates"]
    kinds = {provider for (provider,) in rows(inbox, "select distinct provider from events")}
    assert {"hubspot", "stripe"} <= kinds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_deliveries_are_retried_with_backoff_until_the_receiver_answers(world, tmp_path):
    port = free_port()
    config = WebhookConfig(url=f"http://127.0.0.1:{port}/webhooks", retry_base=0.05, retry_max=0.2)
    sandbox = Sandbox(world, webhooks=config).start()
    try:
        contact = next(iter(world.crm.contacts))
        httpx.patch(
            f"{sandbox.base_urls['hubspot']}/crm/v3/objects/contacts/{contact['id']}",
            json={"properties": {"lifecyclestage": "customer"}},
            headers=auth("hubspot"),
        )
        sender = sandbox.webhooks
        assert sender is not None
        deadline = time.monotonic() + 30
        while sender.summary()["failed_attempts"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sender.summary()["failed_attempts"] >= 3 and sender.summary()["acknowledged"] == 0
        settings = sandbox_settings(tmp_path / "inbox.sqlite3")
        with running(settings, port=port):
            assert sender.flush(30)
        (attempt,) = {orjson.loads(body)[0]["attemptNumber"] for _, body in sender.acknowledged}
        assert attempt >= 3  # HubSpot counts the attempts in the body; each was signed afresh
        assert rows(Inbox(settings.inbox), "select field from events") == [("lifecyclestage",)]
    finally:
        sandbox.stop()
