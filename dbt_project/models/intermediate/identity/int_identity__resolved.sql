-- One row per source record with its customer_id: connected components over the links at
-- or above the confidence threshold. A component's customer_id hashes its anchor record,
-- the smallest CRM contact id (else the earliest billing customer, else the earliest
-- invitee), so records joining later never change an existing id.

with recursive

records as (

    select * from {{ ref('int_identity__records') }}

),

links as (

    select * from {{ ref('int_identity__links') }}

),

accepted_links as (

    select * from links
    where confidence >= {{ var('identity_confidence_threshold') }}

),

edges as (

    select
        left_key as from_key,
        right_key as to_key
    from accepted_links
    union all
    select
        right_key as from_key,
        left_key as to_key
    from accepted_links

),

-- every record reaches every record of its component (union keeps the walk finite)
reachable (record_key, reached_key) as (

    select
        record_key,
        record_key as reached_key
    from records
    union
    select
        reachable.record_key,
        edges.to_key as reached_key
    from reachable
    inner join edges on reachable.reached_key = edges.from_key

),

components as (

    select
        record_key,
        min(reached_key) as component_key
    from reachable
    group by record_key

),

ranked as (

    select
        records.record_key,
        records.record_system,
        records.record_id,
        components.component_key,
        row_number() over (
            partition by components.component_key
            order by
                case records.record_system when 'crm' then 1 when 'billing' then 2 else 3 end,
                {{ try_cast('records.record_id', 'big_integer') }} nulls last,
                records.created_at nulls last,
                records.record_id
        ) as anchor_rank,
        count(*) over (partition by components.component_key) as cluster_record_count,
        count(*) filter (where records.record_system = 'crm')
            over (partition by components.component_key) as cluster_crm_contact_count
    from records
    inner join components on records.record_key = components.record_key

),

anchors as (

    select
        component_key,
        record_system as anchor_record_system,
        record_id as anchor_record_id,
        'cust_' || md5(record_key) as customer_id
    from ranked
    where anchor_rank = 1

),

clustered as (

    select
        ranked.*,
        anchors.customer_id,
        anchors.anchor_record_system,
        anchors.anchor_record_id
    from ranked
    inner join anchors on ranked.component_key = anchors.component_key

),

-- each link with whether it ended up inside one customer
placed_links as (

    select
        links.left_key,
        links.right_key,
        links.confidence,
        links.match_method,
        left_end.component_key = right_end.component_key as is_within_customer
    from links
    inner join clustered as left_end on links.left_key = left_end.record_key
    inner join clustered as right_end on links.right_key = right_end.record_key

),

-- each link seen from both of its records
link_ends as (

    select
        left_key as record_key,
        confidence,
        match_method,
        is_within_customer
    from placed_links
    union all
    select
        right_key as record_key,
        confidence,
        match_method,
        is_within_customer
    from placed_links

),

best_links as (

    select
        record_key,
        max(confidence) filter (
            where confidence >= {{ var('identity_confidence_threshold') }}
        ) as accepted_confidence,
        -- the strongest link's method; among links as strong, the one last by name (the same on every engine)
        {{ arg_max(
            'match_method', '(confidence, match_method)',
            where='confidence >= ' ~ var('identity_confidence_threshold')
        ) }} as accepted_method,
        max(confidence) filter (
            where confidence < {{ var('identity_confidence_threshold') }} and not is_within_customer
        ) as review_confidence,
        {{ arg_max(
            'match_method', '(confidence, match_method)',
            where='confidence < ' ~ var('identity_confidence_threshold') ~ ' and not is_within_customer'
        ) }} as review_method,
        count(*) filter (
            where confidence < {{ var('identity_confidence_threshold') }} and not is_within_customer
        ) as open_review_link_count
    from link_ends
    group by record_key

),

final as (

    select
        clustered.record_system,
        clustered.record_id,
        clustered.customer_id,
        cast(
            coalesce(best_links.accepted_confidence, best_links.review_confidence, 1.0) as {{ type_double() }}
        ) as match_confidence,
        coalesce(best_links.accepted_method, best_links.review_method, 'unmatched') as match_method,
        coalesce(best_links.accepted_confidence, best_links.review_confidence, 1.0)
        < {{ var('identity_confidence_threshold') }} as needs_review,
        coalesce(best_links.open_review_link_count, 0) as open_review_link_count,
        clustered.record_key,
        clustered.anchor_record_system,
        clustered.anchor_record_id,
        clustered.anchor_rank = 1 as is_anchor,
        case when clustered.anchor_record_system = 'crm' then clustered.anchor_record_id end
            as primary_contact_id,
        clustered.record_system = 'crm' and clustered.anchor_rank > 1 as is_crm_duplicate,
        clustered.cluster_record_count,
        clustered.cluster_crm_contact_count
    from clustered
    left join best_links on clustered.record_key = best_links.record_key

)

select * from final
