-- One row per extra CRM contact of a resolved customer: the customer's earliest contact
-- (contact_id) and each later one (duplicate_contact_id).

with

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

ranked as (

    select
        resolved.customer_id,
        contacts.contact_id,
        contacts.email,
        row_number() over (
            partition by resolved.customer_id
            order by
                contacts.created_at,
                {{ try_cast('contacts.contact_id', 'big_integer') }},
                contacts.contact_id
        ) as contact_rank
    from resolved
    inner join contacts on resolved.record_id = contacts.contact_id
    where resolved.record_system = 'crm'

),

compared as (

    select
        {{ record_keys([
            ('contact_id', 'originals.contact_id'),
            ('duplicate_contact_id', 'duplicates.contact_id'),
        ]) }} as record_keys,
        'contact' as field,
        concat_ws(' | ', originals.email, duplicates.email) as crm_value,
        null as billing_value,
        null as scheduling_value,
        null as ads_value,
        false as is_write_safe
    from ranked as duplicates
    inner join ranked as originals
        on duplicates.customer_id = originals.customer_id and originals.contact_rank = 1
    where duplicates.contact_rank > 1

),

{{ reconciliation_finding(
    rule='crm_duplicate', severity='warn', entity='contact', systems='crm'
) }}
