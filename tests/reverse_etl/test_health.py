"""Each reverse-ETL target as an integration path: its checks pass while it never pushed, fail
on dead letters and an unfinished push, and name their runbook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingestion.warehouse import Paths
from orchestration import health
from reverse_etl.ledger import append, ensure_tables

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def where(tmp_path, monkeypatch) -> Paths:
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    return Paths(home=tmp_path)


def published(where: Paths, plans: list[dict], ledger: list[dict] = (), dead: list[dict] = ()) -> None:
    where.published.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(where.published)) as con:
        ensure_tables(con)
        append(con, "plans", plans)
        append(con, "ledger", list(ledger))
        append(con, "dead_letters", list(dead))


def verdicts(where: Paths, target: str) -> dict[str, health.Verdict]:
    [(path, measured)] = [(p, m) for p, m in health.evaluate(where, NOW) if p.name == f"reverse_etl_{target}"]
    return {v.metric: v for v in health.judge(path, measured, NOW)}


def plan(plan_id: str, status: str, to_write: int, mode: str = "push", hours_ago: float = 2) -> dict:
    end = NOW - timedelta(hours=hours_ago)
    return {
        "plan_id": plan_id,
        "target_system": "crm",
        "mode": mode,
        "status": status,
        "records_to_write": to_write,
        "planned_at": end - timedelta(minutes=5),
        "finished_at": end,
    }


def applied(plan_id: str, record: str) -> dict:
    return {
        "plan_id": plan_id,
        "target_system": "crm",
        "object_type": "contacts",
        "record_id": record,
        "status": "applied",
        "attempt_id": f"a-{record}",
    }


def test_a_target_that_never_pushed_is_not_in_use(where):
    assert all(v.message == "not in use here" for v in verdicts(where, "crm").values())
    published(where, [plan("p0", "planned", 5, mode="plan_only")])
    assert all(v.passed and v.message == "not in use here" for v in verdicts(where, "crm").values())


def test_a_clean_push_passes(where):
    published(where, [plan("p1", "pushed", 2)], [applied("p1", "1"), applied("p1", "2")])
    found = verdicts(where, "crm")
    assert all(v.passed for v in found.values()), found


def test_dead_letters_and_an_unfinished_push_fail_and_name_the_runbook(where):
    dead = {"plan_id": "p2", "target_system": "crm", "object_type": "contacts", "record_id": "3"}
    published(where, [plan("p2", "pushed", 4)], [applied("p2", "1")], [dead])
    found = verdicts(where, "crm")
    assert not found["rejected"].passed and found["rejected"].observed == 1
    assert not found["backlog"].passed and "2 writes" in found["backlog"].message
    assert found["backlog"].runbook == "docs/runbooks/reverse-etl.md#backlog"
    assert (ROOT / "docs/runbooks/reverse-etl.md").exists()


def test_aborted_plans_raise_the_failure_rate_and_a_stale_target_fails(where):
    published(
        where,
        [
            plan("p3", "pushed", 0, hours_ago=60),
            plan("p4", "aborted", 900, hours_ago=30),
            plan("p5", "aborted", 900, hours_ago=6),
        ],
    )
    found = verdicts(where, "crm")
    assert not found["failure_rate"].passed and "2 of the last 3" in found["failure_rate"].message
    assert not found["last_success"].passed
