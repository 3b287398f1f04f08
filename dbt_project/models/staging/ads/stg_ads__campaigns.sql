with

google_campaigns as (

    select * from {{ source('raw_ads', 'google_campaigns') }}

),

google_customers as (

    select * from {{ source('raw_ads', 'google_customers') }}

),

meta_campaigns as (

    select * from {{ source('raw_ads', 'meta_campaigns') }}

),

meta_accounts as (

    select * from {{ source('raw_ads', 'meta_accounts') }}

),

google_renamed as (

    select
        -- ids
        'google' as platform,
        cast(google_campaigns.customer__id as varchar) as account_id,
        cast(google_campaigns.campaign__id as varchar) as campaign_id,

        -- campaign
        google_campaigns.campaign__name as campaign_name,
        google_campaigns.campaign__status as campaign_status_raw,
        google_campaigns.campaign__advertising_channel_type as campaign_type,

        -- money
        cast(null as bigint) as daily_budget_cents,
        upper(google_customers.customer__currency_code) as currency,

        -- account
        google_customers.customer__descriptive_name as account_name,
        google_customers.customer__time_zone as account_time_zone,

        -- lineage
        google_campaigns._dlt_load_id as load_id

    from google_campaigns
    left join google_customers
        on google_campaigns.customer__id = google_customers.customer__id

),

meta_renamed as (

    select
        -- ids
        'meta' as platform,
        cast(meta_campaigns.account_id as varchar) as account_id,
        cast(meta_campaigns.id as varchar) as campaign_id,

        -- campaign
        meta_campaigns.name as campaign_name,
        meta_campaigns.status as campaign_status_raw,
        meta_campaigns.objective as campaign_type,

        -- money: Meta budgets are already in minor units
        {{ try_cast('meta_campaigns.daily_budget', 'bigint') }} as daily_budget_cents,
        upper(meta_accounts.currency) as currency,

        -- account
        meta_accounts.name as account_name,
        meta_accounts.timezone_name as account_time_zone,

        -- lineage
        meta_campaigns._dlt_load_id as load_id

    from meta_campaigns
    left join meta_accounts
        on meta_campaigns.account_id = meta_accounts.account_id

),

unioned as (

    select * from google_renamed
    union all
    select * from meta_renamed

),

final as (

    select
        platform || ':' || campaign_id as campaign_key,
        *,
        -- Google says ENABLED/REMOVED, Meta ACTIVE/DELETED: one vocabulary
        case upper(trim(campaign_status_raw))
            when 'ENABLED' then 'active'
            when 'ACTIVE' then 'active'
            when 'PAUSED' then 'paused'
            when 'REMOVED' then 'removed'
            when 'DELETED' then 'removed'
            when 'ARCHIVED' then 'archived'
        end as campaign_status
    from unioned

)

select * from final
