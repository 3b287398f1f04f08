{#
    A decimal amount as text ("1500.00", " 12.345 ", "1,500.50") to integer cents, rounding
    half away from zero in exact decimal arithmetic (1.005 is 101 cents, -2.345 is -235).
    Text that is no number is null; the staging tests flag a raw amount that became null.
#}
{% macro cents_from_decimal(amount) -%}
    cast(round(try_cast(regexp_replace(trim(cast({{ amount }} as varchar)), '[,$\s]', '', 'g') as decimal(38, 6)) * 100) as bigint)
{%- endmacro %}
