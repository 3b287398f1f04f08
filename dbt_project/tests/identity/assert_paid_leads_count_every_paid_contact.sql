-- A returned row means the paid-lead counts disagree with the CRM: the total of crm_leads is
-- not the number of paid contacts (paid search from google or paid social from facebook with
-- a utm campaign, CRM duplicates excluded).

with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}
    where record_system = 'crm'

),

paid_contacts as (

    select count(*) as paid_contact_count
    from contacts
    left join resolved on contacts.contact_id = resolved.record_id
    where
        nullif(trim(contacts.utm_campaign), '') is not null
        and not coalesce(resolved.is_crm_duplicate, false)
        and (
            (upper(contacts.analytics_source) = 'PAID_SEARCH' and lower(contacts.utm_source) = 'google')
            or (upper(contacts.analytics_source) = 'PAID_SOCIAL' and lower(contacts.utm_source) = 'facebook')
        )

),

counted as (

    select coalesce(sum(crm_leads), 0) as crm_lead_count
    from {{ ref('int_crm__paid_leads_by_campaign_day') }}

)

select
    paid_contacts.paid_contact_count,
    counted.crm_lead_count
from paid_contacts
cross join counted
where paid_contacts.paid_contact_count != counted.crm_lead_count
