{{ config(materialized='table') }}
{#- a table: phones and names are parsed once per build, not on every read -#}

with

source as (

    select * from {{ source('raw_scheduling', 'invitees') }}

),

answers as (

    select * from {{ source('raw_scheduling', 'invitees__questions_and_answers') }}

),

-- a booking question is free text: only the questions the business mapping names carry a
-- company or a phone (vars scheduling_company_question, scheduling_phone_question)
mapped_answers as (

    select
        _dlt_parent_id,
        max(answer) filter (
            where {{ is_mapped_question('question', var('scheduling_company_question')) }}
        ) as company_answer,
        max(answer) filter (
            where {{ is_mapped_question('question', var('scheduling_phone_question')) }}
        ) as phone_answer
    from answers
    group by _dlt_parent_id

),

renamed as (

    select
        -- ids
        cast(source.uri as varchar) as invitee_uri,
        source.event as event_uri,
        source.old_invitee as old_invitee_uri,
        source.new_invitee as new_invitee_uri,

        -- person
        lower({{ tidy('source.email') }}) as email,
        source.email as email_raw,
        {{ tidy('source.name') }} as full_name,
        {{ tidy('source.first_name') }} as first_name_given,
        {{ tidy('source.last_name') }} as last_name_given,
        coalesce({{ tidy('mapped_answers.phone_answer') }}, {{ tidy('source.text_reminder_number') }})
            as phone_raw,
        {{ tidy('mapped_answers.company_answer') }} as company_answer,
        source.timezone as time_zone,

        -- status
        lower({{ tidy('source.status') }}) as invitee_status,
        coalesce(source.rescheduled, false) as is_rescheduled,
        source.cancellation__reason as cancel_reason,

        -- attribution
        {{ tidy('source.tracking__utm_source') }} as utm_source,
        {{ tidy('source.tracking__utm_medium') }} as utm_medium,
        {{ tidy('source.tracking__utm_campaign') }} as utm_campaign,

        -- timestamps
        {{ iso_to_utc('source.created_at') }} as created_at,
        {{ iso_to_utc('source.updated_at') }} as updated_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join mapped_answers
        on source._dlt_id = mapped_answers._dlt_parent_id

),

parsed as (

    select
        *,
        -- the booking's time zone hints the region of a number written without a country code
        {{ phone_e164('phone_raw', fallback_region='time_zone') }} as phone_e164
    from renamed

),

final as (

    select
        invitee_uri,
        event_uri,
        old_invitee_uri,
        new_invitee_uri,
        email,
        email_raw,
        full_name,
        phone_raw,
        company_answer,
        time_zone,
        invitee_status,
        is_rescheduled,
        cancel_reason,
        utm_source,
        utm_medium,
        utm_campaign,
        created_at,
        updated_at,
        load_id,
        phone_e164,
        -- Calendly fills first and last name only when the form asks for them separately
        coalesce(first_name_given, split_part(full_name, ' ', 1)) as first_name,
        coalesce(
            last_name_given, nullif(substr(full_name, length(split_part(full_name, ' ', 1)) + 2), '')
        ) as last_name,
        phone_raw is not null and phone_e164 is null as is_phone_unparseable,
        coalesce({{ regexp_contains('phone_raw', "'[^0-9+().\\s/-]'") }}, false) as is_phone_free_text
    from parsed

)

select * from final
