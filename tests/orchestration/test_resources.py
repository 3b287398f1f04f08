"""Settings from the environment and .dlt files; the warehouse writer lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import dagster as dg
import pytest

from ingestion.warehouse import Paths
from orchestration.resources import (
    DEFAULT_FRESHNESS_HOURS,
    WarehouseWriter,
    WriterBusy,
    ops_settings,
    setting,
    writer_lock,
)

SETTINGS = ("TIMEZONE", "NIGHTLY_CRON", "SYNC_CRON", "FRESHNESS_HOURS", "FRESHNESS_HOURS_ADS")


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch, tmp_path):
    for name in SETTINGS:
        monkeypatch.delenv(f"TRUEUP_{name}", raising=False)
        monkeypatch.delenv(f"ORCHESTRATION__{name}", raising=False)
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path / "project"))


def test_defaults():
    settings = ops_settings()
    assert (settings.timezone, settings.nightly_cron, settings.sync_cron) == ("UTC", "0 2 * * *", "0 * * * *")
    assert settings.freshness_hours == DEFAULT_FRESHNESS_HOURS


def test_environment_then_dlt_style_variables_then_dlt_files(monkeypatch, tmp_path):
    config = tmp_path / "project" / ".dlt"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        '[orchestration]\ntimezone = "Asia/Tokyo"\nsync_cron = "15 * * * *"\n'
    )
    assert ops_settings().timezone == "Asia/Tokyo"
    monkeypatch.setenv("ORCHESTRATION__TIMEZONE", "America/New_York")
    assert ops_settings().timezone == "America/New_York"
    monkeypatch.setenv("TRUEUP_TIMEZONE", "Europe/Berlin")
    assert ops_settings().timezone == "Europe/Berlin"
    assert ops_settings().sync_cron == "15 * * * *"


def test_secrets_toml_wins_over_config_toml(tmp_path):
    config = tmp_path / "project" / ".dlt"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[orchestration]\nalert_webhook_url = "http://config"\n')
    (config / "secrets.toml").write_text('[orchestration]\nalert_webhook_url = "http://secret"\n')
    assert setting("alert_webhook_url") == "http://secret"


def test_freshness_limits_per_source(monkeypatch):
    monkeypatch.setenv("TRUEUP_FRESHNESS_HOURS", "5")
    monkeypatch.setenv("TRUEUP_FRESHNESS_HOURS_ADS", "48")
    assert ops_settings().freshness_hours == {"crm": 5.0, "billing": 5.0, "scheduling": 5.0, "ads": 48.0}


@pytest.mark.parametrize(("name", "value"), [("TIMEZONE", "Nowhere/Land"), ("FRESHNESS_HOURS", "soon")])
def test_bad_settings_fail_with_their_name(monkeypatch, name, value):
    monkeypatch.setenv(f"TRUEUP_{name}", value)
    with pytest.raises(ValueError, match=value):
        ops_settings()


def hold_lock_in_another_process(home) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from ingestion.warehouse import Paths
        from orchestration.resources import writer_lock
        with writer_lock(Paths(home=Path({str(home)!r}))):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=60)


def test_a_second_writer_waits_then_gives_up(tmp_path):
    holder = hold_lock_in_another_process(tmp_path)
    try:
        with pytest.raises(WriterBusy), writer_lock(Paths(home=tmp_path), wait_seconds=0.5, poll=0.1):
            pass
    finally:
        release(holder)
    with writer_lock(Paths(home=tmp_path), wait_seconds=0):
        pass  # free again once the holder is gone


def test_the_writer_resource_holds_the_lock_for_the_whole_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))

    @dg.asset(required_resource_keys={"warehouse_writer"})
    def first() -> None:
        with pytest.raises(WriterBusy), writer_lock(Paths(home=tmp_path), wait_seconds=0):
            pass

    @dg.asset(deps=[first], required_resource_keys={"warehouse_writer"})
    def second() -> None:
        with pytest.raises(WriterBusy), writer_lock(Paths(home=tmp_path), wait_seconds=0):
            pass

    result = dg.materialize([first, second], resources={"warehouse_writer": WarehouseWriter(wait_seconds=0)})
    assert result.success
    with writer_lock(Paths(home=tmp_path), wait_seconds=0):
        pass
