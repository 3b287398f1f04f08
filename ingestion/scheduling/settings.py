"""Calendly endpoints, scan windows and the record contracts of the scheduling source."""

from __future__ import annotations

from dlt.common.schema.typing import TTableSchemaColumns

from ingestion.contracts import Contract, Field

PAGE_SIZE = 100  # Calendly's maximum `count`
RESCAN_DAYS = 30  # later runs re-read events that started this many days back ...
HORIZON_DAYS = 365  # ... up to this many days ahead
# A re-scan reads the invitees of events updated since the previous scan, less this margin
# (Calendly's clock and ours may differ), and of events that started from this many days
# before the previous scan until now (no-shows are marked on invitees after the meeting).
UPDATED_MARGIN_HOURS = 1.0
NO_SHOW_DAYS = 7
WORKERS = 8  # invitee lists read at once
STATUSES = ("active", "canceled")

ME_PATH = "/users/me"
EVENTS_PATH = "/scheduled_events"
INVITEES_PATH = "/scheduled_events/{uuid}/invitees"
EVENTS_URI_PREFIX = "/scheduled_events/"

EVENTS_CONTRACT = Contract(
    resource="scheduled_events",
    key="uri",
    fields=(
        Field("uri", "str", required=True),
        Field("status", "str", required=True),
        Field("start_time", "str", required=True),
        Field("end_time", "str"),
        Field("name", "str"),
        Field("event_type", "str"),
        Field("created_at", "str"),
        Field("updated_at", "str"),
        Field("location", "dict"),
        Field("invitees_counter", "dict"),
        Field("event_memberships", "list"),
        Field("event_guests", "list"),
        Field("cancellation", "dict"),
    ),
)
INVITEES_CONTRACT = Contract(
    resource="invitees",
    key="uri",
    fields=(
        Field("uri", "str", required=True),
        Field("event", "str", required=True),
        Field("status", "str", required=True),
        Field("email", "str"),
        Field("name", "str"),
        Field("first_name", "str"),
        Field("last_name", "str"),
        Field("timezone", "str"),
        Field("created_at", "str"),
        Field("updated_at", "str"),
        Field("rescheduled", "bool"),
        Field("old_invitee", "str"),
        Field("new_invitee", "str"),
        Field("cancellation", "dict"),
        Field("tracking", "dict"),
        Field("questions_and_answers", "list"),
        Field("text_reminder_number", "str"),
    ),
)


def _text(*names: str) -> TTableSchemaColumns:
    return {name: {"data_type": "text", "nullable": True} for name in names}


_CANCELLATION = ("cancellation__canceled_by", "cancellation__reason", "cancellation__canceler_type")
# Columns that must exist even while every value is null (timestamps stay the API's strings).
EVENT_COLUMNS: TTableSchemaColumns = {
    "uri": {"data_type": "text", "nullable": False},
    **_text("name", "status", "start_time", "end_time", "event_type", "created_at", "updated_at"),
    **_text("location__type", "location__location", "location__join_url"),
    **_text(*_CANCELLATION, "cancellation__created_at"),
}
INVITEE_COLUMNS: TTableSchemaColumns = {
    "uri": {"data_type": "text", "nullable": False},
    **_text("email", "name", "first_name", "last_name", "status", "timezone", "event"),
    **_text("created_at", "updated_at", "old_invitee", "new_invitee", "text_reminder_number"),
    **_text("cancel_url", "reschedule_url"),
    "rescheduled": {"data_type": "bool", "nullable": True},
    **_text(*_CANCELLATION, "cancellation__created_at"),
    **_text("tracking__utm_campaign", "tracking__utm_source", "tracking__utm_medium"),
    **_text("tracking__utm_content", "tracking__utm_term", "tracking__salesforce_uuid"),
    # objects that are usually null: kept whole as JSON, so their columns exist from the first load
    "no_show": {"data_type": "json", "nullable": True},
    "reconfirmation": {"data_type": "json", "nullable": True},
    "payment": {"data_type": "json", "nullable": True},
    "routing_form_submission": {"data_type": "text", "nullable": True},
}
