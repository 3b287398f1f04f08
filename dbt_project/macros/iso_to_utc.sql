{#
    An ISO-8601 timestamp string with its offset ("2026-03-01T09:15:00.000Z") to a UTC
    timestamptz; an empty string (how HubSpot can send an unset property) is null.
#}
{% macro iso_to_utc(value) -%}
    cast(nullif(trim({{ value }}), '') as timestamptz)
{%- endmacro %}
