with

source as (

    select * from {{ source('raw_billing', 'charges') }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as charge_id,
        customer as customer_id,
        invoice as invoice_id,
        payment_intent as payment_intent_id,
        balance_transaction as balance_transaction_id,

        -- status
        lower(trim(status)) as charge_status,
        coalesce(paid, false) as is_paid,
        coalesce(captured, false) as is_captured,
        coalesce(refunded, false) as is_refunded,
        failure_code,
        failure_message,

        -- money
        amount as amount_cents,
        amount_captured as amount_captured_cents,
        amount_refunded as amount_refunded_cents,
        upper(nullif(trim(currency), '')) as currency,

        -- timestamps
        to_timestamp(created) as created_at,

        -- lineage
        _dlt_load_id as load_id

    from source

)

select * from renamed
