{#
    A column that dlt creates only once some record carries it (nested `metadata` keys):
    the column when the raw table has it, else a typed null, so staging keeps its shape.
#}
{% macro optional_column(relation, column_name, data_type='varchar') -%}
{%- if execute -%}
{%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
{%- if column_name | lower in existing -%}
{{ column_name }}
{%- else -%}
cast(null as {{ data_type }})
{%- endif -%}
{%- else -%}
{{ column_name }}
{%- endif -%}
{%- endmacro %}
