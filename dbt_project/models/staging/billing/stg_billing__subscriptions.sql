{%- set raw_items = source('raw_billing', 'subscriptions__items__data') -%}

with

source as (

    select * from {{ source('raw_billing', 'subscriptions') }}

),

items as (

    select * from {{ source('raw_billing', 'subscriptions__items__data') }}

),

-- the subscription's price and quantity come from its first item
first_items as (

    select
        *,
        -- the current period sits on each item from API version 2025-03-31.basil on
        {{ optional_column(raw_items, 'current_period_start', 'bigint') }} as item_period_start,
        {{ optional_column(raw_items, 'current_period_end', 'bigint') }} as item_period_end
    from items
    where _dlt_list_idx = 0

),

item_counts as (

    select
        _dlt_parent_id,
        count(*) as item_count
    from items
    group by _dlt_parent_id

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as subscription_id,
        source.customer as customer_id,
        source.latest_invoice as latest_invoice_id,
        first_items.price__id as price_id,
        first_items.price__product as product_id,

        -- plan
        lower(trim(source.status)) as subscription_status,
        first_items.price__nickname as plan_name,
        first_items.price__recurring__interval as billing_interval,
        first_items.price__recurring__interval_count as billing_interval_count,
        first_items.quantity,
        coalesce(item_counts.item_count, 0) as item_count,
        coalesce(source.cancel_at_period_end, false) as is_cancel_at_period_end,

        -- money
        first_items.price__unit_amount as unit_amount_cents,
        upper(nullif(trim(coalesce(source.currency, first_items.price__currency)), '')) as currency,

        -- timestamps
        to_timestamp(source.start_date) as started_at,
        to_timestamp(source.canceled_at) as canceled_at,
        to_timestamp(source.ended_at) as ended_at,
        -- top-level in the 2024-06-20 generation, on the items from 2025-03-31.basil on
        to_timestamp(coalesce(source.current_period_start, first_items.item_period_start))
            as current_period_start_at,
        to_timestamp(coalesce(source.current_period_end, first_items.item_period_end))
            as current_period_end_at,
        to_timestamp(source.created) as created_at,

        -- lineage
        source._dlt_load_id as load_id

    from source
    left join first_items
        on source._dlt_id = first_items._dlt_parent_id
    left join item_counts
        on source._dlt_id = item_counts._dlt_parent_id

)

select * from renamed
