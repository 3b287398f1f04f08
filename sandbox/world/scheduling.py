"""Scheduling (Calendly): bookings, scheduled events, invitees and the CRM meetings that mirror them."""

from __future__ import annotations

import random
from typing import Any

from anyascii import anyascii

from sandbox import names
from sandbox.config import CALENDLY_API
from sandbox.store import Record
from sandbox.world.billing import BillingGen
from sandbox.world.common import (
    DAY,
    EVENT_TYPES,
    HOUR,
    MIN,
    SEC,
    iso_ms,
    iso_us,
    to_ms,
    with_typo,
)
from sandbox.world.crm import meeting_record
from sandbox.world.state import Booking
from sandbox.world.truth import Person

# read-only values many records share (where these sit, records are replaced, never edited in place)
ONE_INVITEE: dict[str, int] = {"total": 1, "active": 1, "limit": 1}

NO_TRACKING: dict[str, Any] = dict.fromkeys(
    ("utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term", "salesforce_uuid")
)


class SchedulingGen(BillingGen):
    """Calendly bookings and the CRM meetings that mirror them."""

    def _slot(self, t: int) -> int:
        """The first half-hour slot at or after t within weekday business hours (13:00-21:30 UTC)."""
        t = -(-t // (30 * MIN)) * 30 * MIN
        day, tod = divmod(t, DAY)
        if tod < 13 * HOUR:
            tod = 13 * HOUR
        elif tod > 21 * HOUR + 30 * MIN:
            day, tod = day + 1, 13 * HOUR
        weekday = (day + 3) % 7
        if weekday >= 5:
            day += 7 - weekday
        return day * DAY + tod

    def _plan_booking(self, rng: random.Random, i: int, owner: int, booked: int) -> Booking:
        etype = 0 if rng.random() < 0.6 else 1
        length = EVENT_TYPES[etype][1] * MIN
        start = self._slot(booked + rng.randint(DAY, 14 * DAY))
        bk = Booking(i, owner, etype, booked, start, start + length)
        r = rng.random()
        latest = min(start, self.now) - MIN
        if r < 0.13 and latest - booked > 2 * MIN:
            bk.change = rng.randint(booked + MIN, latest)
            if r < 0.08:
                bk.kind = "resched"
                bk.new_start = self._slot(max(start, bk.change + HOUR) + rng.randint(DAY, 7 * DAY))
                bk.new_end = bk.new_start + length
            else:
                bk.kind = "cancel"
        return bk

    def scheduling(self) -> None:
        rng = self.r_sched
        rnd = rng.random
        now = self.now
        with_deal = {d.person for d in self.deals}
        owner_index = self.owner_index
        plans: list[Booking] = []
        for i in range(self.n_primary):
            if rnd() >= (0.7 if i in with_deal else 0.33):
                continue
            props = self.props[i]
            assert props is not None
            owner = owner_index[props["hubspot_owner_id"]]
            ct = self.created[i]
            booked = ct + MIN + int(rng.expovariate(1.0 / (2 * DAY)))
            if booked >= now - MIN:
                booked = ct + int((now - MIN - ct) * rnd())
            plans.append(self._plan_booking(rng, i, owner, booked))
            if rnd() < 0.2:
                again = max(plans[-1].end, plans[-1].new_end) + rng.randint(3 * DAY, 40 * DAY)
                if again < now - MIN:
                    plans.append(self._plan_booking(rng, i, owner, again))
        plans.sort(key=lambda b: b.booked)
        resched = [b for b in plans if b.kind == "resched"]
        canceled = [b for b in plans if b.kind == "cancel"]
        if not self.accounts.crm_meetings:
            # a contact's next-appointment property shows its latest booking only: a mismatch
            # planted on an earlier one would be overwritten
            last = {b.person: b for b in plans}
            resched = [b for b in resched if last[b.person] is b]
            canceled = [b for b in canceled if last[b.person] is b]
        for b in self._pick(self.r_anom, resched, self._k(len(resched), 0.05)):
            b.mismatch = "time"
        for b in self._pick(self.r_anom, canceled, self._k(len(canceled), 0.05)):
            b.mismatch = "status"
        meetings: list[Record] = []
        for bk in plans:
            meeting = self._booking_records(rng, bk)
            if meeting is not None:
                meetings.append(meeting)
        self.crm.meetings.put_many(meetings)

    def _typed(self, rng: random.Random, p: Person) -> tuple[str, str, str, str]:
        """Name, email and company as the person types them into a booking form."""
        noise = self.noise
        r = noise.r
        first, last, email = p.first_name, p.last_name, p.email
        nicks = names.NICKNAMES.get(first)
        if nicks and r() < noise.nickname:
            first = rng.choice(nicks)
        elif r() < noise.typo:
            first = with_typo(rng, first)
        if r() < noise.typo / 2:
            last = with_typo(rng, last)
        if r() < noise.alternate:
            email = self._alternate_email(rng, p.first_name, p.last_name)
        elif r() < noise.plus:
            local, _, domain = email.partition("@")
            email = f"{local}+{rng.choice(names.PLUS_TAGS)}@{domain}"
        if r() < noise.invitee_case:
            email = email.title() if r() < 0.5 else email.upper()
        ci = p.company_index
        company = noise.company(
            self.co_stem[ci], self.co_suffix[ci], self.co_name[ci], min(0.95, noise.company_p * 1.5)
        )
        if p.country is not None and self.r_variety.random() < 0.4:
            first, last = anyascii(first), anyascii(last)  # typed on a keyboard without the letters
        return first, last, email, company

    def _calendly_pair(
        self,
        bk: Booking,
        start: int,
        end: int,
        created: int,
        typed: tuple[str, str, str, str],
        extras: tuple[str | None, str, dict[str, Any], str | None],
    ) -> tuple[Record, Record]:
        rng, ids = self.r_sched, self.ids
        type_uri, name, _ = self.event_types[bk.etype]
        event_uri = f"{CALENDLY_API}/scheduled_events/{ids.calendly()}"
        invitee_id = ids.calendly()
        first, last, email, company = typed
        topic, timezone, tracking, reminder = extras
        qa = self._booking_answers(company, topic)
        event: Record = {
            "uri": event_uri,
            "name": name,
            "status": "active",
            "start_time": iso_us(start),
            "end_time": iso_us(end),
            "event_type": type_uri,
            "location": {"type": "zoom", "join_url": f"https://zoom.us/j/{rng.randint(10**9, 10**10 - 1)}"},
            "invitees_counter": ONE_INVITEE,
            "created_at": iso_us(created),
            "updated_at": iso_us(created + SEC),
            "event_memberships": [self.memberships[bk.owner]],
            "event_guests": [],
            "calendar_event": {"kind": "google", "external_id": ids.token(26).lower()},
        }
        invitee: Record = {
            "uri": f"{event_uri}/invitees/{invitee_id}",
            "email": email,
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "status": "active",
            "timezone": timezone,
            "event": event_uri,
            "created_at": iso_us(created),
            "updated_at": iso_us(created),
            "cancel_url": f"https://calendly.com/cancellations/{invitee_id}",
            "reschedule_url": f"https://calendly.com/reschedulings/{invitee_id}",
            "rescheduled": False,
            "old_invitee": None,
            "new_invitee": None,
            "questions_and_answers": qa,
            "tracking": tracking,
            "text_reminder_number": reminder,
            "no_show": None,
            "reconfirmation": None,
            "payment": None,
            "routing_form_submission": None,
        }
        self._add_calendly(event, invitee)
        self.persons[bk.person].scheduling_invitee_uris.append(invitee["uri"])
        return event, invitee

    def _booking_answers(self, company: str, topic: str | None) -> list[dict[str, Any]]:
        """The booking form's questions and answers: the company, then a topic; or, with
        free-text questions only (variety), what to discuss and how they heard of us."""
        if not self.variety.free_text_questions:
            qa = [{"question": "Company name", "answer": company, "position": 0}]
            if topic:
                qa.append({"question": "What would you like to discuss?", "answer": topic, "position": 1})
            return qa
        rng = self.r_variety
        first = (topic or rng.choice(names.MEETING_TOPICS)).lower()
        qa = [{"question": names.FREE_TEXT_QUESTIONS[0], "answer": first, "position": 0}]
        if rng.random() < 0.5:
            qa.append(
                {
                    "question": names.FREE_TEXT_QUESTIONS[2],
                    "answer": rng.choice(names.HEARD_ABOUT),
                    "position": 1,
                }
            )
        return qa

    def _add_calendly(self, event: Record, invitee: Record) -> None:
        if self.live:
            self.sched.events.put(event)
            self.sched.invitees.put(invitee)
        else:
            self.out.setdefault("sched_events", []).append(event)
            self.out.setdefault("sched_invitees", []).append(invitee)
        self.sched.invitees_by_event.setdefault(event["uri"], []).append(invitee["uri"])

    def _cancel_pair(self, event: Record, invitee: Record, t: int, reason: str, by_invitee: bool) -> None:
        cancellation = {
            "canceled_by": invitee["name"] if by_invitee else event["event_memberships"][0]["user_name"],
            "reason": reason,
            "canceler_type": "invitee" if by_invitee else "host",
            "created_at": iso_us(t),
        }
        event.update(status="canceled", cancellation=cancellation, updated_at=iso_us(t))
        event["invitees_counter"] = {"total": 1, "active": 0, "limit": 1}
        invitee.update(status="canceled", cancellation=dict(cancellation), updated_at=iso_us(t))

    def _booking_records(self, rng: random.Random, bk: Booking) -> Record | None:
        """The Calendly event and invitee of a booking (two of each when it was rescheduled) and
        the CRM meeting that mirrors it (None for an account that logs no meetings)."""
        p = self.persons[bk.person]
        typed = self._typed(rng, p)
        extras = self._extras(rng, bk.person)
        event, invitee = self._calendly_pair(bk, bk.start, bk.end, bk.booked, typed, extras)
        old_event = event
        if bk.kind == "resched":
            self._cancel_pair(event, invitee, bk.change, "Rescheduled", True)
            new_event, new_invitee = self._calendly_pair(
                bk, bk.new_start, bk.new_end, bk.change, typed, extras
            )
            invitee.update(rescheduled=True, new_invitee=new_invitee["uri"])
            new_invitee["old_invitee"] = invitee["uri"]
            event, invitee = new_event, new_invitee
            bk.start, bk.end = bk.new_start, bk.new_end
        elif bk.kind == "cancel":
            by_invitee = rng.random() < 0.7
            reason = rng.choice(("Schedule conflict", "No longer needed", "Found another solution", ""))
            self._cancel_pair(event, invitee, bk.change, reason, by_invitee)
        bk.event_uri, bk.invitee_uri = event["uri"], invitee["uri"]
        if self.accounts.next_appointment_property:
            self._next_appointment(bk, p, event, old_event)
        if not self.accounts.crm_meetings:
            self._without_meeting(rng, bk, invitee, old_event)
            return None
        return self._meeting(rng, bk, p, event, invitee, old_event)

    def _next_appointment(self, bk: Booking, p: Person, event: Record, old_event: Record) -> None:
        """Set the contact's next-appointment property as the integration does after a booking,
        a reschedule (the new time) or a cancellation (cleared); a planted mismatch (accounts
        without CRM meetings only) leaves the time the booking had before."""
        contact = self.crm.contacts.get(p.crm_contact_ids[0])
        name = self.accounts.next_appointment_property
        if contact is None or name is None:
            return
        props = contact["properties"]
        value: str | None = iso_ms(bk.start)
        planted = bk.mismatch if not self.accounts.crm_meetings else ""
        if planted == "time":
            value = iso_ms(to_ms(old_event["start_time"]))
        elif planted == "status":
            value = iso_ms(to_ms(event["start_time"]))
        elif bk.kind == "cancel":
            value = None
        props[name] = value
        self._touch_contact(contact, bk.change or bk.booked)

    def _without_meeting(self, rng: random.Random, bk: Booking, invitee: Record, old_event: Record) -> None:
        """A booking in an account that logs no CRM meetings: its anomalies are on the contact's
        next-appointment property, keyed by the contact and the event that property still shows."""
        p = self.persons[bk.person]
        cid = p.crm_contact_ids[0]
        bk.upcoming_key = old_event["uri"]
        if bk.mismatch == "time":
            detail = {"new_event_uri": bk.event_uri, "crm_start_time": iso_ms(to_ms(old_event["start_time"]))}
            detail["calendly_start_time"] = iso_us(bk.start)
            keys = {"contact_id": cid, "event_uri": old_event["uri"]}
            self._anomaly("appointment_time_mismatch", keys, detail, bk.change)
        elif bk.mismatch == "status":
            detail = {"calendly_status": "canceled", "crm_start_time": iso_ms(bk.start)}
            keys = {"contact_id": cid, "event_uri": bk.event_uri}
            self._anomaly("appointment_status_mismatch", keys, detail, bk.change)
        elif bk.kind == "active":
            done = bk.end + rng.randint(20 * MIN, 20 * HOUR)
            if done < self.now:
                self._complete(rng, invitee, bk.end, done)
            else:
                self.upcoming[bk.upcoming_key] = bk

    def _extras(self, rng: random.Random, i: int) -> tuple[str | None, str, dict[str, Any], str | None]:
        p = self.persons[i]
        contact = self.crm.contacts.get(p.crm_contact_ids[0])
        props = contact["properties"] if contact else None
        tracking = NO_TRACKING
        if props is not None and props["hs_analytics_source"] in ("PAID_SEARCH", "PAID_SOCIAL"):
            google = props["hs_analytics_source"] == "PAID_SEARCH"
            tracking = dict(NO_TRACKING)
            tracking["utm_campaign"] = props.get(self.accounts.utm_campaign_property)
            tracking["utm_source"] = props["hs_analytics_source_data_1"]
            tracking["utm_medium"] = "cpc" if google else "paid_social"
        topic = rng.choice(names.MEETING_TOPICS) if rng.random() < 0.5 else None
        reminder = None
        if p.phone_e164 and rng.random() < 0.35:
            reminder = self._phone_text(p, national_ok=True)  # the booking's time zone is theirs
        timezone = rng.choice(names.TIMEZONES)
        return topic, p.time_zone or timezone, tracking, reminder

    def _meeting(
        self, rng: random.Random, bk: Booking, p: Person, event: Record, invitee: Record, old_event: Record
    ) -> Record:
        now = self.now
        mid = self.crm.new_id()
        bk.meeting_id = mid
        created = bk.booked + rng.randint(5 * SEC, 2 * MIN)
        if not self.live:
            created = min(created, now - 1)
        start, end, uri = bk.start, bk.end, event["uri"]
        mod = created
        if bk.mismatch == "time":
            outcome = "SCHEDULED"
            start, end, uri = to_ms(old_event["start_time"]), to_ms(old_event["end_time"]), old_event["uri"]
        elif bk.mismatch == "status":
            outcome = "SCHEDULED"
        elif bk.kind == "cancel":
            outcome, mod = "CANCELED", bk.change + rng.randint(5 * SEC, MIN)
        elif bk.kind == "resched":
            outcome, mod = "RESCHEDULED", bk.change + rng.randint(5 * SEC, MIN)
        else:
            outcome = "SCHEDULED"
            done = end + rng.randint(20 * MIN, 20 * HOUR)
            if done < now:
                outcome, mod = self._complete(rng, invitee, end, done)
            else:
                bk.upcoming_key = mid
                self.upcoming[mid] = bk
        title = f"{event['name']} with {p.first_name} {p.last_name}"
        record = meeting_record(mid, title, start, end, outcome, uri, self.owner_ids[bk.owner], created, mod)
        cid = p.crm_contact_ids[0]
        if self.live:
            self.crm.associate("contacts", cid, "meetings", mid)
        else:
            assoc = self.crm.associations
            assoc.setdefault(("contacts", "meetings"), {}).setdefault(cid, []).append(mid)
            assoc.setdefault(("meetings", "contacts"), {})[mid] = [cid]
        if bk.mismatch == "time":
            detail = {"new_event_uri": event["uri"], "crm_start_time": iso_ms(start)}
            detail["calendly_start_time"] = event["start_time"]
            self._anomaly(
                "appointment_time_mismatch", {"meeting_id": mid, "event_uri": uri}, detail, bk.change
            )
        elif bk.mismatch == "status":
            detail = {"calendly_status": "canceled", "crm_outcome": "SCHEDULED"}
            self._anomaly(
                "appointment_status_mismatch", {"meeting_id": mid, "event_uri": uri}, detail, bk.change
            )
        return record

    def _complete(self, rng: random.Random, invitee: Record, end: int, done: int) -> tuple[str, int]:
        """The meeting took place: COMPLETED, or NO_SHOW (marked in Calendly too)."""
        if rng.random() < 0.06:
            seen = end + 15 * MIN
            invitee["no_show"] = {
                "uri": f"{CALENDLY_API}/invitee_no_shows/{self.ids.calendly()}",
                "created_at": iso_us(seen),
            }
            invitee["updated_at"] = iso_us(seen)
            return "NO_SHOW", done
        return "COMPLETED", done
