"""The `trueup` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from ingestion.warehouse import paths

DEFAULT_SANDBOX_PORT = 8765


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI's one place to turn errors into a message and an exit code
        if args.verbose:
            raise
        print(f"trueup: error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trueup", description="ELT and reconciliation warehouse.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, full tracebacks")
    sub = parser.add_subparsers(metavar="command")

    demo = sub.add_parser("demo", help="run the whole job on the embedded sandbox and summarize")
    demo.add_argument("--contacts", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)

    ingest = sub.add_parser("ingest", help="load the source systems into the warehouse")
    ingest.add_argument("--system", action="append", choices=["crm", "billing", "scheduling", "ads"])
    ingest.add_argument("--full-refresh", action="store_true", help="drop state and reload everything")
    ingest.add_argument("--sandbox", metavar="URL", help="point every source at a running sandbox")
    ingest.set_defaults(func=cmd_ingest)

    build = sub.add_parser("build", help="dbt build the warehouse models")
    build.add_argument("--select", nargs="*", default=[])
    build.set_defaults(func=cmd_build)

    prepare = sub.add_parser("prepare", help="build the dbt manifest (install time)")
    prepare.set_defaults(func=cmd_prepare)

    box = sub.add_parser("sandbox", help="the embedded stand-in for the four systems")
    box_sub = box.add_subparsers(metavar="action")
    serve = box_sub.add_parser("serve", help="serve a generated world until interrupted")
    serve.add_argument("--contacts", type=int, default=2000)
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--port", type=int, default=DEFAULT_SANDBOX_PORT)
    serve.add_argument("--limits", choices=["off", "realistic"], default="off")
    serve.add_argument("--truth-dir", type=Path)
    serve.set_defaults(func=cmd_sandbox_serve)
    advance = box_sub.add_parser("advance", help="move a running sandbox's world forward")
    advance.add_argument("--days", type=int, default=1)
    advance.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}")
    advance.set_defaults(func=cmd_sandbox_advance)
    return parser


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestration.sandbox_runtime import embedded_sandbox

    started = time.monotonic()
    print(f"Generating a {args.contacts:,}-contact world and starting the sandbox ...", flush=True)
    with embedded_sandbox(contacts=args.contacts, seed=args.seed) as sandbox:
        print(f"Sandbox serving on {sandbox.url}", flush=True)
        run_id = run_job("nightly")
    print_summary(run_id, time.monotonic() - started)
    return 0


def run_job(name: str) -> str:
    """Execute a Dagster job in this process; raise when it fails."""
    import dagster as dg

    from orchestration.definitions import defs

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    print(f"Running Dagster job {name!r} (in-process) ...", flush=True)
    result = defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False)
    if not result.success:
        failures = [str(e.message) for e in result.all_events if e.is_failure]
        raise RuntimeError(f"job {name!r} failed: " + "; ".join(failures[:3]))
    return result.run_id


def print_summary(run_id: str, seconds: float) -> None:
    import duckdb

    where = paths()
    print(f"\nDagster run {run_id} succeeded in {seconds:.1f}s")
    print(f"Warehouse: {where.warehouse}")
    with duckdb.connect(str(where.warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not like '%staging' or table_schema = 'staging' "
            "order by 1, 2"
        ).fetchall()
        width = max((len(f"{s}.{t}") for s, t in rows), default=10)
        print(f"{'table':<{width}}  rows")
        for schema, table in rows:
            if table.startswith("_dlt") or schema.endswith("_staging"):
                continue
            count = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
            print(f"{schema + '.' + table:<{width}}  {count[0] if count else 0:>8,}")


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingestion.pipeline import SYSTEMS, run_system
    from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env

    env = source_env(sandbox_base_urls(args.sandbox)) if args.sandbox else {}
    with patched_env(env):
        for system in args.system or SYSTEMS:
            result = run_system(system, full_refresh=args.full_refresh, report=print)
            print(f"{'table':<28} {'loaded':>9} {'new':>9} {'updated':>9} {'rows':>10}")
            for t in result.tables:
                print(f"{t.table:<28} {t.loaded:>9,} {t.new:>9,} {t.updated:>9,} {t.rows:>10,}")
            print(f"{system}: {result.quarantined} quarantined, {result.seconds:.1f}s\n")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from orchestration.dbt import run_dbt

    run_dbt(["build", *(["--select", *args.select] if args.select else [])], on_line=print)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from orchestration.dbt import prepare

    print(f"dbt manifest: {prepare()}")
    return 0


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from sandbox.server import main as serve

    argv = ["--contacts", str(args.contacts), "--seed", str(args.seed), "--port", str(args.port)]
    argv += ["--limits", args.limits] + (["--truth-dir", str(args.truth_dir)] if args.truth_dir else [])
    return serve(argv)


def cmd_sandbox_advance(args: argparse.Namespace) -> int:
    response = httpx.post(f"{args.url}/_admin/advance", json={"days": args.days}, timeout=300)
    response.raise_for_status()
    print(json.dumps(response.json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
