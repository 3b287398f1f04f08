"""Record contracts: a record that breaks its table's contract is quarantined with the
reason (into `raw_<system>._quarantine`), and the load goes on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dlt

from ingestion.tables import FLAGGED_TABLE, QUARANTINE_TABLE, RESOLVED_TABLE

QUARANTINE_COLUMNS = {
    "quarantine_id": {"data_type": "text", "nullable": False},
    "system": {"data_type": "text"},
    "resource": {"data_type": "text"},
    "record_key": {"data_type": "text"},
    "parent_key": {"data_type": "text"},  # a child quarantined with its parent: the parent's key
    "reason": {"data_type": "text"},
    "payload": {"data_type": "text"},
    "quarantined_at": {"data_type": "timestamp"},
}
# One row per record whose quarantine ended: it passed its contract when fetched again, or
# someone accepted it. A quarantine row is open while no resolution of its key (or of its
# parent's key) is at least as recent.
RESOLVED_COLUMNS = {
    "resolution_id": {"data_type": "text", "nullable": False},
    "system": {"data_type": "text"},
    "resource": {"data_type": "text"},
    "record_key": {"data_type": "text"},
    "resolution": {"data_type": "text"},  # passed, accepted
    "resolved_at": {"data_type": "timestamp"},
}
# Records loaded with a warning, e.g. a stamp past the server's clock (loaded, but never used
# as a cursor, and fetched again until the stamp is plausible).
FLAGGED_COLUMNS = {
    "flag_id": {"data_type": "text", "nullable": False},
    "system": {"data_type": "text"},
    "resource": {"data_type": "text"},
    "record_key": {"data_type": "text"},
    "flag": {"data_type": "text"},
    "detail": {"data_type": "text"},
    "flagged_at": {"data_type": "timestamp"},
}
VARIANTS = (
    (QUARANTINE_TABLE, "quarantine_id", QUARANTINE_COLUMNS),
    (RESOLVED_TABLE, "resolution_id", RESOLVED_COLUMNS),
    (FLAGGED_TABLE, "flag_id", FLAGGED_COLUMNS),
)
_HINTS = dlt.mark.make_hints(
    table_name=QUARANTINE_TABLE,
    write_disposition="merge",
    primary_key="quarantine_id",
    merge_key=(),
    columns=QUARANTINE_COLUMNS,  # type: ignore[arg-type]
)
_RESOLVED_HINTS = dlt.mark.make_hints(
    table_name=RESOLVED_TABLE,
    write_disposition="merge",
    primary_key="resolution_id",
    merge_key=(),
    columns=RESOLVED_COLUMNS,  # type: ignore[arg-type]
)
_FLAGGED_HINTS = dlt.mark.make_hints(
    table_name=FLAGGED_TABLE,
    write_disposition="merge",
    primary_key="flag_id",
    merge_key=(),
    columns=FLAGGED_COLUMNS,  # type: ignore[arg-type]
)

# Python types a JSON field may take, per contract kind.
KINDS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "num": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
    "numstr": (str,),  # a decimal number carried as a string (HubSpot, Meta, Google int64)
}


@dataclass(frozen=True)
class Field:
    path: str  # dotted path, e.g. "properties.email"
    kind: str  # a key of KINDS
    required: bool = False


@dataclass(frozen=True)
class Contract:
    """What every record of one resource must look like to be loaded."""

    resource: str
    key: str  # dotted path of the record's key
    fields: tuple[Field, ...] = ()
    string_map: str | None = None  # a dict whose values must all be strings or null
    key_parts: tuple[str, ...] = ()  # dotted paths of a composite key (quarantine rows name it)

    def violation(self, record: Any) -> str | None:
        """The first way `record` breaks this contract, or None."""
        if not isinstance(record, Mapping):
            return f"record is {type(record).__name__}, not an object"
        if _get(record, self.key) in (None, ""):
            return f"missing key field {self.key!r}"
        for f in self.fields:
            reason = _field_violation(record, f)
            if reason:
                return reason
        if self.string_map:
            mapping = _get(record, self.string_map)
            if isinstance(mapping, Mapping):
                for name, value in mapping.items():
                    if value is not None and not isinstance(value, str):
                        return f"{self.string_map}.{name} is {type(value).__name__}, expected a string"
        return None

    def partition(
        self,
        system: str,
        records: Iterable[Any],
        extra: Callable[[Any], str | None] | None = None,
        parent: str | None = None,
    ) -> tuple[list[Any], list[Any]]:
        """(records that keep the contract, quarantine rows for the others with their reason);
        `extra` checks what a Contract cannot express (nested lists, int64 strings); `parent`
        is the key of the record these belong to (fetching it again brings them along)."""
        good, bad = [], []
        for record in records:
            reason = self.violation(record) or (extra(record) if extra else None)
            if reason is None:
                good.append(record)
            else:
                key = self.key_of(record)
                bad.append(quarantine_row(system, self.resource, record, reason, key, parent))
        return good, bad

    def key_of(self, record: Any) -> str | None:
        """The record's key (its parts joined with "/" for a composite key)."""
        if self.key_parts:
            parts = [_key_of(record, part) for part in self.key_parts]
            return None if any(p is None for p in parts) else "/".join(str(p) for p in parts)
        return _key_of(record, self.key)

    def split(self, system: str, records: Iterable[Any]) -> Iterator[Any]:
        """Yield good records as they are and bad ones as quarantine rows."""
        for record in records:
            reason = self.violation(record)
            if reason is None:
                yield record
            else:
                yield quarantine_row(system, self.resource, record, reason, self.key_of(record))


def _field_violation(record: Mapping[str, Any], f: Field) -> str | None:
    value = _get(record, f.path)
    if value is None:
        return f"missing required field {f.path!r}" if f.required else None
    allowed = KINDS[f.kind]
    if isinstance(value, bool) and bool not in allowed:
        return f"{f.path} is bool, expected {f.kind}"
    if not isinstance(value, allowed):
        return f"{f.path} is {type(value).__name__}, expected {f.kind}"
    if f.kind == "numstr" and value != "":
        try:
            float(str(value))
        except ValueError:
            return f"{f.path} is {str(value)[:40]!r}, expected a decimal string"
    return None


def _get(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _key_of(record: Any, key: str) -> str | None:
    if isinstance(record, Mapping):
        value = _get(record, key)
        return None if value is None else str(value)
    return None


def quarantine_row(
    system: str,
    resource: str,
    record: Any,
    reason: str,
    record_key: str | None,
    parent_key: str | None = None,
) -> Any:
    """A quarantine row routed to `_quarantine`; its id makes re-runs idempotent."""
    payload = record if isinstance(record, str) else json.dumps(record, sort_keys=True, default=str)
    digest = hashlib.sha1(f"{system}|{resource}|{record_key}|{reason}|{payload}".encode()).hexdigest()
    row = {
        "quarantine_id": digest,
        "system": system,
        "resource": resource,
        "record_key": record_key,
        "parent_key": parent_key,
        "reason": reason,
        "payload": payload,
        "quarantined_at": datetime.now(UTC),
    }
    return dlt.mark.with_hints(row, _HINTS, create_table_variant=True)


def resolution_row(system: str, resource: str, record_key: str, resolution: str) -> Any:
    """A row routed to `_quarantine_resolved`: the quarantine of `record_key` ended."""
    row = {
        "resolution_id": hashlib.sha1(f"{system}|{resource}|{record_key}".encode()).hexdigest(),
        "system": system,
        "resource": resource,
        "record_key": record_key,
        "resolution": resolution,
        "resolved_at": datetime.now(UTC),
    }
    return dlt.mark.with_hints(row, _RESOLVED_HINTS, create_table_variant=True)


def flag_row(system: str, resource: str, record_key: str, flag: str, detail: str) -> Any:
    """A row routed to `_flagged`: a record loaded with a warning (one row per record and flag)."""
    row = {
        "flag_id": hashlib.sha1(f"{system}|{resource}|{record_key}|{flag}".encode()).hexdigest(),
        "system": system,
        "resource": resource,
        "record_key": record_key,
        "flag": flag,
        "detail": detail,
        "flagged_at": datetime.now(UTC),
    }
    return dlt.mark.with_hints(row, _FLAGGED_HINTS, create_table_variant=True)


def is_bookkeeping(item: Any) -> bool:
    """A quarantine, resolution or flag row (not a record of the resource)."""
    data = getattr(item, "data", item)
    return isinstance(data, Mapping) and any(key in data for _, key, _ in VARIANTS)


def hint_columns(resource: Any, columns: Any) -> Any:
    """Give `resource` column hints without passing them on to its quarantine rows.

    dlt starts a table variant (`_quarantine`) from a copy of the resource's hints, columns
    included; declaring the variant first keeps the quarantine table to its own columns.
    """
    for table, key, variant_columns in VARIANTS:
        resource.apply_hints(
            table_name=table,
            write_disposition="merge",
            primary_key=key,
            merge_key=(),
            columns=variant_columns,
            create_table_variant=True,
        )
    resource.apply_hints(columns=columns)
    return resource


def declared_schema(name: str, tables: Mapping[str, Any]) -> dlt.Schema:
    """A source schema that declares each table's columns up front, so a column that is null
    in every record still exists with its type (an alternative to `hint_columns`).

    Every declared table is merged, as its resource says. The schema must say so too: dlt
    merges this schema into the stored one at every extract, and a table whose resource yields
    nothing in a run keeps what this schema says, which would otherwise be dlt's default,
    `append`."""
    from dlt.common.schema.utils import new_table

    schema = dlt.Schema(name)
    for table, columns in tables.items():
        schema.update_table(
            new_table(
                table,
                write_disposition="merge",
                columns=[{**c, "name": n} for n, c in columns.items()],
            )
        )
    return schema
