"""Stripe endpoints, event types and record contracts for the billing source."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dlt.common.schema.typing import TTableSchemaColumns

from ingestion.contracts import Contract, Field

STRIPE_VERSION = "2024-06-20"  # the default pin, and the oldest version staging reads
# The first version of Stripe's current generation: invoices lose `charge`, `payment_intent`,
# `paid` and the top-level `subscription` (now `parent.subscription_details`), charges and
# payment intents lose `invoice`, subscription periods move onto the items, and payments reach
# invoices through invoice payments (`/v1/invoice_payments`). Staging reads both generations.
CURRENT_GENERATION = "2025-03-31"
PAGE_SIZE = 100  # Stripe's maximum `limit`
EVENTS_PATH = "/v1/events"
EVENTS_WINDOW_DAYS = 30  # how long Stripe keeps events listable
# Stripe objects carry no last-modified stamp: each record gets `_version_at`, the time of the
# event it came from, or else the newest time the object carries (these fields and its status
# transitions). When one load holds an object twice, the newer version wins.
VERSION_COLUMN = "_version_at"
VERSION_FIELDS = ("created", "canceled_at", "ended_at", "current_period_start")


@dataclass(frozen=True)
class StripeResource:
    """One Stripe object list: where it is listed, which events change it, its contract."""

    name: str  # the dlt table name
    object: str  # the value of the record's `object` field
    path: str
    event_types: tuple[str, ...]
    contract: Contract
    list_params: dict[str, Any] = field(default_factory=dict)
    nested_lists: tuple[tuple[str, str], ...] = ()  # (field, path template) completed when has_more
    nested_ints: tuple[tuple[str, str], ...] = ()  # (nested list, field) that must be integers
    columns: TTableSchemaColumns = field(default_factory=dict)
    deleted_on: tuple[str, ...] = ()  # event types that mean the object was deleted
    since: str | None = None  # the first API version that has this resource (None: every version)

    def served_in(self, version: str) -> bool:
        """Whether Stripe API `version` has this resource."""
        return self.since is None or version[:10] >= self.since


def _columns(text: str = "", bigint: str = "", boolean: str = "", json: str = "") -> TTableSchemaColumns:
    """Column hints, so a column that is null in every record still exists with its type
    (`json`: an object Stripe may send as null, kept whole rather than flattened)."""
    columns: TTableSchemaColumns = {
        "id": {"data_type": "text"},
        VERSION_COLUMN: {"data_type": "bigint", "dedup_sort": "desc"},
    }
    for names, data_type in ((text, "text"), (bigint, "bigint"), (boolean, "bool"), (json, "json")):
        for name in names.split():
            columns[name] = {"data_type": data_type}  # type: ignore[typeddict-item]
    return columns


COMMON_TEXT = "object currency"
COMMON_BOOL = "livemode"


def _money(*names: str) -> tuple[Field, ...]:
    return tuple(Field(name, "int", required=True) for name in names)


CUSTOMERS = StripeResource(
    name="customers",
    object="customer",
    path="/v1/customers",
    event_types=("customer.created", "customer.updated", "customer.deleted"),
    deleted_on=("customer.deleted",),
    columns=_columns(
        text=f"{COMMON_TEXT} email name phone description invoice_prefix tax_exempt test_clock "
        "default_source",
        bigint="created balance next_invoice_sequence",
        boolean=f"{COMMON_BOOL} delinquent deleted",
        json="address shipping discount",
    ),
    contract=Contract(
        resource="customers",
        key="id",
        fields=(
            Field("object", "str", required=True),
            Field("created", "int", required=True),
            Field("email", "str"),
            Field("name", "str"),
            Field("balance", "int"),
            Field("delinquent", "bool"),
            Field("metadata", "dict"),
        ),
        string_map="metadata",
    ),
)

INVOICES = StripeResource(
    name="invoices",
    object="invoice",
    path="/v1/invoices",
    event_types=(
        "invoice.created",
        "invoice.deleted",
        "invoice.finalization_failed",
        "invoice.finalized",
        "invoice.marked_uncollectible",
        "invoice.overdue",
        "invoice.paid",
        "invoice.payment_action_required",
        "invoice.payment_failed",
        "invoice.payment_succeeded",
        "invoice.sent",
        "invoice.updated",
        "invoice.voided",
        "invoice.will_be_due",
    ),
    deleted_on=("invoice.deleted",),
    nested_lists=(("lines", "/v1/invoices/{id}/lines"),),
    nested_ints=(("lines", "amount"),),
    columns=_columns(
        text=f"{COMMON_TEXT} customer customer_email customer_name description number status "
        "collection_method billing_reason charge payment_intent subscription "
        "parent__type parent__subscription_details__subscription",
        bigint="created due_date period_start period_end amount_due amount_paid amount_remaining "
        "subtotal total attempt_count status_transitions__finalized_at status_transitions__paid_at "
        "status_transitions__voided_at status_transitions__marked_uncollectible_at amount_overpaid",
        boolean=f"{COMMON_BOOL} paid attempted auto_advance paid_out_of_band deleted",
    ),
    contract=Contract(
        resource="invoices",
        key="id",
        fields=(
            Field("object", "str", required=True),
            Field("created", "int", required=True),
            Field("customer", "str"),
            Field("currency", "str", required=True),
            *_money("amount_due", "amount_paid", "amount_remaining"),
            Field("subtotal", "int"),
            Field("total", "int"),
            Field("status", "str"),
            Field("lines", "dict"),
            Field("lines.data", "list"),
            Field("metadata", "dict"),
        ),
        string_map="metadata",
    ),
)

CHARGES = StripeResource(
    name="charges",
    object="charge",
    path="/v1/charges",
    event_types=(
        "charge.captured",
        "charge.expired",
        "charge.failed",
        "charge.pending",
        "charge.refunded",
        "charge.succeeded",
        "charge.updated",
    ),
    columns=_columns(
        text=f"{COMMON_TEXT} customer invoice payment_intent balance_transaction status failure_code "
        "failure_message",
        bigint="created amount amount_captured amount_refunded",
        boolean=f"{COMMON_BOOL} captured paid refunded",
    ),
    contract=Contract(
        resource="charges",
        key="id",
        fields=(
            Field("object", "str", required=True),
            Field("created", "int", required=True),
            Field("currency", "str", required=True),
            *_money("amount"),
            Field("amount_captured", "int"),
            Field("amount_refunded", "int"),
            Field("status", "str", required=True),
            Field("paid", "bool"),
            Field("refunded", "bool"),
            Field("metadata", "dict"),
        ),
        string_map="metadata",
    ),
)

PAYMENT_INTENTS = StripeResource(
    name="payment_intents",
    object="payment_intent",
    path="/v1/payment_intents",
    event_types=(
        "payment_intent.amount_capturable_updated",
        "payment_intent.canceled",
        "payment_intent.created",
        "payment_intent.partially_funded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
    ),
    columns=_columns(
        text=f"{COMMON_TEXT} customer invoice status latest_charge",
        bigint="created amount amount_received",
        boolean=COMMON_BOOL,
    ),
    contract=Contract(
        resource="payment_intents",
        key="id",
        fields=(
            Field("object", "str", required=True),
            Field("created", "int", required=True),
            Field("currency", "str", required=True),
            *_money("amount"),
            Field("amount_received", "int"),
            Field("status", "str", required=True),
            Field("metadata", "dict"),
        ),
        string_map="metadata",
    ),
)

SUBSCRIPTIONS = StripeResource(
    name="subscriptions",
    object="subscription",
    path="/v1/subscriptions",
    list_params={"status": "all"},  # the default hides canceled subscriptions
    event_types=(
        "customer.subscription.created",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "customer.subscription.updated",
    ),
    nested_lists=(("items", "/v1/subscription_items?subscription={id}"),),
    columns=_columns(
        text=f"{COMMON_TEXT} customer status collection_method latest_invoice",
        bigint="created start_date canceled_at ended_at current_period_start current_period_end",
        boolean=f"{COMMON_BOOL} cancel_at_period_end",
    ),
    contract=Contract(
        resource="subscriptions",
        key="id",
        fields=(
            Field("object", "str", required=True),
            Field("created", "int", required=True),
            Field("customer", "str", required=True),
            Field("status", "str", required=True),
            Field("current_period_start", "int"),
            Field("current_period_end", "int"),
            Field("items", "dict"),
            Field("items.data", "list"),
            Field("metadata", "dict"),
        ),
        string_map="metadata",
    ),
)

INVOICE_PAYMENTS = StripeResource(
    name="invoice_payments",
    object="invoice_payment",
    path="/v1/invoice_payments",
    event_types=("invoice_payment.paid",),
    since=CURRENT_GENERATION,
    columns=_columns(
        text=f"{COMMON_TEXT} invoice status payment__type payment__payment_intent payment__charge",
        bigint="created amount_paid amount_requested status_transitions__paid_at "
        "status_transitions__canceled_at",
        boolean=f"{COMMON_BOOL} is_default",
    ),
    contract=Contract(
        resource="invoice_payments",
        key="id",
        fields=(
            Field("object", "str", required=True),
            Field("created", "int", required=True),
            Field("invoice", "str", required=True),
            Field("currency", "str", required=True),
            Field("amount_requested", "int", required=True),
            Field("amount_paid", "int"),
            Field("status", "str", required=True),
            Field("payment", "dict", required=True),
        ),
    ),
)

RESOURCES: tuple[StripeResource, ...] = (
    CUSTOMERS,
    INVOICES,
    CHARGES,
    PAYMENT_INTENTS,
    SUBSCRIPTIONS,
    INVOICE_PAYMENTS,
)
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


def is_current_generation(version: str) -> bool:
    """Whether an API version is of the current generation (2025-03-31.basil or later)."""
    return version[:10] >= CURRENT_GENERATION


def check_version(version: str) -> str:
    """The configured `stripe_version`, checked: a Stripe version staging reads (2024-06-20 on)."""
    text = str(version).strip()
    if not _VERSION.match(text):
        problem = f"sources.billing.stripe_version {version!r} is not a Stripe API version"
        raise ValueError(f"{problem} (e.g. {STRIPE_VERSION})")
    if text[:10] < STRIPE_VERSION:
        raise ValueError(
            f"sources.billing.stripe_version {text!r} is older than the oldest version trueup reads "
            f"({STRIPE_VERSION}); pin {STRIPE_VERSION} or a later one"
        )
    return text
