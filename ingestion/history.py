"""The quarantine history survives a full refresh: dlt drops every table of a source it
reloads from scratch, `_quarantine` with the rest. The runner keeps those rows across the
load and puts back the ones the reload did not write again; a record quarantined before and
loaded now counts as resolved."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ingestion import declared
from ingestion.tables import FLAGGED_TABLE, QUARANTINE_TABLE, RESOLVED_TABLE, dataset_name

if TYPE_CHECKING:  # pragma: no cover
    from ingestion.sqlconn import Connection, Target

log = logging.getLogger(__name__)

KEPT = ((QUARANTINE_TABLE, "quarantine_id"), (RESOLVED_TABLE, "resolution_id"), (FLAGGED_TABLE, "flag_id"))


@contextmanager
def kept(database: Target, system: str, full_refresh: bool) -> Iterator[None]:
    """Around a load: with `full_refresh`, keep the system's quarantine, resolution and flag
    rows and restore them afterwards (the block may drop their tables). `database`: a DuckDB
    file, Paths or an Engine (`ingestion.sqlconn`)."""
    from ingestion import sqlconn

    if not full_refresh or not sqlconn.exists(database):
        yield
        return
    saved = _snapshot(database, system)
    yield
    if saved:
        restored = _restore(database, system, saved)
        if restored:
            log.info("%s: kept %d quarantine history rows across the full refresh", system, restored)


# table -> (its column names, its rows)
Saved = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def _snapshot(database: Target, system: str) -> Saved:
    from ingestion import sqlconn

    schema = dataset_name(system)
    saved: Saved = {}
    with sqlconn.connect(database, read_only=True) as con:
        present = con.tables(schema, views=True)
        for table, _ in KEPT:
            if table in present:
                cursor = con.execute(f'select * from "{schema}"."{table}"')
                names = [d[0] for d in cursor.description]
                saved[table] = (names, [tuple(row) for row in cursor.fetchall()])
    return saved


def _restore(database: Target, system: str, saved: Saved) -> int:
    """Put back the kept rows whose key the reload did not write again (by column name: the
    reload may have added columns or left some out)."""
    from ingestion import sqlconn

    declared.ensure(database, system)
    schema = dataset_name(system)
    restored = 0
    with sqlconn.connect(database) as con:
        columns = con.columns(schema)
        for table, key in KEPT:
            names, rows = saved.get(table, ([], []))
            if not rows:
                continue
            target = f'"{schema}"."{table}"'
            written = {r[0] for r in con.fetchall(f"select {key} from {target}")}
            keep = [i for i, name in enumerate(names) if name in columns.get(table, set())]
            back = [tuple(row[i] for i in keep) for row in rows if row[names.index(key)] not in written]
            listed = ", ".join(f'"{names[i]}"' for i in keep)
            con.executemany(f"insert into {target} ({listed}) values ({', '.join('?' for _ in keep)})", back)
            restored += len(back)
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


def _resolve_reloaded(con: Connection, system: str) -> None:
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
                f'insert into "{schema}"."{RESOLVED_TABLE}" (resolution_id, system, resource, record_key, '
                "resolution, resolved_at, _dlt_load_id, _dlt_id) values (?, ?, ?, ?, 'passed', now(), "
                "'history', ?)",
                [resolution_id, system, resource, key, resolution_id[:14]],
            )
