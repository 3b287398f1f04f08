{#- The business mapping (vars in dbt_project.yml; `trueup` passes the [mapping] part of its
    config over them): which raw column carries each concept. -#}

{#- The property the mapping names for `concept` on a CRM object ('contacts', 'deals'), or none. -#}
{% macro mapped_property(object, concept) -%}
    {%- set properties = var('crm_contact_properties') if object == 'contacts' else var('crm_deal_properties') -%}
    {%- set name = properties.get(concept) if properties is mapping else none -%}
    {{ return(name if name else none) }}
{%- endmacro %}


{#- A name as dlt's snake_case naming writes it into a column (lower case; spaces, dots and
    dashes as underscores). -#}
{% macro sql_column_name(name) -%}
    {{ return(name | lower | replace(' ', '_') | replace('-', '_') | replace('.', '_')) }}
{%- endmacro %}


{#- dlt's column for a CRM property: `properties.<name>` flattened and snake-cased. -#}
{% macro property_column(name) -%}
    {{ return('properties__' ~ sql_column_name(name)) }}
{%- endmacro %}


{#-
    The raw column the mapping names for `concept` on a CRM object, qualified by `alias`, or a
    typed null when the mapping names none or the raw table has no such column (a property
    the account never filled in).
-#}
{% macro mapped_column(relation, object, concept, alias='source', data_type='varchar') -%}
    {%- set name = mapped_property(object, concept) -%}
    {%- if name is none -%}
        cast(null as {{ data_type }})
    {%- else -%}
        {{ optional_column(relation, property_column(name), data_type, alias) }}
    {%- endif -%}
{%- endmacro %}


{#- A Stripe metadata key's raw column (`metadata__<key>`), or a typed null (no key mapped, or
    no record ever carried it). -#}
{% macro metadata_column(relation, key, alias=none) -%}
    {%- if not key -%}
        cast(null as varchar)
    {%- else -%}
        {{ optional_column(relation, 'metadata__' ~ sql_column_name(key), 'varchar', alias) }}
    {%- endif -%}
{%- endmacro %}


{#- A list var as a SQL list of string literals (`('open', 'paid')`); `(null)` when empty. -#}
{% macro sql_strings(values) -%}
    {%- if values | length == 0 -%}
        (null)
    {%- else -%}
        ({% for value in values %}'{{ value | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif -%}
{%- endmacro %}


{#- Whether a booking question (its text) is the one the mapping names (case and spaces aside). -#}
{% macro is_mapped_question(question, mapped) -%}
    {%- if not mapped -%}
        false
    {%- else -%}
        coalesce(
            lower(regexp_replace(trim({{ question }}), '\s+', ' ', 'g'))
            = '{{ mapped | lower | replace("'", "''") | trim }}',
            false
        )
    {%- endif -%}
{%- endmacro %}
