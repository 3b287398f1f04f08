-- A returned row is a measure whose dashboard total differs from the facts it rolls up:
-- funnel spend, opportunities, billed and collected; revenue billed and collected; customer
-- value collected; dim_customers collected.

with

measures as (

    select
        'funnel spend' as measure,
        (select sum(spend_cents) from {{ ref('mart_funnel_by_channel_month') }}) as mart_value,
        (select sum(spend_cents) from {{ ref('fct_ad_spend_daily') }}) as fact_value

    union all

    select
        'funnel opportunities' as measure,
        (select sum(opportunities) from {{ ref('mart_funnel_by_channel_month') }}) as mart_value,
        (
            select count(*) from {{ ref('fct_deals') }}
            where created_at is not null
        ) as fact_value

    union all

    select
        'funnel billed' as measure,
        (select sum(billed_cents) from {{ ref('mart_funnel_by_channel_month') }}) as mart_value,
        (
            select sum(total_cents) from {{ ref('fct_invoices') }}
            where is_billed
        ) as fact_value

    union all

    select
        'funnel collected' as measure,
        (select sum(collected_cents) from {{ ref('mart_funnel_by_channel_month') }}) as mart_value,
        (
            select sum(net_amount_cents) from {{ ref('fct_payments') }}
            where is_paid
        ) as fact_value

    union all

    select
        'revenue billed' as measure,
        (select sum(billed_cents) from {{ ref('mart_revenue_by_channel') }}) as mart_value,
        (
            select sum(total_cents) from {{ ref('fct_invoices') }}
            where is_billed
        ) as fact_value

    union all

    select
        'revenue collected' as measure,
        (select sum(collected_cents) from {{ ref('mart_revenue_by_channel') }}) as mart_value,
        (
            select sum(net_amount_cents) from {{ ref('fct_payments') }}
            where is_paid
        ) as fact_value

    union all

    select
        'customer value collected' as measure,
        (select sum(collected_cents) from {{ ref('mart_customer_value_by_channel') }}) as mart_value,
        (
            select sum(net_amount_cents) from {{ ref('fct_payments') }}
            where customer_id is not null
        ) as fact_value

    union all

    select
        'dim_customers collected' as measure,
        (select sum(collected_cents) from {{ ref('dim_customers') }}) as mart_value,
        (
            select sum(net_amount_cents) from {{ ref('fct_payments') }}
            where customer_id is not null
        ) as fact_value

    union all

    select
        'pipeline amount' as measure,
        (select sum(amount_cents) from {{ ref('mart_pipeline_by_stage') }}) as mart_value,
        (
            select sum(amount_cents) from {{ ref('fct_deals') }}
            where deal_stage_key is not null
        ) as fact_value

)

select * from measures
where coalesce(mart_value, 0) != coalesce(fact_value, 0)
