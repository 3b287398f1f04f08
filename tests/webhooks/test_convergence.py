"""Property: any shuffling, duplication and delay (drains in between) of the same deliveries
ends in the same warehouse state, settled by the source's own clock, never by arrival."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.webhooks import events as events_module
from ingestion.webhooks.drain import drain
from ingestion.webhooks.inbox import Accept, Inbox, apply, connect, transaction
from tests.webhooks.conftest import calendly_event, hubspot_event, stripe_event

T0 = 1_700_000_000


def stripe_deliveries() -> list[tuple[str, bytes]]:
    # one invoice changed four times; two changes share a second (the tie goes to the larger id)
    times = {"evt_3": T0 + 30, "evt_1": T0 + 10, "evt_4": T0 + 30, "evt_2": T0 + 20, "evt_5": T0 + 5}
    bodies = [("stripe", stripe_event(e, "in_1", created=t, status=e)) for e, t in times.items()]
    bodies.append(("stripe", stripe_event("evt_9", "in_2", created=T0, status="open")))
    return bodies


def hubspot_deliveries() -> list[tuple[str, bytes]]:
    # contact 101's email changes three times, its phone once; the newest change arrives first
    ms = T0 * 1000
    first = [
        hubspot_event(30, 101, ms + 3000, "email", "c@x"),
        hubspot_event(31, 101, ms + 3000, "phone", "1"),
    ]
    second = [hubspot_event(10, 101, ms + 1000, "email", "a@x"), hubspot_event(11, 102, ms + 1000)]
    third = [hubspot_event(20, 101, ms + 2000, "email", "b@x")]
    return [("hubspot", orjson.dumps(batch)) for batch in (first, second, third)]


def calendly_deliveries() -> list[tuple[str, bytes]]:
    uri = "https://api.calendly.com/scheduled_events/E1/invitees/I1"
    created = calendly_event("invitee.created", uri, "2026-01-01T10:00:00.000001Z")
    canceled = calendly_event("invitee.canceled", uri, "2026-01-01T11:00:00.000002Z", "canceled")
    return [("calendly", created), ("calendly", canceled)]


DELIVERIES = stripe_deliveries() + hubspot_deliveries() + calendly_deliveries()


def retried(provider: str, body: bytes) -> bytes:
    """A redelivery as the provider sends it (HubSpot counts attempts in the body)."""
    if provider != "hubspot":
        return body
    return orjson.dumps([{**e, "attemptNumber": e["attemptNumber"] + 1} for e in orjson.loads(body)])


def run(order: list[tuple[str, bytes]], cuts: set[int], home: Path) -> dict[str, list[tuple]]:
    """Store the deliveries in this order, draining after each cut; the warehouse state."""
    inbox, warehouse = Inbox(home / "inbox.sqlite3"), home / "warehouse.duckdb"
    con = connect(inbox.path)
    for position, (provider, body) in enumerate(order):
        with transaction(con):
            apply(con, Accept(provider, T0 * 10**6 + position, {}, body, events_module.parse(provider, body)))
        if position in cuts:
            drain(inbox, warehouse)
    con.close()
    drain(inbox, warehouse)
    return snapshot(warehouse)


def snapshot(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as db:
        events = db.execute(
            "select provider, event_key, event_id, event_type, system, object_type, object_id, field, "
            "occurred_at, payload::varchar from raw_webhooks.events order by all"
        ).fetchall()
        latest = db.execute(
            "select provider, system, object_type, object_id, field, event_key, event_type, occurred_at, "
            "payload::varchar from raw_webhooks.latest order by all"
        ).fetchall()
    return {"events": events, "latest": latest}


def expected_latest() -> dict[tuple[str, str, str, str], str]:
    """Independently: per object and field, the event with the newest source time (then key)."""
    best: dict[tuple[str, str, str, str], tuple[int, str]] = {}
    for provider, body in DELIVERIES:
        for e in events_module.parse(provider, body):
            slot = (provider, e.object_type, e.object_id, e.field)
            best[slot] = max(best.get(slot, (-1, "")), (e.occurred_us, e.event_key))
    return {slot: key for slot, (_, key) in best.items()}


REFERENCE: dict[str, list[tuple]] = {}


def reference() -> dict[str, list[tuple]]:
    if not REFERENCE:
        with tempfile.TemporaryDirectory() as folder:
            REFERENCE.update(run(list(DELIVERIES), set(), Path(folder)))
    return REFERENCE


def test_the_reference_state_is_settled_by_source_time():
    state = reference()
    assert len(state["events"]) == 13  # every event once
    found = {(p, t, o, f): key for p, _, t, o, f, key, *_ in state["latest"]}
    assert found == expected_latest()
    by_object = {(o, f): (etype, payload) for _, _, _, o, f, _, etype, _, payload in state["latest"]}
    assert '"c@x"' in by_object[("101", "email")][1]  # arrived first, newest at the source
    assert '"status":"evt_4"' in by_object[("in_1", "")][1]  # evt_3 and evt_4 tie at T0+30: the larger id
    invitee = "https://api.calendly.com/scheduled_events/E1/invitees/I1"
    assert by_object[(invitee, "")][0] == "invitee.canceled"


deliveries = st.permutations(range(len(DELIVERIES))).flatmap(
    lambda order: st.tuples(
        st.just(order),
        # deliveries sent again, and where in the stream each copy lands
        st.lists(
            st.tuples(st.sampled_from(range(len(DELIVERIES))), st.integers(0, len(DELIVERIES) + 6)),
            max_size=6,
        ),
        st.lists(st.integers(min_value=0, max_value=len(DELIVERIES) + 6), max_size=2),  # drains between
    )
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries)
def test_any_order_duplication_and_delay_converges_to_the_same_state(case):
    order, again, cuts = case
    sequence = [DELIVERIES[i] for i in order]
    for index, position in again:  # redeliveries land anywhere, some after drains
        provider, body = DELIVERIES[index]
        sequence.insert(position, (provider, retried(provider, body)))
    with tempfile.TemporaryDirectory() as folder:
        assert run(sequence, set(cuts), Path(folder)) == reference()
