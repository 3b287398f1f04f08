"""The nightly job's wall time on both warehouse engines, for the same world in the same run.

    python benchmarks/bench_engines.py                                  # 2,000 contacts
    python benchmarks/bench_engines.py --contacts 2000 --contacts 100000

For each size, one world is generated and served; the `nightly` job runs in-process once on
a fresh DuckDB file and once on a fresh database of a throwaway PostgreSQL server
(sandbox/postgres.py: loopback, fsync off, as the tests start it), each in a fresh
TRUEUP_HOME. Printed: wall time and the time of every step per engine, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def nightly(home: Path, warehouse: str | None) -> dict[str, Any]:
    import dagster as dg

    from orchestration.definitions import defs

    os.environ["TRUEUP_HOME"] = str(home)
    os.environ.pop("DAGSTER_HOME", None)
    if warehouse:
        os.environ["TRUEUP_WAREHOUSE"] = warehouse
    else:
        os.environ.pop("TRUEUP_WAREHOUSE", None)
    started = time.perf_counter()
    result = defs.resolve_job_def("nightly").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    wall = time.perf_counter() - started
    steps = {
        str(event.step_key): round(event.event_specific_data.duration_ms / 1000, 1)  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS
    }
    return {"success": result.success, "nightly_wall_s": round(wall, 1), "steps_s": steps}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, action="append")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from orchestration.sandbox_runtime import embedded_sandbox
    from sandbox.postgres import PostgresServer, unavailable

    reason = unavailable()
    if reason:
        print(json.dumps({"skipped": reason}))
        return 0
    out: list[dict[str, Any]] = []
    with PostgresServer.start() as server:
        # the server's Python reads phonenumbers, anyascii and tzdata from here (docs/scaling.md)
        os.environ["TRUEUP_WAREHOUSE_PYTHON_PATH"] = str(server.python_path)
        for contacts in args.contacts or [2000]:
            root = Path(tempfile.mkdtemp(prefix="trueup-bench-engines-"))
            database = f"bench_{contacts}"
            server.psql(f"drop database if exists {database} with (force)", database="postgres")
            server.psql(f"create database {database}", database="postgres")
            url = server.url.rsplit("/", 1)[0] + "/" + database
            generated = time.perf_counter()
            with embedded_sandbox(contacts=contacts, seed=args.seed):
                ready = time.perf_counter()
                figures: dict[str, Any] = {
                    "contacts": contacts,
                    "world_and_sandbox_s": round(ready - generated, 1),
                    "load_average": round(os.getloadavg()[0], 2),
                    "duckdb": nightly(root / "duckdb", None),
                    "postgres": nightly(root / "postgres", url),
                }
            figures["postgres_over_duckdb"] = round(
                figures["postgres"]["nightly_wall_s"] / max(figures["duckdb"]["nightly_wall_s"], 0.1), 2
            )
            figures["load_average_after"] = round(os.getloadavg()[0], 2)
            out.append(figures)
            print(json.dumps(figures, indent=2), flush=True)
            shutil.rmtree(root, ignore_errors=True)
    failed = [f["contacts"] for f in out if not (f["duckdb"]["success"] and f["postgres"]["success"])]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
