-- One row per billing record and field reverse-ETL should set: the authoritative (CRM) value of
-- each open finding proposed as `push_to_billing` (macro reconciliation_finding: its ownership
-- rows name billing as a receiver under an auto or review policy), written only through a
-- CRM-billing link at or above the confidence threshold with no record under review
-- (is_write_safe).

with

findings as (

    select * from {{ ref('findings') }}

),

links as (

    select * from {{ ref('link_crm_contacts_billing_customers') }}

),

-- the Stripe parameter each rule's write sets
field_map (rule, object_type, target_field) as (

    values
    ('email_mismatch', 'customers', 'email'),
    ('name_mismatch', 'customers', 'name'),
    ('phone_mismatch', 'customers', 'phone')

),

pushes as (

    select
        finding_id,
        rule,
        {{ json_text('record_keys', 'contact_id') }} as contact_id,
        {{ json_text('record_keys', 'customer_id') }} as customer_id,
        authoritative_value,
        outcome
    from findings
    where
        status = 'open'
        and proposed_action = 'push_to_billing'
        and authoritative_system is distinct from 'billing'

),

final as (

    select
        'billing' as target_system,
        field_map.object_type,
        pushes.customer_id as record_id,
        field_map.target_field as field,
        pushes.authoritative_value as desired_value,
        pushes.finding_id,
        pushes.outcome,
        links.resolved_customer_id as customer_id,
        links.confidence
    from pushes
    inner join field_map on pushes.rule = field_map.rule
    inner join links
        on pushes.contact_id = links.contact_id and pushes.customer_id = links.customer_id
    where links.is_write_safe

)

select * from final
