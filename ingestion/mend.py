"""Records a resource fetches again by id on later runs, until they are right: a quarantined
record until it passes its contract (or someone accepts it), a record stamped past the
server's clock until its stamp is plausible, and a record an audit found missing or stale.

The set lives in the resource's dlt state, so it is committed with the load that put it
there and dropped with a load that failed. Accepting a quarantined record is an ops action
(`trueup quarantine accept`): a line in `$TRUEUP_HOME/ops/quarantine_accepted.jsonl`, which
the next run reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion.contracts import resolution_row
from ingestion.warehouse import Paths, paths

PENDING_KEY = "refetch"  # resource state: record key -> why it is fetched again
ACCEPTED_FILE = "quarantine_accepted.jsonl"

QUARANTINED = "quarantined"
FUTURE = "stamped past the server's clock"
AUDIT = "missing or stale at the source's audit"


class Mend:
    """The keys one resource fetches again, kept in its state (`state[PENDING_KEY]`)."""

    def __init__(self, system: str, resource: str, state: dict[str, Any]) -> None:
        self.system, self.resource = system, resource
        self.pending: dict[str, str] = state.setdefault(PENDING_KEY, {})

    def waiting(self) -> list[str]:
        return list(self.pending)

    def add(self, key: str | None, why: str) -> None:
        if key:
            self.pending.setdefault(str(key), why)

    def add_many(self, keys: Iterable[str | None], why: str) -> None:
        for key in keys:
            self.add(key, why)

    def quarantined(self, rows: Iterable[Any]) -> None:
        """Fetch again the records behind these quarantine rows (a child's parent, when the
        row names one: the parent brings its children along)."""
        for row in rows:
            data = getattr(row, "data", row)
            if isinstance(data, Mapping) and "quarantine_id" in data:
                self.add(data.get("parent_key") or data.get("record_key"), QUARANTINED)

    def settle(self, passed: Iterable[str], gone: Iterable[str] = ()) -> Iterator[Any]:
        """Drop keys whose record came back right (or no longer exists at the source); yield a
        resolution row for each that was quarantined."""
        for key, resolution in [*((k, "passed") for k in passed), *((k, "gone") for k in gone)]:
            why = self.pending.pop(str(key), None)
            if why == QUARANTINED:
                yield resolution_row(self.system, self.resource, str(key), resolution)

    def accept(self, accepted: Iterable[str]) -> Iterator[Any]:
        """Stop fetching keys someone accepted as they are; yield their resolution rows."""
        for key in accepted:
            if self.pending.pop(str(key), None) is not None:
                yield resolution_row(self.system, self.resource, str(key), "accepted")


def accepted_file(where: Paths | None = None) -> Path:
    return (where or paths()).home / "ops" / ACCEPTED_FILE


def accept(
    system: str, resource: str, keys: Iterable[str], note: str = "", where: Paths | None = None
) -> int:
    """Record that these quarantined records are accepted as they are (appended, one line each)."""
    target = accepted_file(where)
    target.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat()
    base = {"system": system, "resource": resource, "note": note, "accepted_at": stamp}
    lines = [json.dumps({**base, "record_key": k}) for k in keys]
    if lines:
        descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, ("\n".join(lines) + "\n").encode())
        finally:
            os.close(descriptor)
    return len(lines)


def accepted(system: str, resource: str, where: Paths | None = None) -> set[str]:
    """Keys of one resource someone accepted."""
    source = accepted_file(where)
    if not source.exists():
        return set()
    keys = set()
    for line in source.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if row.get("system") == system and row.get("resource") == resource and row.get("record_key"):
            keys.add(str(row["record_key"]))
    return keys
