-- One row per deal whose billed invoices (int_billing__deal_invoices; statuses in var
-- invoice_billed_statuses: a voided or written-off invoice is no claim) add up to more or less
-- than the deal amount by more than var amount_tolerance_pct percent of it. A deal invoiced
-- in parts is compared with the sum of its parts; the finding names the deal's latest billed
-- invoice.

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

billed as (

    select
        deal_invoices.deal_id,
        sum(invoices.total_cents) as billed_cents,
        {{ arg_max('invoices.invoice_id', 'invoices.created_at') }} as invoice_id
    from deal_invoices
    inner join invoices on deal_invoices.invoice_id = invoices.invoice_id
    where invoices.is_billed
    group by deal_invoices.deal_id

),

compared as (

    select
        {{ record_keys([('deal_id', 'deals.deal_id'), ('invoice_id', 'billed.invoice_id')]) }}
            as record_keys,
        'amount' as field,
        {{ fixed_text('deals.amount_cents / 100.0') }} as crm_value,
        {{ fixed_text('billed.billed_cents / 100.0') }} as billing_value,
        null as scheduling_value,
        null as ads_value,
        false as is_write_safe
    from deals
    inner join billed on deals.deal_id = billed.deal_id
    where
        abs(billed.billed_cents - deals.amount_cents)
        > abs(deals.amount_cents) * {{ var('amount_tolerance_pct') }} / 100.0

),

{{ reconciliation_finding(
    rule='invoice_amount_mismatch', severity='error', entity='deal', systems='crm,billing',
    owner_entity='deal', owner_fields=['amount'], target_system='billing'
) }}
