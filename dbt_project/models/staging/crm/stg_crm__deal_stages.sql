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
        {{ finite_number('stages.metadata__probability') }} as probability,
        {{ try_cast('lower(trim(stages.metadata__is_closed))', 'boolean') }} as is_closed,
        stages.metadata__probability as probability_raw,
        stages.metadata__is_closed as is_closed_raw,

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
        {{ deal_status_from_stage('is_closed', 'probability') }} as deal_status,
        {{ tidy('probability_raw') }} is not null and probability is null as is_probability_unparseable,
        {{ tidy('is_closed_raw') }} is not null and is_closed is null as is_closed_unparseable
    from renamed

)

select * from final
