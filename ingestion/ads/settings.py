"""Google Ads and Meta endpoints, queries, defaults and record contracts for the ads source."""

from __future__ import annotations

from dlt.common.schema.typing import TTableSchemaColumns

from ingestion.contracts import Contract, Field

GOOGLE_API_VERSION = "v21"
META_API_VERSION = "v25.0"
# Default history on a first run: Meta keeps insights 37 months, so take all of it.
START_DAYS_BACK = 1127
GOOGLE_LOOKBACK_DAYS = 30  # conversions are restated for weeks
META_LOOKBACK_DAYS = 7  # Meta's default attribution window
WINDOW_DAYS = 90  # date span of one report request
META_PAGE_SIZE = 500

GOOGLE_CUSTOMER_QUERY = (
    "SELECT customer.id, customer.descriptive_name, customer.currency_code, customer.time_zone FROM customer"
)
GOOGLE_CAMPAIGN_QUERY = (
    "SELECT customer.id, campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type "
    "FROM campaign"
)
GOOGLE_METRICS_QUERY = (
    "SELECT customer.id, customer.currency_code, campaign.id, campaign.name, segments.date, "
    "metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, "
    "metrics.conversions_value FROM campaign WHERE segments.date BETWEEN '{since}' AND '{until}' "
    "ORDER BY segments.date"
)
# int64 metrics: JSON strings on the wire, bigint in the warehouse (no unit conversion).
GOOGLE_INT64_METRICS = ("impressions", "clicks", "costMicros")
GOOGLE_METRIC_COLUMNS: TTableSchemaColumns = {
    "metrics__impressions": {"data_type": "bigint"},
    "metrics__clicks": {"data_type": "bigint"},
    "metrics__cost_micros": {"data_type": "bigint"},
    "metrics__conversions": {"data_type": "double"},
    "metrics__conversions_value": {"data_type": "double"},
}

META_ACCOUNT_FIELDS = "id,account_id,name,currency,timezone_name"
META_CAMPAIGN_FIELDS = (
    "id,account_id,name,status,effective_status,objective,daily_budget,created_time,updated_time"
)
META_INSIGHT_FIELDS = (
    "account_id,account_currency,campaign_id,campaign_name,date_start,date_stop,"
    "impressions,clicks,spend,actions"
)

GOOGLE_CUSTOMERS = Contract(
    resource="google_customers",
    key="customer.id",
    fields=(Field("customer.currencyCode", "str"), Field("customer.timeZone", "str")),
)
GOOGLE_CAMPAIGNS = Contract(
    resource="google_campaigns",
    key="campaign.id",
    fields=(
        Field("customer.id", "str", required=True),
        Field("campaign.name", "str"),
        Field("campaign.status", "str"),
    ),
)
GOOGLE_METRICS = Contract(
    resource="google_campaign_metrics",
    key="campaign.id",
    fields=(
        Field("customer.id", "str", required=True),
        Field("segments.date", "str", required=True),
        Field("metrics", "dict"),  # proto3 JSON may omit it when every metric is zero
        Field("metrics.conversions", "num"),
        Field("metrics.conversionsValue", "num"),
    ),
)
META_ACCOUNTS = Contract(
    resource="meta_accounts",
    key="id",
    fields=(
        Field("account_id", "str", required=True),
        Field("currency", "str"),
        Field("timezone_name", "str"),
    ),
)
META_CAMPAIGNS = Contract(
    resource="meta_campaigns",
    key="id",
    fields=(
        Field("account_id", "str", required=True),
        Field("name", "str"),
        Field("status", "str"),
        Field("effective_status", "str"),
        Field("daily_budget", "numstr"),
    ),
)
META_INSIGHTS = Contract(
    resource="meta_campaign_insights",
    key="campaign_id",
    fields=(
        Field("account_id", "str", required=True),
        Field("date_start", "str", required=True),
        Field("date_stop", "str"),
        Field("impressions", "numstr"),
        Field("clicks", "numstr"),
        Field("spend", "numstr"),
        Field("actions", "list"),
    ),
)
