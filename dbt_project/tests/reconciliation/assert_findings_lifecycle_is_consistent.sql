-- A returned row is a finding whose lifecycle stamps contradict its status: resolved or
-- repaired without resolved_at (or open/accepted with one), or seen stamps out of order.

select
    finding_id,
    status,
    first_seen_at,
    last_seen_at,
    resolved_at,
    reopened_at
from {{ ref('findings') }}
where
    (status in ('resolved', 'repaired')) != (resolved_at is not null)
    or last_seen_at < first_seen_at
    or resolved_at < last_seen_at
    or reopened_at < first_seen_at
