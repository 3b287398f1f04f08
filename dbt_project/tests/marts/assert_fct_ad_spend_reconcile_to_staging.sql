-- A returned row is a platform whose spend, clicks or impressions in fct_ad_spend_daily
-- differ from its campaign-day staging model.

with

facts as (

    select
        platform,
        sum(spend_cents) as spend_cents,
        sum(clicks) as clicks,
        sum(impressions) as impressions
    from {{ ref('fct_ad_spend_daily') }}
    group by platform

),

staged as (

    select
        'google' as platform,
        sum(spend_cents) as spend_cents,
        sum(clicks) as clicks,
        sum(impressions) as impressions
    from {{ ref('stg_ads__google_campaign_days') }}

    union all

    select
        'meta' as platform,
        sum(spend_cents) as spend_cents,
        sum(clicks) as clicks,
        sum(impressions) as impressions
    from {{ ref('stg_ads__meta_campaign_days') }}

)

select
    staged.platform,
    facts.spend_cents as fact_spend_cents,
    staged.spend_cents as staged_spend_cents
from staged
left join facts on staged.platform = facts.platform
where
    coalesce(facts.spend_cents, 0) != coalesce(staged.spend_cents, 0)
    or coalesce(facts.clicks, 0) != coalesce(staged.clicks, 0)
    or coalesce(facts.impressions, 0) != coalesce(staged.impressions, 0)
