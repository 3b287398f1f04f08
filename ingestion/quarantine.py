"""Which quarantine rows are still open: a record's quarantine ends when a resolution of its
key (it passed when fetched again, or someone accepted it), or of its parent's key, is at
least as recent as the quarantine."""

from __future__ import annotations

from collections.abc import Collection

from ingestion.tables import QUARANTINE_TABLE, RESOLVED_TABLE


def open_quarantine_sql(schema: str, present: Collection[str]) -> str:
    """A select of the open rows of one raw schema's `_quarantine` (all of it, when no
    resolution was ever recorded)."""
    table = f'"{schema}"."{QUARANTINE_TABLE}"'
    if RESOLVED_TABLE not in present:
        return f"select * from {table}"
    resolved = f'"{schema}"."{RESOLVED_TABLE}"'
    return (
        f"select q.* from {table} q where not exists (select 1 from {resolved} r "
        "where r.resolved_at >= q.quarantined_at "
        "and ((r.resource = q.resource and r.record_key = q.record_key) "
        "or (q.parent_key is not null and r.record_key = q.parent_key)))"
    )
