-- Record pairs worth comparing (blocking), with every piece of evidence measured.
-- Blocks: same normalized email, same phone, same CRM key, and same company or corporate
-- email domain with a related name. Campaign and click ids are compared, never blocked on.

with

records as (

    select * from {{ ref('int_identity__records') }}

),

email_pairs as (

    select
        left_record.record_key as left_key,
        right_record.record_key as right_key
    from records as left_record
    inner join records as right_record
        on
            left_record.email_normalized = right_record.email_normalized
            and left_record.record_key < right_record.record_key

),

phone_pairs as (

    select
        left_record.record_key as left_key,
        right_record.record_key as right_key
    from records as left_record
    inner join records as right_record
        on
            left_record.phone_e164 = right_record.phone_e164
            and left_record.record_key < right_record.record_key

),

-- billing metadata names the CRM contact (a CRM record's own key is its contact id)
crm_key_pairs as (

    select
        left_record.record_key as left_key,
        right_record.record_key as right_key
    from records as left_record
    inner join records as right_record
        on
            left_record.crm_contact_id = right_record.crm_contact_id
            and left_record.record_key < right_record.record_key

),

company_pairs as (

    select
        left_record.record_key as left_key,
        right_record.record_key as right_key
    from records as left_record
    inner join records as right_record
        on
            left_record.company_key = right_record.company_key
            and left_record.record_key < right_record.record_key
    where
        left_record.last_name_key = right_record.last_name_key
        or {{ lists_overlap('left_record.first_name_groups', 'right_record.first_name_groups') }}
        or {{ name_similarity('left_record.name_key', 'right_record.name_key') }} >= 0.85

),

domain_pairs as (

    select
        left_record.record_key as left_key,
        right_record.record_key as right_key
    from records as left_record
    inner join records as right_record
        on
            left_record.email_domain = right_record.email_domain
            and left_record.record_key < right_record.record_key
    where
        not left_record.is_free_email_domain
        and (
            left_record.last_name_key = right_record.last_name_key
            or {{ lists_overlap('left_record.first_name_groups', 'right_record.first_name_groups') }}
            or {{ name_similarity('left_record.name_key', 'right_record.name_key') }} >= 0.85
        )

),

-- one record's mailbox spells the other's full name (juliagordon553@aol.com for Julia Gordon)
spelling_pairs as (

    select
        least(left_record.record_key, right_record.record_key) as left_key,
        greatest(left_record.record_key, right_record.record_key) as right_key
    from records as left_record
    inner join records as right_record
        on
            left_record.email_local_letters = right_record.name_spelling
            and left_record.record_key != right_record.record_key

),

pairs as (

    select * from email_pairs
    union
    select * from spelling_pairs
    union
    select * from phone_pairs
    union
    select * from crm_key_pairs
    union
    select * from company_pairs
    union
    select * from domain_pairs

),

compared as (

    select
        left_record.record_system as left_system,
        left_record.record_id as left_record_id,
        right_record.record_system as right_system,
        right_record.record_id as right_record_id,
        pairs.left_key,
        pairs.right_key,

        -- exact keys
        coalesce(left_record.email = right_record.email, false) as is_same_email,
        coalesce(left_record.email_normalized = right_record.email_normalized, false)
            as is_same_email_normalized,
        coalesce(left_record.phone_e164 = right_record.phone_e164, false) as is_same_phone,
        coalesce(left_record.crm_contact_id = right_record.crm_contact_id, false) as is_same_crm_key,

        -- organisation
        coalesce(left_record.company_key = right_record.company_key, false) as is_same_company,
        coalesce(
            left_record.email_domain = right_record.email_domain and not left_record.is_free_email_domain,
            false
        ) as is_same_email_domain,
        -- two personal mailboxes on one company domain are two people (a role mailbox, info@,
        -- says neither way)
        coalesce(
            left_record.email_domain = right_record.email_domain
            and not left_record.is_free_email_domain
            and left_record.email_normalized != right_record.email_normalized
            and not left_record.is_role_mailbox
            and not right_record.is_role_mailbox,
            false
        ) as is_personal_mailbox_conflict,
        left_record.is_company_name
        or right_record.is_company_name
        or coalesce(left_record.name_letters = right_record.company_key, false)
        or coalesce(right_record.name_letters = left_record.company_key, false) as is_company_named,

        -- names (a record whose name is the other's company holds no person's name)
        case
            when left_record.name_letters = right_record.company_key then 'missing'
            when right_record.name_letters = left_record.company_key then 'missing'
            when left_record.first_name_key is null or right_record.first_name_key is null then 'missing'
            when left_record.first_name_key = right_record.first_name_key then 'exact'
            when {{ lists_overlap('left_record.first_name_groups', 'right_record.first_name_groups') }}
                then 'nickname'
            when
                least(length(left_record.first_name_key), length(right_record.first_name_key)) >= 3
                and {{ edit_distance('left_record.first_name_key', 'right_record.first_name_key') }} <= 1
                then 'typo'
            else 'different'
        end as first_name_match,
        case
            when left_record.name_letters = right_record.company_key then 'missing'
            when right_record.name_letters = left_record.company_key then 'missing'
            when left_record.last_name_key is null or right_record.last_name_key is null then 'missing'
            when left_record.last_name_key = right_record.last_name_key then 'exact'
            when
                least(length(left_record.last_name_key), length(right_record.last_name_key)) >= 3
                and {{ edit_distance('left_record.last_name_key', 'right_record.last_name_key') }} <= 1
                then 'typo'
            else 'different'
        end as last_name_match,
        {{ name_similarity(
            "coalesce(left_record.name_key, '')", "coalesce(right_record.name_key, '')"
        ) }} as name_similarity,
        -- one record's mailbox spells the other's full name (jane.doe77@ for Jane Doe)
        coalesce(
            left_record.email_local_letters = right_record.first_name_key || right_record.last_name_key
            or right_record.email_local_letters = left_record.first_name_key || left_record.last_name_key,
            false
        ) as is_email_spelling_name,

        -- attribution (evidence only)
        coalesce(left_record.utm_campaign = right_record.utm_campaign, false) as is_same_campaign,
        coalesce(
            left_record.google_click_id = right_record.google_click_id
            or left_record.facebook_click_id = right_record.facebook_click_id,
            false
        ) as is_same_click_id,

        -- values, for the evidence text
        left_record.email_normalized as left_email_normalized,
        left_record.phone_e164 as left_phone_e164,
        right_record.phone_e164 as right_phone_e164,
        left_record.crm_contact_id as left_crm_contact_id,
        left_record.company_key as left_company_key,
        right_record.company_key as right_company_key,
        left_record.email_domain as left_email_domain,
        left_record.name_key as left_name_key,
        right_record.name_key as right_name_key,
        left_record.utm_campaign as left_utm_campaign
    from pairs
    inner join records as left_record on pairs.left_key = left_record.record_key
    inner join records as right_record on pairs.right_key = right_record.record_key

)

select * from compared
