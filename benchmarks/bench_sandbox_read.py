"""How fast the sandbox serves a full paged read of its CRM contacts.

    python benchmarks/bench_sandbox_read.py --contacts 1000000

The sandbox runs in its own process (as in `trueup sandbox serve`), so client and server
do not share an interpreter; the figure is records per second for GET
/crm/v3/objects/contacts?limit=100 followed page by page until no `paging` is left.
"""

from __future__ import annotations

import argparse
import subprocess
import time

import bench_ingest
import httpx

from sandbox.config import DEFAULT_TOKENS


def start_sandbox(contacts: int, seed: int) -> tuple[subprocess.Popen[bytes], str, float]:
    """The sandbox in its own process, HubSpot's base URL, and how long it took to serve."""
    started = time.monotonic()
    process, url = bench_ingest.start_sandbox(contacts, seed=seed)
    return process, f"{url}/hubspot", time.monotonic() - started


def full_read(base_url: str, limit: int = 100) -> tuple[int, int, float]:
    headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"}
    records = pages = 0
    started = time.monotonic()
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        params: dict[str, str | int] = {"limit": limit}
        while True:
            body = client.get("/crm/v3/objects/contacts", params=params).json()
            records += len(body["results"])
            pages += 1
            nxt = body.get("paging", {}).get("next")
            if not nxt:
                break
            params = {"limit": limit, "after": nxt["after"]}
    return records, pages, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    process, base_url, startup = start_sandbox(args.contacts, args.seed)
    try:
        records, pages, seconds = full_read(base_url)
    finally:
        process.terminate()
        process.wait()
    print(f"sandbox start (generate {args.contacts:,} contacts + serve): {startup:.1f} s")
    print(
        f"full paged read: {records:,} contacts in {pages:,} pages, {seconds:.1f} s "
        f"= {records / seconds:,.0f} records/s"
    )


if __name__ == "__main__":
    main()
