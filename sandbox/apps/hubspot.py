"""HubSpot CRM v3 imitation: objects, search, batch writes, owners, pipelines and v4 associations."""

from __future__ import annotations

import bisect
import hmac
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sandbox import crm_schema
from sandbox.config import RateLimitConfig, SandboxConfig
from sandbox.faults import FUTURE_SHIFT, OLDER_SHIFT, Faults, apply_drift, shift_iso
from sandbox.http import Request, Response, Router, json_response
from sandbox.ratelimit import Decision, Limits
from sandbox.store import Collection, Record, World

OBJECT_TYPES = ("contacts", "companies", "deals", "meetings")
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "meetings": "meeting"}
# HubSpot accepts plural and singular names and the numeric object type ids.
TYPE_ALIASES = {
    **{t: t for t in OBJECT_TYPES},
    **{s: t for t, s in SINGULAR.items()},
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-47": "meetings",
}

# The property sets dlt's HubSpot source requests by default (and the meeting equivalent).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "meetings": (
        "hs_meeting_title",
        "hs_meeting_start_time",
        "hs_createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
}
MODIFIED_PROPERTY = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "meetings": "hs_lastmodifieddate",
}
CREATED_PROPERTY = {
    "contacts": "createdate",
    "companies": "createdate",
    "deals": "createdate",
    "meetings": "hs_createdate",
}
READ_ONLY_PROPERTIES = frozenset(
    {"hs_object_id", "createdate", "hs_createdate", "lastmodifieddate", "hs_lastmodifieddate"}
)
ENUM_OPTIONS: dict[str, tuple[str, ...]] = {
    "lifecyclestage": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ),
    "hs_analytics_source": (
        "ORGANIC_SEARCH",
        "PAID_SEARCH",
        "EMAIL_MARKETING",
        "SOCIAL_MEDIA",
        "REFERRALS",
        "OTHER_CAMPAIGNS",
        "DIRECT_TRAFFIC",
        "OFFLINE",
        "PAID_SOCIAL",
        "AI_REFERRALS",
    ),
    "hs_meeting_outcome": ("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
}
DATE_PROPERTIES = frozenset(
    {
        "createdate",
        "lastmodifieddate",
        "hs_lastmodifieddate",
        "hs_createdate",
        "closedate",
        "hs_meeting_start_time",
        "hs_meeting_end_time",
        "hs_timestamp",
    }
)
NUMERIC_PROPERTIES = frozenset({"amount", "hs_object_id"})
# Properties an `idProperty` may name (unique-value properties).
UNIQUE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("hs_object_id", "email"),
    "companies": ("hs_object_id",),
    "deals": ("hs_object_id",),
    "meetings": ("hs_object_id",),
}
# Free-text `query` of search looks in these properties.
SEARCHABLE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "companies": ("name", "domain", "phone"),
    "deals": ("dealname",),
    "meetings": ("hs_meeting_title",),
}
# HUBSPOT_DEFINED unlabeled association type ids, by (from, to).
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("contacts", "meetings"): 200,
    ("meetings", "contacts"): 199,
    ("deals", "meetings"): 212,
    ("meetings", "deals"): 211,
    ("companies", "meetings"): 188,
    ("meetings", "companies"): 187,
}
# Type ids accepted on create: the unlabeled ones plus the "primary" labels.
ASSOCIATION_TARGETS: dict[tuple[str, int], str] = {
    **{(src, type_id): dst for (src, dst), type_id in ASSOCIATION_TYPE_IDS.items()},
    ("contacts", 1): "companies",
    ("companies", 2): "contacts",
    ("deals", 5): "companies",
    ("companies", 6): "deals",
}
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
RANGE_OPERATORS = frozenset({"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"})
VALUE_OPERATORS = frozenset({"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"})

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
# Rate-limit header values when the sandbox runs without limits: large, so no client slows down.
GENEROUS_PER_10S = 100_000
GENEROUS_DAILY = 100_000_000
RETRY_AFTER_LOCKED = 2
RETRY_AFTER_MIGRATION = 5
CATEGORY_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "VALIDATION_ERROR",
    409: "CONFLICT",
    423: "LOCKED",
    477: "MIGRATION_IN_PROGRESS",
}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
# Sort keys of the range views: (epoch ms, id); records without a value sort after everything.
_MISSING = 2**62
_BIG = 2**63
_SEARCH_PATH = re.compile(r"^/crm/v3/objects/[^/]+/search$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TOKEN_SPLIT = re.compile(r"[^0-9a-z]+")


class Problem(Exception):
    """An error response in HubSpot's body shape, raised from inside a handler."""

    def __init__(self, status: int, message: str, category: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category or CATEGORY_BY_STATUS.get(status, "VALIDATION_ERROR")
        self.extra = extra


@dataclass
class Filter:
    property: str
    operator: str
    value: Any = None
    values: tuple[Any, ...] = ()
    high: Any = None


# ---------------------------------------------------------------------------------------------
# time and value conversions


def _ms_of(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // ONE_MS


def iso_from_ms(ms: int) -> str:
    """ISO-8601 UTC with milliseconds, HubSpot's timestamp format."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds of a stored or filter date value (ISO string or ms digits); None if not a date."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _ms_of(moment)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _csv(values: Iterable[str]) -> list[str]:
    """Comma lists from repeated or comma-joined parameters, de-duplicated, in order."""
    seen: dict[str, None] = {}
    for value in values:
        for part in str(value).split(","):
            if part.strip():
                seen.setdefault(part.strip(), None)
    return list(seen)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _id_key(record: Record) -> int:
    return int(record["id"])


def _archived_first_key(record: Record) -> int:
    return int(record["id"]) if record.get("archived") else -1


def _correlation_id() -> str:
    return str(uuid.uuid4())


def _standard_error(
    message: str, category: str, context: dict[str, list[str]], errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One entry of a batch response's `errors[]` (HubSpot's StandardError)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": errors or [],
        "links": {},
    }


def _limit(value: Any, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise Problem(400, f"Invalid limit {value!r}: must be an integer") from None
    if limit < 1:
        raise Problem(400, f"limit must be greater than or equal to 1, got {limit}")
    if limit > maximum:
        raise Problem(400, f"limit must be less than or equal to {maximum}, got {limit}")
    return limit


def _offset(value: Any) -> int:
    if value is None or value == "":
        return 0
    text = str(value).strip()
    if not text.isdigit():
        raise Problem(400, f"Invalid paging cursor after={value!r}")
    return int(text)


# ---------------------------------------------------------------------------------------------
# search filters and sorts


def _parse_filter(raw: Any) -> Filter:
    if not isinstance(raw, dict) or not isinstance(raw.get("propertyName"), str):
        raise Problem(400, "Each filter needs a propertyName and an operator")
    operator = str(raw.get("operator") or "EQ").upper()
    if operator not in OPERATORS:
        raise Problem(400, f"Unsupported filter operator {operator!r}")
    values = raw.get("values")
    parsed = Filter(raw["propertyName"], operator, raw.get("value"), tuple(values or ()))
    parsed.high = raw.get("highValue")
    if operator in ("IN", "NOT_IN") and not isinstance(values, list):
        raise Problem(400, f"Operator {operator} needs a `values` list")
    if operator == "BETWEEN" and (parsed.value is None or parsed.high is None):
        raise Problem(400, "Operator BETWEEN needs `value` and `highValue`")
    if operator in VALUE_OPERATORS and parsed.value is None:
        raise Problem(400, f"Operator {operator} needs a `value`")
    return parsed


def _converter(prop: str, samples: list[Any]) -> Callable[[Any], Any]:
    """How stored values and filter values of `prop` compare: epoch ms, number or case-folded text."""
    if prop in DATE_PROPERTIES and samples and all(epoch_ms(s) is not None for s in samples):
        return epoch_ms
    if prop in NUMERIC_PROPERTIES and samples and all(_number(s) is not None for s in samples):
        return _number
    return lambda v: None if v is None else str(v).casefold()


def _tokens(value: Any) -> list[str]:
    return [t for t in _TOKEN_SPLIT.split(str(value).casefold()) if t]


def _token_match(stored: Any, wanted: Any) -> bool:
    if not _present(stored):
        return False
    pattern = str(wanted).casefold().strip()
    if "*" in pattern:
        regex = re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")
        return any(regex.match(t) for t in _tokens(stored)) or bool(regex.match(str(stored).casefold()))
    return pattern in _tokens(stored) or pattern == str(stored).casefold()


def _compile_filter(f: Filter) -> Callable[[dict[str, Any]], bool]:
    """A predicate over a record's properties."""
    prop, op = f.property, f.operator
    if op == "HAS_PROPERTY":
        return lambda p: _present(p.get(prop))
    if op == "NOT_HAS_PROPERTY":
        return lambda p: not _present(p.get(prop))
    if op == "CONTAINS_TOKEN":
        return lambda p: _token_match(p.get(prop), f.value)
    if op == "NOT_CONTAINS_TOKEN":
        return lambda p: not _token_match(p.get(prop), f.value)
    samples = (
        list(f.values) if op in ("IN", "NOT_IN") else [f.value, f.high] if op == "BETWEEN" else [f.value]
    )
    conv = _converter(prop, samples)
    if op in ("IN", "NOT_IN"):
        wanted = {conv(v) for v in samples}
        if op == "IN":
            return lambda p: _present(p.get(prop)) and conv(p.get(prop)) in wanted
        return lambda p: not _present(p.get(prop)) or conv(p.get(prop)) not in wanted
    if op == "NEQ":
        target = conv(f.value)
        return lambda p: not _present(p.get(prop)) or conv(p.get(prop)) != target
    return _compare(prop, op, conv, [conv(s) for s in samples])


def _compare(
    prop: str, op: str, conv: Callable[[Any], Any], targets: list[Any]
) -> Callable[[dict[str, Any]], bool]:
    low, high = targets[0], targets[-1]
    tests: dict[str, Callable[[Any], bool]] = {
        "EQ": lambda v: v == low,
        "LT": lambda v: v < low,
        "LTE": lambda v: v <= low,
        "GT": lambda v: v > low,
        "GTE": lambda v: v >= low,
        "BETWEEN": lambda v: low <= v <= high,
    }
    test = tests[op]

    def predicate(props: dict[str, Any]) -> bool:
        value = conv(props.get(prop)) if _present(props.get(prop)) else None
        if value is None or low is None or high is None:
            return False
        try:
            return test(value)
        except TypeError:
            return False

    return predicate


def _parse_sorts(raw: Any) -> list[tuple[str, bool]]:
    """Sorts as `(property, descending)`; accepts "prop" / "-prop" strings and {propertyName, direction}."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Problem(400, "sorts must be a list")
    sorts = []
    for item in raw:
        if isinstance(item, str) and item.strip("-"):
            sorts.append((item.lstrip("-"), item.startswith("-")))
        elif isinstance(item, dict) and isinstance(item.get("propertyName"), str):
            direction = str(item.get("direction") or "ASCENDING").upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise Problem(400, f"Unsupported sort direction {direction!r}")
            sorts.append((item["propertyName"], direction == "DESCENDING"))
        else:
            raise Problem(400, f"Invalid sort {item!r}")
    return sorts


def _sort_key(prop: str, descending: bool) -> Callable[[Record], tuple[int, Any]]:
    """Key for one sort; records without the property come last in either direction."""
    conv: Callable[[Any], Any]
    if prop in DATE_PROPERTIES:
        conv = epoch_ms
    elif prop in NUMERIC_PROPERTIES:
        conv = _number
    else:
        conv = lambda v: None if v is None else str(v).casefold()  # noqa: E731
    present, missing = (1, 0) if descending else (0, 1)

    def key(record: Record) -> tuple[int, Any]:
        value = conv(record["properties"].get(prop))
        return (missing, 0) if value is None else (present, value)

    return key


def _range_key(prop: str, descending: bool) -> Callable[[Record], tuple[int, int]]:
    """Sort key of a range view: (epoch ms, or its negation when descending; id)."""

    def key(record: Record) -> tuple[int, int]:
        ms = None if record.get("archived") else epoch_ms(record["properties"].get(prop))
        if ms is None:
            return (_MISSING, int(record["id"]))
        return (-ms if descending else ms, int(record["id"]))

    return key


Bound = tuple[int, bool]  # (epoch ms, inclusive)


def _range_bounds(group: list[Filter], prop: str) -> tuple[Bound | None, Bound | None] | None:
    """The [low, high] range a group of range filters on `prop` selects; None if it is not such a group."""
    low: Bound | None = None
    high: Bound | None = None
    for f in group:
        if f.property != prop or f.operator not in RANGE_OPERATORS:
            return None
        value = epoch_ms(f.value)
        top = epoch_ms(f.high) if f.operator == "BETWEEN" else value
        if value is None or top is None:
            return None
        if f.operator in ("GT", "GTE", "EQ", "BETWEEN"):
            low = _tighter_low(low, (value, f.operator != "GT"))
        if f.operator in ("LT", "LTE", "EQ", "BETWEEN"):
            high = _tighter_high(high, (top, f.operator != "LT"))
    return low, high


def _tighter_low(a: Bound | None, b: Bound) -> Bound:
    if a is None or b[0] > a[0] or (b[0] == a[0] and not b[1]):
        return b
    return a


def _tighter_high(a: Bound | None, b: Bound) -> Bound:
    if a is None or b[0] < a[0] or (b[0] == a[0] and not b[1]):
        return b
    return a


def _slice_bounds(
    keys: list[tuple[int, int]], low: Bound | None, high: Bound | None, descending: bool
) -> tuple[int, int]:
    """Positions [lo, hi) of the view keys inside the range (descending views hold negated ms)."""
    if descending:
        low, high = (
            (None if high is None else (-high[0], high[1])),
            (None if low is None else (-low[0], low[1])),
        )
    if low is None:
        lo = 0
    elif low[1]:
        lo = bisect.bisect_left(keys, (low[0], -_BIG))
    else:
        lo = bisect.bisect_right(keys, (low[0], _BIG))
    if high is None:
        hi = bisect.bisect_left(keys, (_MISSING, -_BIG))
    elif high[1]:
        hi = bisect.bisect_right(keys, (high[0], _BIG))
    else:
        hi = bisect.bisect_left(keys, (high[0], -_BIG))
    return lo, max(lo, hi)


@dataclass(frozen=True)
class _SearchSpec:
    """A search request's filter groups (OR of ANDs), sorts, free-text query and page."""

    groups: list[list[Filter]]
    sorts: list[tuple[str, bool]]
    query: Any
    offset: int
    limit: int

    def page(self, matches: list[Record]) -> tuple[list[Record], int]:
        """The requested page of `matches` in the search's order (ties by id), and the total."""
        matches.sort(key=_id_key)
        for prop, descending in reversed(self.sorts):
            matches.sort(key=_sort_key(prop, descending), reverse=descending)
        return matches[self.offset : self.offset + self.limit], len(matches)


# ---------------------------------------------------------------------------------------------
# the app


class HubSpotApp:
    """HubSpot CRM v3 (plus v4 associations) over `world.crm`, mounted under /hubspot."""

    system = "crm"
    prefix = "hubspot"

    LIST_MAX = 100
    LIST_MAX_WITH_HISTORY = 50
    SEARCH_MAX = 200
    SEARCH_CAP = 10_000  # a search query cannot page past this many results
    MAX_FILTER_GROUPS = 6
    MAX_FILTERS_PER_GROUP = 6
    BATCH_MAX = 100
    ASSOCIATION_BATCH_MAX = 1000
    ASSOCIATION_PAGE_MAX = 500
    OWNERS_PAGE_MAX = 500
    # HubSpot answers 414 to a request target past about 8 KB (a long `properties` list; dlt's
    # and Airbyte's HubSpot connectors both met it)
    URL_MAX = 8192

    def __init__(self, world: World, config: SandboxConfig, faults: Faults) -> None:
        self.world = world
        self.config = config
        self.faults = faults
        self.router = Router()
        self._add_routes()
        self._limit_config = config.limits
        self._limits = Limits()
        self._daily_day: date | None = None
        self._daily_count = 0
        self._last_write_ms = 0
        # (object type, property) -> (collection version, lower-cased value -> record id)
        self._unique: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
        self.set_limits(config.limits)

    def _add_routes(self) -> None:
        add = self.router.add
        add("GET", "/crm/v3/objects/{type}", self._list_objects)
        add("POST", "/crm/v3/objects/{type}", self._create_object)
        add("POST", "/crm/v3/objects/{type}/search", self._search)
        add("POST", "/crm/v3/objects/{type}/batch/read", self._batch_read)
        add("POST", "/crm/v3/objects/{type}/batch/update", self._batch_update)
        add("POST", "/crm/v3/objects/{type}/batch/upsert", self._batch_upsert)
        add("POST", "/crm/v3/objects/{type}/batch/create", self._batch_create)
        add("GET", "/crm/v3/objects/{type}/{id}", self._get_object)
        add("PATCH", "/crm/v3/objects/{type}/{id}", self._patch_object)
        add("GET", "/account-info/v3/details", self._account_details)
        add("GET", "/crm/v3/properties/{objectType}", self._properties)
        add("GET", "/crm/v3/properties/{objectType}/{propertyName}", self._property)
        add("GET", "/crm/v3/owners", self._owners)
        add("GET", "/crm/v3/owners/{id}", self._owner)
        add("GET", "/crm/v3/pipelines/{objectType}", self._pipelines)
        add("GET", "/crm/v3/pipelines/{objectType}/{pipelineId}", self._pipeline)
        add("GET", "/crm/v3/pipelines/{objectType}/{pipelineId}/stages", self._stages)
        add("GET", "/crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}", self._stage)
        add("GET", "/crm/v4/objects/{type}/{id}/associations/{toType}", self._association_page)
        add("POST", "/crm/v4/associations/{type}/{toType}/batch/read", self._association_batch_read)

    # -- the App protocol -------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Authenticate, apply the rate limits, route; errors come back in HubSpot's body shape."""
        if len(request.target) > self.URL_MAX:
            body = b"<html><head><title>414 Request-URI Too Large</title></head></html>"
            return Response(status=414, body=body, headers={"Content-Type": "text/html"})
        token = self.config.tokens.get("hubspot") or ""
        given = request.bearer() or ""
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return self._problem(Problem(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION"))
        is_search = request.method == "POST" and bool(_SEARCH_PATH.match(request.path))
        refused, headers = self._throttle(is_search)
        if refused is not None:
            return refused
        handler = self.router.match(request)
        try:
            if handler is None:
                raise Problem(404, f"No route for {request.method} {request.path}", "OBJECT_NOT_FOUND")
            self._check_account(request)
            response = handler(request)
        except Problem as problem:
            response = self._problem(problem)
        response.headers.update(headers)
        return response

    def error(self, status: int, message: str, code: int | None = None) -> Response:
        """HubSpot's error body for an injected fault; 423 and 477 carry Retry-After, 429 the policy body."""
        if status == 429:
            return self._rate_limited("TEN_SECONDLY_ROLLING", 1, {})
        category = CATEGORY_BY_STATUS.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
        response = self._problem(Problem(status, message, category))
        if status == 423:
            response.headers["Retry-After"] = str(RETRY_AFTER_LOCKED)
        elif status == 477:
            response.headers["Retry-After"] = str(RETRY_AFTER_MIGRATION)
        return response

    def set_limits(self, limits: RateLimitConfig) -> None:
        self._limit_config = limits
        windows: dict[str, tuple[int, float]] = {}
        if limits.hubspot_per_10s is not None:
            windows["ten_secondly"] = (limits.hubspot_per_10s, 10.0)
        if limits.hubspot_search_per_s is not None:
            windows["search"] = (limits.hubspot_search_per_s, 1.0)
        self._limits = Limits(windows)

    # -- the account's shape (sandbox/config.py AccountShape) ----------------------------------

    def _check_account(self, request: Request) -> None:
        """A token without a resource's scope gets HubSpot's 403; an object type the account does
        not use gets the 400 HubSpot answers for an unknown object type."""
        account = self.config.account
        for resource in _resources_of(request):
            if account.is_forbidden("crm", resource):
                scope = REQUIRED_SCOPES.get(resource, f"crm.objects.{resource}.read")
                raise Problem(
                    403,
                    "This app hasn't been granted all required scopes to make this call. Read more about "
                    "required scopes here: https://developers.hubspot.com/scopes.",
                    "MISSING_SCOPES",
                    errors=[
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [scope]},
                        }
                    ],
                    links={"scopes": "https://developers.hubspot.com/scopes"},
                )
            if account.is_unused("crm", resource) and resource in OBJECT_TYPES:
                raise Problem(400, f"Unable to infer object type from: {resource}")

    def _is_empty(self, resource: str) -> bool:
        return self.config.account.is_empty("crm", resource)

    # -- errors and rate limits ---------------------------------------------------------------

    def _problem(self, problem: Problem) -> Response:
        body = {
            "status": "error",
            "message": problem.message,
            "correlationId": _correlation_id(),
            "category": problem.category,
            **problem.extra,
        }
        return json_response(body, problem.status)

    def _rate_limited(self, policy: str, retry_after: int, headers: dict[str, str]) -> Response:
        body = {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": _correlation_id(),
            "policyName": policy,
            "requestId": _correlation_id(),
            "category": "RATE_LIMITS",
        }
        return json_response(body, 429, {**headers, "Retry-After": str(max(1, retry_after))})

    def _throttle(self, is_search: bool) -> tuple[Response | None, dict[str, str]]:
        """(a 429 to send instead, or None; the rate-limit headers for the response)."""
        self._count_daily()
        limits = self._limit_config
        if limits.hubspot_per_10s is not None and self._daily_count > limits.hubspot_daily:
            return self._rate_limited("DAILY", self._seconds_to_midnight(), {}), {}
        if is_search:
            decision = self._limits.hit("search")
            if decision is not None and not decision.allowed:
                return self._rate_limited("SECONDLY", 1, {}), {}
            return None, {}
        decision = self._limits.hit("ten_secondly")
        headers = self._rate_headers(decision)
        if decision is not None and not decision.allowed:
            return self._rate_limited(
                "TEN_SECONDLY_ROLLING", math.ceil(decision.reset_seconds), headers
            ), headers
        return None, headers

    def _count_daily(self) -> None:
        today = self.world.clock().date()
        if today != self._daily_day:
            self._daily_day, self._daily_count = today, 0
        self._daily_count += 1

    def _seconds_to_midnight(self) -> int:
        now = self.world.clock()
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
        return max(1, math.ceil((midnight - now).total_seconds()))

    def _rate_headers(self, decision: Decision | None) -> dict[str, str]:
        if decision is None:
            per_10s, remaining, daily = GENEROUS_PER_10S, GENEROUS_PER_10S - 1, GENEROUS_DAILY
        else:
            per_10s, remaining, daily = decision.limit, decision.remaining, self._limit_config.hubspot_daily
        secondly = max(1, per_10s // 10)
        return {
            "X-HubSpot-RateLimit-Max": str(per_10s),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": str(daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily - self._daily_count)),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(min(secondly, remaining)),
        }

    # -- shared request parsing ---------------------------------------------------------------

    def _object_type(self, name: str) -> str:
        object_type = TYPE_ALIASES.get(name.lower())
        if object_type is None:
            raise Problem(400, f"Unable to infer object type from: {name}")
        return object_type

    def _objects(self, request: Request) -> tuple[str, Collection]:
        object_type = self._object_type(request.params["type"])
        collection = self.world.crm.objects(object_type)
        if collection is None:
            raise Problem(400, f"Unable to infer object type from: {object_type}")
        if self._is_empty(object_type):
            return object_type, Collection()  # a fresh account: none yet
        return object_type, collection

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise Problem(400, "Invalid input JSON: the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Problem(400, "Invalid input JSON: expected an object")
        return body

    def _inputs(self, body: dict[str, Any], maximum: int) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise Problem(400, "Invalid input JSON: `inputs` must be a list of objects")
        if len(inputs) > maximum:
            raise Problem(400, f"Batch input limit exceeded: {len(inputs)} inputs, the maximum is {maximum}")
        return inputs

    def _association_types(self, values: Iterable[str]) -> list[str]:
        """Requested association types, plural; unknown ones are ignored as HubSpot does."""
        return [TYPE_ALIASES[v.lower()] for v in _csv(values) if v.lower() in TYPE_ALIASES]

    def _link(self, request: Request, after: str) -> str:
        query = {k: v for k, v in request.query.items() if k != "after"}
        query["after"] = [after]
        return f"{request.base_url}{request.path}?{urlencode(query, doseq=True)}"

    # -- rendering ----------------------------------------------------------------------------

    def _renderer(
        self,
        object_type: str,
        wanted: Iterable[str],
        associations: Iterable[str] = (),
        history: Iterable[str] = (),
    ) -> Callable[[Record], dict[str, Any]]:
        """A function that shapes stored records as served, carrying only the wanted properties."""
        known = self._known(object_type)
        names = list(dict.fromkeys(wanted))
        always = [p for p in names if p in known]
        maybe = [p for p in names if p not in known]
        linked_types = list(associations)
        history_names = list(history)
        drift = self.faults.drift_for("crm", object_type)
        crm = self.world.crm
        modified = MODIFIED_PROPERTY[object_type]

        def render(record: Record) -> dict[str, Any]:
            props = record["properties"]
            shown = {p: props.get(p) for p in always}
            for p in maybe:
                if p in props:
                    shown[p] = props[p]
            updated = record["updatedAt"]
            if self.faults.in_future("crm", object_type, str(record["id"])):
                updated = shift_iso(updated, FUTURE_SHIFT)
                if modified in shown:
                    shown[modified] = shift_iso(shown[modified], FUTURE_SHIFT)
            out: dict[str, Any] = {
                "id": record["id"],
                "properties": shown,
                "createdAt": record["createdAt"],
                "updatedAt": updated,
                "archived": bool(record.get("archived", False)),
            }
            if record.get("archivedAt"):
                out["archivedAt"] = record["archivedAt"]
            if history_names:
                out["propertiesWithHistory"] = _history(record, history_names)
            if linked_types:
                linked = _v3_associations(crm, object_type, record["id"], linked_types)
                if linked:
                    out["associations"] = linked
            return apply_drift(out, drift, out["id"]) if drift is not None else out

        return render

    def _write_result(self, object_type: str, record: Record, changed: Iterable[str]) -> dict[str, Any]:
        """A record as the write endpoints return it: the written properties plus the system ones."""
        names = dict.fromkeys(
            [*changed, CREATED_PROPERTY[object_type], MODIFIED_PROPERTY[object_type], "hs_object_id"]
        )
        props = record["properties"]
        return {
            "id": record["id"],
            "properties": {n: "" if props.get(n) is None else props[n] for n in names},
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": bool(record.get("archived", False)),
        }

    # -- objects: list, get, create, patch ----------------------------------------------------

    def _list_objects(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        history = _csv(request.args("propertiesWithHistory"))
        limit = _limit(request.arg("limit"), 10, self.LIST_MAX_WITH_HISTORY if history else self.LIST_MAX)
        after = _offset(request.arg("after")) if request.arg("after") else None
        if self.faults.stalls("crm", object_type):
            after = None  # a listing stuck on its first page
        if _truthy(request.arg("archived")):
            records, last = self._page_archived(collection, after, limit)
        else:
            records, last = self._page_live(collection, after, limit)
        render = self._renderer(
            object_type,
            _csv(request.args("properties")) or DEFAULT_PROPERTIES[object_type],
            self._association_types(request.args("associations")),
            history,
        )
        results = [render(r) for r in records]
        if self.faults.duplicates("crm", object_type):
            before = self._last_before(collection, after)
            results = _with_older_copies(object_type, results, render(before) if before else None)
        payload: dict[str, Any] = {"results": results}
        if self.faults.truncates("crm", object_type):
            last = None  # the page never says more follow
        if last is not None:
            cursor = str(last + 1)  # HubSpot's list cursor is the next id to read from
            payload["paging"] = {"next": {"after": cursor, "link": self._link(request, cursor)}}
        return json_response(payload)

    def _last_before(self, collection: Collection, after: int | None) -> Record | None:
        """The live record just before a list cursor (the previous page's last one)."""
        if after is None:
            return None
        keys, ids = collection.view("by_id", _id_key)
        position = bisect.bisect_left(keys, after) - 1
        while position >= 0:
            record = collection.get(ids[position])
            if record is not None and not record.get("archived"):
                return record
            position -= 1
        return None

    def _page_live(
        self, collection: Collection, after: int | None, limit: int
    ) -> tuple[list[Record], int | None]:
        """Unarchived records with id >= after, by id; and the last id read when more remain."""
        cursor = None if after is None else after - 1
        records: list[Record] = []
        while True:
            page, last = collection.page_after("by_id", _id_key, cursor, limit - len(records))
            records.extend(r for r in page if not r.get("archived"))
            if last is None or len(records) >= limit:
                return records, last
            cursor = last

    def _page_archived(
        self, collection: Collection, after: int | None, limit: int
    ) -> tuple[list[Record], int | None]:
        cursor = -1 if after is None else max(after - 1, -1)
        return collection.page_after("hubspot:archived_by_id", _archived_first_key, cursor, limit)

    def _find(
        self, object_type: str, collection: Collection, value: str, id_property: str | None
    ) -> Record | None:
        """The unarchived record whose id (or unique `id_property`) is `value`."""
        if id_property in (None, "", "hs_object_id"):
            record = collection.get(str(value))
        elif id_property in UNIQUE_PROPERTIES[object_type]:
            found = self._unique_index(object_type, collection, id_property).get(str(value).strip().lower())
            record = collection.get(found) if found is not None else None
        else:
            raise Problem(400, f"{id_property} is not a unique identifier property of {object_type}")
        return None if record is None or record.get("archived") else record

    def _get_object(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        record = self._find(object_type, collection, request.params["id"], request.arg("idProperty"))
        if record is None:
            raise Problem(404, "resource not found", "OBJECT_NOT_FOUND")
        render = self._renderer(
            object_type,
            _csv(request.args("properties")) or DEFAULT_PROPERTIES[object_type],
            self._association_types(request.args("associations")),
            _csv(request.args("propertiesWithHistory")),
        )
        return json_response(render(record))

    def _patch_object(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        body = self._body(request)
        record = self._find(object_type, collection, request.params["id"], request.arg("idProperty"))
        if record is None:
            raise Problem(404, "resource not found", "OBJECT_NOT_FOUND")
        changes, issues = self._validate(object_type, collection, body.get("properties"), record)
        if issues:
            raise self._invalid(issues)
        existing = self._email_conflict(object_type, collection, changes, set(), record["id"])
        if existing is not None:
            raise Problem(409, f"Contact already exists. Existing ID: {existing}", "CONFLICT")
        updated = self._updated(object_type, record, changes, self._stamp())
        self._store(object_type, collection, [(record, updated)])
        self.world.log_write("crm", object_type, record["id"], changes)
        return json_response(self._write_result(object_type, updated, changes))

    def _create_object(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        body = self._body(request)
        changes, issues = self._validate(object_type, collection, body.get("properties"), None)
        if issues:
            raise self._invalid(issues)
        existing = self._email_conflict(object_type, collection, changes, set())
        if existing is not None:
            raise Problem(409, f"Contact already exists. Existing ID: {existing}", "CONFLICT")
        links = self._parse_associations(object_type, body.get("associations"))
        if isinstance(links, str):
            raise Problem(400, links)
        created = self._created(object_type, changes, self._stamp())
        self._store(object_type, collection, [(None, created)])
        self._link_records(object_type, created["id"], links)
        return json_response(self._write_result(object_type, created, changes), 201)

    # -- search -------------------------------------------------------------------------------

    def _search(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        body = self._body(request)
        limit = _limit(body.get("limit"), 10, self.SEARCH_MAX)
        offset = _offset(body.get("after"))
        if offset + limit > self.SEARCH_CAP:
            raise Problem(
                400,
                f"Search results are limited to {self.SEARCH_CAP}: after ({offset}) + limit ({limit}) "
                "exceeds it. Narrow the query (raise the lower bound of its date filter) and reset after.",
            )
        spec = _SearchSpec(
            self._filter_groups(body.get("filterGroups")),
            _parse_sorts(body.get("sorts")),
            body.get("query"),
            offset,
            limit,
        )
        found = self._ranged_search(collection, spec) or self._narrowed_search(collection, spec)
        page, total = found or self._scanned_search(object_type, collection, spec)
        properties = body.get("properties")
        wanted = _csv(properties if isinstance(properties, list) else [properties or ""])
        render = self._renderer(object_type, wanted or DEFAULT_PROPERTIES[object_type])
        results = [render(r) for r in page]
        if self.faults.duplicates("crm", object_type):
            results = _with_older_copies(object_type, results, None)
        payload: dict[str, Any] = {"total": total, "results": results}
        if offset + limit < total and not self.faults.truncates("crm", object_type):
            payload["paging"] = {"next": {"after": str(offset + limit)}}
        return json_response(payload)

    def _filter_groups(self, raw: Any) -> list[list[Filter]]:
        if raw is None:
            return []
        if not isinstance(raw, list) or len(raw) > self.MAX_FILTER_GROUPS:
            raise Problem(400, f"filterGroups must be a list of at most {self.MAX_FILTER_GROUPS} groups")
        groups = []
        for group in raw:
            filters = group.get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list) or len(filters) > self.MAX_FILTERS_PER_GROUP:
                raise Problem(400, f"Each filter group needs at most {self.MAX_FILTERS_PER_GROUP} filters")
            groups.append([_parse_filter(f) for f in filters])
        return [g for g in groups if g]

    def _ranged_search(self, collection: Collection, spec: _SearchSpec) -> tuple[list[Record], int] | None:
        """A single date range on the sort property (or no filter at all), served from a
        sorted view by bisection."""
        groups, sorts = spec.groups, spec.sorts
        if spec.query or len(groups) > 1 or len(sorts) != 1 or sorts[0][0] not in DATE_PROPERTIES:
            return None
        prop, descending = sorts[0]
        bounds = _range_bounds(groups[0], prop) if groups else (None, None)
        if bounds is None:
            return None
        view = f"hubspot:range:{prop}:{'desc' if descending else 'asc'}"
        keys, ids = collection.view(view, _range_key(prop, descending))
        lo, hi = _slice_bounds(keys, bounds[0], bounds[1], descending)
        if not groups:
            unkeyed = (collection.get(i) for i in ids[hi:])  # archived, or without the property
            if any(r is not None and not r.get("archived") for r in unkeyed):
                return None  # live records without the property are found too: scan for them
        chunk = ids[min(hi, lo + spec.offset) : min(hi, lo + spec.offset + spec.limit)]
        return [r for r in (collection.get(i) for i in chunk) if r is not None], hi - lo

    def _narrowed_search(self, collection: Collection, spec: _SearchSpec) -> tuple[list[Record], int] | None:
        """One group holding a date range and other filters (a connector reading a slab of the
        last-modified range by record id): the range's slice of the sorted view, then filtered
        and sorted as a scan would, so only the slice is read."""
        if spec.query or len(spec.groups) != 1:
            return None
        group = spec.groups[0]
        for prop in dict.fromkeys(f.property for f in group if f.property in DATE_PROPERTIES):
            ranged = [f for f in group if f.property == prop and f.operator in RANGE_OPERATORS]
            bounds = _range_bounds(ranged, prop) if ranged else None
            if bounds is None or bounds == (None, None):
                continue
            keys, ids = collection.view(f"hubspot:range:{prop}:asc", _range_key(prop, False))
            lo, hi = _slice_bounds(keys, bounds[0], bounds[1], False)
            predicates = [_compile_filter(f) for f in group if f not in ranged]
            matches = [
                r
                for r in (collection.get(i) for i in ids[lo:hi])
                if r is not None and all(p(r["properties"]) for p in predicates)
            ]
            return spec.page(matches)
        return None

    def _scanned_search(
        self, object_type: str, collection: Collection, spec: _SearchSpec
    ) -> tuple[list[Record], int]:
        predicates = [[_compile_filter(f) for f in group] for group in spec.groups]
        matches_query = self._query_predicate(object_type, spec.query)
        matches = [
            r
            for r in collection
            if not r.get("archived")
            and matches_query(r["properties"])
            and (not predicates or any(all(p(r["properties"]) for p in group) for group in predicates))
        ]
        return spec.page(matches)

    def _query_predicate(self, object_type: str, query: Any) -> Callable[[dict[str, Any]], bool]:
        text = str(query or "").strip().casefold()
        if not text:
            return lambda props: True
        fields = SEARCHABLE_PROPERTIES[object_type]
        return lambda props: any(text in str(props.get(f) or "").casefold() for f in fields)

    # -- batch endpoints ----------------------------------------------------------------------

    def _batch_payload(
        self, started: str, results: list[dict[str, Any]], errors: list[dict[str, Any]], ok_status: int = 200
    ) -> Response:
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_from_ms(_ms_of(self.world.clock())),
        }
        if errors:
            payload["numErrors"] = len(errors)
            payload["errors"] = errors
        return json_response(payload, 207 if errors else ok_status)

    def _not_found_error(self, object_type: str, ids: list[str]) -> dict[str, Any]:
        name = SINGULAR[object_type].upper()
        message = (
            f"Could not get some {name} objects, they may be deleted or not exist. Check that ids are valid."
        )
        return _standard_error(message, "OBJECT_NOT_FOUND", {"ids": ids})

    def _batch_read(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        started = iso_from_ms(_ms_of(self.world.clock()))
        body = self._body(request)
        inputs = self._inputs(body, self.BATCH_MAX)
        if any(not isinstance(i.get("id"), str | int) for i in inputs):
            raise Problem(400, "Invalid input JSON: every input needs an `id`")
        id_property = body.get("idProperty")
        archived = _truthy(request.arg("archived"))
        records, missing = [], []
        for value in dict.fromkeys(str(i["id"]) for i in inputs):
            record = self._find_for_read(object_type, collection, value, id_property, archived)
            if record is None:
                missing.append(value)
            else:
                records.append(record)
        properties = body.get("properties")
        render = self._renderer(
            object_type,
            _csv(properties if isinstance(properties, list) else []) or DEFAULT_PROPERTIES[object_type],
            history=_csv(body.get("propertiesWithHistory") or []),
        )
        errors = [self._not_found_error(object_type, missing)] if missing else []
        return self._batch_payload(started, [render(r) for r in records], errors)

    def _find_for_read(
        self, object_type: str, collection: Collection, value: str, id_property: Any, archived: bool
    ) -> Record | None:
        if not archived:
            return self._find(object_type, collection, value, id_property)
        record = collection.get(value)
        return record if record is not None and record.get("archived") else None

    def _check_write_inputs(self, inputs: list[dict[str, Any]], need_id: bool) -> None:
        """Malformed inputs fail the whole request with 400, as do duplicate ids."""
        seen: set[tuple[str, str]] = set()
        for item in inputs:
            if not isinstance(item.get("properties"), dict):
                raise Problem(400, "Invalid input JSON: every input needs a `properties` object")
            if not need_id:
                continue
            if not isinstance(item.get("id"), str | int) or str(item["id"]).strip() == "":
                raise Problem(400, "Invalid input JSON: every input needs an `id`")
            key = (str(item.get("idProperty") or "hs_object_id"), str(item["id"]).strip().lower())
            if key in seen:
                raise Problem(400, f"Duplicate IDs found in batch input: [{item['id']}]. IDs must be unique")
            seen.add(key)

    def _batch_update(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        started = iso_from_ms(_ms_of(self.world.clock()))
        inputs = self._inputs(self._body(request), self.BATCH_MAX)
        self._check_write_inputs(inputs, need_id=True)
        planned: list[tuple[Record, dict[str, str]]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        emails: set[str] = set()
        for item in inputs:
            record = self._find(object_type, collection, str(item["id"]), item.get("idProperty"))
            if record is None:
                missing.append(str(item["id"]))
                continue
            changes, issues = self._validate(object_type, collection, item["properties"], record)
            existing = (
                None
                if issues
                else self._email_conflict(object_type, collection, changes, emails, record["id"])
            )
            if issues:
                errors.append(self._validation_error(issues, str(item["id"])))
            elif existing is not None:
                errors.append(self._conflict_error(existing, str(item["id"])))
            else:
                planned.append((record, changes))
        if missing:
            errors.insert(0, self._not_found_error(object_type, missing))
        results = []
        if planned:
            stamp = self._stamp()
            pairs = [(old, self._updated(object_type, old, changes, stamp)) for old, changes in planned]
            self._store(object_type, collection, pairs)
            for record, changes in planned:
                self.world.log_write("crm", object_type, record["id"], changes)
            results = [
                self._write_result(object_type, new, ch)
                for (_, new), (_, ch) in zip(pairs, planned, strict=True)
            ]
        return self._batch_payload(started, results, errors)

    def _batch_upsert(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        started = iso_from_ms(_ms_of(self.world.clock()))
        inputs = self._inputs(self._body(request), self.BATCH_MAX)
        self._check_write_inputs(inputs, need_id=True)
        planned: list[tuple[Record | None, dict[str, str]]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        emails: set[str] = set()
        for item in inputs:
            value, id_property = str(item["id"]).strip(), str(item.get("idProperty") or "hs_object_id")
            record = self._find(object_type, collection, value, id_property)
            if record is None and id_property == "hs_object_id":
                missing.append(value)
                continue
            # a new record gets its id property from `id`
            raw = item["properties"] if record is not None else {**item["properties"], id_property: value}
            changes, issues = self._validate(object_type, collection, raw, record)
            own_id = None if record is None else record["id"]
            existing = (
                None if issues else self._email_conflict(object_type, collection, changes, emails, own_id)
            )
            if issues:
                errors.append(self._validation_error(issues, value))
            elif existing is not None:
                errors.append(self._conflict_error(existing, value))
            else:
                planned.append((record, changes))
        if missing:
            errors.insert(0, self._not_found_error(object_type, missing))
        results = []
        if planned:
            stamp = self._stamp()
            pairs = [
                (
                    old,
                    self._updated(object_type, old, ch, stamp)
                    if old
                    else self._created(object_type, ch, stamp),
                )
                for old, ch in planned
            ]
            self._store(object_type, collection, pairs)
            for (old, new), (_, changes) in zip(pairs, planned, strict=True):
                results.append({**self._write_result(object_type, new, changes), "new": old is None})
        return self._batch_payload(started, results, errors)

    def _batch_create(self, request: Request) -> Response:
        object_type, collection = self._objects(request)
        started = iso_from_ms(_ms_of(self.world.clock()))
        inputs = self._inputs(self._body(request), self.BATCH_MAX)
        self._check_write_inputs(inputs, need_id=False)
        planned: list[tuple[dict[str, str], list[tuple[str, str]]]] = []
        errors: list[dict[str, Any]] = []
        emails: set[str] = set()
        for number, item in enumerate(inputs):
            changes, issues = self._validate(object_type, collection, item["properties"], None)
            links = self._parse_associations(object_type, item.get("associations"))
            existing = None if issues else self._email_conflict(object_type, collection, changes, emails)
            if issues:
                errors.append(self._validation_error(issues, str(number)))
            elif isinstance(links, str):
                errors.append(_standard_error(links, "VALIDATION_ERROR", {"inputs": [str(number)]}))
            elif existing is not None:
                errors.append(self._conflict_error(existing, str(number)))
            else:
                planned.append((changes, links))
        results = []
        if planned:
            stamp = self._stamp()
            created = [self._created(object_type, changes, stamp) for changes, _ in planned]
            self._store(object_type, collection, [(None, record) for record in created])
            for record, (changes, links) in zip(created, planned, strict=True):
                self._link_records(object_type, record["id"], links)
                results.append(self._write_result(object_type, record, changes))
        return self._batch_payload(started, results, errors, ok_status=201)

    # -- writes -------------------------------------------------------------------------------

    def _stamp(self) -> str:
        """World time of a write, strictly later than every earlier write's."""
        ms = max(_ms_of(self.world.clock()), self._last_write_ms + 1)
        self._last_write_ms = ms
        return iso_from_ms(ms)

    def _updated(self, object_type: str, record: Record, changes: dict[str, str], stamp: str) -> Record:
        props = dict(record["properties"])
        props.update({k: (v if v != "" else None) for k, v in changes.items()})
        props[MODIFIED_PROPERTY[object_type]] = stamp
        return {**record, "properties": props, "updatedAt": stamp}

    def _created(self, object_type: str, changes: dict[str, str], stamp: str) -> Record:
        record_id = self.world.crm.new_id()
        props: dict[str, Any] = {k: (v if v != "" else None) for k, v in changes.items()}
        props.update(
            {
                CREATED_PROPERTY[object_type]: stamp,
                MODIFIED_PROPERTY[object_type]: stamp,
                "hs_object_id": record_id,
            }
        )
        return {
            "id": record_id,
            "properties": props,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }

    def _store(
        self, object_type: str, collection: Collection, pairs: Sequence[tuple[Record | None, Record]]
    ) -> None:
        """Write the new versions and keep this app's unique-value indexes in step."""
        before = collection.version
        collection.put_many(new for _, new in pairs)
        for (indexed_type, prop), (version, index) in list(self._unique.items()):
            if indexed_type != object_type:
                continue
            if version != before:
                del self._unique[(indexed_type, prop)]
                continue
            for old, new in pairs:
                _reindex(index, prop, old, new)
            self._unique[(indexed_type, prop)] = (collection.version, index)

    def _unique_index(self, object_type: str, collection: Collection, prop: str) -> dict[str, str]:
        """Lower-cased value -> lowest record id, for an `idProperty`; rebuilt after others' writes."""
        cached = self._unique.get((object_type, prop))
        if cached is not None and cached[0] == collection.version:
            return cached[1]
        index: dict[str, str] = {}
        for record in collection:
            if not record.get("archived"):
                _reindex(index, prop, None, record)
        self._unique[(object_type, prop)] = (collection.version, index)
        return index

    def _email_conflict(
        self,
        object_type: str,
        collection: Collection,
        changes: dict[str, str],
        batch: set[str],
        own_id: str | None = None,
    ) -> str | None:
        """Id of another contact that already has the email being written (contacts' email is unique)."""
        email = (changes.get("email") or "").strip().lower()
        if object_type != "contacts" or not email:
            return None
        existing = self._unique_index(object_type, collection, "email").get(email)
        if existing is None and email in batch:
            return "(an earlier input of this batch)"
        batch.add(email)
        return None if existing == own_id else existing

    def _conflict_error(self, existing: str, input_id: str) -> dict[str, Any]:
        message = f"Contact already exists. Existing ID: {existing}"
        return _standard_error(message, "CONFLICT", {"ids": [input_id], "existingId": [existing]})

    def _validate(
        self, object_type: str, collection: Collection, raw: Any, record: Record | None
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """(property values to write as strings, HubSpot-style issues for the ones refused)."""
        if not isinstance(raw, dict):
            refused = {"isValid": False, "message": "properties must be an object", "error": "INVALID_INPUT"}
            return {}, [{**refused, "name": "properties"}]
        changes: dict[str, str] = {}
        issues: list[dict[str, Any]] = []
        sample = next(iter(collection), None)
        for name, value in raw.items():
            issue = self._property_issue(object_type, name, value, record, sample)
            if issue is not None:
                issues.append({"isValid": False, "message": issue[1], "error": issue[0], "name": name})
            else:
                changes[name] = _as_string(value)
        return changes, issues

    def _property_issue(
        self, object_type: str, name: str, value: Any, record: Record | None, sample: Record | None
    ) -> tuple[str, str] | None:
        """(code, message) when this property value cannot be written; None when it can."""
        if name in READ_ONLY_PROPERTIES:
            return "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
        exists = name in self._known(object_type) or any(
            r is not None and name in r["properties"] for r in (record, sample)
        )
        if not exists:
            return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
        if isinstance(value, dict | list):
            return "INVALID_VALUE", f'Property "{name}" needs a string value'
        text = _as_string(value)
        options = self._options(object_type, name)
        if text and options is not None and text not in options:
            return "INVALID_OPTION", f"{text} was not one of the allowed options: [{', '.join(options)}]"
        if name == "email" and text and not _EMAIL.match(text):
            return "INVALID_EMAIL", f"Email address {text} is invalid"
        return None

    def _options(self, object_type: str, name: str) -> tuple[str, ...] | None:
        if object_type == "deals" and name == "pipeline":
            return tuple(p["id"] for p in self.world.crm.pipelines)
        if object_type == "deals" and name == "dealstage":
            return tuple(s["id"] for p in self.world.crm.pipelines for s in p.get("stages", []))
        return ENUM_OPTIONS.get(name)

    def _validation_error(self, issues: list[dict[str, Any]], input_id: str) -> dict[str, Any]:
        details = [
            {"message": i["message"], "code": i["error"], "context": {"propertyName": [i["name"]]}}
            for i in issues
        ]
        message = f"Property values were not valid: {json.dumps(issues, separators=(',', ':'))}"
        return _standard_error(message, "VALIDATION_ERROR", {"ids": [input_id]}, details)

    def _invalid(self, issues: list[dict[str, Any]]) -> Problem:
        error = self._validation_error(issues, "")
        return Problem(400, error["message"], "VALIDATION_ERROR", errors=error["errors"])

    def _parse_associations(self, object_type: str, raw: Any) -> list[tuple[str, str]] | str:
        """[(to type, to id)] from a create input's `associations`; an error message when invalid."""
        links: list[tuple[str, str]] = []
        for item in raw or []:
            to_id = str((item.get("to") or {}).get("id", "")) if isinstance(item, dict) else ""
            types = item.get("types") if isinstance(item, dict) else None
            if not to_id or not isinstance(types, list) or not types:
                return "Each association needs `to.id` and `types`"
            for spec in types:
                type_id = _int_or_none(spec.get("associationTypeId") if isinstance(spec, dict) else None)
                target = None if type_id is None else ASSOCIATION_TARGETS.get((object_type, type_id))
                if target is None:
                    return f"Unknown association type {type_id!r} from {object_type}"
                collection = self.world.crm.objects(target)
                if collection is None or to_id not in collection:
                    return f"No {SINGULAR[target]} with id {to_id} to associate"
                links.append((target, to_id))
        return links

    def _link_records(self, object_type: str, record_id: str, links: list[tuple[str, str]]) -> None:
        for to_type, to_id in links:
            self.world.crm.associate(object_type, record_id, to_type, to_id)

    # -- properties ---------------------------------------------------------------------------

    def _known(self, object_type: str) -> frozenset[str]:
        """The properties this account defines for an object (HubSpot's own and custom ones)."""
        return crm_schema.names(object_type, self.world.setup)

    def _properties(self, request: Request) -> Response:
        """Every property of an object type (one answer, no paging), as /crm/v3/properties lists them."""
        object_type = self._object_type(request.params["objectType"])
        if _truthy(request.arg("archived")):
            return json_response({"results": []})
        return json_response({"results": list(crm_schema.definitions(object_type, self.world.setup))})

    def _property(self, request: Request) -> Response:
        object_type = self._object_type(request.params["objectType"])
        name = request.params["propertyName"]
        for definition in crm_schema.definitions(object_type, self.world.setup):
            if definition["name"] == name:
                return json_response(definition)
        message = f"Unable to find property {name} for object type {object_type}"
        raise Problem(404, message, "OBJECT_NOT_FOUND")

    # -- owners and pipelines -----------------------------------------------------------------

    def _account_details(self, request: Request) -> Response:
        """`GET /account-info/v3/details`: the portal (Hub) id that record URLs carry, and the
        account's settings; the id is fixed per world seed."""
        return json_response(
            {
                "portalId": 40_000_000 + self.world.seed,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18_000_000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    def _owners(self, request: Request) -> Response:
        limit = _limit(request.arg("limit"), 100, self.OWNERS_PAGE_MAX)
        offset = _offset(request.arg("after"))
        archived = _truthy(request.arg("archived"))
        email = (request.arg("email") or "").strip().lower()
        owners = [
            o
            for o in sorted([] if self._is_empty("owners") else self.world.crm.owners, key=_id_key)
            if bool(o.get("archived")) == archived and (not email or str(o.get("email", "")).lower() == email)
        ]
        payload: dict[str, Any] = {"results": owners[offset : offset + limit]}
        if offset + limit < len(owners):
            cursor = str(offset + limit)
            payload["paging"] = {"next": {"after": cursor, "link": self._link(request, cursor)}}
        return json_response(payload)

    def _owner(self, request: Request) -> Response:
        for owner in self.world.crm.owners:
            if str(owner["id"]) == request.params["id"]:
                return json_response(owner)
        raise Problem(404, "resource not found", "OBJECT_NOT_FOUND")

    def _pipeline_list(self, request: Request) -> list[Record]:
        object_type = TYPE_ALIASES.get(request.params["objectType"].lower(), request.params["objectType"])
        pipelines = (
            self.world.crm.pipelines if object_type == "deals" and not self._is_empty("pipelines") else []
        )
        return sorted(pipelines, key=lambda p: p.get("displayOrder", 0))

    def _find_pipeline(self, request: Request) -> Record:
        for pipeline in self._pipeline_list(request):
            if pipeline["id"] == request.params["pipelineId"]:
                return pipeline
        raise Problem(404, f"Pipeline {request.params['pipelineId']} not found", "OBJECT_NOT_FOUND")

    def _pipelines(self, request: Request) -> Response:
        return json_response({"results": self._pipeline_list(request)})

    def _pipeline(self, request: Request) -> Response:
        return json_response(self._find_pipeline(request))

    def _stages(self, request: Request) -> Response:
        stages = self._find_pipeline(request).get("stages", [])
        return json_response({"results": sorted(stages, key=lambda s: s.get("displayOrder", 0))})

    def _stage(self, request: Request) -> Response:
        for stage in self._find_pipeline(request).get("stages", []):
            if stage["id"] == request.params["stageId"]:
                return json_response(stage)
        raise Problem(404, f"Stage {request.params['stageId']} not found", "OBJECT_NOT_FOUND")

    # -- associations v4 ----------------------------------------------------------------------

    def _association_kinds(self, request: Request) -> tuple[str, str, dict[str, Any]]:
        from_type = self._object_type(request.params["type"])
        to_type = self._object_type(request.params["toType"])
        type_id = ASSOCIATION_TYPE_IDS.get((from_type, to_type))
        if type_id is None:
            raise Problem(400, f"No association type between {from_type} and {to_type}")
        return from_type, to_type, {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}

    def _association_page(self, request: Request) -> Response:
        from_type, to_type, kind = self._association_kinds(request)
        limit = _limit(request.arg("limit"), self.ASSOCIATION_PAGE_MAX, self.ASSOCIATION_PAGE_MAX)
        offset = _offset(request.arg("after"))
        linked = sorted(self.world.crm.associated(from_type, request.params["id"], to_type), key=int)
        chunk = linked[offset : offset + limit]
        payload: dict[str, Any] = {
            "results": [{"toObjectId": int(i), "associationTypes": [dict(kind)]} for i in chunk]
        }
        if offset + limit < len(linked):
            cursor = str(offset + limit)
            payload["paging"] = {"next": {"after": cursor, "link": self._link(request, cursor)}}
        return json_response(payload)

    def _association_batch_read(self, request: Request) -> Response:
        from_type, to_type, kind = self._association_kinds(request)
        started = iso_from_ms(_ms_of(self.world.clock()))
        inputs = self._inputs(self._body(request), self.ASSOCIATION_BATCH_MAX)
        results, errors = [], []
        empty = self._is_empty(from_type) or self._is_empty(to_type)
        for from_id in dict.fromkeys(str(i.get("id", "")) for i in inputs):
            linked = [] if empty else sorted(self.world.crm.associated(from_type, from_id, to_type), key=int)
            if linked:
                to = [{"toObjectId": int(i), "associationTypes": [dict(kind)]} for i in linked]
                results.append({"from": {"id": from_id}, "to": to})
                continue
            message = f"No {SINGULAR[to_type]} is associated with {SINGULAR[from_type]} {from_id}."
            error = _standard_error(message, "OBJECT_NOT_FOUND", {"fromObjectId": [from_id]})
            errors.append({**error, "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND"})
        return self._batch_payload(started, results, errors)


# ---------------------------------------------------------------------------------------------
# record-level functions used by the app


def _as_string(value: Any) -> str:
    """HubSpot stores every property value as a string; JSON numbers and booleans are coerced."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _reindex(index: dict[str, str], prop: str, old: Record | None, new: Record) -> None:
    """Move `new`'s entry in a unique-value index (the lowest id wins a shared value)."""
    if old is not None:
        previous = str(old["properties"].get(prop) or "").strip().lower()
        if previous and index.get(previous) == old["id"]:
            del index[previous]
    value = str(new["properties"].get(prop) or "").strip().lower()
    if value and (value not in index or int(new["id"]) < int(index[value])):
        index[value] = new["id"]


def _history(record: Record, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The sandbox keeps no history: each property's current value, stamped with the record's update."""
    props = record["properties"]
    return {
        n: [{"value": props[n], "timestamp": record["updatedAt"], "sourceType": "API"}]
        for n in names
        if props.get(n) is not None
    }


def _v3_associations(crm: Any, object_type: str, record_id: str, types: list[str]) -> dict[str, Any]:
    linked = {}
    for to_type in types:
        ids = crm.associated(object_type, record_id, to_type)
        if ids:
            kind = f"{SINGULAR[object_type]}_to_{SINGULAR[to_type]}"
            linked[to_type] = {"results": [{"id": i, "type": kind} for i in ids]}
    return linked


# The granular scope each resource needs (HubSpot names it in a 403's `requiredGranularScopes`).
REQUIRED_SCOPES = {
    "contacts": "crm.objects.contacts.read",
    "companies": "crm.objects.companies.read",
    "deals": "crm.objects.deals.read",
    "meetings": "crm.objects.contacts.read",
    "owners": "crm.objects.owners.read",
    "pipelines": "crm.objects.deals.read",
}
_V3_OBJECTS = re.compile(r"^/crm/v3/objects/([^/]+)")
_V4_OBJECTS = re.compile(r"^/crm/v4/objects/([^/]+)/[^/]+/associations/([^/]+)")
_V4_BATCH = re.compile(r"^/crm/v4/associations/([^/]+)/([^/]+)/")


def _resources_of(request: Request) -> list[str]:
    """The resources a request reads or writes (object types by their plural name)."""
    path = request.path
    if path.startswith("/crm/v3/owners"):
        return ["owners"]
    if path.startswith("/crm/v3/pipelines"):
        return ["pipelines"]
    for pattern in (_V3_OBJECTS, _V4_OBJECTS, _V4_BATCH):
        found = pattern.match(path)
        if found:
            return [TYPE_ALIASES.get(name.lower(), name.lower()) for name in found.groups()]
    return []


def _older(object_type: str, rendered: dict[str, Any]) -> dict[str, Any]:
    """The same record as it was a day earlier: an older stamp and a different value."""
    modified = MODIFIED_PROPERTY[object_type]
    props = dict(rendered["properties"])
    if modified in props:
        props[modified] = shift_iso(props[modified], -OLDER_SHIFT)
    for name in props:
        if name not in READ_ONLY_PROPERTIES:
            props[name] = f"(older) {props[name]}"
            break
    return {**rendered, "properties": props, "updatedAt": shift_iso(rendered["updatedAt"], -OLDER_SHIFT)}


def _with_older_copies(
    object_type: str, results: list[dict[str, Any]], previous: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """A `duplicate` fault: the page carries an older copy of its first record, ahead of it,
    and one of the previous page's last record, at its end."""
    if not results:
        return results
    copied = [_older(object_type, results[0]), *results]
    return [*copied, _older(object_type, previous)] if previous is not None else copied
