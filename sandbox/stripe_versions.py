"""Stripe's two API generations the sandbox serves: objects are kept in the 2024-06-20 shape and
rendered in the version a request (or an event) asks for.

From 2025-03-31.basil on, an invoice has no `charge`, `payment_intent`, `paid`,
`paid_out_of_band` or top-level `subscription` (the subscription moved to
`parent.subscription_details`), charges and payment intents have no `invoice`, subscriptions
keep their current period on each item instead of at the top, and payments reach invoices
through invoice payments (`/v1/invoice_payments`, one per payment intent of an invoice).
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.config import STRIPE_API_VERSION

Record = dict[str, Any]

BASIL = "2025-03-31"  # the first version of the current generation
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
_INVOICE_GONE = ("charge", "payment_intent", "paid", "paid_out_of_band", "subscription")
_PERIOD = ("current_period_start", "current_period_end")


def is_version(text: str) -> bool:
    return bool(_VERSION.match(text))


def is_current(version: str | None) -> bool:
    """Whether a version is of the current generation (2025-03-31.basil or later)."""
    return (version or STRIPE_API_VERSION)[:10] >= BASIL


def invoice_payment_id(intent_id: str) -> str:
    return "inpay_" + intent_id.removeprefix("pi_")


def intent_id_of(invoice_payment: str) -> str:
    return "pi_" + invoice_payment.removeprefix("inpay_")


def invoice_payment(intent: Record, paid_at: int | None) -> Record:
    """The invoice payment of one invoice's payment intent (`paid_at`: its succeeded charge's time)."""
    paid = intent.get("status") == "succeeded"
    status = "paid" if paid else "canceled" if intent.get("status") == "canceled" else "open"
    return {
        "id": invoice_payment_id(str(intent["id"])),
        "object": "invoice_payment",
        "amount_paid": intent.get("amount_received") if paid else None,
        "amount_requested": intent.get("amount"),
        "created": intent.get("created"),
        "currency": intent.get("currency"),
        "invoice": intent.get("invoice"),
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
        "status": status,
        "status_transitions": {"canceled_at": None, "paid_at": paid_at if paid else None},
    }


def render(record: Record, version: str | None) -> Record:
    """One stored object as `version` shows it (the stored 2024-06-20 shape when it is older). An
    event is shown in its own version, whatever the request's: Stripe renders it once, when it
    happens, in the account's version of the day."""
    if not isinstance(record, dict):
        return record
    kind = record.get("object")
    if kind == "event":
        return _event(record) if is_current(record.get("api_version")) else record
    if not is_current(version):
        return record
    if kind == "invoice":
        return _invoice(record)
    if kind in ("charge", "payment_intent"):
        return {k: v for k, v in record.items() if k != "invoice"}
    if kind == "subscription":
        return _subscription(record)
    return record


def _invoice(record: Record) -> Record:
    out = {k: v for k, v in record.items() if k not in _INVOICE_GONE}
    subscription = record.get("subscription")
    out["parent"] = (
        {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription},
        }
        if subscription
        else None
    )
    out["amount_overpaid"] = 0
    lines = record.get("lines")
    if isinstance(lines, dict) and isinstance(lines.get("data"), list):
        out["lines"] = {**lines, "data": [_line(line, subscription) for line in lines["data"]]}
    return out


def _line(line: Record, subscription: str | None) -> Record:
    out = {k: v for k, v in line.items() if k not in ("subscription", "price", "type")}
    details = {"proration": False, "proration_details": {"credited_items": None}}
    if subscription:
        out["parent"] = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                **details,
                "invoice_item": None,
                "subscription": subscription,
                "subscription_item": None,
            },
        }
    else:
        out["parent"] = {
            "type": "invoice_item_details",
            "invoice_item_details": {**details, "invoice_item": None, "subscription": None},
            "subscription_item_details": None,
        }
    return out


def _subscription(record: Record) -> Record:
    out = {k: v for k, v in record.items() if k not in _PERIOD}
    items = record.get("items")
    if isinstance(items, dict) and isinstance(items.get("data"), list):
        period = {k: record.get(k) for k in _PERIOD}
        out["items"] = {**items, "data": [{**item, **period} for item in items["data"]]}
    return out


def _event(event: Record) -> Record:
    """An event in its own version: its object, and previous attributes without removed fields."""
    data = event.get("data")
    if not isinstance(data, dict):
        return event
    out = {**data, "object": render(data.get("object") or {}, event.get("api_version"))}
    previous = data.get("previous_attributes")
    if isinstance(previous, dict):
        gone = {*_INVOICE_GONE, *_PERIOD, "invoice"}
        out["previous_attributes"] = {k: v for k, v in previous.items() if k not in gone}
    return {**event, "data": out}
