-- A returned row is a customer_id whose records and dim_customers disagree: a resolved
-- customer missing from dim_customers, or record counts that differ.

with

resolved as (

    select
        customer_id,
        count(*) filter (where record_system = 'crm') as crm_contact_count,
        count(*) filter (where record_system = 'billing') as billing_customer_count,
        count(*) filter (where record_system = 'scheduling') as invitee_count
    from {{ ref('int_identity__resolved') }}
    group by customer_id

),

customers as (

    select * from {{ ref('dim_customers') }}

)

select
    coalesce(resolved.customer_id, customers.customer_id) as customer_id,
    resolved.crm_contact_count as resolved_crm_contact_count,
    customers.crm_contact_count as dim_crm_contact_count
from resolved
full outer join customers on resolved.customer_id = customers.customer_id
where
    resolved.customer_id is null
    or customers.customer_id is null
    or resolved.crm_contact_count != customers.crm_contact_count
    or resolved.billing_customer_count != customers.billing_customer_count
    or resolved.invitee_count != customers.invitee_count
