"""Calendly API v2 imitation: users, scheduled events, invitees and cancellations."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sandbox.config import CALENDLY_API, RateLimitConfig, SandboxConfig
from sandbox.faults import FUTURE_SHIFT, OLDER_SHIFT, Faults, apply_drift, shift_iso
from sandbox.http import Request, Response, Router, json_response
from sandbox.ratelimit import Decision, Limits
from sandbox.store import Collection, Record, World

NOMINAL_LIMIT = 500  # what the headers report while rate limiting is off (paid plan)
WINDOW_SECONDS = 60.0
NOT_FOUND = "The server could not find the requested resource."
TOP = "\uffff"  # sorts after every timestamp and URI

TITLES = {
    400: "Invalid Argument",
    401: "Unauthenticated",
    403: "Permission Denied",
    404: "Resource Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


class CalendlyError(Exception):
    """An error answered in Calendly's `{title, message, details?}` shape."""

    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def invalid(parameter: str, message: str) -> CalendlyError:
    details = [{"parameter": parameter, "message": message}]
    return CalendlyError(400, "The supplied parameters are invalid.", details)


def calendly_time(value: datetime) -> str:
    """Calendly's timestamp format: UTC with microseconds and a `Z`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_time(value: str) -> str:
    """Any ISO-8601 timestamp as Calendly's format, so strings compare chronologically."""
    return calendly_time(datetime.fromisoformat(value.replace("Z", "+00:00")))


def time_param(request: Request, name: str) -> str | None:
    raw = request.arg(name)
    if raw is None or raw == "":
        return None
    try:
        return normalize_time(raw)
    except ValueError:
        raise invalid(name, "must be a valid ISO-8601 UTC timestamp") from None


def encode_token(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_token(token: str) -> list[str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise invalid("page_token", "is invalid") from None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        raise invalid("page_token", "is invalid")
    return key


def parse_count(request: Request) -> int:
    raw = request.arg("count", "20") or "20"
    try:
        count = int(raw)
    except ValueError:
        raise invalid("count", "must be an integer between 1 and 100") from None
    if not 1 <= count <= 100:
        raise invalid("count", "must be an integer between 1 and 100")
    return count


def parse_sort(request: Request, field: str) -> bool:
    """Return True for descending order; only `field:asc|desc` is sortable."""
    raw = request.arg("sort") or f"{field}:asc"
    name, _, direction = raw.partition(":")
    if name != field or direction not in ("asc", "desc"):
        raise invalid("sort", f"must be one of {field}:asc, {field}:desc")
    return direction == "desc"


def parse_status(request: Request) -> str | None:
    status = request.arg("status") or None
    if status is not None and status not in ("active", "canceled"):
        raise invalid("status", "must be one of active, canceled")
    return status


class CalendlyApp:
    """Serves `world.scheduling` as Calendly's v2 REST API under /calendly."""

    system = "scheduling"
    prefix = "calendly"

    def __init__(self, world: World, config: SandboxConfig, faults: Faults) -> None:
        self.world = world
        self.config = config
        self.faults = faults
        self.limits = Limits()
        self.limit: int | None = None
        self._last: Decision | None = None
        self.set_limits(config.limits)
        self.router = Router()
        self.router.add("GET", "/users/me", self.get_me)
        self.router.add("GET", "/users/{uuid}", self.get_user)
        self.router.add("GET", "/scheduled_events", self.list_events)
        self.router.add("GET", "/scheduled_events/{event}", self.get_event)
        self.router.add("GET", "/scheduled_events/{event}/invitees", self.list_invitees)
        self.router.add("GET", "/scheduled_events/{event}/invitees/{invitee}", self.get_invitee)
        self.router.add("POST", "/scheduled_events/{event}/cancellation", self.cancel_event)

    # -- the App protocol --------------------------------------------------------------

    def set_limits(self, limits: RateLimitConfig) -> None:
        self.limit = limits.calendly_per_min
        spec = {"calendly": (self.limit, WINDOW_SECONDS)} if self.limit else {}
        self.limits = Limits(spec)
        self._last = None

    def error(self, status: int, message: str, code: int | None = None) -> Response:
        title = TITLES.get(status, "Internal Server Error" if status >= 500 else "Error")
        return json_response({"title": title, "message": message}, status, self._rate_headers(self._last))

    def handle(self, request: Request) -> Response:
        decision = self.limits.hit("calendly")
        self._last = decision
        headers = self._rate_headers(decision)
        if request.bearer() != self.config.tokens.get("calendly"):
            return self._error(CalendlyError(401, "The access token is invalid"), headers)
        if decision is not None and not decision.allowed:
            message = "You have exceeded the rate limit. Please try again later."
            return self._error(CalendlyError(429, message), headers)
        handler = self.router.match(request)
        resource = _resource_of(request.path)
        if handler is None or self.config.account.is_unused(self.system, resource):
            return self._error(CalendlyError(404, NOT_FOUND), headers)
        if self.config.account.is_forbidden(self.system, resource):
            message = "You do not have permission to access this resource."
            return self._error(CalendlyError(403, message), headers)
        try:
            response = handler(request)
        except CalendlyError as exc:
            return self._error(exc, headers)
        response.headers.update(headers)
        return response

    def _error(self, exc: CalendlyError, headers: dict[str, str]) -> Response:
        body: dict[str, Any] = {"title": TITLES.get(exc.status, "Error"), "message": exc.message}
        if exc.details is not None:
            body["details"] = exc.details
        return json_response(body, exc.status, headers)

    def _rate_headers(self, decision: Decision | None) -> dict[str, str]:
        if decision is None:  # limits off: report the nominal paid-plan quota, untouched
            limit, remaining, reset = NOMINAL_LIMIT, NOMINAL_LIMIT, WINDOW_SECONDS
        else:
            limit, remaining, reset = decision.limit, decision.remaining, decision.reset_seconds
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(max(1, math.ceil(reset))),
        }

    # -- users ---------------------------------------------------------------------------

    def get_me(self, request: Request) -> Response:
        users = self.world.scheduling.users
        if not users:
            raise CalendlyError(404, NOT_FOUND)
        return json_response({"resource": users[0]})

    def get_user(self, request: Request) -> Response:
        uri = f"{CALENDLY_API}/users/{request.params['uuid']}"
        for user in self.world.scheduling.users:
            if user["uri"] == uri:
                return json_response({"resource": user})
        raise CalendlyError(404, NOT_FOUND)

    # -- scheduled events ----------------------------------------------------------------

    def list_events(self, request: Request) -> Response:
        scheduling = self.world.scheduling
        organization, user = request.arg("organization"), request.arg("user")
        if not organization and not user:
            raise invalid("organization", "organization or user is required")
        if organization and organization != scheduling.organization:
            raise CalendlyError(403, "You do not have permission to access this resource.")
        if user and user not in {u["uri"] for u in scheduling.users}:
            raise CalendlyError(403, "You do not have permission to access this resource.")
        status = parse_status(request)
        lower = time_param(request, "min_start_time") or ""
        upper = time_param(request, "max_start_time") or TOP
        descending = parse_sort(request, "start_time")
        count = parse_count(request)
        token = request.arg("page_token")
        after = decode_token(token) if token else None
        email = (request.arg("invitee_email") or "").strip().lower() or None

        def accept(event: Record) -> bool:
            if user and not any(m.get("user") == user for m in event.get("event_memberships") or []):
                return False
            return email is None or email in self._event_emails(event["uri"])

        prefix: tuple[str, ...] = (status,) if status else ()
        name, sort_key = self._event_view(status is not None)
        keys, ids = scheduling.events.view(name, sort_key)
        if self.config.account.is_empty(self.system, "scheduled_events"):
            keys, ids = [], []  # a fresh account: none yet
        if self.faults.stalls(self.system, "scheduled_events"):
            after = None  # a listing stuck on its first page
        window = (lower, upper)
        page, last = scan_page(keys, ids, scheduling.events, prefix, window, after, descending, count, accept)
        records = self._served("scheduled_events", page)
        if self.faults.truncates(self.system, "scheduled_events"):
            last = None  # the page never says more follow
        return json_response(paginated(request, records, last))

    def _served(self, resource: str, page: list[Record]) -> list[Record]:
        """Records as served: drift, stamps a `future` fault moves years ahead, and the older
        copies a `duplicate` fault adds (ahead of the record)."""
        drift = self.faults.drift_for(self.system, resource)
        records = []
        for record in page:
            out = apply_drift(record, drift, record["uri"]) if drift else record
            if self.faults.in_future(self.system, resource, record["uri"]):
                out = {**out, "updated_at": shift_iso(out.get("updated_at"), FUTURE_SHIFT)}
            records.append(out)
        if records and self.faults.duplicates(self.system, resource):
            first = records[0]
            older = {**first, "updated_at": shift_iso(first.get("updated_at"), -OLDER_SHIFT)}
            older["name" if resource == "scheduled_events" else "timezone"] = "(older)"
            records.insert(0, older)
        return records

    @staticmethod
    def _event_view(by_status: bool) -> tuple[str, Callable[[Record], Any]]:
        if by_status:
            return "status_start", lambda e: (e["status"], normalize_time(e["start_time"]), e["uri"])
        return "start", lambda e: (normalize_time(e["start_time"]), e["uri"])

    def _event_emails(self, event_uri: str) -> set[str]:
        scheduling = self.world.scheduling
        emails = set()
        for uri in scheduling.invitees_by_event.get(event_uri, []):
            invitee = scheduling.invitees.get(uri)
            if invitee is not None:
                emails.add(str(invitee.get("email") or "").strip().lower())
        return emails

    def _event(self, request: Request) -> Record:
        event = self.world.scheduling.events.get(f"{CALENDLY_API}/scheduled_events/{request.params['event']}")
        if event is None or self.config.account.is_empty(self.system, "scheduled_events"):
            raise CalendlyError(404, NOT_FOUND)
        return event

    def get_event(self, request: Request) -> Response:
        event = self._event(request)
        drift = self.faults.drift_for(self.system, "scheduled_events")
        served = apply_drift(event, drift, event["uri"]) if drift else event
        if self.faults.in_future(self.system, "scheduled_events", event["uri"]):
            served = {**served, "updated_at": shift_iso(served.get("updated_at"), FUTURE_SHIFT)}
        return json_response({"resource": served})

    # -- invitees ------------------------------------------------------------------------

    def list_invitees(self, request: Request) -> Response:
        event = self._event(request)
        scheduling = self.world.scheduling
        status = parse_status(request)
        descending = parse_sort(request, "created_at")
        count = parse_count(request)
        token = request.arg("page_token")
        after = decode_token(token) if token else None
        email = (request.arg("email") or "").strip().lower() or None
        uris = scheduling.invitees_by_event.get(event["uri"], [])
        invitees = [scheduling.invitees.get(uri) for uri in uris]
        chosen = [
            i
            for i in invitees
            if i is not None
            and (status is None or i.get("status") == status)
            and (email is None or str(i.get("email") or "").strip().lower() == email)
        ]
        chosen.sort(key=lambda i: (normalize_time(i["created_at"]), i["uri"]), reverse=descending)
        keyed = [((normalize_time(i["created_at"]), i["uri"]), i) for i in chosen]
        if after is not None and not self.faults.stalls(self.system, "invitees"):
            cursor = (after[0], after[1])
            keyed = [(k, i) for k, i in keyed if (k < cursor if descending else k > cursor)]
        page = keyed[:count]
        last = list(page[-1][0]) if page and len(keyed) > count else None
        if self.faults.truncates(self.system, "invitees"):
            last = None
        records = self._served("invitees", [i for _, i in page])
        return json_response(paginated(request, records, last))

    def get_invitee(self, request: Request) -> Response:
        event = self._event(request)
        invitee = self.world.scheduling.invitees.get(f"{event['uri']}/invitees/{request.params['invitee']}")
        if invitee is None:
            raise CalendlyError(404, NOT_FOUND)
        drift = self.faults.drift_for(self.system, "invitees")
        return json_response({"resource": apply_drift(invitee, drift, invitee["uri"]) if drift else invitee})

    # -- writes --------------------------------------------------------------------------

    def cancel_event(self, request: Request) -> Response:
        event = self._event(request)
        try:
            body = request.json() or {}
        except ValueError:
            raise invalid("reason", "the request body must be JSON") from None
        reason = body.get("reason") if isinstance(body, dict) else None
        if reason is not None and not isinstance(reason, str):
            raise invalid("reason", "must be a string")
        if event.get("status") == "canceled":
            raise CalendlyError(403, "Event is already canceled")
        scheduling = self.world.scheduling
        now = calendly_time(self.world.clock())
        host = scheduling.users[0]["name"] if scheduling.users else "Host"
        cancellation = {"canceled_by": host, "reason": reason, "canceler_type": "host", "created_at": now}
        counter = dict(event.get("invitees_counter") or {})
        counter["active"] = 0
        changes = {"status": "canceled", "cancellation": cancellation, "updated_at": now}
        scheduling.events.put({**event, **changes, "invitees_counter": counter})
        for uri in scheduling.invitees_by_event.get(event["uri"], []):
            invitee = scheduling.invitees.get(uri)
            if invitee is not None and invitee.get("status") == "active":
                scheduling.invitees.put(
                    {**invitee, "status": "canceled", "cancellation": dict(cancellation), "updated_at": now}
                )
        return json_response({"resource": cancellation}, 201)


def _resource_of(path: str) -> str:
    """The resource a path reads: scheduled_events, invitees, or users."""
    if "/invitees" in path:
        return "invitees"
    if path.startswith("/scheduled_events"):
        return "scheduled_events"
    return "users"


def scan_page(
    keys: list[Any],
    ids: list[str],
    collection: Collection,
    prefix: tuple[str, ...],
    window: tuple[str, str],
    after: list[str] | None,
    descending: bool,
    count: int,
    accept: Callable[[Record], bool],
) -> tuple[list[Record], list[str] | None]:
    """Walk a sorted view between bisect bounds; return a page and its cursor (None at the end).

    Keys are `prefix + (start_time, uri)`; the cursor is the last served `(start_time, uri)`.
    """
    lower, upper = window
    lo = bisect.bisect_left(keys, (*prefix, lower))
    hi = bisect.bisect_left(keys, (*prefix, upper))
    if after is not None:
        cursor = (*prefix, *after)
        if descending:
            hi = min(hi, bisect.bisect_left(keys, cursor))
        else:
            lo = max(lo, bisect.bisect_right(keys, cursor))
    positions = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
    page: list[Record] = []
    last: list[str] | None = None
    for index in positions:
        record = collection.get(ids[index])
        if record is None or not accept(record):
            continue
        if len(page) == count:
            return page, last
        page.append(record)
        last = [str(k) for k in keys[index][len(prefix) :]]
    return page, None


def paginated(request: Request, records: list[Record], last: list[str] | None) -> dict[str, Any]:
    """Calendly's `{collection, pagination}` envelope; next_page repeats the query with a token."""
    token = encode_token(last) if last is not None else None
    next_page = None
    if token is not None:
        query = [(k, v) for k, values in request.query.items() if k != "page_token" for v in values]
        query.append(("page_token", token))
        next_page = f"{request.base_url}{request.path}?{urlencode(query)}"
    return {
        "collection": records,
        "pagination": {
            "count": len(records),
            "next_page": next_page,
            "previous_page": None,
            "next_page_token": token,
            "previous_page_token": None,
        },
    }
