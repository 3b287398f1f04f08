"""How long the Dagster code location takes to load, and the nightly job's wall time.

    python benchmarks/bench_orchestration.py                       # load time + nightly at 2,000 contacts
    python benchmarks/bench_orchestration.py --load-only --repeat 7
    python benchmarks/bench_orchestration.py --skip-load --contacts 100000

Load time is measured in fresh interpreters (as `dagster dev` and each run worker load the
code location): the time to import `orchestration.definitions` and resolve the asset graph,
and the CPU seconds the whole process used (a fairer figure on a busy machine). The goal
is at most 3 s. The nightly figure is one in-process run of the `nightly` job against the
embedded sandbox in a fresh TRUEUP_HOME (world generation and serving not included),
with the time of every step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOAD_CODE = (
    "import json, time; started = time.perf_counter(); "
    "from orchestration.definitions import defs; defs.resolve_asset_graph(); "
    "print(json.dumps({'load': time.perf_counter() - started}))"
)


def load_time(repeat: int) -> dict[str, float]:
    """Median and best load time over `repeat` fresh interpreters, with CPU seconds."""
    loads, walls, cpus = [], [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", LOAD_CODE], capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        loads.append(json.loads(out.stdout.strip().splitlines()[-1])["load"])
    return {
        "load_median_s": statistics.median(loads),
        "load_best_s": min(loads),
        "process_wall_median_s": statistics.median(walls),
        "process_cpu_median_s": statistics.median(cpus),
    }


def nightly(contacts: int, seed: int, keep: bool = False) -> dict[str, object]:
    """One nightly run in-process on a fresh home; wall time and time per step."""
    home = Path(tempfile.mkdtemp(prefix="trueup-bench-"))
    os.environ["TRUEUP_HOME"] = str(home)
    os.environ.pop("TRUEUP_WAREHOUSE", None)
    os.environ.pop("DAGSTER_HOME", None)
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.sandbox_runtime import embedded_sandbox

    generated = time.perf_counter()
    with embedded_sandbox(contacts=contacts, seed=seed):
        ready = time.perf_counter()
        result = defs.resolve_job_def("nightly").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )
        wall = time.perf_counter() - ready
    steps = {
        str(event.step_key): round(event.event_specific_data.duration_ms / 1000, 1)  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS
    }
    published = home / "published" / "warehouse.duckdb"
    figures = {
        "contacts": contacts,
        "success": result.success,
        "world_and_sandbox_s": round(ready - generated, 1),
        "nightly_wall_s": round(wall, 1),
        "warehouse_mb": round((home / "warehouse.duckdb").stat().st_size / 1e6, 1),
        "published_mb": round(published.stat().st_size / 1e6, 1) if published.exists() else None,
        "steps_s": steps,
        "home": str(home) if keep else None,
    }
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters for the load time")
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's TRUEUP_HOME")
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    figures: dict[str, object] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}
    if not args.skip_load:
        figures.update({k: round(v, 2) for k, v in load_time(args.repeat).items()})
        print(json.dumps(figures), flush=True)
    if not args.load_only:
        figures["nightly"] = nightly(args.contacts, args.seed, keep=args.keep)
        figures["load_average_after"] = os.getloadavg()[0]
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
