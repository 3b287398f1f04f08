"""Request, response and routing primitives shared by the sandbox API apps."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson


@dataclass
class Request:
    method: str
    path: str  # below the app's prefix, e.g. "/crm/v3/objects/contacts"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    base_url: str = ""  # e.g. "http://127.0.0.1:8123/hubspot"
    params: dict[str, str] = field(default_factory=dict)  # path parameters
    target: str = ""  # the request target as sent (its length is what URL limits count)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def json(self) -> Any:
        """The JSON body; raises ValueError for what the real APIs refuse as well: invalid UTF-8,
        a lone surrogate escape, NaN or Infinity."""
        return orjson.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        """The form-encoded body; raises UnicodeDecodeError when a value is not valid UTF-8 (a
        percent-encoded lone surrogate, say)."""
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True, errors="strict")

    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    merged = {"Content-Type": "application/json"}
    merged.update(headers or {})
    return Response(status=status, body=body, headers=merged)


Handler = Callable[[Request], Response]


class Router:
    """Method + path-pattern routing; `{name}` segments become `request.params`."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return decorate

    def match(self, request: Request) -> Handler | None:
        """Return the handler and fill `request.params`; None when nothing matches."""
        for method, regex, handler in self._routes:
            found = regex.match(request.path)
            if found and method == request.method:
                request.params = found.groupdict()
                return handler
        return None
