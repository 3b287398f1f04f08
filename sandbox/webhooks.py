"""Webhooks the sandbox sends for its own state changes, the way the providers send them.

- Stripe: every new event of `billing.events` (API writes and the daily advance alike) is
  POSTed as it is, signed `Stripe-Signature: t=...,v1=...` (one `v1` per configured secret,
  as Stripe does while a secret is rolled).
- HubSpot: `<type>.creation` for a new CRM object and `<type>.propertyChange` for each
  subscribed property whose value changed (meetings as generic `object.*` events with
  `objectTypeId` 0-47), up to 100 events per delivery, signed v3 over the URL called.
- Calendly: `invitee.created` for a new invitee and `invitee.canceled` when one is canceled,
  the invitee with its `scheduled_event`, signed `Calendly-Webhook-Signature: t=...,v1=...`.

Delivery is at least once: each delivery waits a random moment (so deliveries overtake each
other), some are sent twice, and a delivery the receiver does not answer with a 2xx is sent
again with exponential backoff until it is. Every attempt is signed afresh (HubSpot's
`attemptNumber` counts them). `acknowledged` keeps what got a 2xx, for tests that check
nothing acknowledged was lost.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import heapq
import hmac
import http.client
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson

from sandbox.config import DEFAULT_WEBHOOK_SECRETS
from sandbox.store import Collection, Record, World

log = logging.getLogger(__name__)

PROVIDERS = ("stripe", "hubspot", "calendly")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Subscription:
    """The HubSpot subscriptions of one CRM object type."""

    prefix: str  # subscriptionType prefix: contact, company, deal, or object (generic)
    object_type_id: str | None  # generic subscriptions name the type by id
    properties: tuple[str, ...]  # propertyChange subscriptions, one per property
    subscription_id: int


HUBSPOT_SUBSCRIPTIONS = {
    "contacts": Subscription(
        "contact",
        None,
        ("email", "firstname", "lastname", "phone", "company", "lifecyclestage", "hubspot_owner_id"),
        1_859_971,
    ),
    "companies": Subscription("company", None, ("name", "domain", "phone"), 1_859_972),
    "deals": Subscription(
        "deal", None, ("dealname", "dealstage", "amount", "closedate", "pipeline"), 1_859_973
    ),
    "meetings": Subscription(
        "object",
        "0-47",
        ("hs_meeting_title", "hs_meeting_start_time", "hs_meeting_end_time", "hs_meeting_outcome"),
        1_859_974,
    ),
}
HUBSPOT_BATCH = 100  # events per delivery, as HubSpot sends them
HUBSPOT_PORTAL_ID = 27_356_661
HUBSPOT_APP_ID = 1_109_808


@dataclass
class WebhookConfig:
    """Where and how the sandbox delivers. Deliveries go to `{url}/{provider}`."""

    url: str
    secrets: dict[str, list[str]] = field(
        default_factory=lambda: {p: [s] for p, s in DEFAULT_WEBHOOK_SECRETS.items()}
    )
    providers: tuple[str, ...] = PROVIDERS
    duplicate_rate: float = 0.05  # share of deliveries sent twice
    max_delay: float = 0.2  # seconds a delivery may wait before its first attempt
    retry_base: float = 0.25  # first retry after about this long, doubling
    retry_max: float = 5.0  # ... up to this
    timeout: float = 10.0
    workers: int = 4
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "secrets" in known:
            known["secrets"] = {
                p: [s] if isinstance(s, str) else list(s) for p, s in known["secrets"].items()
            }
        if "providers" in known:
            known["providers"] = tuple(known["providers"])
        return cls(**known)


@dataclass(order=True)
class Delivery:
    due: float
    sequence: int
    provider: str = field(compare=False)
    render: Callable[[int], bytes] = field(compare=False)  # attempt -> body
    attempt: int = field(default=0, compare=False)
    first_queued: float = field(default=0.0, compare=False)


@dataclass
class SenderStats:
    queued: int = 0
    attempts: int = 0
    acknowledged: int = 0
    failed_attempts: int = 0
    duplicates: int = 0
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROVIDERS, 0))


class WebhookSender:
    """Watches the world's collections and delivers what changed; `start` runs the workers."""

    def __init__(self, world: World, config: WebhookConfig, clock: Callable[[], float] = time.time) -> None:
        self.world = world
        self.config = config
        self.clock = clock
        self.stats = SenderStats()
        self.acknowledged: list[tuple[str, bytes]] = []
        self._rng = random.Random(f"webhooks-{config.seed}")
        self._sequence = itertools.count()
        self._event_ids = itertools.count(3_418_880_000 + config.seed * 1_000_000)
        self._heap: list[Delivery] = []
        self._cv = threading.Condition()
        self._inflight = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._detach: list[Callable[[], None]] = []
        self._stripe_seen: set[str] = set()
        self._crm_shadow: dict[str, dict[str, tuple[str, tuple[Any, ...]]]] = {}
        self._invitee_shadow: dict[str, tuple[str, str]] = {}

    # -- watching ---------------------------------------------------------------------------------

    def attach(self) -> None:
        """Take the world's current state as seen and listen for changes (under the world lock)."""
        with self.world.lock:
            if "stripe" in self.config.providers:
                events = self.world.billing.events
                self._stripe_seen = {str(e["id"]) for e in events}
                self._listen(events, self._stripe_changed)
            if "hubspot" in self.config.providers:
                for name in HUBSPOT_SUBSCRIPTIONS:
                    collection = self.world.crm.objects(name)
                    assert collection is not None
                    self._crm_shadow[name] = {r["id"]: _crm_state(name, r) for r in collection}
                    self._listen(collection, functools.partial(self._crm_changed, name))
            if "calendly" in self.config.providers:
                invitees = self.world.scheduling.invitees
                self._invitee_shadow = {r["uri"]: _invitee_state(r) for r in invitees}
                self._listen(invitees, self._invitees_changed)

    def _listen(self, collection: Collection, listener: Callable[[list[Record] | None], None]) -> None:
        collection.listeners.append(listener)
        self._detach.append(lambda: collection.listeners.remove(listener))

    def _stripe_changed(self, written: list[Record] | None) -> None:
        records = written if written is not None else list(self.world.billing.events)
        for event in records:
            event_id = str(event["id"])
            if event_id in self._stripe_seen:
                continue
            self._stripe_seen.add(event_id)
            self._queue("stripe", _fixed(orjson.dumps(event)), 1)

    def _crm_changed(self, name: str, written: list[Record] | None) -> None:
        collection = self.world.crm.objects(name)
        assert collection is not None
        records: Iterable[Record] = written if written is not None else collection
        shadow = self._crm_shadow[name]
        events: list[dict[str, Any]] = []
        for record in records:
            state = _crm_state(name, record)
            before = shadow.get(record["id"])
            if before is not None and before[0] == state[0]:
                continue  # not modified since we last looked
            shadow[record["id"]] = state
            events.extend(self._crm_events(name, record, before, state))
        for start in range(0, len(events), HUBSPOT_BATCH):
            self._queue_hubspot(events[start : start + HUBSPOT_BATCH])

    def _crm_events(
        self,
        name: str,
        record: Record,
        before: tuple[str, tuple[Any, ...]] | None,
        state: tuple[str, tuple[Any, ...]],
    ) -> Iterator[dict[str, Any]]:
        spec = HUBSPOT_SUBSCRIPTIONS[name]
        common: dict[str, Any] = {
            "subscriptionId": spec.subscription_id,
            "portalId": HUBSPOT_PORTAL_ID,
            "appId": HUBSPOT_APP_ID,
            "objectId": int(record["id"]),
            "changeSource": "CRM",
        }
        if spec.object_type_id:
            common["objectTypeId"] = spec.object_type_id
        if before is None:
            yield {
                "eventId": next(self._event_ids),
                "occurredAt": _ms(record.get("createdAt") or state[0]),
                "subscriptionType": f"{spec.prefix}.creation",
                **common,
            }
            return
        for prop, old, new in zip(spec.properties, before[1], state[1], strict=True):
            if old != new:
                yield {
                    "eventId": next(self._event_ids),
                    "occurredAt": _ms(state[0]),
                    "subscriptionType": f"{spec.prefix}.propertyChange",
                    "propertyName": prop,
                    "propertyValue": "" if new is None else str(new),
                    **common,
                }

    def _invitees_changed(self, written: list[Record] | None) -> None:
        records: Iterable[Record] = written if written is not None else self.world.scheduling.invitees
        for invitee in records:
            state = _invitee_state(invitee)
            before = self._invitee_shadow.get(invitee["uri"])
            if before == state:
                continue
            self._invitee_shadow[invitee["uri"]] = state
            if before is None:
                name, created = "invitee.created", invitee.get("created_at") or state[0]
            elif before[1] != "canceled" and state[1] == "canceled":
                name, created = "invitee.canceled", state[0]
            else:
                continue  # Calendly has no webhook for other invitee changes
            self._queue_calendly(name, str(created), invitee)

    def _queue_hubspot(self, events: list[dict[str, Any]]) -> None:
        def render(attempt: int) -> bytes:
            return orjson.dumps([{**e, "attemptNumber": attempt} for e in events])

        self._queue("hubspot", render, len(events))

    def _queue_calendly(self, name: str, created: str, invitee: Record) -> None:
        scheduled = self.world.scheduling.events.get(str(invitee.get("event")))
        users = self.world.scheduling.users
        body = orjson.dumps(
            {
                "created_at": created,
                "created_by": users[0]["uri"] if users else None,
                "event": name,
                "payload": {**invitee, "scheduled_event": scheduled},
            }
        )
        self._queue("calendly", _fixed(body), 1)

    # -- delivering -------------------------------------------------------------------------------

    def _queue(self, provider: str, render: Callable[[int], bytes], events: int) -> None:
        now = time.monotonic()
        copies = 2 if self._rng.random() < self.config.duplicate_rate else 1
        with self._cv:
            self.stats.events[provider] += events
            self.stats.duplicates += copies - 1
            for _ in range(copies):
                due = now + self._rng.uniform(0, self.config.max_delay)
                heapq.heappush(self._heap, Delivery(due, next(self._sequence), provider, render, 0, now))
                self.stats.queued += 1
            self._cv.notify()

    def start(self) -> WebhookSender:
        for number in range(max(1, self.config.workers)):
            thread = threading.Thread(target=self._work, name=f"webhooks-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self.world.lock:
            for detach in self._detach:
                detach()
            self._detach = []
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def pending(self) -> int:
        with self._cv:
            return len(self._heap) + self._inflight

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every queued delivery was acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._heap or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(min(remaining, 0.05))
        return True

    def _next(self) -> Delivery | None:
        with self._cv:
            while not self._stopping:
                if self._heap and self._heap[0].due <= time.monotonic():
                    self._inflight += 1
                    return heapq.heappop(self._heap)
                wait = self._heap[0].due - time.monotonic() if self._heap else 0.5
                self._cv.wait(max(0.001, min(wait, 0.5)))
            return None

    def _work(self) -> None:
        connection: _Connection | None = None
        while (delivery := self._next()) is not None:
            connection = connection or _Connection(self.config.url, self.config.timeout)
            body = delivery.render(delivery.attempt)
            status = connection.post(f"/{delivery.provider}", body, self._headers(delivery, body))
            if status is None:
                connection = None  # reconnect next time
            self._settle(delivery, body, status)

    def _settle(self, delivery: Delivery, body: bytes, status: int | None) -> None:
        with self._cv:
            self._inflight -= 1
            self.stats.attempts += 1
            if status is not None and 200 <= status < 300:
                self.stats.acknowledged += 1
                self.acknowledged.append((delivery.provider, body))
            else:
                self.stats.failed_attempts += 1
                delivery.attempt += 1
                backoff = min(self.config.retry_max, self.config.retry_base * 2 ** (delivery.attempt - 1))
                delivery.due = time.monotonic() + backoff * self._rng.uniform(0.5, 1.0)
                heapq.heappush(self._heap, delivery)
            self._cv.notify_all()

    def _headers(self, delivery: Delivery, body: bytes) -> dict[str, str]:
        secrets = self.config.secrets.get(delivery.provider) or [""]
        now = self.clock()
        headers = {"Content-Type": "application/json"}
        if delivery.provider == "stripe":
            t = int(now)
            signatures = ",".join(f"v1={_hmac_hex(s, f'{t}.'.encode() + body)}" for s in secrets)
            headers.update({"Stripe-Signature": f"t={t},{signatures}", "User-Agent": "Stripe/1.0"})
        elif delivery.provider == "hubspot":
            stamp = str(int(now * 1000))
            url = self.config.url.rstrip("/") + "/hubspot"
            message = b"POST" + url.encode() + body + stamp.encode()
            digest = hmac.new(secrets[0].encode(), message, hashlib.sha256).digest()
            headers.update(
                {
                    "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
                    "X-HubSpot-Request-Timestamp": stamp,
                    "X-HubSpot-Signature-Version": "v3",
                    "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
                }
            )
        else:
            t = int(now)
            signature = _hmac_hex(secrets[0], f"{t}.".encode() + body)
            headers.update({"Calendly-Webhook-Signature": f"t={t},v1={signature}", "User-Agent": "Calendly"})
        return headers

    def summary(self, with_bodies: bool = False) -> dict[str, Any]:
        with self._cv:
            summary: dict[str, Any] = {
                "url": self.config.url,
                "queued": self.stats.queued,
                "attempts": self.stats.attempts,
                "acknowledged": self.stats.acknowledged,
                "failed_attempts": self.stats.failed_attempts,
                "duplicates": self.stats.duplicates,
                "events": dict(self.stats.events),
                "pending": len(self._heap) + self._inflight,
            }
            if with_bodies:
                summary["deliveries"] = [{"provider": p, "body": b.decode()} for p, b in self.acknowledged]
            return summary


class _Connection:
    """One keep-alive HTTP/1.1 connection to the receiver; None from `post` means it broke."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.path = parts.path.rstrip("/")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.connection = cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int | None:
        try:
            self.connection.request("POST", self.path + path, body=body, headers=headers)
            response = self.connection.getresponse()
            response.read()
            if response.getheader("connection", "").lower() == "close":
                self.connection.close()
            return response.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            return None


def _fixed(body: bytes) -> Callable[[int], bytes]:
    """A body that is the same in every attempt (Stripe's and Calendly's)."""
    return lambda attempt: body


def _crm_state(name: str, record: Record) -> tuple[str, tuple[Any, ...]]:
    props = record.get("properties") or {}
    return str(record.get("updatedAt")), tuple(props.get(p) for p in HUBSPOT_SUBSCRIPTIONS[name].properties)


def _invitee_state(record: Record) -> tuple[str, str]:
    return str(record.get("updated_at")), str(record.get("status"))


def _ms(iso: Any) -> int:
    moment = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
