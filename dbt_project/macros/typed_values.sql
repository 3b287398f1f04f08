{#-
    Typed readings of values a source sends as text (HubSpot stage metadata, Meta insights).
    Each is null, never an error, when the text is no such value; staging flags a present value
    that read as null (rule malformed_value).
-#}

{#- A count: digits only, an optional sign ("12.5", "1e3" and "1,000" are no whole number). -#}
{% macro whole_number(value) -%}
    case
        when {{ regexp_whole(tidy(value), "'[+-]?[0-9]{1,18}'") }}
            then {{ try_cast(tidy(value), 'bigint') }}
    end
{%- endmacro %}


{#- A finite number (NaN and the infinities, which a double cast accepts, are none). -#}
{% macro finite_number(value) -%}
    case
        when {{ is_finite(try_cast(tidy(value), 'double')) }}
            then {{ try_cast(tidy(value), 'double') }}
    end
{%- endmacro %}
