"""HubSpot endpoints, the properties each CRM object is read with, and its record contracts."""

from __future__ import annotations

from dataclasses import dataclass

from ingestion.contracts import Contract, Field

LIST_PAGE_SIZE = 100  # the list endpoint's maximum `limit`
SEARCH_PAGE_SIZE = 200  # the search endpoint's maximum `limit`
SEARCH_RESULT_CAP = 10_000  # a search query cannot page past this many results
SEARCH_RATE = 4.0  # search requests per second per token (search answers carry no limit headers)
ASSOCIATION_BATCH = 100  # ids per v4 association batch read
# Longest URL a request is built to (HubSpot answers 414 past about 8 KB); list pages that ask
# for more properties than fit read the rest with a batch read (ingestion/crm/properties.py).
MAX_URL_LENGTH = 6000

OBJECTS_PATH = "/crm/v3/objects/{object_type}"
SEARCH_PATH = "/crm/v3/objects/{object_type}/search"
BATCH_READ_PATH = "/crm/v3/objects/{object_type}/batch/read"
BATCH_READ_SIZE = 100  # ids per batch read (HubSpot's maximum)
PROPERTIES_PATH = "/crm/v3/properties/{object_type}"
OWNERS_PATH = "/crm/v3/owners"
PIPELINES_PATH = "/crm/v3/pipelines/deals"
ASSOCIATIONS_BATCH_PATH = "/crm/v4/associations/{from_type}/{to_type}/batch/read"
ASSOCIATIONS_PAGE_PATH = "/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}"


@dataclass(frozen=True)
class CrmObject:
    """One CRM object type: its table, its last-modified property and the properties it is read with."""

    name: str  # the object type in the API path and the dlt table name
    modified: str  # the last-modified property searches filter and sort on
    properties: tuple[str, ...]

    @property
    def cursor_path(self) -> str:
        return f"properties.{self.modified}"

    @property
    def contract(self) -> Contract:
        return Contract(
            resource=self.name,
            key="id",
            fields=(
                Field("id", "str", required=True),
                Field("properties", "dict", required=True),
                Field(self.cursor_path, "str", required=True),
                Field("createdAt", "str"),
                Field("updatedAt", "str"),
                Field("archived", "bool"),
            ),
            string_map="properties",
        )


CONTACTS = CrmObject(
    name="contacts",
    modified="lastmodifieddate",
    properties=(
        "email",
        "firstname",
        "lastname",
        "phone",
        "country",
        "company",
        "jobtitle",
        "lifecyclestage",
        "hubspot_owner_id",
        "hs_analytics_source",
        "hs_analytics_source_data_1",
        "hs_analytics_source_data_2",
        "hs_google_click_id",
        "hs_facebook_click_id",
        "trial_start_date",
        "createdate",
        "lastmodifieddate",
        "hs_object_id",
    ),
)
COMPANIES = CrmObject(
    name="companies",
    modified="hs_lastmodifieddate",
    properties=(
        "name",
        "domain",
        "industry",
        "city",
        "country",
        "phone",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
)
DEALS = CrmObject(
    name="deals",
    modified="hs_lastmodifieddate",
    properties=(
        "dealname",
        "amount",
        "deal_currency_code",
        "dealstage",
        "pipeline",
        "closedate",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hubspot_owner_id",
    ),
)
MEETINGS = CrmObject(
    name="meetings",
    modified="hs_lastmodifieddate",
    properties=(
        "hs_meeting_title",
        "hs_meeting_start_time",
        "hs_meeting_end_time",
        "hs_meeting_outcome",
        "hs_timestamp",
        "hs_meeting_external_url",
        "hubspot_owner_id",
        "hs_createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
)
OBJECTS = (CONTACTS, DEALS, COMPANIES, MEETINGS)  # owners of associations first


@dataclass(frozen=True)
class Association:
    """A table of (from id, to id) pairs, replaced per from-object whenever that object is read."""

    table: str
    from_type: str
    to_type: str
    from_column: str
    to_column: str

    @property
    def contract(self) -> Contract:
        """The contract of one v4 batch-read result (`{from: {id}, to: [{toObjectId}]}`)."""
        return Contract(resource=self.table, key="from.id", fields=(Field("to", "list", required=True),))


ASSOCIATIONS = (
    Association("contacts_to_companies", "contacts", "companies", "contact_id", "company_id"),
    Association("contacts_to_deals", "contacts", "deals", "contact_id", "deal_id"),
    Association("contacts_to_meetings", "contacts", "meetings", "contact_id", "meeting_id"),
    Association("deals_to_companies", "deals", "companies", "deal_id", "company_id"),
)
DELETED_COLUMN = "_deleted"  # marks the one row that clears a from-object's pairs when it has none

OWNERS_CONTRACT = Contract(
    resource="owners",
    key="id",
    fields=(
        Field("id", "str", required=True),
        Field("email", "str"),
        Field("firstName", "str"),
        Field("lastName", "str"),
        Field("archived", "bool"),
    ),
)
PIPELINES_CONTRACT = Contract(
    resource="pipelines",
    key="id",
    fields=(
        Field("id", "str", required=True),
        Field("label", "str"),
        Field("displayOrder", "int"),
        Field("stages", "list", required=True),
        Field("archived", "bool"),
    ),
)
STAGE_CONTRACT = Contract(
    resource="pipelines",
    key="id",
    fields=(
        Field("id", "str", required=True),
        Field("label", "str"),
        Field("metadata", "dict"),
    ),
    string_map="metadata",
)
