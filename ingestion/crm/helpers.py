"""HubSpot paging: list pages, last-modified search in slabs read by record id, v4 association reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion import guard
from ingestion.contracts import quarantine_row
from ingestion.crm.properties import split_for_url
from ingestion.crm.settings import (
    ASSOCIATIONS_BATCH_PATH,
    ASSOCIATIONS_PAGE_PATH,
    BATCH_READ_PATH,
    BATCH_READ_SIZE,
    OBJECTS_PATH,
    SEARCH_PATH,
    Association,
    CrmObject,
)
from ingestion.http import ApiClient, ResponseShapeError

SYSTEM = "crm"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds of a HubSpot timestamp (ISO-8601 or ms digits); None when it is not one."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // ONE_MS


def ms_of(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // ONE_MS


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp format (ISO-8601 UTC with milliseconds) of epoch milliseconds."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def latest(values: Sequence[Any]) -> Any:
    """The most recent of some timestamps, compared as instants (dlt's `last_value_func`)."""
    return max(values, key=lambda v: (epoch_ms(v) or -1, str(v)))


def results_of(data: Any, path: str) -> list[Any]:
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise ResponseShapeError(f"{SYSTEM}: {path} answered without a `results` list")
    return results


def next_after(data: Any) -> str | None:
    """`paging.next.after`, or None on the last page (which has no `paging`)."""
    paging = data.get("paging") if isinstance(data, dict) else None
    following = paging.get("next") if isinstance(paging, dict) else None
    after = following.get("after") if isinstance(following, dict) else None
    return None if after in (None, "") else str(after)


def list_pages(
    client: ApiClient,
    path: str,
    params: dict[str, Any],
    confirm_end: Callable[[list[Any]], None] | None = None,
) -> Iterator[list[Any]]:
    """Every page of a v3 list endpoint, following `paging.next.after` until it is absent.

    A cursor read before stops the scan (it would loop). A full page without a next cursor is
    handed to `confirm_end`, which may look past it and raise when the listing was cut short.
    """
    after: str | None = None
    advancing = guard.Advancing(f"{SYSTEM}: {path}")
    while True:
        query = dict(params)
        if after is not None:
            query["after"] = after
        data = client.get(path, query)
        results = results_of(data, path)
        yield results
        after = next_after(data)
        if after is None:
            if confirm_end is not None and len(results) >= int(params.get("limit") or 0) > 0:
                confirm_end(results)
            return
        advancing.check(after)


def nothing_past(
    client: ApiClient, obj: CrmObject, path: str, params: dict[str, Any], since_ms: int
) -> Callable[[list[Any]], None]:
    """A `confirm_end` for an object list (whose cursor is the next record id): one request from
    past the last id of the full last page. A record there that was not created or changed
    since the scan began (`since_ms`; those come through the search that follows the list)
    means the listing was cut short."""

    def confirm(page: list[Any]) -> None:
        ids = [int(rid) for rid in map(record_id, page) if rid is not None and rid.isdigit()]
        if not ids:
            return
        beyond = results_of(client.get(path, {**params, "limit": 1, "after": str(max(ids) + 1)}), path)
        if beyond and (modified_ms(beyond[0], obj) or 0) < since_ms:
            detail = f"a full page had no next cursor, and record {record_id(beyond[0])} follows it"
            raise guard.truncated(f"{SYSTEM}: {path}", detail)

    return confirm


def read_by_id(
    client: ApiClient, obj: CrmObject, ids: list[str], batch: int, extra: tuple[str, ...] = ()
) -> Iterator[tuple[list[Any], list[str]]]:
    """(records found, ids not found) per batch read of these ids (fetching records again)."""
    path = BATCH_READ_PATH.format(object_type=obj.name)
    properties = list(dict.fromkeys((*obj.properties, *extra)))
    for chunk in chunks(ids, batch):
        body = {"properties": properties, "inputs": [{"id": value} for value in chunk]}
        found = results_of(client.post(path, body), path)
        present = {rid for rid in map(record_id, found) if rid is not None}
        yield found, [value for value in chunk if value not in present]


def count(client: ApiClient, obj: CrmObject) -> int | None:
    """How many records of an object type the account holds (a search's `total`, one request)."""
    return _probe(client, obj, [], "DESCENDING", 0)[1]


def latest_modified(client: ApiClient, obj: CrmObject) -> int | None:
    """The newest last-modified value of an object type (one search, newest first)."""
    return _probe(client, obj, [], "DESCENDING", 0)[0]


def full_scan(
    list_client: ApiClient,
    search_client: ApiClient,
    obj: CrmObject,
    *,
    list_page_size: int,
    page_size: int,
    window: int,
    extra: tuple[str, ...] = (),
    url_budget: int | None = None,
) -> Iterator[list[Any]]:
    """Every record of an object type: the list endpoint (by id), then a search for what
    changed while the list ran, from the newest modified value seen before it started; a
    record edited behind the list's position would otherwise be missed, since the cursor the
    next run starts from is the newest value this run saw.

    `extra` properties are read too; those that do not fit in the list URL (`url_budget`
    characters for the `properties` parameter) come from a batch read of each page's ids."""
    marker = latest_modified(search_client, obj) or 0
    listed: set[tuple[str | None, int]] = set()  # versions at or after the marker already returned
    every = tuple(dict.fromkeys((obj.modified, *obj.properties, *extra)))
    in_url, rest = (list(every), []) if url_budget is None else split_for_url(every, url_budget)
    params = {"limit": list_page_size, "properties": ",".join(in_url), "archived": "false"}
    path = OBJECTS_PATH.format(object_type=obj.name)
    confirm = nothing_past(list_client, obj, path, params, marker)
    for page in list_pages(list_client, path, params, confirm):
        if rest:
            add_properties(list_client, obj, page, rest)
        for record in page:
            ms = modified_ms(record, obj)
            if ms is not None and ms >= marker:
                listed.add((record_id(record), ms))
        yield page
    pages = search_modified(search_client, obj, marker, page_size=page_size, window=window, extra=extra)
    for page in pages:
        yield [r for r in page if (record_id(r), modified_ms(r, obj)) not in listed]


def add_properties(client: ApiClient, obj: CrmObject, page: list[Any], names: list[str]) -> None:
    """Fill `names` into the records of one list page from batch reads of their ids (the
    properties travel in the POST body, so no URL limit applies). A record the batch read no
    longer finds (archived in between) keeps what the list page said."""
    path = BATCH_READ_PATH.format(object_type=obj.name)
    ids = [rid for rid in map(record_id, page) if rid is not None]
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(ids, BATCH_READ_SIZE):
        body = {"inputs": [{"id": rid} for rid in batch], "properties": names, "archived": False}
        for result in results_of(client.post(path, body), path):
            properties = result.get("properties") if isinstance(result, dict) else None
            if isinstance(properties, dict) and result.get("id") is not None:
                found[str(result["id"])] = properties
    for record in page:
        more = found.get(record_id(record) or "")
        properties = record.get("properties") if isinstance(record, dict) else None
        if more and isinstance(properties, dict):
            for name in names:
                properties.setdefault(name, more.get(name))


def modified_ms(record: Any, obj: CrmObject) -> int | None:
    if not isinstance(record, dict):
        return None
    properties = record.get("properties")
    value = properties.get(obj.modified) if isinstance(properties, dict) else None
    ms = epoch_ms(value)
    return ms if ms is not None else epoch_ms(record.get("updatedAt"))


def record_id(record: Any) -> str | None:
    return str(record["id"]) if isinstance(record, dict) and record.get("id") is not None else None


def search_modified(
    client: ApiClient,
    obj: CrmObject,
    since_ms: int,
    *,
    page_size: int,
    window: int,
    extra: tuple[str, ...] = (),
) -> Iterator[list[Any]]:
    """Every record modified at or after `since_ms` and at or before the newest modified value
    when the scan starts, each once (a record edited during the scan may come back in its new
    version too).

    The range is cut into slabs of about `window` records by last-modified value (one probe
    query finds where a slab ends, so no query pages past HubSpot's cap of 10,000), and each
    slab is read in pages keyed on the record id: every page is a fresh query for ids above
    the last one seen. A record edited mid-scan moves past the scan's upper bound, where the
    next run (whose cursor cannot pass it) reads it; it cannot shift a page and make another
    record be skipped, and records sharing one timestamp cost nothing extra.
    """
    window = max(window, page_size)
    properties = list(dict.fromkeys((*obj.properties, *extra)))  # in the body: no URL limit
    lower = _where(obj.modified, "GTE", since_ms)
    newest, remaining = _probe(client, obj, [lower], "DESCENDING", 0)
    if newest is None:
        return
    upper = _where(obj.modified, "LTE", newest)
    while True:
        top = newest
        if remaining is None or remaining > window:  # more than one slab may be left
            edge, _ = _probe(client, obj, [lower, upper], "ASCENDING", window - 1)
            top = newest if edge is None else edge
        slab = [lower, _where(obj.modified, "LTE", top)]
        yield from _read_slab(client, obj, slab, page_size, properties)
        if top >= newest:
            return
        lower, remaining = _where(obj.modified, "GT", top), None


def _read_slab(
    client: ApiClient, obj: CrmObject, slab: list[dict[str, str]], page_size: int, properties: list[str]
) -> Iterator[list[Any]]:
    """One slab of the last-modified range, in pages keyed on the record id. The records read
    must add up to the search's own `total` (asked again when they fall short: records edited
    during the scan leave the slab), and each page must start past the last id of the one
    before."""
    path = SEARCH_PATH.format(object_type=obj.name)
    last_id: int | None = None
    seen: set[str] = set()
    first_total: int | None = None
    while True:
        filters = list(slab)
        if last_id is not None:
            filters.append(_where("hs_object_id", "GT", last_id))
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": properties,
            "limit": page_size,
        }
        data = client.post(path, body)
        results = results_of(data, path)
        if first_total is None:
            first_total = _total(data)
        yield results
        seen.update(rid for rid in map(record_id, results) if rid is not None)
        ids = [int(rid) for rid in map(record_id, results) if rid is not None and rid.isdigit()]
        if next_after(data) is None or not ids:
            break
        if last_id is not None and max(ids) <= last_id:
            raise guard.StalledCursor(
                f"{SYSTEM}: {path}: a page ended at id {max(ids)}, not past the previous page's {last_id}; "
                "the scan stops instead of looping"
            )
        last_id = max(ids)
    if first_total is None or len(seen) >= first_total:
        return
    _, total = _probe(client, obj, slab, "ASCENDING", 0)  # records edited meanwhile left the slab
    if total is not None and len(seen) < total:
        detail = f"{len(seen)} records read where the search counts {total}"
        raise guard.truncated(f"{SYSTEM}: {path}", detail)


def _where(name: str, operator: str, value: int) -> dict[str, str]:
    """One search filter on a numeric property (HubSpot takes the value as a string)."""
    return {"propertyName": name, "operator": operator, "value": str(value)}


def _probe(
    client: ApiClient, obj: CrmObject, filters: list[dict[str, str]], direction: str, position: int
) -> tuple[int | None, int | None]:
    """The modified value at `position` of the records matching `filters` in `direction`
    order by last-modified (None when fewer match), and how many match."""
    path = SEARCH_PATH.format(object_type=obj.name)
    body: dict[str, Any] = {
        "sorts": [{"propertyName": obj.modified, "direction": direction}],
        "properties": [obj.modified],
        "limit": 1,
    }
    if filters:
        body["filterGroups"] = [{"filters": filters}]
    if position:
        body["after"] = str(position)
    data = client.post(path, body)
    results = results_of(data, path)
    return modified_ms(results[0], obj) if results else None, _total(data)


def _total(data: Any) -> int | None:
    """A search answer's `total` (how many records match), when it carries one."""
    total = data.get("total") if isinstance(data, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def chunks(ids: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for value in dict.fromkeys(ids):
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def association_violation(result: Any) -> str | None:
    """Why one batch-read result's `to` list is unusable, or None."""
    for position, item in enumerate(result.get("to") or []):
        target = item.get("toObjectId") if isinstance(item, dict) else None
        if isinstance(target, bool) or not isinstance(target, int | str) or str(target) == "":
            return f"to[{position}].toObjectId is missing or not an id"
    return None


def read_associations(
    client: ApiClient, assoc: Association, ids: Iterable[str], batch_size: int
) -> Iterator[tuple[list[str], dict[str, list[str]], list[Any]]]:
    """Per batch of from ids: (the ids asked, from id -> to ids, quarantine rows).

    An id asked for and absent from the results has no associations (HubSpot lists it under
    `errors` as NO_ASSOCIATIONS_FOUND); an id whose result broke the contract is left out of
    the mapping and quarantined.
    """
    path = ASSOCIATIONS_BATCH_PATH.format(from_type=assoc.from_type, to_type=assoc.to_type)
    for batch in chunks(ids, batch_size):
        data = client.post(path, {"inputs": [{"id": value} for value in batch]})
        good, bad = [], []
        for result in results_of(data, path):
            # a broken result is fetched again with its from-object, so that is its parent
            parent = assoc.contract.key_of(result)
            kept, broken = assoc.contract.partition(SYSTEM, [result], parent=parent)
            good.extend(kept)
            bad.extend(broken)
        linked: dict[str, list[str]] = {}
        for result in good:
            reason = association_violation(result)
            from_id = str(result["from"]["id"])
            if reason is not None:
                bad.append(quarantine_row(SYSTEM, assoc.table, result, reason, from_id, from_id))
                continue
            targets = [str(item["toObjectId"]) for item in result["to"]]
            following = next_after(result)
            if following is not None:
                targets.extend(_remaining_targets(client, assoc, from_id, following))
            linked.setdefault(from_id, []).extend(targets)
        skipped = {str(row.get("record_key")) for row in _rows_of(bad)}
        yield [value for value in batch if value not in skipped], linked, bad


def _rows_of(items: list[Any]) -> Iterator[dict[str, Any]]:
    for item in items:
        data = getattr(item, "data", item)
        if isinstance(data, dict):
            yield data


def _remaining_targets(client: ApiClient, assoc: Association, from_id: str, after: str) -> Iterator[str]:
    """The associations past the first page of one batch-read result."""
    path = ASSOCIATIONS_PAGE_PATH.format(from_type=assoc.from_type, from_id=from_id, to_type=assoc.to_type)
    for page in list_pages(client, path, {"limit": 500, "after": after}):
        for item in page:
            if isinstance(item, dict) and item.get("toObjectId") is not None:
                yield str(item["toObjectId"])


def association_rows(
    assoc: Association, asked: list[str], linked: dict[str, list[str]], deleted_column: str | None
) -> list[dict[str, Any]]:
    """The pairs of each from id asked; with `deleted_column`, an id with none gets one row
    flagged deleted, which clears its earlier pairs (delete-insert on the from id) and is not kept."""
    rows: list[dict[str, Any]] = []
    for from_id in asked:
        targets = linked.get(from_id)
        if targets:
            rows.extend(
                {assoc.from_column: from_id, assoc.to_column: to_id} for to_id in dict.fromkeys(targets)
            )
        elif deleted_column is not None:
            rows.append({assoc.from_column: from_id, assoc.to_column: "", deleted_column: True})
    return rows
