"""Run the systems' dlt sources into the warehouse and say what changed, table by table.

One system at a time is `run_system`. `run_systems` runs several side by side: each system
extracts and normalizes in its own process (dlt's working files are per system), and this
process loads each one as soon as its worker is done, one load at a time, because the DuckDB
warehouse takes one writer.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import multiprocessing
import os
import queue as queue_module
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.storages.exceptions import SchemaNotFoundError

from ingestion import config_errors, declared, history, lifetime, local_state
from ingestion import progress as progress_module
from ingestion.guard import FAILED, SKIPPED, Outcome
from ingestion.tables import (
    FLAGGED_TABLE,
    QUARANTINE_TABLE,
    SCOPES,
    SOURCES,
    SYSTEMS,
    dataset_name,
    required_resources,
)
from ingestion.warehouse import (
    Paths,
    compare_counts,
    drop_repeated_rows,
    paths,
    record_outcomes,
    table_counts,
)

log = logging.getLogger(__name__)

# dlt's extract files are read once, by normalize on this machine: gzip only costs time.
dlt.config["data_writer.disable_compression"] = True
# Pages that sources hand on as Arrow tables (ingestion/arrow.py) get the same bookkeeping
# columns as normalized rows: staging reads `_dlt_load_id`, and merges key on `_dlt_id`.
dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True
# A load job that fails for good (bad data, not a hiccup) aborts its package instead of
# leaving it to be retried, and failing, on every run: dlt keeps the aborted package among
# the loaded ones with its failed job, and puts the pipeline's state back where the package
# started, so the next run reads those records again. The runner raises an alert.
dlt.config["load.auto_abort_on_terminal_error"] = True

_EXTRACT_FOLDER = re.compile(r"[0-9a-f]{16}")  # dlt names each extract's folder with a random id


@dataclass
class TableSummary:
    table: str
    loaded: int  # rows written by this run (new + updated)
    new: int
    updated: int
    rows: int  # rows in the table afterwards


@dataclass
class SystemResult:
    system: str
    seconds: float
    tables: list[TableSummary] = field(default_factory=list)
    quarantined: int = 0
    load_ids: list[str] = field(default_factory=list)
    flagged: int = 0
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # resources skipped or failed
    counts: list[SourceCount] = field(default_factory=list)  # the source's own totals against raw

    @property
    def records(self) -> int:
        return sum(t.loaded for t in self.tables)

    @property
    def skipped(self) -> dict[str, Outcome]:
        return {r: o for r, o in self.outcomes.items() if o.status == SKIPPED}

    @property
    def failed(self) -> dict[str, Outcome]:
        return {r: o for r, o in self.outcomes.items() if o.status == FAILED}

    def verdict(self, required: Collection[str] = ()) -> str | None:
        """Why this system's run counts as failed, or None: a resource that failed (its
        listing cut short or looping), or one the run needs that was skipped (with the scope
        to grant)."""
        problems = [o.text() for o in self.failed.values()]
        for resource in sorted(required):
            outcome = self.skipped.get(resource)
            if outcome is not None:
                scope = (
                    f"the scope {outcome.scope}" if outcome.scope else SCOPES.get(f"{self.system}.{resource}")
                )
                grant = f"; grant the token {scope}" if scope else ""
                problems.append(f"{resource} is required but was skipped ({outcome.reason}){grant}")
        return "; ".join(problems) or None


@dataclass(frozen=True)
class SourceCount:
    """What a source says it holds against what raw holds, after a run."""

    resource: str
    at_source: int
    in_raw: int
    quarantined: int  # held back by their contract (open or accepted quarantine), not in raw

    @property
    def unaccounted(self) -> int:
        """Records at the source neither in raw nor quarantined (raw may hold more: records
        deleted at the source, or created after the count)."""
        return max(0, self.at_source - self.in_raw - self.quarantined)


class IngestError(RuntimeError):
    """One or more systems failed; the others' data is loaded."""

    def __init__(self, failures: dict[str, str], results: list[SystemResult]) -> None:
        self.failures, self.results = failures, results
        detail = "; ".join(f"{system}: {reason}" for system, reason in failures.items())
        super().__init__(f"ingest failed for {', '.join(failures)} ({detail})")


def make_pipeline(system: str, where: Paths | None = None) -> dlt.Pipeline:
    """The system's dlt pipeline; a corrupt local state or schema file is named in the error,
    with the command that resets it (`local_state.check`)."""
    where = where or paths()
    local_state.check(system, where)
    where.dlt_dir.mkdir(parents=True, exist_ok=True)
    engine = where.engine
    if engine.path is not None:
        engine.path.parent.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"trueup_{system}",
        destination=engine.dlt_destination(),
        dataset_name=dataset_name(system),
        pipelines_dir=str(where.dlt_dir),
    )


def load_source(system: str, **kwargs: Any) -> Any:
    """Build the dlt source of one system (config and secrets resolve now, not at import)."""
    if system not in SOURCES:
        raise ValueError(f"unknown system {system!r}; choose from {', '.join(SYSTEMS)}")
    module_name, _, attribute = SOURCES[system].partition(":")
    try:
        source = getattr(importlib.import_module(module_name), attribute)(**kwargs)
    except Exception as exc:  # a setting's error says how to set it, in a few lines
        readable = config_errors.describe(system, exc)
        if readable is None:
            raise
        raise readable from None
    # Raw keeps what the API said: ISO-looking strings stay strings; staging casts them.
    source.schema.remove_type_detection("iso_timestamp")
    return source


def _options(full_refresh: bool, where: Paths) -> dict[str, Any]:
    options: dict[str, Any] = {}
    file_format = where.engine.loader_file_format  # DuckDB: Parquet (`Engine.loader_file_format`)
    if file_format:
        options["loader_file_format"] = file_format
    if full_refresh:
        options["refresh"] = "drop_sources"
    return options


def _finish_pending(system: str, pipeline: dlt.Pipeline, where: Paths) -> None:
    """Finish the load packages a killed or failed run left behind, then remove the second
    copies of rows that resuming a half-loaded package can insert (`drop_repeated_rows`).

    A marker file stands for "resumed, not yet cleaned", so a run killed in between still
    gets the clean-up from the next one.
    """
    marker = where.dlt_dir / f"{pipeline.pipeline_name}.resumed"
    _drop_unfinished_extracts(system, pipeline)
    _drop_normalized_extracts(system, pipeline)
    _adopt_extracted_schemas(system, pipeline)
    if pipeline.has_pending_data:
        log.info("%s: finishing load packages a previous run left behind", system)
        pipeline.normalize()
        if any(_half_loaded(pipeline, load_id) for load_id in pipeline.list_normalized_load_packages()):
            marker.touch()
        _loaded(system, pipeline.load)  # a package that fails for good is set aside, not retried
    if marker.exists():
        removed = drop_repeated_rows(where, dataset_name(system))
        if removed:
            tables = ", ".join(f"{table} {count}" for table, count in sorted(removed.items()))
            log.warning("%s: removed rows a resumed load had copied twice (%s)", system, tables)
        marker.unlink()


def _drop_unfinished_extracts(system: str, pipeline: dlt.Pipeline) -> None:
    """Extract writes a package in a folder of its own under `normalize/` and moves it into
    `extracted` when it is done; a run killed or failed before that leaves the folder behind,
    holding every page it had written. None of it was committed (its cursors did not move),
    so the next run reads it all again: the folder is litter, as large as the extract got."""
    normalize_dir = Path(pipeline._get_normalize_storage().storage.storage_path)
    for folder in normalize_dir.iterdir() if normalize_dir.is_dir() else ():
        if folder.is_dir() and _EXTRACT_FOLDER.fullmatch(folder.name):
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            log.info("%s: dropping an unfinished extract (%.1f MB)", system, size / 1e6)
            shutil.rmtree(folder)


def _drop_normalized_extracts(system: str, pipeline: dlt.Pipeline) -> None:
    """Normalize commits a package by renaming it into the load folder and then deleting its
    extract; a run killed between the two leaves an extract dlt would normalize again (and
    fail on, the package being there already). Its data is in the normalized package."""
    done = {*pipeline.list_normalized_load_packages(), *pipeline.list_completed_load_packages()}
    extracts = pipeline._get_normalize_storage().extracted_packages
    for load_id in set(pipeline.list_extracted_load_packages()) & done:
        log.info("%s: package %s is normalized already; dropping its extract", system, load_id)
        extracts.delete_package(load_id)


def _adopt_extracted_schemas(system: str, pipeline: dlt.Pipeline) -> None:
    """Extract commits its package (with the schema it extracted with) and only then saves
    that schema; a run killed between the two leaves the stored schema one run behind, and
    dlt normalizes a pending package with the stored schema. Table hints the extract set, a
    table's merge disposition among them, would be lost: a merged table appended to, its
    changed records doubled. The package's schema is the one that save would have written."""
    extracts = pipeline._get_normalize_storage().extracted_packages
    storage = pipeline._schema_storage
    for load_id in sorted(pipeline.list_extracted_load_packages()):
        schema = extracts.load_schema(load_id)
        try:
            stored = storage.load_schema(schema.name)
        except SchemaNotFoundError:
            continue  # none stored: dlt normalizes with the package's own schema
        if schema.version > stored.version:
            log.info("%s: package %s was extracted with a newer schema; saving it", system, load_id)
            storage.save_schema(schema)


def _half_loaded(pipeline: dlt.Pipeline, load_id: str) -> bool:
    jobs = pipeline.get_load_package_info(load_id).jobs
    return bool(jobs.get("started_jobs") or jobs.get("completed_jobs"))


def run_system(
    system: str,
    *,
    full_refresh: bool = False,
    report: Callable[[str], None] | None = None,
    source_kwargs: dict[str, Any] | None = None,
    where: Paths | None = None,
    required: Collection[str] | None = None,
) -> SystemResult:
    """Ingest one system. A run killed at any point is finished by the next one.

    Raises IngestError (after loading what was read) when a resource failed or a required one
    (`required`, default: the `required_resources` setting) was skipped."""
    where = where or paths()
    started = time.monotonic()
    tracker = progress_module.Progress(system=system, report=report)
    progress_module.activate(tracker)
    pipeline = make_pipeline(system, where)
    _finish_pending(system, pipeline, where)
    before = table_counts(where, dataset_name(system))
    source = load_source(system, **(source_kwargs or {}))
    loads: list[str] = []
    with history.kept(where, system, full_refresh):
        failure = _loaded(
            system, lambda: loads.extend(pipeline.run(source, **_options(full_refresh, where)).loads_ids)
        )
    normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    result = _summarize(
        system,
        started,
        normalized.row_counts if normalized else {},
        before,
        table_counts(where, dataset_name(system)),
        full_refresh,
        loads,
    )
    result.outcomes = dict(tracker.outcomes)
    _after_load(system, where, result, dict(tracker.totals))
    if report:
        report(tracker.line() + f" in {result.seconds:.1f}s")
    problem = failure or result.verdict(_required(system, required))
    if problem:
        raise IngestError({system: problem}, [result])
    return result


def run_systems(
    systems: Sequence[str] = SYSTEMS,
    *,
    full_refresh: bool | Collection[str] = False,
    report: Callable[[str], None] | None = None,
    source_kwargs: dict[str, dict[str, Any]] | None = None,
    where: Paths | None = None,
    parallel: bool = True,
    required: Mapping[str, Collection[str]] | None = None,
) -> list[SystemResult]:
    """Ingest several systems; with `parallel`, extract and normalize them side by side.

    Every system that extracts cleanly is loaded, even when another fails; the failures are
    raised afterwards as one `IngestError`. `full_refresh` is True for all systems or names
    the ones to reload from scratch; `source_kwargs` maps a system to its arguments;
    `required` maps a system to the resources a run needs (default: the setting).
    """
    where = where or paths()
    kwargs = source_kwargs or {}
    systems = list(dict.fromkeys(systems))
    refresh = set(systems) if full_refresh is True else set(full_refresh or ())
    needs = dict(required) if required is not None else required_resources(_configured_required())
    if not parallel or len(systems) < 2:
        return _one_by_one(systems, refresh, report, kwargs, where, needs)
    started = time.monotonic()
    for system in systems:  # these write to the warehouse, so before any worker starts
        pipeline = make_pipeline(system, where)
        _finish_pending(system, pipeline, where)
        pipeline.sync_destination()
    done: dict[str, SystemResult] = {}
    failures: dict[str, str] = {}
    # Each system loads as soon as its worker has normalized it, while the others extract.
    for system, extracted, failure in _side_by_side(systems, where, refresh, kwargs, report):
        if extracted is None:
            failures[system] = failure or "extract failed"
            continue
        before = table_counts(where, dataset_name(system))
        pipeline = make_pipeline(system, where)
        loads: list[str] = []
        try:
            with history.kept(where, system, system in refresh):
                aborted = _loaded(system, functools.partial(_load_pending, pipeline, loads))
        except Exception as exc:  # reported with the others below
            failures[system] = f"load: {exc}"
            continue
        row_counts, line, outcomes, totals = extracted
        after = table_counts(where, dataset_name(system))
        done[system] = _summarize(system, started, row_counts, before, after, system in refresh, loads)
        done[system].outcomes = {o["resource"]: Outcome(**o) for o in outcomes}
        _after_load(system, where, done[system], totals)
        problem = aborted or done[system].verdict(needs.get(system, ()))
        if problem:
            failures[system] = problem
        if report:
            report(f"{line}; loaded in {done[system].seconds:.1f}s")
    results = [done[system] for system in systems if system in done]
    if failures:
        raise IngestError(failures, results)
    return results


def _load_pending(pipeline: dlt.Pipeline, loads: list[str]) -> None:
    loads.extend(pipeline.load().loads_ids)


def _required(system: str, required: Collection[str] | None) -> Collection[str]:
    if required is not None:
        return required
    return required_resources(_configured_required()).get(system, set())


def _configured_required() -> list[str] | None:
    """The `[ingest] required_resources` setting (INGEST__REQUIRED_RESOURCES), if set."""
    value: Any = dlt.config.get("ingest.required_resources")
    if value is None:
        return None
    if isinstance(value, str):
        import json

        value = json.loads(value)
    return [str(v) for v in value]


def _loaded(system: str, load: Callable[[], Any]) -> str | None:
    """Run a load; when a job failed for good (dlt aborted its package and put the state back),
    raise an alert and return why the system failed, instead of raising."""
    from dlt.load.exceptions import LoadClientJobFailed
    from dlt.pipeline.exceptions import PipelineStepFailed

    try:
        load()
    except PipelineStepFailed as exc:
        cause = exc.exception
        if not isinstance(cause, LoadClientJobFailed):
            raise
        message = (
            f"a load job failed for good, so its package {cause.load_id} was set aside (kept among "
            f"the loaded packages, marked aborted) and the records in it will be read again next run: "
            f"{str(cause)[:300]}"
        )
        _alert(system, cause.load_id, message)
        return message
    return None


def _alert(system: str, load_id: str, message: str) -> None:
    """An ops alert (the ops store, and the webhook when one is configured)."""
    log.error("%s: %s", system, message)
    try:
        from orchestration.alerts import Alert, deliver, webhook_url
    except ImportError:  # the ingestion package used on its own
        return
    deliver(
        Alert(job=f"ingest {system}", run_id=load_id, message=message, kind="load_package_set_aside"),
        url=webhook_url(),
    )


def _after_load(system: str, where: Paths, result: SystemResult, totals: dict[str, int]) -> None:
    """After a system loaded: every declared table and column exists; the resources it could
    not read in full are recorded (`_resource_status`) for the status and the report; the
    source's own totals are compared with raw (`_source_counts`)."""
    added = declared.ensure(where, system)
    if added:
        log.info("%s: created declared tables and columns no load has written yet: %s", system, sorted(added))
    rows = [
        {"resource": o.resource, "status": o.status, "reason": o.reason, "scope": o.scope}
        for o in result.outcomes.values()
    ]
    record_outcomes(where, dataset_name(system), rows)
    if totals:
        found = compare_counts(where, dataset_name(system), totals)
        result.counts = [SourceCount(**c) for c in found]
        for count in result.counts:
            if count.unaccounted:
                log.warning(
                    "%s: the source counts %d %s, raw holds %d and %d are quarantined: %d unaccounted "
                    "(`trueup audit` finds and fetches them)",
                    system,
                    count.at_source,
                    count.resource,
                    count.in_raw,
                    count.quarantined,
                    count.unaccounted,
                )


def _one_by_one(
    systems: list[str],
    refresh: set[str],
    report: Callable[[str], None] | None,
    kwargs: dict[str, dict[str, Any]],
    where: Paths,
    needs: Mapping[str, Collection[str]],
) -> list[SystemResult]:
    results: list[SystemResult] = []
    failures: dict[str, str] = {}
    for system in systems:
        try:
            results.append(
                run_system(
                    system,
                    full_refresh=system in refresh,
                    report=report,
                    source_kwargs=kwargs.get(system),
                    where=where,
                    required=needs.get(system, ()),
                )
            )
        except IngestError as failed:
            results.extend(failed.results)
            failures.update(failed.failures)
        except Exception as exc:  # reported with the others below
            failures[system] = f"{type(exc).__name__}: {exc}"
    if failures:
        raise IngestError(failures, results)
    return results


def _side_by_side(
    systems: list[str],
    where: Paths,
    refresh: set[str],
    kwargs: dict[str, dict[str, Any]],
    report: Callable[[str], None] | None,
) -> Iterator[
    tuple[str, tuple[dict[str, int], str, list[dict[str, Any]], dict[str, int]] | None, str | None]
]:
    """Extract and normalize each system in a process of its own. Yields (system, (row counts,
    progress line, resource outcomes, source totals), None) as each one finishes, or (system,
    None, reason) when it failed."""
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    workers = {
        system: context.Process(
            target=_extract_worker,
            args=(system, where, system in refresh, kwargs.get(system), messages, os.getpid()),
            name=f"ingest-{system}",
        )
        for system in systems
    }
    for worker in workers.values():
        worker.start()
    pending = set(systems)
    gone: set[str] = set()  # found dead once; its last message may still be on its way
    try:
        while pending:
            try:
                kind, system, payload = messages.get(timeout=1.0)
            except queue_module.Empty:
                for system in pending & gone:  # died without a word (killed, out of memory)
                    pending.discard(system)
                    yield system, None, f"extract process exited with code {workers[system].exitcode}"
                gone = {system for system in pending if not workers[system].is_alive()}
                continue
            if kind == "progress":
                if report:
                    report(payload)
            elif kind == "done":
                pending.discard(system)
                yield system, payload, None
            else:
                pending.discard(system)
                yield system, None, payload
    finally:
        for worker in workers.values():
            worker.join()


def _extract_worker(
    system: str,
    where: Paths,
    full_refresh: bool,
    source_kwargs: dict[str, Any] | None,
    messages: Any,
    parent: int,
) -> None:
    """Runs in its own process: extract and normalize one system, never touching the warehouse."""
    _exit_with(parent)
    logging.basicConfig(level=logging.WARNING)
    try:
        tracker = progress_module.Progress(
            system=system, report=lambda line: messages.put(("progress", system, line))
        )
        progress_module.activate(tracker)
        pipeline = make_pipeline(system, where)
        source = load_source(system, **(source_kwargs or {}))
        pipeline.extract(source, **_options(full_refresh, where))
        info = pipeline.normalize()
        row_counts = dict(info.row_counts) if info else {}
        outcomes = [dataclasses.asdict(o) for o in tracker.outcomes.values()]
        messages.put(("done", system, (row_counts, tracker.line(), outcomes, dict(tracker.totals))))
    except Exception as exc:  # the parent reports it and loads the rest
        messages.put(("error", system, f"{type(exc).__name__}: {exc}"))


def _exit_with(parent: int) -> None:
    """A worker whose parent is gone (killed, say) stops at once, as if killed with it: the
    next run then finds its unfinished work where dlt keeps it and redoes it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    lifetime.die_with_parent(signal.SIGKILL)  # Linux: the kernel kills us with the parent, at once
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _summarize(
    system: str,
    started: float,
    row_counts: dict[str, int],
    before: dict[str, int],
    after: dict[str, int],
    full_refresh: bool,
    load_ids: list[str],
) -> SystemResult:
    result = SystemResult(system=system, seconds=time.monotonic() - started, load_ids=load_ids)
    for table, count in sorted(row_counts.items()):
        if table.startswith("_dlt"):
            continue
        if table == QUARANTINE_TABLE:
            result.quarantined = count
        if table == FLAGGED_TABLE:
            result.flagged = count
        grown = max(after.get(table, 0) - (0 if full_refresh else before.get(table, 0)), 0)
        new = min(grown, count)
        result.tables.append(TableSummary(table, count, new, count - new, after.get(table, 0)))
    return result


def result_lines(results: Iterable[SystemResult]) -> list[str]:
    """The per-table summary the CLI prints."""
    lines = []
    for result in results:
        lines.append(f"{'table':<28} {'loaded':>9} {'new':>9} {'updated':>9} {'rows':>10}")
        for t in result.tables:
            lines.append(f"{t.table:<28} {t.loaded:>9,} {t.new:>9,} {t.updated:>9,} {t.rows:>10,}")
        for outcome in result.outcomes.values():
            lines.append(f"  {outcome.text()}")
        for count in result.counts:
            if count.unaccounted:
                lines.append(
                    f"  {count.resource}: the source counts {count.at_source:,}, raw holds {count.in_raw:,} "
                    f"and {count.quarantined:,} are quarantined; {count.unaccounted:,} unaccounted "
                    "(run `trueup audit`)"
                )
        flagged = f", {result.flagged} flagged" if result.flagged else ""
        lines.append(f"{result.system}: {result.quarantined} quarantined{flagged}, {result.seconds:.1f}s\n")
    return lines
