"""Ads source: Google Ads (GAQL searchStream) and Meta (Graph insights) in one `ads` dataset."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dlt
from dlt.sources import DltResource

from ingestion import guard, progress
from ingestion.ads import helpers
from ingestion.ads import settings as s
from ingestion.contracts import Contract, declared_schema
from ingestion.http import ApiClient, ApiError, ClientLease, RetryPolicy, meta_window

SYSTEM = "ads"
CURSOR_KEY = "last_date"  # per account: the newest day loaded


@dlt.source(schema=declared_schema(SYSTEM, {"google_campaign_metrics": s.GOOGLE_METRIC_COLUMNS}))
def ads_source(
    google_base_url: str = dlt.config.value,
    google_access_token: str = dlt.secrets.value,
    google_developer_token: str = dlt.secrets.value,
    meta_base_url: str = dlt.config.value,
    meta_access_token: str = dlt.secrets.value,
    google_customer_ids: list[str] | None = None,
    google_login_customer_id: str | None = None,
    meta_account_ids: list[str] | None = None,
    start_date: str | None = None,
    google_lookback_days: int = s.GOOGLE_LOOKBACK_DAYS,
    meta_lookback_days: int = s.META_LOOKBACK_DAYS,
    window_days: int = s.WINDOW_DAYS,
    google_api_version: str = s.GOOGLE_API_VERSION,
    meta_api_version: str = s.META_API_VERSION,
    meta_page_size: int = s.META_PAGE_SIZE,
    now: datetime | None = None,
    max_attempts: int = 8,
    timeout: float = 60.0,
    refetch: dict[str, list[str]] | None = None,
) -> list[DltResource]:
    """Accounts, campaigns and daily campaign metrics; each run re-pulls the look-back window
    before the date cursor, so restated conversions overwrite what was loaded. "Today" is each
    platform's own (the Date header of its answers), never this machine's; `now` overrides it.
    An account that discovery lists twice is read once. `refetch` names report days to pull
    again (`google_campaign_metrics` / `meta_campaign_insights` -> "<account>/<YYYY-MM-DD>"),
    as an audit asks."""
    first_day = date.fromisoformat(str(start_date)) if start_date else None
    retry = RetryPolicy(max_attempts=max_attempts)
    google_headers = {"developer-token": google_developer_token}
    if google_login_customer_id:
        google_headers["login-customer-id"] = helpers.google_ids([google_login_customer_id])[0]
    google = Google(
        ClientLease(
            lambda: ApiClient(
                "google-ads",
                google_base_url,
                google_access_token,
                retry=retry,
                timeout=timeout,
                headers=google_headers,
            )
        ),
        google_api_version,
        google_customer_ids,
    )
    meta = Meta(
        ClientLease(
            lambda: ApiClient(
                "meta",
                meta_base_url,
                meta_access_token,
                auth="query",
                window=meta_window,
                retry=retry,
                timeout=timeout,
            )
        ),
        meta_api_version,
        meta_account_ids,
        meta_page_size,
    )
    tracker = progress.current(SYSTEM)
    tracker.retries = lambda: google.lease.retries() + meta.lease.retries()
    dates = Dates(now, first_day, window_days, refetch or {})
    return [
        _resource("google_customers", google.customers, ["customer__id"]),
        _resource("google_campaigns", google.campaigns, ["customer__id", "campaign__id"]),
        _resource(
            "google_campaign_metrics",
            functools.partial(google.metrics, dates, google_lookback_days),
            ["customer__id", "campaign__id", "segments__date"],
        ),
        _resource("meta_accounts", meta.accounts, ["id"]),
        _resource("meta_campaigns", meta.campaigns, ["id"]),
        _resource(
            "meta_campaign_insights",
            functools.partial(meta.insights, dates, meta_lookback_days),
            ["account_id", "campaign_id", "date_start"],
        ),
    ]


def _resource(name: str, rows: Callable[[], Iterator[Any]], key: list[str]) -> DltResource:
    def read() -> Iterator[Any]:
        yield from guard.guarded(SYSTEM, name, rows())

    return dlt.resource(read, name=name, primary_key=key, write_disposition="merge")


class Dates:
    """The run's clock (the platform's, or `now`): where history starts, yesterday per time
    zone, report spans."""

    def __init__(
        self,
        now: datetime | None,
        start: date | None,
        window_days: int,
        refetch: dict[str, list[str]] | None = None,
    ) -> None:
        self.now, self.start, self.window_days = now, start, window_days
        self.refetch = refetch or {}

    def moment(self, client: ApiClient) -> datetime:
        if self.now is not None:
            return self.now.astimezone(UTC)
        served = client.server_now()
        if served is None:
            raise ApiError(
                client.system, "GET", "/", None, "answers carry no Date header to date the reports by"
            )
        return served.astimezone(UTC)

    def to_pull(
        self,
        client: ApiClient,
        state: dict[str, Any],
        account: str,
        lookback: int,
        tz: str | None,
        resource: str = "",
    ) -> list[tuple[date, date]]:
        moment = self.moment(client)
        until = helpers.local_yesterday(moment, tz)
        start = self.start or moment.date() - timedelta(days=s.START_DAYS_BACK)
        span = helpers.pull_range(state.get(account), start, lookback, until)
        spans = list(helpers.windows(*span, self.window_days)) if span else []
        days = helpers.days_of(self.refetch.get(resource, []), account)
        return [*helpers.single_days([d for d in days if d <= until and not _within(d, spans)]), *spans]


def _within(day: date, spans: list[tuple[date, date]]) -> bool:
    return any(since <= day <= until for since, until in spans)


def _checked(
    contract: Contract, rows: list[Any], int64: tuple[str, ...] = ()
) -> Generator[Any, None, list[Any]]:
    """Yield the page (bad rows as quarantine rows) and return the good rows."""
    good, bad = contract.partition(SYSTEM, rows, lambda r: helpers.int64_violation(r, int64))
    yield from bad
    if good:
        yield good
    progress.current(SYSTEM).page(contract.resource, len(rows))
    return good


class Google:
    """Google Ads reads for one run; the customer list is read once and shared."""

    def __init__(self, lease: ClientLease, version: str, customer_ids: list[str] | None) -> None:
        self.lease, self.version, self.configured = lease, version, customer_ids
        self._customers: list[Any] | None = None

    def _customer_rows(self, client: ApiClient) -> list[Any]:
        if self._customers is None:
            ids = (
                helpers.google_ids(self.configured)
                if self.configured is not None
                else helpers.accessible_customers(client, self.version)
            )
            rows = [
                row
                for cid in dict.fromkeys(ids)
                for row in helpers.search_stream(client, self.version, cid, s.GOOGLE_CUSTOMER_QUERY)
            ]
            self._customers = helpers.once_each(rows, helpers.google_customer_id)
        return self._customers

    def _accounts(self, client: ApiClient) -> list[tuple[str, str | None]]:
        """(customer id, time zone) of every customer whose row keeps its contract."""
        good, _ = s.GOOGLE_CUSTOMERS.partition(SYSTEM, self._customer_rows(client))
        return [(str(r["customer"]["id"]), r["customer"].get("timeZone")) for r in good]

    def customers(self) -> Iterator[Any]:
        with self.lease.open() as client:
            yield from _checked(s.GOOGLE_CUSTOMERS, self._customer_rows(client))

    def campaigns(self) -> Iterator[Any]:
        with self.lease.open() as client:
            for cid, _ in self._accounts(client):
                rows = helpers.search_stream(client, self.version, cid, s.GOOGLE_CAMPAIGN_QUERY)
                yield from _checked(s.GOOGLE_CAMPAIGNS, rows)

    def metrics(self, dates: Dates, lookback: int) -> Iterator[Any]:
        state = dlt.current.resource_state("google_campaign_metrics").setdefault(CURSOR_KEY, {})
        with self.lease.open() as client:
            for cid, tz in self._accounts(client):
                for since, until in dates.to_pull(
                    client, state, cid, lookback, tz, "google_campaign_metrics"
                ):
                    query = s.GOOGLE_METRICS_QUERY.format(since=since.isoformat(), until=until.isoformat())
                    rows = helpers.search_stream(client, self.version, cid, query)
                    good = yield from _checked(s.GOOGLE_METRICS, rows, s.GOOGLE_INT64_METRICS)
                    latest = helpers.newest(state.get(cid), (r["segments"]["date"] for r in good), until)
                    if latest:
                        state[cid] = latest


class Meta:
    """Meta Graph reads for one run; the ad-account list is read once and shared."""

    def __init__(
        self, lease: ClientLease, version: str, account_ids: list[str] | None, page_size: int
    ) -> None:
        self.lease, self.version, self.configured, self.page_size = lease, version, account_ids, page_size
        self._accounts_read: list[Any] | None = None

    def _account_rows(self, client: ApiClient) -> list[Any]:
        if self._accounts_read is None:
            params = {"fields": s.META_ACCOUNT_FIELDS}
            if self.configured is None:
                pages = helpers.graph_pages(
                    client, f"/{self.version}/me/adaccounts", {**params, "limit": 100}
                )
                rows = [row for page in pages for row in page]
            else:
                digits = dict.fromkeys(helpers.meta_digits(a) for a in self.configured)
                rows = [client.get(f"/{self.version}/act_{d}", params=params) for d in digits]
            self._accounts_read = helpers.once_each(rows, helpers.meta_account_id)
        return self._accounts_read

    def _accounts(self, client: ApiClient) -> list[tuple[str, str | None]]:
        """(account digits, time zone) of every account whose row keeps its contract."""
        good, _ = s.META_ACCOUNTS.partition(SYSTEM, self._account_rows(client))
        return [(helpers.meta_digits(r["account_id"]), r.get("timezone_name")) for r in good]

    def accounts(self) -> Iterator[Any]:
        with self.lease.open() as client:
            yield from _checked(s.META_ACCOUNTS, self._account_rows(client))

    def campaigns(self) -> Iterator[Any]:
        params = {"fields": s.META_CAMPAIGN_FIELDS, "limit": self.page_size}
        with self.lease.open() as client:
            for digits, _ in self._accounts(client):
                for page in helpers.graph_pages(client, f"/{self.version}/act_{digits}/campaigns", params):
                    yield from _checked(s.META_CAMPAIGNS, page)

    def insights(self, dates: Dates, lookback: int) -> Iterator[Any]:
        state = dlt.current.resource_state("meta_campaign_insights").setdefault(CURSOR_KEY, {})
        with self.lease.open() as client:
            for digits, tz in self._accounts(client):
                spans = dates.to_pull(client, state, digits, lookback, tz, "meta_campaign_insights")
                for since, until in spans:
                    params = {
                        "level": "campaign",
                        "time_increment": 1,
                        "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
                        "fields": s.META_INSIGHT_FIELDS,
                        "limit": self.page_size,
                    }
                    path = f"/{self.version}/act_{digits}/insights"
                    for page in helpers.graph_pages(client, path, params):
                        good = yield from _checked(s.META_INSIGHTS, page)
                        latest = helpers.newest(state.get(digits), (r["date_start"] for r in good), until)
                        if latest:
                            state[digits] = latest
