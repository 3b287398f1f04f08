"""The completeness audit: what each source holds, compared with raw, key by key.

Each resource is listed as cheaply as its API allows (HubSpot: the list endpoint with only
the last-modified property; Stripe: its lists; Calendly: the events list, whose events count
their invitees; Google Ads and Meta: only the keys of the report rows). A record at the
source that raw lacks, or holds in an older version, is fetched again by id in an ingest run
that follows at once; the audit then compares again and records, per resource, what it found
and what is still missing (`audit.completeness`, read by the report and a Dagster check).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingestion.tables import SYSTEMS, dataset_name
from ingestion.warehouse import Paths, paths

if TYPE_CHECKING:  # pragma: no cover
    from ingestion.sqlconn import Target

log = logging.getLogger(__name__)

SCHEMA = "audit"
TABLE = "completeness"
# Requests each API allows a day, to put an audit's cost in proportion (published limits of
# the usual plans; a business on another plan reads the requests column).
DAILY_BUDGET = {
    "crm": 250_000,  # HubSpot Free/Starter private apps (500,000 on Professional/Enterprise)
    "billing": 100 * 86_400,  # Stripe publishes no daily cap: 100 read requests a second
    "scheduling": 500 * 1_440,  # Calendly paid plans: 500 requests a minute
    "ads": 15_000,  # Google Ads basic access: 15,000 operations a day (Meta counts by the hour)
}

Stamp = Any  # a comparable version (epoch ms, unix seconds, ISO text) or None: keys only


@dataclass
class Listing:
    """What the source holds of one resource: key -> version stamp (None: compare keys only)."""

    system: str
    resource: str
    stamps: dict[str, Stamp]
    requests: int = 0
    seconds: float = 0.0
    # keys of records that hold fewer children than the source counts (Calendly invitees)
    short: set[str] = field(default_factory=set)


@dataclass
class ResourceAudit:
    system: str
    resource: str
    at_source: int
    in_raw: int
    missing: int  # at the source, not in raw (nor in open quarantine)
    stale: int  # in raw in an older version
    refetched: int  # keys fetched again by the run that followed
    remaining: int  # still missing or stale afterwards
    requests: int  # requests the listing took
    seconds: float
    audited_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def budget_share(self) -> float:
        """The listing's requests as a share of the API's daily budget."""
        return self.requests / DAILY_BUDGET[self.system]


# -- listing each source -------------------------------------------------------------------


def _client(system: str, name: str, base_key: str, token_key: str, **kwargs: Any) -> Any:
    import dlt

    from ingestion.http import ApiClient

    base: str | None = dlt.config.get(f"sources.{system}.{base_key}")
    token: str | None = dlt.secrets.get(f"sources.{system}.{token_key}")
    if not base or not token:
        raise ValueError(f"{system}: sources.{system}.{base_key} and {token_key} must be configured")
    return ApiClient(name, str(base), str(token), **kwargs)


def _timed(system: str, resource: str, client: Any, stamps: Callable[[], dict[str, Stamp]]) -> Listing:
    """List one resource; one the account cannot read (a 403, an unused object type) is left
    out of the audit, as the ingest skips it."""
    from ingestion.guard import skip_reason
    from ingestion.http import ApiError

    before, started = client.stats.requests, time.monotonic()
    try:
        found = stamps()
    except ApiError as exc:
        reason = skip_reason(exc)
        if reason is None:
            raise
        log.warning("audit: %s.%s skipped: %s", system, resource, reason[0])
        found = {}
    return Listing(system, resource, found, client.stats.requests - before, time.monotonic() - started)


def list_crm() -> list[Listing]:
    from ingestion.crm import helpers
    from ingestion.crm.settings import LIST_PAGE_SIZE, OBJECTS, OBJECTS_PATH
    from ingestion.http import hubspot_rolling, hubspot_window

    listings = []
    with _client(
        "crm", "crm", "base_url", "access_token", window=hubspot_window, rolling=hubspot_rolling
    ) as api:
        for obj in OBJECTS:
            params = {"limit": LIST_PAGE_SIZE, "properties": obj.modified, "archived": "false"}
            path = OBJECTS_PATH.format(object_type=obj.name)

            def stamps(obj: Any = obj, params: dict[str, Any] = params, path: str = path) -> dict[str, Stamp]:
                return {
                    str(r["id"]): helpers.modified_ms(r, obj)
                    for page in helpers.list_pages(api, path, params)
                    for r in page
                    if isinstance(r, dict) and r.get("id") is not None
                }

            listings.append(_timed("crm", obj.name, api, stamps))
    return listings


def list_billing() -> list[Listing]:
    import dlt

    from ingestion.billing import helpers
    from ingestion.billing.settings import PAGE_SIZE, RESOURCES, STRIPE_VERSION, check_version

    listings = []
    # the version the business reads in: a resource newer than it (invoice payments) is not listed
    version = check_version(dlt.config.get("sources.billing.stripe_version") or STRIPE_VERSION)
    headers = {"Stripe-Version": version}
    with _client("billing", "billing", "base_url", "access_token", headers=headers) as api:
        for spec in RESOURCES:
            if not spec.served_in(version):
                continue

            def stamps(spec: Any = spec) -> dict[str, Stamp]:
                return {
                    r["id"]: helpers.version_of(r)
                    for page in helpers.list_pages(api, spec.path, spec.list_params, PAGE_SIZE)
                    for r in page
                    if isinstance(r, dict) and isinstance(r.get("id"), str)
                }

            listings.append(_timed("billing", spec.name, api, stamps))
    return listings


def list_scheduling() -> list[Listing]:
    """Events with their `updated_at`; an event counting more invitees than raw holds marks its
    invitees short (they come again with the event)."""
    import dlt

    from ingestion.http import calendly_window
    from ingestion.scheduling import helpers
    from ingestion.scheduling.settings import EVENTS_PATH, PAGE_SIZE, STATUSES

    events: dict[str, Stamp] = {}
    counted: dict[str, int] = {}
    with _client("scheduling", "scheduling", "base_url", "access_token", window=calendly_window) as api:
        before, started = api.stats.requests, time.monotonic()
        organization: str = dlt.config.get("sources.scheduling.organization") or helpers.organization_of(
            helpers.me(api)
        )
        for status in STATUSES:
            params = {
                "organization": organization,
                "count": PAGE_SIZE,
                "sort": "start_time:asc",
                "status": status,
            }
            for page in helpers.pages(api, EVENTS_PATH, params):
                for event in page:
                    if isinstance(event, dict) and isinstance(event.get("uri"), str):
                        events[event["uri"]] = _instant(event.get("updated_at"))
                        total = (event.get("invitees_counter") or {}).get("total")
                        counted[event["uri"]] = total if isinstance(total, int) else 0
        requests, seconds = api.stats.requests - before, time.monotonic() - started
    invitees = Listing("scheduling", "invitees", {uri: count for uri, count in counted.items()}, 0, 0.0)
    return [Listing("scheduling", "scheduled_events", events, requests, seconds), invitees]


def list_ads(today: Callable[[Any], date] | None = None) -> list[Listing]:
    """The keys of every report row (account, campaign, day) over the history the connector
    keeps, plus the accounts' campaigns."""
    import dlt

    from ingestion.ads import settings as s

    version: str = dlt.config.get("sources.ads.google_api_version") or s.GOOGLE_API_VERSION
    meta_version: str = dlt.config.get("sources.ads.meta_api_version") or s.META_API_VERSION
    developer: str = dlt.secrets.get("sources.ads.google_developer_token") or ""
    listings: list[Listing] = []
    with _client(
        "ads", "google-ads", "google_base_url", "google_access_token", headers={"developer-token": developer}
    ) as google:
        listings.append(
            _timed("ads", "google_campaign_metrics", google, lambda: _google_keys(google, version))
        )
    with _client("ads", "meta", "meta_base_url", "meta_access_token", auth="query") as meta:
        listings.append(_timed("ads", "meta_campaign_insights", meta, lambda: _meta_keys(meta, meta_version)))
    return listings


def _google_keys(client: Any, version: str) -> dict[str, Stamp]:
    from ingestion.ads import helpers
    from ingestion.ads import settings as s

    keys: dict[str, Stamp] = {}
    for cid in helpers.accessible_customers(client, version):
        customer = helpers.search_stream(client, version, cid, s.GOOGLE_CUSTOMER_QUERY)
        zone = ((customer[0] if customer else {}).get("customer") or {}).get("timeZone")
        since, until = _history(client, zone)
        query = (
            "SELECT campaign.id, segments.date FROM campaign WHERE segments.date BETWEEN "
            f"'{since.isoformat()}' AND '{until.isoformat()}'"
        )
        for row in helpers.search_stream(client, version, cid, query):
            campaign, day = (row.get("campaign") or {}).get("id"), (row.get("segments") or {}).get("date")
            if campaign is not None and day:
                keys[f"{cid}/{campaign}/{day}"] = None
    return keys


def _meta_keys(client: Any, version: str) -> dict[str, Stamp]:
    import json

    from ingestion.ads import helpers
    from ingestion.ads import settings as s

    keys: dict[str, Stamp] = {}
    listed = helpers.graph_pages(
        client, f"/{version}/me/adaccounts", {"fields": "account_id,timezone_name", "limit": 100}
    )
    accounts = helpers.once_each([a for page in listed for a in page], helpers.meta_account_id)
    for account in accounts:
        digits = helpers.meta_account_id(account)
        if digits is None:
            continue
        since, until = _history(client, account.get("timezone_name"))
        params = {
            "level": "campaign",
            "time_increment": 1,
            "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
            "fields": "campaign_id,date_start",
            "limit": s.META_PAGE_SIZE,
        }
        for page in helpers.graph_pages(client, f"/{version}/act_{digits}/insights", params):
            for row in page:
                if isinstance(row, dict) and row.get("campaign_id") and row.get("date_start"):
                    keys[f"{digits}/{row['campaign_id']}/{row['date_start']}"] = None
    return keys


def _history(client: Any, zone: str | None) -> tuple[date, date]:
    """The report days the connector keeps for an account: from its start to the last complete
    day in the account's time zone, by the platform's clock."""
    import dlt

    from ingestion.ads import helpers
    from ingestion.ads import settings as s

    now = client.server_now() or datetime.now(UTC)
    configured: str | None = dlt.config.get("sources.ads.start_date")
    start = (
        date.fromisoformat(str(configured)) if configured else now.date() - timedelta(days=s.START_DAYS_BACK)
    )
    return start, helpers.local_yesterday(now, zone)


def _instant(value: Any) -> Stamp:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


LISTERS: dict[str, Callable[[], list[Listing]]] = {
    "crm": list_crm,
    "billing": list_billing,
    "scheduling": list_scheduling,
    "ads": list_ads,
}


# -- comparing with raw --------------------------------------------------------------------

# resource -> (SQL of the key, SQL of the version stamp or None)
RAW_KEYS: dict[str, dict[str, tuple[str, str | None]]] = {
    "crm": {
        "contacts": ("id", "properties__lastmodifieddate"),
        "companies": ("id", "properties__hs_lastmodifieddate"),
        "deals": ("id", "properties__hs_lastmodifieddate"),
        "meetings": ("id", "properties__hs_lastmodifieddate"),
    },
    "billing": {
        name: ("id", "_version_at")
        for name in (
            "customers",
            "invoices",
            "charges",
            "payment_intents",
            "subscriptions",
            "invoice_payments",
        )
    },
    "scheduling": {"scheduled_events": ("uri", "updated_at")},
    "ads": {
        "google_campaign_metrics": ("customer__id || '/' || campaign__id || '/' || segments__date", None),
        "meta_campaign_insights": ("account_id || '/' || campaign_id || '/' || date_start", None),
    },
}


@dataclass
class Gap:
    listing: Listing
    in_raw: int
    missing: list[str]
    stale: list[str]

    def to_refetch(self) -> list[str]:
        return [*self.missing, *self.stale]


def compare(con: Any, listing: Listing) -> Gap:
    """Keys the source holds that raw lacks (and are not held back in quarantine), and keys raw
    holds in an older version."""
    schema = dataset_name(listing.system)
    present = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [schema]
        ).fetchall()
    }
    if listing.resource == "invitees":
        return _compare_invitees(con, listing, schema, present)
    key_sql, stamp_sql = RAW_KEYS[listing.system][listing.resource]
    raw: dict[str, Any] = {}
    if listing.resource in present:
        select = f'select {key_sql}, {stamp_sql or "null"} from "{schema}"."{listing.resource}"'
        raw = {str(k): v for k, v in con.execute(select).fetchall() if k is not None}
    quarantined: set[str] = set()  # held back by their contract (open, or accepted as they are)
    if "_quarantine" in present:
        sql = f'select distinct record_key from "{schema}"."_quarantine" where resource = ?'
        quarantined = {str(r[0]) for r in con.execute(sql, [listing.resource]).fetchall()}
    missing, stale = [], []
    for key, stamp in listing.stamps.items():
        if key not in raw:
            if key not in quarantined:
                missing.append(key)
        elif _older(listing.system, raw[key], stamp):
            stale.append(key)
    return Gap(listing, len(raw), missing, stale)


def _compare_invitees(con: Any, listing: Listing, schema: str, present: set[str]) -> Gap:
    """Events whose invitees raw holds fewer of than the event counts."""
    held: dict[str, int] = {}
    if "invitees" in present:
        held = {
            str(e): int(n)
            for e, n in con.execute(
                f'select event, count(*) from "{schema}"."invitees" group by 1'
            ).fetchall()
        }
    short = [
        uri for uri, total in listing.stamps.items() if isinstance(total, int) and held.get(uri, 0) < total
    ]
    listing.short = set(short)
    return Gap(listing, sum(held.values()), short, [])


def _older(system: str, raw: Any, source: Any) -> bool:
    if raw is None or source is None:
        return False
    if system == "crm":
        from ingestion.crm.helpers import epoch_ms

        held = epoch_ms(raw)
        return held is not None and held < int(source)
    if system == "scheduling":
        held = _instant(raw)
        return held is not None and held < source
    try:
        return bool(raw < source)
    except TypeError:
        return False


# -- the audit -----------------------------------------------------------------------------


def refetch_arguments(gaps: Iterable[Gap]) -> dict[str, dict[str, list[str]]]:
    """Source arguments that make the next run fetch the gaps again (system -> `refetch`)."""
    refetch: dict[str, dict[str, list[str]]] = {}
    for gap in gaps:
        keys = gap.to_refetch()
        if not keys:
            continue
        system, resource = gap.listing.system, gap.listing.resource
        if resource == "invitees":
            resource = "scheduled_events"  # an event brings its invitees
        if system == "ads":
            keys = [_account_day(k) for k in keys]
        refetch.setdefault(system, {}).setdefault(resource, []).extend(dict.fromkeys(keys))
    return refetch


def _account_day(key: str) -> str:
    account, _, rest = key.partition("/")
    return f"{account}/{rest.rpartition('/')[2]}"


def run_audit(
    systems: Sequence[str] = SYSTEMS,
    where: Paths | None = None,
    report: Callable[[str], None] | None = None,
    listers: dict[str, Callable[[], list[Listing]]] | None = None,
) -> list[ResourceAudit]:
    """List each source, compare with raw, fetch the gaps again in an ingest run, compare again,
    and record the figures (`audit.completeness`). The caller holds the writer lock."""
    from ingestion import sqlconn
    from ingestion.pipeline import IngestError, run_systems

    where = where or paths()
    say = report or log.info
    listings = []
    for system in systems:
        say(f"audit: listing {system} ...")
        listings.extend((listers or LISTERS)[system]())
    with sqlconn.connect(where, read_only=True) as con:
        gaps = [compare(con, listing) for listing in listings]
    refetch = refetch_arguments(gaps)
    for gap in gaps:
        if gap.missing or gap.stale:
            name = f"{gap.listing.system}.{gap.listing.resource}"
            say(f"audit: {name}: {len(gap.missing)} missing, {len(gap.stale)} stale")
    if refetch:
        say(f"audit: fetching {sum(len(k) for r in refetch.values() for k in r.values()):,} records again")
        try:
            run_systems(
                list(refetch), source_kwargs={s: {"refetch": r} for s, r in refetch.items()}, where=where
            )
        except IngestError as failed:  # the figures below say what is still missing
            say(f"audit: the run that fetched them again failed: {failed}")
    with sqlconn.connect(where, read_only=True) as con:
        after = {(g.listing.system, g.listing.resource): compare(con, g.listing) for g in gaps}
    audits = [_figures(gap, after[(gap.listing.system, gap.listing.resource)]) for gap in gaps]
    store(where, audits)
    return audits


def _figures(before: Gap, after: Gap) -> ResourceAudit:
    listing = before.listing
    return ResourceAudit(
        system=listing.system,
        resource=listing.resource,
        at_source=len(listing.stamps) if listing.resource != "invitees" else sum(listing.stamps.values()),
        in_raw=after.in_raw,
        missing=len(before.missing),
        stale=len(before.stale),
        refetched=len(before.to_refetch()),
        remaining=len(after.to_refetch()),
        requests=listing.requests,
        seconds=round(listing.seconds, 3),
    )


def store(database: Target, audits: Sequence[ResourceAudit]) -> None:
    """Append one row per resource to `audit.completeness` (`database`: a DuckDB file, Paths or
    an Engine, `ingestion.sqlconn`)."""
    from ingestion import sqlconn

    with sqlconn.connect(database) as con:
        con.execute(f"create schema if not exists {SCHEMA}")
        con.execute(
            f"create table if not exists {SCHEMA}.{TABLE} (system varchar, resource varchar, "
            "at_source bigint, in_raw bigint, missing bigint, stale bigint, refetched bigint, "
            "remaining bigint, requests bigint, seconds double precision, "
            "audited_at timestamp with time zone)"
        )
        rows = [asdict(audit) for audit in audits]
        if rows:
            names = list(rows[0])
            con.executemany(
                f"insert into {SCHEMA}.{TABLE} ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
                [[row[name] for name in names] for row in rows],
            )


def lines(audits: Iterable[ResourceAudit]) -> Iterator[str]:
    """The audit as a table, for the CLI."""
    yield (
        f"{'resource':<36} {'source':>9} {'raw':>9} {'missing':>8} {'stale':>6} {'fetched':>8} "
        f"{'left':>5} {'requests':>9} {'budget':>7}"
    )
    for a in audits:
        name = f"{a.system}.{a.resource}"
        yield (
            f"{name:<36} {a.at_source:>9,} {a.in_raw:>9,} {a.missing:>8,} {a.stale:>6,} "
            f"{a.refetched:>8,} {a.remaining:>5,} {a.requests:>9,} {a.budget_share:>7.2%}"
        )
