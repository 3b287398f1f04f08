with

source as (

    select * from {{ source('raw_crm', 'owners') }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as owner_id,
        cast(user_id as varchar) as user_id,

        -- person
        nullif(lower(trim(email)), '') as email,
        email as email_raw,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,

        -- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        -- lineage
        _dlt_load_id as load_id

    from source

)

select * from renamed
