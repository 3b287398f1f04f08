"""The Google Ads and Meta apps over a real loopback server: GAQL, paging, units, auth, limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.config import DEFAULT_TOKENS, RateLimitConfig, SandboxConfig
from sandbox.faults import Drift, FaultPlan, Scripted, apply_drift
from sandbox.server import Sandbox
from sandbox.store import World
from tests.sandbox.ads_fixtures import BIG_CAMPAIGNS, BIG_CUSTOMER, DAYS, GOOGLE, META, build_world
from tests.sandbox.calendly_fixtures import connect, serve

PREFIXES = ("google-ads", "meta")
GOOGLE_AUTH = {"Authorization": f"Bearer {DEFAULT_TOKENS['google-ads']}", "developer-token": "dev-token"}
META_TOKEN = DEFAULT_TOKENS["meta"]
CUSTOMER = "1234567890"
ACCOUNT = "1000000001"
METRICS_QUERY = (
    "SELECT customer.id, customer.currency_code, customer.time_zone, campaign.id, campaign.name, "
    "campaign.status, segments.date, metrics.impressions, metrics.clicks, metrics.cost_micros, "
    "metrics.conversions, metrics.conversions_value FROM campaign "
    "WHERE segments.date BETWEEN '2026-10-01' AND '2026-10-07' ORDER BY segments.date"
)
INSIGHT_FIELDS = (
    "account_id,account_currency,campaign_id,campaign_name,date_start,date_stop,"
    "impressions,clicks,spend,actions"
)
USAGE_HEADERS = (
    "x-business-use-case-usage",
    "x-ad-account-usage",
    "x-fb-ads-insights-throttle",
    "x-app-usage",
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """One server for the read-only tests; tests that change limits or faults start their own."""
    with serve(build_world(), PREFIXES) as running:
        yield running


@pytest.fixture
def google(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with connect(sandbox.base_urls["google-ads"], GOOGLE_AUTH) as http:
        yield http


@pytest.fixture
def meta(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with connect(sandbox.base_urls["meta"], {}) as http:
        yield http


def stream(client: httpx.Client, query: str, customer: str = CUSTOMER) -> list[dict[str, Any]]:
    response = client.post(f"/v21/customers/{customer}/googleAds:searchStream", json={"query": query})
    assert response.status_code == 200, response.text
    batches = response.json()
    assert isinstance(batches, list)
    return [row for batch in batches for row in batch.get("results", [])]


def stored_google(world: World, customer: str, low: str, high: str) -> list[dict[str, Any]]:
    return [r for r in world.ads.google_rows if r["customer_id"] == customer and low <= r["date"] <= high]


# -- Google Ads ----------------------------------------------------------------------------


def test_campaign_metrics_rows_are_camel_case_with_int64_strings(
    sandbox: Sandbox, google: httpx.Client
) -> None:
    response = google.post(f"/v21/customers/{CUSTOMER}/googleAds:searchStream", json={"query": METRICS_QUERY})
    batches = response.json()
    assert len(batches) == 1
    batch = batches[0]
    assert batch["fieldMask"] == (
        "customer.id,customer.currencyCode,customer.timeZone,campaign.id,campaign.name,campaign.status,"
        "segments.date,metrics.impressions,metrics.clicks,metrics.costMicros,metrics.conversions,"
        "metrics.conversionsValue"
    )
    assert batch["requestId"]
    rows = batch["results"]
    expected = stored_google(sandbox.world, CUSTOMER, "2026-10-01", "2026-10-07")
    assert len(rows) == len(expected) == 7 * len(GOOGLE[CUSTOMER])
    assert [r["segments"]["date"] for r in rows] == sorted(r["segments"]["date"] for r in rows)
    first = rows[0]
    assert first["customer"] == {
        "resourceName": f"customers/{CUSTOMER}",
        "id": CUSTOMER,
        "currencyCode": "USD",
        "timeZone": "America/New_York",
    }
    campaign_id = first["campaign"]["id"]
    assert first["campaign"]["resourceName"] == f"customers/{CUSTOMER}/campaigns/{campaign_id}"
    source = next(
        r for r in expected if r["campaign_id"] == campaign_id and r["date"] == first["segments"]["date"]
    )
    metrics = first["metrics"]
    assert metrics["impressions"] == str(source["impressions"])
    assert metrics["clicks"] == str(source["clicks"])
    assert metrics["costMicros"] == str(source["cost_micros"])
    assert isinstance(metrics["conversions"], float)
    assert metrics["conversionsValue"] == source["conversions_value"]


def test_between_equals_comparison_pair_and_order_desc(google: httpx.Client) -> None:
    between = stream(google, METRICS_QUERY)
    pair = stream(
        google,
        METRICS_QUERY.replace(
            "segments.date BETWEEN '2026-10-01' AND '2026-10-07'",
            "segments.date >= '2026-10-01' AND segments.date <= '2026-10-07'",
        ),
    )
    assert pair == between
    descending = stream(google, METRICS_QUERY + " DESC")
    dates = [r["segments"]["date"] for r in descending]
    assert dates == sorted(dates, reverse=True)
    assert {d for d in dates} == {f"2026-10-0{d}" for d in range(1, 8)}


def test_during_last_7_days_uses_the_account_time_zone(google: httpx.Client) -> None:
    query = "SELECT campaign.id, segments.date, metrics.clicks FROM campaign"
    query += " WHERE segments.date DURING LAST_7_DAYS"
    dates = {r["segments"]["date"] for r in stream(google, query)}
    assert dates == {f"2026-10-{d}" for d in range(25, 32)}  # world now: 2026-11-01 in New York


def test_customer_and_campaign_queries(sandbox: Sandbox, google: httpx.Client) -> None:
    fields = "customer.id, customer.descriptive_name, customer.currency_code, customer.time_zone"
    customer = stream(google, f"SELECT {fields} FROM customer", "9876543210")
    assert customer == [
        {
            "customer": {
                "resourceName": "customers/9876543210",
                "id": "9876543210",
                "descriptiveName": "Trueup Ads 2",
                "currencyCode": "EUR",
                "timeZone": "Europe/Berlin",
            }
        }
    ]
    campaigns = stream(
        google,
        "SELECT campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type FROM campaign",
    )
    assert [c["campaign"]["id"] for c in campaigns] == GOOGLE[CUSTOMER]
    assert campaigns[1]["campaign"]["status"] == "PAUSED"
    assert campaigns[0]["campaign"]["advertisingChannelType"] == "SEARCH"
    assert all(set(c) == {"campaign"} for c in campaigns)


def test_customer_level_daily_metrics_sum_the_campaigns(sandbox: Sandbox, google: httpx.Client) -> None:
    query = (
        "SELECT segments.date, metrics.cost_micros, metrics.clicks FROM customer "
        "WHERE segments.date BETWEEN '2026-09-10' AND '2026-09-11'"
    )
    rows = stream(google, query, "9876543210")
    stored = stored_google(sandbox.world, "9876543210", "2026-09-10", "2026-09-11")
    assert [r["segments"]["date"] for r in rows] == ["2026-09-10", "2026-09-11"]
    for row in rows:
        day = [s for s in stored if s["date"] == row["segments"]["date"]]
        assert row["metrics"]["costMicros"] == str(sum(s["cost_micros"] for s in day))
        assert row["customer"] == {"resourceName": "customers/9876543210"}


def test_date_filter_without_date_segment_sums_the_window(sandbox: Sandbox, google: httpx.Client) -> None:
    query = (
        "SELECT campaign.id, metrics.clicks FROM campaign WHERE segments.date >= '2026-10-01' "
        "AND segments.date < '2026-10-08' AND metrics.clicks > 0 AND campaign.name LIKE 'Search%'"
    )
    rows = stream(google, query)
    stored = stored_google(sandbox.world, CUSTOMER, "2026-10-01", "2026-10-07")
    assert [r["campaign"]["id"] for r in rows] == GOOGLE[CUSTOMER]
    for row in rows:
        clicks = sum(s["clicks"] for s in stored if s["campaign_id"] == row["campaign"]["id"])
        assert row["metrics"] == {"clicks": str(clicks)}


def test_where_on_attributes_and_limit(google: httpx.Client) -> None:
    base = "SELECT campaign.id, campaign.status FROM campaign"
    enabled = stream(google, f"{base} WHERE campaign.status = 'ENABLED'")
    assert {c["campaign"]["status"] for c in enabled} == {"ENABLED"}
    assert len(enabled) == 2
    chosen = stream(google, f"{base} WHERE campaign.id IN (111000111, 111000333) ORDER BY campaign.id DESC")
    assert [c["campaign"]["id"] for c in chosen] == ["111000333", "111000111"]
    assert len(stream(google, f"{base} LIMIT 1")) == 1


@pytest.mark.parametrize("endpoint", ["search", "searchStream"])
def test_large_results_page_at_ten_thousand_rows(
    sandbox: Sandbox, google: httpx.Client, endpoint: str
) -> None:
    query = (
        "SELECT campaign.id, segments.date, metrics.impressions FROM campaign "
        "WHERE segments.date BETWEEN '2026-09-01' AND '2026-11-01'"
    )
    url = f"/v21/customers/{BIG_CUSTOMER}/googleAds:{endpoint}"
    pages: list[list[dict[str, Any]]] = []
    if endpoint == "searchStream":
        pages = [batch["results"] for batch in google.post(url, json={"query": query}).json()]
    else:
        body: dict[str, Any] = {"query": query}
        while True:
            page = google.post(url, json=body).json()
            pages.append(page["results"])
            assert page["fieldMask"] == "campaign.id,segments.date,metrics.impressions"
            if "nextPageToken" not in page:
                break
            body = {"query": query, "pageToken": page["nextPageToken"]}
    total = BIG_CAMPAIGNS * DAYS
    assert [len(p) for p in pages] == [10_000, total - 10_000]
    keys = [(r["campaign"]["id"], r["segments"]["date"]) for p in pages for r in p]
    assert len(set(keys)) == total


def test_page_size_and_foreign_page_token_are_rejected(google: httpx.Client) -> None:
    url = f"/v21/customers/{CUSTOMER}/googleAds:search"
    response = google.post(url, json={"query": "SELECT campaign.id FROM campaign", "pageSize": 100})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["errors"][0]["errorCode"] == {"requestError": "PAGE_SIZE_NOT_SUPPORTED"}
    token = google.post(url, json={"query": "SELECT campaign.id FROM campaign", "pageToken": "abc"})
    assert token.status_code == 400


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("SELEC campaign.id FROM campaign", "EXPECTED_SELECT"),
        ("SELECT campaign.id FRM campaign", "EXPECTED_FROM"),
        ("SELECT campaign.budget FROM campaign", "UNRECOGNIZED_FIELD"),
        ("SELECT ad_group.id FROM ad_group", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"),
        ("SELECT campaign.id, segments.date FROM campaign", "EXPECTED_FILTERS_ON_DATE_RANGE"),
        ("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-13-01' AND 'x'", "BAD_VALUE"),
        ("SELECT campaign.id FROM campaign WHERE", "UNEXPECTED_END_OF_QUERY"),
        ("SELECT campaign.id FROM customer", "PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE"),
    ],
)
def test_bad_gaql_is_invalid_argument(google: httpx.Client, query: str, code: str) -> None:
    response = google.post(f"/v21/customers/{CUSTOMER}/googleAds:searchStream", json={"query": query})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    detail = error["details"][0]
    assert detail["@type"] == "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure"
    assert detail["errors"][0]["errorCode"] == {"queryError": code}
    assert detail["requestId"]


def test_unknown_customer_is_permission_denied(google: httpx.Client) -> None:
    response = google.post(
        "/v19/customers/1111111111/googleAds:search", json={"query": "SELECT campaign.id FROM campaign"}
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["status"] == "PERMISSION_DENIED"
    assert "v19" in error["details"][0]["@type"]
    assert error["details"][0]["errors"][0]["errorCode"] == {"authorizationError": "USER_PERMISSION_DENIED"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong", "developer-token": "dev-token"},
        {"Authorization": f"Bearer {DEFAULT_TOKENS['google-ads']}"},
    ],
)
def test_google_auth_failures(sandbox: Sandbox, headers: dict[str, str]) -> None:
    with connect(sandbox.base_urls["google-ads"], headers) as http:
        response = http.post(
            f"/v21/customers/{CUSTOMER}/googleAds:search", json={"query": "SELECT campaign.id FROM campaign"}
        )
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert error["message"].startswith("Request is missing required authentication credential")


def test_google_rate_limit_is_429_with_retry_delay() -> None:
    with (
        serve(build_world(), ("google-ads",)) as running,
        connect(running.base_urls["google-ads"], GOOGLE_AUTH) as http,
    ):
        running.set_limits(RateLimitConfig(google_ads_per_min=2))
        url = f"/v21/customers/{CUSTOMER}/googleAds:searchStream"
        ok = [http.post(url, json={"query": "SELECT campaign.id FROM campaign"}) for _ in range(2)]
        limited = http.post(url, json={"query": "SELECT campaign.id FROM campaign"})
    assert [r.status_code for r in ok] == [200, 200]
    assert not any(h.lower().startswith("x-ratelimit") for r in ok for h in r.headers)
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    failure = error["details"][0]["errors"][0]
    assert failure["errorCode"] == {"quotaError": "RESOURCE_EXHAUSTED"}
    delay = failure["details"]["quotaErrorDetails"]["retryDelay"]
    assert delay.endswith("s") and 1 <= int(delay[:-1]) <= 60


def test_google_short_window_throttles_then_recovers() -> None:
    limits = RateLimitConfig(google_ads_per_min=2, google_ads_window_s=0.5)
    with (
        serve(build_world(), ("google-ads",), SandboxConfig(limits=limits)) as running,
        connect(running.base_urls["google-ads"], GOOGLE_AUTH) as http,
    ):
        url = f"/v21/customers/{CUSTOMER}/googleAds:searchStream"
        body = {"query": "SELECT campaign.id FROM campaign"}
        ok = [http.post(url, json=body) for _ in range(2)]
        limited = http.post(url, json=body)
        time.sleep(0.6)
        again = http.post(url, json=body)
    assert [r.status_code for r in ok] == [200, 200]
    assert limited.status_code == 429
    failure = limited.json()["error"]["details"][0]["errors"][0]
    assert failure["details"]["quotaErrorDetails"]["retryDelay"] == "1s"
    assert again.status_code == 200


def test_google_drift_on_campaign_rows() -> None:
    plan = FaultPlan(drift={"ads/google_campaign": Drift(kind="changed_type", field="metrics.clicks")})
    with (
        serve(build_world(), ("google-ads",), faults=plan) as running,
        connect(running.base_urls["google-ads"], GOOGLE_AUTH) as http,
    ):
        rows = stream(http, METRICS_QUERY)
    assert rows and all(
        r["metrics"]["clicks"]["unit"] == "drifted" for r in rows
    )  # an int64 string became an object
    assert all(isinstance(r["metrics"]["impressions"], str) for r in rows)


def test_changed_type_drift_never_adds_the_field() -> None:
    plan = FaultPlan(drift={"ads/google_campaign": Drift(kind="changed_type", field="metrics.costMicros")})
    with (
        serve(build_world(), ("google-ads",), faults=plan) as running,
        connect(running.base_urls["google-ads"], GOOGLE_AUTH) as http,
    ):
        plain = stream(http, "SELECT campaign.id, campaign.name FROM campaign")
        with_metrics = stream(http, METRICS_QUERY)
    assert plain and all(set(r) == {"campaign"} for r in plain)  # no `metrics` grafted on
    assert with_metrics and all(r["metrics"]["costMicros"]["unit"] == "drifted" for r in with_metrics)
    record = {"id": "1", "properties": {"amount": "10.00"}}
    for path in ("properties.currency", "missing.amount", "id.deeper"):
        assert apply_drift(record, Drift(kind="changed_type", field=path), "1") is record
    added = apply_drift(record, Drift(kind="new_field", field="properties.currency"), "1")
    assert added["properties"] == {"amount": "10.00", "currency": "drifted-1"}
    assert record == {"id": "1", "properties": {"amount": "10.00"}}


# -- Meta ----------------------------------------------------------------------------------


def insights_params(since: str, until: str, **extra: Any) -> dict[str, Any]:
    return {
        "access_token": META_TOKEN,
        "level": "campaign",
        "fields": INSIGHT_FIELDS,
        "time_range": json.dumps({"since": since, "until": until}),
        "time_increment": 1,
        **extra,
    }


def follow(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    response = client.get(path, params=params)
    rows, pages = [], 0
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        rows.extend(body["data"])
        paging = body.get("paging")
        if not paging or "next" not in paging:
            return rows, pages
        assert set(paging["cursors"]) == {"before", "after"}
        response = client.get(paging["next"])


@pytest.mark.parametrize("limit", [4, 5, 25, 100])
def test_insights_paging_returns_each_row_once(sandbox: Sandbox, meta: httpx.Client, limit: int) -> None:
    rows, pages = follow(
        meta, f"/v25.0/act_{ACCOUNT}/insights", insights_params("2026-10-01", "2026-10-10", limit=limit)
    )
    total = 10 * len(META[ACCOUNT])
    assert len(rows) == total
    assert pages == -(-total // limit)
    keys = [(r["date_start"], r["campaign_id"]) for r in rows]
    assert keys == sorted(set(keys))
    assert all(r["date_start"] == r["date_stop"] for r in rows)


def test_insights_rows_are_decimal_strings(sandbox: Sandbox, meta: httpx.Client) -> None:
    rows, _ = follow(
        meta, f"/v24.0/act_{ACCOUNT}/insights", insights_params("2026-09-02", "2026-10-31", limit=500)
    )
    stored = [r for r in sandbox.world.ads.meta_rows if r["account_id"] == ACCOUNT]
    assert len(rows) == len(stored) == DAYS * len(META[ACCOUNT])
    for row, source in zip(rows, stored, strict=True):
        assert (row["date_start"], row["campaign_id"]) == (source["date"], source["campaign_id"])
        assert row["impressions"] == str(source["impressions"])
        assert row["clicks"] == str(source["clicks"])
        assert Decimal(row["spend"]) == Decimal(source["spend"])
        assert isinstance(row["spend"], str)
        assert row["account_id"] == ACCOUNT and row["account_currency"] == "USD"
        actions = {a["action_type"]: a["value"] for a in row["actions"]}
        assert actions["link_click"] == str(source["clicks"])
        assert actions.get("lead") == (str(source["leads"]) if source["leads"] else None)
    assert any(r["campaign_name"] == "Leads 1 (1)" for r in rows)


def test_time_range_without_increment_sums_the_window(sandbox: Sandbox, meta: httpx.Client) -> None:
    params = insights_params("2026-10-05", "2026-10-08")
    del params["time_increment"]
    rows = meta.get(f"/v25.0/act_{ACCOUNT}/insights", params=params).json()["data"]
    assert len(rows) == len(META[ACCOUNT])
    for row in rows:
        window = [
            r
            for r in sandbox.world.ads.meta_rows
            if r["campaign_id"] == row["campaign_id"] and "2026-10-05" <= r["date"] <= "2026-10-08"
        ]
        assert len(window) == 4
        assert Decimal(row["spend"]) == sum(Decimal(r["spend"]) for r in window)
        assert (row["date_start"], row["date_stop"]) == ("2026-10-05", "2026-10-08")


def test_campaigns_and_accounts(meta: httpx.Client) -> None:
    params = {"access_token": META_TOKEN, "fields": "id,name,effective_status,daily_budget", "limit": 1}
    campaigns, pages = follow(meta, f"/v25.0/act_{ACCOUNT}/campaigns", params)
    assert [c["id"] for c in campaigns] == META[ACCOUNT] and pages == 2
    assert campaigns[0]["daily_budget"] == "5000"
    active = meta.get(
        f"/v25.0/act_{ACCOUNT}/campaigns", params={**params, "effective_status": '["PAUSED"]', "limit": 25}
    ).json()["data"]
    assert [c["effective_status"] for c in active] == ["PAUSED"]
    accounts = meta.get("/v25.0/me/adaccounts", params={"access_token": META_TOKEN}).json()["data"]
    assert [a["id"] for a in accounts] == [f"act_{a}" for a in META]


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        (f"/v25.0/act_{ACCOUNT}/insights", {"fields": "spend,bogus"}, 100),
        (f"/v25.0/act_{ACCOUNT}/insights", {"time_range": "{not json"}, 100),
        ("/v25.0/act_999/insights", {}, 100),
    ],
)
def test_meta_bad_requests(meta: httpx.Client, path: str, params: dict[str, str], code: int) -> None:
    response = meta.get(path, params={"access_token": META_TOKEN, **params})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error["fbtrace_id"]


@pytest.mark.parametrize("token", [None, "wrong"])
def test_meta_auth_failure_is_code_190(meta: httpx.Client, token: str | None) -> None:
    params = {"access_token": token} if token else {}
    response = meta.get(f"/v25.0/act_{ACCOUNT}/insights", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert (error["type"], error["code"]) == ("OAuthException", 190)
    assert error["fbtrace_id"]


def test_meta_bearer_header_is_accepted(sandbox: Sandbox) -> None:
    with connect(sandbox.base_urls["meta"], {"Authorization": f"Bearer {META_TOKEN}"}) as http:
        response = http.get(f"/v25.0/act_{ACCOUNT}/campaigns")
    assert response.status_code == 200
    assert all(h in response.headers for h in USAGE_HEADERS)


def test_meta_rate_limit_is_code_17_on_http_400() -> None:
    with serve(build_world(), ("meta",)) as running, connect(running.base_urls["meta"], {}) as http:
        running.set_limits(RateLimitConfig(meta_per_hour=3))
        url = f"/v25.0/act_{ACCOUNT}/insights"
        ok = [http.get(url, params={"access_token": META_TOKEN}) for _ in range(3)]
        limited = http.get(url, params={"access_token": META_TOKEN})
    assert [r.status_code for r in ok] == [200, 200, 200]
    usage = [json.loads(r.headers["x-ad-account-usage"])["acc_id_util_pct"] for r in ok]
    assert usage == sorted(usage) and usage[-1] == 100.0
    assert limited.status_code == 400
    assert limited.json()["error"] | {"fbtrace_id": "x"} == {
        "message": "(#17) User request limit reached",
        "type": "OAuthException",
        "is_transient": True,
        "code": 17,
        "error_subcode": 2446079,
        "fbtrace_id": "x",
    }
    business = json.loads(limited.headers["x-business-use-case-usage"])
    report = next(iter(business.values()))[0]
    assert report["call_count"] >= 100
    assert 1 <= report["estimated_time_to_regain_access"] <= 60
    assert json.loads(limited.headers["x-fb-ads-insights-throttle"])["acc_id_util_pct"] >= 100
    assert all(h in limited.headers for h in USAGE_HEADERS)


def limited_report(response: httpx.Response) -> tuple[int, int]:
    """(estimated_time_to_regain_access minutes, reset_time_duration seconds) of a throttled call."""
    business = json.loads(response.headers["x-business-use-case-usage"])
    regain = next(iter(business.values()))[0]["estimated_time_to_regain_access"]
    return regain, json.loads(response.headers["x-ad-account-usage"])["reset_time_duration"]


def test_meta_regain_reflects_the_remaining_window() -> None:
    limits = RateLimitConfig(meta_per_hour=1, meta_window_s=600.0)
    with (
        serve(build_world(), ("meta",), SandboxConfig(limits=limits)) as running,
        connect(running.base_urls["meta"], {}) as http,
    ):
        url = f"/v25.0/act_{ACCOUNT}/insights"
        assert http.get(url, params={"access_token": META_TOKEN}).status_code == 200
        limited = http.get(url, params={"access_token": META_TOKEN})
    assert limited.status_code == 400 and limited.json()["error"]["code"] == 17
    regain, reset = limited_report(limited)
    assert regain == 10 and 590 <= reset <= 600


def test_meta_short_window_throttles_then_recovers() -> None:
    limits = RateLimitConfig(meta_per_hour=2, meta_window_s=0.5)
    with (
        serve(build_world(), ("meta",), SandboxConfig(limits=limits)) as running,
        connect(running.base_urls["meta"], {}) as http,
    ):
        url = f"/v25.0/act_{ACCOUNT}/insights"
        ok = [http.get(url, params={"access_token": META_TOKEN}) for _ in range(2)]
        limited = http.get(url, params={"access_token": META_TOKEN})
        time.sleep(0.6)
        again = http.get(url, params={"access_token": META_TOKEN})
    assert [r.status_code for r in ok] == [200, 200]
    assert limited.status_code == 400 and limited.json()["error"]["code"] == 17
    assert limited_report(limited) == (0, 1)  # under a minute: no whole minute to wait
    assert again.status_code == 200


def test_meta_scripted_fault_carries_a_graph_error_code() -> None:
    plan = FaultPlan(
        scripted=[
            Scripted(system="ads", path="insights", kind="error", status=400, code=17),
            Scripted(system="ads", path="campaigns", kind="error", status=500),
        ]
    )
    with (
        serve(build_world(), ("meta",), faults=plan) as running,
        connect(running.base_urls["meta"], {}) as http,
    ):
        params = {"access_token": META_TOKEN}
        throttled = http.get(f"/v25.0/act_{ACCOUNT}/insights", params=params)
        served = http.get(f"/v25.0/act_{ACCOUNT}/insights", params=params)
        failed = http.get(f"/v25.0/act_{ACCOUNT}/campaigns", params=params)
    assert throttled.status_code == 400
    assert throttled.json()["error"] | {"fbtrace_id": "x"} == {
        "message": "(#17) User request limit reached",
        "type": "OAuthException",
        "is_transient": True,
        "code": 17,
        "error_subcode": 2446079,
        "fbtrace_id": "x",
    }
    assert all(h in throttled.headers for h in USAGE_HEADERS)
    assert served.status_code == 200
    assert failed.status_code == 500
    error = failed.json()["error"]
    assert (error["code"], error["is_transient"]) == (2, True) and "error_subcode" not in error
    raw = {"scripted": [{"system": "ads", "path": "insights", "status": 400, "code": 4}]}
    assert FaultPlan.from_dict(raw).scripted[0].code == 4


def test_meta_drift_on_insights() -> None:
    plan = FaultPlan(drift={"ads/meta_insights": Drift(kind="new_field", fraction=0.5)})
    with (
        serve(build_world(), ("meta",), faults=plan) as running,
        connect(running.base_urls["meta"], {}) as http,
    ):
        rows, _ = follow(
            http, f"/v25.0/act_{ACCOUNT}/insights", insights_params("2026-09-02", "2026-10-31", limit=200)
        )
    drifted = [r for r in rows if "trueup_drift_field" in r]
    assert 0 < len(drifted) < len(rows)
