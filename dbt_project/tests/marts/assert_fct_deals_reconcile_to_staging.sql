-- A returned row means fct_deals does not carry the CRM's deals exactly: its row count or
-- amount total differs from stg_crm__deals.

with

facts as (

    select
        count(*) as deal_count,
        coalesce(sum(amount_cents), 0) as amount_cents
    from {{ ref('fct_deals') }}

),

staged as (

    select
        count(*) as deal_count,
        coalesce(sum(amount_cents), 0) as amount_cents
    from {{ ref('stg_crm__deals') }}

)

select
    facts.deal_count as fact_deal_count,
    staged.deal_count as staged_deal_count,
    facts.amount_cents as fact_amount_cents,
    staged.amount_cents as staged_amount_cents
from facts
cross join staged
where
    facts.deal_count != staged.deal_count
    or facts.amount_cents != staged.amount_cents
