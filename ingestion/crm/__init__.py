"""The CRM source (HubSpot CRM v3): objects, owners, deal pipelines and association pairs into raw_crm."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.sources import DltResource

from ingestion import guard, progress
from ingestion import mend as mend_module
from ingestion.arrow import as_arrow, record_ids
from ingestion.contracts import flag_row, hint_columns
from ingestion.crm import helpers
from ingestion.crm.properties import PropertyPlan, plan_properties
from ingestion.crm.settings import (
    ASSOCIATION_BATCH,
    ASSOCIATIONS,
    BATCH_READ_SIZE,
    DELETED_COLUMN,
    LIST_PAGE_SIZE,
    MAX_URL_LENGTH,
    OBJECTS,
    OBJECTS_PATH,
    OWNERS_CONTRACT,
    OWNERS_PATH,
    PIPELINES_CONTRACT,
    PIPELINES_PATH,
    SEARCH_PAGE_SIZE,
    SEARCH_RATE,
    SEARCH_RESULT_CAP,
    STAGE_CONTRACT,
    Association,
    CrmObject,
)
from ingestion.http import ApiClient, ApiError, Pace, RetryPolicy, hubspot_rolling, hubspot_window
from ingestion.mapping import load_mapping
from ingestion.mend import AUDIT, FUTURE, Mend

__all__ = ["crm_source"]

SYSTEM = helpers.SYSTEM
CURSOR_KEY = "last_modified"  # resource state: the newest last-modified value loaded (ISO)
AT_CURSOR_KEY = "at_cursor"  # ... and the ids loaded at that value (the next search, from it, skips them)

ID_COLUMN: TTableSchemaColumns = {"id": {"data_type": "text", "nullable": False}}
# Records handed to dlt at a time: dlt's per-item work on an Arrow table is fixed, so bigger
# batches cost less per record (the API pages stay at their own size).
BATCH_RECORDS = 5_000

log = logging.getLogger(__name__)


@dataclass
class Clients:
    """One client for the rate-limit-headed endpoints, one paced for search (shared by all resources)."""

    api: ApiClient
    search: ApiClient

    def __post_init__(self) -> None:
        # dlt runs clones of the resources, which share this object: close once all are gone
        weakref.finalize(self, _close, self.api, self.search)


def _close(*clients: ApiClient) -> None:
    for client in clients:
        client.close()


@dataclass
class Run:
    """What resources of one run tell each other: which object types are being read in full,
    and which records the run reads again by id."""

    full: dict[str, bool] = field(default_factory=dict)
    refetch: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Knobs:
    """Page sizes and windows, from the source's arguments."""

    page_size: int
    search_page_size: int
    search_window: int
    association_batch: int
    url_length: int  # the longest URL a list request may have (its properties fill the rest)
    base_url: str


@dlt.source(name="crm")
def crm_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    page_size: int = LIST_PAGE_SIZE,
    search_page_size: int = SEARCH_PAGE_SIZE,
    search_window: int = SEARCH_RESULT_CAP,
    search_rate: float = SEARCH_RATE,
    rate: float | None = None,
    association_batch: int = ASSOCIATION_BATCH,
    max_attempts: int = 8,
    backoff_base: float = 0.25,
    timeout: float = 60.0,
    refetch: dict[str, list[str]] | None = None,
    properties: dict[str, Any] | None = None,
    max_url_length: int = MAX_URL_LENGTH,
) -> Sequence[DltResource]:
    """HubSpot CRM objects and their associations; the first run lists everything, later
    runs search what changed since the stored last-modified cursor. `refetch` names records
    (object type -> ids) to read again by id in this run, as a completeness audit asks.

    `search_window` is about how many records one slab of a search holds: the scan cuts the
    last-modified range into slabs of that size (at most HubSpot's cap of 10,000, where the
    probe that ends a slab lands) and reads each slab by record id, so it stays exact while
    records change under it.

    Each object is read with its built-in properties and those the business mapping names
    (`[mapping]`, checked against the account's properties API now: a property it lacks stops
    the run, named); `properties` adds, per object type, a list of names or "all" (every
    property the account has, custom ones included), e.g. `{"contacts": "all"}`.
    """
    retry = RetryPolicy(max_attempts=max_attempts, backoff_base=backoff_base)
    common: dict[str, Any] = {"retry": retry, "timeout": timeout}
    clients = Clients(
        api=ApiClient(
            "crm",
            base_url,
            access_token,
            pace=Pace(rate=rate),
            window=hubspot_window,
            rolling=hubspot_rolling,
            **common,
        ),
        search=ApiClient("crm", base_url, access_token, pace=Pace(rate=search_rate), **common),
    )
    api_stats, search_stats = clients.api.stats, clients.search.stats  # not the clients: they may close
    progress.current("crm").retries = lambda: api_stats.retries + search_stats.retries
    knobs = Knobs(
        page_size=page_size,
        search_page_size=search_page_size,
        search_window=min(max(search_window, search_page_size), SEARCH_RESULT_CAP),
        association_batch=association_batch,
        url_length=max_url_length,
        base_url=base_url.rstrip("/"),
    )
    plans = plan_properties(clients.api, load_mapping(), properties)
    run = Run(refetch={name: [str(k) for k in keys] for name, keys in (refetch or {}).items()})
    # OBJECTS lists the from-side of associations first, so those usually start (and say
    # whether they read everything) before the reverse reads that could then be skipped; a
    # reverse read that runs first only repeats work.
    objects = {obj.name: object_resource(plans[obj.name], clients, run, knobs) for obj in OBJECTS}
    resources: list[DltResource] = [
        *objects.values(),
        owners_resource(clients),
        pipelines_resource(clients),
        account_resource(clients),
    ]
    for assoc in ASSOCIATIONS:
        resources.append(forward_associations(assoc, objects[assoc.from_type], clients, run, knobs))
        resources.append(reverse_associations(assoc, objects[assoc.to_type], clients, run, knobs))
    return resources


def object_columns(obj: CrmObject) -> TTableSchemaColumns:
    """Every requested property is a text column (present even while all its values are null)."""
    columns: TTableSchemaColumns = {
        "id": {"data_type": "text", "nullable": False},
        "created_at": {"data_type": "text"},
        "updated_at": {"data_type": "text"},
        "archived": {"data_type": "bool"},
    }
    for name in obj.properties:
        columns[f"properties__{name}"] = {"data_type": "text", "nullable": True}
    columns[f"properties__{obj.modified}"]["dedup_sort"] = "desc"  # the newest version of a record wins
    return columns


def url_budget(obj: CrmObject, knobs: Knobs) -> int:
    """Characters left for a list request's `properties` parameter under the URL limit."""
    fixed = f"{knobs.base_url}{OBJECTS_PATH.format(object_type=obj.name)}?limit={knobs.page_size}"
    return knobs.url_length - len(fixed) - len("&archived=false&after=") - 20  # 20: the cursor


def object_resource(plan: PropertyPlan, clients: Clients, run: Run, knobs: Knobs) -> DltResource:
    """Records changed since the stored cursor (all of them the first time), then those kept
    for fetching again by id. The cursor is the newest last-modified value read that is not
    past the server's clock; a record stamped past it is loaded, flagged and fetched again."""
    obj = plan.obj

    def read_objects() -> Iterator[Any]:
        yield from guard.guarded(SYSTEM, obj.name, _read_objects(plan, clients, run, knobs))

    resource = dlt.resource(read_objects, name=obj.name, primary_key="id", write_disposition="merge")
    columns = object_columns(obj)
    return as_arrow(hint_columns(resource, columns), columns)


def _read_objects(plan: PropertyPlan, clients: Clients, run: Run, knobs: Knobs) -> Iterator[Any]:
    obj = plan.obj
    state = dlt.current.resource_state(obj.name)
    mend = Mend(SYSTEM, obj.name, state)
    mend.add_many(run.refetch.get(obj.name, []), AUDIT)
    retry = [k for k in mend.waiting() if k.isdigit()]  # from earlier runs (not this one's scan)
    since = state.get(CURSOR_KEY) or _legacy_cursor(state, obj)
    run.full[obj.name] = since is None
    since_ms = None if since is None else helpers.epoch_ms(since)
    if since is not None and since_ms is None:
        raise ValueError(f"crm: stored cursor of {obj.name} is not a timestamp: {since!r}")
    total = helpers.count(clients.search, obj)  # compared with raw after the load, every run
    if total is not None:
        progress.current(SYSTEM).totals[obj.name] = total
    watermark = Watermark(obj, clients, mend, since_ms, state.get(AT_CURSOR_KEY) or [])
    if since_ms is None:
        pages = helpers.full_scan(
            clients.api,
            clients.search,
            obj,
            list_page_size=knobs.page_size,
            page_size=knobs.search_page_size,
            window=knobs.search_window,
            extra=plan.extra,
            url_budget=url_budget(obj, knobs),
        )
    else:
        pages = helpers.search_modified(
            clients.search,
            obj,
            since_ms,
            page_size=knobs.search_page_size,
            window=knobs.search_window,
            extra=plan.extra,
        )
    yield from batched(watermark.checked(pages))
    yield from batched(_mended(plan, clients, mend, watermark, retry))
    if watermark.newest is not None:
        state[CURSOR_KEY] = helpers.iso_ms(watermark.newest)
        state[AT_CURSOR_KEY] = sorted(watermark.at_newest)


def _legacy_cursor(state: dict[str, Any], obj: CrmObject) -> Any:
    """The cursor an earlier version kept through `dlt.sources.incremental`."""
    return (state.get("incremental") or {}).get(obj.cursor_path, {}).get("last_value")


def _mended(
    plan: PropertyPlan, clients: Clients, mend: Mend, watermark: Watermark, keys: list[str]
) -> Iterator[tuple[list[Any], list[Any]]]:
    """Records fetched again by id: those that keep their contract (and a plausible stamp)
    settle their key; the rest are quarantined or flagged again."""
    obj = plan.obj
    accepted = set(mend_module.accepted(SYSTEM, obj.name))
    yield [], list(mend.accept(accepted))
    keys = [k for k in keys if k not in accepted]
    for found, missing in helpers.read_by_id(clients.api, obj, keys, BATCH_READ_SIZE, plan.extra):
        good, bad = watermark.check(found)
        settled = [r["id"] for r in good if not watermark.is_future(r)]
        yield good, [*bad, *mend.settle(settled, missing)]


class Watermark:
    """Checks pages (one copy per id, contracts, stamps past the server's clock) and keeps the
    newest last-modified value read at or before the server's clock."""

    def __init__(
        self, obj: CrmObject, clients: Clients, mend: Mend, since_ms: int | None, at_since: list[str]
    ) -> None:
        self.obj, self.clients, self.mend = obj, clients, mend
        self.newest, self.at_newest, self._since = since_ms, set(at_since), since_ms
        self._loaded_at_since = frozenset(at_since) if since_ms is not None else frozenset()
        self.tracker = progress.current(SYSTEM)

    def server_ms(self) -> int | None:
        """The server's clock in epoch ms: the end of the second its latest Date header names
        (a record an answer carries was written by then)."""
        moments = [m for m in (self.clients.api.server_now(), self.clients.search.server_now()) if m]
        return helpers.ms_of(max(moments)) + 999 if moments else None

    def is_future(self, record: Any) -> bool:
        now = self.server_ms()
        ms = helpers.modified_ms(record, self.obj)
        return now is not None and ms is not None and ms > now + guard.FUTURE_SLACK_MS

    def check(self, page: list[Any]) -> tuple[list[Any], list[Any]]:
        page = guard.newest_first_wins(page, helpers.record_id, lambda r: helpers.modified_ms(r, self.obj))
        page = [r for r in page if not self._loaded_before(r)]
        good, bad = self.obj.contract.partition(helpers.SYSTEM, page)
        self.mend.quarantined(bad)
        now = self.server_ms()
        for record in good:
            ms = helpers.modified_ms(record, self.obj)
            if ms is None:
                continue
            if now is None or ms <= now:
                self._advance(ms, str(record["id"]))
            elif self.is_future(record):
                bad.append(self._flag(record, ms, now))
        return good, bad

    def _loaded_before(self, record: Any) -> bool:
        """The very version the previous run loaded at its cursor (a search from the cursor
        includes it again)."""
        return (
            helpers.record_id(record) in self._loaded_at_since
            and helpers.modified_ms(record, self.obj) == self._since
        )

    def _advance(self, ms: int, record_id: str) -> None:
        if self.newest is None or ms > self.newest:
            self.newest, self.at_newest = ms, {record_id}
        elif ms == self.newest:
            self.at_newest.add(record_id)

    def _flag(self, record: Any, ms: int, now: int | None) -> Any:
        self.mend.add(record["id"], FUTURE)
        clock = helpers.iso_ms(now or 0)
        detail = f"{self.obj.modified} {helpers.iso_ms(ms)} is past the server's clock {clock}"
        return flag_row(SYSTEM, self.obj.name, str(record["id"]), "future_stamp", detail)

    def checked(self, pages: Iterable[list[Any]]) -> Iterator[tuple[list[Any], list[Any]]]:
        for page in pages:
            self.tracker.page(self.obj.name, len(page))
            yield self.check(page)


def association_columns(assoc: Association) -> TTableSchemaColumns:
    return {
        assoc.from_column: {"data_type": "text", "nullable": False},
        assoc.to_column: {"data_type": "text", "nullable": False},
        DELETED_COLUMN: {"data_type": "bool", "hard_delete": True},
    }


def association_resource(assoc: Association, read_pairs: Any, parent: DltResource, name: str) -> DltResource:
    """Pairs replace a from-object's earlier pairs (delete-insert on the from id)."""
    resource = dlt.transformer(
        read_pairs,
        data_from=parent,
        name=name,
        table_name=assoc.table,
        primary_key=(assoc.from_column, assoc.to_column),
        merge_key=assoc.from_column,
    )
    resource.apply_hints(write_disposition={"disposition": "merge", "strategy": "delete-insert"})
    columns = association_columns(assoc)
    return as_arrow(hint_columns(resource, columns), columns)


def pair_rows(clients: Clients, run: Run, assoc: Association, ids: list[str], knobs: Knobs) -> Iterator[Any]:
    """The full association set of each from id, as rows (plus quarantine rows). While every
    from-object is read from scratch there are no earlier pairs to clear."""
    tracker = progress.current("crm")
    clear = None if run.full.get(assoc.from_type) else DELETED_COLUMN
    mend = Mend(SYSTEM, assoc.from_type, dlt.current.resource_state(assoc.from_type))

    def rows() -> Iterator[tuple[list[Any], list[Any]]]:
        for asked, linked, bad in helpers.read_associations(clients.api, assoc, ids, knobs.association_batch):
            found = helpers.association_rows(assoc, asked, linked, clear)
            tracker.page(assoc.table, len(found))
            mend.quarantined(bad)
            yield found, bad

    yield from batched(rows())


def batched(pages: Iterable[tuple[list[Any], list[Any]]]) -> Iterator[Any]:
    """Good records in batches of BATCH_RECORDS (one dlt item each); quarantine rows as they come."""
    batch: list[Any] = []
    for good, bad in pages:
        batch.extend(good)
        if len(batch) >= BATCH_RECORDS:
            yield batch
            batch = []
        yield from bad
    if batch:
        yield batch


def forward_associations(
    assoc: Association, parent: DltResource, clients: Clients, run: Run, knobs: Knobs
) -> DltResource:
    """Pairs of every from-object the parent resource read in this run."""

    def read_pairs(items: Any) -> Iterator[Any]:
        yield from guard.guarded(
            SYSTEM, assoc.table, pair_rows(clients, run, assoc, record_ids(items), knobs)
        )

    return association_resource(assoc, read_pairs, parent, assoc.table)


def reverse_associations(
    assoc: Association, parent: DltResource, clients: Clients, run: Run, knobs: Knobs
) -> DltResource:
    """Pairs of from-objects linked to a changed to-object: a new meeting or deal for an existing
    contact changes the contact's associations without changing the contact itself."""
    backwards = Association(assoc.table, assoc.to_type, assoc.from_type, assoc.to_column, assoc.from_column)

    def read_pairs(items: Any) -> Iterator[Any]:
        if run.full.get(assoc.from_type):
            return  # every from-object is read this run, with its pairs
        yield from guard.guarded(SYSTEM, assoc.table, backward_rows(items))

    def backward_rows(items: Any) -> Iterator[Any]:
        from_ids: list[str] = []
        mend = Mend(SYSTEM, backwards.from_type, dlt.current.resource_state(backwards.from_type))
        for _, linked, bad in helpers.read_associations(
            clients.api, backwards, record_ids(items), knobs.association_batch
        ):
            from_ids.extend(to_id for targets in linked.values() for to_id in targets)
            mend.quarantined(bad)
            yield from bad
        yield from pair_rows(clients, run, assoc, from_ids, knobs)

    name = f"{assoc.table}_from_{assoc.to_type}"
    return association_resource(assoc, read_pairs, parent, name)


def owners_resource(clients: Clients) -> DltResource:
    def read_owners() -> Iterator[Any]:
        yield from guard.guarded(SYSTEM, "owners", owner_pages())

    def owner_pages() -> Iterator[Any]:
        tracker = progress.current("crm")
        for page in helpers.list_pages(clients.api, OWNERS_PATH, {"limit": LIST_PAGE_SIZE}):
            tracker.page("owners", len(page))
            good, bad = OWNERS_CONTRACT.partition(helpers.SYSTEM, page)
            if good:
                yield good
            yield from bad

    resource = dlt.resource(read_owners, name="owners", primary_key="id", write_disposition="replace")
    return hint_columns(resource, ID_COLUMN)


ACCOUNT_PATH = "/account-info/v3/details"


def account_resource(clients: Clients) -> DltResource:
    """The account's details (one row): its portal id is in every HubSpot record URL. A token
    without the scope to read them costs the links, not the load."""

    def read_account() -> Iterator[Any]:
        try:
            details = clients.api.get(ACCOUNT_PATH)
        except ApiError as exc:
            if exc.status not in (401, 403, 404):
                raise
            log.warning(
                "crm: cannot read the account details (%s); record links will lack the portal", exc.status
            )
            return
        progress.current("crm").page("account_info", 1)
        if isinstance(details, dict) and details.get("portalId") is not None:
            yield {**details, "portalId": str(details["portalId"])}

    return dlt.resource(
        read_account, name="account_info", primary_key="portalId", write_disposition="replace"
    )


def stage_violation(pipeline: dict[str, Any]) -> str | None:
    for position, stage in enumerate(pipeline.get("stages") or []):
        reason = STAGE_CONTRACT.violation(stage)
        if reason is not None:
            return f"stages[{position}]: {reason}"
    return None


def pipelines_resource(clients: Clients) -> DltResource:
    def read_pipelines() -> Iterator[Any]:
        yield from guard.guarded(SYSTEM, "pipelines", pipeline_pages())

    def pipeline_pages() -> Iterator[Any]:
        data = clients.api.get(PIPELINES_PATH)
        page = helpers.results_of(data, PIPELINES_PATH)
        progress.current("crm").page("pipelines", len(page))
        good, bad = PIPELINES_CONTRACT.partition(helpers.SYSTEM, page, stage_violation)
        if good:
            yield good
        yield from bad

    resource = dlt.resource(read_pipelines, name="pipelines", primary_key="id", write_disposition="replace")
    return hint_columns(resource, ID_COLUMN)
