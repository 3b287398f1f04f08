"""Run-failure alerts: a row in the ops store and, when a webhook URL is configured, a POST.

The ops store is `$TRUEUP_HOME/ops/alerts.jsonl`, apart from the warehouse file (whose
one writer may be busy, or be the run that failed). The webhook URL is a secret (it
carries a token): it comes from `TRUEUP_ALERT_WEBHOOK_URL` or `alert_webhook_url` in
the `[orchestration]` table of `.dlt/secrets.toml`, and is never logged or stored.
"""

import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from ingestion.warehouse import Paths, paths
from orchestration.resources import setting

log = logging.getLogger(__name__)

SENSOR_NAME = "run_failure_alert"
MESSAGE_LIMIT = 2000


@dataclass
class Alert:
    job: str
    run_id: str
    message: str
    failed_steps: list[str] = field(default_factory=list)
    alert_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    raised_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    kind: str = "run_failure"

    def text(self) -> str:
        steps = f" in {', '.join(self.failed_steps)}" if self.failed_steps else ""
        return f"trueup: job `{self.job}` failed{steps} (run {self.run_id[:8]}): {self.message}"


def alerts_file(where: Paths | None = None) -> Path:
    return (where or paths()).home / "ops" / "alerts.jsonl"


def append_row(row: dict[str, Any], where: Paths | None = None) -> Path:
    """Append one JSON line (one write on an O_APPEND file, so concurrent writers never interleave)."""
    target = alerts_file(where)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, default=str) + "\n").encode()
    descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)
    return target


def read_alerts(where: Paths | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest alerts, newest last, each with its webhook delivery outcome when known."""
    source = alerts_file(where)
    if not source.exists():
        return []
    alerts: dict[str, dict[str, Any]] = {}
    for line in source.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if row.get("kind") == "delivery":
            alerts.get(row.get("alert_id", ""), {})["delivery"] = row.get("outcome")
        elif "alert_id" in row:
            alerts[row["alert_id"]] = row
    return list(alerts.values())[-limit:]


def webhook_url() -> str | None:
    """The configured webhook URL (a secret), or None."""
    return setting("alert_webhook_url")


def post(url: str, alert: Alert, timeout: float = 10.0) -> str:
    """POST the alert (Slack-compatible `text` plus the fields); return an outcome without the URL."""
    import httpx

    payload = {"text": alert.text(), "alert": asdict(alert)}
    hide = _HideUrl(url)
    httpx_log = logging.getLogger("httpx")  # it logs every request with its full URL
    httpx_log.addFilter(hide)
    try:
        response = httpx.post(url, json=payload, timeout=timeout)
    except httpx.HTTPError as exc:  # the message may quote the URL: keep only the type
        return f"failed: {type(exc).__name__}"
    finally:
        httpx_log.removeFilter(hide)
    return (
        f"posted (HTTP {response.status_code})"
        if response.is_success
        else f"failed: HTTP {response.status_code}"
    )


class _HideUrl(logging.Filter):
    """Drops log records that would print the webhook URL (a secret)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        return self.url not in record.getMessage()


def deliver(alert: Alert, where: Paths | None = None, url: str | None = None) -> str:
    """Record the alert, then post it when a webhook is configured; record the outcome.

    One alert per failed run: a run started from the CLI alerts at once, and a daemon's
    failure sensor that sees the same run later finds it recorded and stays quiet."""
    if any(row.get("run_id") == alert.run_id for row in read_alerts(where, limit=200)):
        return "already alerted"
    append_row(asdict(alert), where)
    outcome = post(url, alert) if url else "no webhook configured"
    append_row({"kind": "delivery", "alert_id": alert.alert_id, "outcome": outcome}, where)
    log.info("alert %s for run %s: %s", alert.alert_id, alert.run_id, outcome)
    return outcome


def alert_from_failure(context: dg.RunFailureSensorContext) -> Alert:
    run = context.dagster_run
    steps = context.get_step_failure_events()
    messages = [step_error(event) for event in steps] or [context.failure_event.message or "run failed"]
    return Alert(
        job=run.job_name,
        run_id=run.run_id,
        message=" | ".join(m for m in messages if m)[:MESSAGE_LIMIT],
        failed_steps=[event.step_key for event in steps if event.step_key],
    )


def step_error(event: dg.DagsterEvent) -> str:
    """The error a failed step raised, as one line of text."""
    data = event.event_specific_data
    error = getattr(data, "error", None)
    if error is None:
        return event.message or ""
    # The user's error is the innermost cause; Dagster's wrapper only names the step. The
    # message already starts with the exception's class.
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return str(error.message).strip()


@dg.run_failure_sensor(
    name=SENSOR_NAME,
    description="Appends an alert to $TRUEUP_HOME/ops/alerts.jsonl and posts it to the configured webhook.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    alert = alert_from_failure(context)
    outcome = deliver(alert, paths(), webhook_url())
    context.log.info(f"alert {alert.alert_id} for run {alert.run_id}: {outcome}")
    if outcome == "already alerted":
        return  # the CLI that ran it reported it already
    from orchestration.jobs import PUBLISHING_JOBS
    from orchestration.report import unpublished_report

    if alert.job in PUBLISHING_JOBS:  # the report in the UI: the last good copy, the failure on top
        unpublished_report(context.instance, alert.job, alert.run_id, [alert.message])


def alerts_defs() -> dg.Definitions:
    return dg.Definitions(sensors=[run_failure_alert])
