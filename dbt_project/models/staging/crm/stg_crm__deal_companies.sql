with

source as (

    select * from {{ source('raw_crm', 'deals_to_companies') }}

),

renamed as (

    select
        -- ids
        cast(deal_id as varchar) as deal_id,
        cast(company_id as varchar) as company_id,

        -- lineage
        _dlt_load_id as load_id

    from source
    -- a pair marked deleted only clears its from-object's earlier pairs
    where not coalesce(_deleted, false)

)

select * from renamed
