"""The completeness audit's cost (requests, time, share of each API's daily budget) and what
it finds, against a sandbox in its own process.

    python benchmarks/bench_audit.py --contacts 100000

A world is served and loaded; the audit then runs twice in its own process: on the complete
warehouse (the listing is the whole cost), and after 0.1% of the rows of four raw tables were
deleted (what it finds, fetches again and leaves missing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest

AUDITOR = """
import json, logging, sys, time
logging.disable(logging.WARNING)
from pathlib import Path
from ingestion.audit import run_audit
from ingestion.warehouse import Paths
from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env
if __name__ == "__main__":
    started = time.monotonic()
    with patched_env(source_env(sandbox_base_urls(sys.argv[1]))):
        audits = run_audit(where=Paths(Path(sys.argv[2])))
    rows = [dict(a.__dict__, audited_at=str(a.audited_at), budget_share=a.budget_share) for a in audits]
    print(json.dumps({"seconds": time.monotonic() - started, "audits": rows}))
"""
LOST = {
    "raw_crm.contacts": "id",
    "raw_billing.invoices": "id",
    "raw_scheduling.invitees": "uri",
    "raw_ads.meta_campaign_insights": "_dlt_id",
}


def audit(url: str, home: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", AUDITOR, url, str(home)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def lose(home: Path, share: float) -> dict[str, int]:
    """Delete a share of the rows of a few raw tables, as a lost page would."""
    lost = {}
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for table, key in LOST.items():
            rows = con.execute(f"select count(*) from {table}").fetchall()[0][0]
            n = max(1, int(rows * share))
            con.execute(
                f"delete from {table} where {key} in (select {key} from {table} using sample {n} rows)"
            )
            lost[table] = n
    return lost


def show(title: str, result: dict) -> None:
    print(f"\n{title}: {result['seconds']:.1f} s in all")
    header = ("resource", "at source", "missing", "stale", "left", "requests", "list s", "budget")
    print(f"{header[0]:<36} " + " ".join(f"{h:>9}" for h in header[1:]))
    by_system: dict[str, list[float]] = {}
    for a in result["audits"]:
        name = f"{a['system']}.{a['resource']}"
        print(
            f"{name:<36} {a['at_source']:>9,} {a['missing']:>9,} {a['stale']:>9,} {a['remaining']:>9,} "
            f"{a['requests']:>9,} {a['seconds']:>9.1f} {a['budget_share']:>9.3%}"
        )
        totals = by_system.setdefault(a["system"], [0, 0.0, 0.0])
        totals[0] += a["requests"]
        totals[1] += a["seconds"]
        totals[2] += a["budget_share"]
    for system, (requests, seconds, share) in by_system.items():
        spent = f"{int(requests):,} requests, {seconds:.1f} s listing"
        print(f"  {system}: {spent}, {share:.2%} of the daily budget")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument(
        "--share", type=float, default=0.001, help="share of rows lost before the second audit"
    )
    args = parser.parse_args()
    sandbox, url = bench_ingest.start_sandbox(args.contacts)
    home = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        started = time.monotonic()
        bench_ingest.load(url, home)
        print(f"{args.contacts:,} contacts loaded in {time.monotonic() - started:.0f} s")
        show("audit of a complete warehouse", audit(url, home))
        lost = lose(home, args.share)
        print("\nrows deleted: " + ", ".join(f"{t} {n:,}" for t, n in lost.items()))
        show("audit after the loss", audit(url, home))
    finally:
        sandbox.terminate()
        sandbox.wait()


if __name__ == "__main__":
    main()
