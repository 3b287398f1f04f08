-- CRM paid leads per platform, campaign and day: contacts whose analytics source is paid
-- search from google or paid social from facebook, attributed to the campaign id in the
-- utm campaign, counted on their creation day in the ad account's time zone. A duplicate
-- CRM contact (not the anchor of its customer) is never a second lead.

with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

campaigns as (

    select * from {{ ref('stg_ads__campaigns') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}
    where record_system = 'crm'

),

paid_contacts as (

    select
        contacts.contact_id,
        contacts.created_at,
        trim(contacts.utm_campaign) as campaign_id,
        case
            when upper(contacts.analytics_source) = 'PAID_SEARCH' and lower(contacts.utm_source) = 'google'
                then 'google'
            when upper(contacts.analytics_source) = 'PAID_SOCIAL' and lower(contacts.utm_source) = 'facebook'
                then 'meta'
        end as platform
    from contacts
    left join resolved on contacts.contact_id = resolved.record_id
    where
        nullif(trim(contacts.utm_campaign), '') is not null
        and not coalesce(resolved.is_crm_duplicate, false)

),

attributed as (

    select
        paid_contacts.platform,
        paid_contacts.campaign_id,
        paid_contacts.contact_id,
        campaigns.account_id,
        campaigns.account_time_zone,
        cast(
            timezone(coalesce(campaigns.account_time_zone, 'UTC'), paid_contacts.created_at) as date
        ) as lead_date
    from paid_contacts
    left join campaigns
        on
            paid_contacts.platform = campaigns.platform
            and paid_contacts.campaign_id = campaigns.campaign_id
    where paid_contacts.platform is not null

),

final as (

    select
        platform || ':' || campaign_id || ':' || strftime(lead_date, '%Y-%m-%d') as campaign_day_key,
        platform || ':' || campaign_id as campaign_key,
        platform,
        campaign_id,
        lead_date,
        any_value(account_id) as account_id,
        any_value(account_time_zone) as account_time_zone,
        count(*) as crm_leads,
        string_agg(contact_id, ',' order by contact_id) as contact_ids
    from attributed
    group by platform, campaign_id, lead_date

)

select * from final
