"""The sensor's decisions, the intake's health check fed a stalled inbox, and `trueup webhooks replay`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ingestion.warehouse import Paths
from ingestion.webhooks import events as events_module
from ingestion.webhooks.inbox import Accept, Inbox, Tally, apply, connect, transaction
from ingestion.webhooks.monitor import intake_health, report_section, status_lines
from ingestion.webhooks.settings import Thresholds, WebhookSettings, inbox_path, load_settings, parse_secrets
from orchestration import webhooks as intake
from orchestration.cli import main, parse_since
from orchestration.resources import WRITER_TAG, WRITER_TAG_VALUE
from tests.webhooks.conftest import calendly_event, hubspot_event, stripe_event

NOW_US = 1_800_000_000 * 10**6
WRITER = {WRITER_TAG: WRITER_TAG_VALUE}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TRUEUP_HOME", str(home))
    monkeypatch.delenv("TRUEUP_WAREHOUSE", raising=False)
    return home


def store(home: Path, provider: str, body: bytes, received_us: int) -> None:
    con = connect(inbox_path(Paths(home=home)))
    with transaction(con):
        apply(con, Accept(provider, received_us, {}, body, events_module.parse(provider, body)))
    con.close()


def test_the_sensor_requests_a_run_for_the_systems_with_waiting_events(home):
    instance = dg.DagsterInstance.ephemeral()
    skipped = intake.evaluate(instance)
    assert isinstance(skipped, dg.SkipReason) and "no webhook inbox" in str(skipped.skip_message)
    store(home, "stripe", stripe_event("evt_1"), NOW_US)
    import orjson

    store(home, "hubspot", orjson.dumps([hubspot_event(1, 5, 1)]), NOW_US)
    request = intake.evaluate(instance)
    assert isinstance(request, dg.RunRequest)
    selected = {tuple(k.path) for k in request.asset_selection or []}
    assert {
        ("raw_billing", "invoices"),
        ("raw_crm", "contacts"),
        ("raw_webhooks", "events"),
        ("webhooks", "intake"),
    } <= selected
    assert not any(path[0] == "raw_scheduling" for path in selected)  # no Calendly event waits
    assert request.tags[intake.SYSTEMS_TAG] == "crm,billing"

    running = dg.DagsterRun(job_name="nightly", status=dg.DagsterRunStatus.STARTED, tags=WRITER)
    instance.add_run(running)
    assert isinstance(intake.evaluate(instance), dg.RunRequest)  # it queues behind the writer
    queued = dg.DagsterRun(job_name="webhooks", status=dg.DagsterRunStatus.NOT_STARTED, tags=WRITER)
    instance.add_run(queued)
    waiting = intake.evaluate(instance)  # the queued run will drain them when it starts
    assert isinstance(waiting, dg.SkipReason)
    assert f"2 webhook events wait for run {queued.run_id[:8]}" in str(waiting.skip_message)


def health(home: Path, **limits) -> list[str]:
    found = intake_health(Paths(home=home), WebhookSettings(thresholds=Thresholds(**limits)), now_us=NOW_US)
    assert found is not None
    return found.problems()


def test_the_health_figures_fail_past_their_thresholds(home):
    for n in range(3):
        store(home, "stripe", stripe_event(f"evt_{n}"), NOW_US - 900 * 10**6)  # waiting for 15 minutes
    con = connect(inbox_path(Paths(home=home)))
    with transaction(con):
        apply(con, Tally("stripe", "bad_signature", NOW_US))
    con.close()
    assert health(home, oldest_seconds=3600) == []
    assert health(home, backlog=2, oldest_seconds=3600) == ["3 events wait (limit 2)"]
    assert health(home, oldest_seconds=600) == ["the oldest waiting event arrived 900 s ago (limit 600 s)"]
    lines = status_lines(Paths(home=home))
    assert lines[0].startswith("Webhooks         3 events; 3 waiting")
    assert "bad_signature" in "\n".join(lines)


def test_the_dagster_check_fails_on_a_stalled_inbox(home, monkeypatch):
    store(home, "stripe", stripe_event("evt_stalled"), 1_000_000)  # arrived in 1970: long stalled
    monkeypatch.setenv("WEBHOOKS__OLDEST_MAX_SECONDS", "60")
    from orchestration.definitions import defs

    check = dg.AssetCheckKey(intake.INTAKE_KEY, intake.HEALTH_CHECK)
    job = defs.resolve_job_def(intake.JOB).get_subset(asset_selection=set(), asset_check_selection={check})
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and "oldest waiting event" in str(evaluation.description)
    assert evaluation.metadata["backlog"].value == 1


def test_no_inbox_reads_as_no_webhooks_everywhere(home):
    assert intake_health(Paths(home=home)) is None
    assert "no inbox" in status_lines(Paths(home=home))[0]
    assert "no webhook inbox" in report_section(None, markdown=False)
    assert not inbox_path(Paths(home=home)).exists()  # looking never creates it


def test_replay_drains_the_inbox_again(home, capsys):
    store(home, "stripe", stripe_event("evt_r1"), NOW_US)
    store(
        home,
        "calendly",
        calendly_event("invitee.created", "https://api.calendly.com/e/invitees/i", "2026-01-01T00:00:00Z"),
        NOW_US,
    )
    assert main(["webhooks", "replay"]) == 0
    warehouse = home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        assert con.execute("select count(*) from raw_webhooks.events").fetchone() == (2,)
        con.execute("delete from raw_webhooks.events")  # lost, say, to a full refresh
    assert main(["webhooks", "replay", "--provider", "stripe", "--since", "2026-01-01T00:00:00Z"]) == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select provider, event_id from raw_webhooks.events").fetchall() == [
            ("stripe", "evt_r1")
        ]
    assert "Re-draining 1 events" in capsys.readouterr().out
    assert Inbox(inbox_path(Paths(home=home))).unsynced() == {
        "billing": 1,
        "scheduling": 1,
    }  # to be synced again


def test_settings_read_secrets_lists_and_reject_bad_numbers(monkeypatch):
    assert parse_secrets('["whsec_new", "whsec_old"]') == ("whsec_new", "whsec_old")
    assert parse_secrets("a, b,") == ("a", "b")
    assert parse_secrets(["x"]) == ("x",)
    monkeypatch.setenv("WEBHOOKS__STRIPE__SECRETS", "whsec_new,whsec_old")
    monkeypatch.setenv("WEBHOOKS__PUBLIC_BASE_URL", "https://hooks.example.com/")
    loaded = load_settings()
    assert loaded.secrets_for("stripe") == ("whsec_new", "whsec_old")
    assert loaded.public_base_url == "https://hooks.example.com"
    assert "whsec_new" not in repr(loaded)
    monkeypatch.setenv("WEBHOOKS__PORT", "eighty")
    with pytest.raises(ValueError, match=r"webhooks\.port must be a number"):
        load_settings()
    assert parse_since("2026-01-01T00:00:00Z") == 1_767_225_600 * 10**6
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")


def test_prune_forgets_what_is_in_the_warehouse_and_keeps_what_is_not(home):
    day = 86_400 * 10**6
    store(home, "stripe", stripe_event("evt_old_synced"), NOW_US - 40 * day)
    store(home, "stripe", stripe_event("evt_old_waiting"), NOW_US - 40 * day + 1)
    store(home, "stripe", stripe_event("evt_recent"), NOW_US - day)
    inbox = Inbox(inbox_path(Paths(home=home)))
    with inbox.connection() as con:
        con.execute(
            "update events set drained_us = ?, synced_us = ? where event_id != 'evt_old_waiting'",
            (NOW_US, NOW_US),
        )
    assert inbox.prune(before_us=NOW_US - 30 * day) == 1
    with inbox.connection() as con:
        kept = [row[0] for row in con.execute("select event_id from events order by event_id")]
        deliveries = con.execute("select count(*) from deliveries").fetchone()[0]
    assert kept == ["evt_old_waiting", "evt_recent"]  # never an event the warehouse lacks
    assert deliveries == 2
