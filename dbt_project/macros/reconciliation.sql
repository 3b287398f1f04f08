{#- Shared pieces of the reconciliation rules (models/reconciliation/). -#}

{#- The rules, one `rec_<rule>` model each; names are the anomaly kinds of sandbox/WORLD.md. -#}
{% macro reconciliation_rules() -%}
    {{ return([
        'deal_won_no_invoice',
        'paid_invoice_crm_not_customer',
        'invoice_amount_mismatch',
        'appointment_time_mismatch',
        'appointment_status_mismatch',
        'email_mismatch',
        'name_mismatch',
        'phone_mismatch',
        'billing_orphan',
        'crm_duplicate',
        'ad_conversion_mismatch',
        'invoice_payment_mismatch',
        'malformed_date',
        'malformed_phone',
        'malformed_value',
    ]) }}
{%- endmacro %}


{#- The run's timestamp (var `run_started_at`, else dbt's): detected/first/last seen stamps. -#}
{% macro reconciliation_now() -%}
    {%- set stamp = var('run_started_at', none) -%}
    {%- if stamp is none -%}
        {%- set stamp = run_started_at.isoformat() if run_started_at is not none else none -%}
    {%- endif -%}
    {%- if stamp is none -%}
        current_timestamp
    {%- else -%}
        cast('{{ stamp }}' as timestamptz)
    {%- endif -%}
{%- endmacro %}


{#-
    Whether an ownership receiver_systems value (systems separated by commas, semicolons, pipes
    or spaces; empty for none) names `system` (a sql expression).
-#}
{% macro is_receiver(receiver_systems, system) -%}
    coalesce({{ split_contains(
        "trim(coalesce(" ~ receiver_systems ~ ", ''))", "'[\\s,;|]+'", system
    ) }}, false)
{%- endmacro %}


{#- A timestamp as ISO-8601 UTC text with milliseconds, the way the CRM writes them. -#}
{% macro iso_utc(expression) -%}
    {{ utc_text(expression) }}
{%- endmacro %}


{#-
    The final select of a rule model. `compared` must be a CTE with record_keys, field and the
    four per-system values (null where a system does not hold the field). `outcome` is a SQL
    expression: `missing` (one side empty: a gap to fill), `conflict` (both present and
    different after normalization) or `malformed` (a value no reading makes sense of); an
    `equivalent` pair (differing only by case, accents, spacing, a nickname or a format) is
    never a finding, so a rule leaves it out of `compared`. The ownership rows of
    `owner_entity` and `owner_fields` give the authoritative system and value; the action is a
    push to `target_system` only when every one of those rows names it as a receiver under an
    `auto` or `review` policy (`never`: not pushed; `review` waits for approval in reverse
    ETL), the authoritative value is present (an empty owner never overwrites a value), and
    `is_write_safe` (an identity link at or above the confidence threshold,
    nobody's record under review) holds; everything else goes to review. `entity` or `systems`
    none: `compared` has a column of that name (a rule over several kinds of record).
    `has_reason`: `compared` has a `reason` column saying why a value is a finding (else null).
-#}
{% macro reconciliation_finding(
    rule, severity, entity, systems,
    owner_entity=none, owner_fields=[], target_system=none, compared='compared', outcome="'conflict'",
    has_reason=false
) -%}
    {%- set quoted_fields = [] -%}
    {%- for owner_field in owner_fields -%}
        {%- set _ = quoted_fields.append("'" ~ owner_field ~ "'") -%}
    {%- endfor -%}
    {%- set owner_field_list = quoted_fields | join(', ') if quoted_fields else 'null' -%}
    {%- set can_push = 'true' if target_system is not none else 'false' %}

ownership_rule as (

    select
        count(*) as ownership_row_count,
        count(distinct owner_system) as owner_system_count,
        min(owner_system) as owner_system,
        coalesce(bool_and(
            conflict_policy in ('auto', 'review')
            and {{ is_receiver('receiver_systems', "'" ~ target_system ~ "'") }}
        ), false) as is_target_receiver
    from {{ ref('ownership') }}
    where
        entity = '{{ owner_entity }}'
        and field in ({{ owner_field_list }})

),

finding as (

    select
        {{ finding_id(rule, compared ~ '.record_keys') }} as finding_id,
        '{{ rule }}' as rule,
        '{{ severity }}' as severity,
        {% if entity is none %}{{ compared }}.entity{% else %}'{{ entity }}'{% endif %} as entity,
        {% if systems is none %}{{ compared }}.systems{% else %}'{{ systems }}'{% endif %} as systems,
        {{ compared }}.record_keys,
        {{ compared }}.field,
        cast({{ compared }}.crm_value as varchar) as crm_value,
        cast({{ compared }}.billing_value as varchar) as billing_value,
        cast({{ compared }}.scheduling_value as varchar) as scheduling_value,
        cast({{ compared }}.ads_value as varchar) as ads_value,
        case
            when ownership_rule.owner_system_count = 1 then ownership_rule.owner_system
        end as authoritative_system,
        cast(case
            when ownership_rule.owner_system_count != 1 then null
            when ownership_rule.owner_system = 'crm' then {{ compared }}.crm_value
            when ownership_rule.owner_system = 'billing' then {{ compared }}.billing_value
            when ownership_rule.owner_system = 'scheduling' then {{ compared }}.scheduling_value
            when ownership_rule.owner_system = 'ads' then {{ compared }}.ads_value
        end as varchar) as authoritative_value,
        cast({{ outcome }} as varchar) as outcome,
        cast({{ compared ~ '.reason' if has_reason else 'null' }} as varchar) as reason,
        case
            when
                {{ can_push }}
                and ownership_rule.owner_system_count = 1
                and ownership_rule.owner_system != '{{ target_system }}'
                and ownership_rule.ownership_row_count = {{ owner_fields | length }}
                and ownership_rule.is_target_receiver
                and {{ compared }}.is_write_safe
                and case ownership_rule.owner_system
                    when 'crm' then {{ compared }}.crm_value
                    when 'billing' then {{ compared }}.billing_value
                    when 'scheduling' then {{ compared }}.scheduling_value
                    when 'ads' then {{ compared }}.ads_value
                end is not null
                then 'push_to_{{ target_system }}'
            else 'review'
        end as proposed_action,
        {{ reconciliation_now() }} as detected_at
    from {{ compared }}
    cross join ownership_rule

)

select * from finding

{%- endmacro %}
