-- A returned row is an outbox write that rests on identity a person still has to review: its
-- confidence is below var identity_confidence_threshold, or its finding pairs a CRM contact
-- and a billing customer that only a review link (int_identity__review) connects.

with

outbox as (

    select
        target_system,
        object_type,
        record_id,
        field,
        desired_value,
        finding_id,
        outcome,
        customer_id,
        confidence
    from {{ ref('outbox_crm') }}
    union all
    select
        target_system,
        object_type,
        record_id,
        field,
        desired_value,
        finding_id,
        outcome,
        customer_id,
        confidence
    from {{ ref('outbox_billing') }}

),

findings as (

    select * from {{ ref('findings') }}

),

review as (

    select * from {{ ref('int_identity__review') }}
    where not is_merged_by_other_links

),

keyed as (

    select
        outbox.*,
        {{ json_text('findings.record_keys', 'contact_id') }} as contact_id,
        {{ json_text('findings.record_keys', 'customer_id') }} as billing_customer_id
    from outbox
    left join findings on outbox.finding_id = findings.finding_id

)

select
    keyed.target_system,
    keyed.object_type,
    keyed.record_id,
    keyed.field,
    keyed.finding_id,
    keyed.confidence
from keyed
where
    keyed.confidence is null
    or keyed.confidence < {{ var('identity_confidence_threshold') }}
    or exists (
        select 1
        from review
        where
            (
                review.left_system = 'crm' and review.left_record_id = keyed.contact_id
                and review.right_system = 'billing' and review.right_record_id = keyed.billing_customer_id
            )
            or (
                review.right_system = 'crm' and review.right_record_id = keyed.contact_id
                and review.left_system = 'billing' and review.left_record_id = keyed.billing_customer_id
            )
    )
