"""Small helpers the ingestion tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from ingestion.pipeline import SystemResult
from ingestion.warehouse import Paths


def fetch(where: Paths | Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query against a warehouse (a Paths, or a TRUEUP_HOME), opened read-only."""
    warehouse = (where if isinstance(where, Paths) else Paths(where)).warehouse
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def loaded_counts(result: SystemResult) -> dict[str, int]:
    """Rows a run loaded per table, for the tables it loaded any."""
    return {t.table: t.loaded for t in result.tables if t.loaded}
