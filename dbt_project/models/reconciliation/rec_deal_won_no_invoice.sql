-- One row per deal won longer ago than the settle window (var settle_window_days) that no
-- issued invoice belongs to (int_billing__deal_invoices: the invoice's deal key, the deal's
-- invoice reference, or the customer-and-date link). An invoice counts once it was finalized
-- and not voided, whether or not it was paid (uncollectible included).

with

deals as (

    select * from {{ ref('stg_crm__deals') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

deal_invoices as (

    select * from {{ ref('int_billing__deal_invoices') }}

),

invoiced_deals as (

    select distinct deal_invoices.deal_id
    from deal_invoices
    inner join invoices on deal_invoices.invoice_id = invoices.invoice_id
    where
        invoices.finalized_at is not null
        and coalesce(invoices.invoice_status_raw, '') not in ('void', 'draft')

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
        < {{ reconciliation_now() }} - {{ days_interval(var('settle_window_days')) }}
        and deals.deal_id not in (select invoiced_deals.deal_id from invoiced_deals)

),

{{ reconciliation_finding(
    rule='deal_won_no_invoice', severity='error', entity='deal', systems='crm,billing',
    owner_entity='deal', owner_fields=['deal_stage'], target_system='billing', outcome="'missing'"
) }}
