-- CRM paid leads per platform, campaign and day: contacts whose analytics source is paid
-- search from google or paid social from facebook (or that carry the platform's click id),
-- attributed to a campaign through their utm campaign (var ad_attribution: the campaign's id,
-- or its name compared case- and space-insensitively), counted on their creation day in the
-- ad account's time zone. A duplicate CRM contact (not the anchor of its customer) is never a
-- second lead.

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
        trim(contacts.utm_campaign) as utm_campaign,
        case
            when
                (upper(contacts.analytics_source) = 'PAID_SEARCH' or contacts.google_click_id is not null)
                and lower(contacts.utm_source) in ('google', 'adwords', 'google_ads', 'googleads')
                then 'google'
            when
                (upper(contacts.analytics_source) = 'PAID_SOCIAL' or contacts.facebook_click_id is not null)
                and lower(contacts.utm_source) in ('facebook', 'fb', 'instagram', 'ig', 'meta')
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
        {% if var('ad_attribution') == 'campaign_name' -%}
            campaigns.campaign_id,
        {%- else -%}
            paid_contacts.utm_campaign as campaign_id,
        {%- endif %}
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
            {% if var('ad_attribution') == 'campaign_name' -%}
                and lower(regexp_replace(trim(campaigns.campaign_name), '\s+', ' ', 'g'))
                = lower(regexp_replace(paid_contacts.utm_campaign, '\s+', ' ', 'g'))
            {%- else -%}
                and paid_contacts.utm_campaign = campaigns.campaign_id
            {%- endif %}
    where
        paid_contacts.platform is not null
        -- by name, a utm campaign that names no campaign is attributed to none
        and {{ 'campaigns.campaign_id is not null' if var('ad_attribution') == 'campaign_name' else 'true' }}

),

final as (

    select
        platform || ':' || campaign_id || ':' || {{ date_text('lead_date') }} as campaign_day_key,
        platform || ':' || campaign_id as campaign_key,
        platform,
        campaign_id,
        lead_date,
        {{ some_value('account_id') }} as account_id,
        {{ some_value('account_time_zone') }} as account_time_zone,
        count(*) as crm_leads,
        string_agg(contact_id, ',' order by contact_id) as contact_ids
    from attributed
    group by platform, campaign_id, lead_date

)

select * from final
