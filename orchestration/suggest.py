"""Propose a business mapping from a loaded warehouse, each setting with its evidence.

It reads the raw tables only (what the APIs said), so load the accounts first with every CRM
property (`[sources.crm.properties] contacts = "all"`, `deals = "all"`): a custom property the
load did not ask for is not in raw. Each proposal is what the values show:

- the UTM campaign: the contact property whose values are ad campaign ids or names (the
  names compared case- and space-insensitively), which also says how ads meet attribution;
- the UTM source: the property whose values name the ad platforms;
- the next appointment: the property whose values parse as date-times that equal the start
  of a scheduling event booked with the contact's email (and often lie ahead);
- free-text dates: properties whose values are dates, some not in ISO form;
- the Stripe metadata keys whose values are CRM contact ids and deal ids;
- the booking questions whose answers are the person's CRM company or a phone number.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ingestion.mapping import CONTACT_PROPERTIES, MAPPING_DEFAULTS

PREFIX = "properties__"
MIN_MATCHES = 5  # fewer matching values than this are no evidence
PLATFORM_WORDS = ("google", "facebook", "fb", "meta", "instagram", "bing", "microsoft", "linkedin", "adwords")
_NORMALIZE = "lower(regexp_replace(trim({}), '\\s+', ' ', 'g'))"


@dataclass
class Proposal:
    """One setting of `[mapping]`: the value the data supports and why."""

    setting: str  # e.g. "crm_contact_properties.utm_campaign"
    value: Any
    evidence: list[str] = field(default_factory=list)
    found: bool = True  # False: nothing in the data speaks for a change; the default stands

    @property
    def differs(self) -> bool:
        return self.value != default_of(self.setting)


def default_of(setting: str) -> Any:
    part, _, concept = setting.partition(".")
    value = MAPPING_DEFAULTS[part]
    return value[concept] if concept else value


@dataclass
class Report:
    """The proposals, and what reading the warehouse cost."""

    proposals: list[Proposal]
    queries: int
    seconds: float
    contacts: int


class _Reader:
    """A read-only warehouse connection that counts its queries."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.queries = 0
        self._tables = {
            f"{schema}.{table}"
            for schema, table in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }

    def has(self, table: str) -> bool:
        return table in self._tables

    def columns(self, table: str) -> list[str]:
        schema, _, name = table.partition(".")
        rows = self.rows(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [schema, name],
        )
        return [str(r[0]) for r in rows]

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        self.queries += 1
        return self.con.execute(sql, params or []).fetchall()

    def run(self, sql: str) -> None:
        self.queries += 1
        self.con.execute(sql)


def suggest(con: duckdb.DuckDBPyConnection) -> Report:
    """Every proposal the loaded warehouse supports (read-only: only temporary tables are made)."""
    started = time.monotonic()
    reader = _Reader(con)
    contacts = 0
    proposals: list[Proposal] = []
    if reader.has("raw_crm.contacts"):
        contacts = int(reader.rows("select count(*) from raw_crm.contacts")[0][0])
        properties = _contact_values(reader)
        proposals += _attribution(reader, properties)
        proposals += _utm_source(reader, properties)
        proposals += _next_appointment(reader, properties)
        proposals += _free_text_dates(reader, properties)
        proposals += _missing_defaults(properties)
    proposals += _invoice_reference(reader)
    proposals += _metadata_key(reader, "customers", "raw_crm.contacts", "billing_contact_metadata_key")
    proposals += _metadata_key(reader, "invoices", "raw_crm.deals", "billing_deal_metadata_key")
    proposals += _booking_questions(reader)
    proposals += _invoice_statuses(reader)
    return Report(proposals, reader.queries, time.monotonic() - started, contacts)


# -- contact properties --------------------------------------------------------------------------

# Per contact property: values that are ad campaign ids, or names (case and spacing aside).
_ATTRIBUTION = """
with campaigns as ({campaigns})
select
    v.name,
    count(*) as n,
    count(*) filter (where trim(v.value) in (select campaign_id from campaigns)) as by_id,
    count(*) filter (where {value} in (select {name} from campaigns as c)) as by_name,
    any_value(v.value) filter (where trim(v.value) in (select campaign_id from campaigns)),
    any_value(v.value) filter (where {value} in (select {name} from campaigns as c))
from contact_values as v
group by v.name
"""

# Per contact property: values that are date-times, lie after the last load, and equal the start
# of a scheduling event booked with the contact's email.
_NEXT_APPOINTMENT = r"""
with parsed as (
    select contact_id, name, try_cast(value as timestamptz) as moment
    from contact_values
    where regexp_matches(value, '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}')
),
emails as (
    select cast(id as varchar) as contact_id, lower(trim(properties__email)) as email
    from raw_crm.contacts
),
starts as (
    select distinct lower(trim(i.email)) as email, cast(e.start_time as timestamptz) as start_at
    from raw_scheduling.invitees as i
    inner join raw_scheduling.scheduled_events as e on i.event = e.uri
),
loaded as (
    select max(to_timestamp(cast(_dlt_load_id as double))) as moment from raw_crm.contacts
)
select
    p.name,
    count(*) as parsed,
    count(*) filter (where p.moment > (select moment from loaded)) as ahead,
    count(*) filter (
        where exists (select 1 from starts as s where s.email = m.email and s.start_at = p.moment)
    ) as matched
from parsed as p
left join emails as m using (contact_id)
where p.moment is not null
group by p.name
order by matched desc, ahead desc
"""

# Contact properties whose values are dates, some typed NN/NN/YYYY rather than ISO.
_FREE_TEXT_DATES = r"""
select
    name,
    count(*) as n,
    count(*) filter (where regexp_matches(trim(value), '^\d{4}-\d{2}-\d{2}$')) as iso,
    count(*) filter (where regexp_matches(trim(value), '^\d{1,2}/\d{1,2}/\d{4}$')) as slashed,
    any_value(value) filter (where regexp_matches(trim(value), '^\d{1,2}/\d{1,2}/\d{4}$'))
from contact_values
group by name
having slashed > 0 and iso + slashed >= 0.9 * n
order by name
"""


def _contact_values(reader: _Reader) -> list[str]:
    """Load every non-empty contact property value into a temp table (contact_id, name, value);
    the property names loaded."""
    names = [c for c in reader.columns("raw_crm.contacts") if c.startswith(PREFIX)]
    if not names:
        reader.run("create or replace temp table contact_values (contact_id text, name text, value text)")
        return []
    selects = ", ".join(f'cast("{c}" as varchar) as "{c}"' for c in names)
    reader.run(
        "create or replace temp table contact_values as "
        f"select contact_id, name[{len(PREFIX) + 1}:] as name, value from ("
        f"unpivot (select cast(id as varchar) as contact_id, {selects} from raw_crm.contacts) "
        "on columns(* exclude (contact_id)) into name name value value"
        ") where trim(value) <> ''"
    )
    return [c[len(PREFIX) :] for c in names]


def _campaigns_sql(reader: _Reader) -> str | None:
    parts = []
    if reader.has("raw_ads.google_campaigns"):
        parts.append(
            "select 'google' as platform, cast(campaign__id as varchar) as campaign_id, "
            "campaign__name as campaign_name from raw_ads.google_campaigns"
        )
    if reader.has("raw_ads.meta_campaigns"):
        parts.append("select 'meta', cast(id as varchar), name from raw_ads.meta_campaigns")
    return " union all ".join(parts) if parts else None


def _attribution(reader: _Reader, properties: list[str]) -> list[Proposal]:
    campaigns = _campaigns_sql(reader)
    setting = "crm_contact_properties.utm_campaign"
    if campaigns is None or not properties:
        return [Proposal(setting, default_of(setting), ["no ad campaigns loaded: nothing to compare"], False)]
    norm_value, norm_name = _NORMALIZE.format("v.value"), _NORMALIZE.format("c.campaign_name")
    rows = reader.rows(_ATTRIBUTION.format(campaigns=campaigns, value=norm_value, name=norm_name))
    best = max(rows, key=lambda r: max(r[2], r[3]), default=None)
    if best is None or max(best[2], best[3]) < MIN_MATCHES:
        evidence = ["no contact property holds ad campaign ids or names"]
        return [Proposal(setting, default_of(setting), evidence, False)]
    name, total, by_id, by_name, id_example, name_example = best
    how = "campaign_id" if by_id >= by_name else "campaign_name"
    matched, example = (by_id, id_example) if how == "campaign_id" else (by_name, name_example)
    what = "ids" if how == "campaign_id" else "names (case and spacing aside)"
    evidence = [f"{matched:,} of {total:,} values of {name} are ad campaign {what}, e.g. {example!r}"]
    others = sorted((r for r in rows if r[0] != name), key=lambda r: -max(r[2], r[3]))
    if others and max(others[0][2], others[0][3]):
        evidence.append(f"next best: {others[0][0]} ({max(others[0][2], others[0][3]):,} matching values)")
    return [
        Proposal(setting, name, evidence),
        Proposal("ad_attribution", how, [f"{name} holds the campaign's {how.split('_')[1]}"]),
    ]


def _utm_source(reader: _Reader, properties: list[str]) -> list[Proposal]:
    setting = "crm_contact_properties.utm_source"
    if not properties:
        return []
    words = ", ".join(f"'{w}'" for w in PLATFORM_WORDS)
    rows = reader.rows(
        f"select name, count(*) filter (where lower(trim(value)) in ({words})), count(*) "
        "from contact_values group by name order by 2 desc limit 2"
    )
    if not rows or rows[0][1] < MIN_MATCHES:
        return [Proposal(setting, default_of(setting), ["no contact property names ad platforms"], False)]
    name, matched, total = rows[0]
    return [Proposal(setting, name, [f"{matched:,} of {total:,} values of {name} name an ad platform"])]


def _next_appointment(reader: _Reader, properties: list[str]) -> list[Proposal]:
    setting = "crm_contact_properties.next_appointment"
    scheduling = reader.has("raw_scheduling.invitees") and reader.has("raw_scheduling.scheduled_events")
    if not properties or not scheduling:
        return [Proposal(setting, None, ["no scheduling events loaded: nothing to compare"], False)]
    rows = reader.rows(_NEXT_APPOINTMENT)
    if not rows or rows[0][3] < MIN_MATCHES:
        evidence = ["no contact date-time property equals the start of the contact's scheduling events"]
        return [Proposal(setting, None, evidence, False)]
    name, parsed, ahead, matched = rows[0]
    evidence = [
        f"{matched:,} of {parsed:,} values of {name} are the start of a scheduling event booked with "
        f"the contact's email; {ahead:,} lie after the last load"
    ]
    return [Proposal(setting, name, evidence)]


def _free_text_dates(reader: _Reader, properties: list[str]) -> list[Proposal]:
    if not properties:
        return []
    rows = reader.rows(_FREE_TEXT_DATES)
    names = [r[0] for r in rows]
    evidence = [
        f"{name}: {iso + slashed:,} of {n:,} values are dates, {slashed:,} typed as NN/NN/YYYY "
        f"(e.g. {example!r})"
        for name, n, iso, slashed, example in rows
    ]
    setting = "crm_contact_properties.free_text_dates"
    none = ["no contact property holds dates typed as free text"]
    return [Proposal(setting, names, evidence or none, bool(names))]


def _missing_defaults(properties: list[str]) -> list[Proposal]:
    """Default properties the load did not bring (an account without them, or a narrow load)."""
    loaded = set(properties)
    proposals = []
    for concept, name in CONTACT_PROPERTIES.items():
        if name and name not in loaded and concept not in ("utm_campaign", "utm_source"):
            evidence = [f"{name} has no value in raw (not in the account, never set, or not loaded)"]
            proposals.append(Proposal(f"crm_contact_properties.{concept}", name, evidence, False))
    return proposals


# -- billing and scheduling ------------------------------------------------------------------------


def _invoice_reference(reader: _Reader) -> list[Proposal]:
    """The deal property whose values are Stripe invoice ids or numbers, if any."""
    setting = "crm_deal_properties.invoice_reference"
    if not (reader.has("raw_crm.deals") and reader.has("raw_billing.invoices")):
        return []
    columns = [c for c in reader.columns("raw_crm.deals") if c.startswith(PREFIX)]
    if not columns:
        return []
    selects = ", ".join(f'cast("{c}" as varchar) as "{c}"' for c in columns)
    rows = reader.rows(
        f"with deal_values as (unpivot (select {selects} from raw_crm.deals) on columns(*) "
        "into name name value value), invoices as ("
        "select cast(id as varchar) as reference from raw_billing.invoices union "
        "select number from raw_billing.invoices where number is not null) "
        f"select name[{len(PREFIX) + 1}:], "
        "count(*) filter (where trim(value) in (select reference from invoices)), count(*) "
        "from deal_values group by name order by 2 desc limit 1"
    )
    if not rows or rows[0][1] < MIN_MATCHES:
        return [Proposal(setting, None, ["no deal property holds Stripe invoice ids or numbers"], False)]
    name, matched, total = rows[0]
    return [Proposal(setting, name, [f"{matched:,} of {total:,} values of {name} are Stripe invoices"])]


def _metadata_key(reader: _Reader, table: str, crm_table: str, setting: str) -> list[Proposal]:
    raw = f"raw_billing.{table}"
    what = crm_table.split(".")[1][:-1]  # contact, deal
    if not reader.has(raw) or not reader.has(crm_table):
        return [Proposal(setting, default_of(setting), [f"{raw} or {crm_table} is not loaded"], False)]
    keys = [c for c in reader.columns(raw) if c.startswith("metadata__")]
    scored = []
    for column in keys:
        total, matched = reader.rows(
            f'select count("{column}"), count(*) filter (where "{column}" in '
            f"(select cast(id as varchar) from {crm_table})) from {raw}"
        )[0]
        scored.append((matched, total, column[len("metadata__") :]))
    scored.sort(reverse=True)
    if not scored or scored[0][0] < MIN_MATCHES:
        seen = ", ".join(k for _, _, k in scored) or "none"
        evidence = [f"no metadata key of Stripe {table} holds CRM {what} ids (keys seen: {seen})"]
        return [Proposal(setting, None, evidence, True)]
    matched, total, key = scored[0]
    evidence = [f"{matched:,} of {total:,} {table} with metadata.{key} name an existing CRM {what}"]
    return [Proposal(setting, key, evidence)]


def _booking_questions(reader: _Reader) -> list[Proposal]:
    answers = "raw_scheduling.invitees__questions_and_answers"
    if not (reader.has(answers) and reader.has("raw_scheduling.invitees") and reader.has("raw_crm.contacts")):
        return []
    norm_answer, norm_company = _NORMALIZE.format("q.answer"), _NORMALIZE.format("c.properties__company")
    rows = reader.rows(
        f"select q.question, count(*) as n, "
        f"count(*) filter (where {norm_answer} = {norm_company}) as company, "
        "count(*) filter (where regexp_matches(q.answer, '^[0-9+().\\s-]{7,}$') "
        "  and length(regexp_replace(q.answer, '[^0-9]', '', 'g')) between 7 and 15) as phone "
        f"from {answers} q join raw_scheduling.invitees i on q._dlt_parent_id = i._dlt_id "
        "left join raw_crm.contacts c on lower(trim(c.properties__email)) = lower(trim(i.email)) "
        "group by q.question"
    )
    proposals = []
    for setting, column, label in (
        ("scheduling_company_question", 2, "the CRM company of the contact with the same email"),
        ("scheduling_phone_question", 3, "a phone number"),
    ):
        best = max(rows, key=lambda r: r[column], default=None)
        share = best[column] / best[1] if best and best[1] else 0.0
        if best is None or best[column] < MIN_MATCHES or share < 0.5:
            proposals.append(Proposal(setting, None, [f"no booking question's answers are {label}"], False))
            continue
        evidence = [f"{best[column]:,} of {best[1]:,} answers to {best[0]!r} are {label}"]
        proposals.append(Proposal(setting, best[0], evidence))
    return proposals


def _invoice_statuses(reader: _Reader) -> list[Proposal]:
    if not reader.has("raw_billing.invoices"):
        return []
    rows = reader.rows("select status, count(*) from raw_billing.invoices group by 1 order by 2 desc")
    seen = ", ".join(f"{status} {count:,}" for status, count in rows)
    return [
        Proposal(
            "invoice_billed_statuses",
            default_of("invoice_billed_statuses"),
            [f"statuses seen: {seen}; billed: open and paid (draft, void and uncollectible are not)"],
            False,
        )
    ]


# -- output ----------------------------------------------------------------------------------------


def to_toml(report: Report, source: str) -> str:
    """The proposal as a `[mapping]` part of .dlt/config.toml, with its evidence as comments."""
    lines = [
        f"# trueup mapping suggest: {source} ({report.contacts:,} contacts; {report.queries} queries, "
        f"{report.seconds:.1f}s)",
        "# settings the data speaks for; a commented line keeps trueup's default",
        "[mapping]",
    ]
    flat = [p for p in report.proposals if "." not in p.setting]
    nested = [p for p in report.proposals if "." in p.setting]
    lines += list(_entries(flat, lambda p: p.setting))
    tables: dict[str, list[Proposal]] = {}
    for proposal in nested:
        tables.setdefault(proposal.setting.split(".")[0], []).append(proposal)
    for table, proposals in tables.items():
        lines += ["", f"[mapping.{table}]"]
        lines += list(_entries(proposals, lambda p: p.setting.split(".", 1)[1]))
    return "\n".join(lines) + "\n"


def _entries(proposals: list[Proposal], key: Any) -> Iterator[str]:
    for proposal in proposals:
        for line in proposal.evidence:
            yield f"# {line}"
        entry = f"{key(proposal)} = {_toml_value(proposal.value)}"
        yield entry if proposal.found else f"# {entry}"


def _toml_value(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def settings_to_write(report: Report) -> dict[str, Any]:
    """The `[mapping]` values `--write` sets: every found proposal, nested as the TOML tables."""
    tables: dict[str, Any] = {}
    for proposal in report.proposals:
        if not proposal.found:
            continue
        value = "" if proposal.value is None else proposal.value
        part, _, concept = proposal.setting.partition(".")
        if concept:
            tables.setdefault(part, {})[concept] = value
        else:
            tables[part] = value
    return tables
