"""The systems trueup ingests and the raw tables each writes (no heavy imports here)."""

QUARANTINE_TABLE = "_quarantine"

SYSTEMS = ("crm", "billing", "scheduling", "ads")
SOURCES = {
    "crm": "ingestion.crm:crm_source",
    "billing": "ingestion.billing:billing_source",
    "scheduling": "ingestion.scheduling:scheduling_source",
    "ads": "ingestion.ads:ads_source",
}

# The tables each source writes (dbt's sources read exactly these; child tables omitted).
TABLES = {
    "crm": (
        "contacts",
        "companies",
        "deals",
        "meetings",
        "owners",
        "pipelines",
        "contacts_to_companies",
        "contacts_to_deals",
        "contacts_to_meetings",
        "deals_to_companies",
    ),
    "billing": ("customers", "invoices", "charges", "payment_intents", "subscriptions", "invoice_payments"),
    "scheduling": ("scheduled_events", "invitees"),
    "ads": (
        "google_customers",
        "google_campaigns",
        "google_campaign_metrics",
        "meta_accounts",
        "meta_campaigns",
        "meta_campaign_insights",
    ),
}


def dataset_name(system: str) -> str:
    """The warehouse schema (dlt dataset) a system loads into."""
    return f"raw_{system}"
