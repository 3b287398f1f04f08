"""Account setups: how the sandbox business's accounts are set up (see sandbox/WORLD.md).

The default setup is the one the sandbox always had: the UTM campaign in HubSpot's own
`hs_analytics_source_data_2` (the ad campaign's id), Stripe metadata naming the CRM contact
and deal, CRM meetings mirroring every Calendly booking, Stripe pinned to 2024-06-20. Each
switch turns one part into what many real accounts look like instead; `mapping_for` says
which `[mapping]` configuration fits a setup, as its owner would write it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any

from sandbox.config import STRIPE_API_VERSION

CURRENT_STRIPE_VERSION = "2025-03-31.basil"  # no invoice.charge / payment_intent / paid; invoice payments
# The custom properties of an account set up by hand (labels "UTM Campaign", "Next appointment date").
CUSTOM_UTM_CAMPAIGN = "utm_campaign"
CUSTOM_NEXT_APPOINTMENT = "next_appointment_date"
# HubSpot's own "Next activity date": where an account that logs no meetings keeps the next one.
BUILTIN_NEXT_APPOINTMENT = "notes_next_activity_date"
# An account that upgraded its Stripe API version did so this many days before `now`: its
# events from before keep the old version (Stripe renders an event in its account's version
# when the event is created).
STRIPE_UPGRADE_DAYS = 12

SWITCHES = {
    "custom_properties": ("custom_properties", True),
    "no_metadata_links": ("metadata_links", False),
    "no_crm_meetings": ("crm_meetings", False),
    "current_stripe": ("stripe_version", CURRENT_STRIPE_VERSION),
}


@dataclass(frozen=True)
class AccountSetup:
    """The switches of one world's accounts; `AccountSetup()` is the default world."""

    # the UTM campaign (the ad campaign's *name*, typed with stray case and spaces) and the next
    # appointment live in custom properties, among a few hundred other custom fields
    custom_properties: bool = False
    # Stripe customers and deal invoices carry `hubspot_contact_id` / `hubspot_deal_id` metadata
    metadata_links: bool = True
    # the CRM logs a meeting for every Calendly booking; without, a contact date property holds
    # the next appointment
    crm_meetings: bool = True
    # the Stripe account's API version: the shape its events are rendered in since the upgrade,
    # and what a request without a `Stripe-Version` header gets
    stripe_version: str = STRIPE_API_VERSION

    @classmethod
    def parse(cls, text: str) -> AccountSetup:
        """A setup from switch names joined by commas (`all` for every switch, `default` for none)."""
        setup = cls()
        for name in (part.strip() for part in text.split(",")):
            if name in ("", "default"):
                continue
            if name == "all":
                return cls.every_switch()
            if name not in SWITCHES:
                known = ", ".join(SWITCHES)
                raise ValueError(f"unknown account setup switch {name!r}; choose from all, {known}")
            attribute, value = SWITCHES[name]
            change: dict[str, Any] = {attribute: value}
            setup = replace(setup, **change)
        return setup

    @classmethod
    def every_switch(cls) -> AccountSetup:
        return cls(True, False, False, CURRENT_STRIPE_VERSION)

    @property
    def switches(self) -> list[str]:
        """The names of the switches this setup turns on."""
        default = AccountSetup()
        on = []
        for name, (attribute, _) in SWITCHES.items():
            if getattr(self, attribute) != getattr(default, attribute):
                on.append(name)
        return on

    @property
    def is_default(self) -> bool:
        return not self.switches

    @property
    def stripe_upgraded(self) -> bool:
        return self.stripe_version != STRIPE_API_VERSION

    @property
    def utm_campaign_property(self) -> str:
        return CUSTOM_UTM_CAMPAIGN if self.custom_properties else "hs_analytics_source_data_2"

    @property
    def next_appointment_property(self) -> str | None:
        """The contact property holding the next appointment, when the account keeps one."""
        if self.custom_properties:
            return CUSTOM_NEXT_APPOINTMENT
        return None if self.crm_meetings else BUILTIN_NEXT_APPOINTMENT

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def mapping_for(setup: AccountSetup) -> dict[str, Any]:
    """The `[mapping]` and `[sources.*]` settings a business with this setup writes (only those
    that differ from trueup's defaults), as TOML tables: {"mapping": {...}, "sources": {...}}."""
    contact: dict[str, Any] = {"free_text_dates": ["trial_start_date"]}
    # the sandbox's booking form asks for the company under this title
    mapping: dict[str, Any] = {
        "crm_contact_properties": contact,
        "scheduling_company_question": "Company name",
    }
    if setup.custom_properties:
        contact["utm_campaign"] = CUSTOM_UTM_CAMPAIGN
        mapping["ad_attribution"] = "campaign_name"
    if setup.next_appointment_property:
        contact["next_appointment"] = setup.next_appointment_property
    if not setup.metadata_links:
        mapping["billing_contact_metadata_key"] = ""
        mapping["billing_deal_metadata_key"] = ""
    sources: dict[str, Any] = {}
    if setup.stripe_upgraded:
        sources["billing"] = {"stripe_version": setup.stripe_version}
    return {"mapping": mapping, "sources": sources}


def config_env(setup: AccountSetup) -> dict[str, str]:
    """The same settings as environment variables (`MAPPING__...`, `SOURCES__BILLING__...`)."""
    env: dict[str, str] = {}
    tables = mapping_for(setup)
    for key, value in tables["mapping"].items():
        if isinstance(value, dict):
            for inner, item in value.items():
                env[f"MAPPING__{key.upper()}__{inner.upper()}"] = _env_text(item)
        else:
            env[f"MAPPING__{key.upper()}"] = _env_text(value)
    for system, table in tables["sources"].items():
        for key, value in table.items():
            env[f"SOURCES__{system.upper()}__{key.upper()}"] = _env_text(value)
    return env


def _env_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
