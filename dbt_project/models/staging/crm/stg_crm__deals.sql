with

source as (

    select * from {{ source('raw_crm', 'deals') }}

),

pipelines as (

    select * from {{ source('raw_crm', 'pipelines') }}

),

stages as (

    select * from {{ source('raw_crm', 'pipelines__stages') }}

),

-- each stage's outcome from its metadata (isClosed, probability), as in stg_crm__deal_stages
stage_outcomes as (

    select
        cast(pipelines.id as varchar) as pipeline_id,
        cast(stages.id as varchar) as stage_id,
        {{ deal_status_from_stage(
            'try_cast(lower(trim(stages.metadata__is_closed)) as boolean)',
            'try_cast(stages.metadata__probability as double)'
        ) }} as deal_status
    from stages
    inner join pipelines
        on stages._dlt_parent_id = pipelines._dlt_id

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as deal_id,
        nullif(trim(source.properties__pipeline), '') as pipeline_id,
        nullif(trim(source.properties__dealstage), '') as stage_id,
        nullif(trim(source.properties__hubspot_owner_id), '') as owner_id,

        -- deal
        nullif(trim(source.properties__dealname), '') as deal_name,
        stage_outcomes.deal_status,

        -- money
        {{ cents_from_decimal('source.properties__amount') }} as amount_cents,
        source.properties__amount as amount_raw,
        upper(nullif(trim(source.properties__deal_currency_code), '')) as currency,

        -- timestamps
        {{ iso_to_utc('source.properties__closedate') }} as closed_at,
        coalesce(
            {{ iso_to_utc('source.properties__createdate') }},
            {{ iso_to_utc('source.created_at') }}
        ) as created_at,
        coalesce(
            {{ iso_to_utc('source.properties__hs_lastmodifieddate') }},
            {{ iso_to_utc('source.updated_at') }}
        ) as updated_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join stage_outcomes
        on
            trim(source.properties__pipeline) = stage_outcomes.pipeline_id
            and trim(source.properties__dealstage) = stage_outcomes.stage_id

),

final as (

    select
        *,
        pipeline_id || ':' || stage_id as deal_stage_key
    from renamed

)

select * from final
