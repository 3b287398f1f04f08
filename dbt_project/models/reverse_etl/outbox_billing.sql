-- One row per billing record and field reverse-ETL should set: the authoritative (CRM) value of
-- each open finding whose ownership rows name billing as a receiver, written only through a
-- CRM-billing link at or above the confidence threshold with no record under review.

with

findings as (

    select * from {{ ref('findings') }}

),

links as (

    select * from {{ ref('link_crm_contacts_billing_customers') }}

),

ownership as (

    select * from {{ ref('ownership') }}

),

-- which ownership rows govern each rule's write, and the Stripe parameter it sets
field_map (rule, owner_entity, owner_field, object_type, target_field) as (

    values
    ('email_mismatch', 'contact', 'email', 'customers', 'email'),
    ('name_mismatch', 'contact', 'first_name', 'customers', 'name'),
    ('name_mismatch', 'contact', 'last_name', 'customers', 'name'),
    ('phone_mismatch', 'contact', 'phone', 'customers', 'phone')

),

permitted_fields as (

    select
        field_map.rule,
        field_map.object_type,
        field_map.target_field
    from field_map
    left join ownership
        on field_map.owner_entity = ownership.entity and field_map.owner_field = ownership.field
    group by field_map.rule, field_map.object_type, field_map.target_field
    having bool_and(
        coalesce(ownership.conflict_policy = 'owner_wins', false)
        and {{ is_receiver('ownership.receiver_systems', "'billing'") }}
    )

),

pushes as (

    select
        finding_id,
        rule,
        json_extract_string(record_keys, '$.contact_id') as contact_id,
        json_extract_string(record_keys, '$.customer_id') as customer_id,
        authoritative_value
    from findings
    where
        status = 'open'
        and proposed_action = 'push_to_billing'
        and authoritative_system is distinct from 'billing'

),

final as (

    select
        'billing' as target_system,
        permitted_fields.object_type,
        pushes.customer_id as record_id,
        permitted_fields.target_field as field,
        pushes.authoritative_value as desired_value,
        pushes.finding_id,
        links.resolved_customer_id as customer_id,
        links.confidence
    from pushes
    inner join permitted_fields on pushes.rule = permitted_fields.rule
    inner join links
        on pushes.contact_id = links.contact_id and pushes.customer_id = links.customer_id
    where
        links.is_write_safe
        and links.confidence >= {{ var('identity_confidence_threshold') }}

)

select * from final
