-- One row per billing customer with no CRM counterpart: no CRM key to an existing contact and
-- no CRM contact in its resolved customer.

with

customers as (

    select * from {{ ref('stg_billing__customers') }}

),

links as (

    select * from {{ ref('link_crm_contacts_billing_customers') }}

),

compared as (

    select
        {{ record_keys([('customer_id', 'customers.customer_id')]) }} as record_keys,
        'contact' as field,
        null as crm_value,
        customers.email as billing_value,
        null as scheduling_value,
        null as ads_value,
        false as is_write_safe
    from customers
    where customers.customer_id not in (select links.customer_id from links)

),

{{ reconciliation_finding(
    rule='billing_orphan', severity='warn', entity='customer', systems='crm,billing', outcome="'missing'"
) }}
