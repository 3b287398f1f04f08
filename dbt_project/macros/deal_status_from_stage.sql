{#
    A deal stage's outcome from its pipeline metadata, never from stage ids: an open stage
    is `open`; a closed stage is `won` when its probability is 1 and `lost` otherwise.
    Null when the metadata is missing, so the staging tests catch it.
#}
{% macro deal_status_from_stage(is_closed, probability) -%}
    case
        when {{ is_closed }} = false then 'open'
        when {{ is_closed }} and {{ probability }} >= 1.0 then 'won'
        when {{ is_closed }} and {{ probability }} is not null then 'lost'
    end
{%- endmacro %}
