"""The target interface: read live values in batches, write a batch, say what may be retried."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ingestion.http import ClientStats

Outcome = Literal["applied", "failed", "retry"]


@dataclass(frozen=True)
class RecordWrite:
    """The fields to set on one target record, under one idempotency key."""

    object_type: str
    record_id: str
    fields: dict[str, str]
    key: str


@dataclass(frozen=True)
class WriteResult:
    """What became of one record's write: applied, failed for good (a dead letter with the
    API's reason), or worth another attempt (throttled, a 5xx, no answer)."""

    record_id: str
    outcome: Outcome
    code: int | None = None
    message: str = ""
    wait: float | None = None  # seconds the server asked for before a retry (Retry-After)


class Target(Protocol):
    system: str
    batch_size: int  # records per write request
    idempotent: bool  # whether a re-sent write is applied once by the API itself (a key)
    stats: ClientStats

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, str] | None]:
        """Live values of `fields` per record id ("" for an empty value); ids the target does
        not hold are left out; ids it could not read (after retries) map to None."""
        ...

    def write(self, object_type: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        """Send one batch (at most `batch_size` records of one object type); one result per write."""
        ...

    def close(self) -> None: ...


def live_text(value: object) -> str:
    """A live value as text: None and empty are both ""."""
    return "" if value is None else str(value)
