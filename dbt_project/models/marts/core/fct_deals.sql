-- One row per CRM deal with its stage metadata, its customer (through the deal's contact)
-- and what billing invoiced and collected for it (invoices carrying the deal id).

with

deals as (

    select * from {{ ref('stg_crm__deals') }}

),

deal_stages as (

    select * from {{ ref('stg_crm__deal_stages') }}

),

contact_deals as (

    select * from {{ ref('stg_crm__contact_deals') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}
    where record_system = 'crm'

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

-- a deal with several contacts belongs to the customer of its smallest contact id
deal_contacts as (

    select
        contact_deals.deal_id,
        -- contact ids are decimal strings: pad them so text order is numeric order
        {{ arg_min('contact_deals.contact_id', "lpad(contact_deals.contact_id, 40, '0')") }} as contact_id
    from contact_deals
    group by contact_deals.deal_id

),

deal_invoices as (

    select
        deal_id,
        count(*) as invoice_count,
        coalesce(sum(total_cents) filter (where is_billed), 0) as billed_cents,
        coalesce(sum(amount_paid_cents) filter (where is_collected), 0) as paid_cents,
        min(created_at) as first_invoiced_at
    from invoices
    where deal_id is not null
    group by deal_id

),

final as (

    select
        deals.deal_id,
        resolved.customer_id,
        deal_contacts.contact_id,
        deals.deal_name,
        deals.deal_stage_key,
        deals.pipeline_id,
        deal_stages.pipeline_label,
        deals.stage_id,
        deal_stages.stage_label,
        deal_stages.display_order as stage_display_order,
        coalesce(deals.deal_status, deal_stages.deal_status) as deal_status,
        coalesce(deal_stages.is_closed, false) as is_closed,
        coalesce(deals.deal_status, deal_stages.deal_status) = 'won' as is_won,
        deal_stages.probability,
        deals.amount_cents,
        cast({{ round_double('deals.amount_cents * coalesce(deal_stages.probability, 0)') }} as bigint)
            as weighted_amount_cents,
        deals.currency,
        deals.owner_id,
        coalesce(deal_invoices.invoice_count, 0) as invoice_count,
        coalesce(deal_invoices.billed_cents, 0) as billed_cents,
        coalesce(deal_invoices.paid_cents, 0) as paid_cents,
        deal_invoices.first_invoiced_at,
        deals.created_at,
        case when coalesce(deal_stages.is_closed, false) then deals.closed_at end as closed_at,
        deals.closed_at as close_expected_at,
        cast(deals.created_at as date) as created_date,
        case when coalesce(deal_stages.is_closed, false) then cast(deals.closed_at as date) end
            as closed_date,
        deals.updated_at
    from deals
    left join deal_stages on deals.deal_stage_key = deal_stages.deal_stage_key
    left join deal_contacts on deals.deal_id = deal_contacts.deal_id
    left join resolved on deal_contacts.contact_id = resolved.record_id
    left join deal_invoices on deals.deal_id = deal_invoices.deal_id

)

select * from final
