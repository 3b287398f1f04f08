"""End to end on the sandbox: a storm of changes delivered while a nightly run holds the writer
lock is kept in the inbox; the run the sensor requests waits for the lock, then drains it all
into raw_webhooks and syncs the affected systems."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest

from ingestion.warehouse import Paths
from ingestion.webhooks.inbox import Inbox
from ingestion.webhooks.monitor import intake_health, report_section, status_lines
from ingestion.webhooks.settings import inbox_path
from orchestration import webhooks as intake
from orchestration.resources import WRITER_TAG, WRITER_TAG_VALUE, writer_lock
from orchestration.sandbox_runtime import source_env, today_anchor
from sandbox import world as world_module
from sandbox.config import DEFAULT_TOKENS
from sandbox.server import Sandbox
from sandbox.webhooks import WebhookConfig
from tests.webhooks.conftest import running
from tests.webhooks.test_sender import sandbox_settings


@pytest.mark.slow
def test_a_storm_while_a_nightly_run_writes_is_kept_then_drained_and_synced(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TRUEUP_HOME", str(home))
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    where = Paths(home=home)
    world = world_module.generate(seed=9, contacts=100, anchor=today_anchor())
    instance = dg.DagsterInstance.ephemeral()
    nightly = dg.DagsterRun(
        job_name="nightly", status=dg.DagsterRunStatus.STARTED, tags={WRITER_TAG: WRITER_TAG_VALUE}
    )
    instance.add_run(nightly)
    lock_held, release = threading.Event(), threading.Event()

    def hold_the_writer_lock() -> None:  # what the nightly run's warehouse_writer resource does
        with writer_lock(where):
            lock_held.set()
            release.wait(300)

    holder = threading.Thread(target=hold_the_writer_lock, daemon=True)
    holder.start()
    assert lock_held.wait(30)
    settings = sandbox_settings(inbox_path(where))
    with running(settings) as url, Sandbox(world) as sandbox:
        for name, value in source_env(sandbox.base_urls).items():
            monkeypatch.setenv(name, value)
        # CRM webhooks only: the run then syncs one system (in this process, no extract workers)
        config = WebhookConfig(url=f"{url}/webhooks", duplicate_rate=0.2, seed=1, providers=("hubspot",))
        sender = sandbox.send_webhooks(config)
        contacts = [c["id"] for c in world.crm.contacts][:40]
        headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['hubspot']}"}
        with httpx.Client(base_url=sandbox.base_urls["hubspot"], headers=headers) as client:
            for n in range(400):  # the storm: every write is a delivery
                body = {"properties": {"email": f"storm{n}@example.com"}}
                client.patch(f"/crm/v3/objects/contacts/{contacts[n % 40]}", json=body).raise_for_status()
        with world.lock:
            world_module.advance(world, days=2)
        assert sender.flush(120)
        sent = sum(sender.summary()["events"].values())

        inbox = Inbox(settings.inbox)
        assert inbox.figures().events == sent  # every event kept once, while the warehouse was busy
        request = intake.evaluate(instance)  # a run that queues behind the nightly one
        assert isinstance(request, dg.RunRequest)
        from orchestration.definitions import defs

        outcome: dict[str, dg.ExecuteInProcessResult] = {}
        run = threading.Thread(target=lambda: outcome.update(result=intake.execute(request, instance, defs)))
        run.start()  # it waits for the writer lock
        assert not (home / "warehouse.duckdb").exists()  # nothing can be written while the lock is held
        instance.delete_run(nightly.run_id)
        release.set()
        run.join(timeout=300)
        assert outcome["result"].success

    figures = inbox.figures()
    assert (figures.undrained, figures.unsynced) == (0, 0)
    assert figures.synced_latency is not None and figures.synced_latency.events == sent
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw_webhooks.events").fetchone() == (sent,)
        last_email = con.execute(
            "select properties__email from raw_crm.contacts where id = ?", [contacts[399 % 40]]
        ).fetchone()
        settled = con.execute(
            "select payload ->> 'propertyValue' from raw_webhooks.latest "
            "where object_id = ? and field = 'email'",
            [contacts[399 % 40]],
        ).fetchone()
    assert last_email == ("storm399@example.com",) == settled  # the sync and the settled event agree
    check = [
        e for e in outcome["result"].get_asset_check_evaluations() if e.check_name == intake.HEALTH_CHECK
    ]
    assert check and check[0].passed
    assert isinstance(intake.evaluate(instance), dg.SkipReason)  # nothing left to do

    health = intake_health(where)
    assert health is not None and not health.problems()
    assert f"{sent:,} events; 0 waiting" in status_lines(where)[0]
    assert "delivery -> warehouse" in report_section(health, markdown=True)
