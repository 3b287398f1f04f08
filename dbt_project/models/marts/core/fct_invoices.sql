-- One row per billing invoice, with its customer and whether its status counts as billed
-- and collected (seed invoice_statuses).

with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

invoice_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}
    where record_system = 'billing'

),

line_counts as (

    select
        invoice_id,
        count(*) as line_count
    from invoice_lines
    group by invoice_id

),

final as (

    select
        invoices.invoice_id,
        resolved.customer_id,
        invoices.customer_id as billing_customer_id,
        invoices.crm_deal_id as deal_id,
        invoices.subscription_id,
        invoices.charge_id,
        invoices.payment_intent_id,
        invoices.invoice_status,
        coalesce(invoices.is_billed, false) as is_billed,
        coalesce(invoices.is_collected, false) as is_collected,
        invoices.is_paid,
        invoices.billing_reason,
        invoices.total_cents,
        invoices.amount_due_cents,
        invoices.amount_paid_cents,
        invoices.amount_remaining_cents,
        invoices.currency,
        coalesce(line_counts.line_count, 0) as line_count,
        invoices.created_at,
        invoices.finalized_at,
        invoices.paid_at,
        invoices.voided_at,
        invoices.due_at,
        cast(invoices.created_at as date) as invoice_date,
        cast(invoices.paid_at as date) as paid_date
    from invoices
    left join line_counts on invoices.invoice_id = line_counts.invoice_id
    left join resolved on invoices.customer_id = resolved.record_id

)

select * from final
