"""Reading a verified delivery into events: one per Stripe or Calendly delivery, up to a
hundred per HubSpot delivery (a JSON array).

Each event gets a key that a redelivery repeats exactly, so the inbox absorbs it:
- Stripe: the event id (`evt_...`).
- HubSpot: `eventId` is "not guaranteed to be unique", and a retry changes `attemptNumber`;
  the key is a digest of the event without `attemptNumber` (eventId, portal, subscription type,
  object, property, value, occurredAt, ...).
- Calendly: deliveries carry no event id; the key is a digest of the event name, the
  resource's URI and the event's `created_at`.

`occurred_us` is the source's own time of the change (Stripe `created`, HubSpot `occurredAt`,
Calendly the resource's `updated_at`): out-of-order events are settled by it, never by arrival.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# HubSpot's object type ids (generic `object.*` subscriptions name the type by id).
HUBSPOT_OBJECT_TYPES = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-47": "meetings"}
HUBSPOT_SUBSCRIPTION_OBJECTS = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "ticket": "tickets",
    "product": "products",
    "line_item": "line_items",
}


class Malformed(ValueError):
    """An authentic delivery whose body is not what the provider sends; kept, never loaded."""


@dataclass(frozen=True)
class InboundEvent:
    provider: str
    event_key: str  # unique per provider; a redelivery has the same
    event_id: str  # the provider's own id ("" when it has none)
    event_type: str
    object_type: str
    object_id: str
    field: str  # the changed property (HubSpot propertyChange), else ""
    occurred_us: int  # source time of the change, microseconds since the epoch
    payload: bytes  # the event's JSON


def parse(provider: str, body: bytes) -> list[InboundEvent]:
    """The events of one verified delivery; raise Malformed naming what is wrong."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("the body is not JSON") from None
    if provider == "stripe":
        return [_stripe(document, body)]
    if provider == "hubspot":
        if not isinstance(document, list) or not document:
            raise Malformed("a HubSpot delivery is a non-empty JSON array of events")
        return [_hubspot(item, position) for position, item in enumerate(document)]
    if provider == "calendly":
        return [_calendly(document, body)]
    raise ValueError(f"unknown webhook provider {provider!r}")


def _stripe(event: Any, body: bytes) -> InboundEvent:
    if not isinstance(event, dict) or event.get("object") != "event":
        raise Malformed("a Stripe delivery is one event object")
    event_id, created = _text(event, "id"), event.get("created")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(created, int) or isinstance(created, bool):
        raise Malformed(f"event {event_id}: `created` is not unix seconds")
    if not isinstance(obj, dict):
        raise Malformed(f"event {event_id}: no data.object")
    return InboundEvent(
        provider="stripe",
        event_key=event_id,
        event_id=event_id,
        event_type=_text(event, "type"),
        object_type=_text(obj, "object"),
        object_id=_text(obj, "id"),
        field="",
        occurred_us=created * 1_000_000,
        payload=body,
    )


def _hubspot(event: Any, position: int) -> InboundEvent:
    if not isinstance(event, dict):
        raise Malformed(f"event [{position}] is not an object")
    subscription = _text(event, "subscriptionType", f"event [{position}]")
    occurred = event.get("occurredAt")
    event_id = event.get("eventId")
    if not isinstance(occurred, int) or isinstance(occurred, bool):
        raise Malformed(f"event [{position}] ({event_id}): `occurredAt` is not epoch milliseconds")
    if event_id is None:
        raise Malformed(f"event [{position}]: no eventId")
    object_id = event.get("objectId", event.get("fromObjectId"))
    if object_id is None:
        raise Malformed(f"event [{position}] ({event_id}): no objectId")
    canonical = {k: v for k, v in event.items() if k != "attemptNumber"}  # the same in every retry
    return InboundEvent(
        provider="hubspot",
        event_key=_digest(canonical),
        event_id=str(event_id),
        event_type=subscription,
        object_type=_hubspot_object(subscription, event),
        object_id=str(object_id),
        field=str(event.get("propertyName") or ""),
        occurred_us=occurred * 1000,
        payload=orjson.dumps(canonical),
    )


def _hubspot_object(subscription: str, event: dict[str, Any]) -> str:
    prefix = subscription.partition(".")[0]
    if prefix == "object":
        type_id = str(event.get("objectTypeId") or "")
        return HUBSPOT_OBJECT_TYPES.get(type_id, f"object_{type_id}")
    return HUBSPOT_SUBSCRIPTION_OBJECTS.get(prefix, prefix)


def _calendly(event: Any, body: bytes) -> InboundEvent:
    if not isinstance(event, dict):
        raise Malformed("a Calendly delivery is one event object")
    name = _text(event, "event")
    created = _text(event, "created_at", name)
    payload = event.get("payload")
    if not isinstance(payload, dict):
        raise Malformed(f"{name} at {created}: no payload")
    if name.startswith("invitee_no_show."):
        object_type, object_id = "invitees", _text(payload, "invitee", name)
    else:
        object_type = "invitees" if name.startswith("invitee.") else name.partition(".")[0]
        object_id = _text(payload, "uri", name)
    changed = payload.get("updated_at") or created
    return InboundEvent(
        provider="calendly",
        event_key=_digest([name, object_id, created]),
        event_id="",
        event_type=name,
        object_type=object_type,
        object_id=object_id,
        field="",
        occurred_us=_iso_us(str(changed), name),
        payload=body,
    )


def _text(record: dict[str, Any], key: str, where: str = "") -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(f"{where + ': ' if where else ''}`{key}` is missing or not a string")
    return value


def _iso_us(text: str, where: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{where}: {text!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise Malformed(f"{where}: {text!r} has no time zone")
    return (moment - EPOCH) // timedelta(microseconds=1)


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
