"""Dagster assets for ingestion: one multi-asset per system, one asset per raw table.

Keys are `[raw_<system>, <table>]`, the same keys the dbt sources get, so lineage runs
from the API tables through the models without glue.
"""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from ingestion.tables import QUARANTINE_TABLE, SYSTEMS, TABLES, dataset_name

GROUP = "ingestion"


class IngestConfig(dg.Config):
    """Run-time switches for an ingest step."""

    full_refresh: bool = Field(default=False, description="Drop the system's state and reload everything.")


def table_keys(system: str) -> list[dg.AssetKey]:
    return [dg.AssetKey([dataset_name(system), t]) for t in (*TABLES[system], QUARANTINE_TABLE)]


def build_ingest_asset(system: str) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
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
        for key in table_keys(system)
    ]

    @dg.multi_asset(name=f"ingest_{system}", specs=specs, can_subset=False)
    def ingest(context: dg.AssetExecutionContext, config: IngestConfig) -> Iterator[dg.MaterializeResult]:
        from ingestion.pipeline import run_system

        result = run_system(system, full_refresh=config.full_refresh, report=context.log.info)
        by_table = {t.table: t for t in result.tables}
        for key in table_keys(system):
            summary = by_table.get(key.path[-1])
            metadata: dict[str, dg.RawMetadataValue] = {"seconds": round(result.seconds, 2)}
            if summary is not None:
                metadata.update(
                    loaded=summary.loaded, new=summary.new, updated=summary.updated, rows=summary.rows
                )
            else:
                metadata.update(loaded=0, new=0, updated=0)
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)

    return ingest


def ingest_assets() -> list[dg.AssetsDefinition]:
    return [build_ingest_asset(system) for system in SYSTEMS]
