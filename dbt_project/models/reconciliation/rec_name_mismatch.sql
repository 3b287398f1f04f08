-- One row per linked CRM contact and billing customer whose full names differ after
-- normalization (case and whitespace).

with

links as (

    select * from {{ ref('link_crm_contacts_billing_customers') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

customers as (

    select * from {{ ref('stg_billing__customers') }}

),

names as (

    select
        links.contact_id,
        links.customer_id,
        links.is_write_safe,
        nullif(concat_ws(' ', trim(contacts.first_name), trim(contacts.last_name)), '') as crm_name,
        nullif(trim(customers.full_name), '') as billing_name
    from links
    inner join contacts on links.contact_id = contacts.contact_id
    inner join customers on links.customer_id = customers.customer_id

),

compared as (

    select
        {{ record_keys([('contact_id', 'contact_id'), ('customer_id', 'customer_id')]) }} as record_keys,
        'name' as field,
        crm_name as crm_value,
        billing_name as billing_value,
        null as scheduling_value,
        null as ads_value,
        is_write_safe
    from names
    where
        lower(regexp_replace(crm_name, '\s+', ' ', 'g'))
        is distinct from lower(regexp_replace(billing_name, '\s+', ' ', 'g'))

),

{{ reconciliation_finding(
    rule='name_mismatch', severity='warn', entity='contact', systems='crm,billing',
    owner_entity='contact', owner_fields=['first_name', 'last_name'], target_system='billing'
) }}
