{#
    Stripe's invoice payments as loaded (`raw_billing.invoice_payments`), for the billing staging
    models that link invoices, payment intents and charges through them: an account read in API
    version 2025-03-31.basil or later has them; an older one has none (see optional_source).
#}
{% macro raw_invoice_payments() -%}
{{ optional_source('raw_billing', 'invoice_payments', {
    'id': 'varchar', 'invoice': 'varchar', 'status': 'varchar', 'is_default': 'boolean',
    'payment__type': 'varchar', 'payment__payment_intent': 'varchar', 'payment__charge': 'varchar',
    'amount_paid': 'bigint', 'amount_requested': 'bigint', 'currency': 'varchar', 'created': 'bigint',
    'status_transitions__paid_at': 'bigint', 'status_transitions__canceled_at': 'bigint',
    '_dlt_load_id': 'varchar'
}) }}
{%- endmacro %}
