{#
    Free-text dates typed into a CRM property. ISO dates (optionally followed by a time)
    parse as they are; `MM/DD/YYYY` (also with `-` or `.`) parses when it can mean one
    day only: month first when both parts are <= 12 and equal, or when only the first
    is <= 12; day first when only the second is <= 12. Both parts <= 12 and different is
    ambiguous (`is_ambiguous_date`) and yields null; so does anything else.
#}
{% macro _slash_date_part(value, position) -%}
    {{ try_cast(
        "nullif(" ~ regexp_group('trim(' ~ value ~ ')', "'^([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})$'", position) ~ ", '')",
        'integer'
    ) }}
{%- endmacro %}

{% macro parse_free_date(value) -%}
    {%- set first = _slash_date_part(value, 1) -%}
    {%- set second = _slash_date_part(value, 2) -%}
    {%- set year = _slash_date_part(value, 3) -%}
    case
        when {{ regexp_contains('trim(' ~ value ~ ')', "'^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([T ].*)?$'") }}
            then {{ try_cast(regexp_group('trim(' ~ value ~ ')', "'^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}'"), 'date') }}
        when {{ is_ambiguous_date(value) }}
            then null
        when {{ first }} <= 12
            then {{ try_cast(year ~ " || '-' || " ~ first ~ " || '-' || " ~ second, 'date') }}
        when {{ second }} <= 12
            then {{ try_cast(year ~ " || '-' || " ~ second ~ " || '-' || " ~ first, 'date') }}
    end
{%- endmacro %}

{% macro is_ambiguous_date(value) -%}
    {%- set first = _slash_date_part(value, 1) -%}
    {%- set second = _slash_date_part(value, 2) -%}
    coalesce({{ first }} <= 12 and {{ second }} <= 12 and {{ first }} <> {{ second }}, false)
{%- endmacro %}
