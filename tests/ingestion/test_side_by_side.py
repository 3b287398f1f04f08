"""Side-by-side ingest (`run_systems`, what `trueup ingest` runs): the warehouse equals the
world as with one system at a time, a failing system does not stop the others, and the
extract workers die with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingestion.pipeline import SYSTEMS, IngestError, run_systems
from ingestion.warehouse import Paths, table_counts
from sandbox.parity import differences
from sandbox.server import Sandbox


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


def test_side_by_side_load_equals_the_world_and_a_rerun_adds_nothing(
    sandbox: Sandbox, source_env: dict[str, str], warehouse_paths: Paths
):
    lines: list[str] = []
    results = run_systems(where=warehouse_paths, report=lines.append)
    assert [r.system for r in results] == list(SYSTEMS)
    assert all(r.records > 0 for r in results)
    assert not differences(warehouse_paths.warehouse, sandbox.world)
    assert sum("loaded in" in line for line in lines) == len(SYSTEMS)

    again = run_systems(where=warehouse_paths)
    assert sum(t.new for r in again for t in r.tables) == 0
    assert not differences(warehouse_paths.warehouse, sandbox.world)


@pytest.mark.parametrize("parallel", [True, False], ids=["side-by-side", "one-by-one"])
def test_a_failing_system_is_named_and_the_others_still_load(
    sandbox: Sandbox,
    source_env: dict[str, str],
    warehouse_paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
    parallel: bool,
):
    wrong = "sk_test_not_the_right_key_000000"
    monkeypatch.setenv("SOURCES__BILLING__ACCESS_TOKEN", wrong)
    with pytest.raises(IngestError) as raised:
        run_systems(where=warehouse_paths, parallel=parallel)
    assert list(raised.value.failures) == ["billing"]
    assert "401" in str(raised.value) and wrong not in str(raised.value)
    assert sorted(r.system for r in raised.value.results) == ["ads", "crm", "scheduling"]
    assert table_counts(warehouse_paths.warehouse, "raw_crm").get("contacts", 0) > 0
    assert not table_counts(warehouse_paths.warehouse, "raw_billing")


@pytest.mark.parametrize("sandbox_world", [{"contacts": 3000}], indirect=True)
def test_workers_die_with_a_killed_ingest_and_the_rerun_completes(
    sandbox: Sandbox, source_env: dict[str, str], trueup_home: Path
):
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "ingest", "--sandbox", sandbox.url],
        env={**os.environ, "TRUEUP_HOME": str(trueup_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while len(workers) < len(SYSTEMS) and time.monotonic() < deadline and process.poll() is None:
        workers = children_of(process.pid)  # the extract workers (and spawn's resource tracker)
        time.sleep(0.05)
    assert process.poll() is None, "the ingest finished before its workers could be seen"
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)], "extract workers outlived their parent"

    run_systems(where=Paths(trueup_home))
    assert not differences(Paths(trueup_home).warehouse, sandbox.world)
