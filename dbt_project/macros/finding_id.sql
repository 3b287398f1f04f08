{#-
    Stable identity of a finding: md5 of the rule name and the record keys json, so the same
    disagreement on the same records gets the same id in every run.
-#}
{% macro finding_id(rule, record_keys_column='record_keys') -%}
    md5('{{ rule }}' || '|' || {{ record_keys_column }})
{%- endmacro %}


{#-
    The keys of a finding as compact json text, in the given order and with the key names of the
    anomaly kinds (sandbox/WORLD.md). `keys` is a list of (name, sql expression) pairs; every
    value is rendered as text so ids compare exactly.
-#}
{% macro record_keys(keys) -%}
    {%- set pairs = [] -%}
    {%- for name, expression in keys -%}
        {%- set _ = pairs.append((name, "cast(" ~ expression ~ " as varchar)")) -%}
    {%- endfor -%}
    {{ json_object_text(pairs) }}
{%- endmacro %}
