"""Integration-path health: last success, latency, failure rate, records rejected, backlog.

A path is one way data moves: each source into the warehouse, the webhook intake, each
reverse-ETL target. Every path is one function registered here with `integration_path`,
returning a `PathHealth` from whatever that path records; the registry turns each path into
five Dagster asset checks (thresholds from settings, descriptions linking the path's runbook
in `docs/runbooks/`), a section of the report and lines of `trueup status`.

Adding a path is one function:

    @integration_path("webhooks", kind="webhook intake", asset=["raw_webhooks", "inbox"],
                      runbook="docs/runbooks/webhook-intake.md")
    def webhooks(context: HealthContext) -> PathHealth: ...

in a module listed in `PATH_MODULES`. Sources record each attempt in the ops store
(`$TRUEUP_HOME/ops/ingest.jsonl`, beside the warehouse, never in it: the writer may be busy),
written by the ingest step and by `trueup ingest` alike.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingestion.tables import SYSTEMS, TABLES, dataset_name
from ingestion.warehouse import Paths, paths
from orchestration.resources import DEFAULT_FRESHNESS_HOURS, setting

# Modules whose import registers more paths (the webhook intake, reverse-ETL targets); a
# module that does not exist yet is skipped.
PATH_MODULES: tuple[str, ...] = ("ingestion.webhooks.health", "reverse_etl.health")
RUNBOOK_DIR = "docs/runbooks"
ATTEMPT_WINDOW = 20  # the failure rate is over a path's last attempts

METRICS = ("last_success", "latency", "failure_rate", "rejected", "backlog")
# Threshold defaults per metric (a path's own defaults override them); every threshold is a
# setting: TRUEUP_HEALTH_<METRIC>[_<PATH>], or health_<metric>[_<path>] under [orchestration].
DEFAULTS: dict[str, float] = {
    "last_success": 3.0,  # hours since the last success
    "latency": 1800.0,  # seconds the last successful attempt took
    "failure_rate": 0.2,  # share of the last attempts that failed
    "rejected": 0.0,  # records the last attempt rejected (quarantined, dead-lettered)
    "backlog": 0.0,  # work waiting (pending load packages, unprocessed inbox rows, outbox rows)
}
SEVERITY = {"last_success": "ERROR", "failure_rate": "ERROR", "latency": "WARN", "rejected": "WARN"}
UNITS = {"last_success": "h", "latency": "s", "failure_rate": "", "rejected": "records", "backlog": ""}
ANCHORS = {
    "last_success": "last-success",
    "latency": "latency",
    "failure_rate": "failure-rate",
    "rejected": "records-rejected",
    "backlog": "backlog",
}


@dataclass
class PathHealth:
    """What one path's records say now; None where the path has no such figure yet."""

    last_success: datetime | None = None
    latency_seconds: float | None = None
    attempts: int = 0
    failures: int = 0
    rejected: int | None = None
    backlog: int | None = None
    backlog_unit: str = "items"
    last_error: str | None = None
    in_use: bool = True  # False: nothing uses this path here (e.g. no webhook was ever received)

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.attempts if self.attempts else None

    def age_hours(self, now: datetime) -> float | None:
        if self.last_success is None:
            return None
        return (now - _aware(self.last_success)).total_seconds() / 3600

    def observed(self, metric: str, now: datetime) -> float | None:
        return {
            "last_success": self.age_hours(now),
            "latency": self.latency_seconds,
            "failure_rate": self.failure_rate,
            "rejected": None if self.rejected is None else float(self.rejected),
            "backlog": None if self.backlog is None else float(self.backlog),
        }[metric]


@dataclass(frozen=True)
class HealthContext:
    where: Paths
    now: datetime


@dataclass(frozen=True)
class IntegrationPath:
    name: str  # short, used in check names' settings: crm, webhooks, reverse_etl_crm
    kind: str  # what sort of path, for people: "source", "webhook intake", "reverse-ETL target"
    asset: tuple[str, ...]  # the asset its checks are shown on
    runbook: str  # a file in the repository, docs/runbooks/...
    measure: Callable[[HealthContext], PathHealth]
    defaults: Mapping[str, float] = field(default_factory=dict)

    def threshold(self, metric: str) -> float:
        raw = setting(f"health_{metric}_{self.name}") or setting(f"health_{metric}")
        if raw is None:
            return float(self.defaults.get(metric, DEFAULTS[metric]))
        try:
            return float(raw)
        except ValueError as exc:
            raise ValueError(f"setting health_{metric} must be a number, got {raw!r}") from exc

    def runbook_link(self, metric: str) -> str:
        return f"{self.runbook}#{ANCHORS[metric]}"


_REGISTRY: dict[str, IntegrationPath] = {}


def integration_path(
    name: str,
    *,
    kind: str,
    asset: Sequence[str],
    runbook: str,
    defaults: Mapping[str, float] | None = None,
) -> Callable[[Callable[[HealthContext], PathHealth]], Callable[[HealthContext], PathHealth]]:
    """Register `measure` as the path `name` (a later registration of the same name replaces it)."""

    def register(measure: Callable[[HealthContext], PathHealth]) -> Callable[[HealthContext], PathHealth]:
        _REGISTRY[name] = IntegrationPath(name, kind, tuple(asset), runbook, measure, dict(defaults or {}))
        return measure

    return register


def registered_paths() -> list[IntegrationPath]:
    """Every path: the sources, then whatever the modules in PATH_MODULES register."""
    for module in PATH_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise  # the module exists and one of its own imports is missing: say so
    return list(_REGISTRY.values())


# -- the ops store's ingest log ------------------------------------------------------------------


def ingest_log(where: Paths | None = None) -> Path:
    return (where or paths()).home / "ops" / "ingest.jsonl"


@dataclass
class IngestAttempt:
    system: str
    started_at: str
    finished_at: str
    ok: bool
    records: int = 0
    rejected: int = 0
    error: str | None = None
    origin: str = "dagster"


def record_ingest(
    systems: Iterable[str],
    started_at: datetime,
    results: Iterable[Any],
    failures: Mapping[str, str],
    where: Paths | None = None,
    origin: str = "dagster",
) -> None:
    """Append one attempt per system (a line each, O_APPEND, so concurrent writers never mix)."""
    now = datetime.now(UTC)
    by_system = {r.system: r for r in results}
    lines = []
    for system in systems:
        result = by_system.get(system)
        # a system's result says when, after the start, it was loaded (systems load one by one)
        seconds = float(getattr(result, "seconds", 0.0) or 0.0)
        finished = min(now, started_at + timedelta(seconds=seconds)) if seconds > 0 else now
        attempt = IngestAttempt(
            system=system,
            started_at=started_at.isoformat(),
            finished_at=finished.isoformat(),
            ok=system not in failures and result is not None,
            records=int(result.records) if result is not None else 0,
            rejected=int(result.quarantined) if result is not None else 0,
            error=(failures.get(system) or None) and str(failures[system])[:500],
            origin=origin,
        )
        lines.append(json.dumps(asdict(attempt)) + "\n")
    target = ingest_log(where)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, "".join(lines).encode())
    finally:
        os.close(descriptor)


def read_attempts(where: Paths | None = None) -> dict[str, list[IngestAttempt]]:
    """Every recorded attempt per system, oldest first."""
    source = ingest_log(where)
    attempts: dict[str, list[IngestAttempt]] = {}
    if not source.exists():
        return attempts
    for line in source.read_text(encoding="utf-8").splitlines():
        try:
            attempt = IngestAttempt(**json.loads(line))
        except (json.JSONDecodeError, TypeError):
            continue  # a line cut short by a crash
        attempts.setdefault(attempt.system, []).append(attempt)
    return attempts


def last_successful_ingests(where: Paths | None = None) -> dict[str, datetime]:
    """When each source last ingested successfully, from the ops store (CLI and Dagster runs)."""
    found = {}
    for system, attempts in read_attempts(where).items():
        done = [a for a in attempts if a.ok]
        if done:
            found[system] = datetime.fromisoformat(done[-1].finished_at)
    return found


def pending_packages(where: Paths, system: str) -> int:
    """Load packages extracted or normalized but not loaded yet (the next run finishes them)."""
    root = where.dlt_dir / f"trueup_{system}"
    folders = (root / "normalize" / "extracted", root / "load" / "normalized")
    return sum(1 for folder in folders if folder.is_dir() for entry in folder.iterdir() if entry.is_dir())


def source_health(system: str, context: HealthContext) -> PathHealth:
    attempts = read_attempts(context.where).get(system, [])
    window = attempts[-ATTEMPT_WINDOW:]
    done = [a for a in attempts if a.ok]
    health = PathHealth(
        attempts=len(window),
        failures=sum(not a.ok for a in window),
        backlog=pending_packages(context.where, system),
        backlog_unit="load packages",
    )
    if done:
        last = done[-1]
        health.last_success = datetime.fromisoformat(last.finished_at)
        started = datetime.fromisoformat(last.started_at)
        health.latency_seconds = (health.last_success - started).total_seconds()
    if window:
        health.rejected = window[-1].rejected if window[-1].ok else None
        failed = [a for a in window if not a.ok]
        health.last_error = failed[-1].error if failed else None
    return health


def _measure_source(system: str, context: HealthContext) -> PathHealth:
    return source_health(system, context)


def _register_sources() -> None:
    for system in SYSTEMS:
        integration_path(
            system,
            kind="source",
            asset=[dataset_name(system), TABLES[system][0]],
            runbook=f"{RUNBOOK_DIR}/source-ingest.md",
            defaults={"last_success": DEFAULT_FRESHNESS_HOURS[system]},
        )(functools.partial(_measure_source, system))


_register_sources()


# -- judging -------------------------------------------------------------------------------------


@dataclass
class Verdict:
    path: str
    kind: str
    metric: str
    observed: float | None
    threshold: float
    passed: bool
    severity: str
    runbook: str
    message: str


def judge(path: IntegrationPath, health: PathHealth, now: datetime) -> list[Verdict]:
    """One verdict per metric. A path never seen succeeding fails `last_success`; a metric the
    path has no figure for yet (no attempt recorded) passes with a note."""
    verdicts = []
    for metric in METRICS:
        observed = health.observed(metric, now)
        limit = path.threshold(metric)
        if not health.in_use:
            passed, message = True, "not in use here"
        elif observed is None:
            passed = metric != "last_success"
            message = "no successful attempt recorded" if not passed else "no figure yet"
        else:
            passed = observed <= limit
            unit = f" {health.backlog_unit}" if metric == "backlog" else ""
            message = f"{_figure(metric, observed)}{unit} (limit {_figure(metric, limit)})"
        if metric == "failure_rate" and health.attempts:
            message += f", {health.failures} of the last {health.attempts} attempts failed"
            if health.last_error and not passed:
                message += f"; last error: {health.last_error[:200]}"
        verdicts.append(
            Verdict(
                path.name,
                path.kind,
                metric,
                observed,
                limit,
                passed,
                SEVERITY.get(metric, "WARN"),
                path.runbook_link(metric),
                message,
            )
        )
    return verdicts


def _figure(metric: str, value: float) -> str:
    if metric == "failure_rate":
        return f"{value:.0%}"
    if metric == "last_success":
        return f"{value:.1f} h ago" if value >= 1 else f"{value * 60:.0f} min ago"
    if metric == "latency":
        return f"{value:,.0f} s"
    return f"{value:,.0f}"


def evaluate(
    where: Paths | None = None, now: datetime | None = None
) -> list[tuple[IntegrationPath, PathHealth]]:
    """Every registered path with its health now."""
    context = HealthContext(where or paths(), now or datetime.now(UTC))
    return [(path, path.measure(context)) for path in registered_paths()]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
