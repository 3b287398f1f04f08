-- A returned row is a link (or review row) whose confidence is outside [0, 1], or a review
-- row at or above the threshold.

select
    link_id as id,
    confidence,
    'link' as checked_model
from {{ ref('int_identity__links') }}
where confidence < 0 or confidence > 1

union all

select
    review_id as id,
    confidence,
    'review' as checked_model
from {{ ref('int_identity__review') }}
where confidence < 0 or confidence >= {{ var('identity_confidence_threshold') }}
