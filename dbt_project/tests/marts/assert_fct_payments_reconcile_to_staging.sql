-- A returned row means fct_payments does not carry billing's charges exactly: its row count,
-- charged or refunded totals differ from stg_billing__charges.

with

facts as (

    select
        count(*) as payment_count,
        coalesce(sum(amount_cents), 0) as amount_cents,
        coalesce(sum(amount_refunded_cents), 0) as amount_refunded_cents
    from {{ ref('fct_payments') }}

),

staged as (

    select
        count(*) as payment_count,
        coalesce(sum(amount_cents), 0) as amount_cents,
        coalesce(sum(amount_refunded_cents), 0) as amount_refunded_cents
    from {{ ref('stg_billing__charges') }}

)

select
    facts.payment_count as fact_payment_count,
    staged.payment_count as staged_payment_count,
    facts.amount_cents as fact_amount_cents,
    staged.amount_cents as staged_amount_cents
from facts
cross join staged
where
    facts.payment_count != staged.payment_count
    or facts.amount_cents != staged.amount_cents
    or facts.amount_refunded_cents != staged.amount_refunded_cents
