"""Dagster assets for ingestion: one multi-asset over every system, one asset per raw table.

Keys are `[raw_<system>, <table>]`, the same keys the dbt sources get, so lineage runs
from the API tables through the models without glue.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from ingestion.tables import QUARANTINE_TABLE, SYSTEMS, TABLES, dataset_name
from orchestration.health import record_ingest

if TYPE_CHECKING:  # the pipeline module imports dlt: not at code-location load
    from ingestion.pipeline import SystemResult

GROUP = "ingestion"
SOURCE_COUNT = "source_count"
# Resources whose API reports how many records it holds (HubSpot search `total`): each run
# compares that count with raw.
COUNTED = {"crm": ("contacts", "companies", "deals", "meetings")}


class IngestConfig(dg.Config):
    """Run-time switches for the ingest step."""

    full_refresh: list[str] = Field(
        default=[],
        description=f"Systems to reload from scratch (their state is dropped): any of {', '.join(SYSTEMS)}.",
    )
    scheduling_events: list[str] = Field(
        default=[],
        description=(
            "Read only these Calendly scheduled events (URIs) and their invitees instead of re-scanning "
            "the window (what webhook runs ask for)."
        ),
    )


def table_keys(system: str) -> list[dg.AssetKey]:
    return [dg.AssetKey([dataset_name(system), t]) for t in (*TABLES[system], QUARANTINE_TABLE)]


def _spec(key: dg.AssetKey, system: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        group_name=GROUP,
        kinds={"dlt", "duckdb"},
        skippable=True,
        description=(
            f"{system} records that broke their contract, with the reason"
            if key.path[-1] == QUARANTINE_TABLE
            else f"{system} `{key.path[-1]}` as the API returned it"
        ),
    )


def _materializations(result: "SystemResult") -> Iterator[dg.MaterializeResult]:
    by_table = {t.table: t for t in result.tables}
    for key in table_keys(result.system):
        summary = by_table.get(key.path[-1])
        metadata: dict[str, dg.RawMetadataValue] = {"seconds": round(result.seconds, 2)}
        if summary is not None:
            metadata.update(
                loaded=summary.loaded, new=summary.new, updated=summary.updated, rows=summary.rows
            )
        else:
            metadata.update(loaded=0, new=0, updated=0)
        outcome = result.outcomes.get(key.path[-1])
        if outcome is not None:  # skipped (a missing scope, an unused object type) or failed
            metadata.update(status=outcome.status, reason=outcome.text())
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def count_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            SOURCE_COUNT,
            asset=dg.AssetKey([dataset_name(system), resource]),
            description="raw holds every record the source counts (or has it quarantined)",
        )
        for system, resources in COUNTED.items()
        for resource in resources
    ]


def _count_results(result: "SystemResult", selected: set[dg.AssetCheckKey]) -> Iterator[dg.AssetCheckResult]:
    counted = {count.resource: count for count in result.counts}
    for resource in COUNTED.get(result.system, ()):
        key = dg.AssetKey([dataset_name(result.system), resource])
        if dg.AssetCheckKey(key, SOURCE_COUNT) not in selected:
            continue
        count = counted.get(resource)
        if count is None:  # skipped, or failed before the count: it shows on the asset
            outcome = result.outcomes.get(resource)
            why = outcome.text() if outcome is not None else "the source gave no count"
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=SOURCE_COUNT,
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"not counted this run: {why}",
            )
            continue
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=SOURCE_COUNT,
            passed=count.unaccounted == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "at_source": count.at_source,
                "in_raw": count.in_raw,
                "quarantined": count.quarantined,
                "unaccounted": count.unaccounted,
            },
            description=None if not count.unaccounted else "run `trueup audit` to find and fetch them",
        )


def build_ingest_asset() -> dg.AssetsDefinition:
    """One step for the selected systems: they extract side by side (a process each) and load
    one after another. A system that fails is named in the step's error after the others have
    loaded and materialized."""
    specs = [_spec(key, system) for system in SYSTEMS for key in table_keys(system)]

    @dg.multi_asset(name="ingest", specs=specs, check_specs=count_specs(), can_subset=True)
    def ingest(context: dg.AssetExecutionContext, config: IngestConfig) -> Iterator[Any]:
        from ingestion.mapping import MappingError, load_mapping
        from ingestion.pipeline import IngestError, run_systems

        unknown = set(config.full_refresh) - set(SYSTEMS)
        if unknown:
            raise dg.Failure(f"full_refresh names unknown systems: {', '.join(sorted(unknown))}")
        try:
            load_mapping()  # a configuration problem stops the run here, before any system loads
        except MappingError as exc:
            raise dg.Failure(str(exc)) from exc
        selected = {key for key in context.selected_asset_keys}
        checks = set(context.selected_asset_check_keys)
        systems = [s for s in SYSTEMS if selected & set(table_keys(s))]
        kwargs = {"scheduling": {"event_uris": config.scheduling_events}} if config.scheduling_events else {}
        started = datetime.now(UTC)
        try:
            results = run_systems(
                systems, full_refresh=config.full_refresh, report=context.log.info, source_kwargs=kwargs
            )
        except IngestError as failed:
            record_ingest(systems, started, failed.results, failed.failures)
            for result in failed.results:
                yield from _materializations(result)
                yield from _count_results(result, checks)
            raise dg.Failure(str(failed)) from failed
        except Exception as exc:  # every system of the step failed with it: the paths' health says so
            record_ingest(systems, started, [], {s: f"{type(exc).__name__}: {exc}" for s in systems})
            raise
        record_ingest(systems, started, results, {})
        for result in results:
            yield from _materializations(result)
            yield from _count_results(result, checks)

    return ingest


def ingest_assets() -> list[dg.AssetsDefinition]:
    return [build_ingest_asset()]
