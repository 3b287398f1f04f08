-- Google and Meta campaign days in one shape: one row per platform, campaign and day
-- (the day in the ad account's time zone, as the platforms report it).

with

google_campaign_days as (

    select * from {{ ref('stg_ads__google_campaign_days') }}

),

meta_campaign_days as (

    select * from {{ ref('stg_ads__meta_campaign_days') }}

),

unioned as (

    select
        platform,
        account_id,
        campaign_id,
        campaign_name,
        account_time_zone,
        spend_date,
        impressions,
        clicks,
        spend_cents,
        currency,
        cast(conversions as {{ type_double() }}) as conversions
    from google_campaign_days

    union all

    select
        platform,
        account_id,
        campaign_id,
        campaign_name,
        account_time_zone,
        spend_date,
        impressions,
        clicks,
        spend_cents,
        currency,
        cast(conversions as {{ type_double() }}) as conversions
    from meta_campaign_days

),

final as (

    select
        platform || ':' || campaign_id || ':' || {{ date_text('spend_date') }} as campaign_day_key,
        platform || ':' || campaign_id as campaign_key,
        platform,
        account_id,
        campaign_id,
        campaign_name,
        account_time_zone,
        spend_date,
        impressions,
        clicks,
        spend_cents,
        currency,
        conversions
    from unioned

)

select * from final
