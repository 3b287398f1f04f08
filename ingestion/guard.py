"""What keeps a resource's read honest: a scan that ends early or loops is an error, a stamp
past the server's clock never becomes a cursor, and a resource the account cannot read is
skipped with its reason instead of stopping the whole system.

A resource's outcome (skipped or failed, with the reason) is kept on the run's progress
tracker, so the runner can report it and decide whether the run fails.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ingestion import progress
from ingestion.http import ApiError

log = logging.getLogger(__name__)

T = TypeVar("T")

# How far past the server's clock a stamp must be to count as "in the future" (and be
# flagged): the Date header has whole seconds, and an API's stores and front ends may differ
# by a little.
FUTURE_SLACK = timedelta(minutes=5)
FUTURE_SLACK_MS = int(FUTURE_SLACK.total_seconds() * 1000)

SKIPPED = "skipped"
FAILED = "failed"


class ScanError(RuntimeError):
    """A listing that cannot be trusted: it ended early or stopped advancing."""


class TruncatedScan(ScanError):
    """A scan ended while the API says (a full last page, a total) that more records remain."""


class StalledCursor(ScanError):
    """The cursor of the next page is the one just read: the scan would loop."""


@dataclass(frozen=True)
class Outcome:
    resource: str
    status: str  # SKIPPED or FAILED
    reason: str
    scope: str | None = None  # the permission (scope) to grant, when the API named it

    def text(self) -> str:
        grant = f"; grant the token the scope {self.scope}" if self.scope else ""
        return f"{self.resource} {self.status}: {self.reason}{grant}"


def record(system: str, outcome: Outcome) -> None:
    """Keep a resource's outcome on the run's tracker (and log it)."""
    log.warning("%s: %s", system, outcome.text())
    progress.current(system).outcomes[outcome.resource] = outcome


def outcomes(system: str) -> dict[str, Outcome]:
    return dict(progress.current(system).outcomes)


# -- skipped resources ---------------------------------------------------------------------

# 400 answers that mean "this account has no such object type" (not a malformed request).
_UNKNOWN_TYPE = re.compile(
    r"unable to infer object type|unsupported get request|object type .* (?:does not exist|not found)",
    re.IGNORECASE,
)


def skip_reason(error: ApiError) -> tuple[str, str | None] | None:
    """(reason, scope to grant) when an error means the account cannot or does not use this
    resource: a 403 (a missing scope or permission), a 404, or a 400 naming an unknown object
    type. Anything else is a real failure (None)."""
    if error.status == 403:
        scope = required_scope(error.body)
        return f"HTTP 403, the token lacks a scope or permission ({_message(error)})", scope
    if error.status == 404:
        return f"HTTP 404, the account does not use this object type ({_message(error)})", None
    if error.status == 400 and _UNKNOWN_TYPE.search(_message(error)):
        return f"HTTP 400, the account does not use this object type ({_message(error)})", None
    return None


def required_scope(body: Any) -> str | None:
    """The scope or permission an error body names as missing: HubSpot's
    `errors[].context.requiredGranularScopes`, or Stripe's "Having the 'x' permission"."""
    if not isinstance(body, dict):
        return None
    for item in body.get("errors") or []:
        context = item.get("context") if isinstance(item, dict) else None
        scopes = context.get("requiredGranularScopes") if isinstance(context, dict) else None
        if isinstance(scopes, list) and scopes:
            return ", ".join(str(s) for s in scopes)
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else body.get("message")
    found = re.search(r"the '([\w.:-]+)' permission", str(message or ""))
    return found.group(1) if found else None


def _message(error: ApiError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error")
        for candidate in (inner.get("message") if isinstance(inner, dict) else None, body.get("message")):
            if isinstance(candidate, str) and candidate:
                return candidate[:200]
    return str(error)[-200:]


def guarded(
    system: str, resource: str, rows: Iterable[T], on_fail: Callable[[], None] | None = None
) -> Iterator[T]:
    """Yield a resource's items; a scan error, or an answer saying the account cannot read the
    resource, ends the resource with its outcome recorded instead of failing the system. The
    resource's cursor is not moved (the generator's cursor update is never reached; `on_fail`
    puts back a cursor another resource moved)."""
    yielded = False
    try:
        for item in rows:
            yielded = True
            yield item
    except ScanError as exc:
        record(system, Outcome(resource, FAILED, str(exc)))
        if on_fail is not None:
            on_fail()
    except ApiError as exc:
        skip = skip_reason(exc)
        if skip is None:
            raise
        reason, scope = skip
        record(system, Outcome(resource, FAILED if yielded else SKIPPED, reason, scope))
        if on_fail is not None:
            on_fail()


# -- pages ---------------------------------------------------------------------------------


class Advancing:
    """Checks that each page's continuation cursor differs from every one before it."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._seen: set[str] = set()

    def check(self, cursor: Any) -> None:
        key = str(cursor)
        if key in self._seen:
            raise StalledCursor(
                f"{self.what}: the next page's cursor {key[:60]!r} was read before; "
                "the API did not advance, so the scan stops instead of looping"
            )
        self._seen.add(key)


def truncated(what: str, detail: str) -> TruncatedScan:
    return TruncatedScan(
        f"{what}: the listing ended early ({detail}); nothing past it is trusted and the cursor "
        "stays where it was, so the next run reads it again"
    )


def newest_first_wins(records: Iterable[T], key: Callable[[T], Any], stamp: Callable[[T], Any]) -> list[T]:
    """One copy per key: the one with the newest stamp (on a tie, the later one read), in the
    order the kept copies were read."""
    best: dict[Any, tuple[Any, int]] = {}
    items = list(records)
    for position, item in enumerate(items):
        k = key(item)
        if k is None:
            continue
        current = best.get(k)
        value = stamp(item)
        if current is None or _not_older(value, current[0]):
            best[k] = (value, position)
    keep = {position for _, position in best.values()}
    return [item for position, item in enumerate(items) if key(item) is None or position in keep]


def _not_older(value: Any, than: Any) -> bool:
    if value is None:
        return than is None
    if than is None:
        return True
    try:
        return bool(value >= than)
    except TypeError:
        return True


# -- the server's clock --------------------------------------------------------------------


def capped(stamps: Iterable[datetime | None], server_now: datetime | None) -> datetime | None:
    """The newest stamp at or before the server's clock (None when there is none)."""
    usable = [s for s in stamps if s is not None and (server_now is None or s <= server_now)]
    return max(usable, default=None)


def is_future(stamp: datetime | None, server_now: datetime | None) -> bool:
    return stamp is not None and server_now is not None and stamp > server_now + FUTURE_SLACK


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
