-- One row per linked CRM contact and billing customer whose names disagree: `conflict` when
-- both hold a name and they are not the same name, `missing` when one side holds none. Two
-- names are the same (equivalent: no finding) when they differ only by case, accents, spacing
-- or a nickname (the `nicknames` seed) of the given name. A billing customer billed under a
-- company's name (a legal suffix, or the name of the contact's company or of the mailbox's
-- domain) holds no person's name to compare.

with

links as (

    select * from {{ ref('link_crm_contacts_billing_customers') }}

),

records as (

    select * from {{ ref('int_identity__records') }}

),

crm_records as (

    select * from records
    where record_system = 'crm'

),

billing_records as (

    select * from records
    where record_system = 'billing'

),

names as (

    select
        links.contact_id,
        links.customer_id,
        links.is_write_safe,
        nullif(concat_ws(' ', crm_records.first_name, crm_records.last_name), '') as crm_name,
        nullif(concat_ws(' ', billing_records.first_name, billing_records.last_name), '') as billing_name,
        {{ folded("concat_ws(' ', crm_records.first_name, crm_records.last_name)") }} as crm_folded,
        {{ folded("concat_ws(' ', billing_records.first_name, billing_records.last_name)") }}
            as billing_folded,
        crm_records.first_name_groups as crm_first_groups,
        billing_records.first_name_groups as billing_first_groups,
        crm_records.last_name_key as crm_last_key,
        billing_records.last_name_key as billing_last_key,
        billing_records.is_company_name
        or {{ company_key("concat_ws(' ', billing_records.first_name, billing_records.last_name)") }}
        = crm_records.company_key as is_billing_name_a_company
    from links
    inner join crm_records on links.contact_id = crm_records.record_id
    inner join billing_records on links.customer_id = billing_records.record_id

),

outcomes as (

    select
        *,
        case
            when crm_name is null and billing_name is null then 'equivalent'
            when coalesce(is_billing_name_a_company, false) then 'not_comparable'
            when crm_name is null or billing_name is null then 'missing'
            when crm_folded = billing_folded then 'equivalent'
            when
                crm_last_key = billing_last_key
                and {{ lists_overlap('crm_first_groups', 'billing_first_groups') }}
                then 'equivalent'
            when
                regexp_replace(crm_folded, '[^a-z]', '', 'g')
                = regexp_replace(billing_folded, '[^a-z]', '', 'g')
                then 'equivalent'
            else 'conflict'
        end as outcome
    from names

),

compared as (

    select
        {{ record_keys([('contact_id', 'contact_id'), ('customer_id', 'customer_id')]) }} as record_keys,
        'name' as field,
        crm_name as crm_value,
        billing_name as billing_value,
        null as scheduling_value,
        null as ads_value,
        is_write_safe,
        outcome
    from outcomes
    where outcome in ('missing', 'conflict')

),

{{ reconciliation_finding(
    rule='name_mismatch', severity='warn', entity='contact', systems='crm,billing',
    owner_entity='contact', owner_fields=['first_name', 'last_name'], target_system='billing',
    outcome='compared.outcome'
) }}
