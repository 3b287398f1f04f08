"""The read-only copy BI tools and the report read: published atomically at the end of a run.

The writer checkpoints the warehouse, writes the schemas analysts read into a temporary file
beside the published one, stamps it with what it holds (`_publication` schema), and renames it
over the previous copy. A reader that has the old copy open keeps reading it; a reader that
opens the path gets the old or the new copy, never a half-written one.

The copy is written in DuckDB's storage version v1.0.0 (storage format 64), which every DuckDB
from 0.10 on reads, the 1.x drivers of BI tools included (DBeaver, Metabase, Superset); the
default of the DuckDB writing it (2.x) cannot be opened by 1.x. The marts need nothing newer:
their types (integers, HUGEINT, DECIMAL, DOUBLE, BOOLEAN, DATE, TIMESTAMPTZ, VARCHAR and lists
of it) and comments are all in v1.0.0; what v1.2.0+ adds is lighter compression (the copy is
about 14% larger). Views become tables in the copy, so a reader never needs a schema left out
or a function its DuckDB lacks. Table and column comments (dbt descriptions, persist_docs)
are carried over.

On a PostgreSQL warehouse (`TRUEUP_WAREHOUSE=postgresql://...`) the server is published first:
each published schema `S` is copied to `published_S` in one transaction and the read-only role
(`published_role`, default `trueup_reader`) may read those alone (`orchestration.postgres`). The
local copy is then written from `published_S` as above, so the report, status and health read
the same file on either engine.
"""

import logging
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from ingestion.engine import Engine
from ingestion.quarantine import open_quarantine_sql
from ingestion.tables import SYSTEMS, TABLES, dataset_name
from ingestion.warehouse import Paths, paths

log = logging.getLogger(__name__)

GROUP = "ops"
PUBLISH_KEY = dg.AssetKey(["ops", "published_warehouse"])
PUBLICATION_SCHEMA = "_publication"
# The schemas analysts read; dlt's raw_* and raw_*_staging schemas, seeds and the check history
# stay in the warehouse (the report's figures from them are stamped into `_publication`).
DEFAULT_SCHEMAS = ("staging", "intermediate", "marts", "reconciliation", "reverse_etl")
STORAGE_VERSION = "v1.0.0"
COPY = "trueup_copy"  # the copy's catalog name while it is written
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
    engine = where.engine
    if not engine.is_postgres and not where.warehouse.exists():
        raise FileNotFoundError(f"{where.warehouse} does not exist: nothing to publish")
    target = where.published
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        sources = latest_ingests(read_sources(target), ingested or {})
        if engine.is_postgres:
            tables, ops_summary = publish_postgres(engine, temporary, published_schemas())
        else:
            with duckdb.connect(str(where.warehouse)) as con:
                con.execute("checkpoint")
                tables = write_copy(con, temporary, published_schemas())
                ops_summary = summaries(con)
        publication = Publication(target, run_id, job, datetime.now(UTC), tables, sources)
        stamp(temporary, publication, checks, ops_summary)
        _fsync(temporary)
        os.replace(temporary, target)
        _fsync(target.parent)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    publication.bytes = target.stat().st_size
    publication.seconds = time.monotonic() - started
    log.info("published %s (%d tables) in %.1fs", target, len(tables), publication.seconds)
    return publication


def published_schemas() -> list[str]:
    """The schemas analysts read (setting `published_schemas`, names separated by commas or spaces)."""
    from orchestration.resources import setting

    raw = setting("published_schemas")
    if not raw:
        return list(DEFAULT_SCHEMAS)
    return [name for name in raw.replace(",", " ").split() if name]


def write_copy(con: Any, target: Path, schemas: Sequence[str]) -> dict[str, int]:
    """Write `schemas` of the open warehouse into a new file at `target` (storage v1.0.0): tables
    and views alike as tables, with their comments. Returns rows per `schema.table`."""
    con.execute(f"attach '{_sql_text(str(target))}' as {COPY} (storage_version '{STORAGE_VERSION}')")
    try:
        relations = _relations(con, schemas)
        counts: dict[str, int] = {}
        for schema in sorted({schema for schema, _, _ in relations}):
            con.execute(f"create schema {COPY}.{_quote(schema)}")
        for schema, name, comment in relations:
            source, copy = f"{_quote(schema)}.{_quote(name)}", f"{COPY}.{_quote(schema)}.{_quote(name)}"
            con.execute(f"create table {copy} as select * from {source}")
            row = con.execute(f"select count(*) from {copy}").fetchone()
            counts[f"{schema}.{name}"] = int(row[0]) if row else 0
            _copy_comments(con, schema, name, comment)
        con.execute(f"checkpoint {COPY}")
    finally:
        con.execute(f"detach {COPY}")
    return counts


def publish_postgres(
    engine: Engine, target: Path, schemas: Sequence[str]
) -> tuple[dict[str, int], dict[str, list[tuple[Any, ...]]]]:
    """Publish on the server (`published_S`, the reader role), then write the local copy at
    `target` from those schemas; the ops summaries come from the server's bookkeeping tables,
    all read in one snapshot. Returns rows per `schema.table` and the summaries."""
    import duckdb

    from orchestration import postgres

    postgres.publish_schemas(engine, schemas)
    snapshot = engine.connect()
    snapshot.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        with duckdb.connect(":memory:") as con:
            con.execute(f"attach '{_sql_text(str(target))}' as {COPY} (storage_version '{STORAGE_VERSION}')")
            try:
                with snapshot.cursor() as cursor:
                    published = [
                        (postgres.published_name(s), name, s)
                        for s in schemas
                        for name, _ in postgres.relations(cursor, postgres.published_name(s))
                    ]
                    keep = postgres.bookkeeping(cursor)
                tables = postgres.copy_to_duckdb(
                    engine, con, published, database=COPY, snapshot=snapshot, comments=True
                )
                # the bookkeeping goes into the scratch database the summaries read, not the copy
                postgres.copy_to_duckdb(
                    engine, con, keep, only_columns=postgres.BOOKKEEPING_COLUMNS, snapshot=snapshot
                )
                ops_summary = summaries(con)
                con.execute(f"checkpoint {COPY}")
            finally:
                con.execute(f"detach {COPY}")
    finally:
        snapshot.close()
    return tables, ops_summary


def _relations(con: Any, schemas: Sequence[str]) -> list[tuple[str, str, str | None]]:
    if not schemas:
        return []
    marks = ", ".join("?" for _ in schemas)
    return [
        (str(schema), str(name), comment)
        for schema, name, comment in con.execute(
            "select schema_name, table_name, comment from duckdb_tables() "
            f"where database_name = current_database() and schema_name in ({marks}) "
            "union all select schema_name, view_name, comment from duckdb_views() "
            f"where database_name = current_database() and not internal and schema_name in ({marks}) "
            "order by 1, 2",
            [*schemas, *schemas],
        ).fetchall()
    ]


def _copy_comments(con: Any, schema: str, name: str, comment: str | None) -> None:
    copy = f"{COPY}.{_quote(schema)}.{_quote(name)}"
    if comment:
        con.execute(f"comment on table {copy} is '{_sql_text(comment)}'")
    for column, text in con.execute(
        "select column_name, comment from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ? and comment is not null and comment != ''",
        [schema, name],
    ).fetchall():
        con.execute(f"comment on column {copy}.{_quote(column)} is '{_sql_text(text)}'")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def summaries(con: Any) -> dict[str, list[tuple[Any, ...]]]:
    """What the report reads from the schemas the copy leaves out: quarantined records per
    system, table and reason (the open ones), each source's last successful load, and the ingest
    health (resources not read, the sources' counts against raw, the latest audit)."""
    every = {  # schema.table of the whole warehouse, listed once
        f"{s}.{t}"
        for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
    }
    quarantine: list[tuple[Any, ...]] = []
    loads: list[tuple[Any, ...]] = []
    for system in SYSTEMS:
        schema = dataset_name(system)
        tables = {name.partition(".")[2] for name in every if name.startswith(schema + ".")}
        if "_quarantine" in tables:  # the open rows: healed and accepted ones are resolved
            quarantine += con.execute(
                f"select '{system}', resource, reason, count(*) "
                f"from ({open_quarantine_sql(schema, tables)}) group by all"
            ).fetchall()
        if "_dlt_loads" in tables:
            loads += con.execute(
                f"select '{system}', max(inserted_at) from {schema}._dlt_loads where status = 0"
            ).fetchall()
    from ingestion import health
    from orchestration.findings import account_rows

    return {
        "quarantine": quarantine,
        "loads": loads,
        "accounts": account_rows(con),
        "completeness": [(health.dumps(health.collect(con, every)),)],
    }


def stamp(
    database: Path,
    publication: Publication,
    checks: Iterable[CheckOutcome],
    ops_summary: Mapping[str, Sequence[tuple[Any, ...]]] | None = None,
) -> None:
    """Write `_publication.run`, `.tables`, `.asset_checks`, `.sources`, `.quarantine`, `.loads`,
    `.accounts` and `.completeness` into the (unpublished) copy."""
    import duckdb

    s = PUBLICATION_SCHEMA
    summary = ops_summary or {}
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
        _table(
            con,
            f"{s}.tables (table_schema varchar, table_name varchar, rows bigint)",
            [(*name.split(".", 1), count) for name, count in publication.tables.items()],
        )
        _table(
            con,
            f"{s}.asset_checks (asset varchar, check_name varchar, passed boolean, severity varchar, "
            "failures bigint, description varchar)",
            [(c.asset, c.check, c.passed, c.severity, c.failures, c.description) for c in checks],
        )
        _table(
            con, f"{s}.sources (system varchar, last_ingested_at timestamptz)", publication.sources.items()
        )
        _table(
            con,
            f"{s}.quarantine (system varchar, resource varchar, reason varchar, records bigint)",
            summary.get("quarantine", []),
        )
        _table(con, f"{s}.loads (system varchar, last_loaded_at timestamptz)", summary.get("loads", []))
        _table(con, f"{s}.accounts (key varchar, value varchar)", summary.get("accounts", []))
        _table(con, f"{s}.completeness (health varchar)", summary.get("completeness", []))
        con.execute("checkpoint")


def _table(con: Any, definition: str, rows: Iterable[Sequence[Any]]) -> None:
    con.execute(f"create or replace table {definition}")
    values = [tuple(row) for row in rows]
    if values:
        name = definition.split(" ", 1)[0]
        marks = ", ".join("?" for _ in values[0])
        con.executemany(f"insert into {name} values ({marks})", values)


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
