-- A returned row is a target record and field the outbox would set more than once.

with

outbox as (

    select * from {{ ref('outbox_crm') }}
    union all by name
    select * from {{ ref('outbox_billing') }}

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
