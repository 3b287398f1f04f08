"""Webhook intake: accepted events per second and time to acknowledge on loopback; the latency
from delivery to the warehouse for changes made in the sandbox, with the real Dagster daemon.

    python benchmarks/bench_webhooks.py --deliveries 20000 --concurrency 32
    python benchmarks/bench_webhooks.py --latency --changes 20 --contacts 2000

Intake: `trueup webhooks serve` runs in its own process (uvicorn, one worker) over a fresh
inbox; this process sends pre-signed Stripe deliveries (one event each) and then HubSpot
deliveries (100 events each) over `--concurrency` keep-alive connections, and times each
request from its first byte to the end of the answer. Every answer must be a 200, and the
inbox must hold every event afterwards. Printed: deliveries and events per second, p50/p99/max
time to acknowledge, and the receiver's CPU per delivery.

Latency: a sandbox world is loaded into a warehouse, then the receiver, the sandbox's webhook
sender and `dagster-daemon` (with the instance's run queue and the default sensor interval) run
while this process changes a contact's email every few seconds (random gaps, so changes land at
every point of the sensor's cycle). Printed per change: delivery -> raw_webhooks and delivery ->
warehouse (the sync that followed committed), p50/p95/max, and the runs the daemon launched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

from ingestion.webhooks import signatures
from orchestration.sandbox_runtime import webhook_env
from sandbox.config import DEFAULT_WEBHOOK_SECRETS

ROOT = Path(__file__).resolve().parent.parent


def receiver_process(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    ready = home / "receiver-ready.json"
    command = [sys.executable, "-m", "orchestration.cli", "webhooks", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--ready-file", str(ready)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the receiver did not start")
        time.sleep(0.05)
    return process, json.loads(ready.read_text())["url"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- intake throughput -----------------------------------------------------------------------------


def stripe_requests(n: int, host: str, start: int) -> list[bytes]:
    secret = DEFAULT_WEBHOOK_SECRETS["stripe"]
    t = int(time.time())
    out = []
    for i in range(start, start + n):
        body = orjson.dumps(
            {
                "id": f"evt_bench_{i:08d}",
                "object": "event",
                "api_version": "2024-06-20",
                "created": 1_700_000_000 + i,
                "data": {"object": {"id": f"in_{i % 5000}", "object": "invoice", "status": "paid"}},
                "type": "invoice.paid",
                "livemode": False,
            }
        )
        signature = signatures.hmac_hex(secret, f"{t}.".encode() + body)
        out.append(request("stripe", host, body, {"Stripe-Signature": f"t={t},v1={signature}"}))
    return out


def hubspot_requests(n: int, host: str, url: str, per_delivery: int = 100) -> list[bytes]:
    secret = DEFAULT_WEBHOOK_SECRETS["hubspot"]
    out = []
    for d in range(n):
        events = [
            {
                "eventId": d * per_delivery + k,
                "subscriptionId": 1,
                "portalId": 7,
                "appId": 9,
                "occurredAt": 1_700_000_000_000 + d * per_delivery + k,
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": k,
                "propertyName": "email",
                "propertyValue": f"c{d}-{k}@example.com",
                "changeSource": "CRM",
            }
            for k in range(per_delivery)
        ]
        body = orjson.dumps(events)
        stamp = str(int(time.time() * 1000))
        signed = signatures.hubspot_signature(secret, "POST", f"{url}/webhooks/hubspot", body, stamp)
        headers = {"X-HubSpot-Signature-v3": signed, "X-HubSpot-Request-Timestamp": stamp}
        out.append(request("hubspot", host, body, headers))
    return out


def request(provider: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST /webhooks/{provider} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()] + [f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def connection(
    host: str, port: int, requests: list[bytes], times: list[float], statuses: Counter
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    for raw in requests:
        started = time.perf_counter()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        times.append(time.perf_counter() - started)
        statuses[int(head[9:12])] += 1
    writer.close()


async def blast(
    host: str, port: int, requests: list[bytes], concurrency: int
) -> tuple[float, list[float], Counter]:
    times: list[float] = []
    statuses: Counter = Counter()
    shares = [requests[i::concurrency] for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(connection(host, port, share, times, statuses) for share in shares if share))
    return time.perf_counter() - started, times, statuses


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def intake(deliveries: int, concurrency: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        env = {**os.environ, "TRUEUP_HOME": str(home), **webhook_env()}
        process, url = receiver_process(home, env)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        try:
            asyncio.run(blast(host, int(port), stripe_requests(500, f"{host}:{port}", 10**7), concurrency))
            cases = [
                ("stripe, 1 event per delivery", stripe_requests(deliveries, f"{host}:{port}", 0), 1),
                (
                    "hubspot, 100 events per delivery",
                    hubspot_requests(max(1, deliveries // 20), f"{host}:{port}", url),
                    100,
                ),
            ]
            for label, requests, per_delivery in cases:
                cpu_before = cpu_seconds(process.pid)
                wall, times, statuses = asyncio.run(blast(host, int(port), requests, concurrency))
                cpu = cpu_seconds(process.pid) - cpu_before
                assert statuses == Counter({200: len(requests)}), statuses
                n = len(requests)
                print(
                    f"{label}: {n:,} deliveries in {wall:.1f} s = {n / wall:,.0f} deliveries/s, "
                    f"{n * per_delivery / wall:,.0f} events/s accepted ({concurrency} connections); "
                    f"time to acknowledge p50 {percentile(times, 0.5) * 1000:.1f} ms, "
                    f"p99 {percentile(times, 0.99) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms; "
                    f"receiver CPU {cpu / n * 1e6:,.0f} us per delivery",
                    flush=True,
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        with sqlite3.connect(home / "webhooks" / "inbox.sqlite3") as con:
            stored = con.execute("select count(*) from events").fetchone()[0]
        expected = 500 + deliveries + max(1, deliveries // 20) * 100
        verdict = "all" if stored == expected else "MISSING"
        print(f"inbox holds {stored:,} events of {expected:,} sent: {verdict}")


# -- delivery to warehouse ---------------------------------------------------------------------------


def latency(changes: int, contacts: int, gap: float) -> None:
    import httpx

    from ingestion.pipeline import run_systems
    from orchestration import ui
    from orchestration.sandbox_runtime import source_env, today_anchor
    from sandbox import world as world_module
    from sandbox.config import DEFAULT_TOKENS
    from sandbox.server import Sandbox
    from sandbox.webhooks import WebhookConfig

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        world = world_module.generate(seed=7, contacts=contacts, anchor=today_anchor())
        with Sandbox(world) as sandbox:
            env = {
                **os.environ,
                "TRUEUP_HOME": str(home),
                "DAGSTER_HOME": str(home / "dagster"),
                **webhook_env(),
                **source_env(sandbox.base_urls),
            }
            os.environ.update(env)
            started = time.monotonic()
            run_systems(["crm", "billing", "scheduling"])
            print(f"loaded a {contacts:,}-contact world in {time.monotonic() - started:.0f} s", flush=True)
            ui.write_instance_config(home / "dagster")
            receiver, url = receiver_process(home, env)
            sandbox.send_webhooks(WebhookConfig(url=f"{url}/webhooks", providers=("hubspot",)))
            daemon = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "dagster-daemon"),
                    "run",
                    "-m",
                    "orchestration.definitions",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=ui.default_signals,
            )
            try:
                made = make_changes(sandbox, world, changes, gap, httpx, DEFAULT_TOKENS["hubspot"])
                wait_synced(home, made)
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=60)
                receiver.send_signal(signal.SIGTERM)
                receiver.wait(timeout=30)
            report_latency(home, made)


def make_changes(sandbox, world, changes: int, gap: float, httpx, token: str) -> dict[str, float]:
    """Change a contact's email `changes` times at random gaps; value -> wall time of the change."""
    rng = random.Random(3)
    ids = [c["id"] for c in world.crm.contacts]
    made: dict[str, float] = {}
    with httpx.Client(
        base_url=sandbox.base_urls["hubspot"], headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for n in range(changes):
            time.sleep(rng.uniform(0.2, 2 * gap))
            value = f"latency{n}@example.com"
            client.patch(f"/crm/v3/objects/contacts/{rng.choice(ids)}", json={"properties": {"email": value}})
            made[value] = time.time()
            print(f"  change {n + 1}/{changes}", flush=True)
    return made


def wait_synced(home: Path, made: dict[str, float], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    inbox = home / "webhooks" / "inbox.sqlite3"
    while time.monotonic() < deadline:
        with sqlite3.connect(inbox) as con:
            waiting = con.execute("select count(*) from events where synced_us is null").fetchone()[0]
            total = con.execute("select count(*) from events").fetchone()[0]
        if total >= len(made) and not waiting:
            return
        time.sleep(1)
    raise TimeoutError("webhook events were not synced in time")


def report_latency(home: Path, made: dict[str, float]) -> None:
    with sqlite3.connect(home / "webhooks" / "inbox.sqlite3") as con:
        rows = con.execute(
            "select json_extract(payload, '$.propertyValue'), received_us, drained_us, synced_us from events"
        ).fetchall()
    drained = [(d - r) / 1e6 for _, r, d, _ in rows]
    synced = [(s - r) / 1e6 for _, r, _, s in rows]
    from_change = [s / 1e6 - made[v] for v, _, _, s in rows if v in made]

    def line(label: str, values: list[float]) -> str:
        return (
            f"{label}: p50 {statistics.median(values):.1f} s, p95 {percentile(values, 0.95):.1f} s, "
            f"max {max(values):.1f} s"
        )

    print(f"{len(rows)} changes, sensor interval 30 s (the default), runs launched by dagster-daemon:")
    print("  " + line("delivery -> raw_webhooks", drained))
    print("  " + line("delivery -> warehouse (synced)", synced))
    print("  " + line("change in the sandbox -> warehouse", from_change))
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(job_name="webhooks"))
    durations = [r.end_time - r.start_time for r in records if r.start_time and r.end_time]
    statuses = Counter(r.dagster_run.status.value for r in records)
    print(
        f"  webhooks runs: {dict(statuses)}, run time p50 {statistics.median(durations):.1f} s"
        if durations
        else ""
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", action="store_true", help="measure delivery-to-warehouse latency only")
    parser.add_argument("--intake", action="store_true", help="measure intake throughput only")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--gap", type=float, default=10.0, help="mean seconds between changes")
    args = parser.parse_args()
    if not args.latency:
        intake(args.deliveries, args.concurrency)
    if not args.intake:
        latency(args.changes, args.contacts, args.gap)


if __name__ == "__main__":
    main()
