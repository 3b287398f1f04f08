"""HTTP/1.1 with keep-alive for one origin, read and written directly on the socket.

An ingest makes hundreds of thousands of small requests (one per Calendly event for its
invitees). Per request and parsed body, urllib3 over `http.client` costs about 235 µs of
CPU, most of it in header parsing through the email package and in pool bookkeeping, and
httpx about 465 µs; this costs about 60 µs (`benchmarks/bench_transport.py`).

It speaks only what the connectors need: requests with a known body length, answers framed
by Content-Length, chunked transfer or the connection's end, gzip or deflate bodies, HTTPS
with the system's certificates, and connections kept open and reused across threads.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

MAX_LINE = 65536
MAX_HEADERS = 200
_NO_BODY = frozenset({204, 304})


class TransportError(OSError):
    """The connection failed or the answer could not be read: the request may be retried."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer; also read through the names httpx responses use (`status_code`,
    `content`, `text`, `json()`), which the client's retry and throttle readers expect."""

    status: int
    headers: dict[str, str]  # lower-cased names; repeated names joined with ", "
    body: bytes

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def content(self) -> bytes:
        return self.body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.body)


class _Connection:
    def __init__(
        self, host: str, port: int, tls: ssl.SSLContext | None, connect_timeout: float, timeout: float
    ) -> None:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def dropped(self) -> bool:
        """Whether the server has closed this idle connection (or sent what nobody asked for)."""
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                return bool(poller.poll(0))
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def exchange(self, method: str, head: bytes, body: bytes | None) -> tuple[Answer, bool]:
        """Send one request and read its answer; also whether the connection can be reused."""
        self.sock.sendall(head + body if body else head)
        while True:
            status, version = self._status_line()
            headers = self._header_block()
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            break
        connection = headers.get("connection", "").lower()
        keep = connection != "close" if version == "HTTP/1.1" else "keep-alive" in connection
        if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
            payload = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            payload = self._chunked()
        elif "content-length" in headers:
            payload = self._exactly(_length(headers["content-length"]))
        else:
            payload, keep = self.reader.read(), False  # framed by the connection's end
        return Answer(status, headers, _decoded(payload, headers.get("content-encoding", ""))), keep

    def _line(self) -> bytes:
        line = self.reader.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise TransportError("a line of the answer is longer than 64 KiB")
        return line

    def _status_line(self) -> tuple[int, str]:
        line = self._line()
        if not line:
            raise TransportError("the server closed the connection without answering")
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/") or not code.isdigit():
            raise TransportError(f"not an HTTP status line: {line[:60]!r}")
        return int(code), version

    def _header_block(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return headers
            if not line:
                raise TransportError("the server closed the connection inside the headers")
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise TransportError(f"not a header line: {line[:60]!r}")
            key, value = name.strip().lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise TransportError(f"more than {MAX_HEADERS} header lines")

    def _exactly(self, size: int) -> bytes:
        data = self.reader.read(size)
        if len(data) < size:
            raise TransportError(f"the connection ended after {len(data)} of {size} body bytes")
        return data

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self._line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise TransportError(f"not a chunk size: {line[:60]!r}") from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields, ignored
                return b"".join(parts)
            parts.append(self._exactly(size))
            if self._line() not in (b"\r\n", b"\n"):
                raise TransportError("a chunk does not end with CRLF")


def _length(value: str) -> int:
    try:
        size = int(value.split(",")[0])
    except ValueError:
        raise TransportError(f"Content-Length is not a number: {value[:40]!r}") from None
    if size < 0:
        raise TransportError("Content-Length is negative")
    return size


def _decoded(payload: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if not payload or encoding in ("", "identity"):
        return payload
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(payload, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(payload)
            except zlib.error:
                return zlib.decompress(payload, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error as exc:
        raise TransportError(f"the {encoding} body does not decompress: {exc}") from None
    raise TransportError(f"unsupported Content-Encoding {encoding!r}")


class Transport:
    """Keep-alive connections to one origin (`scheme://host[:port]`), shared by threads.

    At most `pool_size` requests are in flight at once; more threads wait for a connection.
    An idle connection the server has closed meanwhile (keep-alive timeouts) is noticed
    before reuse and replaced; a failure during a request raises `TransportError` for the
    caller's retry policy.
    """

    def __init__(
        self,
        origin: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 30.0,
        pool_size: int = 32,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        split = urlsplit(origin)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.host = split.hostname
        self.port = split.port or (443 if split.scheme == "https" else 80)
        self.tls = (tls or ssl.create_default_context()) if split.scheme == "https" else None
        default_port = self.port == (443 if split.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.timeout, self.connect_timeout = timeout, min(connect_timeout, timeout)
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> Answer:
        """Send `method target` (a path with its query) and return the whole answer."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        try:
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("a request line or header holds characters outside Latin-1") from None
        with self._slots:
            connection = self._checkout()
            try:
                answer, keep = connection.exchange(method, head, body)
            except (OSError, ValueError) as exc:
                connection.close()
                if isinstance(exc, TransportError):
                    raise
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                connection.close()
                raise
            self._checkin(connection, keep)
            return answer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _checkout(self) -> _Connection:
        while True:
            with self._lock:
                if not self._idle:
                    break
                connection = self._idle.pop()
            if not connection.dropped():
                return connection
            connection.close()
        try:
            return _Connection(self.host, self.port, self.tls, self.connect_timeout, self.timeout)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.host_header}: {exc}") from exc

    def _checkin(self, connection: _Connection, keep: bool) -> None:
        with self._lock:
            if keep and not self._closed:
                self._idle.append(connection)
                return
        connection.close()
