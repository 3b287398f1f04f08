"""Stripe paging, the events cursor and record completion: plain functions over an ApiClient."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypedDict
from urllib.parse import parse_qsl, urlsplit

from ingestion import guard
from ingestion.billing.settings import (
    EVENTS_PATH,
    STRIPE_VERSION,
    VERSION_COLUMN,
    VERSION_FIELDS,
    StripeResource,
    is_current_generation,
)
from ingestion.http import ApiClient, ApiError


class EventsCursor(TypedDict):
    """Where the events feed was last read: the newest event seen and the ids at its second.

    `event_id` is None when the account had no event in the window at the full listing; then
    `synced_at` (the server's clock at that listing, unix seconds) tells when the window has
    passed it.
    """

    created: int
    event_id: str | None
    seen: list[str]
    synced_at: float


def read_page(client: ApiClient, path: str, params: Mapping[str, Any]) -> tuple[list[Any], bool]:
    """One Stripe list page: (data, has_more); a body that is not a list object is an error."""
    body = client.get(path, params=params)
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
        raise ApiError(client.system, "GET", path, 200, "answer is not a Stripe list object")
    return body["data"], bool(body.get("has_more"))


def list_pages(
    client: ApiClient, path: str, params: Mapping[str, Any], page_size: int
) -> Iterator[list[Any]]:
    """Every page of a Stripe list, newest first, following `starting_after` while `has_more`.

    A page that continues from an id read before stops the scan (it would loop); a full page
    without `has_more` is checked with one request past its last id: anything there (older,
    so not created during the listing) means the listing was cut short.
    """
    after: str | None = None
    advancing = guard.Advancing(f"billing: {path}")
    read: set[str] = set()
    while True:
        query = {**params, "limit": page_size, **({"starting_after": after} if after else {})}
        data, has_more = read_page(client, path, query)
        yield data
        read.update(i["id"] for i in data if isinstance(i, Mapping) and isinstance(i.get("id"), str))
        last = _last_id(data)
        if not has_more:
            if len(data) >= page_size and last is not None:
                beyond, _ = read_page(client, path, {**params, "limit": 3, "starting_after": last})
                unread = [i for i in beyond if not (isinstance(i, Mapping) and i.get("id") in read)]
                if unread:
                    detail = f"a full page ended without has_more, and {_last_id(unread)} follows {last}"
                    raise guard.truncated(f"billing: {path}", detail)
            return
        if last is None:
            raise ApiError(client.system, "GET", path, 200, "has_more without an id to continue after")
        advancing.check(last)
        after = last


def _last_id(data: list[Any]) -> str | None:
    for item in reversed(data):
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            return item["id"]
    return None


def newest_event(client: ApiClient) -> EventsCursor:
    """The cursor a full listing starts from: the newest event of any type, read before the
    listing so that changes made during it come through the events feed next time."""
    data, _ = read_page(client, EVENTS_PATH, {"limit": 10})
    now = server_seconds(client)
    empty = EventsCursor(created=0, event_id=None, seen=[], synced_at=float(now or 0))
    return next_cursor(empty, [e for e in data if is_event(e)], now)


def server_seconds(client: ApiClient) -> int | None:
    """The server's clock (its latest Date header) in unix seconds."""
    moment = client.server_now()
    return int(moment.timestamp()) if moment is not None else None


def window_holds(client: ApiClient, cursor: EventsCursor, window_seconds: float) -> bool:
    """Whether every event since the cursor can still be listed. Stripe keeps events for 30
    days: once the cursor's own event is gone, a full listing is due."""
    if cursor.get("event_id") is None:
        client.get(EVENTS_PATH, {"limit": 1})  # for the server's clock
        now = server_seconds(client)
        return now is not None and now - cursor.get("synced_at", 0.0) < window_seconds
    try:
        client.get(f"{EVENTS_PATH}/{cursor['event_id']}")
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def events_since(client: ApiClient, types: Iterable[str], cursor: EventsCursor, page_size: int) -> list[Any]:
    """Items of the events feed (of `types`, at or after the cursor, not seen), newest first."""
    params = {"types[]": list(types), "created[gte]": cursor["created"]}
    seen = set(cursor["seen"])
    items: list[Any] = []
    for page in list_pages(client, EVENTS_PATH, params, page_size):
        items.extend(e for e in page if not (is_event(e) and e["id"] in seen))
    return items


def next_cursor(
    cursor: EventsCursor, events: list[dict[str, Any]], server_now: int | None = None
) -> EventsCursor:
    """The cursor after `events` were taken in: the newest event created at or before the
    server's clock (an event stamped past it is loaded but never becomes the cursor)."""
    if server_now is not None:
        events = [e for e in events if e["created"] <= server_now]
    if not events:
        return cursor
    top = max(e["created"] for e in events)
    at_top = [e["id"] for e in events if e["created"] == top]
    carried = cursor["seen"] if top == cursor["created"] else []
    return {**cursor, "created": top, "event_id": at_top[0], "seen": [*carried, *at_top]}


def latest_per_object(events: list[dict[str, Any]], object_name: str) -> list[dict[str, Any]]:
    """The newest event per changed object of one kind (events arrive newest first)."""
    newest: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: e["created"], reverse=True):
        obj = event["data"]["object"]
        if obj.get("object") == object_name:
            # an object without an id still goes on, so its contract quarantines it
            key = obj["id"] if isinstance(obj.get("id"), str) else f"event:{event['id']}"
            newest.setdefault(key, event)
    return list(newest.values())


def object_from_event(
    client: ApiClient, event: dict[str, Any], spec: StripeResource, stripe_version: str
) -> dict[str, Any]:
    """The object as of its newest event, in the API version the event was created with (Stripe
    renders an event once, in the account's version of that day), since staging reads both
    generations; fetched again in the pinned version only when the snapshot's shape would lose
    what the run needs: a version older than staging reads, or a current-generation snapshot
    (no `invoice.charge` / `payment_intent`) while the run reads the old generation (and so
    lists no invoice payments to recover them from). Versioned by the event's time."""
    snapshot: dict[str, Any] = {**event["data"]["object"], VERSION_COLUMN: event["created"]}
    if event.get("type") in spec.deleted_on:
        return {**snapshot, "deleted": True}
    if readable(event.get("api_version"), stripe_version) or not isinstance(snapshot.get("id"), str):
        return snapshot
    try:
        fetched = client.get(f"{spec.path}/{snapshot['id']}")
    except ApiError as exc:
        if exc.status == 404:
            return {**snapshot, "deleted": True}
        raise
    return {**fetched, VERSION_COLUMN: event["created"]} if isinstance(fetched, dict) else snapshot


def fetch_by_id(client: ApiClient, spec: StripeResource, object_id: str) -> dict[str, Any] | None:
    """One object read again by id (None when it no longer exists)."""
    try:
        fetched = client.get(f"{spec.path}/{object_id}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return fetched if isinstance(fetched, dict) else None


def version_of(record: Any) -> int | None:
    """The newest time an object carries (created, its status transitions, cancel and end
    times): Stripe objects have no last-modified stamp, and a later transition is a later
    version."""
    if not isinstance(record, Mapping):
        return None
    stamps = [record.get(name) for name in VERSION_FIELDS]
    transitions = record.get("status_transitions")
    if isinstance(transitions, Mapping):
        stamps.extend(transitions.values())
    ints = [s for s in stamps if isinstance(s, int) and not isinstance(s, bool)]
    return max(ints, default=None)


def versioned(record: Any) -> Any:
    """The record with its version (`_version_at`), unless it already has one (from its event)."""
    if not isinstance(record, dict) or VERSION_COLUMN in record:
        return record
    return {**record, VERSION_COLUMN: version_of(record)}


def readable(event_version: Any, stripe_version: str) -> bool:
    """Whether an event's snapshot can be kept as it is by a run pinned to `stripe_version`."""
    if event_version in (None, stripe_version):
        return True
    version = str(event_version)
    if version[:10] < STRIPE_VERSION:
        return False
    return not is_current_generation(version) or is_current_generation(stripe_version)


def complete_nested(client: ApiClient, record: Any, spec: StripeResource, page_size: int) -> Any:
    """Fill nested lists Stripe cut short (`has_more`), e.g. an invoice's lines."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return record
    for field, template in spec.nested_lists:
        nested = record.get(field)
        if not (isinstance(nested, Mapping) and nested.get("has_more")):
            continue
        url = nested.get("url") or template.format(id=record["id"])
        split = urlsplit(url)
        items = [
            item
            for page in list_pages(client, split.path, dict(parse_qsl(split.query)), page_size)
            for item in page
        ]
        record = {**record, field: {**nested, "data": items, "has_more": False}}
    return record


def nested_violation(record: Any, spec: StripeResource) -> str | None:
    """The first nested amount that is not an integer (e.g. an invoice line's amount)."""
    if not isinstance(record, Mapping):
        return None
    for field, name in spec.nested_ints:
        nested = record.get(field)
        items = nested.get("data") if isinstance(nested, Mapping) else None
        for index, item in enumerate(items if isinstance(items, list) else []):
            value = item.get(name) if isinstance(item, Mapping) else None
            if not isinstance(value, int) or isinstance(value, bool):
                return f"{field}.data[{index}].{name} is {type(value).__name__}, expected int"
    return None


def is_event(item: Any) -> bool:
    return (
        isinstance(item, Mapping)
        and isinstance(item.get("id"), str)
        and isinstance(item.get("created"), int)
        and isinstance(item.get("data"), Mapping)
        and isinstance(item["data"].get("object"), Mapping)
    )
