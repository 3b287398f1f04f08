"""Billing (Stripe): customers, invoices, payment intents, charges, subscriptions and events."""

from __future__ import annotations

import random

from anyascii import anyascii

from sandbox import names
from sandbox.config import STRIPE_API_VERSION
from sandbox.store import Record
from sandbox.stripe_versions import invoice_payment
from sandbox.world.common import DAY, HOUR, MIN, SEC, add_months, to_dollars
from sandbox.world.crm import CrmGen
from sandbox.world.state import Deal
from sandbox.world.truth import Person

PLANS = ((4900, "Starter"), (9900, "Growth"), (19900, "Scale"), (49900, "Enterprise"))


def plan_line(price: Record) -> str:
    """Stripe's line text for one period of a subscription to `price`."""
    return f"1 \u00d7 {price.get('nickname') or 'Plan'} (at ${price['unit_amount'] / 100:.2f} / month)"


class BillingGen(CrmGen):
    """Stripe customers, invoices, payments, subscriptions and the events that announce them."""

    def _add(self, name: str, record: Record) -> None:
        if self.live:
            collection = self.billing.objects(name)
            assert collection is not None
            collection.put(record)
        else:
            self.out.setdefault(name, []).append(record)

    def _emit(
        self,
        t: int,
        kind: str,
        obj: Record,
        overrides: Record | None = None,
        previous: Record | None = None,
        request: bool = False,
    ) -> None:
        if t < self.event_from:
            return
        snapshot = {**obj, **overrides} if overrides else dict(obj)
        if self.live:
            self._event_record(t, kind, snapshot, previous, request)
        else:
            self.event_log.append((t, len(self.event_log), kind, snapshot, previous, request))

    def _event_record(
        self, t: int, kind: str, snapshot: Record, previous: Record | None, request: bool
    ) -> None:
        data: Record = {"object": snapshot}
        if previous:
            data["previous_attributes"] = previous
        version = STRIPE_API_VERSION
        if self.stripe_upgrade is not None and t >= self.stripe_upgrade:
            version = self.accounts.stripe_version
        self._add(
            "events",
            {
                "id": self.ids.stripe("evt_"),
                "object": "event",
                "api_version": version,
                "created": self._uniq("events", t // 1000),
                "data": data,
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": self.ids.stripe("req_", 14), "idempotency_key": self.ids.token(22)}
                if request
                else {"id": None, "idempotency_key": None},
                "type": kind,
            },
        )

    def _emit_invoice_payment(self, t: int, pi: Record, charge: Record) -> None:
        """`invoice_payment.paid`, which an account on the current Stripe version gets once it
        has upgraded (invoice payments are rendered from payment intents: sandbox.stripe_versions)."""
        if self.stripe_upgrade is not None and t >= self.stripe_upgrade:
            self._emit(t, "invoice_payment.paid", invoice_payment(pi, charge["created"]))

    def _customer(self, i: int, t: int, linked: bool) -> Record:
        p = self.persons[i]
        noise = self.noise
        cust_id = self.ids.stripe("cus_", 14)
        cust: Record = {
            "id": cust_id,
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self._uniq("customers", t // 1000),
            "currency": "usd",
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": noise.email(p.email, noise.email_billing),
            "invoice_prefix": self.ids.calendly()[:8],
            "livemode": False,
            "metadata": {"hubspot_contact_id": p.crm_contact_ids[0]}
            if linked and p.crm_contact_ids and self.accounts.metadata_links
            else {},
            "name": noise.full_name(p.first_name, p.last_name, noise.name_billing),
            "next_invoice_sequence": 1,
            "phone": self._phone_text(p, national_ok=True),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self._billing_variety(i, cust)
        self.cust_of[i] = cust
        if linked and p.crm_contact_ids:
            self.linked_customers.add(cust_id)
        p.billing_customer_ids.append(cust_id)
        self.customer_person[cust_id] = i
        self._add("customers", cust)
        self._emit(t, "customer.created", cust, request=True)
        return cust

    def _billing_variety(self, i: int, cust: Record) -> None:
        """Real-account patterns on a new customer: billed under the company's name (B2B), a
        name only cosmetically different from the CRM's, an address abroad, no phone."""
        variety, rng, p = self.variety, self.r_variety, self.persons[i]
        if p.country is not None:
            cust["address"] = {"city": None, "country": p.country, "line1": None, "line2": None}
            cust["address"] |= {"postal_code": None, "state": None}
        if variety.b2b_billing and self._billed_as_company(p.company_index):
            cust["name"] = self.co_name[p.company_index]
            self.b2b_customers.add(cust["id"])
        elif variety.equivalent_names and rng.random() < variety.equivalent_names:
            cust["name"] = self._equivalent_name(rng, p)
            self.equivalent_names.add(cust["id"])
        gap = variety.one_sided_values
        if gap and not self.live and p.phone_e164 and rng.random() < gap:
            cust["phone"] = None  # a gap to fill, once the customer is linked (person_anomalies)
            self.phone_gaps.append(i)

    def _billed_as_company(self, company: int) -> bool:
        """Whether a company's customers are billed under its legal name (decided once)."""
        billed = self.b2b_companies.get(company)
        if billed is None:
            billed = self.b2b_companies[company] = self.r_variety.random() < self.variety.b2b_billing
        return billed

    def _equivalent_name(self, rng: random.Random, p: Person) -> str:
        """The person's name as billing may hold it without it being another name: a
        nickname, the letters without their accents, another case, extra spaces."""
        ways = ["upper", "lower", "spaces"]
        if names.NICKNAMES.get(p.first_name):
            ways += ["nickname", "nickname"]
        if anyascii(f"{p.first_name} {p.last_name}") != f"{p.first_name} {p.last_name}":
            ways += ["ascii", "ascii"]
        way = rng.choice(ways)
        first, last = p.first_name, p.last_name
        if way == "nickname":
            return f"{rng.choice(names.NICKNAMES[first])} {last}"
        if way == "ascii":
            return anyascii(f"{first} {last}")
        if way == "upper":
            return f"{first} {last}".upper()
        if way == "lower":
            return f"{first} {last}".lower()
        return f"{first}  {last} "

    def _charge(self, cust: Record, inv_id: str, pi_id: str, amount: int, t: int, ok: bool) -> Record:
        charge = {
            "id": self.ids.stripe("ch_"),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if ok else 0,
            "amount_refunded": 0,
            "balance_transaction": self.ids.stripe("txn_") if ok else None,
            "captured": ok,
            "created": self._uniq("charges", t // 1000),
            "currency": "usd",
            "customer": cust["id"],
            "invoice": inv_id,
            "paid": ok,
            "payment_intent": pi_id,
            "refunded": False,
            "status": "succeeded" if ok else "failed",
            "failure_code": None if ok else "card_declined",
            "failure_message": None if ok else "Your card was declined.",
            "metadata": {},
            "livemode": False,
        }
        self._add("charges", charge)
        return charge

    def _invoice(
        self,
        cust: Record,
        created: int,
        fin: int,
        lines: list[tuple[int, str]],
        *,
        reason: str,
        metadata: Record,
        subscription: str | None,
        period: tuple[int, int],
        description: str | None,
        automatic: bool,
        outcome: str,
        paid_at: int = 0,
    ) -> Record:
        """One finalized invoice with its payment intent, charges and (recent) events.

        outcome: paid | open | uncollectible | open_with_payment | paid_without_payment; the last
        two disagree with their payments (invoice_payment_mismatch).
        """
        rng, ids = self.r_bill, self.ids
        if not self.accounts.metadata_links:
            metadata = {}  # nothing names the CRM deal: the amount and date tie it to its invoice
        inv_id = ids.stripe("in_")
        total = sum(a for a, _ in lines)
        seq = cust["next_invoice_sequence"]
        cust["next_invoice_sequence"] = seq + 1
        number = f"{cust['invoice_prefix']}-{seq:04d}"
        pi_id = ids.stripe("pi_")
        pi: Record = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": total,
            "amount_received": 0,
            "currency": "usd",
            "customer": cust["id"],
            "invoice": inv_id,
            "status": "requires_payment_method",
            "created": self._uniq("payment_intents", fin // 1000),
            "latest_charge": None,
            "metadata": {},
            "livemode": False,
            "payment_method_types": ["card"],
        }
        fails: list[int] = []
        if outcome == "paid" and paid_at - fin > 2 * HOUR and rng.random() < 0.08:
            fails.append(fin + (paid_at - fin) // 3)
        elif outcome == "open" and automatic and fin + HOUR < self.now:
            fails.append(fin + HOUR)
        elif outcome == "uncollectible":
            fails += [fin + HOUR, fin + 3 * DAY]
        elif outcome == "paid_without_payment":
            fails.append(paid_at)
        charges = [self._charge(cust, inv_id, pi_id, total, ft, ok=False) for ft in fails]
        success = None
        if outcome in ("paid", "open_with_payment"):
            success = self._charge(cust, inv_id, pi_id, total, paid_at, ok=True)
            charges.append(success)
            pi.update(status="succeeded", amount_received=total, latest_charge=success["id"])
        elif charges:
            pi["latest_charge"] = charges[-1]["id"]
        if outcome in ("uncollectible", "void"):
            pi["status"] = "canceled"
        status = {"paid_without_payment": "paid", "open_with_payment": "open"}.get(outcome, outcome)
        paid = status == "paid"
        uncollectible_at = fin + 30 * DAY if status == "uncollectible" else 0
        # paid_at carries the moment a void invoice was voided (it is never paid)
        voided_at = paid_at if status == "void" else 0
        charge_id = (success or charges[-1])["id"] if paid else None
        inv: Record = {
            "id": inv_id,
            "object": "invoice",
            "amount_due": total,
            "amount_paid": total if paid else 0,
            "amount_remaining": 0 if paid or voided_at else total,
            "attempt_count": len(charges),
            "attempted": bool(charges),
            "auto_advance": status == "open",
            "billing_reason": reason,
            "charge": charge_id,
            "collection_method": "charge_automatically" if automatic else "send_invoice",
            "created": self._uniq("invoices", created // 1000),
            "currency": "usd",
            "customer": cust["id"],
            "customer_email": cust["email"],
            "customer_name": cust["name"],
            "description": description,
            "due_date": None if automatic else fin // 1000 + 30 * 86400,
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": ids.stripe("il_"),
                        "object": "line_item",
                        "amount": amount,
                        "currency": "usd",
                        "description": text,
                        "quantity": 1,
                        "period": {"start": period[0] // 1000, "end": period[1] // 1000},
                    }
                    for amount, text in lines
                ],
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{inv_id}/lines",
            },
            "livemode": False,
            "metadata": metadata,
            "number": number,
            "paid": paid,
            "paid_out_of_band": False,
            "payment_intent": pi_id,
            "period_start": period[0] // 1000,
            "period_end": period[1] // 1000,
            "status": status,
            "status_transitions": {
                "finalized_at": fin // 1000,
                "marked_uncollectible_at": uncollectible_at // 1000 if uncollectible_at else None,
                "paid_at": paid_at // 1000 if paid else None,
                "voided_at": voided_at // 1000 if voided_at else None,
            },
            "subscription": subscription,
            "subtotal": total,
            "total": total,
        }
        self._add("payment_intents", pi)
        self._add("invoices", inv)
        self.cust_invoices.setdefault(cust["id"], []).append(inv)
        if status == "open":
            self.open_invoices[inv_id] = None
        if status == "uncollectible" or (status == "open" and charges):
            cust["delinquent"] = True
        self._invoice_events(inv, pi, charges, created, fin, paid_at, uncollectible_at or voided_at)
        return inv

    def _invoice_events(
        self,
        inv: Record,
        pi: Record,
        charges: list[Record],
        created: int,
        fin: int,
        paid_at: int,
        uncollectible_at: int,
    ) -> None:
        if (
            max(created, fin, paid_at, uncollectible_at, *(c["created"] * 1000 for c in charges))
            < self.event_from
        ):
            return
        unpaid = {"paid": False, "amount_paid": 0, "amount_remaining": inv["total"], "charge": None}
        unpaid |= {"attempted": False, "attempt_count": 0}
        transitions = {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        }
        self._emit(
            created,
            "invoice.created",
            inv,
            unpaid | {"status": "draft", "number": None, "status_transitions": transitions},
        )
        finalized = transitions | {"finalized_at": fin // 1000}
        self._emit(
            fin, "invoice.finalized", inv, unpaid | {"status": "open", "status_transitions": finalized}
        )
        # finalizing creates the invoice's payment intent, as Stripe announces it
        fresh = {"status": "requires_payment_method", "amount_received": 0, "latest_charge": None}
        self._emit(fin, "payment_intent.created", pi, fresh)
        for charge in charges:
            t = charge["created"] * 1000
            if charge["status"] == "succeeded":
                self._emit(t, "charge.succeeded", charge)
                self._emit(t, "payment_intent.succeeded", pi)
                self._emit_invoice_payment(t, pi, charge)
            else:
                self._emit(t, "charge.failed", charge)
                failed = {
                    "status": "requires_payment_method",
                    "amount_received": 0,
                    "latest_charge": charge["id"],
                }
                self._emit(t, "payment_intent.payment_failed", pi, failed)
        if inv["status"] == "paid":
            self._emit(paid_at, "invoice.paid", inv)
        elif inv["status"] == "uncollectible":
            self._emit(uncollectible_at, "invoice.marked_uncollectible", inv)
        elif inv["status"] == "void":
            self._emit(uncollectible_at, "invoice.voided", inv)

    def _deal_outcome(self, rng: random.Random, fin: int) -> tuple[str, int]:
        if self.now - fin > 40 * DAY and rng.random() < 0.04:
            return "uncollectible", 0
        if rng.random() < 0.5:
            paid_at = fin + rng.randint(5 * MIN, 2 * DAY)
        else:
            paid_at = fin + MIN + int(rng.expovariate(1.0 / (8 * DAY)))
        if paid_at < self.now - SEC:
            return "paid", paid_at
        return "open", 0

    def billing_records(self) -> None:
        rng, now = self.r_bill, self.now
        won: dict[int, list[Deal]] = {}
        for d in self.deals:
            if d.kind == "won":
                won.setdefault(d.person, []).append(d)
        starts = [
            (min(now - SEC, min(d.close for d in ds) + rng.randint(MIN, 6 * HOUR)), i)
            for i, ds in won.items()
        ]
        starts += [(self.created[i], i) for i in range(self.n_primary, len(self.persons))]
        for t, i in sorted(starts):
            self._customer(i, t, linked=i < self.n_primary and rng.random() < 0.85)
        for i in range(self.n_primary, len(self.persons)):
            cust = self.cust_of[i]
            key = {"customer_id": cust["id"]}
            self._anomaly("billing_orphan", key, {"email": self.persons[i].email}, cust["created"] * 1000)
        items: list[tuple[Deal, Record, int]] = []
        for d in sorted((d for ds in won.values() for d in ds), key=lambda d: d.close):
            if d.no_invoice:
                continue
            cust = self.cust_of[d.person]
            at = max(d.close + rng.randint(10 * MIN, 3 * DAY), cust["created"] * 1000 + MIN)
            if at >= now - MIN:
                self.pending.append((at, "invoice", d.id))
            else:
                items.append((d, cust, at))
        self._invoice_anomaly_plan(items)
        for d, cust, at in items:
            self._deal_invoice(rng, d, cust, at)
        self._subscriptions(rng)
        self._orphan_invoices(rng)

    def _invoice_anomaly_plan(self, items: list[tuple[Deal, Record, int]]) -> None:
        rng = self.r_anom
        pool = [k for k, (_, _, at) in enumerate(items) if at < self.now - 4 * HOUR]
        k_amount, k_pay = self._k(len(items), 0.01), self._k(len(items), 0.008)
        picked = self._pick(rng, pool, k_amount + k_pay)
        for n, k in enumerate(picked):
            d = items[k][0]
            if n < k_amount:
                off = max(100, round(d.cents * rng.uniform(0.05, 0.25) / 100) * 100)
                d.amount_off = off if rng.random() < 0.6 else -off
            else:
                d.pay_mismatch = "open_with_payment" if rng.random() < 0.5 else "paid_without_payment"

    def _deal_invoice(self, rng: random.Random, d: Deal, cust: Record, at: int) -> Record:
        fin = min(self.now - SEC, at + rng.randint(30 * SEC, 2 * HOUR))
        lines = [(d.cents, d.name)]
        near_miss = self._near_miss(d, at)
        if near_miss == "tolerance":  # rounding or a small fee: within the amount tolerance
            off = max(1, round(d.cents * self.r_variety.uniform(0.001, 0.008)))
            lines.append((off if self.r_variety.random() < 0.5 else -off, "Rounding"))
        elif near_miss in ("reissued", "split"):
            at, fin = self._first_deal_invoice(d, cust, at, fin, near_miss)
            lines = [(d.cents - d.cents // 2, f"{d.name} (second half)")] if near_miss == "split" else lines
        if d.amount_off:
            lines.append((d.amount_off, "Onboarding and setup" if d.amount_off > 0 else "Discount"))
        if d.pay_mismatch:
            outcome, paid_at = (
                d.pay_mismatch,
                fin + rng.randint(MIN, max(MIN, min(self.now - fin - MIN, 5 * DAY))),
            )
        else:
            outcome, paid_at = self._deal_outcome(rng, fin)
            if d.amount_off and outcome == "uncollectible":
                # a written-off invoice is no claim, so no amount on it can disagree: the
                # mismatch is planted on an invoice that stands
                outcome, paid_at = "open", 0
        inv = self._invoice(
            cust,
            at,
            fin,
            lines,
            reason="manual",
            metadata={"hubspot_deal_id": d.id},
            subscription=None,
            period=(at, at),
            description=d.name,
            automatic=False,
            outcome=outcome,
            paid_at=paid_at,
        )
        self.deal_invoice[d.id] = inv["id"]
        self.invoiced_deals.append(d.id)
        if d.amount_off:
            detail = {"deal_amount": to_dollars(d.cents), "invoice_total": inv["total"]}
            self._anomaly("invoice_amount_mismatch", {"deal_id": d.id, "invoice_id": inv["id"]}, detail, at)
        if d.pay_mismatch:
            pi = inv["payment_intent"]
            detail = {"variant": d.pay_mismatch, "invoice_status": inv["status"], "payment_intent": pi}
            self._anomaly("invoice_payment_mismatch", {"invoice_id": inv["id"]}, detail, paid_at)
        return inv

    def _near_miss(self, d: Deal, at: int) -> str:
        """A difference no rule may flag (variety `near_misses`), for a deal without anomalies:
        an invoice within the amount tolerance, a voided invoice re-issued, two half invoices."""
        if not self.variety.near_misses or d.amount_off or d.pay_mismatch or d.no_invoice:
            return ""
        rng = self.r_variety
        if rng.random() >= 0.1:
            return ""
        kind = rng.choice(("tolerance", "reissued", "split"))
        kind = kind if kind == "tolerance" or at < self.now - 2 * DAY else "tolerance"
        self.near_misses[d.id] = kind
        return kind

    def _first_deal_invoice(self, d: Deal, cust: Record, at: int, fin: int, kind: str) -> tuple[int, int]:
        """The invoice before the deal's last one: a wrong amount, voided an hour after it was
        finalized (`reissued`); or the first half (`split`). Returns when the next one starts."""
        rng = self.r_variety
        wrong = d.cents + max(100, round(d.cents * rng.uniform(0.1, 0.3) / 100) * 100)
        first = d.cents // 2 if kind == "split" else wrong
        name = f"{d.name} (first half)" if kind == "split" else d.name
        outcome, settled = ("void", fin + HOUR) if kind == "reissued" else ("paid", fin + MIN)
        self._invoice(
            cust,
            at,
            fin,
            [(first, name)],
            reason="manual",
            metadata={"hubspot_deal_id": d.id},
            subscription=None,
            period=(at, at),
            description=name,
            automatic=False,
            outcome=outcome,
            paid_at=settled,
        )
        after = settled + 10 * MIN
        return after, min(self.now - SEC, after + 5 * MIN)

    def _subscriptions(self, rng: random.Random) -> None:
        for n, (unit, plan) in enumerate(PLANS):
            product = self.ids.stripe("prod_", 14)
            self.prices.append(
                {
                    "id": self.ids.stripe("price_"),
                    "object": "price",
                    "unit_amount": unit,
                    "currency": "usd",
                    "recurring": {"interval": "month", "interval_count": 1},
                    "product": product,
                    "nickname": f"{plan} monthly",
                    "lookup_key": f"plan_{n}",
                }
            )
        for i, cust in list(self.cust_of.items()):
            if i >= self.n_primary or rng.random() >= 0.24:
                continue
            start = cust["created"] * 1000 + rng.randint(DAY, 20 * DAY)
            if start < self.now - DAY:
                self._subscription(rng, cust, start)

    def _subscription(self, rng: random.Random, cust: Record, start: int) -> None:
        now = self.now
        price = self.prices[rng.randrange(len(self.prices))]
        r = rng.random()
        status, canceled_at = "active", 0
        if r < 0.12:
            lo, hi = max(start + HOUR, now - 150 * DAY), now - DAY
            if lo < hi:
                status, canceled_at = "canceled", rng.randint(lo, hi)
        elif r < 0.2:
            status = "past_due"
        until = canceled_at or now
        k = max(0, int((until - start) / (30.44 * DAY)) - 8)
        periods: list[tuple[int, int, int]] = []
        while True:
            ps = add_months(start, k)
            if ps > until:
                break
            periods.append((k, ps, add_months(start, k + 1)))
            k += 1
        sub_id = self.ids.stripe("sub_")
        cur = periods[-1]
        sub: Record = {
            "id": sub_id,
            "object": "subscription",
            "customer": cust["id"],
            "status": status,
            "created": self._uniq("subscriptions", start // 1000),
            "start_date": start // 1000,
            "canceled_at": canceled_at // 1000 if canceled_at else None,
            "ended_at": canceled_at // 1000 if canceled_at else None,
            "cancel_at_period_end": False,
            "currency": "usd",
            "collection_method": "charge_automatically",
            "current_period_start": cur[1] // 1000,
            "current_period_end": cur[2] // 1000,
            "latest_invoice": None,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self.ids.stripe("si_", 14),
                        "object": "subscription_item",
                        "price": price,
                        "quantity": 1,
                        "created": start // 1000,
                    }
                ],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            "metadata": {},
            "livemode": False,
        }
        window = now - 183 * DAY
        unit = price["unit_amount"]
        text = plan_line(price)
        for k, ps, pe in periods:
            if ps < window:
                continue
            last = (k, ps, pe) == cur
            open_ = last and status == "past_due"
            created = min(now - 2 * SEC, ps + rng.randint(SEC, 10 * MIN))
            fin = min(now - SEC, created + rng.randint(SEC, HOUR))
            paid_at = min(now - SEC // 2, fin + rng.randint(SEC, 2 * HOUR))
            inv = self._invoice(
                cust,
                created,
                fin,
                [(unit, text)],
                reason="subscription_create" if k == 0 else "subscription_cycle",
                metadata={},
                subscription=sub_id,
                period=(ps, pe),
                description=None,
                automatic=True,
                outcome="open" if open_ else "paid",
                paid_at=0 if open_ else paid_at,
            )
            sub["latest_invoice"] = inv["id"]
            if k:
                previous = {"current_period_start": periods[0][1] // 1000, "current_period_end": ps // 1000}
                self._emit(ps, "customer.subscription.updated", sub, previous=previous)
        first = periods[0]
        initial: Record = {"status": "active", "canceled_at": None, "ended_at": None}
        initial |= {"current_period_start": first[1] // 1000, "current_period_end": first[2] // 1000}
        self._emit(start, "customer.subscription.created", sub, initial)
        if canceled_at:
            self._emit(canceled_at, "customer.subscription.deleted", sub)
        else:
            self.subscriptions.append(sub_id)
        self._add("subscriptions", sub)

    def _orphan_invoices(self, rng: random.Random) -> None:
        for i in range(self.n_primary, len(self.persons)):
            if rng.random() >= 0.6:
                continue
            cust = self.cust_of[i]
            at = cust["created"] * 1000 + rng.randint(HOUR, 5 * DAY)
            if at >= self.now - HOUR:
                continue
            fin = at + rng.randint(30 * SEC, HOUR)
            paid_at = min(self.now - SEC, fin + rng.randint(MIN, DAY))
            amount = rng.choice((150000, 240000, 480000))
            self._invoice(
                cust,
                at,
                fin,
                [(amount, "Consulting package")],
                reason="manual",
                metadata={},
                subscription=None,
                period=(at, at),
                description="Consulting package",
                automatic=False,
                outcome="paid",
                paid_at=paid_at,
            )

    def finish_events(self) -> None:
        self.event_log.sort(key=lambda e: (e[0], e[1]))
        for t, _, kind, snapshot, previous, request in self.event_log:
            self._event_record(t, kind, snapshot, previous, request)
        self.event_log = []
