"""A small hand-built CRM world (WORLD.md shapes) for the HubSpot app tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sandbox.store import CrmState, Record, World

NOW = datetime(2026, 11, 1, tzinfo=UTC)
LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer")
SOURCES = ("PAID_SEARCH", "PAID_SOCIAL", "ORGANIC_SEARCH", "DIRECT_TRAFFIC", "REFERRALS", "OFFLINE")
DEFAULT_STAGES = (
    ("appointmentscheduled", "Appointment scheduled", "false", "0.2"),
    ("qualifiedtobuy", "Qualified to buy", "false", "0.4"),
    ("presentationscheduled", "Presentation scheduled", "false", "0.6"),
    ("decisionmakerboughtin", "Decision maker bought-in", "false", "0.8"),
    ("contractsent", "Contract sent", "false", "0.9"),
    ("closedwon", "Closed won", "true", "1.0"),
    ("closedlost", "Closed lost", "true", "0.0"),
)
RENEWAL_STAGES = (
    ("1001", "Renewal due", "false", "0.5"),
    ("1002", "Negotiating", "false", "0.7"),
    ("1003", "Closed Won", "true", "1.0"),
    ("1004", "Closed Lost", "true", "0.0"),
)


def iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _object(crm: CrmState, props: dict[str, str | None], created: datetime, modified: datetime) -> Record:
    record_id = crm.new_id()
    props["hs_object_id"] = record_id
    return {
        "id": record_id,
        "properties": props,
        "createdAt": iso(created),
        "updatedAt": iso(modified),
        "archived": False,
    }


def _times(rng: random.Random) -> tuple[datetime, datetime]:
    created = NOW - timedelta(days=rng.randint(30, 700), seconds=rng.randint(0, 86_399))
    modified = created + timedelta(days=rng.randint(0, 25), milliseconds=rng.randint(0, 86_399_999))
    return created, min(modified, NOW - timedelta(minutes=1))


def _contact(crm: CrmState, rng: random.Random, n: int, owners: list[Record]) -> Record:
    created, modified = _times(rng)
    source = SOURCES[n % len(SOURCES)]
    props: dict[str, str | None] = {
        "email": f"person{n}@example{n % 7}.com",
        "firstname": f"First{n}",
        "lastname": f"Last{n}",
        "phone": None if n % 5 == 0 else f"+1555{n:07d}",
        "company": f"Company {n % 20}",
        "jobtitle": "Buyer" if n % 2 else "Owner",
        "lifecyclestage": LIFECYCLE[n % len(LIFECYCLE)],
        "hubspot_owner_id": owners[n % len(owners)]["id"],
        "hs_analytics_source": source,
        "hs_analytics_source_data_1": {"PAID_SEARCH": "google", "PAID_SOCIAL": "facebook"}.get(source),
        "hs_analytics_source_data_2": "cmp-1" if source.startswith("PAID") else None,
        "hs_google_click_id": f"gclid-{n}" if source == "PAID_SEARCH" else None,
        "hs_facebook_click_id": f"fbclid-{n}" if source == "PAID_SOCIAL" else None,
        "trial_start_date": "03/04/2026" if n % 11 == 0 else None,
        "createdate": iso(created),
        "lastmodifieddate": iso(modified),
    }
    return _object(crm, props, created, modified)


def _company(crm: CrmState, rng: random.Random, n: int) -> Record:
    created, modified = _times(rng)
    props: dict[str, str | None] = {
        "name": f"Company {n}",
        "domain": f"company{n}.example",
        "industry": "SOFTWARE",
        "city": "Springfield",
        "country": "United States",
        "phone": f"+1666{n:07d}",
        "createdate": iso(created),
        "hs_lastmodifieddate": iso(modified),
    }
    return _object(crm, props, created, modified)


def _deal(crm: CrmState, rng: random.Random, n: int, owners: list[Record]) -> Record:
    created, modified = _times(rng)
    pipeline, stages = ("default", DEFAULT_STAGES) if n % 4 else ("renewals", RENEWAL_STAGES)
    props: dict[str, str | None] = {
        "dealname": f"Deal {n}",
        "amount": f"{500 + 250 * (n % 9)}.00",
        "deal_currency_code": "USD",
        "dealstage": stages[n % len(stages)][0],
        "pipeline": pipeline,
        "closedate": iso(created + timedelta(days=30)),
        "createdate": iso(created),
        "hs_lastmodifieddate": iso(modified),
        "hubspot_owner_id": owners[n % len(owners)]["id"],
    }
    return _object(crm, props, created, modified)


def _meeting(crm: CrmState, rng: random.Random, n: int, owners: list[Record]) -> Record:
    created, modified = _times(rng)
    start = created + timedelta(days=3)
    props: dict[str, str | None] = {
        "hs_meeting_title": f"Intro call {n}",
        "hs_meeting_start_time": iso(start),
        "hs_meeting_end_time": iso(start + timedelta(minutes=30)),
        "hs_meeting_outcome": "COMPLETED" if n % 3 else "SCHEDULED",
        "hs_timestamp": iso(start),
        "hs_meeting_external_url": f"https://api.calendly.com/scheduled_events/EV{n:06d}",
        "hubspot_owner_id": owners[n % len(owners)]["id"],
        "hs_createdate": iso(created),
        "hs_lastmodifieddate": iso(modified),
    }
    return _object(crm, props, created, modified)


def _owners() -> list[Record]:
    stamp = iso(NOW - timedelta(days=800))
    return [
        {
            "id": str(70_000 + i),
            "email": f"owner{i}@trueup.example",
            "firstName": f"Owner{i}",
            "lastName": "Seller",
            "userId": 9_000 + i,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        for i in range(3)
    ]


def _pipeline(
    pipeline_id: str, label: str, order: int, stages: tuple[tuple[str, str, str, str], ...]
) -> Record:
    stamp = iso(NOW - timedelta(days=800))
    return {
        "id": pipeline_id,
        "label": label,
        "displayOrder": order,
        "stages": [
            {
                "id": stage_id,
                "label": stage_label,
                "displayOrder": i,
                "metadata": {"isClosed": closed, "probability": probability},
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                "createdAt": stamp,
                "updatedAt": stamp,
                "archived": False,
            }
            for i, (stage_id, stage_label, closed, probability) in enumerate(stages)
        ],
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }


def build_world(contacts: int = 300, seed: int = 11) -> World:
    """Contacts, 20 companies, 60 deals, 40 meetings, owners, pipelines and their associations."""
    rng = random.Random(seed)
    world = World(seed=seed, contacts_target=contacts, now=NOW)
    crm = world.crm
    crm.owners = _owners()
    crm.pipelines = [
        _pipeline("default", "Sales Pipeline", 0, DEFAULT_STAGES),
        _pipeline("renewals", "Renewals", 1, RENEWAL_STAGES),
    ]
    company_records = [_company(crm, rng, n) for n in range(20)]
    contact_records = [_contact(crm, rng, n, crm.owners) for n in range(contacts)]
    deal_records = [_deal(crm, rng, n, crm.owners) for n in range(60)]
    meeting_records = [_meeting(crm, rng, n, crm.owners) for n in range(40)]
    crm.companies.put_many(company_records)
    crm.contacts.put_many(contact_records)
    crm.deals.put_many(deal_records)
    crm.meetings.put_many(meeting_records)
    for n, contact in enumerate(contact_records[: min(contacts, 200)]):
        crm.associate("contacts", contact["id"], "companies", company_records[n % 20]["id"])
    for n, deal in enumerate(deal_records):
        crm.associate("deals", deal["id"], "contacts", contact_records[(n * 3) % contacts]["id"])
        crm.associate("deals", deal["id"], "companies", company_records[n % 20]["id"])
    for n, meeting in enumerate(meeting_records):
        crm.associate("contacts", contact_records[(n * 7) % contacts]["id"], "meetings", meeting["id"])
    return world
