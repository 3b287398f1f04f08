-- One row per deal pipeline and stage (every stage the CRM defines, and any stage a deal
-- names that the CRM no longer defines): deal counts and pipeline value, weighted by the
-- stage's probability.

with

deal_stages as (

    select * from {{ ref('stg_crm__deal_stages') }}

),

deals as (

    select * from {{ ref('fct_deals') }}

),

stage_totals as (

    select
        deal_stage_key,
        {{ some_value('pipeline_id') }} as pipeline_id,
        {{ some_value('stage_id') }} as stage_id,
        count(*) as deal_count,
        count(*) filter (where customer_id is not null) as deal_with_customer_count,
        coalesce(sum(amount_cents), 0) as amount_cents,
        coalesce(sum(weighted_amount_cents), 0) as weighted_amount_cents,
        coalesce(sum(billed_cents), 0) as billed_cents,
        coalesce(sum(paid_cents), 0) as paid_cents,
        min(created_at) as oldest_deal_created_at,
        max(updated_at) as last_deal_updated_at
    from deals
    where deal_stage_key is not null
    group by deal_stage_key

),

final as (

    select
        coalesce(deal_stages.deal_stage_key, stage_totals.deal_stage_key) as deal_stage_key,
        coalesce(deal_stages.pipeline_id, stage_totals.pipeline_id) as pipeline_id,
        deal_stages.pipeline_label,
        coalesce(deal_stages.stage_id, stage_totals.stage_id) as stage_id,
        deal_stages.stage_label,
        deal_stages.display_order as stage_display_order,
        coalesce(deal_stages.deal_status, 'unknown') as deal_status,
        coalesce(deal_stages.is_closed, false) as is_closed,
        deal_stages.probability,
        deal_stages.deal_stage_key is not null as is_defined_stage,
        coalesce(stage_totals.deal_count, 0) as deal_count,
        coalesce(stage_totals.deal_with_customer_count, 0) as deal_with_customer_count,
        coalesce(stage_totals.amount_cents, 0) as amount_cents,
        coalesce(stage_totals.weighted_amount_cents, 0) as weighted_amount_cents,
        case
            when coalesce(stage_totals.deal_count, 0) > 0
                then cast(round(stage_totals.amount_cents / stage_totals.deal_count) as bigint)
        end as average_amount_cents,
        coalesce(stage_totals.billed_cents, 0) as billed_cents,
        coalesce(stage_totals.paid_cents, 0) as paid_cents,
        '{{ var("reporting_currency", "USD") }}' as currency,
        stage_totals.oldest_deal_created_at,
        stage_totals.last_deal_updated_at
    from deal_stages
    full outer join stage_totals on deal_stages.deal_stage_key = stage_totals.deal_stage_key

)

select * from final
