-- A returned row is a target record and field the outbox would set more than once.

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

)

select
    target_system,
    object_type,
    record_id,
    field,
    count(*) as write_count
from outbox
group by target_system, object_type, record_id, field
having count(*) > 1
