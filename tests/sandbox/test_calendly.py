"""The Calendly app over a real loopback server: paging, filters, auth, limits, writes, drift."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.config import DEFAULT_TOKENS, RateLimitConfig
from sandbox.faults import Drift, FaultPlan
from sandbox.server import Sandbox
from sandbox.store import Collection, Record
from tests.sandbox.calendly_fixtures import (
    API,
    CHAIN,
    EVENT_COUNT,
    build_world,
    connect,
    event_uri,
    expected_events,
    invitee_uri,
    serve,
)

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKENS['calendly']}"}
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """One server for the read-only tests; tests that write or change limits start their own."""
    with serve(build_world(), ("calendly",)) as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with connect(sandbox.base_urls["calendly"], AUTH) as http:
        yield http


@pytest.fixture
def fresh() -> Iterator[tuple[Sandbox, httpx.Client]]:
    with serve(build_world(), ("calendly",)) as running, connect(running.base_urls["calendly"], AUTH) as http:
        yield running, http


def org(sandbox: Sandbox) -> str:
    return sandbox.world.scheduling.organization


def record(collection: Collection, uri: str) -> Record:
    found = collection.get(uri)
    assert found is not None
    return found


def list_all(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Follow next_page links from the first page; return the records and the number of pages."""
    response = client.get(path, params=params)
    records, pages = [], 0
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        records.extend(body["collection"])
        pagination = body["pagination"]
        assert pagination["count"] == len(body["collection"])
        assert pagination["previous_page"] is None
        if pagination["next_page_token"] is None:
            assert pagination["next_page"] is None
            return records, pages
        assert body["collection"], "a page with a next token must not be empty"
        response = client.get(pagination["next_page"])


@pytest.mark.parametrize("count", [7, 20, 100])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_paging_returns_every_event_once_in_order(
    sandbox: Sandbox, client: httpx.Client, count: int, direction: str
) -> None:
    params = {"organization": org(sandbox), "count": count, "sort": f"start_time:{direction}"}
    records, pages = list_all(client, "/scheduled_events", params)
    uris = [r["uri"] for r in records]
    expected = expected_events(sandbox.world)
    assert uris == (expected if direction == "asc" else expected[::-1])
    assert len(set(uris)) == EVENT_COUNT
    assert pages == -(-EVENT_COUNT // count)


def test_default_page_is_twenty_ascending(sandbox: Sandbox, client: httpx.Client) -> None:
    body = client.get("/scheduled_events", params={"organization": org(sandbox)}).json()
    assert [e["uri"] for e in body["collection"]] == expected_events(sandbox.world)[:20]
    next_page = body["pagination"]["next_page"]
    assert next_page.startswith(sandbox.base_urls["calendly"] + "/scheduled_events?")
    assert "page_token=" in next_page and "organization=" in next_page


@pytest.mark.parametrize("status", [None, "active", "canceled"])
def test_start_time_window_and_status(sandbox: Sandbox, client: httpx.Client, status: str | None) -> None:
    lower, upper = "2026-09-01T00:00:00.000000Z", "2026-10-15T12:00:00.000000Z"
    params: dict[str, Any] = {"organization": org(sandbox), "count": 9}
    params.update({"min_start_time": "2026-09-01T00:00:00Z", "max_start_time": "2026-10-15T12:00:00Z"})
    if status:
        params["status"] = status
    records, _ = list_all(client, "/scheduled_events", params)
    expected = expected_events(sandbox.world, status, lower, upper)
    assert [r["uri"] for r in records] == expected
    assert 0 < len(expected) < EVENT_COUNT
    if status:
        assert {r["status"] for r in records} == {status}


def test_min_start_time_is_inclusive_and_max_exclusive(sandbox: Sandbox, client: httpx.Client) -> None:
    start = record(sandbox.world.scheduling.events, event_uri(10))["start_time"]
    base = {"organization": org(sandbox)}
    at = client.get("/scheduled_events", params={**base, "min_start_time": start, "count": 1}).json()
    assert at["collection"][0]["uri"] == event_uri(10)
    before = client.get("/scheduled_events", params={**base, "max_start_time": start, "count": 100}).json()
    assert event_uri(10) not in [e["uri"] for e in before["collection"]]
    assert before["collection"][-1]["uri"] == event_uri(9)


def test_user_and_invitee_email_filters(sandbox: Sandbox, client: httpx.Client) -> None:
    host = sandbox.world.scheduling.users[1]["uri"]
    records, _ = list_all(client, "/scheduled_events", {"user": host, "count": 50})
    assert len(records) == EVENT_COUNT // 2
    assert all(r["event_memberships"][0]["user"] == host for r in records)
    email = record(sandbox.world.scheduling.invitees, invitee_uri(15, 1))["email"]
    params = {"organization": org(sandbox), "invitee_email": email.upper()}
    found = client.get("/scheduled_events", params=params).json()["collection"]
    assert [e["uri"] for e in found] == [event_uri(15)]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "organization"),
        ({"count": 0}, "count"),
        ({"count": 101}, "count"),
        ({"sort": "updated_at:asc"}, "sort"),
        ({"status": "deleted"}, "status"),
        ({"min_start_time": "yesterday"}, "min_start_time"),
        ({"page_token": "not-a-token!"}, "page_token"),
    ],
)
def test_invalid_arguments(
    sandbox: Sandbox, client: httpx.Client, params: dict[str, Any], parameter: str
) -> None:
    query = params if parameter == "organization" else {"organization": org(sandbox), **params}
    response = client.get("/scheduled_events", params=query)
    assert response.status_code == 400
    body = response.json()
    assert body["title"] == "Invalid Argument"
    assert body["details"][0]["parameter"] == parameter


def test_foreign_organization_is_denied(client: httpx.Client) -> None:
    response = client.get("/scheduled_events", params={"organization": f"{API}/organizations/OTHER"})
    assert response.status_code == 403
    assert response.json()["title"] == "Permission Denied"


def test_single_records_and_not_found(sandbox: Sandbox, client: httpx.Client) -> None:
    event = client.get("/scheduled_events/EV00000000000005").json()["resource"]
    assert event == sandbox.world.scheduling.events.get(event_uri(5))
    invitee = client.get("/scheduled_events/EV00000000000005/invitees/IN00000000005001").json()["resource"]
    assert invitee["uri"] == invitee_uri(5, 1)
    missing = client.get("/scheduled_events/NOPE")
    assert missing.status_code == 404
    assert missing.json() == {
        "title": "Resource Not Found",
        "message": "The server could not find the requested resource.",
    }
    me = client.get("/users/me").json()["resource"]
    assert me["current_organization"] == org(sandbox)


def test_invitee_paging_and_sort(client: httpx.Client) -> None:
    path = "/scheduled_events/EV00000000000005/invitees"
    asc, pages = list_all(client, path, {"count": 1})
    assert [i["uri"] for i in asc] == [invitee_uri(5, 0), invitee_uri(5, 1)]
    assert pages == 2
    desc, _ = list_all(client, path, {"count": 1, "sort": "created_at:desc"})
    assert [i["uri"] for i in desc] == [invitee_uri(5, 1), invitee_uri(5, 0)]
    assert list_all(client, path, {"status": "canceled"})[0] == []
    bad = client.get(path, params={"sort": "start_time:asc"})
    assert bad.status_code == 400


def test_reschedule_chain_is_served_on_invitees(client: httpx.Client) -> None:
    """Follow new_invitee links from the first booking to the live one."""
    uri = invitee_uri(CHAIN[0], 0)
    seen = []
    while uri:
        invitee = client.get(uri.removeprefix(API)).json()["resource"]
        event = client.get(invitee["event"].removeprefix(API)).json()["resource"]
        seen.append((invitee["status"], invitee["rescheduled"], event["status"]))
        if invitee["old_invitee"]:
            previous = client.get(invitee["old_invitee"].removeprefix(API)).json()["resource"]
            assert previous["new_invitee"] == invitee["uri"]
        if invitee["status"] == "canceled":
            assert invitee["cancellation"]["reason"] == "Rescheduled"
            assert event["cancellation"]["reason"] == "Rescheduled"
        uri = invitee["new_invitee"]
    assert seen == [
        ("canceled", True, "canceled"),
        ("canceled", True, "canceled"),
        ("active", False, "active"),
    ]


def test_cancellation_changes_later_reads(fresh: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, client = fresh
    path = "/scheduled_events/EV00000000000005"
    before = client.get(path).json()["resource"]
    assert before["status"] == "active"
    response = client.post(f"{path}/cancellation", json={"reason": "Customer asked"})
    assert response.status_code == 201
    cancellation = response.json()["resource"]
    assert cancellation["reason"] == "Customer asked"
    assert cancellation["canceler_type"] == "host"
    after = client.get(path).json()["resource"]
    assert after["status"] == "canceled"
    assert after["cancellation"] == cancellation
    assert after["updated_at"] > before["updated_at"]
    assert after["updated_at"] >= "2026-11-01T00:00:00.000000Z"  # stamped with the world clock
    assert after["invitees_counter"]["active"] == 0
    invitees = client.get(f"{path}/invitees").json()["collection"]
    assert {i["status"] for i in invitees} == {"canceled"}
    assert all(i["updated_at"] == after["updated_at"] for i in invitees)
    base = {"organization": org(sandbox), "count": 100}
    canceled, _ = list_all(client, "/scheduled_events", {**base, "status": "canceled"})
    active, _ = list_all(client, "/scheduled_events", {**base, "status": "active"})
    assert event_uri(5) in {e["uri"] for e in canceled}
    assert event_uri(5) not in {e["uri"] for e in active}
    again = client.post(f"{path}/cancellation", json={"reason": "twice"})
    assert again.status_code == 403
    assert again.json()["title"] == "Permission Denied"


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_bad_token_is_unauthenticated(sandbox: Sandbox, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{sandbox.base_urls['calendly']}/users/me", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"title": "Unauthenticated", "message": "The access token is invalid"}
    assert all(h in response.headers for h in RATE_HEADERS)


def test_rate_limit_headers_on_every_response(fresh: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, client = fresh
    off = client.get("/users/me")
    assert all(h in off.headers for h in RATE_HEADERS)
    sandbox.set_limits(RateLimitConfig(calendly_per_min=4))
    remaining = [client.get("/users/me").headers["x-ratelimit-remaining"] for _ in range(3)]
    assert remaining == ["3", "2", "1"]
    missing = client.get("/scheduled_events/NOPE")  # the last allowed request, a 404
    assert missing.status_code == 404
    assert missing.headers["x-ratelimit-remaining"] == "0"
    limited = client.get("/users/me")
    assert limited.status_code == 429
    assert limited.json()["title"] == "Too Many Requests"
    assert limited.headers["x-ratelimit-limit"] == "4"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(limited.headers["x-ratelimit-reset"]) <= 60


def test_injected_server_error_carries_rate_headers() -> None:
    plan = FaultPlan.from_dict({"scripted": [{"system": "scheduling", "status": 503}]})
    with (
        serve(build_world(), ("calendly",), faults=plan) as running,
        connect(running.base_urls["calendly"], AUTH) as http,
    ):
        response = http.get("/users/me")
    assert response.status_code == 503
    assert response.json()["title"] == "Internal Server Error"
    assert all(h in response.headers for h in RATE_HEADERS)


def test_drift_on_events_and_invitees() -> None:
    plan = FaultPlan(
        drift={
            "scheduling/scheduled_events": Drift(kind="new_field"),
            "scheduling/invitees": Drift(kind="changed_type", field="email", fraction=0.5),
        }
    )
    world = build_world()
    with (
        serve(world, ("calendly",), faults=plan) as running,
        connect(running.base_urls["calendly"], AUTH) as http,
    ):
        events, _ = list_all(http, "/scheduled_events", {"organization": world.scheduling.organization})
        invitees = [
            i
            for e in events[:40]
            for i in http.get(e["uri"].removeprefix(API) + "/invitees").json()["collection"]
        ]
        single = http.get("/scheduled_events/EV00000000000001").json()["resource"]
    assert all(e["trueup_drift_field"] == "drifted-" + e["uri"] for e in events)
    assert single["trueup_drift_field"] == "drifted-" + single["uri"]
    drifted = [i for i in invitees if isinstance(i["email"], dict)]
    assert 0 < len(drifted) < len(invitees)
    assert drifted[0]["email"]["unit"] == "drifted"
    assert isinstance(record(world.scheduling.invitees, drifted[0]["uri"])["email"], str)
