"""Integration-path health: each check fails on broken input and names its runbook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from ingestion.pipeline import SystemResult
from ingestion.warehouse import Paths
from orchestration import health
from orchestration.definitions import defs

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def where(tmp_path, monkeypatch) -> Paths:
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    for name in ("TRUEUP_HEALTH_FAILURE_RATE", "TRUEUP_HEALTH_LATENCY", "TRUEUP_HEALTH_BACKLOG"):
        monkeypatch.delenv(name, raising=False)
    return Paths(home=tmp_path)


def attempt(where: Paths, system: str, at: datetime, ok: bool = True, seconds: float = 30, rejected: int = 0):
    result = SystemResult(system=system, seconds=seconds, quarantined=rejected)
    failures = {} if ok else {system: "ApiError: crm: GET /crm/v3/objects/contacts failed (503)"}
    health.record_ingest([system], at - timedelta(seconds=seconds), [result] if ok else [], failures, where)
    # record_ingest stamps the finish with the clock; move it to `at` for a deterministic age
    log = health.ingest_log(where)
    lines = log.read_text().splitlines()
    lines[-1] = lines[-1].replace(lines[-1].split('"finished_at": "')[1].split('"')[0], at.isoformat())
    log.write_text("\n".join(lines) + "\n")


def verdicts(where: Paths, system: str) -> dict[str, health.Verdict]:
    [(path, measured)] = [(p, m) for p, m in health.evaluate(where, NOW) if p.name == system]
    return {v.metric: v for v in health.judge(path, measured, NOW)}


def test_a_healthy_source_passes_every_check(where):
    attempt(where, "crm", NOW - timedelta(minutes=30))
    assert all(v.passed for v in verdicts(where, "crm").values())


def test_a_stale_source_fails_last_success(where):
    attempt(where, "crm", NOW - timedelta(hours=5))  # the CRM's limit is 3 h
    found = verdicts(where, "crm")["last_success"]
    assert not found.passed and found.runbook == "docs/runbooks/source-ingest.md#last-success"
    assert "5.0 h ago" in found.message


def test_a_source_never_loaded_fails_last_success(where):
    assert not verdicts(where, "billing")["last_success"].passed


def test_a_failure_rate_over_its_threshold_fails_and_names_the_error(where):
    for minutes in (50, 40, 30):
        attempt(where, "billing", NOW - timedelta(minutes=minutes), ok=minutes != 30)
    attempt(where, "billing", NOW - timedelta(minutes=20), ok=False)
    found = verdicts(where, "billing")["failure_rate"]
    assert not found.passed and found.observed == 0.5
    assert "2 of the last 4 attempts failed" in found.message and "503" in found.message


def test_thresholds_come_from_settings(where, monkeypatch):
    attempt(where, "ads", NOW - timedelta(minutes=5), seconds=900)
    assert verdicts(where, "ads")["latency"].passed
    monkeypatch.setenv("TRUEUP_HEALTH_LATENCY_ADS", "600")
    assert not verdicts(where, "ads")["latency"].passed


def test_a_backlog_and_rejected_records_fail(where):
    attempt(where, "scheduling", NOW - timedelta(minutes=5), rejected=3)
    (where.dlt_dir / "trueup_scheduling" / "load" / "normalized" / "1700000000.1").mkdir(parents=True)
    found = verdicts(where, "scheduling")
    assert not found["rejected"].passed and found["rejected"].observed == 3
    assert not found["backlog"].passed and "load packages" in found["backlog"].message


def test_every_runbook_exists_with_a_section_per_check():
    for path in health.registered_paths():
        text = (ROOT / path.runbook).read_text()
        for metric, anchor in health.ANCHORS.items():
            assert f"## {anchor.replace('-', ' ').capitalize()}" in text or f'id="{anchor}"' in text, (
                path.runbook,
                metric,
            )


def test_the_path_health_job_reports_failing_checks_with_their_runbook(where):
    attempt(where, "crm", datetime.now(UTC) - timedelta(hours=10))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("path_health").execute_in_process(instance=instance)
    evaluations = {(e.asset_key.path[0], e.check_name): e for e in result.get_asset_check_evaluations()}
    stale = evaluations[("raw_crm", "crm_last_success")]
    assert not stale.passed
    assert "docs/runbooks/source-ingest.md#last-success" in (stale.description or "")
    assert evaluations[("raw_crm", "crm_latency")].passed
    spec = defs.resolve_asset_graph().get_check_spec(stale.asset_check_key)
    assert "Runbook: docs/runbooks/source-ingest.md#last-success" in (spec.description or "")


# -- the webhook intake ---------------------------------------------------------------------------


def inbox_events(where: Paths, rows: list[tuple[int, int | None]]) -> None:
    """Events received at `received_us`, synced at `synced_us` (None: still waiting)."""
    from ingestion.webhooks.inbox import Inbox
    from ingestion.webhooks.settings import inbox_path

    with Inbox(inbox_path(where)).connection() as con:
        for n, (received, synced) in enumerate(rows):
            con.execute(
                "insert into events values ('stripe', ?, ?, 'customer.updated', 'billing', 'customer', "
                "?, '*', ?, ?, 1, x'7b7d', ?, ?)",
                [f"k{n}", f"evt_{n}", f"cus_{n}", received, received, synced, synced],
            )


def webhook_verdicts(where: Paths) -> dict[str, health.Verdict]:
    [(path, measured)] = [(p, m) for p, m in health.evaluate(where, NOW) if p.name == "webhooks"]
    return {v.metric: v for v in health.judge(path, measured, NOW)}


def test_the_webhook_intake_is_not_in_use_without_an_inbox(where):
    found = webhook_verdicts(where)
    assert all(v.passed and v.message == "not in use here" for v in found.values())


def test_a_webhook_backlog_and_a_stale_intake_fail_and_name_their_runbook(where, monkeypatch):
    monkeypatch.setenv("TRUEUP_HEALTH_BACKLOG_WEBHOOKS", "2")
    long_ago = int((NOW - timedelta(hours=72)).timestamp() * 1e6)
    inbox_events(where, [(long_ago, long_ago + 1_000_000), *[(long_ago + n, None) for n in range(1, 4)]])
    found = webhook_verdicts(where)
    assert not found["backlog"].passed and "3 events" in found["backlog"].message
    assert found["backlog"].runbook == "docs/runbooks/webhook-intake.md#backlog"
    assert not found["last_success"].passed and "72.0 h ago" in found["last_success"].message
    assert (ROOT / "docs/runbooks/webhook-intake.md").exists()


def test_a_fresh_webhook_intake_passes(where):
    recent = int((NOW - timedelta(minutes=5)).timestamp() * 1e6)
    inbox_events(where, [(recent, recent + 2_000_000)])
    assert all(v.passed for v in webhook_verdicts(where).values())
