{{ config(materialized='table') }}
{#- a table: phones and names are parsed once per build, not on every read -#}
{%- set raw_contacts = source('raw_crm', 'contacts') -%}

with

source as (

    select * from {{ raw_contacts }}

),

lifecycle_stages as (

    select * from {{ ref('lifecycle_stages') }}
    where source_system = 'crm'

),

-- each concept read from the property the business mapping names for it
mapped as (

    select
        cast(source.id as varchar) as contact_id,
        {{ mapped_column(raw_contacts, 'contacts', 'owner') }} as owner_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'email') }} as email_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'first_name') }} as first_name_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'last_name') }} as last_name_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'phone') }} as phone_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'country') }} as country_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'company') }} as company_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'job_title') }} as job_title_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'lifecycle_stage') }} as lifecycle_stage_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'lead_source') }} as lead_source_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'utm_source') }} as utm_source_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'utm_campaign') }} as utm_campaign_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'google_click_id') }} as google_click_id_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'facebook_click_id') }} as facebook_click_id_raw,
        {{ mapped_column(raw_contacts, 'contacts', 'next_appointment') }} as next_appointment_raw,
        source.properties__createdate as createdate_raw,
        source.properties__lastmodifieddate as lastmodifieddate_raw,
        source.created_at as object_created_raw,
        source.updated_at as object_updated_raw,
        source._dlt_load_id
    from source

),

renamed as (

    select
        -- ids
        mapped.contact_id,
        {{ tidy('mapped.owner_raw') }} as owner_id,

        -- person
        lower({{ tidy('mapped.email_raw') }}) as email,
        mapped.email_raw,
        {{ tidy('mapped.first_name_raw') }} as first_name,
        {{ tidy('mapped.last_name_raw') }} as last_name,
        {{ phone_e164('mapped.phone_raw', 'mapped.country_raw') }} as phone_e164,
        mapped.phone_raw,
        {{ tidy('mapped.country_raw') }} as country,
        {{ tidy('mapped.company_raw') }} as company_name,
        {{ tidy('mapped.job_title_raw') }} as job_title,

        -- lifecycle
        lifecycle_stages.lifecycle_stage,
        {{ tidy('mapped.lifecycle_stage_raw') }} as lifecycle_stage_raw,

        -- attribution
        {{ tidy('mapped.lead_source_raw') }} as analytics_source,
        {{ tidy('mapped.utm_source_raw') }} as utm_source,
        {{ tidy('mapped.utm_campaign_raw') }} as utm_campaign,
        {{ tidy('mapped.google_click_id_raw') }} as google_click_id,
        {{ tidy('mapped.facebook_click_id_raw') }} as facebook_click_id,

        -- appointments (a date or date-time property; HubSpot date-times are ISO or epoch ms)
        {{ crm_datetime('mapped.next_appointment_raw') }} as next_appointment_at,
        mapped.next_appointment_raw,

        -- timestamps
        coalesce(
            {{ iso_to_utc('mapped.createdate_raw') }},
            {{ iso_to_utc('mapped.object_created_raw') }}
        ) as created_at,
        coalesce(
            {{ iso_to_utc('mapped.lastmodifieddate_raw') }},
            {{ iso_to_utc('mapped.object_updated_raw') }}
        ) as updated_at,

        -- lineage
        mapped._dlt_load_id as load_id

    from mapped
    left join lifecycle_stages
        on {{ tidy('mapped.lifecycle_stage_raw') }} = lifecycle_stages.source_value

),

final as (

    select
        *,
        nullif(concat_ws(' ', first_name, last_name), '') as full_name,
        {{ tidy('phone_raw') }} is not null and phone_e164 is null as is_phone_unparseable,
        -- words or an extension beside the number (the raw is more than a formatted number)
        coalesce({{ regexp_contains('phone_raw', "'[^0-9+().\\s/-]'") }}, false) as is_phone_free_text,
        {{ tidy('next_appointment_raw') }} is not null and next_appointment_at is null
            as is_next_appointment_unparseable
    from renamed

)

select * from final
