-- One row per CRM meeting that mirrors a Calendly event (hs_meeting_external_url), with the
-- event it points at and the event that booking lives on now: Calendly's reschedule chain
-- (invitee -> new_invitee -> its event ...) followed to its end.

with recursive

meetings as (

    select * from {{ ref('stg_crm__meetings') }}

),

contact_meetings as (

    select * from {{ ref('stg_crm__contact_meetings') }}

),

events as (

    select * from {{ ref('stg_scheduling__events') }}

),

invitees as (

    select * from {{ ref('stg_scheduling__invitees') }}

),

-- every step of every chain, from the invitee of the event a chain starts at
chain (start_event_uri, invitee_uri, event_uri, new_invitee_uri, step) as (

    select
        event_uri as start_event_uri,
        invitee_uri,
        event_uri,
        new_invitee_uri,
        0 as step
    from invitees
    union all
    select
        chain.start_event_uri,
        invitees.invitee_uri,
        invitees.event_uri,
        invitees.new_invitee_uri,
        chain.step + 1 as step
    from chain
    inner join invitees on chain.new_invitee_uri = invitees.invitee_uri
    where chain.step < 50

),

chain_ends as (

    select
        start_event_uri,
        arg_max(event_uri, step) as current_event_uri
    from chain
    group by start_event_uri

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
    left join chain_ends on meetings.event_uri = chain_ends.start_event_uri
    left join events as current_events
        on coalesce(chain_ends.current_event_uri, meetings.event_uri) = current_events.event_uri
    where meetings.event_uri is not null

)

select * from final
