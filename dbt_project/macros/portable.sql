{#-
    SQL that differs between engines, one macro per construct: DuckDB (`duckdb__`, the
    default engine, which the sqlfluff lint renders outside dbt) and PostgreSQL (`postgres__`).
    Models call these, never an engine's own spelling, and never branch on the adapter themselves.
-#}

{#- A double-precision float type. -#}
{% macro type_double() -%}{{ (adapter.dispatch('type_double', 'trueup') if adapter is defined else duckdb__type_double)() }}{%- endmacro %}
{% macro duckdb__type_double() -%}double{%- endmacro %}
{% macro postgres__type_double() -%}double precision{%- endmacro %}


{#- An integer type wide enough for any id a source writes as digits (ordering by value). -#}
{% macro type_big_integer() -%}{{ (adapter.dispatch('type_big_integer', 'trueup') if adapter is defined else duckdb__type_big_integer)() }}{%- endmacro %}
{% macro duckdb__type_big_integer() -%}hugeint{%- endmacro %}
{% macro postgres__type_big_integer() -%}numeric{%- endmacro %}


{#-
    `value` as `data_type` (double, big_integer, or a type both engines spell alike: bigint,
    integer, boolean, date, timestamptz, decimal(p, s)), or null where it does not convert.
    PostgreSQL has no try_cast: the on-run-start hook creates one function per type
    (warehouse_functions.sql) that returns null where the cast raises.
-#}
{% macro try_cast(value, data_type) -%}{{ (adapter.dispatch('try_cast', 'trueup') if adapter is defined else duckdb__try_cast)(value, data_type) }}{%- endmacro %}

{% macro duckdb__try_cast(value, data_type) -%}
    {%- set data_type = _sql_type(data_type) | trim -%}
    try_cast({{ value }} as {{ data_type }})
{%- endmacro %}

{% macro postgres__try_cast(value, data_type) -%}
    {%- set data_type = _sql_type(data_type) | trim -%}
    {%- set kind = data_type.split('(')[0] | trim | lower -%}
    {%- set kinds = {'bigint': 'bigint', 'integer': 'integer', 'numeric': 'numeric', 'decimal': 'numeric',
        'double precision': 'double', 'boolean': 'boolean', 'date': 'date', 'timestamptz': 'timestamptz'} -%}
    {%- if kind not in kinds -%}
        {{ exceptions.raise_compiler_error('try_cast: no PostgreSQL reading for type ' ~ data_type) }}
    {%- endif -%}
    {%- set call = warehouse_functions_schema() ~ '.try_cast_' ~ kinds[kind] ~ '(cast(' ~ value ~ ' as text))' -%}
    {%- if kind in ('numeric', 'decimal') and '(' in data_type -%}
        {%- set spec = (data_type.split('(')[1].rstrip(') ').split(',') + ['0'])[:2] -%}
        cast({{ warehouse_functions_schema() }}.try_cast_decimal(cast({{ value }} as text), {{ spec[0] | trim }}, {{ spec[1] | trim }}) as {{ data_type }})
    {%- else -%}
        {{ call }}
    {%- endif -%}
{%- endmacro %}

{% macro _sql_type(data_type) -%}
    {%- if data_type == 'double' -%}{{ type_double() }}
    {%- elif data_type == 'big_integer' -%}{{ type_big_integer() }}
    {%- else -%}{{ data_type }}
    {%- endif -%}
{%- endmacro %}


{#- Whether `pattern` (a regular expression literal) matches anywhere in `text`. -#}
{% macro regexp_contains(text, pattern) -%}{{ (adapter.dispatch('regexp_contains', 'trueup') if adapter is defined else duckdb__regexp_contains)(text, pattern) }}{%- endmacro %}
{% macro duckdb__regexp_contains(text, pattern) -%}regexp_matches({{ text }}, {{ pattern }}){%- endmacro %}
{% macro postgres__regexp_contains(text, pattern) -%}({{ text }} ~ {{ pattern }}){%- endmacro %}


{#- Whether `pattern` matches the whole of `text`. -#}
{% macro regexp_whole(text, pattern) -%}{{ (adapter.dispatch('regexp_whole', 'trueup') if adapter is defined else duckdb__regexp_whole)(text, pattern) }}{%- endmacro %}
{% macro duckdb__regexp_whole(text, pattern) -%}regexp_full_match({{ text }}, {{ pattern }}){%- endmacro %}
{% macro postgres__regexp_whole(text, pattern) -%}({{ text }} ~ ('^(?:' || {{ pattern }} || ')$')){%- endmacro %}


{#- Group `group` of the first match of `pattern` in `text`; '' where it does not match. -#}
{% macro regexp_group(text, pattern, group=0) -%}{{ (adapter.dispatch('regexp_group', 'trueup') if adapter is defined else duckdb__regexp_group)(text, pattern, group) }}{%- endmacro %}
{% macro duckdb__regexp_group(text, pattern, group) -%}regexp_extract({{ text }}, {{ pattern }}, {{ group }}){%- endmacro %}
{% macro postgres__regexp_group(text, pattern, group) -%}
    {%- if group == 0 -%}
        coalesce(substring({{ text }} from {{ pattern }}), '')
    {%- else -%}
        coalesce((regexp_match({{ text }}, {{ pattern }}))[{{ group }}], '')
    {%- endif -%}
{%- endmacro %}


{#- A regular-expression class (inside [...]) of every Unicode space: \s, the Z categories,
    the zero-width space and the byte-order mark. -#}
{% macro unicode_spaces() -%}{{ (adapter.dispatch('unicode_spaces', 'trueup') if adapter is defined else duckdb__unicode_spaces)() }}{%- endmacro %}
{% macro duckdb__unicode_spaces() -%}\s\p{Z}\x{200B}\x{FEFF}{%- endmacro %}
{% macro postgres__unicode_spaces() -%}
    \t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200B\u2028\u2029\u202F\u205F\u3000\uFEFF
{%- endmacro %}


{#- A date or timestamp as YYYY-MM-DD text. -#}
{% macro date_text(value) -%}{{ (adapter.dispatch('date_text', 'trueup') if adapter is defined else duckdb__date_text)(value) }}{%- endmacro %}
{% macro duckdb__date_text(value) -%}strftime({{ value }}, '%Y-%m-%d'){%- endmacro %}
{% macro postgres__date_text(value) -%}to_char({{ value }}, 'YYYY-MM-DD'){%- endmacro %}


{#- A timestamp (timestamptz) as ISO-8601 UTC text with milliseconds ("2025-01-02T03:04:05.678Z"). -#}
{% macro utc_text(value) -%}{{ (adapter.dispatch('utc_text', 'trueup') if adapter is defined else duckdb__utc_text)(value) }}{%- endmacro %}
{% macro duckdb__utc_text(value) -%}strftime(timezone('UTC', {{ value }}), '%Y-%m-%dT%H:%M:%S.%gZ'){%- endmacro %}
{% macro postgres__utc_text(value) -%}to_char(timezone('UTC', {{ value }}), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'){%- endmacro %}


{#- Seconds since 1970-01-01 UTC of a timestamp, as a number with a fraction. -#}
{% macro epoch_seconds(value) -%}{{ (adapter.dispatch('epoch_seconds', 'trueup') if adapter is defined else duckdb__epoch_seconds)(value) }}{%- endmacro %}
{% macro duckdb__epoch_seconds(value) -%}epoch({{ value }}){%- endmacro %}
{% macro postgres__epoch_seconds(value) -%}extract(epoch from {{ value }}){%- endmacro %}


{#- An interval of `days` days. -#}
{% macro days_interval(days) -%}{{ (adapter.dispatch('days_interval', 'trueup') if adapter is defined else duckdb__days_interval)(days) }}{%- endmacro %}
{% macro duckdb__days_interval(days) -%}to_days({{ days }}){%- endmacro %}
{% macro postgres__days_interval(days) -%}make_interval(days => {{ days }}){%- endmacro %}


{#- Integer division (both operands non-negative integers): the quotient rounded down. -#}
{% macro int_div(numerator, denominator) -%}{{ (adapter.dispatch('int_div', 'trueup') if adapter is defined else duckdb__int_div)(numerator, denominator) }}{%- endmacro %}
{% macro duckdb__int_div(numerator, denominator) -%}(({{ numerator }}) // ({{ denominator }})){%- endmacro %}
{% macro postgres__int_div(numerator, denominator) -%}div({{ numerator }}, {{ denominator }}){%- endmacro %}


{#- A number as text with `places` decimals ("12.50"). -#}
{% macro fixed_text(value, places=2) -%}{{ (adapter.dispatch('fixed_text', 'trueup') if adapter is defined else duckdb__fixed_text)(value, places) }}{%- endmacro %}
{% macro duckdb__fixed_text(value, places) -%}printf('%.{{ places }}f', {{ value }}){%- endmacro %}
{% macro postgres__fixed_text(value, places) -%}cast(round(cast({{ value }} as numeric), {{ places }}) as varchar){%- endmacro %}


{#- The value of `value` on the row with the largest (arg_max) / smallest (arg_min) `by` (a
    column, a row `(a, b)` or a list_literal), rows where either is null left out (DuckDB's
    arg_max); `where`: an optional filter of the rows. -#}
{% macro arg_max(value, by, where=none) -%}{{ (adapter.dispatch('arg_extreme', 'trueup') if adapter is defined else duckdb__arg_extreme)(value, by, 'max', where) }}{%- endmacro %}
{% macro arg_min(value, by, where=none) -%}{{ (adapter.dispatch('arg_extreme', 'trueup') if adapter is defined else duckdb__arg_extreme)(value, by, 'min', where) }}{%- endmacro %}
{% macro duckdb__arg_extreme(value, by, extreme, where) -%}
    arg_{{ extreme }}({{ value }}, {{ by }}){% if where %} filter (where {{ where }}){% endif %}
{%- endmacro %}
{% macro postgres__arg_extreme(value, by, extreme, where) -%}
    (array_agg({{ value }} order by {{ by }} {{ 'desc' if extreme == 'max' else 'asc' }})
        filter (where ({{ value }}) is not null and not ({{ by }}) is null{% if where %} and ({{ where }}){% endif %}))[1]
{%- endmacro %}


{#- A list of values of one type (lists compare item by item, nulls last). -#}
{% macro list_literal(items) -%}{{ (adapter.dispatch('list_literal', 'trueup') if adapter is defined else duckdb__list_literal)(items) }}{%- endmacro %}
{% macro duckdb__list_literal(items) -%}[{{ items | join(', ') }}]{%- endmacro %}
{% macro postgres__list_literal(items) -%}array[{{ items | join(', ') }}]{%- endmacro %}


{#- A sorted list of the distinct values of a group, and whether two such lists share one. -#}
{% macro distinct_list(value) -%}{{ (adapter.dispatch('distinct_list', 'trueup') if adapter is defined else duckdb__distinct_list)(value) }}{%- endmacro %}
{% macro duckdb__distinct_list(value) -%}list(distinct {{ value }} order by {{ value }}){%- endmacro %}
{% macro postgres__distinct_list(value) -%}array_agg(distinct {{ value }} order by {{ value }}){%- endmacro %}

{% macro lists_overlap(left, right) -%}{{ (adapter.dispatch('lists_overlap', 'trueup') if adapter is defined else duckdb__lists_overlap)(left, right) }}{%- endmacro %}
{% macro duckdb__lists_overlap(left, right) -%}list_has_any({{ left }}, {{ right }}){%- endmacro %}
{% macro postgres__lists_overlap(left, right) -%}coalesce({{ left }} && {{ right }}, false){%- endmacro %}


{#- Whether the text list `text` (items separated by `separators`, a regexp) holds `item`. -#}
{% macro split_contains(text, separators, item) -%}{{ (adapter.dispatch('split_contains', 'trueup') if adapter is defined else duckdb__split_contains)(text, separators, item) }}{%- endmacro %}
{% macro duckdb__split_contains(text, separators, item) -%}
    list_contains(regexp_split_to_array({{ text }}, {{ separators }}), {{ item }})
{%- endmacro %}
{% macro postgres__split_contains(text, separators, item) -%}
    ({{ item }} = any(regexp_split_to_array({{ text }}, {{ separators }})))
{%- endmacro %}


{#- The text of key `key` of a json value (a json column, or json text). -#}
{% macro json_text(value, key) -%}{{ (adapter.dispatch('json_text', 'trueup') if adapter is defined else duckdb__json_text)(value, key) }}{%- endmacro %}
{% macro duckdb__json_text(value, key) -%}json_extract_string({{ value }}, '$.{{ key }}'){%- endmacro %}
{% macro postgres__json_text(value, key) -%}(cast({{ value }} as jsonb) ->> '{{ key }}'){%- endmacro %}


{#- Compact json object text of (name, text expression) pairs in the given order:
    {"a":"1","b":null}, the same text on every engine (finding ids hash it). -#}
{% macro json_object_text(pairs) -%}{{ (adapter.dispatch('json_object_text', 'trueup') if adapter is defined else duckdb__json_object_text)(pairs) }}{%- endmacro %}
{% macro duckdb__json_object_text(pairs) -%}
    {%- set items = [] -%}
    {%- for name, expression in pairs -%}
        {%- set _ = items.append("'" ~ name ~ "', " ~ expression) -%}
    {%- endfor -%}
    cast(json_object({{ items | join(', ') }}) as varchar)
{%- endmacro %}
{% macro postgres__json_object_text(pairs) -%}
    {%- set items = [] -%}
    {%- for name, expression in pairs -%}
        {%- set _ = items.append("'" ~ ('' if loop.first else ',') ~ '"' ~ name ~ "\":' || coalesce(cast(to_json(" ~ expression ~ ") as text), 'null')") -%}
    {%- endfor -%}
    ('{' || {{ items | join(' || ') }} || '}')
{%- endmacro %}


{#- A double rounded to `places` decimals, half away from zero (PostgreSQL's own round of a
    double breaks ties to even, and takes no places), still a double. -#}
{% macro round_double(value, places=0) -%}
    {{ (adapter.dispatch('round_double', 'trueup') if adapter is defined else duckdb__round_double)(value, places) }}
{%- endmacro %}
{% macro duckdb__round_double(value, places) -%}round({{ value }}, {{ places }}){%- endmacro %}
{% macro postgres__round_double(value, places) -%}
    cast(round(cast({{ value }} as numeric), {{ places }}) as double precision)
{%- endmacro %}


{#- Some value of a group whose rows all hold the same one (DuckDB any_value; min elsewhere). -#}
{% macro some_value(value) -%}
    {{ (adapter.dispatch('some_value', 'trueup') if adapter is defined else duckdb__some_value)(value) }}
{%- endmacro %}
{% macro duckdb__some_value(value) -%}any_value({{ value }}){%- endmacro %}
{% macro postgres__some_value(value) -%}min({{ value }}){%- endmacro %}


{#- Calendar days from one timestamp to another (midnights passed, in the session's UTC). -#}
{% macro days_between(start, end) -%}
    {{ (adapter.dispatch('days_between', 'trueup') if adapter is defined else duckdb__days_between)(start, end) }}
{%- endmacro %}
{% macro duckdb__days_between(start, end) -%}date_diff('day', {{ start }}, {{ end }}){%- endmacro %}
{% macro postgres__days_between(start, end) -%}(cast({{ end }} as date) - cast({{ start }} as date)){%- endmacro %}

{#- A double that is a number: not NaN and not an infinity (PostgreSQL's isfinite takes dates only). -#}
{% macro is_finite(value) -%}{{ (adapter.dispatch('is_finite', 'trueup') if adapter is defined else duckdb__is_finite)(value) }}{%- endmacro %}
{% macro duckdb__is_finite(value) -%}isfinite({{ value }}){%- endmacro %}
{% macro postgres__is_finite(value) -%}
    ({{ value }} not in (cast('NaN' as double precision), cast('Infinity' as double precision), cast('-Infinity' as double precision)))
{%- endmacro %}
