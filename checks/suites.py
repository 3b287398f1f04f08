"""The suites, in code: every check, the asset it judges, the SQL that measures it and its limits.

A check measures one number (`observed`, in `unit`) and fails when it is above a level:
`warn_above` fails it with severity warn, `error_above` with severity error (blocking).
Defaults live here; each can be overridden at run time (never at import) from dlt-style
config, the most specific section first:

    # .dlt/config.toml
    [checks.freshness.crm]
    error_above = 12            # hours
    [checks.parity.ad_conversions]
    warn_above = 5              # per cent
    window_days = 30
    [checks.drift_budget]
    warn_above = 10             # open findings per 1,000 customers, every rule

or `CHECKS__FRESHNESS__CRM__ERROR_ABOVE=12` in the environment. A level set to `none`
switches it off. Which checks can block is fixed here (Dagster needs it when the code
location loads); config only moves the limits. Only integrity blocks (keys unique, raw and
staging complete, sources fresh, little quarantined): drift between the systems (parity, the
drift budget), odd source values (validity) and identity's review share only warn, so the
night always builds, publishes and reports the findings that are its output.

This module imports nothing heavy: the Dagster code location reads it to declare checks.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from checks import sql
from checks.sql import count_where, duplicate_rows, relation, share_pct
from ingestion.tables import QUARANTINE_TABLE, SYSTEMS, TABLES, dataset_name

SUITES = ("completeness", "parity", "validity", "uniqueness", "freshness", "drift_budget", "identity")

# Where each layer's models live (the dbt custom schemas) and the order they build in.
LAYERS = ("raw", "staging", "intermediate", "marts", "reconciliation", "reverse_etl")

# The reconciliation rules (CONTRACT.md): one drift budget each.
RULES = (
    "deal_won_no_invoice",
    "paid_invoice_crm_not_customer",
    "invoice_amount_mismatch",
    "appointment_time_mismatch",
    "appointment_status_mismatch",
    "email_mismatch",
    "name_mismatch",
    "phone_mismatch",
    "billing_orphan",
    "crm_duplicate",
    "ad_conversion_mismatch",
    "invoice_payment_mismatch",
    "malformed_date",
    "malformed_phone",
    "malformed_value",
)

# The raw table a system's source-level checks (freshness) are shown on.
SOURCE_TABLE = {
    "crm": "contacts",
    "billing": "invoices",
    "scheduling": "scheduled_events",
    "ads": "google_campaign_metrics",
}

EMAIL_PATTERN = r"^[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"
E164_PATTERN = r"^\+[1-9][0-9]{7,14}$"

# ISO 4217 codes of money in circulation (no metals, funds units or test codes).
_ISO_4217 = """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA
    MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP
    PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP
    SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST
    XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL"""
CURRENCIES = tuple(_ISO_4217.split())

# Accepted values (trueup's vocabulary, see the seeds and CONTRACT.md).
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketing_qualified",
    "sales_qualified",
    "opportunity",
    "customer",
    "other",
)
DEAL_STATUSES = ("open", "won", "lost")
MEETING_STATUSES = ("scheduled", "completed", "rescheduled", "no_show", "canceled")
EVENT_STATUSES = ("scheduled", "canceled")
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
CHARGE_STATUSES = ("succeeded", "failed", "pending")
PAYMENT_INTENT_STATUSES = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
)
SUBSCRIPTION_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)
INVITEE_STATUSES = ("active", "canceled")
CAMPAIGN_STATUSES = ("active", "paused", "removed", "archived")

# How far ahead of now a date may lie: a record's own stamps not at all (a day for clocks and
# time zones), scheduled times two years, due and expected-close dates five.
PAST, SCHEDULED, PLANNED = 1, 730, 1830
EARLIEST = "make_date({{earliest_year}}, 1, 1)"  # a parameter of the dates rule


@dataclass(frozen=True)
class Levels:
    warn_above: float | None = None
    error_above: float | None = None


@dataclass(frozen=True)
class Check:
    """One check: `observed` (an aggregate over `source`) judged against `levels`.

    `requires` names the relations (`schema.table`) that must exist, else the check reports
    "not built". `reads` are the other assets it reads (Dagster dependencies). `settings` are
    its config sections under `[checks]`, most specific first; `params` the numbers its SQL
    takes as `{{name}}`, each overridable there too.
    """

    name: str
    suite: str
    asset: tuple[str, ...]
    description: str
    unit: str
    source: str
    observed: str
    levels: Levels
    details: tuple[tuple[str, str], ...] = ()
    sample: str | None = None
    requires: tuple[str, ...] = ()
    reads: tuple[tuple[str, ...], ...] = ()
    settings: tuple[str, ...] = ()
    params: tuple[tuple[str, float], ...] = ()

    @property
    def key(self) -> str:
        return f"{'/'.join(self.asset)}:{self.name}"

    @property
    def blocking(self) -> bool:
        """Whether a failure can have severity error (and so stop what is downstream)."""
        return self.levels.error_above is not None

    @property
    def layer(self) -> str:
        return layer_of(self.asset)

    def resolve(self, settings: Settings) -> Check:
        """This check with its levels and parameters as configured now."""
        levels = Levels(
            warn_above=settings.level(self.settings, "warn_above", self.levels.warn_above),
            error_above=settings.level(self.settings, "error_above", self.levels.error_above),
        )
        params = tuple((name, settings.number(self.settings, name, default)) for name, default in self.params)

        def fill(text: str) -> str:
            for name, value in params:
                text = text.replace("{{" + name + "}}", _sql_number(value))
            return text

        return dataclasses.replace(
            self,
            levels=levels,
            params=params,
            source=fill(self.source),
            observed=fill(self.observed),
            details=tuple((name, fill(expr)) for name, expr in self.details),
            sample=fill(self.sample) if self.sample else None,
        )


def layer_of(asset: Iterable[str]) -> str:
    schema = next(iter(asset))
    return "raw" if schema.startswith("raw_") else schema


def _sql_number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"a check parameter must be a finite number, not {value!r}")
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# -- configuration -------------------------------------------------------------------------------

OFF = ("none", "off", "null", "")


class Settings:
    """Limits and parameters from dlt-style config (`[checks.<section>]`, env `CHECKS__...`).

    `overrides` (flat, `"<section>.<key>"`: value) win over config; `use_config=False` reads
    only them and the defaults.
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None, use_config: bool = True) -> None:
        self.overrides = dict(overrides or {})
        self.use_config = use_config
        self._cache: dict[str, Any] = {}

    def get(self, section: str, key: str) -> Any:
        path = f"{section}.{key}"
        if path in self.overrides:
            return self.overrides[path]
        if not self.use_config:
            return None
        if path not in self._cache:
            self._cache[path] = _config_value(f"checks.{path}")
        return self._cache[path]

    def _first(self, sections: Iterable[str], key: str) -> Any:
        for section in sections:
            value = self.get(section, key)
            if value is not None:
                return value
        return None

    def level(self, sections: Iterable[str], key: str, default: float | None) -> float | None:
        value = self._first(sections, key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lower() in OFF:
            return None
        return float(value)

    def number(self, sections: Iterable[str], key: str, default: float) -> float:
        value = self._first(sections, key)
        return default if value is None else float(value)


def _config_value(path: str) -> Any:
    """One value from dlt's config providers (config.toml, secrets.toml, environment)."""
    import dlt

    return dlt.config.get(path)


# -- helpers to declare checks -------------------------------------------------------------------


def _name(schema: str, table: str) -> str:
    return f"{schema}.{table}"


def _raw(system: str, table: str) -> str:
    return relation(dataset_name(system), table)


def _raw_asset(system: str, table: str) -> tuple[str, ...]:
    return (dataset_name(system), table)


def _raw_reads(system: str, tables: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(_raw_asset(system, t) for t in tables if t in TABLES[system])


# -- freshness -----------------------------------------------------------------------------------


def freshness_checks() -> list[Check]:
    checks = []
    for system in SYSTEMS:
        loads = _raw(system, "_dlt_loads")
        last = "max(inserted_at) filter (where status = 0)"
        checks.append(
            Check(
                name="freshness",
                suite="freshness",
                asset=_raw_asset(system, SOURCE_TABLE[system]),
                description=(
                    f"Hours since the last successful load of the {system} source (`{dataset_name(system)}."
                    "_dlt_loads`); a source nobody loaded is stale."
                ),
                unit="hours",
                source=loads,
                observed=sql.hours_since(last),
                levels=Levels(warn_above=26, error_above=50),
                details=(("last_load_at", f"cast({last} as varchar)"), ("loads", count_where("status = 0"))),
                sample=f"select load_id || ' at ' || cast(inserted_at as varchar) from {loads} "
                "where status = 0 order by inserted_at desc",
                requires=(_name(dataset_name(system), "_dlt_loads"),),
                settings=(f"freshness.{system}", "freshness"),
            )
        )
    return checks


# -- completeness --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """Rows that must arrive one to one: every upstream key downstream and nothing else."""

    asset: tuple[str, ...]
    upstream: str  # a query selecting the keys, column `k`
    downstream: str  # the same for the checked model
    requires: tuple[str, ...]
    reads: tuple[tuple[str, ...], ...]
    what: str
    quarantine: tuple[str, tuple[str, ...]] | None = None  # (system, resources)


def _keys(table: str, key: str, where: str = "") -> str:
    query = f"select {key} as k from {table}"
    return f"{query} where {where}" if where else query


def _flow_check(flow: Flow) -> Check:
    details = [
        ("missing", "max(missing)"),
        ("unexpected", "max(unexpected)"),
        ("upstream_keys", "max(upstream_keys)"),
        ("downstream_keys", "max(downstream_keys)"),
    ]
    if flow.quarantine:
        system, resources = flow.quarantine
        details.append(("quarantined", sql.quarantined(system, resources)))
    return Check(
        name="completeness",
        suite="completeness",
        asset=flow.asset,
        description=(
            f"Row parity {flow.what}: keys missing downstream plus keys with no upstream row "
            "(records a contract rejected are in the quarantine, counted in `quarantined`)."
        ),
        unit="rows",
        source=sql.key_parity_source(flow.upstream, flow.downstream),
        observed="max(missing + unexpected)",
        levels=Levels(error_above=0),
        details=tuple(details),
        sample=sql.key_parity_sample(flow.upstream, flow.downstream),
        requires=flow.requires,
        reads=flow.reads,
        settings=(f"completeness.{flow.asset[-1]}", "completeness"),
    )


def _association(system: str, table: str, model: str, left: str, right: str) -> Flow:
    key = f"{left} || ':' || {right}"
    return Flow(
        asset=("staging", model),
        upstream=_keys(_raw(system, table), key, "not coalesce(_deleted, false)"),
        downstream=_keys(relation("staging", model), key),
        requires=(_name(dataset_name(system), table), _name("staging", model)),
        reads=_raw_reads(system, [table]),
        what=f"from `{dataset_name(system)}.{table}` (pairs not marked deleted) to staging",
        quarantine=(system, (table,)),
    )


def _one_to_one(
    system: str, table: str, model: str, raw_key: str, key: str, resource: str | None = None
) -> Flow:
    """`resource`: whose quarantine counts (a child table's records come with its parent's)."""
    return Flow(
        asset=("staging", model),
        upstream=_keys(_raw(system, table), raw_key),
        downstream=_keys(relation("staging", model), key),
        requires=(_name(dataset_name(system), table), _name("staging", model)),
        reads=_raw_reads(system, [resource or table]),
        what=f"from `{dataset_name(system)}.{table}` to staging",
        quarantine=(system, (resource or table,)),
    )


def raw_flows() -> list[Flow]:
    """Raw table to staging model, one flow per staging model."""
    ids = "cast(id as varchar)"
    flows = [
        _one_to_one("crm", "contacts", "stg_crm__contacts", ids, "contact_id"),
        _one_to_one("crm", "companies", "stg_crm__companies", ids, "company_id"),
        _one_to_one("crm", "deals", "stg_crm__deals", ids, "deal_id"),
        _one_to_one("crm", "meetings", "stg_crm__meetings", ids, "meeting_id"),
        _one_to_one("crm", "owners", "stg_crm__owners", ids, "owner_id"),
        _association(
            "crm", "contacts_to_companies", "stg_crm__contact_companies", "contact_id", "company_id"
        ),
        _association("crm", "contacts_to_deals", "stg_crm__contact_deals", "contact_id", "deal_id"),
        _association("crm", "contacts_to_meetings", "stg_crm__contact_meetings", "contact_id", "meeting_id"),
        _association("crm", "deals_to_companies", "stg_crm__deal_companies", "deal_id", "company_id"),
        _one_to_one("billing", "customers", "stg_billing__customers", ids, "customer_id"),
        _one_to_one("billing", "invoices", "stg_billing__invoices", ids, "invoice_id"),
        _one_to_one("billing", "charges", "stg_billing__charges", ids, "charge_id"),
        _one_to_one("billing", "payment_intents", "stg_billing__payment_intents", ids, "payment_intent_id"),
        _one_to_one("billing", "subscriptions", "stg_billing__subscriptions", ids, "subscription_id"),
        _one_to_one(
            "billing", "invoice_payments", "stg_billing__invoice_payments", ids, "invoice_payment_id"
        ),
        _one_to_one(
            "billing",
            "invoices__lines__data",
            "stg_billing__invoice_lines",
            ids,
            "invoice_line_id",
            "invoices",
        ),
        _one_to_one(
            "scheduling", "scheduled_events", "stg_scheduling__events", "cast(uri as varchar)", "event_uri"
        ),
        _one_to_one(
            "scheduling", "invitees", "stg_scheduling__invitees", "cast(uri as varchar)", "invitee_uri"
        ),
        _one_to_one(
            "ads",
            "google_campaign_metrics",
            "stg_ads__google_campaign_days",
            "customer__id || ':' || campaign__id || ':' || cast(cast(segments__date as date) as varchar)",
            "account_id || ':' || campaign_id || ':' || cast(spend_date as varchar)",
        ),
        _one_to_one(
            "ads",
            "meta_campaign_insights",
            "stg_ads__meta_campaign_days",
            "account_id || ':' || campaign_id || ':' || cast(cast(date_start as date) as varchar)",
            "account_id || ':' || campaign_id || ':' || cast(spend_date as varchar)",
        ),
    ]
    stages = (
        "select cast(p.id as varchar) || ':' || cast(s.id as varchar) as k "
        f"from {_raw('crm', 'pipelines')} p "
        f"join {_raw('crm', 'pipelines__stages')} s on s._dlt_parent_id = p._dlt_id"
    )
    flows.append(
        Flow(
            asset=("staging", "stg_crm__deal_stages"),
            upstream=stages,
            downstream=_keys(relation("staging", "stg_crm__deal_stages"), "deal_stage_key"),
            requires=("raw_crm.pipelines", "raw_crm.pipelines__stages", "staging.stg_crm__deal_stages"),
            reads=_raw_reads("crm", ["pipelines"]),
            what="from `raw_crm.pipelines` stages to staging",
            quarantine=("crm", ("pipelines",)),
        )
    )
    campaigns = (
        f"select 'google:' || cast(campaign__id as varchar) as k from {_raw('ads', 'google_campaigns')} "
        f"union all select 'meta:' || cast(id as varchar) from {_raw('ads', 'meta_campaigns')}"
    )
    flows.append(
        Flow(
            asset=("staging", "stg_ads__campaigns"),
            upstream=campaigns,
            downstream=_keys(relation("staging", "stg_ads__campaigns"), "campaign_key"),
            requires=("raw_ads.google_campaigns", "raw_ads.meta_campaigns", "staging.stg_ads__campaigns"),
            reads=_raw_reads("ads", ["google_campaigns", "meta_campaigns"]),
            what="from `raw_ads` Google and Meta campaigns to staging",
            quarantine=("ads", ("google_campaigns", "meta_campaigns")),
        )
    )
    return flows


def _stg(model: str) -> str:
    return relation("staging", model)


def model_flows() -> list[Flow]:
    """Staging into the intermediate and mart models that carry one row per source row."""
    day = "platform || ':' || campaign_id || ':' || cast({date} as varchar)"
    records = (
        f"select 'crm:' || contact_id as k from {_stg('stg_crm__contacts')} "
        f"union all select 'billing:' || customer_id from {_stg('stg_billing__customers')} "
        f"union all select 'scheduling:' || invitee_uri from {_stg('stg_scheduling__invitees')}"
    )
    ad_days = (
        f"select {day.format(date='spend_date')} as k from {_stg('stg_ads__google_campaign_days')} "
        f"union all select {day.format(date='spend_date')} from {_stg('stg_ads__meta_campaign_days')}"
    )
    spend_days = (
        f"select {day.format(date='spend_date')} as k "
        f"from {relation('intermediate', 'int_ads__campaign_days')} "
        f"union all select {day.format(date='lead_date')} "
        f"from {relation('intermediate', 'int_crm__paid_leads_by_campaign_day')}"
    )
    appointments_up = (
        f"select 'event:' || event_uri as k from {_stg('stg_scheduling__events')} "
        f"union all select 'meeting:' || meeting_id from {_stg('stg_crm__meetings')}"
    )
    appointments_down = (
        f"select 'event:' || event_uri as k from {relation('marts', 'fct_appointments')} "
        "where has_scheduling_event "
        f"union all select 'meeting:' || meeting_id from {relation('marts', 'fct_appointments')}"
    )

    def flow(
        asset: tuple[str, str], up: str, down: str, upstream_models: list[tuple[str, str]], what: str
    ) -> Flow:
        return Flow(
            asset=asset,
            upstream=up,
            downstream=down,
            requires=tuple(_name(*m) for m in [*upstream_models, asset]),
            reads=tuple(upstream_models),
            what=what,
        )

    resolved = ("intermediate", "int_identity__resolved")
    return [
        flow(
            resolved,
            records,
            _keys(relation(*resolved), "record_system || ':' || record_id"),
            [
                ("staging", "stg_crm__contacts"),
                ("staging", "stg_billing__customers"),
                ("staging", "stg_scheduling__invitees"),
            ],
            "from the person-bearing staging models (contacts, customers, invitees) to identity",
        ),
        flow(
            ("intermediate", "int_ads__campaign_days"),
            ad_days,
            _keys(relation("intermediate", "int_ads__campaign_days"), day.format(date="spend_date")),
            [("staging", "stg_ads__google_campaign_days"), ("staging", "stg_ads__meta_campaign_days")],
            "from the Google and Meta campaign days to their union",
        ),
        flow(
            ("marts", "fct_deals"),
            _keys(_stg("stg_crm__deals"), "deal_id"),
            _keys(relation("marts", "fct_deals"), "deal_id"),
            [("staging", "stg_crm__deals")],
            "from CRM deals to the deals fact",
        ),
        flow(
            ("marts", "fct_invoices"),
            _keys(_stg("stg_billing__invoices"), "invoice_id"),
            _keys(relation("marts", "fct_invoices"), "invoice_id"),
            [("staging", "stg_billing__invoices")],
            "from billing invoices to the invoices fact",
        ),
        flow(
            ("marts", "fct_payments"),
            _keys(_stg("stg_billing__charges"), "charge_id"),
            _keys(relation("marts", "fct_payments"), "charge_id"),
            [("staging", "stg_billing__charges")],
            "from billing charges to the payments fact",
        ),
        flow(
            ("marts", "fct_appointments"),
            appointments_up,
            appointments_down,
            [("staging", "stg_scheduling__events"), ("staging", "stg_crm__meetings")],
            "from scheduling events and CRM meetings to the appointments fact",
        ),
        flow(
            ("marts", "fct_ad_spend_daily"),
            spend_days,
            _keys(relation("marts", "fct_ad_spend_daily"), day.format(date="spend_date")),
            [
                ("intermediate", "int_ads__campaign_days"),
                ("intermediate", "int_crm__paid_leads_by_campaign_day"),
            ],
            "from platform campaign days and CRM paid-lead days to the ad spend fact",
        ),
        flow(
            ("marts", "dim_customers"),
            _keys(relation(*resolved), "customer_id"),
            _keys(relation("marts", "dim_customers"), "customer_id"),
            [resolved],
            "from resolved customer ids to the customer dimension",
        ),
    ]


def quarantine_checks() -> list[Check]:
    """Per raw table: the share of the records received that broke their contract."""
    checks = []
    for system in SYSTEMS:
        for table in TABLES[system]:
            quarantined = sql.quarantined(system, (table,))
            checks.append(
                Check(
                    name="quarantine_share",
                    suite="completeness",
                    asset=_raw_asset(system, table),
                    description=(
                        f"Per cent of the `{table}` records received from {system} that broke their "
                        f"contract and went to `{dataset_name(system)}.{QUARANTINE_TABLE}` instead."
                    ),
                    unit="%",
                    source=_raw(system, table),
                    observed=f"100.0 * {quarantined} / greatest({quarantined} + count(*), 1)",
                    levels=Levels(warn_above=1, error_above=10),
                    details=(("quarantined", quarantined), ("loaded", "count(*)")),
                    sample=(
                        "select coalesce(record_key, '?') || ': ' || reason "
                        f"from {_raw(system, QUARANTINE_TABLE)} where resource = {sql.literal(table)} "
                        "order by quarantined_at desc"
                    ),
                    requires=(_name(dataset_name(system), table),),
                    settings=(f"completeness.quarantine.{table}", "completeness.quarantine"),
                )
            )
    return checks


def completeness_checks() -> list[Check]:
    return [*quarantine_checks(), *(_flow_check(f) for f in [*raw_flows(), *model_flows()])]


# -- uniqueness ----------------------------------------------------------------------------------

BUSINESS_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("staging", "stg_crm__contacts"): ("contact_id",),
    ("staging", "stg_crm__companies"): ("company_id",),
    ("staging", "stg_crm__deal_stages"): ("deal_stage_key",),
    ("staging", "stg_crm__deals"): ("deal_id",),
    ("staging", "stg_crm__meetings"): ("meeting_id",),
    ("staging", "stg_crm__owners"): ("owner_id",),
    ("staging", "stg_crm__contact_companies"): ("contact_id", "company_id"),
    ("staging", "stg_crm__contact_deals"): ("contact_id", "deal_id"),
    ("staging", "stg_crm__contact_meetings"): ("contact_id", "meeting_id"),
    ("staging", "stg_crm__deal_companies"): ("deal_id", "company_id"),
    ("staging", "stg_billing__customers"): ("customer_id",),
    ("staging", "stg_billing__invoices"): ("invoice_id",),
    ("staging", "stg_billing__invoice_lines"): ("invoice_line_id",),
    ("staging", "stg_billing__charges"): ("charge_id",),
    ("staging", "stg_billing__payment_intents"): ("payment_intent_id",),
    ("staging", "stg_billing__subscriptions"): ("subscription_id",),
    ("staging", "stg_billing__invoice_payments"): ("invoice_payment_id",),
    ("staging", "stg_scheduling__events"): ("event_uri",),
    ("staging", "stg_scheduling__invitees"): ("invitee_uri",),
    ("staging", "stg_ads__campaigns"): ("campaign_key",),
    ("staging", "stg_ads__google_campaign_days"): ("account_id", "campaign_id", "spend_date"),
    ("staging", "stg_ads__meta_campaign_days"): ("account_id", "campaign_id", "spend_date"),
    ("intermediate", "int_identity__records"): ("record_system", "record_id"),
    ("intermediate", "int_identity__resolved"): ("record_system", "record_id"),
    ("intermediate", "int_identity__links"): (
        "left_system",
        "left_record_id",
        "right_system",
        "right_record_id",
    ),
    ("intermediate", "int_identity__review"): (
        "left_system",
        "left_record_id",
        "right_system",
        "right_record_id",
    ),
    ("intermediate", "int_ads__campaign_days"): ("platform", "campaign_id", "spend_date"),
    ("intermediate", "int_crm__paid_leads_by_campaign_day"): ("platform", "campaign_id", "lead_date"),
    ("marts", "dim_customers"): ("customer_id",),
    ("marts", "fct_deals"): ("deal_id",),
    ("marts", "fct_invoices"): ("invoice_id",),
    ("marts", "fct_payments"): ("payment_id",),
    ("marts", "fct_appointments"): ("appointment_id",),
    ("marts", "fct_ad_spend_daily"): ("platform", "campaign_id", "spend_date"),
    ("marts", "mart_funnel_by_channel_month"): ("funnel_key",),
    ("marts", "mart_pipeline_by_stage"): ("deal_stage_key",),
    ("marts", "mart_revenue_by_channel"): ("revenue_key",),
    ("marts", "mart_customer_value_by_channel"): ("channel",),
    ("reconciliation", "findings"): ("finding_id",),
    ("reconciliation", "findings_current"): ("finding_id",),
    ("reverse_etl", "outbox_crm"): ("object_type", "record_id", "field"),
    ("reverse_etl", "outbox_billing"): ("object_type", "record_id", "field"),
}


def uniqueness_checks() -> list[Check]:
    checks = []
    for (schema, table), columns in BUSINESS_KEYS.items():
        rel = relation(schema, table)
        checks.append(
            Check(
                name="uniqueness",
                suite="uniqueness",
                asset=(schema, table),
                description=(
                    f"Rows that repeat the business key ({', '.join(columns)}) or lack it; "
                    "a repeated key doubles what is counted downstream."
                ),
                unit="rows",
                source=rel,
                observed=duplicate_rows(columns),
                levels=Levels(error_above=0),
                details=(("rows", "count(*)"), ("null_keys", sql.null_key_rows(columns))),
                sample=sql.duplicate_sample(rel, columns),
                requires=(_name(schema, table),),
                settings=(f"uniqueness.{table}", "uniqueness"),
            )
        )
    return checks


# -- validity ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    column: str
    values: tuple[str, ...]
    raw: str | None = None  # when set, a null value with a raw value present is unmapped


@dataclass(frozen=True)
class Model:
    """The columns of one staging model the validity suite reads."""

    name: str
    key: str
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    money: tuple[str, ...] = ()
    dates: tuple[tuple[str, int], ...] = ()  # (column, days it may lie ahead of now)
    statuses: tuple[Accepted, ...] = ()


STAGING_MODELS = (
    Model(
        "stg_crm__contacts",
        "contact_id",
        emails=("email",),
        phones=("phone_e164",),
        dates=(("created_at", PAST), ("updated_at", PAST)),
        statuses=(Accepted("lifecycle_stage", LIFECYCLE_STAGES, raw="lifecycle_stage_raw"),),
    ),
    Model("stg_crm__contact_dates", "contact_id || ':' || field", dates=(("value_date", 365),)),
    Model("stg_crm__companies", "company_id", phones=("phone_e164",), dates=(("created_at", PAST),)),
    Model(
        "stg_crm__deals",
        "deal_id",
        currencies=("currency",),
        money=("amount_cents",),
        dates=(("created_at", PAST), ("updated_at", PAST), ("closed_at", PLANNED)),
        statuses=(Accepted("deal_status", DEAL_STATUSES, raw="stage_id"),),
    ),
    Model(
        "stg_crm__deal_stages",
        "deal_stage_key",
        statuses=(Accepted("deal_status", DEAL_STATUSES, raw="stage_id"),),
    ),
    Model(
        "stg_crm__meetings",
        "meeting_id",
        dates=(("start_at", SCHEDULED), ("end_at", SCHEDULED), ("created_at", PAST)),
        statuses=(Accepted("appointment_status", MEETING_STATUSES, raw="outcome_raw"),),
    ),
    Model("stg_crm__owners", "owner_id", emails=("email",)),
    Model(
        "stg_billing__customers",
        "customer_id",
        emails=("email",),
        phones=("phone_e164",),
        currencies=("currency",),
        dates=(("created_at", PAST),),
    ),
    Model(
        "stg_billing__invoices",
        "invoice_id",
        currencies=("currency",),
        money=("amount_due_cents", "amount_paid_cents", "amount_remaining_cents"),
        dates=(("created_at", PAST), ("finalized_at", PAST), ("paid_at", PAST), ("due_at", PLANNED)),
        statuses=(Accepted("invoice_status", INVOICE_STATUSES, raw="invoice_status_raw"),),
    ),
    Model("stg_billing__invoice_lines", "invoice_line_id", currencies=("currency",)),
    Model(
        "stg_billing__charges",
        "charge_id",
        currencies=("currency",),
        money=("amount_cents", "amount_refunded_cents"),
        dates=(("created_at", PAST),),
        statuses=(Accepted("charge_status", CHARGE_STATUSES),),
    ),
    Model(
        "stg_billing__payment_intents",
        "payment_intent_id",
        currencies=("currency",),
        money=("amount_cents", "amount_received_cents"),
        dates=(("created_at", PAST),),
        statuses=(Accepted("payment_intent_status", PAYMENT_INTENT_STATUSES),),
    ),
    Model(
        "stg_billing__invoice_payments",
        "invoice_payment_id",
        currencies=("currency",),
        money=("amount_paid_cents", "amount_requested_cents"),
        dates=(("created_at", PAST),),
        statuses=(Accepted("invoice_payment_status", ("open", "paid", "canceled")),),
    ),
    Model(
        "stg_billing__subscriptions",
        "subscription_id",
        currencies=("currency",),
        money=("unit_amount_cents",),
        dates=(("created_at", PAST), ("started_at", PAST), ("current_period_end_at", PLANNED)),
        statuses=(Accepted("subscription_status", SUBSCRIPTION_STATUSES),),
    ),
    Model(
        "stg_scheduling__events",
        "event_uri",
        emails=("host_email",),
        dates=(("start_at", SCHEDULED), ("end_at", SCHEDULED), ("created_at", PAST)),
        statuses=(Accepted("appointment_status", EVENT_STATUSES, raw="event_status_raw"),),
    ),
    Model(
        "stg_scheduling__invitees",
        "invitee_uri",
        emails=("email",),
        phones=("phone_e164",),
        dates=(("created_at", PAST), ("updated_at", PAST)),
        statuses=(Accepted("invitee_status", INVITEE_STATUSES),),
    ),
    Model(
        "stg_ads__campaigns",
        "campaign_key",
        currencies=("currency",),
        statuses=(Accepted("campaign_status", CAMPAIGN_STATUSES, raw="campaign_status_raw"),),
    ),
    Model(
        "stg_ads__google_campaign_days",
        "campaign_key || ':' || cast(spend_date as varchar)",
        currencies=("currency",),
        money=("spend_cents",),
        dates=(("spend_date", PAST),),
    ),
    Model(
        "stg_ads__meta_campaign_days",
        "campaign_key || ':' || cast(spend_date as varchar)",
        currencies=("currency",),
        money=("spend_cents",),
        dates=(("spend_date", PAST),),
    ),
)


def _any(conditions: Iterable[str]) -> str:
    return " or ".join(f"({c})" for c in conditions) or "false"


def _email_bad(column: str) -> str:
    return f"{column} is not null and not {sql.matches(column, EMAIL_PATTERN)}"


def _phone_bad(column: str) -> str:
    return f"{column} is not null and not {sql.matches(column, E164_PATTERN)}"


def _currency_bad(column: str) -> str:
    return f"{column} is not null and {column} not in {sql.in_list(CURRENCIES)}"


def _date_bad(column: str, ahead_days: int) -> str:
    return f"{column} < {EARLIEST} or {column} > now() + {sql.days(ahead_days)}"


def _status_bad(accepted: Accepted) -> str:
    bad = f"{accepted.column} not in {sql.in_list(accepted.values)}"
    if accepted.raw:
        raw_present = f"nullif(trim(cast({accepted.raw} as varchar)), '') is not null"
        bad += f" or ({accepted.column} is null and {raw_present})"
    return bad


@dataclass(frozen=True)
class Rule:
    """One kind of validity: which columns of a model it reads and what a bad value is."""

    name: str
    columns: Callable[[Model], tuple[str, ...]]
    bad: Callable[[Model], list[str]]
    unit: str
    levels: Levels
    what: str
    base: Callable[[Model], str] = lambda m: "true"
    params: tuple[tuple[str, float], ...] = ()


VALIDITY_RULES = (
    Rule(
        "email",
        lambda m: m.emails,
        lambda m: [_email_bad(c) for c in m.emails],
        "%",
        Levels(warn_above=1),
        "Per cent of the emails present that are not of the form local@domain.tld",
        base=lambda m: _any(f"{c} is not null" for c in m.emails),
    ),
    Rule(
        "phone_e164",
        lambda m: m.phones,
        lambda m: [_phone_bad(c) for c in m.phones],
        "%",
        Levels(warn_above=0),
        "Per cent of the normalized phones present that are not E.164 (+, country code, 8-15 digits)",
        base=lambda m: _any(f"{c} is not null" for c in m.phones),
    ),
    Rule(
        "currency",
        lambda m: m.currencies,
        lambda m: [_currency_bad(c) for c in m.currencies],
        "rows",
        Levels(warn_above=0),
        "Rows whose currency is not an upper-case ISO 4217 code",
    ),
    Rule(
        "money_non_negative",
        lambda m: m.money,
        lambda m: [f"{c} < 0" for c in m.money],
        "rows",
        Levels(warn_above=0),
        "Rows with a negative amount",
    ),
    Rule(
        "dates",
        lambda m: tuple(c for c, _ in m.dates),
        lambda m: [_date_bad(c, ahead) for c, ahead in m.dates],
        "rows",
        Levels(warn_above=0),
        "Rows with a date before `earliest_year` or later than it can be "
        "(own stamps: now + 1 day; scheduled times: 2 years; due and close dates: 5 years)",
        params=(("earliest_year", 2000),),
    ),
    Rule(
        "status",
        lambda m: tuple(a.column for a in m.statuses),
        lambda m: [_status_bad(a) for a in m.statuses],
        "%",
        Levels(warn_above=0),
        "Per cent of rows whose status is outside trueup's vocabulary (or a raw status left unmapped)",
    ),
)


def validity_checks() -> list[Check]:
    checks = []
    for model in STAGING_MODELS:
        rel = _stg(model.name)
        for rule in VALIDITY_RULES:
            columns = rule.columns(model)
            if not columns:
                continue
            bad = _any(rule.bad(model))
            observed = share_pct(bad, rule.base(model)) if rule.unit == "%" else count_where(bad)
            checks.append(
                Check(
                    name=f"validity__{rule.name}",
                    suite="validity",
                    asset=("staging", model.name),
                    description=f"{rule.what} ({', '.join(columns)}).",
                    unit=rule.unit,
                    source=rel,
                    observed=observed,
                    levels=rule.levels,
                    details=(("bad_rows", count_where(bad)), ("rows", "count(*)")),
                    sample=(
                        f"select {model.key} || ': ' || concat_ws(', ', "
                        + ", ".join(f"cast({c} as varchar)" for c in columns)
                        + f") from {rel} where {bad}"
                    ),
                    requires=(_name("staging", model.name),),
                    settings=(f"validity.{rule.name}.{model.name}", f"validity.{rule.name}"),
                    params=rule.params,
                )
            )
    return checks


# -- cross-system parity ---------------------------------------------------------------------------


def _ad_conversion_check(platform: str) -> Check:
    days = relation("intermediate", "int_ads__campaign_days")
    leads = relation("intermediate", "int_crm__paid_leads_by_campaign_day")
    window = f"between current_date - {sql.days('{{window_days}}')} and current_date - {sql.days(1)}"
    p = sql.literal(platform)
    source = (
        f"(select coalesce((select sum(conversions) from {days} where platform = {p} "
        f"and spend_date {window}), 0) as reported, "
        f"coalesce((select sum(crm_leads) from {leads} where platform = {p} and lead_date {window}), 0) "
        "as crm_leads) as totals"
    )
    key = "platform || ':' || campaign_id || ':' || cast({d} as varchar)"
    sample = (
        f"select coalesce(a.k, l.k) || ' reported ' || coalesce(a.n, 0) || ', CRM ' || coalesce(l.n, 0) "
        f"from (select {key.format(d='spend_date')} as k, sum(conversions) as n from {days} "
        f"where platform = {p} and spend_date {window} group by 1) a "
        f"full join (select {key.format(d='lead_date')} as k, sum(crm_leads) as n from {leads} "
        f"where platform = {p} and lead_date {window} group by 1) l on a.k = l.k "
        "where coalesce(a.n, 0) <> coalesce(l.n, 0) "
        "order by abs(coalesce(a.n, 0) - coalesce(l.n, 0)) desc, 1"
    )
    return Check(
        name=f"parity__{platform}_conversions",
        suite="parity",
        asset=("intermediate", "int_ads__campaign_days"),
        description=(
            f"{platform.title()} conversions against CRM paid leads over the last `window_days` full days: "
            "the difference as a per cent of the CRM leads."
        ),
        unit="%",
        source=source,
        observed="100.0 * abs(max(reported) - max(crm_leads)) / greatest(max(crm_leads), 1)",
        levels=Levels(warn_above=25),
        details=(("reported", "max(reported)"), ("crm_leads", "max(crm_leads)")),
        sample=sample,
        requires=("intermediate.int_ads__campaign_days", "intermediate.int_crm__paid_leads_by_campaign_day"),
        reads=(("intermediate", "int_crm__paid_leads_by_campaign_day"),),
        settings=(f"parity.{platform}_conversions", "parity.ad_conversions"),
        params=(("window_days", 90),),
    )


def _won_deals_check() -> Check:
    deals = relation("marts", "fct_deals")
    settled = f"is_won and closed_at < now() - {sql.days('{{settle_window_days}}')}"
    uninvoiced = "coalesce(invoice_count, 0) = 0"
    return Check(
        name="parity__won_deals_invoiced",
        suite="parity",
        asset=("marts", "fct_deals"),
        description=(
            "Won deals closed more than `settle_window_days` ago with no invoice in billing, "
            "as a per cent of those won deals."
        ),
        unit="%",
        source=deals,
        observed=share_pct(uninvoiced, settled),
        levels=Levels(warn_above=5),
        details=(
            ("won_deals", count_where(settled)),
            ("uninvoiced", count_where(f"{settled} and {uninvoiced}")),
            ("won_cents", f"sum(amount_cents) filter (where {settled})"),
            ("billed_cents", f"sum(billed_cents) filter (where {settled})"),
        ),
        sample=(
            f"select deal_id || ' ' || coalesce(deal_name, '') from {deals} "
            f"where {settled} and {uninvoiced} order by closed_at"
        ),
        requires=("marts.fct_deals",),
        settings=("parity.won_deals_invoiced", "parity"),
        params=(("settle_window_days", 7),),
    )


def _paid_invoices_check() -> Check:
    invoices = relation("marts", "fct_invoices")
    payments = relation("marts", "fct_payments")
    joined = (
        f"(select i.invoice_id, i.is_paid, i.amount_paid_cents, coalesce(p.succeeded, 0) as succeeded, "
        "coalesce(p.collected_cents, 0) as collected_cents "
        f"from {invoices} i left join (select invoice_id, count(*) filter (where is_paid) as succeeded, "
        f"sum(amount_cents) filter (where is_paid) as collected_cents from {payments} "
        "where invoice_id is not null group by invoice_id) p on p.invoice_id = i.invoice_id) as paired"
    )
    mismatch = (
        "(is_paid and succeeded = 0) or (not is_paid and succeeded > 0) "
        "or (is_paid and collected_cents <> amount_paid_cents)"
    )
    return Check(
        name="parity__paid_invoices_payments",
        suite="parity",
        asset=("marts", "fct_invoices"),
        description=(
            "Invoices whose paid status or paid amount disagrees with their successful payments, "
            "as a per cent of the paid invoices."
        ),
        unit="%",
        source=joined,
        observed=f"100.0 * {count_where(mismatch)} / greatest({count_where('is_paid')}, 1)",
        levels=Levels(warn_above=2),
        details=(
            ("paid_invoices", count_where("is_paid")),
            ("paid_without_payment", count_where("is_paid and succeeded = 0")),
            ("payment_but_not_paid", count_where("not is_paid and succeeded > 0")),
            (
                "amount_differs",
                count_where("is_paid and succeeded > 0 and collected_cents <> amount_paid_cents"),
            ),
        ),
        sample=(
            "select invoice_id || case when is_paid and succeeded = 0 then ' paid, no payment' "
            "when not is_paid then ' not paid, payment succeeded' else ' paid ' || amount_paid_cents "
            "|| ', collected ' || collected_cents end "
            f"from {joined} where {mismatch} order by 1"
        ),
        requires=("marts.fct_invoices", "marts.fct_payments"),
        reads=(("marts", "fct_payments"),),
        settings=("parity.paid_invoices_payments", "parity"),
    )


def _appointments_check() -> Check:
    appointments = relation("marts", "fct_appointments")
    missing = "scheduling_appointment_status = 'scheduled' and not has_crm_meeting"
    status = (
        "has_crm_meeting and (scheduling_appointment_status = 'canceled') "
        "<> (coalesce(crm_appointment_status, '') = 'canceled')"
    )
    mismatch = f"({missing}) or ({status})"
    return Check(
        name="parity__appointments_meetings",
        suite="parity",
        asset=("marts", "fct_appointments"),
        description=(
            "Scheduling appointments the CRM does not mirror: scheduled with no CRM meeting, or "
            "canceled on one side only; as a per cent of the scheduling appointments."
        ),
        unit="%",
        source=appointments,
        observed=share_pct(mismatch, "has_scheduling_event"),
        levels=Levels(warn_above=5),
        details=(
            ("appointments", count_where("has_scheduling_event")),
            ("without_meeting", count_where(f"has_scheduling_event and {missing}")),
            ("status_differs", count_where(f"has_scheduling_event and {status}")),
        ),
        sample=(
            "select event_uri || ' ' || scheduling_appointment_status || ' / CRM ' "
            f"|| coalesce(crm_appointment_status, 'no meeting') from {appointments} "
            f"where has_scheduling_event and ({mismatch}) order by start_at desc"
        ),
        requires=("marts.fct_appointments",),
        settings=("parity.appointments_meetings", "parity"),
    )


def parity_checks() -> list[Check]:
    return [
        _ad_conversion_check("google"),
        _ad_conversion_check("meta"),
        _won_deals_check(),
        _paid_invoices_check(),
        _appointments_check(),
    ]


# -- drift budget --------------------------------------------------------------------------------


def drift_budget_checks() -> list[Check]:
    findings = relation("reconciliation", "findings")
    # dim_customers counted once for the whole batch: its count sits beside every finding (and
    # on a row of its own when there are none, so the count is there either way)
    source = (
        f"(select count(*) as customer_count from {relation('marts', 'dim_customers')}) as customers "
        f"left join {findings} on true"
    )
    customers = "max(customers.customer_count)"
    checks = []
    for rule in RULES:
        open_findings = count_where(f"rule = {sql.literal(rule)} and status = 'open'")
        checks.append(
            Check(
                name=f"drift_budget__{rule}",
                suite="drift_budget",
                asset=("reconciliation", "findings"),
                description=(
                    f"Open `{rule}` findings per 1,000 customers (rows of dim_customers): the share of "
                    "records the business accepts out of agreement before write-backs stop."
                ),
                unit="per 1k customers",
                source=source,
                observed=f"1000.0 * {open_findings} / greatest({customers}, 1)",
                levels=Levels(warn_above=20),
                details=(("open_findings", open_findings), ("customers", customers)),
                sample=(
                    f"select finding_id || ' ' || coalesce(record_keys, '') from {findings} "
                    f"where rule = {sql.literal(rule)} and status = 'open' order by first_seen_at, finding_id"
                ),
                requires=("reconciliation.findings", "marts.dim_customers"),
                reads=(("marts", "dim_customers"),),
                settings=(f"drift_budget.{rule}", "drift_budget"),
            )
        )
    return checks


# -- identity ------------------------------------------------------------------------------------


def identity_checks() -> list[Check]:
    links = relation("intermediate", "int_identity__links")
    resolved = relation("intermediate", "int_identity__resolved")
    low = "confidence < {{confidence_threshold}}"
    return [
        Check(
            name="identity__low_confidence_links",
            suite="identity",
            asset=("intermediate", "int_identity__resolved"),
            description=(
                "Per cent of identity links below `confidence_threshold` (they go to review and never "
                "drive a write-back); many of them mean the resolved customers cannot be trusted."
            ),
            unit="%",
            source=links,
            observed=share_pct(low),
            levels=Levels(warn_above=5),
            details=(
                ("links", "count(*)"),
                ("low_confidence_links", count_where(low)),
                ("records_needing_review", f"(select count(*) filter (where needs_review) from {resolved})"),
            ),
            sample=(
                "select left_system || ':' || left_record_id || ' ~ ' "
                "|| right_system || ':' || right_record_id "
                f"|| ' (' || {sql.rounded_text('confidence', 3)} || ', ' "
                "|| coalesce(match_method, '?') || ')' "
                f"from {links} "
                f"where {low} order by confidence, 1"
            ),
            requires=("intermediate.int_identity__links", "intermediate.int_identity__resolved"),
            reads=(("intermediate", "int_identity__links"),),
            settings=("identity.low_confidence_links", "identity"),
            params=(("confidence_threshold", 0.9),),
        )
    ]


# -- the catalogue -------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[], list[Check]]] = {
    "completeness": completeness_checks,
    "parity": parity_checks,
    "validity": validity_checks,
    "uniqueness": uniqueness_checks,
    "freshness": freshness_checks,
    "drift_budget": drift_budget_checks,
    "identity": identity_checks,
}


@functools.cache
def catalogue() -> tuple[Check, ...]:
    """Every check of every suite (static: no config, no warehouse)."""
    checks = tuple(check for suite in SUITES for check in BUILDERS[suite]())
    seen: set[str] = set()
    for check in checks:
        if check.key in seen:
            raise ValueError(f"two checks named {check.key}")
        seen.add(check.key)
    return checks


def select(suites: Iterable[str] | None = None, keys: Iterable[str] | None = None) -> list[Check]:
    """The checks of some suites and/or with some keys (`<asset path>:<name>`); all by default."""
    wanted_suites = set(suites) if suites else None
    unknown = (wanted_suites or set()) - set(SUITES)
    if unknown:
        raise ValueError(f"unknown suite(s) {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}")
    wanted_keys = set(keys) if keys is not None else None
    return [
        c
        for c in catalogue()
        if (wanted_suites is None or c.suite in wanted_suites)
        and (wanted_keys is None or c.key in wanted_keys)
    ]
