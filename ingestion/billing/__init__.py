"""Billing (Stripe) source: customers, invoices, charges, payment intents and subscriptions."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.sources import DltResource

from ingestion import guard, progress
from ingestion import mend as mend_module
from ingestion.arrow import empty_table
from ingestion.billing import helpers
from ingestion.billing.helpers import EventsCursor
from ingestion.billing.settings import (
    EVENTS_WINDOW_DAYS,
    PAGE_SIZE,
    RESOURCES,
    STRIPE_VERSION,
    VERSION_COLUMN,
    StripeResource,
    check_version,
)
from ingestion.contracts import declared_schema, flag_row, quarantine_row
from ingestion.http import ApiClient, ClientLease, Pace, RetryPolicy
from ingestion.mend import AUDIT, FUTURE, Mend

log = logging.getLogger(__name__)

SYSTEM = "billing"
CURSOR_KEY = "events_cursor"


@dataclass(frozen=True)
class _Run:
    lease: ClientLease
    stripe_version: str
    page_size: int
    window_seconds: float
    refetch: dict[str, list[str]]


@dlt.source(schema=declared_schema(SYSTEM, {r.name: r.columns for r in RESOURCES}))
def billing_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    stripe_version: str = STRIPE_VERSION,
    page_size: int = PAGE_SIZE,
    requests_per_second: float | None = None,
    max_attempts: int = 8,
    timeout: float = 60.0,
    events_window_days: int = EVENTS_WINDOW_DAYS,
    refetch: dict[str, list[str]] | None = None,
) -> list[DltResource]:
    """Stripe objects merged on `id`: a full listing first, then the events feed since the
    cursor kept in dlt state (a full listing again once the events window has passed it).
    `refetch` names objects (resource -> ids) to read again by id, as an audit asks.

    `stripe_version` is the API version requests pin (`Stripe-Version`); staging reads the
    2024-06-20 shapes and the current generation's (2025-03-31.basil on), whose payments
    reach invoices through invoice payments (read from that version on; before, the table
    exists, empty)."""
    stripe_version = check_version(stripe_version)

    def client() -> ApiClient:
        return ApiClient(
            SYSTEM,
            base_url,
            access_token,
            pace=Pace(rate=requests_per_second),
            retry=RetryPolicy(max_attempts=max_attempts),
            timeout=timeout,
            headers={"Stripe-Version": stripe_version},
        )

    run = _Run(
        ClientLease(client), stripe_version, page_size, events_window_days * 86_400.0, dict(refetch or {})
    )
    progress.current(SYSTEM).retries = run.lease.retries
    return [
        dlt.resource(_sync(spec, run), name=spec.name, primary_key="id", write_disposition="merge")
        for spec in RESOURCES
    ]


def _sync(spec: StripeResource, run: _Run) -> Iterator[Any]:
    if not spec.served_in(run.stripe_version):
        yield empty_table(spec.columns)  # this API version has no such resource: its table, empty
        return
    yield from guard.guarded(SYSTEM, spec.name, _read(spec, run))


def _read(spec: StripeResource, run: _Run) -> Iterator[Any]:
    """One resource: a full listing without a usable cursor, else the objects changed since;
    then the objects kept for fetching again by id."""
    state = dlt.current.resource_state(spec.name)
    mend = Mend(SYSTEM, spec.name, state)
    mend.add_many(run.refetch.get(spec.name, []), AUDIT)
    retry = mend.waiting()  # from earlier runs, and what an audit asks for
    tracker = progress.current(SYSTEM)
    with run.lease.open() as client:
        cursor: EventsCursor | None = state.get(CURSOR_KEY)
        if cursor is not None and not helpers.window_holds(client, cursor, run.window_seconds):
            log.info("%s: %s cursor is older than the events window; listing everything", SYSTEM, spec.name)
            cursor = None
        if cursor is None:
            start = helpers.newest_event(client)
            pages = helpers.list_pages(client, spec.path, spec.list_params, run.page_size)
            yield from _emit(spec, client, pages, run, tracker, mend)
        else:
            items = helpers.events_since(client, spec.event_types, cursor, run.page_size)
            events = [e for e in items if helpers.is_event(e)]
            for item in items:
                if not helpers.is_event(item):
                    key = item.get("id") if isinstance(item, dict) else None
                    yield quarantine_row(SYSTEM, spec.name, item, "malformed event", key)
            yield from _future_events(spec, events, helpers.server_seconds(client), mend)
            changed = helpers.latest_per_object(events, spec.object)
            yield from _emit(spec, client, _changed_pages(client, changed, spec, run), run, tracker, mend)
            start = helpers.next_cursor(cursor, events, helpers.server_seconds(client))
        yield from _mended(spec, client, run, tracker, mend, retry)
        state[CURSOR_KEY] = start  # committed with the load package, or dropped with a failed run


def _future_events(
    spec: StripeResource, events: list[dict[str, Any]], now: int | None, mend: Mend
) -> Iterator[Any]:
    """Flag the objects whose events are stamped past the server's clock (they are loaded, but
    never move the cursor, and are fetched again by id next run)."""
    slack = guard.FUTURE_SLACK.total_seconds()
    for event in events:
        obj = event["data"]["object"]
        if now is None or event["created"] <= now + slack or obj.get("object") != spec.object:
            continue
        key = str(obj.get("id"))
        mend.add(key, FUTURE)
        detail = f"event {event['id']} created {event['created']} is past the server's clock {now}"
        yield flag_row(SYSTEM, spec.name, key, "future_stamp", detail)


def _mended(
    spec: StripeResource,
    client: ApiClient,
    run: _Run,
    tracker: progress.Progress,
    mend: Mend,
    retry: list[str],
) -> Iterator[Any]:
    """Objects fetched again by id: those that keep their contract settle their key."""
    accepted = mend_module.accepted(SYSTEM, spec.name)
    yield from mend.accept(accepted)
    found, gone = [], []
    for key in retry:
        if key in accepted:
            continue
        record = helpers.fetch_by_id(client, spec, key)
        if record is None:
            gone.append(key)
        else:
            found.append(record)
    for i in range(0, len(found), run.page_size):
        page = found[i : i + run.page_size]
        passed = yield from _emit(spec, client, iter([page]), run, tracker, mend)
        yield from mend.settle(passed)
    yield from mend.settle([], gone)


def _changed_pages(
    client: ApiClient, changed: list[dict[str, Any]], spec: StripeResource, run: _Run
) -> Iterator[list[Any]]:
    for i in range(0, len(changed), run.page_size):
        chunk = changed[i : i + run.page_size]
        yield [helpers.object_from_event(client, e, spec, run.stripe_version) for e in chunk]


def _emit(
    spec: StripeResource,
    client: ApiClient,
    pages: Iterator[list[Any]],
    run: _Run,
    tracker: progress.Progress,
    mend: Mend,
) -> Generator[Any, None, list[str]]:
    """Complete, check and yield each page (one copy per id, the newest); records that break
    the contract are quarantined (and fetched again next run). Returns the ids that passed."""
    passed: list[str] = []
    for page in pages:
        records = [helpers.versioned(helpers.complete_nested(client, r, spec, run.page_size)) for r in page]
        records = guard.newest_first_wins(records, _id, lambda r: r.get(VERSION_COLUMN))
        good, bad = spec.contract.partition(SYSTEM, records, lambda r: helpers.nested_violation(r, spec))
        mend.quarantined(bad)
        yield from bad
        if good:
            yield good
        passed.extend(str(r["id"]) for r in good)
        tracker.page(spec.name, len(page))
    return passed


def _id(record: Any) -> str | None:
    return record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
