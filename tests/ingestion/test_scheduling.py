"""The scheduling (Calendly) source: the re-scan window, then against the sandbox: full load,
cancellations and reschedules inside the window, faults and drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ingestion.pipeline import SystemResult, run_system
from ingestion.scheduling import helpers
from ingestion.warehouse import Paths
from sandbox.config import DEFAULT_TOKENS
from sandbox.faults import Drift, FaultPlan, apply_drift
from sandbox.server import Sandbox
from sandbox.store import Record, World
from tests.ingestion.helpers import fetch

EVENT_FIELDS = ("status", "start_time", "end_time", "event_type", "updated_at")
INVITEE_FIELDS = ("event", "status", "email", "rescheduled", "old_invitee", "new_invitee")


# -- helpers ---------------------------------------------------------------------------------


def _run(paths: Paths, world: World, **source_kwargs: Any) -> SystemResult:
    return run_system("scheduling", where=paths, source_kwargs={"now": world.clock(), **source_kwargs})


def _events(paths: Paths) -> dict[str, tuple[Any, ...]]:
    columns = ", ".join((*EVENT_FIELDS, "cancellation__reason"))
    return {r[0]: r[1:] for r in fetch(paths, f"select uri, {columns} from raw_scheduling.scheduled_events")}


def _world_events(world: World) -> dict[str, tuple[Any, ...]]:
    return {
        e["uri"]: (*(e.get(f) for f in EVENT_FIELDS), (e.get("cancellation") or {}).get("reason"))
        for e in world.scheduling.events
    }


def _invitees(paths: Paths) -> dict[str, tuple[Any, ...]]:
    columns = ", ".join(INVITEE_FIELDS)
    return {r[0]: r[1:] for r in fetch(paths, f"select uri, {columns} from raw_scheduling.invitees")}


def _world_invitees(world: World) -> dict[str, tuple[Any, ...]]:
    return {i["uri"]: tuple(i.get(f) for f in INVITEE_FIELDS) for i in world.scheduling.invitees}


def _assert_matches_world(paths: Paths, world: World) -> None:
    assert _events(paths) == _world_events(world)
    assert _invitees(paths) == _world_invitees(world)
    for table in ("scheduled_events", "invitees"):
        dupes = fetch(paths, f"select uri from raw_scheduling.{table} group by uri having count(*) > 1")
        assert dupes == [], table


def _stamp(moment: datetime) -> str:
    return helpers.calendly_time(moment)


def _upcoming(world: World, skip: int = 0) -> Record:
    """An active event starting after the world's clock (inside every re-scan window)."""
    now = _stamp(world.clock())
    upcoming = sorted(
        (e for e in world.scheduling.events if e["status"] == "active" and e["start_time"] > now),
        key=lambda e: e["start_time"],
    )
    assert len(upcoming) > skip, "the world has too few upcoming events"
    return upcoming[skip]


def _reschedule(world: World, event: Record) -> tuple[str, str]:
    """Calendly's reschedule: the old event and invitee are canceled, a new pair is linked to them."""
    scheduling = world.scheduling
    now = _stamp(world.clock())
    cancellation = {"canceled_by": "Invitee", "reason": "Rescheduled", "canceler_type": "invitee"}
    cancellation["created_at"] = now
    old_invitee = scheduling.invitees.get(scheduling.invitees_by_event[event["uri"]][0])
    assert old_invitee is not None
    new_event_uri = f"{event['uri']}R"
    new_invitee_uri = f"{new_event_uri}/invitees/{old_invitee['uri'].rsplit('/', 1)[1]}R"
    start = datetime.fromisoformat(event["start_time"].replace("Z", "+00:00")) + timedelta(days=2)
    end = datetime.fromisoformat(event["end_time"].replace("Z", "+00:00")) + timedelta(days=2)
    scheduling.events.put(
        {
            **event,
            "uri": new_event_uri,
            "start_time": _stamp(start),
            "end_time": _stamp(end),
            "created_at": now,
            "updated_at": now,
        }
    )
    scheduling.events.put({**event, "status": "canceled", "cancellation": cancellation, "updated_at": now})
    scheduling.invitees.put(
        {
            **old_invitee,
            "uri": new_invitee_uri,
            "event": new_event_uri,
            "old_invitee": old_invitee["uri"],
            "created_at": now,
            "updated_at": now,
        }
    )
    scheduling.invitees.put(
        {
            **old_invitee,
            "status": "canceled",
            "rescheduled": True,
            "new_invitee": new_invitee_uri,
            "cancellation": dict(cancellation),
            "updated_at": now,
        }
    )
    scheduling.invitees_by_event[new_event_uri] = [new_invitee_uri]
    return new_event_uri, new_invitee_uri


# -- pure functions --------------------------------------------------------------------------


def test_first_scan_reads_all_history_and_later_ones_a_window():
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert helpers.scan_window(None, now, 30, 365) == (None, None)
    assert helpers.scan_window("2026-11-22T12:00:00.000000Z", now, 30, 365) == (
        "2026-10-23T12:00:00.000000Z",
        "2027-11-23T12:00:00.000000Z",
    )
    # after a long pause the window reaches back to the days the last run covered
    assert helpers.scan_window("2026-09-01T00:00:00Z", now, 30, 10)[0] == "2026-08-02T00:00:00.000000Z"


def test_event_uris_come_from_records_and_quarantined_records():
    uri = "https://api.calendly.com/scheduled_events/ABC"
    quarantined = {"quarantine_id": "q", "record_key": "https://api.calendly.com/scheduled_events/DEF"}
    assert helpers.event_uris([{"uri": uri}, quarantined, {"uri": uri}, {"uri": "nope"}]) == [
        uri,
        quarantined["record_key"],
    ]
    assert helpers.event_uuid(f"{uri}/invitees/X") is None


def test_a_rescan_reads_invitees_of_changed_or_just_started_events_only():
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    since = now - timedelta(days=1)

    def needs(updated: str, start: str) -> bool:
        uri = "https://api.calendly.com/scheduled_events/A"
        return helpers.needs_invitees({"uri": uri, "updated_at": updated, "start_time": start}, since, now, 7)

    upcoming, earlier = "2026-12-01T10:00:00.000000Z", "2026-10-01T09:00:00.000000Z"
    assert not needs(earlier, upcoming)  # upcoming, unchanged
    assert not needs(earlier, "2026-11-10T09:00:00.000000Z")  # met before the no-show days
    assert needs("2026-11-22T12:00:00.000000Z", upcoming)  # changed
    assert needs(earlier, "2026-11-23T11:00:00.000000Z")  # started since the last scan
    assert needs(earlier, "2026-11-17T11:00:00.000000Z")  # within the no-show days
    assert helpers.needs_invitees({"uri": "x", "updated_at": earlier, "start_time": upcoming}, None, now, 7)
    assert helpers.needs_invitees({"quarantine_id": "q", "record_key": "x"}, since, now, 7)
    assert needs("not a time", upcoming)


# -- against the sandbox ---------------------------------------------------------------------


def test_full_load_equals_the_world(sandbox_world: World, warehouse_paths: Paths, source_env):
    result = _run(warehouse_paths, sandbox_world)
    assert result.quarantined == 0
    _assert_matches_world(warehouse_paths, sandbox_world)
    statuses = {values[0] for values in _events(warehouse_paths).values()}
    assert statuses == {"active", "canceled"}
    assert any(values[4] for values in _invitees(warehouse_paths).values()), "no rescheduled invitee"
    memberships = "select count(*) from raw_scheduling.scheduled_events__event_memberships"
    assert fetch(warehouse_paths, memberships)[0][0] >= len(sandbox_world.scheduling.events)


def test_cancellations_and_reschedules_in_the_window_arrive_next_run(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    from sandbox import world as world_module

    _run(warehouse_paths, sandbox_world)
    with sandbox_world.lock:
        world_module.advance(sandbox_world, days=2)
    canceled = _upcoming(sandbox_world)
    response = httpx.post(
        f"{sandbox.base_urls['calendly']}/scheduled_events/{canceled['uri'].rsplit('/', 1)[1]}/cancellation",
        json={"reason": "Budget freeze"},
        headers={"Authorization": f"Bearer {DEFAULT_TOKENS['calendly']}"},
    )
    assert response.status_code == 201
    moved = _upcoming(sandbox_world, skip=1)
    with sandbox_world.lock:
        new_event, new_invitee = _reschedule(sandbox_world, moved)

    _run(warehouse_paths, sandbox_world)
    events, invitees = _events(warehouse_paths), _invitees(warehouse_paths)
    assert events[canceled["uri"]][0] == "canceled" and events[canceled["uri"]][-1] == "Budget freeze"
    assert events[moved["uri"]][0] == "canceled" and events[moved["uri"]][-1] == "Rescheduled"
    assert events[new_event][0] == "active"
    old_invitee = sandbox_world.scheduling.invitees_by_event[moved["uri"]][0]
    assert (invitees[old_invitee][1], invitees[old_invitee][3], invitees[old_invitee][5]) == (
        "canceled",
        True,
        new_invitee,
    )
    assert invitees[new_invitee][4] == old_invitee
    _assert_matches_world(warehouse_paths, sandbox_world)


def test_faults_and_drift_leave_every_other_recordloaded_counts(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    drift = Drift(kind="changed_type", field="email", fraction=0.1)
    sandbox.faults.set(
        FaultPlan(
            seed=3,
            error_rate=0.2,
            drop_rate=0.05,
            malformed_rate=0.05,
            systems=["scheduling"],
            drift={"scheduling/invitees": drift},
        )
    )
    result = _run(warehouse_paths, sandbox_world, backoff_base=0.02)
    injected = sandbox.faults.injected
    assert injected.get("error") and injected.get("drop") and injected.get("malformed")

    invitees = sandbox_world.scheduling.invitees
    drifted = {i["uri"] for i in invitees if apply_drift({"email": "x"}, drift, i["uri"])["email"] != "x"}
    quarantine = "select record_key, resource, reason from raw_scheduling._quarantine"
    quarantined = fetch(warehouse_paths, quarantine)
    assert drifted and result.quarantined == len(drifted)
    assert {r[0] for r in quarantined} == drifted
    assert {(r[1], r[2]) for r in quarantined} == {("invitees", "email is dict, expected str")}
    expected = {uri: values for uri, values in _world_invitees(sandbox_world).items() if uri not in drifted}
    assert _invitees(warehouse_paths) == expected
    assert _events(warehouse_paths) == _world_events(sandbox_world)


def test_later_runs_read_only_the_window(sandbox_world: World, warehouse_paths: Paths, source_env):
    _run(warehouse_paths, sandbox_world)
    result = _run(warehouse_paths, sandbox_world, rescan_days=0, updated_margin_hours=0)
    now = _stamp(sandbox_world.clock())
    in_window = {e["uri"] for e in sandbox_world.scheduling.events if e["start_time"] >= now}
    loaded = {t.table: t.loaded for t in result.tables}
    assert loaded.get("scheduled_events", 0) == len(in_window)
    # nothing changed and nothing in the window has started: no invitee list is read again
    assert loaded.get("invitees", 0) == 0
    result = _run(warehouse_paths, sandbox_world, rescan_days=0, all_invitees=True, updated_margin_hours=0)
    loaded = {t.table: t.loaded for t in result.tables}
    by_event = sandbox_world.scheduling.invitees_by_event
    assert loaded.get("invitees", 0) == sum(len(by_event[uri]) for uri in in_window) > 0


def test_no_shows_marked_after_the_meeting_arrive_next_run(
    sandbox_world: World, warehouse_paths: Paths, source_env
):
    """A no-show changes the invitee, not its event: the re-scan reads the invitees of the
    events that started in the no-show days before it (30 here, so the small world has one)."""
    _run(warehouse_paths, sandbox_world, updated_margin_hours=0)
    now = sandbox_world.clock()
    scheduling = sandbox_world.scheduling
    started = [
        e
        for e in scheduling.events
        if e["status"] == "active" and now - timedelta(days=20) < helpers.parse_time(e["start_time"]) < now
    ]
    invitee = next(
        i
        for e in started
        for i in map(scheduling.invitees.get, scheduling.invitees_by_event[e["uri"]])
        if i and not i.get("no_show")
    )
    no_show = {"uri": "https://api.calendly.com/invitee_no_shows/NOSHOW1", "created_at": _stamp(now)}
    with sandbox_world.lock:
        scheduling.invitees.put({**invitee, "no_show": no_show, "updated_at": _stamp(now)})

    _run(warehouse_paths, sandbox_world, updated_margin_hours=0, no_show_days=30)
    loaded = fetch(
        warehouse_paths, f"select no_show->>'uri' from raw_scheduling.invitees where uri = '{invitee['uri']}'"
    )
    assert loaded == [(no_show["uri"],)]
    _assert_matches_world(warehouse_paths, sandbox_world)
