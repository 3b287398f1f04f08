"""`trueup check`: run the suites from the command line and print what they found."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from checks.results import CheckResult, counts, format_number, has_blocking_failure, ordered
from checks.suites import SUITES

NOTE_WIDTH = 120
STATUS_LABELS = {"passed": "ok", "failed": "FAIL", "not_built": "not built", "error": "broken"}


def add_check_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `trueup check` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "check",
        help="run the parity and quality suites against the warehouse",
        description=(
            "Run the check suites against the warehouse (read-only), print one line per check and "
            "exit 1 when a check fails with severity error."
        ),
    )
    parser.add_argument("--suite", action="append", choices=SUITES, help="only this suite (repeatable)")
    parser.add_argument(
        "--store",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="append the results to checks.check_results (default: on)",
    )
    parser.add_argument("--failures", action="store_true", help="print only the checks that did not pass")
    parser.add_argument("--sample", type=int, default=3, help="failing keys shown per check (default 3)")
    parser.set_defaults(func=cmd_check)
    return parser


def cmd_check(args: argparse.Namespace) -> int:
    from checks.runner import run_checks, store_results
    from ingestion.warehouse import paths
    from orchestration.resources import ops_settings, writer_lock

    warehouse = paths().engine  # a DuckDB file or a PostgreSQL database
    # The checks read the warehouse and store their results in it: like every process that opens
    # it read-write, they wait for the writer lock (an ingest or a run holding it would otherwise
    # fail on DuckDB's own lock, or make this fail).
    with writer_lock(wait_seconds=ops_settings().writer_wait_seconds):
        results = run_checks(warehouse, suites=args.suite)
        run_id = store_results(results, warehouse, origin="cli") if args.store else None
    if results and all(r.status == "not_built" for r in results):
        print(f"nothing is built in {warehouse.display} yet: load and build it first (trueup run nightly)")
        return 1
    shown = [r for r in results if not (args.failures and r.passed)]
    print(render_table(shown, sample=args.sample))
    print(render_summary(results))
    if run_id is not None:
        print(f"stored as run {run_id} in checks.check_results")
    return 1 if has_blocking_failure(results) else 0


def render_table(results: Sequence[CheckResult], sample: int = 3) -> str:
    """One line per check: status, severity, suite, asset, check, observed, levels, failing keys."""
    header = ("status", "severity", "suite", "asset", "check", "observed", "threshold", "sample / message")
    rows = [header]
    for r in ordered(results):
        observed = "" if r.observed is None else f"{format_number(r.observed)} {r.unit}"
        note = ", ".join(r.sample[:sample]) if r.sample else r.message
        severity = r.severity if r.status == "failed" else ""
        rows.append(
            (STATUS_LABELS[r.status], severity, r.suite, r.asset_key, r.check, observed, r.threshold, note)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(_line(row, widths) for row in rows)


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
    return "  ".join([*cells, _clip(row[-1])]).rstrip()


def _clip(text: str, width: int = NOTE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_summary(results: Sequence[CheckResult]) -> str:
    c = counts(results)
    return (
        f"{len(results)} checks: {c['passed']} passed, {c['error']} failed (error), "
        f"{c['warn']} failed (warn), {c['not_built']} not built, {c['broken']} could not run"
    )
