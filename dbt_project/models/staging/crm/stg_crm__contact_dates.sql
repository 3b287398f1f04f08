{#- One row per CRM contact and free-text date property (var crm_contact_properties
    .free_text_dates) that holds a value: the text as typed, and the day it can mean. -#}
{%- set raw_contacts = source('raw_crm', 'contacts') -%}
{%- set contact_properties = var('crm_contact_properties') -%}
{%- set date_properties = [] -%}
{%- if contact_properties is mapping -%}
    {%- set date_properties = contact_properties.get('free_text_dates') or [] -%}
{%- endif -%}

with

source as (

    select * from {{ raw_contacts }}

),

-- noqa: disable=LT02
-- (one select per mapped property: the template's loop defeats the layout checks)
typed as (

    {% for name in date_properties %}
        select
            cast(source.id as varchar) as contact_id,
            '{{ name }}' as field,
            {{ optional_column(raw_contacts, property_column(name), 'varchar', 'source') }} as value_raw,
            source._dlt_load_id as load_id
        from source
        {% if not loop.last %}union all{% endif %}
    {% else %}
        select
            cast(source.id as varchar) as contact_id,
            cast(null as varchar) as field,
            cast(null as varchar) as value_raw,
            source._dlt_load_id as load_id
        from source
        where false
    {% endfor %}

),

final as (

    select
        contact_id,
        field,
        value_raw,
        {{ parse_free_date('value_raw') }} as value_date,
        {{ is_ambiguous_date('value_raw') }} as is_ambiguous,
        {{ parse_free_date('value_raw') }} is null as is_unparseable,
        -- written the one way a date property holds a day (YYYY-MM-DD)
        coalesce(
            {{ regexp_whole(tidy('value_raw'), "'[0-9]{4}-[0-9]{2}-[0-9]{2}'") }}
            and {{ try_cast(tidy('value_raw'), 'date') }} is not null,
            false
        ) as is_iso_date,
        load_id
    from typed
    where {{ tidy('value_raw') }} is not null

)

select * from final
