-- A returned row is a customer whose anchor is wrong: not exactly one anchor record, or an
-- anchor that is not its smallest CRM contact id although it has CRM contacts. customer_id
-- stability rests on this anchor.

with

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

customers as (

    select
        customer_id,
        count(*) filter (where is_anchor) as anchor_count,
        min(record_id) filter (where is_anchor and record_system = 'crm') as anchor_contact_id,
        {{ arg_min('record_id', "lpad(record_id, 40, '0')", where="record_system = 'crm'") }}
            as smallest_contact_id
    from resolved
    group by customer_id

)

select * from customers
where
    anchor_count != 1
    or anchor_contact_id is distinct from smallest_contact_id
