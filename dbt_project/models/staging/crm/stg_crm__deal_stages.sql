with

pipelines as (

    select * from {{ source('raw_crm', 'pipelines') }}

),

stages as (

    select * from {{ source('raw_crm', 'pipelines__stages') }}

),

renamed as (

    select
        -- ids
        cast(pipelines.id as varchar) as pipeline_id,
        cast(stages.id as varchar) as stage_id,

        -- labels
        pipelines.label as pipeline_label,
        stages.label as stage_label,
        stages.display_order,

        -- outcome metadata
        {{ try_cast('stages.metadata__probability', 'double') }} as probability,
        {{ try_cast('lower(trim(stages.metadata__is_closed))', 'boolean') }} as is_closed,

        -- lineage
        pipelines._dlt_load_id as load_id

    from stages
    inner join pipelines
        on stages._dlt_parent_id = pipelines._dlt_id

),

final as (

    select
        pipeline_id || ':' || stage_id as deal_stage_key,
        *,
        {{ deal_status_from_stage('is_closed', 'probability') }} as deal_status
    from renamed

)

select * from final
