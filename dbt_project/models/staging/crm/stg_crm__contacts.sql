with

source as (

    select * from {{ source('raw_crm', 'contacts') }}

),

lifecycle_stages as (

    select * from {{ ref('lifecycle_stages') }}
    where source_system = 'crm'

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as contact_id,
        nullif(trim(source.properties__hubspot_owner_id), '') as owner_id,

        -- person
        nullif(lower(trim(source.properties__email)), '') as email,
        source.properties__email as email_raw,
        nullif(regexp_replace(trim(source.properties__firstname), '\s+', ' ', 'g'), '') as first_name,
        nullif(regexp_replace(trim(source.properties__lastname), '\s+', ' ', 'g'), '') as last_name,
        {{ to_e164('source.properties__phone') }} as phone_e164,
        source.properties__phone as phone_raw,
        nullif(regexp_replace(trim(source.properties__company), '\s+', ' ', 'g'), '') as company_name,
        nullif(trim(source.properties__jobtitle), '') as job_title,

        -- lifecycle
        lifecycle_stages.lifecycle_stage,
        nullif(trim(source.properties__lifecyclestage), '') as lifecycle_stage_raw,

        -- attribution
        nullif(trim(source.properties__hs_analytics_source), '') as analytics_source,
        nullif(trim(source.properties__hs_analytics_source_data_1), '') as utm_source,
        nullif(trim(source.properties__hs_analytics_source_data_2), '') as utm_campaign,
        nullif(trim(source.properties__hs_google_click_id), '') as google_click_id,
        nullif(trim(source.properties__hs_facebook_click_id), '') as facebook_click_id,

        -- dates
        {{ parse_free_date('source.properties__trial_start_date') }} as trial_start_date,
        source.properties__trial_start_date as trial_start_date_raw,
        {{ is_ambiguous_date('source.properties__trial_start_date') }} as is_trial_start_date_ambiguous,

        -- timestamps
        coalesce(
            {{ iso_to_utc('source.properties__createdate') }},
            {{ iso_to_utc('source.created_at') }}
        ) as created_at,
        coalesce(
            {{ iso_to_utc('source.properties__lastmodifieddate') }},
            {{ iso_to_utc('source.updated_at') }}
        ) as updated_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join lifecycle_stages
        on trim(source.properties__lifecyclestage) = lifecycle_stages.source_value

),

final as (

    select
        *,
        nullif(concat_ws(' ', first_name, last_name), '') as full_name,
        nullif(trim(phone_raw), '') is not null and phone_e164 is null as is_phone_unparseable,
        -- words or an extension beside the number (the raw is more than a formatted number)
        coalesce(regexp_matches(phone_raw, '[^0-9+().\s-]'), false) as is_phone_free_text,
        nullif(trim(trial_start_date_raw), '') is not null and trial_start_date is null
            as is_trial_start_date_unparseable
    from renamed

)

select * from final
