"""The HubSpot sandbox app over a real loopback server: paging, search, writes, errors, limits, drift."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import server
from sandbox.apps.hubspot import HubSpotApp, epoch_ms, iso_from_ms
from sandbox.config import DEFAULT_TOKENS, RateLimitConfig
from sandbox.faults import Drift, FaultPlan
from sandbox.server import Sandbox
from sandbox.store import World
from tests.sandbox.hubspot_fixtures import build_world

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"}
CONTACTS = "/crm/v3/objects/contacts"
SEARCH = "/crm/v3/objects/contacts/search"
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
    "X-HubSpot-RateLimit-Secondly",
    "X-HubSpot-RateLimit-Secondly-Remaining",
)

Serve = Callable[..., tuple[Sandbox, httpx.Client]]
Served = tuple[Sandbox, httpx.Client]


def _start(world: World | None = None, **kwargs: Any) -> Served:
    """A running sandbox that mounts only the HubSpot app, and a client holding its token."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "APP_CLASSES", {"hubspot": ("sandbox.apps.hubspot", "HubSpotApp")})
        sandbox = Sandbox(world or build_world(), **kwargs).start()
    return sandbox, httpx.Client(base_url=sandbox.base_urls["hubspot"], headers=AUTH, timeout=10)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start sandboxes for tests that write, change limits or inject faults; stopped afterwards."""
    running: list[Served] = []

    def start(world: World | None = None, **kwargs: Any) -> Served:
        running.append(_start(world, **kwargs))
        return running[-1]

    yield start
    for sandbox, client in running:
        client.close()
        sandbox.stop()


@pytest.fixture
def hubspot(serve: Serve) -> Served:
    """A sandbox of this test's own (it may write)."""
    return serve()


@pytest.fixture(scope="module")
def shared() -> Iterator[Served]:
    """One sandbox for the tests that only read."""
    sandbox, client = _start()
    yield sandbox, client
    client.close()
    sandbox.stop()


def read_all(client: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Follow `paging.next.link` to the end, checking the page size and the last page's shape."""
    response = client.get(path, params=params)
    records: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["results"]) <= int(params.get("limit", 10))
        records.extend(body["results"])
        if "paging" not in body:
            return records
        assert body["paging"]["next"]["after"]
        response = client.get(body["paging"]["next"]["link"])


def search_all(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    after = "0"
    while True:
        response = client.post(SEARCH, json={**body, "after": after})
        assert response.status_code == 200, response.text
        page = response.json()
        records.extend(page["results"])
        if "paging" not in page:
            assert len(records) == page["total"]
            return records
        after = page["paging"]["next"]["after"]


def modified_search(value: int, operator: str = "GTE", **extra: Any) -> dict[str, Any]:
    return {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": operator, "value": str(value)}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "lastmodifieddate"],
        "limit": 50,
        **extra,
    }


def stored_modified(world: World) -> dict[str, int]:
    return {r["id"]: epoch_ms(r["properties"]["lastmodifieddate"]) or 0 for r in world.crm.contacts}


# ---------------------------------------------------------------------------------------------
# list paging


@pytest.mark.parametrize("limit", [7, 10, 100])
def test_list_pages_return_every_contact_once(shared: Served, limit: int) -> None:
    sandbox, client = shared
    records = read_all(client, CONTACTS, {"limit": limit})
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == len(sandbox.world.crm.contacts)
    assert ids == sorted(ids, key=int)
    assert set(records[0]["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }


def test_default_limit_and_last_page_has_no_paging(shared: Served) -> None:
    sandbox, client = shared
    first = client.get(CONTACTS).json()
    assert len(first["results"]) == 10
    assert first["paging"]["next"]["link"].startswith(sandbox.base_urls["hubspot"] + CONTACTS)
    last_id = max(int(i) for i in sandbox.world.crm.contacts.ids())
    tail = client.get(CONTACTS, params={"after": str(last_id - 2), "limit": 100}).json()
    assert [r["id"] for r in tail["results"]] == [str(last_id - 2), str(last_id - 1), str(last_id)]
    assert "paging" not in tail


def test_limit_over_100_is_rejected(shared: Served) -> None:
    _, client = shared
    response = client.get(CONTACTS, params={"limit": 101})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR" and body["correlationId"]
    assert client.get(CONTACTS, params={"limit": "ten"}).status_code == 400


def test_requested_properties_and_associations(shared: Served) -> None:
    sandbox, client = shared
    params = {"limit": 100, "properties": "email,phone,not_a_property", "associations": "companies,deal"}
    records = read_all(client, CONTACTS, params)
    assert all(set(r["properties"]) == {"email", "phone"} for r in records)
    assert any(r["properties"]["phone"] is None for r in records)  # requested but unset -> null
    crm = sandbox.world.crm
    for record in records:
        companies = crm.associated("contacts", record["id"], "companies")
        deals = crm.associated("contacts", record["id"], "deals")
        linked = record.get("associations", {})
        assert [a["id"] for a in linked.get("companies", {}).get("results", [])] == companies
        assert [a["id"] for a in linked.get("deals", {}).get("results", [])] == deals
        if deals:
            assert linked["deals"]["results"][0]["type"] == "contact_to_deal"


def test_other_object_types_and_archived(hubspot: Served) -> None:
    sandbox, client = hubspot
    deals = read_all(client, "/crm/v3/objects/deals", {"limit": 25})
    assert len(deals) == 60 and "dealstage" in deals[0]["properties"]
    meetings = read_all(client, "/crm/v3/objects/meetings", {"limit": 100})
    assert set(meetings[0]["properties"]) == {
        "hs_meeting_title",
        "hs_meeting_start_time",
        "hs_createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }
    company = next(iter(sandbox.world.crm.companies))
    sandbox.world.crm.companies.put({**company, "archived": True, "archivedAt": company["updatedAt"]})
    live = read_all(client, "/crm/v3/objects/companies", {"limit": 3})
    archived = read_all(client, "/crm/v3/objects/companies", {"limit": 3, "archived": "true"})
    assert company["id"] not in {r["id"] for r in live} and len(live) == 19
    assert [r["id"] for r in archived] == [company["id"]] and archived[0]["archived"] is True
    assert client.get("/crm/v3/objects/tickets2").status_code == 400


def test_get_one_and_404(shared: Served) -> None:
    sandbox, client = shared
    contact = next(iter(sandbox.world.crm.contacts))
    response = client.get(f"{CONTACTS}/{contact['id']}", params={"properties": "email,lifecyclestage"})
    assert response.status_code == 200
    assert response.json()["properties"] == {
        "email": contact["properties"]["email"],
        "lifecyclestage": contact["properties"]["lifecyclestage"],
    }
    by_email = client.get(
        f"{CONTACTS}/{contact['properties']['email'].upper()}", params={"idProperty": "email"}
    )
    assert by_email.json()["id"] == contact["id"]
    missing = client.get(f"{CONTACTS}/999999")
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND" and missing.json()["status"] == "error"


# ---------------------------------------------------------------------------------------------
# search


def test_search_gte_lastmodified_epoch_ms(shared: Served) -> None:
    sandbox, client = shared
    modified = stored_modified(sandbox.world)
    threshold = sorted(modified.values())[len(modified) // 3]
    expected = {rid for rid, ms in modified.items() if ms >= threshold}
    records = search_all(client, modified_search(threshold))
    assert {r["id"] for r in records} == expected and len(records) == len(expected)
    stamps = [epoch_ms(r["properties"]["lastmodifieddate"]) or 0 for r in records]
    assert stamps == sorted(stamps)
    assert set(records[0]["properties"]) == {"email", "lastmodifieddate"}
    strictly = search_all(client, modified_search(threshold, "GT"))
    assert {r["id"] for r in strictly} == {rid for rid, ms in modified.items() if ms > threshold}


def test_search_sorted_view_agrees_with_scan(shared: Served) -> None:
    sandbox, client = shared
    values = sorted(stored_modified(sandbox.world).values())
    low, high = values[40], values[200]
    ranged = [
        {"propertyName": "lastmodifieddate", "operator": "GT", "value": str(low)},
        {"propertyName": "lastmodifieddate", "operator": "LTE", "value": iso_from_ms(high)},
    ]
    scanned = [*ranged, {"propertyName": "email", "operator": "HAS_PROPERTY"}]
    for direction in ("ASCENDING", "DESCENDING"):
        sorts = [{"propertyName": "lastmodifieddate", "direction": direction}]
        fast = search_all(client, {"filterGroups": [{"filters": ranged}], "sorts": sorts, "limit": 30})
        slow = search_all(client, {"filterGroups": [{"filters": scanned}], "sorts": sorts, "limit": 30})
        assert [r["id"] for r in fast] == [r["id"] for r in slow]
        assert len(fast) == 160
    between = {
        "propertyName": "lastmodifieddate",
        "operator": "BETWEEN",
        "value": str(low),
        "highValue": str(high),
    }
    total = client.post(
        SEARCH, json={"filterGroups": [{"filters": [between]}], "sorts": ["lastmodifieddate"]}
    )
    assert total.json()["total"] == 161


def test_date_range_with_other_filters_agrees_with_scan(shared: Served) -> None:
    """A range on a date plus other filters (draining a tie by id) reads only the range's
    slice of the view; it must find, count and order what a scan finds."""
    sandbox, client = shared
    values = sorted(stored_modified(sandbox.world).values())
    low, high = values[len(values) // 10], values[-len(values) // 10]
    contact_ids = sorted(int(c["id"]) for c in sandbox.world.crm.contacts)
    middle_id = contact_ids[len(contact_ids) // 2]
    narrowed = [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)},
        {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(high)},
        {"propertyName": "hs_object_id", "operator": "GT", "value": str(middle_id)},
    ]
    nobody = [{"propertyName": "email", "operator": "EQ", "value": "nobody@nowhere.invalid"}]
    for sort, direction in (("hs_object_id", "ASCENDING"), ("lastmodifieddate", "DESCENDING")):
        sorts = [{"propertyName": sort, "direction": direction}]
        fast = search_all(client, {"filterGroups": [{"filters": narrowed}], "sorts": sorts, "limit": 25})
        # a second group that matches nothing sends the same search down the scanning path
        groups = [{"filters": narrowed}, {"filters": nobody}]
        slow = search_all(client, {"filterGroups": groups, "sorts": sorts, "limit": 25})
        assert [r["id"] for r in fast] == [r["id"] for r in slow]
        assert 0 < len(fast) < len(values) // 2


def test_unfiltered_search_from_the_sorted_view_agrees_with_scan(hubspot: Served) -> None:
    """A search with no filter, sorted on a date (how a connector finds the newest change),
    is served from the sorted view; it must find what a scan finds, and fall back to the scan
    once a live record lacks the property (it has no place in the view)."""
    sandbox, client = hubspot
    everything = {"propertyName": "hs_object_id", "operator": "HAS_PROPERTY"}  # forces a scan
    for direction in ("ASCENDING", "DESCENDING"):
        sorts = [{"propertyName": "lastmodifieddate", "direction": direction}]
        fast = search_all(client, {"sorts": sorts, "limit": 100})
        slow = search_all(client, {"filterGroups": [{"filters": [everything]}], "sorts": sorts, "limit": 100})
        assert [r["id"] for r in fast] == [r["id"] for r in slow]
        assert len(fast) == sum(1 for c in sandbox.world.crm.contacts if not c.get("archived"))
    contact = next(iter(sandbox.world.crm.contacts))
    contact["properties"]["lastmodifieddate"] = None
    sandbox.world.crm.contacts.put(contact)
    sorts = [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}]
    found = search_all(client, {"sorts": sorts, "limit": 100})
    assert contact["id"] in {r["id"] for r in found}


def test_search_operators_groups_and_sorts(shared: Served) -> None:
    sandbox, client = shared
    contacts = list(sandbox.world.crm.contacts)

    def ids(*groups: list[dict[str, Any]], sorts: list[Any] | None = None) -> list[str]:
        body: dict[str, Any] = {"filterGroups": [{"filters": g} for g in groups], "limit": 200}
        if sorts is not None:
            body["sorts"] = sorts
        return [r["id"] for r in search_all(client, body)]

    def where(test: Callable[[dict[str, Any]], bool]) -> set[str]:
        return {r["id"] for r in contacts if test(r["properties"])}

    customer = {"propertyName": "lifecyclestage", "operator": "EQ", "value": "CUSTOMER"}
    assert set(ids([customer])) == where(lambda p: p["lifecyclestage"] == "customer")
    no_phone = {"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}
    assert set(ids([no_phone])) == where(lambda p: p["phone"] is None)
    paid = {"propertyName": "hs_analytics_source", "operator": "IN", "values": ["PAID_SEARCH", "PAID_SOCIAL"]}
    lead = {"propertyName": "lifecyclestage", "operator": "NEQ", "value": "lead"}
    assert set(ids([paid, lead])) == where(
        lambda p: p["hs_analytics_source"].startswith("PAID") and p["lifecyclestage"] != "lead"
    )
    assert set(ids([paid], [no_phone])) == where(
        lambda p: p["hs_analytics_source"].startswith("PAID") or p["phone"] is None
    )
    not_in = {"propertyName": "hs_analytics_source", "operator": "NOT_IN", "values": ["OFFLINE"]}
    assert set(ids([not_in])) == where(lambda p: p["hs_analytics_source"] != "OFFLINE")
    token = {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "example3"}
    assert set(ids([token])) == where(lambda p: "@example3." in p["email"])
    low_id = {"propertyName": "hs_object_id", "operator": "LT", "value": "40"}
    assert set(ids([low_id])) == where(lambda p: int(p["hs_object_id"]) < 40)
    emails = {r["id"]: r["properties"]["email"] for r in contacts}
    by_email_desc = ids([paid], sorts=["-email"])
    assert by_email_desc == sorted(by_email_desc, key=emails.__getitem__, reverse=True)
    query = client.post(SEARCH, json={"query": "person42@", "limit": 5}).json()
    assert [r["id"] for r in query["results"]] == [i for i, e in emails.items() if e.startswith("person42@")]
    bad = client.post(
        SEARCH, json={"filterGroups": [{"filters": [{"propertyName": "x", "operator": "LIKE"}]}]}
    )
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"
    assert client.post(SEARCH, json={"limit": 201}).status_code == 400
    assert client.post(SEARCH, content=b"{not json").status_code == 400


def test_search_cannot_page_past_ten_thousand(serve: Serve) -> None:
    world = build_world(contacts=10_050)
    _, client = serve(world)
    body = modified_search(0, limit=200)
    page = client.post(SEARCH, json={**body, "after": "9800"})
    assert page.status_code == 200, page.text
    assert page.json()["total"] == 10_050 and len(page.json()["results"]) == 200
    assert page.json()["paging"]["next"]["after"] == "10000"
    refused = client.post(SEARCH, json={**body, "after": "10000"})
    assert refused.status_code == 400
    assert refused.json()["category"] == "VALIDATION_ERROR" and refused.json()["status"] == "error"
    assert client.post(SEARCH, json={**body, "after": "9900"}).status_code == 400
    assert client.post(SEARCH, json={**modified_search(0), "after": "9950"}).status_code == 200
    assert HubSpotApp.SEARCH_CAP == 10_000


# ---------------------------------------------------------------------------------------------
# writes


def test_batch_update_moves_lastmodified_for_incremental_search(hubspot: Served) -> None:
    sandbox, client = hubspot
    newest = client.post(
        SEARCH, json={"sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}], "limit": 1}
    ).json()["results"][0]
    previous_max = epoch_ms(newest["properties"]["lastmodifieddate"]) or 0
    chosen = [newest["id"], *[r["id"] for r in list(sandbox.world.crm.contacts)[10:14]]]
    inputs = [{"id": rid, "properties": {"jobtitle": f"Title {rid}", "phone": ""}} for rid in chosen]
    response = client.post(f"{CONTACTS}/batch/update", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "COMPLETE" and "errors" not in body
    stamps = {r["properties"]["lastmodifieddate"] for r in body["results"]}
    assert len(stamps) == 1 and all(r["updatedAt"] in stamps for r in body["results"])
    stamp = epoch_ms(stamps.pop()) or 0
    assert stamp > previous_max
    again = client.post(f"{CONTACTS}/batch/update", json={"inputs": inputs[:1]}).json()
    assert (epoch_ms(again["results"][0]["updatedAt"]) or 0) > stamp  # strictly increasing across writes
    read = client.get(
        f"{CONTACTS}/{chosen[1]}", params={"properties": "jobtitle,phone,lastmodifieddate"}
    ).json()
    assert read["properties"]["jobtitle"] == f"Title {chosen[1]}" and read["properties"]["phone"] is None
    assert epoch_ms(read["properties"]["lastmodifieddate"]) == stamp == epoch_ms(read["updatedAt"])
    changed = search_all(client, modified_search(previous_max))
    assert sorted(r["id"] for r in changed) == sorted(chosen)


def test_batch_update_partial_failure_is_207(hubspot: Served) -> None:
    sandbox, client = hubspot
    good, bad = list(sandbox.world.crm.contacts)[:2]
    inputs = [
        {"id": good["id"], "properties": {"lifecyclestage": "customer"}},
        {"id": bad["id"], "properties": {"no_such_property": "x", "createdate": "2020-01-01"}},
        {"id": "999999", "properties": {"firstname": "Nobody"}},
        {"id": bad["id"] + "0", "properties": {"lifecyclestage": "not-a-stage"}},
    ]
    response = client.post(f"{CONTACTS}/batch/update", json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert body["numErrors"] == len(body["errors"]) == 3
    assert [r["id"] for r in body["results"]] == [good["id"]]
    categories = sorted(e["category"] for e in body["errors"])
    assert categories == ["OBJECT_NOT_FOUND", "VALIDATION_ERROR", "VALIDATION_ERROR"]
    codes = {d["code"] for e in body["errors"] for d in e["errors"]}
    assert codes == {"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE", "INVALID_OPTION"}
    assert all(
        {"status", "category", "message", "context", "errors", "links"} <= set(e) for e in body["errors"]
    )
    assert sandbox.world.crm.contacts.get(good["id"])["properties"]["lifecyclestage"] == "customer"  # type: ignore[index]
    assert sandbox.world.crm.contacts.get(bad["id"])["properties"] == bad["properties"]  # type: ignore[index]
    all_bad = client.post(f"{CONTACTS}/batch/update", json={"inputs": inputs[1:3]})
    assert all_bad.status_code == 207 and all_bad.json()["results"] == []


def test_batch_malformed_bodies_are_400(shared: Served) -> None:
    _, client = shared
    url = f"{CONTACTS}/batch/update"
    too_many = [{"id": str(i), "properties": {}} for i in range(101)]
    for payload in (
        {"inputs": too_many},
        {"inputs": "nope"},
        {"inputs": [{"id": "22"}]},
        {"inputs": [{"id": "22", "properties": {}}, {"id": "22", "properties": {}}]},
    ):
        response = client.post(url, json=payload)
        assert response.status_code == 400, payload
        assert response.json()["category"] == "VALIDATION_ERROR"
    assert client.post(url, content=b"[").status_code == 400
    assert client.post(f"{CONTACTS}/batch/read", json={"inputs": too_many}).status_code == 400


def test_batch_upsert_creates_and_updates(hubspot: Served) -> None:
    sandbox, client = hubspot
    existing = list(sandbox.world.crm.contacts)[5]
    before = len(sandbox.world.crm.contacts)
    inputs = [
        {
            "idProperty": "email",
            "id": existing["properties"]["email"].upper(),
            "properties": {"firstname": "Ada"},
        },
        {"idProperty": "email", "id": "new.person@example.org", "properties": {"firstname": "Grace"}},
    ]
    response = client.post(f"{CONTACTS}/batch/upsert", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["new"], r["properties"]["firstname"]) for r in results] == [(False, "Ada"), (True, "Grace")]
    assert results[0]["id"] == existing["id"]
    assert len(sandbox.world.crm.contacts) == before + 1
    created = client.get(f"{CONTACTS}/{results[1]['id']}", params={"properties": "email,firstname"}).json()
    assert created["properties"] == {"email": "new.person@example.org", "firstname": "Grace"}
    again = client.post(f"{CONTACTS}/batch/upsert", json={"inputs": inputs[1:]}).json()["results"]
    assert again[0]["new"] is False and again[0]["id"] == results[1]["id"]
    assert len(sandbox.world.crm.contacts) == before + 1
    by_id = client.post(f"{CONTACTS}/batch/upsert", json={"inputs": [{"id": "999999", "properties": {}}]})
    assert by_id.status_code == 207 and by_id.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    listed = read_all(client, CONTACTS, {"limit": 100})
    assert listed[-1]["id"] == results[1]["id"]


def test_unique_email_is_enforced_on_writes(hubspot: Served) -> None:
    sandbox, client = hubspot
    first, second = list(sandbox.world.crm.contacts)[:2]
    taken = first["properties"]["email"]
    update = {"inputs": [{"id": second["id"], "properties": {"email": taken}}]}
    clash = client.post(f"{CONTACTS}/batch/update", json=update)
    assert clash.status_code == 207
    assert clash.json()["errors"][0]["category"] == "CONFLICT" and clash.json()["errors"][0]["context"][
        "existingId"
    ] == [first["id"]]
    patched = client.patch(f"{CONTACTS}/{second['id']}", json={"properties": {"email": taken.upper()}})
    assert patched.status_code == 409 and patched.json()["category"] == "CONFLICT"
    own = client.patch(f"{CONTACTS}/{first['id']}", json={"properties": {"email": taken}})
    assert own.status_code == 200
    invalid = {"inputs": [{"idProperty": "email", "id": "not-an-email", "properties": {}}]}
    refused = client.post(f"{CONTACTS}/batch/upsert", json=invalid)
    assert refused.status_code == 207 and refused.json()["errors"][0]["errors"][0]["code"] == "INVALID_EMAIL"
    bad_property = {"inputs": [{"idProperty": "firstname", "id": "x", "properties": {}}]}
    assert client.post(f"{CONTACTS}/batch/upsert", json=bad_property).status_code == 400


def test_batch_create_read_and_patch(hubspot: Served) -> None:
    sandbox, client = hubspot
    company = next(iter(sandbox.world.crm.companies))
    taken = next(iter(sandbox.world.crm.contacts))["properties"]["email"]
    inputs = [
        {
            "properties": {"email": "fresh@example.org", "lifecyclestage": "lead", "amount_typo": None},
            "associations": [],
        },
        {
            "properties": {"email": "linked@example.org", "firstname": 7},
            "associations": [
                {
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ],
        },
        {"properties": {"email": taken}, "associations": []},
    ]
    created = client.post(f"{CONTACTS}/batch/create", json={"inputs": inputs})
    assert created.status_code == 207
    body = created.json()
    assert body["numErrors"] == 2 and {e["category"] for e in body["errors"]} == {
        "VALIDATION_ERROR",
        "CONFLICT",
    }
    (linked,) = body["results"]
    assert linked["properties"]["firstname"] == "7"
    assert sandbox.world.crm.associated("contacts", linked["id"], "companies") == [company["id"]]
    read = client.post(
        f"{CONTACTS}/batch/read",
        json={"inputs": [{"id": linked["id"]}, {"id": "424242"}], "properties": ["email", "firstname"]},
    )
    assert read.status_code == 207
    assert read.json()["results"][0]["properties"] == {"email": "linked@example.org", "firstname": "7"}
    assert read.json()["errors"][0]["context"] == {"ids": ["424242"]}
    patched = client.patch(f"{CONTACTS}/{linked['id']}", json={"properties": {"lastname": "Hopper"}})
    assert patched.status_code == 200 and patched.json()["properties"]["lastname"] == "Hopper"
    assert client.patch(f"{CONTACTS}/{linked['id']}", json={"properties": {"nope": "1"}}).status_code == 400
    assert client.patch(f"{CONTACTS}/999999", json={"properties": {"lastname": "x"}}).status_code == 404
    deal = client.post(
        "/crm/v3/objects/deals", json={"properties": {"dealname": "New", "dealstage": "closedwon"}}
    )
    assert deal.status_code == 201 and deal.json()["properties"]["dealname"] == "New"
    wrong_stage = client.post("/crm/v3/objects/deals", json={"properties": {"dealstage": "won"}})
    assert wrong_stage.status_code == 400 and wrong_stage.json()["errors"][0]["code"] == "INVALID_OPTION"


# ---------------------------------------------------------------------------------------------
# owners, pipelines, associations v4


def test_owners_and_pipelines(shared: Served) -> None:
    sandbox, client = shared
    owners = read_all(client, "/crm/v3/owners", {"limit": 2})
    assert [o["id"] for o in owners] == [o["id"] for o in sandbox.world.crm.owners]
    one = client.get("/crm/v3/owners", params={"email": owners[1]["email"].upper()}).json()["results"]
    assert [o["id"] for o in one] == [owners[1]["id"]]
    pipelines = client.get("/crm/v3/pipelines/deals").json()["results"]
    assert [p["id"] for p in pipelines] == ["default", "renewals"]
    stages = client.get("/crm/v3/pipelines/deals/renewals/stages").json()["results"]
    assert [s["id"] for s in stages] == ["1001", "1002", "1003", "1004"]
    assert stages[2]["metadata"] == {"isClosed": "true", "probability": "1.0"}
    assert client.get("/crm/v3/pipelines/deals/nope/stages").status_code == 404


def test_associations_v4(shared: Served) -> None:
    sandbox, client = shared
    crm = sandbox.world.crm
    company = next(iter(crm.companies))
    contact_ids = crm.associated("companies", company["id"], "contacts")
    assert len(contact_ids) > 3
    pages = read_all(client, f"/crm/v4/objects/companies/{company['id']}/associations/contacts", {"limit": 3})
    assert [p["toObjectId"] for p in pages] == sorted(int(i) for i in contact_ids)
    assert pages[0]["associationTypes"] == [{"category": "HUBSPOT_DEFINED", "typeId": 280, "label": None}]
    deal = next(iter(crm.deals))
    response = client.post(
        "/crm/v4/associations/deals/contacts/batch/read", json={"inputs": [{"id": deal["id"]}]}
    )
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["from"] == {"id": deal["id"]}
    assert [t["toObjectId"] for t in result["to"]] == [
        int(i) for i in crm.associated("deals", deal["id"], "contacts")
    ]
    assert result["to"][0]["associationTypes"][0]["typeId"] == 3


# ---------------------------------------------------------------------------------------------
# auth, errors, limits, drift


def test_missing_or_wrong_token_is_401(shared: Served) -> None:
    sandbox, _ = shared
    url = sandbox.base_urls["hubspot"] + CONTACTS
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["category"] == "INVALID_AUTHENTICATION" and body["status"] == "error"
        assert body["message"].startswith("Authentication credentials not found") and body["correlationId"]


def test_injected_error_bodies(shared: Served) -> None:
    sandbox, _ = shared
    app = sandbox.apps["hubspot"]
    locked = app.error(423, "locked")
    assert locked.headers["Retry-After"] == "2"
    assert json.loads(locked.body)["category"] and json.loads(locked.body)["status"] == "error"
    assert int(app.error(477, "migrating").headers["Retry-After"]) >= 1
    unavailable = json.loads(app.error(503, "down").body)
    assert unavailable["message"] == "down" and unavailable["correlationId"]
    throttled = app.error(429, "slow down")
    assert (
        json.loads(throttled.body)["policyName"] == "TEN_SECONDLY_ROLLING"
        and throttled.headers["Retry-After"]
    )


def test_rate_limit_headers_when_limits_are_off(shared: Served) -> None:
    _, client = shared
    response = client.get(CONTACTS)
    for name in RATE_HEADERS:
        assert int(response.headers[name]) > 1000
    assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    search = client.post(SEARCH, json={})
    assert search.status_code == 200 and not any(h.lower().startswith("x-hubspot") for h in search.headers)


def test_rate_limits_return_429_with_retry_after(hubspot: Served) -> None:
    sandbox, client = hubspot
    sandbox.set_limits(RateLimitConfig(hubspot_per_10s=5, hubspot_search_per_s=2, hubspot_daily=1000))
    remaining = []
    for _ in range(5):
        response = client.get(CONTACTS)
        assert response.status_code == 200
        assert response.headers["X-HubSpot-RateLimit-Max"] == "5"
        assert response.headers["X-HubSpot-RateLimit-Daily"] == "1000"
        remaining.append(int(response.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    refused = client.get(CONTACTS)
    assert refused.status_code == 429
    body = refused.json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["status"] == "error" and body["correlationId"]
    assert (
        int(refused.headers["Retry-After"]) >= 1 and refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    )
    searches = [client.post(SEARCH, json={"limit": 1}) for _ in range(3)]
    assert [s.status_code for s in searches] == [200, 200, 429]
    assert searches[2].json()["policyName"] == "SECONDLY" and searches[2].headers["Retry-After"] == "1"
    assert not any(h.lower().startswith("x-hubspot") for s in searches for h in s.headers)


def test_schema_drift_is_applied_to_served_records(serve: Serve) -> None:
    plan = FaultPlan(
        drift={
            "crm/contacts": Drift("new_field", "properties.trueup_drift_field"),
            "crm/deals": Drift("changed_type", "properties.amount"),
        }
    )
    sandbox, client = serve(faults=plan)
    listed = client.get(CONTACTS).json()["results"]
    assert all(r["properties"]["trueup_drift_field"] == f"drifted-{r['id']}" for r in listed)
    searched = client.post(SEARCH, json={"limit": 3}).json()["results"]
    assert all("trueup_drift_field" in r["properties"] for r in searched)
    read = client.post(f"{CONTACTS}/batch/read", json={"inputs": [{"id": listed[0]["id"]}]}).json()
    assert "trueup_drift_field" in read["results"][0]["properties"]
    deals = client.get("/crm/v3/objects/deals").json()["results"]
    assert all(isinstance(d["properties"]["amount"], dict) for d in deals)
    stored = sandbox.world.crm.contacts.get(listed[0]["id"])
    assert stored is not None and "trueup_drift_field" not in stored["properties"]


# ---------------------------------------------------------------------------------------------
# the official Contacts v3 OpenAPI spec


def _reference_dir() -> Path:
    shared = os.environ.get("TRUEUP_SHARED_DIR")
    return (Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared") / "reference"


def test_contacts_responses_match_the_official_spec(hubspot: Served) -> None:
    spec_path = _reference_dir() / "hubspot_contacts_v3_openapi.json"
    if not spec_path.exists():
        pytest.skip(f"{spec_path} is absent")
    from openapi_core import Config, OpenAPI
    from openapi_core.testing import MockRequest, MockResponse
    from openapi_core.validation.response.exceptions import InvalidData

    # Error responses are declared as `*/*`; read them as the JSON they are.
    config = Config(extra_media_type_deserializers={"*/*": json.loads})
    openapi = OpenAPI.from_dict(json.loads(spec_path.read_text()), config=config)
    sandbox, client = hubspot
    contact = next(iter(sandbox.world.crm.contacts))

    def check(method: str, path: str, response: httpx.Response, query: dict[str, Any] | None = None) -> None:
        request = MockRequest("https://api.hubapi.com", method, path, args=query or {})
        mocked = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.headers["content-type"],
        )
        openapi.validate_response(request, mocked)

    # The spec types property values as plain strings, so these calls request properties every
    # fixture contact has set. HubSpot itself returns null for a requested property that is unset,
    # which the spec rejects: that check also shows the validator does look at the bodies.
    with_null = client.get(CONTACTS, params={"limit": 5, "properties": "phone"})
    assert any(r["properties"]["phone"] is None for r in with_null.json()["results"])
    with pytest.raises(InvalidData):
        check("get", CONTACTS, with_null, {"limit": "5", "properties": "phone"})
    page = client.get(CONTACTS, params={"limit": 5, "associations": "companies"})
    check("get", CONTACTS, page, {"limit": "5", "associations": "companies"})
    check("get", f"{CONTACTS}/{contact['id']}", client.get(f"{CONTACTS}/{contact['id']}"))
    check("get", f"{CONTACTS}/999999", client.get(f"{CONTACTS}/999999"))
    check("post", SEARCH, client.post(SEARCH, json=modified_search(0, limit=3)))
    check("post", SEARCH, client.post(SEARCH, json={"limit": 500}))
    read = client.post(
        f"{CONTACTS}/batch/read", json={"inputs": [{"id": contact["id"]}], "properties": ["email"]}
    )
    check("post", f"{CONTACTS}/batch/read", read)
    missing = client.post(
        f"{CONTACTS}/batch/read", json={"inputs": [{"id": contact["id"]}, {"id": "424242"}]}
    )
    assert missing.status_code == 207
    check("post", f"{CONTACTS}/batch/read", missing)
    update = {"inputs": [{"id": contact["id"], "properties": {"jobtitle": "CTO"}}]}
    check("post", f"{CONTACTS}/batch/update", client.post(f"{CONTACTS}/batch/update", json=update))
    partial = {"inputs": [*update["inputs"], {"id": contact["id"] + "0", "properties": {"nope": "1"}}]}
    multi = client.post(f"{CONTACTS}/batch/update", json=partial)
    assert multi.status_code == 207
    check("post", f"{CONTACTS}/batch/update", multi)
    upsert = {
        "inputs": [{"idProperty": "email", "id": "spec@example.org", "properties": {"firstname": "Spec"}}]
    }
    check("post", f"{CONTACTS}/batch/upsert", client.post(f"{CONTACTS}/batch/upsert", json=upsert))
    bad_upsert = {"inputs": [{"id": "999999", "properties": {"firstname": "x"}}]}
    check("post", f"{CONTACTS}/batch/upsert", client.post(f"{CONTACTS}/batch/upsert", json=bad_upsert))
    create = {"inputs": [{"properties": {"email": "c@example.org"}, "associations": []}]}
    created = client.post(f"{CONTACTS}/batch/create", json=create)
    assert created.status_code == 201
    check("post", f"{CONTACTS}/batch/create", created)
    check("get", CONTACTS, client.get(CONTACTS, params={"limit": 500}), {"limit": "500"})
    check("get", CONTACTS, httpx.get(sandbox.base_urls["hubspot"] + CONTACTS))
    sandbox.set_limits(RateLimitConfig(hubspot_per_10s=1))
    client.get(CONTACTS)
    throttled = client.get(CONTACTS)
    assert throttled.status_code == 429
    check("get", CONTACTS, throttled)


def test_time_conversions() -> None:
    assert epoch_ms("1970-01-01T00:00:01.500Z") == 1500
    assert epoch_ms("1709283300000") == 1_709_283_300_000
    assert epoch_ms("not a date") is None and epoch_ms(None) is None
    assert iso_from_ms(1500) == "1970-01-01T00:00:01.500Z"
    assert datetime.fromisoformat(iso_from_ms(1_709_283_300_123)).microsecond == 123_000


def test_account_details_carry_the_portal_id(shared: Served) -> None:
    sandbox, client = shared
    details = client.get("/account-info/v3/details").json()
    assert details["portalId"] == 40_000_000 + sandbox.world.seed
    assert details["uiDomain"] == "app.hubspot.com"
    assert {"accountType", "timeZone", "companyCurrency", "dataHostingLocation"} <= set(details)
