"""429 storms, 5xx, dropped connections and 207 partial failures: every record ends written
(exactly once) or dead-lettered with the API's reason."""

from __future__ import annotations

from collections import Counter

from sandbox.config import RateLimitConfig
from sandbox.faults import FaultPlan, Scripted
from tests.reverse_etl.conftest import Stage


def test_every_record_ends_written_once_or_dead_lettered_with_its_reason(stage: Stage) -> None:
    # two writes the APIs refuse: a lifecycle stage HubSpot does not know (a 207 for that
    # input alone) and a mailbox Stripe rejects (its 400)
    stage.execute(
        "update reverse_etl.outbox_crm set desired_value = 'no_such_stage' where record_id = "
        "(select min(record_id) from reverse_etl.outbox_crm where field = 'lifecyclestage') "
        "and field = 'lifecyclestage'"
    )
    stage.execute(
        "update reverse_etl.outbox_billing set desired_value = 'not-a-mailbox' where record_id = "
        "(select min(record_id) from reverse_etl.outbox_billing where field = 'email') and field = 'email'"
    )
    bad = {("crm", "lifecyclestage"), ("billing", "email")}
    refused = {
        (r["target_system"], r["record_id"])
        for r in stage.outbox()
        if r["desired_value"] in ("no_such_stage", "not-a-mailbox")
    }
    assert len(refused) == 2
    # HubSpot's rolling window (the client paces under it), Stripe's per-second limit (not
    # paced: real 429s), a burst of HubSpot 429s on the writes, and 5xx answers and dropped
    # connections on a share of every request
    stage.sandbox.set_limits(RateLimitConfig(hubspot_per_10s=30, stripe_per_s=8))
    storm = Scripted(system="crm", path="batch/update", status=429, times=2)
    stage.sandbox.faults.set(
        FaultPlan(seed=3, error_rate=0.15, error_status=503, drop_rate=0.1, scripted=[storm])
    )
    outcomes = stage.run(settings=stage.settings(max_rounds=12, backoff_base=0.05))
    injected = dict(stage.sandbox.faults.injected)
    assert injected.get("error") and injected.get("drop"), "no fault was injected"
    records = {(r["target_system"], r["record_id"]) for r in stage.outbox()}
    written = Counter((w["system"], w["record_id"]) for w in stage.writes())
    assert set(written.values()) == {1}, "a record was written twice"
    dead = stage.query(
        "select distinct target_system, record_id, field, reason from reverse_etl.dead_letters"
    )
    assert {(d["target_system"], d["record_id"]) for d in dead} == refused
    assert set(written) == records - refused
    reasons = {(d["target_system"], d["field"]): d["reason"] for d in dead}
    assert set(reasons) == bad
    assert "VALIDATION_ERROR" in reasons[("crm", "lifecyclestage")]
    assert "no_such_stage" in reasons[("crm", "lifecyclestage")]
    assert "email" in reasons[("billing", "email")].lower()
    assert sum(o.push.dead_letters for o in outcomes.values() if o.push) == 2
    statuses = Counter(s for o in outcomes.values() if o.push for s in o.push.statuses)
    assert {429, 503} & set(statuses)
