-- A returned row is an outbox write the ownership contract does not allow: the finding's
-- ownership row(s) do not name the outbox's target system as a receiver, or one of them forbids
-- writing it (conflict_policy `never`).

with

outbox as (

    select
        target_system,
        object_type,
        record_id,
        field,
        desired_value,
        finding_id,
        outcome,
        customer_id,
        confidence
    from {{ ref('outbox_crm') }}
    union all
    select
        target_system,
        object_type,
        record_id,
        field,
        desired_value,
        finding_id,
        outcome,
        customer_id,
        confidence
    from {{ ref('outbox_billing') }}

),

findings as (

    select * from {{ ref('findings') }}

),

ownership as (

    select * from {{ ref('ownership') }}

),

governing as (

    select
        outbox.target_system,
        outbox.record_id,
        outbox.field,
        outbox.finding_id,
        ownership.entity as ownership_entity,
        {{ is_receiver('ownership.receiver_systems', "outbox.target_system") }} as is_receiver,
        ownership.conflict_policy
    from outbox
    left join findings on outbox.finding_id = findings.finding_id
    left join ownership
        on
            findings.entity = ownership.entity
            and (
                findings.field = ownership.field
                or (findings.field = 'name' and ownership.field in ('first_name', 'last_name'))
                -- an account without CRM meetings keeps the appointment in a contact property
                or (findings.field = 'next_appointment' and ownership.field = 'start_time')
            )

)

select *
from governing
where ownership_entity is null or not is_receiver or conflict_policy not in ('auto', 'review')
