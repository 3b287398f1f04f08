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
        cast(source.start_time as timestamptz) as start_at,
        cast(source.end_time as timestamptz) as end_at,
        cast(source.cancellation__created_at as timestamptz) as canceled_at,
        cast(source.created_at as timestamptz) as created_at,
        cast(source.updated_at as timestamptz) as updated_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join hosts
        on source._dlt_id = hosts._dlt_parent_id
    left join appointment_statuses
        on lower(trim(source.status)) = appointment_statuses.source_value

)

select * from renamed
