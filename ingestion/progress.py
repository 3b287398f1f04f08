"""Progress of a long ingest: pages, records, rate and retries, reported as it goes."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Counts pages and records per resource; calls `report` at most every `every` seconds."""

    system: str
    report: Callable[[str], None] | None = None
    every: float = 5.0
    pages: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    retries: Callable[[], int] = lambda: 0
    # resource -> ingestion.guard.Outcome: the resources skipped or failed in this run
    outcomes: dict[str, Any] = field(default_factory=dict)
    # resource -> how many records the source says it holds (HubSpot search `total`)
    totals: dict[str, int] = field(default_factory=dict)
    _last: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, resource: str, n_records: int) -> None:
        with self._lock:
            self.pages[resource] += 1
            self.records[resource] += n_records
            now = time.monotonic()
            due = now - self._last >= self.every
            if due:
                self._last = now
        if due:
            self._emit()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        total = sum(self.records.values())
        return (
            f"{self.system}: {sum(self.pages.values())} pages, {total} records, "
            f"{total / elapsed:,.0f} rec/s, {self.retries()} retries"
        )

    def _emit(self) -> None:
        text = self.line()
        if self.report:
            self.report(text)
        else:
            log.info(text)


# dlt may pull resources from worker threads, so this is process-wide, not thread-local.
_active: dict[str, Progress] = {}


def current(system: str) -> Progress:
    """The active progress for `system` (a silent one when no run set it)."""
    return _active.get(system) or Progress(system=system, report=lambda _: None)


def activate(progress: Progress) -> None:
    _active[progress.system] = progress
