{#
    A column that dlt creates only once some record carries it (nested `metadata` keys, a
    property nobody filled in): the column, qualified by `alias` when given, when the raw
    table has it; else a typed null, so staging keeps its shape.
#}
{% macro optional_column(relation, column_name, data_type='varchar', alias=none) -%}
{%- set qualified = (alias ~ '.' ~ column_name) if alias else column_name -%}
{%- if execute -%}
{%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
{%- if column_name | lower in existing -%}
{{ qualified }}
{%- else -%}
cast(null as {{ data_type }})
{%- endif -%}
{%- else -%}
{{ qualified }}
{%- endif -%}
{%- endmacro %}
