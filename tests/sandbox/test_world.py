"""The generated world honours sandbox/WORLD.md: shapes, ground truth, consistency, advance."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sandbox import world as world_module
from sandbox.store import World
from sandbox.world import KINDS, GroundTruth, generate

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ISO_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
AMOUNT = re.compile(r"^\d+\.\d\d$")
STRIPE_ID = re.compile(r"^(cus|in|il|ch|pi|sub|si|price|prod|evt)_[0-9A-Za-z]{14,24}$")
CALENDLY_URI = "https://api.calendly.com/"
SETTLE = timedelta(days=7)
ZONES = {"google": ZoneInfo("America/New_York"), "meta": ZoneInfo("America/Los_Angeles")}
RESTATE_DAYS = 7  # advance changes ad rows only this many account-local days back


# -- independent helpers (the rules a reconciliation would apply) ---------------------------------


def e164(text: str | None) -> str | None:
    digits = re.sub(r"\D", "", text or "")
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return None


def norm_email(value: str | None) -> str:
    return (value or "").strip().lower()


def norm_name(value: str | None) -> str:
    return " ".join((value or "").split()).lower()


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def cents(amount: str) -> int:
    return round(float(amount) * 100)


def active(world: World, kind: str) -> list[Any]:
    return [a for a in world.truth.anomalies if a.active and a.kind == kind]


def won_stages(world: World) -> set[str]:
    return {
        stage["id"]
        for pipeline in world.crm.pipelines
        for stage in pipeline["stages"]
        if stage["metadata"] == {"isClosed": "true", "probability": "1.0"}
    }


def person_of(world: World) -> dict[str, Any]:
    owners: dict[str, Any] = {}
    for person in world.truth.persons:
        for key in person.crm_contact_ids + person.billing_customer_ids + person.scheduling_invitee_uris:
            owners[key] = person
    return owners


def local_today(world: World, platform: str) -> str:
    return world.now.astimezone(ZONES[platform]).date().isoformat()


def crm_paid_leads(world: World) -> Counter[tuple[str, str, str]]:
    zones = ZONES
    counted: Counter[tuple[str, str, str]] = Counter()
    for contact in world.crm.contacts:
        props = contact["properties"]
        source, utm = props["hs_analytics_source"], props["hs_analytics_source_data_1"]
        if (source, utm) == ("PAID_SEARCH", "google"):
            platform = "google"
        elif (source, utm) == ("PAID_SOCIAL", "facebook"):
            platform = "meta"
        else:
            continue
        day = ts(props["createdate"]).astimezone(zones[platform]).date().isoformat()
        counted[(platform, props["hs_analytics_source_data_2"], day)] += 1
    return counted


def shows(world: World, anomaly: Any) -> bool:
    """Does the served data show this anomaly, judged from the records alone?"""
    crm, billing = world.crm, world.billing
    keys, kind = anomaly.keys, anomaly.kind
    if kind == "deal_won_no_invoice":
        deal = crm.deals.get(keys["deal_id"])
        invoiced = any(i["metadata"].get("hubspot_deal_id") == keys["deal_id"] for i in billing.invoices)
        old = deal is not None and ts(deal["properties"]["closedate"]) < world.now - SETTLE
        return old and deal["properties"]["dealstage"] in won_stages(world) and not invoiced
    if kind == "paid_invoice_crm_not_customer":
        inv, contact = billing.invoices.get(keys["invoice_id"]), crm.contacts.get(keys["contact_id"])
        assert inv is not None and contact is not None and inv["customer"] == keys["customer_id"]
        return inv["status"] == "paid" and contact["properties"]["lifecyclestage"] != "customer"
    if kind == "invoice_amount_mismatch":
        deal, inv = crm.deals.get(keys["deal_id"]), billing.invoices.get(keys["invoice_id"])
        assert deal is not None and inv is not None and inv["metadata"]["hubspot_deal_id"] == keys["deal_id"]
        amount = cents(deal["properties"]["amount"])
        return abs(inv["total"] - amount) > 0.01 * amount
    if kind in ("appointment_time_mismatch", "appointment_status_mismatch"):
        meeting = crm.meetings.get(keys["meeting_id"])
        event = world.scheduling.events.get(keys["event_uri"])
        assert meeting is not None and event is not None
        props = meeting["properties"]
        if props["hs_meeting_external_url"] != keys["event_uri"] or event["status"] != "canceled":
            return False
        rescheduled = event["cancellation"]["reason"] == "Rescheduled"
        if kind == "appointment_time_mismatch":
            return rescheduled and ts(props["hs_meeting_start_time"]) == ts(event["start_time"])
        return not rescheduled and props["hs_meeting_outcome"] == "SCHEDULED"
    if kind in ("email_mismatch", "name_mismatch", "phone_mismatch"):
        contact, cust = crm.contacts.get(keys["contact_id"]), billing.customers.get(keys["customer_id"])
        assert contact is not None and cust is not None
        props = contact["properties"]
        if kind == "email_mismatch":
            return norm_email(props["email"]) != norm_email(cust["email"])
        if kind == "name_mismatch":
            return norm_name(f"{props['firstname']} {props['lastname']}") != norm_name(cust["name"])
        return e164(props["phone"]) != e164(cust["phone"])
    if kind == "billing_orphan":
        cust = billing.customers.get(keys["customer_id"])
        assert cust is not None
        emails = {norm_email(c["properties"]["email"]) for c in crm.contacts}
        return not cust["metadata"] and norm_email(cust["email"]) not in emails
    if kind == "crm_duplicate":
        first, dup = crm.contacts.get(keys["contact_id"]), crm.contacts.get(keys["duplicate_contact_id"])
        assert first is not None and dup is not None
        same = norm_email(first["properties"]["email"]) == norm_email(dup["properties"]["email"])
        return same and dup["properties"]["hs_analytics_source"] == "OFFLINE"
    if kind == "ad_conversion_mismatch":
        rows = world.ads.google_rows if keys["platform"] == "google" else world.ads.meta_rows
        row = next(r for r in rows if (r["campaign_id"], r["date"]) == (keys["campaign_id"], keys["date"]))
        reported = row["conversions"] if keys["platform"] == "google" else row["leads"]
        counted = crm_paid_leads(world)[(keys["platform"], keys["campaign_id"], keys["date"])]
        return reported >= counted + 5 and reported >= 1.5 * counted
    if kind == "invoice_payment_mismatch":
        inv = billing.invoices.get(keys["invoice_id"])
        assert inv is not None
        ok = any(c["invoice"] == inv["id"] and c["status"] == "succeeded" for c in billing.charges)
        return (inv["status"] == "paid") != ok
    if kind == "malformed_value":
        deal = crm.deals.get(keys["deal_id"])
        assert deal is not None
        value = deal["properties"][keys["field"]]
        return value == anomaly.detail["value"] and not (
            AMOUNT if keys["field"] == "amount" else ISO_MS
        ).match(value)
    contact = crm.contacts.get(keys["contact_id"])
    assert contact is not None
    if kind == "malformed_date":
        value = contact["properties"]["trial_start_date"]
        return value == anomaly.detail["value"] and not ISO_DATE.match(value)
    value = contact["properties"]["phone"]
    return value == anomaly.detail["value"] and e164(value) is None


def unlisted(world: World) -> list[str]:
    """Every disagreement in the data that the truth does not list (should be none)."""
    crm, billing = world.crm, world.billing
    problems: list[str] = []
    owner = person_of(world)

    def listed(kind: str, **keys: str) -> bool:
        return any(all(a.keys.get(k) == v for k, v in keys.items()) for a in active(world, kind))

    invoiced = {i["metadata"].get("hubspot_deal_id") for i in billing.invoices}
    won = won_stages(world)
    for deal in crm.deals:
        props = deal["properties"]
        for field, form in (("amount", AMOUNT), ("closedate", ISO_MS)):
            if (not form.match(props[field])) != listed("malformed_value", deal_id=deal["id"], field=field):
                problems.append(f"deal {deal['id']} {field} {props[field]!r}")
        settled = props["dealstage"] in won and ts(props["closedate"]) < world.now - SETTLE
        if settled and (deal["id"] in invoiced) == listed("deal_won_no_invoice", deal_id=deal["id"]):
            problems.append(f"won deal {deal['id']} invoice/truth disagree")
    for inv in billing.invoices:
        person = owner[inv["customer"]]
        if inv["status"] == "paid":
            contacts = [crm.contacts.get(c) for c in person.crm_contact_ids]
            bad = any(c["properties"]["lifecyclestage"] != "customer" for c in contacts if c)
            if bad != listed("paid_invoice_crm_not_customer", invoice_id=inv["id"]):
                problems.append(f"paid invoice {inv['id']} lifecycle")
        deal_id = inv["metadata"].get("hubspot_deal_id")
        if deal_id:
            amount = cents(crm.deals.get(deal_id)["properties"]["amount"])  # type: ignore[index]
            if (abs(inv["total"] - amount) > 0.01 * amount) != listed(
                "invoice_amount_mismatch", deal_id=deal_id
            ):
                problems.append(f"invoice {inv['id']} amount")
    succeeded = {c["invoice"] for c in billing.charges if c["status"] == "succeeded"}
    for inv in billing.invoices:
        if ((inv["status"] == "paid") != (inv["id"] in succeeded)) != listed(
            "invoice_payment_mismatch", invoice_id=inv["id"]
        ):
            problems.append(f"invoice {inv['id']} payments")
    for cust in billing.customers:
        person = owner[cust["id"]]
        if not person.crm_contact_ids:
            if not listed("billing_orphan", customer_id=cust["id"]):
                problems.append(f"orphan {cust['id']} not listed")
            continue
        for cid in person.crm_contact_ids:
            props = crm.contacts.get(cid)["properties"]  # type: ignore[index]
            pair = {"contact_id": cid, "customer_id": cust["id"]}
            if (norm_email(props["email"]) != norm_email(cust["email"])) != listed("email_mismatch", **pair):
                problems.append(f"email {cid}/{cust['id']}")
            crm_name = norm_name(f"{props['firstname']} {props['lastname']}")
            if (crm_name != norm_name(cust["name"])) != listed("name_mismatch", **pair):
                problems.append(f"name {cid}/{cust['id']}")
            if (e164(props["phone"]) != e164(cust["phone"])) != listed("phone_mismatch", **pair):
                problems.append(f"phone {cid}/{cust['id']}")
    for person in world.truth.persons:
        ids = person.crm_contact_ids
        for dup in ids[1:]:
            if not listed("crm_duplicate", contact_id=ids[0], duplicate_contact_id=dup):
                problems.append(f"duplicate {dup} not listed")
        for cid in ids:
            props = crm.contacts.get(cid)["properties"]  # type: ignore[index]
            trial = props["trial_start_date"]
            if (trial is not None and not ISO_DATE.match(trial)) != listed("malformed_date", contact_id=cid):
                problems.append(f"trial date {cid}")
            phone = props["phone"]
            if (phone is not None and e164(phone) is None) != listed("malformed_phone", contact_id=cid):
                problems.append(f"phone text {cid}")
            if phone is not None and e164(phone) is not None and e164(phone) != person.phone_e164:
                problems.append(f"contact {cid} phone is not its person's")
    for meeting in crm.meetings:
        props = meeting["properties"]
        event = world.scheduling.events.get(props["hs_meeting_external_url"])
        if event is None:
            problems.append(f"meeting {meeting['id']} points nowhere")
            continue
        pair = {"meeting_id": meeting["id"], "event_uri": event["uri"]}
        if event["status"] == "active":
            if props["hs_meeting_outcome"] == "CANCELED" or ts(props["hs_meeting_start_time"]) != ts(
                event["start_time"]
            ):
                problems.append(f"meeting {meeting['id']} disagrees with its active event")
        elif event["cancellation"]["reason"] == "Rescheduled":
            if not listed("appointment_time_mismatch", **pair):
                problems.append(f"meeting {meeting['id']} on a rescheduled event")
        elif (props["hs_meeting_outcome"] != "CANCELED") != listed("appointment_status_mismatch", **pair):
            problems.append(f"meeting {meeting['id']} cancel status")
    counted = crm_paid_leads(world)
    for platform, rows, field in (
        ("google", world.ads.google_rows, "conversions"),
        ("meta", world.ads.meta_rows, "leads"),
    ):
        for row in rows:
            differs = row[field] != counted[(platform, row["campaign_id"], row["date"])]
            keys = {"platform": platform, "campaign_id": row["campaign_id"], "date": row["date"]}
            if differs != listed("ad_conversion_mismatch", **keys):
                problems.append(f"{platform} row {row['campaign_id']} {row['date']}")
        known = {(r["campaign_id"], r["date"]) for r in rows}
        today = local_today(world, platform)  # today's leads count once the day is complete
        problems += [
            f"leads on a day without a row: {k}"
            for k in counted
            if k[0] == platform and k[1:] not in known and k[2] < today
        ]
    return problems


def fingerprint(world: World) -> str:
    digest = hashlib.sha256()
    parts: list[Any] = [
        world.crm.owners,
        world.crm.pipelines,
        {f"{a}>{b}": v for (a, b), v in world.crm.associations.items()},
        world.scheduling.users,
        world.scheduling.invitees_by_event,
        world.ads.google_customers,
        world.ads.google_campaigns,
        world.ads.google_rows,
        world.ads.meta_accounts,
        world.ads.meta_campaigns,
        world.ads.meta_rows,
        [p.identity() for p in world.truth.persons],
        [a.as_dict() for a in world.truth.anomalies],
    ]
    collections = [world.crm.contacts, world.crm.companies, world.crm.deals, world.crm.meetings]
    collections += [world.scheduling.events, world.scheduling.invitees]
    for name in ("customers", "invoices", "payment_intents", "charges", "subscriptions", "events"):
        collections.append(world.billing.objects(name))  # type: ignore[arg-type]
    parts += [list(c) for c in collections]
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def world() -> World:
    return generate()


# -- determinism -----------------------------------------------------------------------------------


def test_same_arguments_give_the_same_world(world: World) -> None:
    assert fingerprint(generate()) == fingerprint(world)
    assert fingerprint(generate(seed=8)) != fingerprint(world)


# -- shapes ----------------------------------------------------------------------------------------


def test_hubspot_objects_have_string_properties(world: World) -> None:
    for name in ("contacts", "companies", "deals", "meetings"):
        collection = world.crm.objects(name)
        assert collection is not None and len(collection) > 0
        modified = "lastmodifieddate" if name == "contacts" else "hs_lastmodifieddate"
        created = "hs_createdate" if name == "meetings" else "createdate"
        for record in collection:
            assert set(record) == {"id", "properties", "createdAt", "updatedAt", "archived"}
            assert record["id"].isdigit() and record["archived"] is False
            props = record["properties"]
            assert all(v is None or isinstance(v, str) for v in props.values()), record
            assert props["hs_object_id"] == record["id"]
            assert record["updatedAt"] == props[modified] and record["createdAt"] == props[created]
            assert ISO_MS.match(props[modified]) and props[modified] >= props[created]
            assert ts(props[modified]) <= world.now
    stages = {s["id"] for p in world.crm.pipelines for s in p["stages"]}
    assert {"closedwon", "closedlost", "appointmentscheduled"} <= stages
    renewals = next(p for p in world.crm.pipelines if p["id"] == "renewals")
    assert all(s["id"].isdigit() for s in renewals["stages"])
    malformed = {(a.keys["deal_id"], a.keys["field"]) for a in active(world, "malformed_value")}
    for deal in world.crm.deals:
        assert deal["properties"]["dealstage"] in stages
        if (deal["id"], "amount") not in malformed:
            assert AMOUNT.match(deal["properties"]["amount"])


def test_hubspot_associations_go_both_ways(world: World) -> None:
    assoc = world.crm.associations
    for a, b in (
        ("contacts", "companies"),
        ("contacts", "deals"),
        ("deals", "companies"),
        ("contacts", "meetings"),
    ):
        forward, backward = assoc[(a, b)], assoc[(b, a)]
        assert forward
        for from_id, to_ids in forward.items():
            for to_id in to_ids:
                assert from_id in backward[to_id]
    for meeting in world.crm.meetings:
        assert assoc[("meetings", "contacts")][meeting["id"]]


def test_stripe_objects_have_integer_amounts_and_unique_created(world: World) -> None:
    billing = world.billing
    for name in ("customers", "invoices", "payment_intents", "charges", "subscriptions", "events"):
        collection = billing.objects(name)
        assert collection is not None and len(collection) > 0, name
        created = [r["created"] for r in collection]
        assert len(set(created)) == len(created), name
        assert all(isinstance(c, int) for c in created)
        assert all(STRIPE_ID.match(r["id"]) for r in collection), name
    for inv in billing.invoices:
        for key in ("amount_due", "amount_paid", "amount_remaining", "subtotal", "total"):
            assert isinstance(inv[key], int)
        assert sum(line["amount"] for line in inv["lines"]["data"]) == inv["total"]
        assert inv["status"] in ("open", "paid", "uncollectible")
    for charge in billing.charges:
        assert isinstance(charge["amount"], int) and charge["invoice"] in billing.invoices
    cutoff = int((world.now - timedelta(days=30)).timestamp())
    assert all(e["created"] >= cutoff and e["api_version"] == "2024-06-20" for e in billing.events)
    types = {e["type"] for e in billing.events}
    assert {"invoice.paid", "charge.succeeded", "customer.created", "invoice.finalized"} <= types
    six_months = int((world.now - timedelta(days=190)).timestamp())
    for inv in billing.invoices:
        if inv["subscription"]:
            assert inv["created"] >= six_months


def announced_intents(world: World) -> set[str]:
    return {e["data"]["object"]["id"] for e in world.billing.events if e["type"] == "payment_intent.created"}


def test_invoice_payment_intents_are_announced() -> None:
    w = generate(seed=5, contacts=600)
    recent = int((w.now - timedelta(days=30)).timestamp())
    expected = {
        inv["payment_intent"]
        for inv in w.billing.invoices
        if inv["status_transitions"]["finalized_at"] >= recent
    }
    assert expected and expected <= announced_intents(w)
    for event in w.billing.events:
        if event["type"] == "payment_intent.created":
            intent = event["data"]["object"]
            assert (intent["status"], intent["amount_received"], intent["latest_charge"]) == (
                "requires_payment_method",
                0,
                None,
            )
    before = set(w.billing.payment_intents.ids())
    world_module.advance(w, 3)
    new = set(w.billing.payment_intents.ids()) - before
    assert new and new <= announced_intents(w)  # a connector following events sees every intent


def test_calendly_records_link_up(world: World) -> None:
    sched = world.scheduling
    assert len(sched.users) == len(world.crm.owners)
    for event in sched.events:
        assert event["uri"].startswith(CALENDLY_URI) and ISO_US.match(event["start_time"])
        assert ("cancellation" in event) == (event["status"] == "canceled")
        assert sched.invitees_by_event[event["uri"]]
    rescheduled = 0
    for invitee in sched.invitees:
        assert invitee["event"] in sched.events and ISO_US.match(invitee["updated_at"])
        assert invitee["questions_and_answers"][0]["question"] == "Company name"
        if invitee["rescheduled"]:
            rescheduled += 1
            new = sched.invitees.get(invitee["new_invitee"])
            assert new is not None and new["old_invitee"] == invitee["uri"]
            assert sched.events.get(invitee["event"])["cancellation"]["reason"] == "Rescheduled"  # type: ignore[index]
    canceled = sum(1 for e in sched.events if e["status"] == "canceled")
    assert rescheduled > 0 and canceled > rescheduled
    assert sum(1 for m in world.crm.meetings if m["properties"]["hs_meeting_outcome"] == "RESCHEDULED") > 0


def test_ad_rows_are_sorted_daily_rows(world: World) -> None:
    for rows in (world.ads.google_rows, world.ads.meta_rows):
        keys = [(r["date"], r["campaign_id"]) for r in rows]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert 3 <= len(world.ads.google_campaigns) <= 10
    for row in world.ads.google_rows:
        assert isinstance(row["conversions"], float) and isinstance(row["cost_micros"], int)
    for row in world.ads.meta_rows:
        assert isinstance(row["leads"], int) and re.match(r"^\d+\.\d\d$", row["spend"])


def last_day(rows: list[dict[str, Any]]) -> str:
    return max(r["date"] for r in rows)


def test_ad_rows_end_with_the_last_complete_local_day(world: World) -> None:
    # now is 2026-11-01T00:00Z: still 2026-10-31 in New York and Los Angeles
    for platform, rows in (("google", world.ads.google_rows), ("meta", world.ads.meta_rows)):
        assert local_today(world, platform) == "2026-10-31"
        assert last_day(rows) == "2026-10-30", platform
    waiting = [k for k in crm_paid_leads(world) if k[2] == "2026-10-31"]
    assert waiting  # today's paid leads exist, without a row yet


def test_advance_adds_the_completed_day_with_its_leads() -> None:
    w = generate()  # seed 7 has paid leads on the accounts' local today
    before = crm_paid_leads(w)
    waiting = {k: n for k, n in before.items() if k[2] == local_today(w, k[0])}
    assert waiting
    world_module.advance(w, 1)
    for platform, rows, field in (
        ("google", w.ads.google_rows, "conversions"),
        ("meta", w.ads.meta_rows, "leads"),
    ):
        today = local_today(w, platform)
        completed = (datetime.fromisoformat(today) - timedelta(days=1)).date().isoformat()
        assert last_day(rows) == completed, platform
        served = {(platform, r["campaign_id"], r["date"]): r[field] for r in rows}
        for key, n in waiting.items():
            if key[0] == platform:  # yesterday's leads are on the row, plus any made after `now`
                assert served[key] >= n
    assert unlisted(w) == []


def ad_snapshot(world: World) -> dict[tuple[str, str, str], dict[str, Any]]:
    snapshot = {}
    for platform, rows in (("google", world.ads.google_rows), ("meta", world.ads.meta_rows)):
        for row in rows:
            snapshot[(platform, row["campaign_id"], row["date"])] = dict(row)
    return snapshot


def test_advance_changes_ad_days_only_within_the_look_back() -> None:
    w = generate(seed=4, contacts=600)  # introduces and fixes a mismatch in 12 days
    old = {a.anomaly_id for a in active(w, "ad_conversion_mismatch")}
    assert old
    introduced = fixed = 0
    for _ in range(12):
        before = ad_snapshot(w)
        known = {a.anomaly_id: a.active for a in w.truth.anomalies}
        world_module.advance(w, 1)
        window = {
            p: (w.now.astimezone(z).date() - timedelta(days=RESTATE_DAYS)).isoformat()
            for p, z in ZONES.items()
        }
        for key, row in ad_snapshot(w).items():
            if before.get(key) != row:
                assert window[key[0]] <= key[2] < local_today(w, key[0]), (key, row)
        for a in w.truth.anomalies:
            if a.kind != "ad_conversion_mismatch":
                continue
            if a.anomaly_id not in known or (known[a.anomaly_id] and not a.active):
                assert a.keys["date"] >= window[a.keys["platform"]], a
                introduced += a.anomaly_id not in known
                fixed += a.anomaly_id in known
    assert introduced and fixed  # the window was exercised, not just left alone
    # mismatches older than the look-back stay as they are
    still = {a.anomaly_id for a in active(w, "ad_conversion_mismatch")}
    assert old <= still
    assert unlisted(w) == []


def test_proportions(world: World) -> None:
    n = len(world.crm.contacts)
    assert n == 2000
    assert 0.2 < len(world.crm.companies) / n < 0.3
    assert 0.3 < len(world.crm.deals) / n < 0.4
    won = sum(1 for d in world.crm.deals if d["properties"]["dealstage"] in won_stages(world))
    assert 0.33 < won / len(world.crm.deals) < 0.47
    booked = {c for m in world.crm.meetings for c in world.crm.associated("meetings", m["id"], "contacts")}
    assert 0.38 < len(booked) / n < 0.52
    with_sub = {s["customer"] for s in world.billing.subscriptions}
    assert 0.12 < len(with_sub) / len(world.billing.customers) < 0.28


# -- ground truth ----------------------------------------------------------------------------------


def test_every_anomaly_kind_is_present(world: World) -> None:
    counts = Counter(a.kind for a in world.truth.anomalies if a.active)
    assert set(counts) == set(KINDS)
    assert all(counts[k] >= 3 for k in KINDS), counts


def test_truth_keys_show_their_anomaly(world: World) -> None:
    for anomaly in world.truth.anomalies:
        assert shows(world, anomaly), anomaly


def test_no_unlisted_disagreement(world: World) -> None:
    assert unlisted(world) == []


def test_identities_cover_every_record_once(world: World) -> None:
    truth: GroundTruth = world.truth
    owners = Counter(
        key
        for p in truth.persons
        for key in p.crm_contact_ids + p.billing_customer_ids + p.scheduling_invitee_uris
    )
    assert all(n == 1 for n in owners.values())
    assert set(world.crm.contacts.ids()) == {k for k in owners if k.isdigit()}
    assert set(world.billing.customers.ids()) == {k for k in owners if k.startswith("cus_")}
    assert set(world.scheduling.invitees.ids()) == {k for k in owners if k.startswith(CALENDLY_URI)}
    emails = [p.email for p in truth.persons]
    assert len(set(emails)) == len(emails)
    for person in truth.persons:
        assert person.phone_e164 is None or e164(person.phone_e164) == person.phone_e164


def test_noise_stays_cosmetic_between_crm_and_billing(world: World) -> None:
    owner = person_of(world)
    raw_differences = 0
    for cust in world.billing.customers:
        person = owner[cust["id"]]
        if person.crm_contact_ids:
            props = world.crm.contacts.get(person.crm_contact_ids[0])["properties"]  # type: ignore[index]
            raw_differences += props["email"] != cust["email"] or props["phone"] != cust["phone"]
    assert raw_differences > 10  # case, whitespace and phone formats vary
    invitees = list(world.scheduling.invitees)
    plus = sum(1 for i in invitees if "+" in i["email"])
    assert plus > 0 and sum(1 for i in invitees if owner[i["uri"]].first_name != i["first_name"]) > 0


def test_malformed_values_record_their_parse(world: World) -> None:
    parsed = [a.detail["parsed"] for a in active(world, "malformed_date")]
    assert any(parsed) and None in parsed
    for a in active(world, "malformed_date"):
        month, day, year = a.detail["value"].split("/")
        if a.detail["parsed"]:
            assert a.detail["parsed"] == f"{year}-{month}-{day}" and int(day) > 12
        else:
            assert int(day) <= 12 and month != day
    phones = [a.detail["e164"] for a in active(world, "malformed_phone")]
    assert any(phones) and None in phones


def test_write_truth(world: World, tmp_path: Path) -> None:
    world_module.write_truth(world, tmp_path)
    identities = (tmp_path / "identities.jsonl").read_text().splitlines()
    anomalies = (tmp_path / "anomalies.jsonl").read_text().splitlines()
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert len(identities) == len(world.truth.persons)
    assert len(anomalies) == len(world.truth.anomalies)
    first = json.loads(identities[0])
    assert set(first) == {
        "person_id",
        "first_name",
        "last_name",
        "email",
        "phone_e164",
        "company",
        "country",
        "crm_contact_ids",
        "billing_customer_ids",
        "scheduling_invitee_uris",
    }
    anomaly = json.loads(anomalies[0])
    assert set(anomaly) == {"anomaly_id", "kind", "keys", "detail", "active", "introduced_on", "fixed_on"}
    assert meta["seed"] == 7 and meta["counts"]["crm.contacts"] == 2000
    summary = world_module.truth_summary(world)
    assert summary["active"] == len(world.truth.anomalies) and set(summary["kinds"]) == set(KINDS)


# -- advance ---------------------------------------------------------------------------------------


def latest_modification(world: World) -> str:
    stamps = [c["properties"]["lastmodifieddate"] for c in world.crm.contacts]
    for name in ("companies", "deals", "meetings"):
        stamps += [r["properties"]["hs_lastmodifieddate"] for r in world.crm.objects(name)]  # type: ignore[union-attr]
    return max(stamps)


def test_advance_moves_the_business_forward() -> None:
    w = generate(seed=11)
    before_now, before_mod = w.now, latest_modification(w)
    contacts_before = set(w.crm.contacts.ids())
    events_before = len(w.billing.events)
    anomalies_before = len(w.truth.anomalies)
    world_module.advance(w, 1)
    assert w.now == before_now + timedelta(days=1)
    new = [c for c in w.crm.contacts if c["id"] not in contacts_before]
    assert len(new) >= 2
    assert all(c["properties"]["lastmodifieddate"] > before_mod for c in new)
    changed = [c for c in w.crm.contacts if c["id"] in contacts_before and c["updatedAt"] > before_mod]
    assert all(ts(c["updatedAt"]) <= w.now for c in changed)
    today = w.now.date().isoformat()
    yesterday = (w.now - timedelta(days=1)).date().isoformat()
    assert any(a.fixed_on in (today, yesterday) for a in w.truth.anomalies)
    assert len(w.truth.anomalies) > anomalies_before
    assert len(w.billing.events) > events_before
    assert unlisted(w) == []
    for anomaly in w.truth.anomalies:
        if anomaly.active:
            assert shows(w, anomaly), anomaly
    world_module.advance(w, 5)
    assert unlisted(w) == []
    assert all(shows(w, a) for a in w.truth.anomalies if a.active)


def test_advance_keeps_modifications_increasing() -> None:
    w = generate(seed=5, contacts=600)
    stamps = {c["id"]: c["updatedAt"] for c in w.crm.contacts}
    meeting_stamps = {m["id"]: m["updatedAt"] for m in w.crm.meetings}
    invitee_stamps = {i["uri"]: i["updated_at"] for i in w.scheduling.invitees}
    last_event = max(e["created"] for e in w.billing.events)
    world_module.advance(w, 3)
    for contact in w.crm.contacts:
        assert contact["updatedAt"] >= stamps.get(contact["id"], "")
    for meeting in w.crm.meetings:
        assert meeting["updatedAt"] >= meeting_stamps.get(meeting["id"], "")
    for invitee in w.scheduling.invitees:
        assert invitee["updated_at"] >= invitee_stamps.get(invitee["uri"], "")
    assert max(e["created"] for e in w.billing.events) > last_event


# -- noise -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.0, 1.0, 2.0])
def test_noise_levels_generate(noise: float) -> None:
    w = generate(seed=3, contacts=800, noise=noise)
    malformed = {a.keys["contact_id"] for a in active(w, "malformed_phone")}
    crm_emails = [c["properties"]["email"] for c in w.crm.contacts]
    varied = sum(1 for e in crm_emails if e != e.strip().lower())
    formatted = sum(
        1
        for c in w.crm.contacts
        if c["properties"]["phone"]
        and c["id"] not in malformed
        and not c["properties"]["phone"].startswith("+1")
    )
    if noise == 0.0:
        assert varied == 0 and formatted == 0
    else:
        assert varied > 0 and formatted > 0
    assert unlisted(w) == []
