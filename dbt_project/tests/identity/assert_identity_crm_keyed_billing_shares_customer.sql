-- A returned row is a billing customer whose metadata names an existing CRM contact but which
-- resolved to a different customer than that contact: the integration's key was ignored.

with

records as (

    select * from {{ ref('int_identity__records') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

)

select
    billing.record_id as billing_customer_id,
    billing.crm_contact_id,
    billing_resolved.customer_id as billing_customer,
    crm_resolved.customer_id as contact_customer
from records as billing
inner join resolved as billing_resolved on billing.record_key = billing_resolved.record_key
inner join resolved as crm_resolved
    on
        crm_resolved.record_system = 'crm'
        and billing.crm_contact_id = crm_resolved.record_id
where
    billing.record_system = 'billing'
    and billing_resolved.customer_id != crm_resolved.customer_id
