"""Dagster assets for ingestion: one multi-asset over every system, one asset per raw table.

Keys are `[raw_<system>, <table>]`, the same keys the dbt sources get, so lineage runs
from the API tables through the models without glue.
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from ingestion.tables import QUARANTINE_TABLE, SYSTEMS, TABLES, dataset_name

if TYPE_CHECKING:  # the pipeline module imports dlt: not at code-location load
    from ingestion.pipeline import SystemResult

GROUP = "ingestion"


class IngestConfig(dg.Config):
    """Run-time switches for the ingest step."""

    full_refresh: list[str] = Field(
        default=[],
        description=f"Systems to reload from scratch (their state is dropped): any of {', '.join(SYSTEMS)}.",
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
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


def build_ingest_asset() -> dg.AssetsDefinition:
    """One step for the selected systems: they extract side by side (a process each) and load
    one after another. A system that fails is named in the step's error after the others have
    loaded and materialized."""
    specs = [_spec(key, system) for system in SYSTEMS for key in table_keys(system)]

    @dg.multi_asset(name="ingest", specs=specs, can_subset=True)
    def ingest(context: dg.AssetExecutionContext, config: IngestConfig) -> Iterator[dg.MaterializeResult]:
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
        systems = [s for s in SYSTEMS if selected & set(table_keys(s))]
        try:
            results = run_systems(systems, full_refresh=config.full_refresh, report=context.log.info)
        except IngestError as failed:
            for result in failed.results:
                yield from _materializations(result)
            raise dg.Failure(str(failed)) from failed
        for result in results:
            yield from _materializations(result)

    return ingest


def ingest_assets() -> list[dg.AssetsDefinition]:
    return [build_ingest_asset()]
