"""The receiver on a real loopback port: it acknowledges only what the inbox holds, absorbs
redeliveries, refuses what is false with the provider's status, and never logs a secret."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import httpx
import orjson

from ingestion.webhooks.drain import drain
from tests.webhooks.conftest import (
    SECRETS,
    Receiver,
    calendly_event,
    calendly_headers,
    hubspot_event,
    hubspot_headers,
    running,
    settings_for,
    stripe_event,
    stripe_headers,
)


def post(receiver: Receiver, provider: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{receiver.url}/webhooks/{provider}", content=body, headers=headers, timeout=10)


def inbox_rows(receiver: Receiver, sql: str) -> list[tuple]:
    with sqlite3.connect(receiver.settings.inbox) as con:
        return con.execute(sql).fetchall()


def test_each_provider_is_acknowledged_once_stored_and_redeliveries_are_absorbed(webhook_receiver):
    r = webhook_receiver
    stripe_body = stripe_event("evt_a")
    hub_uri = f"{r.url}/webhooks/hubspot"
    batch = [hubspot_event(1, 101, 1_700_000_000_000), hubspot_event(2, 102, 1_700_000_000_001)]
    retry = [{**e, "attemptNumber": 1} for e in batch]  # HubSpot's retry: only attemptNumber changes
    invitee = "https://api.calendly.com/scheduled_events/E1/invitees/I1"
    cal_body = calendly_event("invitee.canceled", invitee, "2026-01-02T03:04:05.123456Z", "canceled")

    assert post(r, "stripe", stripe_body, stripe_headers(stripe_body)).json() == {
        "status": "stored",
        "new": 1,
        "duplicates": 0,
    }
    assert post(r, "stripe", stripe_body, stripe_headers(stripe_body)).json()["duplicates"] == 1
    body = orjson.dumps(batch)
    assert post(r, "hubspot", body, hubspot_headers(body, hub_uri)).json()["new"] == 2
    body = orjson.dumps(retry)
    assert post(r, "hubspot", body, hubspot_headers(body, hub_uri)).json()["duplicates"] == 2
    for _ in range(2):
        post(r, "calendly", cal_body, calendly_headers(cal_body))

    events = inbox_rows(
        r, "select provider, event_type, object_type, object_id, field from events order by rowid"
    )
    assert events == [
        ("stripe", "invoice.updated", "invoice", "in_1", ""),
        ("hubspot", "contact.propertyChange", "contacts", "101", "email"),
        ("hubspot", "contact.propertyChange", "contacts", "102", "email"),
        ("calendly", "invitee.canceled", "invitees", invitee, ""),
    ]
    # the raw delivery and its headers are kept for replay
    (stored_body, headers), *_ = inbox_rows(
        r, "select body, headers from deliveries where provider = 'stripe'"
    )
    assert stored_body == stripe_body and "stripe-signature" in orjson.loads(headers)
    assert r.inbox.figures().duplicates == 4


def test_false_deliveries_get_the_providers_status_and_are_counted_by_reason(webhook_receiver):
    r = webhook_receiver
    body = stripe_event("evt_b")
    assert post(r, "stripe", body, stripe_headers(body, "whsec_wrong")).status_code == 400
    assert post(r, "stripe", body + b" ", stripe_headers(body)).status_code == 400  # tampered
    hub = orjson.dumps([hubspot_event(3, 103, 1)])
    assert (
        post(r, "hubspot", hub, hubspot_headers(hub, f"{r.url}/webhooks/hubspot", "wrong")).status_code == 401
    )
    cal = calendly_event("invitee.created", "https://api.calendly.com/x/invitees/I", "2026-01-01T00:00:00Z")
    assert post(r, "calendly", cal, {}).status_code == 401

    r.clock.offset = 400  # the receiver's clock runs ahead: a delivery signed now is stale
    assert post(r, "stripe", body, stripe_headers(body)).status_code == 400
    r.clock.offset = 0

    assert inbox_rows(r, "select count(*) from events") == [(0,)]
    refused = r.inbox.figures().refused
    assert refused == {"bad_signature": 3, "missing_signature": 1, "stale_timestamp": 1}


def test_unknown_paths_methods_and_oversized_bodies_are_refused(tmp_path: Path):
    settings = settings_for(tmp_path / "inbox.sqlite3", max_body_bytes=1000)
    with running(settings) as url:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.post(f"{url}/webhooks/paypal", content=b"{}").status_code == 404
        assert httpx.post(f"{url}/elsewhere", content=b"{}").status_code == 404
        assert httpx.get(f"{url}/webhooks/stripe").status_code == 405
        big = stripe_event("evt_big", description="x" * 2000)
        assert (
            httpx.post(f"{url}/webhooks/stripe", content=big, headers=stripe_headers(big)).status_code == 413
        )
        # no Content-Length to trust: the body is read up to the cap and no further
        chunks = (big[i : i + 100] for i in range(0, len(big), 100))
        streamed = httpx.post(f"{url}/webhooks/stripe", content=chunks, headers=stripe_headers(big))
        assert streamed.status_code == 413
    from ingestion.webhooks.inbox import Inbox

    refused = Inbox(settings.inbox).figures().refused
    assert refused == {"unknown_path": 2, "method_not_allowed": 1, "body_too_large": 2}


def test_an_authentic_but_unreadable_delivery_is_kept_and_quarantined(webhook_receiver, tmp_path: Path):
    r = webhook_receiver
    body = b'{"id": "evt_x", "object": "event", "created": "yesterday"}'
    response = post(r, "stripe", body, stripe_headers(body))
    assert response.status_code == 200 and response.json()["status"] == "quarantined"
    assert "created" in response.json()["reason"]
    warehouse = tmp_path / "warehouse.duckdb"
    assert drain(r.inbox, warehouse).quarantined == 1
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select system, resource, reason, payload from raw_webhooks._quarantine"
        ).fetchall()
    assert rows == [("webhooks", "stripe", rows[0][2], body.decode())]
    assert "created" in rows[0][2]


def test_behind_a_proxy_hubspot_verifies_against_the_configured_public_url(tmp_path: Path):
    public = "https://hooks.example.com"
    settings = settings_for(tmp_path / "inbox.sqlite3", public_base_url=public)
    body = orjson.dumps([hubspot_event(9, 109, 1_700_000_000_000)])
    with running(settings) as url:
        signed_public = hubspot_headers(body, f"{public}/webhooks/hubspot")
        assert httpx.post(f"{url}/webhooks/hubspot", content=body, headers=signed_public).status_code == 200
        signed_local = hubspot_headers(body, f"{url}/webhooks/hubspot")
        assert httpx.post(f"{url}/webhooks/hubspot", content=body, headers=signed_local).status_code == 401


def test_neither_secrets_nor_signatures_reach_the_log(webhook_receiver, caplog):
    r = webhook_receiver
    body = stripe_event("evt_log")
    forged = stripe_headers(body, "whsec_attacker_guess")
    with caplog.at_level(logging.DEBUG):
        post(r, "stripe", body, forged)
        post(r, "stripe", body, stripe_headers(body))
    text = caplog.text + repr(r.settings)
    assert "refused a stripe webhook delivery" in caplog.text
    for secret in (*SECRETS["stripe"], "whsec_attacker_guess"):
        assert secret not in text
    signature = forged["Stripe-Signature"].split("v1=")[1]
    assert signature not in text
