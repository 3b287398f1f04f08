-- One row per customer_id (a resolved person). The golden record follows the ownership
-- seed: for each field the owner system's value wins, the next system fills in when the
-- owner has none (crm, then billing, then scheduling; within a system the customer's anchor
-- record, then the most recently updated). Counts and money totals come from the facts.

with

records as (

    select * from {{ ref('int_identity__records') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

ownership as (

    select * from {{ ref('ownership') }}

),

deals as (

    select * from {{ ref('fct_deals') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

payments as (

    select * from {{ ref('fct_payments') }}

),

appointments as (

    select * from {{ ref('fct_appointments') }}

),

customer_records as (

    select
        resolved.customer_id,
        resolved.record_system,
        resolved.record_id,
        resolved.anchor_record_system,
        resolved.anchor_record_id,
        resolved.match_confidence,
        resolved.needs_review,
        resolved.open_review_link_count,
        records.email,
        records.first_name,
        records.last_name,
        records.phone_e164,
        records.company_name,
        records.created_at,
        records.updated_at,
        row_number() over (
            partition by resolved.customer_id, resolved.record_system
            order by resolved.is_anchor desc, records.updated_at desc nulls last, resolved.record_id asc
        ) as record_priority
    from resolved
    inner join records on resolved.record_key = records.record_key

),

-- billing's view of the lifecycle: a billing customer with a paid invoice is a customer
billing_paid as (

    select
        billing_customer_id,
        min(paid_at) as first_paid_at
    from invoices
    where is_collected
    group by billing_customer_id

),

field_values as (

    select
        customer_id,
        record_system,
        record_priority,
        'email' as field,
        email as field_value
    from customer_records
    union all
    select
        customer_id,
        record_system,
        record_priority,
        'first_name' as field,
        first_name as field_value
    from customer_records
    union all
    select
        customer_id,
        record_system,
        record_priority,
        'last_name' as field,
        last_name as field_value
    from customer_records
    union all
    select
        customer_id,
        record_system,
        record_priority,
        'phone' as field,
        phone_e164 as field_value
    from customer_records
    union all
    select
        customer_id,
        record_system,
        record_priority,
        'company' as field,
        company_name as field_value
    from customer_records
    union all
    select
        customer_records.customer_id,
        customer_records.record_system,
        customer_records.record_priority,
        'lifecycle_stage' as field,
        contacts.lifecycle_stage as field_value
    from customer_records
    inner join contacts on customer_records.record_id = contacts.contact_id
    where customer_records.record_system = 'crm'
    union all
    select
        customer_records.customer_id,
        customer_records.record_system,
        customer_records.record_priority,
        'lifecycle_stage' as field,
        'customer' as field_value
    from customer_records
    inner join billing_paid on customer_records.record_id = billing_paid.billing_customer_id
    where customer_records.record_system = 'billing'

),

contact_ownership as (

    select
        field,
        owner_system
    from ownership
    where entity = 'contact'

),

survivors as (

    select
        field_values.customer_id,
        field_values.field,
        {{ arg_min('field_values.field_value', list_literal([
            'case when field_values.record_system = contact_ownership.owner_system then 0 else 1 end',
            "case field_values.record_system when 'crm' then 1 when 'billing' then 2 else 3 end",
            'field_values.record_priority'
        ])) }} as field_value,
        {{ arg_min('field_values.record_system', list_literal([
            'case when field_values.record_system = contact_ownership.owner_system then 0 else 1 end',
            "case field_values.record_system when 'crm' then 1 when 'billing' then 2 else 3 end",
            'field_values.record_priority'
        ])) }} as source_system
    from field_values
    left join contact_ownership on field_values.field = contact_ownership.field
    where nullif(trim(field_values.field_value), '') is not null
    group by field_values.customer_id, field_values.field

),

golden as (

    select
        customer_id,
        max(field_value) filter (where field = 'email') as email,
        max(field_value) filter (where field = 'first_name') as first_name,
        max(field_value) filter (where field = 'last_name') as last_name,
        max(field_value) filter (where field = 'phone') as phone_e164,
        max(field_value) filter (where field = 'company') as company_name,
        max(field_value) filter (where field = 'lifecycle_stage') as lifecycle_stage,
        max(source_system) filter (where field = 'email') as email_source_system,
        max(source_system) filter (where field = 'first_name') as name_source_system,
        max(source_system) filter (where field = 'phone') as phone_source_system,
        max(source_system) filter (where field = 'lifecycle_stage') as lifecycle_stage_source_system
    from survivors
    group by customer_id

),

customer_summary as (

    select
        customer_id,
        {{ some_value('anchor_record_system') }} as anchor_record_system,
        {{ some_value('anchor_record_id') }} as anchor_record_id,
        {{ arg_min('record_id', "lpad(record_id, 40, '0')", where="record_system = 'crm'") }}
            as primary_contact_id,
        {{ arg_min('record_id', 'created_at', where="record_system = 'billing'") }}
            as primary_billing_customer_id,
        count(*) filter (where record_system = 'crm') as crm_contact_count,
        count(*) filter (where record_system = 'billing') as billing_customer_count,
        count(*) filter (where record_system = 'scheduling') as invitee_count,
        min(match_confidence) as match_confidence,
        bool_or(needs_review) as needs_review,
        sum(open_review_link_count) as open_review_link_count,
        min(created_at) as first_seen_at
    from customer_records
    group by customer_id

),

acquisition as (

    select
        customer_summary.customer_id,
        contacts.analytics_source,
        contacts.utm_source,
        contacts.utm_campaign,
        contacts.created_at as contact_created_at
    from customer_summary
    inner join contacts on customer_summary.primary_contact_id = contacts.contact_id

),

deal_totals as (

    select
        customer_id,
        count(*) as deal_count,
        count(*) filter (where deal_status = 'open') as open_deal_count,
        count(*) filter (where is_won) as won_deal_count,
        coalesce(sum(amount_cents) filter (where deal_status = 'open'), 0) as open_pipeline_cents,
        coalesce(sum(amount_cents) filter (where is_won), 0) as won_amount_cents,
        min(closed_at) filter (where is_won) as first_won_at
    from deals
    where customer_id is not null
    group by customer_id

),

invoice_totals as (

    select
        customer_id,
        count(*) as invoice_count,
        count(*) filter (where is_collected) as paid_invoice_count,
        coalesce(sum(total_cents) filter (where is_billed), 0) as billed_cents,
        coalesce(sum(amount_remaining_cents) filter (where is_billed and not is_collected), 0)
            as outstanding_cents,
        min(paid_at) filter (where is_collected) as first_paid_at,
        {{ some_value('currency') }} as currency
    from invoices
    where customer_id is not null
    group by customer_id

),

payment_totals as (

    select
        customer_id,
        count(*) filter (where is_paid) as payment_count,
        coalesce(sum(net_amount_cents), 0) as collected_cents,
        coalesce(sum(amount_refunded_cents), 0) as refunded_cents
    from payments
    where customer_id is not null
    group by customer_id

),

appointment_totals as (

    select
        customer_id,
        count(*) as appointment_count,
        count(*) filter (where is_canceled) as canceled_appointment_count,
        min(start_at) as first_appointment_at
    from appointments
    where customer_id is not null
    group by customer_id

),

final as (

    select
        customer_summary.customer_id,
        customer_summary.primary_contact_id,
        customer_summary.primary_billing_customer_id,
        customer_summary.anchor_record_system,
        customer_summary.anchor_record_id,

        -- golden record
        golden.email,
        golden.first_name,
        golden.last_name,
        nullif(concat_ws(' ', golden.first_name, golden.last_name), '') as full_name,
        golden.phone_e164,
        golden.company_name,
        golden.lifecycle_stage,
        golden.email_source_system,
        golden.name_source_system,
        golden.phone_source_system,
        golden.lifecycle_stage_source_system,

        -- acquisition
        case upper(acquisition.analytics_source)
            when 'PAID_SEARCH' then 'paid_search'
            when 'PAID_SOCIAL' then 'paid_social'
            when 'ORGANIC_SEARCH' then 'organic_search'
            when 'SOCIAL_MEDIA' then 'organic_social'
            when 'DIRECT_TRAFFIC' then 'direct'
            when 'REFERRALS' then 'referral'
            when 'EMAIL_MARKETING' then 'email'
            when 'OFFLINE' then 'offline'
            when 'OTHER_CAMPAIGNS' then 'other_campaigns'
            else coalesce(lower(acquisition.analytics_source), 'unknown')
        end as acquisition_channel,
        acquisition.analytics_source as acquisition_source_raw,
        case
            when
                upper(acquisition.analytics_source) = 'PAID_SEARCH'
                and lower(acquisition.utm_source) = 'google'
                then 'google'
            when
                upper(acquisition.analytics_source) = 'PAID_SOCIAL'
                and lower(acquisition.utm_source) = 'facebook'
                then 'meta'
        end as acquisition_platform,
        case
            when upper(acquisition.analytics_source) in ('PAID_SEARCH', 'PAID_SOCIAL')
                then acquisition.utm_campaign
        end as acquisition_campaign_id,
        acquisition.utm_source as acquisition_utm_source,

        -- dates
        customer_summary.first_seen_at,
        acquisition.contact_created_at as lead_created_at,
        invoice_totals.first_paid_at as customer_since,
        cast(invoice_totals.first_paid_at as date) as customer_since_date,
        invoice_totals.first_paid_at is not null as is_paying_customer,

        -- identity
        customer_summary.crm_contact_count,
        customer_summary.billing_customer_count,
        customer_summary.invitee_count,
        customer_summary.crm_contact_count > 1 as has_crm_duplicates,
        customer_summary.match_confidence,
        customer_summary.needs_review,
        customer_summary.open_review_link_count,

        -- deals
        coalesce(deal_totals.deal_count, 0) as deal_count,
        coalesce(deal_totals.open_deal_count, 0) as open_deal_count,
        coalesce(deal_totals.won_deal_count, 0) as won_deal_count,
        coalesce(deal_totals.open_pipeline_cents, 0) as open_pipeline_cents,
        coalesce(deal_totals.won_amount_cents, 0) as won_amount_cents,
        deal_totals.first_won_at,

        -- billing
        coalesce(invoice_totals.invoice_count, 0) as invoice_count,
        coalesce(invoice_totals.paid_invoice_count, 0) as paid_invoice_count,
        coalesce(invoice_totals.billed_cents, 0) as billed_cents,
        coalesce(invoice_totals.outstanding_cents, 0) as outstanding_cents,
        coalesce(payment_totals.payment_count, 0) as payment_count,
        coalesce(payment_totals.collected_cents, 0) as collected_cents,
        coalesce(payment_totals.refunded_cents, 0) as refunded_cents,
        coalesce(invoice_totals.currency, '{{ var("reporting_currency", "USD") }}') as currency,

        -- appointments
        coalesce(appointment_totals.appointment_count, 0) as appointment_count,
        coalesce(appointment_totals.canceled_appointment_count, 0) as canceled_appointment_count,
        appointment_totals.first_appointment_at
    from customer_summary
    left join golden on customer_summary.customer_id = golden.customer_id
    left join acquisition on customer_summary.customer_id = acquisition.customer_id
    left join deal_totals on customer_summary.customer_id = deal_totals.customer_id
    left join invoice_totals on customer_summary.customer_id = invoice_totals.customer_id
    left join payment_totals on customer_summary.customer_id = payment_totals.customer_id
    left join appointment_totals on customer_summary.customer_id = appointment_totals.customer_id

)

select * from final
