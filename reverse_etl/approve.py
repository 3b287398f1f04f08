"""Approvals of fields under a `review` policy: by finding, by rule, or every review item of a plan."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from ingestion.warehouse import Paths, paths
from reverse_etl import ledger


def approve(
    findings: Sequence[str] = (),
    rules: Sequence[str] = (),
    plan: str | None = None,
    by: str = "",
    where: Paths | None = None,
    lock: bool = True,
) -> dict[str, int]:
    """Record approvals in `reverse_etl.approvals`; the next push writes what they cover. A
    plan approves the findings it held for review (`latest`: the newest plan with any)."""
    import duckdb

    from orchestration.resources import writer_lock

    where = where or paths()
    warehouse = where.engine.duckdb_file("reverse ETL")  # approvals live beside the plans
    with writer_lock(where) if lock else nullcontext(), duckdb.connect(str(warehouse)) as con:
        ledger.ensure_tables(con)
        counts = {
            "finding": ledger.approve(con, "finding", findings, by),
            "rule": ledger.approve(con, "rule", rules, by),
        }
        if plan:
            held = review_findings(con, plan)
            counts["plan"] = ledger.approve(con, "finding", held, by or f"plan {plan}")
    return counts


def review_findings(con: Any, plan: str) -> list[str]:
    """The finding ids a plan held for review (`latest`: the newest plan holding any)."""
    if plan == "latest":
        row = con.execute(
            "select plan_id from reverse_etl.plan_items join reverse_etl.plans using (plan_id) "
            "where action = 'review' order by planned_at desc limit 1"
        ).fetchone()
        if row is None:
            return []
        plan = row[0]
    rows = con.execute(
        "select distinct finding_id from reverse_etl.plan_items where plan_id = ? and action = 'review'",
        [plan],
    ).fetchall()
    if not rows:
        raise ValueError(f"plan {plan!r} holds nothing for review")
    return [r[0] for r in rows]
