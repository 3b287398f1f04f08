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

role_mailboxes as (

    select * from {{ ref('role_mailboxes') }}

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

-- one shape for every system: folded email parts, transliterated letters-only names,
-- company stem
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
        nullif({{ regexp_group('lower(trim(email))', "'^([^@\\s]+)@([^@\\s]+)$'", 1) }}, '') as email_local,
        nullif({{ regexp_group('lower(trim(email))', "'^([^@\\s]+)@([^@\\s]+)$'", 2) }}, '') as email_domain,
        {{ name_key('first_name') }} as first_name_key,
        {{ name_key('last_name') }} as last_name_key,
        -- the whole name folded (B2B billing: a company's legal name may stand where a
        -- person's name would)
        {{ folded("concat_ws(' ', first_name, last_name)") }} as full_name_folded,
        {{ company_key('company_name') }} as company_key
    from unioned

),

-- a name that is a company's (a legal suffix, or the letters of the company's name or of
-- the mailbox's domain) is no evidence of who the person is
company_names as (

    select
        *,
        coalesce(
            {{ regexp_contains(
                'full_name_folded',
                "'[ ,](inc|incorporated|llc|llp|ltd|limited|corp|corporation|company|plc|gmbh|pty)\\.?$'"
            ) }}
            -- short suffixes only as companies write them (AG, S.A., Co.): a person may be "Sá"
            or {{ regexp_contains(
                "concat_ws(' ', first_name, last_name)",
                "'[ ,](AG|SA|S\\.A\\.|AB|AS|BV|B\\.V\\.|Oy|ApS|KG|SRL|Co\\.)$'"
            ) }}
            or regexp_replace(full_name_folded, '[^a-z0-9]', '', 'g') = company_key
            or regexp_replace(full_name_folded, '[^a-z0-9]', '', 'g')
            = regexp_replace(split_part(email_domain, '.', 1), '[^a-z0-9]', '', 'g'),
            false
        ) as is_company_name
    from shaped

),

-- the email local part without its plus tag (jane+news@ is jane@)
normalized as (

    select
        record_system,
        record_id,
        email,
        phone_e164,
        first_name,
        last_name,
        company_name,
        crm_contact_id,
        utm_campaign,
        google_click_id,
        facebook_click_id,
        created_at,
        updated_at,
        email_local,
        email_domain,
        full_name_folded,
        is_company_name,
        regexp_replace(email_local, '\+.*$', '') as email_local_normalized,
        case when not is_company_name then first_name_key end as first_name_key,
        case when not is_company_name then last_name_key end as last_name_key,
        -- a company's name held where a person's would be names the company
        coalesce(
            company_key,
            case when is_company_name then {{ company_key('full_name_folded') }} end
        ) as company_key
    from company_names

),

-- every name with the formal names it may stand for (a formal name stands for itself)
name_variants as (

    select
        {{ name_key('nickname') }} as name_variant,
        {{ name_key('formal_name') }} as formal_name
    from nicknames
    union
    select
        {{ name_key('formal_name') }} as name_variant,
        {{ name_key('formal_name') }} as formal_name
    from nicknames

),

first_name_groups as (

    select
        name_variant as first_name_key,
        {{ distinct_list('formal_name') }} as first_name_groups
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
        coalesce(role_mailboxes.mailbox is not null, false) as is_role_mailbox,
        normalized.is_company_name,
        nullif(regexp_replace(normalized.full_name_folded, '[^a-z0-9]', '', 'g'), '') as name_letters,
        -- the name as a mailbox spells it (jane.doe77@ for Jane Doe: "janedoe")
        normalized.first_name_key || normalized.last_name_key as name_spelling,
        normalized.phone_e164,
        normalized.first_name,
        normalized.last_name,
        normalized.first_name_key,
        normalized.last_name_key,
        case
            when normalized.first_name_key is not null
                then coalesce(
                    first_name_groups.first_name_groups, {{ list_literal(['normalized.first_name_key']) }}
                )
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
    left join role_mailboxes
        on normalized.email_local_normalized = lower(role_mailboxes.mailbox)

)

select * from final
