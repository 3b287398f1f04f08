{%- set raw_invoices = source('raw_billing', 'invoices') -%}

with

source as (

    select * from {{ raw_invoices }}

),

-- the payment of each invoice, for accounts on API version 2025-03-31.basil or later (their
-- invoices name no charge or payment intent): the default payment, else the newest
invoice_payments as (

    select
        invoice as invoice_id,
        payment__payment_intent as payment_intent_id,
        payment__charge as charge_id
    from (
        select
            *,
            row_number() over (
                partition by invoice order by coalesce(is_default, false) desc, created desc, id desc
            ) as payment_rank
        from {{ source('raw_billing', 'invoice_payments') }}
    ) as ranked
    where payment_rank = 1

),

payment_intents as (

    select
        cast(id as varchar) as payment_intent_id,
        latest_charge as latest_charge_id
    from {{ source('raw_billing', 'payment_intents') }}

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
        -- the 2024-06-20 generation names them on the invoice; the current one through
        -- `parent.subscription_details` and the invoice's payment
        coalesce(source.parent__subscription_details__subscription, source.subscription) as subscription_id,
        coalesce(
            source.charge,
            invoice_payments.charge_id,
            case when lower(trim(source.status)) = 'paid' then payment_intents.latest_charge_id end
        ) as charge_id,
        coalesce(source.payment_intent, invoice_payments.payment_intent_id) as payment_intent_id,
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
        coalesce(source.paid, lower(trim(source.status)) = 'paid', false) as is_paid,

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
    left join invoice_payments
        on source.id = invoice_payments.invoice_id
    left join payment_intents
        on invoice_payments.payment_intent_id = payment_intents.payment_intent_id
    left join invoice_statuses
        on lower({{ tidy('source.status') }}) = invoice_statuses.source_value

)

select * from renamed
