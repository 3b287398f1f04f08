with

source as (

    select * from {{ source('raw_billing', 'charges') }}

),

-- from API version 2025-03-31.basil on a charge names no invoice: its invoice payment (through
-- the charge, or its payment intent) does
invoice_payments as (

    select
        invoice as invoice_id,
        payment__payment_intent as payment_intent_id,
        payment__charge as charge_id
    from {{ source('raw_billing', 'invoice_payments') }}

),

by_charge as (

    select
        charge_id,
        min(invoice_id) as invoice_id
    from invoice_payments
    where charge_id is not null
    group by charge_id

),

by_payment_intent as (

    select
        payment_intent_id,
        min(invoice_id) as invoice_id
    from invoice_payments
    where payment_intent_id is not null
    group by payment_intent_id

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as charge_id,
        source.customer as customer_id,
        coalesce(source.invoice, by_charge.invoice_id, by_payment_intent.invoice_id) as invoice_id,
        source.payment_intent as payment_intent_id,
        source.balance_transaction as balance_transaction_id,

        -- status
        lower(trim(source.status)) as charge_status,
        coalesce(source.paid, false) as is_paid,
        coalesce(source.captured, false) as is_captured,
        coalesce(source.refunded, false) as is_refunded,
        source.failure_code,
        source.failure_message,

        -- money
        source.amount as amount_cents,
        source.amount_captured as amount_captured_cents,
        source.amount_refunded as amount_refunded_cents,
        upper(nullif(trim(source.currency), '')) as currency,

        -- timestamps
        to_timestamp(source.created) as created_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join by_charge on source.id = by_charge.charge_id
    left join by_payment_intent on source.payment_intent = by_payment_intent.payment_intent_id

)

select * from renamed
