"""Reverse ETL figures: a throttled push of many changed records against HubSpot's limits, the
kill -9 soak, and a 1 % change that must write exactly the changed records.

python benchmarks/bench_reverse_etl.py --records 100000 --trials 50
python benchmarks/bench_reverse_etl.py --records 5000 --trials 3      # quick

1. Throttled push: a world of `--records` contacts served with HubSpot's limit (100 requests
   per rolling 10 s, 100 inputs per batch update), an outbox changing every contact's lifecycle
   stage. The plan reads every record (batch read) and the push writes them (batch update);
   the ceiling is the limit itself: 0.1 s per request past the first window's 100. Printed:
   wall time as a share of the ceiling (push alone, and plan + push), and the share of 429s.
2. Kill soak: `--trials` pushes of the default 2,000-contact world killed (SIGKILL) at random
   moments, each re-run; the sandbox's write log must show every intended write once.
3. 1 % change: after a night that pushed and a night that converged, 1 % of the linked billing
   customers get another email at the source; the next night (ingest, build, push) must write
   exactly those records.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

from ingestion.warehouse import Paths
from orchestration.sandbox_runtime import patched_env, source_env, today_anchor
from reverse_etl.config import Settings, TargetSettings
from reverse_etl.run import run
from sandbox import world as world_module
from sandbox.config import DEFAULT_TOKENS, RateLimitConfig
from sandbox.server import Sandbox

HUBSPOT_PER_10S = 100
ROOT = Path(__file__).resolve().parents[1]


def settings_for(sandbox: Sandbox, **overrides: object) -> Settings:
    targets = {
        system: TargetSettings(
            system=system, base_url=sandbox.base_urls[prefix], token=DEFAULT_TOKENS[prefix], push=True
        )
        for system, prefix in (("crm", "hubspot"), ("billing", "stripe"))
    }
    return Settings(targets=targets, **overrides)  # type: ignore[arg-type]


# -- 1. the throttled push ------------------------------------------------------------------------


def synthetic_warehouse(path: Path, world: world_module.World, tmp: Path) -> int:
    """A warehouse holding what the push reads: raw contacts as ingested, the ownership seed,
    one finding and one outbox row per contact (its lifecycle stage changes)."""
    rows = tmp / "contacts.csv"
    with rows.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "stage"])
        for record in world.crm.objects("contacts") or []:
            out.writerow([record["id"], record["properties"].get("lifecyclestage") or ""])
    seed = ROOT / "dbt_project" / "seeds" / "ownership.csv"
    with duckdb.connect(str(path)) as con:
        for schema in ("raw_crm", "seeds", "reconciliation", "reverse_etl"):
            con.execute(f"create schema {schema}")
        con.execute(
            f"create table raw_crm.contacts as select cast(id as varchar) as id, stage as "
            f"properties__lifecyclestage, 'load' as _dlt_load_id from read_csv('{rows}', all_varchar = true)"
        )
        con.execute(f"create table seeds.ownership as select * from read_csv('{seed}', all_varchar = true)")
        con.execute(
            "create table reconciliation.findings as select 'f' || id as finding_id, "
            "'paid_invoice_crm_not_customer' as rule, 'contact' as entity, 'lifecycle_stage' as field "
            "from raw_crm.contacts"
        )
        con.execute(
            "create table reverse_etl.outbox_crm as select 'crm' as target_system, "
            "'contacts' as object_type, id as record_id, 'lifecyclestage' as field, "
            "case when properties__lifecyclestage = 'customer' then 'lead' else 'customer' end "
            "as desired_value, "
            "'f' || id as finding_id, 'conflict' as outcome, 'c' || id as customer_id, 1.0 as confidence "
            "from raw_crm.contacts"
        )
        row = con.execute("select count(*) from reverse_etl.outbox_crm").fetchone()
    return int(row[0]) if row else 0


def throttled_push(records: int, seed: int, in_flight: int = 4) -> None:
    world = world_module.generate(seed=seed, contacts=records, anchor=today_anchor())
    limits = RateLimitConfig(hubspot_per_10s=HUBSPOT_PER_10S)
    with tempfile.TemporaryDirectory() as tmp, Sandbox(world) as sandbox:
        sandbox.set_limits(limits)
        home = Path(tmp)
        changed = synthetic_warehouse(home / "warehouse.duckdb", world, home)
        settings = settings_for(sandbox, max_share=1.0, in_flight=in_flight)  # every record changes here
        started = time.monotonic()
        [outcome] = run(Paths(home), targets=["crm"], settings=settings, check_integrity=False)
        total = time.monotonic() - started
        writes = httpx.get(f"{sandbox.url}/_admin/writes?system=crm").json()["count"]
    push = outcome.push
    assert push is not None
    write_requests = math.ceil(changed / 100)
    read_requests = math.ceil(changed / 100)
    per_request = 10.0 / HUBSPOT_PER_10S
    # the fastest the limit allows: the push starts with the plan's reads filling the window,
    # so each write waits its turn; the whole run starts with an empty window (a first burst)
    push_ceiling = write_requests * per_request
    all_ceiling = max(0, write_requests + read_requests - HUBSPOT_PER_10S) * per_request
    throttled = push.statuses.get(429, 0)
    print(
        f"throttled push: {changed:,} changed contacts, {writes:,} records written "
        f"({push.applied:,} applied, {push.dead_letters} dead letters) under {HUBSPOT_PER_10S} "
        "requests per 10 s"
    )
    print(
        f"  push: {push.seconds:.1f} s for {write_requests:,} batch updates; ceiling {push_ceiling:.1f} s -> "
        f"{push_ceiling / push.seconds:.1%} of the ceiling"
    )
    print(
        f"  plan + push: {total:.1f} s for {push.requests:,} requests ({read_requests:,} batch reads); "
        "ceiling "
        f"{all_ceiling:.1f} s -> {all_ceiling / total:.1%} of the ceiling"
        if all_ceiling
        else f"  plan + push: {total:.1f} s (all within the first window: no ceiling to compare)"
    )
    print(f"  429 answers: {throttled:,} of {push.requests:,} ({throttled / max(push.requests, 1):.2%})")


# -- 2. the kill soak -----------------------------------------------------------------------------


def built_default_world(home: Path) -> object:
    from orchestration.dbt import run_dbt
    from tests.conftest import load_world

    warehouse = load_world(home)
    run_dbt(["build"], where=warehouse.paths)
    return warehouse


def kill_soak(built: object, tmp: Path, trials: int, seed: int) -> None:
    from tests.reverse_etl.test_kill import kill_trials

    started = time.monotonic()
    killed, cut = kill_trials(built, tmp, trials, seed)  # type: ignore[arg-type]
    print(
        f"kill -9 soak: {trials} trials, {killed} killed before the push ended ({cut} between two "
        "writes); after each re-run every intended write was applied exactly once "
        f"({time.monotonic() - started:.0f} s)"
    )


# -- 3. a 1 % change ------------------------------------------------------------------------------


def night(home: Path, sandbox: Sandbox) -> dict[str, int]:
    """Ingest CRM and billing, build, push; returns the writes the push made per system."""
    from ingestion.pipeline import run_systems
    from orchestration.dbt import run_dbt

    before = httpx.get(f"{sandbox.url}/_admin/writes").json()["count"]
    with patched_env(source_env(sandbox.base_urls)):
        run_systems(["crm", "billing"], where=Paths(home))
    run_dbt(["build"], where=Paths(home))
    run(Paths(home), settings=settings_for(sandbox), check_integrity=False)
    writes = httpx.get(f"{sandbox.url}/_admin/writes?after={before}").json()["writes"]
    return {"records": len({(w["system"], w["record_id"]) for w in writes})}


def one_percent_change(built: object, tmp: Path, seed: int) -> None:
    from tests.reverse_etl.conftest import fresh_world

    home = tmp / "change"
    built.copy_to(home)  # type: ignore[attr-defined]
    world = fresh_world()
    with Sandbox(world) as sandbox:
        first = run(Paths(home), settings=settings_for(sandbox), check_integrity=False)
        pushed = sum(o.push.applied for o in first if o.push)
        converged = night(home, sandbox)
        repaired, pushed_findings = repair_counts(home)
        customers = [
            c
            for c in world.billing.customers
            if (c.get("metadata") or {}).get("hubspot_contact_id") and c.get("email")
        ]
        count = max(1, round(0.01 * world.contacts_target))
        chosen = random.Random(seed).sample(customers, count)
        headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['stripe']}"}
        for index, customer in enumerate(chosen):
            url = f"{sandbox.base_urls['stripe']}/v1/customers/{customer['id']}"
            httpx.post(
                url, data={"email": f"moved-{index}@elsewhere.example"}, headers=headers
            ).raise_for_status()
        before = httpx.get(f"{sandbox.url}/_admin/writes").json()["count"]
        night(home, sandbox)
        writes = httpx.get(f"{sandbox.url}/_admin/writes?after={before}").json()["writes"]
    written = {w["record_id"] for w in writes}
    changed = {c["id"] for c in chosen}
    print(
        f"convergence: first push {pushed} records ({pushed_findings} findings); after the next "
        f"night's ingest and build {repaired} of them are repaired, and that night wrote "
        f"{converged['records']} records"
    )
    print(
        f"1 % change: {len(changed)} customers' emails changed at the source; the next night wrote "
        f"{len(written)} records, exactly the changed ones: {written == changed}"
    )


def repair_counts(home: Path) -> tuple[int, int]:
    """(findings the ledger pushed that `findings` now calls repaired, findings the ledger pushed)."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(
            """
            with pushed as (select distinct finding_id from reverse_etl.ledger where status = 'applied')
            select count(*) filter (where findings.status = 'repaired'), count(*)
            from pushed left join reconciliation.findings as findings using (finding_id)
            """
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--in-flight", type=int, default=4, help="requests on the wire at once")
    parser.add_argument("--only", choices=("throttled", "kill", "change"), action="append")
    args = parser.parse_args()
    parts = args.only or ["throttled", "kill", "change"]
    if "throttled" in parts:
        throttled_push(args.records, args.seed, args.in_flight)
    if "kill" in parts or "change" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            built = built_default_world(Path(tmp) / "built")
            if "kill" in parts:
                kill_soak(built, Path(tmp), args.trials, args.seed)
            if "change" in parts:
                one_percent_change(built, Path(tmp), args.seed)


if __name__ == "__main__":
    main()
