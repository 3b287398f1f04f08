"""`trueup reverse-etl`: plan-only until the config turns pushing on, --dry-run, approvals."""

from __future__ import annotations

import json

import pytest

from orchestration.cli import main
from orchestration.sandbox_runtime import source_env
from tests.reverse_etl.conftest import Stage


def test_a_configured_target_starts_plan_only_and_the_config_turns_pushing_on(
    stage: Stage, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRUEUP_HOME", str(stage.warehouse.home))
    for name, value in source_env(stage.sandbox.base_urls).items():
        monkeypatch.setenv(name, value)
    assert main(["reverse-etl", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert {o["mode"] for o in planned} == {"plan_only"} and stage.writes() == []
    assert main(["reverse-etl", "--target", "billing", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "billing (plan " in out.out and "dry run: nothing written" in out.out and "write" in out.out
    assert "customers.email" in out.out  # counts per field
    assert "reading live values" in out.err  # progress
    assert stage.writes() == []
    monkeypatch.setenv("REVERSE_ETL__BILLING__PUSH", "true")
    assert main(["reverse-etl", "--target", "billing"]) == 0
    assert "pushed" in capsys.readouterr().out
    assert {w["system"] for w in stage.writes()} == {"billing"}


def test_approve_by_finding_rule_and_plan(
    stage: Stage, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRUEUP_HOME", str(stage.warehouse.home))
    stage.execute("update seeds.ownership set conflict_policy = 'review' where entity = 'contact'")
    assert main(["reverse-etl", "--sandbox", stage.sandbox.url, "--target", "billing"]) == 0
    held = stage.query(
        "select distinct finding_id, record_id from reverse_etl.plan_items where action = 'review'"
    )
    assert held and stage.writes() == []
    assert main(["reverse-etl", "approve", "--finding", held[0]["finding_id"], "--by", "ops"]) == 0
    assert main(["reverse-etl", "approve", "--rule", "phone_mismatch"]) == 0
    assert main(["reverse-etl", "approve", "--plan", "latest"]) == 0
    capsys.readouterr()
    scopes = stage.query("select scope, count(*) as n from reverse_etl.approvals group by 1")
    assert {r["scope"] for r in scopes} == {"finding", "rule"}
    assert main(["reverse-etl", "--sandbox", stage.sandbox.url, "--target", "billing"]) == 0
    assert (
        len({w["record_id"] for w in stage.writes()}) == len({r["finding_id"] for r in held})
        or stage.writes()
    )
    assert main(["reverse-etl", "approve"]) == 2
