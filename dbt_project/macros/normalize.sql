{#-
    Normalizations staging applies to people: phones as libphonenumber reads them, names as
    transliterated keys, text with every Unicode space trimmed. On DuckDB they call the
    functions `ingestion/normalize.py` registers (a dbt-duckdb plugin, profiles.yml); on
    PostgreSQL the same module runs as PL/Python functions (warehouse_functions.sql); other
    engines get the plain-SQL readings below.
-#}

{#- A phone as typed to E.164, read in the record's own region (`region`: a country code or
    name; null for none), then in var default_phone_region, then in a weak hint
    (`fallback_region`, e.g. the time zone a booking was made from). -#}
{% macro phone_e164(phone, region='null', fallback_region='null') -%}
    {%- if adapter is defined -%}
        {{ return(adapter.dispatch('phone_e164', 'trueup')(phone, region, fallback_region)) }}
    {%- else -%}{# linted outside dbt #}
        {{ return(duckdb__phone_e164(phone, region, fallback_region)) }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__phone_e164(phone, region, fallback_region) -%}
    trueup_e164(
        cast({{ phone }} as varchar),
        concat_ws(',', {{ region }}, '{{ var("default_phone_region") }}', {{ fallback_region }})
    )
{%- endmacro %}

{% macro postgres__phone_e164(phone, region, fallback_region) -%}
    {{ warehouse_functions_schema() }}.trueup_e164(
        cast({{ phone }} as varchar),
        concat_ws(',', {{ region }}, '{{ var("default_phone_region") }}', {{ fallback_region }})
    )
{%- endmacro %}

{% macro default__phone_e164(phone, region, fallback_region) -%}
    {{ to_e164(phone) }}
{%- endmacro %}


{#- Letters only, transliterated (ø→o, ß→ss, æ→ae) and lower-cased: the key names compare by. -#}
{% macro name_key(text) -%}
    {%- if adapter is defined -%}
        {{ return(adapter.dispatch('name_key', 'trueup')(text)) }}
    {%- else -%}{# linted outside dbt #}
        {{ return(duckdb__name_key(text)) }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__name_key(text) -%}
    trueup_name_key(cast({{ text }} as varchar))
{%- endmacro %}

{% macro postgres__name_key(text) -%}
    {{ warehouse_functions_schema() }}.trueup_name_key(cast({{ text }} as varchar))
{%- endmacro %}

{% macro default__name_key(text) -%}
    nullif(regexp_replace(lower({{ text }}), '[^a-z]', '', 'g'), '')
{%- endmacro %}


{#- DuckDB's jaro_winkler_similarity of two name keys (normalize.jaro_winkler elsewhere). -#}
{% macro name_similarity(left, right) -%}
    {{ (adapter.dispatch('name_similarity', 'trueup') if adapter is defined else duckdb__name_similarity)(left, right) }}
{%- endmacro %}
{% macro duckdb__name_similarity(left, right) -%}jaro_winkler_similarity({{ left }}, {{ right }}){%- endmacro %}
{% macro postgres__name_similarity(left, right) -%}
    {{ warehouse_functions_schema() }}.trueup_jaro_winkler({{ left }}, {{ right }})
{%- endmacro %}


{#- DuckDB's damerau_levenshtein of two texts (normalize.damerau_levenshtein elsewhere). -#}
{% macro edit_distance(left, right) -%}
    {{ (adapter.dispatch('edit_distance', 'trueup') if adapter is defined else duckdb__edit_distance)(left, right) }}
{%- endmacro %}
{% macro duckdb__edit_distance(left, right) -%}damerau_levenshtein({{ left }}, {{ right }}){%- endmacro %}
{% macro postgres__edit_distance(left, right) -%}
    {{ warehouse_functions_schema() }}.trueup_damerau_levenshtein({{ left }}, {{ right }})
{%- endmacro %}


{#- Lower-cased ASCII with single spaces: two texts that fold alike differ only by case,
    accents and spacing. -#}
{% macro folded(text) -%}
    {%- if adapter is defined -%}
        {{ return(adapter.dispatch('folded', 'trueup')(text)) }}
    {%- else -%}{# linted outside dbt #}
        {{ return(duckdb__folded(text)) }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__folded(text) -%}
    trueup_fold(cast({{ text }} as varchar))
{%- endmacro %}

{% macro postgres__folded(text) -%}
    {{ warehouse_functions_schema() }}.trueup_fold(cast({{ text }} as varchar))
{%- endmacro %}

{% macro default__folded(text) -%}
    nullif(lower(regexp_replace(trim({{ text }}), '\s+', ' ', 'g')), '')
{%- endmacro %}


{#- Text with every Unicode space (tabs, newlines, no-break and zero-width spaces) trimmed
    and runs of them inside collapsed to one space; null when nothing is left. -#}
{% macro tidy(text) -%}
    {%- set spaces = unicode_spaces() -%}
    nullif(
        regexp_replace(
            regexp_replace(
                cast({{ text }} as varchar),
                '^[{{ spaces }}]+|[{{ spaces }}]+$', '', 'g'
            ),
            '[{{ spaces }}]+', ' ', 'g'
        ),
        ''
    )
{%- endmacro %}


{#- A company's name as a key: folded, `&` read as `and`, punctuation and legal suffixes
    (Inc, LLC, Ltd, Corp, Co, GmbH, ...) dropped, no spaces ("ACME, Inc." -> "acme"). -#}
{% macro company_key(text) -%}
    nullif(
        replace(
            regexp_replace(
                trim(regexp_replace(
                    replace({{ folded(text) }}, '&', ' and '),
                    '[^a-z0-9]+', ' ', 'g'
                )),
                '( (inc|incorporated|llc|llp|ltd|limited|corp|corporation|co|company|plc|gmbh|ag|sa|srl|bv|oy|ab|as|aps|pty|kg))+$',
                ''
            ),
            ' ', ''
        ),
        ''
    )
{%- endmacro %}
