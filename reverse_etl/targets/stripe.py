"""The billing target: Stripe's customer update (form-encoded, one record per request, with an
`Idempotency-Key`) and customer retrieval for live values."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ingestion.http import ApiClient, ApiError, Pace, Reply, RetryPolicy
from reverse_etl.config import TargetSettings
from reverse_etl.targets.base import RecordWrite, WriteResult, live_text

log = logging.getLogger(__name__)

OBJECT_TYPES = frozenset({"customers"})
WRITABLE = frozenset({"email", "name", "phone", "description"})


class StripeTarget:
    """Stripe keeps a keyed write's answer for 24 hours: the client's own retries and any
    re-run re-send the same key, and Stripe applies the write once."""

    system = "billing"
    batch_size = 25  # records per round of the push (each is its own request)
    idempotent = True

    def __init__(self, settings: TargetSettings) -> None:
        self.client = ApiClient(
            "billing",
            str(settings.base_url),
            str(settings.token),
            pace=Pace(rate=settings.rate),
            retry=RetryPolicy(backoff_base=settings.backoff_base),
            timeout=settings.timeout,
            headers={"Stripe-Version": settings.stripe_version},
        )
        self.batch_size = min(settings.batch_size or self.batch_size, self.batch_size)
        self.stats = self.client.stats

    def close(self) -> None:
        self.client.close()

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, str] | None]:
        _check(object_type, fields)
        live: dict[str, dict[str, str] | None] = {}
        for record_id in ids:
            try:
                reply = self.client.exchange("GET", f"/v1/customers/{record_id}")
            except ApiError as exc:
                log.warning("billing: could not read customer %s: %s", record_id, exc)
                live[record_id] = None
                continue
            if reply.status == 404:
                continue
            if not reply.ok:
                log.warning("billing: could not read customer %s: %s", record_id, _reason(reply))
                live[record_id] = None
                continue
            body = reply.body or {}
            if body.get("deleted"):
                continue
            live[record_id] = {f: live_text(body.get(f)) for f in fields}
        return live

    def write(self, object_type: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        _check(object_type, [f for w in writes for f in w.fields])
        return [self._write_one(w) for w in writes]

    def _write_one(self, write: RecordWrite) -> WriteResult:
        path = f"/v1/customers/{write.record_id}"
        try:
            reply = self.client.exchange(
                "POST", path, form=dict(write.fields), headers={"Idempotency-Key": write.key}
            )
        except ApiError as exc:
            return WriteResult(write.record_id, "retry", None, str(exc))
        if reply.ok:
            return WriteResult(write.record_id, "applied", reply.status)
        if reply.status == 429 or reply.status >= 500:
            return WriteResult(write.record_id, "retry", reply.status, _reason(reply))
        return WriteResult(write.record_id, "failed", reply.status, _reason(reply))


def _check(object_type: str, fields: Sequence[str]) -> None:
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"the billing target writes customers, not {object_type!r}")
    unknown = sorted(set(fields) - WRITABLE)
    if unknown:
        raise ValueError(f"the billing target does not write customer fields {unknown}")


def _reason(reply: Reply) -> str:
    error = (reply.body or {}).get("error") if isinstance(reply.body, dict) else None
    if isinstance(error, dict):
        return f"HTTP {reply.status}: {error.get('type', '')} {error.get('message', '')}".strip()[:500]
    return f"HTTP {reply.status}: {reply.content[:300].decode('utf-8', 'replace')}"[:500]
