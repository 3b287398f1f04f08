"""The plan: the outbox against each target record's live value, under the ownership contract.

Every outbox row gets one action: `write` (the live value differs and the field may be
written now), `in_sync` (the live value already is the desired one: nothing to send),
`conflict` (the live value changed since trueup last read or wrote it: a human edit, never
overwritten), `review` (a conflicting value under a `review` policy, not approved yet),
`forbidden` (the ownership contract does not let this target receive the field), `gone`
(the target no longer holds the record) or `unread` (the target did not answer for it after
retries: judged again by the next run).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reverse_etl import ledger
from reverse_etl.targets.base import Target

log = logging.getLogger(__name__)

POLICIES = ("auto", "review", "never")
OWNERSHIP = "seeds.ownership"
FINDINGS = "reconciliation.findings"
RAW = {"crm": "raw_crm", "billing": "raw_billing"}
Progress = Callable[[str], None]


@dataclass
class PlanItem:
    target_system: str
    object_type: str
    record_id: str
    field: str
    finding_id: str
    rule: str
    outcome: str
    policy: str
    desired_value: str
    is_receiver: bool
    live_value: str | None = None
    expected_value: str | None = None  # the value trueup last ingested or wrote there
    action: str = ""
    reason: str = ""


@dataclass
class TargetPlan:
    plan_id: str
    target: str
    items: list[PlanItem]
    records_in_target: dict[str, int]
    mode: str = "plan_only"
    status: str = "planned"
    message: str = ""
    planned_at: datetime = field(default_factory=ledger.now)

    def with_action(self, action: str) -> list[PlanItem]:
        return [i for i in self.items if i.action == action]

    def counts(self) -> dict[str, int]:
        return dict(Counter(i.action for i in self.items))

    def counts_by_field(self) -> dict[str, dict[str, int]]:
        """Rows per `object_type.field` and action (what a dry run prints)."""
        found: dict[str, Counter[str]] = defaultdict(Counter)
        for i in self.items:
            found[f"{i.object_type}.{i.field}"][i.action] += 1
        return {name: dict(counts) for name, counts in sorted(found.items())}

    def records_to_write(self) -> dict[str, int]:
        """Distinct records per object type the plan would write."""
        records = {(i.object_type, i.record_id) for i in self.with_action("write")}
        return dict(Counter(object_type for object_type, _ in records))

    def guardrail(self, max_share: float, floor: int) -> str | None:
        """Why the plan must not be pushed (it would touch too large a share of some object
        type's records), or None."""
        for object_type, count in sorted(self.records_to_write().items()):
            total = self.records_in_target.get(object_type, 0)
            if count > max(floor, max_share * total):
                share = count / total if total else 1.0
                return (
                    f"the plan would write {count:,} of {total:,} {object_type} in {self.target} "
                    f"({share:.0%}), over the guardrail of {max_share:.0%}: aborted before writing"
                )
        return None


def new_plan_id(at: datetime) -> str:
    return f"{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def idempotency_key(
    target: str, object_type: str, record_id: str, fields: dict[str, str], plan_id: str
) -> str:
    """A key derived from the target, record, field set, values and plan: the same write of the
    same plan always carries the same key."""
    text = json.dumps([target, object_type, record_id, sorted(fields.items()), plan_id], ensure_ascii=False)
    return "trueup-" + hashlib.sha256(text.encode()).hexdigest()[:40]


# -- reading the warehouse -------------------------------------------------------------------


def outbox_items(con: Any, target: str) -> list[PlanItem]:
    """The target's outbox rows, each with its finding's rule and the ownership contract's word:
    whether the target receives the field and the strictest policy of its ownership rows
    (a finding on a person's name is governed by both name fields)."""
    if not _exists(con, "reverse_etl", f"outbox_{target}"):
        raise RuntimeError(f"reverse_etl.outbox_{target} does not exist yet: build the models first")
    rows = con.execute(
        f"""
        with outbox as (select * from reverse_etl.outbox_{target}),
        governed as (
            select
                outbox.object_type, outbox.record_id, outbox.field, outbox.finding_id,
                any_value(findings.rule) as rule,
                any_value(outbox.outcome) as outcome,
                any_value(outbox.desired_value) as desired_value,
                count(ownership.field) as ownership_rows,
                coalesce(bool_and(list_contains(
                    regexp_split_to_array(trim(coalesce(ownership.receiver_systems, '')), '[\\s,;|]+'),
                    outbox.target_system
                )), false) as is_receiver,
                max(case ownership.conflict_policy
                    when 'auto' then 1 when 'review' then 2 when 'never' then 3 else 4 end) as strictness
            from outbox
            left join {FINDINGS} as findings on outbox.finding_id = findings.finding_id
            left join {OWNERSHIP} as ownership
                on findings.entity = ownership.entity
                and (findings.field = ownership.field
                     or (findings.field = 'name' and ownership.field in ('first_name', 'last_name')))
            group by all
        )
        select object_type, cast(record_id as varchar), field, finding_id, coalesce(rule, ''),
               coalesce(outcome, ''), coalesce(cast(desired_value as varchar), ''),
               ownership_rows > 0 and is_receiver, strictness
        from governed
        order by object_type, record_id, field
        """
    ).fetchall()
    policy_of = {1: "auto", 2: "review", 3: "never"}
    return [
        PlanItem(target, r[0], r[1], r[2], r[3], r[4], r[5], policy_of.get(r[8], "unknown"), r[6], bool(r[7]))
        for r in rows
    ]


def records_in_target(con: Any, target: str, object_types: Iterable[str]) -> dict[str, int]:
    """How many records of each object type the warehouse holds from the target (the guardrail's base)."""
    counts = {}
    for object_type in sorted(set(object_types)):
        if _exists(con, RAW[target], object_type):
            row = con.execute(f'select count(*) from {RAW[target]}."{object_type}"').fetchone()
            counts[object_type] = int(row[0]) if row else 0
    return counts


def ingested_values(con: Any, target: str, items: list[PlanItem]) -> dict[tuple[str, str, str], str]:
    """(object type, record, field) -> the value as the last ingest read it from the target."""
    found: dict[tuple[str, str, str], str] = {}
    pairs = sorted({(i.object_type, i.field) for i in items})
    for object_type, name in pairs:
        column = f"properties__{name}" if target == "crm" else name
        if not _has_column(con, RAW[target], object_type, column):
            continue
        ids = sorted({i.record_id for i in items if i.object_type == object_type and i.field == name})
        rows = con.execute(
            f'select cast(id as varchar), cast(arg_max("{column}", _dlt_load_id) as varchar) '
            f'from {RAW[target]}."{object_type}" where cast(id as varchar) in (select unnest(?)) group by 1',
            [ids],
        ).fetchall()
        for record_id, value in rows:
            found[(object_type, record_id, name)] = value or ""
    return found


def _exists(con: Any, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def _has_column(con: Any, schema: str, table: str, column: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.columns where table_schema = ? and table_name = ? "
        "and column_name = ?",
        [schema, table, column],
    ).fetchone()
    return bool(row and row[0])


# -- comparing values -------------------------------------------------------------------------


def same_value(left: str | None, right: str | None) -> bool:
    """Whether two target values are the same: equal text, a mailbox in another case, or one
    instant written two ways (ISO with or without milliseconds, epoch milliseconds)."""
    a, b = (left or "").strip(), (right or "").strip()
    if a == b:
        return True
    if "@" in a and a.lower() == b.lower():
        return True
    first, second = _instant(a), _instant(b)
    return first is not None and first == second


def _instant(text: str) -> float | None:
    if len(text) == 13 and text.isdigit():
        return int(text) / 1000
    if len(text) < 10 or text[4:5] != "-":
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else None


# -- deciding ---------------------------------------------------------------------------------


def decide(
    item: PlanItem,
    live: dict[str, str] | None,
    ingested: str | None,
    written: str | None,
    approved: dict[str, set[str]],
) -> None:
    """Set the item's action and reason from its live value, what trueup last saw or wrote
    there, the contract and the approvals."""
    if not item.is_receiver or item.policy not in ("auto", "review"):
        item.action = "forbidden"
        item.reason = (
            f"the ownership contract does not let {item.target_system} receive it (policy {item.policy})"
        )
        return
    if live is None:
        item.action, item.reason = "gone", "the target no longer holds this record"
        return
    item.live_value = live.get(item.field, "")
    if same_value(item.live_value, item.desired_value):
        item.action, item.reason = "in_sync", "the live value already is the desired one"
        return
    known = [v for v in (ingested, written) if v is not None]
    item.expected_value = written if written is not None else ingested
    if known and not any(same_value(item.live_value, v) for v in known):
        item.action = "conflict"
        item.reason = (
            "changed in the target since trueup last read or wrote it (a human edit): not overwritten"
        )
        return
    if item.policy == "review" and item.outcome != "missing" and not _approved(item, approved):
        item.action, item.reason = "review", "waits for approval (policy review)"
        return
    item.action, item.reason = "write", f"{item.outcome or 'difference'} under policy {item.policy}"


def _approved(item: PlanItem, approved: dict[str, set[str]]) -> bool:
    return item.finding_id in approved.get("finding", set()) or item.rule in approved.get("rule", set())


def build_plan(con: Any, target: Target, plan_id: str, progress: Progress | None = None) -> TargetPlan:
    """Read the outbox, the live values (in the target's batches) and the ledger; judge every row."""
    say = progress or (lambda _: None)
    items = outbox_items(con, target.system)
    say(f"{target.system}: {len(items):,} outbox rows; reading live values")
    ingested = ingested_values(con, target.system, items)
    written = ledger.last_written(con, target.system)
    approved = ledger.approvals(con)
    by_type: dict[str, list[PlanItem]] = defaultdict(list)
    for item in items:
        by_type[item.object_type].append(item)
    for object_type, group in sorted(by_type.items()):
        allowed = [i for i in group if i.is_receiver and i.policy in ("auto", "review")]
        ids = sorted({i.record_id for i in allowed})
        fields = sorted({i.field for i in allowed})
        live = target.read(object_type, ids, fields) if ids else {}
        for item in group:
            key = (object_type, item.record_id, item.field)
            if item.record_id in live and live[item.record_id] is None:
                item.action, item.reason = (
                    "unread",
                    "the target did not answer for this record: planned next run",
                )
                continue
            decide(item, live.get(item.record_id), ingested.get(key), written.get(key), approved)
    plan = TargetPlan(plan_id, target.system, items, records_in_target(con, target.system, by_type))
    say(
        f"{target.system}: " + ", ".join(f"{n:,} {a}" for a, n in sorted(plan.counts().items()))
        if items
        else f"{target.system}: nothing to do"
    )
    return plan


def record_plan(con: Any, plan: TargetPlan, run_id: str) -> None:
    """Store the plan's rows and its conflicts (conflicts are recorded with both values)."""
    ledger.append(
        con,
        "plan_items",
        [
            {
                "plan_id": plan.plan_id,
                "target_system": i.target_system,
                "object_type": i.object_type,
                "record_id": i.record_id,
                "field": i.field,
                "finding_id": i.finding_id,
                "rule": i.rule,
                "outcome": i.outcome,
                "policy": i.policy,
                "desired_value": i.desired_value,
                "live_value": i.live_value,
                "action": i.action,
                "reason": i.reason,
            }
            for i in plan.items
        ],
    )
    ledger.append(
        con,
        "conflicts",
        [
            {
                "plan_id": plan.plan_id,
                "run_id": run_id,
                "target_system": i.target_system,
                "object_type": i.object_type,
                "record_id": i.record_id,
                "field": i.field,
                "finding_id": i.finding_id,
                "desired_value": i.desired_value,
                "live_value": i.live_value,
                "expected_value": i.expected_value,
                "reason": i.reason,
                "detected_at": plan.planned_at,
            }
            for i in plan.with_action("conflict")
        ],
    )


def record_status(con: Any, plan: TargetPlan, run_id: str) -> None:
    writes = plan.records_to_write()
    ledger.append(
        con,
        "plans",
        [
            {
                "plan_id": plan.plan_id,
                "run_id": run_id,
                "target_system": plan.target,
                "mode": plan.mode,
                "status": plan.status,
                "message": plan.message,
                "records_in_target": sum(plan.records_in_target.values()),
                "records_to_write": sum(writes.values()),
                "counts": json.dumps(plan.counts(), sort_keys=True),
                "planned_at": plan.planned_at,
                "finished_at": ledger.now(),
            }
        ],
    )
