"""Where trueup keeps its state: the warehouse file, its published copy, dlt's working dirs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ingestion.engine import Engine


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


def table_counts(database: Path, schema: str) -> dict[str, int]:
    """Row count per table of one schema; empty when the file or schema does not exist yet."""
    if not database.exists():
        return {}
    import duckdb  # here, not at import: the Dagster code location imports Paths

    with duckdb.connect(str(database), read_only=True) as con:
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_type = 'BASE TABLE'",
                [schema],
            ).fetchall()
        ]
        counts = {}
        for table in tables:
            row = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts


def drop_repeated_rows(database: Path, schema: str) -> dict[str, int]:
    """Delete every second copy of a row (same `_dlt_id`) in one schema's tables; rows removed
    per table.

    dlt gives each row it normalizes its own `_dlt_id`, so two rows sharing one are two copies
    of one record. A load killed after a staging copy committed, but before dlt recorded it,
    copies that file again when resumed, and the merge of a table with nested tables inserts
    both copies (dlt-hub/dlt#3023; dlt deduplicates nested rows, not root rows, on that path).
    """
    import duckdb

    removed: dict[str, int] = {}
    with duckdb.connect(str(database)) as con:
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.columns "
                "where table_schema = ? and column_name = '_dlt_id'",
                [schema],
            ).fetchall()
        ]
        for table in tables:
            name = f'"{schema}"."{table}"'
            row = con.execute(
                f"delete from {name} where rowid in (select rowid from (select rowid, "
                f"row_number() over (partition by _dlt_id order by rowid) as copy from {name}) "
                "where copy > 1)"
            ).fetchall()[0]
            if row and row[0]:
                removed[table] = int(row[0])
    return removed


def record_outcomes(database: Path, schema: str, rows: list[dict[str, Any]]) -> None:
    """Replace one schema's `_resource_status` table with the resources the last run could not
    read in full (status skipped or failed, the reason, the scope to grant)."""
    import duckdb

    from ingestion.tables import SKIPPED_TABLE

    with duckdb.connect(str(database)) as con:
        con.execute(f'create schema if not exists "{schema}"')
        con.execute(
            f'create table if not exists "{schema}"."{SKIPPED_TABLE}" (resource varchar, status varchar, '
            "reason varchar, scope varchar, noted_at timestamp with time zone)"
        )
        con.execute(f'delete from "{schema}"."{SKIPPED_TABLE}"')
        for row in rows:
            con.execute(
                f'insert into "{schema}"."{SKIPPED_TABLE}" values (?, ?, ?, ?, now())',
                [row["resource"], row["status"], row["reason"], row.get("scope")],
            )


def compare_counts(database: Path, schema: str, totals: dict[str, int]) -> list[dict[str, Any]]:
    """The source's own count of each resource (keyed on `id`) against raw's rows and the
    records held back in quarantine; the comparison replaces `_source_counts` (one row per
    resource, the last run's)."""
    import duckdb

    from ingestion.tables import COUNTS_TABLE

    rows = []
    with duckdb.connect(str(database)) as con:
        present = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [schema]
            ).fetchall()
        }
        for resource, total in sorted(totals.items()):
            raw, held = 0, 0
            if resource in present:
                found = con.execute(f'select count(*) from "{schema}"."{resource}"').fetchall()[0]
                raw = int(found[0]) if found else 0
            if resource in present and "_quarantine" in present:
                # records held back by their contract (open or accepted), not in raw
                found = con.execute(
                    f'select count(distinct record_key) from "{schema}"."_quarantine" where resource = ? '
                    f'and record_key not in (select id from "{schema}"."{resource}")',
                    [resource],
                ).fetchall()[0]
                held = int(found[0]) if found else 0
            rows.append(
                {
                    "resource": resource,
                    "at_source": total,
                    "in_raw": raw,
                    "quarantined": held,
                }
            )
        con.execute(
            f'create table if not exists "{schema}"."{COUNTS_TABLE}" (resource varchar, at_source bigint, '
            "in_raw bigint, quarantined bigint, counted_at timestamp with time zone)"
        )
        con.execute(f'delete from "{schema}"."{COUNTS_TABLE}"')
        for row in rows:
            con.execute(
                f'insert into "{schema}"."{COUNTS_TABLE}" values (?, ?, ?, ?, now())',
                [row["resource"], row["at_source"], row["in_raw"], row["quarantined"]],
            )
    return rows
