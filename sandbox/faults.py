"""Faults on demand, deterministic from a seed: 5xx, slow answers, dropped connections,
malformed pages, schema drift, and listings that lie: cut short, stuck on one page, carrying
an older copy of a record, or stamping records years ahead."""

from __future__ import annotations

import hashlib
import random
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

FUTURE_SHIFT = timedelta(days=4 * 365)  # how far ahead a `future` fault stamps a record
OLDER_SHIFT = timedelta(days=1)  # how much older the copy a `duplicate` fault adds is

FaultKind = Literal["error", "slow", "drop", "malformed"]


@dataclass
class Scripted:
    """The next `times` requests whose path matches `path` (regex) on `system` get `kind`.

    `code`, for an error, is the API's own error code where it has one (Meta's Graph codes,
    e.g. 17 for the user request limit); the app then answers with that error.
    """

    system: str
    path: str = ".*"
    kind: FaultKind = "error"
    status: int = 503
    times: int = 1
    code: int | None = None


@dataclass
class Drift:
    """Schema drift on one resource: a new field, or a field whose type changes.

    `field` is a dotted path inside the record (e.g. `properties.amount`); `fraction` of
    records (chosen by a hash of the record id, so the same records every time) drift.
    """

    kind: Literal["new_field", "changed_type"]
    field: str = "trueup_drift_field"
    fraction: float = 1.0


@dataclass
class FaultPlan:
    seed: int = 0
    error_rate: float = 0.0
    error_status: int = 503
    slow_rate: float = 0.0
    slow_seconds: float = 0.2
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    systems: list[str] | None = None  # None: every system
    scripted: list[Scripted] = field(default_factory=list)
    drift: dict[str, Drift] = field(default_factory=dict)  # "system/resource" -> Drift
    # Listings that lie, per "system/resource" (WORLD.md lists where each applies):
    truncate: list[str] = field(default_factory=list)  # a page never says more follow
    stall: list[str] = field(default_factory=list)  # the list ignores its page cursor
    duplicate: list[str] = field(default_factory=list)  # pages also carry older copies of records
    future: dict[str, float] = field(default_factory=dict)  # share of records stamped years ahead

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        plan = cls(**{k: v for k, v in data.items() if k not in ("scripted", "drift")})
        plan.scripted = [Scripted(**s) for s in data.get("scripted", [])]
        plan.drift = {k: Drift(**v) for k, v in data.get("drift", {}).items()}
        return plan


class Faults:
    """Decides, request by request, which fault (if any) the sandbox injects."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self.set(plan or FaultPlan())

    def set(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)
            self.injected: dict[str, int] = {}

    def decide(self, system: str, path: str) -> tuple[FaultKind, int, int | None] | None:
        """Return (kind, status, API error code) for this request, or None to serve it normally;
        the code is a scripted fault's own `code`, else None."""
        with self._lock:
            for scripted in self.plan.scripted:
                if scripted.times > 0 and scripted.system == system and re.search(scripted.path, path):
                    scripted.times -= 1
                    return self._count(scripted.kind, scripted.status, scripted.code)
            if self.plan.systems is not None and system not in self.plan.systems:
                return None
            roll = self._rng.random()
            for kind, rate in (
                ("error", self.plan.error_rate),
                ("slow", self.plan.slow_rate),
                ("drop", self.plan.drop_rate),
                ("malformed", self.plan.malformed_rate),
            ):
                if roll < rate:
                    return self._count(kind, self.plan.error_status, None)  # type: ignore[arg-type]
                roll -= rate
            return None

    def _count(self, kind: FaultKind, status: int, code: int | None) -> tuple[FaultKind, int, int | None]:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind, status, code

    def drift_for(self, system: str, resource: str) -> Drift | None:
        return self.plan.drift.get(f"{system}/{resource}")

    def truncates(self, system: str, resource: str) -> bool:
        return f"{system}/{resource}" in self.plan.truncate

    def stalls(self, system: str, resource: str) -> bool:
        return f"{system}/{resource}" in self.plan.stall

    def duplicates(self, system: str, resource: str) -> bool:
        return f"{system}/{resource}" in self.plan.duplicate

    def in_future(self, system: str, resource: str, record_id: str) -> bool:
        """Whether a `future` fault stamps this record years ahead."""
        share = self.plan.future.get(f"{system}/{resource}", 0.0)
        return share > 0 and _bucket(record_id) < share


def _bucket(record_id: str) -> float:
    return int(hashlib.sha1(record_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def shift_iso(value: Any, by: timedelta) -> Any:
    """An ISO-8601 timestamp moved by `by`, in the same format (milliseconds or microseconds)."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) + by
    except ValueError:
        return value
    fraction = value.rpartition(".")[2].rstrip("Z")
    digits = len(fraction) if "." in value and fraction.isdigit() else 0
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + ("Z" if value.endswith("Z") else moment.strftime("%z"))


def apply_drift(record: dict[str, Any], drift: Drift, record_id: str) -> dict[str, Any]:
    """Return a drifted copy of `record` when its id falls in the drift's fraction."""
    if _bucket(record_id) >= drift.fraction:
        return record
    if drift.kind == "changed_type" and not _has_path(record, drift.field):
        return record  # changed_type only changes a field the record has; it never adds one
    copy = _deep_copy_path(record, drift.field)
    *parents, leaf = drift.field.split(".")
    target = copy
    for part in parents:
        target = target[part]
    if drift.kind == "new_field":
        target[leaf] = "drifted-" + record_id
    else:
        target[leaf] = _changed_type(target[leaf])
    return copy


def _has_path(record: dict[str, Any], path: str) -> bool:
    target: Any = record
    for part in path.split("."):
        if not isinstance(target, dict) or part not in target:
            return False
        target = target[part]
    return True


def _changed_type(value: Any) -> Any:
    if isinstance(value, str):
        return {"value": value, "unit": "drifted"}
    if isinstance(value, bool | int | float):
        return f"{value} (drifted)"
    return 12345


def _deep_copy_path(record: dict[str, Any], path: str) -> dict[str, Any]:
    copy = dict(record)
    target = copy
    for part in path.split(".")[:-1]:
        target[part] = dict(target.get(part) or {})
        target = target[part]
    return copy
