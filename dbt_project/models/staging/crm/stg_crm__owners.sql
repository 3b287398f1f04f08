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
        {{ iso_to_utc('created_at') }} as created_at,
        {{ iso_to_utc('updated_at') }} as updated_at,

        -- lineage
        _dlt_load_id as load_id

    from source

)

select * from renamed
