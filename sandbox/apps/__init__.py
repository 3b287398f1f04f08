"""One app per imitated API; each is mounted under its own path prefix."""

from __future__ import annotations

from typing import Protocol

from sandbox.config import RateLimitConfig
from sandbox.http import Request, Response


class App(Protocol):
    """What the server needs of an API app."""

    system: str  # the trueup system it belongs to: crm, billing, scheduling, ads
    prefix: str  # first path segment it is mounted under, e.g. "hubspot"

    def handle(self, request: Request) -> Response:
        """Serve one request (auth, rate limits and routing are the app's own)."""
        ...

    def error(self, status: int, message: str, code: int | None = None) -> Response:
        """The API's own error body for a server-side fault with this status (and, where the
        API has them, this error code)."""
        ...

    def set_limits(self, limits: RateLimitConfig) -> None:
        """Replace the app's rate limiters (the admin endpoint and tests call this)."""
        ...
