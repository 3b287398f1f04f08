"""In-memory state of the sandbox business world, shaped as the real APIs serve it."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.accounts import AccountSetup

Record = dict[str, Any]
# Told of every write to a collection: the records written, or None after `touch` (records
# changed in place, unknown which). Called under the world lock; must not block.
ChangeListener = Callable[[list[Record] | None], None]


class _View:
    """One sorted view: keys ascending with their ids, and the ids written since it was built
    (None: rebuild it whole)."""

    __slots__ = ("dirty", "ids", "keys")

    def __init__(self, keys: list[Any], ids: list[str]) -> None:
        self.keys, self.ids = keys, ids
        self.dirty: set[str] | None = set()


class Collection:
    """Records keyed by one field, with cached sorted views that writes bring up to date.

    Views are built on first use, so bulk generation pays for one sort and paging a million
    records stays a bisect per page. A `put` marks its record in every view; the next read of
    a view re-keys only the marked records and merges them into the sorted rest (writes made
    through the APIs touch a few records of a million); `touch` (records changed in place,
    unknown which) rebuilds the views whole.
    """

    def __init__(self, key: str = "id") -> None:
        self.key = key
        self._records: dict[str, Record] = {}
        self._views: dict[str, _View] = {}
        self.version = 0
        self.listeners: list[ChangeListener] = []

    def put(self, record: Record) -> None:
        """Store a new record, or a changed one (a new object or the same one changed in place)."""
        self.put_many((record,))

    def put_many(self, records: Iterable[Record]) -> None:
        written = []
        stored: list[Record] | None = [] if self.listeners else None
        for record in records:
            record_id = str(record[self.key])
            self._records[record_id] = record
            written.append(record_id)
            if stored is not None:
                stored.append(record)
        for view in self._views.values():
            if view.dirty is not None:
                view.dirty.update(written)
                if len(view.dirty) > len(self._records) // 4:
                    view.dirty = None  # most of it changed: a whole rebuild is cheaper
        self.version += 1
        if stored:
            for listener in self.listeners:
                listener(stored)

    def touch(self) -> None:
        """Records were changed in place: rebuild every view on its next read."""
        for view in self._views.values():
            view.dirty = None
        self.version += 1
        for listener in self.listeners:
            listener(None)

    def get(self, record_id: str) -> Record | None:
        return self._records.get(str(record_id))

    def __contains__(self, record_id: object) -> bool:
        return str(record_id) in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records.values())

    def ids(self) -> list[str]:
        return list(self._records)

    def view(self, name: str, sort_key: Callable[[Record], Any]) -> tuple[list[Any], list[str]]:
        """Return (sorted keys, ids in that order) for a named sort, bringing it up to date."""
        view = self._views.get(name)
        if view is not None and view.dirty is not None and not view.dirty:
            return view.keys, view.ids
        if view is None or view.dirty is None:
            pairs = sorted((sort_key(r), rid) for rid, r in self._records.items())
        else:
            dirty = view.dirty
            pairs = [pair for pair in zip(view.keys, view.ids, strict=True) if pair[1] not in dirty]
            pairs += [(sort_key(self._records[rid]), rid) for rid in dirty if rid in self._records]
            pairs.sort()  # one long sorted run and a short tail: a merge, not a full sort
        view = _View([p[0] for p in pairs], [p[1] for p in pairs])
        self._views[name] = view
        return view.keys, view.ids

    def page_after(
        self, name: str, sort_key: Callable[[Record], Any], after: Any, limit: int
    ) -> tuple[list[Record], Any | None]:
        """Records whose sort key is strictly greater than `after`; returns (page, next cursor)."""
        keys, ids = self.view(name, sort_key)
        start = 0 if after is None else bisect.bisect_right(keys, after)
        chunk = ids[start : start + limit]
        records = [self._records[i] for i in chunk]
        more = start + limit < len(ids)
        return records, (keys[start + limit - 1] if more and chunk else None)


@dataclass
class CrmState:
    """HubSpot-shaped objects: every property value is a string (or None)."""

    contacts: Collection = field(default_factory=Collection)
    companies: Collection = field(default_factory=Collection)
    deals: Collection = field(default_factory=Collection)
    meetings: Collection = field(default_factory=Collection)
    owners: list[Record] = field(default_factory=list)
    pipelines: list[Record] = field(default_factory=list)
    # (from_type, to_type) -> from_id -> [to_id, ...]; both directions are stored.
    associations: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    next_id: int = 1

    def objects(self, object_type: str) -> Collection | None:
        return {
            "contacts": self.contacts,
            "companies": self.companies,
            "deals": self.deals,
            "meetings": self.meetings,
        }.get(object_type)

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        forward = self.associations.setdefault((from_type, to_type), {})
        backward = self.associations.setdefault((to_type, from_type), {})
        if to_id not in forward.setdefault(from_id, []):
            forward[from_id].append(to_id)
        if from_id not in backward.setdefault(to_id, []):
            backward[to_id].append(from_id)

    def associated(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        return self.associations.get((from_type, to_type), {}).get(str(from_id), [])

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)


@dataclass
class BillingState:
    """Stripe-shaped objects (API version pinned in `sandbox.apps.stripe`)."""

    customers: Collection = field(default_factory=Collection)
    invoices: Collection = field(default_factory=Collection)
    charges: Collection = field(default_factory=Collection)
    payment_intents: Collection = field(default_factory=Collection)
    subscriptions: Collection = field(default_factory=Collection)
    events: Collection = field(default_factory=Collection)

    def objects(self, name: str) -> Collection | None:
        return {
            "customers": self.customers,
            "invoices": self.invoices,
            "charges": self.charges,
            "payment_intents": self.payment_intents,
            "subscriptions": self.subscriptions,
            "events": self.events,
        }.get(name)


@dataclass
class SchedulingState:
    """Calendly-shaped objects keyed by their URI."""

    organization: str = "https://api.calendly.com/organizations/TRUEUPSANDBOXORG"
    users: list[Record] = field(default_factory=list)
    events: Collection = field(default_factory=lambda: Collection(key="uri"))
    invitees: Collection = field(default_factory=lambda: Collection(key="uri"))
    invitees_by_event: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class AdsState:
    """Google Ads rows (REST/JSON camelCase) and Meta insights rows, by account."""

    google_customers: list[Record] = field(default_factory=list)
    google_campaigns: list[Record] = field(default_factory=list)
    # one compact row per campaign and day (see WORLD.md); the app renders searchStream rows
    google_rows: list[Record] = field(default_factory=list)
    meta_accounts: list[Record] = field(default_factory=list)
    meta_campaigns: list[Record] = field(default_factory=list)
    # one compact row per campaign and day (see WORLD.md); the app renders /insights rows
    meta_rows: list[Record] = field(default_factory=list)


@dataclass
class World:
    """The whole sandbox business: four systems' state, the clock and the ground truth."""

    seed: int
    contacts_target: int
    now: datetime
    crm: CrmState = field(default_factory=CrmState)
    billing: BillingState = field(default_factory=BillingState)
    scheduling: SchedulingState = field(default_factory=SchedulingState)
    ads: AdsState = field(default_factory=AdsState)
    setup: AccountSetup = field(default_factory=AccountSetup)  # how the accounts are set up
    truth: Any = None
    # The writes the APIs applied for callers (sandbox/WORLD.md, "The write log"): one entry
    # per record a write changed or set, in the order applied; read through /_admin/writes.
    write_log: list[Record] = field(default_factory=list, repr=False)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _anchor: float = field(default_factory=time.monotonic, repr=False)

    def clock(self) -> datetime:
        """World time: `now` plus the wall time since `now` was last set (writes stamp this)."""
        return self.now + timedelta(seconds=time.monotonic() - self._anchor)

    def local_today(self, zone_name: Any) -> date:
        """Today in an ad account's time zone (UTC when it names none or an unknown one)."""
        try:
            zone = ZoneInfo(str(zone_name or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return self.clock().astimezone(zone).date()

    def log_write(
        self, system: str, object_type: str, record_id: str, fields: dict[str, Any], key: str | None = None
    ) -> None:
        """Note one applied write (called under the world lock by the apps' write endpoints)."""
        self.write_log.append(
            {
                "seq": len(self.write_log) + 1,
                "system": system,
                "object_type": object_type,
                "record_id": str(record_id),
                "fields": dict(fields),
                "idempotency_key": key,
                "at": self.clock().isoformat(),
            }
        )

    def set_now(self, now: datetime) -> None:
        self.now = now
        self._anchor = time.monotonic()
