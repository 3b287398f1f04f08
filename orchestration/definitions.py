"""The one Dagster code location: `defs`, merged from one module per area."""

from __future__ import annotations

import dagster as dg

from orchestration import ingest, transform

NIGHTLY = "nightly"


def ingestion_defs() -> dg.Definitions:
    return dg.Definitions(assets=ingest.ingest_assets())


def transform_defs() -> dg.Definitions:
    return dg.Definitions(assets=transform.build_dbt_assets())


def jobs_defs() -> dg.Definitions:
    nightly = dg.define_asset_job(
        NIGHTLY,
        selection=dg.AssetSelection.all(),
        description="Ingest every system, build the warehouse, check it, publish it, report.",
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions(jobs=[nightly])


def build_defs() -> dg.Definitions:
    return dg.Definitions.merge(ingestion_defs(), transform_defs(), jobs_defs())


defs = build_defs()
