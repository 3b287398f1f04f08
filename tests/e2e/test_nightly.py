"""Two nights on the sandbox, in-process: sandbox -> dlt -> DuckDB -> dbt -> checks ->
publish -> report. Between them the world moves a day (some anomalies fixed at the
source, new ones added); a reader process queries the published copy all through the
second night."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from orchestration import report
from orchestration.cli import main, run_job
from orchestration.sandbox_runtime import embedded_sandbox
from sandbox import world as world_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # two nightly runs in the first test

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 2000  # the default scale, the one the checks' thresholds are set for
SEED = 7


@dataclass
class Nights:
    home: Path
    runs: list[str]
    reports: list[report.Report]
    staged_emails: dict[str, str | None]  # after night 1
    world_emails: dict[str, Any]  # the sandbox's contacts then
    truth: list[dict[str, int]]  # anomalies active/fixed before and after the advance
    reader: dict[str, Any]


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Nights:
    home = tmp_path_factory.mktemp("nights") / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRUEUP_HOME", str(home))
        for name in ("TRUEUP_WAREHOUSE", "DAGSTER_HOME", "TRUEUP_TIMEZONE"):
            env.delenv(name, raising=False)
        with embedded_sandbox(contacts=CONTACTS, seed=SEED) as sandbox:
            first = run_job("nightly")
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
    return Nights(home, [first, second], reports, staged, world, truth, reader.summary)


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
    assert f"{nights.reports[1].totals['open']:,} open" in out
