"""The run-failure sensor: an alert row in the ops store, a webhook POST, no secret leaked."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from ingestion.warehouse import Paths
from orchestration import alerts

SECRET = "T000-hooks-s3cr3t"


class Webhook:
    """A loopback webhook that records what it receives and answers with `status`."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict] = []
        self.status = status
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{SECRET}"

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Paths:
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))
    monkeypatch.delenv("TRUEUP_ALERT_WEBHOOK_URL", raising=False)
    return Paths(home=tmp_path)


@pytest.fixture
def failure_context() -> Iterator[dg.RunFailureSensorContext]:
    @dg.asset
    def flaky() -> None:
        raise ValueError("the source answered 503 three times")

    job = dg.define_asset_job("nightly", selection=[flaky])
    definitions = dg.Definitions(assets=[flaky], jobs=[job])
    with dg.instance_for_test() as instance:
        result = definitions.resolve_job_def("nightly").execute_in_process(
            instance=instance, raise_on_error=False
        )
        context = dg.build_run_status_sensor_context(
            sensor_name=alerts.SENSOR_NAME,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()
        yield context


def test_a_failed_run_becomes_an_alert_row_and_a_webhook_post(home, failure_context, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with Webhook() as hook:
        monkeypatch.setenv("TRUEUP_ALERT_WEBHOOK_URL", hook.url)
        alerts.run_failure_alert(failure_context)
    [row] = alerts.read_alerts(home)
    assert row["job"] == "nightly"
    assert row["run_id"] == failure_context.dagster_run.run_id
    assert row["failed_steps"] == ["flaky"]
    assert "ValueError: the source answered 503 three times" in row["message"]
    assert row["delivery"] == "posted (HTTP 200)"
    [posted] = hook.received
    assert "nightly" in posted["text"] and "503" in posted["text"]
    assert posted["alert"]["run_id"] == row["run_id"]
    assert SECRET not in alerts.alerts_file(home).read_text()
    assert SECRET not in caplog.text


def test_without_a_webhook_the_row_is_still_written(home, failure_context):
    alerts.run_failure_alert(failure_context)
    [row] = alerts.read_alerts(home)
    assert row["delivery"] == "no webhook configured"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("answer", [500, None])
def test_a_failing_webhook_is_recorded_without_its_url(home, answer, caplog):
    caplog.set_level(logging.DEBUG)
    alert = alerts.Alert(job="sync", run_id="0123456789", message="boom")
    if answer is None:
        url = f"http://127.0.0.1:{free_port()}/services/{SECRET}"
        outcome = alerts.deliver(alert, home, url)
        assert outcome.startswith("failed: ") and "Error" in outcome
    else:
        with Webhook(status=answer) as hook:
            outcome = alerts.deliver(alert, home, hook.url)
        assert outcome == "failed: HTTP 500"
    assert SECRET not in outcome and SECRET not in caplog.text
    assert alerts.read_alerts(home)[0]["delivery"] == outcome


def test_the_webhook_url_may_come_from_dlt_secrets(home, tmp_path):
    dlt_dir = tmp_path / ".dlt"
    dlt_dir.mkdir()
    (dlt_dir / "secrets.toml").write_text(
        f'[orchestration]\nalert_webhook_url = "https://hooks.example/{SECRET}"\n'
    )
    assert alerts.webhook_url() == f"https://hooks.example/{SECRET}"


def test_a_line_cut_short_by_a_crash_is_skipped(home):
    alerts.append_row({"alert_id": "a", "job": "nightly", "run_id": "r", "raised_at": "t"}, home)
    with open(alerts.alerts_file(home), "a") as handle:
        handle.write('{"alert_id": "b", "jo')
    assert [a["alert_id"] for a in alerts.read_alerts(home)] == ["a"]
