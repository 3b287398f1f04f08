{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Layers land in schemas named after them (staging, marts, ...), not "<target>_<layer>". -#}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
