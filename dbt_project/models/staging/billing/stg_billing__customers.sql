{{ config(materialized='table') }}
{#- a table: phones and names are parsed once per build, not on every read -#}
{%- set raw_customers = source('raw_billing', 'customers') -%}

with

source as (

    select * from {{ raw_customers }}

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as customer_id,
        {{ tidy(metadata_column(raw_customers, var('billing_contact_metadata_key'), 'source')) }}
            as crm_contact_id,

        -- person (a B2B account may hold its company's name here)
        lower({{ tidy('source.email') }}) as email,
        source.email as email_raw,
        {{ tidy('source.name') }} as full_name,
        source.name as name_raw,
        {{ tidy(json_text('source.address', 'country')) }} as country,
        source.phone as phone_raw,

        -- money
        upper({{ tidy('source.currency') }}) as currency,
        source.balance as balance_cents,

        -- flags
        coalesce(source.delinquent, false) as is_delinquent,
        coalesce({{ optional_column(raw_customers, 'deleted', 'boolean', 'source') }}, false) as is_deleted,

        -- timestamps
        to_timestamp(source.created) as created_at,

        -- lineage
        source._dlt_load_id as load_id

    from source

),

parsed as (

    select
        *,
        {{ phone_e164('phone_raw', 'country') }} as phone_e164
    from renamed

),

final as (

    select
        *,
        -- Stripe keeps one name: the first word is the given name, the rest the family name
        split_part(full_name, ' ', 1) as first_name,
        nullif(substr(full_name, length(split_part(full_name, ' ', 1)) + 2), '') as last_name,
        {{ tidy('phone_raw') }} is not null and phone_e164 is null as is_phone_unparseable,
        coalesce({{ regexp_contains('phone_raw', "'[^0-9+().\\s/-]'") }}, false) as is_phone_free_text
    from parsed

)

select * from final
