-- One row per CRM record and field reverse-ETL should set: the authoritative value of each open
-- finding proposed as `push_to_crm` (macro reconciliation_finding: its ownership rows name the
-- CRM as a receiver under an auto or review policy), in HubSpot's property vocabulary. Contact
-- writes go only through CRM-billing links at or above the confidence threshold with no record
-- under review (is_write_safe); meeting writes follow the meeting's own event key.

with

findings as (

    select * from {{ ref('findings') }}

),

links as (

    select * from {{ ref('link_crm_contacts_billing_customers') }}

),

meetings as (

    select * from {{ ref('link_meetings_current_events') }}

),

contact_appointments as (  -- noqa: ST03

    select * from {{ ref('link_contact_appointments') }}

),

resolved as (

    select * from {{ ref('int_identity__resolved') }}

),

lifecycle_stages as (

    select * from {{ ref('lifecycle_stages') }}

),

appointment_statuses as (

    select * from {{ ref('appointment_statuses') }}

),

-- the HubSpot properties each rule's write sets
field_map (rule, object_type, target_field) as (

    values
    ('paid_invoice_crm_not_customer', 'contacts', 'lifecyclestage'),
    ('appointment_time_mismatch', 'meetings', 'hs_meeting_start_time'),
    ('appointment_time_mismatch', 'meetings', 'hs_meeting_end_time'),
    ('appointment_time_mismatch', 'meetings', 'hs_timestamp'),
    ('appointment_time_mismatch', 'meetings', 'hs_meeting_external_url'),
    ('appointment_status_mismatch', 'meetings', 'hs_meeting_outcome')

),

-- trueup vocabulary back to HubSpot's: the value that maps to itself, else the first
crm_lifecycle_values as (

    select
        lifecycle_stage,
        {{ arg_min('source_value', '(source_value != lifecycle_stage, source_value)') }} as crm_value
    from lifecycle_stages
    where source_system = 'crm'
    group by lifecycle_stage

),

crm_outcome_values as (

    select
        appointment_status,
        min(source_value) as crm_value
    from appointment_statuses
    where source_system = 'crm'
    group by appointment_status

),

pushes as (

    select
        finding_id,
        rule,
        {{ json_text('record_keys', 'contact_id') }} as contact_id,
        {{ json_text('record_keys', 'customer_id') }} as billing_customer_id,
        {{ json_text('record_keys', 'meeting_id') }} as meeting_id,
        {{ json_text('record_keys', 'event_uri') }} as event_uri,
        authoritative_value,
        outcome
    from findings
    where
        status = 'open'
        and proposed_action = 'push_to_crm'
        and authoritative_system is distinct from 'crm'

),

contact_writes as (

    select
        pushes.finding_id,
        pushes.rule,
        pushes.outcome,
        pushes.contact_id as record_id,
        crm_lifecycle_values.crm_value as desired_value,
        links.resolved_customer_id as customer_id,
        links.confidence
    from pushes
    inner join links
        on pushes.contact_id = links.contact_id and pushes.billing_customer_id = links.customer_id
    inner join crm_lifecycle_values on pushes.authoritative_value = crm_lifecycle_values.lifecycle_stage
    where
        pushes.rule = 'paid_invoice_crm_not_customer'
        and links.is_write_safe

),

meeting_values as (

    select
        pushes.finding_id,
        pushes.rule,
        pushes.outcome as finding_outcome,
        pushes.meeting_id,
        resolved.customer_id,
        {{ iso_utc('meetings.current_start_at') }} as start_time,
        {{ iso_utc('meetings.current_end_at') }} as end_time,
        meetings.current_event_uri,
        crm_outcome_values.crm_value as outcome
    from pushes
    inner join meetings on pushes.meeting_id = meetings.meeting_id
    left join resolved
        on meetings.contact_id = resolved.record_id and resolved.record_system = 'crm'
    left join crm_outcome_values
        on meetings.current_appointment_status = crm_outcome_values.appointment_status
    where pushes.rule in ('appointment_time_mismatch', 'appointment_status_mismatch')

),

meeting_writes as (

    select
        meeting_values.finding_id,
        meeting_values.rule,
        meeting_values.finding_outcome,
        meeting_values.meeting_id as record_id,
        field_values.target_field,
        field_values.desired_value,
        meeting_values.customer_id,
        1.0 as confidence
    from meeting_values
    cross join lateral (
        values
        ('hs_meeting_start_time', meeting_values.start_time),
        ('hs_meeting_end_time', meeting_values.end_time),
        ('hs_timestamp', meeting_values.start_time),
        ('hs_meeting_external_url', meeting_values.current_event_uri),
        ('hs_meeting_outcome', meeting_values.outcome)
    ) as field_values (target_field, desired_value)

),

-- noqa: disable=LT02,ST03
-- (the writes of a property the mapping may not name: the template's branches defeat layout checks)
{% set next_appointment = mapped_property('contacts', 'next_appointment') -%}
{% if next_appointment is not none -%}
-- accounts that log no meetings: the contact's next-appointment property (var
-- crm_contact_properties.next_appointment) moves to the booking's current start, or is
-- cleared when the booking was canceled
appointment_property_writes as (

    select
        pushes.finding_id,
        pushes.outcome,
        pushes.contact_id as record_id,
        case
            when pushes.rule = 'appointment_time_mismatch'
                then {{ iso_utc('contact_appointments.current_start_at') }}
            else ''
        end as desired_value,
        resolved.customer_id
    from pushes
    inner join contact_appointments
        on
            pushes.contact_id = contact_appointments.contact_id
            and pushes.event_uri = contact_appointments.event_uri
    left join resolved
        on pushes.contact_id = resolved.record_id and resolved.record_system = 'crm'
    where
        pushes.rule in ('appointment_time_mismatch', 'appointment_status_mismatch')
        and pushes.meeting_id is null

),
{%- endif %}

final as (

    select
        'crm' as target_system,
        field_map.object_type,
        contact_writes.record_id,
        field_map.target_field as field,
        contact_writes.desired_value,
        contact_writes.finding_id,
        contact_writes.outcome,
        contact_writes.customer_id,
        cast(contact_writes.confidence as {{ type_double() }}) as confidence
    from contact_writes
    inner join field_map on contact_writes.rule = field_map.rule

    union all

    select
        'crm' as target_system,
        field_map.object_type,
        meeting_writes.record_id,
        field_map.target_field as field,
        meeting_writes.desired_value,
        meeting_writes.finding_id,
        meeting_writes.finding_outcome as outcome,
        meeting_writes.customer_id,
        cast(meeting_writes.confidence as {{ type_double() }}) as confidence
    from meeting_writes
    inner join field_map
        on
            meeting_writes.rule = field_map.rule
            and meeting_writes.target_field = field_map.target_field
    where meeting_writes.desired_value is not null

    {% if next_appointment is not none -%}
        union all

        select
            'crm' as target_system,
            'contacts' as object_type,
            record_id,
            '{{ next_appointment }}' as field,
            desired_value,
            finding_id,
            outcome,
            customer_id,
            1.0 as confidence
        from appointment_property_writes
    {%- endif %}

)

select * from final
