with

source as (

    select * from {{ source('raw_ads', 'google_campaign_metrics') }}

),

customers as (

    select * from {{ source('raw_ads', 'google_customers') }}

),

renamed as (

    select
        -- ids
        'google' as platform,
        cast(source.customer__id as varchar) as account_id,
        cast(source.campaign__id as varchar) as campaign_id,
        'google:' || source.campaign__id as campaign_key,
        source.campaign__name as campaign_name,

        -- dates: the account's calendar day
        cast(source.segments__date as date) as spend_date,
        customers.customer__time_zone as account_time_zone,

        -- metrics
        cast(source.metrics__impressions as bigint) as impressions,
        cast(source.metrics__clicks as bigint) as clicks,
        cast(source.metrics__conversions as {{ type_double() }}) as conversions,
        cast(source.metrics__conversions_value as {{ type_double() }}) as conversions_value,

        -- money
        {{ cents_from_micros('source.metrics__cost_micros') }} as spend_cents,
        cast(source.metrics__cost_micros as bigint) as cost_micros,
        upper(coalesce(source.customer__currency_code, customers.customer__currency_code)) as currency,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join customers
        on source.customer__id = customers.customer__id

)

select * from renamed
