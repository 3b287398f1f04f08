"""The shared API client: pacing from headers, retries, and no secrets in errors."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ingestion.http import (
    ApiClient,
    ApiError,
    Pace,
    RetryPolicy,
    calendly_window,
    form_encode,
    hubspot_rolling,
    hubspot_window,
    is_meta_throttle,
    meta_window,
    retry_after_seconds,
)
from sandbox.ratelimit import RollingWindow

Reply = tuple[int, dict[str, str], bytes]
TOKEN = "sk_test_supersecretvalue123"


class Script:
    """Answers requests in order from a list; repeats the last answer when exhausted."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def next(self) -> Reply:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


@pytest.fixture
def serve() -> Iterator[Callable[[list[Reply]], tuple[str, Script]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(replies: list[Reply]) -> tuple[str, Script]:
        script = Script(replies)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                script.seen.append((self.command, self.path, dict(self.headers)))
                status, headers, body = script.next()
                if status == 0:  # drop the connection
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", script

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_cap=0.05)
OK: Reply = (200, {"Content-Type": "application/json"}, b'{"ok": true}')


def test_retries_server_errors_drops_and_malformed_bodies_then_succeeds(serve):
    url, script = serve([(503, {}, b"busy"), (0, {}, b""), (200, {}, b'{"trunc'), OK])
    with ApiClient("crm", url, TOKEN, retry=FAST, seed=1) as client:
        assert client.get("/things") == {"ok": True}
        assert client.stats.retries == 3
    assert script.seen[0][2]["Authorization"] == f"Bearer {TOKEN}"


def test_gives_up_after_max_attempts_without_leaking_the_token(serve):
    url, _ = serve([(500, {}, f"boom Bearer {TOKEN}".encode())])
    with ApiClient("billing", url, TOKEN, retry=FAST) as client, pytest.raises(ApiError) as raised:
        client.get("/v1/customers")
    assert "gave up" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_client_errors_fail_at_once_with_a_redacted_reason(serve):
    body = json.dumps({"error": {"message": f"Invalid API Key provided: {TOKEN}"}}).encode()
    url, script = serve([(401, {}, body)])
    with ApiClient("billing", url, TOKEN, retry=FAST) as client, pytest.raises(ApiError) as raised:
        client.get("/v1/customers")
    assert raised.value.status == 401
    assert TOKEN not in str(raised.value)
    assert len(script.seen) == 1


def test_query_token_is_sent_but_never_named_in_errors(serve):
    url, script = serve([(404, {}, b'{"error": {"message": "nope"}}')])
    with ApiClient("ads", url, TOKEN, auth="query", retry=FAST) as client, pytest.raises(ApiError) as raised:
        client.get("/v21.0/act_1/insights", params={"level": "campaign"})
    assert f"access_token={TOKEN}" in script.seen[0][1]
    assert TOKEN not in str(raised.value)
    assert "Authorization" not in script.seen[0][2]


def test_honours_retry_after_on_429(serve):
    url, _ = serve([(429, {"Retry-After": "0.3"}, b"{}"), OK])
    with ApiClient("crm", url, TOKEN, retry=FAST) as client:
        started = time.monotonic()
        client.get("/x")
        assert client.stats.statuses[429] == 1
        assert time.monotonic() - started >= 0.3  # the wait the server asked for, at least


def test_refuses_to_wait_longer_than_the_policy_allows(serve):
    url, _ = serve([(429, {"Retry-After": "86400"}, b"{}")])
    with ApiClient("crm", url, TOKEN, retry=FAST) as client, pytest.raises(ApiError, match="asked to wait"):
        client.get("/x")


def test_paces_ahead_of_the_limit_from_hubspot_headers(serve):
    low = {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "3",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    url, _ = serve([(200, low, b"{}")])
    with ApiClient("crm", url, TOKEN, window=hubspot_window, retry=FAST) as client:
        started = time.monotonic()
        client.get("/a")
        client.get("/b")
        # the second request waited one request's share of the window (0.1 s) after the first
        assert time.monotonic() - started >= 0.1
        assert client.stats.statuses[429] == 0


@pytest.fixture
def rolling_server() -> Iterator[tuple[str, list[int]]]:
    """A server allowing 5 requests in any 1 s, announced as HubSpot does; answers 429 past it."""
    window = RollingWindow(limit=5, interval=1.0)
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            decision = window.hit()
            status = 200 if decision.allowed else 429
            statuses.append(status)
            body = b"{}" if decision.allowed else b'{"status": "error", "policyName": "TEN_SECONDLY_ROLLING"}'
            self.send_response(status)
            self.send_header("X-HubSpot-RateLimit-Max", "5")
            self.send_header("X-HubSpot-RateLimit-Remaining", str(decision.remaining))
            self.send_header("X-HubSpot-RateLimit-Interval-Milliseconds", "1000")
            if not decision.allowed:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", statuses
    server.shutdown()
    server.server_close()


def test_keeps_under_a_rolling_window_from_its_own_send_times(rolling_server):
    """Header pacing alone bursts until the window is nearly spent and then meets a full
    window; counting its own sends, the client never gets a 429 and still uses the window."""
    url, statuses = rolling_server
    with ApiClient("crm", url, TOKEN, window=hubspot_window, rolling=hubspot_rolling, retry=FAST) as client:
        started = time.monotonic()
        for _ in range(12):
            client.get("/a")
        elapsed = time.monotonic() - started
    assert statuses.count(429) == 0 and len(statuses) == 12
    assert elapsed >= 2.0  # 12 requests through a window of 5 per second take two windows


def test_static_pace_spaces_requests(serve):
    url, _ = serve([OK])
    with ApiClient("crm", url, TOKEN, pace=Pace(rate=20), retry=FAST) as client:
        started = time.monotonic()
        for _ in range(4):
            client.get("/a")
        assert time.monotonic() - started >= 0.15  # 3 gaps of 1/20 s, at least


def test_header_readers():
    hub = httpx.Headers(
        {
            "x-hubspot-ratelimit-max": "100",
            "x-hubspot-ratelimit-remaining": "50",
            "x-hubspot-ratelimit-interval-milliseconds": "10000",
        }
    )
    assert hubspot_window(hub) == (0.5, 0.1)
    assert hubspot_window(httpx.Headers({})) is None
    assert hubspot_rolling(hub) == (100, 10.0)
    assert hubspot_rolling(httpx.Headers({})) is None
    cal = httpx.Headers({"x-ratelimit-limit": "500", "x-ratelimit-remaining": "9", "x-ratelimit-reset": "45"})
    assert calendly_window(cal) == (9 / 500, 5.0)
    meta = httpx.Headers({"x-ad-account-usage": '{"acc_id_util_pct": 80, "reset_time_duration": 50}'})
    assert meta_window(meta) == pytest.approx((0.2, 0.5))


def test_retry_after_from_google_and_meta_bodies():
    google = httpx.Response(
        429,
        json={"error": {"details": [{"errors": [{"details": {"quotaErrorDetails": {"retryDelay": "3s"}}}]}]}},
    )
    assert retry_after_seconds(google) == 3.0
    assert retry_after_seconds(httpx.Response(423)) == 2.0
    meta = httpx.Response(400, json={"error": {"code": 17, "error_subcode": 2446079}})
    assert is_meta_throttle(meta)
    assert not is_meta_throttle(httpx.Response(400, json={"error": {"code": 100}}))


def test_exchange_hands_back_the_final_answer_once_retries_are_spent(serve):
    url, script = serve([(503, {"Content-Type": "application/json"}, b'{"message": "busy"}')])
    with ApiClient("crm", url, TOKEN, retry=FAST) as client:
        reply = client.exchange("GET", "/x")
        assert (reply.status, reply.body, reply.ok) == (503, {"message": "busy"}, False)
        assert len(script.seen) == FAST.max_attempts
        with pytest.raises(ApiError, match="gave up after retries"):
            client.request("GET", "/x")


def test_exchange_returns_a_client_error_at_once_with_its_body(serve):
    body = b'{"error": {"code": "parameter_invalid", "param": "email"}}'
    url, script = serve([(400, {"Content-Type": "application/json"}, body)])
    with ApiClient("billing", url, TOKEN, retry=FAST) as client:
        reply = client.exchange("GET", "/v1/customers/cus_1")
    assert reply.status == 400 and reply.body["error"]["param"] == "email"
    assert reply.headers["content-type"] == "application/json"
    assert len(script.seen) == 1


def test_form_bodies_nest_keys_as_stripe_reads_them():
    encoded = form_encode(
        {
            "metadata": {"crm_id": "c 1", "old": ""},
            "items": [{"price": "p_1", "quantity": 2}],
            "expand": ["customer"],
            "livemode": False,
            "skipped": None,
        }
    )
    assert encoded.split("&") == [
        "metadata%5Bcrm_id%5D=c+1",
        "metadata%5Bold%5D=",
        "items%5B0%5D%5Bprice%5D=p_1",
        "items%5B0%5D%5Bquantity%5D=2",
        "expand%5B0%5D=customer",
        "livemode=false",
    ]


def test_server_now_is_the_date_of_the_latest_answer(serve):
    url, _ = serve([OK])
    with ApiClient("crm", url, TOKEN, retry=FAST) as client:
        assert client.server_now() is None
        before = datetime.now(UTC).replace(microsecond=0)
        client.get("/x")
        after = datetime.now(UTC)
        now = client.server_now()
    assert now is not None and now.tzinfo is not None
    assert before <= now <= after


def test_no_log_line_carries_a_query_token(serve, caplog):
    url, _ = serve([OK])
    caplog.set_level(logging.DEBUG)
    with ApiClient("ads", url, TOKEN, auth="query", retry=FAST) as client:
        client.get("/v21.0/act_1/insights", params={"level": "campaign"})
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the URL
    assert TOKEN not in caplog.text
