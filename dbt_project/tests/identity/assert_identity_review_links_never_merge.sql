-- A returned row is a record that shares its customer with other records without any link
-- at or above the confidence threshold to them: it was merged by review-level evidence (or
-- by nothing), which must never happen.

with

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

links as (

    select * from {{ ref('int_identity__links') }}
    where confidence >= {{ var('identity_confidence_threshold') }}

),

link_ends as (

    select left_key as record_key from links
    union
    select right_key as record_key from links

)

select
    resolved.record_key,
    resolved.customer_id
from resolved
left join link_ends on resolved.record_key = link_ends.record_key
where
    resolved.cluster_record_count > 1
    and link_ends.record_key is null
