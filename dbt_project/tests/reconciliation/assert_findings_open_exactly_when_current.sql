-- A returned row is a finding whose status disagrees with this run: open or accepted but not
-- detected now, or detected now but not open or accepted.

with

findings as (

    select * from {{ ref('findings') }}

),

current_findings as (

    select * from {{ ref('findings_current') }}

)

select
    coalesce(findings.finding_id, current_findings.finding_id) as finding_id,
    findings.status
from findings
full outer join current_findings on findings.finding_id = current_findings.finding_id
where (findings.status in ('open', 'accepted')) is distinct from (current_findings.finding_id is not null)
