with

source as (

    select * from {{ source('raw_billing', 'payment_intents') }}

),

-- from API version 2025-03-31.basil on a payment intent names no invoice: its invoice payment does
by_payment_intent as (

    select
        payment__payment_intent as payment_intent_id,
        min(invoice) as invoice_id
    from {{ source('raw_billing', 'invoice_payments') }}
    where payment__payment_intent is not null
    group by payment__payment_intent

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as payment_intent_id,
        source.customer as customer_id,
        coalesce(source.invoice, by_payment_intent.invoice_id) as invoice_id,
        source.latest_charge as latest_charge_id,

        -- status
        lower(trim(source.status)) as payment_intent_status,

        -- money
        source.amount as amount_cents,
        source.amount_received as amount_received_cents,
        upper(nullif(trim(source.currency), '')) as currency,

        -- timestamps
        to_timestamp(source.created) as created_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join by_payment_intent on source.id = by_payment_intent.payment_intent_id

)

select * from renamed
