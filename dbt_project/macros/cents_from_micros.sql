{#
    An amount in millionths of the currency unit (Google Ads `costMicros`, text or integer)
    to integer cents: round(micros / 10000), half away from zero, in integer arithmetic.
#}
{% macro cents_from_micros(micros) -%}
    cast(
        sign({{ try_cast(micros, 'big_integer') }})
        * {{ int_div('abs(' ~ try_cast(micros, 'big_integer') ~ ') + 5000', '10000') }}
        as bigint
    )
{%- endmacro %}
