-- One row per finding of this run: every rule model's rows in one table.

with

unioned as (

    {% for rule in reconciliation_rules() %}
        select
            finding_id,
            rule,
            severity,
            entity,
            systems,
            record_keys,
            field,
            crm_value,
            billing_value,
            scheduling_value,
            ads_value,
            authoritative_system,
            authoritative_value,
            outcome,
            reason,
            proposed_action,
            detected_at
        from {{ ref('rec_' ~ rule) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        finding_id,
        rule,
        severity,
        entity,
        systems,
        record_keys,
        field,
        crm_value,
        billing_value,
        scheduling_value,
        ads_value,
        authoritative_system,
        authoritative_value,
        outcome,
        reason,
        proposed_action,
        detected_at
    from unioned

)

select * from final
