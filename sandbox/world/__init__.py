"""Deterministic generator of the sandbox business world, its ground truth and its daily advance.

`generate()` builds the CRM, billing, scheduling and ad-platform state of one small business
(see `sandbox/WORLD.md`), `advance()` moves that business forward day by day, and
`write_truth()` writes who is who and every injected anomaly. One module per system:
`crm`, `billing`, `scheduling`, `ads`; `people` and `anomalies` for the persons behind the
records and the disagreements planted between them; `daily` for the advance.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.accounts import AccountSetup
from sandbox.store import World
from sandbox.variety import Variety
from sandbox.world.common import DEFAULT_ANCHOR, FREEZE_ABOVE, KINDS, format_phone, us_e164
from sandbox.world.engine import Engine
from sandbox.world.truth import Anomaly, GroundTruth, Person

__all__ = [
    "DEFAULT_ANCHOR",
    "KINDS",
    "AccountSetup",
    "Anomaly",
    "GroundTruth",
    "Person",
    "advance",
    "format_phone",
    "generate",
    "record_counts",
    "truth_summary",
    "us_e164",
    "write_truth",
]


def generate(
    seed: int = 7,
    contacts: int = 2000,
    noise: float = 1.0,
    anchor: datetime = DEFAULT_ANCHOR,
    progress: Callable[[str], None] | None = None,
    variety: Variety | None = None,
    setup: AccountSetup | None = None,
) -> World:
    """Build the whole sandbox world (see sandbox/WORLD.md); deterministic from the arguments.
    `variety` switches on the patterns of real accounts (`sandbox.variety`); `setup` sets the
    account switches (sandbox/accounts.py). The defaults are the world as always."""
    if contacts < 100:
        raise ValueError("a world needs at least 100 contacts")
    if anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    world = World(seed=seed, contacts_target=contacts, now=anchor, setup=setup or AccountSetup())
    engine = Engine(world, seed, contacts, noise, anchor, variety or Variety())
    world.truth = GroundTruth(seed, contacts, noise, anchor, engine.persons, engine.anomalies, engine)
    # Millions of small containers: cyclic GC passes during the build would only slow it down.
    # A large world is long-lived and free of reference cycles, so it is then frozen out of the
    # collector's reach (otherwise the next collections walk all of it: tens of seconds at 1M).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        engine.build(progress or (lambda _line: None))
    finally:
        if was_enabled:
            if contacts >= FREEZE_ABOVE:
                gc.freeze()
            gc.enable()
    return world


def truth_summary(world: World) -> dict[str, Any]:
    """Counts per anomaly kind (active and fixed), for logs."""
    truth: GroundTruth = world.truth
    kinds: dict[str, dict[str, int]] = {k: {"active": 0, "fixed": 0} for k in KINDS}
    for a in truth.anomalies:
        kinds.setdefault(a.kind, {"active": 0, "fixed": 0})["active" if a.active else "fixed"] += 1
    return {
        "persons": len(truth.persons),
        "anomalies": len(truth.anomalies),
        "active": sum(k["active"] for k in kinds.values()),
        "fixed": sum(k["fixed"] for k in kinds.values()),
        "kinds": kinds,
    }


def record_counts(world: World) -> dict[str, int]:
    """Records per collection, as meta.json and the benchmark report them."""
    crm, billing, sched, ads = world.crm, world.billing, world.scheduling, world.ads
    return {
        "crm.owners": len(crm.owners),
        "crm.pipelines": len(crm.pipelines),
        "crm.companies": len(crm.companies),
        "crm.contacts": len(crm.contacts),
        "crm.deals": len(crm.deals),
        "crm.meetings": len(crm.meetings),
        "crm.associations": sum(len(v) for k, m in crm.associations.items() for v in m.values()) // 2,
        "billing.customers": len(billing.customers),
        "billing.invoices": len(billing.invoices),
        "billing.payment_intents": len(billing.payment_intents),
        "billing.charges": len(billing.charges),
        "billing.subscriptions": len(billing.subscriptions),
        "billing.events": len(billing.events),
        "scheduling.users": len(sched.users),
        "scheduling.events": len(sched.events),
        "scheduling.invitees": len(sched.invitees),
        "ads.google_customers": len(ads.google_customers),
        "ads.google_campaigns": len(ads.google_campaigns),
        "ads.google_rows": len(ads.google_rows),
        "ads.meta_accounts": len(ads.meta_accounts),
        "ads.meta_campaigns": len(ads.meta_campaigns),
        "ads.meta_rows": len(ads.meta_rows),
    }


def advance(world: World, days: int = 1) -> None:
    """Move the business forward `days` days: new leads, deals, payments, meetings, anomalies."""
    engine: Engine = world.truth.engine
    for _ in range(days):
        engine.advance_day(world)


def write_truth(world: World, directory: Path) -> None:
    """Write identities.jsonl, anomalies.jsonl and meta.json into `directory`."""
    truth: GroundTruth = world.truth
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dumps = json.dumps
    with open(directory / "identities.jsonl", "w", encoding="utf-8") as out:
        batch: list[str] = []
        for person in truth.persons:
            batch.append(dumps(person.identity()))
            if len(batch) >= 10_000:
                out.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            out.write("\n".join(batch) + "\n")
    with open(directory / "anomalies.jsonl", "w", encoding="utf-8") as out:
        for anomaly in truth.anomalies:
            out.write(dumps(anomaly.as_dict()) + "\n")
    meta = {
        "seed": truth.seed,
        "contacts": truth.contacts,
        "noise": truth.noise,
        "anchor": truth.anchor.isoformat(),
        "now": world.now.isoformat(),
        "counts": record_counts(world),
        "anomalies": truth_summary(world)["kinds"],
    }
    if not world.setup.is_default:
        meta["setup"] = world.setup.as_dict()
    (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
