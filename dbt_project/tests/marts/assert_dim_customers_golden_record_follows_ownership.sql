-- A returned row is a customer whose golden email, name or phone is not its primary CRM
-- contact's although the CRM owns those fields (seed ownership) and the contact holds a
-- value, or whose lifecycle stage is not `customer` although billing (the owner) says they
-- paid.

with

customers as (

    select * from {{ ref('dim_customers') }}

),

contacts as (

    select * from {{ ref('int_identity__records') }}
    where record_system = 'crm'

),

ownership as (

    select * from {{ ref('ownership') }}
    where entity = 'contact'

),

crm_owned as (

    select
        coalesce(bool_or(field = 'email' and owner_system = 'crm'), false) as owns_email,
        coalesce(bool_or(field = 'first_name' and owner_system = 'crm'), false) as owns_first_name,
        coalesce(bool_or(field = 'last_name' and owner_system = 'crm'), false) as owns_last_name,
        coalesce(bool_or(field = 'phone' and owner_system = 'crm'), false) as owns_phone,
        coalesce(bool_or(field = 'lifecycle_stage' and owner_system = 'billing'), false)
            as billing_owns_lifecycle_stage
    from ownership

)

select
    customers.customer_id,
    customers.email,
    contacts.email as contact_email,
    customers.phone_e164,
    contacts.phone_e164 as contact_phone_e164,
    customers.lifecycle_stage
from customers
cross join crm_owned
left join contacts on customers.primary_contact_id = contacts.record_id
where
    (crm_owned.owns_email and contacts.email is not null and customers.email is distinct from contacts.email)
    or (
        crm_owned.owns_first_name and contacts.first_name is not null
        and customers.first_name is distinct from contacts.first_name
    )
    or (
        crm_owned.owns_last_name and contacts.last_name is not null
        and customers.last_name is distinct from contacts.last_name
    )
    or (
        crm_owned.owns_phone and contacts.phone_e164 is not null
        and customers.phone_e164 is distinct from contacts.phone_e164
    )
    or (
        crm_owned.billing_owns_lifecycle_stage and customers.is_paying_customer
        and customers.lifecycle_stage is distinct from 'customer'
    )
