"""The ground truth: who is who across the systems, and every injected anomaly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Person:
    """One real person and every record that is theirs in the four systems."""

    person_id: str
    first_name: str
    last_name: str
    email: str
    phone_e164: str | None
    company: str
    company_index: int = -1
    country: str | None = None  # ISO code of a person abroad (variety `international`)
    time_zone: str | None = None
    crm_contact_ids: list[str] = field(default_factory=list)
    billing_customer_ids: list[str] = field(default_factory=list)
    scheduling_invitee_uris: list[str] = field(default_factory=list)

    def identity(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone_e164": self.phone_e164,
            "company": self.company,
            "country": self.country,
            "crm_contact_ids": self.crm_contact_ids,
            "billing_customer_ids": self.billing_customer_ids,
            "scheduling_invitee_uris": self.scheduling_invitee_uris,
        }


@dataclass(slots=True)
class Anomaly:
    """One injected disagreement, with the exact keys the reconciliation rules report."""

    anomaly_id: str
    kind: str
    keys: dict[str, str]
    detail: dict[str, Any]
    active: bool = True
    introduced_on: str = ""
    fixed_on: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "anomaly_id": self.anomaly_id,
            "kind": self.kind,
            "keys": self.keys,
            "detail": self.detail,
            "active": self.active,
            "introduced_on": self.introduced_on,
            "fixed_on": self.fixed_on,
        }


@dataclass
class GroundTruth:
    """Who is who across the systems, and every anomaly injected (active or fixed)."""

    seed: int
    contacts: int
    noise: float
    anchor: datetime
    persons: list[Person] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    engine: Any = field(default=None, repr=False, compare=False)

    def of_kind(self, kind: str, active_only: bool = True) -> list[Anomaly]:
        return [a for a in self.anomalies if a.kind == kind and (a.active or not active_only)]
