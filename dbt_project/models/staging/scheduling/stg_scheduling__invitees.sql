with

source as (

    select * from {{ source('raw_scheduling', 'invitees') }}

),

answers as (

    select * from {{ source('raw_scheduling', 'invitees__questions_and_answers') }}

),

-- the booking form's first question asks for the company name
company_answers as (

    select
        _dlt_parent_id,
        answer
    from answers
    where position = 0

),

renamed as (

    select
        -- ids
        cast(source.uri as varchar) as invitee_uri,
        source.event as event_uri,
        source.old_invitee as old_invitee_uri,
        source.new_invitee as new_invitee_uri,

        -- person
        nullif(lower(trim(source.email)), '') as email,
        source.email as email_raw,
        nullif(regexp_replace(trim(source.name), '\s+', ' ', 'g'), '') as full_name,
        nullif(regexp_replace(trim(source.first_name), '\s+', ' ', 'g'), '') as first_name_given,
        nullif(regexp_replace(trim(source.last_name), '\s+', ' ', 'g'), '') as last_name_given,
        {{ to_e164('source.text_reminder_number') }} as phone_e164,
        source.text_reminder_number as phone_raw,
        nullif(regexp_replace(trim(company_answers.answer), '\s+', ' ', 'g'), '') as company_answer,
        source.timezone as time_zone,

        -- status
        lower(trim(source.status)) as invitee_status,
        coalesce(source.rescheduled, false) as is_rescheduled,
        source.cancellation__reason as cancel_reason,

        -- attribution
        nullif(trim(source.tracking__utm_source), '') as utm_source,
        nullif(trim(source.tracking__utm_medium), '') as utm_medium,
        nullif(trim(source.tracking__utm_campaign), '') as utm_campaign,

        -- timestamps
        cast(source.created_at as timestamptz) as created_at,
        cast(source.updated_at as timestamptz) as updated_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join company_answers
        on source._dlt_id = company_answers._dlt_parent_id

),

final as (

    select
        * exclude (first_name_given, last_name_given),
        -- Calendly fills first and last name only when the form asks for them separately
        coalesce(first_name_given, split_part(full_name, ' ', 1)) as first_name,
        coalesce(
            last_name_given, nullif(substr(full_name, length(split_part(full_name, ' ', 1)) + 2), '')
        ) as last_name,
        nullif(trim(phone_raw), '') is not null and phone_e164 is null as is_phone_unparseable,
        coalesce(regexp_matches(phone_raw, '[^0-9+().\s-]'), false) as is_phone_free_text
    from renamed

)

select * from final
