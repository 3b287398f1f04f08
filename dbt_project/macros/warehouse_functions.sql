{#-
    trueup's normalizations (ingestion/normalize.py: trueup_e164, trueup_name_key, trueup_fold)
    as functions of the warehouse, created before every run (on-run-start).

    DuckDB: nothing to do, the dbt-duckdb plugin (profiles.yml) registers them on each
    connection. PostgreSQL: PL/Python (plpython3u) functions in the schema
    var('warehouse_functions_schema'), each embedding the source of ingestion/normalize.py
    (var trueup_normalize_source, which trueup passes on every dbt command), so trueup's code
    need not be on the server; the server's Python supplies phonenumbers, anyascii and tzdata,
    from its own site-packages or the directory var('warehouse_python_path')
    (TRUEUP_WAREHOUSE_PYTHON_PATH). The module runs once per connection (cached in GD), not
    once per row. Without the source var (dbt run by hand) the functions must already exist.
-#}
{% macro create_warehouse_functions() -%}
    {{ return(adapter.dispatch('create_warehouse_functions', 'trueup')()) }}
{%- endmacro %}

{% macro default__create_warehouse_functions() -%}
    {{ return('') }}
{%- endmacro %}

{% macro warehouse_functions_schema() -%}
    {{ return(var('warehouse_functions_schema', 'trueup_functions')) }}
{%- endmacro %}

{#- the signatures: name, SQL arguments, result type, whether null in gives null out, the call -#}
{% macro _warehouse_function_specs() -%}
    {{ return([
        ('trueup_e164', 'phone text, regions text', 'text', false,
            "normalize.e164(phone, *(regions or '').split(','))"),
        ('trueup_name_key', 'value text', 'text', true, 'normalize.name_key(value)'),
        ('trueup_fold', 'value text', 'text', true, 'normalize.fold(value)'),
        ('trueup_jaro_winkler', 'left_text text, right_text text', 'double precision', true,
            'normalize.jaro_winkler(left_text, right_text)'),
        ('trueup_damerau_levenshtein', 'left_text text, right_text text', 'bigint', true,
            'normalize.damerau_levenshtein(left_text, right_text)'),
    ]) }}
{%- endmacro %}

{#-
    The functions are created again only when their definitions change (a new trueup, another
    python path): the schema's comment holds the digest of what was created last, so a role
    that may not create PL/Python functions runs dbt once a superuser created them.
-#}
{% macro postgres__create_warehouse_functions() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set schema = warehouse_functions_schema() -%}
    {%- set state = run_query(
        "select obj_description(n.oid, 'pg_namespace'), (select count(*) from pg_proc p "
        ~ "where p.pronamespace = n.oid and p.proname like 'trueup\\_%') "
        ~ "from pg_namespace n where n.nspname = '" ~ schema ~ "'"
    ) -%}
    {%- set comment = state.columns[0].values()[0] if state.rows | length else none -%}
    {%- set python_count = state.columns[1].values()[0] if state.rows | length else 0 -%}
    {%- set source = var('trueup_normalize_source', none) -%}
    {%- if source is none -%}
        {%- if python_count < _warehouse_function_specs() | length -%}
            {{ exceptions.raise_compiler_error(
                "trueup's PL/Python functions (trueup_e164, trueup_name_key, ...) are missing from schema "
                ~ schema ~ ": run dbt through trueup (it passes var trueup_normalize_source), or have them "
                ~ "created once (docs/scaling.md, PostgreSQL)") }}
        {%- endif -%}
        {{ return('') }}
    {%- endif -%}
    {%- set python_path = var('warehouse_python_path', none) or env_var('TRUEUP_WAREHOUSE_PYTHON_PATH', '') -%}
    {#- a no-op where the language is installed (a DBA may have done it once: docs/scaling.md) -#}
    {%- set statements = ['create extension if not exists plpython3u'] -%}
    {%- for kind, sql_type in [('bigint', 'bigint'), ('integer', 'integer'), ('numeric', 'numeric'),
            ('double', 'double precision'), ('boolean', 'boolean'), ('date', 'date'), ('timestamptz', 'timestamptz')] -%}
        {%- do statements.append(_try_cast_function(schema, kind, sql_type)) -%}
    {%- endfor -%}
    {%- do statements.append(_try_cast_decimal_function(schema)) -%}
    {%- for name, arguments, returns, strict, call in _warehouse_function_specs() -%}
        {%- do statements.append(_plpython_function(schema, name, arguments, returns, strict, call, source, python_path)) -%}
    {%- endfor -%}
    {%- set digest = 'trueup ' ~ local_md5(statements | join(';')) -%}
    {%- if comment == digest -%}
        {{ return('') }}
    {%- endif -%}
    {%- do statements.insert(0, 'create schema if not exists ' ~ adapter.quote(schema)) -%}
    {%- do statements.append('comment on schema ' ~ adapter.quote(schema) ~ " is '" ~ digest ~ "'") -%}
    {{ return(statements | join(';\n')) }}
{%- endmacro %}

{#- One function: the module (source as a Python string literal) runs once per connection. -#}
{% macro _plpython_function(schema, name, arguments, returns, strict, call, source, python_path) -%}
    {%- set body -%}
if "trueup_normalize" not in GD:
    import sys
    import types
    path = {{ tojson(python_path) }}
    if path and path not in sys.path:
        sys.path.insert(0, path)
    source = {{ tojson(source) }}
    module = types.ModuleType("trueup_normalize")
    exec(compile(source, "ingestion/normalize.py", "exec"), module.__dict__)
    GD["trueup_normalize"] = module
normalize = GD["trueup_normalize"]
return {{ call }}
    {%- endset -%}
    {%- if '$trueup$' in body -%}
        {{ exceptions.raise_compiler_error('ingestion/normalize.py may not contain $trueup$') }}
    {%- endif -%}
    create or replace function {{ adapter.quote(schema) }}.{{ name }}({{ arguments }}) returns {{ returns }}
    language plpython3u immutable {{ 'strict' if strict else 'called on null input' }}
    as $trueup${{ body }}$trueup$
{%- endmacro %}


{#- try_cast for one type (portable.sql): null where the cast raises (PostgreSQL has no try_cast). -#}
{% macro _try_cast_function(schema, kind, sql_type) -%}
    create or replace function {{ adapter.quote(schema) }}.try_cast_{{ kind }}(value text) returns {{ sql_type }}
    language plpgsql immutable strict
    as $trueup$
    {%- if kind == 'numeric' %}
    declare
        parsed numeric;
    begin
        parsed := cast(value as numeric);
        -- a decimal holds no NaN or infinity (DuckDB's try_cast gives null for them)
        if parsed in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric) then
            return null;
        end if;
        return parsed;
    {%- else %}
    begin
        return cast(value as {{ sql_type }});
    {%- endif %}
    exception when others then
        return null;
    end
    $trueup$
{%- endmacro %}


{#- try_cast to numeric(precision, scale): null where the value does not fit, as DuckDB's. -#}
{% macro _try_cast_decimal_function(schema) -%}
    create or replace function {{ adapter.quote(schema) }}.try_cast_decimal(value text, digits integer, places integer)
    returns numeric
    language plpgsql immutable strict
    as $trueup$
    declare
        parsed numeric;
    begin
        parsed := round(cast(value as numeric), places);
        if parsed in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric)
            or abs(parsed) >= power(10::numeric, digits - places) then
            return null;
        end if;
        return parsed;
    exception when others then
        return null;
    end
    $trueup$
{%- endmacro %}
