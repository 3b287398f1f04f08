"""Run one system's dlt source into the warehouse and say what changed, table by table."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dlt

from ingestion import progress as progress_module
from ingestion.tables import QUARANTINE_TABLE, SOURCES, SYSTEMS, dataset_name
from ingestion.warehouse import Paths, paths, table_counts

log = logging.getLogger(__name__)


@dataclass
class TableSummary:
    table: str
    loaded: int  # rows written by this run (new + updated)
    new: int
    updated: int
    rows: int  # rows in the table afterwards


@dataclass
class SystemResult:
    system: str
    seconds: float
    tables: list[TableSummary] = field(default_factory=list)
    quarantined: int = 0
    load_ids: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(t.loaded for t in self.tables)


def make_pipeline(system: str, where: Paths | None = None) -> dlt.Pipeline:
    where = where or paths()
    where.dlt_dir.mkdir(parents=True, exist_ok=True)
    where.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"trueup_{system}",
        destination=dlt.destinations.duckdb(str(where.warehouse)),
        dataset_name=dataset_name(system),
        pipelines_dir=str(where.dlt_dir),
    )


def load_source(system: str, **kwargs: Any) -> Any:
    """Build the dlt source of one system (config and secrets resolve now, not at import)."""
    if system not in SOURCES:
        raise ValueError(f"unknown system {system!r}; choose from {', '.join(SYSTEMS)}")
    module_name, _, attribute = SOURCES[system].partition(":")
    return getattr(importlib.import_module(module_name), attribute)(**kwargs)


def run_system(
    system: str,
    *,
    full_refresh: bool = False,
    report: Callable[[str], None] | None = None,
    source_kwargs: dict[str, Any] | None = None,
    where: Paths | None = None,
) -> SystemResult:
    """Ingest one system. A run killed at any point is finished by the next one."""
    where = where or paths()
    started = time.monotonic()
    tracker = progress_module.Progress(system=system, report=report)
    progress_module.activate(tracker)
    pipeline = make_pipeline(system, where)
    if pipeline.has_pending_data:
        log.info("%s: finishing load packages a previous run left behind", system)
        pipeline.normalize()
        pipeline.load()
    before = table_counts(where.warehouse, dataset_name(system))
    source = load_source(system, **(source_kwargs or {}))
    # Raw keeps what the API said: ISO-looking strings stay strings; staging casts them.
    source.schema.remove_type_detection("iso_timestamp")
    # Parquet load files: DuckDB ingests them many times faster than INSERT statements.
    options: dict[str, Any] = {"loader_file_format": "parquet"}
    if full_refresh:
        options["refresh"] = "drop_sources"
    info = pipeline.run(source, **options)
    after = table_counts(where.warehouse, dataset_name(system))
    normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    loaded = normalized.row_counts if normalized else {}
    result = SystemResult(system=system, seconds=time.monotonic() - started, load_ids=list(info.loads_ids))
    for table, count in sorted(loaded.items()):
        if table.startswith("_dlt"):
            continue
        if table == QUARANTINE_TABLE:
            result.quarantined = count
        grown = max(after.get(table, 0) - (0 if full_refresh else before.get(table, 0)), 0)
        new = min(grown, count)
        result.tables.append(TableSummary(table, count, new, count - new, after.get(table, 0)))
    if report:
        report(tracker.line() + f" in {result.seconds:.1f}s")
    return result
