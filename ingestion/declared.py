"""Every raw table and column staging reads, with its type: they exist after any run, even
when the API never returned a row (a new account, an object type the account does not use,
a resource the token may not read), so the models build on an empty account.

dlt creates a table only once a load carries a row for it, and a column only once a row has
a value there; after each load the runner creates what is still missing from these
declarations (`ensure`). A later load that brings rows finds the table and adds its own
columns beside these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ingestion.contracts import FLAGGED_COLUMNS, QUARANTINE_COLUMNS, RESOLVED_COLUMNS
from ingestion.tables import FLAGGED_TABLE, QUARANTINE_TABLE, RESOLVED_TABLE, dataset_name

if TYPE_CHECKING:  # pragma: no cover
    from ingestion.sqlconn import Target

Columns = Mapping[str, str]  # column -> dlt data type

ROOT = {"_dlt_load_id": "text", "_dlt_id": "text"}
CHILD = {"_dlt_parent_id": "text", "_dlt_list_idx": "bigint", "_dlt_id": "text"}
MERGED_CHILD = {**CHILD, "_dlt_root_id": "text"}  # a child of a merged table knows its root


def _text(*names: str) -> dict[str, str]:
    return dict.fromkeys(names, "text")


def _types(columns: Mapping[str, Any]) -> dict[str, str]:
    """dlt column hints -> {name: data type}."""
    return {name: str(hint.get("data_type") or "text") for name, hint in columns.items()}


def _crm() -> dict[str, dict[str, str]]:
    from ingestion.crm.settings import ASSOCIATIONS, DELETED_COLUMN, OBJECTS

    tables: dict[str, dict[str, str]] = {}
    for obj in OBJECTS:
        tables[obj.name] = {
            **_text("id", "created_at", "updated_at"),
            "archived": "bool",
            **_text(*(f"properties__{name}" for name in obj.properties)),
            **ROOT,
        }
    for assoc in ASSOCIATIONS:
        tables[assoc.table] = {**_text(assoc.from_column, assoc.to_column), DELETED_COLUMN: "bool", **ROOT}
    tables["owners"] = {
        **_text("id", "email", "first_name", "last_name", "created_at", "updated_at"),
        "user_id": "bigint",
        "archived": "bool",
        **ROOT,
    }
    tables["pipelines"] = {
        **_text("id", "label", "created_at", "updated_at"),
        "display_order": "bigint",
        "archived": "bool",
        **ROOT,
    }
    tables["pipelines__stages"] = {
        **_text("id", "label", "write_permissions", "created_at", "updated_at"),
        **_text("metadata__is_closed", "metadata__probability"),
        "display_order": "bigint",
        "archived": "bool",
        **CHILD,
    }
    return tables


def _billing() -> dict[str, dict[str, str]]:
    from ingestion.billing.settings import RESOURCES

    tables = {r.name: {**_types(r.columns), **ROOT} for r in RESOURCES}
    tables["invoices__lines__data"] = {
        **_text("id", "object", "currency", "description"),
        **dict.fromkeys(("amount", "quantity", "period__start", "period__end"), "bigint"),
        **MERGED_CHILD,
    }
    tables["subscriptions__items__data"] = {
        **_text("id", "object", "price__id", "price__object", "price__currency", "price__product"),
        **_text("price__nickname", "price__lookup_key", "price__recurring__interval"),
        **dict.fromkeys(("quantity", "created", "price__unit_amount"), "bigint"),
        "price__recurring__interval_count": "bigint",
        **MERGED_CHILD,
    }
    return tables


def _scheduling() -> dict[str, dict[str, str]]:
    from ingestion.scheduling.settings import EVENT_COLUMNS, INVITEE_COLUMNS

    return {
        "scheduled_events": {
            **_types(EVENT_COLUMNS),
            **dict.fromkeys(("invitees_counter__total", "invitees_counter__active"), "bigint"),
            "invitees_counter__limit": "bigint",
            **ROOT,
        },
        "scheduled_events__event_memberships": {**_text("user", "user_email", "user_name"), **MERGED_CHILD},
        "invitees": {**_types(INVITEE_COLUMNS), **ROOT},
        "invitees__questions_and_answers": {
            **_text("question", "answer"),
            "position": "bigint",
            **MERGED_CHILD,
        },
    }


def _ads() -> dict[str, dict[str, str]]:
    from ingestion.ads.settings import GOOGLE_METRIC_COLUMNS

    customer = _text("customer__resource_name", "customer__id")
    campaign = _text("campaign__resource_name", "campaign__id", "campaign__name")
    return {
        "google_customers": {
            **customer,
            **_text("customer__descriptive_name", "customer__currency_code", "customer__time_zone"),
            **ROOT,
        },
        "google_campaigns": {
            **customer,
            **campaign,
            **_text("campaign__status", "campaign__advertising_channel_type"),
            **ROOT,
        },
        "google_campaign_metrics": {
            **customer,
            "customer__currency_code": "text",
            **campaign,
            "segments__date": "text",
            **_types(GOOGLE_METRIC_COLUMNS),
            **ROOT,
        },
        "meta_accounts": {**_text("id", "account_id", "name", "currency", "timezone_name"), **ROOT},
        "meta_campaigns": {
            **_text("id", "account_id", "name", "status", "effective_status", "objective"),
            **_text("daily_budget", "created_time", "updated_time"),
            **ROOT,
        },
        "meta_campaign_insights": {
            **_text("account_id", "account_currency", "campaign_id", "campaign_name"),
            **_text("date_start", "date_stop", "impressions", "clicks", "spend"),
            **ROOT,
        },
        "meta_campaign_insights__actions": {**_text("action_type", "value"), **MERGED_CHILD},
    }


_BOOKKEEPING = {
    QUARANTINE_TABLE: {**_types(QUARANTINE_COLUMNS), **ROOT},
    RESOLVED_TABLE: {**_types(RESOLVED_COLUMNS), **ROOT},
    FLAGGED_TABLE: {**_types(FLAGGED_COLUMNS), **ROOT},
}
_BUILDERS = {"crm": _crm, "billing": _billing, "scheduling": _scheduling, "ads": _ads}


def declared(system: str) -> dict[str, dict[str, str]]:
    """Table -> column -> dlt data type, for one system's raw dataset."""
    return {**_BUILDERS[system](), **_BOOKKEEPING}


def ensure(database: Target, system: str) -> dict[str, list[str]]:
    """Create the declared tables and columns of one system that the warehouse lacks, with the
    types dlt gives them on its engine (`sqlconn.SQL_TYPES`: json is JSONB on PostgreSQL);
    returns what was added (table -> columns)."""
    from ingestion import sqlconn

    schema = dataset_name(system)
    added: dict[str, list[str]] = {}
    with sqlconn.connect(database) as con:
        con.execute(f'create schema if not exists "{schema}"')
        existing = con.columns(schema)
        for table, columns in declared(system).items():
            missing = [name for name in columns if name not in existing.get(table, set())]
            if not missing:
                continue
            if table not in existing:
                body = ", ".join(f'"{name}" {con.sql_type(kind)}' for name, kind in columns.items())
                con.execute(f'create table "{schema}"."{table}" ({body})')
            else:
                for name in missing:
                    con.execute(
                        f'alter table "{schema}"."{table}" add column "{name}" {con.sql_type(columns[name])}'
                    )
            added[table] = missing
    return added
