with

source as (

    select * from {{ source('raw_billing', 'invoices__lines__data') }}

),

invoices as (

    select * from {{ source('raw_billing', 'invoices') }}

),

renamed as (

    select
        -- ids
        cast(source.id as varchar) as invoice_line_id,
        cast(invoices.id as varchar) as invoice_id,

        -- line
        source.description,
        source.quantity,
        source._dlt_list_idx as line_number,

        -- money
        source.amount as amount_cents,
        upper(nullif(trim(source.currency), '')) as currency,

        -- timestamps
        to_timestamp(source.period__start) as period_start_at,
        to_timestamp(source.period__end) as period_end_at,

        -- lineage: a child row is loaded with its invoice
        invoices._dlt_load_id as load_id

    from source
    left join invoices
        on source._dlt_parent_id = invoices._dlt_id

)

select * from renamed
