"""CPU per request of the connectors' HTTP path, on both ends, for a Calendly invitee read.

    python benchmarks/bench_transport.py --requests 20000

The sandbox runs in its own process; one client thread reads the invitees of the same 100
events over and over on one keep-alive connection and parses each body. Printed per client:
the client's CPU per request, the sandbox's CPU per request and the wall time per request.
Clients: `ingestion.http.ApiClient` (the connectors' client: pacing, retries and redaction on
an `httpx.Client`), a bare `httpx.Client`, and for comparison `http.client` and urllib3 when
installed.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import bench_ingest
import httpx
import orjson

from ingestion.http import ApiClient
from sandbox.config import DEFAULT_TOKENS

TOKEN = DEFAULT_TOKENS["calendly"]
HEADERS = {"Accept": "application/json", "User-Agent": "trueup/0.1", "Authorization": f"Bearer {TOKEN}"}


def event_paths(url: str) -> list[str]:
    """Invitee paths (below the Calendly prefix) of the first 100 events."""
    with httpx.Client(base_url=f"{url}/calendly", headers=HEADERS) as client:
        org = client.get("/users/me").json()["resource"]["current_organization"]
        events = client.get("/scheduled_events", params={"organization": org, "count": 100}).json()
    return [f"/scheduled_events/{e['uri'].rsplit('/', 1)[1]}/invitees" for e in events["collection"]]


def clients(url: str) -> dict[str, Callable[[str], object]]:
    """Name -> a function reading one invitee page and parsing it."""
    base = f"{url}/calendly"
    api = ApiClient("scheduling", base, TOKEN)
    split = urlsplit(url)
    plain = http.client.HTTPConnection(split.hostname or "", split.port)

    def with_http_client(path: str) -> object:
        plain.request("GET", f"/calendly{path}?count=100", headers=HEADERS)
        return orjson.loads(plain.getresponse().read())

    found: dict[str, Callable[[str], object]] = {
        "ApiClient (connectors)": lambda path: api.get(path, {"count": 100}),
        "http.client": with_http_client,
    }
    if importlib.util.find_spec("urllib3") is not None:
        import urllib3

        pool = urllib3.PoolManager(retries=False)
        found["urllib3"] = lambda path: orjson.loads(
            pool.request("GET", f"{base}{path}?count=100", headers=HEADERS).data
        )
    session = httpx.Client(base_url=base, headers=HEADERS)
    found["httpx"] = lambda path: session.get(path, params={"count": 100}).json()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    process, url = bench_ingest.start_sandbox(2000)
    try:
        paths = event_paths(url)
        for name, read in clients(url).items():
            for path in paths:  # warm up: connections open, views built
                read(path)
            served = bench_ingest.cpu_seconds(process.pid)
            cpu, wall = time.process_time(), time.monotonic()
            for i in range(args.requests):
                read(paths[i % len(paths)])
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            served = bench_ingest.cpu_seconds(process.pid) - served
            n = args.requests
            print(
                f"{name:24} client {cpu / n * 1e6:6.0f} µs CPU/request   sandbox {served / n * 1e6:6.0f} µs"
                f"   wall {wall / n * 1e6:6.0f} µs   ({n:,} requests)"
            )
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
