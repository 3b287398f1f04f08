"""The nightly reconciliation report: read from the published copy, rendered as markdown
(asset metadata in the Dagster UI, with SVG charts) and as plain text (`trueup report`).

Every section degrades to "not built yet" when its tables are absent, so the report
renders on a warehouse at any stage of its build.
"""

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from ingestion import health as ingest_health
from ingestion.tables import SYSTEMS
from ingestion.warehouse import paths
from ingestion.webhooks.monitor import intake_health
from ingestion.webhooks.monitor import report_section as intake_section
from orchestration import health
from orchestration.findings import Finding, read_findings
from orchestration.publish import GROUP, PUBLICATION_SCHEMA, PUBLISH_KEY, CheckOutcome
from orchestration.resources import ops_settings
from reverse_etl import report as reverse_etl_report

REPORT_KEY = dg.AssetKey(["ops", "nightly_report"])
TREND_RUNS = 14
NOT_BUILT = "not built yet"
FUNNEL_STAGES = (
    ("leads", "Leads"),
    ("opportunities", "Opportunities"),
    ("won_deals", "Won deals"),
    ("new_customers", "New customers"),
)
SPARK = "▁▂▃▄▅▆▇█"
SHOWN_NEW = 10  # new findings listed per rule (the total is given)
SHOWN_OLDEST = 5  # oldest open findings listed per rule


@dataclass
class RuleRow:
    rule: str
    severity: str
    new: int
    open: int
    resolved: int
    accepted: int
    previous_open: int | None
    history: list[int] = field(default_factory=list)  # open findings per run, oldest first


@dataclass
class TrendPoint:
    run_at: datetime
    open: int
    new: int
    resolved: int


@dataclass
class QuarantineRow:
    system: str
    resource: str
    reason: str
    records: int


@dataclass
class IdentityRow:
    system: str
    records: int
    matched: int
    needs_review: int


@dataclass
class Identity:
    rows: list[IdentityRow]
    customers: int
    review_links: int | None
    methods: list[tuple[str, int]]


@dataclass
class FreshnessRow:
    system: str
    last_loaded_at: datetime | None  # the last load that brought new records
    limit_hours: float
    age_hours: float | None  # since the last successful ingest (new records or not)
    last_ingested_at: datetime | None = None

    @property
    def fresh(self) -> bool:
        return self.age_hours is not None and self.age_hours <= self.limit_hours


@dataclass
class RuleFindings:
    """One rule's findings worth opening: this run's new ones and the oldest still open."""

    rule: str
    new: list[Finding]
    oldest: list[Finding]
    new_total: int
    open_total: int


@dataclass
class PathRow:
    path: str
    kind: str
    measured: health.PathHealth
    verdicts: list[health.Verdict]

    @property
    def failing(self) -> list[health.Verdict]:
        return [v for v in self.verdicts if not v.passed]


@dataclass
class Unpublished:
    """A run that stopped before publishing: the copy the report reads is the last good one."""

    run_id: str
    job: str
    failed_at: datetime
    reasons: list[str]  # failed error-level checks first, then the failed steps


@dataclass
class Report:
    generated_at: datetime
    timezone: str = "UTC"
    publication: dict[str, Any] | None = None
    rules: list[RuleRow] | None = None
    trend: list[TrendPoint] | None = None
    quarantine: list[QuarantineRow] | None = None
    checks: list[CheckOutcome] | None = None
    identity: Identity | None = None
    freshness: list[FreshnessRow] = field(default_factory=list)
    funnel: list[tuple[str, int]] | None = None
    intake: Any = None  # ingestion.webhooks.monitor.IntakeHealth, read from the inbox (not the copy)
    completeness: Any = None  # ingestion.health.IngestHealth
    details: list[RuleFindings] | None = None  # per rule: the new and the oldest open findings
    paths: list[PathRow] = field(default_factory=list)
    unpublished: Unpublished | None = None  # a run that failed before publishing, newer than the copy
    reverse_etl: Any = None  # reverse_etl.report.TargetRow list

    @property
    def totals(self) -> dict[str, int]:
        rules = self.rules or []
        return {
            "open": sum(r.open for r in rules),
            "new": sum(r.new for r in rules),
            "resolved": sum(r.resolved for r in rules),
            "accepted": sum(r.accepted for r in rules),
        }

    def local(self, moment: datetime) -> str:
        """A timestamp in the configured time zone, as ops read it."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M %Z")


# -- collecting ---------------------------------------------------------------------------------


def collect(database: Path | None = None, now: datetime | None = None) -> Report:
    """Read every section from the published copy (read-only; never the live warehouse)."""
    import duckdb

    database = database or paths().published
    settings = ops_settings()
    report = Report(generated_at=now or datetime.now(UTC), timezone=settings.timezone)
    report.intake = intake_health()
    # runs from the CLI (`trueup ingest`) count too: the ops store has every ingest
    logged = health.last_successful_ingests()
    if not database.exists():
        report.paths = _paths(report.generated_at)
        report.freshness = [
            FreshnessRow(
                s,
                None,
                settings.freshness_hours[s],
                (report.generated_at - _aware(logged[s])).total_seconds() / 3600 if s in logged else None,
                logged.get(s),
            )
            for s in SYSTEMS
        ]
        return report
    with duckdb.connect(str(database), read_only=True) as con:
        tables = {f"{s}.{t}" for s, t in con.execute(_TABLES_SQL).fetchall()}
        report.publication = _publication(con, tables)
        report.rules, report.trend = _findings(con, tables)
        report.quarantine = _quarantine(con, tables)
        report.checks = _checks(con, tables)
        report.identity = _identity(con, tables)
        report.freshness = _freshness(con, tables, report.generated_at, settings.freshness_hours, logged)
        report.funnel = _funnel(con, tables)
        report.completeness = ingest_health.read_published(con, tables, PUBLICATION_SCHEMA)
        report.details = _details(con, tables)
        report.reverse_etl = reverse_etl_report.collect(con, tables)
    report.paths = _paths(report.generated_at)
    return report


_TABLES_SQL = "select table_schema, table_name from information_schema.tables"


def _rows(con: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return list(con.execute(sql, list(params)).fetchall())


def _publication(con: Any, tables: set[str]) -> dict[str, Any] | None:
    if f"{PUBLICATION_SCHEMA}.run" not in tables:
        return None
    rows = _rows(con, f"select run_id, job, published_at from {PUBLICATION_SCHEMA}.run")
    return {"run_id": rows[0][0], "job": rows[0][1], "published_at": rows[0][2]} if rows else None


def _findings(con: Any, tables: set[str]) -> tuple[list[RuleRow] | None, list[TrendPoint] | None]:
    if "reconciliation.findings_daily" not in tables:
        return None, None
    runs = [
        r[0]
        for r in _rows(
            con,
            "select distinct run_at from reconciliation.findings_daily order by run_at desc limit ?",
            [TREND_RUNS],
        )
    ]
    if not runs:
        return [], []
    runs.reverse()
    daily = _rows(
        con,
        "select run_at, rule, new_count + reopened_count, open_count, resolved_count + repaired_count, "
        "accepted_count from reconciliation.findings_daily where run_at >= ? order by run_at, rule",
        [runs[0]],
    )
    severity = _severities(con, tables)
    return _rule_rows(daily, runs, severity), _trend(daily, runs)


def _severities(con: Any, tables: set[str]) -> dict[str, str]:
    if "reconciliation.findings" not in tables:
        return {}
    rows = _rows(
        con,
        "select rule, max(case when severity = 'error' then 2 when severity = 'warn' then 1 else 0 end) "
        "from reconciliation.findings group by rule",
    )
    return {rule: {2: "error", 1: "warn"}.get(level, "") for rule, level in rows}


def _rule_rows(daily: list[tuple[Any, ...]], runs: list[datetime], severity: dict[str, str]) -> list[RuleRow]:
    by_rule: dict[str, dict[datetime, tuple[Any, ...]]] = {}
    for run_at, rule, *counts in daily:
        by_rule.setdefault(rule, {})[run_at] = tuple(int(c or 0) for c in counts)
    latest, previous = runs[-1], (runs[-2] if len(runs) > 1 else None)
    rows = []
    for rule, per_run in by_rule.items():
        new, open_, resolved, accepted = per_run.get(latest, (0, 0, 0, 0))
        before = None if previous is None else per_run.get(previous, (0, 0, 0, 0))[1]
        history = [per_run[r][1] if r in per_run else 0 for r in runs]
        rows.append(RuleRow(rule, severity.get(rule, ""), new, open_, resolved, accepted, before, history))
    return sorted(rows, key=lambda r: (r.severity != "error", -r.open, -r.new, r.rule))


def _trend(daily: list[tuple[Any, ...]], runs: list[datetime]) -> list[TrendPoint]:
    points = {run: TrendPoint(run, 0, 0, 0) for run in runs}
    for run_at, _rule, new, open_, resolved, _accepted in daily:
        point = points[run_at]
        point.new += int(new or 0)
        point.open += int(open_ or 0)
        point.resolved += int(resolved or 0)
    return [points[run] for run in runs]


def _quarantine(con: Any, tables: set[str]) -> list[QuarantineRow] | None:
    """Quarantined records per system, table and reason (stamped by publish: raw stays behind)."""
    if f"{PUBLICATION_SCHEMA}.quarantine" not in tables:
        return None
    if not _loads(con, tables) and not _rows(con, f"select 1 from {PUBLICATION_SCHEMA}.quarantine limit 1"):
        return None  # no source's dataset exists yet
    return [
        QuarantineRow(str(system), str(resource), str(reason), int(records))
        for system, resource, reason, records in _rows(
            con,
            f"select system, resource, reason, records from {PUBLICATION_SCHEMA}.quarantine "
            "order by 4 desc, 1, 2, 3",
        )
    ]


@dataclass
class _Load:
    last_loaded_at: datetime | None


def _loads(con: Any, tables: set[str]) -> dict[str, _Load]:
    if f"{PUBLICATION_SCHEMA}.loads" not in tables:
        return {}
    return {
        str(system): _Load(moment)
        for system, moment in _rows(con, f"select system, last_loaded_at from {PUBLICATION_SCHEMA}.loads")
    }


def _checks(con: Any, tables: set[str]) -> list[CheckOutcome] | None:
    if f"{PUBLICATION_SCHEMA}.asset_checks" not in tables:
        return None
    return [
        CheckOutcome(asset, check, bool(passed), severity or "ERROR", failures, description or "")
        for asset, check, passed, severity, failures, description in _rows(
            con,
            "select asset, check_name, passed, severity, failures, description "
            f"from {PUBLICATION_SCHEMA}.asset_checks order by passed, asset, check_name",
        )
    ]


def _identity(con: Any, tables: set[str]) -> Identity | None:
    if "intermediate.int_identity__resolved" not in tables:
        return None
    # A record is matched when its customer holds other records too.
    per_system = _rows(
        con,
        "with clustered as (select *, count(*) over (partition by customer_id) as cluster_size "
        "from intermediate.int_identity__resolved) "
        "select record_system, count(*), count(*) filter (where cluster_size > 1), "
        "count(*) filter (where needs_review) from clustered group by 1 order by 1",
    )
    customers = _rows(con, "select count(distinct customer_id) from intermediate.int_identity__resolved")
    methods = _rows(
        con,
        "select coalesce(match_method, 'none'), count(*) from intermediate.int_identity__resolved "
        "group by 1 order by 2 desc, 1",
    )
    review = None
    if "intermediate.int_identity__review" in tables:
        review = int(_rows(con, "select count(*) from intermediate.int_identity__review")[0][0])
    return Identity(
        rows=[IdentityRow(str(s), int(n), int(m), int(r)) for s, n, m, r in per_system],
        customers=int(customers[0][0]),
        review_links=review,
        methods=[(str(m), int(n)) for m, n in methods],
    )


def _freshness(
    con: Any, tables: set[str], now: datetime, limits: dict[str, float], logged: dict[str, datetime]
) -> list[FreshnessRow]:
    ingested = _ingested(con, tables)
    loads = _loads(con, tables)
    rows = []
    for system in SYSTEMS:
        loaded = loads[system].last_loaded_at if system in loads else None
        last = _latest(ingested.get(system), logged.get(system)) or loaded
        age = (now - _aware(last)).total_seconds() / 3600 if last is not None else None
        rows.append(
            FreshnessRow(
                system, loaded, limits[system], age, _latest(ingested.get(system), logged.get(system))
            )
        )
    return rows


def _latest(*moments: datetime | None) -> datetime | None:
    known = [_aware(m) for m in moments if m is not None]
    return max(known) if known else None


def _ingested(con: Any, tables: set[str]) -> dict[str, datetime]:
    """When each source's ingest last succeeded (stamped by publish from Dagster's records)."""
    if f"{PUBLICATION_SCHEMA}.sources" not in tables:
        return {}
    return dict(_rows(con, f"select system, last_ingested_at from {PUBLICATION_SCHEMA}.sources"))


def _details(con: Any, tables: set[str]) -> list[RuleFindings] | None:
    """Per rule: the findings this run opened or reopened and the oldest open ones, bounded."""
    if "reconciliation.findings" not in tables:
        return None
    columns = {
        c
        for (c,) in _rows(
            con,
            "select column_name from information_schema.columns "
            "where table_schema = 'reconciliation' and table_name = 'findings'",
        )
    }
    if not {"status", "first_seen_at", "last_seen_at", "reopened_at"} <= columns:
        return None  # a findings table from before these columns: nothing to list by age
    latest = _rows(con, "select max(last_seen_at) from reconciliation.findings")[0][0]
    found = read_findings(con, statuses=("open",), order="rule, first_seen_at, finding_id")
    by_rule: dict[str, list[Finding]] = {}
    for finding in found:
        by_rule.setdefault(finding.rule, []).append(finding)
    reopened = {
        fid
        for (fid,) in _rows(
            con,
            "select finding_id from reconciliation.findings where status = 'open' and reopened_at = ?",
            [latest],
        )
    }
    details = []
    for rule, items in by_rule.items():
        new = [f for f in items if f.first_seen_at == latest or f.finding_id in reopened]
        older = [f for f in items if f not in new]
        details.append(RuleFindings(rule, new[:SHOWN_NEW], older[:SHOWN_OLDEST], len(new), len(items)))
    return sorted(details, key=lambda d: (-d.open_total, d.rule))


def _paths(now: datetime) -> list[PathRow]:
    """Every integration path's health now (the ops store, not the copy: it is live)."""
    rows = []
    for path, measured in health.evaluate(now=now):
        rows.append(PathRow(path.name, path.kind, measured, health.judge(path, measured, now)))
    return rows


def _funnel(con: Any, tables: set[str]) -> list[tuple[str, int]] | None:
    if "marts.mart_funnel_by_channel_month" not in tables:
        return None
    sums = ", ".join(f"coalesce(sum({column}), 0)" for column, _ in FUNNEL_STAGES)
    row = _rows(con, f"select {sums} from marts.mart_funnel_by_channel_month")[0]
    return [(label, int(value)) for (_, label), value in zip(FUNNEL_STAGES, row, strict=True)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- pictures -----------------------------------------------------------------------------------


def trend_svg(points: Sequence[TrendPoint], label: Any = None) -> str:
    """The drift chart (orchestration/charts.py: Vega-Lite through altair, SVG by vl-convert)."""
    from orchestration import charts

    return charts.trend_svg(points, label)


def funnel_svg(stages: Sequence[tuple[str, int]]) -> str:
    """The funnel chart (orchestration/charts.py)."""
    from orchestration import charts

    return charts.funnel_svg(stages)


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def sparkline(values: Sequence[int]) -> str:
    """One bar per value, scaled from zero to the largest (a steady count shows steady bars,
    not the flat floor a min-to-max scale gives it)."""
    if not values:
        return ""
    high = max(max(values), 1)
    return "".join(SPARK[round(max(v, 0) / high * (len(SPARK) - 1))] for v in values)


# -- markdown (the Dagster UI) -------------------------------------------------------------------


def to_markdown(report: Report) -> str:
    """The whole report as markdown, charts inlined as SVG data URIs."""
    sections = [
        _md_header(report),
        _md_findings(report),
        _md_details(report),
        _md_paths(report),
        _md_quarantine(report),
        _md_checks(report),
        _md_identity(report),
        _md_freshness(report),
        _md_funnel(report),
        intake_section(report.intake, markdown=True),
    ]
    if report.completeness is not None:
        sections.append(ingest_health.markdown(report.completeness))
    sections.append(reverse_etl_report.render(report.reverse_etl, markdown=True))
    return "\n\n".join(sections) + "\n"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class Markdown(str):
    """Text that is markdown already (a link the report built): a table cell keeps it as it is."""


# markdown's active characters in a table cell: escapes, code, emphasis, links, pipes, strikes
# (an underscore only where it can start or end emphasis: intra-word ones stay readable)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<!\w)_|_(?!\w))")


def escape(value: Any) -> str:
    """A source value as literal text in markdown: HTML escaped (so no tag, entity or script
    reaches the page), markdown's punctuation backslashed, line breaks and tabs as spaces."""
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _cell(value: Any) -> str:
    if isinstance(value, Markdown):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(value)


def _md_header(report: Report) -> str:
    lines = ["# Nightly reconciliation"]
    if report.unpublished is not None:
        lines.append(_md_unpublished(report, report.unpublished))
    pub = report.publication
    if pub is None:
        lines.append("No published warehouse yet: run the `nightly` job (`trueup run nightly`).")
        return "\n\n".join(lines)
    t = report.totals
    lines.append(
        f"Published {report.local(pub['published_at'])} by run `{str(pub['run_id'])[:8]}` "
        f"(job `{pub['job']}`). **{t['open']:,} open findings**: {t['new']:,} new, "
        f"{t['resolved']:,} resolved this run, {t['accepted']:,} accepted."
    )
    return "\n\n".join(lines)


def _md_unpublished(report: Report, failed: Unpublished) -> str:
    reasons = "\n".join(f"- {escape(r)}" for r in failed.reasons[:10]) or "- see the run's logs in the UI"
    return (
        f"**NOT PUBLISHED: run `{failed.run_id[:8]}` (job `{failed.job}`) failed at "
        f"{report.local(failed.failed_at)}** and did not publish; reverse ETL did not run. "
        f"What follows is the last good copy.\n{reasons}"
    )


def unpublished_report(
    instance: dg.DagsterInstance, job: str, run_id: str, failures: Sequence[str]
) -> Report | None:
    """The report of a run that failed before publishing, when its job publishes: the last good
    copy's report with the failure at the top, recorded as the report asset's materialization
    (so the UI shows it in the report's place). None when the run did publish."""
    from orchestration.publish import read_publication, run_check_outcomes

    where = paths()
    publication = read_publication(where.published)
    if publication is not None and publication.get("run_id") == run_id:
        return None  # it published; what failed came after
    blocking = [
        f"{c.asset} {c.check}: {c.description or 'failed'}"
        + (f" ({c.failures:,} failing)" if c.failures else "")
        for c in run_check_outcomes(instance, run_id)
        if not c.passed and c.severity.upper() == "ERROR"
    ]
    report = collect(where.published)
    report.unpublished = Unpublished(run_id, job, datetime.now(UTC), [*blocking, *failures])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=REPORT_KEY,
            description=f"run {run_id[:8]} of {job} failed before publishing",
            metadata={**report_metadata(report), "published": False, "failed_run": run_id},
        )
    )
    return report


def _rule_cells(r: RuleRow) -> tuple[Any, ...]:
    """One rule's row of the findings table (Markdown and text alike)."""
    return (r.rule, r.severity, r.new, r.open, r.resolved, _delta(r), sparkline(r.history))


def _identity_cells(r: IdentityRow) -> tuple[Any, ...]:
    """One system's row of the identity table (Markdown and text alike)."""
    return (r.system, r.records, r.matched, _percent(r.matched, r.records), r.needs_review)


def _md_findings(report: Report) -> str:
    title = "## Findings by rule"
    if report.rules is None:
        return f"{title}\n\n_{NOT_BUILT}_ (reconciliation.findings_daily)"
    if not report.rules:
        return f"{title}\n\nNo reconciliation run recorded yet."
    rows = [_rule_cells(r) for r in report.rules]
    header = ("rule", "severity", "new", "open", "resolved", "vs previous night", "trend")
    parts = [title, _md_table(header, rows)]
    if report.trend:
        fmt = _run_label(report)
        parts.append(f"![Findings per night]({data_uri(trend_svg(report.trend, fmt))})")
    return "\n\n".join(parts)


FINDING_HEADER = ("finding", "records", "field", "outcome", "values", "authoritative", "action", "first seen")


def _md_details(report: Report) -> str:
    title = "## Findings to act on"
    if report.details is None:
        return f"{title}\n\n_{NOT_BUILT}_ (reconciliation.findings)"
    if not report.details:
        return f"{title}\n\nNo open findings."
    parts = [
        title,
        "Per rule, the findings this run opened and the oldest still open, each with a link to its "
        "records. `trueup findings list` gives all of them; `trueup findings accept ID --reason ...` "
        "accepts one.",
    ]
    for rule in report.details:
        parts.append(f"### {rule.rule}: {rule.new_total:,} new, {rule.open_total:,} open")
        shown = [("new", f) for f in rule.new] + [("oldest open", f) for f in rule.oldest]
        rows = [_md_finding_cells(report, kind, f) for kind, f in shown]
        parts.append(_md_table(FINDING_HEADER, rows))
        hidden = rule.open_total - len(shown)
        if hidden > 0:
            parts.append(f"_{hidden:,} more open: `trueup findings list --rule {rule.rule}`_")
    return "\n\n".join(parts)


def _md_finding_cells(report: Report, kind: str, f: Finding) -> tuple[Any, ...]:
    records = Markdown(
        " · ".join(
            f"[{escape(link.system)} {escape(link.object)} {escape(link.record_id)}]({link.url})"
            if link.url
            else f"{escape(link.system)} {escape(link.object)} {escape(link.record_id)}"
            for link in f.links
        )
    )
    return (
        Markdown(f"`{f.finding_id[:8]}` ({kind})"),
        records,
        f.field,
        f"{f.outcome or ''} ({f.reason})" if f.reason else f.outcome or "",
        Markdown(" · ".join(f"{escape(s)}: {escape(v)}" for s, v in f.values.items() if v is not None)),
        f"{f.authoritative_system}: {f.authoritative_value}" if f.authoritative_system else "-",
        f.proposed_action,
        report.local(f.first_seen_at) if f.first_seen_at else "",
    )


def _md_paths(report: Report) -> str:
    title = "## Integration paths"
    if not report.paths:
        return f"{title}\n\nNo integration path registered."
    header = ("path", "kind", "last success", "latency", "failure rate", "rejected", "backlog", "status")
    rows = [(*_path_cells(report, p), _md_path_status(p)) for p in report.paths if p.measured.in_use]
    return f"{title}\n\n" + _md_table(header, rows)


def _path_cells(report: Report, p: PathRow) -> tuple[Any, ...]:
    h = p.measured
    rate = "-" if h.failure_rate is None else f"{h.failure_rate:.0%} ({h.failures}/{h.attempts})"
    return (
        p.path,
        p.kind,
        hours_text(h.age_hours(report.generated_at)) + " ago" if h.last_success else "never",
        "-" if h.latency_seconds is None else f"{h.latency_seconds:,.0f} s",
        rate,
        "-" if h.rejected is None else h.rejected,
        "-" if h.backlog is None else f"{h.backlog:,} {h.backlog_unit}",
    )


def _md_path_status(p: PathRow) -> Any:
    if not p.failing:
        return "ok"
    return Markdown(
        " · ".join(f"**{escape(v.metric)}** {escape(v.message)} ([runbook]({v.runbook}))" for v in p.failing)
    )


def _delta(rule: RuleRow) -> str:
    if rule.previous_open is None:
        return "first run"
    change = rule.open - rule.previous_open
    return f"{change:+,}" if change else "="


def _run_label(report: Report) -> Any:
    zone = ZoneInfo(report.timezone)
    return lambda moment: _aware(moment).astimezone(zone).strftime("%m-%d %H:%M")


def _md_quarantine(report: Report) -> str:
    title = "## Quarantined records"
    if report.quarantine is None:
        return f"{title}\n\n_{NOT_BUILT}_ (no source loaded)"
    if not report.quarantine:
        return f"{title}\n\nNone: every record met its contract."
    rows = [(q.system, q.resource, q.reason[:100], q.records) for q in report.quarantine[:25]]
    total = sum(q.records for q in report.quarantine)
    return f"{title}\n\n{total:,} records held back.\n\n" + _md_table(
        ("system", "table", "reason", "records"), rows
    )


def _md_checks(report: Report) -> str:
    title = "## Check results"
    if report.checks is None:
        return f"{title}\n\n_{NOT_BUILT}_ (no publication)"
    if not report.checks:
        return f"{title}\n\nThis run evaluated no checks."
    summary = _check_summary(report.checks)
    parts = [
        title,
        f"{summary['passed']:,} passed, {summary['failed']:,} failed ({summary['warned']:,} warnings).",
    ]
    by_layer = _checks_by_layer(report.checks)
    parts.append(_md_table(("layer", "checks", "passed", "failed"), by_layer))
    failed = [c for c in report.checks if not c.passed]
    if failed:
        rows = [(c.asset, c.check, c.severity, "" if c.failures is None else c.failures) for c in failed[:30]]
        parts.append("Failed checks:\n\n" + _md_table(("asset", "check", "severity", "failing rows"), rows))
    return "\n\n".join(parts)


def _check_summary(checks: Sequence[CheckOutcome]) -> dict[str, int]:
    failed = [c for c in checks if not c.passed]
    return {
        "passed": len(checks) - len(failed),
        "failed": len(failed),
        "warned": sum(1 for c in failed if c.severity.upper().startswith("WARN")),
    }


def _checks_by_layer(checks: Sequence[CheckOutcome]) -> list[tuple[str, int, int, int]]:
    layers: dict[str, list[CheckOutcome]] = {}
    for c in checks:
        layers.setdefault(c.asset.split("/", 1)[0], []).append(c)
    return [
        (layer, len(items), sum(c.passed for c in items), sum(not c.passed for c in items))
        for layer, items in sorted(layers.items())
    ]


def _md_identity(report: Report) -> str:
    title = "## Identity resolution"
    identity = report.identity
    if identity is None:
        return f"{title}\n\n_{NOT_BUILT}_ (intermediate.int_identity__resolved)"
    review = "not built yet" if identity.review_links is None else f"{identity.review_links:,}"
    rows = [_identity_cells(r) for r in identity.rows]
    methods = ", ".join(f"{m} {n:,}" for m, n in identity.methods)
    return "\n\n".join(
        [
            title,
            f"{identity.customers:,} customers; {review} low-confidence links waiting for review.",
            _md_table(("system", "records", "matched across systems", "share", "needs review"), rows),
            f"Match methods: {methods}.",
        ]
    )


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _md_freshness(report: Report) -> str:
    header = ("source", "last ingest", "age", "last new records", "limit", "status")
    rows = [
        (*_freshness_cells(report, f)[:-1], "fresh" if f.fresh else "**stale**") for f in report.freshness
    ]
    return "## Freshness\n\n" + _md_table(header, rows)


def _freshness_cells(report: Report, row: FreshnessRow) -> tuple[str, ...]:
    ingested = row.last_ingested_at or row.last_loaded_at
    return (
        row.system,
        report.local(ingested) if ingested else "never",
        hours_text(row.age_hours),
        report.local(row.last_loaded_at) if row.last_loaded_at else "-",
        f"{row.limit_hours:g} h",
        "fresh" if row.fresh else "STALE",
    )


def hours_text(age: float | None) -> str:
    if age is None:
        return "-"
    return f"{age * 60:.0f} min" if age < 1 else f"{age:.1f} h"


def _md_funnel(report: Report) -> str:
    title = "## Funnel"
    if report.funnel is None:
        return f"{title}\n\n_{NOT_BUILT}_ (marts.mart_funnel_by_channel_month)"
    return f"{title}\n\n![Funnel]({data_uri(funnel_svg(report.funnel))})"


# -- plain text (the terminal) -------------------------------------------------------------------


def to_text(report: Report, per_rule: int | None = None) -> str:
    """The same report for a terminal: aligned tables, a sparkline and text bars; `per_rule`
    bounds the findings listed per rule (default: as many as the UI lists)."""
    details = _text_details(report, per_rule)
    sections = [_text_header(report), _text_findings(report), details, _text_paths(report)]
    sections += [_text_quarantine(report)]
    sections += [_text_checks(report), _text_identity(report), _text_freshness(report), _text_funnel(report)]
    if report.intake is not None:  # no inbox: the terminal says nothing of webhooks
        sections.append(intake_section(report.intake, markdown=False))
    if report.completeness is not None:
        sections.append(ingest_health.text(report.completeness))
    sections.append(reverse_etl_report.render(report.reverse_etl, markdown=False))
    return "\n\n".join(sections) + "\n"


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in header]] + [[_plain(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in cells:
        lines.append(
            "  ".join(
                c.rjust(w) if numeric[i] else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _plain(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _underline(title: str) -> str:
    return f"{title}\n{'=' * len(title)}"


def _text_header(report: Report) -> str:
    text = _md_header(report).replace("# ", "", 1).replace("**", "").replace("`", "")
    title, _, rest = text.partition("\n\n")
    return _underline(title) + ("\n" + rest if rest else "")


def _text_findings(report: Report) -> str:
    title = _underline("Findings by rule")
    if report.rules is None:
        return f"{title}\n{NOT_BUILT}"
    rows = [_rule_cells(r) for r in report.rules]
    table = text_table(("rule", "severity", "new", "open", "resolved", "vs previous", "trend"), rows)
    trend = ""
    if report.trend and len(report.trend) > 1:  # one night is no trend yet
        label = _run_label(report)
        trend = "\n\nopen findings per night: " + "  ".join(
            f"{label(p.run_at)}: {p.open}" for p in report.trend
        )
    return f"{title}\n{table}{trend}"


def _text_details(report: Report, per_rule: int | None = None) -> str:
    """One line per finding (new first, then the oldest open), its first record's link inline;
    `per_rule` bounds the lines per rule (the totals always show)."""
    title = _underline("Findings to act on")
    if report.details is None:
        return f"{title}\n{NOT_BUILT}"
    if not report.details:
        return f"{title}\nno open findings"
    lines = [title]
    for rule in report.details:
        shown = [("new", x) for x in rule.new] + [("oldest", x) for x in rule.oldest]
        shown = shown[:per_rule] if per_rule is not None else shown
        hidden = rule.open_total - len(shown)
        more = f" ({hidden:,} more: trueup findings list --rule {rule.rule})" if hidden > 0 else ""
        lines.append(f"{rule.rule}: {rule.new_total:,} new, {rule.open_total:,} open{more}")
        for kind, f in shown:
            lines.append("  " + _text_finding(kind, f))
    return "\n".join(lines)


def _text_finding(kind: str, f: Finding) -> str:
    values = ", ".join(f"{s}={_plain_value(v, 30)}" for s, v in f.values.items() if v is not None)
    linked = [link for link in f.links if link.url]
    where = linked[0].url if linked else ", ".join(f"{x.system} {x.object} {x.record_id}" for x in f.links)
    more = f" (+{len(linked) - 1} more)" if len(linked) > 1 else ""
    reason = f" ({_plain_value(f.reason, 40)})" if f.reason else ""
    return f"{f.finding_id[:8]} {kind:<6} {f.field}: {values}{reason} -> {f.proposed_action}  {where}{more}"


def _plain_value(value: Any, width: int = 60) -> str:
    text = " ".join(str(value).split())
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def paths_text(report: Report) -> str:
    """The integration-paths section alone (`trueup run path_health`)."""
    return _text_paths(report)


def _text_paths(report: Report) -> str:
    title = _underline("Integration paths")
    header = ("path", "kind", "last success", "latency", "failure rate", "rejected", "backlog", "status")
    rows = [
        (
            *_path_cells(report, p),
            "ok" if not p.failing else "FAILING: " + ", ".join(v.metric for v in p.failing),
        )
        for p in report.paths
        if p.measured.in_use  # a path nothing uses here (no webhook inbox) is left out
    ]
    failing = [
        f"  {p.path} {v.metric}: {v.message} (runbook: {v.runbook})" for p in report.paths for v in p.failing
    ]
    return "\n".join([title, text_table(header, rows), *failing])


def _text_quarantine(report: Report) -> str:
    title = _underline("Quarantined records")
    if report.quarantine is None:
        return f"{title}\n{NOT_BUILT}"
    if not report.quarantine:
        return "Quarantined records: none"
    rows = [(q.system, q.resource, q.reason[:80], q.records) for q in report.quarantine[:25]]
    return f"{title}\n" + text_table(("system", "table", "reason", "records"), rows)


def _text_checks(report: Report) -> str:
    title = _underline("Check results")
    if report.checks is None:
        return f"{title}\n{NOT_BUILT}"
    summary = _check_summary(report.checks)
    lines = [f"{summary['passed']:,} passed, {summary['failed']:,} failed ({summary['warned']:,} warnings)"]
    failed = [(c.asset, c.check, c.severity) for c in report.checks if not c.passed][:30]
    if failed:  # per layer only where something did not pass (the UI's report always has it)
        lines.append(text_table(("layer", "checks", "passed", "failed"), _checks_by_layer(report.checks)))
    if failed:
        lines.append("failed:\n" + text_table(("asset", "check", "severity"), failed))
    return title + "\n" + "\n\n".join(lines)


def _text_identity(report: Report) -> str:
    title = _underline("Identity resolution")
    identity = report.identity
    if identity is None:
        return f"{title}\n{NOT_BUILT}"
    review = NOT_BUILT if identity.review_links is None else f"{identity.review_links:,}"
    rows = [_identity_cells(r) for r in identity.rows]
    table = text_table(("system", "records", "matched", "share", "needs review"), rows)
    return f"{title}\n{identity.customers:,} customers; links waiting for review: {review}\n{table}"


def _text_freshness(report: Report) -> str:
    header = ("source", "last ingest", "age", "last new records", "limit", "status")
    rows = [_freshness_cells(report, f) for f in report.freshness]
    return _underline("Freshness") + "\n" + text_table(header, rows)


def _text_funnel(report: Report) -> str:
    title = _underline("Funnel (all channels, all months)")
    if report.funnel is None:
        return f"{title}\n{NOT_BUILT}"
    widest = max([1, *(n for _, n in report.funnel)])
    width = max(len(name) for name, _ in report.funnel)
    lines = [f"{name:<{width}}  {'█' * max(1, round(40 * n / widest))} {n:,}" for name, n in report.funnel]
    return title + "\n" + "\n".join(lines)


# -- the asset -----------------------------------------------------------------------------------


def report_metadata(report: Report) -> dict[str, Any]:
    """Asset metadata: the markdown report, the findings table, and numbers the UI plots."""
    totals = report.totals
    checks = _check_summary(report.checks or [])
    metadata: dict[str, Any] = {
        "report": dg.MetadataValue.md(to_markdown(report)),
        "open_findings": totals["open"],
        "new_findings": totals["new"],
        "resolved_findings": totals["resolved"],
        "quarantined_records": sum(q.records for q in report.quarantine or []),
        "checks_passed": checks["passed"],
        "checks_failed": checks["failed"],
        "stale_sources": sum(not f.fresh for f in report.freshness),
    }
    if report.completeness is not None:
        metadata["unread_resources"] = len(report.completeness.unread)
        metadata["records_unaccounted"] = report.completeness.unaccounted
    if report.identity is not None:
        metadata["customers"] = report.identity.customers
    if report.rules:
        metadata["findings_by_rule"] = _findings_table(report.rules)
    return metadata


def _findings_table(rules: Sequence[RuleRow]) -> dg.TableMetadataValue:
    columns = [dg.TableColumn("rule", "string"), dg.TableColumn("severity", "string")]
    columns += [dg.TableColumn(name, "int") for name in ("new", "open", "resolved", "previous_open")]
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "rule": r.rule,
                    "severity": r.severity,
                    "new": r.new,
                    "open": r.open,
                    "resolved": r.resolved,
                    "previous_open": r.previous_open,
                }
            )
            for r in rules
        ],
        schema=dg.TableSchema(columns=columns),
    )


def build_report_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=REPORT_KEY,
        deps=[PUBLISH_KEY],
        group_name=GROUP,
        kinds={"duckdb"},
        description=(
            "The nightly reconciliation: findings by rule (new, open, resolved) and their trend, "
            "quarantined records, check results, identity matching, freshness, the funnel. "
            "Read from the published copy; `trueup report` prints the same in a terminal."
        ),
        op_tags={"dagster/priority": "-200"},
    )
    def nightly_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        report = collect(paths().published)
        totals = report.totals
        context.log.info(
            f"{totals['open']} open findings, {totals['new']} new, {totals['resolved']} resolved"
        )
        return dg.MaterializeResult(metadata=report_metadata(report))

    return nightly_report
