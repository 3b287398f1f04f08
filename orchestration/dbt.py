"""dbt outside Dagster: the project and its manifest (built at install time by `trueup prepare`),
a light reader of that manifest, and `run_dbt`, one dbt command as a subprocess (the CLI, tests
and benchmarks use it; the Dagster assets run dbt through dagster-dbt, `orchestration.transform`)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.lifetime import killed_with_parent
from ingestion.warehouse import Paths, paths

if TYPE_CHECKING:  # dagster-dbt imports dbt-core (seconds): only where the assets are built
    from dagster_dbt import DbtProject

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
MANIFEST = PROJECT_DIR / "target" / "manifest.json"


class DbtError(RuntimeError):
    """dbt failed; the message names the failing nodes, `results` holds run_results.json."""

    def __init__(self, message: str, results: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.results = results or {}


@dataclass(frozen=True)
class Node:
    unique_id: str
    resource_type: str  # model, seed, snapshot, test
    name: str
    schema: str
    depends_on: tuple[str, ...]
    description: str = ""
    attached_to: str | None = None  # for tests: the model they check
    severity: str = "error"

    @property
    def key(self) -> list[str]:
        """The Dagster asset key: [schema, name] for models and seeds."""
        return [self.schema, self.name]


@dataclass
class Manifest:
    nodes: dict[str, Node] = field(default_factory=dict)
    sources: dict[str, list[str]] = field(default_factory=dict)  # unique_id -> [source, table]

    def models(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.resource_type in ("model", "seed", "snapshot")]

    def tests(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.resource_type == "test"]


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def load_manifest(path: Path = MANIFEST) -> Manifest:
    """Read the manifest (built by `trueup prepare`, never at import)."""
    if not path.exists():
        raise DbtError(f"{path} is missing: run `make install` (or `trueup prepare`) to build it")
    raw = json.loads(path.read_text())
    manifest = Manifest()
    for uid, source in raw.get("sources", {}).items():
        manifest.sources[uid] = [source["source_name"], source["name"]]
    for uid, node in raw.get("nodes", {}).items():
        kind = node["resource_type"]
        if kind not in ("model", "seed", "snapshot", "test"):
            continue
        manifest.nodes[uid] = Node(
            unique_id=uid,
            resource_type=kind,
            name=node["name"],
            schema=node.get("schema") or "main",
            depends_on=tuple(node.get("depends_on", {}).get("nodes", [])),
            description=node.get("description") or "",
            attached_to=node.get("attached_node") if kind == "test" else None,
            severity=(node.get("config", {}).get("severity") or "error").lower(),
        )
    return manifest


def dbt_env(where: Paths | None = None) -> dict[str, str]:
    """The environment of a dbt command: this one's, plus what profiles.yml reads to reach the
    configured warehouse (its target, the DuckDB file or PostgreSQL's TRUEUP_PG_* settings)."""
    where = where or paths()
    env = dict(os.environ)
    env.update(dbt_target_env(where))
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def dbt_target_env(where: Paths | None = None) -> dict[str, str]:
    """The variables profiles.yml reads to pick and reach the configured warehouse (its target,
    the DuckDB file, or PostgreSQL's TRUEUP_PG_* settings); every dbt command trueup runs gets them."""
    engine = (where or paths()).engine
    env = engine.dbt_env()
    if engine.is_postgres:  # timestamps read and written as text in UTC, as on DuckDB
        env["PGTZ"] = "UTC"
    return env


# dbt commands that take `--vars` (the business mapping and the rules' settings reach them all);
# `parse` is left out: the manifest is built at install time, before any business is configured.
VARS_COMMANDS = frozenset({"build", "run", "test", "seed", "snapshot", "compile", "show", "ls", "list"})


def dbt_vars(where: Paths | None = None) -> dict[str, Any]:
    """The dbt vars of the configured business mapping and rules (`[mapping]`/`[rules]` of
    .dlt/config.toml, `MAPPING__...`/`RULES__...` variables), read now. Every dbt command trueup
    runs gets them; a MappingError names each problem of an unusable configuration. While a
    published copy exists, `published_warehouse` names it: the history models start from it."""
    from ingestion.mapping import load_mapping

    where = where or paths()
    values = load_mapping().dbt_vars()
    if where.engine.is_postgres:
        values.update(warehouse_function_vars())
    elif where.published.exists():  # history (findings, findings_daily) counts the runs that published
        values["published_warehouse"] = str(where.published)
    return values


def warehouse_function_vars() -> dict[str, Any]:
    """What the on-run-start hook needs to create trueup's normalizations as PL/Python functions
    on a PostgreSQL warehouse: the source of ingestion/normalize.py (so trueup's code need not be
    on the server) and, if set, the directory on the server that holds phonenumbers, anyascii and
    tzdata (`TRUEUP_WAREHOUSE_PYTHON_PATH`)."""
    from ingestion import normalize

    values: dict[str, Any] = {"trueup_normalize_source": Path(normalize.__file__).read_text(encoding="utf-8")}
    python_path = os.environ.get("TRUEUP_WAREHOUSE_PYTHON_PATH")
    if python_path:
        values["warehouse_python_path"] = python_path
    return values


def with_vars(args: Iterable[str], where: Paths | None = None) -> list[str]:
    """`args` with the configured vars as one `--vars` (a `--vars` already in `args` wins, key by key)."""
    args = list(args)
    if not args or args[0] not in VARS_COMMANDS:
        return args
    values = dbt_vars(where)
    rest: list[str] = []
    index = 0
    while index < len(args):
        if args[index] == "--vars" and index + 1 < len(args):
            import yaml  # type: ignore[import-untyped,unused-ignore]

            given = yaml.safe_load(args[index + 1]) or {}
            if not isinstance(given, dict):
                raise DbtError(f"--vars must be a mapping, got {args[index + 1]!r}")
            values.update(given)
            index += 2
            continue
        rest.append(args[index])
        index += 1
    return [*rest, "--vars", json.dumps(values)]


def run_dbt(
    args: Iterable[str],
    where: Paths | None = None,
    on_line: Callable[[str], None] | None = None,
    target_path: Path | None = None,
) -> dict[str, Any]:
    """Run one dbt command; returns run_results.json (empty for commands without one)."""
    where = where or paths()
    target = target_path or where.home / "dbt" / "target"
    asked = list(args)
    shown = " ".join(asked)  # the command as asked, without the (long) vars
    args = with_vars(asked, where)
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(where.home / "dbt" / "logs"),
    ]
    where.warehouse.parent.mkdir(parents=True, exist_ok=True)
    log.info("dbt %s", shown)
    # dbt dies with this process (kill -9 included): it must never hold the warehouse file
    # after the writer lock is free
    process = subprocess.Popen(
        command,
        env=dbt_env(where),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=killed_with_parent,
    )
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip()
        tail = [*tail[-40:], line]
        if on_line:
            on_line(line)
    code = process.wait()
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    if code != 0:
        failed = failed_nodes(results)
        detail = "\n".join(failed) if failed else "\n".join(tail[-15:])
        raise DbtError(f"dbt {shown} failed:\n{detail}", results)
    return results


def failed_nodes(results: dict[str, Any]) -> list[str]:
    """One line per node that errored or failed in a run_results.json, with dbt's message."""
    return [
        f"{r['unique_id']} ({r['status']}): {(r.get('message') or '').strip()[:200]}"
        for r in results.get("results", [])
        if r.get("status") in ("error", "fail", "runtime error")
    ]


def dbt_project() -> DbtProject:
    """The dagster-dbt `DbtProject`: its manifest is dbt_project/target/manifest.json."""
    from dagster_dbt import DbtProject

    return DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR, target_path=MANIFEST.parent.name)


def prepare(where: Paths | None = None) -> Path:
    """Prepare the `DbtProject` (install time): dagster-dbt's preparer installs dbt packages if
    any and writes the manifest with `dbt parse`, so nothing parses dbt when Dagster loads."""
    from orchestration.sandbox_runtime import patched_env

    where = where or paths()
    project = dbt_project()
    # the preparer runs `dbt` from PATH: this interpreter's own comes first
    search = os.pathsep.join([str(Path(dbt_executable()).parent), os.environ.get("PATH", "")])
    # parsed for DuckDB, with no server: the manifest's nodes and keys are the same on every engine
    duckdb_target = {"TRUEUP_WAREHOUSE": str(where.warehouse), "TRUEUP_DBT_TARGET": "local"}
    with patched_env({"PATH": search, **duckdb_target}):
        project.preparer.prepare(project)
    if not project.manifest_path.exists():
        raise DbtError(f"dbt parse wrote no manifest at {project.manifest_path}")
    return project.manifest_path
