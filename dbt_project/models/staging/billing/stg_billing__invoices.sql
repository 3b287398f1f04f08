{%- set raw_invoices = source('raw_billing', 'invoices') -%}

with

source as (

    select * from {{ raw_invoices }}

),

invoice_statuses as (

    select * from {{ ref('invoice_statuses') }}
    where source_system = 'billing'

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as invoice_id,
        source.customer as customer_id,
        {{ tidy(metadata_column(raw_invoices, var('billing_deal_metadata_key'), 'source')) }} as crm_deal_id,
        source.subscription as subscription_id,
        source.charge as charge_id,
        source.payment_intent as payment_intent_id,
        source.number as invoice_number,

        -- status
        invoice_statuses.invoice_status,
        -- which statuses count as billed and as collected is the business's mapping
        coalesce(
            lower({{ tidy('source.status') }}) in {{ sql_strings(var('invoice_billed_statuses')) }}, false
        )
            as is_billed,
        coalesce(
            lower({{ tidy('source.status') }}) in {{ sql_strings(var('invoice_collected_statuses')) }}, false
        ) as is_collected,
        source.status as invoice_status_raw,
        source.billing_reason,
        source.collection_method,
        coalesce(source.paid, false) as is_paid,

        -- money
        source.amount_due as amount_due_cents,
        source.amount_paid as amount_paid_cents,
        source.amount_remaining as amount_remaining_cents,
        source.subtotal as subtotal_cents,
        source.total as total_cents,
        upper(nullif(trim(source.currency), '')) as currency,

        -- timestamps
        to_timestamp(source.created) as created_at,
        to_timestamp(source.status_transitions__finalized_at) as finalized_at,
        to_timestamp(source.status_transitions__paid_at) as paid_at,
        to_timestamp(source.status_transitions__voided_at) as voided_at,
        to_timestamp(source.status_transitions__marked_uncollectible_at) as marked_uncollectible_at,
        to_timestamp(source.due_date) as due_at,
        to_timestamp(source.period_start) as period_start_at,
        to_timestamp(source.period_end) as period_end_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join invoice_statuses
        on lower({{ tidy('source.status') }}) = invoice_statuses.source_value

)

select * from renamed
