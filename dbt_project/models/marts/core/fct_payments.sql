-- One row per billing charge (a payment attempt), with its invoice, its customer and the
-- amount it collected net of refunds.

with

charges as (

    select * from {{ ref('stg_billing__charges') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}
    where record_system = 'billing'

),

final as (

    select
        charges.charge_id as payment_id,
        charges.charge_id,
        charges.payment_intent_id,
        charges.invoice_id,
        invoices.crm_deal_id as deal_id,
        resolved.customer_id,
        charges.customer_id as billing_customer_id,
        charges.charge_status as payment_status,
        charges.is_paid,
        charges.is_refunded,
        charges.amount_cents,
        coalesce(charges.amount_refunded_cents, 0) as amount_refunded_cents,
        case
            when charges.is_paid then charges.amount_cents - coalesce(charges.amount_refunded_cents, 0)
            else 0
        end as net_amount_cents,
        charges.currency,
        charges.failure_code,
        charges.created_at,
        cast(charges.created_at as date) as payment_date
    from charges
    left join invoices on charges.invoice_id = invoices.invoice_id
    left join resolved on charges.customer_id = resolved.record_id

)

select * from final
