with

source as (

    select * from {{ source('raw_ads', 'meta_campaign_insights') }}

),

actions as (

    select * from {{ source('raw_ads', 'meta_campaign_insights__actions') }}

),

accounts as (

    select * from {{ source('raw_ads', 'meta_accounts') }}

),

-- a Meta conversion is the `lead` action of the insight row
leads as (

    select
        _dlt_parent_id,
        sum({{ try_cast('value', 'double') }}) as leads
    from actions
    where action_type = 'lead'
    group by _dlt_parent_id

),

renamed as (

    select
        -- ids
        'meta' as platform,
        cast(source.account_id as varchar) as account_id,
        cast(source.campaign_id as varchar) as campaign_id,
        'meta:' || source.campaign_id as campaign_key,
        source.campaign_name,

        -- dates: the account's calendar day
        cast(source.date_start as date) as spend_date,
        accounts.timezone_name as account_time_zone,

        -- metrics
        {{ whole_number('source.impressions') }} as impressions,
        {{ whole_number('source.clicks') }} as clicks,
        source.impressions as impressions_raw,
        source.clicks as clicks_raw,
        coalesce(leads.leads, 0) as conversions,

        -- money
        {{ cents_from_decimal('source.spend') }} as spend_cents,
        source.spend as spend_raw,
        upper(coalesce(source.account_currency, accounts.currency)) as currency,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join leads
        on source._dlt_id = leads._dlt_parent_id
    left join accounts
        on source.account_id = accounts.account_id

),

final as (

    select
        *,
        -- a value is present but no finite amount, or no whole count: the typed column is null
        {{ tidy('spend_raw') }} is not null and spend_cents is null as is_spend_unparseable,
        {{ tidy('impressions_raw') }} is not null and impressions is null as is_impressions_unparseable,
        {{ tidy('clicks_raw') }} is not null and clicks is null as is_clicks_unparseable
    from renamed

)

select * from final
