"""Reverse ETL in the nightly report and `trueup status`: per target, what the latest plan
found, what was pushed, what waits for review, conflicts and dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.warehouse import Paths


@dataclass(frozen=True)
class TargetRow:
    target: str
    plan_id: str
    mode: str
    status: str
    message: str
    to_write: int
    pushed: int  # writes applied by the plan's push (records)
    pending_review: int
    conflicts: int
    dead_letters: int


def collect(con: Any, tables: set[str]) -> list[TargetRow] | None:
    """The latest plan of each target with its figures; None before any plan was recorded."""
    if "reverse_etl.plans" not in tables:
        return None
    rows = con.execute(
        """
        with latest as (
            select * from reverse_etl.plans
            qualify row_number() over (partition by target_system order by finished_at desc) = 1
        ),
        items as (
            select plan_id, count(*) filter (where action = 'review') as pending_review,
                count(*) filter (where action = 'conflict') as conflicts
            from reverse_etl.plan_items where plan_id in (select plan_id from latest) group by 1
        ),
        applied as (
            select plan_id, count(distinct object_type || '/' || record_id) as pushed
            from reverse_etl.ledger
            where status = 'applied' and plan_id in (select plan_id from latest) group by 1
        ),
        dead as (
            select plan_id, count(distinct object_type || '/' || record_id) as dead_letters
            from reverse_etl.dead_letters where plan_id in (select plan_id from latest) group by 1
        )
        select latest.target_system, latest.plan_id, latest.mode, latest.status,
            coalesce(latest.message, ''), latest.records_to_write, coalesce(applied.pushed, 0),
            coalesce(items.pending_review, 0), coalesce(items.conflicts, 0), coalesce(dead.dead_letters, 0)
        from latest
        left join items using (plan_id)
        left join applied using (plan_id)
        left join dead using (plan_id)
        order by 1
        """
    ).fetchall()
    return [TargetRow(r[0], r[1], r[2], r[3], r[4], *(int(v or 0) for v in r[5:])) for r in rows]


HEADER = ("target", "mode", "status", "to write", "pushed", "pending review", "conflicts", "dead letters")


def _cells(row: TargetRow) -> tuple[Any, ...]:
    return (
        row.target,
        row.mode,
        row.status,
        row.to_write,
        row.pushed,
        row.pending_review,
        row.conflicts,
        row.dead_letters,
    )


def render(rows: list[TargetRow] | None, markdown: bool) -> str:
    """The report's reverse-ETL section."""
    title = "Reverse ETL"
    if not rows:
        body = "No plan recorded yet (`trueup reverse-etl --dry-run` records one)."
        return f"## {title}\n\n{body}" if markdown else f"{title}\n{'=' * len(title)}\n{body}"
    notes = [f"- {r.target}: {r.message}" for r in rows if r.message]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(str(c) for c in _cells(r)) + " |" for r in rows]
        return f"## {title}\n\n" + "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")
    # the terminal keeps a target's message only where it says more than the table
    notes = [
        f"- {r.target}: {r.message}"
        for r in rows
        if r.message and not (r.status == "pushed" and not r.dead_letters and not r.conflicts)
    ]
    widths = [max(len(str(h)), *(len(str(_cells(r)[i])) for r in rows)) for i, h in enumerate(HEADER)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(_cells(r), widths, strict=True)) for r in rows]
    return f"{title}\n{'=' * len(title)}\n" + "\n".join(lines) + ("\n" + "\n".join(notes) if notes else "")


def status_lines(where: Paths) -> list[str]:
    """One line per target for `trueup status`, from the published copy."""
    import duckdb

    database: Path = where.published
    if not database.exists():
        return []
    with duckdb.connect(str(database), read_only=True) as con:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        rows = collect(con, tables)
    if rows is None:
        return ["Reverse ETL      no plan yet"]
    return [
        f"Reverse ETL      {r.target}: {r.mode}, {r.status}; {r.pushed:,} pushed, "
        f"{r.pending_review:,} pending review, {r.conflicts:,} conflicts, {r.dead_letters:,} dead letters"
        for r in rows
    ]
