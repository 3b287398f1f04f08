-- One row per CRM meeting whose booking moved in Calendly (the reschedule chain ends at another
-- event) or whose start time differs from its current Calendly event, keyed by the meeting and
-- the event it still points at; and, for an account that logs no meetings, one row per
-- contact whose next-appointment property still holds the start of an event its booking moved
-- away from, keyed by the contact and that event.

with

meetings as (

    select * from {{ ref('link_meetings_current_events') }}

),

contact_appointments as (

    select * from {{ ref('link_contact_appointments') }}

),

compared as (

    select
        {{ record_keys([('meeting_id', 'meeting_id'), ('event_uri', 'event_uri')]) }} as record_keys,
        'start_time' as field,
        {{ iso_utc('start_at') }} as crm_value,
        null as billing_value,
        {{ iso_utc('current_start_at') }} as scheduling_value,
        null as ads_value,
        true as is_write_safe
    from meetings
    where
        has_event
        and (current_event_uri != event_uri or start_at is distinct from current_start_at)
    union all
    select
        {{ record_keys([('contact_id', 'contact_id'), ('event_uri', 'event_uri')]) }} as record_keys,
        'next_appointment' as field,
        {{ iso_utc('start_at') }} as crm_value,
        null as billing_value,
        {{ iso_utc('current_start_at') }} as scheduling_value,
        null as ads_value,
        true as is_write_safe
    from contact_appointments
    where current_event_uri != event_uri

),

{{ reconciliation_finding(
    rule='appointment_time_mismatch', severity='warn', entity='appointment', systems='crm,scheduling',
    owner_entity='appointment', owner_fields=['start_time'], target_system='crm'
) }}
