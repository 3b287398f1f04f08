-- Scored record pairs: each piece of evidence gets a confidence, the pair's confidence is
-- their noisy-or (1 - product of 1 - c). Ad attribution (same campaign, same click id) only
-- strengthens a pair that has person evidence; it never links records on its own.

with

candidates as (

    select * from {{ ref('int_identity__candidates') }}

),

records as (

    select * from {{ ref('int_identity__records') }}

),

-- a name that two people with mailboxes of their own use at one company (or on one company
-- domain): that name and that organisation alone cannot tell which of them a record is
namesake_companies as (

    select
        name_key,
        company_key
    from records
    where
        name_key is not null and company_key is not null
        and not is_free_email_domain and not is_role_mailbox and email_normalized is not null
    group by name_key, company_key
    having count(distinct email_normalized) > 1

),

namesake_domains as (

    select
        name_key,
        email_domain
    from records
    where
        name_key is not null and not is_free_email_domain and not is_role_mailbox
        and email_normalized is not null
    group by name_key, email_domain
    having count(distinct email_normalized) > 1

),

-- how many people (distinct mailboxes) use each name in the CRM and billing: a name only one
-- person there uses is evidence when a booking's mailbox spells it
name_counts as (

    select
        name_key,
        count(distinct coalesce(email_normalized, record_key)) as people
    from records
    where record_system in ('crm', 'billing') and name_key is not null
    group by name_key

),

flagged as (

    select
        candidates.*,
        coalesce(
            candidates.is_same_company and exists (
                select 1 from namesake_companies
                where
                    namesake_companies.company_key = candidates.left_company_key
                    and namesake_companies.name_key in (candidates.left_name_key, candidates.right_name_key)
            ),
            false
        )
        or coalesce(
            candidates.is_same_email_domain and exists (
                select 1 from namesake_domains
                where
                    namesake_domains.email_domain = candidates.left_email_domain
                    and namesake_domains.name_key in (candidates.left_name_key, candidates.right_name_key)
            ),
            false
        ) as is_namesake_organisation,
        coalesce(
            (
                select max(name_counts.people) from name_counts
                where name_counts.name_key in (candidates.left_name_key, candidates.right_name_key)
            ) = 1,
            false
        ) as is_unique_name
    from candidates

),

evidence as (

    select
        *,
        first_name_match = 'different' and last_name_match = 'different' as is_name_conflicting,

        -- same mailbox; a shared inbox (names disagree entirely) is only a hint
        case
            when not is_same_email_normalized then 0.0
            when first_name_match = 'different' and last_name_match = 'different' then 0.8
            when is_same_email then 1.0
            else 0.98
        end as email_confidence,

        -- the same mailbox and the same phone: one person, whatever the names say
        case when is_same_email_normalized and is_same_phone then 0.99 else 0.0 end
            as email_phone_confidence,

        -- billing's hubspot_contact_id metadata: a key the integration wrote
        case when is_same_crm_key then 1.0 else 0.0 end as crm_key_confidence,

        -- a phone can be shared (office line, household): names must not disagree, and two
        -- personal mailboxes on the company's domain are two colleagues on one line
        case
            when not is_same_phone or is_personal_mailbox_conflict then 0.0
            when first_name_match in ('exact', 'nickname', 'typo') or last_name_match in ('exact', 'typo')
                then 0.97
            when first_name_match = 'missing' or last_name_match = 'missing' then 0.85
            else 0.7
        end as phone_confidence,

        -- the same name at the same organisation (company or corporate email domain), unless
        -- their mailboxes there differ or two people use that name there (namesakes)
        case
            when not (is_same_company or is_same_email_domain) then 0.0
            when is_personal_mailbox_conflict or is_namesake_organisation then 0.0
            when first_name_match = 'exact' and last_name_match = 'exact' then 0.96
            when first_name_match = 'nickname' and last_name_match = 'exact' then 0.95
            when first_name_match = 'exact' and last_name_match = 'typo' then 0.92
            when first_name_match = 'typo' and last_name_match = 'exact' then 0.92
            when first_name_match = 'nickname' and last_name_match = 'typo' then 0.85
            when first_name_match = 'typo' and last_name_match = 'typo' then 0.8
            else 0.0
        end as name_organisation_confidence,

        -- the mailbox spells the other record's name: corroborates a similar name at the same
        -- organisation (the typed name has a typo, the address does not)
        case
            when
                is_email_spelling_name and (is_same_company or is_same_email_domain)
                and first_name_match in ('exact', 'nickname', 'typo') and last_name_match in ('exact', 'typo')
                then 0.5
            else 0.0
        end as email_name_confidence,
        -- the mailbox spells a name only one person in the CRM and billing uses, and the names
        -- agree but for a slip of the keyboard (a booking from juliagordon553@aol.com as Julia
        -- Gordon, or as Julia Gordn: the mailbox spells the name right)
        case
            when
                is_email_spelling_name and is_unique_name and not is_namesake_organisation
                and not is_personal_mailbox_conflict
                and first_name_match in ('exact', 'nickname', 'typo') and last_name_match in ('exact', 'typo')
                and not (left_phone_e164 is not null and right_phone_e164 is not null and not is_same_phone)
                then 0.92
            else 0.0
        end as unique_name_confidence,
        case when is_same_campaign then 0.3 else 0.0 end as campaign_confidence,
        case when is_same_click_id then 0.6 else 0.0 end as click_id_confidence
    from flagged

),

scored as (

    select
        *,
        1 - (1 - email_confidence) * (1 - crm_key_confidence) * (1 - phone_confidence)
        * (1 - name_organisation_confidence) * (1 - email_name_confidence) * (1 - email_phone_confidence)
        * (1 - unique_name_confidence) as person_confidence,
        greatest(
            email_confidence, crm_key_confidence, phone_confidence, name_organisation_confidence,
            email_phone_confidence, unique_name_confidence
        ) as best_confidence
    from evidence

),

final as (

    select
        md5(left_key || '|' || right_key) as link_id,
        left_system,
        left_record_id,
        right_system,
        right_record_id,
        left_key,
        right_key,
        case
            when crm_key_confidence = best_confidence then 'crm_key'
            when email_phone_confidence = best_confidence then 'email_and_phone'
            when email_confidence = best_confidence and is_same_email then 'exact_email'
            when email_confidence = best_confidence then 'normalized_email'
            when phone_confidence = best_confidence then 'exact_phone'
            when unique_name_confidence = best_confidence then 'unique_name_mailbox'
            when is_same_company then 'name_company'
            else 'name_email_domain'
        end as match_method,
        concat_ws(
            '; ',
            case when is_same_crm_key then 'crm contact id ' || left_crm_contact_id end,
            case when is_same_email_normalized then 'email ' || left_email_normalized end,
            case when is_same_phone then 'phone ' || left_phone_e164 end,
            case when is_same_company then 'company ' || left_company_key end,
            case when is_same_email_domain then 'email domain ' || left_email_domain end,
            case when email_name_confidence > 0 then 'mailbox spells the name' end,
            case when is_company_named then 'a name is a company''s' end,
            case when is_personal_mailbox_conflict then 'different mailboxes on one company domain' end,
            case when is_namesake_organisation then 'namesakes at the organisation' end,
            'name ' || coalesce(left_name_key, '?') || ' ~ ' || coalesce(right_name_key, '?')
            || ' (first ' || first_name_match || ', last ' || last_name_match || ')',
            case when is_same_campaign then 'campaign ' || left_utm_campaign end,
            case when is_same_click_id then 'same ad click id' end
        ) as evidence,
        round(
            1 - (1 - person_confidence) * (1 - campaign_confidence) * (1 - click_id_confidence), 4
        ) as confidence,
        first_name_match,
        last_name_match,
        is_name_conflicting
    from scored
    where person_confidence > 0

)

select * from final
