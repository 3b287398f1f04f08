-- A returned row is a staged money amount whose currency is missing or is not an
-- upper-case three-letter ISO code: cents without a currency cannot be summed or
-- compared across systems.

with

deals as (

    select * from {{ ref('stg_crm__deals') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

invoice_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

charges as (

    select * from {{ ref('stg_billing__charges') }}

),

payment_intents as (

    select * from {{ ref('stg_billing__payment_intents') }}

),

subscriptions as (

    select * from {{ ref('stg_billing__subscriptions') }}

),

google_days as (

    select * from {{ ref('stg_ads__google_campaign_days') }}

),

meta_days as (

    select * from {{ ref('stg_ads__meta_campaign_days') }}

),

amounts as (

    select
        'stg_crm__deals' as model_name,
        deal_id as record_key,
        currency
    from deals
    where amount_cents is not null

    union all

    select
        'stg_billing__invoices' as model_name,
        invoice_id as record_key,
        currency
    from invoices

    union all

    select
        'stg_billing__invoice_lines' as model_name,
        invoice_line_id as record_key,
        currency
    from invoice_lines

    union all

    select
        'stg_billing__charges' as model_name,
        charge_id as record_key,
        currency
    from charges

    union all

    select
        'stg_billing__payment_intents' as model_name,
        payment_intent_id as record_key,
        currency
    from payment_intents

    union all

    select
        'stg_billing__subscriptions' as model_name,
        subscription_id as record_key,
        currency
    from subscriptions

    union all

    select
        'stg_ads__google_campaign_days' as model_name,
        account_id || ':' || campaign_id || ':' || spend_date as record_key,
        currency
    from google_days

    union all

    select
        'stg_ads__meta_campaign_days' as model_name,
        account_id || ':' || campaign_id || ':' || spend_date as record_key,
        currency
    from meta_days

)

select * from amounts
where currency is null or not {{ regexp_whole('currency', "'[A-Z]{3}'") }}
