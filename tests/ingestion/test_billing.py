"""The billing (Stripe) source against the sandbox: full load, events feed, resync, faults, drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ingestion.billing import helpers
from ingestion.billing.helpers import EventsCursor
from ingestion.billing.settings import RESOURCES
from ingestion.contracts import QUARANTINE_COLUMNS
from ingestion.http import ApiClient, ClientLease
from ingestion.pipeline import SystemResult, make_pipeline, run_system
from ingestion.tables import TABLES as RAW_TABLES
from ingestion.warehouse import Paths
from sandbox.config import DEFAULT_TOKENS, RateLimitConfig
from sandbox.faults import Drift, FaultPlan, Scripted
from sandbox.server import Sandbox
from sandbox.store import World
from sandbox.world import advance
from tests.ingestion.helpers import fetch, loaded_counts

TABLES = ("customers", "invoices", "charges", "payment_intents", "subscriptions")
FIELDS = {
    "customers": ("email", "name", "balance", "delinquent"),
    "invoices": ("customer", "status", "amount_due", "amount_paid", "amount_remaining", "total"),
    "charges": ("amount", "amount_refunded", "status", "paid"),
    "payment_intents": ("amount", "amount_received", "status"),
    "subscriptions": ("customer", "status", "current_period_end"),
}


# -- helpers ---------------------------------------------------------------------------------


def _run(home: Path, **source_kwargs: Any) -> SystemResult:
    return run_system("billing", where=Paths(home), source_kwargs=source_kwargs)


def _warehouse(home: Path, table: str) -> dict[str, tuple[Any, ...]]:
    columns = ", ".join(FIELDS[table])
    rows = fetch(home, f"select id, {columns} from raw_billing.{table}")
    return {row[0]: row[1:] for row in rows}


def _world(world: World, table: str) -> dict[str, tuple[Any, ...]]:
    collection = world.billing.objects(table)
    assert collection is not None
    return {r["id"]: tuple(r.get(f) for f in FIELDS[table]) for r in collection}


def _assert_matches_world(home: Path, world: World) -> None:
    for table in TABLES:
        assert _warehouse(home, table) == _world(world, table), table
    lines = sorted(line["id"] for invoice in world.billing.invoices for line in invoice["lines"]["data"])
    assert sorted(r[0] for r in fetch(home, "select id from raw_billing.invoices__lines__data")) == lines
    for table in TABLES:
        dupes = fetch(home, f"select id from raw_billing.{table} group by id having count(*) > 1")
        assert dupes == [], table


def _post(sandbox: Sandbox, path: str, form: dict[str, str] | None = None) -> dict[str, Any]:
    response = httpx.post(
        sandbox.base_urls["stripe"] + path,
        data=form or {},
        headers={"Authorization": f"Bearer {DEFAULT_TOKENS['stripe']}"},
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


# -- pure functions --------------------------------------------------------------------------


def _event(event_id: str, created: int, obj: dict[str, Any], kind: str = "x.updated") -> dict[str, Any]:
    return {"id": event_id, "created": created, "type": kind, "data": {"object": obj}}


def test_latest_event_per_object_wins():
    events = [
        _event("evt_3", 30, {"id": "cus_1", "object": "customer", "email": "new"}),
        _event("evt_2", 20, {"id": "cus_2", "object": "customer"}),
        _event("evt_1", 10, {"id": "cus_1", "object": "customer", "email": "old"}),
        _event("evt_0", 5, {"id": "in_1", "object": "invoice"}),
        _event("evt_x", 4, {"object": "customer"}),  # no id: kept, for its contract to quarantine
    ]
    latest = helpers.latest_per_object(events, "customer")
    assert [e["id"] for e in latest] == ["evt_3", "evt_2", "evt_x"]


def test_cursor_carries_the_ids_seen_at_its_second():
    cursor = EventsCursor(created=100, event_id="evt_a", seen=["evt_a"])
    assert helpers.next_cursor(cursor, []) == cursor
    same_second = helpers.next_cursor(cursor, [_event("evt_b", 100, {})])
    assert same_second == EventsCursor(created=100, event_id="evt_b", seen=["evt_a", "evt_b"])
    later = helpers.next_cursor(cursor, [_event("evt_d", 105, {}), _event("evt_c", 101, {})])
    assert later == EventsCursor(created=105, event_id="evt_d", seen=["evt_d"])


def test_event_types_fit_stripes_limit():
    assert all(0 < len(r.event_types) <= 20 for r in RESOURCES)
    assert [r.name for r in RESOURCES] == list(RAW_TABLES["billing"])


def test_nested_amounts_must_be_integers():
    invoice = next(r for r in RESOURCES if r.name == "invoices")
    good = {"id": "in_1", "lines": {"data": [{"amount": 5}]}}
    bad = {"id": "in_1", "lines": {"data": [{"amount": 5}, {"amount": "5.00"}]}}
    assert helpers.nested_violation(good, invoice) is None
    assert helpers.nested_violation(bad, invoice) == "lines.data[1].amount is str, expected int"


def test_a_lease_shares_one_client_until_its_last_user_is_done():
    made: list[Any] = []

    def factory() -> Any:
        client = ApiClient("billing", "http://127.0.0.1:9", "sk_test_x")
        made.append(client)
        return client

    lease = ClientLease(factory)
    with lease.open() as first, lease.open() as second:
        assert first is second
        first.stats.retries = 2
    with lease.open() as third:
        assert third is not first  # the first closed with its last user
    assert len(made) == 2 and lease.retries() == 2


class _Client:
    """Answers GETs from a dict; records what was asked."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers, self.asked = answers, []

    def get(self, path: str, params: Any = None) -> Any:
        self.asked.append(path)
        return self.answers[path]


def test_an_event_in_another_api_version_is_fetched_again():
    customers = next(r for r in RESOURCES if r.name == "customers")
    snapshot = {"id": "cus_1", "object": "customer", "email": "old-shape"}
    current = {"id": "cus_1", "object": "customer", "email": "pinned-shape"}
    client = _Client({"/v1/customers/cus_1": current})
    same = {
        "id": "evt_1",
        "api_version": "2024-06-20",
        "created": 1_700_000_000,
        "type": "customer.updated",
        "data": {"object": snapshot},
    }
    other = {**same, "api_version": "2025-03-31.basil"}
    deleted = {**same, "type": "customer.deleted"}
    version = {"_version_at": 1_700_000_000}  # the event's time versions the object
    assert helpers.object_from_event(client, same, customers, "2024-06-20") == {**snapshot, **version}
    assert client.asked == []
    assert helpers.object_from_event(client, other, customers, "2024-06-20") == {**current, **version}
    assert helpers.object_from_event(client, deleted, customers, "2024-06-20") == {
        **snapshot,
        **version,
        "deleted": True,
    }
    assert client.asked == ["/v1/customers/cus_1"]


# -- against the sandbox ---------------------------------------------------------------------


def _draft_invoice_with_lines(sandbox: Sandbox, world: World, lines: int) -> str:
    """A draft invoice with more lines than Stripe embeds (10), made through the API."""
    customer = next(iter(world.billing.customers))["id"]
    invoice = _post(sandbox, "/v1/invoices", {"customer": customer})["id"]
    for n in range(lines):
        form = {"customer": customer, "invoice": invoice, "amount": str(100 + n), "currency": "usd"}
        _post(sandbox, "/v1/invoiceitems", form)
    return str(invoice)


def test_full_load_equals_the_world(sandbox: Sandbox, sandbox_world: World, trueup_home: Path, source_env):
    long_invoice = _draft_invoice_with_lines(sandbox, sandbox_world, 12)
    result = _run(trueup_home)
    assert result.quarantined == 0
    _assert_matches_world(trueup_home, sandbox_world)
    lines = fetch(
        trueup_home,
        "select count(*) from raw_billing.invoices__lines__data l join raw_billing.invoices i "
        f"on l._dlt_parent_id = i._dlt_id where i.id = '{long_invoice}'",
    )
    assert lines == [(12,)]
    for spec in RESOURCES:  # declared columns exist even when every record has them null
        columns = {r[0] for r in fetch(trueup_home, f"describe raw_billing.{spec.name}")}
        assert set(spec.columns) <= columns, spec.name
    canceled = [s for s in sandbox_world.billing.subscriptions if s["status"] == "canceled"]
    assert canceled, "the world should hold canceled subscriptions (listed only with status=all)"


def test_events_bring_each_change_once(sandbox: Sandbox, sandbox_world: World, trueup_home: Path, source_env):
    _run(trueup_home)
    assert loaded_counts(_run(trueup_home)) == {}, "a run with no changes loads nothing"
    stored = make_pipeline("billing", Paths(trueup_home)).default_schema
    # ...and leaves every table merged in the schema it keeps, though none yielded a record
    assert {spec.name: stored.get_table(spec.name).get("write_disposition") for spec in RESOURCES} == {
        spec.name: "merge" for spec in RESOURCES
    }

    customer = next(iter(sandbox_world.billing.customers))
    _post(sandbox, f"/v1/customers/{customer['id']}", {"email": "changed@example.com"})
    _post(sandbox, f"/v1/customers/{customer['id']}", {"name": "Changed Twice"})
    invoice = next(i for i in sandbox_world.billing.invoices if i["status"] == "open")
    _post(sandbox, f"/v1/invoices/{invoice['id']}/pay")
    created = _post(sandbox, "/v1/customers", {"email": "brand.new@example.com", "name": "Brand New"})
    draft = _draft_invoice_with_lines(sandbox, sandbox_world, 12)  # 13 events for one invoice

    loaded = loaded_counts(_run(trueup_home))
    assert loaded["customers"] == 2  # the changed one once (two events) and the new one
    assert loaded["invoices"] == 2  # the paid one and the new draft
    _assert_matches_world(trueup_home, sandbox_world)

    with sandbox_world.lock:
        advance(sandbox_world, 3)  # the business moves on: payments, new customers, renewals
    _run(trueup_home)
    _assert_matches_world(trueup_home, sandbox_world)
    assert _warehouse(trueup_home, "customers")[created["id"]][0] == "brand.new@example.com"
    assert _warehouse(trueup_home, "invoices")[draft][1] == "draft"
    assert loaded_counts(_run(trueup_home)) == {}


def test_a_cursor_older_than_the_events_window_resyncs(
    sandbox: Sandbox, sandbox_world: World, trueup_home: Path, source_env
):
    _run(trueup_home)
    # A change Stripe keeps no event for, then 31 days pass: only a full listing can see it.
    customer = next(iter(sandbox_world.billing.customers))
    customer["name"] = "Seen Only By A Full Listing"
    sandbox_world.billing.customers.touch()
    with sandbox_world.lock:
        advance(sandbox_world, 31)

    loaded = loaded_counts(_run(trueup_home))
    assert loaded["customers"] == len(sandbox_world.billing.customers)
    _assert_matches_world(trueup_home, sandbox_world)
    assert loaded_counts(_run(trueup_home)) == {}


@pytest.fixture
def reference(sandbox: Sandbox, sandbox_world: World, tmp_path: Path, source_env) -> Path:
    """A clean full load to compare faulty runs with."""
    home = tmp_path / "reference"
    _run(home)
    return home


def _snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: sorted(fetch(home, f"select id, {', '.join(FIELDS[table])} from raw_billing.{table}"))
        for table in TABLES
    }


def test_rate_limits_and_fault_storms_give_identical_results(
    sandbox: Sandbox, reference: Path, trueup_home: Path, source_env
):
    sandbox.set_limits(RateLimitConfig(stripe_per_s=10))
    each_kind = [  # at least one of each, whatever the timing
        Scripted(system="billing", path=path, kind=kind, status=status)
        for path, kind, status in (
            ("^/v1/customers$", "error", 429),
            ("^/v1/invoices$", "error", 500),
            ("^/v1/charges$", "drop", 0),
            ("^/v1/subscriptions$", "malformed", 0),
        )
    ]
    plan = FaultPlan(seed=7, error_rate=0.2, drop_rate=0.05, malformed_rate=0.05, scripted=each_kind)
    sandbox.faults.set(plan)
    result = _run(trueup_home, page_size=20)  # more pages, more requests to throttle and break
    injected = dict(sandbox.faults.injected)
    assert injected.get("error") and injected.get("drop") and injected.get("malformed")
    assert sandbox.stats["stripe:429"] > 0
    assert result.quarantined == 0
    assert _snapshot(trueup_home) == _snapshot(reference)


def test_drifted_invoices_are_quarantined_and_the_rest_loads(
    sandbox: Sandbox, sandbox_world: World, trueup_home: Path, source_env
):
    sandbox.faults.set(
        FaultPlan(drift={"billing/invoices": Drift(kind="changed_type", field="amount_due", fraction=0.3)})
    )
    result = _run(trueup_home)
    quarantined = fetch(
        trueup_home, "select record_key, reason, resource from raw_billing._quarantine order by record_key"
    )
    assert quarantined and result.quarantined == len(quarantined)
    assert {(r[1], r[2]) for r in quarantined} == {("amount_due is str, expected int", "invoices")}
    columns = {r[0] for r in fetch(trueup_home, "describe raw_billing._quarantine")}
    assert columns - {"_dlt_load_id", "_dlt_id"} == set(QUARANTINE_COLUMNS)  # no invoice columns
    loaded = set(_warehouse(trueup_home, "invoices"))
    assert loaded.isdisjoint(r[0] for r in quarantined)
    assert loaded | {r[0] for r in quarantined} == {i["id"] for i in sandbox_world.billing.invoices}
    assert _warehouse(trueup_home, "customers") == _world(sandbox_world, "customers")


def test_a_rejected_key_never_reaches_the_error_or_the_log(
    sandbox: Sandbox, trueup_home: Path, source_env, monkeypatch: pytest.MonkeyPatch, caplog
):
    secret = "sk_test_not_the_sandbox_key_0123456789"
    monkeypatch.setenv("SOURCES__BILLING__ACCESS_TOKEN", secret)
    with pytest.raises(Exception) as failed:
        _run(trueup_home)
    assert "401" in str(failed.value)
    assert secret not in str(failed.value) and secret not in caplog.text
