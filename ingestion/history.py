"""The quarantine history survives a full refresh: dlt drops every table of a source it
reloads from scratch, `_quarantine` with the rest. The runner keeps those rows across the
load and puts back the ones the reload did not write again; a record quarantined before and
loaded now counts as resolved."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ingestion import declared
from ingestion.tables import FLAGGED_TABLE, QUARANTINE_TABLE, RESOLVED_TABLE, dataset_name

log = logging.getLogger(__name__)

KEPT = ((QUARANTINE_TABLE, "quarantine_id"), (RESOLVED_TABLE, "resolution_id"), (FLAGGED_TABLE, "flag_id"))


@contextmanager
def kept(database: Path, system: str, full_refresh: bool) -> Iterator[None]:
    """Around a load: with `full_refresh`, keep the system's quarantine, resolution and flag
    rows and restore them afterwards (the block may drop their tables)."""
    if not full_refresh or not database.exists():
        yield
        return
    saved = _snapshot(database, system)
    yield
    if saved:
        restored = _restore(database, system, saved)
        if restored:
            log.info("%s: kept %d quarantine history rows across the full refresh", system, restored)


def _snapshot(database: Path, system: str) -> dict[str, Any]:
    import duckdb

    schema = dataset_name(system)
    saved: dict[str, Any] = {}
    with duckdb.connect(str(database), read_only=True) as con:
        present = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [schema]
            ).fetchall()
        }
        for table, _ in KEPT:
            if table in present:
                saved[table] = con.sql(f'select * from "{schema}"."{table}"').to_arrow_table()
    return saved


def _restore(database: Path, system: str, saved: dict[str, Any]) -> int:
    import duckdb

    declared.ensure(database, system)
    schema = dataset_name(system)
    restored = 0
    with duckdb.connect(str(database)) as con:
        for table, key in KEPT:
            rows = saved.get(table)
            if rows is None or rows.num_rows == 0:
                continue
            con.register("kept_rows", rows)
            target = f'"{schema}"."{table}"'
            before = con.execute(f"select count(*) from {target}").fetchall()[0]
            con.execute(
                f"insert into {target} by name select * from kept_rows "
                f"where {key} not in (select {key} from {target})"
            )
            after = con.execute(f"select count(*) from {target}").fetchall()[0]
            restored += int(after[0] if after else 0) - int(before[0] if before else 0)
            con.unregister("kept_rows")
        _resolve_reloaded(con, system)
    return restored


# the column that holds a root resource's record key
KEY_COLUMNS = {
    "crm": {"contacts": "id", "companies": "id", "deals": "id", "meetings": "id"},
    "billing": {
        "customers": "id",
        "invoices": "id",
        "charges": "id",
        "payment_intents": "id",
        "subscriptions": "id",
    },
    "scheduling": {"scheduled_events": "uri", "invitees": "uri"},
    "ads": {},
}


def _resolve_reloaded(con: Any, system: str) -> None:
    """A quarantined record the full refresh loaded (it passes now) is resolved."""
    schema = dataset_name(system)
    for resource, column in KEY_COLUMNS[system].items():
        open_keys = con.execute(
            f'select distinct q.record_key from "{schema}"."{QUARANTINE_TABLE}" q '
            f'join "{schema}"."{resource}" t on t."{column}" = q.record_key '
            f'where q.resource = ? and not exists (select 1 from "{schema}"."{RESOLVED_TABLE}" r '
            "where r.resource = q.resource and r.record_key = q.record_key "
            "and r.resolved_at >= q.quarantined_at)",
            [resource],
        ).fetchall()
        for (key,) in open_keys:
            resolution_id = hashlib.sha1(f"{system}|{resource}|{key}".encode()).hexdigest()
            con.execute(f'delete from "{schema}"."{RESOLVED_TABLE}" where resolution_id = ?', [resolution_id])
            con.execute(
                f'insert into "{schema}"."{RESOLVED_TABLE}" by name select ? as resolution_id, ? as system, '
                "? as resource, ? as record_key, 'passed' as resolution, now() as resolved_at, "
                "'history' as _dlt_load_id, ? as _dlt_id",
                [resolution_id, system, resource, key, resolution_id[:14]],
            )
