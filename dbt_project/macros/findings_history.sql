{#- Pieces of the incremental `findings` model: what it held before, and what was pushed. -#}

{#-
    What `findings` held before this run: the model itself on an incremental run, else an empty
    relation of the same columns (first run, full refresh).
-#}
{% macro previous_findings() -%}
    {%- if execute and is_incremental() -%}
        {#- a table written before a column was added (outcome) reads that column as null -#}
        {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if 'outcome' in existing -%}
            {{ this }}
        {%- else -%}
            (select *, cast(null as varchar) as outcome from {{ this }})
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
