"""Plain check results: what a suite found, with no tie to Great Expectations or Dagster."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Severity = Literal["error", "warn"]
Status = Literal["passed", "failed", "not_built", "error"]

# Display and storage order: what needs attention first.
STATUS_ORDER: dict[str, int] = {"failed": 0, "error": 1, "not_built": 2, "passed": 3}

RESULTS_SCHEMA = "checks"
RESULTS_TABLE = "check_results"

# checks.check_results: one row per check and run, kept across runs (the history).
RESULTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "varchar not null"),
    ("checked_at", "timestamptz not null"),
    ("origin", "varchar"),
    ("suite", "varchar not null"),
    ("asset_key", "varchar not null"),
    ("check_name", "varchar not null"),
    ("status", "varchar not null"),
    ("passed", "boolean not null"),
    ("severity", "varchar not null"),
    ("observed_value", "double"),
    ("warn_above", "double"),
    ("error_above", "double"),
    ("threshold", "varchar"),
    ("unit", "varchar"),
    ("sample_keys", "varchar"),
    ("details", "varchar"),
    ("message", "varchar"),
    ("seconds", "double"),
)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    `severity` is the level the check failed at; for a check that passed or could not run it
    is the highest level the check has (error when it can block, else warn). A failed check
    blocks what is downstream of its asset only when its severity is error.
    """

    check: str
    suite: str
    asset: tuple[str, ...]
    status: Status
    severity: Severity
    observed: float | None
    unit: str
    warn_above: float | None = None
    error_above: float | None = None
    sample: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def is_blocking_failure(self) -> bool:
        return not self.passed and self.severity == "error"

    @property
    def asset_key(self) -> str:
        return "/".join(self.asset)

    @property
    def key(self) -> str:
        """Unique over all checks: the asset key and the check name."""
        return f"{self.asset_key}:{self.check}"

    @property
    def threshold(self) -> str:
        return describe_threshold(self.warn_above, self.error_above)

    def to_row(self, run_id: str, checked_at: datetime, origin: str) -> tuple[Any, ...]:
        """The result as a row of checks.check_results (column order of RESULTS_COLUMNS)."""
        return (
            run_id,
            checked_at,
            origin,
            self.suite,
            self.asset_key,
            self.check,
            self.status,
            self.passed,
            self.severity,
            finite_or_none(self.observed),
            self.warn_above,
            self.error_above,
            self.threshold,
            self.unit,
            json.dumps(list(self.sample)),
            json.dumps(dict(self.details), default=str, sort_keys=True),
            self.message,
            round(self.seconds, 4),
        )


def describe_threshold(warn_above: float | None, error_above: float | None) -> str:
    """E.g. `warn > 26, error > 50`: the levels a value must stay at or under."""
    levels = [
        (name, value) for name, value in (("warn", warn_above), ("error", error_above)) if value is not None
    ]
    return ", ".join(f"{name} > {format_number(value)}" for name, value in levels)


def format_number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.2f}"


def finite_or_none(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return float(value)


def has_blocking_failure(results: Iterable[CheckResult]) -> bool:
    return any(r.is_blocking_failure for r in results)


def ordered(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Failures first (errors before warnings), then checks that could not run, then passes."""
    return sorted(
        results,
        key=lambda r: (STATUS_ORDER[r.status], 0 if r.severity == "error" else 1, r.suite, r.key),
    )


def counts(results: Iterable[CheckResult]) -> dict[str, int]:
    """How many passed, failed at error, failed at warn, were not built or could not run."""
    summary = {"passed": 0, "error": 0, "warn": 0, "not_built": 0, "broken": 0}
    for r in results:
        if r.status == "passed":
            summary["passed"] += 1
        elif r.status == "not_built":
            summary["not_built"] += 1
        elif r.status == "error":
            summary["broken"] += 1
        else:
            summary[r.severity] += 1
    return summary
