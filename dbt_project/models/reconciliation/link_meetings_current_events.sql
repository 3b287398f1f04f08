-- One row per CRM meeting that mirrors a Calendly event (hs_meeting_external_url), with the
-- event it points at and the event that booking lives on now (int_scheduling__event_chains).

with

meetings as (

    select * from {{ ref('stg_crm__meetings') }}

),

contact_meetings as (

    select * from {{ ref('stg_crm__contact_meetings') }}

),

events as (

    select * from {{ ref('stg_scheduling__events') }}

),

chain_ends as (

    select * from {{ ref('int_scheduling__event_chains') }}

),

meeting_contacts as (

    select
        meeting_id,
        min(contact_id) as contact_id
    from contact_meetings
    group by meeting_id

),

final as (

    select
        meetings.meeting_id,
        meeting_contacts.contact_id,
        meetings.event_uri,
        meetings.start_at,
        meetings.appointment_status,
        coalesce(chain_ends.current_event_uri, meetings.event_uri) as current_event_uri,
        current_events.start_at as current_start_at,
        current_events.end_at as current_end_at,
        current_events.appointment_status as current_appointment_status,
        current_events.event_uri is not null as has_event
    from meetings
    left join meeting_contacts on meetings.meeting_id = meeting_contacts.meeting_id
    left join chain_ends on meetings.event_uri = chain_ends.event_uri
    left join events as current_events
        on coalesce(chain_ends.current_event_uri, meetings.event_uri) = current_events.event_uri
    where meetings.event_uri is not null

)

select * from final
