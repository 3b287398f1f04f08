with

source as (

    select * from {{ source('raw_scheduling', 'scheduled_events') }}

),

memberships as (

    select * from {{ source('raw_scheduling', 'scheduled_events__event_memberships') }}

),

appointment_statuses as (

    select * from {{ ref('appointment_statuses') }}
    where source_system = 'scheduling'

),

-- the event's host is its first membership
hosts as (

    select * from memberships
    where _dlt_list_idx = 0

),

renamed as (

    select
        -- ids
        cast(source.uri as varchar) as event_uri,
        source.event_type as event_type_uri,
        hosts.user as host_user_uri,

        -- event
        source.name as event_name,
        appointment_statuses.appointment_status,
        source.status as event_status_raw,
        source.location__type as location_type,

        -- host
        nullif(lower(trim(hosts.user_email)), '') as host_email,
        hosts.user_name as host_name,

        -- cancellation
        source.cancellation__reason as cancel_reason,
        source.cancellation__canceler_type as canceler_type,
        source.cancellation__canceled_by as canceled_by,

        -- timestamps
        {{ iso_to_utc('source.start_time') }} as start_at,
        {{ iso_to_utc('source.end_time') }} as end_at,
        source.start_time as start_raw,
        source.end_time as end_raw,
        {{ iso_to_utc('source.cancellation__created_at') }} as canceled_at,
        {{ iso_to_utc('source.created_at') }} as created_at,
        {{ iso_to_utc('source.updated_at') }} as updated_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join hosts
        on source._dlt_id = hosts._dlt_parent_id
    left join appointment_statuses
        on lower(trim(source.status)) = appointment_statuses.source_value

),

final as (

    select
        *,
        -- a time is present but no ISO timestamp: the typed column is null
        {{ tidy('start_raw') }} is not null and start_at is null as is_start_unparseable,
        {{ tidy('end_raw') }} is not null and end_at is null as is_end_unparseable
    from renamed

)

select * from final
