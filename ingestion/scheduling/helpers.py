"""Calendly paging, the re-scan window of scheduled events, and URI helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion import guard
from ingestion.http import ApiClient, ApiError, ResponseShapeError
from ingestion.scheduling.settings import EVENTS_URI_PREFIX, ME_PATH

SYSTEM = "scheduling"


def calendly_time(moment: datetime) -> str:
    """Calendly's timestamp format: UTC with microseconds and a `Z`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def scan_window(
    previous_scan: str | None, now: datetime, rescan_days: int, horizon_days: int
) -> tuple[str | None, str | None]:
    """(min_start_time, max_start_time) to list; (None, None) scans all history the first time.

    Calendly cannot filter on `updated_at`, so a later run re-reads every event that starts
    between `rescan_days` before the earlier of this run and the last one, and `horizon_days`
    ahead: a run after a long pause still re-reads the days it missed.
    """
    if previous_scan is None:
        return None, None
    since = min(now, parse_time(previous_scan)) - timedelta(days=rescan_days)
    return calendly_time(since), calendly_time(now + timedelta(days=horizon_days))


def me(client: ApiClient) -> Any:
    """The token's user (`GET /users/me`)."""
    return client.get(ME_PATH)


def server_clock(client: ApiClient) -> datetime:
    """Calendly's clock: the Date of its latest answer. An API that sends none is an error
    rather than a reason to fall back on this machine's clock."""
    moment = client.server_now()
    if moment is None:
        raise ResponseShapeError(f"{SYSTEM}: the API's answers carry no Date header to time the scan by")
    return moment


def event_by_uri(client: ApiClient, uri: str) -> dict[str, Any] | None:
    """One scheduled event read again (None when it no longer exists)."""
    uuid = event_uuid(uri)
    if uuid is None:
        return None
    try:
        data = client.get(f"/scheduled_events/{uuid}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    resource = data.get("resource") if isinstance(data, dict) else None
    return resource if isinstance(resource, dict) else None


def organization_of(data: Any) -> str:
    """The organization URI of the token's user (from `GET /users/me`)."""
    resource = data.get("resource") if isinstance(data, dict) else None
    organization = resource.get("current_organization") if isinstance(resource, dict) else None
    if not isinstance(organization, str) or not organization:
        raise ValueError("scheduling: /users/me did not name the current organization")
    return organization


def pages(
    client: ApiClient,
    path: str,
    params: dict[str, Any],
    confirm_end: Callable[[list[Any]], None] | None = None,
) -> Iterator[list[Any]]:
    """Every page of a Calendly list, following `pagination.next_page_token` until it is null.

    A token read before stops the scan (it would loop); a full page without a token is
    handed to `confirm_end`, which may look past it and raise when the list was cut short.
    """
    token: str | None = None
    advancing = guard.Advancing(f"{SYSTEM}: {path}")
    while True:
        query = dict(params)
        if token:
            query["page_token"] = token
        data = client.get(path, query)
        collection = data.get("collection") if isinstance(data, dict) else None
        if not isinstance(collection, list):
            raise ResponseShapeError(f"{SYSTEM}: {path} answered without a `collection` list")
        yield collection
        pagination = data.get("pagination")
        token = pagination.get("next_page_token") if isinstance(pagination, dict) else None
        if not token:
            if confirm_end is not None and len(collection) >= int(params.get("count") or 0) > 0:
                confirm_end(collection)
            return
        advancing.check(token)


def nothing_after(
    client: ApiClient, path: str, params: dict[str, Any], began: datetime
) -> Callable[[list[Any]], None]:
    """A `confirm_end` for events listed by start time: one page from the last start time read.
    An event there that was not read and was not created since the scan `began` (new bookings
    land anywhere in the order) means the list was cut short."""

    def confirm(page: list[Any]) -> None:
        last = [e for e in page if isinstance(e, dict) and isinstance(e.get("start_time"), str)]
        if not last:
            return
        read = {e.get("uri") for e in page if isinstance(e, dict)}
        query = {**params, "min_start_time": last[-1]["start_time"]}
        data = client.get(path, query)
        for event in data.get("collection") or [] if isinstance(data, dict) else []:
            if not isinstance(event, dict) or event.get("uri") in read:
                continue
            created = event.get("created_at")
            if not (isinstance(created, str) and _parsed(created) and parse_time(created) >= began):
                detail = f"a full page had no next page token, and {event.get('uri')} follows it"
                raise guard.truncated(f"{SYSTEM}: {path}", detail)

    return confirm


def _parsed(value: str) -> bool:
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


def all_invitees_read(event: Any, invitees: list[Any]) -> None:
    """An event counts its invitees (`invitees_counter.total`, canceled ones included): reading
    fewer means the list was cut short."""
    counter = event.get("invitees_counter") if isinstance(event, dict) else None
    total = counter.get("total") if isinstance(counter, dict) else None
    if isinstance(total, int) and not isinstance(total, bool) and len(invitees) < total:
        detail = f"{len(invitees)} invitees read where the event counts {total}"
        raise guard.truncated(f"{SYSTEM}: invitees of {event.get('uri')}", detail)


def event_uuid(uri: str) -> str | None:
    """`…/scheduled_events/<uuid>` -> `<uuid>`; None for anything else."""
    head, found, uuid = uri.rpartition(EVENTS_URI_PREFIX)
    return uuid if found and head and uuid and "/" not in uuid else None


def needs_invitees(item: Any, since: datetime | None, now: datetime, no_show_days: float) -> bool:
    """Whether a scan must read this event's invitees (again).

    Booking, cancelling and rescheduling change the event itself (status, counter,
    `updated_at`); after the meeting, a no-show is marked on the invitee alone. So after the
    first scan (`since` None) the invitees of an event are read when it was updated at or
    after `since`, or started between `no_show_days` before `since` and `now`; an upcoming
    or long-past event that did not change keeps the invitees loaded before. A record that
    is not a clean event (quarantined) is read.
    """
    if since is None or not isinstance(item, dict) or "quarantine_id" in item:
        return True
    try:
        if parse_time(item["updated_at"]) >= since:
            return True
        return since - timedelta(days=no_show_days) <= parse_time(item["start_time"]) <= now
    except (KeyError, TypeError, ValueError):
        return True


def event_uris(items: Any) -> list[str]:
    """Event URIs in a page an events resource handed on, quarantined events included (their
    invitees keep their own contract)."""
    uris = []
    for item in items if isinstance(items, list) else [items]:
        if not isinstance(item, dict):
            continue
        uri = item.get("record_key") if "quarantine_id" in item else item.get("uri")
        if isinstance(uri, str) and event_uuid(uri):
            uris.append(uri)
    return list(dict.fromkeys(uris))
