{#
    An ISO-8601 timestamp string with its offset ("2026-03-01T09:15:00.000Z") to a UTC
    timestamptz; an empty string (how HubSpot can send an unset property) and text that is
    no timestamp ("02/30/2025") are null, never an error (staging flags what it could not read).
#}
{% macro iso_to_utc(value) -%}
    {{ try_cast(tidy(value), 'timestamptz') }}
{%- endmacro %}


{#
    A CRM date or date-time property: ISO text (a date is midnight UTC) or epoch milliseconds
    (how HubSpot returns some date-times); null when it is neither.
#}
{% macro crm_datetime(value) -%}
    case
        when {{ regexp_whole(tidy(value), "'[0-9]{11,14}'") }}
            then to_timestamp({{ try_cast(tidy(value), 'bigint') }} / 1000.0)
        else {{ try_cast(tidy(value), 'timestamptz') }}
    end
{%- endmacro %}
