{{ config(materialized='table') }}

-- One row per run and rule: the findings that run opened, reopened, resolved or repaired,
-- and how many stand open and accepted after it (run_date for a daily trend: take a date's
-- last run). Rebuilt every run from the rows of the runs that count (macro history_relation:
-- the published copy's) and this run's.

with

findings as (

    select * from {{ ref('findings') }}

),

rules as (

    select rules.rule
    from (values {{ "('" ~ reconciliation_rules() | join("'), ('") ~ "')" }}) as rules (rule)

),

this_run as (

    select {{ reconciliation_now() }} as run_at

),

counted as (

    select
        rules.rule,
        count(findings.finding_id) filter (where findings.first_seen_at = this_run.run_at) as new_count,
        count(findings.finding_id) filter (where findings.reopened_at = this_run.run_at) as reopened_count,
        count(findings.finding_id) filter (where findings.status = 'open') as open_count,
        count(findings.finding_id) filter (where findings.status = 'accepted') as accepted_count,
        count(findings.finding_id) filter (
            where findings.status = 'resolved' and findings.resolved_at = this_run.run_at
        ) as resolved_count,
        count(findings.finding_id) filter (
            where findings.status = 'repaired' and findings.resolved_at = this_run.run_at
        ) as repaired_count
    from rules
    cross join this_run
    left join findings on rules.rule = findings.rule
    group by rules.rule

),

final as (

    select
        this_run.run_at,
        cast(timezone('UTC', this_run.run_at) as date) as run_date,
        counted.rule,
        counted.new_count,
        counted.reopened_count,
        counted.open_count,
        counted.accepted_count,
        counted.resolved_count,
        counted.repaired_count
    from counted
    cross join this_run
    union all
    select
        run_at,
        run_date,
        rule,
        new_count,
        reopened_count,
        open_count,
        accepted_count,
        resolved_count,
        repaired_count
    from {{ previous_findings_daily() }} as previous_daily  -- noqa: AL05

)

select * from final
