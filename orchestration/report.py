"""The nightly reconciliation report: read from the published copy, rendered as markdown
(asset metadata in the Dagster UI, with SVG charts) and as plain text (`trueup report`).

Every section degrades to "not built yet" when its tables are absent, so the report
renders on a warehouse at any stage of its build.
"""

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from ingestion import health
from ingestion.quarantine import open_quarantine_sql
from ingestion.tables import SYSTEMS, dataset_name
from ingestion.warehouse import paths
from ingestion.webhooks.monitor import intake_health
from ingestion.webhooks.monitor import report_section as intake_section
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
    if not database.exists():
        report.freshness = [FreshnessRow(s, None, settings.freshness_hours[s], None) for s in SYSTEMS]
        return report
    with duckdb.connect(str(database), read_only=True) as con:
        tables = {f"{s}.{t}" for s, t in con.execute(_TABLES_SQL).fetchall()}
        report.publication = _publication(con, tables)
        report.rules, report.trend = _findings(con, tables)
        report.quarantine = _quarantine(con, tables)
        report.checks = _checks(con, tables)
        report.identity = _identity(con, tables)
        report.freshness = _freshness(con, tables, report.generated_at, settings.freshness_hours)
        report.funnel = _funnel(con, tables)
        report.completeness = health.collect(con, tables)
        report.reverse_etl = reverse_etl_report.collect(con, tables)
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
    present = [s for s in SYSTEMS if f"{dataset_name(s)}._quarantine" in tables]
    if not any(f"{dataset_name(s)}._dlt_loads" in tables for s in SYSTEMS):
        return None
    rows = []
    for system in present:
        schema = dataset_name(system)
        open_rows = open_quarantine_sql(
            schema, {t.partition(".")[2] for t in tables if t.startswith(schema + ".")}
        )
        for resource, reason, records in _rows(
            con, f"select resource, reason, count(*) from ({open_rows}) group by all order by 3 desc, 1, 2"
        ):
            rows.append(QuarantineRow(system, str(resource), str(reason), int(records)))
    return rows


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


def _freshness(con: Any, tables: set[str], now: datetime, limits: dict[str, float]) -> list[FreshnessRow]:
    ingested = _ingested(con, tables)
    rows = []
    for system in SYSTEMS:
        loads = f"{dataset_name(system)}._dlt_loads"
        loaded = None
        if loads in tables:
            loaded = _rows(con, f"select max(inserted_at) from {loads} where status = 0")[0][0]
        last = ingested.get(system) or loaded
        age = (now - _aware(last)).total_seconds() / 3600 if last is not None else None
        rows.append(FreshnessRow(system, loaded, limits[system], age, ingested.get(system)))
    return rows


def _ingested(con: Any, tables: set[str]) -> dict[str, datetime]:
    """When each source's ingest last succeeded (stamped by publish from Dagster's records)."""
    if f"{PUBLICATION_SCHEMA}.sources" not in tables:
        return {}
    return dict(_rows(con, f"select system, last_ingested_at from {PUBLICATION_SCHEMA}.sources"))


def _funnel(con: Any, tables: set[str]) -> list[tuple[str, int]] | None:
    if "marts.mart_funnel_by_channel_month" not in tables:
        return None
    sums = ", ".join(f"coalesce(sum({column}), 0)" for column, _ in FUNNEL_STAGES)
    row = _rows(con, f"select {sums} from marts.mart_funnel_by_channel_month")[0]
    return [(label, int(value)) for (_, label), value in zip(FUNNEL_STAGES, row, strict=True)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- pictures -----------------------------------------------------------------------------------

_FONT = "font-family='Helvetica,Arial,sans-serif'"
_COLORS = {"open": "#4f6bed", "new": "#e8833a", "resolved": "#3aa76d", "bar": "#7b8ce0", "grid": "#d9dce3"}


def trend_svg(points: Sequence[TrendPoint], label: Any = None) -> str:
    """Two panels over the last runs: open findings (line), and below it the findings each
    run opened (orange, up) and resolved (green, down)."""
    width, left, right = 640, 44, 16
    step = (width - left - right) / max(1, len(points))
    xs = [left + step * (i + 0.5) for i in range(len(points))]
    parts = [_svg_open(width, 330), _title("Drift: open findings per night, and what each night changed")]
    parts += _open_panel(points, xs, top=40, height=130, left=left, right=width - right)
    parts += _change_panel(
        points, xs, middle=228, half=40, left=left, right=width - right, bar=min(22.0, step / 2)
    )
    label = label or (lambda moment: moment.strftime("%m-%d %H:%M"))
    for x, p in zip(xs, points, strict=True):
        day, _, clock = label(p.run_at).partition(" ")
        parts.append(_text(x, 302, day, anchor="middle"))
        parts.append(_text(x, 315, clock, anchor="middle", size=9))
    return "".join([*parts, "</svg>"])


def _open_panel(
    points: Sequence[TrendPoint], xs: Sequence[float], top: float, height: float, left: float, right: float
) -> list[str]:
    scale = _nice_ceiling(max([1, *(p.open for p in points)]))

    def y(value: float) -> float:
        return top + height - height * value / scale

    parts = []
    for tick in range(5):
        value = scale * tick / 4
        parts.append(_line(left, y(value), right, y(value), _COLORS["grid"]))
        parts.append(_text(left - 6, y(value) + 4, f"{value:g}", anchor="end"))
    coordinates = " ".join(f"{x:.1f},{y(p.open):.1f}" for x, p in zip(xs, points, strict=True))
    parts.append(
        f"<polyline points='{coordinates}' fill='none' stroke='{_COLORS['open']}' stroke-width='2.5'/>"
    )
    for x, p in zip(xs, points, strict=True):
        parts.append(f"<circle cx='{x:.1f}' cy='{y(p.open):.1f}' r='3.5' fill='{_COLORS['open']}'/>")
        parts.append(_text(x, y(p.open) - 8, f"{p.open:,}", anchor="middle", weight="bold"))
    parts.append(_text(right, top - 6, "open", anchor="end", weight="bold"))
    return parts


def _change_panel(
    points: Sequence[TrendPoint],
    xs: Sequence[float],
    middle: float,
    half: float,
    left: float,
    right: float,
    bar: float,
) -> list[str]:
    scale = max([1, *(max(p.new, p.resolved) for p in points)])
    parts = [_line(left, middle, right, middle, "#9aa0ad")]
    parts.append(_text(left - 6, middle - half + 8, "new", anchor="end", size=10))
    parts.append(_text(left - 6, middle + half, "resolved", anchor="end", size=10))
    for x, p in zip(xs, points, strict=True):
        up, down = half * p.new / scale, half * p.resolved / scale
        parts.append(_rect(x - bar / 2, middle - up, bar, up, _COLORS["new"]))
        parts.append(_rect(x - bar / 2, middle, bar, down, _COLORS["resolved"]))
        if p.new:
            parts.append(_text(x, middle - up - 3, f"+{p.new:,}", anchor="middle", size=10))
        if p.resolved:
            parts.append(_text(x, middle + down + 11, f"-{p.resolved:,}", anchor="middle", size=10))
    return parts


def funnel_svg(stages: Sequence[tuple[str, int]]) -> str:
    """Horizontal funnel bars, each with its count and its conversion from the stage before."""
    width, row, left, top = 640, 34, 130, 30
    height = top + row * len(stages) + 10
    widest = max([1, *(count for _, count in stages)])
    parts = [_svg_open(width, height), _title("Funnel: all channels, all months")]
    previous = None
    for i, (name, count) in enumerate(stages):
        y = top + i * row
        bar = (width - left - 150) * count / widest
        parts.append(_text(left - 8, y + 17, name, anchor="end"))
        parts.append(_rect(left, y + 4, max(bar, 1.0), row - 10, _COLORS["bar"]))
        note = f"{count:,}" + (f"  ({count / previous:.0%} of previous)" if previous else "")
        parts.append(_text(left + bar + 8, y + 17, note))
        previous = count or None
    return "".join([*parts, "</svg>"])


def _nice_ceiling(value: int) -> int:
    for step in (4, 8, 20, 40, 80, 200, 400, 800, 2000, 4000, 8000, 20000, 40000):
        if value <= step:
            return step
    return ((value // 40000) + 1) * 40000


def _svg_open(width: int, height: int) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'><rect width='100%' height='100%' fill='white'/>"
    )


def _title(text: str) -> str:
    return _text(10, 18, text, weight="bold", size=13)


def _text(
    x: float, y: float, text: str, anchor: str = "start", weight: str = "normal", size: int = 11
) -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' font-weight='{weight}' "
        f"{_FONT} font-size='{size}' fill='#2b2f3a'>{html.escape(text)}</text>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, color: str) -> str:
    return f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='{color}'/>"


def _rect(x: float, y: float, w: float, h: float, color: str) -> str:
    return f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{max(h, 0):.1f}' fill='{color}'/>"


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def sparkline(values: Sequence[int]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1
    return "".join(SPARK[round((v - low) / span * (len(SPARK) - 1))] for v in values)


# -- markdown (the Dagster UI) -------------------------------------------------------------------


def to_markdown(report: Report) -> str:
    """The whole report as markdown, charts inlined as SVG data URIs."""
    sections = [
        _md_header(report),
        _md_findings(report),
        _md_quarantine(report),
        _md_checks(report),
        _md_identity(report),
        _md_freshness(report),
        _md_funnel(report),
        intake_section(report.intake, markdown=True),
    ]
    if report.completeness is not None:
        sections.append(health.markdown(report.completeness))
    sections.append(reverse_etl_report.render(report.reverse_etl, markdown=True))
    return "\n\n".join(sections) + "\n"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_header(report: Report) -> str:
    lines = ["# Nightly reconciliation"]
    pub = report.publication
    if pub is None:
        return lines[0] + "\n\nNo published warehouse yet: run the `nightly` job (`trueup run nightly`)."
    t = report.totals
    lines.append(
        f"Published {report.local(pub['published_at'])} by run `{str(pub['run_id'])[:8]}` "
        f"(job `{pub['job']}`). **{t['open']:,} open findings**: {t['new']:,} new, "
        f"{t['resolved']:,} resolved this run, {t['accepted']:,} accepted."
    )
    return "\n\n".join(lines)


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


def to_text(report: Report) -> str:
    """The same report for a terminal: aligned tables, a sparkline and text bars."""
    sections = [_text_header(report), _text_findings(report), _text_quarantine(report)]
    sections += [_text_checks(report), _text_identity(report), _text_freshness(report), _text_funnel(report)]
    sections.append(intake_section(report.intake, markdown=False))
    if report.completeness is not None:
        sections.append(health.text(report.completeness))
    sections.append(reverse_etl_report.render(report.reverse_etl, markdown=False))
    return "\n\n".join(sections) + "\n"


def _text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
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
    table = _text_table(("rule", "severity", "new", "open", "resolved", "vs previous", "trend"), rows)
    trend = ""
    if report.trend:
        label = _run_label(report)
        trend = "\n\nopen findings per night: " + "  ".join(
            f"{label(p.run_at)}: {p.open}" for p in report.trend
        )
    return f"{title}\n{table}{trend}"


def _text_quarantine(report: Report) -> str:
    title = _underline("Quarantined records")
    if report.quarantine is None:
        return f"{title}\n{NOT_BUILT}"
    if not report.quarantine:
        return f"{title}\nnone"
    rows = [(q.system, q.resource, q.reason[:80], q.records) for q in report.quarantine[:25]]
    return f"{title}\n" + _text_table(("system", "table", "reason", "records"), rows)


def _text_checks(report: Report) -> str:
    title = _underline("Check results")
    if report.checks is None:
        return f"{title}\n{NOT_BUILT}"
    summary = _check_summary(report.checks)
    lines = [f"{summary['passed']:,} passed, {summary['failed']:,} failed ({summary['warned']:,} warnings)"]
    if report.checks:
        lines.append(_text_table(("layer", "checks", "passed", "failed"), _checks_by_layer(report.checks)))
    failed = [(c.asset, c.check, c.severity) for c in report.checks if not c.passed][:30]
    if failed:
        lines.append("failed:\n" + _text_table(("asset", "check", "severity"), failed))
    return title + "\n" + "\n\n".join(lines)


def _text_identity(report: Report) -> str:
    title = _underline("Identity resolution")
    identity = report.identity
    if identity is None:
        return f"{title}\n{NOT_BUILT}"
    review = NOT_BUILT if identity.review_links is None else f"{identity.review_links:,}"
    rows = [_identity_cells(r) for r in identity.rows]
    table = _text_table(("system", "records", "matched", "share", "needs review"), rows)
    return f"{title}\n{identity.customers:,} customers; links waiting for review: {review}\n{table}"


def _text_freshness(report: Report) -> str:
    header = ("source", "last ingest", "age", "last new records", "limit", "status")
    rows = [_freshness_cells(report, f) for f in report.freshness]
    return _underline("Freshness") + "\n" + _text_table(header, rows)


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
