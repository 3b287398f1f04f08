"""What the last runs could not read, and whether raw holds everything the sources hold: the
resources skipped or failed (`_resource_status`), the sources' own counts against raw
(`_source_counts`), and the latest completeness audit (`audit.completeness`).

`collect` reads them from a warehouse connection; the publish step stores them in the published
copy (`dumps`), where the report reads them back (`read_published`): the copy leaves the raw
schemas behind. `markdown` and `text` render the report's section.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingestion.tables import COUNTS_TABLE, FLAGGED_TABLE, SKIPPED_TABLE, SYSTEMS, dataset_name

AUDIT = "audit.completeness"


@dataclass
class IngestHealth:
    unread: list[tuple[str, str, str, str, str]] = field(
        default_factory=list
    )  # system, resource, status, reason, scope
    counts: list[tuple[str, str, int, int, int]] = field(
        default_factory=list
    )  # system, resource, source, raw, quarantined
    audit: list[dict[str, Any]] = field(default_factory=list)  # the latest audit, one row per resource
    flagged: list[tuple[str, str, str, int]] = field(default_factory=list)  # system, resource, flag, records

    @property
    def unaccounted(self) -> int:
        return sum(max(0, source - raw - held) for _, _, source, raw, held in self.counts)

    @property
    def audit_remaining(self) -> int:
        return sum(int(row["remaining"] or 0) for row in self.audit)


def collect(con: Any, tables: Collection[str]) -> IngestHealth:
    """The figures from an open connection (DuckDB, psycopg2 or `sqlconn.Connection`; the SQL
    reads alike on both engines); `tables` holds the `schema.table` names present."""
    from ingestion.sqlconn import wrap

    db = wrap(con)
    health = IngestHealth()
    for system in SYSTEMS:
        schema = dataset_name(system)
        if f"{schema}.{SKIPPED_TABLE}" in tables:
            for resource, status, reason, scope in db.fetchall(
                f'select resource, status, reason, scope from "{schema}"."{SKIPPED_TABLE}" order by 1'
            ):
                health.unread.append((system, str(resource), str(status), str(reason), str(scope or "")))
        if f"{schema}.{FLAGGED_TABLE}" in tables:
            for resource, flag, records in db.fetchall(
                f'select resource, flag, count(*) from "{schema}"."{FLAGGED_TABLE}" '
                "group by 1, 2 order by 1, 2"
            ):
                health.flagged.append((system, str(resource), str(flag), int(records)))
        if f"{schema}.{COUNTS_TABLE}" in tables:
            for resource, source, raw, held in db.fetchall(
                f'select resource, at_source, in_raw, quarantined from "{schema}"."{COUNTS_TABLE}" order by 1'
            ):
                health.counts.append((system, str(resource), int(source), int(raw), int(held)))
    if AUDIT in tables:
        cursor = db.execute(
            "select * from (select a.*, row_number() over (partition by system, resource "
            f"order by audited_at desc) as newest from {AUDIT} a where audited_at >= "
            f"(select max(audited_at) from {AUDIT}) - interval '1 day') as recent "
            "where newest = 1 order by system, resource"
        )
        names = [d[0] for d in cursor.description]
        health.audit = [
            {k: v for k, v in zip(names, row, strict=True) if k != "newest"} for row in cursor.fetchall()
        ]
    return health


def dumps(health: IngestHealth) -> str:
    """The figures as JSON (timestamps as ISO text), for the published copy."""
    return json.dumps(
        {"unread": health.unread, "counts": health.counts, "audit": health.audit, "flagged": health.flagged},
        default=str,
    )


def read_published(con: Any, tables: Collection[str], schema: str) -> IngestHealth | None:
    """The figures the publish step stored in `schema.completeness` (None before any was)."""
    if f"{schema}.completeness" not in tables:
        return None
    rows = con.execute(f"select health from {schema}.completeness").fetchall()
    if not rows:
        return None
    data = json.loads(rows[0][0])
    return IngestHealth(
        unread=[tuple(r) for r in data["unread"]],
        counts=[tuple(r) for r in data["counts"]],
        audit=list(data["audit"]),
        flagged=[tuple(r) for r in data["flagged"]],
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(health: IngestHealth) -> str:
    """The report's "Completeness" section."""
    parts = ["## Completeness"]
    if health.unread:
        parts.append("Resources the last run could not read in full (the rest loaded):")
        parts.append(_table(("system", "resource", "status", "reason", "scope to grant"), health.unread))
    if health.flagged:
        parts.append(
            "Records loaded with a warning (stamped past the source's clock: fetched again until plausible):"
        )
        parts.append(_table(("system", "resource", "flag", "records"), health.flagged))
    gaps = [(s, r, n, raw, q, max(0, n - raw - q)) for s, r, n, raw, q in health.counts]
    if gaps:
        parts.append(f"The sources' own counts against raw: {health.unaccounted:,} records unaccounted.")
        parts.append(
            _table(("system", "resource", "at source", "in raw", "quarantined", "unaccounted"), gaps)
        )
    if health.audit:
        when = max(row["audited_at"] for row in health.audit)
        parts.append(
            f"Latest audit ({str(when)[:16]}): {sum(r['missing'] for r in health.audit):,} missing, "
            f"{sum(r['stale'] for r in health.audit):,} stale, {sum(r['refetched'] for r in health.audit):,} "
            f"fetched again, {health.audit_remaining:,} still missing."
        )
        rows = [
            (
                r["system"],
                r["resource"],
                r["at_source"],
                r["in_raw"],
                r["missing"],
                r["stale"],
                r["refetched"],
                r["remaining"],
            )
            for r in health.audit
        ]
        parts.append(
            _table(("system", "resource", "at source", "in raw", "missing", "stale", "fetched", "left"), rows)
        )
    else:
        parts.append("No completeness audit yet (`trueup audit`, or the weekly `audit` job).")
    return "\n\n".join(parts)


def text(health: IngestHealth) -> str:
    """The same section for a terminal."""
    lines = ["Completeness", "============"]
    for system, resource, status, reason, scope in health.unread:
        grant = f" (grant {scope})" if scope else ""
        lines.append(f"{system}.{resource} {status}: {reason}{grant}")
    for system, resource, flag, records in health.flagged:
        lines.append(f"{system}.{resource}: {records:,} flagged {flag}")
    short = [c for c in health.counts if c[2] > c[3] + c[4]]  # the sources count more than raw holds
    for system, resource, source, raw, held in short:
        lines.append(f"{system}.{resource}: source {source:,}, raw {raw:,}, quarantined {held:,}")
    if health.counts and not short:
        lines.append(f"the sources' own counts are all in raw ({len(health.counts)} resources)")
    if health.audit:
        lines.append(
            f"latest audit: {sum(r['missing'] for r in health.audit):,} missing, "
            f"{sum(r['refetched'] for r in health.audit):,} fetched again, "
            f"{health.audit_remaining:,} still missing"
        )
    else:
        lines.append("no completeness audit yet (trueup audit)")
    return "\n".join(lines)
