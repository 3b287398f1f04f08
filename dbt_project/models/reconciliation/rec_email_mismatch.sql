-- One row per linked CRM contact and billing customer whose emails disagree: `conflict` when
-- both hold an address and they name different mailboxes (case, surrounding spaces and a plus
-- tag, jane+billing@ for jane@, are no difference), `missing` when one side holds none.

with

links as (

    select * from {{ ref('link_crm_contacts_billing_customers') }}

),

records as (

    select * from {{ ref('int_identity__records') }}

),

emails as (

    select
        links.contact_id,
        links.customer_id,
        links.is_write_safe,
        crm_records.email as crm_email,
        billing_records.email as billing_email,
        crm_records.email_normalized as crm_mailbox,
        billing_records.email_normalized as billing_mailbox
    from links
    inner join records as crm_records
        on crm_records.record_system = 'crm' and links.contact_id = crm_records.record_id
    inner join records as billing_records
        on billing_records.record_system = 'billing' and links.customer_id = billing_records.record_id

),

compared as (

    select
        {{ record_keys([('contact_id', 'contact_id'), ('customer_id', 'customer_id')]) }} as record_keys,
        'email' as field,
        crm_email as crm_value,
        billing_email as billing_value,
        null as scheduling_value,
        null as ads_value,
        is_write_safe,
        case when crm_email is null or billing_email is null then 'missing' else 'conflict' end as outcome
    from emails
    where coalesce(crm_mailbox, crm_email) is distinct from coalesce(billing_mailbox, billing_email)

),

{{ reconciliation_finding(
    rule='email_mismatch', severity='warn', entity='contact', systems='crm,billing',
    owner_entity='contact', owner_fields=['email'], target_system='billing',
    outcome='compared.outcome'
) }}
