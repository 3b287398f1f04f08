"""Dagster asset checks for the check suites: one check step per layer, on the assets judged.

Each layer's checks (raw, staging, intermediate, marts, reconciliation, reverse_etl) run as
one `multi_asset_check` step after that layer's assets and before the next layer's: a
check that can fail with severity error is declared blocking, so an error failure stops
every asset downstream of the asset it judges, while a warning only shows. The numbers go
into the check's metadata, and every result is appended to `checks.check_results`.
Loading this module imports neither Great Expectations, pandas nor dbt.
"""

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import dagster as dg

from checks.results import CheckResult, describe_threshold
from checks.suites import LAYERS, Check, catalogue
from ingestion.tables import SYSTEMS
from orchestration.dbt import DbtError, load_manifest
from orchestration.ingest import table_keys

AssetPath = tuple[str, ...]


def checks_defs(known: set[AssetPath] | None = None) -> dg.Definitions:
    """The asset checks of every suite, for the assets this code location defines (`known`,
    when the caller has them at hand; else read from the ingest tables and the manifest)."""
    return dg.Definitions(asset_checks=build_asset_checks(known))


def known_asset_keys() -> set[AssetPath]:
    """Raw tables (ingestion) and dbt models (from the manifest built at install time)."""
    keys: set[AssetPath] = {tuple(key.path) for system in SYSTEMS for key in table_keys(system)}
    with contextlib.suppress(DbtError):  # no manifest yet: only the raw tables
        keys |= {tuple(node.key) for node in load_manifest().models()}
    return keys


def build_asset_checks(known: set[AssetPath] | None = None) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check per layer, over the checks whose asset exists."""
    known = known_asset_keys() if known is None else known
    checks = [c for c in catalogue() if c.asset in known]
    return [
        _layer_checks(layer, [c for c in checks if c.layer == layer], known)
        for layer in LAYERS
        if any(c.layer == layer for c in checks)
    ]


def check_key(check: Check) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey(list(check.asset)), check.name)


def _spec(check: Check, known: set[AssetPath]) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        check.name,
        asset=dg.AssetKey(list(check.asset)),
        description=check.description,
        blocking=check.blocking,
        additional_deps=[dg.AssetKey(list(k)) for k in check.reads if k in known and k != check.asset],
        metadata={
            "suite": check.suite,
            "unit": check.unit,
            "default_threshold": describe_threshold(check.levels.warn_above, check.levels.error_above),
        },
    )


def _layer_checks(layer: str, checks: Sequence[Check], known: set[AssetPath]) -> dg.AssetChecksDefinition:
    by_key = {check_key(c): c for c in checks}

    @dg.multi_asset_check(
        name=f"checks_{layer}",
        specs=[_spec(c, known) for c in checks],
        can_subset=True,
        description=f"Parity and quality checks of the {layer} layer (blocking at severity error).",
    )
    def layer_checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        selected = [by_key[k] for k in context.selected_asset_check_keys if k in by_key]
        yield from run_selected(context, selected)

    return layer_checks


def run_selected(
    context: dg.AssetCheckExecutionContext, checks: Sequence[Check]
) -> Iterator[dg.AssetCheckResult]:
    """Run some checks against the warehouse, keep the results, report them to Dagster."""
    from checks.runner import run_checks, store_results
    from ingestion.warehouse import paths

    warehouse = paths().engine  # a DuckDB file or a PostgreSQL database
    results = run_checks(warehouse, keys=[c.key for c in checks])
    try:
        store_results(results, warehouse, run_id=context.run.run_id, origin="dagster")
    except Exception as exc:  # the history is a convenience; the checks themselves still report
        context.log.warning(f"could not store the check results: {exc}")
    for line in _failures(results):
        context.log.warning(line)
    for result in results:
        yield to_asset_check_result(result)


def to_asset_check_result(result: CheckResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(list(result.asset)),
        check_name=result.check,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR if result.severity == "error" else dg.AssetCheckSeverity.WARN,
        metadata=result_metadata(result),
        description=result.message or None,
    )


def result_metadata(result: CheckResult) -> dict[str, Any]:
    """The numbers behind a result, as Dagster metadata (empty values left out)."""
    metadata: dict[str, Any] = {
        name: value for name, value in result.details.items() if isinstance(value, int | float | str)
    }
    metadata.update(
        status=result.status,
        observed=result.observed,
        unit=result.unit,
        threshold=result.threshold,
        warn_above=result.warn_above,
        error_above=result.error_above,
        message=result.message,
        seconds=round(result.seconds, 3),
    )
    if result.sample:
        metadata["failing_keys"] = dg.MetadataValue.json(list(result.sample))
    return {name: value for name, value in metadata.items() if value is not None and value != ""}


def _failures(results: Iterable[CheckResult]) -> Iterator[str]:
    for r in results:
        if not r.passed:
            yield f"{r.key} ({r.severity}, {r.status}): {r.message}"
