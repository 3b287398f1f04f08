-- One row per acquisition channel, campaign and month: the full funnel, each stage counted
-- in the month its own event happened (spend on the day, leads when the CRM contact was
-- created, opportunities when the deal was created, won when it closed, billed when the
-- invoice was created, collected when the payment was made), attributed through the
-- customer's acquisition channel and campaign.

with

customers as (

    select * from {{ ref('dim_customers') }}

),

ad_spend as (

    select * from {{ ref('fct_ad_spend_daily') }}

),

deals as (

    select * from {{ ref('fct_deals') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

payments as (

    select * from {{ ref('fct_payments') }}

),

customer_attribution as (

    select
        customer_id,
        acquisition_channel as channel,
        acquisition_platform as platform,
        acquisition_campaign_id as campaign_id,
        lead_created_at,
        customer_since
    from customers

),

spend_rows as (

    select
        channel,
        platform,
        campaign_id,
        spend_month as funnel_month,
        spend_cents,
        impressions,
        clicks,
        platform_conversions,
        0 as leads,
        0 as opportunities,
        0 as opportunity_amount_cents,
        0 as won_deals,
        0 as won_amount_cents,
        0 as new_customers,
        0 as billed_cents,
        0 as collected_cents
    from ad_spend

),

lead_rows as (

    select
        channel,
        platform,
        campaign_id,
        cast(date_trunc('month', lead_created_at) as date) as funnel_month,
        0 as spend_cents,
        0 as impressions,
        0 as clicks,
        0 as platform_conversions,
        1 as leads,
        0 as opportunities,
        0 as opportunity_amount_cents,
        0 as won_deals,
        0 as won_amount_cents,
        0 as new_customers,
        0 as billed_cents,
        0 as collected_cents
    from customer_attribution
    where lead_created_at is not null

),

new_customer_rows as (

    select
        channel,
        platform,
        campaign_id,
        cast(date_trunc('month', customer_since) as date) as funnel_month,
        0 as spend_cents,
        0 as impressions,
        0 as clicks,
        0 as platform_conversions,
        0 as leads,
        0 as opportunities,
        0 as opportunity_amount_cents,
        0 as won_deals,
        0 as won_amount_cents,
        1 as new_customers,
        0 as billed_cents,
        0 as collected_cents
    from customer_attribution
    where customer_since is not null

),

opportunity_rows as (

    select
        customer_attribution.channel,
        customer_attribution.platform,
        customer_attribution.campaign_id,
        cast(date_trunc('month', deals.created_at) as date) as funnel_month,
        0 as spend_cents,
        0 as impressions,
        0 as clicks,
        0 as platform_conversions,
        0 as leads,
        1 as opportunities,
        coalesce(deals.amount_cents, 0) as opportunity_amount_cents,
        0 as won_deals,
        0 as won_amount_cents,
        0 as new_customers,
        0 as billed_cents,
        0 as collected_cents
    from deals
    left join customer_attribution on deals.customer_id = customer_attribution.customer_id

),

won_rows as (

    select
        customer_attribution.channel,
        customer_attribution.platform,
        customer_attribution.campaign_id,
        cast(date_trunc('month', deals.closed_at) as date) as funnel_month,
        0 as spend_cents,
        0 as impressions,
        0 as clicks,
        0 as platform_conversions,
        0 as leads,
        0 as opportunities,
        0 as opportunity_amount_cents,
        1 as won_deals,
        coalesce(deals.amount_cents, 0) as won_amount_cents,
        0 as new_customers,
        0 as billed_cents,
        0 as collected_cents
    from deals
    left join customer_attribution on deals.customer_id = customer_attribution.customer_id
    where deals.is_won and deals.closed_at is not null

),

billed_rows as (

    select
        customer_attribution.channel,
        customer_attribution.platform,
        customer_attribution.campaign_id,
        cast(date_trunc('month', invoices.created_at) as date) as funnel_month,
        0 as spend_cents,
        0 as impressions,
        0 as clicks,
        0 as platform_conversions,
        0 as leads,
        0 as opportunities,
        0 as opportunity_amount_cents,
        0 as won_deals,
        0 as won_amount_cents,
        0 as new_customers,
        invoices.total_cents as billed_cents,
        0 as collected_cents
    from invoices
    left join customer_attribution on invoices.customer_id = customer_attribution.customer_id
    where invoices.is_billed

),

collected_rows as (

    select
        customer_attribution.channel,
        customer_attribution.platform,
        customer_attribution.campaign_id,
        cast(date_trunc('month', payments.created_at) as date) as funnel_month,
        0 as spend_cents,
        0 as impressions,
        0 as clicks,
        0 as platform_conversions,
        0 as leads,
        0 as opportunities,
        0 as opportunity_amount_cents,
        0 as won_deals,
        0 as won_amount_cents,
        0 as new_customers,
        0 as billed_cents,
        payments.net_amount_cents as collected_cents
    from payments
    left join customer_attribution on payments.customer_id = customer_attribution.customer_id
    where payments.is_paid

),

unioned as (

    select * from spend_rows
    union all
    select * from lead_rows
    union all
    select * from new_customer_rows
    union all
    select * from opportunity_rows
    union all
    select * from won_rows
    union all
    select * from billed_rows
    union all
    select * from collected_rows

),

aggregated as (

    select
        coalesce(channel, 'unknown') as channel,
        platform,
        campaign_id,
        funnel_month,
        sum(spend_cents) as spend_cents,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(platform_conversions) as platform_conversions,
        sum(leads) as leads,
        sum(opportunities) as opportunities,
        sum(opportunity_amount_cents) as opportunity_amount_cents,
        sum(won_deals) as won_deals,
        sum(won_amount_cents) as won_amount_cents,
        sum(new_customers) as new_customers,
        sum(billed_cents) as billed_cents,
        sum(collected_cents) as collected_cents
    from unioned
    group by coalesce(channel, 'unknown'), platform, campaign_id, funnel_month

),

campaign_names as (

    select
        campaign_key,
        {{ some_value('campaign_name') }} as campaign_name
    from ad_spend
    group by campaign_key

),

final as (

    select
        aggregated.channel || '|' || coalesce(aggregated.platform || ':' || aggregated.campaign_id, '-')
        || '|' || left({{ date_text('aggregated.funnel_month') }}, 7) as funnel_key,
        aggregated.funnel_month,
        aggregated.channel,
        aggregated.platform,
        aggregated.platform || ':' || aggregated.campaign_id as campaign_key,
        aggregated.campaign_id,
        campaign_names.campaign_name,
        cast(aggregated.spend_cents as bigint) as spend_cents,
        cast(aggregated.impressions as bigint) as impressions,
        cast(aggregated.clicks as bigint) as clicks,
        cast(aggregated.platform_conversions as {{ type_double() }}) as platform_conversions,
        cast(aggregated.leads as bigint) as leads,
        cast(aggregated.opportunities as bigint) as opportunities,
        cast(aggregated.opportunity_amount_cents as bigint) as opportunity_amount_cents,
        cast(aggregated.won_deals as bigint) as won_deals,
        cast(aggregated.won_amount_cents as bigint) as won_amount_cents,
        cast(aggregated.new_customers as bigint) as new_customers,
        cast(aggregated.billed_cents as bigint) as billed_cents,
        cast(aggregated.collected_cents as bigint) as collected_cents,
        '{{ var("reporting_currency", "USD") }}' as currency
    from aggregated
    left join campaign_names
        on aggregated.platform || ':' || aggregated.campaign_id = campaign_names.campaign_key
    where aggregated.funnel_month is not null

)

select * from final
