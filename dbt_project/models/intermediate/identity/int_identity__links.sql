-- Scored record pairs: each piece of evidence gets a confidence, the pair's confidence is
-- their noisy-or (1 - product of 1 - c). Ad attribution (same campaign, same click id) only
-- strengthens a pair that has person evidence; it never links records on its own.

with

candidates as (

    select * from {{ ref('int_identity__candidates') }}

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

        -- billing's hubspot_contact_id metadata: a key the integration wrote
        case when is_same_crm_key then 1.0 else 0.0 end as crm_key_confidence,

        -- a phone can be shared (office line, household): names must not disagree
        case
            when not is_same_phone then 0.0
            when first_name_match in ('exact', 'nickname', 'typo') or last_name_match in ('exact', 'typo')
                then 0.97
            when first_name_match = 'missing' or last_name_match = 'missing' then 0.85
            else 0.7
        end as phone_confidence,

        -- the same name at the same organisation (company or corporate email domain)
        case
            when not (is_same_company or is_same_email_domain) then 0.0
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
        case when is_same_campaign then 0.3 else 0.0 end as campaign_confidence,
        case when is_same_click_id then 0.6 else 0.0 end as click_id_confidence
    from candidates

),

scored as (

    select
        *,
        1 - (1 - email_confidence) * (1 - crm_key_confidence) * (1 - phone_confidence)
        * (1 - name_organisation_confidence) * (1 - email_name_confidence) as person_confidence,
        greatest(
            email_confidence, crm_key_confidence, phone_confidence, name_organisation_confidence
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
            when email_confidence = best_confidence and is_same_email then 'exact_email'
            when email_confidence = best_confidence then 'normalized_email'
            when phone_confidence = best_confidence then 'exact_phone'
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
