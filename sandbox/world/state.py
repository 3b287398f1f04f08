"""The generator's state: one object the generation phases and the daily advance share."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox import names
from sandbox.accounts import STRIPE_UPGRADE_DAYS
from sandbox.config import STRIPE_EVENT_WINDOW_DAYS
from sandbox.store import Record, World
from sandbox.variety import Variety
from sandbox.world.common import (
    DAY,
    HISTORY_DAYS,
    Ids,
    LocalDays,
    Noise,
    slugify,
    stamp_modified,
    to_ms,
    ymd,
)
from sandbox.world.truth import Anomaly, Person

if TYPE_CHECKING:
    from sandbox.world.daily import DayIndex


@dataclass(slots=True)
class Deal:
    person: int
    pipeline: str
    stage: str
    created: int
    close: int
    cents: int
    name: str
    kind: str  # won | lost | open
    id: str = ""
    no_invoice: bool = False
    amount_off: int = 0  # invoice total minus deal amount, in cents (invoice_amount_mismatch)
    pay_mismatch: str = ""  # "" | "open_with_payment" | "paid_without_payment"


@dataclass(slots=True)
class Booking:
    person: int
    owner: int
    etype: int
    booked: int
    start: int
    end: int
    kind: str = "active"  # active | resched | cancel
    change: int = 0
    new_start: int = 0
    new_end: int = 0
    mismatch: str = ""  # "" | "time" | "status"
    meeting_id: str = ""
    upcoming_key: str = ""  # its key in `upcoming`: the meeting id, or (no CRM meetings) its first event
    event_uri: str = ""
    invitee_uri: str = ""


@dataclass(slots=True)
class Campaign:
    platform: str
    id: str
    account_id: str
    start_ord: int
    end_ord: int
    base_clicks: int
    cpc: int  # micros for Google, cents for Meta
    record: Record


class EngineState:
    """All generator state, and the helpers every part of the generator shares."""

    def __init__(
        self, world: World, seed: int, contacts: int, noise: float, anchor: datetime, variety: Variety
    ) -> None:
        self.crm = world.crm
        self.accounts = world.setup  # the account switches (sandbox/accounts.py); default: none
        self.billing = world.billing
        self.sched = world.scheduling
        self.ads = world.ads
        self.seed = seed
        self.n = contacts
        self.now = to_ms(anchor)
        self.start = self.now - HISTORY_DAYS * DAY
        self.event_from = self.now - STRIPE_EVENT_WINDOW_DAYS * DAY
        self.r_people = self._rng("people")
        self.r_crm = self._rng("crm")
        self.r_deals = self._rng("deals")
        self.r_bill = self._rng("billing")
        self.r_sched = self._rng("scheduling")
        self.r_ads = self._rng("ads")
        self.r_anom = self._rng("anomalies")
        self.r_adv = self._rng("advance")
        # draws only a switched account makes: the default world's other draws stay the same
        self.r_setup = self._rng("setup")
        # when an account on a newer Stripe version upgraded: its older events keep the old version
        self.stripe_upgrade = self.now - STRIPE_UPGRADE_DAYS * DAY if self.accounts.stripe_upgraded else None
        self.noise = Noise(noise, self._rng("noise"))
        # real-account patterns: drawn from a stream of their own, so a world without them is
        # the same world as before they existed
        self.variety = variety
        self.r_variety = self._rng("variety")
        # malformed values: planted, fixed and planted anew on a stream of their own
        self.r_malformed = self._rng("malformed_value")
        self.b2b_companies: dict[int, bool] = {}  # company index -> billed under its own name
        self.b2b_customers: set[str] = set()
        self.equivalent_names: set[str] = set()  # customers whose name only looks different
        self.near_misses: dict[str, str] = {}  # deal id -> the difference no rule may flag
        self.phone_gaps: list[int] = []  # persons whose billing customer got no phone
        self.namesakes: list[tuple[int, int]] = []
        self.ids = Ids(self._rng("ids"))
        self.n_dup = max(3, round(0.01 * contacts))
        self.n_orphans = max(3, round(0.0025 * contacts))
        self.n_primary = contacts - self.n_dup
        self.n_companies = max(3, contacts // 4)
        self.n_owners = max(4, min(100, round(contacts / 250)))
        self.n_campaigns = max(3, round(contacts / 5000))
        self.n_accounts = 1 + contacts // 300_000
        self.persons: list[Person] = []
        self.anomalies: list[Anomaly] = []
        self.anomaly_seq = 0
        self.emails: set[str] = set()
        self.phones: set[int] = set()
        self.name_keys: set[str] = set()
        self.used: set[int] = set()
        self.contact_person: dict[str, int] = {}
        self.customer_person: dict[str, int] = {}
        # customers the CRM integration created (with the contact's id as metadata, when it keeps one)
        self.linked_customers: set[str] = set()
        self.deal_person: dict[str, int] = {}
        self.co_stem: list[str] = []
        self.co_suffix: list[str] = []
        self.co_name: list[str] = []
        self.co_domain: list[str] = []
        self.co_id: list[str] = []
        self.owner_ids: list[str] = []
        self.memberships: list[dict[str, str]] = []
        self.event_types: list[tuple[str, str, int]] = []
        self.created_used: dict[str, set[int]] = {
            k: set()
            for k in ("customers", "invoices", "payment_intents", "charges", "subscriptions", "events")
        }
        self.event_log: list[tuple[int, int, str, Record, Record | None, bool]] = []
        self.live = False  # True once generation is over: events are stored as they happen
        self.cal = {"google": LocalDays("America/New_York"), "meta": LocalDays("America/Los_Angeles")}
        self.campaigns: dict[str, list[Campaign]] = {"google": [], "meta": []}
        self.day_active: dict[str, dict[int, list[int]]] = {"google": {}, "meta": {}}
        self.leads: dict[str, dict[tuple[int, int], int]] = {"google": {}, "meta": {}}
        # leads `advance` made on a day without a row yet: the (clicks, impressions per click) each adds
        self.waiting: dict[str, dict[tuple[int, int], list[tuple[int, int]]]] = {"google": {}, "meta": {}}
        self.row_index: dict[tuple[str, str, str], Record] = {}
        self.rows_until: dict[str, int] = {}  # last ad day (ordinal) with rows, per platform
        self.ad_open_from: dict[str, int] = {}  # first ad day `advance` may change, per platform
        self.prices: list[Record] = []
        self.pending: list[tuple[int, str, str]] = []  # (due ms, "invoice" | "reveal", deal id)
        self.open_deals: dict[str, None] = {}
        self.open_invoices: dict[str, None] = {}
        self.upcoming: dict[str, Booking] = {}
        self.owner_index: dict[str, int] = {}
        self.subscriptions: list[str] = []
        self.deal_invoice: dict[str, str] = {}
        self.day_index: DayIndex | None = None
        self.versions: tuple[int, ...] = ()
        self.invoiced_deals: list[str] = []
        # generation scratch, dropped when generation ends
        self.out: dict[str, list[Record]] = {}
        self.created: list[int] = []
        self.props: list[Record | None] = []
        self.deals: list[Deal] = []
        self.dups: list[tuple[int, int]] = []
        self.cust_of: dict[int, Record] = {}
        self.cust_invoices: dict[str, list[Record]] = {}
        self.contact_mod: dict[str, int] = {}

    def _touch_contact(self, record: Record, t: int) -> None:
        if self.live:
            stamp_modified(record, "lastmodifieddate", t)
        else:
            cid = record["id"]
            self.contact_mod[cid] = max(self.contact_mod.get(cid, 0), t)

    def _rng(self, part: str) -> random.Random:
        return random.Random(f"trueup-sandbox:{self.seed}:{part}")

    def _k(self, pool: int, rate: float) -> int:
        """How many of `pool` eligible records get an anomaly: about `rate`, at least 3."""
        return min(pool, max(3, round(rate * pool)))

    def _anomaly(self, kind: str, keys: dict[str, str], detail: dict[str, Any], on: int) -> Anomaly:
        self.anomaly_seq += 1
        anomaly = Anomaly(f"anomaly-{self.anomaly_seq:06d}", kind, keys, detail, True, ymd(on), None)
        self.anomalies.append(anomaly)
        return anomaly

    def _uniq(self, collection: str, seconds: int) -> int:
        used = self.created_used[collection]
        while seconds in used:
            seconds += 1
        used.add(seconds)
        return seconds

    def _new_email(self, rng: random.Random, first: str, last: str, domain: str | None) -> str:
        f, ln = slugify(first), slugify(last)
        v = rng.random()
        if v < 0.55:
            local = f"{f}.{ln}"
        elif v < 0.7:
            local = f"{f}{ln[0]}"
        elif v < 0.85:
            local = f"{f[0]}{ln}"
        elif v < 0.93:
            local = f"{f}_{ln}"
        else:
            local = f
        if domain is None:
            domain = rng.choice(names.PERSONAL_DOMAINS)
            if rng.random() < 0.6:
                local = f"{local}{rng.randint(1, 99)}"
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{rng.randint(2, 9999)}@{domain}"
        self.emails.add(email)
        return email

    def _alternate_email(self, rng: random.Random, first: str, last: str) -> str:
        domain = rng.choice(names.ALTERNATE_DOMAINS)
        base = f"{slugify(first)}{slugify(last)}"
        email = f"{base}{rng.randint(1, 999)}@{domain}"
        while email in self.emails:
            email = f"{base}{rng.randint(1000, 99999)}@{domain}"
        self.emails.add(email)
        return email

    def _new_phone(self, rng: random.Random) -> str:
        while True:
            number = int(rng.choice(names.AREA_CODES)) * 10_000_000 + rng.randint(2_000_000, 9_999_999)
            if number not in self.phones:
                self.phones.add(number)
                return f"+1{number}"

    def _pick(self, rng: random.Random, pool: list[Any], k: int) -> list[Any]:
        if k <= 0 or not pool:
            return []
        return rng.sample(pool, min(k, len(pool)))
