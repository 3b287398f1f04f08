{#
    A decimal amount as text ("1500.00", " 12.345 ", "1,500.50") to integer cents, rounding
    half away from zero in exact decimal arithmetic (1.005 is 101 cents, -2.345 is -235).
    Only finite numbers within bigint cents parse: text that is no number, NaN, Infinity or an
    amount too large is null, never an error; staging flags a raw amount that became null.
#}
{% macro cents_from_decimal(amount) -%}
    {%- set number = try_cast("regexp_replace(" ~ tidy('cast(' ~ amount ~ ' as varchar)') ~ ", '[,$\\s]', '', 'g')", 'decimal(38, 6)') -%}
    {{ try_cast('round(' ~ try_cast(number, 'decimal(30, 6)') ~ ' * 100)', 'bigint') }}
{%- endmacro %}
