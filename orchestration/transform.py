"""The dbt project as Dagster assets through dagster-dbt: one `@dbt_assets` step per layer
(seeds, staging, intermediate, marts, reconciliation, reverse_etl), built from the `DbtProject`
whose manifest `trueup prepare` wrote at install time (nothing parses dbt here).

Models and seeds are keyed `[<schema>, <name>]` and dbt sources `[<source>, <table>]`, the keys
the ingest assets carry, so lineage runs from the API tables to the report. Every dbt test is an
asset check, blocking at severity error, shown on the model it reads in the latest layer: that
layer's step runs it, so a failed check stops the layers after it and never runs before the
tables it reads are built.
"""

import contextlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from ingestion.engine import Engine
from orchestration.dbt import MANIFEST, DbtError, dbt_project, dbt_target_env, failed_nodes, with_vars

LAYERS = ("seeds", "staging", "intermediate", "marts", "reconciliation", "reverse_etl")
MODEL_TYPES = ("model", "seed", "snapshot")


class TrueupTranslator(DagsterDbtTranslator):
    """Keys `[schema, name]` for models and seeds, `[source, table]` for sources; the layer
    (the model's schema) is its group."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return layer_of(dbt_resource_props)


def layer_of(node: Mapping[str, Any]) -> str:
    schema = str(node.get("schema") or "")
    return schema if schema in LAYERS else "transform"


def _layer_order(layer: str) -> int:
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def check_target(test: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The unique id of the model a dbt test is shown on: in the latest layer among the models it
    reads (that layer's step runs it), its own model when that is there; None for a test that
    reads only sources."""
    parents = sorted(
        (
            nodes[uid]
            for uid in test["depends_on"]["nodes"]
            if nodes.get(uid, {}).get("resource_type") in MODEL_TYPES
        ),
        key=lambda n: n["unique_id"],
    )
    if not parents:
        return None
    latest = max(_layer_order(layer_of(p)) for p in parents)
    in_latest = [p["unique_id"] for p in parents if _layer_order(layer_of(p)) == latest]
    attached = test.get("attached_node")
    return attached if attached in in_latest else in_latest[0]


def with_check_targets(manifest: dict[str, Any]) -> dict[str, Any]:
    """Name each test's model where dagster-dbt reads it (`meta.dagster.ref`), in place: without
    it, a singular test reading several models is no check at all, and a generic one reading two
    layers would sit on the earlier one."""
    nodes = manifest["nodes"]
    for node in nodes.values():
        if node["resource_type"] != "test":
            continue
        target = check_target(node, nodes)
        if target is not None:
            meta = node.setdefault("config", {}).setdefault("meta", {})
            meta.setdefault("dagster", {})["ref"] = {"name": nodes[target]["name"]}
    return manifest


def layer_select(layer: str, manifest: Mapping[str, Any]) -> str:
    """dbt selection of one layer's step: its models, plus the tests shown on it that dbt's
    `buildable` selection would leave out (they read a model no model of the layer depends on)."""
    nodes = manifest["nodes"]
    members = {uid for uid, n in nodes.items() if n["resource_type"] in MODEL_TYPES and layer_of(n) == layer}
    built = set(members) | _ancestors(members, manifest["parent_map"])
    extra = sorted(
        n["name"]
        for uid, n in nodes.items()
        if n["resource_type"] == "test"
        and check_target(n, nodes) in members
        and not set(n["depends_on"]["nodes"]) <= built
    )
    return " ".join([f"config.schema:{layer}", *extra])


def _ancestors(members: Iterable[str], parent_map: Mapping[str, list[str]]) -> set[str]:
    found: set[str] = set()
    stack = list(members)
    while stack:
        for parent in parent_map.get(stack.pop(), []):
            if parent not in found:
                found.add(parent)
                stack.append(parent)
    return found


@cache
def _manifest() -> dict[str, Any]:
    if not MANIFEST.exists():
        raise DbtError(f"{MANIFEST} is missing: run `make install` (or `trueup prepare`) to build it")
    return with_check_targets(json.loads(MANIFEST.read_text()))


def build_dbt_assets(project: DbtProject | None = None) -> list[dg.AssetsDefinition]:
    """One `@dbt_assets` step per layer, in layer order."""
    project = project or dbt_project()
    manifest = _manifest()
    translator = TrueupTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
    present = {layer_of(n) for n in manifest["nodes"].values() if n["resource_type"] in MODEL_TYPES}
    return [
        _layer_assets(layer, manifest, project, translator) for layer in sorted(present, key=_layer_order)
    ]


def _layer_assets(
    layer: str, manifest: dict[str, Any], project: DbtProject, translator: DagsterDbtTranslator
) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=manifest,
        project=project,
        select=layer_select(layer, manifest),
        name=f"dbt_{layer}",
        dagster_dbt_translator=translator,
    )
    def dbt_layer(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        yield from build_layer(context, dbt, manifest)

    return dbt_layer


def build_layer(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, manifest: Mapping[str, Any]
) -> Iterator[Any]:
    """`dbt build` of the selected models and their tests; each materialization carries its row
    count. dbt holds the warehouse file while it runs, so the counts are read after it ends."""
    from ingestion.warehouse import paths
    from orchestration.sandbox_runtime import patched_env

    where = paths()
    target = where.home / "dbt" / "target"
    # buildable: a test runs once every model it reads is built, in the step of the last of them
    # the engine's target and connection (the DuckDB file, or PostgreSQL's TRUEUP_PG_* settings)
    env = {**dbt_target_env(where), "DBT_INDIRECT_SELECTION": "buildable"}
    with patched_env(env):
        # the business mapping and the history's starting point reach dbt as --vars, as in run_dbt
        invocation = dbt.cli(
            with_vars(["build"], where), context=context, target_path=target, raise_on_error=False
        )
    try:
        # dagster-dbt writes dbt's own lines to stdout: into the step's log (debug), not the terminal
        with contextlib.redirect_stdout(_LogLines(context.log.debug)):
            events = list(invocation.stream())
    except BaseException:  # an error while reading must not leave dbt holding the warehouse
        invocation.process.kill()
        invocation.process.wait()
        raise
    try:
        counts = row_counts(where.engine, _relations(events, manifest))
    except Exception as exc:  # the counts are metadata: without them the results still report
        context.log.warning(f"could not count the rows of the built models: {exc}")
        counts = {}
    for event in events:
        if isinstance(event, dg.Output) and event.output_name in counts:
            event = event.with_metadata({**event.metadata, "dagster/row_count": counts[event.output_name]})
        yield event
    _raise_on_failure(invocation)


class _LogLines(io.TextIOBase):
    """A text stream that hands each complete line to `log`."""

    def __init__(self, log: Callable[[str], Any]) -> None:
        super().__init__()
        self.log, self.pending = log, ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            if line.strip():
                self.log(line)
        return len(text)


def _relations(events: Iterable[Any], manifest: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Output name -> (schema, relation) of each model or seed the run built."""
    nodes = manifest["nodes"]
    found: dict[str, tuple[str, str]] = {}
    for event in events:
        if not isinstance(event, dg.Output):
            continue
        node = nodes.get(
            str(getattr(event.metadata.get("unique_id"), "value", event.metadata.get("unique_id")))
        )
        if node and node.get("config", {}).get("materialized") != "ephemeral":
            found[event.output_name] = (node["schema"], node.get("alias") or node["name"])
    return found


def row_counts(warehouse: Path | Engine, relations: Mapping[str, tuple[str, str]]) -> dict[str, int]:
    """Rows per built relation, counted in one read-only connection (empty if none was built)."""
    if not relations:
        return {}
    from ingestion import sqlconn

    counts: dict[str, int] = {}
    with sqlconn.connect(warehouse, read_only=True) as con:
        for output, (schema, name) in relations.items():
            counts[output] = int(con.scalar(f'select count(*) from "{schema}"."{name}"') or 0)
    return counts


def _raise_on_failure(invocation: DbtCliInvocation) -> None:
    """Fail the step naming each failed node (after every result was reported)."""
    if invocation.is_successful():
        return
    results_file = invocation.target_path / "run_results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    failed = failed_nodes(results)
    detail = "\n".join(failed) if failed else str(invocation.get_error() or "see the step's dbt log")
    raise DbtError(f"dbt build failed:\n{detail}", results)
