"""Dagster assets for the dbt project, built from the manifest (no dbt import, no parse
at load): one asset per model and seed, one asset check per dbt test."""

import re
from collections.abc import Iterator
from typing import Any

import dagster as dg

from orchestration.dbt import DbtError, Manifest, Node, load_manifest, run_dbt

GROUPS = {"staging", "intermediate", "marts", "reconciliation", "reverse_etl", "seeds"}


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
    tests = [t for t in manifest.tests() if t.attached_to in models]
    layers: dict[str, list[Node]] = {}
    for node in models.values():
        layers.setdefault(node.schema if node.schema in GROUPS else "transform", []).append(node)
    return [
        _layer_asset(
            layer, nodes, [t for t in tests if models[str(t.attached_to)] in nodes], manifest, models
        )
        for layer, nodes in sorted(layers.items(), key=lambda item: _layer_order(item[0]))
    ]


def _layer_order(layer: str) -> int:
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def _layer_asset(
    layer: str, nodes: list[Node], tests: list[Node], manifest: Manifest, models: dict[str, Node]
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
            asset=dg.AssetKey(models[str(t.attached_to)].key),
            blocking=t.severity == "error",
            description=f"dbt test {t.name}",
        )
        for t in tests
    ]
    by_key = {tuple(n.key): n for n in nodes}

    @dg.multi_asset(name=f"dbt_{layer}", specs=specs, check_specs=check_specs, can_subset=True)
    def dbt_layer(context: dg.AssetExecutionContext) -> Iterator[Any]:
        selected = [by_key[tuple(k.path)] for k in context.selected_asset_keys]
        try:
            results = run_dbt(["build", "--select", *[n.name for n in selected]], on_line=context.log.debug)
            failure: DbtError | None = None
        except DbtError as exc:
            results, failure = exc.results, exc
        yield from _report(results, selected, tests, models, context)
        if failure is not None:
            raise failure

    return dbt_layer


def _report(
    results: dict[str, Any],
    selected: list[Node],
    tests: list[Node],
    models: dict[str, Node],
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
    selected_ids = {n.unique_id for n in selected}
    wanted = context.selected_asset_check_keys
    for test in tests:
        if test.attached_to not in selected_ids:
            continue
        key = dg.AssetCheckKey(dg.AssetKey(models[str(test.attached_to)].key), check_name(test))
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
