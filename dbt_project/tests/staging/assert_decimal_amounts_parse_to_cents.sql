-- A returned row is a money amount the source sent as decimal text (HubSpot deal
-- `amount`, Meta `spend`) that reads as a finite number but did not convert to cents (too
-- large for bigint cents, or a form the conversion mishandles): a real amount would silently
-- count as missing. Text that is no finite number (NaN, Infinity, words) is not this test's:
-- staging flags it and rule malformed_value reports it. It warns: one value never stops the
-- night.
{{ config(severity='warn') }}

with

deals as (

    select * from {{ ref('stg_crm__deals') }}

),

meta_days as (

    select * from {{ ref('stg_ads__meta_campaign_days') }}

),

unparsed as (

    select
        'stg_crm__deals' as model_name,
        deal_id as record_key,
        amount_raw
    from deals
    where {{ finite_number('amount_raw') }} is not null and amount_cents is null

    union all

    select
        'stg_ads__meta_campaign_days' as model_name,
        account_id || ':' || campaign_id || ':' || spend_date as record_key,
        spend_raw as amount_raw
    from meta_days
    where {{ finite_number('spend_raw') }} is not null and spend_cents is null

)

select * from unparsed
