"""The HubSpot properties of the sandbox account, as the properties API lists them.

A HubSpot portal defines a few hundred properties per object before anyone adds one (most of
them empty in any given record), plus the custom ones its owner created. The sandbox account
has HubSpot's own set below, the custom `trial_start_date` (a free-text date its team types),
and, in the custom-properties setup, the UTM campaign and next appointment in custom
properties among a few hundred other custom fields. Property names of every object, joined,
run past a URL's practical length, as in real accounts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sandbox.accounts import CUSTOM_NEXT_APPOINTMENT, CUSTOM_UTM_CAMPAIGN, AccountSetup


def _words(text: str) -> list[str]:
    return text.split()


_LIFECYCLE = "subscriber lead marketingqualifiedlead salesqualifiedlead opportunity customer evangelist other"

_CONTACTS = _words(
    "address annualrevenue associatedcompanyid city company company_size country createdate "
    "currentlyinworkflow date_of_birth degree email fax field_of_study firstname gender graduation_date "
    "hs_additional_emails hs_all_accessible_team_ids hs_all_contact_vids hs_all_owner_ids hs_all_team_ids "
    "hs_analytics_average_page_views hs_analytics_first_referrer hs_analytics_first_timestamp "
    "hs_analytics_first_touch_converting_campaign hs_analytics_first_url hs_analytics_first_visit_timestamp "
    "hs_analytics_last_referrer hs_analytics_last_timestamp hs_analytics_last_touch_converting_campaign "
    "hs_analytics_last_url hs_analytics_last_visit_timestamp hs_analytics_num_event_completions "
    "hs_analytics_num_page_views hs_analytics_num_visits hs_analytics_revenue hs_analytics_source "
    "hs_analytics_source_data_1 hs_analytics_source_data_2 hs_avatar_filemanager_key hs_buying_role "
    "hs_calculated_form_submissions hs_calculated_merged_vids hs_calculated_mobile_number "
    "hs_calculated_phone_number hs_calculated_phone_number_area_code hs_calculated_phone_number_country_code "
    "hs_calculated_phone_number_region_code hs_clicked_linkedin_ad hs_content_membership_email "
    "hs_content_membership_email_confirmed hs_content_membership_notes hs_content_membership_registered_at "
    "hs_content_membership_status hs_conversations_visitor_email hs_count_is_unworked hs_count_is_worked "
    "hs_created_by_conversations hs_created_by_user_id hs_createdate hs_document_last_revisited "
    "hs_email_bad_address hs_email_customer_quarantined_reason hs_email_domain hs_email_hard_bounce_reason "
    "hs_email_hard_bounce_reason_enum hs_email_quarantined hs_email_quarantined_reason "
    "hs_email_recipient_fatigue_recovery_time hs_email_sends_since_last_engagement "
    "hs_emailconfirmationstatus hs_facebook_ad_clicked hs_facebook_click_id hs_facebookid "
    "hs_feedback_last_nps_follow_up hs_feedback_last_nps_rating hs_feedback_last_survey_date "
    "hs_feedback_show_nps_web_survey hs_first_engagement_object_id hs_first_outreach_date "
    "hs_first_subscription_create_date hs_google_click_id hs_googleplusid hs_has_active_subscription "
    "hs_ip_timezone hs_is_contact hs_is_unworked hs_language hs_last_sales_activity_date "
    "hs_last_sales_activity_timestamp hs_last_sales_activity_type hs_lastmodifieddate "
    "hs_latest_disqualified_lead_date hs_latest_meeting_activity hs_latest_open_lead_date "
    "hs_latest_qualified_lead_date hs_latest_sequence_ended_date hs_latest_sequence_enrolled "
    "hs_latest_sequence_enrolled_date hs_latest_sequence_finished_date hs_latest_sequence_unenrolled_date "
    "hs_latest_source hs_latest_source_data_1 hs_latest_source_data_2 hs_latest_source_timestamp "
    "hs_latest_subscription_create_date hs_lead_status hs_legal_basis hs_linkedin_ad_clicked hs_linkedinid "
    "hs_marketable_reason_id hs_marketable_reason_type hs_marketable_status hs_marketable_until_renewal "
    "hs_merged_object_ids hs_object_id hs_object_source hs_object_source_detail_1 hs_object_source_id "
    "hs_object_source_label hs_persona hs_pinned_engagement_id hs_pipeline hs_predictivecontactscore_v2 "
    "hs_predictivescoringtier hs_read_only hs_sa_first_engagement_date hs_sa_first_engagement_descr "
    "hs_sa_first_engagement_object_type hs_sales_email_last_clicked hs_sales_email_last_opened "
    "hs_sales_email_last_replied hs_searchable_calculated_international_mobile_number "
    "hs_searchable_calculated_international_phone_number hs_searchable_calculated_mobile_number "
    "hs_searchable_calculated_phone_number hs_sequences_actively_enrolled_count hs_sequences_enrolled_count "
    "hs_sequences_is_enrolled hs_social_facebook_clicks hs_social_google_plus_clicks "
    "hs_social_last_engagement hs_social_linkedin_clicks hs_social_num_broadcast_clicks "
    "hs_social_twitter_clicks hs_source_object_id hs_source_portal_id hs_state_code "
    "hs_time_between_contact_creation_and_deal_close hs_time_between_contact_creation_and_deal_creation "
    "hs_time_to_first_engagement hs_time_to_move_from_lead_to_customer "
    "hs_time_to_move_from_marketingqualifiedlead_to_customer hs_time_to_move_from_opportunity_to_customer "
    "hs_time_to_move_from_salesqualifiedlead_to_customer hs_time_to_move_from_subscriber_to_customer "
    "hs_timezone hs_twitterid hs_unique_creation_key hs_updated_by_user_id "
    "hs_user_ids_of_all_notification_followers hs_user_ids_of_all_notification_unfollowers "
    "hs_user_ids_of_all_owners hs_was_imported hs_whatsapp_phone_number hubspot_owner_assigneddate "
    "hubspot_owner_id hubspot_team_id hubspotscore industry ip_city ip_country ip_country_code ip_latlon "
    "ip_state ip_state_code ip_zipcode job_function jobtitle lastmodifieddate lastname lifecyclestage "
    "marital_status message military_status mobilephone notes_last_contacted notes_last_updated "
    "notes_next_activity_date num_associated_deals num_contacted_notes num_conversion_events num_notes "
    "num_unique_conversion_events numemployees owneremail ownername phone photo recent_conversion_date "
    "recent_conversion_event_name recent_deal_amount recent_deal_close_date relationship_status salutation "
    "school seniority start_date state total_revenue twitterhandle website work_email zip"
) + [
    f"{prefix}{stage}{suffix}"
    for stage in _LIFECYCLE.split()
    for prefix, suffix in (
        ("hs_date_entered_", ""),
        ("hs_date_exited_", ""),
        ("hs_time_in_", ""),
        ("hs_lifecyclestage_", "_date"),
    )
]

_COMPANIES = _words(
    "about_us address address2 annualrevenue city closedate country createdate days_to_close description "
    "domain facebook_company_page facebookfans first_contact_createdate first_conversion_date "
    "first_conversion_event_name first_deal_created_date founded_year hs_analytics_first_timestamp "
    "hs_analytics_first_touch_converting_campaign hs_analytics_first_visit_timestamp "
    "hs_analytics_last_timestamp hs_analytics_last_touch_converting_campaign "
    "hs_analytics_last_visit_timestamp "
    "hs_analytics_num_page_views hs_analytics_num_visits hs_analytics_source hs_analytics_source_data_1 "
    "hs_analytics_source_data_2 hs_created_by_user_id hs_createdate hs_ideal_customer_profile "
    "hs_is_target_account hs_last_booked_meeting_date hs_last_logged_call_date hs_last_open_task_date "
    "hs_last_sales_activity_timestamp hs_lastmodifieddate hs_lead_status hs_num_child_companies "
    "hs_num_contacts_with_buying_roles hs_num_decision_makers hs_num_open_deals hs_object_id "
    "hs_parent_company_id hs_pipeline hs_target_account hs_total_deal_value hs_updated_by_user_id "
    "hubspot_owner_assigneddate hubspot_owner_id hubspot_team_id industry is_public lifecyclestage "
    "linkedin_company_page linkedinbio name notes_last_contacted notes_last_updated notes_next_activity_date "
    "num_associated_contacts num_associated_deals num_contacted_notes num_conversion_events num_notes "
    "numberofemployees phone recent_conversion_date recent_conversion_event_name recent_deal_amount "
    "recent_deal_close_date state timezone total_money_raised total_revenue twitterhandle type "
    "web_technologies "
    "website zip"
)

_DEALS = _words(
    "amount amount_in_home_currency closed_lost_reason closed_won_reason closedate createdate days_to_close "
    "deal_currency_code dealname dealstage dealtype description engagements_last_meeting_booked "
    "hs_acv hs_analytics_latest_source hs_analytics_latest_source_data_1 hs_analytics_latest_source_data_2 "
    "hs_analytics_source hs_analytics_source_data_1 hs_analytics_source_data_2 hs_arr hs_closed_amount "
    "hs_closed_amount_in_home_currency hs_created_by_user_id hs_createdate hs_date_entered_closedlost "
    "hs_date_entered_closedwon hs_deal_stage_probability hs_forecast_amount hs_forecast_category "
    "hs_forecast_probability hs_is_closed hs_is_closed_won hs_lastmodifieddate hs_likelihood_to_close "
    "hs_manual_forecast_category hs_mrr hs_next_step hs_num_associated_deal_splits hs_num_target_accounts "
    "hs_object_id hs_priority hs_projected_amount hs_projected_amount_in_home_currency hs_tcv "
    "hs_time_in_closedlost hs_time_in_closedwon hs_updated_by_user_id hubspot_owner_assigneddate "
    "hubspot_owner_id hubspot_team_id notes_last_contacted notes_last_updated notes_next_activity_date "
    "num_associated_contacts num_contacted_notes num_notes pipeline"
)

_MEETINGS = _words(
    "hs_activity_type hs_attachment_ids hs_body_preview hs_created_by hs_created_by_user_id hs_createdate "
    "hs_engagement_source hs_engagement_source_id hs_follow_up_action hs_include_description_in_reminder "
    "hs_internal_meeting_notes hs_lastmodifieddate hs_meeting_body hs_meeting_end_time "
    "hs_meeting_external_url hs_meeting_location hs_meeting_location_type hs_meeting_outcome "
    "hs_meeting_source hs_meeting_source_id hs_meeting_start_time hs_meeting_title hs_object_id "
    "hs_timestamp hs_unique_id hs_updated_by_user_id hubspot_owner_id hubspot_team_id"
)

HUBSPOT_DEFINED: dict[str, tuple[str, ...]] = {
    "contacts": tuple(_CONTACTS),
    "companies": tuple(_COMPANIES),
    "deals": tuple(_DEALS),
    "meetings": tuple(_MEETINGS),
}

# Custom fields a business accumulates over the years (forms, imports, integrations), mostly empty.
_CUSTOM_TOPICS = _words(
    "legacy_crm onboarding webinar survey partner event product_interest support billing_portal referral "
    "newsletter trade_show"
)
_CUSTOM_FIELDS = _words(
    "status date source notes score owner id tier region stage reason count url flag channel segment "
    "persona language consent opt_in last_seen first_seen campaign medium"
)

_READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"})
_DATE_HINTS = ("date", "timestamp", "_at", "createdate", "lastmodifieddate", "closedate", "hs_date_")
_NUMBER_PREFIXES = ("num_", "hs_analytics_num_", "hs_num_", "hs_time_", "days_to_close", "hs_count_")
_NUMBER_NAMES = frozenset(
    {"amount", "annualrevenue", "numberofemployees", "numemployees", "hubspotscore", "hs_object_id"}
)


def custom_properties(object_type: str, setup: AccountSetup) -> list[tuple[str, str, str, str]]:
    """(name, label, type, fieldType) of the account's custom properties of one object."""
    if object_type != "contacts":
        return []
    found = [("trial_start_date", "Trial start date", "string", "text")]
    if setup.custom_properties:
        found.append((CUSTOM_UTM_CAMPAIGN, "UTM Campaign", "string", "text"))
        found.append((CUSTOM_NEXT_APPOINTMENT, "Next appointment date", "datetime", "date"))
        for topic in _CUSTOM_TOPICS:
            for name in _CUSTOM_FIELDS:
                label = f"{topic.replace('_', ' ').capitalize()} {name.replace('_', ' ')}"
                found.append((f"{topic}_{name}", label, "string", "text"))
    return found


def _kind(name: str) -> tuple[str, str]:
    if name in _NUMBER_NAMES or name.startswith(_NUMBER_PREFIXES):
        return "number", "number"
    if any(hint in name for hint in _DATE_HINTS):
        return "datetime", "date"
    return "string", "text"


def _label(name: str) -> str:
    words = name.removeprefix("hs_").replace("_", " ")
    return words[:1].upper() + words[1:]


@lru_cache(maxsize=32)
def definitions(object_type: str, setup: AccountSetup) -> tuple[dict[str, Any], ...]:
    """Every property of one object in the properties API's shape (HubSpot's first, then custom)."""
    found: list[dict[str, Any]] = []
    for order, name in enumerate(HUBSPOT_DEFINED.get(object_type, ())):
        kind, field_type = _kind(name)
        found.append(_definition(object_type, name, _label(name), kind, field_type, order, True))
    base = len(found)
    for offset, (name, label, kind, field_type) in enumerate(custom_properties(object_type, setup)):
        found.append(_definition(object_type, name, label, kind, field_type, base + offset, False))
    return tuple(found)


def _definition(
    object_type: str, name: str, label: str, kind: str, field_type: str, order: int, hubspot: bool
) -> dict[str, Any]:
    stamp = "2019-08-06T02:43:01.171Z" if hubspot else "2024-03-12T10:21:44.093Z"
    group = {"contacts": "contactinformation", "companies": "companyinformation"}.get(
        object_type, f"{object_type[:-1]}information"
    )
    return {
        "updatedAt": stamp,
        "createdAt": stamp,
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "description": "",
        "groupName": group,
        "options": [],
        "displayOrder": order if not hubspot else -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": name == "hs_object_id",
        "hidden": False,
        "hubspotDefined": hubspot,
        "modificationMetadata": {
            "archivable": not hubspot,
            "readOnlyDefinition": hubspot,
            "readOnlyValue": name in _READ_ONLY,
        },
        "formField": not hubspot,
        "dataSensitivity": "non_sensitive",
    }


@lru_cache(maxsize=32)
def names(object_type: str, setup: AccountSetup) -> frozenset[str]:
    """The property names one object has in this account."""
    return frozenset(d["name"] for d in definitions(object_type, setup))
