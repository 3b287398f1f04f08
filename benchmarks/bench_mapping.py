"""What it costs to set a business up by configuration: a first load of every CRM property, then
`trueup mapping suggest` on it, against a sandbox world with every account switch on.

    python benchmarks/bench_mapping.py --contacts 100000

Prints, for the first load (`[sources.crm.properties] contacts = "all"`, `deals = "all"`):
requests per API and time; for the same CRM load with only the mapped properties: requests and
time (what "all" adds); for suggest: warehouse queries, API requests (none: it reads raw) and
time, and whether its proposal is the configuration the world's owner would write
(`sandbox.accounts.mapping_for`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_ingest import start_sandbox

from sandbox.accounts import AccountSetup, config_env, mapping_for

LOADER = """
import json, sys, time, logging
logging.disable(logging.WARNING)
from pathlib import Path
from ingestion.pipeline import run_systems
from ingestion.warehouse import Paths
from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env
if __name__ == "__main__":
    started = time.monotonic()
    with patched_env(source_env(sandbox_base_urls(sys.argv[1]))):
        results = run_systems(sys.argv[3].split(","), where=Paths(Path(sys.argv[2])))
    records = {r.system: r.records for r in results}
    print(json.dumps({"seconds": time.monotonic() - started, "records": records}))
"""

SYSTEMS = "crm,billing,scheduling,ads"


def stats(url: str) -> dict[str, int]:
    requests: dict[str, int] = httpx.get(f"{url}/_admin/stats", timeout=60).json()["requests"]
    return requests


def per_api(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, value in after.items():
        api = key.split(":")[0]
        counts[api] = counts.get(api, 0) + value - before.get(key, 0)
    return {api: n for api, n in counts.items() if n}


def load(url: str, home: Path, systems: str, env: dict[str, str]) -> dict[str, Any]:
    before = stats(url)
    argv = [sys.executable, "-c", LOADER, url, str(home), systems]
    out = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"loader failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["requests"] = per_api(before, stats(url))
    return result


def suggest(home: Path) -> tuple[Any, float]:
    import duckdb

    from orchestration.suggest import suggest as run_suggest

    started = time.monotonic()
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        report = run_suggest(con)
    return report, time.monotonic() - started


def agrees(report: Any, setup: AccountSetup) -> list[str]:
    """The settings of mapping_for(setup) that the proposal gets wrong (empty: all right)."""
    from orchestration.suggest import settings_to_write

    proposed = settings_to_write(report)
    wrong = []
    for key, value in mapping_for(setup)["mapping"].items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for concept, item in items:
            got = proposed.get(key, {}).get(concept) if concept else proposed.get(key)
            if got != item:
                wrong.append(f"{key}{'.' + concept if concept else ''}: proposed {got!r}, expected {item!r}")
    return wrong


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    setup = AccountSetup.every_switch()
    print(f"world: {args.contacts:,} contacts, switches {', '.join(setup.switches)}", flush=True)
    started = time.monotonic()
    process, url = start_sandbox(args.contacts, setup="all")
    print(f"  generated and serving in {time.monotonic() - started:.0f}s", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mapping-") as scratch:
            everything = {"SOURCES__CRM__PROPERTIES": json.dumps({"contacts": "all", "deals": "all"})}
            first = load(url, Path(scratch) / "all", SYSTEMS, everything)
            print(
                f"first load, every CRM property: {first['seconds']:.1f}s, "
                f"{sum(first['records'].values()):,} records; requests {first['requests']}"
            )
            report, seconds = suggest(Path(scratch) / "all")
            wrong = agrees(report, setup)
            print(
                f"mapping suggest: {seconds:.2f}s, {report.queries} warehouse queries, 0 API requests; "
                + ("the proposal is the owner's configuration" if not wrong else f"differs: {wrong}")
            )
            mapped_env = {k: v for k, v in config_env(setup).items() if k.startswith("MAPPING__")}
            mapped = load(url, Path(scratch) / "mapped", "crm", mapped_env)
            crm_all = first["requests"].get("hubspot", 0)
            print(
                f"CRM load, mapped properties only: {mapped['seconds']:.1f}s, "
                f"{mapped['requests'].get('hubspot', 0):,} HubSpot requests (every property: {crm_all:,})"
            )
    finally:
        process.terminate()
        process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
