"""The Stripe sandbox app over a real loopback server: paging, filters, writes, idempotency, errors."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import server
from sandbox.config import DEFAULT_TOKENS, RateLimitConfig
from sandbox.config import STRIPE_API_VERSION as API_VERSION
from sandbox.faults import Drift, FaultPlan
from sandbox.server import Sandbox
from sandbox.store import Record, World
from sandbox.world import generate
from tests.sandbox.stripe_fixtures import DAY, build_world

KEY = DEFAULT_TOKENS["stripe"]
RESOURCES = ("customers", "invoices", "charges", "payment_intents", "subscriptions", "events")
# Fields the pinned 2024-06-20 version serves that the current API version moved or dropped.
PINNED_ONLY = {
    "invoice": {"charge", "paid", "paid_out_of_band", "payment_intent"},
    "charge": {"invoice"},
    "payment_intent": {"invoice"},
    "subscription": {"current_period_start", "current_period_end"},
    "customer": set(),
    "event": set(),
}


def _start(world: World, faults: FaultPlan | None = None) -> Sandbox:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "APP_CLASSES", {"stripe": ("sandbox.apps.stripe", "StripeApp")})
        return Sandbox(world, faults=faults).start()


def _client(sandbox: Sandbox, key: str | None = KEY) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=sandbox.base_urls["stripe"], headers=headers, timeout=10)


@pytest.fixture(scope="module")
def shared() -> Iterator[Sandbox]:
    """A read-mostly sandbox; tests that write use `fresh`."""
    sandbox = _start(build_world())
    yield sandbox
    sandbox.stop()


@pytest.fixture
def api(shared: Sandbox) -> Iterator[httpx.Client]:
    with _client(shared) as client:
        yield client


@pytest.fixture
def fresh() -> Iterator[tuple[Sandbox, httpx.Client]]:
    sandbox = _start(build_world())
    with _client(sandbox) as client:
        yield sandbox, client
    sandbox.stop()


def newest_first(records: Any) -> list[str]:
    return [r["id"] for r in sorted(records, key=lambda r: (r["created"], r["id"]), reverse=True)]


def read_all(client: httpx.Client, path: str, limit: int, **params: Any) -> list[Record]:
    """Follow `starting_after` while `has_more`, as dlt's Stripe source does."""
    out: list[Record] = []
    cursor: str | None = None
    while True:
        query = {"limit": limit, **params}
        if cursor:
            query["starting_after"] = cursor
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["object"] == "list" and page["url"] == path
        assert len(page["data"]) <= limit
        out.extend(page["data"])
        if not page["has_more"]:
            return out
        cursor = page["data"][-1]["id"]


# --- reads --------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [7, 50, 100])
def test_paging_returns_each_customer_once_newest_first(
    api: httpx.Client, shared: Sandbox, limit: int
) -> None:
    seen = [r["id"] for r in read_all(api, "/v1/customers", limit)]
    assert seen == newest_first(shared.world.billing.customers)
    assert len(seen) == len(set(seen)) == 300


@pytest.mark.parametrize("resource", ["invoices", "charges", "payment_intents"])
def test_paging_every_resource(api: httpx.Client, shared: Sandbox, resource: str) -> None:
    seen = [r["id"] for r in read_all(api, f"/v1/{resource}", 33)]
    assert seen == newest_first(shared.world.billing.objects(resource))


def test_ending_before_pages_back_towards_newer(api: httpx.Client, shared: Sandbox) -> None:
    order = newest_first(shared.world.billing.customers)
    page = api.get("/v1/customers", params={"limit": 5, "ending_before": order[12]}).json()
    assert [r["id"] for r in page["data"]] == order[7:12]
    assert page["has_more"] is True
    first = api.get("/v1/customers", params={"limit": 10, "ending_before": order[3]}).json()
    assert [r["id"] for r in first["data"]] == order[:3] and first["has_more"] is False


def test_default_limit_and_last_page(api: httpx.Client, shared: Sandbox) -> None:
    order = newest_first(shared.world.billing.customers)
    assert len(api.get("/v1/customers").json()["data"]) == 10
    tail = api.get("/v1/customers", params={"starting_after": order[-1]}).json()
    assert tail["data"] == [] and tail["has_more"] is False
    counted = api.get("/v1/invoices", params={"include[]": "total_count", "status": "void"}).json()
    assert counted["total_count"] == sum(r["status"] == "void" for r in shared.world.billing.invoices)


def test_created_filters_return_exactly_the_matching_objects(api: httpx.Client, shared: Sandbox) -> None:
    customers = list(shared.world.billing.customers)
    threshold = sorted(r["created"] for r in customers)[-40]
    newer = [r["id"] for r in read_all(api, "/v1/customers", 100, **{"created[gte]": threshold})]
    assert newer == newest_first(r for r in customers if r["created"] >= threshold)
    older = [r["id"] for r in read_all(api, "/v1/customers", 100, **{"created[lt]": threshold})]
    assert set(older) | set(newer) == {r["id"] for r in customers} and not set(older) & set(newer)
    window = {"created[gt]": threshold - 30_000, "created[lte]": threshold}
    between = [r["id"] for r in read_all(api, "/v1/customers", 100, **window)]
    assert between == newest_first(r for r in customers if threshold - 30_000 < r["created"] <= threshold)
    exact = api.get("/v1/customers", params={"created": threshold}).json()["data"]
    assert [r["created"] for r in exact] == [threshold]


def test_resource_filters(api: httpx.Client, shared: Sandbox) -> None:
    billing = shared.world.billing
    customer = billing.customers.get(newest_first(billing.customers)[3])
    assert customer is not None
    found = api.get("/v1/customers", params={"email": customer["email"]}).json()["data"]
    assert [r["id"] for r in found] == [customer["id"]]
    theirs = read_all(api, "/v1/invoices", 100, customer=customer["id"])
    assert [r["id"] for r in theirs] == newest_first(
        r for r in billing.invoices if r["customer"] == customer["id"]
    )
    paid = read_all(api, "/v1/invoices", 100, status="paid")
    assert [r["id"] for r in paid] == newest_first(r for r in billing.invoices if r["status"] == "paid")
    charges = read_all(api, "/v1/charges", 100, customer=theirs[0]["customer"])
    assert {r["customer"] for r in charges} <= {customer["id"]}
    bad = api.get("/v1/invoices", params={"status": "settled"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"


def test_subscriptions_hide_canceled_unless_status_all(api: httpx.Client, shared: Sandbox) -> None:
    subscriptions = list(shared.world.billing.subscriptions)
    default = read_all(api, "/v1/subscriptions", 100)
    assert [r["id"] for r in default] == newest_first(r for r in subscriptions if r["status"] != "canceled")
    everything = read_all(api, "/v1/subscriptions", 100, status="all")
    assert [r["id"] for r in everything] == newest_first(subscriptions)
    canceled = read_all(api, "/v1/subscriptions", 100, status="canceled")
    assert canceled and {r["status"] for r in canceled} == {"canceled"}
    ended = read_all(api, "/v1/subscriptions", 100, status="ended")
    assert {r["status"] for r in ended} == {"canceled", "incomplete_expired"}


def test_events_only_within_30_days_and_type_filters(api: httpx.Client, shared: Sandbox) -> None:
    events = list(shared.world.billing.events)
    cutoff = int(shared.world.now.timestamp()) - 30 * DAY
    recent = read_all(api, "/v1/events", 100)
    assert [r["id"] for r in recent] == newest_first(r for r in events if r["created"] > cutoff)
    assert len(recent) == 90
    old = next(r for r in events if r["created"] < cutoff)
    assert api.get(f"/v1/events/{old['id']}").status_code == 404
    invoices = read_all(api, "/v1/events", 100, type="invoice.*")
    assert invoices and {r["type"] for r in invoices} == {"invoice.paid"}
    both = read_all(api, "/v1/events", 100, **{"types[]": ["customer.created", "charge.succeeded"]})
    assert {r["type"] for r in both} == {"customer.created", "charge.succeeded"} and len(both) == 45
    indexed = read_all(api, "/v1/events", 100, **{"types[0]": "customer.updated"})
    assert {r["type"] for r in indexed} == {"customer.updated"}
    clash = api.get("/v1/events", params={"type": "invoice.*", "types[]": "invoice.paid"})
    assert clash.status_code == 400
    many = api.get("/v1/events", params={"types[]": [f"t{i}" for i in range(21)]})
    assert many.status_code == 400 and many.json()["error"]["param"] == "types"


def test_an_update_right_after_a_crowded_history_is_the_newest_event() -> None:
    """The generated history of a 20,000-contact world ends a few seconds past its clock
    (each record of a collection gets a second of its own). A change made through the API at
    once must still come out newest, or a connector's events cursor skips it."""
    world = generate(contacts=20_000)
    crowded = max(e["created"] for e in world.billing.events)
    assert crowded > int(world.now.timestamp())  # the case this guards
    sandbox = _start(world)
    try:
        with _client(sandbox) as client:
            customer = next(iter(world.billing.customers))["id"]
            assert client.post(f"/v1/customers/{customer}", data={"description": "now"}).status_code == 200
            newest = client.get("/v1/events", params={"limit": 1}).json()["data"][0]
    finally:
        sandbox.stop()
    assert newest["type"] == "customer.updated" and newest["created"] > crowded
    assert newest["data"]["object"]["id"] == customer
    assert newest["data"]["object"]["description"] == "now"


def test_list_parameter_errors(api: httpx.Client, shared: Sandbox) -> None:
    order = newest_first(shared.world.billing.customers)
    for limit in (0, 101):
        error = api.get("/v1/customers", params={"limit": limit}).json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == "limit"
    both = api.get("/v1/customers", params={"starting_after": order[0], "ending_before": order[5]})
    assert both.status_code == 400
    missing = api.get("/v1/customers", params={"starting_after": "cus_doesnotexist00"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "resource_missing"
    unknown = api.get("/v1/customers", params={"updated_since": 1})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "updated_since"
    assert api.get("/v1/nothing").status_code == 404


def test_retrieve_expand_and_invoice_lines(api: httpx.Client, shared: Sandbox) -> None:
    invoices = shared.world.billing.invoices
    long = next(r for r in invoices if len(r["lines"]["data"]) == 12)
    served = api.get(f"/v1/invoices/{long['id']}").json()
    assert len(served["lines"]["data"]) == 10 and served["lines"]["has_more"] is True
    lines = []
    cursor = None
    while True:
        params = {"limit": 5, **({"starting_after": cursor} if cursor else {})}
        page = api.get(f"/v1/invoices/{long['id']}/lines", params=params).json()
        lines.extend(page["data"])
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert [line["id"] for line in lines] == [line["id"] for line in long["lines"]["data"]]
    expanded = api.get(f"/v1/invoices/{long['id']}", params={"expand[]": "customer"}).json()
    assert expanded["customer"]["id"] == long["customer"]
    listed = api.get("/v1/invoices", params={"limit": 2, "expand[]": "data.customer"}).json()
    assert all(isinstance(r["customer"], dict) for r in listed["data"])
    missing = api.get("/v1/customers/cus_nope")
    assert missing.status_code == 404
    assert missing.json()["error"] | {"request_log_url": None} == {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such customer: 'cus_nope'",
        "param": "id",
        "request_log_url": None,
        "type": "invalid_request_error",
    }


def test_headers_version_and_request_id(api: httpx.Client) -> None:
    response = api.get("/v1/customers", headers={"Stripe-Version": "2023-10-16"})
    assert response.headers["Stripe-Version"] == "2023-10-16"  # the version asked for
    assert api.get("/v1/customers").headers["Stripe-Version"] == API_VERSION  # else the account's
    assert api.get("/v1/customers", headers={"Stripe-Version": "latest?"}).status_code == 400
    assert response.headers["Request-Id"].startswith("req_")
    assert not any(name.lower().startswith("x-ratelimit") for name in response.headers)


# --- writes -------------------------------------------------------------------------------


def test_form_update_changes_reads_and_appends_customer_updated(fresh: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, api = fresh
    customer_id = newest_first(sandbox.world.billing.customers)[20]
    before = api.get(f"/v1/customers/{customer_id}").json()
    since = int(sandbox.world.clock().timestamp())
    form = {"email": "moved@example.com", "metadata[hubspot_contact_id]": "77", "metadata[source]": "crm"}
    updated = api.post(f"/v1/customers/{customer_id}", data=form)
    assert updated.status_code == 200, updated.text
    after = api.get(f"/v1/customers/{customer_id}").json()
    assert after["email"] == "moved@example.com" and after["created"] == before["created"]
    assert after["metadata"] == {"hubspot_contact_id": "77", "source": "crm"}
    found = api.get("/v1/customers", params={"email": "moved@example.com"}).json()["data"]
    assert [r["id"] for r in found] == [customer_id]
    assert api.get("/v1/customers", params={"email": before["email"]}).json()["data"] == []
    events = api.get("/v1/events", params={"created[gte]": since, "type": "customer.updated"}).json()["data"]
    assert len(events) == 1
    event = events[0]
    assert event["data"]["object"]["email"] == "moved@example.com"
    assert event["data"]["previous_attributes"] == {
        "email": before["email"],
        "metadata": {"hubspot_contact_id": before["metadata"].get("hubspot_contact_id"), "source": None},
    }
    assert event["created"] >= since and event["api_version"] == API_VERSION
    assert event["request"]["id"] == updated.headers["Request-Id"]
    assert set(event) == set(next(iter(sandbox.world.billing.events)))


def test_created_customer_is_newest_and_keeps_the_shape(fresh: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, api = fresh
    created = api.post("/v1/customers", data={"email": "new@example.com", "name": "New Person"}).json()
    assert created["id"].startswith("cus_") and created["email"] == "new@example.com"
    assert api.get("/v1/customers", params={"limit": 1}).json()["data"][0]["id"] == created["id"]
    assert set(created) == set(next(iter(sandbox.world.billing.customers)))
    types = [e["type"] for e in api.get("/v1/events", params={"limit": 3}).json()["data"]]
    assert types[0] == "customer.created"
    cleared = api.post(f"/v1/customers/{created['id']}", data={"name": "", "metadata": ""}).json()
    assert cleared["name"] is None and cleared["metadata"] == {}


def test_idempotent_replay_and_mismatch(fresh: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, api = fresh
    count = len(sandbox.world.billing.customers)
    headers = {"Idempotency-Key": "create-once-1"}
    first = api.post("/v1/customers", data={"email": "once@example.com"}, headers=headers)
    again = api.post("/v1/customers", data={"email": "once@example.com"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"] == "create-once-1"
    assert again.headers["Request-Id"] != first.headers["Request-Id"]
    assert len(sandbox.world.billing.customers) == count + 1
    other = api.post("/v1/customers", data={"email": "twice@example.com"}, headers=headers)
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert "create-once-1" in other.json()["error"]["message"]
    too_long = api.post(
        "/v1/customers", data={"email": "x@example.com"}, headers={"Idempotency-Key": "k" * 256}
    )
    assert too_long.status_code == 400
    assert len(sandbox.world.billing.customers) == count + 1


def test_idempotency_saves_failed_transitions_but_not_validation_errors(
    fresh: tuple[Sandbox, httpx.Client],
) -> None:
    sandbox, api = fresh
    paid = next(r for r in sandbox.world.billing.invoices if r["status"] == "paid")
    key = {"Idempotency-Key": "void-paid"}
    first = api.post(f"/v1/invoices/{paid['id']}/void", headers=key)
    replay = api.post(f"/v1/invoices/{paid['id']}/void", headers=key)
    assert first.status_code == replay.status_code == 400 and replay.content == first.content
    assert replay.headers.get("Idempotent-Replayed") == "true"
    invalid = {"Idempotency-Key": "bad-params"}
    assert api.post("/v1/customers", data={"colour": "red"}, headers=invalid).status_code == 400
    retried = api.post("/v1/customers", data={"email": "ok@example.com"}, headers=invalid)
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers


def test_invoice_lifecycle(fresh: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, api = fresh
    customer_id = newest_first(sandbox.world.billing.customers)[200]
    since = int(sandbox.world.clock().timestamp())
    draft = api.post(
        "/v1/invoices", data={"customer": customer_id, "metadata[hubspot_deal_id]": "9001"}
    ).json()
    assert draft["status"] == "draft" and draft["metadata"] == {"hubspot_deal_id": "9001"}
    assert set(draft) == set(next(iter(sandbox.world.billing.invoices)))
    item = api.post(
        "/v1/invoiceitems", data={"customer": customer_id, "invoice": draft["id"], "amount": 150_000}
    )
    assert item.status_code == 200, item.text
    assert api.post(f"/v1/invoices/{draft['id']}/pay").status_code == 400
    opened = api.post(f"/v1/invoices/{draft['id']}/finalize").json()
    assert opened["status"] == "open" and opened["amount_due"] == 150_000 and opened["number"]
    assert opened["status_transitions"]["finalized_at"] >= since and opened["payment_intent"]
    again = api.post(f"/v1/invoices/{draft['id']}/finalize")
    assert again.status_code == 400 and again.json()["error"]["type"] == "invalid_request_error"
    paid = api.post(f"/v1/invoices/{draft['id']}/pay").json()
    assert paid["status"] == "paid" and paid["paid"] is True and paid["amount_remaining"] == 0
    charge = api.get(f"/v1/charges/{paid['charge']}").json()
    assert charge["invoice"] == draft["id"] and charge["amount"] == 150_000
    intent = api.get(f"/v1/payment_intents/{paid['payment_intent']}").json()
    assert intent["status"] == "succeeded" and intent["latest_charge"] == charge["id"]
    assert set(charge) == set(next(iter(sandbox.world.billing.charges)))
    assert set(intent) == set(next(iter(sandbox.world.billing.payment_intents)))
    void = api.post(f"/v1/invoices/{draft['id']}/void")
    assert void.status_code == 400 and api.get(f"/v1/invoices/{draft['id']}").json()["status"] == "paid"
    events = read_all(api, "/v1/events", 100, **{"created[gte]": since, "type": "invoice.*"})
    types = {e["type"] for e in events if e["data"]["object"]["id"] == draft["id"]}
    assert {"invoice.created", "invoice.finalized", "invoice.paid", "invoice.updated"} <= types
    status_change = next(
        e for e in events if e["type"] == "invoice.updated" and e["data"]["object"]["status"] == "paid"
    )
    assert status_change["data"]["previous_attributes"]["status"] == "open"


def test_void_and_mark_uncollectible(fresh: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, api = fresh
    opened = [r for r in sandbox.world.billing.invoices if r["status"] == "open"]
    voided = api.post(f"/v1/invoices/{opened[0]['id']}/void").json()
    assert voided["status"] == "void" and voided["status_transitions"]["voided_at"]
    lost = api.post(f"/v1/invoices/{opened[1]['id']}/mark_uncollectible").json()
    assert lost["status"] == "uncollectible"
    recovered = api.post(f"/v1/invoices/{opened[1]['id']}/pay", data={"paid_out_of_band": "true"}).json()
    assert recovered["status"] == "paid" and recovered["paid_out_of_band"] is True
    drafts = [r for r in sandbox.world.billing.invoices if r["status"] == "draft"]
    assert api.post(f"/v1/invoices/{drafts[0]['id']}/mark_uncollectible").status_code == 400
    updated = api.post(f"/v1/invoices/{drafts[0]['id']}", data={"description": "Q4 retainer"}).json()
    assert updated["description"] == "Q4 retainer"


def test_json_body_is_rejected(fresh: tuple[Sandbox, httpx.Client]) -> None:
    sandbox, api = fresh
    count = len(sandbox.world.billing.customers)
    response = api.post("/v1/customers", json={"email": "json@example.com"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Content-Type" in response.json()["error"]["message"]
    assert len(sandbox.world.billing.customers) == count


# --- auth, limits, drift ------------------------------------------------------------------


def test_unauthenticated_requests_get_401_without_echoing_the_key(shared: Sandbox) -> None:
    with _client(shared, key=None) as anonymous:
        missing = anonymous.get("/v1/customers")
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "invalid_request_error"
        assert missing.json()["error"]["message"].startswith("You did not provide an API key.")
        assert missing.headers["Request-Id"].startswith("req_")
        wrong_key = "sk_test_thisIsNotTheRightKeyAtAll9abcd"
        wrong = anonymous.get("/v1/customers", headers={"Authorization": f"Bearer {wrong_key}"})
        assert wrong.status_code == 401
        message = wrong.json()["error"]["message"]
        assert message.startswith("Invalid API Key provided: sk_test_") and message.endswith("abcd")
        assert wrong_key not in wrong.text and "thisIsNotTheRightKey" not in wrong.text
        short = anonymous.get("/v1/customers", headers={"Authorization": "Bearer nope"})
        assert short.status_code == 401 and "nope" not in short.text
        basic = base64.b64encode(f"{KEY}:".encode()).decode()
        ok = anonymous.get("/v1/customers", headers={"Authorization": f"Basic {basic}"})
        assert ok.status_code == 200


def test_rate_limit_429_shape(shared: Sandbox) -> None:
    shared.set_limits(RateLimitConfig(stripe_per_s=3))
    try:
        with _client(shared) as api:
            responses = [api.get("/v1/customers", params={"limit": 1}) for _ in range(8)]
    finally:
        shared.set_limits(RateLimitConfig())
    limited = [r for r in responses if r.status_code == 429]
    assert limited and len(limited) >= 4
    assert limited[0].json()["error"] | {"request_log_url": None, "doc_url": None} == {
        "code": "rate_limit",
        "doc_url": None,
        "message": limited[0].json()["error"]["message"],
        "request_log_url": None,
        "type": "invalid_request_error",
    }
    assert limited[0].json()["error"]["message"].startswith("Too many requests hit the API too quickly.")
    assert limited[0].headers["Stripe-Should-Retry"] == "true"
    assert not any("ratelimit" in name.lower() for name in limited[0].headers)


def test_schema_drift_applies_to_lists_gets_and_event_objects(shared: Sandbox, api: httpx.Client) -> None:
    plan = FaultPlan(
        drift={
            "billing/customers": Drift(kind="new_field", field="loyalty_tier"),
            "billing/invoices": Drift(kind="changed_type", field="amount_due"),
        }
    )
    shared.faults.set(plan)
    try:
        customers = api.get("/v1/customers", params={"limit": 5}).json()["data"]
        single = api.get(f"/v1/customers/{customers[0]['id']}").json()
        invoices = api.get("/v1/invoices", params={"limit": 5}).json()["data"]
        events = api.get("/v1/events", params={"type": "customer.created", "limit": 3}).json()["data"]
    finally:
        shared.faults.set(FaultPlan())
    assert all(r["loyalty_tier"] == f"drifted-{r['id']}" for r in customers)
    assert single["loyalty_tier"] == f"drifted-{single['id']}"
    assert all(isinstance(r["amount_due"], str) and "drifted" in r["amount_due"] for r in invoices)
    assert all("loyalty_tier" in e["data"]["object"] for e in events)
    assert "loyalty_tier" not in api.get(f"/v1/customers/{single['id']}").json()
    stored = shared.world.billing.customers.get(single["id"])
    assert stored is not None and "loyalty_tier" not in stored


def test_injected_errors_use_stripe_shape(shared: Sandbox) -> None:
    app = shared.apps["stripe"]
    response = app.error(503, "boom")
    assert response.status == 503 and json.loads(response.body) == {
        "error": {"type": "api_error", "message": "boom"}
    }
    assert response.headers["Request-Id"].startswith("req_")


# --- shapes against Stripe's own fixtures -------------------------------------------------


def _stripe_fixtures() -> dict[str, Any]:
    override = os.environ.get("TRUEUP_SHARED_DIR")
    shared_dir = Path(override) if override else Path(__file__).resolve().parents[3] / "shared"
    for candidate in (shared_dir / "reference", shared_dir):
        path = candidate / "stripe_fixtures_subset.json"
        if path.exists():
            resources: dict[str, Any] = json.loads(path.read_text())["resources"]
            return resources
    pytest.skip("stripe_fixtures_subset.json is not available")


def _kind(value: Any) -> str:
    return (
        "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
    )


def _assert_matches(
    ours: dict[str, Any], theirs: dict[str, Any], allowed_extra: set[str], where: str
) -> None:
    extra = set(ours) - set(theirs) - allowed_extra
    assert not extra, f"{where}: fields Stripe does not have: {sorted(extra)}"
    for name in set(ours) & set(theirs):
        a, b = ours[name], theirs[name]
        if a is not None and b is not None:
            assert _kind(a) == _kind(b), f"{where}.{name}: {_kind(a)} here, {_kind(b)} in Stripe"


@pytest.mark.parametrize("resource", RESOURCES)
def test_served_objects_match_stripe_fixture_shapes(api: httpx.Client, resource: str) -> None:
    fixtures = _stripe_fixtures()
    params: dict[str, str | int] = {"limit": 100}
    if resource == "subscriptions":
        params["status"] = "all"
    served = api.get(f"/v1/{resource}", params=params).json()["data"]
    assert served
    object_name = served[0]["object"]
    for record in served[:20]:
        _assert_matches(record, fixtures[object_name], PINNED_ONLY[object_name], object_name)
    if object_name == "invoice":
        reference_lines = fixtures["invoice"]["lines"]
        line = served[0]["lines"]["data"][0]
        _assert_matches(line, reference_lines["data"][0], set(), "invoice.lines.data[]")
        _assert_matches(served[0]["lines"], reference_lines, {"total_count"}, "invoice.lines")
        _assert_matches(
            served[0]["status_transitions"],
            fixtures["invoice"]["status_transitions"],
            set(),
            "status_transitions",
        )
    if object_name == "subscription":
        item = served[0]["items"]["data"][0]
        reference_item = fixtures["subscription"]["items"]["data"][0]
        _assert_matches(item, reference_item, set(), "subscription_item")
        _assert_matches(item["price"], reference_item["price"], set(), "price")
    if object_name == "event":
        reference = fixtures["event"]
        _assert_matches(served[0]["request"], reference["request"], set(), "event.request")
        assert set(served[0]["data"]) - {"previous_attributes"} == set(reference["data"])
