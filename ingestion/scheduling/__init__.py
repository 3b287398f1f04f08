"""The scheduling source (Calendly v2): scheduled events and their invitees into raw_scheduling."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.sources import DltResource

from ingestion import guard, progress
from ingestion import mend as mend_module
from ingestion.contracts import flag_row, hint_columns, quarantine_row
from ingestion.http import ApiClient, Pace, RetryPolicy, calendly_window
from ingestion.mend import AUDIT, FUTURE, Mend
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

SYSTEM = "scheduling"


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
    refetch: dict[str, list[str]] | None = None,
    event_uris: list[str] | None = None,
) -> Sequence[DltResource]:
    """Calendly scheduled events (active and canceled) and their invitees, upserted by URI.

    Calendly cannot list what changed, so the first run reads all history and later runs
    re-read the events starting from `rescan_days` ago to `horizon_days` ahead. Invitees are
    listed per event, one request each, so a re-scan lists them only for events updated since
    the last scan (less `updated_margin_hours`, for a write that lands late) or started from
    `no_show_days` before it until now (`helpers.needs_invitees`); `all_invitees` lists them for
    every event in the window (for group events that gain invitees without the event changing).
    `organization` defaults to the token user's. Every window and the scan's own time come
    from Calendly's clock (the Date header of its answers), never this machine's; `now`
    overrides it. `refetch` names events (`scheduled_events` -> URIs) to read again with their
    invitees, as an audit asks. `event_uris` reads only those events and all their invitees,
    wherever they start (what webhooks named: a change to an event outside the window that no
    re-scan would see), and leaves the window's scan state as it was.
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
    # this run's clock and scan bounds, shared by read_invitees (filled by read_events)
    scan: dict[str, Any] = {}

    def read_events() -> Iterator[Any]:
        yield from guard.guarded(SYSTEM, "scheduled_events", events_scan())

    def events_scan() -> Iterator[Any]:
        state = dlt.current.resource_state("scheduled_events")
        mend = Mend(SYSTEM, "scheduled_events", state)
        if event_uris is not None:
            yield from named_events(state, mend)
            return
        mend.add_many((refetch or {}).get("scheduled_events", []), AUDIT)
        retry = mend.waiting()
        me = helpers.me(holder.client)  # also the server's clock, which times this scan
        moment = now or helpers.server_clock(holder.client)
        previous = state.get("last_scan_at")
        since = None  # None: every event's invitees (the first scan, or asked for)
        if previous is not None and not all_invitees:
            since = helpers.parse_time(previous) - timedelta(hours=updated_margin_hours)
        scan.update(now=moment, since=since, previous=previous, again=set(retry))
        lower, upper = helpers.scan_window(previous, moment, rescan_days, horizon_days)
        params: dict[str, Any] = {
            "organization": organization or helpers.organization_of(me),
            "count": page_size,
            "sort": "start_time:asc",
        }
        if lower is not None and upper is not None:
            params.update(min_start_time=lower, max_start_time=upper)
        tracker = progress.current("scheduling")
        for status in STATUSES:
            query = {**params, "status": status}
            confirm = helpers.nothing_after(holder.client, EVENTS_PATH, query, moment)
            for page in helpers.pages(holder.client, EVENTS_PATH, query, confirm):
                tracker.page("scheduled_events", len(page))
                yield from _checked_events(page, mend, helpers.server_clock(holder.client))
        yield from _mended_events(holder.client, mend, retry, helpers.server_clock(holder.client))
        state["last_scan_at"] = helpers.calendly_time(moment)

    def named_events(state: Any, mend: Mend) -> Iterator[Any]:
        """The named events, read by URI (one that no longer exists is skipped), every invitee
        of each; the window's scan state stays as it was."""
        assert event_uris is not None
        if not event_uris:
            return
        read = (helpers.event_by_uri(holder.client, uri) for uri in dict.fromkeys(event_uris))
        found = [event for event in read if event is not None]
        moment = now or helpers.server_clock(holder.client)
        scan.update(now=moment, since=None, previous=state.get("last_scan_at"), again=set())
        progress.current("scheduling").page("scheduled_events", len(found))
        yield from _checked_events(found, mend, moment)

    def restore_scan() -> None:
        """Invitees not read in full: the next scan reads them again from the same point."""
        state = dlt.current.resource_state("scheduled_events")
        if scan.get("previous") is None:
            state.pop("last_scan_at", None)
        else:
            state["last_scan_at"] = scan["previous"]

    def read_invitees(items: Any) -> Iterator[Any]:
        yield from guard.guarded(SYSTEM, "invitees", invitees_of(items), restore_scan)

    def invitees_of(items: Any) -> Iterator[Any]:
        page = items if isinstance(items, list) else [items]
        since, moment = scan["since"], scan["now"]
        mend = Mend(SYSTEM, "scheduled_events", dlt.current.resource_state("scheduled_events"))
        tracker = progress.current("scheduling")
        events = {e["uri"]: e for e in page if isinstance(e, dict) and isinstance(e.get("uri"), str)}
        again = scan.get("again") or set()  # events fetched again by URI bring all their invitees
        changed = [
            i
            for i in page
            if helpers.needs_invitees(i, since, moment, no_show_days)
            or (isinstance(i, dict) and i.get("uri") in again)
        ]
        uris = helpers.event_uris(changed)
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="calendly") as pool:
            for uri, records in zip(
                uris, pool.map(lambda uri: _invitees_of(holder.client, uri, page_size), uris), strict=True
            ):
                tracker.page("invitees", len(records))
                event = events.get(uri)
                if event is None or "quarantine_id" in event:
                    # the event itself is quarantined: its invitees wait for it, keyed to it
                    yield from _with_parent(records, uri)
                    continue
                helpers.all_invitees_read(event, records)
                records = guard.newest_first_wins(records, _uri, lambda r: r.get("updated_at"))
                good, bad = INVITEES_CONTRACT.partition(helpers.SYSTEM, records, parent=uri)
                mend.quarantined(bad)
                if good:
                    yield good
                yield from bad

    events = dlt.resource(read_events, name="scheduled_events", primary_key="uri", write_disposition="merge")
    invitees = dlt.transformer(
        read_invitees, data_from=events, name="invitees", primary_key="uri", write_disposition="merge"
    )
    return (
        hint_columns(events, {**EVENT_COLUMNS, "updated_at": NEWEST_WINS}),
        hint_columns(invitees, {**INVITEE_COLUMNS, "updated_at": NEWEST_WINS}),
    )


# one copy per record in a load: the most recently updated (Calendly's timestamps sort as text)
NEWEST_WINS: TColumnSchema = {"data_type": "text", "nullable": True, "dedup_sort": "desc"}


def _uri(record: Any) -> str | None:
    return record.get("uri") if isinstance(record, dict) and isinstance(record.get("uri"), str) else None


def _checked_events(page: list[Any], mend: Mend, now: datetime) -> Iterator[Any]:
    """One copy per event (the latest updated), contracts checked, and events updated past
    Calendly's own clock flagged (loaded; the scan's time never comes from them)."""
    page = guard.newest_first_wins(page, _uri, lambda r: r.get("updated_at"))
    good, bad = EVENTS_CONTRACT.partition(helpers.SYSTEM, page)
    mend.quarantined(bad)
    if good:
        yield good
    yield from bad
    yield from _flag_future(good, mend, now)


def _flag_future(events: list[Any], mend: Mend, now: datetime) -> Iterator[Any]:
    """Events updated past Calendly's clock: flagged, and fetched again until plausible."""
    for event in events:
        if _is_future(event, now):
            mend.add(event["uri"], FUTURE)
            clock = helpers.calendly_time(now)
            detail = f"updated_at {event['updated_at']} is past the server's clock {clock}"
            yield flag_row(SYSTEM, "scheduled_events", event["uri"], "future_stamp", detail)


def _is_future(event: Any, now: datetime) -> bool:
    return isinstance(event, dict) and guard.is_future(_stamp(event.get("updated_at")), now)


def _stamp(value: Any) -> datetime | None:
    try:
        return helpers.parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _mended_events(client: ApiClient, mend: Mend, retry: list[str], now: datetime) -> Iterator[Any]:
    """Events fetched again by URI (a quarantined event, or one whose invitees were): those
    that keep their contract settle, and bring their invitees along."""
    accepted = mend_module.accepted(SYSTEM, "scheduled_events")
    yield from mend.accept(accepted)
    found, gone = [], []
    for uri in retry:
        if uri in accepted:
            continue
        event = helpers.event_by_uri(client, uri)
        if event is None:
            gone.append(uri)
        else:
            found.append(event)
    good, bad = EVENTS_CONTRACT.partition(helpers.SYSTEM, found)
    mend.quarantined(bad)
    if good:
        yield good
    yield from bad
    yield from mend.settle([e["uri"] for e in good if not _is_future(e, now)], gone)
    yield from _flag_future(good, mend, now)


def _with_parent(records: list[Any], event_uri: str) -> Iterator[Any]:
    reason = f"its scheduled event {event_uri} is quarantined"
    for record in records:
        yield quarantine_row(SYSTEM, "invitees", record, reason, _uri(record), event_uri)


class _Holder:
    """Owns the client; dlt runs clones of the resources, so close it once all are gone."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        weakref.finalize(self, client.close)


def _invitees_of(client: ApiClient, event_uri: str, page_size: int) -> list[Any]:
    """Every invitee of one event, canceled ones included."""
    uuid = helpers.event_uuid(event_uri)
    path = INVITEES_PATH.format(uuid=uuid)
    return [record for page in helpers.pages(client, path, {"count": page_size}) for record in page]
