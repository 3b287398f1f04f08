-- A returned row is a CRM meeting or Calendly event that ends before it starts: the
-- start or end time was misread (time zone, format), and appointment times compared
-- across systems would be wrong.

with

meetings as (

    select * from {{ ref('stg_crm__meetings') }}

),

events as (

    select * from {{ ref('stg_scheduling__events') }}

),

appointments as (

    select
        'stg_crm__meetings' as model_name,
        meeting_id as record_key,
        start_at,
        end_at
    from meetings

    union all

    select
        'stg_scheduling__events' as model_name,
        event_uri as record_key,
        start_at,
        end_at
    from events

)

select * from appointments
where end_at < start_at
