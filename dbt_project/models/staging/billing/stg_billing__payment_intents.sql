with

source as (

    select * from {{ source('raw_billing', 'payment_intents') }}

),

renamed as (

    select
        -- ids
        cast(id as varchar) as payment_intent_id,
        customer as customer_id,
        invoice as invoice_id,
        latest_charge as latest_charge_id,

        -- status
        lower(trim(status)) as payment_intent_status,

        -- money
        amount as amount_cents,
        amount_received as amount_received_cents,
        upper(nullif(trim(currency), '')) as currency,

        -- timestamps
        to_timestamp(created) as created_at,

        -- lineage
        _dlt_load_id as load_id

    from source

)

select * from renamed
