"""The push: a plan's writes, batched, paced by the target's client, retried, recorded.

Every write goes into the ledger as `sent` before its request leaves, and its end (`applied`,
`retry`, `failed`) when the answer comes back, so a process killed mid-push leaves `sent`
rows that the next run settles: a target without idempotency keys (HubSpot) is re-read and
a write found applied counts as applied; a keyed target (Stripe) is re-sent under the key it
was sent with, and applies it once.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ingestion.http import RetryPolicy
from reverse_etl import ledger
from reverse_etl.plan import PlanItem, TargetPlan, idempotency_key, same_value
from reverse_etl.targets.base import RecordWrite, Target, WriteResult

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class PendingWrite:
    """One record's write and the plan rows (fields) it carries."""

    write: RecordWrite
    items: list[PlanItem]
    superseded: list[str] = field(default_factory=list)  # attempts of an interrupted run it replaces
    last: WriteResult | None = None


@dataclass
class PushResult:
    target: str
    records: int = 0
    applied: int = 0
    landed: int = 0  # found applied on a re-read (an earlier answer never came)
    dead_letters: int = 0
    rounds: int = 0
    seconds: float = 0.0
    requests: int = 0
    throttled_seconds: float = 0.0  # time the client waited to stay under the rate limit
    statuses: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Pusher:
    con: Any
    target: Target
    plan: TargetPlan
    run_id: str
    max_rounds: int = 6
    backoff: RetryPolicy = field(default_factory=lambda: RetryPolicy(backoff_base=0.25, backoff_cap=30.0))
    progress: Progress | None = None
    in_flight: int = 4  # batches on the wire at once
    rng: random.Random = field(default_factory=random.Random)

    def run(self) -> PushResult:
        started = time.monotonic()
        result = PushResult(self.target.system)
        pending = self.pending_writes()
        result.records = len(pending)
        for round_number in range(1, self.max_rounds + 1):
            if not pending:
                break
            result.rounds = round_number
            held: list[PendingWrite] = []
            if round_number > 1:
                asked = max((p.last.wait or 0.0 for p in pending if p.last is not None), default=0.0)
                time.sleep(max(asked, self.backoff.delay(round_number - 1, self.rng)))
                if not self.target.idempotent:
                    pending, held = self.settle_landed(pending, result)
            pending = self.send_round(pending, result) + held
        self.dead_letter(pending, result, f"gave up after {self.max_rounds} rounds")
        result.seconds = round(time.monotonic() - started, 3)
        result.requests = self.target.stats.requests
        result.statuses = dict(self.target.stats.statuses)
        result.throttled_seconds = round(self.target.stats.throttled_seconds, 3)
        return result

    # -- building the writes ---------------------------------------------------------------

    def pending_writes(self) -> list[PendingWrite]:
        unsettled = ledger.unsettled(self.con, self.target.system)
        grouped: dict[tuple[str, str], list[PlanItem]] = defaultdict(list)
        for item in self.plan.with_action("write"):
            grouped[(item.object_type, item.record_id)].append(item)
        writes = []
        for (object_type, record_id), items in sorted(grouped.items()):
            fields = {i.field: i.desired_value for i in items}
            earlier = [unsettled.get((object_type, record_id, i.field, i.desired_value)) for i in items]
            keys = {e[1] for e in earlier if e is not None}
            # re-send under the key of an interrupted send of this very write, if it had one
            key = keys.pop() if len(keys) == 1 and all(earlier) else None
            key = key or idempotency_key(
                self.target.system, object_type, record_id, fields, self.plan.plan_id
            )
            superseded = [e[2] for e in earlier if e is not None]
            writes.append(PendingWrite(RecordWrite(object_type, record_id, fields, key), items, superseded))
        return writes

    # -- one round ---------------------------------------------------------------------------

    def send_round(self, pending: list[PendingWrite], result: PushResult) -> list[PendingWrite]:
        """Send every pending write once, in batches; returns those to try again.

        Up to `in_flight` batches are on the wire at once, so a request's own time overlaps
        the next one's turn and the client's pacing alone sets the rate. Ledger rows are
        written here, in order: `sent` before a batch is handed over, its end once it is back.
        """
        again: list[PendingWrite] = []
        by_type: dict[str, list[PendingWrite]] = defaultdict(list)
        for p in pending:
            by_type[p.write.object_type].append(p)
        size = self.target.batch_size
        batches = [
            (object_type, group[start : start + size])
            for object_type, group in sorted(by_type.items())
            for start in range(0, len(group), size)
        ]
        flying: deque[tuple[list[PendingWrite], dict[str, str], Future[list[WriteResult]]]] = deque()
        with ThreadPoolExecutor(max_workers=max(1, self.in_flight), thread_name_prefix="push") as pool:
            for object_type, batch in batches:
                attempt = {p.write.record_id: uuid.uuid4().hex for p in batch}
                self._ledger(batch, attempt, "sent", None, "")
                flying.append(
                    (batch, attempt, pool.submit(self.target.write, object_type, [p.write for p in batch]))
                )
                if len(flying) >= self.in_flight:
                    again.extend(self.finish_batch(*flying.popleft(), result))
            while flying:
                again.extend(self.finish_batch(*flying.popleft(), result))
        return again

    def finish_batch(
        self,
        batch: list[PendingWrite],
        attempt: dict[str, str],
        sent: Future[list[WriteResult]],
        result: PushResult,
    ) -> list[PendingWrite]:
        """Record a batch's answers; returns the writes to try again."""
        outcomes = {r.record_id: r for r in sent.result()}
        again: list[PendingWrite] = []
        applied: list[PendingWrite] = []
        failed: list[PendingWrite] = []
        rows: list[dict[str, Any]] = []
        for p in batch:
            p.last = outcomes.get(p.write.record_id) or WriteResult(
                p.write.record_id, "retry", None, "no result"
            )
            {"applied": applied, "failed": failed, "retry": again}[p.last.outcome].append(p)
            rows += self._rows([p], attempt, p.last.outcome, p.last.code, p.last.message)
        ledger.append(self.con, "ledger", rows)
        result.applied += len(applied)
        self._dead_letters(failed, result)
        self._say(result)
        return again

    def settle_landed(
        self, pending: list[PendingWrite], result: PushResult
    ) -> tuple[list[PendingWrite], list[PendingWrite]]:
        """Re-read the records of unanswered writes: those already holding every value landed.
        Returns (writes to send again, writes whose record could not be read: held back, never
        re-sent blind)."""
        resend: list[PendingWrite] = []
        held: list[PendingWrite] = []
        by_type: dict[str, list[PendingWrite]] = defaultdict(list)
        for p in pending:
            by_type[p.write.object_type].append(p)
        for object_type, group in by_type.items():
            fields = sorted({f for p in group for f in p.write.fields})
            live = self.target.read(object_type, [p.write.record_id for p in group], fields)
            for p in group:
                values = live.get(p.write.record_id)
                if p.write.record_id in live and values is None:
                    held.append(p)
                elif values is not None and all(
                    same_value(values.get(f), v) for f, v in p.write.fields.items()
                ):
                    attempt = {p.write.record_id: uuid.uuid4().hex}
                    self._ledger([p], attempt, "applied", None, "found applied on re-read")
                    result.applied += 1
                    result.landed += 1
                else:
                    resend.append(p)
        return resend, held

    def dead_letter(self, pending: list[PendingWrite], result: PushResult, why: str) -> None:
        for p in pending:
            reason = f"{why}: {p.last.message}" if p.last else why
            p.last = WriteResult(p.write.record_id, "failed", p.last.code if p.last else None, reason)
            self._ledger([p], {p.write.record_id: uuid.uuid4().hex}, "failed", p.last.code, reason)
        self._dead_letters(pending, result)

    # -- records ---------------------------------------------------------------------------------

    def _ledger(
        self,
        batch: Sequence[PendingWrite],
        attempt: dict[str, str],
        status: str,
        code: int | None,
        message: str,
    ) -> None:
        ledger.append(self.con, "ledger", self._rows(batch, attempt, status, code, message))

    def _rows(
        self,
        batch: Sequence[PendingWrite],
        attempt: dict[str, str],
        status: str,
        code: int | None,
        message: str,
    ) -> list[dict[str, Any]]:
        """Ledger rows, one per field of each write (and the interrupted attempts a send ends)."""
        at = ledger.now()
        rows = []
        for p in batch:
            if status == "sent" and p.superseded:
                rows.extend(self._superseded(p, at))
            for item in p.items:
                rows.append(
                    {
                        "attempt_id": attempt[p.write.record_id],
                        "plan_id": self.plan.plan_id,
                        "run_id": self.run_id,
                        "target_system": self.target.system,
                        "object_type": p.write.object_type,
                        "record_id": p.write.record_id,
                        "field": item.field,
                        "finding_id": item.finding_id,
                        "before_value": item.live_value,
                        "after_value": item.desired_value,
                        "idempotency_key": p.write.key,
                        "status": status,
                        "response_code": code,
                        "message": message[:500],
                        "recorded_at": at,
                    }
                )
        return rows

    def _superseded(self, p: PendingWrite, at: Any) -> list[dict[str, Any]]:
        """End the interrupted attempts this write re-sends (so they are settled once)."""
        ended = [
            {
                "attempt_id": attempt_id,
                "plan_id": self.plan.plan_id,
                "run_id": self.run_id,
                "target_system": self.target.system,
                "object_type": p.write.object_type,
                "record_id": p.write.record_id,
                "status": "superseded",
                "message": "interrupted before its answer; sent again",
                "recorded_at": at,
            }
            for attempt_id in dict.fromkeys(p.superseded)
        ]
        p.superseded = []
        return ended

    def _dead_letters(self, failed: Sequence[PendingWrite], result: PushResult) -> None:
        at = ledger.now()
        rows = [
            {
                "plan_id": self.plan.plan_id,
                "run_id": self.run_id,
                "target_system": self.target.system,
                "object_type": p.write.object_type,
                "record_id": p.write.record_id,
                "field": item.field,
                "finding_id": item.finding_id,
                "desired_value": item.desired_value,
                "response_code": p.last.code if p.last else None,
                "reason": (p.last.message if p.last else "")[:500],
                "dead_lettered_at": at,
            }
            for p in failed
            for item in p.items
        ]
        ledger.append(self.con, "dead_letters", rows)
        result.dead_letters += len(failed)

    def _say(self, result: PushResult) -> None:
        if self.progress is not None:
            self.progress(
                f"{self.target.system}: {result.applied:,}/{result.records:,} records applied, "
                f"{result.dead_letters:,} dead letters"
            )
