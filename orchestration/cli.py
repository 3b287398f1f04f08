"""The `trueup` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from checks.cli import add_check_command
from ingestion.tables import SYSTEMS
from ingestion.warehouse import Paths, paths
from orchestration.mapping import add_mapping_command

DEFAULT_SANDBOX_PORT = 8765
JOBS = ("nightly", "sync", "refresh")


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

    demo = sub.add_parser("demo", help="run the nightly job on the embedded sandbox and summarize")
    demo.add_argument("--contacts", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run a Dagster job in this process (nightly, sync, refresh)")
    run.add_argument("job", choices=JOBS)
    run.add_argument("--sandbox", metavar="URL", help="point every source at a running sandbox")
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="print the nightly reconciliation report")
    report.add_argument("--markdown", action="store_true", help="markdown, as the Dagster UI shows it")
    report.add_argument("--database", type=Path, help="a published copy (default: $TRUEUP_HOME/published)")
    report.set_defaults(func=cmd_report)

    status = sub.add_parser("status", help="warehouse, published copy, last runs, freshness, alerts")
    status.set_defaults(func=cmd_status)

    ui = sub.add_parser("ui", help="`dagster dev` on loopback with the sandbox")
    ui.add_argument("--port", type=int, default=int(os.environ.get("TRUEUP_UI_PORT") or 3000))
    ui.add_argument("--contacts", type=int, default=2000)
    ui.add_argument("--seed", type=int, default=7)
    ui.add_argument("--no-sandbox", action="store_true", help="use the configured sources instead")
    ui.add_argument(
        "--write-instance-config", action="store_true", help="write $DAGSTER_HOME/dagster.yaml, exit"
    )
    ui.set_defaults(func=cmd_ui)

    ingest = sub.add_parser("ingest", help="load the source systems into the warehouse")
    ingest.add_argument("--system", action="append", choices=SYSTEMS)
    ingest.add_argument("--full-refresh", action="store_true", help="drop state and reload everything")
    ingest.add_argument("--sandbox", metavar="URL", help="point every source at a running sandbox")
    ingest.add_argument(
        "--sequential",
        action="store_true",
        help="extract one system at a time (default: side by side, a process each; loads stay serial)",
    )
    ingest.set_defaults(func=cmd_ingest)

    build = sub.add_parser("build", help="dbt build the warehouse models")
    build.add_argument("--select", nargs="*", default=[])
    build.set_defaults(func=cmd_build)

    prepare = sub.add_parser("prepare", help="build the dbt manifest (install time)")
    prepare.set_defaults(func=cmd_prepare)

    add_check_command(sub)
    add_mapping_command(sub)

    box = sub.add_parser("sandbox", help="the embedded stand-in for the four systems")
    box_sub = box.add_subparsers(metavar="action")
    serve = box_sub.add_parser("serve", help="serve a generated world until interrupted")
    serve.add_argument("--contacts", type=int, default=2000)
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--port", type=int, default=DEFAULT_SANDBOX_PORT)
    serve.add_argument("--limits", choices=["off", "realistic"], default="off")
    serve.add_argument("--truth-dir", type=Path)
    serve.add_argument(
        "--setup",
        default="",
        help="account switches (custom_properties, no_metadata_links, no_crm_meetings, current_stripe, all)",
    )
    serve.add_argument("--ready-file", type=Path, help="write {url, base_urls} here once serving")
    serve.set_defaults(func=cmd_sandbox_serve)
    advance = box_sub.add_parser("advance", help="move a running sandbox's world forward")
    advance.add_argument("--days", type=int, default=1)
    advance.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}")
    advance.set_defaults(func=cmd_sandbox_advance)
    return parser


# -- running jobs -------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestration.sandbox_runtime import embedded_sandbox

    started = time.monotonic()
    print(f"Generating a {args.contacts:,}-contact world and starting the sandbox ...", flush=True)
    with embedded_sandbox(contacts=args.contacts, seed=args.seed) as sandbox:
        print(f"Sandbox serving on {sandbox.url}", flush=True)
        run_id = run_job("nightly")
    print_summary(run_id, time.monotonic() - started)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env

    started = time.monotonic()
    env = source_env(sandbox_base_urls(args.sandbox)) if args.sandbox else {}
    with patched_env(env):
        run_id = run_job(args.job)
    print_summary(run_id, time.monotonic() - started, report=args.job != "sync")
    return 0


def run_job(name: str) -> str:
    """Execute a Dagster job in this process; raise when it fails.

    The run holds the warehouse writer lock from its first step to its last (the
    `warehouse_writer` resource), so it waits for, and never overlaps, another writer.
    """
    import dagster as dg

    from orchestration.definitions import defs

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    print(f"Running Dagster job {name!r} (in-process) ...", flush=True)
    result = defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False)
    if not result.success:
        from orchestration.alerts import step_error

        failures = [f"{e.step_key}: {step_error(e)}" for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"job {name!r} failed: " + ("; ".join(failures[:3]) or "see the run's logs"))
    return result.run_id


def print_summary(run_id: str, seconds: float, report: bool = True) -> None:
    """Rows per schema of the published copy, then the reconciliation report."""
    import duckdb

    from orchestration import report as report_module

    where = paths()
    print(f"\nDagster run {run_id} succeeded in {seconds:.1f}s")
    print(f"Warehouse: {where.warehouse}\nPublished read-only copy: {where.published}\n")
    with duckdb.connect(str(where.published), read_only=True) as con:
        rows = con.execute(
            'select table_schema, count(*), sum("rows") from _publication.tables group by 1 order by 1'
        ).fetchall()
    width = max((len(str(r[0])) for r in rows), default=6)
    print(f"{'schema':<{width}}  {'tables':>6}  {'rows':>10}")
    for schema, tables, total in rows:
        print(f"{schema:<{width}}  {tables:>6}  {int(total or 0):>10,}")
    if report:
        print("\n" + report_module.to_text(report_module.collect(where.published)), end="")


def cmd_report(args: argparse.Namespace) -> int:
    from orchestration import report

    collected = report.collect(args.database or paths().published)
    print(report.to_markdown(collected) if args.markdown else report.to_text(collected), end="")
    return 0


# -- status -------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from orchestration import alerts, report
    from orchestration.publish import read_publication

    where = paths()
    now = datetime.now(UTC)
    print(f"Home             {where.home}")
    print(f"Warehouse        {_file_line(where.warehouse)}")
    publication = read_publication(where.published)
    if publication is None:
        print("Published copy   none yet (it appears at the end of the first run)")
    else:
        age = _ago(now, publication["published_at"])
        print(f"Published copy   {_file_line(where.published)}")
        print(f"                 run {publication['run_id'][:8]} ({publication['job']}), published {age}")
    print(f"Writer           {_writer_state(where)}")
    collected = report.collect(where.published, now=now)
    totals = collected.totals
    if collected.rules is not None:
        print(
            f"Findings         {totals['open']:,} open; last run: {totals['new']:,} new, "
            f"{totals['resolved']:,} resolved"
        )
    fresh = ", ".join(
        f"{f.system} {'fresh' if f.fresh else 'STALE'} ({report.hours_text(f.age_hours)})"
        for f in collected.freshness
    )
    print(f"Freshness        {fresh}")
    for line in _run_lines():
        print(line)
    recent = alerts.read_alerts(where, limit=3)
    print(f"Alerts           {'none' if not recent else ''}")
    for alert in recent:
        when, delivery = alert["raised_at"][:19], alert.get("delivery", "")
        print(f"  {when}  {alert['job']}  run {alert['run_id'][:8]}  {delivery}")
    return 0


def _file_line(path: Path) -> str:
    if not path.exists():
        return f"{path} (missing)"
    stat = path.stat()
    modified = datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{path} ({stat.st_size / 1e6:,.1f} MB, modified {modified})"


def _ago(now: datetime, moment: Any) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    minutes = (now - moment).total_seconds() / 60
    return f"{minutes:.0f} min ago" if minutes < 120 else f"{minutes / 60:.1f} h ago"


def _writer_state(where: Paths) -> str:
    import fcntl

    from orchestration.resources import lock_path

    lock_file = lock_path(where)
    if not lock_file.exists():
        return "idle"
    with open(lock_file) as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return f"a run is writing (pid {handle.read().strip() or '?'})"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return "idle"


def _run_lines(limit: int = 5) -> list[str]:
    """The last runs from the Dagster instance at $DAGSTER_HOME, when there is one."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or not (Path(home) / "dagster.yaml").exists():
        return ["Last runs        (DAGSTER_HOME is not set)"]
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(limit=limit)
    lines = [f"Last runs        {'none' if not records else ''}"]
    for record in records:
        run = record.dagster_run
        start, end = record.start_time, record.end_time
        took = f"{end - start:,.0f}s" if start and end else ""
        when = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M UTC") if start else "not started"
        lines.append(f"  {when}  {run.job_name:<10} {run.status.value:<9} {took:>7}  {run.run_id[:8]}")
    return lines


# -- the UI -------------------------------------------------------------------------------------


def cmd_ui(args: argparse.Namespace) -> int:
    from orchestration import ui

    if args.write_instance_config:
        print(f"Dagster instance config: {ui.write_instance_config()}")
        return 0
    return ui.serve(port=args.port, contacts=args.contacts, seed=args.seed, with_sandbox=not args.no_sandbox)


# -- the steps one at a time --------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingestion.pipeline import IngestError, result_lines, run_systems
    from orchestration.resources import ops_settings, writer_lock
    from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env

    env = source_env(sandbox_base_urls(args.sandbox)) if args.sandbox else {}
    with patched_env(env), writer_lock(wait_seconds=ops_settings().writer_wait_seconds):
        try:
            results = run_systems(
                args.system or SYSTEMS,
                full_refresh=args.full_refresh,
                report=print,
                parallel=not args.sequential,
            )
        except IngestError as failed:
            print("\n".join(result_lines(failed.results)))
            print(f"error: {failed}")
            return 1
    print("\n".join(result_lines(results)))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from orchestration.dbt import run_dbt
    from orchestration.resources import ops_settings, writer_lock

    with writer_lock(wait_seconds=ops_settings().writer_wait_seconds):
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
    argv += ["--ready-file", str(args.ready_file)] if args.ready_file else []
    argv += ["--setup", args.setup] if args.setup else []
    return serve(argv)


def cmd_sandbox_advance(args: argparse.Namespace) -> int:
    response = httpx.post(f"{args.url}/_admin/advance", json={"days": args.days}, timeout=300)
    response.raise_for_status()
    print(json.dumps(response.json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
