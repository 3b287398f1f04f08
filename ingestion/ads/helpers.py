"""Google Ads and Meta reads, date windows and checks: plain functions over an ApiClient."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingestion import guard
from ingestion.http import ApiClient, ApiError

INT64 = re.compile(r"-?\d{1,19}")


# -- Google Ads ----------------------------------------------------------------------------


def google_ids(configured: Iterable[str]) -> list[str]:
    """Customer ids as the API wants them: digits only ("123-456-7890" -> "1234567890"), each once."""
    return list(dict.fromkeys(re.sub(r"\D", "", str(cid)) for cid in configured))


def once_each(rows: Iterable[Any], key: Callable[[Any], str | None]) -> list[Any]:
    """The rows with each account once (discovery may list one twice); rows without a key stay,
    so their contract quarantines them."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        k = key(row)
        if k is not None and k in seen:
            continue
        if k is not None:
            seen.add(k)
        kept.append(row)
    return kept


def google_customer_id(row: Any) -> str | None:
    customer = row.get("customer") if isinstance(row, Mapping) else None
    value = customer.get("id") if isinstance(customer, Mapping) else None
    return None if value is None else re.sub(r"\D", "", str(value))


def meta_account_id(row: Any) -> str | None:
    value = row.get("account_id") or row.get("id") if isinstance(row, Mapping) else None
    return None if value is None else meta_digits(str(value))


def accessible_customers(client: ApiClient, version: str) -> list[str]:
    """The customer ids the credentials can read (`customers:listAccessibleCustomers`)."""
    body = client.get(f"/{version}/customers:listAccessibleCustomers")
    names = body.get("resourceNames") if isinstance(body, Mapping) else None
    if not isinstance(names, list):
        raise ApiError(client.system, "GET", "customers:listAccessibleCustomers", 200, "no resourceNames")
    return list(dict.fromkeys(str(name).rsplit("/", 1)[-1] for name in names))


def search_stream(client: ApiClient, version: str, customer_id: str, query: str) -> list[Any]:
    """Every row of a GAQL query: searchStream answers a JSON array of result batches."""
    path = f"/{version}/customers/{customer_id}/googleAds:searchStream"
    batches = client.post(path, {"query": query})
    if not isinstance(batches, list) or not all(isinstance(b, Mapping) for b in batches):
        raise ApiError(client.system, "POST", path, 200, "answer is not an array of result batches")
    rows: list[Any] = []
    for batch in batches:
        results = batch.get("results", [])  # proto3 JSON omits an empty list
        if not isinstance(results, list):
            raise ApiError(client.system, "POST", path, 200, "a batch's results is not a list")
        rows.extend(results)
    return rows


def int64_violation(record: Any, names: Iterable[str]) -> str | None:
    """The first `metrics.<name>` that is not an int64 (a JSON string of digits, or an int)."""
    metrics = record.get("metrics") if isinstance(record, Mapping) else None
    if not isinstance(metrics, Mapping):
        return None
    for name in names:
        value = metrics.get(name)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            continue
        if not isinstance(value, str):
            return f"metrics.{name} is {type(value).__name__}, expected an int64"
        if not INT64.fullmatch(value):
            return f"metrics.{name} is {value[:40]!r}, expected an int64"
    return None


# -- Meta ----------------------------------------------------------------------------------


def meta_digits(account: str) -> str:
    """An ad account id without its `act_` prefix."""
    return str(account).removeprefix("act_")


def graph_pages(client: ApiClient, path: str, params: Mapping[str, Any]) -> Iterator[list[Any]]:
    """Every page of a Graph API edge, following `paging.next` by its `after` cursor.

    An `after` cursor read before stops the scan (it would loop); a full page without
    `paging.next` is checked with one request from its own `after` cursor: rows there mean
    the edge was cut short.
    """
    after: str | None = None
    advancing = guard.Advancing(f"{client.system}: {path}")
    while True:
        body = client.get(path, params={**params, **({"after": after} if after else {})})
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
            raise ApiError(client.system, "GET", path, 200, "answer has no data list")
        yield body["data"]
        paging = body.get("paging")
        if not (isinstance(paging, Mapping) and paging.get("next")):
            _confirm_end(client, path, params, body)
            return
        after = _after_cursor(paging)
        if not after:
            raise ApiError(client.system, "GET", path, 200, "paging.next without an after cursor")
        advancing.check(after)


def _confirm_end(client: ApiClient, path: str, params: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    limit = params.get("limit")
    cursors = body["paging"].get("cursors") if isinstance(body.get("paging"), Mapping) else None
    after = cursors.get("after") if isinstance(cursors, Mapping) else None
    if not (isinstance(limit, int) and len(body["data"]) >= limit > 0 and after):
        return
    beyond = client.get(path, params={**params, "limit": 1, "after": after})
    if isinstance(beyond, Mapping) and beyond.get("data"):
        detail = "a full page had no paging.next, and rows follow its cursor"
        raise guard.truncated(f"{client.system}: {path}", detail)


def _after_cursor(paging: Mapping[str, Any]) -> str | None:
    cursors = paging.get("cursors")
    if isinstance(cursors, Mapping) and cursors.get("after"):
        return str(cursors["after"])
    found = parse_qs(urlsplit(str(paging["next"])).query).get("after")
    return found[0] if found else None


# -- dates ---------------------------------------------------------------------------------


def local_yesterday(now: datetime, time_zone: str | None) -> date:
    """The last complete day in the account's time zone (reports are in account time)."""
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date() - timedelta(days=1)


def pull_range(last: str | None, start: date, lookback_days: int, until: date) -> tuple[date, date] | None:
    """The days to (re)pull: from the cursor minus the look-back (restated days overwrite),
    or from `start` on a first run, up to `until`; None when there is nothing to pull."""
    since = start if last is None else max(start, date.fromisoformat(last) - timedelta(days=lookback_days))
    return (since, until) if since <= until else None


def windows(since: date, until: date, days: int) -> Iterator[tuple[date, date]]:
    """[since, until] cut into spans of at most `days` days."""
    step = timedelta(days=max(1, days))
    while since <= until:
        end = min(until, since + step - timedelta(days=1))
        yield since, end
        since = end + timedelta(days=1)


def newest(current: str | None, dates: Iterable[Any], cap: date) -> str | None:
    """The later of the cursor and the newest well-formed date among `dates`, at most `cap`."""
    valid = [d for d in dates if isinstance(d, str) and _is_date(d) and d <= cap.isoformat()]
    return max([*valid, *([current] if current else [])], default=None)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def days_of(keys: Iterable[str], account: str) -> list[date]:
    """The days named for one account in "<account>/<YYYY-MM-DD>" keys."""
    days = []
    for key in keys:
        owner, _, day = str(key).rpartition("/")
        if owner == account and _is_date(day):
            days.append(date.fromisoformat(day))
    return sorted(set(days))


def single_days(days: Iterable[date]) -> Iterator[tuple[date, date]]:
    """Runs of consecutive days as (first, last) spans."""
    run: list[date] = []
    for day in sorted(days):
        if run and day != run[-1] + timedelta(days=1):
            yield run[0], run[-1]
            run = []
        run.append(day)
    if run:
        yield run[0], run[-1]
