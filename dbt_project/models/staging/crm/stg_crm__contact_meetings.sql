with

source as (

    select * from {{ source('raw_crm', 'contacts_to_meetings') }}

),

renamed as (

    select
        -- ids
        cast(contact_id as varchar) as contact_id,
        cast(meeting_id as varchar) as meeting_id,

        -- lineage
        _dlt_load_id as load_id

    from source
    -- a pair marked deleted only clears its from-object's earlier pairs
    where not coalesce(_deleted, false)

)

select * from renamed
