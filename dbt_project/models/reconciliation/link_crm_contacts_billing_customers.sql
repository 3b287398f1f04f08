-- One row per billing customer linked to a CRM contact: through the customer's CRM key
-- (metadata.hubspot_contact_id, confidence 1.0) or else through identity resolution (both
-- records in one resolved customer, so linked at or above the confidence threshold; the
-- earliest CRM contact of that customer stands for it). The per-person rules compare the two
-- records of each row; a row may drive a write-back only when is_write_safe.

with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

customers as (

    select * from {{ ref('stg_billing__customers') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

resolved_crm as (

    select * from resolved
    where record_system = 'crm'

),

resolved_billing as (

    select * from resolved
    where record_system = 'billing'

),

by_crm_key as (

    select
        customers.customer_id,
        contacts.contact_id,
        'crm_key' as link_method,
        1.0 as confidence
    from customers
    inner join contacts on customers.crm_contact_id = contacts.contact_id

),

by_identity_ranked as (

    select
        resolved_billing.record_id as customer_id,
        resolved_crm.record_id as contact_id,
        'identity:' || resolved_billing.match_method as link_method,
        resolved_billing.match_confidence as confidence,
        row_number() over (
            partition by resolved_billing.record_id
            order by
                contacts.created_at,
                {{ try_cast('resolved_crm.record_id', 'big_integer') }},
                resolved_crm.record_id
        ) as contact_rank
    from resolved_billing
    inner join resolved_crm on resolved_billing.customer_id = resolved_crm.customer_id
    inner join contacts on resolved_crm.record_id = contacts.contact_id
    where resolved_billing.record_id not in (select by_crm_key.customer_id from by_crm_key)

),

linked as (

    select * from by_crm_key
    union all
    select
        customer_id,
        contact_id,
        link_method,
        confidence
    from by_identity_ranked
    where contact_rank = 1

),

final as (

    select
        linked.contact_id,
        linked.customer_id,
        linked.link_method,
        cast(linked.confidence as {{ type_double() }}) as confidence,
        coalesce(resolved_crm.customer_id, resolved_billing.customer_id) as resolved_customer_id,
        linked.confidence >= {{ var('identity_confidence_threshold') }}
        and not coalesce(resolved_crm.needs_review, false)
        and not coalesce(resolved_billing.needs_review, false) as is_write_safe
    from linked
    left join resolved_crm on linked.contact_id = resolved_crm.record_id
    left join resolved_billing on linked.customer_id = resolved_billing.record_id

)

select * from final
