"""The fault suite: each case breaks a source, or a process, in one way and runs trueup
through it; then the fault is lifted, one clean run follows, and the warehouse must equal
the world (`sandbox.parity`): every record version present, none doubled.

A case is a function of a `Trial`, registered with `@case(name, systems)`; it injects its
fault, runs what it needs (an ingest in this process, or the CLI in a child process it may
kill), and asserts what the faulty phase must show (a clear failure, a flag, a quarantine).
It may return a function that checks the warehouse once more after the clean run. Add a case
by writing one more such function; `make test` runs every case on a small world
(`tests/faults`), `benchmarks/bench_faults.py` on larger ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from sandbox.config import AccountShape
from sandbox.faults import Drift, FaultPlan
from sandbox.parity import Parity, compare
from sandbox.server import Sandbox
from sandbox.store import World

SYSTEMS = ("crm", "billing", "scheduling", "ads")
CHILD_WAIT = 120.0  # seconds a child process of a case may take
NIGHTLY_WAIT = 1200.0  # seconds a whole nightly run in a child may take (a busy machine)

After = Callable[["Trial"], None]


@dataclass
class Trial:
    """One case's world, sandbox and TRUEUP_HOME, with the ways a case runs trueup."""

    sandbox: Sandbox
    home: Path
    systems: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.sandbox.world

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    def faults(self, plan: FaultPlan) -> None:
        self.sandbox.faults.set(plan)

    def ingest(
        self, systems: Sequence[str] | None = None, source_kwargs: dict[str, dict[str, Any]] | None = None
    ) -> list[Any]:
        """Ingest in this process (one system after another); raises IngestError."""
        from ingestion.pipeline import run_systems
        from ingestion.warehouse import Paths

        chosen = list(systems or self.systems)
        return run_systems(chosen, where=Paths(self.home), parallel=False, source_kwargs=source_kwargs)

    def failing_ingest(
        self, systems: Sequence[str] | None = None, source_kwargs: dict[str, dict[str, Any]] | None = None
    ) -> str:
        """Ingest, which must fail; returns the failure's message."""
        from ingestion.pipeline import IngestError

        try:
            self.ingest(systems, source_kwargs)
        except IngestError as failed:
            return str(failed)
        raise AssertionError("the ingest was expected to fail and did not")

    def env(self) -> dict[str, str]:
        from orchestration.sandbox_runtime import source_env

        return {
            **os.environ,
            **source_env(self.sandbox.base_urls),
            "TRUEUP_HOME": str(self.home),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
        }

    def cli(self, *args: str) -> subprocess.Popen[bytes]:
        """`trueup <args>` in a child process (output captured)."""
        return subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def parity(self, systems: Sequence[str] | None = None) -> Parity:
        return compare(self.warehouse, self.world, schemas=[f"raw_{s}" for s in systems or self.systems])

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(query).fetchall()


@dataclass
class Case:
    name: str
    systems: tuple[str, ...]
    run: Callable[[Trial], After | None]


CASES: dict[str, Case] = {}


def case(
    name: str, systems: Sequence[str]
) -> Callable[[Callable[[Trial], After | None]], Callable[[Trial], After | None]]:
    """Register a fault case (see the module docstring)."""

    def register(run: Callable[[Trial], After | None]) -> Callable[[Trial], After | None]:
        CASES[name] = Case(name, tuple(systems), run)
        return run

    return register


@dataclass
class Outcome:
    name: str
    parity: Parity
    seconds: float
    notes: list[str]


def run_case(chosen: Case, contacts: int = 120, seed: int = 7, workdir: Path | None = None) -> Outcome:
    """Run one case on a fresh world: its faulty phase, then a clean run, then parity."""
    from orchestration.sandbox_runtime import patched_env, source_env
    from sandbox import world as world_module

    started = time.monotonic()
    anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    world = world_module.generate(seed=seed, contacts=contacts, anchor=anchor)
    with contextlib.ExitStack() as stack:
        base = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trueup-fault-")))
        home = base / chosen.name
        sandbox = stack.enter_context(Sandbox(world))
        stack.enter_context(patched_env({**source_env(sandbox.base_urls), "TRUEUP_HOME": str(home)}))
        trial = Trial(sandbox, home, chosen.systems)
        after = chosen.run(trial)
        sandbox.faults.set(FaultPlan())
        sandbox.set_account(AccountShape())
        trial.ingest()  # the clean run
        if after is not None:
            after(trial)
        parity = trial.parity()
    return Outcome(chosen.name, parity, time.monotonic() - started, trial.notes)


def run_all(
    names: Sequence[str] | None = None, contacts: int = 120, seed: int = 7, workdir: Path | None = None
) -> list[Outcome]:
    return [run_case(CASES[name], contacts, seed, workdir) for name in names or CASES]


# -- the cases -----------------------------------------------------------------------------

SMALL_PAGES: dict[str, dict[str, Any]] = {
    "crm": {"page_size": 25, "search_page_size": 25},
    "billing": {"page_size": 10},
    "scheduling": {"page_size": 10},
}


@case("truncated_page", ("crm", "billing", "scheduling"))
def truncated_page(trial: Trial) -> After | None:
    """A full page that says nothing follows: the resource fails, its cursor stays."""
    trial.faults(FaultPlan(truncate=["crm/contacts", "billing/invoices", "scheduling/scheduled_events"]))
    failure = trial.failing_ingest(source_kwargs=SMALL_PAGES)
    for resource in ("contacts", "invoices", "scheduled_events"):
        assert f"{resource} failed" in failure and "ended early" in failure, failure
    trial.notes.append("three listings cut short were each reported; their cursors stayed")
    return _no_open_quarantine


@case("future_stamp", ("crm", "scheduling"))
def future_stamp(trial: Trial) -> After | None:
    """Contacts and events stamped years ahead are loaded and flagged, and never become the
    cursor: the changes of the next day still load."""
    from sandbox import world as world_module

    trial.faults(FaultPlan(future={"crm/contacts": 0.05, "scheduling/scheduled_events": 0.05}))
    first, events = trial.ingest(source_kwargs=SMALL_PAGES)
    assert first.flagged > 0 and events.flagged > 0, (
        "no record was flagged for a stamp past the server's clock"
    )
    with trial.world.lock:
        world_module.advance(trial.world, days=1)
    trial.ingest(source_kwargs=SMALL_PAGES)  # the fault still on
    ahead = {
        c["id"]
        for c in trial.world.crm.contacts
        if trial.sandbox.faults.in_future("crm", "contacts", c["id"])
    }
    held = dict(trial.sql("select id, properties__lastmodifieddate from raw_crm.contacts"))
    stale = [
        c["id"]
        for c in trial.world.crm.contacts
        if c["id"] not in ahead and held.get(c["id"]) != c["properties"]["lastmodifieddate"]
    ]
    assert not stale, f"changes after a future stamp did not load: {stale[:5]}"
    trial.notes.append(
        f"{first.flagged} contacts and {events.flagged} events flagged; the next day's changes loaded"
    )
    return _plausible_stamps


def _plausible_stamps(trial: Trial) -> None:
    """Once the source's stamps are right again, raw holds them (the flagged records were
    fetched again)."""
    held = dict(trial.sql("select uri, updated_at from raw_scheduling.scheduled_events"))
    wrong = [e["uri"] for e in trial.world.scheduling.events if held.get(e["uri"]) != e["updated_at"]]
    assert not wrong, f"events still stamped in the future: {wrong[:3]}"


@case("type_drift_fixed_later", ("crm",))
def type_drift_fixed_later(trial: Trial) -> After | None:
    """Contacts whose email changed type are quarantined; fixed at the source, they are fetched
    again by id and load, and their quarantine is resolved."""
    trial.faults(
        FaultPlan(drift={"crm/contacts": Drift(kind="changed_type", field="properties.email", fraction=0.1)})
    )
    [result] = trial.ingest()
    assert result.quarantined > 0
    trial.notes.append(f"{result.quarantined} contacts quarantined, then healed")
    return _no_open_quarantine


@case("quarantined_parent_with_children", ("scheduling",))
def quarantined_parent_with_children(trial: Trial) -> After | None:
    """Events that break their contract are quarantined, their invitees with them (keyed, the
    event as parent): the load goes through, and both heal once the events do."""
    trial.faults(
        FaultPlan(
            drift={"scheduling/scheduled_events": Drift(kind="changed_type", field="status", fraction=0.2)}
        )
    )
    trial.ingest()
    children = trial.sql(
        "select count(*), count(record_key), count(parent_key) from raw_scheduling._quarantine "
        "where resource = 'invitees'"
    )[0]
    assert children[0] > 0 and children[0] == children[1] == children[2], children
    trial.notes.append(f"{children[0]} invitees quarantined with their event's key")
    return _no_open_quarantine


@case("stalled_cursor", ("billing",))
def stalled_cursor(trial: Trial) -> After | None:
    """A list that ignores its `starting_after` stops with an error instead of paging forever;
    the other billing resources load."""
    trial.faults(FaultPlan(stall=["billing/invoices"]))
    failure = trial.failing_ingest(source_kwargs=SMALL_PAGES)
    assert "invoices failed" in failure and "did not advance" in failure, failure
    assert trial.sql("select count(*) from raw_billing.customers")[0][0] > 0
    trial.notes.append("the stuck listing stopped at its second page")
    return None


@case("duplicate_versions", ("crm", "billing", "scheduling"))
def duplicate_versions(trial: Trial) -> After | None:
    """Pages that also carry an older copy of a record (in the page, and of the previous page's
    last record): the newest version wins, in the very run."""
    trial.faults(FaultPlan(duplicate=["crm/contacts", "billing/invoices", "scheduling/scheduled_events"]))
    trial.ingest(source_kwargs=SMALL_PAGES)
    parity = trial.parity()
    assert not parity.problems, parity.problems
    trial.notes.append("the newest version of each duplicated id won in the faulty run itself")
    return None


@case("killed_run", SYSTEMS)
def killed_run(trial: Trial) -> After | None:
    """An ingest killed (SIGKILL) part-way; the next run finishes its work."""
    process = trial.cli("ingest")
    delay = random.Random(trial.world.seed).uniform(1.0, 3.0)
    try:
        process.wait(timeout=delay)
        trial.notes.append(f"the ingest finished before the kill at {delay:.1f}s")
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        trial.notes.append(f"killed at {delay:.1f}s")
    _close(process)
    return None


@case("check_during_ingest", ("crm",))
def check_during_ingest(trial: Trial) -> After | None:
    """`trueup check` started while an ingest holds the writer lock waits for it: neither fails
    on DuckDB's own lock."""
    ingest = trial.cli("ingest", "--system", "crm")
    _wait_for_lock(trial.home, ingest)
    check = trial.cli("check", "--suite", "freshness", "--no-store")
    ingest_out = _finish(ingest)
    check_out = _finish(check)
    assert ingest.returncode == 0, ingest_out
    assert check.returncode in (0, 1) and "lock" not in check_out.lower(), check_out
    trial.notes.append("the check waited for the ingest's writer lock")
    return None


@case("parent_killed_during_dbt", ("crm",))
def parent_killed_during_dbt(trial: Trial) -> After | None:
    """`trueup build` killed (SIGKILL) while dbt runs: dbt dies with it, and the warehouse and
    its writer lock are free at once."""
    trial.ingest()
    build = trial.cli("build")
    child = _wait_for_child(build.pid, "dbt")
    build.send_signal(signal.SIGKILL)
    build.wait()
    _close(build)
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), f"dbt (pid {child}) outlived its killed parent"
    with open(trial.home / "locks" / "warehouse.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if anyone holds it
    duckdb.connect(str(trial.warehouse)).close()  # read-write: nobody else has the file
    trial.notes.append(f"dbt (pid {child}) died with its parent")
    return None


@case("malformed_values", ("crm",))
def malformed_values(trial: Trial) -> After | None:
    """The CRM serves a deal close date that is no date and amounts that are no finite number
    (one of them markup): the nightly publishes, and its report lists each as a
    `malformed_value` finding with the value as served, escaped."""
    served = _serve_malformed_deals(
        trial.world, [("closedate", "02/30/2025"), ("amount", "NaN"), ("amount", "<b>Infinity</b>")]
    )
    run = trial.cli("run", "nightly")
    out = _finish(run, timeout=NIGHTLY_WAIT)
    assert run.returncode == 0, out
    published = trial.home / "published" / "warehouse.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        rows = con.execute(
            "select record_keys, crm_value, reason from reconciliation.findings "
            "where rule = 'malformed_value' and status = 'open'"
        ).fetchall()
    found = {(json.loads(keys)["deal_id"], json.loads(keys)["field"]): value for keys, value, _ in rows}
    planted = {
        (a.keys["deal_id"], a.keys["field"]): a.detail["value"]
        for a in trial.world.truth.of_kind("malformed_value")
    }
    assert found == {**planted, **dict(served)}, (found, planted, served)
    assert all(reason for _, _, reason in rows), rows
    from orchestration import report

    text = report.to_markdown(report.collect(published))
    listed = text[text.index("### malformed_value") :].split("\n### ", 1)[0]
    for value in ("02/30/2025", "NaN", "&lt;b&gt;Infinity&lt;/b&gt;", "no finite number", "no date or time"):
        assert value in listed, (value, listed)
    assert "<b>" not in text
    trial.notes.append(f"the nightly published; {len(rows)} malformed values reported, markup escaped")
    return None


def _serve_malformed_deals(world: World, values: list[tuple[str, str]]) -> list[tuple[tuple[str, str], str]]:
    """Give each (property, text) of `values` to a lost deal of its own that no anomaly names,
    stamped as a change at the world's clock; returns ((deal_id, property), text) pairs."""
    from sandbox.world.common import stamp_modified, to_ms
    from sandbox.world.crm import LOST_STAGES

    named = {key for a in world.truth.anomalies for key in a.keys.values()}
    now = to_ms(world.now)
    served = []
    with world.lock:
        lost = (
            d
            for d in world.crm.deals
            if d["properties"].get("dealstage") in LOST_STAGES and d["id"] not in named
        )
        for prop, text in values:
            deal = next(lost)
            named.add(deal["id"])
            deal["properties"][prop] = text
            stamp_modified(deal, "hs_lastmodifieddate", now - 1000)
            served.append(((deal["id"], prop), text))
    return served


# -- helpers -------------------------------------------------------------------------------


def _no_open_quarantine(trial: Trial) -> None:
    from ingestion.quarantine import open_quarantine_sql

    for system in trial.systems:
        schema = f"raw_{system}"
        present = {
            r[0]
            for r in trial.sql(
                f"select table_name from information_schema.tables where table_schema = '{schema}'"
            )
        }
        if "_quarantine" in present:
            left = trial.sql(
                f"select resource, record_key, reason from ({open_quarantine_sql(schema, present)})"
            )
            assert not left, f"{schema}: quarantine still open after the fix: {left[:3]}"


def _wait_for_lock(home: Path, process: subprocess.Popen[bytes]) -> None:
    """Until `process` holds the writer lock."""
    lock_file = home / "locks" / "warehouse.lock"
    deadline = time.monotonic() + CHILD_WAIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the ingest ended before it was seen holding the lock: {_finish(process)}")
        if lock_file.exists():
            with open(lock_file) as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                except BlockingIOError:
                    return
        time.sleep(0.05)
    raise AssertionError("the ingest never took the writer lock")


def _children(pid: int) -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == pid:
                yield (
                    int(entry.name),
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"),
                )


def _wait_for_child(pid: int, name: str) -> int:
    deadline = time.monotonic() + CHILD_WAIT
    while time.monotonic() < deadline:
        for child, command in _children(pid):
            if name in command:
                return child
        time.sleep(0.05)
    raise AssertionError(f"no {name} child of {pid} appeared")


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead, waiting for its (new) parent to reap it


def _finish(process: subprocess.Popen[bytes], timeout: float = CHILD_WAIT * 2) -> str:
    out, err = process.communicate(timeout=timeout)
    return (out + err).decode(errors="replace")[-2000:]


def _close(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
