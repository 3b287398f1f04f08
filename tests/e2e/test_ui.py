"""`trueup ui` end to end: `dagster dev` on loopback with the sandbox, the nightly job
launched through the UI's GraphQL API, the report asset's page in headless Chromium.

The screenshot lands in tests/output/ (ignored by git).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import browser

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "output"
START_SECONDS = 900  # world generation plus `dagster dev` start-up, on a busy 2-core machine
RUN_SECONDS = 1800
COMMUNITY_DIALOG = "Join the Dagster community"
CONTACTS = 2000  # the default scale, the one the checks' thresholds are set for


@dataclass
class Ui:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path


def graphql(ui: Ui, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{ui.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=300
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def wait_until_serving(ui: Ui) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if ui.process.poll() is not None:
            pytest.fail(f"`trueup ui` exited with {ui.process.returncode}:\n{ui.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{ui.url}/server_info", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    pytest.fail(f"the UI did not answer within {START_SECONDS}s:\n{ui.log.read_text()[-3000:]}")


def stop_ui(ui: Ui, timeout: float = 120) -> int | None:
    """TERM `trueup ui` (it stops dagster dev, then the sandbox); KILL its group if it hangs."""
    if ui.process.poll() is None:
        ui.process.send_signal(signal.SIGTERM)
        try:
            ui.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(ui.process.pid, signal.SIGKILL)  # the group we started for it
            ui.process.wait(timeout=60)
            return None
    return ui.process.returncode


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    home = tmp_path_factory.mktemp("ui") / "home"
    home.mkdir()
    port = browser.free_port()
    env = {**os.environ, "TRUEUP_HOME": str(home)}
    for name in ("TRUEUP_WAREHOUSE", "DAGSTER_HOME"):  # the instance defaults to $TRUEUP_HOME/dagster
        env.pop(name, None)
    log = home / "ui.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestration.cli",
                "ui",
                "--port",
                str(port),
                "--contacts",
                str(CONTACTS),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so a hung shutdown can be killed as a whole
        )
    handle = Ui(f"http://127.0.0.1:{port}", home, process, log)
    try:
        wait_until_serving(handle)
        yield handle
    finally:
        stop_ui(handle)


@pytest.fixture(scope="module")
def nightly_run(ui: Ui) -> str:
    """Launch the nightly job as ops would (queued, then run by the daemon); wait for it."""
    data = graphql(
        ui,
        "{ workspaceOrError { ... on Workspace { locationEntries { name "
        "locationOrLoadError { ... on RepositoryLocation { repositories { name } } } } } } }",
    )
    [location] = data["workspaceOrError"]["locationEntries"]
    selector = {
        "repositoryLocationName": location["name"],
        "repositoryName": location["locationOrLoadError"]["repositories"][0]["name"],
        "jobName": "nightly",
    }
    launched = graphql(
        ui,
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
        "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }",
        {"p": {"selector": selector, "runConfigData": {}}},
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + RUN_SECONDS
    status = "QUEUED"
    while time.monotonic() < deadline:
        status = graphql(ui, f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ status }} }} }}')[
            "runOrError"
        ]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(5)
    assert status == "SUCCESS", f"nightly run {run_id}: {status}\n{ui.log.read_text()[-4000:]}"
    return str(run_id)


def test_the_code_location_loads_in_dagster_dev(ui):
    data = graphql(
        ui,
        "{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename "
        "... on RepositoryLocation { repositories { jobs { name } schedules { name } sensors { name } } } "
        "... on PythonError { message } } } } } }",
    )
    [location] = data["workspaceOrError"]["locationEntries"]
    assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation", location
    [repository] = location["locationOrLoadError"]["repositories"]
    assert {j["name"] for j in repository["jobs"]} >= {
        "nightly",
        "sync",
        "refresh",
        "webhooks",
        "audit",
        "findings_review",
        "path_health",
    }
    assert {s["name"] for s in repository["schedules"]} == {
        "nightly_schedule",
        "sync_schedule",
        "audit_schedule",
        "path_health_schedule",
    }
    sensors = {s["name"] for s in repository["sensors"]}
    assert sensors == {"run_failure_alert", "freshness_checks_sensor", "webhook_inbox_sensor"}


def test_the_nightly_job_runs_through_the_queue_and_publishes(ui, nightly_run):
    assert (ui.home / "published" / "warehouse.duckdb").exists()


def test_the_report_page_shows_the_findings_and_the_checks(ui, nightly_run):
    found = browser.executables()
    if found is None:
        pytest.skip(
            "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)"
        )
    with browser.Browser(*found) as page:
        page.open(f"{ui.url}/assets/ops/nightly_report")
        page.wait_for_text("nightly_report", "open_findings", "findings_by_rule", "[Show Markdown]")
        page.dismiss(COMMUNITY_DIALOG, "Skip", wait=20)  # Dagster asks a new browser profile once
        assert page.click_text("[Show Markdown]")
        text = page.wait_for_text("Findings by rule", "Check results", "Identity resolution", "Freshness")
        assert "deal_won_no_invoice" in text and "passed" in text
        assert "Findings to act on" in page.wait_for_text("Findings to act on", "Integration paths")
        # a finding's row, with the link to its record in the CRM's web app
        link = page.run(
            "const a = Array.from(document.querySelectorAll('a')).find("
            "a => a.href.startsWith('https://app.hubspot.com/contacts/')); "
            "if (!a) return null; a.scrollIntoView({block: 'center'}); "
            "const row = a.closest('tr'); return [a.href, row ? row.innerText : '']"
        )
        assert link is not None, "no record link on the report page"
        href, row = link
        assert ("/record/0-1/" in href and "push_to" in row) or "review" in row, (href, row)
        page.screenshot(OUTPUT / "nightly_report_finding.png")
        page.dismiss(COMMUNITY_DIALOG, "Skip")
        assert COMMUNITY_DIALOG not in page.text()
        assert (
            page.run(
                "return Array.from(document.images).filter("
                "i => i.src.startsWith('data:image/svg+xml') && i.complete && i.naturalWidth > 0).length"
            )
            == 2
        )
        shot = page.screenshot(OUTPUT / "nightly_report.png")
    assert shot.stat().st_size > 10_000


def test_a_run_started_from_the_cli_shows_in_the_ui_and_in_status(ui, nightly_run):
    env = {**os.environ, "TRUEUP_HOME": str(ui.home)}
    for name in ("TRUEUP_WAREHOUSE", "DAGSTER_HOME"):
        env.pop(name, None)
    cli = [sys.executable, "-m", "orchestration.cli"]
    run = subprocess.run(
        [*cli, "run", "path_health"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    run_id = run.stdout.split("(run ", 1)[1].split(";", 1)[
        0
    ]  # "Running job 'path_health' (run abcd1234; ..."
    runs = graphql(
        ui,
        '{ runsOrError(filter: {pipelineName: "path_health"}) { ... on Runs { results { runId status } } } }',
    )
    listed = {r["runId"][:8]: r["status"] for r in runs["runsOrError"]["results"]}
    assert listed.get(run_id) == "SUCCESS", listed
    status = subprocess.run([*cli, "status"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert status.returncode == 0, status.stderr[-3000:]
    assert "path_health" in status.stdout and run_id in status.stdout
    assert nightly_run[:8] in status.stdout


def live_group_members(group: int) -> list[str]:
    """Processes still running in a process group (zombies waiting to be reaped left out)."""
    found = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True, check=False)
    live = []
    for pid in found.stdout.split():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if state != "Z":
            live.append(pid)
    return live


def test_trueup_ui_stops_dagster_and_the_sandbox_on_term(ui):
    assert stop_ui(ui) == 0
    deadline = time.monotonic() + 60  # dagster's own children finish shutting down after it
    while live_group_members(ui.process.pid) and time.monotonic() < deadline:
        time.sleep(1)
    assert live_group_members(ui.process.pid) == []
