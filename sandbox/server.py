"""The sandbox HTTP server: every imitated API on one loopback port, under its own prefix.

/hubspot/...     HubSpot CRM v3 (+ v4 associations)
/stripe/...      Stripe v1
/calendly/...    Calendly v2
/google-ads/...  Google Ads REST
/meta/...        Meta Marketing API (Graph)
/_admin/...      health, stats, advance the world a day, faults, rate limits, webhooks, the
                 write log (`/_admin/writes`: every write the APIs applied for a caller)

With a webhook target (`Sandbox(..., webhooks=WebhookConfig(url))`, `POST /_admin/webhooks`
or `--webhook-url`), the sandbox sends signed webhooks for its own changes (sandbox/webhooks.py).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import logging
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from sandbox.accounts import AccountSetup
from sandbox.apps import App
from sandbox.config import AccountShape, RateLimitConfig, SandboxConfig
from sandbox.faults import FaultPlan, Faults
from sandbox.http import Request, Response, json_response
from sandbox.store import World
from sandbox.webhooks import WebhookConfig, WebhookSender

log = logging.getLogger(__name__)

# prefix -> (module, class); the trueup system each serves is the app's `system`.
APP_CLASSES = {
    "hubspot": ("sandbox.apps.hubspot", "HubSpotApp"),
    "stripe": ("sandbox.apps.stripe", "StripeApp"),
    "calendly": ("sandbox.apps.calendly", "CalendlyApp"),
    "google-ads": ("sandbox.apps.google_ads", "GoogleAdsApp"),
    "meta": ("sandbox.apps.meta", "MetaApp"),
}


def build_apps(world: World, config: SandboxConfig, faults: Faults) -> dict[str, App]:
    apps: dict[str, App] = {}
    for prefix, (module_name, class_name) in APP_CLASSES.items():
        module = importlib.import_module(module_name)
        apps[prefix] = getattr(module, class_name)(world, config, faults)
    return apps


class Sandbox:
    """A running sandbox: `with Sandbox(world) as sb: sb.base_urls["crm"]`."""

    def __init__(
        self,
        world: World,
        config: SandboxConfig | None = None,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        webhooks: WebhookConfig | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.world = world
        self.tls = tls  # a server-side context: serve HTTPS (the handshake runs in each connection's thread)
        self.config = config or SandboxConfig()
        self.faults = Faults(faults)
        self.apps = build_apps(world, self.config, self.faults)
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._date: tuple[int, str] = (0, "")
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.webhooks: WebhookSender | None = None
        if webhooks is not None:
            self.send_webhooks(webhooks)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    @property
    def base_urls(self) -> dict[str, str]:
        """Base URL per API, as a connector's `base_url` setting expects it."""
        return {prefix: f"{self.url}/{prefix}" for prefix in self.apps}

    def start(self) -> Sandbox:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.webhooks is not None:
            self.webhooks.stop()

    def send_webhooks(self, config: WebhookConfig) -> WebhookSender:
        """Start (or re-point) the webhook sender: from now on every change is delivered."""
        if self.webhooks is not None:
            self.webhooks.stop()
        self.webhooks = WebhookSender(self.world, config)
        self.webhooks.attach()
        return self.webhooks.start()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_limits(self, limits: RateLimitConfig) -> None:
        self.config.limits = limits
        for app in self.apps.values():
            app.set_limits(limits)

    def set_account(self, account: AccountShape) -> None:
        """Answer as an account of another shape from the next request on (the apps read it)."""
        self.config.account = account

    def http_date(self) -> str:
        """The Date header: the world's clock (not this machine's), skewed when the account
        shape says so; formatted once a second."""
        second = int(self.world.clock().timestamp() + self.config.account.clock_skew_seconds)
        cached = self._date
        if cached[0] != second:
            cached = self._date = (second, formatdate(second, usegmt=True))
        return cached[1]

    def count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def dispatch(self, request: Request, prefix: str) -> Response | None:
        """Serve one request; None means drop the connection (an injected fault)."""
        if prefix == "_admin":
            return self._admin(request)
        app = self.apps.get(prefix)
        if app is None:
            return json_response({"message": f"no API mounted at /{prefix}"}, 404)
        fault = self.faults.decide(app.system, request.path)
        if fault is not None:
            kind, status, code = fault
            if kind == "drop":
                return None
            if kind == "error":
                return app.error(status, "The sandbox injected a server error.", code)
            if kind == "slow":
                time.sleep(self.faults.plan.slow_seconds)
        with self.world.lock:
            response = app.handle(request)
        if fault is not None and fault[0] == "malformed":
            response.body = response.body[: max(1, len(response.body) // 2)]
        return response

    def _admin(self, request: Request) -> Response:
        action = request.path.strip("/")
        if action == "health":
            return json_response({"status": "ok", "now": self.world.clock().isoformat()})
        if action == "stats":
            return json_response({"requests": dict(self.stats), "faults": dict(self.faults.injected)})
        if action == "advance" and request.method == "POST":
            from sandbox import world as world_module

            days = _day_count(request)
            if isinstance(days, Response):
                return days
            with self.world.lock:
                world_module.advance(self.world, days=days)
            return json_response({"now": self.world.now.isoformat()})
        if action == "account" and request.method == "POST":
            try:
                self.set_account(AccountShape(**(request.json() or {})))
            except (TypeError, ValueError) as exc:
                return json_response({"message": f"invalid account shape: {exc}"}, 400)
            return json_response({"account": dataclasses.asdict(self.config.account)})
        if action == "faults" and request.method == "POST":
            self.faults.set(FaultPlan.from_dict(request.json() or {}))
            return json_response({"faults": dataclasses.asdict(self.faults.plan)})
        if action == "webhooks":
            return self._admin_webhooks(request)
        if action == "writes":
            return self._admin_writes(request)
        if action == "limits" and request.method == "POST":
            self.set_limits(RateLimitConfig(**(request.json() or {})))
            return json_response({"limits": dataclasses.asdict(self.config.limits)})
        return json_response({"message": f"unknown admin action {action!r}"}, 404)

    def _admin_writes(self, request: Request) -> Response:
        """GET: the write log (`?system=crm|billing`, `?after=N`: entries past sequence N);
        DELETE: empty it."""
        with self.world.lock:
            if request.method == "DELETE":
                self.world.write_log.clear()
            entries = list(self.world.write_log)
        system = request.arg("system")
        after = int(request.arg("after") or 0)
        picked = [e for e in entries if e["seq"] > after and (not system or e["system"] == system)]
        return json_response({"count": len(picked), "writes": picked})

    def _admin_webhooks(self, request: Request) -> Response:
        """POST: start sending to `{"url": ...}` (WebhookConfig fields); GET: what was sent
        (`?deliveries=1`: every acknowledged delivery's body too)."""
        if request.method == "POST":
            self.send_webhooks(WebhookConfig.from_dict(request.json() or {}))
        if self.webhooks is None:
            return json_response({"message": 'no webhook target; POST {"url": ...} first'}, 404)
        return json_response(self.webhooks.summary(with_bodies=request.arg("deliveries") == "1"))


MAX_ADVANCE_DAYS = 3650


def _day_count(request: Request) -> int | Response:
    """The admin `advance` body's whole number of days (1 to MAX_ADVANCE_DAYS), or a 400."""
    try:
        body = request.json() or {}
    except ValueError:
        return json_response({"message": 'the body must be JSON, e.g. {"days": 1}'}, 400)
    days = body.get("days", 1) if isinstance(body, dict) else None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_ADVANCE_DAYS:
        message = f"days must be a whole number from 1 to {MAX_ADVANCE_DAYS}, got {days!r}"
        return json_response({"message": message}, 400)
    return days


MAX_LINE = 65536
MAX_HEADERS = 100
REASONS = {status.value: status.phrase for status in HTTPStatus}


class BadRequest(Exception):
    """A request the sandbox cannot read: answered with a 400 and the connection closed."""


def _handler_for(sandbox: Sandbox) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        """HTTP/1.1 with keep-alive, read and written by hand: an ingest sends the sandbox
        hundreds of thousands of small requests, and `http.server`'s header parsing (the email
        package) and one write per header cost more than most answers take to compute."""

        # Answers go out in one write, but a client's request may still be split in two.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            if sandbox.tls is not None:  # HTTPS: the handshake is the first thing `handle` does
                self.request = sandbox.tls.wrap_socket(
                    self.request, server_side=True, do_handshake_on_connect=False
                )
            super().setup()

        def handle(self) -> None:
            if isinstance(self.connection, ssl.SSLSocket):
                try:
                    self.connection.do_handshake()
                except (ssl.SSLError, OSError):
                    return  # a client that does not trust the certificate hangs up here
            while True:
                try:
                    request_line = self.rfile.readline(MAX_LINE + 1)
                    if not request_line:
                        return  # the client closed its keep-alive connection
                    if request_line in (b"\r\n", b"\n"):
                        continue  # a stray blank line between requests (RFC 9112 section 2.2)
                    keep_alive = self._one(request_line)
                except BadRequest as exc:
                    self._write(400, {"Content-Type": "text/plain"}, str(exc).encode(), close=True)
                    return
                except (ConnectionError, TimeoutError, ssl.SSLError):
                    return
                if not keep_alive:
                    return

        def _one(self, request_line: bytes) -> bool:
            """Serve one request; whether the connection stays open."""
            parts = request_line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                raise BadRequest(f"malformed request line {request_line[:80]!r}")
            method, target, version = parts
            headers = self._headers()
            connection = headers.get("connection", "").lower()
            keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
            if "chunked" in headers.get("transfer-encoding", "").lower():
                raise BadRequest("chunked request bodies are not supported; send Content-Length")
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                raise BadRequest("Content-Length is not a number") from None
            body = self.rfile.read(length) if length > 0 else b""
            if len(body) < length:
                raise ConnectionError("the client closed the connection inside a request body")
            path, _, query = target.partition("?")
            prefix, _, rest = path.lstrip("/").partition("/")
            request = Request(
                method=method,
                path="/" + rest,
                query=parse_qs(query, keep_blank_values=True),
                headers=headers,
                body=body,
                base_url=f"{sandbox.url}/{prefix}",
                target=target,
            )
            try:
                response = sandbox.dispatch(request, prefix)
            except Exception:  # a sandbox bug must surface as a 500, not a hung client
                log.exception("sandbox handler failed for %s %s", method, path)
                response = json_response({"message": "sandbox internal error"}, 500)
            if response is None:
                sandbox.count(f"{prefix}:dropped")
                self.connection.shutdown(socket.SHUT_RDWR)
                return False
            sandbox.count(f"{prefix}:{response.status}")
            body = b"" if method == "HEAD" else response.body
            self._write(
                response.status, response.headers, body, close=not keep_alive, length=len(response.body)
            )
            return keep_alive

        def _headers(self) -> dict[str, str]:
            """The header block, names lower-cased; repeated names joined with commas."""
            headers: dict[str, str] = {}
            for _ in range(MAX_HEADERS + 1):
                line = self.rfile.readline(MAX_LINE + 1)
                if line in (b"\r\n", b"\n"):
                    return headers
                if not line:
                    raise ConnectionError("the client closed the connection inside a header block")
                if len(line) > MAX_LINE:
                    raise BadRequest("header line too long")
                name, colon, value = line.decode("latin-1").partition(":")
                if not colon or not name or name != name.strip():
                    raise BadRequest(f"malformed header line {line[:80]!r}")
                key = name.lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            raise BadRequest(f"more than {MAX_HEADERS} header lines")

        def _write(
            self, status: int, headers: dict[str, str], body: bytes, close: bool, length: int | None = None
        ) -> None:
            lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}", f"Date: {sandbox.http_date()}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            lines.append(f"Content-Length: {len(body) if length is None else length}")
            if close:
                lines.append("Connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            self.wfile.write(head + body)

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve a generated world until interrupted; writes base URLs to --ready-file."""
    from sandbox import world as world_module

    parser = argparse.ArgumentParser(prog="trueup-sandbox", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--limits", choices=["off", "realistic"], default="off")
    parser.add_argument("--ready-file", type=Path, help="write {url, base_urls} here once serving")
    parser.add_argument("--truth-dir", type=Path, help="write the ground truth here")
    parser.add_argument("--webhook-url", help="send signed webhooks to {URL}/{stripe,hubspot,calendly}")
    parser.add_argument(
        "--setup",
        default="",
        help="account switches, comma-separated: custom_properties, no_metadata_links, no_crm_meetings, "
        "current_stripe, or all (sandbox/WORLD.md)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    setup = AccountSetup.parse(args.setup)
    world = world_module.generate(seed=args.seed, contacts=args.contacts, anchor=anchor, setup=setup)
    if args.truth_dir:
        world_module.write_truth(world, args.truth_dir)
    limits = RateLimitConfig.realistic() if args.limits == "realistic" else RateLimitConfig()
    webhooks = WebhookConfig(url=args.webhook_url) if args.webhook_url else None
    sandbox = Sandbox(world, SandboxConfig(limits=limits), host=args.host, port=args.port, webhooks=webhooks)
    ready = {"url": sandbox.url, "base_urls": sandbox.base_urls, "setup": setup.switches}
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready))
        tmp.replace(args.ready_file)
    print(json.dumps(ready), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sandbox.httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
