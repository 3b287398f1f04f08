"""Anomalies on people: CRM and billing copies of a person drift apart."""

from __future__ import annotations

import random
from datetime import date

from sandbox import names
from sandbox.store import Record
from sandbox.world.common import DAY, HOUR, MIN, SEC, stamp_modified, to_ms, with_typo
from sandbox.world.scheduling import SchedulingGen
from sandbox.world.truth import Anomaly


class AnomalyGen(SchedulingGen):
    """Disagreements planted between the CRM and billing copies of a person."""

    def person_anomalies(self) -> None:
        rng = self.r_anom
        linked = [
            i
            for i, cust in self.cust_of.items()
            if i < self.n_primary and cust["id"] in self.linked_customers and i not in self.used
        ]
        n_customers = len(self.cust_of)
        self._paid_not_customer(rng, n_customers)
        for kind, rate in (("email_mismatch", 0.01), ("name_mismatch", 0.01), ("phone_mismatch", 0.01)):
            pool = [i for i in linked if i not in self.used]
            if kind == "phone_mismatch":
                pool = [i for i in pool if self.persons[i].phone_e164 and self.cust_of[i]["phone"]]
            if kind == "name_mismatch":  # a customer billed under its company's name has no name to differ
                pool = [i for i in pool if self.cust_of[i]["id"] not in self.b2b_customers]
            for i in self._pick(rng, pool, self._k(n_customers, rate)):
                self.used.add(i)
                cust = self.cust_of[i]
                t = max(self.created[i], cust["created"] * 1000) + HOUR
                t = min(self.now - SEC, t + int(max(0, self.now - MIN - t) * rng.random()))
                getattr(self, f"_make_{kind}")(rng, i, cust, t)
        self._one_sided_phones(rng, linked)
        # people who may never get a billing customer: no won deal now, no open deal to win later
        with_deal = {d.person for d in self.deals}
        plain = [i for i in range(self.n_primary) if i not in self.used and i not in with_deal]
        with_phone = [i for i in plain if self.persons[i].phone_e164]
        for i in self._pick(rng, with_phone, self._k(len(with_phone), 0.01)):
            self.used.add(i)
            props = self.props[i]
            assert props is not None
            self._make_malformed_phone(rng, i, props, self.created[i])
        trials = [
            i
            for i in range(self.n_primary)
            if i not in self.used and (self.props[i] or {}).get("trial_start_date")
        ]
        for i in self._pick(rng, trials, self._k(len(trials), 0.02)):
            self.used.add(i)
            props = self.props[i]
            assert props is not None
            self._make_malformed_date(rng, i, props, self.created[i])

    def _one_sided_phones(self, rng: random.Random, linked: list[int]) -> None:
        """Phones held by one system only (variety): a gap to fill, not a disagreement; the
        phone_mismatch rule reports it with outcome `missing`."""
        share = self.variety.one_sided_values
        if not share:
            return
        for i in self.phone_gaps:  # customers created without a phone
            contact = self._contact_of(i) if i < self.n_primary and self.persons[i].crm_contact_ids else None
            if i in self.used or contact is None or not contact["properties"].get("phone"):
                continue
            self.used.add(i)
            cust = self.cust_of[i]
            keys = {"contact_id": contact["id"], "customer_id": cust["id"]}
            self._anomaly(
                "phone_mismatch", keys, {"outcome": "missing", "side": "billing"}, cust["created"] * 1000
            )
        pool = [i for i in linked if i not in self.used and self.cust_of[i]["phone"]]
        for i in self._pick(self.r_variety, pool, round(share * len(pool))):
            self.used.add(i)
            contact, cust = self._contact_of(i), self.cust_of[i]
            t = min(self.now - SEC, cust["created"] * 1000 + HOUR)
            contact["properties"]["phone"] = None
            self._touch_contact(contact, t)
            keys = {"contact_id": contact["id"], "customer_id": cust["id"]}
            self._anomaly("phone_mismatch", keys, {"outcome": "missing", "side": "crm"}, t)

    def _paid_not_customer(self, rng: random.Random, n_customers: int) -> None:
        pool = []
        for i, cust in self.cust_of.items():
            invoices = self.cust_invoices.get(cust["id"], [])
            if (
                i < self.n_primary
                and i not in self.used
                and len(invoices) == 1
                and invoices[0]["status"] == "paid"
            ):
                pool.append(i)
        for i in self._pick(rng, pool, self._k(n_customers, 0.01)):
            self.used.add(i)
            cust = self.cust_of[i]
            inv = self.cust_invoices[cust["id"]][0]
            paid_at = inv["status_transitions"]["paid_at"] * 1000
            t = min(self.now - 1, paid_at + rng.randint(HOUR, 3 * DAY))
            self._make_paid_invoice_crm_not_customer(rng, i, cust, inv, t)

    def _contact_of(self, i: int) -> Record:
        record = self.crm.contacts.get(self.persons[i].crm_contact_ids[0])
        assert record is not None
        return record

    def _make_paid_invoice_crm_not_customer(
        self, rng: random.Random, i: int, cust: Record, inv: Record, t: int
    ) -> Anomaly:
        contact = self._contact_of(i)
        stage = rng.choice(("opportunity", "salesqualifiedlead", "lead"))
        contact["properties"]["lifecyclestage"] = stage
        self._touch_contact(contact, t)
        keys = {"invoice_id": inv["id"], "customer_id": cust["id"], "contact_id": contact["id"]}
        return self._anomaly("paid_invoice_crm_not_customer", keys, {"lifecyclestage": stage}, t)

    def _make_email_mismatch(self, rng: random.Random, i: int, cust: Record, t: int) -> Anomaly:
        p = self.persons[i]
        contact = self._contact_of(i)
        company_domain = self.co_domain[p.company_index]
        domain = None if p.email.endswith("@" + company_domain) else company_domain
        old, p.email = p.email, self._new_email(rng, p.first_name, p.last_name, domain)
        contact["properties"]["email"] = self.noise.email(p.email, self.noise.email_crm)
        self._touch_contact(contact, t)
        keys = {"contact_id": contact["id"], "customer_id": cust["id"]}
        return self._anomaly("email_mismatch", keys, {"crm_email": p.email, "billing_email": old}, t)

    def _make_name_mismatch(self, rng: random.Random, i: int, cust: Record, t: int) -> Anomaly:
        """Billing holds another name: a misspelling or a changed family name, never only a
        nickname, accents or case (those are the same name)."""
        p = self.persons[i]
        r = rng.random()
        if r < 0.45:
            billing = f"{p.first_name} {with_typo(rng, p.last_name)}"
        elif r < 0.7:
            billing = f"{with_typo(rng, p.first_name)} {p.last_name}"
        else:
            other = rng.choice([n for n in names.LAST_NAMES if n != p.last_name])
            billing = f"{p.first_name} {p.last_name}-{other}"
        previous = {"name": cust["name"]}
        cust["name"] = billing
        self._emit(t, "customer.updated", cust, previous=previous, request=True)
        keys = {"contact_id": self._contact_of(i)["id"], "customer_id": cust["id"]}
        detail = {"crm_name": f"{p.first_name} {p.last_name}", "billing_name": billing}
        return self._anomaly("name_mismatch", keys, detail, t)

    def _make_phone_mismatch(self, rng: random.Random, i: int, cust: Record, t: int) -> Anomaly:
        p = self.persons[i]
        other = self._new_number_of(rng, p)
        previous = {"phone": cust["phone"]}
        cust["phone"] = self._phone_text(p, national_ok=True, e164=other)
        self._emit(t, "customer.updated", cust, previous=previous, request=True)
        keys = {"contact_id": self._contact_of(i)["id"], "customer_id": cust["id"]}
        return self._anomaly("phone_mismatch", keys, {"crm_phone": p.phone_e164, "billing_phone": other}, t)

    def _make_malformed_phone(self, rng: random.Random, i: int, props: Record, t: int) -> Anomaly:
        e164 = self.persons[i].phone_e164
        assert e164 is not None
        area, exchange, line = e164[2:5], e164[5:8], e164[8:12]
        v = rng.random()
        parsed: str | None = e164
        if v < 0.35:
            text = f"call me at {area} {exchange} {line} ext {rng.randint(2, 99)}"
        elif v < 0.6:
            text = f"{area}-{exchange}-{line} x{rng.randint(10, 999)}"
        elif v < 0.75:
            text, parsed = f"{exchange}-{line}", None
        else:
            text, parsed = rng.choice(names.PHONE_TEXTS_UNPARSEABLE), None
        props["phone"] = text
        return self._anomaly(
            "malformed_phone", {"contact_id": props["hs_object_id"]}, {"value": text, "e164": parsed}, t
        )

    def _make_malformed_date(self, rng: random.Random, i: int, props: Record, t: int) -> Anomaly:
        day = date.fromisoformat(props["trial_start_date"])
        if rng.random() < 0.65:
            day = day.replace(day=day.day if day.day > 12 else rng.randint(13, 28))
            parsed: str | None = day.isoformat()
        else:
            d = rng.randint(1, 12)
            while d == day.month:
                d = rng.randint(1, 12)
            day = day.replace(day=d)
            parsed = None
        text = f"{day.month:02d}/{day.day:02d}/{day.year}"
        props["trial_start_date"] = text
        detail = {"value": text, "parsed": parsed}
        return self._anomaly(
            "malformed_date", {"contact_id": props["hs_object_id"], "field": "trial_start_date"}, detail, t
        )

    def value_anomalies(self) -> None:
        """Typed CRM deal values no reading makes sense of (an amount that is no finite number,
        a close date that is no date), on lost deals: no other rule reads a lost deal's amount or
        close date, so every other anomaly stays as it was. Drawn from a stream of their own."""
        rng = self.r_malformed
        lost = [d for d in self.deals if d.kind == "lost" and d.id]
        for n, d in enumerate(self._pick(rng, lost, self._k(len(lost), 0.005))):
            deal = self.crm.deals.get(d.id)
            assert deal is not None
            field = ("amount", "closedate")[n % 2]
            self._make_malformed_value(rng, deal, d.close + rng.randint(MIN, DAY), field)

    def _make_malformed_value(
        self, rng: random.Random, deal: Record, t: int, field: str | None = None
    ) -> Anomaly:
        props = deal["properties"]
        field = field or rng.choice(("amount", "closedate"))
        original = props.get(field)
        if field == "amount":
            text = rng.choice(names.AMOUNT_TEXTS_MALFORMED)
        else:
            year = date.fromisoformat(str(original)[:10]).year
            text = rng.choice(names.DATE_TEXTS_MALFORMED).format(year=year)
        props[field] = text
        stamp_modified(deal, "hs_lastmodifieddate", min(t, self.now - SEC))
        keys = {"deal_id": deal["id"], "field": field}
        return self._anomaly("malformed_value", keys, {"value": text, "original": original}, t)

    def duplicate_anomalies(self) -> None:
        for _, i in self.dups:
            ids = self.persons[i].crm_contact_ids
            first, dup = ids[0], ids[-1]
            t = to_ms(self.crm.contacts.get(dup)["properties"]["createdate"])  # type: ignore[index]
            self._anomaly("crm_duplicate", {"contact_id": first, "duplicate_contact_id": dup}, {}, t)
