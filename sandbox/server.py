"""The sandbox HTTP server: every imitated API on one loopback port, under its own prefix.

/hubspot/...     HubSpot CRM v3 (+ v4 associations)
/stripe/...      Stripe v1
/calendly/...    Calendly v2
/google-ads/...  Google Ads REST
/meta/...        Meta Marketing API (Graph)
/_admin/...      health, stats, advance the world a day, faults, rate limits
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
from sandbox.config import RateLimitConfig, SandboxConfig
from sandbox.faults import FaultPlan, Faults
from sandbox.http import Request, Response, json_response
from sandbox.store import World

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
    ) -> None:
        self.world = world
        self.config = config or SandboxConfig()
        self.faults = Faults(faults)
        self.apps = build_apps(world, self.config, self.faults)
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

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

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_limits(self, limits: RateLimitConfig) -> None:
        self.config.limits = limits
        for app in self.apps.values():
            app.set_limits(limits)

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

            days = int((request.json() or {}).get("days", 1))
            with self.world.lock:
                world_module.advance(self.world, days=days)
            return json_response({"now": self.world.now.isoformat()})
        if action == "faults" and request.method == "POST":
            self.faults.set(FaultPlan.from_dict(request.json() or {}))
            return json_response({"faults": dataclasses.asdict(self.faults.plan)})
        if action == "limits" and request.method == "POST":
            self.set_limits(RateLimitConfig(**(request.json() or {})))
            return json_response({"limits": dataclasses.asdict(self.config.limits)})
        return json_response({"message": f"unknown admin action {action!r}"}, 404)


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

        def handle(self) -> None:
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
                except (ConnectionError, TimeoutError):
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
            lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}", f"Date: {_http_date()}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            lines.append(f"Content-Length: {len(body) if length is None else length}")
            if close:
                lines.append("Connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            self.wfile.write(head + body)

    return Handler


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header's value, formatted once a second."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, formatdate(second, usegmt=True))
    return _date_cache[1]


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
    sandbox = Sandbox(world, SandboxConfig(limits=limits), host=args.host, port=args.port)
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
