"""The CRM target: HubSpot's batch read and batch update (100 inputs per request)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ingestion.http import ApiClient, ApiError, Pace, Reply, RetryPolicy, hubspot_rolling, hubspot_window
from reverse_etl.config import TargetSettings
from reverse_etl.targets.base import RecordWrite, WriteResult, live_text

log = logging.getLogger(__name__)

BATCH = 100
READERS = 4
OBJECT_TYPES = frozenset({"contacts", "deals", "meetings", "companies"})


class HubSpotTarget:
    """HubSpot has no idempotency keys: a write is sent once per round (the client does not
    re-send it), and the push re-reads live values before any further round, so a write that
    landed unanswered counts as applied instead of being sent twice."""

    system = "crm"
    batch_size = BATCH
    idempotent = False

    def __init__(self, settings: TargetSettings) -> None:
        # One client, so one pace for reads and writes against HubSpot's one window. It makes
        # one attempt per call: reads retry here, writes in the push (after a re-read).
        self.client = _client(settings, RetryPolicy(max_attempts=1))
        self.read_retry = RetryPolicy(backoff_base=settings.backoff_base)
        self._rng = random.Random()
        self.batch_size = min(settings.batch_size or self.batch_size, self.batch_size)
        self.stats = self.client.stats

    def close(self) -> None:
        self.client.close()

    def _read_batch(self, path: str, body: dict[str, Any]) -> Reply:
        """A batch read, retried (with the server's Retry-After, else backoff) while throttled,
        failing or unanswered."""
        for attempt in range(1, self.read_retry.max_attempts + 1):
            try:
                reply = self.client.exchange("POST", path, json=body)
            except ApiError:
                if attempt == self.read_retry.max_attempts:
                    raise
                time.sleep(self.read_retry.delay(attempt, self._rng))
                continue
            if reply.status in (200, 207) or not (reply.status == 429 or reply.status >= 500):
                return reply
            if attempt < self.read_retry.max_attempts:
                asked = _retry_after(reply)
                time.sleep(asked if asked is not None else self.read_retry.delay(attempt, self._rng))
        return reply

    def read(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, str] | None]:
        _check_type(object_type)
        chunks = [list(ids[start : start + BATCH]) for start in range(0, len(ids), BATCH)]
        live: dict[str, dict[str, str] | None] = {}
        # a few batch reads on the wire at once: the client's pacing alone sets the rate
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="read") as pool:
            for found in pool.map(lambda chunk: self._read_chunk(object_type, chunk, fields), chunks):
                live.update(found)
        return live

    def _read_chunk(
        self, object_type: str, chunk: list[str], fields: Sequence[str]
    ) -> dict[str, dict[str, str] | None]:
        body = {"properties": list(fields), "inputs": [{"id": i} for i in chunk]}
        try:
            reply = self._read_batch(f"/crm/v3/objects/{object_type}/batch/read", body)
        except ApiError as exc:
            log.warning("crm: could not read %d %s: %s", len(chunk), object_type, exc)
            return dict.fromkeys(chunk)
        if reply.status not in (200, 207):
            log.warning("crm: could not read %d %s: %s", len(chunk), object_type, _reason(reply))
            return dict.fromkeys(chunk)
        live: dict[str, dict[str, str] | None] = {}
        for record in (reply.body or {}).get("results", []):
            props = record.get("properties") or {}
            live[str(record["id"])] = {f: live_text(props.get(f)) for f in fields}
        return live

    def write(self, object_type: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        _check_type(object_type)
        body = {"inputs": [{"id": w.record_id, "properties": dict(w.fields)} for w in writes]}
        path = f"/crm/v3/objects/{object_type}/batch/update"
        try:
            reply = self.client.exchange("POST", path, json=body)
        except ApiError as exc:  # no answer: it may or may not have landed; the push re-reads
            return [WriteResult(w.record_id, "retry", None, str(exc)) for w in writes]
        if reply.status in (200, 207):
            return _batch_results(writes, reply)
        if reply.status == 429 or reply.status >= 500:
            wait = _retry_after(reply)
            return [WriteResult(w.record_id, "retry", reply.status, _reason(reply), wait) for w in writes]
        if len(writes) > 1 and reply.status == 400:
            # the whole batch was refused for one bad input: halve until it is alone
            middle = len(writes) // 2
            return self.write(object_type, writes[:middle]) + self.write(object_type, writes[middle:])
        return [WriteResult(w.record_id, "failed", reply.status, _reason(reply)) for w in writes]


def _client(settings: TargetSettings, retry: RetryPolicy) -> ApiClient:
    """A client paced ahead of HubSpot's rolling window from its rate-limit headers."""
    return ApiClient(
        "crm",
        str(settings.base_url),
        str(settings.token),
        pace=Pace(rate=settings.rate),
        window=hubspot_window,
        rolling=hubspot_rolling,
        retry=retry,
        timeout=settings.timeout,
    )


def _check_type(object_type: str) -> None:
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"the CRM target writes {sorted(OBJECT_TYPES)}, not {object_type!r}")


def _batch_results(writes: Sequence[RecordWrite], reply: Reply) -> list[WriteResult]:
    """A 200 applied every input; a 207 names the failed inputs in `errors[].context.ids`."""
    body: dict[str, Any] = reply.body or {}
    applied = {str(r.get("id")) for r in body.get("results", [])}
    failed: dict[str, str] = {}
    for error in body.get("errors", []):
        message = f"{error.get('category', 'ERROR')}: {error.get('message', '')}"[:500]
        for record_id in (error.get("context") or {}).get("ids", []):
            failed[str(record_id)] = message
    results = []
    for w in writes:
        if w.record_id in failed:
            results.append(WriteResult(w.record_id, "failed", reply.status, failed[w.record_id]))
        elif w.record_id in applied or reply.status == 200:
            results.append(WriteResult(w.record_id, "applied", reply.status))
        else:
            results.append(WriteResult(w.record_id, "retry", reply.status, "no result for this input"))
    return results


def _retry_after(reply: Reply) -> float | None:
    value = reply.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _reason(reply: Reply) -> str:
    body = reply.body if isinstance(reply.body, dict) else {}
    message = body.get("message") or reply.content[:300].decode("utf-8", "replace")
    return f"HTTP {reply.status}: {body.get('category', '')} {message}".strip()[:500]
