-- One row per platform, campaign and day (account time zone): what the platform reports
-- (spend, clicks, impressions, conversions) beside the CRM paid leads for that day. A day
-- with CRM paid leads and no platform row appears with zero spend.

with

campaign_days as (

    select * from {{ ref('int_ads__campaign_days') }}

),

paid_leads as (

    select * from {{ ref('int_crm__paid_leads_by_campaign_day') }}

),

campaigns as (

    select * from {{ ref('stg_ads__campaigns') }}

),

joined as (

    select
        coalesce(campaign_days.campaign_day_key, paid_leads.campaign_day_key) as campaign_day_key,
        coalesce(campaign_days.campaign_key, paid_leads.campaign_key) as campaign_key,
        coalesce(campaign_days.platform, paid_leads.platform) as platform,
        coalesce(campaign_days.account_id, paid_leads.account_id) as account_id,
        coalesce(campaign_days.campaign_id, paid_leads.campaign_id) as campaign_id,
        coalesce(campaign_days.spend_date, paid_leads.lead_date) as spend_date,
        campaign_days.campaign_name,
        coalesce(campaign_days.account_time_zone, paid_leads.account_time_zone) as account_time_zone,
        coalesce(campaign_days.impressions, 0) as impressions,
        coalesce(campaign_days.clicks, 0) as clicks,
        coalesce(campaign_days.spend_cents, 0) as spend_cents,
        campaign_days.currency,
        coalesce(campaign_days.conversions, 0) as platform_conversions,
        coalesce(paid_leads.crm_leads, 0) as crm_leads,
        campaign_days.campaign_day_key is not null as is_reported_by_platform
    from campaign_days
    full outer join paid_leads on campaign_days.campaign_day_key = paid_leads.campaign_day_key

),

final as (

    select
        joined.campaign_day_key,
        joined.campaign_key,
        joined.platform,
        case joined.platform when 'google' then 'paid_search' when 'meta' then 'paid_social' end as channel,
        joined.account_id,
        joined.campaign_id,
        coalesce(joined.campaign_name, campaigns.campaign_name) as campaign_name,
        campaigns.campaign_status,
        joined.spend_date,
        cast(date_trunc('month', joined.spend_date) as date) as spend_month,
        joined.account_time_zone,
        joined.impressions,
        joined.clicks,
        joined.spend_cents,
        coalesce(joined.currency, campaigns.currency) as currency,
        joined.platform_conversions,
        joined.crm_leads,
        joined.is_reported_by_platform
    from joined
    left join campaigns on joined.campaign_key = campaigns.campaign_key

)

select * from final
