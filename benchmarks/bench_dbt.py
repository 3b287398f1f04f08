"""Wall time and peak memory of a full `dbt build` (seeds, models, tests) on a freshly loaded
raw warehouse, and the identity-resolution models' share of it. Goal: the 1,000,000-contact
world builds in at most 2 minutes on a 2-core machine.

    python benchmarks/bench_dbt.py                                 # 100k and 1M: serve, load, build
    python benchmarks/bench_dbt.py --contacts 20000 --home DIR     # load into DIR/contacts-20000 and keep it
    python benchmarks/bench_dbt.py --home DIR                      # DIR holds a loaded warehouse: build only

For each scale: the sandbox serves a generated world in its own process (`bench_ingest`),
the four systems are loaded from it into a raw warehouse, the sandbox is stopped, then dbt
runs `build` in a fresh Python process whose only child is dbt, so that process's
`RUSAGE_CHILDREN` peak RSS is dbt's own (DuckDB runs inside it). Printed per scale: the
build's wall time (dbt's start-up and parse included) and dbt's own elapsed time, peak RSS,
the summed execution time of the `int_identity__*` models, and the five slowest nodes.

Repeatable measurement: every build runs on a scratch copy of the raw warehouse, from which
every schema that is not raw (`raw_*`) is dropped first, so each run is the nightly job's
first build of that load (seeds created, incremental models such as `findings` built from
nothing), and the loaded home stays untouched for the next run. `--home DIR` keeps the
loaded warehouses: DIR itself when it already holds one, else DIR/contacts-N per scale
(loaded there when missing, reused when present).

Clock: the sandbox anchors its world at midnight UTC of the day it starts (as
`today_anchor()` does) and the nightly job builds the same day, so dbt's `run_started_at`
(the settle window of `deal_won_no_invoice`, findings' timestamps) falls on the world's day.
A home loaded on an earlier day gets `--vars {run_started_at: ...}` set to the same time of
day on the world's day, so the settle window sees the data as it did when loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest  # noqa: E402
import duckdb  # noqa: E402
import httpx  # noqa: E402

from ingestion.tables import SYSTEMS, dataset_name  # noqa: E402
from ingestion.warehouse import Paths, table_counts  # noqa: E402
from orchestration.sandbox_runtime import today_anchor  # noqa: E402

GOAL_CONTACTS = 1_000_000
GOAL_SECONDS = 120.0
DEFAULT_CONTACTS = (100_000, 1_000_000)
IDENTITY_PREFIX = "model.trueup.int_identity__"
LOAD_INFO = "bench_dbt_load.json"  # written next to a warehouse this benchmark loaded

# Runs in a fresh interpreter: dbt is its only child, so RUSAGE_CHILDREN is dbt's peak.
TIMED_BUILD = """
import json, resource, sys, time
from pathlib import Path
from ingestion.warehouse import Paths
from orchestration.dbt import DbtError, run_dbt
error = None
started = time.perf_counter()
try:
    results = run_dbt(json.loads(sys.argv[2]), where=Paths(Path(sys.argv[1])))
except DbtError as exc:
    results, error = exc.results, str(exc)
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "error": error,
    "elapsed": results.get("elapsed_time"),
    "results": [
        {"id": r["unique_id"], "status": r["status"], "seconds": r.get("execution_time") or 0.0}
        for r in results.get("results", [])
    ],
}))
"""


@dataclass
class Measurement:
    contacts: int
    home: Path
    warehouse_mb: float
    load_seconds: float | None = None  # None: the warehouse was loaded before
    records: int | None = None
    build_seconds: list[float] = field(default_factory=list)
    dbt_elapsed: float = 0.0
    peak_rss_mb: float = 0.0
    identity_seconds: float = 0.0
    nodes: int = 0
    slowest: list[tuple[str, float]] = field(default_factory=list)
    not_passed: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def best_seconds(self) -> float:
        return min(self.build_seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 1),
            "records": self.records,
            "warehouse_mb": round(self.warehouse_mb),
            "build_seconds": round(self.best_seconds, 1),
            "build_runs": [round(s, 1) for s in self.build_seconds],
            "dbt_elapsed_seconds": round(self.dbt_elapsed, 1),
            "peak_rss_mb": round(self.peak_rss_mb),
            "identity_seconds": round(self.identity_seconds, 2),
            "nodes": self.nodes,
            "slowest": [[name, round(seconds, 2)] for name, seconds in self.slowest],
            "not_passed": len(self.not_passed),
        }


# -- the raw warehouse -----------------------------------------------------------------------------


def is_loaded(home: Path) -> bool:
    """Whether home's warehouse holds raw tables for every source system."""
    warehouse = Paths(home).warehouse
    return warehouse.exists() and all(table_counts(warehouse, dataset_name(s)) for s in SYSTEMS)


def load_world(contacts: int, home: Path) -> tuple[float, int]:
    """Serve a world of `contacts`, load all four systems into home, stop the sandbox."""
    started = time.perf_counter()
    log = home / "load.log"
    print(f"  generating and serving {contacts:,} contacts (their log: {log}) ...", flush=True)
    with stderr_to(log):
        sandbox, url = bench_ingest.start_sandbox(contacts)
        try:
            served = time.perf_counter() - started
            world_now = datetime.fromisoformat(httpx.get(f"{url}/_admin/health", timeout=60).json()["now"])
            print(f"  serving after {served:.0f} s; loading crm, billing, scheduling, ads ...", flush=True)
            result = bench_ingest.load(url, home)
        finally:
            sandbox.terminate()
            sandbox.wait()
    anchor = world_now.replace(hour=0, minute=0, second=0, microsecond=0)
    records = sum(result["records"].values())
    info = {**result, "contacts": contacts, "anchor": anchor.isoformat(), "total_records": records}
    (home / LOAD_INFO).write_text(json.dumps(info, indent=2))
    print(
        f"  loaded {records:,} records in {result['seconds']:.0f} s "
        f"({time.perf_counter() - started:.0f} s with the world's generation)",
        flush=True,
    )
    return float(result["seconds"]), records


@contextmanager
def stderr_to(log: Path) -> Iterator[None]:
    """Send this process's stderr, and so the sandbox's and the loader's, to `log`; on an error
    its tail is shown."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with log.open("ab") as target:
            os.dup2(target.fileno(), 2)
            try:
                yield
            except BaseException:
                os.dup2(saved, 2)
                tail = log.read_text(errors="replace").splitlines()[-30:]
                print("\n".join(tail), file=sys.stderr)
                raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def world_anchor(home: Path) -> datetime | None:
    """Midnight UTC of the day the loaded world was anchored at: from the load's notes, else
    the day of the first dlt load into the CRM schema."""
    info = home / LOAD_INFO
    if info.exists():
        return datetime.fromisoformat(json.loads(info.read_text())["anchor"])
    with duckdb.connect(str(Paths(home).warehouse), read_only=True) as con:
        try:
            row = con.execute("select min(inserted_at) from raw_crm._dlt_loads").fetchone()
        except duckdb.Error:
            return None
    if not row or row[0] is None:
        return None
    first: datetime = row[0] if row[0].tzinfo else row[0].replace(tzinfo=UTC)
    return first.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def loaded_contacts(home: Path) -> int:
    info = home / LOAD_INFO
    if info.exists():
        return int(json.loads(info.read_text())["contacts"])
    return table_counts(Paths(home).warehouse, "raw_crm").get("contacts", 0)


def scratch_copy(home: Path, scratch: Path) -> Path:
    """Copy home's warehouse into scratch and drop everything but the raw schemas."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    source = Paths(home).warehouse
    target = Paths(scratch).warehouse
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    with duckdb.connect(str(target)) as con:
        schemas = [
            row[0]
            for row in con.execute(
                "select schema_name from information_schema.schemata "
                "where catalog_name = current_database() and schema_name not like 'raw\\_%' escape '\\' "
                "and schema_name not in ('main', 'information_schema', 'pg_catalog')"
            ).fetchall()
        ]
        for schema in schemas:
            con.execute(f'drop schema "{schema}" cascade')
        con.execute("checkpoint")
    return scratch


# -- the build -------------------------------------------------------------------------------------


def timed_build(home: Path, run_started_at: datetime | None) -> dict[str, Any]:
    args = ["build"]
    if run_started_at is not None:
        args += ["--vars", json.dumps({"run_started_at": run_started_at.isoformat()})]
    out = subprocess.run(
        [sys.executable, "-c", TIMED_BUILD, str(home), json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
    )
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


def measure(contacts: int, home: Path, repeat: int, save: Path | None) -> Measurement:
    load_seconds: float | None = None
    records: int | None = None
    if is_loaded(home):
        print(f"  reusing the loaded warehouse in {home}", flush=True)
    else:
        home.mkdir(parents=True, exist_ok=True)
        load_seconds, records = load_world(contacts, home)
    measurement = Measurement(
        contacts=contacts,
        home=home,
        warehouse_mb=Paths(home).warehouse.stat().st_size / 1e6,
        load_seconds=load_seconds,
        records=records,
    )
    anchor = world_anchor(home)
    run_started_at = None
    if anchor is not None and anchor != today_anchor():
        run_started_at = anchor + (datetime.now(UTC) - today_anchor())
        print(f"  the world is anchored at {anchor:%Y-%m-%d}: dbt runs as of {run_started_at:%Y-%m-%d %H:%M}")
    elif anchor is None:
        print("  the world's day is unknown: dbt uses its own clock", flush=True)
    scratch = home / "bench-dbt-scratch"
    try:
        for run in range(repeat):
            scratch_copy(home, scratch)
            print(f"  dbt build, run {run + 1} of {repeat} ...", flush=True)
            report = timed_build(scratch, run_started_at)
            measurement.build_seconds.append(report["seconds"])
            if report["seconds"] == measurement.best_seconds:
                _record(measurement, report)
                if save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    results = scratch / "dbt" / "target" / "run_results.json"
                    if results.exists():
                        shutil.copyfile(results, save / f"run_results-{contacts}.json")
            print(f"    {report['seconds']:.1f} s", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return measurement


def _record(measurement: Measurement, report: dict[str, Any]) -> None:
    results = report["results"]
    measurement.dbt_elapsed = float(report["elapsed"] or 0.0)
    measurement.peak_rss_mb = report["peak_kb"] / 1024
    measurement.identity_seconds = sum(r["seconds"] for r in results if r["id"].startswith(IDENTITY_PREFIX))
    measurement.nodes = len(results)
    ranked = sorted(results, key=lambda r: r["seconds"], reverse=True)[:5]
    measurement.slowest = [(_short(r["id"]), float(r["seconds"])) for r in ranked]
    measurement.not_passed = [
        f"{_short(r['id'])} ({r['status']})" for r in results if r["status"] not in ("success", "pass")
    ]
    measurement.error = report["error"]


def _short(unique_id: str) -> str:
    """model.trueup.int_identity__links -> int_identity__links; test.trueup.x.1a2b -> test:x."""
    kind, _, name = unique_id.split(".")[:3]
    return name if kind in ("model", "seed") else f"{kind}:{name}"


def _clip(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


# -- report ----------------------------------------------------------------------------------------


def report(measurements: list[Measurement]) -> None:
    header = (
        f"{'contacts':>10} {'load s':>8} {'build s':>8} {'dbt s':>7} {'peak RSS MB':>12} "
        f"{'identity s':>11} {'nodes':>6}  slowest nodes (s)"
    )
    print("\n" + header)
    print("-" * len(header))
    for m in measurements:
        load = "reused" if m.load_seconds is None else f"{m.load_seconds:.0f}"
        slowest = ", ".join(f"{_clip(name)} {seconds:.1f}" for name, seconds in m.slowest)
        print(
            f"{m.contacts:>10,} {load:>8} {m.best_seconds:>8.1f} {m.dbt_elapsed:>7.1f} "
            f"{m.peak_rss_mb:>12,.0f} {m.identity_seconds:>11.2f} {m.nodes:>6}  {slowest}"
        )
    for m in measurements:
        if m.not_passed:
            print(f"\n{m.contacts:,} contacts: not passed: {', '.join(m.not_passed[:20])}")
        if m.error:
            print(f"{m.contacts:,} contacts: dbt reported: {m.error[:600]}")
    goal = [m for m in measurements if m.contacts >= GOAL_CONTACTS]
    if goal:
        verdict = "met" if all(m.best_seconds <= GOAL_SECONDS for m in goal) else "missed"
        print(f"\ngoal: {GOAL_CONTACTS:,} contacts build in at most {GOAL_SECONDS:.0f} s: {verdict}")
    print(
        json.dumps({"bench": "dbt", "cores": os.cpu_count(), "scales": [m.as_dict() for m in measurements]})
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--contacts", type=int, action="append", help="world size (repeatable; default 100000 and 1000000)"
    )
    parser.add_argument("--home", type=Path, help="keep loaded warehouses here (see above)")
    parser.add_argument("--repeat", type=int, default=1, help="builds per scale; the figure is the fastest")
    parser.add_argument("--save-results", type=Path, help="copy each scale's run_results.json here")
    args = parser.parse_args(argv)

    os.environ.pop("TRUEUP_WAREHOUSE", None)  # every Paths(home) must resolve inside its own home
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    temp = None if args.home else tempfile.TemporaryDirectory(prefix="bench-dbt-")
    root = args.home or Path(temp.name if temp else ".")
    if args.home and is_loaded(args.home):
        scales = [(loaded_contacts(args.home), args.home)]
        if args.contacts:
            print(f"{args.home} holds a loaded warehouse: --contacts is ignored")
    else:
        scales = [(n, root / f"contacts-{n}") for n in args.contacts or DEFAULT_CONTACTS]
    measurements = []
    try:
        for contacts, home in scales:
            print(f"\n{contacts:,} contacts (load average {os.getloadavg()[0]:.1f})", flush=True)
            measurements.append(measure(contacts, home, max(args.repeat, 1), args.save_results))
    finally:
        if temp is not None:
            temp.cleanup()
    report(measurements)
    return 1 if any(m.error for m in measurements) else 0


if __name__ == "__main__":
    sys.exit(main())
