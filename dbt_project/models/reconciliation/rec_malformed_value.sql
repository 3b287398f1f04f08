-- One row per source record and typed field whose value is present but did not parse: staging
-- keeps the typed column null and flags it (`is_<field>_unparseable`), and this rule reports the
-- value as the source holds it with what it is not. Free-text fields are other rules': dates
-- typed as text (var crm_contact_properties.free_text_dates) are malformed_date's, phones
-- malformed_phone's; a mapped property listed as a free-text date is left to malformed_date.
{%- set free_text_dates = (var('crm_contact_properties') or {}).get('free_text_dates') or [] -%}
{%- set amount = mapped_property('deals', 'amount') -%}
{%- set close_date = mapped_property('deals', 'close_date') -%}
{%- set next_appointment = mapped_property('contacts', 'next_appointment') -%}
{%- set checks = [] -%}
{%- if amount -%}
    {%- do checks.append(('deal', 'deals', amount, 'amount_raw', 'is_amount_unparseable', 'no finite number')) -%}
{%- endif -%}
{%- if close_date -%}
    {%- do checks.append(('deal', 'deals', close_date, 'closedate_raw', 'is_close_date_unparseable', 'no date or time')) -%}
{%- endif -%}
{%- if next_appointment and next_appointment not in free_text_dates -%}
    {%- do checks.append((
        'contact', 'contacts', next_appointment, 'next_appointment_raw', 'is_next_appointment_unparseable',
        'no date or time'
    )) -%}
{%- endif -%}
{%- do checks.append(('meeting', 'meetings', 'hs_meeting_start_time', 'start_raw', 'is_start_unparseable', 'no date or time')) -%}
{%- do checks.append(('meeting', 'meetings', 'hs_meeting_end_time', 'end_raw', 'is_end_unparseable', 'no date or time')) -%}
{%- do checks.append(('event', 'events', 'start_time', 'start_raw', 'is_start_unparseable', 'no date or time')) -%}
{%- do checks.append(('event', 'events', 'end_time', 'end_raw', 'is_end_unparseable', 'no date or time')) -%}
{%- do checks.append(('deal_stage', 'deal_stages', 'metadata.probability', 'probability_raw', 'is_probability_unparseable', 'no number')) -%}
{%- do checks.append(('deal_stage', 'deal_stages', 'metadata.isClosed', 'is_closed_raw', 'is_closed_unparseable', 'neither true nor false')) -%}
{%- do checks.append(('ad_campaign_day', 'meta_days', 'spend', 'spend_raw', 'is_spend_unparseable', 'no finite number')) -%}
{%- do checks.append(('ad_campaign_day', 'meta_days', 'impressions', 'impressions_raw', 'is_impressions_unparseable', 'no whole number')) -%}
{%- do checks.append(('ad_campaign_day', 'meta_days', 'clicks', 'clicks_raw', 'is_clicks_unparseable', 'no whole number')) -%}
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
{%- endfor %}

with

deals as (

    select * from {{ ref('stg_crm__deals') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

meetings as (

    select * from {{ ref('stg_crm__meetings') }}

),

deal_stages as (

    select * from {{ ref('stg_crm__deal_stages') }}

),

events as (

    select * from {{ ref('stg_scheduling__events') }}

),

meta_days as (

    select * from {{ ref('stg_ads__meta_campaign_days') }}

),

-- noqa: disable=LT02
-- (one select per typed field: the template's loop defeats the layout checks)
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
