"""Both Stripe API generations: the pinned version is checked configuration, events keep the
version they were created with, and billing staging reads either shape (and a mix of both) into
the same links between invoices, payment intents, charges and subscriptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingestion.billing import helpers
from ingestion.billing.settings import RESOURCES, check_version
from ingestion.pipeline import run_system
from ingestion.warehouse import Paths
from orchestration.dbt import run_dbt
from sandbox.accounts import CURRENT_STRIPE_VERSION, AccountSetup
from sandbox.store import World
from sandbox.world import advance
from tests.ingestion.helpers import fetch

INVOICES = next(r for r in RESOURCES if r.name == "invoices")
# billing staging, the seed it reads and the dbt tests that read only it (relationships, ...)
STAGING = [
    "--select",
    "path:models/staging/billing",
    "invoice_statuses",
    "--indirect-selection",
    "cautious",
]


class _Client:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers, self.asked = answers, []

    def get(self, path: str, params: Any = None) -> Any:
        self.asked.append(path)
        return self.answers[path]


@pytest.mark.parametrize(
    ("pinned", "event_version", "kept"),
    [
        ("2024-06-20", "2024-06-20", True),
        ("2024-06-20", "2024-09-30.acacia", True),  # the same generation for what staging reads
        ("2024-06-20", CURRENT_STRIPE_VERSION, False),  # would lose invoice.charge / payment_intent
        (CURRENT_STRIPE_VERSION, "2024-06-20", True),  # an event from before the account upgraded
        (CURRENT_STRIPE_VERSION, "2025-09-30.clover", True),
        (CURRENT_STRIPE_VERSION, "2023-10-16", False),  # older than staging reads
    ],
)
def test_an_event_keeps_its_version_unless_the_run_would_lose_by_it(pinned, event_version, kept):
    snapshot = {"id": "in_1", "object": "invoice", "status": "paid"}
    current = {"id": "in_1", "object": "invoice", "status": "paid", "charge": "ch_1"}
    client = _Client({"/v1/invoices/in_1": current})
    event = {
        "id": "evt_1",
        "created": 1_750_000_000,
        "api_version": event_version,
        "type": "invoice.paid",
        "data": {"object": snapshot},
    }
    versioned = {"_version_at": 1_750_000_000}  # the event's time orders the object's versions
    expected = {**(snapshot if kept else current), **versioned}
    assert helpers.object_from_event(client, event, INVOICES, pinned) == expected
    assert client.asked == ([] if kept else ["/v1/invoices/in_1"])


def test_the_version_is_checked():
    assert check_version(" 2025-03-31.basil ") == "2025-03-31.basil"
    with pytest.raises(ValueError, match="'latest' is not a Stripe API version"):
        check_version("latest")
    with pytest.raises(ValueError, match="older than the oldest version trueup reads"):
        check_version("2023-10-16")


def _links(world: World) -> dict[str, set[tuple[Any, ...]]]:
    """What the world says links what: invoice -> payment intent / subscription; charge and payment
    intent -> invoice; subscription -> current period end."""
    billing = world.billing
    return {
        "invoice_intent": {(i["id"], i["payment_intent"]) for i in billing.invoices},
        "invoice_subscription": {(i["id"], i["subscription"]) for i in billing.invoices},
        "invoice_paid": {(i["id"], i["status"] == "paid") for i in billing.invoices},
        "charge_invoice": {(c["id"], c["invoice"]) for c in billing.charges},
        "intent_invoice": {(p["id"], p["invoice"]) for p in billing.payment_intents},
        "subscription_period": {(s["id"], s["current_period_end"]) for s in billing.subscriptions},
    }


def _staged(paths: Paths) -> dict[str, set[tuple[Any, ...]]]:
    def rows(sql: str) -> set[tuple[Any, ...]]:
        return set(fetch(paths, sql))

    return {
        "invoice_intent": rows("select invoice_id, payment_intent_id from staging.stg_billing__invoices"),
        "invoice_subscription": rows("select invoice_id, subscription_id from staging.stg_billing__invoices"),
        "invoice_paid": rows("select invoice_id, is_paid from staging.stg_billing__invoices"),
        "charge_invoice": rows("select charge_id, invoice_id from staging.stg_billing__charges"),
        "intent_invoice": rows(
            "select payment_intent_id, invoice_id from staging.stg_billing__payment_intents"
        ),
        "subscription_period": rows(
            "select subscription_id, epoch(current_period_end_at)::bigint "
            "from staging.stg_billing__subscriptions"
        ),
    }


@pytest.mark.parametrize(
    "sandbox_world", [{"setup": AccountSetup(stripe_version=CURRENT_STRIPE_VERSION)}], indirect=True
)
def test_staging_links_the_same_records_in_either_generation(
    sandbox_world: World, trueup_home: Path, source_env, monkeypatch: pytest.MonkeyPatch
):
    """A business read pinned to 2024-06-20, which then moves its configuration to the current
    version (its account upgraded twelve days ago): the next run takes what changed from events
    in the current shapes and lists invoice payments for the first time, so raw holds both
    generations side by side, and staging finds the world's links through either."""
    paths = Paths(home=trueup_home)
    monkeypatch.setenv("SOURCES__BILLING__STRIPE_VERSION", "2024-06-20")
    run_system("billing", where=paths)
    with sandbox_world.lock:
        advance(sandbox_world, 2)
    monkeypatch.setenv("SOURCES__BILLING__STRIPE_VERSION", CURRENT_STRIPE_VERSION)
    run_system("billing", where=paths)
    # amount_overpaid: only the current generation has it; charge: only the old one
    sql = "select count(charge), count(amount_overpaid), count(*) from raw_billing.invoices"
    old, current, rows = fetch(paths, sql)[0]
    assert old > 0 and current > 0 and rows == len(sandbox_world.billing.invoices)
    payments = {r[0] for r in fetch(paths, "select id from raw_billing.invoice_payments")}
    assert payments == {"inpay_" + p["id"][3:] for p in sandbox_world.billing.payment_intents}
    run_dbt(["build", *STAGING], where=paths)
    assert _staged(paths) == _links(sandbox_world)
