"""Jobs: asset selections run by the in-process executor, each tagged as a warehouse writer.

- `nightly`: ingest every system, build every model, run the checks, publish the
  read-only copy, render the report.
- `sync`: intraday; ingest incrementally and rebuild the models analysts read (staging,
  intermediate, marts), then publish. Findings are left to the nightly run, so the trend
  keeps one point per night.
- `refresh`: the nightly selection with every source reloaded from scratch (run config
  `full_refresh: [crm, billing, scheduling, ads]` of the ingest step; in the launchpad, leave
  out the systems to keep).
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from ingestion.tables import SYSTEMS
from orchestration import ingest, transform
from orchestration.publish import PUBLISH_KEY
from orchestration.report import REPORT_KEY
from orchestration.resources import WRITER_TAG, WRITER_TAG_VALUE

NIGHTLY = "nightly"
SYNC = "sync"
REFRESH = "refresh"

# Reverse ETL joins the nightly run through this group (orchestration/reverse_etl.py): the plan
# asset (outbox vs the target's live value) and the push asset (writes, ledger, dead letters,
# conflicts). They run after the build and its checks and before publish, which depends on
# every asset.
REVERSE_ETL_GROUP = "reverse_etl_push"
SYNC_LAYERS = ("staging", "intermediate", "marts")
PUBLISHING_JOBS = (NIGHTLY, SYNC, REFRESH)  # a failed run of these reports the last good copy

WRITER_TAGS = {WRITER_TAG: WRITER_TAG_VALUE}


def ingest_selection() -> dg.AssetSelection:
    return dg.AssetSelection.groups(ingest.GROUP)


def build_selection() -> dg.AssetSelection:
    return dg.AssetSelection.groups(*transform.LAYERS)


def nightly_selection(excluded_checks: Sequence[dg.AssetChecksDefinition] = ()) -> dg.AssetSelection:
    """Ingest all, build, check, (reverse ETL), publish, report. Ordering comes from the
    dependencies: publish depends on every asset and runs after every check."""
    selection = (
        ingest_selection()
        | build_selection()
        | dg.AssetSelection.groups(REVERSE_ETL_GROUP)
        | dg.AssetSelection.assets(PUBLISH_KEY)
        | dg.AssetSelection.assets(REPORT_KEY)
    )
    return _without(selection, excluded_checks)


def sync_selection(excluded_checks: Sequence[dg.AssetChecksDefinition] = ()) -> dg.AssetSelection:
    """Ingest all, the models downstream of the raw tables that analysts read, publish."""
    affected = ingest_selection().downstream() & dg.AssetSelection.groups(*SYNC_LAYERS)
    selection = ingest_selection() | affected | dg.AssetSelection.assets(PUBLISH_KEY)
    return _without(selection, excluded_checks)


def _without(selection: dg.AssetSelection, checks: Sequence[dg.AssetChecksDefinition]) -> dg.AssetSelection:
    # Freshness checks are the sensor's to evaluate, between runs; right after an ingest they
    # would only pass.
    return selection - dg.AssetSelection.checks(*checks) if checks else selection


def full_refresh_config() -> dg.RunConfig:
    return dg.RunConfig(ops={"ingest": ingest.IngestConfig(full_refresh=list(SYSTEMS))})


def jobs(excluded_checks: Sequence[dg.AssetChecksDefinition] = ()) -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            NIGHTLY,
            selection=nightly_selection(excluded_checks),
            description="Ingest every system, build, check, publish the read-only copy, report.",
            executor_def=dg.in_process_executor,
            tags=WRITER_TAGS,
        ),
        dg.define_asset_job(
            SYNC,
            selection=sync_selection(excluded_checks),
            description="Intraday incremental sync: ingest, rebuild staging/intermediate/marts, publish.",
            executor_def=dg.in_process_executor,
            tags=WRITER_TAGS,
        ),
        dg.define_asset_job(
            REFRESH,
            selection=nightly_selection(excluded_checks),
            config=full_refresh_config(),
            description="Full refresh / backfill: reload every source from scratch, then the nightly steps.",
            executor_def=dg.in_process_executor,
            tags=WRITER_TAGS,
        ),
    ]


def jobs_defs(excluded_checks: Sequence[dg.AssetChecksDefinition] = ()) -> dg.Definitions:
    return dg.Definitions(jobs=jobs(excluded_checks), executor=dg.in_process_executor)
