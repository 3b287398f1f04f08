-- One row per deal won longer ago than the settle window (var settle_window_days) with no
-- billed invoice carrying its id (metadata.hubspot_deal_id).

with

deals as (

    select * from {{ ref('stg_crm__deals') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

invoiced_deals as (

    select distinct invoices.crm_deal_id as deal_id
    from invoices
    where invoices.is_billed and invoices.crm_deal_id is not null

),

compared as (

    select
        {{ record_keys([('deal_id', 'deals.deal_id')]) }} as record_keys,
        'deal_stage' as field,
        deals.deal_status as crm_value,
        null as billing_value,
        null as scheduling_value,
        null as ads_value,
        false as is_write_safe
    from deals
    where
        deals.deal_status = 'won'
        and deals.closed_at
        < {{ reconciliation_now() }} - to_days({{ var('settle_window_days') }})
        and deals.deal_id not in (select invoiced_deals.deal_id from invoiced_deals)

),

{{ reconciliation_finding(
    rule='deal_won_no_invoice', severity='error', entity='deal', systems='crm,billing',
    owner_entity='deal', owner_fields=['deal_stage'], target_system='billing'
) }}
