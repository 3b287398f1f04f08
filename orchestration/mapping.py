"""`trueup mapping`: show the business mapping in effect, check it against the CRM, propose one."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ingestion.mapping import MappingError, load_mapping, project_dir


def add_mapping_command(sub: Any) -> None:
    """Register `trueup mapping show|check|suggest` on the CLI's subparsers."""
    mapping = sub.add_parser("mapping", help="the business mapping: show, check, suggest")
    actions = mapping.add_subparsers(metavar="action")
    show = actions.add_parser("show", help="the [mapping] and [rules] in effect, and where each comes from")
    show.set_defaults(func=cmd_show)
    check = actions.add_parser("check", help="validate the mapping and check its CRM properties exist")
    check.add_argument("--sandbox", metavar="URL", help="check against a running sandbox")
    check.set_defaults(func=cmd_check)
    suggest = actions.add_parser("suggest", help="propose a mapping from a loaded warehouse, with evidence")
    suggest.add_argument("--database", type=Path, help="a warehouse file (default: $TRUEUP_HOME's)")
    suggest.add_argument(
        "--write", action="store_true", help="write the proposal into the [mapping] of .dlt/config.toml"
    )
    suggest.set_defaults(func=cmd_suggest)
    mapping.set_defaults(func=lambda args: (mapping.print_help(), 2)[1])


def cmd_show(args: argparse.Namespace) -> int:
    configured = load_mapping()
    for section, values in configured.sections().items():
        print(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, dict):
                continue
            print(f"{key} = {_toml(value)}  # {configured.origins.get(f'{section}.{key}', 'default')}")
        for key, value in values.items():
            if not isinstance(value, dict):
                continue
            print(f"\n[{section}.{key}]")
            for inner, item in value.items():
                origin = configured.origins.get(f"{section}.{key}.{inner}", "default")
                print(f"{inner} = {_toml(item)}  # {origin}")
        print()
    return 0


def _toml(value: Any) -> str:
    import json

    return json.dumps(value)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the configuration, then read the CRM's properties API for the mapped ones."""
    import dlt

    from ingestion.crm.properties import plan_properties
    from ingestion.http import ApiClient
    from orchestration.sandbox_runtime import patched_env, sandbox_base_urls, source_env

    env = source_env(sandbox_base_urls(args.sandbox)) if args.sandbox else {}
    with patched_env(env):
        configured = load_mapping()
        base_url = dlt.config["sources.crm.base_url"]
        token = dlt.secrets["sources.crm.access_token"]
        extra: dict[str, Any] | None = dlt.config.get("sources.crm.properties")
        with ApiClient("crm", base_url, token) as client:
            plans = plan_properties(client, configured, extra)
    for name, plan in plans.items():
        read = f"{len(plan.obj.properties)} properties" + (f" + {len(plan.extra)} more" if plan.extra else "")
        print(f"{name:<10} {read}")
    print("mapping: ok")
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    import duckdb

    from ingestion.warehouse import paths
    from orchestration.suggest import settings_to_write, suggest, to_toml

    # the suggestions read raw in DuckDB: on a server warehouse, name a DuckDB file with --database
    database = args.database or paths().engine.duckdb_file("suggesting a mapping from the warehouse")
    if not database.exists():
        print(f"trueup: no warehouse at {database}: load the accounts first (trueup ingest)", file=sys.stderr)
        return 1
    with _reading(database, own=args.database is None), duckdb.connect(str(database), read_only=True) as con:
        report = suggest(con)
    print(to_toml(report, str(database)), end="")
    if args.write:
        written = write_mapping(settings_to_write(report))
        print(f"\nwrote the proposal into {written}")
    return 0


def _reading(database: Path, own: bool) -> Any:
    """The writer lock while reading trueup's own warehouse (DuckDB refuses a reader beside a
    writer); nothing for another file."""
    import contextlib

    if not own:
        return contextlib.nullcontext()
    from orchestration.resources import ops_settings, writer_lock

    return writer_lock(wait_seconds=ops_settings().writer_wait_seconds)


def write_mapping(values: dict[str, Any], path: Path | None = None) -> Path:
    """Set these `[mapping]` values in .dlt/config.toml, keeping everything else in the file (its
    comments too); the file is replaced atomically."""
    import tomlkit

    path = path or project_dir() / "config.toml"
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    mapping = document.get("mapping")
    if mapping is None:
        mapping = tomlkit.table()
        document["mapping"] = mapping
    for key, value in values.items():
        if isinstance(value, dict):
            inner = mapping.get(key)
            if inner is None:
                inner = tomlkit.table()
                mapping[key] = inner
            for concept, item in value.items():
                inner[concept] = item
        else:
            mapping[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
    temporary.replace(path)
    try:
        load_mapping()
    except MappingError as exc:  # say so, but keep what was written: the user edits it next
        print(f"note: {exc}", file=sys.stderr)
    return path
