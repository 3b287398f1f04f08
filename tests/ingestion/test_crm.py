"""The CRM (HubSpot) source: search windows as pure functions, then against the sandbox: full
load, incremental search, windows under the result cap, rate limits and faults, schema drift."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingestion.crm import helpers
from ingestion.crm.settings import ASSOCIATIONS, CONTACTS, OBJECTS, Association, CrmObject
from ingestion.pipeline import SystemResult, run_system
from ingestion.warehouse import Paths
from sandbox.config import DEFAULT_TOKENS, RateLimitConfig
from sandbox.faults import Drift, FaultPlan, Scripted, apply_drift
from sandbox.server import Sandbox
from sandbox.store import World
from tests.ingestion.helpers import fetch, loaded_counts

OBJECT_TABLES = tuple(obj.name for obj in OBJECTS)
FAST_SEARCH = {"search_rate": 100.0}  # the sandbox runs without limits unless a test sets them
STORMY = {"search_rate": 4.0, "backoff_base": 0.05}


# -- helpers ---------------------------------------------------------------------------------


def _run(paths: Paths, **source_kwargs: Any) -> SystemResult:
    return run_system("crm", where=paths, source_kwargs={**FAST_SEARCH, **source_kwargs})


def _objects(paths: Paths, obj: CrmObject) -> dict[str, tuple[Any, ...]]:
    columns = ", ".join(f"properties__{name}" for name in obj.properties)
    return {row[0]: row[1:] for row in fetch(paths, f"select id, {columns} from raw_crm.{obj.name}")}


def _world_objects(world: World, obj: CrmObject) -> dict[str, tuple[Any, ...]]:
    collection = world.crm.objects(obj.name)
    assert collection is not None
    return {
        r["id"]: tuple(r["properties"].get(name) for name in obj.properties)
        for r in collection
        if not r.get("archived")
    }


def _pairs(paths: Paths, assoc: Association) -> set[tuple[str, str]]:
    sql = f"select {assoc.from_column}, {assoc.to_column} from raw_crm.{assoc.table}"
    return {(row[0], row[1]) for row in fetch(paths, sql)}


def _world_pairs(world: World, assoc: Association) -> set[tuple[str, str]]:
    linked = world.crm.associations.get((assoc.from_type, assoc.to_type), {})
    return {(from_id, to_id) for from_id, targets in linked.items() for to_id in targets}


def _assert_matches_world(paths: Paths, world: World) -> None:
    for obj in OBJECTS:
        assert _objects(paths, obj) == _world_objects(world, obj), obj.name
        dupes = fetch(paths, f"select id from raw_crm.{obj.name} group by id having count(*) > 1")
        assert dupes == [], obj.name
    for assoc in ASSOCIATIONS:
        assert _pairs(paths, assoc) == _world_pairs(world, assoc), assoc.table
        rows = fetch(paths, f"select count(*) from raw_crm.{assoc.table}")[0][0]
        assert rows == len(_pairs(paths, assoc)), f"duplicate pairs in {assoc.table}"
    assert {r[0] for r in fetch(paths, "select id from raw_crm.owners")} == {
        str(o["id"]) for o in world.crm.owners
    }
    stages = fetch(
        paths,
        "select p.id, s.id, s.metadata__probability from raw_crm.pipelines p "
        "join raw_crm.pipelines__stages s on s._dlt_parent_id = p._dlt_id",
    )
    assert set(stages) == {
        (p["id"], s["id"], s["metadata"]["probability"]) for p in world.crm.pipelines for s in p["stages"]
    }


def _this_load(paths: Paths, table: str, result: SystemResult) -> list[str]:
    load_ids = ", ".join(f"'{load_id}'" for load_id in result.load_ids) or "''"
    return [r[0] for r in fetch(paths, f"select id from raw_crm.{table} where _dlt_load_id in ({load_ids})")]


def _hubspot(sandbox: Sandbox, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.request(
        method,
        sandbox.base_urls["hubspot"] + path,
        json=body,
        headers={"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"},
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _snapshot(paths: Paths) -> dict[str, Any]:
    snapshot: dict[str, Any] = {obj.name: _objects(paths, obj) for obj in OBJECTS}
    snapshot.update({assoc.table: _pairs(paths, assoc) for assoc in ASSOCIATIONS})
    snapshot["owners"] = sorted(fetch(paths, "select id, email from raw_crm.owners"))
    snapshot["stages"] = sorted(fetch(paths, "select id, label from raw_crm.pipelines__stages"))
    return snapshot


# -- pure functions --------------------------------------------------------------------------


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(ms: int) -> str:
    return f"{EPOCH + timedelta(milliseconds=ms):%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


class FakeHubSpot:
    """HubSpot over (id -> modified ms): list by id, and search with filters, one sort, offset
    paging and the result cap. `on_list_page` runs after each list page is served, and
    `on_search` before each search is answered."""

    def __init__(self, records: list[tuple[str, int]], cap: int) -> None:
        self.records = dict(records)
        self.cap = cap
        self.calls = 0
        self.on_list_page: Any = None
        self.on_search: Any = None

    def _record(self, rid: str) -> dict[str, Any]:
        return {"id": rid, "properties": {"lastmodifieddate": _iso(self.records[rid])}}

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        ids = sorted(int(rid) for rid in self.records if int(rid) >= int(params.get("after", 0)))
        page = ids[: params["limit"]]
        data: dict[str, Any] = {"results": [self._record(str(i)) for i in page]}
        if len(ids) > len(page):
            data["paging"] = {"next": {"after": str(page[-1] + 1)}}
        if self.on_list_page:
            self.on_list_page(self)
        return data

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.on_search:
            self.on_search(self)
        limit, after = body["limit"], int(body.get("after", 0))
        assert after + limit <= self.cap, "a query paged past the result cap"
        filters = body["filterGroups"][0]["filters"] if body.get("filterGroups") else []
        matches = [
            (ms, int(rid), rid) for rid, ms in self.records.items() if all(_test(f, rid, ms) for f in filters)
        ]
        sort = body["sorts"][0]
        if sort["propertyName"] == "hs_object_id":
            matches.sort(key=lambda m: m[1])
        else:
            matches.sort(reverse=sort.get("direction") == "DESCENDING")
        page = matches[after : after + limit]
        data: dict[str, Any] = {"total": len(matches), "results": [self._record(rid) for _, _, rid in page]}
        if after + limit < len(matches):
            data["paging"] = {"next": {"after": str(after + limit)}}
        return data


def _test(f: dict[str, str], rid: str, ms: int) -> bool:
    value = int(rid) if f["propertyName"] == "hs_object_id" else ms
    wanted = int(f["value"])
    return {
        "GTE": value >= wanted,
        "GT": value > wanted,
        "EQ": value == wanted,
        "LTE": value <= wanted,
        "LT": value < wanted,
    }[f["operator"]]


def _tied_records(rng: random.Random, groups: int, biggest: int) -> list[tuple[str, int]]:
    records, next_id, ms = [], 1, 1_700_000_000_000
    for _ in range(groups):
        ms += rng.randint(1, 5_000)
        for _ in range(rng.choice([1, 1, 2, 3, rng.randint(1, biggest)])):
            records.append((str(next_id), ms))
            next_id += rng.randint(1, 3)
    rng.shuffle(records)
    return records


@pytest.mark.parametrize(("page_size", "window"), [(5, 5), (5, 15), (7, 30), (10, 10_000)])
@pytest.mark.parametrize("seed", range(4))
def test_search_returns_every_change_once_whatever_the_ties(page_size: int, window: int, seed: int):
    rng = random.Random(seed)
    records = _tied_records(rng, groups=60, biggest=40)
    since = sorted(ms for _, ms in records)[len(records) // 3]
    fake = FakeHubSpot(records, cap=max(window, page_size))
    pages = helpers.search_modified(fake, CONTACTS, since, page_size=page_size, window=window)  # type: ignore[arg-type]
    seen = [r["id"] for page in pages for r in page]
    assert sorted(seen) == sorted(rid for rid, ms in records if ms >= since)
    assert len(seen) == len(set(seen))


def test_one_timestamp_shared_by_more_records_than_a_window():
    records = [(str(n), 1_700_000_000_000) for n in range(1, 251)] + [("999", 1_700_000_000_001)]
    fake = FakeHubSpot(records, cap=20)
    pages = helpers.search_modified(fake, CONTACTS, 0, page_size=10, window=20)  # type: ignore[arg-type]
    seen = [r["id"] for page in pages for r in page]
    assert sorted(seen, key=int) == [rid for rid, _ in records]
    assert fake.calls < 40


def test_batches_sharing_a_millisecond_are_read_once_each():
    """Batch updates stamp 100 records with one millisecond: each page brings a full page of
    new records, and beyond the pages only the probes that bound the slabs are spent."""
    records = [(str(n), 1_700_000_000_000 + n // 100) for n in range(1, 2_001)]
    fake = FakeHubSpot(records, cap=10_000)
    pages = list(helpers.search_modified(fake, CONTACTS, 0, page_size=200, window=1_000))  # type: ignore[arg-type]
    assert sum(len(page) for page in pages) == 2_000
    assert len(pages) <= 2_000 // 200 + 2  # a last page per slab may come back short or empty
    assert fake.calls <= len(pages) + 3  # newest value, then one edge per slab


@pytest.mark.parametrize("window", [5, 40, 10_000])
@pytest.mark.parametrize("seed", range(6))
def test_records_edited_mid_scan_are_read_now_or_left_past_the_cursor(window: int, seed: int):
    """Each search edits a random record (stamped at or after every other): whatever moves, the
    scan skips no record that stayed put, and any edit it did not return is newer than the
    cursor it leaves (the newest value returned), so the next run reads it."""
    rng = random.Random(seed)
    records = _tied_records(rng, groups=80, biggest=30)
    since = sorted(ms for _, ms in records)[len(records) // 4]
    fake = FakeHubSpot(records, cap=10_000)
    clock = [max(ms for _, ms in records)]
    edited: set[str] = set()

    def edit_one(server: FakeHubSpot) -> None:
        rid = rng.choice(sorted(server.records))
        clock[0] += rng.choice([0, 1, 1, 2])  # edits may share a millisecond
        server.records[rid] = clock[0]
        edited.add(rid)

    fake.on_search = edit_one
    pages = helpers.search_modified(fake, CONTACTS, since, page_size=5, window=window)  # type: ignore[arg-type]
    seen = [(r["id"], r["properties"]["lastmodifieddate"]) for page in pages for r in page]
    assert len(seen) == len(set(seen)), "a version of a record came back twice"
    cursor = max(helpers.epoch_ms(stamp) or 0 for _, stamp in seen)
    returned = dict(seen)
    for rid, ms in fake.records.items():
        if rid not in edited and ms >= since:
            assert returned.get(rid) == _iso(ms), f"record {rid} was skipped"
        elif rid in edited and ms >= since and returned.get(rid) != _iso(ms):
            assert ms >= cursor, f"edited record {rid} is behind the cursor the run leaves"
    assert edited - set(returned), "no edit was left for the next run: the test proves nothing"


def test_a_first_run_also_returns_what_changed_while_it_listed():
    start = 1_700_000_000_000
    fake = FakeHubSpot([(str(n), start + n) for n in range(1, 51)], cap=10_000)

    def edit_behind_and_ahead(server: FakeHubSpot) -> None:
        if server.records["3"] < start + 100:  # once, after the first page
            server.records["3"], server.records["40"] = start + 100, start + 101

    fake.on_list_page = edit_behind_and_ahead
    pages = helpers.full_scan(fake, fake, CONTACTS, list_page_size=10, page_size=5, window=5)  # type: ignore[arg-type]
    seen = [(r["id"], r["properties"]["lastmodifieddate"]) for page in pages for r in page]
    assert len(seen) == len(set(seen)) == 51  # every record, and record 3 twice: before and after its edit
    newest = dict(seen)
    assert newest == {rid: _iso(ms) for rid, ms in fake.records.items()}


def test_timestamps_compare_as_instants():
    assert helpers.epoch_ms("2026-03-01T09:15:00.000Z") == 1_772_356_500_000
    assert helpers.epoch_ms("1772356500000") == 1_772_356_500_000
    assert helpers.latest(["2026-03-01T09:15:00.500Z", "2026-03-01T09:15:00Z"]) == "2026-03-01T09:15:00.500Z"


def test_an_object_without_pairs_clears_its_old_ones():
    assoc = ASSOCIATIONS[0]
    rows = helpers.association_rows(assoc, ["1", "2"], {"1": ["10", "11", "10"]}, "_deleted")
    assert rows == [
        {"contact_id": "1", "company_id": "10"},
        {"contact_id": "1", "company_id": "11"},
        {"contact_id": "2", "company_id": "", "_deleted": True},
    ]
    assert helpers.association_rows(assoc, ["2"], {}, None) == []


# -- against the sandbox ---------------------------------------------------------------------


def test_full_load_equals_the_world(sandbox_world: World, warehouse_paths: Paths, source_env):
    result = _run(warehouse_paths)
    assert result.quarantined == 0
    _assert_matches_world(warehouse_paths, sandbox_world)
    for obj in OBJECTS:
        assert _objects(warehouse_paths, obj), f"the world has no {obj.name}"
    for assoc in ASSOCIATIONS:
        assert _pairs(warehouse_paths, assoc), f"the world has no {assoc.table}"


def test_incremental_runs_bring_each_change_once(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    from sandbox import world as world_module

    _run(warehouse_paths)
    assert not set(loaded_counts(_run(warehouse_paths))) & {*OBJECT_TABLES, *(a.table for a in ASSOCIATIONS)}

    before = {obj.name: _world_objects(sandbox_world, obj) for obj in OBJECTS}
    with sandbox_world.lock:
        world_module.advance(sandbox_world, days=1)
    contacts = _world_objects(sandbox_world, CONTACTS).items()
    patched, untouched = [rid for rid, values in contacts if before["contacts"].get(rid) == values][:2]
    links = sandbox_world.crm.associations
    dropped = links[("contacts", "companies")].pop(patched, [])  # its last company link goes away
    for company in dropped:
        links[("companies", "contacts")][company].remove(patched)
    assert dropped
    _hubspot(sandbox, "PATCH", f"/crm/v3/objects/contacts/{patched}", {"properties": {"jobtitle": "Chief"}})
    meeting = _hubspot(  # a new meeting for an existing contact leaves the contact itself unchanged
        sandbox,
        "POST",
        "/crm/v3/objects/meetings",
        {
            "properties": {"hs_meeting_title": "Follow-up", "hs_meeting_outcome": "SCHEDULED"},
            "associations": [
                {
                    "to": {"id": untouched},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 199}],
                }
            ],
        },
    )
    changed = {
        name: {
            rid
            for rid, values in _world_objects(sandbox_world, obj).items()
            if before[name].get(rid) != values
        }
        for name, obj in zip(OBJECT_TABLES, OBJECTS, strict=True)
    }
    assert patched in changed["contacts"] and untouched not in changed["contacts"]
    assert meeting["id"] in changed["meetings"]

    result = _run(warehouse_paths)
    loaded = loaded_counts(result)
    for name in OBJECT_TABLES:
        assert loaded.get(name, 0) == len(changed[name]), name
        assert sorted(_this_load(warehouse_paths, name, result)) == sorted(changed[name]), name
    assert (untouched, meeting["id"]) in _pairs(warehouse_paths, ASSOCIATIONS[2])
    assert not {pair for pair in _pairs(warehouse_paths, ASSOCIATIONS[0]) if pair[0] == patched}
    _assert_matches_world(warehouse_paths, sandbox_world)
    assert not set(loaded_counts(_run(warehouse_paths))) & set(OBJECT_TABLES)


def test_search_windows_stay_under_the_result_cap(
    sandbox: Sandbox, sandbox_world: World, tmp_path: Path, source_env
):
    """The cap is lowered to 75 and pages to 25, so batches of 100 contacts written in one
    millisecond (one batch update) tie across slabs; slabs of the cap and of one page both
    return each change once."""
    sandbox.apps["hubspot"].SEARCH_CAP = 75  # type: ignore[attr-defined]
    to_the_cap, page_by_page = Paths(tmp_path / "cap"), Paths(tmp_path / "keyset")
    settings = {"search_page_size": 25}
    _run(to_the_cap, **settings, search_window=75)
    _run(page_by_page, **settings, search_window=25)

    contacts = sorted((c["id"] for c in sandbox_world.crm.contacts), key=int)
    assert len(contacts) >= 260
    for start in range(0, 240, 100):
        inputs = [
            {"id": rid, "properties": {"jobtitle": f"Batch {start}"}}
            for rid in contacts[start : min(start + 100, 240)]
        ]
        _hubspot(sandbox, "POST", "/crm/v3/objects/contacts/batch/update", {"inputs": inputs})
    for rid in contacts[250:260]:
        _hubspot(sandbox, "PATCH", f"/crm/v3/objects/contacts/{rid}", {"properties": {"jobtitle": "Single"}})
    changed = sorted([*contacts[:240], *contacts[250:260]])

    for paths, window in ((to_the_cap, 75), (page_by_page, 25)):
        result = _run(paths, **settings, search_window=window)
        assert loaded_counts(result)["contacts"] == len(changed)
        assert sorted(_this_load(paths, "contacts", result)) == changed
        assert _objects(paths, CONTACTS) == _world_objects(sandbox_world, CONTACTS)
    assert sandbox.stats["hubspot:400"] == 0


def test_rate_limits_and_fault_storms_give_identical_results(
    sandbox: Sandbox, sandbox_world: World, tmp_path: Path, source_env
):
    from sandbox import world as world_module

    stormy, clean = Paths(tmp_path / "stormy"), Paths(tmp_path / "clean")
    sandbox.set_limits(RateLimitConfig(hubspot_per_10s=100, hubspot_search_per_s=4))
    sandbox.faults.set(
        FaultPlan(
            seed=1,
            error_rate=0.2,
            drop_rate=0.05,
            malformed_rate=0.05,
            systems=["crm"],
            scripted=[Scripted(system="crm", path="search", status=429, times=2)],
        )
    )
    assert _run(stormy, **STORMY).quarantined == 0  # a full load ...
    with sandbox_world.lock:
        world_module.advance(sandbox_world, days=1)
    assert _run(stormy, **STORMY).quarantined == 0  # ... and an incremental one, through the storm
    injected = dict(sandbox.faults.injected)

    sandbox.faults.set(FaultPlan())
    _run(clean)
    assert injected.get("error") and injected.get("drop") and injected.get("malformed")
    assert sandbox.stats["hubspot:429"] > 0 and sandbox.stats["hubspot:503"] > 0
    assert _snapshot(stormy) == _snapshot(clean)
    _assert_matches_world(stormy, sandbox_world)


def test_drifted_contacts_are_quarantined_and_the_rest_loads(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    drift = Drift(kind="changed_type", field="properties.email", fraction=0.1)
    sandbox.faults.set(FaultPlan(drift={"crm/contacts": drift}))
    result = _run(warehouse_paths)

    drifted = {
        c["id"]
        for c in sandbox_world.crm.contacts
        if apply_drift({"id": c["id"], "properties": {"email": "x"}}, drift, c["id"])["properties"]["email"]
        != "x"
    }
    quarantined = fetch(warehouse_paths, "select record_key, resource, reason from raw_crm._quarantine")
    assert drifted and result.quarantined == len(drifted)
    assert {r[0] for r in quarantined} == drifted
    assert {(r[1], r[2]) for r in quarantined} == {
        ("contacts", "properties.email is dict, expected a string")
    }
    world_contacts = _world_objects(sandbox_world, CONTACTS)
    loaded = _objects(warehouse_paths, CONTACTS)
    assert set(loaded) == set(world_contacts) - drifted
    assert loaded == {rid: values for rid, values in world_contacts.items() if rid not in drifted}
