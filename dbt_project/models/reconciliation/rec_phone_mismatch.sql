-- One row per linked CRM contact and billing customer whose phones disagree: `conflict` when
-- both hold a number and the numbers differ in E.164 (a format is no difference), `missing`
-- when one side holds none. A phone that does not parse is malformed_phone's, not compared.

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

phones as (

    select
        links.contact_id,
        links.customer_id,
        links.is_write_safe,
        contacts.phone_e164 as crm_phone,
        customers.phone_e164 as billing_phone
    from links
    inner join contacts on links.contact_id = contacts.contact_id
    inner join customers on links.customer_id = customers.customer_id
    where
        not coalesce(contacts.is_phone_unparseable, false)
        and not coalesce(customers.is_phone_unparseable, false)

),

compared as (

    select
        {{ record_keys([('contact_id', 'contact_id'), ('customer_id', 'customer_id')]) }} as record_keys,
        'phone' as field,
        crm_phone as crm_value,
        billing_phone as billing_value,
        null as scheduling_value,
        null as ads_value,
        is_write_safe,
        case when crm_phone is null or billing_phone is null then 'missing' else 'conflict' end as outcome
    from phones
    where crm_phone is distinct from billing_phone

),

{{ reconciliation_finding(
    rule='phone_mismatch', severity='warn', entity='contact', systems='crm,billing',
    owner_entity='contact', owner_fields=['phone'], target_system='billing',
    outcome='compared.outcome'
) }}
