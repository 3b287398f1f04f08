"""Billing (Stripe) source: customers, invoices, charges, payment intents and subscriptions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.sources import DltResource

from ingestion import progress
from ingestion.arrow import empty_table
from ingestion.billing import helpers
from ingestion.billing.helpers import EventsCursor
from ingestion.billing.settings import (
    EVENTS_WINDOW_DAYS,
    PAGE_SIZE,
    RESOURCES,
    STRIPE_VERSION,
    StripeResource,
    check_version,
)
from ingestion.contracts import declared_schema, quarantine_row
from ingestion.http import ApiClient, ClientLease, Pace, RetryPolicy

log = logging.getLogger(__name__)

SYSTEM = "billing"
CURSOR_KEY = "events_cursor"


@dataclass(frozen=True)
class _Run:
    lease: ClientLease
    stripe_version: str
    page_size: int
    window_seconds: float


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
) -> list[DltResource]:
    """Stripe objects merged on `id`: a full listing first, then the events feed since the
    cursor kept in dlt state (a full listing again once the events window has passed it).

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

    run = _Run(ClientLease(client), stripe_version, page_size, events_window_days * 86_400.0)
    progress.current(SYSTEM).retries = run.lease.retries
    return [
        dlt.resource(_sync(spec, run), name=spec.name, primary_key="id", write_disposition="merge")
        for spec in RESOURCES
    ]


def _sync(spec: StripeResource, run: _Run) -> Iterator[Any]:
    """One resource: a full listing without a usable cursor, else the objects changed since."""
    if spec.since is not None and run.stripe_version[:10] < spec.since:
        yield empty_table(spec.columns)  # this API version has no such resource: its table, empty
        return
    state = dlt.current.resource_state(spec.name)
    tracker = progress.current(SYSTEM)
    with run.lease.open() as client:
        cursor: EventsCursor | None = state.get(CURSOR_KEY)
        if cursor is not None and not helpers.window_holds(client, cursor, run.window_seconds):
            log.info("%s: %s cursor is older than the events window; listing everything", SYSTEM, spec.name)
            cursor = None
        if cursor is None:
            start = helpers.newest_event(client)
            pages = helpers.list_pages(client, spec.path, spec.list_params, run.page_size)
            yield from _emit(spec, client, pages, run, tracker)
        else:
            items = helpers.events_since(client, spec.event_types, cursor, run.page_size)
            events = [e for e in items if helpers.is_event(e)]
            for item in items:
                if not helpers.is_event(item):
                    key = item.get("id") if isinstance(item, dict) else None
                    yield quarantine_row(SYSTEM, spec.name, item, "malformed event", key)
            changed = helpers.latest_per_object(events, spec.object)
            yield from _emit(spec, client, _changed_pages(client, changed, spec, run), run, tracker)
            start = helpers.next_cursor(cursor, events)
        state[CURSOR_KEY] = start  # committed with the load package, or dropped with a failed run


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
) -> Iterator[Any]:
    """Complete, check and yield each page; records that break the contract are quarantined."""
    for page in pages:
        records = [helpers.complete_nested(client, r, spec, run.page_size) for r in page]
        good, bad = spec.contract.partition(SYSTEM, records, lambda r: helpers.nested_violation(r, spec))
        yield from bad
        if good:
            yield good
        tracker.page(spec.name, len(page))
