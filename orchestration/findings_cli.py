"""`trueup findings`: list findings with their records and links; accept or reopen them."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STATUSES = ("open", "accepted", "resolved", "repaired")
TABLE_COLUMNS = (
    "finding_id",
    "rule",
    "status",
    "outcome",
    "records",
    "crm_value",
    "billing_value",
    "proposed_action",
)


def add_findings_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `trueup findings list|accept|reopen`."""
    parser = subparsers.add_parser("findings", help="list findings; accept or reopen them")
    actions = parser.add_subparsers(metavar="action")
    listing = actions.add_parser("list", help="every finding with its records, values and links")
    listing.add_argument("--rule", action="append", default=[], help="only this rule (repeatable)")
    listing.add_argument(
        "--status", action="append", choices=STATUSES, default=[], help="only this status (repeatable)"
    )
    listing.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format (default table)"
    )
    listing.add_argument("--database", type=Path, help="a published copy (default: $TRUEUP_HOME/published)")
    listing.set_defaults(func=cmd_list)
    for action, verb in (("accept", "accept as they are"), ("reopen", "reopen (undo an accept)")):
        decide = actions.add_parser(action, help=f"{verb}: recorded with who, why and when")
        decide.add_argument("finding_ids", nargs="+", metavar="ID", help="finding ids (trueup findings list)")
        decide.add_argument("--reason", required=True, help="why (recorded with the decision)")
        decide.add_argument("--by", help="who decides (default: TRUEUP_USER, else the login name)")
        decide.add_argument(
            "--wait", type=float, default=600.0, help="seconds to wait for a running job's writer lock"
        )
        decide.set_defaults(func=cmd_decide, action=action)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    return parser


def cmd_list(args: argparse.Namespace) -> int:
    import duckdb

    from ingestion.warehouse import paths
    from orchestration.cli import Expected
    from orchestration.findings import read_findings

    database = args.database or paths().published
    if not database.exists():
        raise Expected(f"no published warehouse at {database}: nothing is built yet (trueup run nightly)")
    with duckdb.connect(str(database), read_only=True) as con:
        found = read_findings(con, rules=args.rule, statuses=args.status)
    rows = [f.as_row() for f in found]
    sys.stdout.write(render(rows, args.format))
    return 0


def render(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["finding_id"])
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    from orchestration.report import text_table

    table = text_table(TABLE_COLUMNS, [[_short(r.get(c)) for c in TABLE_COLUMNS] for r in rows])
    return f"{table}\n{len(rows):,} findings (--format json or csv for every field and the record links)\n"


def _short(value: Any, width: int = 40) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_decide(args: argparse.Namespace) -> int:
    from orchestration.findings import decide

    done = decide(args.action, args.finding_ids, args.reason, decided_by=args.by, wait_seconds=args.wait)
    where = "the warehouse and the published copy" if done.published else "the warehouse"
    verb = "accepted" if args.action == "accept" else "reopened"
    print(f"{verb} {len(done.finding_ids)} finding(s), recorded in {where}: {', '.join(done.finding_ids)}")
    return 0
