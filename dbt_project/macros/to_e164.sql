{#
    A phone as typed (any US format, free text with an extension) to E.164, or null when
    no single number can be read. US/NANP is the default region: ten digits, or eleven
    starting with 1, must look like a NANP number (area code and exchange start 2-9).
    A number written with a leading `+` and another country code is kept as written.
    Extensions ("ext 2", "x70", "#12") are dropped; text around one number is ignored;
    anything else (seven digits, two numbers, no digits) is null for the caller to flag.
#}
{% macro to_e164(phone) -%}
    {%- set without_extension -%}
        regexp_replace(trim({{ phone }}), '\s*(extension|ext\.?|x|#)\s*[0-9]{1,6}\s*$', '', 'i')
    {%- endset -%}
    {%- set digits -%}
        regexp_replace({{ without_extension }}, '[^0-9]', '', 'g')
    {%- endset -%}
    case
        when length({{ digits }}) = 10 and {{ regexp_contains(digits, "'^[2-9][0-9]{2}[2-9]'") }}
            then '+1' || {{ digits }}
        when length({{ digits }}) = 11 and {{ regexp_contains(digits, "'^1[2-9][0-9]{2}[2-9]'") }}
            then '+' || {{ digits }}
        when
            {{ regexp_contains(without_extension, "'^[^0-9]*\\+'") }}
            and {{ regexp_contains(digits, "'^[2-9][0-9]{7,14}$'") }}
            then '+' || {{ digits }}
    end
{%- endmacro %}
