"""Shared pieces of the world generator: the clock and its formats, identifiers, noise."""

from __future__ import annotations

import random
import re
from base64 import b32encode, b64encode
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from anyascii import anyascii

from sandbox import names
from sandbox.store import Collection, Record

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

EVENT_TYPES = (("30 Minute Discovery Call", 30), ("Product Demo", 45))

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
    "malformed_value",
)

_HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

_MS3 = [f".{i:03d}" for i in range(1000)]

_DAY_STR: dict[int, str] = {}

_EPOCH = date(1970, 1, 1)


def day_str(day: int) -> str:
    text = _DAY_STR.get(day)
    if text is None:
        text = _DAY_STR[day] = (_EPOCH + timedelta(days=day)).isoformat()
    return text


def iso_ms(t: int) -> str:
    """HubSpot timestamp: ISO-8601 UTC with milliseconds."""
    s = t // 1000
    return f"{day_str(s // 86400)}T{_HMS[s % 86400]}{_MS3[t % 1000]}Z"


def iso_us(t: int) -> str:
    """Calendly timestamp: ISO-8601 UTC with microseconds."""
    s = t // 1000
    return f"{day_str(s // 86400)}T{_HMS[s % 86400]}{_MS3[t % 1000]}000Z"


def ymd(t: int) -> str:
    return day_str(t // DAY)


def to_ms(value: datetime | str) -> int:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def meta_time(t: int) -> str:
    return iso_ms(t)[:19] + "+0000"


class LocalDays:
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


def add_months(t: int, months: int) -> int:
    moment = datetime.fromtimestamp(t / 1000, UTC)
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    days = (date(year + month // 12, month % 12 + 1, 1) - date(year, month, 1)).days
    return to_ms(moment.replace(year=year, month=month, day=min(moment.day, days)))


_TO_BASE62 = str.maketrans("+/", "xQ")


class Ids:
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


_SLUGS: dict[str, str] = {}

_NON_ALNUM = re.compile(r"[^a-z0-9]")


def slugify(text: str) -> str:
    slug = _SLUGS.get(text)
    if slug is None:
        slug = _SLUGS[text] = _NON_ALNUM.sub("", anyascii(text).lower())
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


def format_international(e164: str, country: str, style: int) -> str:
    """One of the ways a number of `country` is written: +CC grouped (0), 00CC grouped (1),
    E.164 (2), 00CC and the digits (3), or the national format with its trunk prefix (4),
    which reads only where the region is known."""
    _, _, dial, trunk, _, _, groups = names.INTERNATIONAL[country]
    national = e164[1 + len(dial) :]
    parts, at = [], 0
    for size in groups:
        if at < len(national):
            parts.append(national[at : at + size])
            at += size
    if at < len(national):
        parts.append(national[at:])
    grouped = " ".join(parts)
    if style == 0:
        return f"+{dial} {grouped}"
    if style == 1:
        return f"00{dial} {grouped}"
    if style == 2:
        return e164
    if style == 3:
        return f"00{dial}{national}"
    return f"{trunk}{grouped}"


def with_typo(rng: random.Random, word: str) -> str:
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


class Noise:
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


def live_record(collection: Collection, record_id: str) -> Record | None:
    """A CRM record unless it is missing or archived (archived records stay in the collection)."""
    record = collection.get(record_id)
    return None if record is None or record.get("archived") else record


def norm_email(value: str | None) -> str:
    return (value or "").strip().lower()


def norm_name(value: str | None) -> str:
    """Case, accents and spacing aside: "  JÜRGEN Weiß" is "jurgen weiss"."""
    return " ".join(anyascii(value or "").split()).lower()


_DIGITS = re.compile(r"\D")


def us_e164(text: str | None) -> str | None:
    """The simple US-number parser: ten digits (or eleven starting with 1) -> E.164, else None."""
    digits = _DIGITS.sub("", text or "")
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1":
        return "+" + digits
    return None


def phone_e164(text: str | None, country: str | None = None) -> str | None:
    """The number a phone text means (read in `country` where it has no country code), or
    None: how the world tells whether two systems hold the same phone."""
    import phonenumbers

    if not text or not text.strip():
        return None
    candidates: list[tuple[str, str | None]] = [(text, country or "US")]
    if text.strip().startswith("00"):
        candidates.append(("+" + text.strip()[2:], None))
    for candidate, region in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return us_e164(text)


def to_cents(amount: str | None) -> int:
    try:
        return round(float(amount or 0) * 100)
    except (ValueError, OverflowError):  # no number, NaN or an infinity
        return 0


def to_dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def stamp_modified(record: Record, prop: str, t: int) -> None:
    """Give a CRM record a fresh modification time, never earlier than its previous one."""
    props = record["properties"]
    stamp = iso_ms(t)
    old = props.get(prop)
    if old and stamp <= old:
        stamp = iso_ms(to_ms(old) + 1)
    props[prop] = stamp
    record["updatedAt"] = stamp
