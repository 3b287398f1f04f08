-- A returned row is a run and rule of findings_daily with other than one row, or a run missing
-- some rule.

with

daily as (

    select * from {{ ref('findings_daily') }}

),

per_run_rule as (

    select
        run_at,
        rule,
        count(*) as row_count
    from daily
    group by run_at, rule

),

per_run as (

    select
        run_at,
        count(distinct rule) as rule_count
    from daily
    group by run_at

)

select
    per_run_rule.run_at,
    per_run_rule.rule,
    per_run_rule.row_count,
    per_run.rule_count
from per_run_rule
inner join per_run on per_run_rule.run_at = per_run.run_at
where
    per_run_rule.row_count != 1
    or per_run.rule_count != {{ reconciliation_rules() | length }}
