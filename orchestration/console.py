"""Run a Dagster job in this process and tell the terminal one line per step.

Dagster's own event stream (a DEBUG line per event, about 1,900 of them a night) is shown only
with `verbose`; otherwise a watcher reads the run's events from the instance as they are
written and prints, for each finished step, what it materialized, the rows it reports, the
checks it evaluated and its time.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

log = logging.getLogger(__name__)

ROW_METADATA = ("loaded", "rows_affected")  # per-asset counts the steps report, in this order
POLL_SECONDS = 0.5
QUIET_LOG_LEVEL = "CRITICAL"  # the console logger's level when not verbose


class JobFailed(RuntimeError):
    """A job's run failed; the message names the failed steps and their errors."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


@dataclass
class StepTally:
    assets: int = 0
    rows: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    systems: list[str] = field(default_factory=list)

    def add_materialization(self, metadata: dict[str, Any]) -> None:
        self.assets += 1
        for name in ROW_METADATA:
            value = _number(metadata.get(name))
            if value is not None:
                self.rows += int(value)
                break


def _number(entry: Any) -> float | None:
    value = getattr(entry, "value", entry)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def step_line(step: str, tally: StepTally, seconds: float | None, outcome: str = "ok") -> str:
    """`  ok      dbt_staging        21 assets  12,345 rows  197 checks passed   4.2s`."""
    parts = []
    if tally.assets:
        parts.append(f"{tally.assets} asset{'s' if tally.assets != 1 else ''}")
    if tally.rows:
        parts.append(f"{tally.rows:,} rows")
    checks = tally.checks_passed + tally.checks_failed
    if checks:
        failed = f", {tally.checks_failed} failed" if tally.checks_failed else ""
        parts.append(f"{checks} checks ({tally.checks_passed} passed{failed})")
    took = f"{seconds:6.1f}s" if seconds is not None else ""
    return f"  {outcome:<7} {step:<28} {', '.join(parts):<52} {took}".rstrip()


class StepWatcher:
    """Reads one run's events from the instance on a thread and reports each finished step."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, report: Callable[[str], None]) -> None:
        self.instance, self.run_id, self.report = instance, run_id, report
        self.tallies: dict[str, StepTally] = {}
        self.failures: list[str] = []
        self._cursor: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trueup-step-watcher", daemon=True)

    def __enter__(self) -> StepWatcher:
        self.poll()  # once here first: the storage's modules are imported by this thread, not two at once
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.poll()  # whatever arrived after the last poll

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # the storage may be busy for a moment; the next poll reads it
                continue

    def poll(self) -> None:
        import dagster as dg

        kinds = {
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
        }
        while True:
            page = self.instance.get_records_for_run(self.run_id, cursor=self._cursor, of_type=kinds)
            self._cursor = page.cursor
            for record in page.records:
                self.handle(record.event_log_entry)
            if not page.has_more:
                return

    def handle(self, entry: Any) -> None:
        import dagster as dg

        event = entry.dagster_event
        if event is None or not event.step_key:
            return
        tally = self.tallies.setdefault(event.step_key, StepTally())
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            tally.add_materialization(dict(data.materialization.metadata or {}))
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            if data.passed:
                tally.checks_passed += 1
            else:
                tally.checks_failed += 1
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            self.report(step_line(event.step_key, tally, data.duration_ms / 1000))
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            self.report(step_line(event.step_key, tally, None, "skipped"))
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            from orchestration.alerts import step_error

            error = step_error(event)
            self.failures.append(f"{event.step_key}: {error}")
            self.report(step_line(event.step_key, tally, None, "FAILED"))
            self.report(f"          {first_lines(error)}")


def first_lines(text: str, lines: int = 4, width: int = 200) -> str:
    kept = [line[:width] for line in text.strip().splitlines()[:lines]]
    more = len(text.strip().splitlines()) - lines
    return "\n          ".join(kept + ([f"... ({more} more lines; -v shows them all)"] if more > 0 else []))


def run_job(
    name: str,
    *,
    verbose: bool = False,
    report: Callable[[str], None] | None = None,
    run_config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Execute a Dagster job in this process, on the persistent instance; raise JobFailed when it fails.

    The run holds the warehouse writer lock from its first step to its last (the
    `warehouse_writer` resource), so it waits for, and never overlaps, another writer.
    """
    from orchestration.definitions import defs
    from orchestration.instance import get_instance

    if report is None:  # the terminal as it is now: a step may divert sys.stdout while it runs
        out = sys.stdout

        def report(line: str) -> None:
            print(line, file=out, flush=True)

    instance = get_instance()
    job = defs.resolve_job_def(name)
    config = dict(run_config or {})
    if not verbose:
        config.setdefault("loggers", {"console": {"config": {"log_level": QUIET_LOG_LEVEL}}})
    run_id = str(uuid.uuid4())
    report(f"Running job {name!r} (run {run_id[:8]}; Dagster instance {instance.root_directory})")
    # dagster-dbt logs each dbt command through Python logging ("dagster.builtin"): quiet too
    builtin = logging.getLogger("dagster.builtin")
    level = builtin.level
    if not verbose:
        builtin.setLevel(logging.WARNING)
    try:
        with StepWatcher(instance, run_id, report if not verbose else _ignore) as watcher:
            result = job.execute_in_process(
                instance=instance, run_config=config, run_id=run_id, raise_on_error=False, tags=tags
            )
    finally:
        builtin.setLevel(level)
    if not result.success:
        failures = watcher.failures or [
            f"{e.step_key}: {_error(e)}" for e in result.all_events if e.is_step_failure
        ]
        _alert_once(instance, name, run_id, failures)
        _report_unpublished(instance, name, run_id, failures, report)
        raise JobFailed(failure_message(name, failures), run_id)
    return result.run_id


def _ignore(_line: str) -> None:
    return None


def _error(event: Any) -> str:
    from orchestration.alerts import step_error

    return step_error(event)


def failure_message(job: str, failures: Iterable[str]) -> str:
    listed = [first_lines(f, lines=2) for f in failures]
    return f"job {job!r} failed: " + ("; ".join(listed[:3]) or "see the run's logs in the UI")


def _report_unpublished(
    instance: dg.DagsterInstance, job: str, run_id: str, failures: list[str], say: Callable[[str], None]
) -> None:
    """A publishing job that failed before publishing still gets its report: the last good
    copy's, with the failure at the top (also in the UI, as the report asset's latest)."""
    from orchestration.jobs import PUBLISHING_JOBS
    from orchestration.report import unpublished_report

    if job not in PUBLISHING_JOBS:
        return
    try:
        written = unpublished_report(instance, job, run_id, failures)
    except Exception as exc:  # the report must never hide the run's own failure
        log.warning("could not write the report of failed run %s: %s", run_id, exc)
        return
    if written is not None:
        published = written.publication
        when = written.local(published["published_at"]) if published else "never"
        say(
            f"Not published: the last good copy (published {when}) stays; "
            f"report recorded for run {run_id[:8]}"
        )
        for reason in written.unpublished.reasons[:5] if written.unpublished else []:
            say(f"  {first_lines(reason, lines=1)}")


def _alert_once(instance: dg.DagsterInstance, job: str, run_id: str, failures: list[str]) -> None:
    """A run started here raises the same alert a daemon's failure sensor would (once per run)."""
    from orchestration.alerts import Alert, deliver, webhook_url

    steps = [f.split(":", 1)[0] for f in failures]
    message = " | ".join(f.split(":", 1)[-1].strip() for f in failures)[:2000] or "run failed"
    deliver(Alert(job=job, run_id=run_id, message=message, failed_steps=steps), url=webhook_url())
