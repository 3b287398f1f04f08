"""The keep-alive HTTP/1.1 transport against a raw loopback server that writes crafted bytes:
framing (Content-Length, chunked, connection's end), reuse, interim answers, decoding,
failures as TransportError, the pool bound, and ApiClient's retries over it."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pytest

from ingestion.http import ApiClient, ApiError, RetryPolicy
from ingestion.transport import Transport, TransportError

TOKEN = "sk_test_supersecretvalue123"
FAST = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_cap=0.02)


@dataclass(frozen=True)
class Received:
    """One request as the server read it."""

    head: bytes  # request line and header lines, up to (not including) the blank line
    body: bytes
    connection: int  # 1-based number of the accepted connection it came on
    number: int  # 1-based number of the request, over all connections

    @property
    def line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def method(self) -> str:
        return self.line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        for raw in self.head.split(b"\r\n")[1:]:
            key, _, value = raw.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


@dataclass(frozen=True)
class Reply:
    """What the server does with one request: write `data`, then maybe close the socket."""

    data: bytes
    close: bool = False  # shut the socket after writing (without saying so in a header)
    delay: float = 0.0  # seconds to wait before writing
    hang: bool = False  # never answer; hold the socket open (3 s at most) until the server stops


Respond = Callable[[Received], Reply]


def _read_head(reader: BinaryIO) -> bytes | None:
    lines: list[bytes] = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        if line == b"\r\n":
            return b"".join(lines).rstrip(b"\r\n")
        lines.append(line)


class RawServer:
    """A loopback TCP server: reads each request up to its blank line (and a Content-Length
    body), hands it to `respond` and writes the bytes it returns. Counts connections and
    the most requests in flight at once."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self.closed = 0
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(10)  # a forgotten connection must not outlive the test by much
            with self._lock:
                self.accepted += 1
                self._sockets.append(sock)
                thread = threading.Thread(target=self._serve, args=(sock, self.accepted), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, connection: int) -> None:
        reader = sock.makefile("rb")
        try:
            while True:
                head = _read_head(reader)
                if head is None:
                    return
                received = Received(head, b"", connection, 0)
                length = int(received.header("content-length") or 0)
                body = reader.read(length) if length else b""
                with self._lock:
                    received = Received(head, body, connection, len(self.received) + 1)
                    self.received.append(received)
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    reply = self.respond(received)
                    if reply.hang:
                        self._stop.wait(3)  # then close: a client without a timeout fails slowly, not never
                        return
                    if reply.delay:
                        time.sleep(reply.delay)
                    sock.sendall(reply.data)
                finally:
                    with self._lock:
                        self.in_flight -= 1
                if reply.close:
                    return
        except OSError:
            return
        finally:
            reader.close()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with self._lock:
                self.closed += 1

    def wait_closed(self, count: int, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while self.closed < count:
            assert time.monotonic() < deadline, f"the server closed {self.closed} of {count} connections"
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading it
        for thread in threads:
            thread.join(timeout=2)


Serve = Callable[[Respond], RawServer]
Make = Callable[..., Transport]


@pytest.fixture
def raw_server() -> Iterator[Serve]:
    """Start raw servers with a `respond(Received) -> Reply` function; stopped afterwards."""
    servers: list[RawServer] = []

    def start(respond: Respond) -> RawServer:
        servers.append(RawServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def transports() -> Iterator[Make]:
    """Make Transports (short timeouts so a framing bug fails fast rather than hangs); closed after."""
    made: list[Transport] = []

    def make(origin: str, **kwargs: object) -> Transport:
        kwargs.setdefault("timeout", 2.0)
        made.append(Transport(origin, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for transport in made:
        transport.close()


def answer(
    body: bytes = b"ok", status: str = "200 OK", headers: tuple[str, ...] = (), length: bool = True
) -> bytes:
    """An HTTP/1.1 answer; with `length`, framed by Content-Length."""
    lines = [f"HTTP/1.1 {status}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def always(data: bytes, **kwargs: object) -> Respond:
    return lambda received: Reply(data, **kwargs)  # type: ignore[arg-type]


def in_order(*replies: Reply) -> Respond:
    """Reply by request number; the last reply repeats."""
    return lambda received: replies[min(received.number, len(replies)) - 1]


def by_target(received: Received) -> Reply:
    """Echo the request target back as the body."""
    return Reply(answer(received.line.split(" ")[1].encode()))


# -- framing and reuse ----------------------------------------------------------------------------


def test_content_length_bodies_on_one_reused_connection(raw_server: Serve, transports: Make) -> None:
    server = raw_server(by_target)
    transport = transports(server.origin)
    first = transport.request("GET", "/one", {})
    second = transport.request("GET", "/two", {})
    assert (first.status, first.body) == (200, b"/one")
    assert (second.status, second.body) == (200, b"/two")
    assert server.accepted == 1
    assert [r.connection for r in server.received] == [1, 1]


def test_header_names_are_lower_cased_and_repeats_joined(raw_server: Serve, transports: Make) -> None:
    data = answer(b"{}", headers=("Content-Type: application/json", "Set-Cookie: a=1", "SET-COOKIE: b=2"))
    server = raw_server(always(data))
    got = transports(server.origin).request("GET", "/", {})
    assert got.headers["content-type"] == "application/json"
    assert got.headers["set-cookie"] == "a=1, b=2"
    assert got.headers["content-length"] == "2"


def test_chunked_body_with_extension_and_trailers_is_joined(raw_server: Serve, transports: Make) -> None:
    chunks = (
        b"5\r\nhello\r\n"
        b"2;x=y\r\n, \r\n"
        b"1A\r\n" + b"abcdefghijklmnopqrstuvwxyz" + b"\r\n"
        b"0\r\n"
        b"X-Trailer: yes\r\n"
        b"X-Checksum: 123\r\n"
        b"\r\n"
    )
    chunked = answer(chunks, headers=("Transfer-Encoding: chunked",), length=False)
    server = raw_server(in_order(Reply(chunked), Reply(answer(b"next"))))
    transport = transports(server.origin)
    assert transport.request("GET", "/chunked", {}).body == b"hello, abcdefghijklmnopqrstuvwxyz"
    # the trailers were read to their end: the next answer on the same connection parses
    assert transport.request("GET", "/after", {}).body == b"next"
    assert server.accepted == 1


def test_body_without_framing_is_read_to_the_close_and_not_reused(
    raw_server: Serve, transports: Make
) -> None:
    unframed = Reply(answer(b"all of it, until the end", length=False), close=True)
    server = raw_server(in_order(unframed, Reply(answer(b"second"))))
    transport = transports(server.origin)
    assert transport.request("GET", "/", {}).body == b"all of it, until the end"
    assert transport._idle == []  # a connection framed by its end is never put back
    assert transport.request("GET", "/", {}).body == b"second"
    assert server.accepted == 2
    assert [r.connection for r in server.received] == [1, 2]


def test_connection_close_answer_is_not_reused(raw_server: Serve, transports: Make) -> None:
    # The server keeps the socket open: only the header tells the client not to reuse it.
    server = raw_server(always(answer(b"bye", headers=("Connection: close",))))
    transport = transports(server.origin)
    assert transport.request("GET", "/", {}).body == b"bye"
    assert transport.request("GET", "/", {}).body == b"bye"
    assert server.accepted == 2


def test_http_1_0_answer_without_keep_alive_is_not_reused(raw_server: Serve, transports: Make) -> None:
    server = raw_server(always(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    transport = transports(server.origin)
    transport.request("GET", "/", {})
    transport.request("GET", "/", {})
    assert server.accepted == 2


def test_interim_100_continue_is_skipped(raw_server: Serve, transports: Make) -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + answer(b"real")
    server = raw_server(always(data))
    transport = transports(server.origin)
    got = transport.request("POST", "/upload", {}, b'{"a": 1}')
    assert (got.status, got.body) == (200, b"real")
    assert "link" not in got.headers
    assert server.received[0].body == b'{"a": 1}'
    assert transport.request("POST", "/upload", {}, b"{}").body == b"real"
    assert server.accepted == 1


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
def test_gzip_and_deflate_bodies_are_decoded(
    raw_server: Serve, transports: Make, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    plain = b'{"results": [' + b'{"id": 1}, ' * 200 + b'{"id": 2}]}'
    server = raw_server(always(answer(encode(plain), headers=(f"Content-Encoding: {encoding}",))))
    assert transports(server.origin).request("GET", "/", {}).body == plain


def test_head_and_204_have_empty_bodies_and_keep_the_connection(raw_server: Serve, transports: Make) -> None:
    replies = (
        Reply(answer(b"", headers=("Content-Length: 5",), length=False)),  # HEAD: a length, no body
        Reply(b"HTTP/1.1 204 No Content\r\n\r\n"),  # no length at all
        Reply(answer(b"after")),
    )
    server = raw_server(in_order(*replies))
    transport = transports(server.origin)
    head = transport.request("HEAD", "/thing", {})
    assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "5")
    deleted = transport.request("DELETE", "/thing", {})
    assert (deleted.status, deleted.body) == (204, b"")
    assert transport.request("GET", "/thing", {}).body == b"after"
    assert server.accepted == 1


def test_request_line_and_host_header(raw_server: Serve, transports: Make) -> None:
    server = raw_server(always(answer()))
    transport = transports(server.origin)
    transport.request("GET", "/v3/objects?after=abc&limit=100&q=a%20b", {"Accept": "application/json"})
    transport.request("POST", "/v3/objects", {}, b'{"x": 1}')
    get, post = server.received
    assert get.line == "GET /v3/objects?after=abc&limit=100&q=a%20b HTTP/1.1"
    assert get.header("host") == f"127.0.0.1:{server.port}"
    assert get.header("accept") == "application/json"
    assert get.header("content-length") is None
    assert post.header("content-length") == "8"
    assert post.body == b'{"x": 1}'


def test_host_header_leaves_out_a_default_port() -> None:
    assert Transport("http://api.example.com").host_header == "api.example.com"
    assert Transport("https://api.example.com:443").host_header == "api.example.com"
    assert Transport("https://api.example.com:8443").host_header == "api.example.com:8443"
    assert Transport("http://[::1]:8080").host_header == "[::1]:8080"


# -- failures -------------------------------------------------------------------------------------


def test_truncated_body_names_the_byte_counts(raw_server: Serve, transports: Make) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"0123456789"
    server = raw_server(always(data, close=True))
    with pytest.raises(TransportError, match=r"10 of 100"):
        transports(server.origin).request("GET", "/", {})


def test_close_without_answering_raises(raw_server: Serve, transports: Make) -> None:
    server = raw_server(always(b"", close=True))
    with pytest.raises(TransportError, match="without answering"):
        transports(server.origin).request("GET", "/", {})


def test_idle_connection_closed_by_the_server_is_replaced(raw_server: Serve, transports: Make) -> None:
    # The server ends the connection after answering, without a `Connection: close` header
    # (a keep-alive timeout): the next request must notice and open a new one, not fail.
    server = raw_server(always(answer(b"fine"), close=True))
    transport = transports(server.origin)
    assert transport.request("GET", "/", {}).body == b"fine"
    server.wait_closed(1)
    time.sleep(0.05)
    assert transport.request("GET", "/", {}).body == b"fine"
    assert server.accepted == 2


def test_connection_refused_raises_cannot_connect(transports: Make) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    transport = transports(f"http://127.0.0.1:{port}")
    with pytest.raises(TransportError, match=f"cannot connect to 127.0.0.1:{port}"):
        transport.request("GET", "/", {})


def test_read_timeout_raises(raw_server: Serve, transports: Make) -> None:
    server = raw_server(always(b"", hang=True))
    transport = transports(server.origin, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        transport.request("GET", "/", {})
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"SPDY/3 200 OK\r\n\r\n", "not an HTTP status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "not a header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", "Content-Length is not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not a chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope", "decompress"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\nnope", "unsupported"),
    ],
    ids=["status-line", "header-line", "length", "chunk-size", "bad-gzip", "brotli"],
)
def test_unreadable_answers_raise(raw_server: Serve, transports: Make, data: bytes, message: str) -> None:
    server = raw_server(always(data, close=True))
    transport = transports(server.origin)
    with pytest.raises(TransportError, match=message):
        transport.request("GET", "/", {})
    assert transport._idle == []  # the broken connection is not put back


# -- the pool -------------------------------------------------------------------------------------


def test_pool_size_bounds_requests_in_flight(raw_server: Serve, transports: Make) -> None:
    server = raw_server(always(answer(b"slow"), delay=0.1))
    transport = transports(server.origin, pool_size=2)
    start = threading.Barrier(6)
    bodies: list[bytes] = []
    errors: list[BaseException] = []

    def call() -> None:
        start.wait()
        try:
            bodies.append(transport.request("GET", "/", {}).body)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert errors == []
    assert bodies == [b"slow"] * 6
    assert server.max_in_flight == 2  # requests did overlap, but never more than the pool
    assert server.accepted <= 2


# -- through ApiClient ----------------------------------------------------------------------------


def test_api_client_retries_a_truncated_body(raw_server: Serve) -> None:
    json_head = ("Content-Type: application/json",)
    truncated = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"ok"'
    server = raw_server(
        in_order(Reply(truncated, close=True), Reply(answer(b'{"ok": true}', headers=json_head)))
    )
    with ApiClient("crm", server.origin, TOKEN, retry=FAST, seed=1) as client:
        assert client.get("/things", params={"limit": 2}) == {"ok": True}
        assert client.stats.retries >= 1
    assert len(server.received) == 2
    assert server.received[0].line == "GET /things?limit=2 HTTP/1.1"
    assert server.received[0].header("authorization") == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b'{"ok"',
        f"Bearer {TOKEN} 200 OK\r\n\r\n".encode(),  # the status line echoes the credential
        f"HTTP/1.1 200 OK\r\nX-Echo {TOKEN}\r\n\r\n".encode(),  # so does a broken header line
    ],
    ids=["truncated", "echo-in-status-line", "echo-in-header-line"],
)
def test_api_client_gives_up_without_leaking_the_token(raw_server: Serve, data: bytes) -> None:
    server = raw_server(always(data, close=True))
    with ApiClient("billing", server.origin, TOKEN, retry=FAST) as client, pytest.raises(ApiError) as raised:
        client.get("/v1/customers")
    assert "gave up" in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert len(server.received) == FAST.max_attempts
