"""Kill -9 an ingest at random points (extract, normalize, load), re-run it, and the
warehouse holds exactly what the sandbox serves: no key missing, none doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingestion.pipeline import SYSTEMS, run_system
from ingestion.warehouse import Paths
from orchestration.sandbox_runtime import clock_env, patched_env, source_env
from sandbox import world as world_module
from sandbox.parity import differences
from sandbox.server import Sandbox

pytestmark = pytest.mark.slow

TRIALS = int(os.environ.get("TRUEUP_KILL_TRIALS", "10"))


def ingest_process(home: Path, sandbox: Sandbox) -> subprocess.Popen[bytes]:
    env = {**os.environ, **clock_env(sandbox.world.clock()), "TRUEUP_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "ingest", "--sandbox", sandbox.url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timed_full_run(home: Path, sandbox: Sandbox) -> float:
    started = time.monotonic()
    assert ingest_process(home, sandbox).wait() == 0
    return time.monotonic() - started


def kill_trials(home: Path, sandbox: Sandbox, trials: int, seed: int) -> list[str]:
    """Each trial: change the world, start an ingest, SIGKILL it at a random moment,
    then re-run to completion in-process and compare the warehouse with the world."""
    rng = random.Random(seed)
    duration = timed_full_run(home, sandbox)  # the first load, uninterrupted
    outcomes = []
    for trial in range(trials):
        with sandbox.world.lock:
            world_module.advance(sandbox.world, days=1)
        process = ingest_process(home, sandbox)
        delay = rng.uniform(0.2, max(duration, 1.0))
        try:
            process.wait(timeout=delay)
            outcomes.append(f"trial {trial}: finished before the kill at {delay:.1f}s")
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            outcomes.append(f"trial {trial}: killed at {delay:.1f}s")
        with patched_env({**source_env(sandbox.base_urls), **clock_env(sandbox.world.clock())}):
            for system in SYSTEMS:
                run_system(system, where=Paths(home))
        problems = differences(Paths(home).warehouse, sandbox.world)
        assert not problems, f"after trial {trial} ({outcomes[-1]}):\n" + "\n".join(problems)
    return outcomes


@pytest.mark.parametrize("sandbox_world", [{"seed": 5}], indirect=True)
def test_kill_nine_at_random_points_then_rerun_loses_and_doubles_nothing(sandbox: Sandbox, tmp_path: Path):
    outcomes = kill_trials(tmp_path / "home", sandbox, TRIALS, seed=TRIALS)
    assert sum("killed" in o for o in outcomes) >= TRIALS // 2, outcomes
