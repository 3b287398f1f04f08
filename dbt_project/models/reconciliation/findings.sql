{{ config(materialized='table') }}

-- One row per finding ever detected, carried across runs. A finding of this run is open, or
-- accepted while its latest decision (reconciliation.finding_decisions, written by `trueup
-- findings accept`) accepts it and its values are still the ones accepted; it is stamped
-- last_seen_at; one first seen now gets first_seen_at; one that was resolved and shows again,
-- or was accepted and whose values changed, reopens (reopened_at, resolved_at cleared). An open
-- or accepted finding absent from this run is resolved, or repaired when the reverse-ETL ledger
-- recorded a successful push for it. The table is rebuilt every run from the history of the
-- last run that counts (macro history_relation: the published copy's, so a run killed or
-- failed before publishing leaves no trace) and this run's findings; `--full-refresh` keeps it.

with

current_findings as (

    select * from {{ ref('findings_current') }}

),

decisions as (

    select ranked.*
    from (
        select
            all_decisions.*,
            row_number() over (partition by all_decisions.finding_id order by all_decisions.decided_at desc)
                as decision_rank
        from {{ finding_decisions() }} as all_decisions
    ) as ranked
    where ranked.decision_rank = 1

),

accepted as (

    select current_findings.finding_id
    from current_findings
    inner join decisions on current_findings.finding_id = decisions.finding_id
    where
        decisions.action = 'accept'
        and current_findings.crm_value is not distinct from decisions.crm_value
        and current_findings.billing_value is not distinct from decisions.billing_value
        and current_findings.scheduling_value is not distinct from decisions.scheduling_value
        and current_findings.ads_value is not distinct from decisions.ads_value

),

previous as (

    select * from {{ previous_findings() }} as previous_findings  -- noqa: AL05

),

pushed as (

    select * from {{ repaired_findings() }} as repaired_findings

),

this_run as (

    select {{ reconciliation_now() }} as run_at

),

seen as (

    select
        current_findings.*,
        coalesce(previous.first_seen_at, this_run.run_at) as first_seen_at,
        this_run.run_at as last_seen_at,
        case when accepted.finding_id is not null then 'accepted' else 'open' end as status,
        cast(null as timestamptz) as resolved_at,
        case
            when previous.status in ('resolved', 'repaired') then this_run.run_at
            when previous.status = 'accepted' and accepted.finding_id is null then this_run.run_at
            else previous.reopened_at
        end as reopened_at,
        cast(coalesce(previous.seen_run_count, 0) + 1 as bigint) as seen_run_count
    from current_findings
    cross join this_run
    left join accepted on current_findings.finding_id = accepted.finding_id
    left join previous on current_findings.finding_id = previous.finding_id

),

gone as (

    select
        previous.finding_id,
        previous.rule,
        previous.severity,
        previous.entity,
        previous.systems,
        previous.record_keys,
        previous.field,
        previous.crm_value,
        previous.billing_value,
        previous.scheduling_value,
        previous.ads_value,
        previous.authoritative_system,
        previous.authoritative_value,
        previous.outcome,
        previous.reason,
        previous.proposed_action,
        previous.detected_at,
        previous.first_seen_at,
        previous.last_seen_at,
        case when pushed.finding_id is not null then 'repaired' else 'resolved' end as status,
        this_run.run_at as resolved_at,
        previous.reopened_at,
        previous.seen_run_count
    from previous
    cross join this_run
    left join pushed on previous.finding_id = pushed.finding_id
    where
        previous.status in ('open', 'accepted')
        and previous.finding_id not in (select current_findings.finding_id from current_findings)

),

kept as (

    -- resolved and repaired findings that did not come back: history as it was
    select previous.*
    from previous
    where
        previous.status not in ('open', 'accepted')
        and previous.finding_id not in (select current_findings.finding_id from current_findings)

),

final as (

    select
        finding_id,
        rule,
        severity,
        entity,
        systems,
        record_keys,
        field,
        crm_value,
        billing_value,
        scheduling_value,
        ads_value,
        authoritative_system,
        authoritative_value,
        outcome,
        reason,
        proposed_action,
        detected_at,
        first_seen_at,
        last_seen_at,
        status,
        resolved_at,
        reopened_at,
        seen_run_count
    from seen
    union all
    select
        finding_id,
        rule,
        severity,
        entity,
        systems,
        record_keys,
        field,
        crm_value,
        billing_value,
        scheduling_value,
        ads_value,
        authoritative_system,
        authoritative_value,
        outcome,
        reason,
        proposed_action,
        detected_at,
        first_seen_at,
        last_seen_at,
        status,
        resolved_at,
        reopened_at,
        seen_run_count
    from gone
    union all
    select
        finding_id,
        rule,
        severity,
        entity,
        systems,
        record_keys,
        field,
        crm_value,
        billing_value,
        scheduling_value,
        ads_value,
        authoritative_system,
        authoritative_value,
        outcome,
        reason,
        proposed_action,
        detected_at,
        first_seen_at,
        last_seen_at,
        status,
        resolved_at,
        reopened_at,
        seen_run_count
    from kept

)

select * from final
