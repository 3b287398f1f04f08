-- One row per platform, campaign and account-local day whose reported conversions differ from
-- the CRM's paid leads by more than both var ad_conversion_tolerance_abs and
-- var ad_conversion_tolerance_pct percent of the CRM count.

with

campaign_days as (

    select * from {{ ref('int_ads__campaign_days') }}

),

paid_leads as (

    select * from {{ ref('int_crm__paid_leads_by_campaign_day') }}

),

counted as (

    select
        campaign_days.platform,
        campaign_days.campaign_id,
        campaign_days.spend_date,
        coalesce(campaign_days.conversions, 0) as reported_conversions,
        coalesce(paid_leads.crm_leads, 0) as crm_leads
    from campaign_days
    left join paid_leads
        on
            campaign_days.platform = paid_leads.platform
            and campaign_days.campaign_id = paid_leads.campaign_id
            and campaign_days.spend_date = paid_leads.lead_date

),

compared as (

    select
        {{ record_keys([
            ('platform', 'platform'),
            ('campaign_id', 'campaign_id'),
            ('date', date_text('spend_date')),
        ]) }} as record_keys,
        'conversions' as field,
        cast(crm_leads as varchar) as crm_value,
        null as billing_value,
        null as scheduling_value,
        case
            when reported_conversions = {{ round_double('reported_conversions') }}
                then cast(cast(reported_conversions as bigint) as varchar)
            else cast({{ round_double('reported_conversions', 2) }} as varchar)
        end as ads_value,
        false as is_write_safe
    from counted
    where
        abs(reported_conversions - crm_leads) > {{ var('ad_conversion_tolerance_abs') }}
        and abs(reported_conversions - crm_leads)
        > crm_leads * {{ var('ad_conversion_tolerance_pct') }} / 100.0

),

{{ reconciliation_finding(
    rule='ad_conversion_mismatch', severity='warn', entity='ad_campaign_day', systems='ads,crm',
    owner_entity='ad_spend', owner_fields=['campaign_attribution']
) }}
