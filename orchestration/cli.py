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
from orchestration.findings_cli import add_findings_command
from orchestration.mapping import add_mapping_command
from reverse_etl.cli import add_reverse_etl_command

DEFAULT_SANDBOX_PORT = 8765
JOBS = ("nightly", "sync", "refresh", "path_health")
WRITER_JOBS = ("nightly", "sync", "refresh")


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
    from orchestration.instance import use_default_home

    previous = os.environ.get("DAGSTER_HOME")
    use_default_home()  # one Dagster instance for every entry point: $TRUEUP_HOME/dagster by default
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI's one place to turn errors into a message and an exit code
        if args.verbose:
            raise
        print(f"trueup: error: {exc}", file=sys.stderr)
        if not getattr(exc, "expected", False):  # a message that says it all needs no traceback hint
            print("(run with -v for the traceback)", file=sys.stderr)
        return 1
    finally:  # main() called in a process of its own leaves nothing behind (tests call it many times)
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


class Expected(RuntimeError):
    """An error whose message says all there is (nothing built yet, a setting missing)."""

    expected = True


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("trueup")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trueup", description="ELT and reconciliation warehouse.")
    parser.add_argument("--version", action="version", version=f"trueup {version()}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="Dagster's event stream, debug logging, full tracebacks"
    )
    sub = parser.add_subparsers(metavar="command")

    demo = sub.add_parser("demo", help="run the nightly job on the embedded sandbox and summarize")
    demo.add_argument(
        "--contacts", type=int, default=2000, help="contacts in the generated world (default 2000)"
    )
    demo.add_argument("--seed", type=int, default=7, help="the world generator's seed (default 7)")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run a Dagster job in this process (nightly, sync, refresh, ...)")
    run.add_argument("job", choices=JOBS, help="the job to run")
    run.add_argument("--sandbox", metavar="URL", help="point every source at a running sandbox")
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="print the nightly reconciliation report")
    report.add_argument("--markdown", action="store_true", help="markdown, as the Dagster UI shows it")
    report.add_argument("--database", type=Path, help="a published copy (default: $TRUEUP_HOME/published)")
    report.set_defaults(func=cmd_report)

    status = sub.add_parser("status", help="warehouse, published copy, last runs, freshness, alerts")
    status.set_defaults(func=cmd_status)

    ui = sub.add_parser("ui", help="`dagster dev` on loopback with the sandbox")
    ui.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("TRUEUP_UI_PORT") or 3000),
        help="the UI's port on 127.0.0.1 (default 3000, or TRUEUP_UI_PORT)",
    )
    ui.add_argument("--contacts", type=int, default=2000, help="contacts in the sandbox world (default 2000)")
    ui.add_argument("--seed", type=int, default=7, help="the world generator's seed (default 7)")
    ui.add_argument("--no-sandbox", action="store_true", help="use the configured sources instead")
    ui.add_argument(
        "--write-instance-config", action="store_true", help="write $DAGSTER_HOME/dagster.yaml, exit"
    )
    ui.set_defaults(func=cmd_ui)

    ingest = sub.add_parser("ingest", help="load the source systems into the warehouse")
    ingest.add_argument("--system", action="append", choices=SYSTEMS, help="only this system (repeatable)")
    ingest.add_argument("--full-refresh", action="store_true", help="drop state and reload everything")
    ingest.add_argument("--sandbox", metavar="URL", help="point every source at a running sandbox")
    ingest.add_argument(
        "--sequential",
        action="store_true",
        help="extract one system at a time (default: side by side, a process each; loads stay serial)",
    )
    ingest.add_argument(
        "--reset-state",
        action="store_true",
        help="first move each system's dlt working folder aside and restore its state from the warehouse "
        "(for a corrupt state or schema file)",
    )
    ingest.set_defaults(func=cmd_ingest)

    audit = sub.add_parser(
        "audit", help="compare every source with raw, key by key, and fetch what is missing or stale"
    )
    audit.add_argument("--system", action="append", choices=SYSTEMS, help="only this system (repeatable)")
    audit.add_argument("--sandbox", metavar="URL", help="point every source at a running sandbox")
    audit.set_defaults(func=cmd_audit)

    quarantine = sub.add_parser("quarantine", help="records held back by their contract")
    quarantine_sub = quarantine.add_subparsers(metavar="action")
    listing = quarantine_sub.add_parser(
        "list", help="open quarantine per system and resource (published copy)"
    )
    listing.set_defaults(func=cmd_quarantine_list)
    accept = quarantine_sub.add_parser(
        "accept", help="accept quarantined records as they are: the next runs stop fetching them again"
    )
    accept.add_argument("--system", required=True, choices=SYSTEMS, help="the system the records came from")
    accept.add_argument("--resource", required=True, help="the resource (raw table) they belong to")
    accept.add_argument(
        "keys", nargs="+", metavar="KEY", help="record keys, as `trueup quarantine list` shows"
    )
    accept.add_argument("--note", default="", help="why (kept with the acceptance)")
    accept.set_defaults(func=cmd_quarantine_accept)

    build = sub.add_parser("build", help="dbt build the warehouse models")
    build.add_argument("--select", nargs="*", default=[], help="dbt node selection (default: everything)")
    build.set_defaults(func=cmd_build)

    prepare = sub.add_parser("prepare", help="build the dbt manifest (install time)")
    prepare.set_defaults(func=cmd_prepare)

    docs = sub.add_parser("docs", help="generate dbt's documentation site and serve it")
    docs.add_argument("--port", type=int, default=8580, help="serve on 127.0.0.1:PORT (default 8580)")
    docs.add_argument("--no-serve", action="store_true", help="generate only; print where the site is")
    docs.set_defaults(func=cmd_docs)

    add_check_command(sub)
    add_webhooks_command(sub)
    add_findings_command(sub)
    add_mapping_command(sub)
    add_reverse_etl_command(sub)

    box = sub.add_parser("sandbox", help="the embedded stand-in for the four systems")
    box_sub = box.add_subparsers(metavar="action")
    serve = box_sub.add_parser("serve", help="serve a generated world until interrupted")
    serve.add_argument("--contacts", type=int, default=2000, help="contacts in the world (default 2000)")
    serve.add_argument("--seed", type=int, default=7, help="the world generator's seed (default 7)")
    serve.add_argument("--port", type=int, default=DEFAULT_SANDBOX_PORT, help="loopback port (0: any free)")
    serve.add_argument(
        "--limits", choices=["off", "realistic"], default="off", help="rate limits like the real APIs"
    )
    serve.add_argument("--truth-dir", type=Path, help="write the world's ground truth here")
    serve.add_argument(
        "--setup",
        default="",
        help="account switches (custom_properties, no_metadata_links, no_crm_meetings, current_stripe, all)",
    )
    serve.add_argument("--ready-file", type=Path, help="write {url, base_urls} here once serving")
    serve.add_argument(
        "--webhook-url", help="send signed webhooks of its changes to {URL}/{stripe,hubspot,calendly}"
    )
    serve.set_defaults(func=cmd_sandbox_serve)
    advance = box_sub.add_parser("advance", help="move a running sandbox's world forward")
    advance.add_argument("--days", type=_day_count, default=1, help="whole days to move forward (1 or more)")
    advance.add_argument(
        "--url", default=f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}", help="the running sandbox"
    )
    advance.set_defaults(func=cmd_sandbox_advance)
    return parser


# -- running jobs -------------------------------------------------------------------------------


PUSH_ON = {"REVERSE_ETL__CRM__PUSH": "true", "REVERSE_ETL__BILLING__PUSH": "true"}


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestration.sandbox_runtime import embedded_sandbox, patched_env

    started = time.monotonic()
    print(f"Generating a {args.contacts:,}-contact world and starting the sandbox ...", flush=True)
    # the demo pushes to the sandbox; a real target starts plan-only (reverse_etl.<target>.push)
    with embedded_sandbox(contacts=args.contacts, seed=args.seed) as sandbox, patched_env(PUSH_ON):
        print(f"Sandbox serving on {sandbox.url}", flush=True)
        run_id = run_job("nightly", verbose=args.verbose)
    print_summary(run_id, time.monotonic() - started)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env

    started = time.monotonic()
    env = source_env(sandbox_base_urls(args.sandbox)) if args.sandbox else {}
    with patched_env(env):
        if args.job in WRITER_JOBS:
            check_settings()
        run_id = run_job(args.job, verbose=args.verbose)
    if args.job == "path_health":
        from orchestration import report as report_module

        print(f"\nDagster run {run_id} succeeded in {time.monotonic() - started:.1f}s\n")
        print(report_module.paths_text(report_module.collect()))
        return 0
    print_summary(run_id, time.monotonic() - started, report=args.job != "sync")
    return 0


def check_settings(systems: Sequence[str] = SYSTEMS) -> None:
    """Fail before a run starts when a source's settings are missing or wrong, in a few lines."""
    from ingestion.config_errors import SettingError
    from ingestion.pipeline import load_source

    problems = []
    for system in systems:
        try:
            load_source(system)
        except SettingError as exc:
            problems.append(str(exc))
    if problems:
        hint = "(or run on the embedded sandbox: `trueup demo`, or `trueup run JOB --sandbox URL`)"
        raise Expected("source settings need attention:\n" + "\n".join(problems) + "\n" + hint)


def run_job(name: str, verbose: bool = False, **kwargs: Any) -> str:
    """Execute a Dagster job in this process on the one instance; raise when it fails."""
    from orchestration.console import run_job as run

    return run(name, verbose=verbose, **kwargs)


def print_summary(run_id: str, seconds: float, report: bool = True) -> None:
    """Rows per schema of the published copy, then the reconciliation report."""
    import duckdb

    from orchestration import report as report_module

    where = paths()
    print(f"\nDagster run {run_id} succeeded in {seconds:.1f}s")
    engine = where.engine
    print(f"Warehouse: {engine.display}")
    if engine.is_postgres:  # BI tools read the server's published_* schemas (docs/scaling.md)
        print("Published for BI tools: the published_* schemas on that server")
    print(f"Published read-only copy: {where.published}\n")
    with duckdb.connect(str(where.published), read_only=True) as con:
        rows = con.execute(
            'select table_schema, count(*), sum("rows") from _publication.tables group by 1 order by 1'
        ).fetchall()
    width = max((len(str(r[0])) for r in rows), default=6)
    print(f"{'schema':<{width}}  {'tables':>6}  {'rows':>10}")
    for schema, tables, total in rows:
        print(f"{schema:<{width}}  {tables:>6}  {int(total or 0):>10,}")
    if report:
        # one finding per rule here; `trueup report` lists more, `trueup findings list` all
        print("\n" + report_module.to_text(report_module.collect(where.published), per_rule=1), end="")


def cmd_report(args: argparse.Namespace) -> int:
    from orchestration import report

    database = args.database or paths().published
    if not database.exists():
        raise Expected(
            f"no published warehouse at {database}: nothing is built yet "
            "(run `trueup run nightly`, or `trueup demo` on the embedded sandbox)"
        )
    collected = report.collect(database)
    print(report.to_markdown(collected) if args.markdown else report.to_text(collected), end="")
    return 0


# -- status -------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from ingestion.webhooks.monitor import status_lines as webhooks_status_lines
    from orchestration import alerts, report
    from orchestration.publish import read_publication
    from reverse_etl.report import status_lines as reverse_etl_status_lines

    where = paths()
    now = datetime.now(UTC)
    print(f"Home             {where.home}")
    engine = where.engine
    print(f"Warehouse        {engine.display if engine.is_postgres else _file_line(where.warehouse)}")
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
    health = collected.completeness
    if health is not None:
        for system, resource, status, reason, scope in health.unread:
            grant = f"; grant {scope}" if scope else ""
            print(f"Not read         {system}.{resource} {status}: {reason[:100]}{grant}")
        if health.unaccounted:
            print(f"Source counts    {health.unaccounted:,} records the sources count are not in raw")
        if health.audit:
            when = max(row["audited_at"] for row in health.audit)
            print(f"Last audit       {str(when)[:16]}: {health.audit_remaining:,} records still missing")
    paths_line = ", ".join(
        f"{p.path} {'ok' if not p.failing else 'FAILING ' + '/'.join(v.metric for v in p.failing)}"
        for p in collected.paths
    )
    print(f"Integration paths {paths_line}")
    for path in collected.paths:
        for verdict in path.failing:
            print(f"  {path.path} {verdict.metric}: {verdict.message} (runbook: {verdict.runbook})")
    for line in _run_lines():
        print(line)
    for line in webhooks_status_lines(where) + reverse_etl_status_lines(where):
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
    """The last runs of the one Dagster instance (the CLI's, the UI's and the schedules')."""
    from orchestration.instance import get_instance

    with get_instance() as instance:
        records = instance.get_run_records(limit=limit)
        home = instance.root_directory
    lines = [f"Last runs        {'none' if not records else ''}(instance {home})"]
    for record in records:
        run = record.dagster_run
        start, end = record.start_time, record.end_time
        took = f"{end - start:,.0f}s" if start and end else ""
        when = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M UTC") if start else "not started"
        lines.append(f"  {when}  {run.job_name:<10} {run.status.value:<9} {took:>7}  {run.run_id[:8]}")
    return lines


# -- webhooks -----------------------------------------------------------------------------------


def add_webhooks_command(sub: Any) -> None:
    hooks = sub.add_parser("webhooks", help="receive signed webhooks; re-drain the inbox")
    hooks_sub = hooks.add_subparsers(metavar="action")
    serve = hooks_sub.add_parser("serve", help="the receiver: POST /webhooks/{stripe,hubspot,calendly}")
    serve.add_argument("--host", help="default: webhooks.host, else 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: webhooks.port, else 8780 (0: any free port)")
    serve.add_argument("--ready-file", type=Path, help="write {url} here once listening")
    serve.add_argument(
        "--sandbox",
        action="store_true",
        help="accept the embedded sandbox's signing secrets (local testing only)",
    )
    serve.set_defaults(func=cmd_webhooks_serve)
    replay = hooks_sub.add_parser("replay", help="drain the inbox's events into raw_webhooks again")
    replay.add_argument("--since", help="events received since: an ISO time, or an age such as 2h, 30m, 7d")
    replay.add_argument(
        "--provider", choices=["stripe", "hubspot", "calendly"], help="only this provider's events"
    )
    replay.set_defaults(func=cmd_webhooks_replay)


def cmd_webhooks_serve(args: argparse.Namespace) -> int:
    import dataclasses

    from ingestion.webhooks import receiver
    from ingestion.webhooks.settings import PROVIDERS, load_settings
    from sandbox.config import DEFAULT_WEBHOOK_SECRETS

    settings = load_settings()
    settings = dataclasses.replace(
        settings,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        secrets={p: (s,) for p, s in DEFAULT_WEBHOOK_SECRETS.items()} if args.sandbox else settings.secrets,
    )
    logging.getLogger("ingestion.webhooks").setLevel(logging.INFO)
    configured = ", ".join(p for p in PROVIDERS if settings.secrets_for(p)) or "none"

    def ready(url: str) -> None:
        print(f"Receiving webhooks on {url}/webhooks/{{stripe,hubspot,calendly}} (secrets: {configured})")
        print(f"Inbox: {settings.inbox}", flush=True)
        if args.ready_file:
            receiver.write_ready_file(args.ready_file, url)

    receiver.serve(settings, ready=ready)
    return 0


def cmd_webhooks_replay(args: argparse.Namespace) -> int:
    from ingestion.webhooks.drain import drain
    from ingestion.webhooks.inbox import Inbox
    from ingestion.webhooks.settings import inbox_path
    from orchestration.resources import ops_settings, writer_lock

    where = paths()
    path = inbox_path(where)
    if not path.exists():
        raise FileNotFoundError(f"no webhook inbox at {path}")
    since = parse_since(args.since) if args.since else None
    inbox = Inbox(path)
    with writer_lock(where, wait_seconds=ops_settings().writer_wait_seconds):
        reopened = inbox.reopen(since_us=since, provider=args.provider)
        print(f"Re-draining {reopened:,} events ...", flush=True)
        result = drain(inbox, where.engine.duckdb_file("the webhook inbox drain"), report=print)
    print(f"Drained {result.events:,} events into raw_webhooks ({result.new:,} were missing there).")
    print("The sensor `webhook_inbox_sensor` syncs the systems they name on its next tick.")
    return 0


def parse_since(text: str) -> int:
    """An ISO time or an age (`90s`, `30m`, `2h`, `7d`) -> epoch microseconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return int((time.time() - float(text[:-1]) * units[text[-1]]) * 1_000_000)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r} is neither an ISO time nor an age such as 2h") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


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
    from orchestration.health import record_ingest
    from orchestration.resources import ops_settings, writer_lock
    from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env

    env = source_env(sandbox_base_urls(args.sandbox)) if args.sandbox else {}
    systems = args.system or list(SYSTEMS)
    with patched_env(env), writer_lock(wait_seconds=ops_settings().writer_wait_seconds):
        if args.reset_state:
            from ingestion.local_state import reset

            for system in args.system or SYSTEMS:
                moved = reset(system, paths())
                print(f"{system}: {'working folder moved to ' + str(moved) if moved else 'nothing to reset'}")
        started = datetime.now(UTC)
        try:
            results = run_systems(
                systems, full_refresh=args.full_refresh, report=print, parallel=not args.sequential
            )
        except IngestError as failed:
            record_ingest(systems, started, failed.results, failed.failures, origin="cli")
            print("\n".join(result_lines(failed.results)))
            print(f"error: {failed}")
            return 1
        record_ingest(systems, started, results, {}, origin="cli")
    print("\n".join(result_lines(results)))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from ingestion.audit import lines, run_audit
    from orchestration.resources import ops_settings, writer_lock
    from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env

    env = source_env(sandbox_base_urls(args.sandbox)) if args.sandbox else {}
    with patched_env(env), writer_lock(wait_seconds=ops_settings().writer_wait_seconds):
        audits = run_audit(args.system or SYSTEMS, report=print)
    print("\n".join(lines(audits)))
    left = sum(a.remaining for a in audits)
    if left:
        print(
            f"{left:,} records are still missing or stale (quarantined, or the run that fetched them failed)"
        )
    return 1 if left else 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from orchestration import report

    rows = report.collect(paths().published).quarantine or []
    if not rows:
        print("No open quarantine in the published copy.")
        return 0
    print(f"{'system':<11} {'resource':<24} {'records':>8}  reason")
    for row in rows:
        print(f"{row.system:<11} {row.resource:<24} {row.records:>8,}  {row.reason}")
    return 0


def cmd_quarantine_accept(args: argparse.Namespace) -> int:
    from ingestion.mend import accept

    count = accept(args.system, args.resource, args.keys, args.note, paths())
    print(f"accepted {count} {args.system}.{args.resource} record(s); the next run stops fetching them again")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from orchestration.dbt import run_dbt
    from orchestration.resources import ops_settings, writer_lock

    with writer_lock(wait_seconds=ops_settings().writer_wait_seconds):
        run_dbt(["build", *(["--select", *args.select] if args.select else [])], on_line=print)
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    """`dbt docs generate` against the warehouse (paths resolved here, whatever the working
    directory), then `dbt docs serve` on loopback until interrupted."""
    from orchestration.dbt import run_dbt
    from orchestration.resources import ops_settings, writer_lock

    where = paths()
    if not where.engine.is_postgres and not where.warehouse.exists():
        raise Expected(f"no warehouse at {where.warehouse}: build it first (trueup run nightly)")
    target = where.home / "dbt" / "docs"
    with writer_lock(where, wait_seconds=ops_settings().writer_wait_seconds):  # dbt opens it read-write
        run_dbt(["docs", "generate"], where=where, target_path=target)
    print(f"dbt docs: {target / 'index.html'}")
    if args.no_serve:
        return 0
    print(f"serving on http://127.0.0.1:{args.port} (Ctrl-C stops)", flush=True)
    run_dbt(
        ["docs", "serve", "--host", "127.0.0.1", "--port", str(args.port), "--no-browser"],
        where=where,
        target_path=target,
        on_line=print,
    )
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
    argv += ["--webhook-url", args.webhook_url] if args.webhook_url else []
    argv += ["--setup", args.setup] if args.setup else []
    return serve(argv)


def _day_count(text: str) -> int:
    """A whole, positive number of days (the sandbox refuses anything else too)."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"days must be 1 or more, got {days}")
    return days


def cmd_sandbox_advance(args: argparse.Namespace) -> int:
    response = httpx.post(f"{args.url}/_admin/advance", json={"days": args.days}, timeout=300)
    response.raise_for_status()
    print(json.dumps(response.json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
