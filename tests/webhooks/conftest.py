"""Shared pieces of the webhook tests: secrets, deliveries signed as each provider signs them,
and a real receiver (uvicorn on a loopback port, in a thread) over a private inbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingestion.webhooks import receiver, signatures
from ingestion.webhooks.inbox import Inbox
from ingestion.webhooks.settings import WebhookSettings

SECRETS = {
    "stripe": ("whsec_current_secret",),
    "hubspot": ("hubspot-client-secret",),
    "calendly": ("calendly-signing-key",),
}


@dataclass
class Clock:
    """The receiver's clock: real time plus an offset a test can move."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Receiver:
    url: str
    settings: WebhookSettings
    clock: Clock
    inbox: Inbox = field(init=False)

    def __post_init__(self) -> None:
        self.inbox = Inbox(self.settings.inbox)


def settings_for(inbox: Path, **overrides: Any) -> WebhookSettings:
    return WebhookSettings(secrets=dict(SECRETS), inbox=inbox, **overrides)


@contextmanager
def running(
    settings: WebhookSettings, clock: Callable[[], float] = time.time, port: int = 0
) -> Iterator[str]:
    """Serve the receiver on a loopback port (default: a free one) until the block ends."""
    sock = receiver.bind("127.0.0.1", port)
    server = receiver.server(settings, clock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the receiver did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def webhook_receiver(tmp_path: Path) -> Iterator[Receiver]:
    clock = Clock()
    settings = settings_for(tmp_path / "inbox.sqlite3")
    with running(settings, clock) as url:
        yield Receiver(url, settings, clock)


# -- deliveries ------------------------------------------------------------------------------------


def stripe_event(event_id: str, obj_id: str = "in_1", created: int = 1_700_000_000, **obj: Any) -> bytes:
    data = {"object": {"id": obj_id, "object": "invoice", **obj}}
    event = {"id": event_id, "object": "event", "api_version": "2024-06-20", "created": created}
    return orjson.dumps({**event, "data": data, "livemode": False, "type": "invoice.updated"})


def hubspot_event(
    event_id: int, object_id: int, occurred_ms: int, prop: str = "email", value: str = "a@b.c"
) -> dict:
    return {
        "eventId": event_id,
        "subscriptionId": 1,
        "portalId": 7,
        "appId": 9,
        "occurredAt": occurred_ms,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": prop,
        "propertyValue": value,
        "changeSource": "CRM",
    }


def calendly_event(name: str, uri: str, updated_at: str, status: str = "active") -> bytes:
    payload = {"uri": uri, "status": status, "updated_at": updated_at, "event": uri.split("/invitees/")[0]}
    return orjson.dumps({"event": name, "created_at": updated_at, "created_by": "u", "payload": payload})


def stripe_headers(body: bytes, secret: str = SECRETS["stripe"][0], t: int | None = None) -> dict[str, str]:
    """Signed by the official Stripe SDK's helper."""
    import stripe

    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=t)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def hubspot_headers(
    body: bytes, uri: str, secret: str = SECRETS["hubspot"][0], ms: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time() * 1000) if ms is None else ms)
    return {
        "X-HubSpot-Signature-v3": signatures.hubspot_signature(secret, "POST", uri, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def calendly_headers(
    body: bytes, secret: str = SECRETS["calendly"][0], t: int | None = None
) -> dict[str, str]:
    t = int(time.time()) if t is None else t
    return {
        "Calendly-Webhook-Signature": f"t={t},v1={signatures.hmac_hex(secret, f'{t}.'.encode() + body)}",
        "Content-Type": "application/json",
    }
