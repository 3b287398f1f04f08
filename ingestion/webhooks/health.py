"""The webhook intake as an integration path (`orchestration/health.py`): its five checks, its
lines in the report and in `trueup status`, from the inbox alone (never the warehouse).

- last success: the newest event whose change reached the warehouse (synced);
- latency: p95 from arrival to that sync, over the monitoring window;
- failure rate: none (a refused delivery is the sender's, counted under rejected);
- rejected: deliveries refused (bad signature, too old, too large) in the window, and
  authentic ones that could not be read, ever;
- backlog: events whose change is not in the warehouse yet.

An installation that never received a webhook has no inbox: the path is not in use there,
and its checks pass saying so.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ingestion.webhooks.monitor import intake_health
from orchestration.health import RUNBOOK_DIR, HealthContext, PathHealth, integration_path


@integration_path(
    "webhooks",
    kind="webhook intake",
    asset=["raw_webhooks", "events"],
    runbook=f"{RUNBOOK_DIR}/webhook-intake.md",
    defaults={"last_success": 48.0, "latency": 120.0, "backlog": 5000.0, "rejected": 100.0},
)
def webhooks(context: HealthContext) -> PathHealth:
    found = intake_health(context.where)
    if found is None:
        return PathHealth(in_use=False)
    figures = found.figures
    newest = _newest_synced_us(context)
    synced = figures.synced_latency
    return PathHealth(
        last_success=None if newest is None else datetime.fromtimestamp(newest / 1e6, UTC),
        latency_seconds=None if synced is None else synced.p95_s,
        rejected=sum(figures.refused.values()) + figures.rejected,
        backlog=found.backlog,
        backlog_unit="events",
    )


def _newest_synced_us(context: HealthContext) -> int | None:
    from ingestion.webhooks.inbox import Inbox
    from ingestion.webhooks.settings import inbox_path

    with Inbox(inbox_path(context.where)).connection() as con:
        row = con.execute("select max(synced_us) from events").fetchone()
    return None if row is None or row[0] is None else int(row[0])
