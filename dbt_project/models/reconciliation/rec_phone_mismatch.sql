-- One row per linked CRM contact and billing customer whose phones differ in E.164 (formatting
-- is not a difference). A phone that does not parse is malformed_phone's, not compared here.

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
        'phone' as field,
        contacts.phone_e164 as crm_value,
        customers.phone_e164 as billing_value,
        null as scheduling_value,
        null as ads_value,
        links.is_write_safe
    from links
    inner join contacts on links.contact_id = contacts.contact_id
    inner join customers on links.customer_id = customers.customer_id
    where
        contacts.phone_e164 is distinct from customers.phone_e164
        and not coalesce(contacts.is_phone_unparseable, false)
        and not (customers.phone_raw is not null and customers.phone_e164 is null)

),

{{ reconciliation_finding(
    rule='phone_mismatch', severity='warn', entity='contact', systems='crm,billing',
    owner_entity='contact', owner_fields=['phone'], target_system='billing'
) }}
