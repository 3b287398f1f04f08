-- One row per CRM contact whose free-text trial_start_date is not an ISO date (e.g.
-- MM/DD/YYYY, ambiguous or not); the staging parse, where one exists, is the CRM value's meaning.

with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

compared as (

    select
        {{ record_keys([('contact_id', 'contact_id'), ('field', "'trial_start_date'")]) }} as record_keys,
        'trial_start_date' as field,
        trial_start_date_raw as crm_value,
        null as billing_value,
        null as scheduling_value,
        null as ads_value,
        false as is_write_safe
    from contacts
    where
        nullif(trim(trial_start_date_raw), '') is not null
        and (
            not regexp_full_match(trim(trial_start_date_raw), '\d{4}-\d{2}-\d{2}')
            or try_cast(trim(trial_start_date_raw) as date) is null
        )

),

{{ reconciliation_finding(
    rule='malformed_date', severity='warn', entity='contact', systems='crm',
    owner_entity='contact', owner_fields=['trial_start_date']
) }}
