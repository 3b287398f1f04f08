"""Calendly's re-scan window cannot see a change to an event that started before it; the
webhook names the event, and the sync reads that event and its invitees wherever it lies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import httpx

from ingestion.pipeline import run_system
from ingestion.warehouse import Paths
from ingestion.webhooks.drain import drain
from ingestion.webhooks.events import parse
from ingestion.webhooks.inbox import Accept, Inbox, apply, connect, transaction
from ingestion.webhooks.settings import inbox_path
from orchestration import webhooks as intake
from orchestration.sandbox_runtime import source_env, today_anchor
from sandbox import world as world_module
from sandbox.config import DEFAULT_TOKENS
from sandbox.server import Sandbox
from sandbox.webhooks import WebhookConfig
from tests.webhooks.conftest import calendly_event, running
from tests.webhooks.test_sender import sandbox_settings


def statuses(home: Path, event_uri: str) -> set[str]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select status from raw_scheduling.invitees where event = ?", [event_uri]
        ).fetchall()
    return {status for (status,) in rows}


def test_a_change_outside_the_rescan_window_arrives_through_the_named_event(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TRUEUP_HOME", str(home))
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    where = Paths(home=home)
    world = world_module.generate(seed=13, contacts=100, anchor=today_anchor())
    old = world.now - timedelta(days=60)  # long before the 30-day re-scan window
    event = next(
        e
        for e in world.scheduling.events
        if e["status"] == "active" and e["start_time"] < old.isoformat() and e["invitees_counter"]["active"]
    )
    settings = sandbox_settings(inbox_path(where))
    with running(settings) as url, Sandbox(world) as sandbox:
        for name, value in source_env(sandbox.base_urls).items():
            monkeypatch.setenv(name, value)
        run_system("scheduling", where=where)
        assert statuses(home, event["uri"]) == {"active"}
        sender = sandbox.send_webhooks(WebhookConfig(url=f"{url}/webhooks", providers=("calendly",)))
        uuid = event["uri"].rsplit("/", 1)[1]
        httpx.post(
            f"{sandbox.base_urls['calendly']}/scheduled_events/{uuid}/cancellation",
            json={"reason": "late"},
            headers={"Authorization": f"Bearer {DEFAULT_TOKENS['calendly']}"},
        ).raise_for_status()
        run_system("scheduling", where=where)  # the window re-scan
        assert statuses(home, event["uri"]) == {"active"}  # cannot see it
        assert sender.flush(30)
        instance = dg.DagsterInstance.ephemeral()
        request = intake.evaluate(instance)
        assert isinstance(request, dg.RunRequest) and intake.named_events(request.run_config) == [
            event["uri"]
        ]
        from orchestration.definitions import defs

        assert intake.execute(request, instance, defs).success
    assert statuses(home, event["uri"]) == {"canceled"}
    assert Inbox(settings.inbox).unsynced() == {}


def test_an_event_that_no_longer_exists_is_skipped(tmp_path, monkeypatch):
    world = world_module.generate(seed=13, contacts=100, anchor=today_anchor())
    event = next(iter(world.scheduling.events))
    gone = event["uri"].rsplit("/", 1)[0] + "/GONEGONEGONEGONE"
    with Sandbox(world) as sandbox:
        for name, value in source_env(sandbox.base_urls).items():
            monkeypatch.setenv(name, value)
        result = run_system(
            "scheduling", where=Paths(home=tmp_path), source_kwargs={"event_uris": [gone, event["uri"]]}
        )
    assert {t.table: t.loaded for t in result.tables}["scheduled_events"] == 1


def test_the_sensor_names_the_events_and_the_run_marks_only_those(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUEUP_HOME", str(tmp_path))
    inbox = Inbox(tmp_path / "webhooks" / "inbox.sqlite3")
    con = connect(inbox.path)
    base = "https://api.calendly.com/scheduled_events"
    for n, event in enumerate(("E1", "E1", "E2")):
        body = calendly_event("invitee.created", f"{base}/{event}/invitees/I{n}", f"2026-01-01T00:00:0{n}Z")
        with transaction(con):
            apply(con, Accept("calendly", 10 + n, {}, body, parse("calendly", body)))
    con.close()
    assert intake.scheduling_events(inbox) == [f"{base}/E1", f"{base}/E2"]
    assert intake.scheduling_events(inbox, limit=1) is None  # a storm: re-scan the window instead
    request = intake.run_request(inbox.unsynced(), intake.scheduling_events(inbox))
    assert intake.named_events(request.run_config) == [f"{base}/E1", f"{base}/E2"]
    drain(inbox, tmp_path / "warehouse.duckdb")
    assert (
        inbox.mark_synced_objects("scheduling", [f"{base}/E1/invitees/"], before_us=100, synced_us=200) == 2
    )
    assert inbox.unsynced() == {"scheduling": 1}
    form = calendly_event("routing_form_submission.created", "https://x/forms/1", "2026-01-01T00:00:09Z")
    con = connect(inbox.path)
    with transaction(con):
        apply(con, Accept("calendly", 20, {}, form, parse("calendly", form)))
    con.close()
    assert intake.scheduling_events(inbox) is None  # names no event: re-scan the window
