{%- set raw_deals = source('raw_crm', 'deals') -%}

with

source as (

    select * from {{ raw_deals }}

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
            try_cast('lower(trim(stages.metadata__is_closed))', 'boolean'),
            finite_number('stages.metadata__probability')
        ) }} as deal_status
    from stages
    inner join pipelines
        on stages._dlt_parent_id = pipelines._dlt_id

),

-- each concept read from the property the business mapping names for it
mapped as (

    select
        cast(source.id as varchar) as deal_id,
        {{ tidy(mapped_column(raw_deals, 'deals', 'pipeline')) }} as pipeline_id,
        {{ tidy(mapped_column(raw_deals, 'deals', 'stage')) }} as stage_id,
        {{ tidy(mapped_column(raw_deals, 'deals', 'owner')) }} as owner_id,
        {{ tidy(mapped_column(raw_deals, 'deals', 'name')) }} as deal_name,
        {{ mapped_column(raw_deals, 'deals', 'amount') }} as amount_raw,
        {{ mapped_column(raw_deals, 'deals', 'currency') }} as currency_raw,
        {{ mapped_column(raw_deals, 'deals', 'close_date') }} as closedate_raw,
        {{ tidy(mapped_column(raw_deals, 'deals', 'invoice_reference')) }} as invoice_reference,
        source.properties__createdate as createdate_raw,
        source.properties__hs_lastmodifieddate as lastmodifieddate_raw,
        source.created_at as object_created_raw,
        source.updated_at as object_updated_raw,
        source._dlt_load_id
    from source

),

renamed as (

    select
        -- ids
        mapped.deal_id,
        mapped.pipeline_id,
        mapped.stage_id,
        mapped.owner_id,
        -- an invoice number or id the deal names (var crm_deal_properties.invoice_reference)
        mapped.invoice_reference,

        -- deal
        mapped.deal_name,
        stage_outcomes.deal_status,

        -- money
        {{ cents_from_decimal('mapped.amount_raw') }} as amount_cents,
        mapped.amount_raw,
        upper({{ tidy('mapped.currency_raw') }}) as currency,

        -- timestamps
        {{ crm_datetime('mapped.closedate_raw') }} as closed_at,
        mapped.closedate_raw,
        coalesce(
            {{ iso_to_utc('mapped.createdate_raw') }},
            {{ iso_to_utc('mapped.object_created_raw') }}
        ) as created_at,
        coalesce(
            {{ iso_to_utc('mapped.lastmodifieddate_raw') }},
            {{ iso_to_utc('mapped.object_updated_raw') }}
        ) as updated_at,

        -- lineage
        mapped._dlt_load_id as load_id

    from mapped
    left join stage_outcomes
        on
            mapped.pipeline_id = stage_outcomes.pipeline_id
            and mapped.stage_id = stage_outcomes.stage_id

),

final as (

    select
        *,
        pipeline_id || ':' || stage_id as deal_stage_key,
        {{ tidy('amount_raw') }} is not null and amount_cents is null as is_amount_unparseable,
        {{ tidy('closedate_raw') }} is not null and closed_at is null as is_close_date_unparseable
    from renamed

)

select * from final
