"""Findings ops can act on: each with its records, each side's value, a link to the record in the
source system's web app, and the accept / reopen workflow.

Decisions live in `reconciliation.finding_decisions` (who, what, why, when, and the values the
finding had), a table no build drops: the `findings` model reads the latest decision per
finding and keeps it `accepted` while its values stay those that were accepted; a change of
value reopens it. Recording a decision takes the warehouse writer lock, applies it to the
warehouse's findings at once, and to the published copy (patched in a temporary file, swapped
in atomically), so `trueup findings list`, the report and BI tools see it before the next run.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ingestion.warehouse import Paths, paths

DECISIONS = "reconciliation.finding_decisions"
VALUE_COLUMNS = ("crm_value", "billing_value", "scheduling_value", "ads_value")
ACTIONS = ("accept", "reopen")
ACCOUNTS = "_publication.accounts"
DECISIONS_DDL = f"""
create table if not exists {DECISIONS} (
    finding_id varchar not null,
    action varchar not null,
    reason varchar,
    decided_by varchar,
    decided_at timestamptz not null,
    origin varchar,
    crm_value varchar,
    billing_value varchar,
    scheduling_value varchar,
    ads_value varchar
)"""

# Record links per record key: (system, object, URL template). HubSpot's record URL carries the
# portal id (account-info API, `_publication.accounts`); Stripe's dashboard puts test-mode
# records under /test; Calendly's web app shows a scheduled event by its uuid.
HUBSPOT_RECORD = "https://{ui_domain}/contacts/{portal_id}/record/{type_id}/{id}"
STRIPE_RECORD = "https://dashboard.stripe.com{mode}/{object}/{id}"
CALENDLY_EVENT = "https://calendly.com/app/scheduled_events/user/me?uuid={id}"
RECORD_KEYS: dict[str, tuple[str, str]] = {
    "contact_id": ("crm", "contact"),
    "duplicate_contact_id": ("crm", "contact"),
    "deal_id": ("crm", "deal"),
    "company_id": ("crm", "company"),
    "meeting_id": ("crm", "meeting"),
    "customer_id": ("billing", "customer"),
    "invoice_id": ("billing", "invoice"),
    "event_uri": ("scheduling", "event"),
    "campaign_id": ("ads", "campaign"),
}
HUBSPOT_TYPES = {"contact": "0-1", "company": "0-2", "deal": "0-3"}
STRIPE_OBJECTS = {"customer": "customers", "invoice": "invoices"}


class DecisionError(ValueError):
    """A decision that cannot be recorded (an unknown id, no reason); nothing was written."""

    expected = True  # the CLI prints the message alone


@dataclass(frozen=True)
class RecordLink:
    key: str
    system: str
    object: str
    record_id: str
    url: str | None


@dataclass
class Finding:
    finding_id: str
    rule: str
    severity: str
    status: str
    field: str
    record_keys: dict[str, Any]
    values: dict[str, str | None]
    authoritative_system: str | None
    authoritative_value: str | None
    proposed_action: str
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    outcome: str | None = None
    links: list[RecordLink] = dataclass_field(default_factory=list)
    decision: dict[str, Any] | None = None
    reason: str | None = None  # why a value within one system is a finding (malformed_value)

    def as_row(self) -> dict[str, Any]:
        return {
            "finding_id": self.finding_id,
            "rule": self.rule,
            "severity": self.severity,
            "status": self.status,
            "outcome": self.outcome,
            "why": self.reason,
            "field": self.field,
            "records": ", ".join(f"{link.system} {link.object} {link.record_id}" for link in self.links),
            **{f"{system}_value": value for system, value in self.values.items()},
            "authoritative": f"{self.authoritative_system}: {self.authoritative_value}"
            if self.authoritative_system
            else None,
            "proposed_action": self.proposed_action,
            "first_seen_at": self.first_seen_at.isoformat() if self.first_seen_at else None,
            "links": " ".join(link.url for link in self.links if link.url),
            "decided_by": (self.decision or {}).get("decided_by"),
            "reason": (self.decision or {}).get("reason"),
        }


# -- links ---------------------------------------------------------------------------------------


def record_links(record_keys: Mapping[str, Any], accounts: Mapping[str, str]) -> list[RecordLink]:
    """A link per record a finding names (None where the system has no web page for it)."""
    links = []
    for key, value in record_keys.items():
        if key not in RECORD_KEYS or value in (None, ""):
            continue
        system, kind = RECORD_KEYS[key]
        record_id = str(value).rstrip("/").rsplit("/", 1)[-1] if key == "event_uri" else str(value)
        links.append(RecordLink(key, system, kind, record_id, _url(system, kind, record_id, accounts)))
    return links


def _url(system: str, kind: str, record_id: str, accounts: Mapping[str, str]) -> str | None:
    safe = quote(record_id, safe="")
    if system == "crm" and kind in HUBSPOT_TYPES and accounts.get("crm.portal_id"):
        return HUBSPOT_RECORD.format(
            ui_domain=accounts.get("crm.ui_domain") or "app.hubspot.com",
            portal_id=quote(accounts["crm.portal_id"], safe=""),
            type_id=HUBSPOT_TYPES[kind],
            id=safe,
        )
    if system == "billing" and kind in STRIPE_OBJECTS:
        mode = "" if accounts.get("billing.livemode") == "true" else "/test"
        return STRIPE_RECORD.format(mode=mode, object=STRIPE_OBJECTS[kind], id=safe)
    if system == "scheduling" and kind == "event":
        return CALENDLY_EVENT.format(id=safe)
    return None


def account_rows(con: Any) -> list[tuple[str, str]]:
    """(key, value) rows for `_publication.accounts`, from the raw tables in the warehouse."""
    rows: list[tuple[str, str]] = []
    present = {
        f"{s}.{t}"
        for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
    }
    if "raw_crm.account_info" in present:
        found = con.execute('select "portal_id", ui_domain from raw_crm.account_info limit 1').fetchall()
        if found:
            rows.append(("crm.portal_id", str(found[0][0])))
            if found[0][1]:
                rows.append(("crm.ui_domain", str(found[0][1])))
    if "raw_billing.customers" in present:
        found = con.execute("select bool_or(livemode) from raw_billing.customers").fetchall()
        if found and found[0][0] is not None:
            rows.append(("billing.livemode", "true" if found[0][0] else "false"))
    return rows


# -- reading -------------------------------------------------------------------------------------


def _tables(con: Any) -> set[str]:
    return {
        f"{s}.{t}"
        for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    }


def accounts_of(con: Any, tables: set[str] | None = None) -> dict[str, str]:
    tables = tables if tables is not None else _tables(con)
    if ACCOUNTS not in tables:
        return {}
    return {str(k): str(v) for k, v in con.execute(f"select key, value from {ACCOUNTS}").fetchall()}


def read_findings(
    con: Any,
    *,
    rules: Sequence[str] = (),
    statuses: Sequence[str] = (),
    where: str = "",
    order: str = "rule, first_seen_at, finding_id",
    limit: int | None = None,
) -> list[Finding]:
    """Findings of the open database (the published copy), with links and their last decision."""
    tables = _tables(con)
    if "reconciliation.findings" not in tables:
        return []
    columns = {
        c
        for (c,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'reconciliation' and table_name = 'findings'"
        ).fetchall()
    }
    wanted = (
        "finding_id",
        "rule",
        "severity",
        "status",
        "field",
        "record_keys",
        *VALUE_COLUMNS,
        "authoritative_system",
        "authoritative_value",
        "proposed_action",
        "first_seen_at",
        "last_seen_at",
        "outcome",
        "systems",
        "reason",
    )  # a column the table lacks (an older build, the outcome before it exists) reads as null
    select = ", ".join(name if name in columns else f"null as {name}" for name in wanted)
    conditions, params = ["true"], []
    if rules:
        conditions.append(f"rule in ({', '.join('?' for _ in rules)})")
        params += list(rules)
    if statuses:
        conditions.append(f"status in ({', '.join('?' for _ in statuses)})")
        params += list(statuses)
    if where:
        conditions.append(where)
    sql = (
        f"select {select} from reconciliation.findings "
        f"where {' and '.join(conditions)} order by {order}" + (f" limit {int(limit)}" if limit else "")
    )
    accounts = accounts_of(con, tables)
    decisions = _decisions(con, tables)
    found = []
    for row in con.execute(sql, params).fetchall():
        keys = _keys(row[5])
        found.append(
            Finding(
                finding_id=row[0],
                rule=row[1],
                severity=row[2],
                status=row[3],
                field=row[4],
                record_keys=keys,
                values=dict(zip(("crm", "billing", "scheduling", "ads"), row[6:10], strict=True)),
                authoritative_system=row[10],
                authoritative_value=row[11],
                proposed_action=row[12],
                first_seen_at=row[13],
                last_seen_at=row[14],
                outcome=row[15] or _outcome(row[6:10], row[16]),
                links=record_links(keys, accounts),
                decision=decisions.get(row[0]),
                reason=row[17],
            )
        )
    return found


def _outcome(values: Sequence[Any], systems: Any) -> str | None:
    """`conflict` (both present, different) or `missing` (one side lacks it: a fill) for a finding
    between systems, when the table has no outcome column; None for a rule within one system
    (a duplicate, a malformed value)."""
    if "," not in str(systems or ""):
        return None
    present = [v for v in values if v not in (None, "")]
    if len(present) >= 2:
        return "conflict"
    return "missing" if present else None


def _keys(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _decisions(con: Any, tables: set[str]) -> dict[str, dict[str, Any]]:
    if DECISIONS not in tables:
        return {}
    rows = con.execute(
        f"select finding_id, action, reason, decided_by, decided_at from {DECISIONS} "
        "qualify row_number() over (partition by finding_id order by decided_at desc) = 1"
    ).fetchall()
    return {r[0]: {"action": r[1], "reason": r[2], "decided_by": r[3], "decided_at": r[4]} for r in rows}


# -- deciding ------------------------------------------------------------------------------------


@dataclass
class Decided:
    action: str
    finding_ids: list[str]
    published: bool


def decide(
    action: str,
    finding_ids: Sequence[str],
    reason: str,
    *,
    decided_by: str | None = None,
    origin: str = "cli",
    where: Paths | None = None,
    hold_lock: bool = True,
    wait_seconds: float | None = None,
) -> Decided:
    """Record `accept` or `reopen` for some findings, in the warehouse and the published copy."""
    from orchestration.resources import ops_settings, writer_lock

    if action not in ACTIONS:
        raise DecisionError(f"unknown action {action!r}: {' or '.join(ACTIONS)}")
    ids = list(dict.fromkeys(i.strip() for i in finding_ids if i.strip()))
    if not ids:
        raise DecisionError("name at least one finding id (trueup findings list shows them)")
    if not reason.strip():
        raise DecisionError("say why with --reason (it is recorded with the decision)")
    where = where or paths()
    who = decided_by or _user()
    if not hold_lock:
        return _decide_locked(action, ids, reason, who, origin, where)
    wait = ops_settings().writer_wait_seconds if wait_seconds is None else wait_seconds
    with writer_lock(where, wait_seconds=wait):
        return _decide_locked(action, ids, reason, who, origin, where)


def _user() -> str:
    try:
        return os.environ.get("TRUEUP_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _decide_locked(action: str, ids: list[str], reason: str, who: str, origin: str, where: Paths) -> Decided:
    import duckdb

    where.engine.duckdb_file("recording a decision on findings")  # DuckDB SQL, in the DuckDB file
    if not where.warehouse.exists():
        raise DecisionError(f"no warehouse at {where.warehouse}: nothing is built yet")
    now = datetime.now(UTC)
    with duckdb.connect(str(where.warehouse)) as con:
        _apply(con, action, ids, reason, who, origin, now)
    published = False
    if where.published.exists():
        with _patched(where.published) as copy, duckdb.connect(str(copy)) as con:
            if "reconciliation.findings" in _tables(con):
                _apply(con, action, ids, reason, who, origin, now, strict=False)
                con.execute("checkpoint")
                published = True
    return Decided(action, ids, published)


def _apply(
    con: Any,
    action: str,
    ids: list[str],
    reason: str,
    who: str,
    origin: str,
    now: datetime,
    strict: bool = True,
) -> None:
    """Append the decisions (with each finding's values now) and set the findings' status."""
    marks = ", ".join("?" for _ in ids)
    con.execute("create schema if not exists reconciliation")
    con.execute(DECISIONS_DDL)
    rows = con.execute(
        f"select finding_id, status, {', '.join(VALUE_COLUMNS)} from reconciliation.findings "
        f"where finding_id in ({marks})",
        ids,
    ).fetchall()
    known = {r[0]: r for r in rows}
    if strict:
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DecisionError(
                f"no such finding: {', '.join(unknown[:5])} (trueup findings list shows the ids)"
            )
        closed = [i for i in ids if known[i][1] not in ("open", "accepted")]
        if closed:
            raise DecisionError(
                f"not open any more (resolved or repaired): {', '.join(closed[:5])}; nothing was recorded"
            )
    con.execute("begin")
    try:
        con.executemany(
            f"insert into {DECISIONS} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(i, action, reason, who, now, origin, *known[i][2:]) for i in ids if i in known],
        )
        status, before = ("accepted", "open") if action == "accept" else ("open", "accepted")
        con.execute(
            f"update reconciliation.findings set status = ? where status = ? and finding_id in ({marks})",
            [status, before, *ids],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


@contextmanager
def _patched(target: Path) -> Iterator[Path]:
    """A copy of `target` to change; swapped in atomically when the block ends without error.
    The caller holds the writer lock, so no publish replaces `target` meanwhile."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(target, temporary)
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
