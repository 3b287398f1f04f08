-- One row per CRM contact and free-text date property (var crm_contact_properties
-- .free_text_dates) whose value is not an ISO date (MM/DD/YYYY, ambiguous or not, or no date
-- at all); the staging parse, where one exists, is what the CRM value means.

with

contact_dates as (

    select * from {{ ref('stg_crm__contact_dates') }}

),

compared as (

    select
        {{ record_keys([('contact_id', 'contact_id'), ('field', 'field')]) }} as record_keys,
        field,
        value_raw as crm_value,
        null as billing_value,
        null as scheduling_value,
        null as ads_value,
        case
            when is_ambiguous then 'ambiguous: day and month could be either'
            when value_date is null then 'no date'
            else 'a date not written YYYY-MM-DD'
        end as reason,
        false as is_write_safe
    from contact_dates
    where not is_iso_date

),

{{ reconciliation_finding(
    rule='malformed_date', severity='warn', entity='contact', systems='crm',
    owner_entity='contact', owner_fields=['free_text_date'], outcome="'malformed'", has_reason=true
) }}
