"""The webhook receiver: an ASGI app (Starlette, served by uvicorn), one endpoint per provider.

`POST /webhooks/{stripe,hubspot,calendly}` reads the raw body (capped), checks the signature
as the provider signs it, reads the events, and answers 2xx only once they are committed to
the inbox, before any processing. Refused deliveries get the status the provider expects
and a log line with the reason, never the secret or the signature. `GET /healthz` answers
while the process serves; every other path or method is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ingestion.webhooks import events as events_module
from ingestion.webhooks import signatures
from ingestion.webhooks.inbox import Accept, InboxWriter, Reject, Tally, now_us
from ingestion.webhooks.settings import PROVIDERS, WebhookSettings

log = logging.getLogger(__name__)

PATH = "/webhooks/{provider}"
TOO_LARGE = "body_too_large"
MALFORMED = "malformed_body"
UNKNOWN_PATH = "unknown_path"
METHOD_NOT_ALLOWED = "method_not_allowed"
LOG_EVERY_SECONDS = 10.0  # one log line per provider and reason this often, whatever a flood sends


class Receiver:
    """The request handling, apart from the ASGI wiring (so the clock and the writer are given)."""

    def __init__(
        self, settings: WebhookSettings, writer: InboxWriter, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.clock = clock
        self._logged: dict[tuple[str, str], float] = {}

    async def handle(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        if provider not in PROVIDERS:
            return await self.refuse("unknown", UNKNOWN_PATH, 404, f"no endpoint {request.url.path}")
        received = now_us()
        body = await self._body(request)
        if body is None:
            return await self.refuse(
                provider, TOO_LARGE, 413, f"body over {self.settings.max_body_bytes} bytes"
            )
        headers = {name: value for name, value in request.headers.items()}
        delivery = signatures.Delivery(request.method, self.signed_uri(request), headers, body)
        try:
            signatures.verify(
                provider,
                delivery,
                self.settings.secrets_for(provider),
                self.clock(),
                self.settings.tolerance.get(provider, 300.0),
            )
        except signatures.Refused as refused:
            return await self.refuse(
                provider, refused.reason, signatures.REFUSAL_STATUS[provider], str(refused)
            )
        return await self._store(provider, received, headers, body)

    async def _store(self, provider: str, received: int, headers: dict[str, str], body: bytes) -> Response:
        try:
            inbound = events_module.parse(provider, body)
        except events_module.Malformed as bad:
            # Authentic but unreadable: kept with the reason (raw_webhooks._quarantine after the
            # drain) and acknowledged, since a redelivery cannot make it readable.
            self._log(provider, MALFORMED, f"kept in the inbox's rejected deliveries: {bad}")
            await asyncio.wrap_future(self.writer.submit(Reject(provider, received, headers, body, str(bad))))
            return JSONResponse({"status": "quarantined", "reason": str(bad)})
        try:
            stored = await asyncio.wrap_future(
                self.writer.submit(Accept(provider, received, headers, body, inbound))
            )
        except Exception as exc:  # not durable: the provider must retry
            log.error("%s delivery not stored (%s); answering 503", provider, type(exc).__name__)
            return JSONResponse({"error": "inbox unavailable"}, status_code=503)
        return JSONResponse({"status": "stored", "new": stored.new, "duplicates": stored.duplicates})

    async def _body(self, request: Request) -> bytes | None:
        """The raw body, or None when it is over the cap (read no further than the cap)."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def signed_uri(self, request: Request) -> str:
        """The URL the provider called: the configured public base URL plus the path (a receiver
        behind a proxy or a tunnel never sees the public host), else the request's own URL."""
        base = self.settings.public_base_url
        if not base:
            return str(request.url)
        query = request.url.query
        return base + request.url.path + (f"?{query}" if query else "")

    async def refuse(self, provider: str, reason: str, status: int, detail: str) -> Response:
        """Count the refusal (committed before the answer, so the counts are exact) and answer."""
        self._log(provider, reason, detail)
        try:
            await asyncio.wrap_future(self.writer.submit(Tally(provider, reason, now_us())))
        except Exception as exc:  # the refusal stands even when it cannot be counted
            log.error("could not count a refused delivery (%s)", type(exc).__name__)
        return JSONResponse({"error": reason}, status_code=status)

    def _log(self, provider: str, reason: str, detail: str) -> None:
        moment = time.monotonic()
        if moment - self._logged.get((provider, reason), -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
            self._logged[(provider, reason)] = moment
            what = f"a {provider} webhook delivery" if provider in PROVIDERS else "a request"
            log.warning("refused %s: %s", what, detail)


def create_app(
    settings: WebhookSettings,
    clock: Callable[[], float] = time.time,
    writer: InboxWriter | None = None,
) -> Starlette:
    """The ASGI app. The inbox writer starts with the app (or is given) and stops with it."""
    holder: dict[str, Receiver] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = writer is None
        active = writer or InboxWriter(settings.inbox)
        holder["receiver"] = Receiver(settings, active, clock)
        try:
            yield
        finally:
            if own:
                active.close()

    async def webhook(request: Request) -> Response:
        return await holder["receiver"].handle(request)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc: Exception) -> Response:
        reason = METHOD_NOT_ALLOWED if getattr(exc, "status_code", 404) == 405 else UNKNOWN_PATH
        status = 405 if reason == METHOD_NOT_ALLOWED else 404
        receiver = holder.get("receiver")
        if receiver is not None:
            return await receiver.refuse("unknown", reason, status, f"{request.method} {request.url.path}")
        return JSONResponse({"error": reason}, status_code=status)

    routes = [Route(PATH, webhook, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one), so the caller knows the port before serving."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def server(settings: WebhookSettings, clock: Callable[[], float] = time.time) -> Any:
    """A uvicorn server for the app (one process: the inbox has one writer thread)."""
    import uvicorn

    config = uvicorn.Config(
        create_app(settings, clock=clock),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


def serve(
    settings: WebhookSettings,
    sock: socket.socket | None = None,
    ready: Callable[[str], Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Serve until interrupted."""
    sock = sock or bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    missing = [p for p in PROVIDERS if not settings.secrets_for(p)]
    if missing:
        log.warning("no webhook secret configured for %s: their deliveries are refused", ", ".join(missing))
    if ready is not None:
        ready(f"http://{host}:{port}")
    server(settings, clock).run(sockets=[sock])


def write_ready_file(path: Path, url: str) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"url": url}))
    temporary.replace(path)
