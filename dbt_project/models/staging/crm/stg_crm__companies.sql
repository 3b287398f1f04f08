with

source as (

    select * from {{ source('raw_crm', 'companies') }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as company_id,

        -- company
        nullif(regexp_replace(trim(properties__name), '\s+', ' ', 'g'), '') as company_name,
        -- `domain` is a SQL keyword, and the contract's column name
        nullif(lower(trim(properties__domain)), '') as domain,  -- noqa: RF04
        nullif(trim(properties__industry), '') as industry,
        nullif(trim(properties__city), '') as city,
        nullif(trim(properties__country), '') as country,
        {{ to_e164('properties__phone') }} as phone_e164,
        properties__phone as phone_raw,

        -- timestamps
        coalesce(
            {{ iso_to_utc('properties__createdate') }},
            {{ iso_to_utc('created_at') }}
        ) as created_at,
        coalesce(
            {{ iso_to_utc('properties__hs_lastmodifieddate') }},
            {{ iso_to_utc('updated_at') }}
        ) as updated_at,

        -- lineage
        _dlt_load_id as load_id

    from source

)

select * from renamed
