-- One row per billing invoice linked to a CRM deal, and how. Explicit links first: the
-- invoice's deal key (var billing_deal_metadata_key) or the deal's invoice reference (var
-- crm_deal_properties.invoice_reference: an invoice number or id). For an account that keeps
-- neither, a one-off invoice (no subscription, finalized, not void) meets a won deal through
-- who it bills: a deal of the same resolved customer (both records linked at or above the
-- confidence threshold), the invoice created between 3 days before the deal closed and var
-- invoice_match_days after, the closest amount first and then the closest date, each deal and
-- each invoice linked at most once this way (`link_method` 'customer_and_date', with the
-- amount and day gaps kept as evidence).

with

deals as (

    select * from {{ ref('stg_crm__deals') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

contact_deals as (

    select * from {{ ref('stg_crm__contact_deals') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}
    where not needs_review

),

by_key as (

    select
        invoices.invoice_id,
        deals.deal_id,
        'deal_key' as link_method
    from invoices
    inner join deals on invoices.crm_deal_id = deals.deal_id

),

by_reference as (

    select
        invoices.invoice_id,
        deals.deal_id,
        'invoice_reference' as link_method
    from deals
    inner join invoices
        on deals.invoice_reference in (invoices.invoice_number, invoices.invoice_id)
    where invoices.invoice_id not in (select by_key.invoice_id from by_key)

),

explicit as (

    select * from by_key
    union all
    select * from by_reference

),

deal_customers as (

    select distinct
        contact_deals.deal_id,
        resolved.customer_id
    from contact_deals
    inner join resolved
        on resolved.record_system = 'crm' and contact_deals.contact_id = resolved.record_id

),

invoice_customers as (

    select
        invoices.invoice_id,
        resolved.customer_id
    from invoices
    inner join resolved
        on resolved.record_system = 'billing' and invoices.customer_id = resolved.record_id

),

unlinked_deals as (

    select * from deals
    where
        deal_status = 'won'
        and closed_at is not null
        and deal_id not in (select explicit.deal_id from explicit)

),

unlinked_invoices as (

    select * from invoices
    where
        subscription_id is null
        and finalized_at is not null
        and coalesce(invoice_status_raw, '') not in ('void', 'draft')
        and invoice_id not in (select explicit.invoice_id from explicit)

),

candidates as (

    select
        unlinked_deals.deal_id,
        unlinked_invoices.invoice_id,
        abs(coalesce(unlinked_invoices.total_cents, 0) - coalesce(unlinked_deals.amount_cents, 0))
            as amount_gap_cents,
        abs(
            {{ epoch_seconds('unlinked_invoices.created_at') }}
            - {{ epoch_seconds('unlinked_deals.closed_at') }}
        ) / 86400.0 as day_gap
    from unlinked_deals
    inner join deal_customers on unlinked_deals.deal_id = deal_customers.deal_id
    inner join invoice_customers on deal_customers.customer_id = invoice_customers.customer_id
    inner join unlinked_invoices on invoice_customers.invoice_id = unlinked_invoices.invoice_id
    where
        unlinked_invoices.created_at >= unlinked_deals.closed_at - {{ days_interval(3) }}
        and unlinked_invoices.created_at
        <= unlinked_deals.closed_at + {{ days_interval(var('invoice_match_days')) }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by deal_id order by amount_gap_cents, day_gap, invoice_id
        ) as deal_rank,
        row_number() over (
            partition by invoice_id order by amount_gap_cents, day_gap, deal_id
        ) as invoice_rank
    from candidates

),

implicit as (

    select
        invoice_id,
        deal_id,
        'customer_and_date' as link_method,
        amount_gap_cents,
        round(day_gap, 2) as day_gap
    from ranked
    where deal_rank = 1 and invoice_rank = 1

),

final as (

    select
        invoice_id,
        deal_id,
        link_method,
        cast(null as bigint) as amount_gap_cents,
        cast(null as {{ type_double() }}) as day_gap
    from explicit
    union all
    select * from implicit

)

select * from final
