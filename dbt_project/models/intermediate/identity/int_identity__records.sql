-- Every person-bearing source record (CRM contact, billing customer, scheduling invitee)
-- with the normalized keys identity resolution compares.

with

crm_contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

billing_customers as (

    select * from {{ ref('stg_billing__customers') }}

),

scheduling_invitees as (

    select * from {{ ref('stg_scheduling__invitees') }}

),

nicknames as (

    select * from {{ ref('nicknames') }}

),

free_email_domains as (

    select * from {{ ref('free_email_domains') }}

),

unioned as (

    select
        'crm' as record_system,
        contact_id as record_id,
        email,
        phone_e164,
        first_name,
        last_name,
        company_name,
        contact_id as crm_contact_id,
        utm_campaign,
        google_click_id,
        facebook_click_id,
        created_at,
        updated_at
    from crm_contacts

    union all

    select
        'billing' as record_system,
        customer_id as record_id,
        email,
        phone_e164,
        first_name,
        last_name,
        null as company_name,
        crm_contact_id,
        null as utm_campaign,
        null as google_click_id,
        null as facebook_click_id,
        created_at,
        created_at as updated_at
    from billing_customers

    union all

    select
        'scheduling' as record_system,
        invitee_uri as record_id,
        email,
        phone_e164,
        first_name,
        last_name,
        company_answer as company_name,
        null as crm_contact_id,
        utm_campaign,
        null as google_click_id,
        null as facebook_click_id,
        created_at,
        updated_at
    from scheduling_invitees

),

-- one shape for every system: folded email parts, letters-only names, company stem
shaped as (

    select
        record_system,
        record_id,
        email,
        phone_e164,
        first_name,
        last_name,
        company_name,
        nullif(trim(crm_contact_id), '') as crm_contact_id,
        nullif(trim(utm_campaign), '') as utm_campaign,
        nullif(trim(google_click_id), '') as google_click_id,
        nullif(trim(facebook_click_id), '') as facebook_click_id,
        created_at,
        updated_at,
        nullif(regexp_extract(lower(trim(email)), '^([^@\s]+)@([^@\s]+)$', 1), '') as email_local,
        nullif(regexp_extract(lower(trim(email)), '^([^@\s]+)@([^@\s]+)$', 2), '') as email_domain,
        nullif(regexp_replace(lower(strip_accents(trim(first_name))), '[^a-z]', '', 'g'), '')
            as first_name_key,
        nullif(regexp_replace(lower(strip_accents(trim(last_name))), '[^a-z]', '', 'g'), '')
            as last_name_key,
        -- legal suffixes (Inc, LLC, Ltd, Corp, Co) and punctuation never tell companies apart
        nullif(
            replace(
                regexp_replace(
                    trim(regexp_replace(
                        replace(lower(strip_accents(trim(company_name))), '&', ' and '),
                        '[^a-z0-9]+', ' ', 'g'
                    )),
                    '( (inc|incorporated|llc|llp|ltd|limited|corp|corporation|co|company|plc|gmbh))+$',
                    ''
                ),
                ' ', ''
            ),
            ''
        ) as company_key
    from unioned

),

-- the email local part without its plus tag (jane+news@ is jane@)
normalized as (

    select
        *,
        regexp_replace(email_local, '\+.*$', '') as email_local_normalized
    from shaped

),

-- every name with the formal names it may stand for (a formal name stands for itself)
name_variants as (

    select
        lower(trim(nickname)) as name_variant,
        lower(trim(formal_name)) as formal_name
    from nicknames
    union
    select
        lower(trim(formal_name)) as name_variant,
        lower(trim(formal_name)) as formal_name
    from nicknames

),

first_name_groups as (

    select
        name_variant as first_name_key,
        list(distinct formal_name order by formal_name) as first_name_groups
    from name_variants
    group by name_variant

),

final as (

    select
        normalized.record_system,
        normalized.record_id,
        normalized.record_system || ':' || normalized.record_id as record_key,
        lower(trim(normalized.email)) as email,
        normalized.email_local_normalized,
        nullif(regexp_replace(normalized.email_local_normalized, '[^a-z]', '', 'g'), '')
            as email_local_letters,
        normalized.email_domain,
        normalized.email_local_normalized || '@' || normalized.email_domain as email_normalized,
        coalesce(free_email_domains.email_domain is not null, false) as is_free_email_domain,
        normalized.phone_e164,
        normalized.first_name,
        normalized.last_name,
        normalized.first_name_key,
        normalized.last_name_key,
        case
            when normalized.first_name_key is not null
                then coalesce(first_name_groups.first_name_groups, [normalized.first_name_key])
        end as first_name_groups,
        case
            when normalized.first_name_key is not null and normalized.last_name_key is not null
                then normalized.first_name_key || ' ' || normalized.last_name_key
        end as name_key,
        normalized.company_name,
        normalized.company_key,
        normalized.crm_contact_id,
        normalized.utm_campaign,
        normalized.google_click_id,
        normalized.facebook_click_id,
        normalized.created_at,
        normalized.updated_at
    from normalized
    left join first_name_groups
        on normalized.first_name_key = first_name_groups.first_name_key
    left join free_email_domains
        on normalized.email_domain = lower(free_email_domains.email_domain)

)

select * from final
