-- A returned row means fct_invoices does not carry billing's invoices exactly: its row count
-- or its totals (total, paid, remaining) differ from stg_billing__invoices.

with

facts as (

    select
        count(*) as invoice_count,
        coalesce(sum(total_cents), 0) as total_cents,
        coalesce(sum(amount_paid_cents), 0) as amount_paid_cents,
        coalesce(sum(amount_remaining_cents), 0) as amount_remaining_cents
    from {{ ref('fct_invoices') }}

),

staged as (

    select
        count(*) as invoice_count,
        coalesce(sum(total_cents), 0) as total_cents,
        coalesce(sum(amount_paid_cents), 0) as amount_paid_cents,
        coalesce(sum(amount_remaining_cents), 0) as amount_remaining_cents
    from {{ ref('stg_billing__invoices') }}

)

select
    facts.invoice_count as fact_invoice_count,
    staged.invoice_count as staged_invoice_count,
    facts.total_cents as fact_total_cents,
    staged.total_cents as staged_total_cents
from facts
cross join staged
where
    facts.invoice_count != staged.invoice_count
    or facts.total_cents != staged.total_cents
    or facts.amount_paid_cents != staged.amount_paid_cents
    or facts.amount_remaining_cents != staged.amount_remaining_cents
