-- One row per CRM meeting on its current Calendly event (not rescheduled away) whose status
-- disagrees: canceled in Calendly but not in the CRM, or canceled in the CRM only; and, for an
-- account that logs no meetings, one row per contact whose next-appointment property still
-- holds the start of an event canceled outright (not rescheduled).

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
        'status' as field,
        appointment_status as crm_value,
        null as billing_value,
        current_appointment_status as scheduling_value,
        null as ads_value,
        true as is_write_safe
    from meetings
    where
        has_event
        and current_event_uri = event_uri
        and (current_appointment_status = 'canceled') != (appointment_status = 'canceled')
    union all
    select
        {{ record_keys([('contact_id', 'contact_id'), ('event_uri', 'event_uri')]) }} as record_keys,
        'next_appointment' as field,
        'scheduled' as crm_value,
        null as billing_value,
        current_appointment_status as scheduling_value,
        null as ads_value,
        true as is_write_safe
    from contact_appointments
    where current_event_uri = event_uri and current_appointment_status = 'canceled'

),

{{ reconciliation_finding(
    rule='appointment_status_mismatch', severity='warn', entity='appointment',
    systems='crm,scheduling', owner_entity='appointment', owner_fields=['status'], target_system='crm'
) }}
