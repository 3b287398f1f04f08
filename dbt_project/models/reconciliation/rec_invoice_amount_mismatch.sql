-- One row per deal and invoice (by metadata.hubspot_deal_id) whose invoice total differs from
-- the deal amount by more than var amount_tolerance_pct percent of the deal amount.

with

deals as (

    select * from {{ ref('stg_crm__deals') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

compared as (

    select
        {{ record_keys([('deal_id', 'deals.deal_id'), ('invoice_id', 'invoices.invoice_id')]) }}
            as record_keys,
        'amount' as field,
        printf('%.2f', deals.amount_cents / 100.0) as crm_value,
        printf('%.2f', invoices.total_cents / 100.0) as billing_value,
        null as scheduling_value,
        null as ads_value,
        false as is_write_safe
    from deals
    inner join invoices on deals.deal_id = invoices.crm_deal_id
    where
        invoices.is_billed
        and abs(invoices.total_cents - deals.amount_cents)
        > abs(deals.amount_cents) * {{ var('amount_tolerance_pct') }} / 100.0

),

{{ reconciliation_finding(
    rule='invoice_amount_mismatch', severity='error', entity='deal', systems='crm,billing',
    owner_entity='deal', owner_fields=['amount'], target_system='billing'
) }}
