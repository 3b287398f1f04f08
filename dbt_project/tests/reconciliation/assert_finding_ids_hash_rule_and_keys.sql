-- A returned row is a finding whose id is not the md5 of its rule and record keys, so it would
-- not stay stable across runs.

select
    finding_id,
    rule,
    record_keys
from {{ ref('findings_current') }}
where finding_id is distinct from md5(rule || '|' || record_keys)
