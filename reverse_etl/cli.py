"""`trueup reverse-etl`: plan (and push) the outboxes; `trueup reverse-etl approve`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from reverse_etl.config import TARGETS


def add_reverse_etl_command(sub: Any) -> None:
    command = sub.add_parser(
        "reverse-etl",
        help="push the authoritative values back (plan-only until a target's push is turned on)",
    )
    command.add_argument("--dry-run", action="store_true", help="plan and record, print, write nothing")
    command.add_argument("--target", choices=TARGETS, action="append", help="only this target (repeatable)")
    command.add_argument("--sandbox", metavar="URL", help="push to a sandbox served at URL (pushing on)")
    command.add_argument("--json", action="store_true", help="print the outcome as JSON")
    command.set_defaults(func=cmd_reverse_etl)
    actions = command.add_subparsers(metavar="action")
    approve = actions.add_parser("approve", help="approve fields under a review policy to be pushed")
    approve.add_argument("--finding", nargs="+", default=[], metavar="ID", help="finding ids")
    approve.add_argument("--rule", nargs="+", default=[], metavar="RULE", help="every finding of these rules")
    approve.add_argument("--plan", metavar="ID", help="every review item of a plan (or `latest`)")
    approve.add_argument("--by", default="", help="who approves (kept with the approval)")
    approve.set_defaults(func=cmd_approve)


def cmd_reverse_etl(args: argparse.Namespace) -> int:
    from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env
    from reverse_etl.config import load_settings
    from reverse_etl.run import run

    env = source_env(sandbox_base_urls(args.sandbox)) if args.sandbox else {}
    with patched_env(env):
        settings = load_settings(push=True if args.sandbox else None)
        outcomes = run(
            targets=args.target or TARGETS,
            dry_run=args.dry_run,
            settings=settings,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    if args.json:
        print(json.dumps([o.as_dict() for o in outcomes], indent=2, default=str))
        return 0
    for outcome in outcomes:
        counts = ", ".join(f"{n:,} {a}" for a, n in sorted(outcome.counts.items())) or "nothing in the outbox"
        print(f"{outcome.target} (plan {outcome.plan_id}, {outcome.mode}): {outcome.status}; {counts}")
        if outcome.message:
            print(f"  {outcome.message}")
        for name, actions in outcome.by_field.items():
            print(f"  {name:<40} " + ", ".join(f"{n:,} {a}" for a, n in sorted(actions.items())))
        for sample in outcome.samples:
            print(
                f"  {sample['action']:<8} {sample['object_type']}/{sample['record_id']} {sample['field']}: "
                f"{sample['live']!r} -> {sample['desired']!r}"
            )
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from reverse_etl.approve import approve

    counts = approve(findings=args.finding, rules=args.rule, plan=args.plan, by=args.by)
    if not any(counts.values()) and not (args.finding or args.rule or args.plan):
        print("nothing to approve: name --finding, --rule or --plan", file=sys.stderr)
        return 2
    print(", ".join(f"{n:,} {scope} approvals recorded" for scope, n in counts.items()))
    return 0
