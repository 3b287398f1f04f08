"""`trueup ui` pieces: the instance config, child processes that stop on TERM."""

from __future__ import annotations

import signal
import subprocess

import dagster as dg

from orchestration import ui
from orchestration.cli import main


def test_the_instance_config_queues_one_writer_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["ui", "--write-instance-config"]) == 0
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        limits = coordinator.get_run_queue_config().tag_concurrency_limits  # type: ignore[attr-defined]
        assert {"key": "trueup/writer", "value": "warehouse", "limit": 1} in limits
        assert instance.get_settings("telemetry") == {"enabled": False}


def test_an_existing_instance_config_is_kept_unless_asked(tmp_path):
    target = tmp_path / "dagster.yaml"
    target.write_text("telemetry:\n  enabled: false\n")
    ui.write_instance_config(tmp_path, overwrite=False)
    assert target.read_text() == "telemetry:\n  enabled: false\n"
    ui.write_instance_config(tmp_path)
    assert target.read_text() == ui.INSTANCE_CONFIG


def test_children_stop_on_term_even_when_started_with_term_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as under a background shell
    try:
        child = subprocess.Popen(["sleep", "120"], preexec_fn=ui.default_signals)
    finally:
        signal.signal(signal.SIGTERM, previous)
    ui.stop(child, "sleep", timeout=30)
    assert child.returncode == -signal.SIGTERM


def test_the_dagster_command_serves_the_code_location_on_loopback():
    command = ui.dagster_command(3999)
    assert command[1:] == ["dev", "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", "3999"]


def test_the_ui_environment_points_the_sources_at_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    env = ui.ui_env("http://127.0.0.1:4567")
    assert env["SOURCES__CRM__BASE_URL"] == "http://127.0.0.1:4567/hubspot"
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster")
    assert env["DO_NOT_TRACK"] == "1"


def test_a_busy_port_fails_at_once_and_starts_nothing(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    started = []
    monkeypatch.setattr(ui, "start_sandbox", lambda *a, **k: started.append(a))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 1
    assert started == []  # no sandbox, no dagster dev: nothing to leave behind
