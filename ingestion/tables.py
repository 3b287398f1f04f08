"""The systems trueup ingests and the raw tables each writes (no heavy imports here)."""

QUARANTINE_TABLE = "_quarantine"
RESOLVED_TABLE = "_quarantine_resolved"  # quarantines that ended (passed when fetched again, accepted)
FLAGGED_TABLE = "_flagged"  # records loaded with a warning (e.g. stamped past the server's clock)
COUNTS_TABLE = "_source_counts"  # the source's own totals against raw, after the last run
SKIPPED_TABLE = "_resource_status"  # resources the last run could not read in full, with the reason

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
        "account_info",
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


# The resources the rest of a run needs (identity, the rules): when one is skipped (a missing
# scope, an object type the account does not use) the run fails and names the scope to grant.
# Override with `[ingest] required_resources = ["crm.contacts", ...]` in .dlt/config.toml or
# INGEST__REQUIRED_RESOURCES (a JSON list); the per-business mapping feeds the same setting.
DEFAULT_REQUIRED = (
    "crm.contacts",
    "crm.deals",
    "billing.customers",
    "billing.invoices",
    "scheduling.scheduled_events",
    "scheduling.invitees",
)
# The permission each resource reads with, by its usual name (an API that names the missing
# scope in its answer is believed first).
SCOPES = {
    "crm.contacts": "the scope crm.objects.contacts.read",
    "crm.companies": "the scope crm.objects.companies.read",
    "crm.deals": "the scope crm.objects.deals.read",
    "crm.owners": "the scope crm.objects.owners.read",
    "crm.pipelines": "the scope crm.objects.deals.read",
    "billing.customers": "the restricted key permission rak_customer_read",
    "billing.invoices": "the restricted key permission rak_invoice_read",
    "billing.charges": "the restricted key permission rak_charge_read",
    "billing.payment_intents": "the restricted key permission rak_payment_intent_read",
    "billing.subscriptions": "the restricted key permission rak_subscription_read",
    "scheduling.scheduled_events": "the scope scheduled_events:read",
    "scheduling.invitees": "the scope scheduled_events:read",
    "ads.meta_campaigns": "the permission ads_read",
    "ads.meta_campaign_insights": "the permission ads_read",
}


def required_resources(configured: list[str] | tuple[str, ...] | None = None) -> dict[str, set[str]]:
    """system -> the resources a run needs (`DEFAULT_REQUIRED` unless configured)."""
    names = DEFAULT_REQUIRED if configured is None else tuple(configured)
    required: dict[str, set[str]] = {system: set() for system in SYSTEMS}
    for name in names:
        system, _, resource = str(name).partition(".")
        if system not in required or not resource:
            raise ValueError(
                f"required resource {name!r} is not <system>.<resource> (systems: {', '.join(SYSTEMS)})"
            )
        required[system].add(resource)
    return required
