-- One row per billing customer with a paid invoice whose linked CRM contact is not at the
-- `customer` lifecycle stage; keyed by the customer's first paid invoice.

with

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

links as (

    select * from {{ ref('link_crm_contacts_billing_customers') }}

),

first_paid_invoices as (

    select
        customer_id,
        {{ arg_min('invoice_id', 'coalesce(paid_at, created_at)') }} as invoice_id
    from invoices
    where is_collected
    group by customer_id

),

compared as (

    select
        {{ record_keys([
            ('invoice_id', 'first_paid_invoices.invoice_id'),
            ('customer_id', 'links.customer_id'),
            ('contact_id', 'links.contact_id'),
        ]) }} as record_keys,
        'lifecycle_stage' as field,
        coalesce(contacts.lifecycle_stage, contacts.lifecycle_stage_raw) as crm_value,
        'customer' as billing_value,
        null as scheduling_value,
        null as ads_value,
        links.is_write_safe
    from first_paid_invoices
    inner join links on first_paid_invoices.customer_id = links.customer_id
    inner join contacts on links.contact_id = contacts.contact_id
    where contacts.lifecycle_stage is distinct from 'customer'

),

{{ reconciliation_finding(
    rule='paid_invoice_crm_not_customer', severity='error', entity='contact', systems='crm,billing',
    owner_entity='contact', owner_fields=['lifecycle_stage'], target_system='crm'
) }}
