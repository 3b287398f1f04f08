"""Kill -9 an ingest at random points (extract, normalize, load), re-run it, and the
warehouse holds exactly what the sandbox serves: no key missing, none doubled. The windows
random kills hit too rarely to test by chance (a staging copy committed but not recorded, a
normalized package whose extract was not yet deleted, an extracted package whose schema was
not yet saved) get a child that dies exactly there."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from ingestion.pipeline import SYSTEMS, load_source, make_pipeline, run_system
from ingestion.warehouse import Paths
from orchestration.sandbox_runtime import clock_env, patched_env, source_env
from sandbox import world as world_module
from sandbox.config import DEFAULT_TOKENS
from sandbox.parity import differences
from sandbox.server import Sandbox

pytestmark = pytest.mark.slow

TRIALS = int(os.environ.get("TRUEUP_KILL_TRIALS", "10"))


def pointed_at(sandbox: Sandbox) -> contextlib.AbstractContextManager[None]:
    """The sources' settings and clock for `sandbox`, set for the block."""
    return patched_env({**source_env(sandbox.base_urls), **clock_env(sandbox.world.clock())})


def die_in_child(script: str, *args: str) -> None:
    """Run `script` in a child process that must die with exit code 9 where it says."""
    child = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert child.returncode == 9, child.stderr


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
        with pointed_at(sandbox):
            for system in SYSTEMS:
                run_system(system, where=Paths(home))
        problems = differences(Paths(home).warehouse, sandbox.world)
        assert not problems, f"after trial {trial} ({outcomes[-1]}):\n" + "\n".join(problems)
    return outcomes


@pytest.mark.parametrize("sandbox_world", [{"seed": 5}], indirect=True)
def test_kill_nine_at_random_points_then_rerun_loses_and_doubles_nothing(sandbox: Sandbox, tmp_path: Path):
    outcomes = kill_trials(tmp_path / "home", sandbox, TRIALS, seed=TRIALS)
    assert sum("killed" in o for o in outcomes) >= TRIALS // 2, outcomes


# Runs in a child process: load the pending package and die, as kill -9 would, the moment
# one table's copy into the staging dataset has committed and before dlt records the job as
# done. The resumed load then runs that copy again.
_DIE_AFTER_STAGING_COPY = """
import os, sys
from pathlib import Path
from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob
from ingestion.pipeline import make_pipeline
from ingestion.warehouse import Paths

home, table = Path(sys.argv[1]), sys.argv[2]
copy = DuckDbCopyJob.run

def copy_then_die(self):
    copy(self)
    if self.load_table_name == table:
        os._exit(9)

DuckDbCopyJob.run = copy_then_die
make_pipeline("ads", Paths(home)).load()
"""


def test_a_load_killed_after_a_staging_copy_doubles_nothing(sandbox: Sandbox, tmp_path: Path):
    """dlt re-runs a staging copy whose completion it never recorded, and the merge of a table
    with nested tables (Meta insights and their actions) inserts both copies; the resuming
    run removes them (dlt-hub/dlt#3023)."""
    home = tmp_path / "home"
    where = Paths(home)
    with pointed_at(sandbox):
        run_system("ads", where=where)
        with sandbox.world.lock:
            world_module.advance(sandbox.world, days=1)
        pipeline = make_pipeline("ads", where)
        pipeline.extract(load_source("ads"), loader_file_format="parquet")
        pipeline.normalize()
    die_in_child(_DIE_AFTER_STAGING_COPY, str(home), "meta_campaign_insights")
    with pointed_at(sandbox):
        # No look-back: the new run re-reads only the newest day, so it cannot mask copies.
        run_system("ads", where=where, source_kwargs={"meta_lookback_days": 0, "google_lookback_days": 0})
    problems = differences(where.warehouse, sandbox.world, schema="raw_ads.")
    assert not problems, "\n".join(problems)


def test_a_run_killed_before_its_clean_up_leaves_it_to_the_next(sandbox: Sandbox, tmp_path: Path):
    """The marker of a resumed load outlives a kill: the next run removes the copies even
    though no load package is pending any more."""
    where = Paths(tmp_path / "home")
    no_look_back = {"meta_lookback_days": 0, "google_lookback_days": 0}
    with pointed_at(sandbox):
        run_system("ads", where=where)
        with duckdb.connect(str(where.warehouse)) as con:
            table = "raw_ads.meta_campaign_insights"
            con.execute(
                f"insert into {table} select * from {table} "
                f"where date_start::date < (select min(date_start::date) + 3 from {table})"
            )
        (where.dlt_dir / "trueup_ads.resumed").touch()
        run_system("ads", where=where, source_kwargs=no_look_back)
    assert not (where.dlt_dir / "trueup_ads.resumed").exists()
    problems = differences(where.warehouse, sandbox.world, schema="raw_ads.")
    assert not problems, "\n".join(problems)


_DIE_AFTER_NORMALIZE_COMMIT = """
import os, sys
from pathlib import Path
from dlt.common.storages.load_storage import LoadStorage
from ingestion.pipeline import make_pipeline
from ingestion.warehouse import Paths

commit = LoadStorage.commit_new_load_package

def commit_then_die(self, load_id):
    commit(self, load_id)
    os._exit(9)

LoadStorage.commit_new_load_package = commit_then_die
make_pipeline("billing", Paths(Path(sys.argv[1]))).normalize()
"""


def test_a_normalize_killed_before_it_dropped_its_extract_is_finished(sandbox: Sandbox, tmp_path: Path):
    """Killed after the normalized package was committed and before the extract was deleted,
    the next run loads that package once and goes on."""
    home = tmp_path / "home"
    where = Paths(home)
    with pointed_at(sandbox):
        make_pipeline("billing", where).extract(load_source("billing"), loader_file_format="parquet")
    die_in_child(_DIE_AFTER_NORMALIZE_COMMIT, str(home))
    with pointed_at(sandbox):
        run_system("billing", where=where)
    problems = differences(where.warehouse, sandbox.world, schema="raw_billing.")
    assert not problems, "\n".join(problems)


_DIE_AFTER_EXTRACT_COMMIT = """
import os, sys
from pathlib import Path
from dlt.extract.extract import Extract
from ingestion.pipeline import load_source, make_pipeline
from ingestion.warehouse import Paths

commit = Extract.commit_packages

def commit_then_die(self):
    commit(self)
    os._exit(9)

Extract.commit_packages = commit_then_die
pipeline = make_pipeline("billing", Paths(Path(sys.argv[1])))
pipeline.extract(load_source("billing"), loader_file_format="parquet")
"""


def _as_an_earlier_release_stored_it(where: Paths) -> None:
    """The billing schema as releases before the declared merge disposition stored it after a
    run in which no resource yielded a record: every table `append`."""
    pipeline = make_pipeline("billing", where)
    schema = pipeline.default_schema
    for table in schema.data_tables(include_incomplete=True):
        if not table.get("parent"):
            table["write_disposition"] = "append"
    schema._bump_version()
    pipeline._schema_storage.save_schema(schema)


@pytest.mark.parametrize("stored", ["after a quiet run", "by an earlier release"])
def test_an_extract_killed_before_it_saved_its_schema_is_merged(
    sandbox: Sandbox, tmp_path: Path, stored: str
):
    """Extract commits its package and then saves its schema; killed between the two, the next
    run normalizes the package with the schema an earlier run stored. Changed records must
    still replace their old versions, not sit beside them."""
    home = tmp_path / "home"
    where = Paths(home)
    with pointed_at(sandbox):
        run_system("billing", where=where)
        run_system("billing", where=where)  # nothing changed: no resource yields a record
    if stored == "by an earlier release":
        _as_an_earlier_release_stored_it(where)
    customer = next(iter(sandbox.world.billing.customers))["id"]
    changed = httpx.post(  # a record the warehouse holds changes
        f"{sandbox.base_urls['stripe']}/v1/customers/{customer}",
        data={"email": "changed@example.com"},
        headers={"Authorization": f"Bearer {DEFAULT_TOKENS['stripe']}"},
    )
    assert changed.status_code == 200, changed.text
    with pointed_at(sandbox):
        die_in_child(_DIE_AFTER_EXTRACT_COMMIT, str(home))
        run_system("billing", where=where)
    problems = differences(where.warehouse, sandbox.world, schema="raw_billing.")
    assert not problems, "\n".join(problems)


_DIE_AFTER_FIRST_PAGE = """
import os, sys
from pathlib import Path
from ingestion import progress
from ingestion.pipeline import load_source, make_pipeline
from ingestion.warehouse import Paths

def die(self, resource, n_records):
    os._exit(9)

progress.Progress.page = die
pipeline = make_pipeline("billing", Paths(Path(sys.argv[1])))
pipeline.extract(load_source("billing"), loader_file_format="parquet")
"""


def test_an_extract_killed_midway_leaves_no_litter(sandbox: Sandbox, tmp_path: Path):
    """An extract killed before it committed its package leaves the folder it was writing in;
    the next run reads that data again and removes the folder."""
    where = Paths(tmp_path / "home")
    normalize_dir = where.dlt_dir / "trueup_billing" / "normalize"
    with pointed_at(sandbox):
        die_in_child(_DIE_AFTER_FIRST_PAGE, str(where.home))
        unfinished = {p.name for p in normalize_dir.iterdir() if p.is_dir()} - {"extracted"}
        assert unfinished, "the killed extract should have left its folder"
        run_system("billing", where=where)
    assert not unfinished & {p.name for p in normalize_dir.iterdir()}
    problems = differences(where.warehouse, sandbox.world, schema="raw_billing.")
    assert not problems, "\n".join(problems)
