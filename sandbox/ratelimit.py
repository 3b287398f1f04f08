"""Rolling-window request counters the sandbox apps use to imitate each API's limits."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float


class RollingWindow:
    """At most `limit` requests in any `interval` seconds (HubSpot's TEN_SECONDLY_ROLLING)."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def hit(self) -> Decision:
        now = time.monotonic()
        with self._lock:
            while self._hits and now - self._hits[0] >= self.interval:
                self._hits.popleft()
            reset = self.interval - (now - self._hits[0]) if self._hits else self.interval
            if len(self._hits) >= self.limit:
                return Decision(False, self.limit, 0, max(reset, 0.0))
            self._hits.append(now)
            return Decision(True, self.limit, self.limit - len(self._hits), max(reset, 0.0))


class Limits:
    """Named windows, created from `{name: (limit, interval_seconds)}`; an absent name is unlimited."""

    def __init__(self, config: dict[str, tuple[int, float]] | None = None) -> None:
        self.windows = {name: RollingWindow(*spec) for name, spec in (config or {}).items()}

    def hit(self, name: str) -> Decision | None:
        window = self.windows.get(name)
        return window.hit() if window else None
