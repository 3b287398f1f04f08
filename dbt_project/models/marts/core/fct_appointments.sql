-- One row per appointment: a scheduling event with the CRM meeting that mirrors it (through
-- the meeting's external URL), plus CRM meetings whose event the scheduling system does not
-- hold or another meeting mirrors. Time and status are the calendar's (ownership), the CRM's
-- kept beside them.

with

events as (

    select * from {{ ref('stg_scheduling__events') }}

),

invitees as (

    select * from {{ ref('stg_scheduling__invitees') }}

),

meetings as (

    select * from {{ ref('stg_crm__meetings') }}

),

contact_meetings as (

    select * from {{ ref('stg_crm__contact_meetings') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

-- an event has one invitee; keep the newest should a second appear
event_invitees as (

    select
        event_uri,
        {{ arg_max('invitee_uri', 'created_at') }} as invitee_uri,
        {{ arg_max('is_rescheduled', 'created_at') }} as is_rescheduled,
        {{ arg_max('utm_source', 'created_at') }} as utm_source,
        {{ arg_max('utm_campaign', 'created_at') }} as utm_campaign
    from invitees
    group by event_uri

),

meeting_contacts as (

    select
        meeting_id,
        {{ arg_min('contact_id', "lpad(contact_id, 40, '0')") }} as contact_id
    from contact_meetings
    group by meeting_id

),

-- a scheduling event is mirrored by one CRM meeting (the latest updated); any other meeting
-- naming the same event stands as an appointment of its own
meetings_ranked as (

    select
        meetings.*,
        row_number() over (
            partition by meetings.event_uri
            order by meetings.updated_at desc, meetings.meeting_id desc
        ) as meeting_rank
    from meetings

),

joined as (

    select
        coalesce(events.event_uri, 'crm-meeting:' || meetings_ranked.meeting_id) as appointment_id,
        events.event_uri,
        meetings_ranked.meeting_id,
        event_invitees.invitee_uri,
        meeting_contacts.contact_id,
        events.event_name,
        meetings_ranked.meeting_title,
        events.appointment_status as scheduling_appointment_status,
        meetings_ranked.appointment_status as crm_appointment_status,
        events.start_at as scheduling_start_at,
        events.end_at as scheduling_end_at,
        meetings_ranked.start_at as crm_start_at,
        meetings_ranked.end_at as crm_end_at,
        coalesce(event_invitees.is_rescheduled, false) as is_rescheduled,
        events.cancel_reason,
        events.canceler_type,
        events.host_email,
        meetings_ranked.owner_id,
        event_invitees.utm_source,
        event_invitees.utm_campaign,
        events.event_uri is not null as has_scheduling_event,
        meetings_ranked.meeting_id is not null as has_crm_meeting,
        coalesce(events.created_at, meetings_ranked.created_at) as created_at
    from events
    left join event_invitees on events.event_uri = event_invitees.event_uri
    full outer join meetings_ranked
        on
            events.event_uri = meetings_ranked.event_uri
            and meetings_ranked.meeting_rank = 1
    left join meeting_contacts on meetings_ranked.meeting_id = meeting_contacts.meeting_id

),

final as (

    select
        joined.appointment_id,
        coalesce(invitee_resolved.customer_id, contact_resolved.customer_id) as customer_id,
        joined.event_uri,
        joined.meeting_id,
        joined.invitee_uri,
        joined.contact_id,
        coalesce(joined.event_name, joined.meeting_title) as appointment_name,
        coalesce(joined.scheduling_appointment_status, joined.crm_appointment_status)
            as appointment_status,
        joined.scheduling_appointment_status,
        joined.crm_appointment_status,
        coalesce(joined.scheduling_start_at, joined.crm_start_at) as start_at,
        coalesce(joined.scheduling_end_at, joined.crm_end_at) as end_at,
        joined.crm_start_at,
        joined.crm_end_at,
        coalesce(joined.scheduling_appointment_status, joined.crm_appointment_status) = 'canceled'
            as is_canceled,
        joined.is_rescheduled,
        joined.cancel_reason,
        joined.canceler_type,
        joined.host_email,
        joined.owner_id,
        joined.utm_source,
        joined.utm_campaign,
        joined.has_scheduling_event,
        joined.has_crm_meeting,
        joined.created_at,
        cast(coalesce(joined.scheduling_start_at, joined.crm_start_at) as date) as start_date
    from joined
    left join resolved as invitee_resolved
        on
            invitee_resolved.record_system = 'scheduling'
            and joined.invitee_uri = invitee_resolved.record_id
    left join resolved as contact_resolved
        on
            contact_resolved.record_system = 'crm'
            and joined.contact_id = contact_resolved.record_id

)

select * from final
