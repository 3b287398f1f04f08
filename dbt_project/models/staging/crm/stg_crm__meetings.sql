with

source as (

    select * from {{ source('raw_crm', 'meetings') }}

),

appointment_statuses as (

    select * from {{ ref('appointment_statuses') }}
    where source_system = 'crm'

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as meeting_id,
        nullif(trim(source.properties__hubspot_owner_id), '') as owner_id,
        -- the Calendly scheduled-event URI this meeting mirrors
        nullif(trim(source.properties__hs_meeting_external_url), '') as event_uri,

        -- meeting
        nullif(trim(source.properties__hs_meeting_title), '') as meeting_title,
        appointment_statuses.appointment_status,
        nullif(trim(source.properties__hs_meeting_outcome), '') as outcome_raw,

        -- timestamps
        coalesce(
            {{ iso_to_utc('source.properties__hs_meeting_start_time') }},
            {{ iso_to_utc('source.properties__hs_timestamp') }}
        ) as start_at,
        {{ iso_to_utc('source.properties__hs_meeting_end_time') }} as end_at,
        source.properties__hs_meeting_start_time as start_raw,
        source.properties__hs_meeting_end_time as end_raw,
        coalesce(
            {{ iso_to_utc('source.properties__hs_createdate') }},
            {{ iso_to_utc('source.created_at') }}
        ) as created_at,
        coalesce(
            {{ iso_to_utc('source.properties__hs_lastmodifieddate') }},
            {{ iso_to_utc('source.updated_at') }}
        ) as updated_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join appointment_statuses
        on upper(trim(source.properties__hs_meeting_outcome)) = appointment_statuses.source_value

),

final as (

    select
        *,
        -- a time is present but no ISO timestamp: the typed column is null (or hs_timestamp's)
        {{ tidy('start_raw') }} is not null and {{ iso_to_utc('start_raw') }} is null as is_start_unparseable,
        {{ tidy('end_raw') }} is not null and end_at is null as is_end_unparseable
    from renamed

)

select * from final
