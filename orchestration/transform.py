"""Dagster assets for the dbt project, built from the manifest (no dbt import, no parse
at load): one asset per model and seed, one asset check per dbt test."""

import re
from collections.abc import Iterator
from typing import Any

import dagster as dg

from orchestration.dbt import DbtError, Manifest, Node, load_manifest, run_dbt


def check_name(test: Node) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", test.name)[:120]


def _deps(node: Node, manifest: Manifest) -> list[dg.AssetKey]:
    keys = []
    for uid in node.depends_on:
        if uid in manifest.sources:
            keys.append(dg.AssetKey(manifest.sources[uid]))
        elif uid in manifest.nodes and manifest.nodes[uid].resource_type != "test":
            keys.append(dg.AssetKey(manifest.nodes[uid].key))
    return keys


LAYERS = ("seeds", "staging", "intermediate", "marts", "reconciliation", "reverse_etl")


def build_dbt_assets(manifest: Manifest | None = None) -> list[dg.AssetsDefinition]:
    """One multi-asset per layer (seeds, staging, ... reverse_etl), so a blocking check on
    one layer stops the layers downstream of it."""
    manifest = manifest or load_manifest()
    models = {n.unique_id: n for n in manifest.models()}
    layers: dict[str, list[Node]] = {}
    for node in models.values():
        layers.setdefault(layer_of(node), []).append(node)
    checks: dict[str, list[tuple[Node, Node]]] = {}
    for test in manifest.tests():
        target = check_target(test, models)
        if target is not None:
            checks.setdefault(layer_of(target), []).append((test, target))
    return [
        _layer_asset(layer, nodes, checks.get(layer, []), manifest)
        for layer, nodes in sorted(layers.items(), key=lambda item: _layer_order(item[0]))
    ]


def in_dependency_order(nodes: list[Node]) -> list[Node]:
    """Nodes sorted so each comes after the nodes it depends on (Dagster requires results
    in that order), ties broken by name so the order is the same in every process."""
    pending = {n.unique_id: n for n in nodes}
    ordered: list[Node] = []
    while pending:
        ready = sorted(
            (n for n in pending.values() if not any(d in pending for d in n.depends_on)),
            key=lambda n: n.unique_id,
        )
        if not ready:  # a cycle cannot come out of dbt; keep going rather than loop forever
            ready = sorted(pending.values(), key=lambda n: n.unique_id)
        for node in ready:
            ordered.append(pending.pop(node.unique_id))
    return ordered


def layer_of(node: Node) -> str:
    return node.schema if node.schema in LAYERS else "transform"


def check_target(test: Node, models: dict[str, Node]) -> Node | None:
    """The model a dbt test is shown on: in the latest layer among the models it reads
    (that layer's step is the one that runs it), its own model when that is there."""
    parents = sorted((models[uid] for uid in test.depends_on if uid in models), key=lambda n: n.unique_id)
    if not parents:
        return None  # tests on sources only: observations, not checks
    latest = max(_layer_order(layer_of(p)) for p in parents)
    in_latest = [p for p in parents if _layer_order(layer_of(p)) == latest]
    attached = models.get(str(test.attached_to))
    return attached if attached in in_latest else in_latest[0]


def _layer_order(layer: str) -> int:
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def _layer_asset(
    layer: str, nodes: list[Node], tests: list[tuple[Node, Node]], manifest: Manifest
) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            node.key,
            deps=_deps(node, manifest),
            description=node.description or None,
            group_name=layer,
            kinds={"dbt", "duckdb"},
            skippable=True,
        )
        for node in nodes
    ]
    check_specs = [
        dg.AssetCheckSpec(
            check_name(t),
            asset=dg.AssetKey(target.key),
            blocking=t.severity == "error",
            description=f"dbt test {t.name}",
        )
        for t, target in tests
    ]
    by_key = {tuple(n.key): n for n in nodes}

    @dg.multi_asset(name=f"dbt_{layer}", specs=specs, check_specs=check_specs, can_subset=True)
    def dbt_layer(context: dg.AssetExecutionContext) -> Iterator[Any]:
        selected = in_dependency_order([by_key[tuple(k.path)] for k in context.selected_asset_keys])
        try:
            # buildable: a test runs in the step of the last layer it reads, never before it exists
            # and the tests shown on this layer are named, so each runs exactly here
            names = [n.name for n in selected] + [t.name for t, target in tests if target in selected]
            select = ["--select", *names, "--indirect-selection", "buildable"]
            results = run_dbt(["build", *select], on_line=context.log.debug)
            failure: DbtError | None = None
        except DbtError as exc:
            results, failure = exc.results, exc
        yield from _report(results, selected, tests, context)
        if failure is not None:
            raise failure

    return dbt_layer


def _report(
    results: dict[str, Any],
    selected: list[Node],
    tests: list[tuple[Node, Node]],
    context: dg.AssetExecutionContext,
) -> Iterator[Any]:
    by_id = {r["unique_id"]: r for r in results.get("results", [])}
    for node in selected:
        result = by_id.get(node.unique_id)
        if result and result.get("status") == "success":
            yield dg.MaterializeResult(
                asset_key=node.key,
                metadata={
                    "seconds": round(float(result.get("execution_time") or 0), 2),
                    "rows_affected": (result.get("adapter_response") or {}).get("rows_affected"),
                },
            )
    wanted = context.selected_asset_check_keys
    for test, target in tests:
        key = dg.AssetCheckKey(dg.AssetKey(target.key), check_name(test))
        result = by_id.get(test.unique_id)
        if key not in wanted or result is None:
            continue
        yield dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=result.get("status") == "pass",
            severity=dg.AssetCheckSeverity.ERROR if test.severity == "error" else dg.AssetCheckSeverity.WARN,
            metadata={"failures": int(result.get("failures") or 0), "status": result.get("status")},
        )
