"""The one Dagster code location: `defs`, merged from one module per area.

Loading it imports neither dlt, Great Expectations nor pandas and never parses dbt (the dbt
assets come from the manifest built at install time); dagster-dbt, and through it dbt-core's
Python package, is the one heavy import it makes.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from orchestration import ingest, transform
from orchestration.alerts import alerts_defs
from orchestration.audit import audit_defs
from orchestration.checks import checks_defs
from orchestration.findings_job import findings_review
from orchestration.jobs import NIGHTLY, REFRESH, SYNC, jobs_defs
from orchestration.path_checks import path_health_defs
from orchestration.publish import build_publish_asset
from orchestration.report import build_report_asset
from orchestration.resources import ops_settings, resources
from orchestration.reverse_etl import reverse_etl_defs
from orchestration.schedules import freshness_checks, schedules_defs
from orchestration.webhooks import webhooks_defs

__all__ = ["NIGHTLY", "REFRESH", "SYNC", "build_defs", "defs"]


def ingestion_defs() -> dg.Definitions:
    return dg.Definitions(assets=ingest.ingest_assets())


def transform_defs() -> dg.Definitions:
    from dagster_dbt import DbtCliResource

    from orchestration.dbt import dbt_executable, dbt_project

    project = dbt_project()
    return dg.Definitions(
        assets=transform.build_dbt_assets(project),
        resources={"dbt": DbtCliResource(project_dir=project, dbt_executable=dbt_executable())},
    )


def ops_defs(built: Iterable[dg.AssetKey]) -> dg.Definitions:
    """Publish (depends on everything built and checked) and the report (reads the copy)."""
    return dg.Definitions(assets=[build_publish_asset(built), build_report_asset()])


def asset_keys(definitions: dg.Definitions) -> list[dg.AssetKey]:
    keys: list[dg.AssetKey] = []
    for item in definitions.assets or []:
        if isinstance(item, dg.AssetsDefinition):
            keys.extend(item.keys)
        elif isinstance(item, dg.AssetSpec):
            keys.append(item.key)
    return keys


def build_defs() -> dg.Definitions:
    """Every area merged; settings (time zone, crons, freshness limits) are read now."""
    settings = ops_settings()
    assets = [ingestion_defs(), transform_defs()]
    known = {tuple(key.path) for area in assets for key in asset_keys(area)}
    # The parity and quality checks join every job that selects the asset they judge.
    areas = [*assets, checks_defs(known), reverse_etl_defs(), webhooks_defs(), audit_defs(settings)]
    built = [key for area in areas for key in asset_keys(area)]
    freshness = freshness_checks(settings)
    path_health, path_checks = path_health_defs(settings)
    return dg.Definitions.merge(
        *areas,
        ops_defs(built),
        schedules_defs(settings, freshness),
        path_health,
        alerts_defs(),
        jobs_defs(excluded_checks=[*freshness, path_checks]),
        dg.Definitions(resources=resources(), jobs=[findings_review]),
    )


defs = build_defs()
