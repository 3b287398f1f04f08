"""A small hand-built scheduling world (Calendly shape) and a loopback server helper."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox import server
from sandbox.config import SandboxConfig
from sandbox.faults import FaultPlan
from sandbox.store import Record, World

API = "https://api.calendly.com"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
FIRST_START = datetime(2026, 8, 1, 13, 0, tzinfo=UTC)
EVENT_COUNT = 150
EVENT_TYPES = [f"{API}/event_types/AAAAAAAAAAAAAAAA", f"{API}/event_types/BBBBBBBBBBBBBBBB"]
APPS = {
    "calendly": ("sandbox.apps.calendly", "CalendlyApp"),
    "google-ads": ("sandbox.apps.google_ads", "GoogleAdsApp"),
    "meta": ("sandbox.apps.meta", "MetaApp"),
}


@contextmanager
def serve(
    world: World,
    prefixes: tuple[str, ...],
    config: SandboxConfig | None = None,
    faults: FaultPlan | None = None,
) -> Iterator[server.Sandbox]:
    """A running Sandbox that mounts only the given apps."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "APP_CLASSES", {p: APPS[p] for p in prefixes})
        sandbox = server.Sandbox(world, config=config, faults=faults)
    with sandbox:
        yield sandbox


def connect(base_url: str, headers: dict[str, str]) -> httpx.Client:
    """A client without keep-alive: the stdlib server's split writes stall reused connections."""
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(base_url=base_url, headers=headers, limits=limits, timeout=10)


def stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_uri(n: int) -> str:
    return f"{API}/scheduled_events/EV{n:014d}"


def invitee_uri(n: int, k: int) -> str:
    return f"{event_uri(n)}/invitees/IN{n:011d}{k:03d}"


def user(n: int, name: str, email: str, org: str) -> Record:
    return {
        "uri": f"{API}/users/US{n:014d}",
        "name": name,
        "slug": name.lower().replace(" ", "-"),
        "email": email,
        "timezone": "America/New_York",
        "created_at": "2024-01-01T00:00:00.000000Z",
        "updated_at": "2024-01-01T00:00:00.000000Z",
        "current_organization": org,
    }


def start_of(n: int) -> datetime:
    """Events every 19 hours; every 25th shares its start with the previous one (a tie)."""
    if n % 25 == 0 and n > 0:
        n -= 1
    return FIRST_START + timedelta(hours=19 * n)


def make_event(n: int, host: Record, status: str, invitees: int) -> Record:
    start = start_of(n)
    created = start - timedelta(days=3, minutes=n)
    event: Record = {
        "uri": event_uri(n),
        "name": "30 Minute Meeting" if n % 2 else "Product Demo",
        "status": status,
        "start_time": stamp(start),
        "end_time": stamp(start + timedelta(minutes=30)),
        "event_type": EVENT_TYPES[n % 2],
        "location": {"type": "zoom", "join_url": f"https://zoom.us/j/{100000 + n}"},
        "invitees_counter": {"total": invitees, "active": invitees if status == "active" else 0, "limit": 2},
        "created_at": stamp(created),
        "updated_at": stamp(created + timedelta(seconds=1)),
        "event_memberships": [{"user": host["uri"], "user_email": host["email"], "user_name": host["name"]}],
        "event_guests": [],
        "calendar_event": {"kind": "google", "external_id": f"gcal{n}"},
    }
    if status == "canceled":
        event["cancellation"] = {
            "canceled_by": "Pat Invitee",
            "reason": "Schedule conflict",
            "canceler_type": "invitee",
            "created_at": stamp(created + timedelta(hours=2)),
        }
    return event


def make_invitee(n: int, k: int, event: Record) -> Record:
    first, last = ["Ana", "Ben", "Chloe", "Dev", "Eli"][n % 5], ["Ng", "Ortiz", "Park"][k % 3]
    created = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00")) + timedelta(minutes=k)
    invitee: Record = {
        "uri": invitee_uri(n, k),
        "email": f"{first.lower()}.{last.lower()}{n}@example.com",
        "name": f"{first} {last}",
        "first_name": first,
        "last_name": last,
        "status": event["status"],
        "timezone": "America/Chicago",
        "event": event["uri"],
        "created_at": stamp(created),
        "updated_at": stamp(created + timedelta(seconds=5)),
        "cancel_url": f"https://calendly.com/cancellations/IN{n:011d}{k:03d}",
        "reschedule_url": f"https://calendly.com/reschedulings/IN{n:011d}{k:03d}",
        "rescheduled": False,
        "old_invitee": None,
        "new_invitee": None,
        "questions_and_answers": [{"question": "Company name", "answer": f"Company {n}", "position": 0}],
        "tracking": {
            "utm_campaign": None,
            "utm_source": "google" if n % 3 == 0 else None,
            "utm_medium": None,
            "utm_content": None,
            "utm_term": None,
            "salesforce_uuid": None,
        },
        "text_reminder_number": None,
        "routing_form_submission": None,
        "no_show": None,
        "reconfirmation": None,
        "payment": None,
    }
    if event["status"] == "canceled":
        invitee["cancellation"] = dict(event["cancellation"])
    return invitee


# events 40 -> 41 -> 42 form a reschedule chain (two reschedules of one booking)
CHAIN = (40, 41, 42)


def build_world() -> World:
    """150 events over Aug-Dec 2026; every 7th canceled, every 10th a two-invitee group."""
    world = World(seed=1, contacts_target=0, now=NOW)
    scheduling = world.scheduling
    org = scheduling.organization
    scheduling.users = [
        user(1, "Morgan Host", "morgan@trueup.example", org),
        user(2, "Riley Host", "riley@trueup.example", org),
    ]
    events, invitees = [], []
    for n in range(EVENT_COUNT):
        status = "canceled" if n % 7 == 3 or n in CHAIN[:2] else "active"
        count = 2 if n % 10 == 5 else 1
        event = make_event(n, scheduling.users[n % 2], status, count)
        events.append(event)
        made = [make_invitee(n, k, event) for k in range(count)]
        invitees.extend(made)
        scheduling.invitees_by_event[event["uri"]] = [i["uri"] for i in made]
    link_chain(events, invitees)
    scheduling.events.put_many(events)
    scheduling.invitees.put_many(invitees)
    return world


def link_chain(events: list[Record], invitees: list[Record]) -> None:
    by_uri = {i["uri"]: i for i in invitees}
    for old, new in itertools.pairwise(CHAIN):
        events[old]["cancellation"]["reason"] = "Rescheduled"
        old_invitee, new_invitee = by_uri[invitee_uri(old, 0)], by_uri[invitee_uri(new, 0)]
        old_invitee["rescheduled"] = True
        old_invitee["new_invitee"] = new_invitee["uri"]
        old_invitee["cancellation"]["reason"] = "Rescheduled"
        new_invitee["old_invitee"] = old_invitee["uri"]


def expected_events(
    world: World,
    status: str | None = None,
    lower: str | None = None,
    upper: str | None = None,
) -> list[str]:
    """Event URIs in (start_time, uri) order within [lower, upper) and with the status."""
    chosen: list[Any] = []
    for event in world.scheduling.events:
        if status is not None and event["status"] != status:
            continue
        if lower is not None and event["start_time"] < lower:
            continue
        if upper is not None and event["start_time"] >= upper:
            continue
        chosen.append((event["start_time"], event["uri"]))
    return [uri for _, uri in sorted(chosen)]
