{#- Pieces of the history models: what they held after the last run that counts, and what was pushed. -#}

{#-
    The relation a history model (`findings`, `findings_daily`) starts from: its table in the
    published copy (var published_warehouse, set by trueup while a copy exists), so history
    holds only runs that published and a killed or failed run leaves no trace; else its table in
    the warehouse (nothing published yet: `trueup build` alone, tests); else none (first run).
-#}
{% macro history_relation(identifier) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.dispatch('history_relation', 'trueup')(identifier)) }}
{%- endmacro %}

{#- PostgreSQL: the published copy is the schema published_<schema> of the same database. -#}
{% macro postgres__history_relation(identifier) -%}
    {%- set published = adapter.get_relation(this.database, 'published_' ~ this.schema, identifier) -%}
    {%- if published is not none -%}
        {{ return(published) }}
    {%- endif -%}
    {{ return(adapter.get_relation(this.database, this.schema, identifier)) }}
{%- endmacro %}

{% macro default__history_relation(identifier) -%}
    {%- set path = var('published_warehouse', none) -%}
    {%- if path -%}
        {%- do run_query(
            "attach if not exists '" ~ (path | replace("'", "''")) ~ "' as trueup_published (read_only)"
        ) -%}
        {%- set found = run_query(
            "select count(*) from duckdb_tables() where database_name = 'trueup_published' "
            ~ "and schema_name = '" ~ this.schema ~ "' and table_name = '" ~ identifier ~ "'"
        ) -%}
        {%- if found.columns[0].values()[0] > 0 -%}
            {{ return(api.Relation.create(database='trueup_published', schema=this.schema, identifier=identifier)) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(adapter.get_relation(this.database, this.schema, identifier)) }}
{%- endmacro %}


{#-
    What `findings` held after the last run that counts (history_relation), else an empty
    relation of the same columns (first run).
-#}
{% macro previous_findings() -%}
    {%- set previous = history_relation('findings') -%}
    {%- if previous is not none -%}
        {#- a table written before a column was added (outcome, reason) reads it as null -#}
        {%- set existing = adapter.get_columns_in_relation(previous) | map(attribute='name') | list -%}
        {%- set added = [] -%}
        {%- for column in ['outcome', 'reason'] if column not in existing -%}
            {%- do added.append('cast(null as varchar) as ' ~ column) -%}
        {%- endfor -%}
        {%- if not added -%}
            {{ previous }}
        {%- else -%}
            (select *, {{ added | join(', ') }} from {{ previous }})
        {%- endif -%}
    {%- else -%}
        (
            select
                cast(null as varchar) as finding_id,
                cast(null as varchar) as rule,
                cast(null as varchar) as severity,
                cast(null as varchar) as entity,
                cast(null as varchar) as systems,
                cast(null as varchar) as record_keys,
                cast(null as varchar) as field,
                cast(null as varchar) as crm_value,
                cast(null as varchar) as billing_value,
                cast(null as varchar) as scheduling_value,
                cast(null as varchar) as ads_value,
                cast(null as varchar) as authoritative_system,
                cast(null as varchar) as authoritative_value,
                cast(null as varchar) as outcome,
                cast(null as varchar) as reason,
                cast(null as varchar) as proposed_action,
                cast(null as timestamptz) as detected_at,
                cast(null as timestamptz) as first_seen_at,
                cast(null as timestamptz) as last_seen_at,
                cast(null as varchar) as status,
                cast(null as timestamptz) as resolved_at,
                cast(null as timestamptz) as reopened_at,
                cast(null as bigint) as seen_run_count
            where false
        )
    {%- endif -%}
{%- endmacro %}


{#-
    Finding ids the reverse-ETL ledger recorded a successful push for, when the ledger exists
    (vars reverse_etl_ledger_schema / reverse_etl_ledger_table, default reverse_etl.ledger) and
    has a finding_id column; rows count when their `status` (if the ledger has one) says so.
    Otherwise an empty relation: every finding that goes away is then `resolved`.
-#}
{% macro repaired_findings() -%}
    {%- set schema = var('reverse_etl_ledger_schema', 'reverse_etl') -%}
    {%- set identifier = var('reverse_etl_ledger_table', 'ledger') -%}
    {%- set ledger = adapter.get_relation(target.database, schema, identifier) if execute else none -%}
    {%- set columns = adapter.get_columns_in_relation(ledger) | map(attribute='name') | list
        if ledger is not none else [] -%}
    {%- set succeeded = "lower(cast(status as varchar)) in ('succeeded', 'success', 'ok', 'applied')"
        if 'status' in columns else 'true' -%}
    {%- if 'finding_id' in columns -%}
        (select distinct cast(finding_id as varchar) as finding_id from {{ ledger }} where {{ succeeded }})
    {%- else -%}
        (select cast(null as varchar) as finding_id where false)
    {%- endif -%}
{%- endmacro %}


{#-
    The decisions people recorded on findings (`trueup findings accept|reopen`, or the Dagster
    job `findings_review`), when the table exists: finding_id, action (accept, reopen), reason,
    decided_by, decided_at and the four values the finding had then. Otherwise an empty relation.
-#}
{% macro finding_decisions() -%}
    {%- set table = adapter.get_relation(target.database, 'reconciliation', 'finding_decisions')
        if execute else none -%}
    {%- if table is not none -%}
        (
            select
                cast(finding_id as varchar) as finding_id,
                cast(action as varchar) as action,
                cast(decided_at as timestamptz) as decided_at,
                cast(crm_value as varchar) as crm_value,
                cast(billing_value as varchar) as billing_value,
                cast(scheduling_value as varchar) as scheduling_value,
                cast(ads_value as varchar) as ads_value
            from {{ table }}
        )
    {%- else -%}
        (
            select
                cast(null as varchar) as finding_id,
                cast(null as varchar) as action,
                cast(null as timestamptz) as decided_at,
                cast(null as varchar) as crm_value,
                cast(null as varchar) as billing_value,
                cast(null as varchar) as scheduling_value,
                cast(null as varchar) as ads_value
            where false
        )
    {%- endif -%}
{%- endmacro %}


{#-
    What `findings_daily` held after the last run that counts (history_relation), without a
    row of this run's time; else an empty relation of its columns.
-#}
{% macro previous_findings_daily() -%}
    {%- set previous = history_relation('findings_daily') -%}
    {%- if previous is not none -%}
        (
            select run_at, run_date, rule, new_count, reopened_count, open_count, accepted_count,
                resolved_count, repaired_count
            from {{ previous }}
            where run_at <> {{ reconciliation_now() }}
        )
    {%- else -%}
        (
            select
                cast(null as timestamptz) as run_at,
                cast(null as date) as run_date,
                cast(null as varchar) as rule,
                cast(null as bigint) as new_count,
                cast(null as bigint) as reopened_count,
                cast(null as bigint) as open_count,
                cast(null as bigint) as accepted_count,
                cast(null as bigint) as resolved_count,
                cast(null as bigint) as repaired_count
            where false
        )
    {%- endif -%}
{%- endmacro %}
