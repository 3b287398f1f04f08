"""Stripe v1 served from the world's billing state, in the API version each request asks for
(`Stripe-Version`, else the account's own: 2024-06-20, or the current generation; see
`sandbox.stripe_versions`)."""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import hashlib
import hmac
import json
import logging
import random
import re
import string
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox import stripe_versions
from sandbox.config import STRIPE_EVENT_WINDOW_DAYS, RateLimitConfig, SandboxConfig
from sandbox.faults import Faults, apply_drift
from sandbox.http import Request, Response, Router, json_response
from sandbox.ratelimit import Limits
from sandbox.store import Collection, Record, World

log = logging.getLogger(__name__)


# Digits, then upper, then lower case: ASCII order, so generated ids sort like their parts.
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
DAY = 86_400
EVENT_WINDOW_SECONDS = STRIPE_EVENT_WINDOW_DAYS * DAY
IDEMPOTENCY_TTL_SECONDS = DAY
MAX_TYPES = 20
LINES_EMBEDDED = 10

RESOURCES = ("customers", "invoices", "charges", "payment_intents", "subscriptions", "events")
OBJECT_OF = {
    "customers": "customer",
    "invoices": "invoice",
    "charges": "charge",
    "payment_intents": "payment_intent",
    "subscriptions": "subscription",
    "events": "event",
}
RESOURCE_OF = {name: resource for resource, name in OBJECT_OF.items()}
# Fields holding an id that `expand[]` can replace with the object.
EXPANDABLE = {
    "customer": "customers",
    "invoice": "invoices",
    "latest_invoice": "invoices",
    "charge": "charges",
    "latest_charge": "charges",
    "payment_intent": "payment_intents",
    "subscription": "subscriptions",
}

LIST_COMMON = frozenset({"limit", "starting_after", "ending_before", "created", "expand", "include"})
INVOICE_PAYMENT_FILTERS = frozenset({"invoice", "payment", "status"})
INVOICE_PAYMENT_STATUSES = ("open", "paid", "canceled")
LIST_FILTERS: dict[str, frozenset[str]] = {
    "customers": frozenset({"email", "test_clock"}),
    "invoices": frozenset({"customer", "status", "subscription", "collection_method", "due_date"}),
    "charges": frozenset({"customer", "payment_intent", "transfer_group"}),
    "payment_intents": frozenset({"customer"}),
    "subscriptions": frozenset(
        {
            "customer",
            "status",
            "price",
            "plan",
            "collection_method",
            "current_period_start",
            "current_period_end",
            "test_clock",
        }
    ),
    "events": frozenset({"type", "types", "delivery_success"}),
}
# Equality filters answered from a hash index (few matches each); others scan in order.
INDEXED: dict[str, tuple[str, ...]] = {
    "customers": ("email",),
    "invoices": ("customer", "subscription"),
    "charges": ("customer", "payment_intent"),
    "payment_intents": ("customer",),
    "subscriptions": ("customer",),
}
PLAIN_EQUALITY = ("test_clock", "collection_method", "transfer_group")
RANGE_FILTERS = ("due_date", "current_period_start", "current_period_end")
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
SUBSCRIPTION_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)

CUSTOMER_FIELDS = ("email", "name", "phone", "description")
CUSTOMER_PARAMS = frozenset({*CUSTOMER_FIELDS, "metadata", "expand"})
INVOICE_CREATE_PARAMS = frozenset(
    {
        "customer",
        "description",
        "metadata",
        "collection_method",
        "days_until_due",
        "due_date",
        "auto_advance",
        "pending_invoice_items_behavior",
        "currency",
        "expand",
    }
)
INVOICE_UPDATE_PARAMS = frozenset({"description", "metadata", "auto_advance", "expand"})
INVOICE_ITEM_PARAMS = frozenset(
    {
        "customer",
        "amount",
        "unit_amount",
        "quantity",
        "currency",
        "description",
        "invoice",
        "metadata",
        "period",
        "expand",
    }
)
ACTION_PARAMS = {
    "finalize": frozenset({"auto_advance", "expand"}),
    "pay": frozenset(
        {"paid_out_of_band", "payment_method", "source", "forgive", "off_session", "mandate", "expand"}
    ),
    "void": frozenset({"expand"}),
    "mark_uncollectible": frozenset({"expand"}),
}
# Which statuses each action accepts (Stripe's invoice status-transition table).
ACTION_FROM = {
    "finalize": ("draft",),
    "pay": ("open", "uncollectible"),
    "void": ("open", "uncollectible"),
    "mark_uncollectible": ("open",),
}

NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api"
    "#authentication for details, or we can help at https://support.stripe.com/."
)
RATE_LIMIT_MESSAGE = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
)
IDEMPOTENCY_MISMATCH = (
    "Keys for idempotent requests can only be used with the same parameters they were first used "
    "with. Try using a key other than '{key}' if you meant to execute a different request."
)
KEY_PREFIX = re.compile(r"^((?:sk|rk|pk)_(?:test|live)_)(.*)$", re.S)
CONTENT_TYPE_FORM = "application/x-www-form-urlencoded"


class StripeError(Exception):
    """An error answered in Stripe's `{"error": {...}}` shape.

    `stored` marks errors raised after the endpoint started executing: Stripe saves those
    under an idempotency key, while parameter-validation failures are not saved.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        stored: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.stored = stored
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        error["type"] = self.type
        return {"error": error}


def _missing(name: str, object_id: str, param: str | None = "id", status: int = 404) -> StripeError:
    return StripeError(status, f"No such {name}: '{object_id}'", code="resource_missing", param=param)


def _unknown(param: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


def _invalid(message: str, param: str) -> StripeError:
    return StripeError(400, message, code="parameter_invalid", param=param)


@dataclass
class _Call:
    """What one request carries into its handler."""

    request_id: str
    idempotency_key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Saved:
    """A response stored under an idempotency key."""

    fingerprint: str
    status: int
    body: bytes
    request_id: str
    saved_at: int


@dataclass
class _Index:
    """Ids bucketed by one field's value, valid for one collection version."""

    version: int
    buckets: dict[str, list[str]]


@dataclass
class _Page:
    records: list[Record]
    has_more: bool


class StripeApp:
    """Stripe's v1 API over `world.billing`: lists, retrieval, writes, idempotency, auth, 429s."""

    system = "billing"
    prefix = "stripe"

    def __init__(self, world: World, config: SandboxConfig, faults: Faults) -> None:
        self.world = world
        self.config = config
        self.faults = faults
        self._limits = Limits()
        self.set_limits(config.limits)
        self._ids = random.Random(f"stripe-ids-{world.seed}")
        self._request_ids = random.Random(f"stripe-requests-{world.seed}")
        self._sequence = 0
        self._saved: OrderedDict[str, _Saved] = OrderedDict()
        self._indexes: dict[tuple[str, str], _Index] = {}
        self._pending_items: dict[str, list[Record]] = {}
        self._call = _Call(request_id="")
        self._version = world.setup.stripe_version  # the version of the request being served
        # A crowded history can end a few seconds past the clock (records of a collection get
        # distinct `created` seconds): writes stamp later than its newest event, so every
        # change is newer than the history, as in Stripe.
        self._floor = max((int(e["created"]) + 1 for e in world.billing.events), default=0)
        self.router = Router()
        self._routes()

    # --- the App protocol ------------------------------------------------------------

    def set_limits(self, limits: RateLimitConfig) -> None:
        per_s = limits.stripe_per_s
        self._limits = Limits({"requests": (per_s, 1.0)} if per_s is not None else {})

    def error(self, status: int, message: str, code: int | None = None) -> Response:
        request_id = self._request_id()
        if status == 429:
            exc = self._rate_limited()
            response = json_response(exc.body(request_id), 429, exc.headers)
        else:
            response = json_response({"error": {"type": "api_error", "message": message}}, status)
        response.headers.update(self._base_headers(request_id))
        return response

    def handle(self, request: Request) -> Response:
        request_id = self._request_id()
        self._version = self.world.setup.stripe_version
        try:
            response = self._serve(request, request_id)
        except StripeError as exc:
            response = self._error_response(exc, request_id)
        except Exception:
            log.exception("stripe sandbox failed on %s %s", request.method, request.path)
            response = self._error_response(_internal_error(), request_id)
        response.headers.update(self._base_headers(request_id))
        key = request.headers.get("idempotency-key")
        if request.method == "POST" and key is not None:
            response.headers.setdefault("Idempotency-Key", key)
        return response

    # --- request pipeline ------------------------------------------------------------

    def _routes(self) -> None:
        for resource in RESOURCES:
            self.router.add("GET", f"/v1/{resource}", self._lister(resource))
            self.router.add("GET", f"/v1/{resource}/{{id}}", self._retriever(resource))
        self.router.add("GET", "/v1/invoices/{id}/lines", self._list_lines)
        self.router.add("GET", "/v1/invoice_payments", self._list_invoice_payments)
        self.router.add("GET", "/v1/invoice_payments/{id}", self._retrieve_invoice_payment)
        self.router.add("POST", "/v1/customers", self._create_customer)
        self.router.add("POST", "/v1/customers/{id}", self._update_customer)
        self.router.add("POST", "/v1/invoices", self._create_invoice)
        self.router.add("POST", "/v1/invoices/{id}", self._update_invoice)
        self.router.add("POST", "/v1/invoiceitems", self._create_invoice_item)
        for action in ACTION_FROM:
            self.router.add("POST", f"/v1/invoices/{{id}}/{action}", self._actor(action))

    def _serve(self, request: Request, request_id: str) -> Response:
        self._authenticate(request)
        asked = request.headers.get("stripe-version")
        if asked is not None:
            if not stripe_versions.is_version(asked.strip()):
                raise StripeError(400, f"Invalid Stripe API version: {asked}", param="Stripe-Version")
            self._version = asked.strip()
        decision = self._limits.hit("requests")
        if decision is not None and not decision.allowed:
            raise self._rate_limited()
        handler = self.router.match(request)
        resource = request.path.split("/")[2] if request.path.count("/") >= 2 else ""
        if handler is None or self.config.account.is_unused("billing", resource):
            raise StripeError(
                404,
                f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        if self.config.account.is_forbidden("billing", resource):
            access = "write" if request.method == "POST" else "read"
            permission = f"rak_{OBJECT_OF.get(resource, resource.rstrip('s'))}_{access}"
            raise StripeError(
                403,
                f"The provided key 'rk_test_****{self.config.tokens.get('stripe', '')[-4:]}' does not have "
                f"the required permissions for this endpoint on account 'acct_trueupsandbox'. Having the "
                f"'{permission}' permission would allow this request to continue.",
            )
        if request.method != "POST":
            self._call = _Call(request_id, None, _nest(request.query))
            return handler(request)
        return self._serve_write(request, request_id, handler)

    def _serve_write(
        self, request: Request, request_id: str, handler: Callable[[Request], Response]
    ) -> Response:
        params = _nest({**request.query, **_form(request)})
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 255:
            raise StripeError(
                400,
                f"Idempotent key length is {len(key)}, which is outside accepted lengths. Idempotent "
                "Keys must be 1-255 characters long. If you're looking for a decent generator, try "
                "using a UUID defined by IETF RFC 4122.",
            )
        if key is None:
            self._call = _Call(request_id, None, params)
            return handler(request)
        fingerprint = _fingerprint(request.method, request.path, params)
        saved = self._saved.get(key)
        if saved is not None:
            return self._replay(saved, key, fingerprint)
        self._call = _Call(request_id, key, params)
        response, store = self._execute(handler, request, request_id)
        if store:
            self._save(key, fingerprint, response, request_id)
        response.headers["Idempotency-Key"] = key
        return response

    def _execute(
        self, handler: Callable[[Request], Response], request: Request, request_id: str
    ) -> tuple[Response, bool]:
        """Run a keyed write; the bool says whether Stripe would save this outcome."""
        try:
            return handler(request), True
        except StripeError as exc:
            return self._error_response(exc, request_id), exc.stored
        except Exception:
            log.exception("stripe sandbox failed on %s %s", request.method, request.path)
            return self._error_response(_internal_error(), request_id), True

    def _replay(self, saved: _Saved, key: str, fingerprint: str) -> Response:
        if saved.fingerprint != fingerprint:
            raise StripeError(400, IDEMPOTENCY_MISMATCH.format(key=key), type_="idempotency_error")
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "Idempotent-Replayed": "true",
            "Original-Request": saved.request_id,
        }
        return Response(status=saved.status, body=saved.body, headers=headers)

    def _save(self, key: str, fingerprint: str, response: Response, request_id: str) -> None:
        now = self._now()
        while self._saved:
            oldest = next(iter(self._saved.values()))
            if now - oldest.saved_at < IDEMPOTENCY_TTL_SECONDS:
                break
            self._saved.popitem(last=False)
        self._saved[key] = _Saved(fingerprint, response.status, response.body, request_id, now)

    def _authenticate(self, request: Request) -> None:
        key = _api_key(request.headers.get("authorization", ""))
        challenge = {"WWW-Authenticate": 'Basic realm="Stripe"'}
        if not key:
            raise StripeError(401, NO_KEY_MESSAGE, headers=challenge)
        expected = self.config.tokens.get("stripe", "")
        if not expected or not hmac.compare_digest(key.encode(), expected.encode()):
            raise StripeError(401, f"Invalid API Key provided: {_mask(key)}", headers=challenge)

    def _rate_limited(self) -> StripeError:
        return StripeError(
            429, RATE_LIMIT_MESSAGE, code="rate_limit", headers={"Stripe-Should-Retry": "true"}
        )

    def _error_response(self, exc: StripeError, request_id: str) -> Response:
        return json_response(exc.body(request_id), exc.status, dict(exc.headers))

    def _base_headers(self, request_id: str) -> dict[str, str]:
        return {"Request-Id": request_id, "Stripe-Version": self._version}

    # --- reads -----------------------------------------------------------------------

    def _lister(self, resource: str) -> Callable[[Request], Response]:
        return lambda request: self._list(resource)

    def _retriever(self, resource: str) -> Callable[[Request], Response]:
        return lambda request: self._retrieve(resource, request.params["id"])

    def _list(self, resource: str) -> Response:
        params = self._call.params
        _check_known(params, LIST_COMMON | LIST_FILTERS[resource])
        limit = _limit(params.get("limit"))
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise StripeError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        low, high = _range(params.get("created"), "created")
        if resource == "events":
            low = max(low if low is not None else 0, self._now() - EVENT_WINDOW_SECONDS + 1)
        equal, checks = self._filters(resource, params)
        if resource == "events":
            checks.append(self._event_of_a_listed_object)
        if self.faults.stalls("billing", resource):
            after = None  # a listing stuck on its first page
        cursor_id = after if after is not None else before
        cursor_param = "starting_after" if after is not None else "ending_before"
        cursor = self._cursor(resource, cursor_id, cursor_param)
        keys, ids = self._ordering(resource, equal)
        collection = self._collection(resource)
        if self.config.account.is_empty("billing", resource):
            keys, ids = [], []  # a fresh account: none yet
        accept = _all_of(checks)
        page = _walk(keys, ids, collection, (low, high), cursor, before is not None, limit, accept)
        expand = _expand_paths(params.get("expand"), listing=True)
        data = [self._render(resource, record, expand) for record in page.records]
        if self.faults.duplicates("billing", resource):
            previous = collection.get(str(after)) if after is not None else None
            data = _with_older_copies(data, self._render(resource, previous, expand) if previous else None)
        body: dict[str, Any] = {
            "object": "list",
            "data": data,
            "has_more": page.has_more and not self.faults.truncates("billing", resource),
            "url": f"/v1/{resource}",
        }
        if "total_count" in _as_list(params.get("include")):
            body["total_count"] = _count(keys, ids, collection, (low, high), accept)
        return json_response(body)

    def _retrieve(self, resource: str, object_id: str) -> Response:
        _check_known(self._call.params, frozenset({"expand"}))
        record = self._collection(resource).get(object_id)
        if self.config.account.is_empty("billing", resource):
            record = None
        if record is None or (resource == "events" and not self._in_event_window(record)):
            raise _missing(OBJECT_OF[resource], object_id)
        expand = _expand_paths(self._call.params.get("expand"), listing=False)
        return json_response(self._render(resource, record, expand))

    def _list_lines(self, request: Request) -> Response:
        params = self._call.params
        _check_known(params, frozenset({"limit", "starting_after", "ending_before", "expand"}))
        invoice_id = request.params["id"]
        invoice = self._get_or_404("invoices", invoice_id)
        limit = _limit(params.get("limit"))
        lines: list[Record] = list(invoice.get("lines", {}).get("data") or [])
        start, end = 0, len(lines)
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise StripeError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        if after is not None:
            start = _line_position(lines, after, "starting_after") + 1
        elif before is not None:
            end = _line_position(lines, before, "ending_before")
            start = max(0, end - limit)
        data = lines[start:end][:limit]
        has_more = (start + limit < end) if before is None else start > 0
        body = {
            "object": "list",
            "data": data,
            "has_more": has_more,
            "url": f"/v1/invoices/{invoice_id}/lines",
        }
        return json_response(body)

    def _as_invoice_payment(self, intent: Record) -> Record:
        """The invoice payment of an invoice's payment intent (paid at its succeeded charge)."""
        charge = self._collection("charges").get(str(intent.get("latest_charge") or ""))
        paid_at = charge["created"] if charge is not None and charge.get("status") == "succeeded" else None
        return stripe_versions.invoice_payment(intent, paid_at)

    def _list_invoice_payments(self, request: Request) -> Response:
        """Invoice payments, newest first: one per payment intent that belongs to an invoice."""
        params = self._call.params
        _check_known(params, LIST_COMMON | INVOICE_PAYMENT_FILTERS)
        limit = _limit(params.get("limit"))
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise StripeError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        equal: dict[str, str] = {}
        checks: list[Callable[[Record], bool]] = [lambda r: bool(r.get("invoice"))]
        if "invoice" in params:
            equal["invoice"] = _string(params["invoice"], "invoice")
            checks.append(_field_equals("invoice", equal["invoice"]))
        payment = params.get("payment")
        if isinstance(payment, dict) and payment.get("payment_intent") is not None:
            checks.append(_field_equals("id", _string(payment["payment_intent"], "payment[payment_intent]")))
        if "status" in params:
            wanted = _choice(params["status"], "status", INVOICE_PAYMENT_STATUSES)
            checks.append(lambda r: self._as_invoice_payment(r)["status"] == wanted)
        cursor = None
        if after is not None or before is not None:
            param = "starting_after" if after is not None else "ending_before"
            given = _string(after if after is not None else before, param)
            cursor = self._invoice_payment_cursor(given, param)
        keys, ids = self._ordering("payment_intents", equal)
        collection = self._collection("payment_intents")
        low, high = _range(params.get("created"), "created")
        page = _walk(keys, ids, collection, (low, high), cursor, before is not None, limit, _all_of(checks))
        body = {
            "object": "list",
            "data": [self._as_invoice_payment(r) for r in page.records],
            "has_more": page.has_more,
            "url": "/v1/invoice_payments",
        }
        return json_response(body)

    def _invoice_payment_cursor(self, payment_id: str, param: str) -> tuple[int, str]:
        intent = self._collection("payment_intents").get(stripe_versions.intent_id_of(payment_id))
        if intent is None or not intent.get("invoice"):
            raise _missing("invoice_payment", payment_id, param=param, status=400)
        return _created_key(intent)

    def _retrieve_invoice_payment(self, request: Request) -> Response:
        _check_known(self._call.params, frozenset({"expand"}))
        payment_id = request.params["id"]
        intent = self._collection("payment_intents").get(stripe_versions.intent_id_of(payment_id))
        if intent is None or not intent.get("invoice"):
            raise _missing("invoice_payment", payment_id)
        return json_response(self._as_invoice_payment(intent))

    def _filters(
        self, resource: str, params: dict[str, Any]
    ) -> tuple[dict[str, str], list[Callable[[Record], bool]]]:
        """Split a list's filters into indexed equalities and per-record checks."""
        equal: dict[str, str] = {}
        checks: list[Callable[[Record], bool]] = []
        for name in INDEXED.get(resource, ()):
            if name in params:
                equal[name] = _string(params[name], name)
                checks.append(_field_equals(name, equal[name]))
        for name in PLAIN_EQUALITY:
            if name in params and name in LIST_FILTERS[resource]:
                checks.append(_field_equals(name, _string(params[name], name)))
        for name in RANGE_FILTERS:
            if name in params and name in LIST_FILTERS[resource]:
                checks.append(_field_in_range(name, _range(params[name], name)))
        if resource == "invoices" and "status" in params:
            checks.append(_field_equals("status", _choice(params["status"], "status", INVOICE_STATUSES)))
        if resource == "subscriptions":
            checks.append(_subscription_status(params.get("status")))
            for name in ("price", "plan"):
                if name in params:
                    checks.append(_has_price(_string(params[name], name)))
        if resource == "events":
            check = _event_types(params.get("type"), params.get("types"))
            if check is not None:
                checks.append(check)
        return equal, checks

    def _ordering(self, resource: str, equal: dict[str, str]) -> tuple[list[Any], list[str]]:
        """(created, id) keys ascending with their ids: the whole collection, or one index bucket."""
        collection = self._collection(resource)
        if not equal:
            return collection.view("stripe:created", _created_key)
        buckets = [self._bucket(resource, name, value) for name, value in equal.items()]
        smallest = min(buckets, key=len)
        records = [r for r in (collection.get(i) for i in smallest) if r is not None]
        keys = sorted(_created_key(r) for r in records)
        return keys, [k[1] for k in keys]

    def _cursor(self, resource: str, object_id: Any, param: str) -> tuple[int, str] | None:
        if object_id is None:
            return None
        object_id = _string(object_id, param)
        record = self._collection(resource).get(object_id)
        if record is None:
            raise _missing(OBJECT_OF[resource], object_id, param=param, status=400)
        return _created_key(record)

    def _bucket(self, resource: str, name: str, value: str) -> list[str]:
        collection = self._collection(resource)
        index = self._indexes.get((resource, name))
        if index is None or index.version != collection.version:
            buckets: dict[str, list[str]] = {}
            for record in collection:
                if record.get(name) is not None:
                    buckets.setdefault(str(record[name]), []).append(record["id"])
            index = _Index(collection.version, buckets)
            self._indexes[(resource, name)] = index
        return index.buckets.get(value, [])

    def _render(self, resource: str, record: Record, expand: list[str]) -> Record:
        out = record
        if resource == "invoices":
            out = _trim_lines(out)
        if resource == "events":
            out = self._drift_event_object(out)
        drift = self.faults.drift_for("billing", resource)
        if drift is not None:
            out = apply_drift(out, drift, str(record["id"]))
        for name in expand:
            target = EXPANDABLE.get(name)
            value = out.get(name)
            if target and isinstance(value, str):
                expanded = self._collection(target).get(value)
                if expanded is not None:
                    out = {**out, name: self._shown(expanded)}
        return self._shown(out)

    def _shown(self, record: Record) -> Record:
        """A stored object in the version of the request being served (an event in its own)."""
        return stripe_versions.render(record, self._version)

    def _drift_event_object(self, event: Record) -> Record:
        """Drift on a resource also shows in the snapshots events carry of its objects."""
        data = event.get("data")
        if not isinstance(data, dict):
            return event
        obj = data.get("object")
        if not isinstance(obj, dict) or "id" not in obj:
            return event
        resource = RESOURCE_OF.get(str(obj.get("object")))
        drift = self.faults.drift_for("billing", resource) if resource else None
        if drift is None or resource == "events":
            return event
        return {**event, "data": {**data, "object": apply_drift(obj, drift, str(obj["id"]))}}

    def _event_of_a_listed_object(self, event: Record) -> bool:
        """Events of an object type a fresh account has none of are not listed either."""
        obj = (event.get("data") or {}).get("object") or {}
        resource = RESOURCE_OF.get(str(obj.get("object")))
        return resource is None or not self.config.account.is_empty("billing", resource)

    def _in_event_window(self, event: Record) -> bool:
        return int(event["created"]) > self._now() - EVENT_WINDOW_SECONDS

    # --- writes: customers -----------------------------------------------------------

    def _create_customer(self, request: Request) -> Response:
        params = self._call.params
        _check_known(params, CUSTOMER_PARAMS)
        changes = _customer_changes(params)
        metadata = _merge_metadata({}, params.get("metadata"))
        customers = self._collection("customers")
        customer: Record = {
            "id": self._new_id("cus", customers, short=True),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self._now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": None,
            "invoice_prefix": "".join(self._ids.choice(BASE62[:36]) for _ in range(8)),
            "livemode": False,
            "metadata": metadata,
            "name": None,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        customer.update(changes)
        self._store("customers", customer, None)
        self._emit("customer.created", customer)
        return json_response(self._shown(customer))

    def _update_customer(self, request: Request) -> Response:
        params = self._call.params
        _check_known(params, CUSTOMER_PARAMS)
        customer = self._get_or_404("customers", request.params["id"])
        changes = _customer_changes(params)
        metadata = _merge_metadata(customer.get("metadata") or {}, params.get("metadata"))
        before = copy.deepcopy(customer)
        customer.update(changes)
        customer["metadata"] = metadata
        self._changed("customers", customer, before, "customer.updated")
        raw_metadata = params.get("metadata")
        keys = raw_metadata.items() if isinstance(raw_metadata, dict) else []
        logged = {**changes, **{f"metadata[{k}]": v for k, v in keys}}
        self.world.log_write("billing", "customers", customer["id"], logged, self._call.idempotency_key)
        return json_response(self._shown(customer))

    # --- writes: invoices ------------------------------------------------------------

    def _create_invoice(self, request: Request) -> Response:
        params = self._call.params
        _check_known(params, INVOICE_CREATE_PARAMS)
        customer = self._required_customer(params)
        method = _choice(
            params.get("collection_method", "charge_automatically"),
            "collection_method",
            ("charge_automatically", "send_invoice"),
        )
        now = self._now()
        due_date = _due_date(params, method, now)
        behavior = _choice(
            params.get("pending_invoice_items_behavior", "exclude"),
            "pending_invoice_items_behavior",
            ("exclude", "include"),
        )
        _currency(params.get("currency", "usd"))
        invoice = self._new_invoice(customer, method, now, due_date, params)
        if behavior == "include":
            for item in self._pending_items.pop(customer["id"], []):
                item["invoice"] = invoice["id"]
                invoice["lines"]["data"].append(self._line_for(item))
            _recompute(invoice)
        if customer.get("currency") is None:
            customer["currency"] = "usd"
            self._store("customers", customer, customer)
        self._store("invoices", invoice, None)
        self._emit("invoice.created", invoice)
        return json_response(self._shown(invoice))

    def _new_invoice(
        self, customer: Record, method: str, now: int, due_date: int | None, params: dict[str, Any]
    ) -> Record:
        invoice_id = self._new_id("in", self._collection("invoices"))
        return {
            "id": invoice_id,
            "object": "invoice",
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": _boolean(params.get("auto_advance", "false"), "auto_advance"),
            "billing_reason": "manual",
            "charge": None,
            "collection_method": method,
            "created": now,
            "currency": "usd",
            "customer": customer["id"],
            "customer_email": customer.get("email"),
            "customer_name": customer.get("name"),
            "description": _optional_string(params.get("description"), "description"),
            "due_date": due_date,
            "lines": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": _merge_metadata({}, params.get("metadata")),
            "number": None,
            "paid": False,
            "paid_out_of_band": False,
            "payment_intent": None,
            "period_start": now,
            "period_end": now,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subscription": None,
            "subtotal": 0,
            "total": 0,
        }

    def _update_invoice(self, request: Request) -> Response:
        params = self._call.params
        _check_known(params, INVOICE_UPDATE_PARAMS)
        invoice = self._get_or_404("invoices", request.params["id"])
        description = _optional_string(params.get("description"), "description")
        auto_advance = _boolean(params["auto_advance"], "auto_advance") if "auto_advance" in params else None
        metadata = _merge_metadata(invoice.get("metadata") or {}, params.get("metadata"))
        before = copy.deepcopy(invoice)
        if "description" in params:
            invoice["description"] = description
        if auto_advance is not None:
            invoice["auto_advance"] = auto_advance
        invoice["metadata"] = metadata
        self._changed("invoices", invoice, before, "invoice.updated")
        return json_response(self._shown(invoice))

    def _create_invoice_item(self, request: Request) -> Response:
        params = self._call.params
        _check_known(params, INVOICE_ITEM_PARAMS)
        customer = self._required_customer(params)
        quantity = _integer(params.get("quantity", "1"), "quantity")
        amount = _item_amount(params, quantity)
        currency = _currency(params.get("currency", "usd"))
        now = self._now()
        raw_period = params.get("period")
        period: dict[str, Any] = raw_period if isinstance(raw_period, dict) else {}
        item: Record = {
            "id": self._new_id("ii", None),
            "object": "invoiceitem",
            "amount": amount,
            "currency": currency,
            "customer": customer["id"],
            "date": now,
            "description": _optional_string(params.get("description"), "description"),
            "discountable": True,
            "invoice": None,
            "livemode": False,
            "metadata": _merge_metadata({}, params.get("metadata")),
            "period": {
                "start": _integer(period.get("start", now), "period[start]"),
                "end": _integer(period.get("end", now), "period[end]"),
            },
            "proration": False,
            "quantity": quantity,
            "unit_amount": amount // quantity if quantity else amount,
            "unit_amount_decimal": str(amount // quantity if quantity else amount),
        }
        if "invoice" in params:
            self._attach_item(item, _string(params["invoice"], "invoice"), customer)
        else:
            self._pending_items.setdefault(customer["id"], []).append(item)
            self._emit("invoiceitem.created", item)
        return json_response(self._shown(item))

    def _attach_item(self, item: Record, invoice_id: str, customer: Record) -> None:
        invoice = self._collection("invoices").get(invoice_id)
        if invoice is None:
            raise _missing("invoice", invoice_id, param="invoice", status=400)
        if invoice["customer"] != customer["id"]:
            raise _invalid(
                f"The invoice {invoice_id} belongs to a different customer than {customer['id']}.",
                "invoice",
            )
        if invoice["status"] != "draft":
            raise StripeError(
                400,
                f"You can only add invoice items to draft invoices; invoice {invoice_id} is "
                f"{invoice['status']}.",
                code="invoice_not_editable",
                param="invoice",
            )
        before = copy.deepcopy(invoice)
        item["invoice"] = invoice_id
        invoice["lines"]["data"].append(self._line_for(item))
        _recompute(invoice)
        self._emit("invoiceitem.created", item)
        self._changed("invoices", invoice, before, "invoice.updated")

    def _line_for(self, item: Record) -> Record:
        return {
            "id": self._new_id("il", None),
            "object": "line_item",
            "amount": item["amount"],
            "currency": item["currency"],
            "description": item["description"],
            "quantity": item["quantity"],
            "period": dict(item["period"]),
        }

    # --- writes: invoice status transitions ------------------------------------------

    def _actor(self, action: str) -> Callable[[Request], Response]:
        return lambda request: self._transition(action, request.params["id"])

    def _transition(self, action: str, invoice_id: str) -> Response:
        params = self._call.params
        _check_known(params, ACTION_PARAMS[action])
        invoice = self._get_or_404("invoices", invoice_id)
        out_of_band = _boolean(params.get("paid_out_of_band", "false"), "paid_out_of_band")
        if invoice["status"] not in ACTION_FROM[action]:
            raise _bad_transition(action, invoice)
        before = copy.deepcopy(invoice)
        now = self._now()
        if action == "finalize":
            self._finalize(invoice, now, params)
        elif action == "pay":
            self._pay(invoice, now, out_of_band)
        elif action == "void":
            self._void(invoice, now)
        else:
            invoice["status"] = "uncollectible"
            invoice["status_transitions"]["marked_uncollectible_at"] = now
            self._emit("invoice.marked_uncollectible", invoice)
        self._changed("invoices", invoice, before, "invoice.updated")
        return json_response(self._shown(invoice))

    def _finalize(self, invoice: Record, now: int, params: dict[str, Any]) -> None:
        customer = self._collection("customers").get(invoice["customer"])
        if customer is not None:
            sequence = int(customer.get("next_invoice_sequence") or 1)
            invoice["number"] = f"{customer.get('invoice_prefix')}-{sequence:04d}"
            customer["next_invoice_sequence"] = sequence + 1
            self._store("customers", customer, customer)
        if "auto_advance" in params:
            invoice["auto_advance"] = _boolean(params["auto_advance"], "auto_advance")
        if invoice["collection_method"] == "send_invoice" and invoice.get("due_date") is None:
            invoice["due_date"] = now + 30 * DAY
        invoice["status"] = "open"
        invoice["status_transitions"]["finalized_at"] = now
        if invoice["amount_due"] > 0:
            intent = self._new_payment_intent(invoice, now)
            invoice["payment_intent"] = intent["id"]
        self._emit("invoice.finalized", invoice)
        if invoice["amount_due"] == 0:
            self._mark_paid(invoice, now)

    def _pay(self, invoice: Record, now: int, out_of_band: bool) -> None:
        intent = self._collection("payment_intents").get(str(invoice.get("payment_intent")))
        if out_of_band:
            invoice["paid_out_of_band"] = True
            if intent is not None and intent["status"] != "succeeded":
                self._update_intent(intent, "canceled", None, "payment_intent.canceled")
        elif invoice["amount_remaining"] > 0:
            if intent is None:
                intent = self._new_payment_intent(invoice, now)
                invoice["payment_intent"] = intent["id"]
            charge = self._new_charge(invoice, intent, now)
            invoice["charge"] = charge["id"]
            invoice["attempted"] = True
            invoice["attempt_count"] = int(invoice.get("attempt_count") or 0) + 1
            self._update_intent(intent, "succeeded", charge, "payment_intent.succeeded")
        self._mark_paid(invoice, now)

    def _mark_paid(self, invoice: Record, now: int) -> None:
        invoice["amount_paid"] = invoice["amount_due"]
        invoice["amount_remaining"] = 0
        invoice["paid"] = True
        invoice["status"] = "paid"
        invoice["status_transitions"]["paid_at"] = now
        self._emit("invoice.paid", invoice)
        self._emit("invoice.payment_succeeded", invoice)

    def _void(self, invoice: Record, now: int) -> None:
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = now
        intent = self._collection("payment_intents").get(str(invoice.get("payment_intent")))
        if intent is not None and intent["status"] not in ("succeeded", "canceled"):
            self._update_intent(intent, "canceled", None, "payment_intent.canceled")
        self._emit("invoice.voided", invoice)

    def _new_payment_intent(self, invoice: Record, now: int) -> Record:
        intent: Record = {
            "id": self._new_id("pi", self._collection("payment_intents")),
            "object": "payment_intent",
            "amount": invoice["amount_due"],
            "amount_received": 0,
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "invoice": invoice["id"],
            "status": "requires_payment_method",
            "created": now,
            "latest_charge": None,
            "metadata": {},
            "livemode": False,
            "payment_method_types": ["card"],
        }
        self._store("payment_intents", intent, None)
        self._emit("payment_intent.created", intent)
        return intent

    def _update_intent(self, intent: Record, status: str, charge: Record | None, event: str) -> None:
        before = copy.deepcopy(intent)
        intent["status"] = status
        if charge is not None:
            intent["amount_received"] = charge["amount"]
            intent["latest_charge"] = charge["id"]
        self._store("payment_intents", intent, before)
        self._emit(event, intent)
        if (
            status == "succeeded"
            and intent.get("invoice")
            and stripe_versions.is_current(self.world.setup.stripe_version)
        ):
            self._emit("invoice_payment.paid", self._as_invoice_payment(intent))

    def _new_charge(self, invoice: Record, intent: Record, now: int) -> Record:
        amount = invoice["amount_remaining"]
        charge: Record = {
            "id": self._new_id("ch", self._collection("charges")),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "balance_transaction": self._new_id("txn", None),
            "captured": True,
            "created": now,
            "currency": invoice["currency"],
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
        self._store("charges", charge, None)
        self._emit("charge.succeeded", charge)
        return charge

    # --- write helpers ---------------------------------------------------------------

    def _required_customer(self, params: dict[str, Any]) -> Record:
        if "customer" not in params:
            raise StripeError(
                400, "Missing required param: customer.", code="parameter_missing", param="customer"
            )
        customer_id = _string(params["customer"], "customer")
        customer = self._collection("customers").get(customer_id)
        if customer is None:
            raise _missing("customer", customer_id, param="customer", status=400)
        return customer

    def _changed(self, resource: str, record: Record, before: Record, event_type: str) -> None:
        """Store an in-place update and, when anything changed, emit its `*.updated` event."""
        previous = _previous_attributes(before, record)
        if not previous:
            return
        self._store(resource, record, before)
        self._emit(event_type, record, previous)

    def _store(self, resource: str, record: Record, before: Record | None) -> None:
        """Save a new record (`before` None) or an in-place update, keeping the hash indexes current."""
        collection = self._collection(resource)
        old_version = collection.version
        collection.put(record)
        for (indexed_resource, name), index in self._indexes.items():
            if indexed_resource != resource or index.version != old_version:
                continue
            old_value = before.get(name) if before is not None else None
            new_value = record.get(name)
            if before is None or old_value != new_value:
                if old_value is not None and before is not None:
                    bucket = index.buckets.get(str(old_value), [])
                    if record["id"] in bucket:
                        bucket.remove(record["id"])
                if new_value is not None:
                    index.buckets.setdefault(str(new_value), []).append(record["id"])
            index.version = collection.version

    def _emit(self, event_type: str, obj: Record, previous: Record | None = None) -> Record:
        data: Record = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        event: Record = {
            "id": self._new_id("evt", self._collection("events")),
            "object": "event",
            "api_version": self.world.setup.stripe_version,
            "created": self._now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": self._call.request_id or None, "idempotency_key": self._call.idempotency_key},
            "type": event_type,
        }
        self._store("events", event, None)
        return event

    def _get_or_404(self, resource: str, object_id: str) -> Record:
        record = self._collection(resource).get(object_id)
        if record is None:
            raise _missing(OBJECT_OF[resource], object_id)
        return record

    def _collection(self, resource: str) -> Collection:
        collection = self.world.billing.objects(resource)
        if collection is None:
            raise KeyError(resource)
        return collection

    # --- ids and time ----------------------------------------------------------------

    def _now(self) -> int:
        return max(int(self.world.clock().timestamp()), self._floor)

    def _request_id(self) -> str:
        return "req_" + "".join(self._request_ids.choice(BASE62) for _ in range(14))

    def _new_id(self, prefix: str, collection: Collection | None, short: bool = False) -> str:
        """Stripe-like ids: 14 random characters, or 24 that start with the time and a sequence
        number, so ids made within one second sort in the order they were made."""
        while True:
            if short:
                body = "".join(self._ids.choice(BASE62) for _ in range(14))
            else:
                self._sequence = (self._sequence + 1) % 62**4
                body = (
                    "1"
                    + _base62(self._now(), 6)
                    + _base62(self._sequence, 4)
                    + "".join(self._ids.choice(BASE62) for _ in range(13))
                )
            candidate = f"{prefix}_{body}"
            if collection is None or candidate not in collection:
                return candidate


# --- paging ------------------------------------------------------------------------------


def _created_key(record: Record) -> tuple[int, str]:
    return int(record["created"]), str(record["id"])


def _walk(
    keys: list[Any],
    ids: list[str],
    collection: Collection,
    created: tuple[int | None, int | None],
    cursor: tuple[int, str] | None,
    backward: bool,
    limit: int,
    accept: Callable[[Record], bool] | None,
) -> _Page:
    """One page, newest first, from ascending (created, id) keys.

    Forward pages walk down from the newest key (or from just below `starting_after`);
    `ending_before` pages walk up from just above the cursor and are then reversed.
    """
    start, end = _bounds(keys, created)
    found: list[Record] = []
    if not backward:
        if cursor is not None:
            end = min(end, bisect.bisect_left(keys, cursor))
        positions: range = range(end - 1, start - 1, -1)
    else:
        if cursor is not None:
            start = max(start, bisect.bisect_right(keys, cursor))
        positions = range(start, end)
    for position in positions:
        record = collection.get(ids[position])
        if record is not None and (accept is None or accept(record)):
            found.append(record)
            if len(found) > limit:
                break
    page = found[:limit]
    if backward:
        page.reverse()
    return _Page(page, len(found) > limit)


def _count(
    keys: list[Any],
    ids: list[str],
    collection: Collection,
    created: tuple[int | None, int | None],
    accept: Callable[[Record], bool] | None,
) -> int:
    start, end = _bounds(keys, created)
    if accept is None:
        return max(0, end - start)
    return sum(1 for i in range(start, end) if (r := collection.get(ids[i])) is not None and accept(r))


def _bounds(keys: list[Any], created: tuple[int | None, int | None]) -> tuple[int, int]:
    """Positions [start, end) of keys with low <= created < high."""
    low, high = created
    start = 0 if low is None else bisect.bisect_left(keys, (low,))
    end = len(keys) if high is None else bisect.bisect_left(keys, (high,))
    return start, max(start, end)


def _line_position(lines: list[Record], line_id: Any, param: str) -> int:
    for position, line in enumerate(lines):
        if line.get("id") == line_id:
            return position
    raise _missing("line item", str(line_id), param=param, status=400)


def _trim_lines(invoice: Record) -> Record:
    """Invoices embed at most the first 10 lines; the rest come from /lines."""
    lines = invoice.get("lines")
    if not isinstance(lines, dict) or len(lines.get("data") or []) <= LINES_EMBEDDED:
        return invoice
    trimmed = {**lines, "data": lines["data"][:LINES_EMBEDDED], "has_more": True}
    return {**invoice, "lines": trimmed}


# --- filters -----------------------------------------------------------------------------


def _all_of(checks: list[Callable[[Record], bool]]) -> Callable[[Record], bool] | None:
    if not checks:
        return None
    return lambda record: all(check(record) for check in checks)


def _field_equals(name: str, value: str) -> Callable[[Record], bool]:
    return lambda record: record.get(name) == value


def _field_in_range(name: str, bounds: tuple[int | None, int | None]) -> Callable[[Record], bool]:
    low, high = bounds

    def check(record: Record) -> bool:
        value = record.get(name)
        if not isinstance(value, int):
            return False
        return (low is None or value >= low) and (high is None or value < high)

    return check


def _subscription_status(raw: Any) -> Callable[[Record], bool]:
    """No status lists every subscription but canceled ones; `all` lists every one."""
    if raw is None:
        return lambda record: record.get("status") != "canceled"
    status = _choice(raw, "status", SUBSCRIPTION_STATUSES)
    if status == "all":
        return lambda record: True
    if status == "ended":
        return lambda record: record.get("status") in ("canceled", "incomplete_expired")
    return _field_equals("status", status)


def _has_price(price_id: str) -> Callable[[Record], bool]:
    def check(record: Record) -> bool:
        items = (record.get("items") or {}).get("data") or []
        return any((item.get("price") or {}).get("id") == price_id for item in items)

    return check


def _event_types(raw_type: Any, raw_types: Any) -> Callable[[Record], bool] | None:
    if raw_type is not None and raw_types is not None:
        raise StripeError(400, "You may only specify one of these parameters: type, types.", param="type")
    if raw_types is not None:
        types = [_string(t, "types") for t in _as_list(raw_types)]
        if len(types) > MAX_TYPES:
            raise _invalid(f"You may pass at most {MAX_TYPES} event types in `types`.", "types")
        allowed = set(types)
        return lambda record: record.get("type") in allowed
    if raw_type is None:
        return None
    pattern = re.compile("^" + ".*".join(re.escape(p) for p in _string(raw_type, "type").split("*")) + "$")
    return lambda record: bool(pattern.match(str(record.get("type"))))


# --- parameters --------------------------------------------------------------------------


def _form(request: Request) -> dict[str, list[str]]:
    """The body of a write, which Stripe accepts only form-encoded."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = request.body.strip()
    if content_type and content_type != CONTENT_TYPE_FORM:
        shown = request.headers.get("content-type", "")
        raise StripeError(
            400,
            f"Invalid request: unsupported Content-Type {shown}. If error persists and you need "
            "assistance, please contact support@stripe.com.",
        )
    if not content_type and body[:1] in (b"{", b"["):
        raise StripeError(
            400,
            "Invalid request: unsupported Content-Type (none). Send the parameters form-encoded "
            f"({CONTENT_TYPE_FORM}).",
        )
    try:
        return request.form()
    except UnicodeDecodeError as exc:
        raise StripeError(400, "Invalid request: the body is not valid UTF-8.") from exc


def _nest(raw: dict[str, list[str]]) -> dict[str, Any]:
    """Stripe's bracket keys into nested values: `metadata[k]`, `expand[]`, `types[0]`, `created[gte]`."""
    result: dict[str, Any] = {}
    for key, values in raw.items():
        head, bracket, rest = key.partition("[")
        parts = [head, *re.findall(r"\[([^\[\]]*)\]", bracket + rest)] if bracket else [head]
        for value in values:
            _assign(result, parts, value)
    return {k: v if k == "metadata" else _listify(v) for k, v in result.items()}


def _assign(root: dict[str, Any], parts: list[str], value: str) -> None:
    append = len(parts) > 1 and parts[-1] == ""
    path = parts[:-1] if append else parts
    node = root
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    leaf = path[-1]
    if append:
        existing = node.get(leaf)
        if not isinstance(existing, list):
            existing = node[leaf] = []
        existing.append(value)
    else:
        node[leaf] = value


def _listify(value: Any) -> Any:
    """Dicts keyed 0, 1, ... (how stripe-python sends arrays) become lists."""
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    canonical = json.dumps([method, path, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_known(params: dict[str, Any], known: frozenset[str]) -> None:
    for name in params:
        if name not in known:
            raise _unknown(name)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _invalid(f"Invalid string: {json.dumps(value)}", param)
    return value


def _optional_string(value: Any, param: str) -> str | None:
    """Stripe unsets a nullable string when it is sent empty."""
    if value is None:
        return None
    text = _string(value, param)
    return text or None


INT64 = (-(2**63), 2**63 - 1)
MAX_AMOUNT = 99_999_999  # Stripe's largest charge in a two-decimal currency: $999,999.99


def _integer(value: Any, param: str) -> int:
    """An integer parameter; Stripe parses integers as int64 and refuses anything else."""
    if isinstance(value, int):
        number = value
    elif not isinstance(value, str) or not re.fullmatch(r"-?\d+", value.strip()):
        raise _invalid(f"Invalid integer: {value}", param)
    else:
        number = int(value)
    if not INT64[0] <= number <= INT64[1]:
        raise _invalid(f"Invalid integer: {value}", param)
    return number


def _boolean(value: Any, param: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise _invalid(f"Invalid boolean: {value}", param)


def _choice(value: Any, param: str, allowed: tuple[str, ...]) -> str:
    text = _string(value, param)
    if text not in allowed:
        raise _invalid(f"Invalid {param}: must be one of {', '.join(allowed)}", param)
    return text


def _limit(value: Any) -> int:
    if value is None:
        return 10
    limit = _integer(value, "limit")
    if limit < 1:
        raise _invalid("This value must be greater than or equal to 1.", "limit")
    if limit > 100:
        raise _invalid("This value must be less than or equal to 100.", "limit")
    return limit


def _range(value: Any, param: str) -> tuple[int | None, int | None]:
    """`x=5` or `x[gt|gte|lt|lte]=5` as [low, high) bounds on unix seconds."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        exact = _integer(value, param)
        return exact, exact + 1
    low: int | None = None
    high: int | None = None
    for op, raw in value.items():
        bound = _integer(raw, f"{param}[{op}]")
        if op in ("gt", "gte"):
            candidate = bound + 1 if op == "gt" else bound
            low = candidate if low is None else max(low, candidate)
        elif op in ("lt", "lte"):
            candidate = bound if op == "lt" else bound + 1
            high = candidate if high is None else min(high, candidate)
        else:
            raise _unknown(f"{param}[{op}]")
    return low, high


def _expand_paths(value: Any, listing: bool) -> list[str]:
    """Top-level fields to expand (`data.customer` on lists, `customer` on objects)."""
    names = []
    for path in _as_list(value):
        if not isinstance(path, str):
            continue
        if listing and path.startswith("data."):
            path = path[len("data.") :]
        if "." not in path:
            names.append(path)
    return names


def _customer_changes(params: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in CUSTOMER_FIELDS:
        if name in params:
            changes[name] = _optional_string(params[name], name)
    email = changes.get("email")
    if email is not None and ("@" not in email or len(email) > 512):
        raise StripeError(400, f"Invalid email address: {email}", code="email_invalid", param="email")
    return changes


def _merge_metadata(current: dict[str, Any], raw: Any) -> dict[str, Any]:
    """Apply `metadata[k]=v` (an empty value deletes k; `metadata=` clears all)."""
    if raw is None:
        return dict(current)
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise _invalid("Invalid hash", "metadata")
    merged = dict(current)
    for key, value in raw.items():
        param = f"metadata[{key}]"
        if not isinstance(value, str):
            raise _invalid("Invalid string: metadata values must be strings", param)
        if len(key) > 40 or len(value) > 500:
            raise _invalid("Metadata keys are at most 40 characters and values at most 500.", param)
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 50:
        raise _invalid("You can have at most 50 metadata keys.", "metadata")
    return merged


def _previous_attributes(before: Record, after: Record) -> Record:
    """Old values of what changed; for objects such as metadata, only their changed keys."""
    previous: Record = {}
    for key in list(after) + [k for k in before if k not in after]:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and key != "lines":
            names = list(new) + [k for k in old if k not in new]
            previous[key] = {k: old.get(k) for k in names if old.get(k) != new.get(k)}
        else:
            previous[key] = old
    return previous


def _due_date(params: dict[str, Any], method: str, now: int) -> int | None:
    if "due_date" in params:
        return _integer(params["due_date"], "due_date")
    if "days_until_due" in params:
        return now + _integer(params["days_until_due"], "days_until_due") * DAY
    if method == "send_invoice":
        raise StripeError(
            400,
            "Invoices with collection_method=send_invoice must have days_until_due or due_date.",
            code="parameter_missing",
            param="days_until_due",
        )
    return None


def _currency(value: Any) -> str:
    currency = _string(value, "currency").lower()
    if currency != "usd":
        raise _invalid(
            "You cannot combine currencies on a single customer. This customer has an active "
            "subscription, invoice or invoice item with currency usd.",
            "currency",
        )
    return currency


def _item_amount(params: dict[str, Any], quantity: int) -> int:
    if "amount" in params:
        amount, param = _integer(params["amount"], "amount"), "amount"
    elif "unit_amount" in params:
        amount, param = _integer(params["unit_amount"], "unit_amount") * quantity, "unit_amount"
    else:
        raise StripeError(400, "Missing required param: amount.", code="parameter_missing", param="amount")
    if abs(amount) > MAX_AMOUNT:
        raise StripeError(
            400, "Amount must be no more than $999,999.99", code="amount_too_large", param=param
        )
    return amount


def _recompute(invoice: Record) -> None:
    lines = invoice["lines"]
    total = sum(int(line.get("amount") or 0) for line in lines["data"])
    invoice["subtotal"] = total
    invoice["total"] = total
    invoice["amount_due"] = total
    invoice["amount_remaining"] = total - int(invoice.get("amount_paid") or 0)
    lines["total_count"] = len(lines["data"])


def _bad_transition(action: str, invoice: Record) -> StripeError:
    status = invoice["status"]
    allowed = " or ".join(ACTION_FROM[action])
    verb = {
        "finalize": "finalized",
        "pay": "paid",
        "void": "voided",
        "mark_uncollectible": "marked uncollectible",
    }[action]
    return StripeError(
        400,
        f"Invoice {invoice['id']} is {status}; only {allowed} invoices can be {verb}.",
        code="invoice_unexpected_state" if action != "finalize" else "invoice_not_editable",
        stored=True,
    )


def _internal_error() -> StripeError:
    return StripeError(
        500,
        "An unknown error occurred. If the problem persists, contact support@stripe.com.",
        type_="api_error",
        stored=True,
    )


# --- auth and ids ------------------------------------------------------------------------


def _api_key(header: str) -> str | None:
    """The key from `Bearer <key>`, or from HTTP Basic with the key as user name."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def _mask(key: str) -> str:
    """Show a key as Stripe does in errors: its prefix and at most its last four characters."""
    match = KEY_PREFIX.match(key)
    prefix, secret = (match.group(1), match.group(2)) if match else ("", key)
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"{prefix}{'*' * max(4, len(secret) - len(tail))}{tail}"


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(BASE62[remainder])
    return "".join(reversed(digits))


def _older(record: Record) -> Record | None:
    """The object as it was before its latest status transition, or None when it has none
    (Stripe objects carry no other stamp an older copy could show)."""
    transitions = record.get("status_transitions")
    if not isinstance(transitions, dict):
        return None
    stamped = {k: v for k, v in transitions.items() if isinstance(v, int)}
    if not stamped:
        return None
    latest = max(stamped, key=lambda k: stamped[k])
    earlier = {**transitions, latest: None}
    status = "draft" if latest == "finalized_at" else "open"
    older = {**record, "status_transitions": earlier, "status": status}
    if record.get("object") == "invoice" and latest == "paid_at":
        older.update(paid=False, amount_paid=0, amount_remaining=record.get("amount_due"))
    return older


def _with_older_copies(data: list[Record], previous: Record | None) -> list[Record]:
    """A `duplicate` fault: the page starts with an older copy of the previous page's last
    record and of its own first record, where they have an older version (its last record
    stays last: clients page on from it)."""
    copies = [_older(r) for r in (previous, data[0] if data else None) if r is not None]
    return [*(c for c in copies if c is not None), *data]
