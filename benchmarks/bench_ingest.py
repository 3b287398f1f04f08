"""Ingestion figures against the sandbox (which runs in its own process).

    python benchmarks/bench_ingest.py --contacts 1000000        # full load + incremental after 1% change
    python benchmarks/bench_ingest.py --throttled --contacts 30000  # HubSpot's 100 requests / 10 s

Full load: records per second end to end (extract, normalize, load of all four systems,
extracted side by side as `trueup ingest` does; `--sequential` one at a time), the peak
memory of the loader's process tree, and the CPU time the sandbox and the loader used.
Incremental: 1% of CRM contacts and deals, Stripe customers and Calendly events change
through the APIs, then a second run; its wall time against the full load's. Throttled:
a CRM load against the sandbox limited to 100 requests per 10 s: requests per second as a
share of that ceiling, and the share of requests that got a 429.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from sandbox.config import DEFAULT_TOKENS

LOADER = """
import json, sys, time, logging
logging.disable(logging.WARNING)
from pathlib import Path
from ingestion.pipeline import SYSTEMS, run_systems
from ingestion.warehouse import Paths
from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env
if __name__ == "__main__":
    systems = sys.argv[3].split(",") if len(sys.argv) > 3 and sys.argv[3] else SYSTEMS
    parallel = len(sys.argv) <= 4 or sys.argv[4] != "sequential"
    started = time.monotonic()
    with patched_env(source_env(sandbox_base_urls(sys.argv[1]))):
        results = run_systems(systems, where=Paths(Path(sys.argv[2])), parallel=parallel)
    records = {r.system: r.records for r in results}
    print(json.dumps({"seconds": time.monotonic() - started, "records": records}))
"""


def start_sandbox(
    contacts: int, limits: str = "off", seed: int = 7, setup: str = ""
) -> tuple[subprocess.Popen[bytes], str]:
    """Generate and serve a world (with the account switches `setup` names) in its own process;
    returns it and its URL once it serves."""
    ready = Path(tempfile.mkdtemp(prefix="bench-sandbox-")) / "ready.json"
    command = [sys.executable, "-m", "sandbox.server", "--contacts", str(contacts), "--seed", str(seed)]
    command += ["--setup", setup] if setup else []
    process = subprocess.Popen(
        [*command, "--limits", limits, "--ready-file", str(ready)], stdout=subprocess.DEVNULL
    )
    while not ready.exists():
        if process.poll() is not None:
            raise SystemExit("sandbox exited before serving")
        time.sleep(0.2)
    url: str = json.loads(ready.read_text())["url"]
    shutil.rmtree(ready.parent, ignore_errors=True)
    return process, url


def load(url: str, home: Path, systems: str | None = None, sequential: bool = False) -> dict[str, Any]:
    """Run the loader in its own process; adds `peak_rss_mb`, the most its process tree (the
    loader and its extract workers together) held at once, sampled every 0.2 s."""
    argv = [sys.executable, "-c", LOADER, url, str(home), systems or "", "sequential" if sequential else ""]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_kb(process.pid))
        time.sleep(0.2)
    out = process.stdout.read() if process.stdout else ""
    if process.returncode:
        raise SystemExit(f"loader failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = peak / 1024
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_seconds"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def change_one_percent(url: str, seed: int = 1) -> dict[str, int]:
    """Change 1% of contacts, deals, customers and events through the sandbox's APIs."""
    rng = random.Random(seed)
    changed = {}
    hubspot = httpx.Client(base_url=f"{url}/hubspot", headers=_bearer("hubspot"), timeout=120)
    stripe = httpx.Client(base_url=f"{url}/stripe", headers=_bearer("stripe"), timeout=120)
    calendly = httpx.Client(base_url=f"{url}/calendly", headers=_bearer("calendly"), timeout=120)
    for object_type, field in (("contacts", "jobtitle"), ("deals", "dealname")):
        ids = _all_ids(hubspot, object_type)
        chosen = rng.sample(ids, max(1, len(ids) // 100))
        for start in range(0, len(chosen), 100):
            inputs = [{"id": i, "properties": {field: f"changed {i}"}} for i in chosen[start : start + 100]]
            hubspot.post(
                f"/crm/v3/objects/{object_type}/batch/update", json={"inputs": inputs}
            ).raise_for_status()
        changed[object_type] = len(chosen)
    customers = _stripe_ids(stripe, "customers")
    chosen = rng.sample(customers, max(1, len(customers) // 100))
    for customer_id in chosen:
        stripe.post(f"/v1/customers/{customer_id}", data={"description": "changed"}).raise_for_status()
    changed["customers"] = len(chosen)
    org = calendly.get("/users/me").json()["resource"]["current_organization"]
    events = _calendly_active(calendly, org)
    chosen = rng.sample(events, max(1, len(events) // 100))
    for uri in chosen:
        calendly.post(f"/scheduled_events/{uri.rsplit('/', 1)[-1]}/cancellation", json={"reason": "bench"})
    changed["scheduled_events"] = len(chosen)
    return changed


def _bearer(api: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {DEFAULT_TOKENS[api]}"}


def _all_ids(client: httpx.Client, object_type: str) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100, "properties": "hs_object_id"}
    while True:
        body = client.get(f"/crm/v3/objects/{object_type}", params=params).json()
        ids += [r["id"] for r in body["results"]]
        if "paging" not in body:
            return ids
        params["after"] = body["paging"]["next"]["after"]


def _stripe_ids(client: httpx.Client, resource_name: str) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        body = client.get(f"/v1/{resource_name}", params=params).json()
        ids += [o["id"] for o in body["data"]]
        if not body["has_more"]:
            return ids
        params["starting_after"] = ids[-1]


def _calendly_active(client: httpx.Client, org: str) -> list[str]:
    uris: list[str] = []
    params: dict[str, Any] = {"organization": org, "status": "active", "count": 100}
    while True:
        body = client.get("/scheduled_events", params=params).json()
        uris += [e["uri"] for e in body["collection"]]
        token = body["pagination"]["next_page_token"]
        if not token:
            return uris
        params["page_token"] = token


def full_and_incremental(contacts: int, sequential: bool = False) -> None:
    process, url = start_sandbox(contacts)
    home = Path(tempfile.mkdtemp()) / "home"
    try:
        busy = cpu_seconds(process.pid)
        full = load(url, home, sequential=sequential)
        served = cpu_seconds(process.pid) - busy
        total = sum(full["records"].values())
        print(
            f"full load of the {contacts:,}-contact world: {total:,} records in {full['seconds']:.1f} s "
            f"= {total / full['seconds']:,.0f} records/s; loader peak RSS {full['peak_rss_mb']:,.0f} MB "
            f"(loader and extract workers together)"
        )
        print(f"  per system: {full['records']}")
        print(
            f"  CPU: sandbox {served:.1f} s ({served / full['seconds']:.0%} of a core), "
            f"loader and workers {full['cpu_seconds']:.1f} s ({full['cpu_seconds'] / full['seconds']:.0%})"
        )
        changed = change_one_percent(url)
        busy = cpu_seconds(process.pid)
        incremental = load(url, home, sequential=sequential)
        served = cpu_seconds(process.pid) - busy
        share = incremental["seconds"] / full["seconds"]
        print(
            f"incremental after a 1% change {changed}: {incremental['seconds']:.1f} s "
            f"= {share:.1%} of the full load; records {incremental['records']}"
        )
        print(f"  CPU: sandbox {served:.1f} s, loader and workers {incremental['cpu_seconds']:.1f} s")
    finally:
        process.terminate()
        process.wait()


def throttled(contacts: int) -> None:
    process, url = start_sandbox(contacts, limits="realistic")
    home = Path(tempfile.mkdtemp()) / "home"
    try:
        result = load(url, home, systems="crm")
        stats = httpx.get(f"{url}/_admin/stats").json()["requests"]
    finally:
        process.terminate()
        process.wait()
    ok = sum(n for k, n in stats.items() if k.startswith("hubspot:") and not k.endswith(":429"))
    limited = stats.get("hubspot:429", 0)
    rate = (ok + limited) / result["seconds"]
    print(
        f"throttled CRM load ({contacts:,} contacts, limit 100 requests / 10 s plus search 4/s): "
        f"{ok + limited:,} requests in {result['seconds']:.1f} s = {rate:.2f} req/s"
    )
    print(
        f"  share of the 10 req/s ceiling: {rate / 10:.1%}; "
        f"share answered 429: {limited / max(ok + limited, 1):.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--throttled", action="store_true", help="only the throttled CRM measurement")
    parser.add_argument("--sequential", action="store_true", help="extract one system at a time")
    args = parser.parse_args()
    if args.throttled:
        throttled(args.contacts)
    else:
        full_and_incremental(args.contacts, sequential=args.sequential)


if __name__ == "__main__":
    main()
