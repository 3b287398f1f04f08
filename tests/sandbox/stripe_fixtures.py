"""A small hand-built billing world, stored in Stripe's 2024-06-20 shapes, for the Stripe app tests."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from typing import Any

from sandbox.store import Record, World

NOW = datetime(2026, 11, 1, tzinfo=UTC)
DAY = 86_400
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void", "paid")
SUBSCRIPTION_STATUSES = ("active", "canceled", "past_due", "trialing", "canceled", "incomplete_expired")


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def new(self, prefix: str, length: int = 24) -> str:
        while True:
            candidate = f"{prefix}_" + "".join(self.rng.choice(BASE62) for _ in range(length))
            if candidate not in self.seen:
                self.seen.add(candidate)
                return candidate


def build_world(customers: int = 300, seed: int = 11) -> World:
    """Customers, invoices in every status (one with 12 lines), payments, subscriptions and events.

    A few customers share a `created` second, so the id tie-break of "newest first" is exercised;
    20 events are older than the 30-day event window.
    """
    rng = random.Random(seed)
    ids = _Ids(rng)
    world = World(seed=seed, contacts_target=customers, now=NOW)
    now = int(NOW.timestamp())
    people = [_customer(ids, i, now - (i // 2 if i < 10 else i) * 3_000 - 600) for i in range(customers)]
    world.billing.customers.put_many(people)
    for i, customer in enumerate(people[:150]):
        _add_invoice(
            world, ids, customer, INVOICE_STATUSES[i % len(INVOICE_STATUSES)], 12 if i == 3 else 1 + i % 3
        )
    for i, customer in enumerate(people[:60]):
        world.billing.subscriptions.put(_subscription(ids, customer, SUBSCRIPTION_STATUSES[i % 6], i))
    _add_events(world, ids, people, now)
    return world


def _customer(ids: _Ids, i: int, created: int) -> Record:
    return {
        "id": ids.new("cus", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": f"person{i}@example.com",
        "invoice_prefix": f"PFX{i:05d}",
        "livemode": False,
        "metadata": {"hubspot_contact_id": str(1000 + i)} if i % 3 else {},
        "name": f"Person {i}",
        "next_invoice_sequence": 1,
        "phone": f"+1555000{i:04d}",
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def _add_invoice(world: World, ids: _Ids, customer: Record, status: str, line_count: int) -> None:
    created = customer["created"] + 300
    invoice_id = ids.new("in")
    lines: list[Record] = [
        {
            "id": ids.new("il"),
            "object": "line_item",
            "amount": 2_500 * (n + 1),
            "currency": "usd",
            "description": f"Line {n}",
            "quantity": 1,
            "period": {"start": created, "end": created + 30 * DAY},
        }
        for n in range(line_count)
    ]
    total = sum(line["amount"] for line in lines)
    paid = status == "paid"
    finalized = status != "draft"
    invoice: Record = {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": total,
        "amount_paid": total if paid else 0,
        "amount_remaining": 0 if paid else total,
        "attempt_count": 1 if paid else 0,
        "attempted": paid,
        "auto_advance": False,
        "billing_reason": "manual",
        "charge": None,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer["id"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "description": None,
        "due_date": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {"hubspot_deal_id": str(5000 + created % 997)},
        "number": f"{customer['invoice_prefix']}-0001" if finalized else None,
        "paid": paid,
        "paid_out_of_band": False,
        "payment_intent": None,
        "period_start": created,
        "period_end": created,
        "status": status,
        "status_transitions": {
            "finalized_at": created + 60 if finalized else None,
            "marked_uncollectible_at": created + 120 if status == "uncollectible" else None,
            "paid_at": created + 120 if paid else None,
            "voided_at": created + 120 if status == "void" else None,
        },
        "subscription": None,
        "subtotal": total,
        "total": total,
    }
    if finalized:
        intent = _payment_intent(ids, invoice, paid)
        invoice["payment_intent"] = intent["id"]
        if paid:
            charge = _charge(ids, invoice, intent)
            invoice["charge"] = charge["id"]
            intent["latest_charge"] = charge["id"]
            world.billing.charges.put(charge)
        world.billing.payment_intents.put(intent)
    world.billing.invoices.put(invoice)


def _payment_intent(ids: _Ids, invoice: Record, paid: bool) -> Record:
    return {
        "id": ids.new("pi"),
        "object": "payment_intent",
        "amount": invoice["amount_due"],
        "amount_received": invoice["amount_due"] if paid else 0,
        "currency": "usd",
        "customer": invoice["customer"],
        "invoice": invoice["id"],
        "status": "succeeded" if paid else "requires_payment_method",
        "created": invoice["created"] + 60,
        "latest_charge": None,
        "metadata": {},
        "livemode": False,
        "payment_method_types": ["card"],
    }


def _charge(ids: _Ids, invoice: Record, intent: Record) -> Record:
    return {
        "id": ids.new("ch"),
        "object": "charge",
        "amount": invoice["amount_due"],
        "amount_captured": invoice["amount_due"],
        "amount_refunded": 0,
        "balance_transaction": ids.new("txn"),
        "captured": True,
        "created": invoice["created"] + 120,
        "currency": "usd",
        "customer": invoice["customer"],
        "invoice": invoice["id"],
        "paid": True,
        "payment_intent": intent["id"],
        "refunded": False,
        "status": "succeeded",
        "failure_code": None,
        "failure_message": None,
        "metadata": {},
        "livemode": False,
    }


def _subscription(ids: _Ids, customer: Record, status: str, i: int) -> Record:
    created = customer["created"] + 900
    subscription_id = ids.new("sub")
    ended = created + 40 * DAY if status in ("canceled", "incomplete_expired") else None
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": customer["id"],
        "status": status,
        "created": created,
        "start_date": created,
        "canceled_at": ended if status == "canceled" else None,
        "ended_at": ended,
        "cancel_at_period_end": False,
        "currency": "usd",
        "collection_method": "charge_automatically",
        "current_period_start": created,
        "current_period_end": created + 30 * DAY,
        "latest_invoice": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": ids.new("si", 14),
                    "object": "subscription_item",
                    "price": {
                        "id": "price_basic" if i % 2 else "price_pro",
                        "object": "price",
                        "unit_amount": 4_900 if i % 2 else 9_900,
                        "currency": "usd",
                        "recurring": {"interval": "month", "interval_count": 1},
                        "product": "prod_sandbox",
                    },
                    "quantity": 1,
                    "created": created,
                }
            ],
            "has_more": False,
        },
        "metadata": {},
        "livemode": False,
    }


def _event(ids: _Ids, event_type: str, created: int, obj: Record, previous: Record | None = None) -> Record:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": ids.new("evt"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def _add_events(world: World, ids: _Ids, people: list[Record], now: int) -> None:
    invoices = sorted(world.billing.invoices, key=lambda r: r["created"])
    charges = list(world.billing.charges)
    events = []
    for k in range(90):
        created = now - 3_600 - k * 25_000  # within the last 27 days
        kind = k % 4
        if kind == 0:
            events.append(_event(ids, "customer.created", created, people[k]))
        elif kind == 1:
            previous = {"email": f"old{k}@example.com"}
            events.append(_event(ids, "customer.updated", created, people[k], previous))
        elif kind == 2:
            events.append(_event(ids, "invoice.paid", created, invoices[k % len(invoices)]))
        else:
            events.append(_event(ids, "charge.succeeded", created, charges[k % len(charges)]))
    for k in range(20):
        created = now - 31 * DAY - k * 10_000
        events.append(_event(ids, "invoice.finalized", created, invoices[k]))
    world.billing.events.put_many(events)
