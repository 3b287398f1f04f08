"""Compare a warehouse's raw tables with the sandbox world they were loaded from:
every key present exactly once, and each record at the version the world serves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sandbox.store import World


@dataclass(frozen=True)
class TableCheck:
    table: str  # schema.table
    columns: str  # SQL select list: key columns then version columns
    expected: Callable[[World], Iterable[tuple[Any, ...]]]
    key_columns: int = 1


def _props(record: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(record["properties"].get(n) for n in names)


CHECKS = (
    TableCheck(
        "raw_crm.contacts",
        "id, properties__lastmodifieddate",
        lambda w: ((c["id"], *_props(c, "lastmodifieddate")) for c in w.crm.contacts),
    ),
    TableCheck(
        "raw_crm.deals",
        "id, properties__hs_lastmodifieddate",
        lambda w: ((d["id"], *_props(d, "hs_lastmodifieddate")) for d in w.crm.deals),
    ),
    TableCheck(
        "raw_crm.companies",
        "id, properties__hs_lastmodifieddate",
        lambda w: ((c["id"], *_props(c, "hs_lastmodifieddate")) for c in w.crm.companies),
    ),
    TableCheck(
        "raw_crm.meetings",
        "id, properties__hs_lastmodifieddate",
        lambda w: ((m["id"], *_props(m, "hs_lastmodifieddate")) for m in w.crm.meetings),
    ),
    TableCheck(
        "raw_billing.customers", "id, email", lambda w: ((c["id"], c["email"]) for c in w.billing.customers)
    ),
    TableCheck(
        "raw_billing.invoices",
        "id, status, amount_paid",
        lambda w: ((i["id"], i["status"], i["amount_paid"]) for i in w.billing.invoices),
    ),
    TableCheck(
        "raw_billing.charges", "id, status", lambda w: ((c["id"], c["status"]) for c in w.billing.charges)
    ),
    TableCheck(
        "raw_billing.subscriptions",
        "id, status",
        lambda w: ((s["id"], s["status"]) for s in w.billing.subscriptions),
    ),
    TableCheck(
        "raw_scheduling.scheduled_events",
        "uri, status",
        lambda w: ((e["uri"], e["status"]) for e in w.scheduling.events),
    ),
    TableCheck(
        "raw_scheduling.invitees",
        "uri, status",
        lambda w: ((i["uri"], i["status"]) for i in w.scheduling.invitees),
    ),
    TableCheck(
        "raw_ads.google_campaign_metrics",
        "customer__id, campaign__id, segments__date",
        lambda w: ((r["customer_id"], r["campaign_id"], r["date"]) for r in w.ads.google_rows),
        key_columns=3,
    ),
    TableCheck(
        "raw_ads.meta_campaign_insights",
        "account_id, campaign_id, date_start",
        lambda w: ((r["account_id"], r["campaign_id"], r["date"]) for r in w.ads.meta_rows),
        key_columns=3,
    ),
)


@dataclass
class Parity:
    """A warehouse against the world: record versions compared, and what differed."""

    checked: int = 0  # record versions the world holds (one per key, at its current version)
    lost: int = 0  # versions missing from raw, or held in another version
    doubled: int = 0  # keys raw holds more than once
    unexpected: int = 0  # rows raw holds that the world does not (a stale version, a deleted record)
    problems: list[str] = field(default_factory=list)

    def __add__(self, other: Parity) -> Parity:
        return Parity(
            self.checked + other.checked,
            self.lost + other.lost,
            self.doubled + other.doubled,
            self.unexpected + other.unexpected,
            self.problems + other.problems,
        )


def compare(warehouse: Path, world: World, sample: int = 5, schemas: Sequence[str] = ("",)) -> Parity:
    """Every table check whose schema starts with one of `schemas` (default: all of them)."""
    parity = Parity()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for check in CHECKS:
            if not any(check.table.startswith(schema) for schema in schemas):
                continue
            rows = [
                tuple(_text(v) for v in row)
                for row in con.execute(f"select {check.columns} from {check.table}").fetchall()
            ]
            expected = Counter(tuple(_text(v) for v in row) for row in check.expected(world))
            found = Counter(rows)
            doubled = [k for k, n in Counter(r[: check.key_columns] for r in rows).items() if n > 1]
            missing = expected - found
            extra = found - expected
            parity.checked += sum(expected.values())
            parity.lost += sum(missing.values())
            parity.doubled += len(doubled)
            parity.unexpected += sum(extra.values())
            if doubled:
                parity.problems.append(
                    f"{check.table}: {len(doubled)} duplicate keys, e.g. {doubled[:sample]}"
                )
            if missing:
                parity.problems.append(
                    f"{check.table}: {sum(missing.values())} missing/stale, e.g. {list(missing)[:sample]}"
                )
            if extra:
                parity.problems.append(
                    f"{check.table}: {sum(extra.values())} unexpected, e.g. {list(extra)[:sample]}"
                )
    return parity


def differences(warehouse: Path, world: World, sample: int = 5, schema: str = "") -> list[str]:
    """Human-readable differences; empty when the warehouse holds exactly the world.
    `schema` (e.g. "raw_ads") limits the comparison to one system's tables."""
    return compare(warehouse, world, sample, (schema,)).problems


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
