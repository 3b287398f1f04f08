{%- set raw_customers = source('raw_billing', 'customers') -%}

with

source as (

    select * from {{ raw_customers }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as customer_id,
        nullif(trim({{ optional_column(raw_customers, 'metadata__hubspot_contact_id') }}), '')
            as crm_contact_id,

        -- person
        nullif(lower(trim(email)), '') as email,
        email as email_raw,
        nullif(regexp_replace(trim(name), '\s+', ' ', 'g'), '') as full_name,
        name as name_raw,
        {{ to_e164('phone') }} as phone_e164,
        phone as phone_raw,

        -- money
        upper(nullif(trim(currency), '')) as currency,
        balance as balance_cents,

        -- flags
        coalesce(delinquent, false) as is_delinquent,
        coalesce(deleted, false) as is_deleted,

        -- timestamps
        to_timestamp(created) as created_at,

        -- lineage
        _dlt_load_id as load_id

    from source

),

final as (

    select
        *,
        -- Stripe keeps one name: the first word is the given name, the rest the family name
        split_part(full_name, ' ', 1) as first_name,
        nullif(substr(full_name, length(split_part(full_name, ' ', 1)) + 2), '') as last_name,
        nullif(trim(phone_raw), '') is not null and phone_e164 is null as is_phone_unparseable,
        coalesce(regexp_matches(phone_raw, '[^0-9+().\s-]'), false) as is_phone_free_text
    from renamed

)

select * from final
