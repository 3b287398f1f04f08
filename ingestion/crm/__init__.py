"""The CRM source (HubSpot CRM v3): objects, owners, deal pipelines and association pairs into raw_crm."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.sources import DltResource, incremental

from ingestion import progress
from ingestion.arrow import as_arrow, record_ids
from ingestion.contracts import hint_columns
from ingestion.crm import helpers
from ingestion.crm.properties import PropertyPlan, plan_properties
from ingestion.crm.settings import (
    ASSOCIATION_BATCH,
    ASSOCIATIONS,
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
from ingestion.http import ApiClient, Pace, RetryPolicy, hubspot_rolling, hubspot_window
from ingestion.mapping import load_mapping

__all__ = ["crm_source"]

ID_COLUMN: TTableSchemaColumns = {"id": {"data_type": "text", "nullable": False}}
# Records handed to dlt at a time: dlt's per-item work on an Arrow table is fixed, so bigger
# batches cost less per record (the API pages stay at their own size).
BATCH_RECORDS = 5_000


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
    """What resources of one run tell each other: which object types are being read in full."""

    full: dict[str, bool] = field(default_factory=dict)


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
    properties: dict[str, Any] | None = None,
    max_url_length: int = MAX_URL_LENGTH,
) -> Sequence[DltResource]:
    """HubSpot CRM objects and their associations; the first run lists everything, later
    runs search what changed since the stored last-modified cursor.

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
    run = Run()
    # OBJECTS lists the from-side of associations first, so those usually start (and say
    # whether they read everything) before the reverse reads that could then be skipped; a
    # reverse read that runs first only repeats work.
    objects = {obj.name: object_resource(plans[obj.name], clients, run, knobs) for obj in OBJECTS}
    resources: list[DltResource] = [*objects.values(), owners_resource(clients), pipelines_resource(clients)]
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
    obj = plan.obj
    cursor: incremental[str] = incremental(
        obj.cursor_path, last_value_func=helpers.latest, on_cursor_value_missing="include"
    )

    def read_objects(modified: incremental[str] = cursor) -> Iterator[Any]:
        since = modified.start_value
        run.full[obj.name] = since is None
        if since is None:
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
            since_ms = helpers.epoch_ms(since)
            if since_ms is None:
                raise ValueError(f"crm: stored cursor of {obj.name} is not a timestamp: {since!r}")
            pages = helpers.search_modified(
                clients.search,
                obj,
                since_ms,
                page_size=knobs.search_page_size,
                window=knobs.search_window,
                extra=plan.extra,
            )
        tracker = progress.current("crm")

        def checked() -> Iterator[tuple[list[Any], list[Any]]]:
            for page in pages:
                tracker.page(obj.name, len(page))
                yield obj.contract.partition(helpers.SYSTEM, page)

        yield from batched(checked())

    resource = dlt.resource(read_objects, name=obj.name, primary_key="id", write_disposition="merge")
    columns = object_columns(obj)
    return as_arrow(hint_columns(resource, columns), columns)


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

    def rows() -> Iterator[tuple[list[Any], list[Any]]]:
        for asked, linked, bad in helpers.read_associations(clients.api, assoc, ids, knobs.association_batch):
            found = helpers.association_rows(assoc, asked, linked, clear)
            tracker.page(assoc.table, len(found))
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
        yield from pair_rows(clients, run, assoc, record_ids(items), knobs)

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
        from_ids: list[str] = []
        for _, linked, bad in helpers.read_associations(
            clients.api, backwards, record_ids(items), knobs.association_batch
        ):
            from_ids.extend(to_id for targets in linked.values() for to_id in targets)
            yield from bad
        yield from pair_rows(clients, run, assoc, from_ids, knobs)

    name = f"{assoc.table}_from_{assoc.to_type}"
    return association_resource(assoc, read_pairs, parent, name)


def owners_resource(clients: Clients) -> DltResource:
    def read_owners() -> Iterator[Any]:
        tracker = progress.current("crm")
        for page in helpers.list_pages(clients.api, OWNERS_PATH, {"limit": LIST_PAGE_SIZE}):
            tracker.page("owners", len(page))
            good, bad = OWNERS_CONTRACT.partition(helpers.SYSTEM, page)
            if good:
                yield good
            yield from bad

    resource = dlt.resource(read_owners, name="owners", primary_key="id", write_disposition="replace")
    return hint_columns(resource, ID_COLUMN)


def stage_violation(pipeline: dict[str, Any]) -> str | None:
    for position, stage in enumerate(pipeline.get("stages") or []):
        reason = STAGE_CONTRACT.violation(stage)
        if reason is not None:
            return f"stages[{position}]: {reason}"
    return None


def pipelines_resource(clients: Clients) -> DltResource:
    def read_pipelines() -> Iterator[Any]:
        data = clients.api.get(PIPELINES_PATH)
        page = helpers.results_of(data, PIPELINES_PATH)
        progress.current("crm").page("pipelines", len(page))
        good, bad = PIPELINES_CONTRACT.partition(helpers.SYSTEM, page, stage_violation)
        if good:
            yield good
        yield from bad

    resource = dlt.resource(read_pipelines, name="pipelines", primary_key="id", write_disposition="replace")
    return hint_columns(resource, ID_COLUMN)
