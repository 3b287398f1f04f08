{#
    A raw table a source writes only in some accounts (Stripe's invoice payments exist from API
    version 2025-03-31 on): the source table when the warehouse has it, else an empty relation
    with the given columns, so staging builds on either. `columns` maps each column to its type.
#}
{% macro optional_source(source_name, table_name, columns) -%}
{%- set relation = source(source_name, table_name) -%}
{%- if execute and adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
(select {% for name, data_type in columns.items() %}cast(null as {{ data_type }}) as {{ name }}{{ ", " if not loop.last }}{% endfor %} where false)
{%- else -%}
{{ relation }}
{%- endif -%}
{%- endmacro %}
