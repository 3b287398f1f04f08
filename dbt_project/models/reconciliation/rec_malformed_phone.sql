-- One row per CRM contact whose phone is free text: it does not parse to E.164, or it carries
-- more than a number (words, an extension).

with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

compared as (

    select
        {{ record_keys([('contact_id', 'contact_id')]) }} as record_keys,
        'phone' as field,
        phone_raw as crm_value,
        null as billing_value,
        null as scheduling_value,
        null as ads_value,
        case
            when is_phone_unparseable then 'no phone number'
            else 'more than a number (words, an extension)'
        end as reason,
        false as is_write_safe
    from contacts
    where
        nullif(trim(phone_raw), '') is not null
        and (
            is_phone_unparseable
            or not {{ regexp_whole('trim(phone_raw)', "'[0-9+().\\s-]+'") }}
        )

),

{{ reconciliation_finding(
    rule='malformed_phone', severity='warn', entity='contact', systems='crm',
    owner_entity='contact', owner_fields=['phone'], outcome="'malformed'", has_reason=true
) }}
