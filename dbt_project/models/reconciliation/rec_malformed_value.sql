-- One row per source record and typed field whose value is present but did not parse: staging
-- keeps the typed column null and flags it (`is_<field>_unparseable`), and this rule reports the
-- value as the source holds it with what it is not. Free-text fields are other rules': dates
-- typed as text (var crm_contact_properties.free_text_dates) are malformed_date's, phones
-- malformed_phone's; a mapped property listed as a free-text date is left to malformed_date.
{%- set contact_properties = var('crm_contact_properties') -%}
{%- set free_text_dates = [] -%}
{%- if contact_properties is mapping -%}
    {%- set free_text_dates = contact_properties.get('free_text_dates') or [] -%}
{%- endif -%}
{%- set amount = mapped_property('deals', 'amount') -%}
{%- set close_date = mapped_property('deals', 'close_date') -%}
{%- set next_appointment = mapped_property('contacts', 'next_appointment') -%}
{#- (entity, relation, source field, raw column, flag column, what the value is not) -#}
{%- set checks = [] -%}
{%- if amount -%}
    {%- do checks.append(('deal', 'deals', amount, 'amount_raw', 'is_amount_unparseable', 'no finite number')) -%}
{%- endif -%}
{%- if close_date -%}
    {%- do checks.append(
        ('deal', 'deals', close_date, 'closedate_raw', 'is_close_date_unparseable', 'no date or time')
    ) -%}
{%- endif -%}
{%- if next_appointment and next_appointment not in free_text_dates -%}
    {%- do checks.append((
        'contact', 'contacts', next_appointment, 'next_appointment_raw', 'is_next_appointment_unparseable',
        'no date or time'
    )) -%}
{%- endif -%}
{%- set date_or_time, finite, whole = 'no date or time', 'no finite number', 'no whole number' -%}
{%- do checks.extend([
    ('meeting', 'meetings', 'hs_meeting_start_time', 'start_raw', 'is_start_unparseable', date_or_time),
    ('meeting', 'meetings', 'hs_meeting_end_time', 'end_raw', 'is_end_unparseable', date_or_time),
    ('event', 'events', 'start_time', 'start_raw', 'is_start_unparseable', date_or_time),
    ('event', 'events', 'end_time', 'end_raw', 'is_end_unparseable', date_or_time),
    ('deal_stage', 'deal_stages', 'metadata.probability', 'probability_raw', 'is_probability_unparseable',
        finite),
    ('deal_stage', 'deal_stages', 'metadata.isClosed', 'is_closed_raw', 'is_closed_unparseable',
        'neither true nor false'),
    ('ad_campaign_day', 'meta_days', 'spend', 'spend_raw', 'is_spend_unparseable', finite),
    ('ad_campaign_day', 'meta_days', 'impressions', 'impressions_raw', 'is_impressions_unparseable', whole),
    ('ad_campaign_day', 'meta_days', 'clicks', 'clicks_raw', 'is_clicks_unparseable', whole),
]) -%}
{%- set models = {
    'deals': 'stg_crm__deals',
    'contacts': 'stg_crm__contacts',
    'meetings': 'stg_crm__meetings',
    'events': 'stg_scheduling__events',
    'deal_stages': 'stg_crm__deal_stages',
    'meta_days': 'stg_ads__meta_campaign_days',
} -%}
{%- set keys = {
    'deals': [('deal_id', 'deal_id')],
    'contacts': [('contact_id', 'contact_id')],
    'meetings': [('meeting_id', 'meeting_id')],
    'events': [('event_uri', 'event_uri')],
    'deal_stages': [('pipeline_id', 'pipeline_id'), ('stage_id', 'stage_id')],
    'meta_days': [('platform', 'platform'), ('campaign_id', 'campaign_id'), ('date', 'spend_date')],
} -%}
{%- set systems = {'events': 'scheduling', 'meta_days': 'ads'} -%}
{%- for relation in keys if relation not in systems -%}
    {%- do systems.update({relation: 'crm'}) -%}
{%- endfor -%}
{%- set used = [] -%}
{%- for check in checks if check[1] not in used -%}
    {%- do used.append(check[1]) -%}
{%- endfor %}

-- noqa: disable=LT02
-- (one import per record kind read, one select per typed field: the template's loops defeat
-- the layout checks)
with

{% for relation in used %}
    {{ relation }} as (

        select * from {{ ref(models[relation]) }}

    ),
{% endfor %}

compared as (

    {% for entity, relation, field, raw, flag, reason in checks %}
        select
            '{{ entity }}' as entity,
            '{{ systems[relation] }}' as systems,
            {{ record_keys(keys[relation] + [('field', "'" ~ field ~ "'")]) }} as record_keys,
            '{{ field }}' as field,
            {{ raw if systems[relation] == 'crm' else 'null' }} as crm_value,
            null as billing_value,
            {{ raw if systems[relation] == 'scheduling' else 'null' }} as scheduling_value,
            {{ raw if systems[relation] == 'ads' else 'null' }} as ads_value,
            '{{ reason }}' as reason,
            false as is_write_safe
        from {{ relation }}
        where {{ flag }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),
-- noqa: enable=LT02

{{ reconciliation_finding(
    rule='malformed_value', severity='warn', entity=none, systems=none, outcome="'malformed'",
    has_reason=true
) }}
