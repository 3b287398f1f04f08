"""Accounts of other shapes and the ways records heal, against the sandbox: a token without a
scope, object types the account does not use, a fresh account whose every model still builds,
ad accounts listed twice, a source clock hours behind this machine's, quarantine fetched again
until it passes (or is accepted) and kept across a full refresh, a load package that fails
for good, a corrupt state file, the sources' own counts, and the completeness audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from ingestion import audit, declared, local_state, mend
from ingestion.pipeline import IngestError, make_pipeline, result_lines, run_system, run_systems
from ingestion.quarantine import open_quarantine_sql
from ingestion.warehouse import Paths
from sandbox.config import AccountShape
from sandbox.faults import Drift, FaultPlan
from sandbox.parity import compare
from sandbox.server import Sandbox
from sandbox.store import World
from tests.ingestion.helpers import fetch

SMALL = {"contacts": 120}


def _open_quarantine(paths: Paths, system: str) -> list[tuple[Any, ...]]:
    schema = f"raw_{system}"
    present = {
        r[0]
        for r in fetch(
            paths, f"select table_name from information_schema.tables where table_schema = '{schema}'"
        )
    }
    return fetch(paths, f"select resource, record_key from ({open_quarantine_sql(schema, present)})")


# -- forbidden, unused and empty resources -----------------------------------------------------


@pytest.mark.parametrize("sandbox_world", [SMALL], indirect=True)
def test_a_resource_the_token_may_not_read_is_skipped_and_the_rest_loads(
    sandbox: Sandbox, warehouse_paths: Paths, source_env
):
    sandbox.set_account(AccountShape(forbidden=["crm/owners"], unused=["crm/meetings"]))
    result = run_system("crm", where=warehouse_paths)
    assert set(result.skipped) == {"owners", "meetings", "contacts_to_meetings"}
    assert result.skipped["owners"].scope == "crm.objects.owners.read"
    assert "does not use this object type" in result.skipped["meetings"].reason
    assert fetch(warehouse_paths, "select count(*) from raw_crm.contacts")[0][0] == 120
    # declared tables exist, empty, with their columns: staging reads them
    assert fetch(warehouse_paths, "select count(*) from raw_crm.owners") == [(0,)]
    columns = {
        r[0]
        for r in fetch(
            warehouse_paths,
            "select column_name from information_schema.columns "
            "where table_schema = 'raw_crm' and table_name = 'meetings'",
        )
    }
    assert {"properties__hs_meeting_start_time", "_dlt_load_id"} <= columns
    status = fetch(warehouse_paths, "select resource, status, scope from raw_crm._resource_status order by 1")
    assert ("owners", "skipped", "crm.objects.owners.read") in status
    assert any(
        "owners skipped" in line and "crm.objects.owners.read" in line for line in result_lines([result])
    )


@pytest.mark.parametrize("sandbox_world", [SMALL], indirect=True)
def test_a_required_resource_skipped_fails_the_run_naming_the_scope(
    sandbox: Sandbox, warehouse_paths: Paths, source_env
):
    sandbox.set_account(AccountShape(forbidden=["crm/contacts", "billing/invoices"]))
    with pytest.raises(IngestError) as failed:
        run_systems(["crm", "billing"], where=warehouse_paths, parallel=False)
    message = str(failed.value)
    assert "contacts is required but was skipped" in message and "crm.objects.contacts.read" in message
    assert "invoices is required but was skipped" in message and "rak_invoice_read" in message
    assert fetch(warehouse_paths, "select count(*) from raw_crm.deals")[0][0] > 0  # the rest loaded
    # the set of required resources is a parameter
    run_systems(["crm", "billing"], where=warehouse_paths, parallel=False, required={})


@pytest.mark.parametrize("sandbox_world", [SMALL], indirect=True)
def test_a_fresh_account_builds_every_model(sandbox: Sandbox, warehouse_paths: Paths, source_env):
    from orchestration.dbt import run_dbt

    sandbox.set_account(AccountShape(empty=["crm/*", "billing/*", "scheduling/*", "ads/*"]))
    run_systems(where=warehouse_paths, parallel=False)
    for system in ("crm", "billing", "scheduling", "ads"):
        for table, columns in declared.declared(system).items():
            found = fetch(
                warehouse_paths,
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = 'raw_{system}' and table_name = '{table}'",
            )
            assert {name for name, _ in found} >= set(columns), f"raw_{system}.{table}"
    assert fetch(warehouse_paths, "select count(*) from raw_billing.payment_intents") == [(0,)]
    run_dbt(["build"], where=warehouse_paths)  # every model and test, on no data at all


@pytest.mark.parametrize("sandbox_world", [SMALL], indirect=True)
def test_an_ad_account_listed_twice_is_read_once(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    sandbox.set_account(AccountShape(duplicate_accounts=True))
    run_system("ads", where=warehouse_paths)
    for table, key in (("google_customers", "customer__id"), ("meta_accounts", "account_id")):
        rows = fetch(warehouse_paths, f"select {key}, count(*) from raw_ads.{table} group by 1")
        assert rows and all(n == 1 for _, n in rows), table
    assert not compare(warehouse_paths.warehouse, sandbox_world, schemas=["raw_ads"]).problems
    stats = sandbox.stats
    assert stats["google-ads:200"] > 0


# -- the source's clock ---------------------------------------------------------------------


def _book_invitee(world: World) -> str:
    """A new invitee on an upcoming event, stamped now by the world's clock (a group event)."""
    scheduling = world.scheduling
    soon = world.clock().strftime("%Y-%m-%dT%H:%M:%S")
    event = min(
        (e for e in scheduling.events if e["status"] == "active" and e["start_time"] > soon),
        key=lambda e: e["start_time"],
    )
    template = scheduling.invitees.get(scheduling.invitees_by_event[event["uri"]][0])
    stamp = world.clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    uri = f"{event['uri']}/invitees/LATEARRIVAL{len(scheduling.invitees)}"
    scheduling.invitees.put(
        {**template, "uri": uri, "created_at": stamp, "updated_at": stamp, "email": "late@x.io"}
    )
    scheduling.invitees_by_event[event["uri"]].append(uri)
    counter = dict(event["invitees_counter"])
    counter["total"] += 1
    scheduling.events.put({**event, "updated_at": stamp, "invitees_counter": counter})
    return uri


@pytest.mark.parametrize("skew_hours", [0, -4])
def test_a_source_clock_hours_behind_this_machines_loses_no_invitee(
    make_world, warehouse_paths: Paths, monkeypatch: pytest.MonkeyPatch, skew_hours: int
):
    """The world runs five hours behind this machine (and its Date header four more, skewed):
    invitees booked after a scan still load, because every window comes from the source's clock."""
    from orchestration.sandbox_runtime import source_env

    behind = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    world = make_world(contacts=120, anchor=behind)
    with Sandbox(world) as sandbox:
        sandbox.set_account(AccountShape(clock_skew_seconds=skew_hours * 3600))
        for name, value in source_env(sandbox.base_urls).items():
            monkeypatch.setenv(name, value)
        run_system("scheduling", where=warehouse_paths)
        with world.lock:
            uri = _book_invitee(world)
        run_system("scheduling", where=warehouse_paths)
        assert fetch(
            warehouse_paths, f"select count(*) from raw_scheduling.invitees where uri = '{uri}'"
        ) == [(1,)]
        assert not compare(warehouse_paths.warehouse, world, schemas=["raw_scheduling"]).problems


# -- quarantine that heals ------------------------------------------------------------------


@pytest.mark.parametrize("sandbox_world", [SMALL], indirect=True)
def test_quarantine_heals_can_be_accepted_and_survives_a_full_refresh(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    sandbox.faults.set(
        FaultPlan(drift={"crm/contacts": Drift(kind="changed_type", field="properties.email", fraction=0.1)})
    )
    first = run_system("crm", where=warehouse_paths)
    drifted = {key for _, key in _open_quarantine(warehouse_paths, "crm")}
    assert first.quarantined and drifted
    accepted = sorted(drifted)[:2]
    mend.accept("crm", "contacts", accepted, "known", warehouse_paths)
    run_system("crm", where=warehouse_paths)  # still drifted: the rest stay open, these are accepted
    assert {key for _, key in _open_quarantine(warehouse_paths, "crm")} == drifted - set(accepted)
    sandbox.faults.set(FaultPlan())
    run_system("crm", where=warehouse_paths)  # fixed at the source: fetched again by id, they load
    assert _open_quarantine(warehouse_paths, "crm") == []
    history = fetch(warehouse_paths, "select count(*) from raw_crm._quarantine")[0][0]
    resolved = dict(
        fetch(warehouse_paths, "select resolution, count(*) from raw_crm._quarantine_resolved group by 1")
    )
    assert resolved == {"accepted": 2, "passed": len(drifted) - 2}
    run_system("crm", where=warehouse_paths, full_refresh=True)
    assert fetch(warehouse_paths, "select count(*) from raw_crm._quarantine")[0][0] == history
    assert _open_quarantine(warehouse_paths, "crm") == []
    assert not compare(warehouse_paths.warehouse, sandbox_world, schemas=["raw_crm"]).problems


@pytest.mark.parametrize("sandbox_world", [SMALL], indirect=True)
def test_a_package_that_fails_for_good_is_set_aside_with_an_alert(
    sandbox: Sandbox,
    sandbox_world: World,
    warehouse_paths: Paths,
    source_env,
    monkeypatch: pytest.MonkeyPatch,
):
    from dlt.common.destination.exceptions import DestinationTerminalException
    from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob

    copy = DuckDbCopyJob.run

    def refuse_owners(self: Any) -> None:
        if self.load_table_name == "owners":
            raise DestinationTerminalException("a value the warehouse refuses")
        copy(self)

    monkeypatch.setattr(DuckDbCopyJob, "run", refuse_owners)
    with pytest.raises(IngestError, match="set aside"):
        run_system("crm", where=warehouse_paths)
    alerts = [
        json.loads(line) for line in (warehouse_paths.home / "ops" / "alerts.jsonl").read_text().splitlines()
    ]
    assert any(a.get("kind") == "load_package_set_aside" for a in alerts)
    monkeypatch.setattr(DuckDbCopyJob, "run", copy)
    assert not make_pipeline("crm", warehouse_paths).has_pending_data  # nothing retried forever
    run_system("crm", where=warehouse_paths)  # the records of the set-aside package are read again
    assert not compare(warehouse_paths.warehouse, sandbox_world, schemas=["raw_crm"]).problems


@pytest.mark.parametrize("sandbox_world", [SMALL], indirect=True)
def test_a_corrupt_state_file_is_named_and_reset_restores_it_from_the_warehouse(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    run_system("billing", where=warehouse_paths)
    state = local_state.pipeline_dir("billing", warehouse_paths) / "state.json"
    state.write_text(state.read_text()[:40])
    with pytest.raises(local_state.CorruptStateError, match="reset-state"):
        run_system("billing", where=warehouse_paths)
    assert local_state.reset("billing", warehouse_paths) is not None
    again = run_system("billing", where=warehouse_paths)
    assert sum(t.new for t in again.tables) == 0  # the cursor came back with the state: no reload
    assert not compare(warehouse_paths.warehouse, sandbox_world, schemas=["raw_billing"]).problems


# -- counting and auditing ------------------------------------------------------------------


@pytest.mark.parametrize("sandbox_world", [SMALL], indirect=True)
def test_the_audit_finds_and_fetches_what_raw_lacks(
    sandbox: Sandbox, sandbox_world: World, warehouse_paths: Paths, source_env
):
    run_systems(where=warehouse_paths, parallel=False)
    [contacts] = [c for c in run_system("crm", where=warehouse_paths).counts if c.resource == "contacts"]
    assert (contacts.at_source, contacts.unaccounted) == (120, 0)
    with duckdb.connect(str(warehouse_paths.warehouse)) as con:
        con.execute(
            "delete from raw_crm.contacts where id in (select id from raw_crm.contacts order by id limit 7)"
        )
        con.execute(
            "update raw_crm.deals set properties__hs_lastmodifieddate = '2001-01-01T00:00:00.000Z' "
            "where id in (select id from raw_crm.deals order by id limit 3)"
        )
        con.execute(
            "delete from raw_billing.invoices where id in (select id from raw_billing.invoices limit 4)"
        )
        con.execute(
            "delete from raw_scheduling.invitees where uri in "
            "(select uri from raw_scheduling.invitees limit 5)"
        )
        con.execute(
            "delete from raw_ads.google_campaign_metrics where _dlt_id in "
            "(select _dlt_id from raw_ads.google_campaign_metrics limit 6)"
        )
    [counted] = [c for c in run_system("crm", where=warehouse_paths).counts if c.resource == "contacts"]
    assert counted.unaccounted == 7  # HubSpot's own total says so on the very next run
    audits = {(a.system, a.resource): a for a in audit.run_audit(where=warehouse_paths)}
    found = {key: (a.missing, a.stale, a.remaining) for key, a in audits.items() if a.missing or a.stale}
    assert found == {
        ("crm", "contacts"): (7, 0, 0),
        ("crm", "deals"): (0, 3, 0),
        ("billing", "invoices"): (4, 0, 0),
        ("scheduling", "invitees"): (5, 0, 0),
        ("ads", "google_campaign_metrics"): (6, 0, 0),
    }
    assert all(a.requests > 0 for a in audits.values() if a.resource != "invitees")
    assert not compare(warehouse_paths.warehouse, sandbox_world).problems
    stored = fetch(warehouse_paths, "select sum(missing + stale), sum(remaining) from audit.completeness")
    assert stored == [(25, 0)]
