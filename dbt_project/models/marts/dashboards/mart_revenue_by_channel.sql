-- One row per acquisition channel and month: what billing invoiced (by invoice creation
-- month) and collected (by payment month, net of refunds), and the customers behind it.

with

customers as (

    select * from {{ ref('dim_customers') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

payments as (

    select * from {{ ref('fct_payments') }}

),

billed as (

    select
        coalesce(customers.acquisition_channel, 'unknown') as channel,
        cast(date_trunc('month', invoices.created_at) as date) as revenue_month,
        count(*) as invoice_count,
        sum(invoices.total_cents) as billed_cents,
        count(distinct invoices.customer_id) as billed_customer_count
    from invoices
    left join customers on invoices.customer_id = customers.customer_id
    where invoices.is_billed
    group by 1, 2

),

collected as (

    select
        coalesce(customers.acquisition_channel, 'unknown') as channel,
        cast(date_trunc('month', payments.created_at) as date) as revenue_month,
        count(*) as payment_count,
        sum(payments.net_amount_cents) as collected_cents,
        sum(payments.amount_refunded_cents) as refunded_cents,
        count(distinct payments.customer_id) as paying_customer_count
    from payments
    left join customers on payments.customer_id = customers.customer_id
    where payments.is_paid
    group by 1, 2

),

new_customers as (

    select
        acquisition_channel as channel,
        cast(date_trunc('month', customer_since) as date) as revenue_month,
        count(*) as new_customer_count
    from customers
    where customer_since is not null
    group by 1, 2

),

months as (

    select
        channel,
        revenue_month
    from billed
    union
    select
        channel,
        revenue_month
    from collected
    union
    select
        channel,
        revenue_month
    from new_customers

),

final as (

    select
        months.channel || '|' || left({{ date_text('months.revenue_month') }}, 7) as revenue_key,
        months.channel,
        months.revenue_month,
        coalesce(billed.invoice_count, 0) as invoice_count,
        cast(coalesce(billed.billed_cents, 0) as bigint) as billed_cents,
        coalesce(billed.billed_customer_count, 0) as billed_customer_count,
        coalesce(collected.payment_count, 0) as payment_count,
        cast(coalesce(collected.collected_cents, 0) as bigint) as collected_cents,
        cast(coalesce(collected.refunded_cents, 0) as bigint) as refunded_cents,
        coalesce(collected.paying_customer_count, 0) as paying_customer_count,
        coalesce(new_customers.new_customer_count, 0) as new_customer_count,
        '{{ var("reporting_currency", "USD") }}' as currency
    from months
    left join billed on months.channel = billed.channel and months.revenue_month = billed.revenue_month
    left join collected
        on months.channel = collected.channel and months.revenue_month = collected.revenue_month
    left join new_customers
        on months.channel = new_customers.channel and months.revenue_month = new_customers.revenue_month

)

select * from final
