with

source as (

    select * from {{ source('raw_crm', 'contacts') }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as contact_id,

        -- identity
        nullif(lower(trim(properties__email)), '') as email,
        nullif(trim(properties__firstname), '') as first_name,
        nullif(trim(properties__lastname), '') as last_name,
        properties__phone as phone_raw,

        -- timestamps
        cast(properties__createdate as timestamptz) as created_at,
        cast(properties__lastmodifieddate as timestamptz) as updated_at,

        -- lineage
        _dlt_load_id as load_id

    from source

)

select * from renamed
