"""The sandbox server on the wire, over raw sockets: keep-alive and pipelining, closing
(`Connection: close`, HTTP/1.0, bad requests, dropped-connection faults), HEAD framing,
request bodies, and the Date header."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO

import pytest

from sandbox.config import DEFAULT_TOKENS, AccountShape
from sandbox.server import Sandbox
from sandbox.store import World
from sandbox.world import generate

Connect = Callable[[], tuple[socket.socket, BinaryIO]]
HEALTH = b"GET /_admin/health HTTP/1.1\r\nHost: sandbox\r\n\r\n"


@pytest.fixture(scope="module")
def world() -> World:
    return generate(contacts=200)


@pytest.fixture
def sandbox(world: World) -> Iterator[Sandbox]:
    """A fresh server per test (tests set faults), over the module's small world."""
    with Sandbox(world) as running:
        yield running


@pytest.fixture
def connect(sandbox: Sandbox) -> Iterator[Connect]:
    """Open raw sockets to the sandbox: `sock, reader = connect()`; closed afterwards."""
    opened: list[tuple[socket.socket, BinaryIO]] = []
    host, port = sandbox.httpd.server_address[:2]

    def open_one() -> tuple[socket.socket, BinaryIO]:
        sock = socket.create_connection((str(host), int(port)), timeout=5)
        opened.append((sock, sock.makefile("rb")))
        return opened[-1]

    yield open_one
    for sock, reader in opened:
        reader.close()
        sock.close()


class Answer:
    """One answer read off the socket: status line, headers (lower-cased names), body."""

    def __init__(self, status_line: str, headers: dict[str, str], body: bytes) -> None:
        self.status_line, self.headers, self.body = status_line, headers, body

    @property
    def status(self) -> int:
        return int(self.status_line.split(" ")[1])

    def json(self) -> Any:
        return json.loads(self.body)


def read_answer(reader: BinaryIO, body: bool = True) -> Answer:
    """Read the status line and header block, then (with `body`) exactly Content-Length bytes."""
    status_line = reader.readline().decode("latin-1")
    assert status_line.startswith("HTTP/1.1 "), f"not a status line: {status_line!r}"
    headers: dict[str, str] = {}
    while True:
        line = reader.readline()
        assert line, "the connection ended inside the header block"
        if line == b"\r\n":
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.lower()] = value.strip()
    length = int(headers["content-length"])
    payload = reader.read(length) if body else b""
    assert len(payload) == (length if body else 0)
    return Answer(status_line.rstrip("\r\n"), headers, payload)


def assert_closed(reader: BinaryIO) -> None:
    """The server closed the connection: nothing more follows, and the read does not time out."""
    assert reader.read() == b""


def request(method: str, target: str, *headers: str, body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}", "Host: sandbox", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def test_two_requests_are_answered_on_one_socket(connect: Connect) -> None:
    sock, reader = connect()
    sock.sendall(HEALTH)
    first = read_answer(reader)
    assert first.status == 200
    assert first.json()["status"] == "ok"
    assert "connection" not in first.headers
    sock.sendall(request("GET", "/_admin/stats"))
    second = read_answer(reader)
    assert second.status == 200
    assert second.json()["requests"] == {"_admin:200": 1}  # the first answer, counted


def test_requests_sent_together_are_answered_in_order(connect: Connect) -> None:
    sock, reader = connect()
    sock.sendall(HEALTH + request("GET", "/_admin/nothing") + HEALTH)
    assert [read_answer(reader).status for _ in range(3)] == [200, 404, 200]


def test_connection_close_is_answered_then_closed(connect: Connect) -> None:
    sock, reader = connect()
    sock.sendall(request("GET", "/_admin/health", "Connection: close"))
    got = read_answer(reader)
    assert got.status == 200
    assert got.headers["connection"] == "close"
    assert_closed(reader)
    assert sock.recv(1) == b""


def test_http_1_0_without_keep_alive_is_closed_after_answering(connect: Connect) -> None:
    sock, reader = connect()
    sock.sendall(request("GET", "/_admin/health", version="HTTP/1.0"))
    got = read_answer(reader)
    assert got.status == 200
    assert got.headers["connection"] == "close"
    assert_closed(reader)


def test_http_1_0_with_keep_alive_stays_open(connect: Connect) -> None:
    sock, reader = connect()
    for _ in range(2):
        sock.sendall(request("GET", "/_admin/health", "Connection: keep-alive", version="HTTP/1.0"))
        got = read_answer(reader)
        assert got.status == 200
        assert "connection" not in got.headers


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /_admin/health\r\n\r\n",  # no version
        b"GET /_admin/health SPDY/3\r\n\r\n",
        b"GET /_admin/health HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /_admin/health HTTP/1.1\r\n Host: sandbox\r\n\r\n",  # obsolete line folding
        b"GET /_admin/health HTTP/1.1\r\nContent-Length: lots\r\n\r\n",
    ],
    ids=["request-line", "no-version", "not-http", "header-line", "folded-header", "length"],
)
def test_malformed_request_gets_400_and_is_closed(connect: Connect, data: bytes) -> None:
    sock, reader = connect()
    sock.sendall(data + HEALTH)  # the request after a bad one is never read
    got = read_answer(reader)
    assert got.status_line.startswith("HTTP/1.1 400")
    assert got.headers["connection"] == "close"
    assert_closed(reader)


def test_chunked_request_body_gets_400(connect: Connect) -> None:
    sock, reader = connect()
    chunked = b'8\r\n{"seed":\r\n2\r\n 3\r\n1\r\n}\r\n0\r\n\r\n'
    sock.sendall(request("POST", "/_admin/faults", "Transfer-Encoding: chunked") + chunked)
    got = read_answer(reader)
    assert got.status == 400
    assert b"chunked" in got.body
    assert_closed(reader)


def test_head_has_a_length_but_no_body(connect: Connect) -> None:
    sock, reader = connect()
    sock.sendall(request("GET", "/_admin/health"))
    length = len(read_answer(reader).body)
    # HEAD and a GET sent together: the GET's answer must start right after HEAD's header block
    sock.sendall(request("HEAD", "/_admin/health") + HEALTH)
    head = read_answer(reader, body=False)
    assert head.status == 200
    assert head.headers["content-length"] == str(length)
    assert reader.readline() == b"HTTP/1.1 200 OK\r\n"


def test_post_body_reaches_the_app(sandbox: Sandbox, connect: Connect) -> None:
    sock, reader = connect()
    plan = {
        "seed": 3,
        "error_rate": 0.25,
        "systems": ["crm"],
        "scripted": [{"system": "billing", "times": 2}],
    }
    sock.sendall(
        request("POST", "/_admin/faults", "Content-Type: application/json", body=json.dumps(plan).encode())
    )
    got = read_answer(reader)
    assert got.status == 200
    faults = got.json()["faults"]
    assert (faults["seed"], faults["error_rate"], faults["systems"]) == (3, 0.25, ["crm"])
    assert faults["scripted"][0]["system"] == "billing"
    assert faults["scripted"][0]["times"] == 2
    assert sandbox.faults.plan.seed == 3
    # the body was read exactly: the next request on the socket is parsed from its first byte
    sock.sendall(HEALTH)
    assert read_answer(reader).status == 200


def test_drop_fault_closes_the_socket_without_an_answer(sandbox: Sandbox, connect: Connect) -> None:
    sock, reader = connect()
    plan = {"scripted": [{"system": "crm", "kind": "drop", "times": 1}]}
    sock.sendall(request("POST", "/_admin/faults", body=json.dumps(plan).encode()))
    assert read_answer(reader).status == 200
    auth = f"Authorization: Bearer {DEFAULT_TOKENS['hubspot']}"
    sock.sendall(request("GET", "/hubspot/crm/v3/objects/contacts?limit=1", auth))
    assert_closed(reader)
    assert sandbox.stats["hubspot:dropped"] == 1
    # the fault was used up: a new connection is served
    sock, reader = connect()
    sock.sendall(request("GET", "/hubspot/crm/v3/objects/contacts?limit=1", auth))
    got = read_answer(reader)
    assert got.status == 200
    assert len(got.json()["results"]) == 1


@pytest.mark.parametrize(
    "data",
    [
        HEALTH,
        request("HEAD", "/_admin/health"),
        request("GET", "/_admin/nothing"),
        request("GET", "/nowhere/at/all"),
        request("GET", "/hubspot/crm/v3/objects/contacts"),  # no token: 401
        request("POST", "/_admin/faults", body=b"{}"),
        request("GET", "/_admin/health", version="HTTP/1.0"),
        b"GARBAGE\r\n\r\n",
        request("POST", "/_admin/faults", "Transfer-Encoding: chunked"),
    ],
    ids=["get", "head", "admin-404", "prefix-404", "401", "post", "http-1.0", "bad-line", "chunked"],
)
def test_every_answer_has_a_date_header(connect: Connect, sandbox: Sandbox, data: bytes) -> None:
    sock, reader = connect()
    sock.sendall(data)
    got = read_answer(reader, body=not data.startswith(b"HEAD"))
    assert "date" in got.headers, got.status_line
    sent = parsedate_to_datetime(got.headers["date"])
    # the world's clock (2026-11-01 here), not this machine's
    assert abs((sent - sandbox.world.clock()).total_seconds()) < 60
    assert got.headers["date"].endswith(" GMT")


def test_the_date_header_follows_the_world_and_its_skew(connect: Connect, sandbox: Sandbox) -> None:
    sock, reader = connect()
    sock.sendall(HEALTH)
    before = parsedate_to_datetime(read_answer(reader).headers["date"])
    sandbox.set_account(AccountShape(clock_skew_seconds=-4 * 3600))
    sock.sendall(HEALTH)
    skewed = parsedate_to_datetime(read_answer(reader).headers["date"])
    assert 4 * 3600 - 5 < (before - skewed).total_seconds() < 4 * 3600 + 5
