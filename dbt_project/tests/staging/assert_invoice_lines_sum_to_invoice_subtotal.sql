-- A returned row is an invoice whose staged line items do not add up to its subtotal:
-- a line was lost between Stripe and the warehouse (or joined to the wrong invoice),
-- so line-level revenue would disagree with invoice-level revenue.

with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

invoice_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

line_totals as (

    select
        invoice_id,
        count(*) as line_count,
        sum(amount_cents) as line_amount_cents
    from invoice_lines
    group by invoice_id

),

final as (

    select
        invoices.invoice_id,
        invoices.subtotal_cents,
        coalesce(line_totals.line_count, 0) as line_count,
        coalesce(line_totals.line_amount_cents, 0) as line_amount_cents
    from invoices
    left join line_totals
        on invoices.invoice_id = line_totals.invoice_id

)

select * from final
where line_amount_cents <> subtotal_cents
