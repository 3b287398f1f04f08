"""The generator: every phase in order, and the hand-over to the live world."""

from __future__ import annotations

import time
from collections.abc import Callable

from sandbox.world.daily import DailyGen


class Engine(DailyGen):
    """All generator state; kept on the truth object so `advance` continues the same world."""

    def store(self) -> None:
        for name in ("customers", "invoices", "payment_intents", "charges", "subscriptions", "events"):
            collection = self.billing.objects(name)
            assert collection is not None
            collection.put_many(self.out.get(name, []))
        self.sched.events.put_many(self.out.get("sched_events", []))
        self.sched.invitees.put_many(self.out.get("sched_invitees", []))
        self.out = {}
        self.created = []
        self.props = []
        self.deals = []
        self.dups = []
        self.cust_of = {}
        self.cust_invoices = {}
        self.contact_mod = {}
        self.live = True
        self.event_from = 0
        self.versions = self._versions()

    def build(self, say: Callable[[str], None]) -> None:
        clock = time.perf_counter()

        def step(label: str) -> None:
            say(f"{label} ({time.perf_counter() - clock:.1f}s)")

        self.setup()
        self.ads_setup()
        self.company_names()
        step(f"setup: {self.n_owners} owners, {2 * self.n_campaigns} campaigns, {self.n_companies} companies")
        self.people()
        step(f"people: {len(self.persons)}")
        self.plan_deals()
        self.pick_duplicates()
        self.contacts()
        step(f"crm contacts: {len(self.crm.contacts)}")
        self.companies()
        self.deals_crm()
        step(f"crm companies: {len(self.crm.companies)}, deals: {len(self.crm.deals)}")
        self.billing_records()
        customers, invoices = len(self.out.get("customers", [])), len(self.out.get("invoices", []))
        step(f"billing: {customers} customers, {invoices} invoices")
        self.scheduling()
        step(f"scheduling: {len(self.out.get('sched_events', []))} events, {len(self.crm.meetings)} meetings")
        self.duplicate_anomalies()
        self.person_anomalies()
        self.value_anomalies()
        self.finish_contacts()
        self.finish_events()
        self.ad_rows()
        step(f"ads: {len(self.ads.google_rows)} google rows, {len(self.ads.meta_rows)} meta rows")
        self.store()
        step(f"stored; {len(self.anomalies)} anomalies")
