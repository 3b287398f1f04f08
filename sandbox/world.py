"""Deterministic generator of the sandbox business world, its ground truth and its daily advance.

`generate()` builds the CRM, billing, scheduling and ad-platform state of one small business
(see `sandbox/WORLD.md`), `advance()` moves that business forward day by day, and
`write_truth()` writes who is who and every injected anomaly.
"""

from __future__ import annotations

import gc
import heapq
import json
import math
import random
import re
import time
from base64 import b32encode, b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox import names
from sandbox.config import CALENDLY_API, STRIPE_API_VERSION, STRIPE_EVENT_WINDOW_DAYS
from sandbox.store import Collection, Record, World

DEFAULT_ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
HISTORY_DAYS = 730
SETTLE_DAYS = 7
# `advance` changes ad rows only for the account-local days this far back from `now`: the
# shortest window the ad connectors re-pull (Meta 7 days, Google 30), so every change shows
AD_RESTATE_DAYS = 7
FREEZE_ABOVE = 100_000  # worlds this large are frozen out of the cyclic GC once built
BUSINESS_DOMAIN = "ledgerline.io"

SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR

KINDS: tuple[str, ...] = (
    "deal_won_no_invoice",
    "paid_invoice_crm_not_customer",
    "invoice_amount_mismatch",
    "appointment_time_mismatch",
    "appointment_status_mismatch",
    "email_mismatch",
    "name_mismatch",
    "phone_mismatch",
    "billing_orphan",
    "crm_duplicate",
    "ad_conversion_mismatch",
    "invoice_payment_mismatch",
    "malformed_date",
    "malformed_phone",
)

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
PLANS = ((4900, "Starter"), (9900, "Growth"), (19900, "Scale"), (49900, "Enterprise"))
EVENT_TYPES = (("30 Minute Discovery Call", 30), ("Product Demo", 45))
# read-only values many records share (where these sit, records are replaced, never edited in place)
_ONE_INVITEE: dict[str, int] = {"total": 1, "active": 1, "limit": 1}
_NO_TRACKING: dict[str, Any] = dict.fromkeys(
    ("utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term", "salesforce_uuid")
)


# ---------------------------------------------------------------------------------------------
# time: worlds keep integer epoch milliseconds and format through small caches


_HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_MS3 = [f".{i:03d}" for i in range(1000)]
_DAY_STR: dict[int, str] = {}
_EPOCH = date(1970, 1, 1)


def _day_str(day: int) -> str:
    text = _DAY_STR.get(day)
    if text is None:
        text = _DAY_STR[day] = (_EPOCH + timedelta(days=day)).isoformat()
    return text


def iso_ms(t: int) -> str:
    """HubSpot timestamp: ISO-8601 UTC with milliseconds."""
    s = t // 1000
    return f"{_day_str(s // 86400)}T{_HMS[s % 86400]}{_MS3[t % 1000]}Z"


def iso_us(t: int) -> str:
    """Calendly timestamp: ISO-8601 UTC with microseconds."""
    s = t // 1000
    return f"{_day_str(s // 86400)}T{_HMS[s % 86400]}{_MS3[t % 1000]}000Z"


def ymd(t: int) -> str:
    return _day_str(t // DAY)


def to_ms(value: datetime | str) -> int:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def _meta_time(t: int) -> str:
    return iso_ms(t)[:19] + "+0000"


class _LocalDays:
    """Calendar day of an instant in one time zone (offsets change on whole UTC hours)."""

    def __init__(self, tz: str) -> None:
        self.zone = ZoneInfo(tz)
        self._hours: dict[int, int] = {}
        self._names: dict[int, str] = {}

    def ordinal(self, t: int) -> int:
        hour = t // HOUR
        ordinal = self._hours.get(hour)
        if ordinal is None:
            ordinal = datetime.fromtimestamp(hour * 3600, self.zone).date().toordinal()
            self._hours[hour] = ordinal
        return ordinal

    def name(self, ordinal: int) -> str:
        text = self._names.get(ordinal)
        if text is None:
            text = self._names[ordinal] = date.fromordinal(ordinal).isoformat()
        return text


def _add_months(t: int, months: int) -> int:
    moment = datetime.fromtimestamp(t / 1000, UTC)
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    days = (date(year + month // 12, month % 12 + 1, 1) - date(year, month, 1)).days
    return to_ms(moment.replace(year=year, month=month, day=min(moment.day, days)))


# ---------------------------------------------------------------------------------------------
# identifiers

_TO_BASE62 = str.maketrans("+/", "xQ")


class _Ids:
    """Stripe-like and Calendly-like identifiers drawn from one seeded stream."""

    def __init__(self, rng: random.Random) -> None:
        self._bytes = rng.randbytes

    def stripe(self, prefix: str, length: int = 24) -> str:
        raw = b64encode(self._bytes(18 if length > 16 else 12)).decode()
        return prefix + raw[:length].translate(_TO_BASE62)

    def calendly(self) -> str:
        return b32encode(self._bytes(10)).decode()

    def token(self, length: int) -> str:
        return b64encode(self._bytes(length)).decode()[:length].translate(_TO_BASE62)


# ---------------------------------------------------------------------------------------------
# people: names, emails and phones with realistic variation

_SLUGS: dict[str, str] = {}
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def _slug(text: str) -> str:
    slug = _SLUGS.get(text)
    if slug is None:
        slug = _SLUGS[text] = _NON_ALNUM.sub("", text.lower())
    return slug


def format_phone(e164: str, style: int) -> str:
    """One of the formats people write a US number in; style 0 is E.164 itself."""
    area, exchange, line = e164[2:5], e164[5:8], e164[8:12]
    if style == 1:
        return f"({area}) {exchange}-{line}"
    if style == 2:
        return f"{area}.{exchange}.{line}"
    if style == 3:
        return f"+1 {area} {exchange} {line}"
    if style == 4:
        return f"{area}{exchange}{line}"
    if style == 5:
        return f"{area}-{exchange}-{line}"
    if style == 6:
        return f"1-{area}-{exchange}-{line}"
    return e164


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word + word[-1]
    for _ in range(5):
        i = rng.randint(1, len(word) - 2)
        op = rng.random()
        if op < 0.4:
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif op < 0.7:
            out = word[:i] + word[i + 1 :]
        else:
            out = word[:i] + word[i] + word[i:]
        if out != word:
            return out
    return word + word[-1]


class _Noise:
    """Probabilities of each kind of cosmetic variation at a noise level (0 none, 1 default)."""

    def __init__(self, level: float, rng: random.Random) -> None:
        def p(base: float) -> float:
            return min(0.95, max(0.0, base * level))

        self.rng = rng
        self.r = rng.random
        self.email_crm = p(0.15)
        self.email_billing = p(0.12)
        self.name_crm = p(0.05)
        self.name_billing = p(0.12)
        self.phone = p(0.7)
        self.company_p = p(0.35)
        self.nickname = p(0.12)
        self.typo = p(0.05)
        self.plus = p(0.06)
        self.alternate = p(0.08)
        self.invitee_case = p(0.1)

    def email(self, email: str, p: float) -> str:
        if p == 0.0 or self.r() >= p:
            return email
        v = self.r()
        if v < 0.3:
            return email.title()
        if v < 0.45:
            return email.upper()
        if v < 0.7:
            return f" {email}"
        if v < 0.9:
            return f"{email} "
        return f"  {email.title()} "

    def word(self, word: str, p: float) -> str:
        if p == 0.0 or self.r() >= p:
            return word
        v = self.r()
        if v < 0.45:
            return word.lower()
        if v < 0.65:
            return word.upper()
        return f"{word} "

    def full_name(self, first: str, last: str, p: float) -> str:
        full = f"{first} {last}"
        if p == 0.0 or self.r() >= p:
            return full
        v = self.r()
        if v < 0.35:
            return full.upper()
        if v < 0.65:
            return full.lower()
        if v < 0.85:
            return f"{full} "
        return f" {full}"

    def phone_style(self) -> int:
        if self.phone == 0.0 or self.r() >= self.phone:
            return 0
        return self.rng.randint(1, 6)

    def company(self, stem: str, suffix: str, canonical: str, p: float) -> str:
        if p == 0.0 or self.r() >= p:
            return canonical
        v = self.r()
        bare = suffix.rstrip(".")
        if v < 0.3:
            return stem
        if v < 0.45:
            return canonical.upper()
        if v < 0.6 and suffix:
            return f"{stem.upper()}, {bare.upper()}"
        if v < 0.75 and suffix:
            return f"{stem}, {suffix}"
        if v < 0.85:
            return canonical.lower()
        return f"{stem} {bare}".strip()


# ---------------------------------------------------------------------------------------------
# ground truth


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


# ---------------------------------------------------------------------------------------------
# the engine: generation phases and the daily advance share this state


@dataclass(slots=True)
class _Deal:
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
class _Booking:
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
    event_uri: str = ""
    invitee_uri: str = ""


@dataclass(slots=True)
class _Campaign:
    platform: str
    id: str
    account_id: str
    start_ord: int
    end_ord: int
    base_clicks: int
    cpc: int  # micros for Google, cents for Meta
    record: Record


class _Engine:
    """All generator state; kept on the truth object so `advance` continues the same world."""

    def __init__(self, world: World, seed: int, contacts: int, noise: float, anchor: datetime) -> None:
        self.crm = world.crm
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
        self.noise = _Noise(noise, self._rng("noise"))
        self.ids = _Ids(self._rng("ids"))
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
        self.cal = {"google": _LocalDays("America/New_York"), "meta": _LocalDays("America/Los_Angeles")}
        self.campaigns: dict[str, list[_Campaign]] = {"google": [], "meta": []}
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
        self.upcoming: dict[str, _Booking] = {}
        self.owner_index: dict[str, int] = {}
        self.subscriptions: list[str] = []
        self.deal_invoice: dict[str, str] = {}
        self.day_index: _Index | None = None
        self.versions: tuple[int, ...] = ()
        self.invoiced_deals: list[str] = []
        # generation scratch, dropped when generation ends
        self.out: dict[str, list[Record]] = {}
        self.created: list[int] = []
        self.props: list[Record | None] = []
        self.deals: list[_Deal] = []
        self.dups: list[tuple[int, int]] = []
        self.cust_of: dict[int, Record] = {}
        self.cust_invoices: dict[str, list[Record]] = {}
        self.contact_mod: dict[str, int] = {}

    def _rng(self, part: str) -> random.Random:
        return random.Random(f"trueup-sandbox:{self.seed}:{part}")

    # -- small shared helpers ------------------------------------------------------------------

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
        f, ln = _slug(first), _slug(last)
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
        base = f"{_slug(first)}{_slug(last)}"
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

    # -- CRM setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        rng = self.r_crm
        t0 = self.start - 120 * DAY
        created = iso_ms(t0)
        for k in range(self.n_owners):
            first, last = rng.choice(names.FIRST_NAMES), rng.choice(names.LAST_NAMES)
            owner_id = str(41_000_000 + 1009 * k + rng.randint(0, 1000))
            email = f"{_slug(first)}.{_slug(last)}{k + 1}@{BUSINESS_DOMAIN}"
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
                    "slug": f"{_slug(first)}-{_slug(last)}-{k + 1}",
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
                _pipeline("default", "Sales Pipeline", 0, DEFAULT_STAGES, created),
                _pipeline("renewals", "Renewals", 1, RENEWAL_STAGES, created),
            ]
        )
        self.crm.next_id = 100

    # -- companies and people ------------------------------------------------------------------

    def company_names(self) -> None:
        rng = self.r_people
        seen: set[str] = set()
        domains: set[str] = set()
        attempts = 0
        while len(self.co_stem) < self.n_companies:
            attempts += 1
            c = rng.choice(names.COMPANY_C)
            stem = f"{rng.choice(names.COMPANY_A)} {rng.choice(names.COMPANY_B)}" + (f" {c}" if c else "")
            if attempts > 4 * self.n_companies:
                stem = f"{stem} {attempts}"
            if stem in seen:
                continue
            seen.add(stem)
            tld = rng.choice(names.DOMAIN_TLDS)
            domain = f"{_slug(stem)}.{tld}"
            while domain in domains:
                domain = f"{_slug(stem)}{rng.randint(2, 999)}.{tld}"
            domains.add(domain)
            suffix = rng.choice(names.LEGAL_SUFFIXES)
            self.co_stem.append(stem)
            self.co_suffix.append(suffix)
            self.co_name.append(f"{stem} {suffix}" if suffix else stem)
            self.co_domain.append(domain)

    def people(self) -> None:
        rng = self.r_people
        rnd, choice = rng.random, rng.choice
        span = self.now - self.start - MIN
        draws = sorted([rnd() for _ in range(self.n_primary)])
        # contact creation grows over the two years (density doubles from start to now)
        self.created = [self.start + int(span * (math.sqrt(1.0 + 3.0 * u) - 1.0)) for u in draws]
        self.created += [self.start + int(span * rnd()) for _ in range(self.n_orphans)]
        for i in range(self.n_primary + self.n_orphans):
            self.persons.append(self._new_person(rng, i, rnd, choice))

    def _new_person(
        self, rng: random.Random, i: int, rnd: Callable[[], float], choice: Callable[[Any], Any]
    ) -> Person:
        ncomp = self.n_companies
        first, last = choice(names.FIRST_NAMES), choice(names.LAST_NAMES)
        ci = min(ncomp - 1, int(ncomp * rnd() ** 1.3))
        key = f"{first} {last}|{ci}"
        while key in self.name_keys:
            last = choice(names.LAST_NAMES)
            key = f"{first} {last}|{ci}"
        self.name_keys.add(key)
        email = self._new_email(rng, first, last, self.co_domain[ci] if rnd() < 0.72 else None)
        phone = self._new_phone(rng) if rnd() < 0.88 else None
        return Person(f"person-{i + 1:07d}", first, last, email, phone, self.co_name[ci], ci)

    # -- deals are planned before ids exist, so contact lifecycles and duplicates can use them ----

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
    ) -> _Deal:
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
            return _Deal(i, pipeline, stage, created, close, cents, name, "won" if won else "lost")
        close = now + rng.randint(3 * DAY, 75 * DAY)
        stages = (*OPEN_STAGES, "contractsent") if pipeline == "default" else ("81450231", "81450232")
        return _Deal(i, pipeline, rng.choice(stages), created, close, cents, name, "open")

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

    # -- CRM contacts --------------------------------------------------------------------------

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
        phone = p.phone_e164
        props: Record = {
            "email": noise.email(p.email, min(0.95, noise.email_crm * (3 if dup else 1))),
            "firstname": noise.word(p.first_name, noise.name_crm),
            "lastname": noise.word(p.last_name, noise.name_crm),
            "phone": format_phone(phone, noise.phone_style()) if phone else None,
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

    def _campaign_for(self, rng: random.Random, platform: str, t: int) -> _Campaign | None:
        ordinal = self.cal[platform].ordinal(t)
        active = self.day_active[platform].get(ordinal)
        if not active:
            return None
        index = active[int(rng.random() * len(active))]
        campaign = self.campaigns[platform][index]
        if self.live:
            row = self.row_index.get((platform, campaign.id, self.cal[platform].name(ordinal)))
            bump = self._bump_draws()
            if row is not None:
                self._bump_row(platform, row, bump)
            else:  # the account's today: the lead lands on the day's row once the day is complete
                self.waiting[platform].setdefault((index, ordinal), []).append(bump)
        else:
            counts = self.leads[platform]
            counts[(index, ordinal)] = counts.get((index, ordinal), 0) + 1
        return campaign

    def finish_contacts(self) -> None:
        for cid, mod in self.contact_mod.items():
            record = self.crm.contacts.get(cid)
            assert record is not None
            stamp = iso_ms(mod)
            record["properties"]["lastmodifieddate"] = stamp
            record["updatedAt"] = stamp
        self.crm.contacts.touch()

    # -- CRM companies and deals -----------------------------------------------------------------

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
            records.append(_deal_record(d, props["hubspot_owner_id"], mod))
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
                {"amount": _dollars(d.cents), "closedate": iso_ms(d.close)},
                d.close + SETTLE_DAYS * DAY,
            )

    # -- billing -------------------------------------------------------------------------------

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
        self._add(
            "events",
            {
                "id": self.ids.stripe("evt_"),
                "object": "event",
                "api_version": STRIPE_API_VERSION,
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
            "metadata": {"hubspot_contact_id": p.crm_contact_ids[0]} if linked and p.crm_contact_ids else {},
            "name": noise.full_name(p.first_name, p.last_name, noise.name_billing),
            "next_invoice_sequence": 1,
            "phone": format_phone(p.phone_e164, noise.phone_style()) if p.phone_e164 else None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self.cust_of[i] = cust
        p.billing_customer_ids.append(cust_id)
        self.customer_person[cust_id] = i
        self._add("customers", cust)
        self._emit(t, "customer.created", cust, request=True)
        return cust

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
        if outcome == "uncollectible":
            pi["status"] = "canceled"
        status = {"paid_without_payment": "paid", "open_with_payment": "open"}.get(outcome, outcome)
        paid = status == "paid"
        uncollectible_at = fin + 30 * DAY if status == "uncollectible" else 0
        charge_id = (success or charges[-1])["id"] if paid else None
        inv: Record = {
            "id": inv_id,
            "object": "invoice",
            "amount_due": total,
            "amount_paid": total if paid else 0,
            "amount_remaining": 0 if paid else total,
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
                "voided_at": None,
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
        self._invoice_events(inv, pi, charges, created, fin, paid_at, uncollectible_at)
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
        won: dict[int, list[_Deal]] = {}
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
        items: list[tuple[_Deal, Record, int]] = []
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

    def _invoice_anomaly_plan(self, items: list[tuple[_Deal, Record, int]]) -> None:
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

    def _deal_invoice(self, rng: random.Random, d: _Deal, cust: Record, at: int) -> Record:
        fin = min(self.now - SEC, at + rng.randint(30 * SEC, 2 * HOUR))
        lines = [(d.cents, d.name)]
        if d.amount_off:
            lines.append((d.amount_off, "Onboarding and setup" if d.amount_off > 0 else "Discount"))
        if d.pay_mismatch:
            outcome, paid_at = (
                d.pay_mismatch,
                fin + rng.randint(MIN, max(MIN, min(self.now - fin - MIN, 5 * DAY))),
            )
        else:
            outcome, paid_at = self._deal_outcome(rng, fin)
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
            detail = {"deal_amount": _dollars(d.cents), "invoice_total": inv["total"]}
            self._anomaly("invoice_amount_mismatch", {"deal_id": d.id, "invoice_id": inv["id"]}, detail, at)
        if d.pay_mismatch:
            pi = inv["payment_intent"]
            detail = {"variant": d.pay_mismatch, "invoice_status": inv["status"], "payment_intent": pi}
            self._anomaly("invoice_payment_mismatch", {"invoice_id": inv["id"]}, detail, paid_at)
        return inv

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
            ps = _add_months(start, k)
            if ps > until:
                break
            periods.append((k, ps, _add_months(start, k + 1)))
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
        text = _plan_line(price)
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

    # -- scheduling ----------------------------------------------------------------------------

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

    def _plan_booking(self, rng: random.Random, i: int, owner: int, booked: int) -> _Booking:
        etype = 0 if rng.random() < 0.6 else 1
        length = EVENT_TYPES[etype][1] * MIN
        start = self._slot(booked + rng.randint(DAY, 14 * DAY))
        bk = _Booking(i, owner, etype, booked, start, start + length)
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
        plans: list[_Booking] = []
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
        for b in self._pick(self.r_anom, resched, self._k(len(resched), 0.05)):
            b.mismatch = "time"
        for b in self._pick(self.r_anom, canceled, self._k(len(canceled), 0.05)):
            b.mismatch = "status"
        meetings: list[Record] = []
        for bk in plans:
            meetings.append(self._booking_records(rng, bk))
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
            first = _typo(rng, first)
        if r() < noise.typo / 2:
            last = _typo(rng, last)
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
        return first, last, email, company

    def _calendly_pair(
        self,
        bk: _Booking,
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
        qa = [{"question": "Company name", "answer": company, "position": 0}]
        if topic:
            qa.append({"question": "What would you like to discuss?", "answer": topic, "position": 1})
        event: Record = {
            "uri": event_uri,
            "name": name,
            "status": "active",
            "start_time": iso_us(start),
            "end_time": iso_us(end),
            "event_type": type_uri,
            "location": {"type": "zoom", "join_url": f"https://zoom.us/j/{rng.randint(10**9, 10**10 - 1)}"},
            "invitees_counter": _ONE_INVITEE,
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

    def _booking_records(self, rng: random.Random, bk: _Booking) -> Record:
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
        return self._meeting(rng, bk, p, event, invitee, old_event)

    def _extras(self, rng: random.Random, i: int) -> tuple[str | None, str, dict[str, Any], str | None]:
        p = self.persons[i]
        contact = self.crm.contacts.get(p.crm_contact_ids[0])
        props = contact["properties"] if contact else None
        tracking = _NO_TRACKING
        if props is not None and props["hs_analytics_source"] in ("PAID_SEARCH", "PAID_SOCIAL"):
            google = props["hs_analytics_source"] == "PAID_SEARCH"
            tracking = dict(_NO_TRACKING)
            tracking["utm_campaign"] = props["hs_analytics_source_data_2"]
            tracking["utm_source"] = props["hs_analytics_source_data_1"]
            tracking["utm_medium"] = "cpc" if google else "paid_social"
        topic = rng.choice(names.MEETING_TOPICS) if rng.random() < 0.5 else None
        reminder = None
        if p.phone_e164 and rng.random() < 0.35:
            reminder = format_phone(p.phone_e164, self.noise.phone_style())
        return topic, rng.choice(names.TIMEZONES), tracking, reminder

    def _meeting(
        self, rng: random.Random, bk: _Booking, p: Person, event: Record, invitee: Record, old_event: Record
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
                self.upcoming[mid] = bk
        title = f"{event['name']} with {p.first_name} {p.last_name}"
        record = _meeting_record(mid, title, start, end, outcome, uri, self.owner_ids[bk.owner], created, mod)
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

    # -- anomalies on people: CRM and billing copies drift apart ---------------------------------

    def person_anomalies(self) -> None:
        rng = self.r_anom
        linked = [
            i
            for i, cust in self.cust_of.items()
            if i < self.n_primary and cust["metadata"].get("hubspot_contact_id") and i not in self.used
        ]
        n_customers = len(self.cust_of)
        self._paid_not_customer(rng, n_customers)
        for kind, rate in (("email_mismatch", 0.01), ("name_mismatch", 0.01), ("phone_mismatch", 0.01)):
            pool = [i for i in linked if i not in self.used]
            if kind == "phone_mismatch":
                pool = [i for i in pool if self.persons[i].phone_e164]
            for i in self._pick(rng, pool, self._k(n_customers, rate)):
                self.used.add(i)
                cust = self.cust_of[i]
                t = max(self.created[i], cust["created"] * 1000) + HOUR
                t = min(self.now - SEC, t + int(max(0, self.now - MIN - t) * rng.random()))
                getattr(self, f"_make_{kind}")(rng, i, cust, t)
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

    def _touch_contact(self, record: Record, t: int) -> None:
        if self.live:
            _stamp(record, "lastmodifieddate", t)
        else:
            cid = record["id"]
            self.contact_mod[cid] = max(self.contact_mod.get(cid, 0), t)

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
        p = self.persons[i]
        nicks = names.NICKNAMES.get(p.first_name)
        if nicks and rng.random() < 0.6:
            billing = f"{rng.choice(nicks)} {p.last_name}"
        elif rng.random() < 0.5:
            billing = f"{p.first_name} {_typo(rng, p.last_name)}"
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
        other = self._new_phone(rng)
        previous = {"phone": cust["phone"]}
        cust["phone"] = format_phone(other, self.noise.phone_style())
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

    def duplicate_anomalies(self) -> None:
        for _, i in self.dups:
            ids = self.persons[i].crm_contact_ids
            first, dup = ids[0], ids[-1]
            t = to_ms(self.crm.contacts.get(dup)["properties"]["createdate"])  # type: ignore[index]
            self._anomaly("crm_duplicate", {"contact_id": first, "duplicate_contact_id": dup}, {}, t)

    # -- ads -------------------------------------------------------------------------------------

    def ads_setup(self) -> None:
        rng = self.r_ads
        for platform in ("google", "meta"):
            accounts = [self._ad_account(rng, platform, a) for a in range(self.n_accounts)]
            cal = self.cal[platform]
            seen: set[str] = set()
            camps: list[_Campaign] = []
            for k in range(self.n_campaigns):
                cid = ""
                while not cid or cid in seen:
                    if platform == "google":
                        cid = str(rng.randint(10**10, 10**11 - 1))
                    else:
                        cid = f"1202{rng.randint(10**13, 10**14 - 1)}"
                seen.add(cid)
                account = accounts[k % len(accounts)]
                start = (
                    self.start - 30 * DAY
                    if k == 0
                    else rng.randint(self.start - 60 * DAY, self.now - 20 * DAY)
                )
                end = 0
                if k and rng.random() < 0.25 and start + 30 * DAY < self.now - DAY:
                    end = rng.randint(start + 30 * DAY, self.now - DAY)
                theme, region = rng.choice(names.CAMPAIGN_THEMES), rng.choice(names.CAMPAIGN_REGIONS)
                name = f"{theme} | {region} | {k + 1:03d}"
                camps.append(self._campaign(rng, platform, cid, account, name, start, end, cal))
            camps.sort(key=lambda c: c.id)
            self.campaigns[platform] = camps
            self.day_active[platform] = {}
            for o in range(cal.ordinal(self.start) - 1, cal.ordinal(self.now) + 1):
                self.day_active[platform][o] = [
                    k for k, c in enumerate(camps) if c.start_ord <= o <= c.end_ord
                ]
            if platform == "google":
                self.ads.google_campaigns = [c.record for c in camps]
            else:
                self.ads.meta_campaigns = [c.record for c in camps]

    def _ad_account(self, rng: random.Random, platform: str, a: int) -> str:
        label = "" if a == 0 else f" {a + 1}"
        if platform == "google":
            cid = str(rng.randint(10**9, 10**10 - 1))
            self.ads.google_customers.append(
                {
                    "id": cid,
                    "descriptiveName": f"Ledgerline Search{label}",
                    "currencyCode": "USD",
                    "timeZone": "America/New_York",
                }
            )
            return cid
        digits = str(rng.randint(10**14, 10**15 - 1))
        self.ads.meta_accounts.append(
            {
                "id": f"act_{digits}",
                "account_id": digits,
                "name": f"Ledgerline Ads{label}",
                "currency": "USD",
                "timezone_name": "America/Los_Angeles",
            }
        )
        return digits

    def _campaign(
        self,
        rng: random.Random,
        platform: str,
        cid: str,
        account: str,
        name: str,
        start: int,
        end: int,
        cal: _LocalDays,
    ) -> _Campaign:
        paused = bool(end)
        if platform == "google":
            record: Record = {
                "id": cid,
                "customer_id": account,
                "name": name,
                "status": "PAUSED" if paused else "ENABLED",
                "advertisingChannelType": "SEARCH",
            }
            cpc = rng.randint(80, 450) * 10_000
        else:
            status = "PAUSED" if paused else "ACTIVE"
            record = {
                "id": cid,
                "account_id": account,
                "name": name,
                "status": status,
                "effective_status": status,
                "objective": "OUTCOME_LEADS",
                "daily_budget": str(rng.randint(20, 400) * 100),
                "created_time": _meta_time(start),
                "updated_time": _meta_time(end or start + rng.randint(HOUR, 30 * DAY)),
            }
            cpc = rng.randint(40, 200)
        end_ord = cal.ordinal(end) if end else 10**9
        base_clicks = rng.randint(15, 120)
        return _Campaign(platform, cid, account, cal.ordinal(start), end_ord, base_clicks, cpc, record)

    def _ad_row(self, platform: str, c: _Campaign, day: str, conversions: int) -> Record:
        rng = self.r_ads
        clicks = int(c.base_clicks * (0.6 + 0.8 * rng.random())) + conversions * rng.randint(3, 12)
        impressions = clicks * rng.randint(15, 60)
        if platform == "google":
            row: Record = {
                "customer_id": c.account_id,
                "campaign_id": c.id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "cost_micros": clicks * c.cpc,
                "conversions": float(conversions),
                "conversions_value": round(conversions * 120.0, 2),
            }
        else:
            row = {
                "account_id": c.account_id,
                "campaign_id": c.id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "spend": _dollars(clicks * c.cpc),
                "leads": conversions,
            }
        self.row_index[(platform, c.id, day)] = row
        return row

    def ad_rows(self) -> None:
        """Daily rows up to the last complete day in each account's time zone (the day before
        its local today); leads of today wait in `leads` for the row `advance` adds."""
        for platform in ("google", "meta"):
            cal = self.cal[platform]
            camps = self.campaigns[platform]
            counts = self.leads[platform]
            rows: list[Record] = []
            last = cal.ordinal(self.now) - 1
            for o in range(cal.ordinal(self.start), last + 1):
                day = cal.name(o)
                for k in self.day_active[platform][o]:
                    rows.append(self._ad_row(platform, camps[k], day, counts.get((k, o), 0)))
            self.rows_until[platform] = last
            self.leads[platform] = {key: n for key, n in counts.items() if key[1] > last}
            if platform == "google":
                self.ads.google_rows = rows
            else:
                self.ads.meta_rows = rows
        self._ad_mismatches()

    def _ad_mismatches(self) -> None:
        rng = self.r_anom
        pool: list[tuple[str, Record]] = []
        for platform, rows in (("google", self.ads.google_rows), ("meta", self.ads.meta_rows)):
            cutoff = self.cal[platform].name(self.rows_until[platform] - 2)
            pool += [(platform, r) for r in rows if r["date"] <= cutoff]
        for platform, row in self._pick(rng, pool, self._k(len(pool), 0.002)):
            self._make_ad_mismatch(platform, row, to_ms(row["date"] + "T12:00:00+00:00"))

    def _make_ad_mismatch(self, platform: str, row: Record, t: int) -> Anomaly:
        counted = int(row["conversions"] if platform == "google" else row["leads"])
        reported = counted + max(5, math.ceil(counted * 0.5))
        _set_conversions(platform, row, reported)
        keys = {"platform": platform, "campaign_id": row["campaign_id"], "date": row["date"]}
        return self._anomaly("ad_conversion_mismatch", keys, {"reported": reported, "crm_leads": counted}, t)

    # -- finishing -------------------------------------------------------------------------------

    def finish_events(self) -> None:
        self.event_log.sort(key=lambda e: (e[0], e[1]))
        for t, _, kind, snapshot, previous, request in self.event_log:
            self._event_record(t, kind, snapshot, previous, request)
        self.event_log = []

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
        self.finish_contacts()
        self.finish_events()
        self.ad_rows()
        step(f"ads: {len(self.ads.google_rows)} google rows, {len(self.ads.meta_rows)} meta rows")
        self.store()
        step(f"stored; {len(self.anomalies)} anomalies")

    # -- the daily advance -----------------------------------------------------------------------

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
        fixable = [a for a in self.anomalies if a.active and a.kind != "crm_duplicate"]
        fixes = [a for a in fixable if rng.random() < 0.05]
        if not fixes and fixable:
            fixes = [rng.choice(fixable)]
        for a in fixes:
            when = at()  # drawn for every pick, fixed or not, so the day's other draws stay the same
            if self._fixable(a):
                add(when, self._op_fix, a)
        for _ in range(max(1, count(rate * 0.02))):
            add(at(), self._op_new_anomaly)
        return ops

    def _fixable(self, a: Anomaly) -> bool:
        """An ad mismatch is fixed only on a day the connectors still re-pull."""
        return a.kind != "ad_conversion_mismatch" or self._ad_day_open(a.keys["platform"], a.keys["date"])

    def _ad_day_open(self, platform: str, day: str) -> bool:
        """May `advance` change this ad day: one of the AD_RESTATE_DAYS local days before `now`?"""
        ordinal = date.fromisoformat(day).toordinal()
        return self.ad_open_from.get(platform, 0) <= ordinal <= self.rows_until[platform]

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
            contact = _live(self.crm.contacts, cid)
            if contact is None:
                continue
            props = contact["properties"]
            if rank.get(stage, 0) > rank.get(props.get("lifecyclestage") or "", 0):
                props["lifecyclestage"] = stage
                _stamp(contact, "lastmodifieddate", t)

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
        contact = _live(self.crm.contacts, self.persons[i].crm_contact_ids[0])
        if contact is None:
            return
        owner = self.owner_index.get(contact["properties"].get("hubspot_owner_id") or "", 0)
        bk = self._plan_booking(rng, i, owner, t)
        self.crm.meetings.put(self._booking_records(rng, bk))

    def _op_new_deal(self, t: int) -> None:
        rng = self.r_adv
        i = self._random_person(rng, lambda i, p: bool(p.crm_contact_ids) and i not in self.used)
        if i is None:
            return
        p = self.persons[i]
        contact = _live(self.crm.contacts, p.crm_contact_ids[0])
        if contact is None:
            return
        d = self._plan_deal(rng, i, "default", t, 0.0, 0.0)
        d.stage, d.id = "appointmentscheduled", self.crm.new_id()
        self.crm.deals.put(
            _deal_record(d, contact["properties"].get("hubspot_owner_id") or self.owner_ids[0], t)
        )
        self.crm.associate("contacts", contact["id"], "deals", d.id)
        self.crm.associate("deals", d.id, "companies", self.co_id[p.company_index])
        self.open_deals[d.id] = None
        self.deal_person[d.id] = i
        self._set_lifecycle(i, "opportunity", t)

    def _op_stage(self, t: int, did: str) -> None:
        deal = _live(self.crm.deals, did)
        if deal is None:
            return
        props = deal["properties"]
        stages = DEFAULT_STAGES if props.get("pipeline") == "default" else RENEWAL_STAGES
        open_ids = [s[0] for s in stages if not s[3]]
        if props.get("dealstage") in open_ids[:-1]:
            props["dealstage"] = open_ids[open_ids.index(props["dealstage"]) + 1]
            _stamp(deal, "hs_lastmodifieddate", t)

    def _op_close(self, t: int, did: str, won: bool, no_invoice: bool = False) -> bool:
        self.open_deals.pop(did, None)
        deal = _live(self.crm.deals, did)
        i = self.deal_person.get(did)
        if deal is None or i is None:
            return False
        props = deal["properties"]
        if props.get("dealstage") in WON_STAGES or props.get("dealstage") in LOST_STAGES:
            return False
        stages = DEFAULT_STAGES if props.get("pipeline") == "default" else RENEWAL_STAGES
        props["dealstage"] = stages[-2][0] if won else stages[-1][0]
        props["closedate"] = iso_ms(t)
        _stamp(deal, "hs_lastmodifieddate", t)
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
        deal = _live(self.crm.deals, did)
        i = self.deal_person.get(did)
        if did in self.deal_invoice or deal is None or i is None:
            return
        props = deal["properties"]
        if props.get("dealstage") not in WON_STAGES:
            return
        cents = _cents(props.get("amount"))
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
        deal = _live(self.crm.deals, did)
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
        inv.update(
            status="paid", paid=True, amount_paid=inv["amount_due"], amount_remaining=0, charge=charge_id
        )
        inv.update(attempted=True, attempt_count=attempts, auto_advance=False)
        inv["status_transitions"] = {**inv["status_transitions"], "paid_at": t // 1000}
        self._emit(t, "invoice.paid", inv)
        if cust.get("delinquent"):
            cust["delinquent"] = False
            self._emit(t, "customer.updated", cust, previous={"delinquent": True})

    def _op_complete(self, t: int, bk: _Booking) -> None:
        self.upcoming.pop(bk.meeting_id, None)
        meeting = _live(self.crm.meetings, bk.meeting_id)
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
        _stamp(meeting, "hs_lastmodifieddate", t)

    def _op_move(self, t: int, bk: _Booking, cancel: bool, mismatch: bool) -> Anomaly | None:
        """The invitee cancels or reschedules; the CRM follows unless `mismatch`."""
        rng = self.r_adv
        meeting = _live(self.crm.meetings, bk.meeting_id)
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
            _stamp(meeting, "hs_lastmodifieddate", t + 30 * SEC)
            return None
        self._cancel_pair(event, invitee, t, "Rescheduled", True)
        qa = invitee["questions_and_answers"]
        typed = (invitee["first_name"], invitee["last_name"], invitee["email"], qa[0]["answer"])
        topic = qa[1]["answer"] if len(qa) > 1 else None
        extras = (topic, invitee["timezone"], dict(invitee["tracking"]), invitee["text_reminder_number"])
        start = self._slot(max(bk.start, t + HOUR) + rng.randint(DAY, 7 * DAY))
        new_event, new_invitee = self._calendly_pair(bk, start, start + bk.end - bk.start, t, typed, extras)
        invitee.update(rescheduled=True, new_invitee=new_invitee["uri"])
        new_invitee["old_invitee"] = invitee["uri"]
        old_uri = bk.event_uri
        bk.start, bk.end = start, start + bk.end - bk.start
        bk.event_uri, bk.invitee_uri = new_event["uri"], new_invitee["uri"]
        if mismatch:
            detail = {"new_event_uri": new_event["uri"], "crm_start_time": props["hs_meeting_start_time"]}
            detail["calendly_start_time"] = new_event["start_time"]
            keys = {"meeting_id": bk.meeting_id, "event_uri": old_uri}
            return self._anomaly("appointment_time_mismatch", keys, detail, t)
        self._point_meeting(meeting, new_event, "RESCHEDULED", t + 30 * SEC)
        return None

    def _point_meeting(self, meeting: Record, event: Record, outcome: str, t: int) -> None:
        props = meeting["properties"]
        props["hs_meeting_start_time"] = iso_ms(to_ms(event["start_time"]))
        props["hs_meeting_end_time"] = iso_ms(to_ms(event["end_time"]))
        props["hs_timestamp"] = props["hs_meeting_start_time"]
        props["hs_meeting_external_url"] = event["uri"]
        props["hs_meeting_outcome"] = outcome
        _stamp(meeting, "hs_lastmodifieddate", t)

    def _op_cycle(self, t: int, sub_id: str) -> None:
        sub = self.billing.subscriptions.get(sub_id)
        if sub is None or sub["status"] not in ("active", "past_due"):
            return
        ps = sub["current_period_end"] * 1000
        cust = self.billing.customers.get(sub["customer"])
        if ps > t or cust is None:
            return
        pe = _add_months(ps, 1)
        price = sub["items"]["data"][0]["price"]
        unit = price["unit_amount"]
        rng = self.r_adv
        fin = t + rng.randint(SEC, 10 * MIN)
        inv = self._invoice(
            cust,
            t,
            fin,
            [(unit, _plan_line(price))],
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

    # -- anomalies appear and get fixed at the source ---------------------------------------------

    def _op_fix(self, t: int, a: Anomaly) -> None:
        if not a.active:
            return
        index = self.day_index or _Index(self)
        if self._holds(a, index, deep=False):
            getattr(self, f"_fix_{a.kind}")(t, a)
        if not self._holds(a, index, deep=False):
            a.active, a.fixed_on = False, ymd(t)

    def _op_new_anomaly(self, t: int) -> None:
        kinds = [k for k in KINDS if k != "deal_won_no_invoice"]
        self.r_adv.shuffle(kinds)
        for kind in kinds:
            if getattr(self, f"_new_{kind}")(t) is not None:
                return

    def refresh(self, day: str, deep: bool) -> _Index:
        """Mark anomalies that no longer show in the data (e.g. repaired through the APIs) fixed."""
        index = _Index(self)
        for a in self.anomalies:
            if a.active and not self._holds(a, index, deep):
                a.active, a.fixed_on = False, day
        return index

    def _holds(self, a: Anomaly, index: _Index, deep: bool) -> bool:
        keys = a.keys
        crm, billing = self.crm, self.billing
        kind = a.kind
        if kind == "deal_won_no_invoice":
            deal = _live(crm.deals, keys["deal_id"])
            return (
                deal is not None
                and deal["properties"].get("dealstage") in WON_STAGES
                and keys["deal_id"] not in self.deal_invoice
                and keys["deal_id"] not in index.invoiced
            )
        if kind == "paid_invoice_crm_not_customer":
            inv, contact = billing.invoices.get(keys["invoice_id"]), _live(crm.contacts, keys["contact_id"])
            return (
                inv is not None
                and contact is not None
                and inv["status"] == "paid"
                and contact["properties"].get("lifecyclestage") != "customer"
            )
        if kind == "invoice_amount_mismatch":
            deal, inv = _live(crm.deals, keys["deal_id"]), billing.invoices.get(keys["invoice_id"])
            if not deal or not inv:
                return False
            cents = _cents(deal["properties"].get("amount"))
            return abs(inv["total"] - cents) > 0.01 * cents
        if kind in ("appointment_time_mismatch", "appointment_status_mismatch"):
            meeting = _live(crm.meetings, keys["meeting_id"])
            if not meeting or meeting["properties"].get("hs_meeting_external_url") != keys["event_uri"]:
                return False
            return (
                kind == "appointment_time_mismatch"
                or meeting["properties"].get("hs_meeting_outcome") != "CANCELED"
            )
        if kind in ("email_mismatch", "name_mismatch", "phone_mismatch"):
            contact, cust = (
                _live(crm.contacts, keys["contact_id"]),
                billing.customers.get(keys["customer_id"]),
            )
            if not contact or not cust:
                return False
            props = contact["properties"]
            if kind == "email_mismatch":
                return _norm_email(props.get("email")) != _norm_email(cust.get("email"))
            if kind == "name_mismatch":
                crm_name = f"{props.get('firstname') or ''} {props.get('lastname') or ''}"
                return _norm_name(crm_name) != _norm_name(cust.get("name"))
            return us_e164(props.get("phone")) != us_e164(cust.get("phone"))
        if kind == "billing_orphan":
            cust = billing.customers.get(keys["customer_id"])
            linked = cust and _live(crm.contacts, cust["metadata"].get("hubspot_contact_id") or "")
            if not cust or linked:
                return False
            return not deep or _norm_email(cust.get("email")) not in index.crm_emails
        if kind == "crm_duplicate":
            first = _live(crm.contacts, keys["contact_id"])
            return first is not None and _live(crm.contacts, keys["duplicate_contact_id"]) is not None
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
        contact = _live(crm.contacts, keys["contact_id"])
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
        deal, inv = _live(self.crm.deals, a.keys["deal_id"]), self.billing.invoices.get(a.keys["invoice_id"])
        if deal and inv:
            deal["properties"]["amount"] = _dollars(inv["total"])
            _stamp(deal, "hs_lastmodifieddate", t)

    def _fix_appointment_time_mismatch(self, t: int, a: Anomaly) -> None:
        meeting = _live(self.crm.meetings, a.keys["meeting_id"])
        event = self.sched.events.get(a.detail["new_event_uri"])
        if meeting and event:
            self._point_meeting(
                meeting, event, "RESCHEDULED" if event["status"] == "active" else "CANCELED", t
            )

    def _fix_appointment_status_mismatch(self, t: int, a: Anomaly) -> None:
        meeting = _live(self.crm.meetings, a.keys["meeting_id"])
        if meeting:
            meeting["properties"]["hs_meeting_outcome"] = "CANCELED"
            _stamp(meeting, "hs_lastmodifieddate", t)

    def _fix_customer_field(self, t: int, a: Anomaly, field_name: str, value: str | None) -> None:
        cust = self.billing.customers.get(a.keys["customer_id"])
        if cust is not None:
            previous = {field_name: cust.get(field_name)}
            cust[field_name] = value
            self._emit(t, "customer.updated", cust, previous=previous, request=True)

    def _crm_props(self, a: Anomaly) -> Record:
        contact = _live(self.crm.contacts, a.keys["contact_id"])
        return contact["properties"] if contact else {}

    def _fix_email_mismatch(self, t: int, a: Anomaly) -> None:
        self._fix_customer_field(t, a, "email", _norm_email(self._crm_props(a).get("email")))

    def _fix_name_mismatch(self, t: int, a: Anomaly) -> None:
        props = self._crm_props(a)
        name = f"{(props.get('firstname') or '').strip()} {(props.get('lastname') or '').strip()}"
        self._fix_customer_field(t, a, "name", name)

    def _fix_phone_mismatch(self, t: int, a: Anomaly) -> None:
        self._fix_customer_field(t, a, "phone", self._crm_props(a).get("phone"))

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
        previous = {"metadata": cust["metadata"]}
        cust["metadata"] = {"hubspot_contact_id": record["id"]}
        self._emit(t, "customer.updated", cust, previous=previous, request=True)

    def _fix_ad_conversion_mismatch(self, t: int, a: Anomaly) -> None:
        keys = a.keys
        row = self.row_index.get((keys["platform"], keys["campaign_id"], keys["date"]))
        if row is not None and self._ad_day_open(keys["platform"], keys["date"]):
            _set_conversions(keys["platform"], row, a.detail["crm_leads"])

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
        self._emit(t, "invoice.updated", inv, previous={"charge": None})

    def _fix_malformed_date(self, t: int, a: Anomaly) -> None:
        contact = _live(self.crm.contacts, a.keys["contact_id"])
        if contact is None:
            return
        month, day, year = (int(x) for x in a.detail["value"].split("/"))
        contact["properties"]["trial_start_date"] = a.detail["parsed"] or date(year, month, day).isoformat()
        _stamp(contact, "lastmodifieddate", t)

    def _fix_malformed_phone(self, t: int, a: Anomaly) -> None:
        contact = _live(self.crm.contacts, a.keys["contact_id"])
        i = self.contact_person.get(a.keys["contact_id"])
        if contact is None or i is None:
            return
        e164 = self.persons[i].phone_e164
        contact["properties"]["phone"] = format_phone(e164, self.noise.phone_style()) if e164 else None
        _stamp(contact, "lastmodifieddate", t)

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
        if cust is None or cust["metadata"].get("hubspot_contact_id") != p.crm_contact_ids[0]:
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
        contact = _live(self.crm.contacts, self.persons[i].crm_contact_ids[0]) if i is not None else None
        if i is None or contact is None:
            return None
        anomaly = self._make_malformed_phone(self.r_adv, i, contact["properties"], t)
        _stamp(contact, "lastmodifieddate", t)
        return anomaly

    def _new_malformed_date(self, t: int) -> Anomaly | None:
        i = self._plain_person()
        contact = _live(self.crm.contacts, self.persons[i].crm_contact_ids[0]) if i is not None else None
        if i is None or contact is None:
            return None
        props = contact["properties"]
        if not props.get("trial_start_date"):
            props["trial_start_date"] = ymd(t + self.r_adv.randint(0, 14) * DAY)
        anomaly = self._make_malformed_date(self.r_adv, i, props, t)
        _stamp(contact, "lastmodifieddate", t)
        return anomaly

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
            deal = _live(self.crm.deals, did)
            inv = self.billing.invoices.get(self.deal_invoice.get(did, ""))
            if did in taken or deal is None or inv is None:
                continue
            cents = _cents(deal["properties"].get("amount"))
            if abs(inv["total"] - cents) > 0.01 * cents:
                continue
            changed = max(5000, round(cents * rng.uniform(1.05, 1.3) / 5000) * 5000)
            deal["properties"]["amount"] = _dollars(changed)
            _stamp(deal, "hs_lastmodifieddate", t)
            detail = {"deal_amount": _dollars(changed), "invoice_total": inv["total"]}
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

    # -- ad rows for new days --------------------------------------------------------------------

    def _extend_ad_rows(self, until: int) -> None:
        """Rows for the local days before the one `until` falls on, with their waiting leads."""
        for platform in ("google", "meta"):
            cal = self.cal[platform]
            camps = self.campaigns[platform]
            active_on = self.day_active[platform]
            counts = self.leads[platform]
            rows = self.ads.google_rows if platform == "google" else self.ads.meta_rows
            today = cal.ordinal(until)
            for o in range(self.rows_until[platform] + 1, today + 1):
                if o not in active_on:
                    active_on[o] = [k for k, c in enumerate(camps) if c.start_ord <= o <= c.end_ord]
            waiting = self.waiting[platform]
            for o in range(self.rows_until[platform] + 1, today):
                day = cal.name(o)
                for k in active_on[o]:
                    row = self._ad_row(platform, camps[k], day, counts.pop((k, o), 0))
                    for bump in waiting.pop((k, o), []):
                        self._bump_row(platform, row, bump)
                    rows.append(row)
                self.rows_until[platform] = o

    def _bump_draws(self) -> tuple[int, int]:
        """A new paid lead's extra clicks and impressions per click."""
        clicks = self.r_adv.randint(3, 12)
        return clicks, self.r_adv.randint(15, 60)

    def _bump_row(self, platform: str, row: Record, bump: tuple[int, int]) -> None:
        clicks, per_click = bump
        if platform == "google":
            cpc = row["cost_micros"] // max(1, row["clicks"])
            row["cost_micros"] += clicks * cpc
            _set_conversions(platform, row, int(row["conversions"]) + 1)
        else:
            cents = _cents(row["spend"])
            row["spend"] = _dollars(cents + clicks * (cents // max(1, row["clicks"])))
            row["leads"] += 1
        row["impressions"] += clicks * per_click
        row["clicks"] += clicks


class _Index:
    """Lookups a refresh needs, built on first use."""

    def __init__(self, engine: _Engine) -> None:
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
                _norm_email(c["properties"].get("email"))
                for c in self.engine.crm.contacts
                if not c.get("archived")
            }
        return self._emails


def _live(collection: Collection, record_id: str) -> Record | None:
    """A CRM record unless it is missing or archived (archived records stay in the collection)."""
    record = collection.get(record_id)
    return None if record is None or record.get("archived") else record


def _norm_email(value: str | None) -> str:
    return (value or "").strip().lower()


def _norm_name(value: str | None) -> str:
    return " ".join((value or "").split()).lower()


_DIGITS = re.compile(r"\D")


def us_e164(text: str | None) -> str | None:
    """The simple US-number parser: ten digits (or eleven starting with 1) -> E.164, else None."""
    digits = _DIGITS.sub("", text or "")
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1":
        return "+" + digits
    return None


def _cents(amount: str | None) -> int:
    try:
        return round(float(amount or 0) * 100)
    except ValueError:
        return 0


def _dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _plan_line(price: Record) -> str:
    """Stripe's line text for one period of a subscription to `price`."""
    return f"1 \u00d7 {price.get('nickname') or 'Plan'} (at ${price['unit_amount'] / 100:.2f} / month)"


def _set_conversions(platform: str, row: Record, value: int) -> None:
    if platform == "google":
        row["conversions"] = float(value)
        row["conversions_value"] = round(value * 120.0, 2)
    else:
        row["leads"] = value


def _stamp(record: Record, prop: str, t: int) -> None:
    """Give a CRM record a fresh modification time, never earlier than its previous one."""
    props = record["properties"]
    stamp = iso_ms(t)
    old = props.get(prop)
    if old and stamp <= old:
        stamp = iso_ms(to_ms(old) + 1)
    props[prop] = stamp
    record["updatedAt"] = stamp


def _pipeline(
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


def _deal_record(d: _Deal, owner: str, mod: int) -> Record:
    return {
        "id": d.id,
        "properties": {
            "dealname": d.name,
            "amount": _dollars(d.cents),
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


def _meeting_record(
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


# ---------------------------------------------------------------------------------------------
# public API


def generate(
    seed: int = 7,
    contacts: int = 2000,
    noise: float = 1.0,
    anchor: datetime = DEFAULT_ANCHOR,
    progress: Callable[[str], None] | None = None,
) -> World:
    """Build the whole sandbox world (see sandbox/WORLD.md); deterministic from the arguments."""
    if contacts < 100:
        raise ValueError("a world needs at least 100 contacts")
    if anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    world = World(seed=seed, contacts_target=contacts, now=anchor)
    engine = _Engine(world, seed, contacts, noise, anchor)
    world.truth = GroundTruth(seed, contacts, noise, anchor, engine.persons, engine.anomalies, engine)
    # Millions of small containers: cyclic GC passes during the build would only slow it down.
    # A large world is long-lived and free of reference cycles, so it is then frozen out of the
    # collector's reach (otherwise the next collections walk all of it: tens of seconds at 1M).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        engine.build(progress or (lambda _line: None))
    finally:
        if was_enabled:
            if contacts >= FREEZE_ABOVE:
                gc.freeze()
            gc.enable()
    return world


def truth_summary(world: World) -> dict[str, Any]:
    """Counts per anomaly kind (active and fixed), for logs."""
    truth: GroundTruth = world.truth
    kinds: dict[str, dict[str, int]] = {k: {"active": 0, "fixed": 0} for k in KINDS}
    for a in truth.anomalies:
        kinds.setdefault(a.kind, {"active": 0, "fixed": 0})["active" if a.active else "fixed"] += 1
    return {
        "persons": len(truth.persons),
        "anomalies": len(truth.anomalies),
        "active": sum(k["active"] for k in kinds.values()),
        "fixed": sum(k["fixed"] for k in kinds.values()),
        "kinds": kinds,
    }


def record_counts(world: World) -> dict[str, int]:
    """Records per collection, as meta.json and the benchmark report them."""
    crm, billing, sched, ads = world.crm, world.billing, world.scheduling, world.ads
    return {
        "crm.owners": len(crm.owners),
        "crm.pipelines": len(crm.pipelines),
        "crm.companies": len(crm.companies),
        "crm.contacts": len(crm.contacts),
        "crm.deals": len(crm.deals),
        "crm.meetings": len(crm.meetings),
        "crm.associations": sum(len(v) for k, m in crm.associations.items() for v in m.values()) // 2,
        "billing.customers": len(billing.customers),
        "billing.invoices": len(billing.invoices),
        "billing.payment_intents": len(billing.payment_intents),
        "billing.charges": len(billing.charges),
        "billing.subscriptions": len(billing.subscriptions),
        "billing.events": len(billing.events),
        "scheduling.users": len(sched.users),
        "scheduling.events": len(sched.events),
        "scheduling.invitees": len(sched.invitees),
        "ads.google_customers": len(ads.google_customers),
        "ads.google_campaigns": len(ads.google_campaigns),
        "ads.google_rows": len(ads.google_rows),
        "ads.meta_accounts": len(ads.meta_accounts),
        "ads.meta_campaigns": len(ads.meta_campaigns),
        "ads.meta_rows": len(ads.meta_rows),
    }


def advance(world: World, days: int = 1) -> None:
    """Move the business forward `days` days: new leads, deals, payments, meetings, anomalies."""
    engine: _Engine = world.truth.engine
    for _ in range(days):
        engine.advance_day(world)


def write_truth(world: World, directory: Path) -> None:
    """Write identities.jsonl, anomalies.jsonl and meta.json into `directory`."""
    truth: GroundTruth = world.truth
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dumps = json.dumps
    with open(directory / "identities.jsonl", "w", encoding="utf-8") as out:
        batch: list[str] = []
        for person in truth.persons:
            batch.append(dumps(person.identity()))
            if len(batch) >= 10_000:
                out.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            out.write("\n".join(batch) + "\n")
    with open(directory / "anomalies.jsonl", "w", encoding="utf-8") as out:
        for anomaly in truth.anomalies:
            out.write(dumps(anomaly.as_dict()) + "\n")
    meta = {
        "seed": truth.seed,
        "contacts": truth.contacts,
        "noise": truth.noise,
        "anchor": truth.anchor.isoformat(),
        "now": world.now.isoformat(),
        "counts": record_counts(world),
        "anomalies": truth_summary(world)["kinds"],
    }
    (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
