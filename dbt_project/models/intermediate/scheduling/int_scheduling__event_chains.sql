-- One row per Calendly scheduled event with the event its booking lives on now: Calendly's
-- reschedule chain (invitee -> new_invitee -> its event ...) followed to its end (the event
-- itself when it was never rescheduled).

with recursive

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

final as (

    select
        start_event_uri as event_uri,
        {{ arg_max('event_uri', 'step') }} as current_event_uri,
        max(step) as reschedule_count
    from chain
    group by start_event_uri

)

select * from final
