"""The scheduling source (Calendly v2): scheduled events and their invitees into raw_scheduling."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
from dlt.sources import DltResource

from ingestion import progress
from ingestion.contracts import hint_columns
from ingestion.http import ApiClient, ApiError, Pace, RetryPolicy, calendly_window
from ingestion.scheduling import helpers
from ingestion.scheduling.settings import (
    EVENT_COLUMNS,
    EVENTS_CONTRACT,
    EVENTS_PATH,
    HORIZON_DAYS,
    INVITEE_COLUMNS,
    INVITEES_CONTRACT,
    INVITEES_PATH,
    NO_SHOW_DAYS,
    PAGE_SIZE,
    RESCAN_DAYS,
    STATUSES,
    UPDATED_MARGIN_HOURS,
    WORKERS,
)

__all__ = ["scheduling_source"]

log = logging.getLogger(__name__)


@dlt.source(name="scheduling")
def scheduling_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    organization: str | None = None,
    rescan_days: int = RESCAN_DAYS,
    horizon_days: int = HORIZON_DAYS,
    now: datetime | None = None,
    page_size: int = PAGE_SIZE,
    workers: int = WORKERS,
    all_invitees: bool = False,
    updated_margin_hours: float = UPDATED_MARGIN_HOURS,
    no_show_days: float = NO_SHOW_DAYS,
    rate: float | None = None,
    max_attempts: int = 8,
    backoff_base: float = 0.25,
    timeout: float = 60.0,
    event_uris: list[str] | None = None,
) -> Sequence[DltResource]:
    """Calendly scheduled events (active and canceled) and their invitees, upserted by URI.

    Calendly cannot list what changed, so the first run reads all history and later runs
    re-read the events starting from `rescan_days` ago to `horizon_days` ahead. Invitees are
    listed per event, one request each, so a re-scan lists them only for events updated since
    the last scan (less `updated_margin_hours`, for clock skew) or started from `no_show_days`
    before it until now (`helpers.needs_invitees`); `all_invitees` lists them for every event
    in the window (for group events that gain invitees without the event changing).
    `organization` defaults to the token user's; `now` (default: the clock) anchors the window.
    `event_uris` reads only those events and all their invitees, wherever they start (what
    webhooks named: a change to an event outside the window that no re-scan would see), and
    leaves the window's scan state as it was.
    """
    retry = RetryPolicy(max_attempts=max_attempts, backoff_base=backoff_base)
    client = ApiClient(
        "scheduling",
        base_url,
        access_token,
        pace=Pace(rate=rate),
        window=calendly_window,
        retry=retry,
        timeout=timeout,
    )
    stats = client.stats  # not the client: it closes once the resources are gone
    progress.current("scheduling").retries = lambda: stats.retries
    holder = _Holder(client)
    scan: dict[str, Any] = {}  # this run's moment and the previous scan's, for read_invitees

    def read_events() -> Iterator[Any]:
        state = dlt.current.resource_state()
        moment = now or datetime.now(UTC)
        if event_uris is not None:
            scan.update(now=moment, since=None)  # every named event's invitees
            yield from _named_events(holder.client, event_uris, page_size)
            return
        previous = state.get("last_scan_at")
        since = None  # None: every event's invitees (the first scan, or asked for)
        if previous is not None and not all_invitees:
            since = helpers.parse_time(previous) - timedelta(hours=updated_margin_hours)
        scan.update(now=moment, since=since)
        lower, upper = helpers.scan_window(previous, moment, rescan_days, horizon_days)
        params: dict[str, Any] = {
            "organization": organization or helpers.organization_of(holder.client),
            "count": page_size,
            "sort": "start_time:asc",
        }
        if lower is not None and upper is not None:
            params.update(min_start_time=lower, max_start_time=upper)
        tracker = progress.current("scheduling")
        for status in STATUSES:
            for page in helpers.pages(holder.client, EVENTS_PATH, {**params, "status": status}):
                tracker.page("scheduled_events", len(page))
                good, bad = EVENTS_CONTRACT.partition(helpers.SYSTEM, page)
                if good:
                    yield good
                yield from bad
        state["last_scan_at"] = helpers.calendly_time(moment)

    def read_invitees(items: Any) -> Iterator[Any]:
        page = items if isinstance(items, list) else [items]
        since, moment = scan["since"], scan["now"]
        changed = [i for i in page if helpers.needs_invitees(i, since, moment, no_show_days)]
        uris = helpers.event_uris(changed)
        tracker = progress.current("scheduling")
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="calendly") as pool:
            for records in pool.map(lambda uri: _invitees_of(holder.client, uri, page_size), uris):
                tracker.page("invitees", len(records))
                good, bad = INVITEES_CONTRACT.partition(helpers.SYSTEM, records)
                if good:
                    yield good
                yield from bad

    events = dlt.resource(read_events, name="scheduled_events", primary_key="uri", write_disposition="merge")
    invitees = dlt.transformer(
        read_invitees, data_from=events, name="invitees", primary_key="uri", write_disposition="merge"
    )
    return hint_columns(events, EVENT_COLUMNS), hint_columns(invitees, INVITEE_COLUMNS)


class _Holder:
    """Owns the client; dlt runs clones of the resources, so close it once all are gone."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        weakref.finalize(self, client.close)


def _named_events(client: ApiClient, uris: Sequence[str], page_size: int) -> Iterator[Any]:
    """Each named event, read by its URI; one that no longer exists (404) is skipped."""
    tracker = progress.current("scheduling")
    page: list[Any] = []
    for uri in dict.fromkeys(uris):
        uuid = helpers.event_uuid(uri)
        if uuid is None:
            log.warning("scheduling: %r is not a scheduled event URI; skipped", uri)
            continue
        try:
            data = client.get(f"{EVENTS_PATH}/{uuid}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            log.warning("scheduling: event %s no longer exists; skipped", uuid)
            continue
        page.append(data.get("resource") if isinstance(data, dict) else data)
        if len(page) >= page_size:
            yield from _checked(page, tracker)
            page = []
    if page:
        yield from _checked(page, tracker)


def _checked(page: list[Any], tracker: progress.Progress) -> Iterator[Any]:
    tracker.page("scheduled_events", len(page))
    good, bad = EVENTS_CONTRACT.partition(helpers.SYSTEM, page)
    if good:
        yield good
    yield from bad


def _invitees_of(client: ApiClient, event_uri: str, page_size: int) -> list[Any]:
    """Every invitee of one event, canceled ones included."""
    uuid = helpers.event_uuid(event_uri)
    path = INVITEES_PATH.format(uuid=uuid)
    return [record for page in helpers.pages(client, path, {"count": page_size}) for record in page]
