-- One row per acquisition channel: customers acquired, lifetime value (collected, net of
-- refunds) and acquisition cost (ad spend on the channel per lead and per paying customer).

with

customers as (

    select * from {{ ref('dim_customers') }}

),

ad_spend as (

    select * from {{ ref('fct_ad_spend_daily') }}

),

customer_totals as (

    select
        acquisition_channel as channel,
        count(*) as customer_count,
        count(*) filter (where lead_created_at is not null) as lead_count,
        count(*) filter (where is_paying_customer) as paying_customer_count,
        sum(billed_cents) as billed_cents,
        sum(collected_cents) as collected_cents,
        sum(won_amount_cents) as won_amount_cents,
        avg({{ days_between('lead_created_at', 'customer_since') }}) filter (
            where is_paying_customer and lead_created_at is not null
        ) as average_days_to_customer
    from customers
    group by acquisition_channel

),

spend_totals as (

    select
        channel,
        sum(spend_cents) as spend_cents,
        sum(clicks) as clicks,
        sum(impressions) as impressions
    from ad_spend
    group by channel

),

final as (

    select
        coalesce(customer_totals.channel, spend_totals.channel) as channel,
        coalesce(customer_totals.customer_count, 0) as customer_count,
        coalesce(customer_totals.lead_count, 0) as lead_count,
        coalesce(customer_totals.paying_customer_count, 0) as paying_customer_count,
        cast(coalesce(customer_totals.billed_cents, 0) as bigint) as billed_cents,
        cast(coalesce(customer_totals.collected_cents, 0) as bigint) as collected_cents,
        cast(coalesce(customer_totals.won_amount_cents, 0) as bigint) as won_amount_cents,
        cast(coalesce(spend_totals.spend_cents, 0) as bigint) as ad_spend_cents,
        coalesce(spend_totals.clicks, 0) as ad_clicks,
        case
            when customer_totals.paying_customer_count > 0
                then
                    cast(
                        round(
                            customer_totals.collected_cents / customer_totals.paying_customer_count
                        ) as bigint
                    )
        end as lifetime_value_cents,
        case
            when customer_totals.lead_count > 0
                then cast(round(coalesce(spend_totals.spend_cents, 0) / customer_totals.lead_count) as bigint)
        end as cost_per_lead_cents,
        case
            when customer_totals.paying_customer_count > 0
                then cast(
                    round(
                        coalesce(spend_totals.spend_cents, 0) / customer_totals.paying_customer_count
                    ) as bigint
                )
        end as acquisition_cost_cents,
        case
            when coalesce(spend_totals.spend_cents, 0) > 0
                then round(coalesce(customer_totals.collected_cents, 0) / spend_totals.spend_cents, 4)
        end as return_on_ad_spend,
        round(customer_totals.average_days_to_customer, 1) as average_days_to_customer,
        '{{ var("reporting_currency", "USD") }}' as currency
    from customer_totals
    full outer join spend_totals on customer_totals.channel = spend_totals.channel

)

select * from final
