"""Two nights on the sandbox, in-process: sandbox -> dlt -> DuckDB -> dbt -> checks ->
publish -> report. Between them the world moves a day (some anomalies fixed at the
source, new ones added); a reader process queries the published copy all through the
second night."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from orchestration import report
from orchestration.cli import main, print_summary, run_job
from orchestration.sandbox_runtime import embedded_sandbox
from sandbox import world as world_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # two nightly runs in the first test

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 2000  # the default scale, the one the checks' thresholds are set for
SEED = 7


@dataclass
class Blocked:
    error: str  # the JobFailed message
    printed: str
    published_run: str | None  # the copy's run after the failed night
    report: dict[str, Any]  # the report asset's latest materialization metadata


@dataclass
class Nights:
    home: Path
    runs: list[str]
    reports: list[report.Report]
    staged_emails: dict[str, str | None]  # after night 1
    world_emails: dict[str, Any]  # the sandbox's contacts then
    truth: list[dict[str, int]]  # anomalies active/fixed before and after the advance
    reader: dict[str, Any]
    console: str  # what the first night printed (what `trueup demo` prints after its first lines)
    blocked: Blocked  # a third night, with one ad day loaded twice


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Nights:
    home = tmp_path_factory.mktemp("nights") / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRUEUP_HOME", str(home))
        for name in ("TRUEUP_WAREHOUSE", "DAGSTER_HOME", "TRUEUP_TIMEZONE"):
            env.delenv(name, raising=False)
        with embedded_sandbox(contacts=CONTACTS, seed=SEED) as sandbox:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                first = run_job("nightly")
                print_summary(first, 1.0)
            published = home / "published" / "warehouse.duckdb"
            reports = [report.collect(published)]
            staged, world = staged_emails(published), world_emails(sandbox.world)
            truth = [world_module.truth_summary(sandbox.world)]
            with sandbox.world.lock:
                world_module.advance(sandbox.world, 1)
            truth.append(world_module.truth_summary(sandbox.world))
            with ReaderProcess(published, home.parent) as reader:
                second = run_job("nightly")
            reports.append(report.collect(published))
            blocked = blocked_night(home, published)
    return Nights(
        home, [first, second], reports, staged, world, truth, reader.summary, printed.getvalue(), blocked
    )


def blocked_night(home: Path, published: Path) -> Blocked:
    """A night whose raw holds one ad day twice (an old day, which the night's ingest does not
    read again): the uniqueness check blocks what reads it, so nothing publishes."""
    from orchestration.console import JobFailed
    from orchestration.instance import get_instance
    from orchestration.publish import read_publication

    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute(
            "insert into raw_ads.google_campaign_metrics select * replace ('twice' as _dlt_id) "
            "from raw_ads.google_campaign_metrics order by segments__date, _dlt_id limit 1"
        )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(JobFailed) as failed:
        run_job("nightly")
    publication = read_publication(published) or {}
    instance = get_instance()
    event = instance.get_latest_materialization_event(report.REPORT_KEY)
    assert event is not None and event.asset_materialization is not None
    metadata = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    return Blocked(str(failed.value), printed.getvalue(), publication.get("run_id"), metadata)


def staged_emails(published: Path) -> dict[str, str | None]:
    with duckdb.connect(str(published), read_only=True) as con:
        return dict(con.execute("select contact_id, email from staging.stg_crm__contacts").fetchall())


def world_emails(world: Any) -> dict[str, Any]:
    return {c["id"]: c["properties"].get("email") for c in world.crm.contacts}


class ReaderProcess:
    """Runs tests/e2e/published_reader.py beside the pipeline; always stopped."""

    def __init__(self, published: Path, scratch: Path) -> None:
        self.published, self.stop_file, self.out = published, scratch / "stop", scratch / "reader.json"
        self.summary: dict[str, Any] = {}

    def __enter__(self) -> ReaderProcess:
        command = [sys.executable, "-m", "tests.e2e.published_reader", str(self.published)]
        self.process = subprocess.Popen([*command, str(self.stop_file), str(self.out)], cwd=ROOT)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_file.touch()
        try:
            self.process.wait(timeout=300)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=60)
        if self.out.exists():
            self.summary = json.loads(self.out.read_text())


def test_the_first_night_loads_the_sandbox_and_stages_it(nights):
    assert set(nights.staged_emails) == set(nights.world_emails)
    for contact_id, email in nights.staged_emails.items():
        source = nights.world_emails[contact_id]
        assert email == (source.strip().lower() or None if source else None)


def test_the_first_night_reports_every_section(nights):
    first = nights.reports[0]
    assert first.publication is not None and first.publication["run_id"] == nights.runs[0]
    assert first.rules and first.totals["open"] > 0
    assert first.totals["new"] == first.totals["open"] + first.totals["accepted"]  # all new on night 1
    assert all(r.previous_open is None for r in first.rules)
    assert first.checks and sum(c.passed for c in first.checks) > 100
    assert first.identity is not None and first.identity.customers > 0
    assert all(f.fresh for f in first.freshness)
    assert first.funnel and first.funnel[0][1] > 0
    assert report.NOT_BUILT not in report.to_markdown(first)
    # reverse ETL planned both targets, plan-only (pushing is off until configured)
    assert first.reverse_etl and {(r.target, r.mode) for r in first.reverse_etl} == {
        ("billing", "plan_only"),
        ("crm", "plan_only"),
    }
    assert all(r.to_write > 0 and r.pushed == 0 for r in first.reverse_etl)


def test_a_night_prints_a_line_per_step_the_summary_and_the_report(nights):
    lines = nights.console.splitlines()
    assert len(lines) < 150 - 3, nights.console  # `make demo` adds its command and two lines of its own
    assert not any(" - DEBUG - " in line or "STEP_" in line for line in lines)
    steps = [line for line in lines if line.startswith("  ok ")]
    assert {line.split()[1] for line in steps} >= {"ingest", "dbt_staging", "ops__published_warehouse"}
    for section in ("Findings by rule", "Findings to act on", "Integration paths", "Freshness"):
        assert section in nights.console


def test_the_report_lists_findings_with_links_to_their_records(nights):
    details = nights.reports[0].details or []
    assert details and sum(d.open_total for d in details) == nights.reports[0].totals["open"]
    links = [link.url for d in details for f in d.new for link in f.links if link.url]
    assert any(url.startswith("https://app.hubspot.com/contacts/40000007/record/0-1/") for url in links)
    assert any(url.startswith("https://dashboard.stripe.com/test/customers/cus_") for url in links)
    assert any(url.startswith("https://calendly.com/app/scheduled_events/") for url in links)


def test_the_world_changed_between_the_nights(nights):
    before, after = nights.truth
    assert after["fixed"] > before["fixed"]
    assert after["anomalies"] > before["anomalies"]


def test_the_second_night_shows_resolved_and_new_findings_and_a_trend(nights):
    second = nights.reports[1]
    assert second.publication is not None and second.publication["run_id"] == nights.runs[1]
    assert second.totals["resolved"] > 0
    assert second.totals["new"] > 0
    assert [len(r.history) for r in second.rules or []] == [2] * len(second.rules or [])
    assert all(r.previous_open is not None for r in second.rules or [])
    trend = second.trend or []
    assert [p.open for p in trend] == [nights.reports[0].totals["open"], second.totals["open"]]
    assert (trend[1].new, trend[1].resolved) == (second.totals["new"], second.totals["resolved"])


def test_a_reader_saw_only_complete_copies_while_the_second_night_wrote(nights):
    reader = nights.reader
    assert reader["errors"] == []
    assert reader["problems"] == []
    assert set(reader["runs"]) == set(nights.runs)  # the first copy during the run, then the second
    assert sum(reader["runs"].values()) >= 3


def test_trueup_report_prints_the_same_report(nights, capsys, monkeypatch):
    monkeypatch.setenv("TRUEUP_HOME", str(nights.home))
    assert main(["report"]) == 0
    text = capsys.readouterr().out
    for line in report.to_text(nights.reports[1]).splitlines():
        if line.startswith(("Published", "crm ", "billing ", "scheduling ", "ads ")):
            continue  # times and ages move on
        assert line in text
    assert main(["report", "--markdown"]) == 0
    assert "data:image/svg+xml;base64," in capsys.readouterr().out


def test_trueup_status(nights, capsys, monkeypatch):
    monkeypatch.setenv("TRUEUP_HOME", str(nights.home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"run {nights.runs[1][:8]} (nightly)" in out
    assert "Writer           idle" in out
    assert nights.runs[0][:8] in out and nights.runs[1][:8] in out  # runs of the one instance
    assert "Integration paths" in out
    assert f"{nights.reports[1].totals['open']:,} open" in out


def test_a_night_with_a_duplicated_key_does_not_publish_and_says_why(nights):
    blocked = nights.blocked
    assert blocked.published_run == nights.runs[1]  # the last good copy stays
    assert "unique_stg_ads__google_campaign_days" in blocked.error  # says which test stopped it
    assert "Not published: the last good copy" in blocked.printed
    assert blocked.report["published"] is False
    text = str(blocked.report["report"])
    title, _, rest = text.partition("\n\n")
    assert title == "# Nightly reconciliation"
    assert rest.startswith("**NOT PUBLISHED: run"), rest[:300]  # the failure at the top
    banner = rest.split("\n\n", 1)[0]
    assert "stg_ads__google_campaign_days" in banner and "unique" in banner, banner
