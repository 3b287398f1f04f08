"""The webhook intake's health in figures: backlog, the oldest event still waiting, refusals by
reason, duplicates absorbed, and the latency from delivery to the warehouse. One function
returns them (`intake_health`); `trueup status`, the nightly report and the Dagster asset
check each render or judge the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingestion.warehouse import Paths, paths
from ingestion.webhooks.inbox import Inbox, InboxFigures, Latency
from ingestion.webhooks.settings import Thresholds, WebhookSettings, inbox_path, load_settings

WINDOW_SECONDS = 3600  # refusals, duplicates and latencies: over the last hour


@dataclass
class IntakeHealth:
    figures: InboxFigures
    thresholds: Thresholds

    @property
    def backlog(self) -> int:
        """Events whose change is not in the warehouse yet (not drained, or not synced)."""
        return self.figures.unsynced

    @property
    def oldest_waiting_seconds(self) -> float | None:
        oldest = self.figures.oldest_unsynced_us
        return None if oldest is None else max(0.0, (self.figures.now_us - oldest) / 1e6)

    def problems(self) -> list[str]:
        """What is past its threshold, in words; empty when all is well."""
        limits, found = self.thresholds, []
        if self.backlog > limits.backlog:
            found.append(f"{self.backlog:,} events wait (limit {limits.backlog:,})")
        oldest = self.oldest_waiting_seconds
        if oldest is not None and oldest > limits.oldest_seconds:
            found.append(
                f"the oldest waiting event arrived {oldest:,.0f} s ago (limit {limits.oldest_seconds:,.0f} s)"
            )
        synced = self.figures.synced_latency
        if synced is not None and synced.p95_s > limits.latency_p95_seconds:
            limit = limits.latency_p95_seconds
            found.append(f"p95 delivery-to-warehouse latency {synced.p95_s:,.1f} s (limit {limit:,.0f} s)")
        return found

    def metadata(self) -> dict[str, Any]:
        f = self.figures
        data: dict[str, Any] = {
            "events": f.events,
            "backlog": self.backlog,
            "undrained": f.undrained,
            "oldest_waiting_seconds": round(self.oldest_waiting_seconds or 0.0, 1),
            "refused_last_hour": sum(f.refused.values()),
            "duplicates_last_hour": f.duplicates,
            "rejected_deliveries": f.rejected,
        }
        data.update({f"refused_{reason}": count for reason, count in sorted(f.refused.items())})
        for name, latency in (("drain", f.drained_latency), ("warehouse", f.synced_latency)):
            if latency is not None:
                data[f"{name}_latency_p50_seconds"] = round(latency.p50_s, 2)
                data[f"{name}_latency_p95_seconds"] = round(latency.p95_s, 2)
        return data

    def lines(self) -> list[str]:
        """Plain lines for a terminal (status, the text report)."""
        f = self.figures
        oldest = self.oldest_waiting_seconds
        waiting = f"{self.backlog:,} waiting" + (f", oldest {oldest:,.0f} s" if oldest is not None else "")
        refused = ", ".join(f"{reason} {n:,}" for reason, n in sorted(f.refused.items())) or "none"
        lines = [
            f"{f.events:,} events; {waiting}; {f.undrained:,} not drained yet",
            f"last hour: refused {refused}; duplicates absorbed {f.duplicates:,}",
            f"delivery -> raw_webhooks: {_latency(f.drained_latency)}",
            f"delivery -> warehouse (synced): {_latency(f.synced_latency)}",
        ]
        if f.rejected:
            lines.append(f"{f.rejected:,} authentic deliveries could not be read (raw_webhooks._quarantine)")
        lines += [f"ALERT: {problem}" for problem in self.problems()]
        return lines

    def markdown(self) -> str:
        f = self.figures
        rows = [
            ("events received", f"{f.events:,}"),
            ("waiting (not in the warehouse yet)", f"{self.backlog:,}"),
            (
                "oldest waiting",
                "-" if self.oldest_waiting_seconds is None else f"{self.oldest_waiting_seconds:,.0f} s",
            ),
            ("refused, last hour", ", ".join(f"{r}: {n:,}" for r, n in sorted(f.refused.items())) or "none"),
            ("duplicates absorbed, last hour", f"{f.duplicates:,}"),
            ("delivery -> raw_webhooks", _latency(f.drained_latency)),
            ("delivery -> warehouse", _latency(f.synced_latency)),
        ]
        table = "| figure | value |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)
        alerts = "".join(f"\n\n**{problem}**" for problem in self.problems())
        return f"## Webhook intake\n\n{table}{alerts}"


def _latency(latency: Latency | None) -> str:
    if latency is None:
        return "no events in the last hour"
    return f"p50 {latency.p50_s:,.1f} s, p95 {latency.p95_s:,.1f} s over {latency.events:,} events"


def intake_health(
    where: Paths | None = None, settings: WebhookSettings | None = None, now_us: int | None = None
) -> IntakeHealth | None:
    """The figures, or None when no inbox exists (webhooks were never received here)."""
    path = inbox_path(where or paths())
    if not path.exists():
        return None
    settings = settings or load_settings(where, with_secrets=False)
    figures = Inbox(path).figures(now=now_us, window_us=WINDOW_SECONDS * 1_000_000)
    return IntakeHealth(figures, settings.thresholds)


def status_lines(where: Paths | None = None) -> list[str]:
    """`trueup status`'s lines for the intake."""
    health = intake_health(where)
    if health is None:
        return ["Webhooks         no inbox (`trueup webhooks serve` receives them)"]
    first, *rest = health.lines()
    return [f"Webhooks         {first}", *(f"                 {line}" for line in rest)]


def report_section(health: IntakeHealth | None, markdown: bool = True) -> str:
    """The nightly report's section (markdown for the UI, plain text for the terminal)."""
    if health is None:
        body = "no webhook inbox: trueup receives no webhooks here"
        return f"## Webhook intake\n\n_{body}_" if markdown else f"Webhook intake\n==============\n{body}"
    if markdown:
        return health.markdown()
    return "Webhook intake\n==============\n" + "\n".join(health.lines())
