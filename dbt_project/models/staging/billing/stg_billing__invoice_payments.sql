-- One row per Stripe invoice payment: a payment intent (or charge) applied to an invoice. Stripe
-- lists them from API version 2025-03-31.basil on; for an account read in an older version the
-- table is empty (its invoices, charges and payment intents name each other directly).

with

source as (

    select * from {{ source('raw_billing', 'invoice_payments') }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as invoice_payment_id,
        invoice as invoice_id,
        payment__payment_intent as payment_intent_id,
        payment__charge as charge_id,

        -- status
        lower(trim(payment__type)) as payment_type,
        lower(trim(status)) as invoice_payment_status,
        coalesce(is_default, false) as is_default,

        -- money
        amount_paid as amount_paid_cents,
        amount_requested as amount_requested_cents,
        upper(nullif(trim(currency), '')) as currency,

        -- timestamps
        to_timestamp(created) as created_at,
        to_timestamp(status_transitions__paid_at) as paid_at,
        to_timestamp(status_transitions__canceled_at) as canceled_at,

        -- lineage
        _dlt_load_id as load_id

    from source

)

select * from renamed
