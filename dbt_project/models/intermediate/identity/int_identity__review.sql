-- Links below the confidence threshold: never merged into a customer by themselves and never
-- a reason to write anything back; a person decides.

with

links as (

    select * from {{ ref('int_identity__links') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

low_confidence as (

    select * from links
    where confidence < {{ var('identity_confidence_threshold') }}

),

final as (

    select
        low_confidence.link_id as review_id,
        low_confidence.left_system,
        low_confidence.left_record_id,
        low_confidence.right_system,
        low_confidence.right_record_id,
        low_confidence.match_method,
        low_confidence.evidence,
        low_confidence.confidence,
        case
            when low_confidence.is_name_conflicting and low_confidence.match_method like '%email'
                then 'shared email, names disagree'
            when low_confidence.is_name_conflicting and low_confidence.match_method = 'exact_phone'
                then 'shared phone, names disagree'
            when low_confidence.match_method = 'exact_phone'
                then 'shared phone, a name is missing'
            when low_confidence.match_method in ('name_company', 'name_email_domain')
                then 'similar name at the same organisation, too far from an exact match to merge alone'
            else 'confidence below threshold'
        end as review_reason,
        left_resolved.customer_id as left_customer_id,
        right_resolved.customer_id as right_customer_id,
        left_resolved.customer_id = right_resolved.customer_id as is_merged_by_other_links
    from low_confidence
    inner join resolved as left_resolved on low_confidence.left_key = left_resolved.record_key
    inner join resolved as right_resolved on low_confidence.right_key = right_resolved.record_key

)

select * from final
