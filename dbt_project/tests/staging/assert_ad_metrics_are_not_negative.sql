-- A returned row is an ad campaign day with a negative spend, impression, click or
-- conversion count: a misread metric that would distort spend and conversion totals.

with

google_days as (

    select * from {{ ref('stg_ads__google_campaign_days') }}

),

meta_days as (

    select * from {{ ref('stg_ads__meta_campaign_days') }}

),

campaign_days as (

    select
        platform,
        account_id,
        campaign_id,
        spend_date,
        spend_cents,
        impressions,
        clicks,
        conversions
    from google_days

    union all

    select
        platform,
        account_id,
        campaign_id,
        spend_date,
        spend_cents,
        impressions,
        clicks,
        conversions
    from meta_days

)

select * from campaign_days
where spend_cents < 0 or impressions < 0 or clicks < 0 or conversions < 0
