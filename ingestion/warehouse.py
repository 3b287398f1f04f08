"""Where trueup keeps its state: the warehouse file, its published copy, dlt's working dirs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ingestion.engine import Engine
    from ingestion.sqlconn import Target


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def warehouse(self) -> Path:
        """The one read-write DuckDB file (one writer at a time). With a PostgreSQL warehouse
        (`engine`), the DuckDB file that would hold it: nothing writes there."""
        setting = os.environ.get("TRUEUP_WAREHOUSE")
        if setting and "://" not in setting:
            return Path(setting)
        return self.home / "warehouse.duckdb"

    @property
    def engine(self) -> Engine:
        """The warehouse's engine: DuckDB (`warehouse`) or PostgreSQL (`TRUEUP_WAREHOUSE` URL)."""
        from ingestion.engine import engine

        return engine(self)

    @property
    def published(self) -> Path:
        """The read-only copy BI tools and the report read, replaced atomically after a run."""
        return self.home / "published" / "warehouse.duckdb"

    @property
    def dlt_dir(self) -> Path:
        return self.home / "dlt"

    @property
    def sandbox_dir(self) -> Path:
        return self.home / "sandbox"


def paths() -> Paths:
    """Resolve paths now (never at import): `TRUEUP_HOME`, default `./.trueup`."""
    return Paths(home=Path(os.environ.get("TRUEUP_HOME", ".trueup")).resolve())


def table_counts(database: Target, schema: str) -> dict[str, int]:
    """Row count per table of one schema; empty when the warehouse or schema does not exist yet.
    `database`: a DuckDB file, Paths or an Engine (`ingestion.sqlconn`)."""
    from ingestion import sqlconn

    if not sqlconn.exists(database):
        return {}
    with sqlconn.connect(database, read_only=True) as con:
        return {
            table: int(con.scalar(f'select count(*) from "{schema}"."{table}"') or 0)
            for table in sorted(con.tables(schema))
        }


def drop_repeated_rows(database: Target, schema: str) -> dict[str, int]:
    """Delete every second copy of a row (same `_dlt_id`) in one schema's tables; rows removed
    per table.

    dlt gives each row it normalizes its own `_dlt_id`, so two rows sharing one are two copies
    of one record. A load killed after a staging copy committed, but before dlt recorded it,
    copies that file again when resumed, and the merge of a table with nested tables inserts
    both copies (dlt-hub/dlt#3023; dlt deduplicates nested rows, not root rows, on that path).
    """
    from ingestion import sqlconn

    removed: dict[str, int] = {}
    with sqlconn.connect(database) as con:
        address = con.row_address
        columns = con.columns(schema)
        for table in sorted(t for t in con.tables(schema) if "_dlt_id" in columns.get(t, ())):
            name = f'"{schema}"."{table}"'
            count = con.modified(
                f"delete from {name} where {address} in (select address from (select {address} as "
                f"address, row_number() over (partition by _dlt_id order by {address}) as copy "
                f"from {name}) as numbered where copy > 1)"
            )
            if count:
                removed[table] = count
    return removed


def record_outcomes(database: Target, schema: str, rows: list[dict[str, Any]]) -> None:
    """Replace one schema's `_resource_status` table with the resources the last run could not
    read in full (status skipped or failed, the reason, the scope to grant)."""
    from ingestion import sqlconn
    from ingestion.tables import SKIPPED_TABLE

    with sqlconn.connect(database) as con:
        con.execute(f'create schema if not exists "{schema}"')
        con.execute(
            f'create table if not exists "{schema}"."{SKIPPED_TABLE}" (resource varchar, status varchar, '
            "reason varchar, scope varchar, noted_at timestamp with time zone)"
        )
        con.execute(f'delete from "{schema}"."{SKIPPED_TABLE}"')
        con.executemany(
            f'insert into "{schema}"."{SKIPPED_TABLE}" values (?, ?, ?, ?, now())',
            [(row["resource"], row["status"], row["reason"], row.get("scope")) for row in rows],
        )


def compare_counts(database: Target, schema: str, totals: dict[str, int]) -> list[dict[str, Any]]:
    """The source's own count of each resource (keyed on `id`) against raw's rows and the
    records held back in quarantine; the comparison replaces `_source_counts` (one row per
    resource, the last run's)."""
    from ingestion import sqlconn
    from ingestion.tables import COUNTS_TABLE

    rows = []
    with sqlconn.connect(database) as con:
        present = con.tables(schema, views=True)
        for resource, total in sorted(totals.items()):
            raw, held = 0, 0
            if resource in present:
                raw = int(con.scalar(f'select count(*) from "{schema}"."{resource}"') or 0)
            if resource in present and "_quarantine" in present:
                # records held back by their contract (open or accepted), not in raw
                held = int(
                    con.scalar(
                        f'select count(distinct record_key) from "{schema}"."_quarantine" where resource = ? '
                        f'and record_key not in (select id from "{schema}"."{resource}")',
                        [resource],
                    )
                    or 0
                )
            rows.append({"resource": resource, "at_source": total, "in_raw": raw, "quarantined": held})
        con.execute(
            f'create table if not exists "{schema}"."{COUNTS_TABLE}" (resource varchar, at_source bigint, '
            "in_raw bigint, quarantined bigint, counted_at timestamp with time zone)"
        )
        con.execute(f'delete from "{schema}"."{COUNTS_TABLE}"')
        con.executemany(
            f'insert into "{schema}"."{COUNTS_TABLE}" values (?, ?, ?, ?, now())',
            [(row["resource"], row["at_source"], row["in_raw"], row["quarantined"]) for row in rows],
        )
    return rows
