"""The daily advance: a day of new leads, deals, payments, meetings, fixes and anomalies."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sandbox.store import Record, World
from sandbox.world.ads import set_conversions
from sandbox.world.anomalies import AnomalyGen
from sandbox.world.billing import plan_line
from sandbox.world.common import (
    AD_RESTATE_DAYS,
    DAY,
    HISTORY_DAYS,
    HOUR,
    KINDS,
    MIN,
    SEC,
    SETTLE_DAYS,
    add_months,
    iso_ms,
    iso_us,
    live_record,
    norm_email,
    norm_name,
    phone_e164,
    stamp_modified,
    to_cents,
    to_dollars,
    to_ms,
    ymd,
)
from sandbox.world.crm import DEFAULT_STAGES, LOST_STAGES, RENEWAL_STAGES, WON_STAGES, deal_record
from sandbox.world.state import Booking, EngineState
from sandbox.world.truth import Anomaly, Person


class DailyGen(AnomalyGen):
    """Moves the business forward one day at a time."""

    def advance_day(self, world: World) -> None:
        rng = self.r_adv
        # API writes are stamped with the world clock: only then must the day start after them
        written = self._versions() != self.versions
        day_start = max(to_ms(world.now), to_ms(world.clock()) if written else 0) + 1
        day_end = max(to_ms(world.now) + DAY, day_start + HOUR)
        self.now = day_start
        self.day_index = self.refresh(ymd(day_start), deep=True)
        for platform, cal in self.cal.items():
            self.ad_open_from[platform] = cal.ordinal(day_end) - AD_RESTATE_DAYS
        self._extend_ad_rows(day_end)
        ops = self._plan_day(rng, day_start, day_end)
        ops.sort(key=lambda op: (op[0], op[1]))
        for t, _, fn, args in ops:
            self.now = t
            fn(t, *args)
        self.now = day_end
        self.refresh(ymd(day_end - 1), deep=False)
        for crm_collection in (self.crm.contacts, self.crm.companies, self.crm.deals, self.crm.meetings):
            crm_collection.touch()
        for name in ("customers", "invoices", "payment_intents", "charges", "subscriptions", "events"):
            collection = self.billing.objects(name)
            assert collection is not None
            collection.touch()
        self.sched.events.touch()
        self.sched.invitees.touch()
        world.set_now(datetime.fromtimestamp(day_end / 1000, UTC))
        self.versions = self._versions()
        self.day_index = None

    def _versions(self) -> tuple[int, ...]:
        crm, billing, sched = self.crm, self.billing, self.sched
        collections = [crm.contacts, crm.companies, crm.deals, crm.meetings, sched.events, sched.invitees]
        collections += [billing.customers, billing.invoices, billing.payment_intents, billing.charges]
        collections += [billing.subscriptions, billing.events]
        return tuple(c.version for c in collections)

    def _plan_day(
        self, rng: random.Random, start: int, end: int
    ) -> list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]]:
        ops: list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]] = []

        def add(t: int, fn: Callable[..., Any], *args: Any) -> None:
            ops.append((min(max(t, start), end - MIN), len(ops), fn, args))

        def at() -> int:
            return rng.randint(start, end - 10 * MIN)

        def count(mean: float) -> int:
            return int(mean * rng.uniform(0.6, 1.4) + rng.random())

        rate = self.n / HISTORY_DAYS * 4 / 3  # new contacts a day at the end of history
        for _ in range(max(2, count(rate))):
            add(at(), self._op_new_contact)
        for _ in range(count(rate * 0.3)):
            add(at(), self._op_new_deal)
        for _ in range(count(rate * 0.15)):
            add(at(), self._op_book)
        for did in self.open_deals:
            r = rng.random()
            if r < 0.01:
                add(at(), self._op_close, did, rng.random() < 0.5)
            elif r < 0.06:
                add(at(), self._op_stage, did)
        due = [p for p in self.pending if p[0] < end]
        self.pending = [p for p in self.pending if p[0] >= end]
        for t, what, did in due:
            add(t, self._op_invoice if what == "invoice" else self._op_reveal, did)
        for inv_id in self.open_invoices:
            if rng.random() < 0.12:
                add(at(), self._op_pay, inv_id)
        for bk in self.upcoming.values():
            r = rng.random()
            if bk.end + 20 * MIN < end:
                add(bk.end + rng.randint(20 * MIN, 2 * HOUR), self._op_complete, bk)
            elif r < 0.012:
                add(at(), self._op_move, bk, False, False)
            elif r < 0.02:
                add(at(), self._op_move, bk, True, False)
        for sub_id in self.subscriptions:
            sub = self.billing.subscriptions.get(sub_id)
            if sub is not None and sub["current_period_end"] * 1000 < end:
                add(sub["current_period_end"] * 1000 + rng.randint(SEC, 10 * MIN), self._op_cycle, sub_id)
        fixable = [
            a for a in self.anomalies if a.active and a.kind not in ("crm_duplicate", "malformed_value")
        ]
        fixes = [a for a in fixable if rng.random() < 0.05]
        if not fixes and fixable:
            fixes = [rng.choice(fixable)]
        for a in fixes:
            when = at()  # drawn for every pick, fixed or not, so the day's other draws stay the same
            if self._fixable(a):
                add(when, self._op_fix, a)
        for _ in range(max(1, count(rate * 0.02))):
            add(at(), self._op_new_anomaly)
        self._plan_malformed_values(add, start, end)
        return ops

    def _plan_malformed_values(self, add: Callable[..., None], start: int, end: int) -> None:
        """Malformed values come and go on a random stream of their own, so every other draw of
        the day (and so every other anomaly) stays as it was before they existed."""
        rng = self.r_malformed
        for a in self.anomalies:
            if a.active and a.kind == "malformed_value" and rng.random() < 0.05:
                add(rng.randint(start, end - 10 * MIN), self._op_fix, a)
        if rng.random() < 0.1:
            add(rng.randint(start, end - 10 * MIN), self._new_malformed_value)

    def _fixable(self, a: Anomaly) -> bool:
        """An ad mismatch is fixed only on a day the connectors still re-pull."""
        return a.kind != "ad_conversion_mismatch" or self._ad_day_open(a.keys["platform"], a.keys["date"])

    def _random_person(self, rng: random.Random, accept: Callable[[int, Person], bool]) -> int | None:
        for _ in range(400):
            i = rng.randrange(len(self.persons))
            if accept(i, self.persons[i]):
                return i
        return None

    def _set_lifecycle(self, i: int, stage: str, t: int) -> None:
        rank = {
            "customer": 5,
            "opportunity": 4,
            "salesqualifiedlead": 3,
            "marketingqualifiedlead": 2,
            "lead": 1,
        }
        for cid in self.persons[i].crm_contact_ids:
            contact = live_record(self.crm.contacts, cid)
            if contact is None:
                continue
            props = contact["properties"]
            if rank.get(stage, 0) > rank.get(props.get("lifecyclestage") or "", 0):
                props["lifecyclestage"] = stage
                stamp_modified(contact, "lastmodifieddate", t)

    def _customer_for(self, i: int, t: int) -> Record:
        for cust_id in self.persons[i].billing_customer_ids:
            cust = self.billing.customers.get(cust_id)
            if cust is not None:
                return cust
        return self._customer(i, t, linked=True)

    def _op_new_contact(self, t: int) -> None:
        rng = self.r_adv
        i = len(self.persons)
        p = self._new_person(rng, i, rng.random, rng.choice)
        self.persons.append(p)
        record = self._contact_record(rng, i, t, False, "subscriber" if rng.random() < 0.2 else "lead")
        self.crm.contacts.put(record)
        self.crm.associate("contacts", record["id"], "companies", self.co_id[p.company_index])
        if rng.random() < 0.3:
            self._op_book(t + MIN, i)

    def _op_book(self, t: int, i: int | None = None) -> None:
        rng = self.r_adv
        if i is None:
            i = self._random_person(rng, lambda _i, p: bool(p.crm_contact_ids))
            if i is None:
                return
        contact = live_record(self.crm.contacts, self.persons[i].crm_contact_ids[0])
        if contact is None:
            return
        owner = self.owner_index.get(contact["properties"].get("hubspot_owner_id") or "", 0)
        bk = self._plan_booking(rng, i, owner, t)
        meeting = self._booking_records(rng, bk)
        if meeting is not None:
            self.crm.meetings.put(meeting)

    def _op_new_deal(self, t: int) -> None:
        rng = self.r_adv
        i = self._random_person(rng, lambda i, p: bool(p.crm_contact_ids) and i not in self.used)
        if i is None:
            return
        p = self.persons[i]
        contact = live_record(self.crm.contacts, p.crm_contact_ids[0])
        if contact is None:
            return
        d = self._plan_deal(rng, i, "default", t, 0.0, 0.0)
        d.stage, d.id = "appointmentscheduled", self.crm.new_id()
        self.crm.deals.put(
            deal_record(d, contact["properties"].get("hubspot_owner_id") or self.owner_ids[0], t)
        )
        self.crm.associate("contacts", contact["id"], "deals", d.id)
        self.crm.associate("deals", d.id, "companies", self.co_id[p.company_index])
        self.open_deals[d.id] = None
        self.deal_person[d.id] = i
        self._set_lifecycle(i, "opportunity", t)

    def _op_stage(self, t: int, did: str) -> None:
        deal = live_record(self.crm.deals, did)
        if deal is None:
            return
        props = deal["properties"]
        stages = DEFAULT_STAGES if props.get("pipeline") == "default" else RENEWAL_STAGES
        open_ids = [s[0] for s in stages if not s[3]]
        if props.get("dealstage") in open_ids[:-1]:
            props["dealstage"] = open_ids[open_ids.index(props["dealstage"]) + 1]
            stamp_modified(deal, "hs_lastmodifieddate", t)

    def _op_close(self, t: int, did: str, won: bool, no_invoice: bool = False) -> bool:
        self.open_deals.pop(did, None)
        deal = live_record(self.crm.deals, did)
        i = self.deal_person.get(did)
        if deal is None or i is None:
            return False
        props = deal["properties"]
        if props.get("dealstage") in WON_STAGES or props.get("dealstage") in LOST_STAGES:
            return False
        stages = DEFAULT_STAGES if props.get("pipeline") == "default" else RENEWAL_STAGES
        props["dealstage"] = stages[-2][0] if won else stages[-1][0]
        props["closedate"] = iso_ms(t)
        stamp_modified(deal, "hs_lastmodifieddate", t)
        rng = self.r_adv
        if not won:
            self._set_lifecycle(i, "salesqualifiedlead", t)
            return True
        self._set_lifecycle(i, "customer", t)
        self._customer_for(i, t + SEC)
        if no_invoice or rng.random() < 0.02:
            self.pending.append((t + SETTLE_DAYS * DAY + HOUR, "reveal", did))
        else:
            self.pending.append((t + rng.randint(10 * MIN, 3 * DAY), "invoice", did))
        return True

    def _op_invoice(self, t: int, did: str) -> None:
        deal = live_record(self.crm.deals, did)
        i = self.deal_person.get(did)
        if did in self.deal_invoice or deal is None or i is None:
            return
        props = deal["properties"]
        if props.get("dealstage") not in WON_STAGES:
            return
        cents = to_cents(props.get("amount"))
        name = props.get("dealname") or "Deal"
        inv = self._invoice(
            self._customer_for(i, t),
            t,
            t + self.r_adv.randint(30 * SEC, 10 * MIN),
            [(cents, name)],
            reason="manual",
            metadata={"hubspot_deal_id": did},
            subscription=None,
            period=(t, t),
            description=name,
            automatic=False,
            outcome="open",
        )
        self.deal_invoice[did] = inv["id"]
        self.invoiced_deals.append(did)

    def _op_reveal(self, t: int, did: str) -> None:
        deal = live_record(self.crm.deals, did)
        if deal is None or did in self.deal_invoice or deal["properties"].get("dealstage") not in WON_STAGES:
            return
        props = deal["properties"]
        detail = {"amount": props.get("amount"), "closedate": props.get("closedate")}
        self._anomaly("deal_won_no_invoice", {"deal_id": did}, detail, t)

    def _op_pay(self, t: int, inv_id: str) -> None:
        self.open_invoices.pop(inv_id, None)
        inv = self.billing.invoices.get(inv_id)
        if inv is None or inv["status"] != "open":
            return
        cust = self.billing.customers.get(inv["customer"])
        pi = self.billing.payment_intents.get(inv.get("payment_intent") or "")
        if cust is None or pi is None:
            return
        attempts = inv.get("attempt_count") or 0
        if pi["status"] == "succeeded":
            charge_id = pi["latest_charge"]
        else:
            charge = self._charge(cust, inv_id, pi["id"], inv["amount_due"], t, ok=True)
            charge_id, attempts = charge["id"], attempts + 1
            pi.update(status="succeeded", amount_received=inv["amount_due"], latest_charge=charge_id)
            self._emit(t, "charge.succeeded", charge)
            self._emit(t, "payment_intent.succeeded", pi)
            self._emit_invoice_payment(t, pi, charge)
        inv.update(
            status="paid", paid=True, amount_paid=inv["amount_due"], amount_remaining=0, charge=charge_id
        )
        inv.update(attempted=True, attempt_count=attempts, auto_advance=False)
        inv["status_transitions"] = {**inv["status_transitions"], "paid_at": t // 1000}
        self._emit(t, "invoice.paid", inv)
        if cust.get("delinquent"):
            cust["delinquent"] = False
            self._emit(t, "customer.updated", cust, previous={"delinquent": True})

    def _op_complete(self, t: int, bk: Booking) -> None:
        self.upcoming.pop(bk.upcoming_key or bk.meeting_id, None)
        if not self.accounts.crm_meetings:
            event, invitee = self.sched.events.get(bk.event_uri), self.sched.invitees.get(bk.invitee_uri)
            active = event is not None and invitee is not None and event["status"] == "active"
            if active and invitee is not None:
                outcome, _ = self._complete(self.r_adv, invitee, min(bk.end, t - 15 * MIN), t)
                if outcome == "NO_SHOW":
                    invitee["updated_at"] = iso_us(t)
            return
        meeting = live_record(self.crm.meetings, bk.meeting_id)
        event = self.sched.events.get(bk.event_uri)
        invitee = self.sched.invitees.get(bk.invitee_uri)
        if meeting is None or event is None or invitee is None or event["status"] != "active":
            return
        props = meeting["properties"]
        if (
            props.get("hs_meeting_outcome") != "SCHEDULED"
            or props.get("hs_meeting_external_url") != bk.event_uri
        ):
            return
        outcome, _ = self._complete(self.r_adv, invitee, min(bk.end, t - 15 * MIN), t)
        if outcome == "NO_SHOW":
            invitee["updated_at"] = iso_us(t)
        props["hs_meeting_outcome"] = outcome
        stamp_modified(meeting, "hs_lastmodifieddate", t)

    def _op_move(self, t: int, bk: Booking, cancel: bool, mismatch: bool) -> Anomaly | None:
        """The invitee cancels or reschedules; the CRM follows unless `mismatch`."""
        if not self.accounts.crm_meetings:
            return self._move_without_meeting(t, bk, cancel, mismatch)
        rng = self.r_adv
        meeting = live_record(self.crm.meetings, bk.meeting_id)
        event = self.sched.events.get(bk.event_uri)
        invitee = self.sched.invitees.get(bk.invitee_uri)
        if meeting is None or event is None or invitee is None or bk.start <= t + HOUR:
            return None
        props = meeting["properties"]
        if event["status"] != "active" or props.get("hs_meeting_outcome") != "SCHEDULED":
            return None
        if props.get("hs_meeting_external_url") != bk.event_uri:
            return None
        self.upcoming.pop(bk.meeting_id, None)
        if cancel:
            self._cancel_pair(event, invitee, t, rng.choice(("Schedule conflict", "No longer needed")), True)
            if mismatch:
                detail = {"calendly_status": "canceled", "crm_outcome": "SCHEDULED"}
                keys = {"meeting_id": bk.meeting_id, "event_uri": bk.event_uri}
                return self._anomaly("appointment_status_mismatch", keys, detail, t)
            props["hs_meeting_outcome"] = "CANCELED"
            stamp_modified(meeting, "hs_lastmodifieddate", t + 30 * SEC)
            self._set_next_appointment(bk.person, None, t + 30 * SEC)
            return None
        new_event = self._reschedule(t, bk, event, invitee)
        old_uri = bk.event_uri
        bk.event_uri = new_event["uri"]
        self._set_next_appointment(bk.person, bk.start, t + 30 * SEC)
        if mismatch:
            detail = {"new_event_uri": new_event["uri"], "crm_start_time": props["hs_meeting_start_time"]}
            detail["calendly_start_time"] = new_event["start_time"]
            keys = {"meeting_id": bk.meeting_id, "event_uri": old_uri}
            return self._anomaly("appointment_time_mismatch", keys, detail, t)
        self._point_meeting(meeting, new_event, "RESCHEDULED", t + 30 * SEC)
        return None

    def _reschedule(self, t: int, bk: Booking, event: Record, invitee: Record) -> Record:
        """Cancel a booking's event and book its new one (Calendly's reschedule); the new event.
        `bk` takes the new times and invitee; its `event_uri` is left to the caller."""
        rng = self.r_adv
        self._cancel_pair(event, invitee, t, "Rescheduled", True)
        answers = {item["question"]: item["answer"] for item in invitee["questions_and_answers"]}
        company = answers.get("Company name") or self.co_name[self.persons[bk.person].company_index]
        typed = (invitee["first_name"], invitee["last_name"], invitee["email"], company)
        topic = answers.get("What would you like to discuss?")
        extras = (topic, invitee["timezone"], dict(invitee["tracking"]), invitee["text_reminder_number"])
        start = self._slot(max(bk.start, t + HOUR) + rng.randint(DAY, 7 * DAY))
        new_event, new_invitee = self._calendly_pair(bk, start, start + bk.end - bk.start, t, typed, extras)
        invitee.update(rescheduled=True, new_invitee=new_invitee["uri"])
        new_invitee["old_invitee"] = invitee["uri"]
        bk.start, bk.end = start, start + bk.end - bk.start
        bk.invitee_uri = new_invitee["uri"]
        return new_event

    def _next_appointment_of(self, i: int) -> tuple[Record, str] | None:
        """(the person's contact, its next-appointment property), when the account keeps one."""
        name = self.accounts.next_appointment_property
        contact = live_record(self.crm.contacts, self.persons[i].crm_contact_ids[0]) if name else None
        return (contact, name) if contact is not None and name is not None else None

    def _set_next_appointment(self, i: int, start: int | None, t: int) -> None:
        found = self._next_appointment_of(i)
        if found is not None:
            contact, name = found
            contact["properties"][name] = iso_ms(start) if start is not None else None
            stamp_modified(contact, "lastmodifieddate", t)

    def _move_without_meeting(self, t: int, bk: Booking, cancel: bool, mismatch: bool) -> Anomaly | None:
        """A move in an account that logs no meetings: the contact's next-appointment property
        follows, unless `mismatch` (only a booking that property shows can be moved here)."""
        found = self._next_appointment_of(bk.person)
        event = self.sched.events.get(bk.event_uri)
        invitee = self.sched.invitees.get(bk.invitee_uri)
        if found is None or event is None or invitee is None or bk.start <= t + HOUR:
            return None
        contact, name = found
        if event["status"] != "active" or contact["properties"].get(name) != iso_ms(bk.start):
            return None
        self.upcoming.pop(bk.upcoming_key, None)
        keys = {"contact_id": contact["id"], "event_uri": bk.event_uri}
        if cancel:
            self._cancel_pair(
                event, invitee, t, self.r_adv.choice(("Schedule conflict", "No longer needed")), True
            )
            if mismatch:
                detail = {"calendly_status": "canceled", "crm_start_time": iso_ms(bk.start)}
                return self._anomaly("appointment_status_mismatch", keys, detail, t)
            self._set_next_appointment(bk.person, None, t + 30 * SEC)
            return None
        old_start = bk.start
        new_event = self._reschedule(t, bk, event, invitee)
        bk.event_uri = new_event["uri"]
        if mismatch:
            detail = {"new_event_uri": new_event["uri"], "crm_start_time": iso_ms(old_start)}
            detail["calendly_start_time"] = new_event["start_time"]
            return self._anomaly("appointment_time_mismatch", keys, detail, t)
        self._set_next_appointment(bk.person, bk.start, t + 30 * SEC)
        return None

    def _point_meeting(self, meeting: Record, event: Record, outcome: str, t: int) -> None:
        props = meeting["properties"]
        props["hs_meeting_start_time"] = iso_ms(to_ms(event["start_time"]))
        props["hs_meeting_end_time"] = iso_ms(to_ms(event["end_time"]))
        props["hs_timestamp"] = props["hs_meeting_start_time"]
        props["hs_meeting_external_url"] = event["uri"]
        props["hs_meeting_outcome"] = outcome
        stamp_modified(meeting, "hs_lastmodifieddate", t)

    def _op_cycle(self, t: int, sub_id: str) -> None:
        sub = self.billing.subscriptions.get(sub_id)
        if sub is None or sub["status"] not in ("active", "past_due"):
            return
        ps = sub["current_period_end"] * 1000
        cust = self.billing.customers.get(sub["customer"])
        if ps > t or cust is None:
            return
        pe = add_months(ps, 1)
        price = sub["items"]["data"][0]["price"]
        unit = price["unit_amount"]
        rng = self.r_adv
        fin = t + rng.randint(SEC, 10 * MIN)
        inv = self._invoice(
            cust,
            t,
            fin,
            [(unit, plan_line(price))],
            reason="subscription_cycle",
            metadata={},
            subscription=sub_id,
            period=(ps, pe),
            description=None,
            automatic=True,
            outcome="paid",
            paid_at=fin + rng.randint(SEC, 10 * MIN),
        )
        previous = {k: sub[k] for k in ("current_period_start", "current_period_end", "latest_invoice")}
        sub.update(current_period_start=ps // 1000, current_period_end=pe // 1000, latest_invoice=inv["id"])
        self._emit(t, "customer.subscription.updated", sub, previous=previous)

    def _op_fix(self, t: int, a: Anomaly) -> None:
        if not a.active:
            return
        index = self.day_index or DayIndex(self)
        if self._holds(a, index, deep=False):
            getattr(self, f"_fix_{a.kind}")(t, a)
        if not self._holds(a, index, deep=False):
            a.active, a.fixed_on = False, ymd(t)

    def _op_new_anomaly(self, t: int) -> None:
        kinds = [k for k in KINDS if k not in ("deal_won_no_invoice", "malformed_value")]
        self.r_adv.shuffle(kinds)
        for kind in kinds:
            if getattr(self, f"_new_{kind}")(t) is not None:
                return

    def refresh(self, day: str, deep: bool) -> DayIndex:
        """Mark anomalies that no longer show in the data (e.g. repaired through the APIs) fixed."""
        index = DayIndex(self)
        for a in self.anomalies:
            if a.active and not self._holds(a, index, deep):
                a.active, a.fixed_on = False, day
        return index

    def _holds(self, a: Anomaly, index: DayIndex, deep: bool) -> bool:
        keys = a.keys
        crm, billing = self.crm, self.billing
        kind = a.kind
        if kind == "deal_won_no_invoice":
            deal = live_record(crm.deals, keys["deal_id"])
            return (
                deal is not None
                and deal["properties"].get("dealstage") in WON_STAGES
                and keys["deal_id"] not in self.deal_invoice
                and keys["deal_id"] not in index.invoiced
            )
        if kind == "paid_invoice_crm_not_customer":
            inv, contact = (
                billing.invoices.get(keys["invoice_id"]),
                live_record(crm.contacts, keys["contact_id"]),
            )
            return (
                inv is not None
                and contact is not None
                and inv["status"] == "paid"
                and contact["properties"].get("lifecyclestage") != "customer"
            )
        if kind == "invoice_amount_mismatch":
            deal, inv = live_record(crm.deals, keys["deal_id"]), billing.invoices.get(keys["invoice_id"])
            if not deal or not inv or inv["status"] not in ("open", "paid"):
                return False  # a voided or written-off invoice is no claim to disagree with
            cents = to_cents(deal["properties"].get("amount"))
            return abs(inv["total"] - cents) > 0.01 * cents
        if kind in ("appointment_time_mismatch", "appointment_status_mismatch") and "contact_id" in keys:
            return self._property_shows_event(keys["contact_id"], keys["event_uri"])
        if kind in ("appointment_time_mismatch", "appointment_status_mismatch"):
            meeting = live_record(crm.meetings, keys["meeting_id"])
            if not meeting or meeting["properties"].get("hs_meeting_external_url") != keys["event_uri"]:
                return False
            return (
                kind == "appointment_time_mismatch"
                or meeting["properties"].get("hs_meeting_outcome") != "CANCELED"
            )
        if kind in ("email_mismatch", "name_mismatch", "phone_mismatch"):
            contact, cust = (
                live_record(crm.contacts, keys["contact_id"]),
                billing.customers.get(keys["customer_id"]),
            )
            if not contact or not cust:
                return False
            props = contact["properties"]
            if kind == "email_mismatch":
                return norm_email(props.get("email")) != norm_email(cust.get("email"))
            if kind == "name_mismatch":
                crm_name = f"{props.get('firstname') or ''} {props.get('lastname') or ''}"
                return norm_name(crm_name) != norm_name(cust.get("name"))
            person = (
                self.persons[self.contact_person[contact["id"]]]
                if contact["id"] in self.contact_person
                else None
            )
            country = person.country if person else None
            return phone_e164(props.get("phone"), country) != phone_e164(cust.get("phone"), country)
        if kind == "billing_orphan" and not self.accounts.metadata_links:
            cust = billing.customers.get(keys["customer_id"])
            i = self.customer_person.get(keys["customer_id"])
            contacts = self.persons[i].crm_contact_ids if i is not None else []
            return cust is not None and not any(live_record(crm.contacts, cid) for cid in contacts)
        if kind == "billing_orphan":
            cust = billing.customers.get(keys["customer_id"])
            linked = cust and live_record(crm.contacts, cust["metadata"].get("hubspot_contact_id") or "")
            if not cust or linked:
                return False
            return not deep or norm_email(cust.get("email")) not in index.crm_emails
        if kind == "crm_duplicate":
            first = live_record(crm.contacts, keys["contact_id"])
            return first is not None and live_record(crm.contacts, keys["duplicate_contact_id"]) is not None
        if kind == "ad_conversion_mismatch":
            row = self.row_index.get((keys["platform"], keys["campaign_id"], keys["date"]))
            reported = (
                None if row is None else row["conversions" if keys["platform"] == "google" else "leads"]
            )
            return row is not None and reported != a.detail["crm_leads"]
        if kind == "invoice_payment_mismatch":
            inv = billing.invoices.get(keys["invoice_id"])
            pi = billing.payment_intents.get((inv or {}).get("payment_intent") or "")
            if inv is None or pi is None:
                return False
            return (inv["status"] == "paid") != (pi["status"] == "succeeded")
        if kind == "malformed_value":
            deal = live_record(crm.deals, keys["deal_id"])
            return deal is not None and deal["properties"].get(keys["field"]) == a.detail["value"]
        contact = live_record(crm.contacts, keys["contact_id"])
        if not contact:
            return False
        prop = "trial_start_date" if kind == "malformed_date" else "phone"
        return contact["properties"].get(prop) == a.detail["value"]

    def _fix_deal_won_no_invoice(self, t: int, a: Anomaly) -> None:
        self._op_invoice(t, a.keys["deal_id"])

    def _fix_paid_invoice_crm_not_customer(self, t: int, a: Anomaly) -> None:
        i = self.contact_person.get(a.keys["contact_id"])
        if i is not None:
            self._set_lifecycle(i, "customer", t)

    def _fix_invoice_amount_mismatch(self, t: int, a: Anomaly) -> None:
        deal, inv = (
            live_record(self.crm.deals, a.keys["deal_id"]),
            self.billing.invoices.get(a.keys["invoice_id"]),
        )
        if deal and inv:
            deal["properties"]["amount"] = to_dollars(inv["total"])
            stamp_modified(deal, "hs_lastmodifieddate", t)

    def _property_shows_event(self, contact_id: str, event_uri: str) -> bool:
        """Whether a contact's next-appointment property still holds this (canceled) event's time."""
        contact = live_record(self.crm.contacts, contact_id)
        event = self.sched.events.get(event_uri)
        name = self.accounts.next_appointment_property
        if contact is None or event is None or name is None:
            return False
        value = contact["properties"].get(name)
        return bool(value) and to_ms(value) == to_ms(event["start_time"])

    def _fix_next_appointment(self, t: int, a: Anomaly, start: int | None) -> None:
        i = self.contact_person.get(a.keys["contact_id"])
        if i is not None:
            self._set_next_appointment(i, start, t)

    def _fix_appointment_time_mismatch(self, t: int, a: Anomaly) -> None:
        if "contact_id" in a.keys:
            event = self.sched.events.get(a.detail["new_event_uri"])
            active = event is not None and event["status"] == "active"
            self._fix_next_appointment(t, a, to_ms(event["start_time"]) if event and active else None)
            return
        meeting = live_record(self.crm.meetings, a.keys["meeting_id"])
        event = self.sched.events.get(a.detail["new_event_uri"])
        if meeting and event:
            self._point_meeting(
                meeting, event, "RESCHEDULED" if event["status"] == "active" else "CANCELED", t
            )

    def _fix_appointment_status_mismatch(self, t: int, a: Anomaly) -> None:
        if "contact_id" in a.keys:
            self._fix_next_appointment(t, a, None)
            return
        meeting = live_record(self.crm.meetings, a.keys["meeting_id"])
        if meeting:
            meeting["properties"]["hs_meeting_outcome"] = "CANCELED"
            stamp_modified(meeting, "hs_lastmodifieddate", t)

    def _fix_customer_field(self, t: int, a: Anomaly, field_name: str, value: str | None) -> None:
        cust = self.billing.customers.get(a.keys["customer_id"])
        if cust is not None:
            previous = {field_name: cust.get(field_name)}
            cust[field_name] = value
            self._emit(t, "customer.updated", cust, previous=previous, request=True)

    def _crm_props(self, a: Anomaly) -> Record:
        contact = live_record(self.crm.contacts, a.keys["contact_id"])
        return contact["properties"] if contact else {}

    def _fix_email_mismatch(self, t: int, a: Anomaly) -> None:
        self._fix_customer_field(t, a, "email", norm_email(self._crm_props(a).get("email")))

    def _fix_name_mismatch(self, t: int, a: Anomaly) -> None:
        props = self._crm_props(a)
        name = f"{(props.get('firstname') or '').strip()} {(props.get('lastname') or '').strip()}"
        self._fix_customer_field(t, a, "name", name)

    def _fix_phone_mismatch(self, t: int, a: Anomaly) -> None:
        if a.detail.get("side") != "crm":
            self._fix_customer_field(t, a, "phone", self._crm_props(a).get("phone"))
            return
        contact = live_record(self.crm.contacts, a.keys["contact_id"])
        cust = self.billing.customers.get(a.keys["customer_id"])
        if contact is not None and cust is not None:  # the CRM learns the phone billing holds
            contact["properties"]["phone"] = cust.get("phone")
            stamp_modified(contact, "lastmodifieddate", t)

    def _fix_billing_orphan(self, t: int, a: Anomaly) -> None:
        cust = self.billing.customers.get(a.keys["customer_id"])
        i = self.customer_person.get(a.keys["customer_id"])
        if cust is None or i is None:
            return
        record = self._contact_record(self.r_adv, i, t, True, "customer")
        record["properties"]["hs_analytics_source_data_1"] = "INTEGRATION"
        record["properties"]["hs_analytics_source_data_2"] = None
        self.crm.contacts.put(record)
        self.crm.associate("contacts", record["id"], "companies", self.co_id[self.persons[i].company_index])
        self.linked_customers.add(cust["id"])
        if not self.accounts.metadata_links:
            return  # nothing in Stripe names the new contact: its email ties them
        previous = {"metadata": cust["metadata"]}
        cust["metadata"] = {"hubspot_contact_id": record["id"]}
        self._emit(t, "customer.updated", cust, previous=previous, request=True)

    def _fix_ad_conversion_mismatch(self, t: int, a: Anomaly) -> None:
        keys = a.keys
        row = self.row_index.get((keys["platform"], keys["campaign_id"], keys["date"]))
        if row is not None and self._ad_day_open(keys["platform"], keys["date"]):
            set_conversions(keys["platform"], row, a.detail["crm_leads"])

    def _fix_invoice_payment_mismatch(self, t: int, a: Anomaly) -> None:
        inv = self.billing.invoices.get(a.keys["invoice_id"])
        if inv is None:
            return
        if inv["status"] == "open":
            self._op_pay(t, inv["id"])
            return
        pi = self.billing.payment_intents.get(inv.get("payment_intent") or "")
        cust = self.billing.customers.get(inv["customer"])
        if pi is None or cust is None:
            return
        charge = self._charge(cust, inv["id"], pi["id"], inv["amount_due"], t, ok=True)
        pi.update(status="succeeded", amount_received=inv["amount_due"], latest_charge=charge["id"])
        inv.update(charge=charge["id"], attempt_count=(inv.get("attempt_count") or 0) + 1)
        self._emit(t, "charge.succeeded", charge)
        self._emit(t, "payment_intent.succeeded", pi)
        self._emit_invoice_payment(t, pi, charge)
        self._emit(t, "invoice.updated", inv, previous={"charge": None})

    def _fix_malformed_date(self, t: int, a: Anomaly) -> None:
        contact = live_record(self.crm.contacts, a.keys["contact_id"])
        if contact is None:
            return
        month, day, year = (int(x) for x in a.detail["value"].split("/"))
        contact["properties"]["trial_start_date"] = a.detail["parsed"] or date(year, month, day).isoformat()
        stamp_modified(contact, "lastmodifieddate", t)

    def _fix_malformed_value(self, t: int, a: Anomaly) -> None:
        deal = live_record(self.crm.deals, a.keys["deal_id"])
        if deal is not None:
            deal["properties"][a.keys["field"]] = a.detail["original"]
            stamp_modified(deal, "hs_lastmodifieddate", t)

    def _fix_malformed_phone(self, t: int, a: Anomaly) -> None:
        contact = live_record(self.crm.contacts, a.keys["contact_id"])
        i = self.contact_person.get(a.keys["contact_id"])
        if contact is None or i is None:
            return
        e164 = self.persons[i].phone_e164
        contact["properties"]["phone"] = (
            self._phone_text(self.persons[i], national_ok=False) if e164 else None
        )
        stamp_modified(contact, "lastmodifieddate", t)

    def _linked_person(self, need_phone: bool = False) -> tuple[int, Record] | None:
        def accept(i: int, p: Person) -> bool:
            return bool(
                i not in self.used
                and p.crm_contact_ids
                and p.billing_customer_ids
                and (p.phone_e164 or not need_phone)
            )

        i = self._random_person(self.r_adv, accept)
        if i is None:
            return None
        p = self.persons[i]
        cust = self.billing.customers.get(p.billing_customer_ids[0])
        if cust is None:
            return None
        if self.accounts.metadata_links:
            if cust["metadata"].get("hubspot_contact_id") != p.crm_contact_ids[0]:
                return None
        elif cust["id"] not in self.linked_customers:
            return None
        self.used.add(i)
        return i, cust

    def _new_email_mismatch(self, t: int) -> Anomaly | None:
        found = self._linked_person()
        return self._make_email_mismatch(self.r_adv, found[0], found[1], t) if found else None

    def _new_name_mismatch(self, t: int) -> Anomaly | None:
        found = self._linked_person()
        return self._make_name_mismatch(self.r_adv, found[0], found[1], t) if found else None

    def _new_phone_mismatch(self, t: int) -> Anomaly | None:
        found = self._linked_person(need_phone=True)
        return self._make_phone_mismatch(self.r_adv, found[0], found[1], t) if found else None

    def _new_paid_invoice_crm_not_customer(self, t: int) -> Anomaly | None:
        by_customer: dict[str, list[Record]] = {}
        for inv in self.billing.invoices:
            by_customer.setdefault(inv["customer"], []).append(inv)
        pool = []
        for cust_id, invoices in by_customer.items():
            i = self.customer_person.get(cust_id)
            if i is None or i in self.used or len(invoices) != 1 or invoices[0]["status"] != "paid":
                continue
            if len(self.persons[i].crm_contact_ids) == 1:
                pool.append((i, cust_id, invoices[0]))
        if not pool:
            return None
        i, cust_id, inv = self.r_adv.choice(pool)
        cust = self.billing.customers.get(cust_id)
        assert cust is not None
        self.used.add(i)
        return self._make_paid_invoice_crm_not_customer(self.r_adv, i, cust, inv, t)

    def _new_upcoming(self, t: int, cancel: bool) -> Anomaly | None:
        pool = [bk for bk in self.upcoming.values() if bk.start > t + 2 * HOUR]
        if not pool:
            return None
        return self._op_move(t, self.r_adv.choice(pool), cancel, True)

    def _new_appointment_time_mismatch(self, t: int) -> Anomaly | None:
        return self._new_upcoming(t, False)

    def _new_appointment_status_mismatch(self, t: int) -> Anomaly | None:
        return self._new_upcoming(t, True)

    def _plain_person(self, need_phone: bool = False) -> int | None:
        """Someone with one CRM contact, no billing customer and no deal that could bring one."""

        def accept(i: int, p: Person) -> bool:
            return bool(
                i not in self.used
                and len(p.crm_contact_ids) == 1
                and not p.billing_customer_ids
                and (p.phone_e164 or not need_phone)
                and not self.crm.associated("contacts", p.crm_contact_ids[0], "deals")
            )

        i = self._random_person(self.r_adv, accept)
        if i is not None:
            self.used.add(i)
        return i

    def _new_crm_duplicate(self, t: int) -> Anomaly | None:
        i = self._plain_person()
        if i is None:
            return None
        p = self.persons[i]
        record = self._contact_record(self.r_adv, i, t, True, "lead")
        self.crm.contacts.put(record)
        self.crm.associate("contacts", record["id"], "companies", self.co_id[p.company_index])
        keys = {"contact_id": p.crm_contact_ids[0], "duplicate_contact_id": record["id"]}
        return self._anomaly("crm_duplicate", keys, {}, t)

    def _new_malformed_phone(self, t: int) -> Anomaly | None:
        i = self._plain_person(need_phone=True)
        contact = (
            live_record(self.crm.contacts, self.persons[i].crm_contact_ids[0]) if i is not None else None
        )
        if i is None or contact is None:
            return None
        anomaly = self._make_malformed_phone(self.r_adv, i, contact["properties"], t)
        stamp_modified(contact, "lastmodifieddate", t)
        return anomaly

    def _new_malformed_date(self, t: int) -> Anomaly | None:
        i = self._plain_person()
        contact = (
            live_record(self.crm.contacts, self.persons[i].crm_contact_ids[0]) if i is not None else None
        )
        if i is None or contact is None:
            return None
        props = contact["properties"]
        if not props.get("trial_start_date"):
            props["trial_start_date"] = ymd(t + self.r_adv.randint(0, 14) * DAY)
        anomaly = self._make_malformed_date(self.r_adv, i, props, t)
        stamp_modified(contact, "lastmodifieddate", t)
        return anomaly

    def _new_malformed_value(self, t: int) -> Anomaly | None:
        taken = {a.keys["deal_id"] for a in self.anomalies if a.kind == "malformed_value"}
        lost = [
            deal
            for deal in self.crm.deals
            if not deal.get("archived")
            and deal["properties"].get("dealstage") in LOST_STAGES
            and deal["id"] not in taken
        ]
        if not lost:
            return None
        return self._make_malformed_value(self.r_malformed, self.r_malformed.choice(lost), t)

    def _new_ad_conversion_mismatch(self, t: int) -> Anomaly | None:
        rng = self.r_adv
        platform = rng.choice(("google", "meta"))
        cal = self.cal[platform]
        day = cal.ordinal(t) - 1
        if not self._ad_day_open(platform, cal.name(day)):
            return None
        taken = {
            (a.keys["platform"], a.keys["campaign_id"], a.keys["date"])
            for a in self.anomalies
            if a.kind == "ad_conversion_mismatch"
        }
        rows = [
            row
            for k in self.day_active[platform].get(day, [])
            if (row := self.row_index.get((platform, self.campaigns[platform][k].id, cal.name(day))))
            is not None
            and (platform, row["campaign_id"], row["date"]) not in taken
        ]
        return self._make_ad_mismatch(platform, rng.choice(rows), t) if rows else None

    def _new_invoice_amount_mismatch(self, t: int) -> Anomaly | None:
        rng = self.r_adv
        taken = {a.keys.get("deal_id") for a in self.anomalies if a.active}
        for _ in range(50):
            did = rng.choice(self.invoiced_deals)
            deal = live_record(self.crm.deals, did)
            inv = self.billing.invoices.get(self.deal_invoice.get(did, ""))
            if did in taken or deal is None or inv is None or inv["status"] not in ("open", "paid"):
                continue
            cents = to_cents(deal["properties"].get("amount"))
            if abs(inv["total"] - cents) > 0.01 * cents:
                continue
            changed = max(5000, round(cents * rng.uniform(1.05, 1.3) / 5000) * 5000)
            deal["properties"]["amount"] = to_dollars(changed)
            stamp_modified(deal, "hs_lastmodifieddate", t)
            detail = {"deal_amount": to_dollars(changed), "invoice_total": inv["total"]}
            return self._anomaly(
                "invoice_amount_mismatch", {"deal_id": did, "invoice_id": inv["id"]}, detail, t
            )
        return None

    def _new_invoice_payment_mismatch(self, t: int) -> Anomaly | None:
        rng = self.r_adv
        taken = {a.keys.get("invoice_id") for a in self.anomalies if a.active}
        pool = [i for i in self.open_invoices if i not in taken]
        for inv_id in self._pick(rng, pool, 20):
            inv = self.billing.invoices.get(inv_id)
            pi = self.billing.payment_intents.get((inv or {}).get("payment_intent") or "")
            cust = self.billing.customers.get((inv or {}).get("customer") or "")
            if (
                inv is None
                or pi is None
                or cust is None
                or inv["status"] != "open"
                or pi["status"] == "succeeded"
            ):
                continue
            charge = self._charge(cust, inv_id, pi["id"], inv["amount_due"], t, ok=True)
            pi.update(status="succeeded", amount_received=inv["amount_due"], latest_charge=charge["id"])
            self._emit(t, "charge.succeeded", charge)
            self._emit(t, "payment_intent.succeeded", pi)
            self._emit_invoice_payment(t, pi, charge)
            self.open_invoices.pop(inv_id, None)
            detail = {"variant": "open_with_payment", "invoice_status": "open", "payment_intent": pi["id"]}
            return self._anomaly("invoice_payment_mismatch", {"invoice_id": inv_id}, detail, t)
        return None

    def _new_billing_orphan(self, t: int) -> Anomaly | None:
        rng = self.r_adv
        i = len(self.persons)
        self.persons.append(self._new_person(rng, i, rng.random, rng.choice))
        self.used.add(i)
        cust = self._customer(i, t, linked=False)
        return self._anomaly(
            "billing_orphan", {"customer_id": cust["id"]}, {"email": self.persons[i].email}, t
        )


class DayIndex:
    """Lookups a refresh needs, built on first use."""

    def __init__(self, engine: EngineState) -> None:
        self.engine = engine
        self._invoiced: set[str] | None = None
        self._emails: set[str] | None = None

    @property
    def invoiced(self) -> set[str]:
        if self._invoiced is None:
            self._invoiced = {
                inv["metadata"]["hubspot_deal_id"]
                for inv in self.engine.billing.invoices
                if (inv.get("metadata") or {}).get("hubspot_deal_id")
            }
        return self._invoiced

    @property
    def crm_emails(self) -> set[str]:
        if self._emails is None:
            self._emails = {
                norm_email(c["properties"].get("email"))
                for c in self.engine.crm.contacts
                if not c.get("archived")
            }
        return self._emails
