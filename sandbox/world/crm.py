"""The CRM (HubSpot): owners, pipelines, contacts, companies and deals."""

from __future__ import annotations

import heapq
import random

from sandbox import names
from sandbox.accounts import CUSTOM_UTM_CAMPAIGN
from sandbox.config import CALENDLY_API
from sandbox.store import Record
from sandbox.world.ads import AdsGen
from sandbox.world.common import (
    BUSINESS_DOMAIN,
    DAY,
    EVENT_TYPES,
    HOUR,
    MIN,
    SETTLE_DAYS,
    format_phone,
    iso_ms,
    iso_us,
    slugify,
    to_dollars,
    ymd,
)
from sandbox.world.state import Deal

OPEN_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin")

DEFAULT_STAGES = (
    ("appointmentscheduled", "Appointment scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified to buy", "0.4", False),
    ("presentationscheduled", "Presentation scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision maker bought-in", "0.8", False),
    ("contractsent", "Contract sent", "0.9", False),
    ("closedwon", "Closed won", "1.0", True),
    ("closedlost", "Closed lost", "0.0", True),
)

RENEWAL_STAGES = (
    ("81450231", "Renewal due", "0.5", False),
    ("81450232", "Negotiating", "0.7", False),
    ("81450233", "Closed Won", "1.0", True),
    ("81450234", "Closed Lost", "0.0", True),
)

WON_STAGES = frozenset({"closedwon", "81450233"})

LOST_STAGES = frozenset({"closedlost", "81450234"})

SOURCES = (
    (0.22, "PAID_SEARCH"),
    (0.38, "PAID_SOCIAL"),
    (0.58, "ORGANIC_SEARCH"),
    (0.72, "DIRECT_TRAFFIC"),
    (0.82, "REFERRALS"),
    (0.92, "EMAIL_MARKETING"),
    (1.01, "OFFLINE"),
)

LEAD_STAGES = (
    (0.12, "subscriber"),
    (0.57, "lead"),
    (0.85, "marketingqualifiedlead"),
    (1.01, "salesqualifiedlead"),
)


def pipeline_record(
    pid: str, label: str, order: int, stages: tuple[tuple[str, str, str, bool], ...], at: str
) -> Record:
    return {
        "id": pid,
        "label": label,
        "displayOrder": order,
        "stages": [
            {
                "id": sid,
                "label": slabel,
                "displayOrder": n,
                "metadata": {"isClosed": "true" if closed else "false", "probability": prob},
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                "createdAt": at,
                "updatedAt": at,
                "archived": False,
            }
            for n, (sid, slabel, prob, closed) in enumerate(stages)
        ],
        "createdAt": at,
        "updatedAt": at,
        "archived": False,
    }


def deal_record(d: Deal, owner: str, mod: int) -> Record:
    return {
        "id": d.id,
        "properties": {
            "dealname": d.name,
            "amount": to_dollars(d.cents),
            "deal_currency_code": "USD",
            "dealstage": d.stage,
            "pipeline": d.pipeline,
            "closedate": iso_ms(d.close),
            "createdate": iso_ms(d.created),
            "hs_lastmodifieddate": iso_ms(mod),
            "hs_object_id": d.id,
            "hubspot_owner_id": owner,
        },
        "createdAt": iso_ms(d.created),
        "updatedAt": iso_ms(mod),
        "archived": False,
    }


def meeting_record(
    mid: str, title: str, start: int, end: int, outcome: str, uri: str, owner: str, created: int, mod: int
) -> Record:
    return {
        "id": mid,
        "properties": {
            "hs_meeting_title": title,
            "hs_meeting_start_time": iso_ms(start),
            "hs_meeting_end_time": iso_ms(end),
            "hs_meeting_outcome": outcome,
            "hs_timestamp": iso_ms(start),
            "hs_meeting_external_url": uri,
            "hubspot_owner_id": owner,
            "hs_createdate": iso_ms(created),
            "hs_lastmodifieddate": iso_ms(mod),
            "hs_object_id": mid,
        },
        "createdAt": iso_ms(created),
        "updatedAt": iso_ms(mod),
        "archived": False,
    }


class CrmGen(AdsGen):
    """CRM owners, pipelines, contacts, companies and deals."""

    def setup(self) -> None:
        rng = self.r_crm
        t0 = self.start - 120 * DAY
        created = iso_ms(t0)
        for k in range(self.n_owners):
            first, last = rng.choice(names.FIRST_NAMES), rng.choice(names.LAST_NAMES)
            owner_id = str(41_000_000 + 1009 * k + rng.randint(0, 1000))
            email = f"{slugify(first)}.{slugify(last)}{k + 1}@{BUSINESS_DOMAIN}"
            self.crm.owners.append(
                {
                    "id": owner_id,
                    "email": email,
                    "firstName": first,
                    "lastName": last,
                    "userId": 9_100_000 + k,
                    "createdAt": created,
                    "updatedAt": created,
                    "archived": False,
                }
            )
            user_uri = f"{CALENDLY_API}/users/{self.ids.calendly()}"
            self.sched.users.append(
                {
                    "uri": user_uri,
                    "name": f"{first} {last}",
                    "slug": f"{slugify(first)}-{slugify(last)}-{k + 1}",
                    "email": email,
                    "timezone": "America/New_York",
                    "created_at": iso_us(t0),
                    "updated_at": iso_us(t0),
                    "current_organization": self.sched.organization,
                }
            )
            self.owner_index[owner_id] = len(self.owner_ids)
            self.owner_ids.append(owner_id)
            self.memberships.append({"user": user_uri, "user_email": email, "user_name": f"{first} {last}"})
        for name, minutes in EVENT_TYPES:
            self.event_types.append((f"{CALENDLY_API}/event_types/{self.ids.calendly()}", name, minutes))
        self.crm.pipelines.extend(
            [
                pipeline_record("default", "Sales Pipeline", 0, DEFAULT_STAGES, created),
                pipeline_record("renewals", "Renewals", 1, RENEWAL_STAGES, created),
            ]
        )
        self.crm.next_id = 100

    def plan_deals(self) -> None:
        rng = self.r_deals
        rnd = rng.random
        now = self.now
        for i in range(self.n_primary):
            if rnd() >= 0.34:
                continue
            ct = self.created[i]
            dc = ct + HOUR + int(rng.expovariate(1.0 / (12 * DAY)))
            if dc >= now - MIN:
                dc = ct + int((now - MIN - ct) * rnd())
            # old deals are mostly closed (half won, half lost); recent ones mostly still open
            p_closed = 0.92 if dc < now - 120 * DAY else 0.35
            deal = self._plan_deal(rng, i, "default", dc, p_closed / 2, p_closed / 2)
            self.deals.append(deal)
            if deal.kind == "won" and rnd() < 0.15:
                renewal_at = deal.close + rng.randint(200 * DAY, 400 * DAY)
                if renewal_at < now - 2 * DAY:
                    self.deals.append(self._plan_deal(rng, i, "renewals", renewal_at, 0.55, 0.2))
        self.deals.sort(key=lambda d: d.created)

    def _plan_deal(
        self, rng: random.Random, i: int, pipeline: str, created: int, p_won: float, p_lost: float
    ) -> Deal:
        now = self.now
        stem = self.co_stem[self.persons[i].company_index]
        if pipeline == "default":
            base = rng.choice((1200, 2400, 4800, 9600, 15000, 24000, 36000))
            name = f"{stem} - {rng.choice(names.DEAL_PRODUCTS)}"
        else:
            base = rng.choice((2400, 4800, 9600, 15000))
            name = f"{stem} - Renewal {ymd(created)[:4]}"
        cents = round(base * rng.uniform(0.8, 1.25) / 50) * 5000
        r = rng.random()
        if r < p_won + p_lost:
            close = created + rng.randint(2 * DAY, 70 * DAY)
            if close >= now - MIN:
                close = created + int(max(0, now - MIN - created) * rng.random())
            won = r < p_won
            if pipeline == "default":
                stage = "closedwon" if won else "closedlost"
            else:
                stage = RENEWAL_STAGES[2][0] if won else RENEWAL_STAGES[3][0]
            return Deal(i, pipeline, stage, created, close, cents, name, "won" if won else "lost")
        close = now + rng.randint(3 * DAY, 75 * DAY)
        stages = (*OPEN_STAGES, "contractsent") if pipeline == "default" else ("81450231", "81450232")
        return Deal(i, pipeline, rng.choice(stages), created, close, cents, name, "open")

    def pick_duplicates(self) -> None:
        won = {d.person for d in self.deals if d.kind == "won"}
        pool = [i for i in range(self.n_primary) if i not in won]
        rng = self.r_anom
        for i in self._pick(rng, pool, self.n_dup):
            self.used.add(i)
            ct = self.created[i]
            t = ct + rng.randint(2 * DAY, 400 * DAY)
            if t >= self.now - MIN:
                t = ct + MIN + int(max(0, self.now - 2 * MIN - ct) * rng.random())
            self.dups.append((t, i))
        self.dups.sort()

    def lifecycles(self) -> tuple[list[str], list[int]]:
        """Lifecycle stage per primary person from their deals, with the time it was set."""
        rng = self.r_crm
        stage: list[str] = [""] * self.n_primary
        at = [0] * self.n_primary
        rank = {"customer": 3, "opportunity": 2, "salesqualifiedlead": 1}
        for d in self.deals:
            lc, t = {"won": ("customer", d.close), "open": ("opportunity", d.created)}.get(
                d.kind, ("salesqualifiedlead", d.close)
            )
            if rank[lc] > rank.get(stage[d.person], 0):
                stage[d.person], at[d.person] = lc, t
        for i in range(self.n_primary):
            if not stage[i]:
                r = rng.random()
                stage[i] = next(s for bound, s in LEAD_STAGES if r < bound)
                at[i] = self.created[i]
        return stage, at

    def contacts(self) -> None:
        lifecycle, lifecycle_at = self.lifecycles()
        rng = self.r_crm
        self.props = [None] * len(self.persons)
        records: list[Record] = []
        primary = ((self.created[i], i, False) for i in range(self.n_primary))
        dups = ((t, i, True) for t, i in self.dups)
        for t, i, dup in heapq.merge(primary, dups):
            stage = "subscriber" if dup and rng.random() < 0.5 else "lead" if dup else lifecycle[i]
            record = self._contact_record(rng, i, t, dup, stage)
            props = record["properties"]
            mod = t if dup else max(t, lifecycle_at[i])
            if not dup:
                self.props[i] = props
            if rng.random() < 0.3:
                mod = max(mod, t + int((self.now - MIN - t) * rng.random() * 0.5))
            self.contact_mod[record["id"]] = min(mod, self.now - 1)
            records.append(record)
        self.crm.contacts.put_many(records)

    def _contact_record(self, rng: random.Random, i: int, t: int, dup: bool, stage: str) -> Record:
        """A CRM contact for person i created at t (a duplicate comes from an imported list)."""
        p = self.persons[i]
        noise = self.noise
        rnd = rng.random
        cid = self.crm.new_id()
        ci = p.company_index
        created = iso_ms(t)
        # a contact abroad often names its country (HubSpot's `country`): then the CRM may hold
        # its phone in the national format
        country = None
        if p.country is not None and self.r_variety.random() < 0.6:
            country = names.INTERNATIONAL[p.country][0]
        props: Record = {
            "email": noise.email(p.email, min(0.95, noise.email_crm * (3 if dup else 1))),
            "firstname": noise.word(p.first_name, noise.name_crm),
            "lastname": noise.word(p.last_name, noise.name_crm),
            "phone": self._phone_text(p, national_ok=country is not None),
            "company": noise.company(self.co_stem[ci], self.co_suffix[ci], self.co_name[ci], noise.company_p),
            "jobtitle": rng.choice(names.JOB_TITLES) if rnd() < 0.85 else None,
            "lifecyclestage": stage,
            "hubspot_owner_id": self.owner_ids[int(rnd() * len(self.owner_ids))],
            "hs_analytics_source": "OFFLINE",
            "hs_analytics_source_data_1": "IMPORT",
            "hs_analytics_source_data_2": None,
            "hs_google_click_id": None,
            "hs_facebook_click_id": None,
            "trial_start_date": None,
            "createdate": created,
            "lastmodifieddate": created,
            "hs_object_id": cid,
        }
        if country is not None:
            props["country"] = country
        if dup:
            props["hs_analytics_source_data_2"] = rng.choice(names.IMPORT_LISTS)
        else:
            self._source(rng, props, t)
            if rnd() < 0.3:
                props["trial_start_date"] = ymd(t + rng.randint(0, 14) * DAY)
        p.crm_contact_ids.append(cid)
        self.contact_person[cid] = i
        return {"id": cid, "properties": props, "createdAt": created, "updatedAt": created, "archived": False}

    def _source(self, rng: random.Random, props: Record, t: int) -> None:
        r = rng.random()
        source = next(s for bound, s in SOURCES if r < bound)
        props["hs_analytics_source"] = source
        if source in ("PAID_SEARCH", "PAID_SOCIAL"):
            platform = "google" if source == "PAID_SEARCH" else "meta"
            campaign = self._campaign_for(rng, platform, t)
            if campaign is not None:
                props["hs_analytics_source_data_1"] = "google" if platform == "google" else "facebook"
                props["hs_analytics_source_data_2"] = campaign.id
                if platform == "google":
                    props["hs_google_click_id"] = "Cj0KCQ" + self.ids.token(32)
                else:
                    props["hs_facebook_click_id"] = "IwAR" + self.ids.token(36)
                if self.accounts.custom_properties:
                    # the form writes the campaign's name into a custom property; HubSpot's own
                    # drill-down stays empty
                    props["hs_analytics_source_data_2"] = None
                    props[CUSTOM_UTM_CAMPAIGN] = self._typed_name(campaign.record["name"])
                return
            props["hs_analytics_source"] = source = "DIRECT_TRAFFIC"
        if source == "ORGANIC_SEARCH":
            props["hs_analytics_source_data_1"] = rng.choice(names.SEARCH_ENGINES)
        elif source == "REFERRALS":
            props["hs_analytics_source_data_1"] = rng.choice(names.REFERRAL_SITES)
        elif source == "EMAIL_MARKETING":
            props["hs_analytics_source_data_1"] = rng.choice(names.NEWSLETTERS)
            props["hs_analytics_source_data_2"] = f"{rng.choice(names.NEWSLETTERS)}-{ymd(t)[:7]}"
        elif source == "OFFLINE":
            props["hs_analytics_source_data_1"] = rng.choice(("IMPORT", "CRM_UI", "INTEGRATION"))
        else:
            props["hs_analytics_source_data_1"] = None

    def _typed_name(self, name: str) -> str:
        """A campaign name as a UTM parameter carries it: as named, or with other case or spacing."""
        r = self.r_setup.random()
        if r < 0.5:
            return name
        if r < 0.7:
            return name.lower()
        if r < 0.78:
            return name.upper()
        if r < 0.9:
            return f"  {name} "
        return name.replace(" ", "  ")

    def finish_contacts(self) -> None:
        for cid, mod in self.contact_mod.items():
            record = self.crm.contacts.get(cid)
            assert record is not None
            stamp = iso_ms(mod)
            record["properties"]["lastmodifieddate"] = stamp
            record["updatedAt"] = stamp
        self.crm.contacts.touch()

    def companies(self) -> None:
        rng = self.r_crm
        first_seen = [0] * self.n_companies
        members: list[list[str]] = [[] for _ in range(self.n_companies)]
        for i, p in enumerate(self.persons):
            if not p.crm_contact_ids:
                continue
            ci = p.company_index
            t = self.created[i]
            if not first_seen[ci] or t < first_seen[ci]:
                first_seen[ci] = t
            members[ci].extend(p.crm_contact_ids)
        span = self.now - self.start
        created = [
            (ft - rng.randint(MIN, 3 * DAY)) if ft else (self.start + int(span * rng.random()))
            for ft in first_seen
        ]
        order = sorted(range(self.n_companies), key=created.__getitem__)
        self.co_id = [""] * self.n_companies
        records = []
        noise = self.noise
        forward = self.crm.associations.setdefault(("contacts", "companies"), {})
        backward = self.crm.associations.setdefault(("companies", "contacts"), {})
        for ci in order:
            coid = self.crm.new_id()
            self.co_id[ci] = coid
            t = created[ci]
            mod = t + int((self.now - MIN - t) * rng.random() * 0.4)
            city, country = rng.choice(names.CITIES)
            phone = self._new_phone(rng)
            records.append(
                {
                    "id": coid,
                    "properties": {
                        "name": self.co_name[ci],
                        "domain": self.co_domain[ci],
                        "industry": rng.choice(names.INDUSTRIES),
                        "city": city,
                        "country": country,
                        "phone": format_phone(phone, noise.phone_style()),
                        "createdate": iso_ms(t),
                        "hs_lastmodifieddate": iso_ms(mod),
                        "hs_object_id": coid,
                    },
                    "createdAt": iso_ms(t),
                    "updatedAt": iso_ms(mod),
                    "archived": False,
                }
            )
            if members[ci]:
                backward[coid] = list(members[ci])
                for cid in members[ci]:
                    forward[cid] = [coid]
        self.crm.companies.put_many(records)

    def deals_crm(self) -> None:
        rng = self.r_deals
        now = self.now
        records = []
        assoc = self.crm.associations
        c2d = assoc.setdefault(("contacts", "deals"), {})
        d2c = assoc.setdefault(("deals", "contacts"), {})
        d2co = assoc.setdefault(("deals", "companies"), {})
        co2d = assoc.setdefault(("companies", "deals"), {})
        for d in self.deals:
            did = self.crm.new_id()
            d.id = did
            p = self.persons[d.person]
            cid = p.crm_contact_ids[0]
            coid = self.co_id[p.company_index]
            last = d.close if d.kind != "open" else d.created
            mod = min(now - 1, last + rng.randint(MIN, 2 * DAY))
            props = self.props[d.person]
            assert props is not None
            records.append(deal_record(d, props["hubspot_owner_id"], mod))
            c2d.setdefault(cid, []).append(did)
            d2c[did] = [cid]
            d2co[did] = [coid]
            co2d.setdefault(coid, []).append(did)
            self.deal_person[did] = d.person
            if d.kind == "open":
                self.open_deals[did] = None
        self.crm.deals.put_many(records)
        pool = [d for d in self.deals if d.kind == "won" and d.close < now - (SETTLE_DAYS + 3) * DAY]
        for d in self._pick(self.r_anom, pool, self._k(len(pool), 0.01)):
            d.no_invoice = True
            self._anomaly(
                "deal_won_no_invoice",
                {"deal_id": d.id},
                {"amount": to_dollars(d.cents), "closedate": iso_ms(d.close)},
                d.close + SETTLE_DAYS * DAY,
            )
