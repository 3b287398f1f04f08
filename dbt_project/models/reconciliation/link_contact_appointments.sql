-- One row per CRM contact whose next-appointment property (var
-- crm_contact_properties.next_appointment, for accounts that log no meetings) holds the start
-- of one of the person's Calendly events: that event (the person's records resolved into one
-- customer at or above the confidence threshold), and the event its booking lives on now.
-- A value that is the start of none of the person's events is left out.

with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

invitees as (

    select * from {{ ref('stg_scheduling__invitees') }}

),

events as (

    select * from {{ ref('stg_scheduling__events') }}

),

chains as (

    select * from {{ ref('int_scheduling__event_chains') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}
    where not needs_review

),

contact_events as (

    select distinct
        contacts.contact_id,
        contacts.next_appointment_at,
        invitees.event_uri
    from contacts
    inner join resolved as crm_records
        on crm_records.record_system = 'crm' and contacts.contact_id = crm_records.record_id
    inner join resolved as invitee_records
        on
            invitee_records.record_system = 'scheduling'
            and crm_records.customer_id = invitee_records.customer_id
    inner join invitees on invitee_records.record_id = invitees.invitee_uri
    where contacts.next_appointment_at is not null

),

matched as (

    select
        contact_events.contact_id,
        contact_events.next_appointment_at,
        -- two events of one person at one instant: the one still on, else any
        {{ arg_min(
            'contact_events.event_uri', "(events.appointment_status = 'canceled', contact_events.event_uri)"
        ) }} as event_uri
    from contact_events
    inner join events
        on
            contact_events.event_uri = events.event_uri
            and contact_events.next_appointment_at = events.start_at
    group by contact_events.contact_id, contact_events.next_appointment_at

),

final as (

    select
        matched.contact_id,
        matched.event_uri,
        matched.next_appointment_at as start_at,
        events.appointment_status,
        coalesce(chains.current_event_uri, matched.event_uri) as current_event_uri,
        current_events.start_at as current_start_at,
        current_events.appointment_status as current_appointment_status
    from matched
    inner join events on matched.event_uri = events.event_uri
    left join chains on matched.event_uri = chains.event_uri
    left join events as current_events
        on coalesce(chains.current_event_uri, matched.event_uri) = current_events.event_uri

)

select * from final
