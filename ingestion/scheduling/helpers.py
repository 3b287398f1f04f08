"""Calendly paging, the re-scan window of scheduled events, and URI helpers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion.http import ApiClient, ResponseShapeError
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


def organization_of(client: ApiClient) -> str:
    """The organization URI of the token's user (`GET /users/me`)."""
    data = client.get(ME_PATH)
    resource = data.get("resource") if isinstance(data, dict) else None
    organization = resource.get("current_organization") if isinstance(resource, dict) else None
    if not isinstance(organization, str) or not organization:
        raise ValueError("scheduling: /users/me did not name the current organization")
    return organization


def pages(client: ApiClient, path: str, params: dict[str, Any]) -> Iterator[list[Any]]:
    """Every page of a Calendly list, following `pagination.next_page_token` until it is null."""
    token: str | None = None
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
            return


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
