"""Loopback servers for the HTTP client's network tests: a forward proxy, an HTTP/2 server, and
the certificates of a test CA (trustme)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import orjson
import trustme

HOSTS = ("127.0.0.1", "localhost")


class LoopbackCA:
    """A private CA (never in any system bundle) and a server certificate it issued for loopback."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert(*HOSTS)
        self.bundle = folder / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.bundle))

    def server_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(context)
        if alpn:
            context.set_alpn_protocols(alpn)
        return context


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Proxy:
    """An HTTP proxy: `CONNECT host:port` opens a tunnel (HTTPS through `HTTPS_PROXY`), an
    absolute-form request (`GET http://host/path`, through `HTTP_PROXY`) is forwarded in origin
    form on a connection of its own. `seen` lists each request line it received."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(65537).decode("latin-1").strip()
                if not line:
                    return
                method, target, _ = line.split(" ", 2)
                headers = _header_lines(self.rfile)
                proxy.seen.append(f"{method} {target}")
                if method == "CONNECT":
                    host, port = target.rsplit(":", 1)
                    with socket.create_connection((host, int(port))) as upstream:
                        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        self.wfile.flush()
                        _splice(self.rfile, self.connection, upstream)
                    return
                self._forward(method, target, headers)

            def _forward(self, method: str, target: str, headers: list[str]) -> None:
                split = urlsplit(target)
                origin_form = split.path + (f"?{split.query}" if split.query else "")
                kept = [
                    h for h in headers if h.split(":", 1)[0].lower() not in ("connection", "proxy-connection")
                ]
                length = next(
                    (int(h.split(":", 1)[1]) for h in kept if h.lower().startswith("content-length:")), 0
                )
                head = "\r\n".join([f"{method} {origin_form} HTTP/1.1", *kept, "Connection: close", "", ""])
                body = self.rfile.read(length) if length else b""
                with socket.create_connection((split.hostname or "", split.port or 80)) as upstream:
                    upstream.sendall(head.encode("latin-1") + body)
                    while chunk := upstream.recv(65536):
                        self.connection.sendall(chunk)

        self.server = _Server(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Proxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _header_lines(reader: BinaryIO) -> list[str]:
    lines = []
    while True:
        line = reader.readline(65537).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            return lines
        lines.append(line.rstrip("\r\n"))


def _splice(client_reader: BinaryIO, client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""

    def upstream_to_client() -> None:
        try:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _shut(client)

    pump = threading.Thread(target=upstream_to_client, daemon=True)
    pump.start()
    try:
        while chunk := client_reader.read1(65536):
            upstream.sendall(chunk)
    except OSError:
        pass
    finally:
        _shut(upstream)
    pump.join(timeout=30)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def http2_server(ca: LoopbackCA, body: object) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server that speaks only HTTP/2 (ALPN `h2`) and answers every request with `body`
    as JSON; yields its URL and the `:path` of each request it served."""
    import h2.config
    import h2.connection
    import h2.events

    context = ca.server_context(alpn=["h2"])
    payload = orjson.dumps(body)
    served: list[str] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                sock = context.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError):
                return
            if sock.selected_alpn_protocol() != "h2":
                sock.close()  # no HTTP/1.1 here: a client that cannot speak h2 gets nothing
                return
            config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
            conn = h2.connection.H2Connection(config=config)
            conn.initiate_connection()
            sock.sendall(conn.data_to_send())
            while data := sock.recv(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        served.append(dict(event.headers)[":path"])
                        conn.send_headers(
                            event.stream_id,
                            [
                                (":status", "200"),
                                ("content-type", "application/json"),
                                ("content-length", str(len(payload))),
                            ],
                        )
                        conn.send_data(event.stream_id, payload, end_stream=True)
                sock.sendall(conn.data_to_send())

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://localhost:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
