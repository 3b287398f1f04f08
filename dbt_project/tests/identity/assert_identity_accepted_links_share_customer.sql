-- A returned row is a link at or above the confidence threshold whose two records resolved
-- to different customers: the clustering missed an edge.

with

links as (

    select * from {{ ref('int_identity__links') }}
    where confidence >= {{ var('identity_confidence_threshold') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

)

select
    links.link_id,
    links.left_key,
    links.right_key,
    left_resolved.customer_id as left_customer_id,
    right_resolved.customer_id as right_customer_id
from links
inner join resolved as left_resolved on links.left_key = left_resolved.record_key
inner join resolved as right_resolved on links.right_key = right_resolved.record_key
where left_resolved.customer_id != right_resolved.customer_id
