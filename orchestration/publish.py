"""The read-only copy BI tools and the report read: published atomically at the end of a run.

The writer checkpoints the warehouse (so the file holds everything and no WAL is left),
copies it to a temporary file beside the published one, stamps the copy with what it
holds (`_publication` schema), and renames it over the previous copy. A reader that has
the old copy open keeps reading it; a reader that opens the path gets the old or the new
copy, never a half-written one.
"""

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from ingestion.tables import SYSTEMS, TABLES, dataset_name
from ingestion.warehouse import Paths, paths

log = logging.getLogger(__name__)

GROUP = "ops"
PUBLISH_KEY = dg.AssetKey(["ops", "published_warehouse"])
PUBLICATION_SCHEMA = "_publication"
# Lowest priority but the report: with the in-process executor the step runs only once
# every other step of the run, asset checks included, is done.
PUBLISH_PRIORITY = "-100"


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check evaluated by the run that built the warehouse."""

    asset: str
    check: str
    passed: bool
    severity: str = "ERROR"
    failures: int | None = None
    description: str = ""


@dataclass
class Publication:
    path: Path
    run_id: str
    job: str
    published_at: datetime
    tables: dict[str, int] = field(default_factory=dict)  # "schema.table" -> rows
    sources: dict[str, datetime] = field(default_factory=dict)  # system -> last successful ingest
    bytes: int = 0
    seconds: float = 0.0


def publish(
    where: Paths | None = None,
    run_id: str = "manual",
    job: str = "manual",
    checks: Sequence[CheckOutcome] = (),
    ingested: Mapping[str, datetime] | None = None,
) -> Publication:
    """Checkpoint the warehouse, copy it, stamp the copy, and swap it in atomically.

    `ingested`: when each source was last ingested successfully (with or without new
    records); merged with what the previous copy recorded.
    """
    import duckdb

    where = where or paths()
    started = time.monotonic()
    if not where.warehouse.exists():
        raise FileNotFoundError(f"{where.warehouse} does not exist: nothing to publish")
    with duckdb.connect(str(where.warehouse)) as con:
        con.execute("checkpoint")
        tables = table_rows(con)
    wal = where.warehouse.with_name(where.warehouse.name + ".wal")
    if wal.exists():
        raise RuntimeError(f"{wal} still exists after a checkpoint: another process is writing")
    target = where.published
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(where.warehouse, temporary)
        sources = latest_ingests(read_sources(target), ingested or {})
        publication = Publication(target, run_id, job, datetime.now(UTC), tables, sources)
        stamp(temporary, publication, checks)
        _fsync(temporary)
        os.replace(temporary, target)
        _fsync(target.parent)
    finally:
        temporary.unlink(missing_ok=True)
    publication.bytes = target.stat().st_size
    publication.seconds = time.monotonic() - started
    log.info("published %s (%d tables) in %.1fs", target, len(tables), publication.seconds)
    return publication


def table_rows(con: Any) -> dict[str, int]:
    """Rows per base table of every schema but dlt's staging schemas."""
    names = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_schema not like '%\\_staging' escape '\\' "
        "order by 1, 2"
    ).fetchall()
    counts = {}
    for schema, table in names:
        row = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def stamp(database: Path, publication: Publication, checks: Iterable[CheckOutcome]) -> None:
    """Write `_publication.run`, `.tables` and `.asset_checks` into the (unpublished) copy."""
    import duckdb

    s = PUBLICATION_SCHEMA
    with duckdb.connect(str(database)) as con:
        con.execute(f"create schema if not exists {s}")
        con.execute(
            f"create or replace table {s}.run (run_id varchar, job varchar, published_at timestamptz, "
            "warehouse varchar)"
        )
        con.execute(
            f"insert into {s}.run values (?, ?, ?, ?)",
            [publication.run_id, publication.job, publication.published_at, str(publication.path)],
        )
        con.execute(
            f"create or replace table {s}.tables (table_schema varchar, table_name varchar, rows bigint)"
        )
        rows = [(*name.split(".", 1), count) for name, count in publication.tables.items()]
        if rows:
            con.executemany(f"insert into {s}.tables values (?, ?, ?)", rows)
        con.execute(
            f"create or replace table {s}.asset_checks (asset varchar, check_name varchar, passed boolean, "
            "severity varchar, failures bigint, description varchar)"
        )
        outcomes = [(c.asset, c.check, c.passed, c.severity, c.failures, c.description) for c in checks]
        if outcomes:
            con.executemany(f"insert into {s}.asset_checks values (?, ?, ?, ?, ?, ?)", outcomes)
        con.execute(f"create or replace table {s}.sources (system varchar, last_ingested_at timestamptz)")
        if publication.sources:
            con.executemany(f"insert into {s}.sources values (?, ?)", list(publication.sources.items()))
        con.execute("checkpoint")


def read_sources(path: Path) -> dict[str, datetime]:
    """`_publication.sources` of a published copy (empty when there is none)."""
    import duckdb

    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        found = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [PUBLICATION_SCHEMA, "sources"],
        ).fetchall()
        if not found[0][0]:
            return {}
        rows = con.execute(f"select system, last_ingested_at from {PUBLICATION_SCHEMA}.sources").fetchall()
    return {str(system): moment for system, moment in rows}


def latest_ingests(*known: Mapping[str, datetime]) -> dict[str, datetime]:
    merged: dict[str, datetime] = {}
    for times in known:
        for system, moment in times.items():
            if system not in merged or moment > merged[system]:
                merged[system] = moment
    return merged


def ingest_times(instance: dg.DagsterInstance) -> dict[str, datetime]:
    """When each source's ingest step last succeeded, from the instance's materializations."""
    times = {}
    for system in SYSTEMS:
        event = instance.get_latest_materialization_event(
            dg.AssetKey([dataset_name(system), TABLES[system][0]])
        )
        if event is not None:
            times[system] = datetime.fromtimestamp(event.timestamp, UTC)
    return times


def remove_stale_temporaries(target: Path, older_than_seconds: float = 3600) -> None:
    """Temporaries a killed publish left behind (never one a running publish is writing)."""
    cutoff = time.time() - older_than_seconds
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        if leftover.stat().st_mtime < cutoff:
            leftover.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def run_check_outcomes(instance: dg.DagsterInstance, run_id: str) -> list[CheckOutcome]:
    """Every asset check the run evaluated (dbt tests, code checks), from the event log."""
    outcomes = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if not isinstance(data, dg.AssetCheckEvaluation):
            continue
        failures = (data.metadata or {}).get("failures")
        outcomes.append(
            CheckOutcome(
                asset="/".join(data.asset_key.path),
                check=data.check_name,
                passed=bool(data.passed),
                severity=data.severity.value if data.severity else "ERROR",
                failures=failures.value if isinstance(failures, dg.IntMetadataValue) else None,
                description=data.description or "",
            )
        )
    return outcomes


def build_publish_asset(upstream: Iterable[dg.AssetKey]) -> dg.AssetsDefinition:
    """The publish asset: depends on everything the run builds and checks."""
    deps: list[dg.AssetKey] = sorted(set(upstream), key=lambda key: key.to_user_string())

    @dg.asset(
        key=PUBLISH_KEY,
        deps=deps,
        group_name=GROUP,
        kinds={"duckdb"},
        description=(
            "The read-only copy of the warehouse BI tools and the report read "
            "(`$TRUEUP_HOME/published/warehouse.duckdb`), swapped in atomically at the end of a run."
        ),
        required_resource_keys={"warehouse_writer"},
        op_tags={"dagster/priority": PUBLISH_PRIORITY},
    )
    def published_warehouse(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        checks = run_check_outcomes(context.instance, context.run_id)
        result = publish(
            paths(),
            run_id=context.run_id,
            job=context.job_name,
            checks=checks,
            ingested=ingest_times(context.instance),
        )
        failed = sum(1 for c in checks if not c.passed)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(result.path)),
                "tables": len(result.tables),
                "rows": sum(result.tables.values()),
                "megabytes": round(result.bytes / 1e6, 1),
                "seconds": round(result.seconds, 2),
                "asset_checks": len(checks),
                "asset_checks_failed": failed,
                "published_at": dg.MetadataValue.timestamp(result.published_at),
            }
        )

    return published_warehouse


def read_publication(path: Path) -> dict[str, Any] | None:
    """The `_publication.run` row of a published copy, or None when there is no copy yet."""
    import duckdb

    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(f"select run_id, job, published_at, warehouse from {PUBLICATION_SCHEMA}.run")
        row = cursor.fetchone()
    if row is None:
        return None
    return {"run_id": row[0], "job": row[1], "published_at": row[2], "warehouse": row[3]}
