"""Google Ads REST imitation: GAQL `search` and `searchStream` over campaign and customer rows."""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sandbox.config import RateLimitConfig, SandboxConfig
from sandbox.faults import Faults, apply_drift
from sandbox.http import Request, Response, Router, json_response
from sandbox.ratelimit import Limits
from sandbox.store import Record, World

PAGE_ROWS = 10_000  # fixed page and stream-batch size of the real API
DEFAULT_VERSION = "21"

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
}

# GAQL field -> type; int64 renders as a JSON string, double as a number.
FIELDS: dict[str, str] = {
    "customer.id": "int64",
    "customer.resource_name": "string",
    "customer.descriptive_name": "string",
    "customer.currency_code": "string",
    "customer.time_zone": "string",
    "campaign.id": "int64",
    "campaign.resource_name": "string",
    "campaign.name": "string",
    "campaign.status": "enum",
    "campaign.advertising_channel_type": "enum",
    "segments.date": "date",
    "metrics.impressions": "int64",
    "metrics.clicks": "int64",
    "metrics.cost_micros": "int64",
    "metrics.conversions": "double",
    "metrics.conversions_value": "double",
    "metrics.ctr": "double",
    "metrics.average_cpc": "double",
}
# FROM resource -> the resources whose fields it may select
COMPATIBLE = {
    "customer": ("customer", "segments", "metrics"),
    "campaign": ("campaign", "customer", "segments", "metrics"),
}
SUMMED = ("impressions", "clicks", "cost_micros", "conversions", "conversions_value")


class AdsError(Exception):
    """An error answered in Google's `{"error": {code, message, status, details}}` shape."""

    def __init__(self, status: int, kind: str = "", code: str = "", message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind  # e.g. "queryError"
        self.code = code  # e.g. "UNRECOGNIZED_FIELD"
        self.message = message


def query_error(code: str, message: str) -> AdsError:
    return AdsError(400, "queryError", code, message)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def camel_path(path: str) -> str:
    return ".".join(camel(part) for part in path.split("."))


# -- GAQL parsing ------------------------------------------------------------------------

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<op>>=|<=|!=|=|<|>|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)


@dataclass
class Condition:
    field: str
    op: str  # = != > >= < <= IN NOT IN BETWEEN DURING LIKE NOT LIKE
    values: list[Any]


@dataclass
class Query:
    select: list[str]
    resource: str
    where: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None


class Tokens:
    """A cursor over GAQL tokens; keywords compare case-insensitively."""

    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str]] = []
        position = 0
        text = text.strip()
        while position < len(text):
            found = TOKEN.match(text, position)
            if found is None or found.end() == position:
                rest = text[position:][:20]
                raise query_error("UNEXPECTED_INPUT", f"Error in query: unexpected input {rest}.")
            kind = found.lastgroup or "word"
            self.items.append((kind, found.group(kind)))
            position = found.end()
        self.index = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        at = self.index + offset
        return self.items[at] if at < len(self.items) else None

    def keyword(self, *words: str) -> bool:
        """Consume the keywords if the next tokens are exactly them."""
        for offset, word in enumerate(words):
            token = self.peek(offset)
            if token is None or token[0] != "word" or token[1].upper() != word:
                return False
        self.index += len(words)
        return True

    def expect_keyword(self, word: str, code: str) -> None:
        if not self.keyword(word):
            raise query_error(code, f"Error in query: expected {word}.")

    def take(self, kind: str | None = None) -> str:
        token = self.peek()
        if token is None:
            raise query_error("UNEXPECTED_END_OF_QUERY", "Error in query: unexpected end of query.")
        if kind is not None and token[0] != kind:
            raise query_error("UNEXPECTED_INPUT", f"Error in query: unexpected input {token[1]}.")
        self.index += 1
        return token[1]

    def take_op(self, op: str) -> bool:
        token = self.peek()
        if token == ("op", op):
            self.index += 1
            return True
        return False


def parse_gaql(text: str) -> Query:
    tokens = Tokens(text)
    tokens.expect_keyword("SELECT", "EXPECTED_SELECT")
    select = [tokens.take("word").lower()]
    while tokens.take_op(","):
        select.append(tokens.take("word").lower())
    tokens.expect_keyword("FROM", "EXPECTED_FROM")
    query = Query(select=select, resource=tokens.take("word").lower())
    if tokens.keyword("WHERE"):
        query.where.append(parse_condition(tokens))
        while tokens.keyword("AND"):
            query.where.append(parse_condition(tokens))
    if tokens.keyword("ORDER", "BY"):
        query.order_by.append(parse_ordering(tokens))
        while tokens.take_op(","):
            query.order_by.append(parse_ordering(tokens))
    if tokens.keyword("LIMIT"):
        raw = tokens.take("num")
        if not raw.isdigit() or int(raw) < 1:
            raise query_error("LIMIT_VALUE_TOO_LOW", "Error in query: LIMIT must be a positive integer.")
        query.limit = int(raw)
    if tokens.keyword("PARAMETERS"):
        tokens.index = len(tokens.items)  # accepted and ignored (e.g. include_drafts=true)
    if tokens.peek() is not None:
        raise query_error("UNEXPECTED_INPUT", f"Error in query: unexpected input {tokens.take()}.")
    return query


def parse_ordering(tokens: Tokens) -> tuple[str, bool]:
    name = tokens.take("word").lower()
    if tokens.keyword("DESC"):
        return name, True
    tokens.keyword("ASC")
    return name, False


def parse_value(tokens: Tokens) -> Any:
    token = tokens.peek()
    if token is None:
        raise query_error("UNEXPECTED_END_OF_QUERY", "Error in query: unexpected end of query.")
    tokens.index += 1
    kind, raw = token
    if kind == "str":
        return raw[1:-1].replace("\\'", "'").replace('\\"', '"')
    if kind in ("num", "word"):
        return raw
    raise query_error("UNEXPECTED_INPUT", f"Error in query: unexpected input {raw}.")


def parse_list(tokens: Tokens) -> list[Any]:
    if not tokens.take_op("("):
        raise query_error("EXPECTED_LIST", "Error in query: expected a list of values.")
    values = [parse_value(tokens)]
    while tokens.take_op(","):
        values.append(parse_value(tokens))
    if not tokens.take_op(")"):
        raise query_error("EXPECTED_LIST", "Error in query: expected ')'.")
    return values


def parse_condition(tokens: Tokens) -> Condition:
    name = tokens.take("word").lower()
    for op in ("=", "!=", ">=", "<=", ">", "<"):
        if tokens.take_op(op):
            return Condition(name, op, [parse_value(tokens)])
    if tokens.keyword("BETWEEN"):
        low = parse_value(tokens)
        tokens.expect_keyword("AND", "EXPECTED_AND")
        return Condition(name, "BETWEEN", [low, parse_value(tokens)])
    for words in (("NOT", "IN"), ("IN",), ("NOT", "LIKE"), ("LIKE",), ("DURING",)):
        if tokens.keyword(*words):
            op = " ".join(words)
            values = parse_list(tokens) if op.endswith("IN") else [parse_value(tokens)]
            return Condition(name, op, values)
    raise query_error("BAD_OPERATOR", f"Error in query: invalid operator after {name}.")


# -- evaluation --------------------------------------------------------------------------


def check_query(query: Query) -> None:
    allowed = COMPATIBLE.get(query.resource)
    if allowed is None:
        raise query_error(
            "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"Error in query: unsupported resource {query.resource}."
        )
    named = [*query.select, *(c.field for c in query.where), *(f for f, _ in query.order_by)]
    for name in named:
        if name not in FIELDS:
            raise query_error("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{name}'.")
        if name.split(".")[0] not in allowed:
            raise query_error(
                "PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE",
                f"Cannot select or filter on '{name}' in a query FROM {query.resource}.",
            )
    if "segments.date" in query.select and not date_bounded(query.where):
        raise query_error(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "Filters on the date segment must restrict it to a finite range when segments.date is selected.",
        )


def date_bounded(conditions: list[Condition]) -> bool:
    ops = {c.op for c in conditions if c.field == "segments.date"}
    if ops & {"BETWEEN", "DURING", "=", "IN"}:
        return True
    return bool(ops & {">", ">="}) and bool(ops & {"<", "<="})


def typed(name: str, value: Any) -> Any:
    """A query literal as the comparable Python value of the field's type."""
    kind = FIELDS[name]
    try:
        if kind == "int64":
            return int(value)
        if kind == "double":
            return float(value)
    except ValueError:
        raise query_error("BAD_VALUE", f"Error in query: bad value {value!r} for {name}.") from None
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise query_error("BAD_VALUE", f"Error in query: invalid date {value!r}.") from None
    return str(value)


def during_range(literal: str, today: date) -> tuple[str, str]:
    """The [first, last] dates of a GAQL date-range constant, relative to the account's today."""
    name = str(literal).upper()
    days = re.fullmatch(r"LAST_(\d+)_DAYS", name)
    if days and int(days.group(1)) in (7, 14, 30, 60, 90):
        first = today - timedelta(days=int(days.group(1)))
        return first.isoformat(), (today - timedelta(days=1)).isoformat()
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - timedelta(days=1)
    ranges = {
        "TODAY": (today, today),
        "YESTERDAY": (today - timedelta(days=1), today - timedelta(days=1)),
        "THIS_MONTH": (first_of_month, today),
        "LAST_MONTH": (last_month_end.replace(day=1), last_month_end),
    }
    if name not in ranges:
        message = f"Error in query: invalid DURING value {literal}."
        raise query_error("INVALID_VALUE_WITH_DURING_OPERATOR", message)
    return ranges[name][0].isoformat(), ranges[name][1].isoformat()


def compile_condition(condition: Condition, today: date) -> Callable[[dict[str, Any]], bool]:
    name, op = condition.field, condition.op
    if op == "DURING":
        if name != "segments.date":
            message = "Error in query: DURING applies to segments.date only."
            raise query_error("OPERATOR_FIELD_MISMATCH", message)
        low, high = during_range(condition.values[0], today)
        return lambda row: low <= row[name] <= high
    values = [typed(name, v) for v in condition.values]
    if op == "BETWEEN":
        return lambda row: values[0] <= row[name] <= values[1]
    if op in ("IN", "NOT IN"):
        chosen = set(values)
        return (lambda row: row[name] in chosen) if op == "IN" else (lambda row: row[name] not in chosen)
    if op in ("LIKE", "NOT LIKE"):
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in str(values[0]).split("%")) + "$", re.S)
        if op == "LIKE":
            return lambda row: bool(pattern.match(str(row[name])))
        return lambda row: not pattern.match(str(row[name]))
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    test = compare[op]
    return lambda row: test(row[name], values[0])


def render_value(name: str, value: Any) -> Any:
    kind = FIELDS[name]
    if kind == "int64":
        return str(int(value))
    if kind == "double":
        return float(value)
    return value


def render_row(query: Query, row: dict[str, Any]) -> dict[str, Any]:
    """A flat row as the REST `GoogleAdsRow`: nested camelCase objects with resourceNames."""
    rendered: dict[str, Any] = {}
    resources = [query.resource] + [n.split(".")[0] for n in query.select]
    for resource in resources:
        if resource in ("customer", "campaign") and resource not in rendered:
            rendered[resource] = {"resourceName": row[f"{resource}.resource_name"]}
    for name in query.select:
        resource, attribute = name.split(".")
        rendered.setdefault(resource, {})[camel(attribute)] = render_value(name, row[name])
    return rendered


def with_derived(row: dict[str, Any]) -> dict[str, Any]:
    impressions, clicks = row["metrics.impressions"], row["metrics.clicks"]
    row["metrics.ctr"] = clicks / impressions if impressions else 0.0
    row["metrics.average_cpc"] = row["metrics.cost_micros"] / clicks if clicks else 0.0
    return row


# -- the app -----------------------------------------------------------------------------


class GoogleAdsApp:
    """Serves `world.ads` Google rows as the Google Ads REST API under /google-ads."""

    system = "ads"
    prefix = "google-ads"

    def __init__(self, world: World, config: SandboxConfig, faults: Faults) -> None:
        self.world = world
        self.config = config
        self.faults = faults
        self.limits = Limits()
        self.set_limits(config.limits)
        self._ids = itertools.count(1)
        self.router = Router()
        base = r"/v(?P<version>\d+)/customers"
        self.router.add("POST", base + "/{cid}/googleAds:searchStream", self.search_stream)
        self.router.add("POST", base + "/{cid}/googleAds:search", self.search)
        self.router.add("GET", base + ":listAccessibleCustomers", self.list_accessible)

    # -- the App protocol --------------------------------------------------------------

    def set_limits(self, limits: RateLimitConfig) -> None:
        per_window = limits.google_ads_per_min
        window = limits.google_ads_window_s
        self.limits = Limits({"google-ads": (per_window, window)} if per_window else {})

    def error(self, status: int, message: str, code: int | None = None) -> Response:
        return self._error(AdsError(status, message=message), DEFAULT_VERSION)

    def handle(self, request: Request) -> Response:
        found = re.match(r"/v(\d+)/", request.path)
        version = found.group(1) if found else DEFAULT_VERSION
        if not self._authenticated(request):
            message = (
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project."
            )
            return self._error(AdsError(401, message=message), version)
        decision = self.limits.hit("google-ads")
        if decision is not None and not decision.allowed:
            return self._quota_error(math.ceil(decision.reset_seconds), version)
        handler = self.router.match(request)
        if handler is None:
            return self._error(AdsError(404, message="Requested entity was not found."), version)
        try:
            return handler(request)
        except AdsError as exc:
            return self._error(exc, version)

    def _authenticated(self, request: Request) -> bool:
        token_ok = request.bearer() == self.config.tokens.get("google-ads")
        return token_ok and bool(request.headers.get("developer-token", "").strip())

    def _request_id(self) -> str:
        digest = hashlib.sha1(f"google-ads-{next(self._ids)}".encode()).digest()
        return base64.urlsafe_b64encode(digest).decode()[:22]

    def _error(self, exc: AdsError, version: str) -> Response:
        # with a GoogleAdsFailure detail the top-level message is the generic one for the status
        generic = MESSAGES.get(exc.status, exc.message)
        body: dict[str, Any] = {
            "code": exc.status,
            "message": generic if exc.kind else exc.message or generic,
            "status": STATUS_NAMES.get(exc.status, "UNKNOWN"),
        }
        if exc.kind:
            failure = {"errorCode": {exc.kind: exc.code}, "message": exc.message}
            body["details"] = [
                {
                    "@type": f"type.googleapis.com/google.ads.googleads.v{version}.errors.GoogleAdsFailure",
                    "errors": [failure],
                    "requestId": self._request_id(),
                }
            ]
        return json_response({"error": body}, exc.status)

    def _quota_error(self, seconds: int, version: str) -> Response:
        seconds = max(1, seconds)
        failure = {
            "errorCode": {"quotaError": "RESOURCE_EXHAUSTED"},
            "message": f"Too many requests. Retry in {seconds} seconds.",
            "details": {
                "quotaErrorDetails": {
                    "rateScope": "DEVELOPER",
                    "rateName": "Number of operations for basic access",
                    "retryDelay": f"{seconds}s",
                }
            },
        }
        body = {
            "code": 429,
            "message": MESSAGES[429],
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": f"type.googleapis.com/google.ads.googleads.v{version}.errors.GoogleAdsFailure",
                    "errors": [failure],
                    "requestId": self._request_id(),
                }
            ],
        }
        return json_response({"error": body}, 429)

    # -- endpoints -----------------------------------------------------------------------

    def list_accessible(self, request: Request) -> Response:
        names = [f"customers/{c['id']}" for c in self.world.ads.google_customers]
        if self.config.account.duplicate_accounts:
            names = [*names, *names]  # discovery that lists an account twice
        return json_response({"resourceNames": names})

    def search_stream(self, request: Request) -> Response:
        query, rows = self._run(request)
        mask = ",".join(camel_path(f) for f in query.select)
        batches: list[dict[str, Any]] = []
        request_id = self._request_id()
        for start in range(0, len(rows), PAGE_ROWS):
            batch = {"results": rows[start : start + PAGE_ROWS], "fieldMask": mask, "requestId": request_id}
            batches.append(batch)
        if not batches:  # an empty result is one batch without `results` (proto3 omits empty lists)
            batches.append({"fieldMask": mask, "requestId": request_id})
        return json_response(batches)

    def search(self, request: Request) -> Response:
        query, rows = self._run(request)
        body = request.json()
        fingerprint = hashlib.sha1(f"{request.params['cid']}|{body['query']}".encode()).hexdigest()[:16]
        offset = self._page_offset(body.get("pageToken"), fingerprint)
        page: dict[str, Any] = {}
        if rows[offset : offset + PAGE_ROWS]:
            page["results"] = rows[offset : offset + PAGE_ROWS]
        if offset + PAGE_ROWS < len(rows):
            raw = json.dumps({"o": offset + PAGE_ROWS, "q": fingerprint}).encode()
            page["nextPageToken"] = base64.urlsafe_b64encode(raw).decode()
        if body.get("returnTotalResultsCount"):
            page["totalResultsCount"] = str(len(rows))
        page["fieldMask"] = ",".join(camel_path(f) for f in query.select)
        page["requestId"] = self._request_id()
        return json_response(page)

    @staticmethod
    def _page_offset(token: Any, fingerprint: str) -> int:
        if not token:
            return 0
        try:
            cursor = json.loads(base64.urlsafe_b64decode(str(token)))
            if cursor["q"] == fingerprint and isinstance(cursor["o"], int) and cursor["o"] >= 0:
                return int(cursor["o"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            pass
        raise AdsError(400, "requestError", "INVALID_PAGE_TOKEN", "Page token is invalid.")

    def _run(self, request: Request) -> tuple[Query, list[dict[str, Any]]]:
        """Parse the body and query, check the customer, and return the rendered rows."""
        try:
            body = request.json()
        except ValueError:
            raise AdsError(400, "requestError", "INVALID_INPUT", "Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise AdsError(400, "requestError", "INVALID_INPUT", "Invalid JSON payload received.")
        if "pageSize" in body or "page_size" in body:
            message = (
                "Setting the page size is not supported. "
                "Search Responses will have fixed page size of 10000 rows."
            )
            raise AdsError(400, "requestError", "PAGE_SIZE_NOT_SUPPORTED", message)
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise AdsError(400, "requestError", "REQUIRED_FIELD_MISSING", "The query is required.")
        customer = self._customer(request.params["cid"])
        query = parse_gaql(text)
        check_query(query)
        resource = _resource_of(query)
        account = self.config.account
        if account.is_forbidden(self.system, resource) or account.is_unused(self.system, resource):
            message = "The caller does not have permission"
            raise AdsError(403, "authorizationError", "CUSTOMER_NOT_ENABLED", message)
        rows = [] if account.is_empty(self.system, resource) else self.execute(query, customer)
        drift = self.faults.drift_for(self.system, f"google_{query.resource}")
        rendered = []
        for row in rows:
            out = render_row(query, row)
            if drift is not None:
                key = "/".join(str(row.get(k, "")) for k in ("customer.id", "campaign.id", "segments.date"))
                out = apply_drift(out, drift, key)
            rendered.append(out)
        return query, rendered

    def _customer(self, cid: str) -> Record:
        if not cid.isdigit():
            raise AdsError(400, "requestError", "INVALID_CUSTOMER_ID", f"Invalid customer ID '{cid}'.")
        for customer in self.world.ads.google_customers:
            if str(customer["id"]) == cid:
                return customer
        message = (
            "User doesn't have permission to access customer. Note: If you're accessing a client customer, "
            "the manager's customer id must be set in the 'login-customer-id' header."
        )
        raise AdsError(403, "authorizationError", "USER_PERMISSION_DENIED", message)

    # -- query execution -----------------------------------------------------------------

    def execute(self, query: Query, customer: Record) -> list[dict[str, Any]]:
        """Flat rows (GAQL field -> value) for a checked query against one customer."""
        today = self._today(customer)
        date_tests = [compile_condition(c, today) for c in query.where if c.field == "segments.date"]
        other_tests = [compile_condition(c, today) for c in query.where if c.field != "segments.date"]
        named = {*query.select, *(c.field for c in query.where), *(f for f, _ in query.order_by)}
        # a date filter alone sums over its window; selecting (or ordering by) the date segments rows
        by_date = "segments.date" in query.select or any(f == "segments.date" for f, _ in query.order_by)
        with_metrics = any(n.startswith("metrics.") for n in named)
        entities = self._entities(query.resource, customer)
        if with_metrics or by_date:
            rows = self._aggregate(query.resource, customer, entities, by_date, date_tests)
        else:
            rows = list(entities.values())
        rows = [r for r in rows if all(test(r) for test in other_tests)]
        rows.sort(key=lambda r: (r.get("segments.date", ""), int(r.get("campaign.id", 0))))
        for name, descending in reversed(query.order_by):
            rows.sort(key=operator.itemgetter(name), reverse=descending)
        return rows[: query.limit] if query.limit is not None else rows

    def _today(self, customer: Record) -> date:
        return self.world.local_today(customer.get("timeZone"))

    def _entities(self, resource: str, customer: Record) -> dict[str, dict[str, Any]]:
        """Attribute rows keyed by campaign id (FROM campaign) or customer id (FROM customer)."""
        cid = str(customer["id"])
        base = {
            "customer.id": int(cid),
            "customer.resource_name": f"customers/{cid}",
            "customer.descriptive_name": customer.get("descriptiveName", ""),
            "customer.currency_code": customer.get("currencyCode", ""),
            "customer.time_zone": customer.get("timeZone", ""),
        }
        if resource == "customer":
            return {cid: base}
        entities = {}
        for campaign in self.world.ads.google_campaigns:
            if str(campaign["customer_id"]) != cid:
                continue
            entities[str(campaign["id"])] = {
                **base,
                "campaign.id": int(campaign["id"]),
                "campaign.resource_name": f"customers/{cid}/campaigns/{campaign['id']}",
                "campaign.name": campaign.get("name", ""),
                "campaign.status": campaign.get("status", ""),
                "campaign.advertising_channel_type": campaign.get("advertisingChannelType", ""),
            }
        return entities

    def _aggregate(
        self,
        resource: str,
        customer: Record,
        entities: dict[str, dict[str, Any]],
        by_date: bool,
        date_tests: Iterable[Callable[[dict[str, Any]], bool]],
    ) -> list[dict[str, Any]]:
        """Sum the daily rows per entity (and per date when segmented) within the date filters."""
        tests = list(date_tests)
        cid = str(customer["id"])
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for stored in self.world.ads.google_rows:
            if str(stored["customer_id"]) != cid:
                continue
            day = {"segments.date": stored["date"]}
            if not all(test(day) for test in tests):
                continue
            entity_id = cid if resource == "customer" else str(stored["campaign_id"])
            entity = entities.get(entity_id)
            if entity is None:
                continue
            key = (entity_id, stored["date"] if by_date else "")
            group = groups.get(key)
            if group is None:
                group = {**entity, **{f"metrics.{m}": 0 for m in SUMMED}}
                if by_date:
                    group["segments.date"] = stored["date"]
                groups[key] = group
            for metric in SUMMED:
                group[f"metrics.{metric}"] += stored.get(metric) or 0
        return [with_derived(g) for g in groups.values()]


def _resource_of(query: Query) -> str:
    """The trueup resource a query reads: customers, campaigns, or campaign metrics."""
    if query.resource == "customer":
        return "google_customers"
    if any(name.startswith(("metrics.", "segments.")) for name in query.select):
        return "google_campaign_metrics"
    return "google_campaigns"
