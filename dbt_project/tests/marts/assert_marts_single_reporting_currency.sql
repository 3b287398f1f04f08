-- A returned row is a fact row in a currency other than the reporting currency (var
-- reporting_currency, default USD): the dashboard marts add money across rows, which is only
-- right in one currency.

select
    'fct_invoices' as checked_model,
    invoice_id as id,
    currency
from {{ ref('fct_invoices') }}
where currency is distinct from '{{ var("reporting_currency", "USD") }}'
union all
select
    'fct_payments' as checked_model,
    payment_id as id,
    currency
from {{ ref('fct_payments') }}
where currency is distinct from '{{ var("reporting_currency", "USD") }}'
union all
select
    'fct_deals' as checked_model,
    deal_id as id,
    currency
from {{ ref('fct_deals') }}
where currency is not null and currency != '{{ var("reporting_currency", "USD") }}'
union all
select
    'fct_ad_spend_daily' as checked_model,
    campaign_day_key as id,
    currency
from {{ ref('fct_ad_spend_daily') }}
where currency is not null and currency != '{{ var("reporting_currency", "USD") }}'
