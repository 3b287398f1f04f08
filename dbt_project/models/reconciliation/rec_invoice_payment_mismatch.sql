-- One row per invoice whose status disagrees with its payments: paid without a succeeded
-- payment, or not paid although its payment succeeded.

with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

payment_intents as (

    select * from {{ ref('stg_billing__payment_intents') }}

),

charges as (

    select * from {{ ref('stg_billing__charges') }}

),

succeeded_charges as (

    select distinct invoice_id
    from charges
    where
        charge_status = 'succeeded'
        and coalesce(amount_refunded_cents, 0) < amount_cents
        and invoice_id is not null

),

payment_states as (

    select
        invoices.invoice_id,
        invoices.invoice_status,
        payment_intents.payment_intent_status,
        invoices.is_collected as is_invoice_paid,
        coalesce(payment_intents.payment_intent_status = 'succeeded', false)
        or succeeded_charges.invoice_id is not null as has_succeeded_payment
    from invoices
    left join payment_intents on invoices.payment_intent_id = payment_intents.payment_intent_id
    left join succeeded_charges on invoices.invoice_id = succeeded_charges.invoice_id

),

compared as (

    select
        {{ record_keys([('invoice_id', 'invoice_id')]) }} as record_keys,
        'status' as field,
        null as crm_value,
        invoice_status || ' (payment ' || coalesce(payment_intent_status, 'none') || ')'
            as billing_value,
        null as scheduling_value,
        null as ads_value,
        false as is_write_safe
    from payment_states
    where is_invoice_paid != has_succeeded_payment

),

{{ reconciliation_finding(
    rule='invoice_payment_mismatch', severity='error', entity='invoice', systems='billing',
    owner_entity='invoice', owner_fields=['status']
) }}
