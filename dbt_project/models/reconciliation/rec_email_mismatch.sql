-- One row per linked CRM contact and billing customer whose emails differ after normalization
-- (trimmed, lower-cased).

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

compared as (

    select
        {{ record_keys([('contact_id', 'links.contact_id'), ('customer_id', 'links.customer_id')]) }}
            as record_keys,
        'email' as field,
        lower(trim(contacts.email)) as crm_value,
        lower(trim(customers.email)) as billing_value,
        null as scheduling_value,
        null as ads_value,
        links.is_write_safe
    from links
    inner join contacts on links.contact_id = contacts.contact_id
    inner join customers on links.customer_id = customers.customer_id
    where lower(trim(contacts.email)) is distinct from lower(trim(customers.email))

),

{{ reconciliation_finding(
    rule='email_mismatch', severity='warn', entity='contact', systems='crm,billing',
    owner_entity='contact', owner_fields=['email'], target_system='billing'
) }}
