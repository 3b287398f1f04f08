"""One HTTP client for every connector and reverse-ETL target, on httpx: paces ahead of each
API's rate limit from its response headers, retries 429/5xx/423/477 and dropped connections
with backoff and jitter, and never puts a token in a log line or an error message.

httpx does the HTTP: pooled keep-alive connections, timeouts, HTTP/2 where the server offers
it (ALPN), gzip, TLS, and the proxies and CA bundle the environment names (`HTTPS_PROXY`,
`HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, `SSL_CERT_FILE`, `SSL_CERT_DIR`; see the README).
On loopback a request costs about 0.5 ms of client CPU this way (`benchmarks/bench_transport.py`,
cookie handling and URL parsing included), several times a bare socket's; against the real
APIs, which allow a few to a hundred requests a second, the client waits far longer than that.
"""

from __future__ import annotations

import json
import logging
import random
import re
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import orjson

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({423, 429, 477, 500, 502, 503, 504, 521})
ROLLING_MEMORY = 10_000  # send times kept for a rolling window (HubSpot's is 100 or 190 per 10 s)
ROLLING_MARGIN = 0.05  # seconds added to a rolling window for the request's way to the server


class ApiError(RuntimeError):
    """A request that failed for good (after retries, or with a non-retryable status)."""

    def __init__(
        self, system: str, method: str, path: str, status: int | None, detail: str, body: Any = None
    ) -> None:
        self.system, self.method, self.path, self.status = system, method, path, status
        self.body = body  # the parsed error body, when the answer carried JSON
        super().__init__(f"{system}: {method} {path} failed ({status or 'no response'}): {detail}")


class ResponseShapeError(RuntimeError):
    """A 2xx answer without the list it must carry: the run stops rather than read it as empty."""


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    backoff_base: float = 0.25  # seconds; doubles per attempt
    backoff_cap: float = 30.0
    jitter: float = 0.5  # share of the delay drawn at random
    max_retry_after: float = 120.0  # a server asking for longer than this fails the request

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        return raw * (1 - self.jitter) + raw * self.jitter * rng.random()


@dataclass
class Pace:
    """Client-side pacing: at most `rate` requests per second (None: only header-driven)."""

    rate: float | None = None
    low_watermark: float = 0.1  # start pacing when less than this share of the window is left


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    throttled_seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled_seconds": round(self.throttled_seconds, 3),
            "statuses": dict(self.statuses),
        }


class ResponseLike(Protocol):
    """What the retry and throttle readers look at (an httpx response)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


HeaderReader = Callable[[Mapping[str, str]], "tuple[float, float] | None"]


def hubspot_window(headers: Mapping[str, str]) -> tuple[float, float] | None:
    """(remaining share, seconds per request at the limit) from X-HubSpot-RateLimit-*."""
    maximum = headers.get("x-hubspot-ratelimit-max")
    remaining = headers.get("x-hubspot-ratelimit-remaining")
    interval = headers.get("x-hubspot-ratelimit-interval-milliseconds")
    if not (maximum and remaining and interval) or int(maximum) <= 0:
        return None
    return int(remaining) / int(maximum), int(interval) / 1000 / int(maximum)


def hubspot_rolling(headers: Mapping[str, str]) -> tuple[int, float] | None:
    """(requests, seconds) of HubSpot's rolling window, from X-HubSpot-RateLimit-*."""
    maximum = headers.get("x-hubspot-ratelimit-max")
    interval = headers.get("x-hubspot-ratelimit-interval-milliseconds")
    if not (maximum and interval) or int(maximum) <= 0:
        return None
    return int(maximum), int(interval) / 1000


def calendly_window(headers: Mapping[str, str]) -> tuple[float, float] | None:
    """(remaining share, seconds per remaining request until reset) from X-RateLimit-*."""
    limit, remaining = headers.get("x-ratelimit-limit"), headers.get("x-ratelimit-remaining")
    reset = headers.get("x-ratelimit-reset")
    if not (limit and remaining and reset) or int(limit) <= 0:
        return None
    return int(remaining) / int(limit), float(reset) / max(int(remaining), 1)


def meta_window(headers: Mapping[str, str]) -> tuple[float, float] | None:
    """(remaining share, pause) from Meta's X-Ad-Account-Usage percentage."""
    raw = headers.get("x-ad-account-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
        used = float(usage.get("acc_id_util_pct", 0)) / 100
        reset = float(usage.get("reset_time_duration", 60))
    except (ValueError, AttributeError):
        return None
    return max(0.0, 1 - used), reset / 100


def retry_after_seconds(response: ResponseLike) -> float | None:
    """How long the server asked us to wait: Retry-After, Google's retryDelay, Meta's
    estimated_time_to_regain_access (minutes), or HubSpot's 2-second lock."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return float(header)
        except ValueError:
            return None
    if response.status_code == 423:
        return 2.0
    text = response.text[:4000] if response.content else ""
    found = re.search(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"', text)
    if found:
        return float(found.group(1))
    usage = response.headers.get("x-business-use-case-usage")
    if usage:
        minutes = re.findall(r'"estimated_time_to_regain_access"\s*:\s*(\d+)', usage)
        if minutes and max(int(m) for m in minutes) > 0:
            return 60.0 * max(int(m) for m in minutes)
    return None


def is_meta_throttle(response: ResponseLike) -> bool:
    """Meta signals throttling with HTTP 400/403 and error codes 4, 17, 613 or 80000+."""
    if response.status_code not in (400, 403):
        return False
    try:
        code = int(response.json().get("error", {}).get("code", 0))
    except (ValueError, AttributeError):
        return False
    return code in (4, 17, 32, 613) or 80000 <= code < 81000


@dataclass(frozen=True)
class Reply:
    """The final answer to a request, after retries, whatever its status (`ApiClient.exchange`)."""

    status: int
    headers: Mapping[str, str]  # case-insensitive names (httpx.Headers)
    body: Any  # the parsed JSON body; None when the answer had no body or not a JSON one
    content: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ApiClient:
    """A paced, retrying JSON client for one API (one base URL, one credential), on one
    `httpx.Client`: its connections are pooled and shared by the threads that use it."""

    def __init__(
        self,
        system: str,
        base_url: str,
        token: str,
        *,
        auth: str = "bearer",
        pace: Pace | None = None,
        window: HeaderReader | None = None,
        rolling: Callable[[Mapping[str, str]], tuple[int, float] | None] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
        seed: int | None = None,
        pool_size: int = 32,
        http2: bool = True,
    ) -> None:
        self.system = system
        self.pace = pace or Pace()
        self.window = window
        # A rolling window the server announces (HubSpot: 100 requests in any 10 s): this
        # client's own send times keep it under the limit, bursts included, so it need not
        # wait for a 429 to learn the window is full. Learned from the first answer's headers.
        self._rolling_reader = rolling
        self._rolling: tuple[int, float] | None = None
        self._sent: deque[float] = deque(maxlen=ROLLING_MEMORY)
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self._auth = auth
        self._token = token
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._server_date: str | None = None
        default_headers = {"Accept": "application/json", "User-Agent": "trueup/0.1"}
        if auth == "bearer":
            default_headers["Authorization"] = f"Bearer {token}"
        default_headers.update(headers or {})
        self._base_url = base_url.rstrip("/")
        # Threads past `pool_size` wait for a connection (no pool timeout); retries are ours
        # (paced, counted), so httpx makes one attempt per call. Proxies and the CA bundle
        # come from the environment (trust_env), as httpx reads them.
        self._http = httpx.Client(
            headers=default_headers,
            timeout=httpx.Timeout(timeout, connect=min(30.0, timeout), pool=None),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            http2=http2,
            trust_env=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def server_now(self) -> datetime | None:
        """The server's clock: the `Date` header of its latest answer (whole seconds, UTC),
        or None before any answer carried one."""
        raw = self._server_date
        if not raw:
            return None
        try:
            moment = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json_body, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        form: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send with pacing and retries; returns the parsed body of a 2xx answer and raises
        `ApiError` for any other."""
        response, body, gave_up = self._send(method, path, params, json, form, headers)
        if gave_up is not None:
            raise ApiError(self.system, method, _strip(path), None, gave_up)
        if not 200 <= response.status_code < 300:
            status, reason = response.status_code, _short_reason(response)
            raise ApiError(self.system, method, _strip(path), status, reason, body)
        return body

    def exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        form: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send with pacing and retries and return the final answer whatever its status: a
        4xx (a Stripe 400's error body, a HubSpot 207's per-record results) is the caller's to
        read, as is a 429/5xx once the retries are spent. Raises `ApiError` only when no answer
        came back (the connection failed on every attempt) or a 2xx body never parsed.

        `form` sends `application/x-www-form-urlencoded` with nested keys as Stripe reads
        them (`metadata[key]=v`, `items[0][price]=p`); `headers` adds per-request headers
        (`Idempotency-Key`): a retry re-sends the same ones, so a write keyed this way is
        applied once."""
        response, body, _ = self._send(method, path, params, json, form, headers)
        return Reply(response.status_code, response.headers, body, response.content)

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        form: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[httpx.Response, Any, str | None]:
        """The retry loop: (last answer, its parsed body, why it gave up on a retryable one)."""
        if json is not None and form is not None:
            raise ValueError("send either a JSON or a form body, not both")
        if self._auth == "query":
            params = {**dict(params or {}), "access_token": self._token}
        url = self._base_url + path + (f"?{query_string(params)}" if params else "")
        send_headers = dict(headers or {})
        content: bytes | None = None
        if json is not None:
            content = orjson.dumps(json)
            send_headers["Content-Type"] = "application/json"
        elif form is not None:
            content = form_encode(form).encode()
            send_headers["Content-Type"] = "application/x-www-form-urlencoded"
        # Redirects are followed for reads only: a write redirected elsewhere is not repeated.
        follow = method in ("GET", "HEAD")
        last_detail = ""
        unsettled: httpx.Response | None = None  # the last answer, while it asks for a retry
        for attempt in range(1, self.retry.max_attempts + 1):
            self._wait_turn()
            unsettled = None
            try:
                response = self._http.request(
                    method, url, content=content, headers=send_headers, follow_redirects=follow
                )
            except (httpx.RequestError, httpx.InvalidURL) as exc:
                last_detail = _failure(exc)
                if not _retryable(exc):
                    raise ApiError(self.system, method, _strip(path), None, last_detail) from None
                self._back_off(attempt, None, method, path, last_detail)
                continue
            self._observe(response)
            if response.status_code in RETRY_STATUSES or is_meta_throttle(response):
                last_detail = _short_reason(response)
                asked = retry_after_seconds(response)
                if asked is not None and asked > self.retry.max_retry_after:
                    return response, _parsed(response.content), f"server asked to wait {asked:.0f}s"
                unsettled = response
                self._back_off(attempt, asked, method, path, last_detail)
                continue
            if not response.content:
                return response, None, None
            try:
                return response, orjson.loads(response.content), None
            except orjson.JSONDecodeError:
                if response.status_code >= 300:
                    return response, None, None  # an error page, not JSON: the status speaks
                last_detail = "malformed JSON body"
                self._back_off(attempt, None, method, path, last_detail)
        if unsettled is not None:
            return unsettled, _parsed(unsettled.content), f"gave up after retries: {last_detail}"
        raise ApiError(self.system, method, _strip(path), None, f"gave up after retries: {last_detail}")

    def _wait_turn(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_at)
            if self._rolling is not None:
                limit, interval = self._rolling
                if 0 < limit <= len(self._sent):
                    # the limit-th latest send must have left the window (with a margin for
                    # the time a request takes to reach the server)
                    start = max(start, self._sent[-limit] + interval + ROLLING_MARGIN)
            if self.pace.rate:
                self._next_at = start + 1.0 / self.pace.rate
            if self._rolling_reader is not None:
                self._sent.append(start)
        wait = start - now
        if wait > 0:
            self.stats.throttled_seconds += wait
            time.sleep(wait)

    def _observe(self, response: httpx.Response) -> None:
        """Count the answer, note the server's clock, and pace ahead of the limit: with little
        of the window left, space requests out."""
        self.stats.requests += 1
        self.stats.statuses[response.status_code] += 1
        headers = response.headers
        self._server_date = headers.get("date") or self._server_date
        if self._rolling_reader is not None:
            rolling = self._rolling_reader(headers)
            if rolling is not None:
                self._rolling = rolling
        if self.window is None:
            return
        reading = self.window(headers)
        if reading is None:
            return
        share_left, spacing = reading
        if share_left <= self.pace.low_watermark:
            with self._lock:
                self._next_at = max(self._next_at, time.monotonic() + spacing)

    def _back_off(self, attempt: int, asked: float | None, method: str, path: str, detail: str) -> None:
        if attempt >= self.retry.max_attempts:
            return
        delay = asked if asked is not None else self.retry.delay(attempt, self._rng)
        self.stats.retries += 1
        log.info(
            "%s: %s %s: %s; retry %d in %.2fs",
            self.system,
            method,
            _strip(path),
            detail,
            attempt,
            delay,
        )
        with self._lock:
            self._next_at = max(self._next_at, time.monotonic() + delay)


def _parsed(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


def _retryable(exc: Exception) -> bool:
    """Whether another attempt may succeed: dropped or refused connections, timeouts, a
    proxy's refusal and bad gzip may pass; a certificate nobody trusts, a URL httpx cannot
    send or a redirect loop will not."""
    if isinstance(
        exc, httpx.InvalidURL | httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.TooManyRedirects
    ):
        return False
    return _certificate_error(exc) is None


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _failure(exc: Exception) -> str:
    """What went wrong, without a secret; a certificate failure says how to trust a CA."""
    untrusted = _certificate_error(exc)
    if untrusted is not None:
        reason = untrusted.verify_message or str(untrusted)
        return _redact(
            f"TLS certificate not trusted ({reason}); for a private CA or an intercepting proxy "
            "point SSL_CERT_FILE (or SSL_CERT_DIR) at its bundle"
        )
    return _redact(f"{type(exc).__name__}: {exc}".rstrip(": "))


def form_encode(data: Mapping[str, Any]) -> str:
    """`application/x-www-form-urlencoded` as Stripe reads it: nested mappings become
    `key[sub]=v`, lists `key[0]=v`, booleans `true`/`false`; None leaves the key out (send
    "" to clear a field)."""
    pairs: list[tuple[str, str]] = []

    def add(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for sub, item in value.items():
                add(f"{key}[{sub}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                add(f"{key}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        else:
            pairs.append((key, str(value)))

    for key, value in data.items():
        add(str(key), value)
    return urlencode(pairs)


def query_string(params: Mapping[str, Any]) -> str:
    """Encode query parameters: sequences repeat the key, booleans are `true`/`false`."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            pairs.append((key, "" if item is None else str(item)))
    return urlencode(pairs)


def _short_reason(response: ResponseLike) -> str:
    text = response.text[:300] if response.content else ""
    return f"HTTP {response.status_code} {_redact(text)}".strip()


_SECRETISH = re.compile(r"(sk_(?:test|live)_|Bearer\s+|access_token=)[A-Za-z0-9_\-\.]+")
_USERINFO = re.compile(r"(://)[^/@\s]+@")  # a proxy URL's user:password


def _redact(text: str) -> str:
    return _USERINFO.sub(r"\1****@", _SECRETISH.sub(lambda m: m.group(1) + "****", text))


class _RedactingFilter(logging.Filter):
    """httpx logs every request's URL at INFO, and a query-string token with it (Meta's
    `access_token`): the line is redacted before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _redact(record.getMessage()), None
        return True


for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_RedactingFilter())


def _strip(path: str) -> str:
    """The path without its query string (which may carry a token)."""
    return path.split("?", 1)[0]


class ClientLease:
    """One ApiClient shared by the resources of a source run: opened by the first resource
    that needs it and closed when the last one finishes, so pacing spans all of them."""

    def __init__(self, factory: Callable[[], ApiClient]) -> None:
        self._factory = factory
        self._client: ApiClient | None = None
        self._users = 0
        self._closed_retries = 0

    @contextmanager
    def open(self) -> Iterator[ApiClient]:
        if self._client is None:
            self._client = self._factory()
        client = self._client
        self._users += 1
        try:
            yield client
        finally:
            self._users -= 1
            if self._users == 0:
                self._closed_retries += client.stats.retries
                client.close()
                self._client = None

    def retries(self) -> int:
        return self._closed_retries + (self._client.stats.retries if self._client else 0)
