"""Pages of flat records as Arrow tables, so dlt writes them to parquet as they are instead of
normalizing them row by row (several times faster for the large CRM objects).

Only pages whose records are flat after nesting is spelled out go this way: nested objects
become `parent__child` columns, named as dlt's normalizer names them, and types come from
the resource's column hints. A page with a list anywhere (dlt makes child tables of those),
or with values that do not fit one Arrow type per column, is handed on unchanged and dlt
normalizes it as before: the raw tables are the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar

import pyarrow as pa
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.items_transform import ItemTransform

ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bool": pa.bool_(),
    "bigint": pa.int64(),
    "double": pa.float64(),
}

_naming = NamingConvention()


@lru_cache(maxsize=4096)
def column_name(prefix: str, key: str) -> str:
    """The column dlt's normalizer makes of `key` nested under `prefix` ('' at the top)."""
    name = _naming.normalize_identifier(key)
    return f"{prefix}__{name}" if prefix else name


class _NotFlat(Exception):
    pass


def flatten(
    record: Mapping[str, Any], prefix: str = "", into: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One row of columns; raises _NotFlat for a list value (a dlt child table)."""
    row: dict[str, Any] = {} if into is None else into
    for key, value in record.items():
        name = column_name(prefix, key)
        if isinstance(value, dict):
            flatten(value, name, row)
        elif isinstance(value, list):
            raise _NotFlat(name)
        else:
            row[name] = value
    return row


def page_table(records: list[Any], columns: TTableSchemaColumns) -> pa.Table | None:
    """The page as an Arrow table, or None when it must go through dlt's normalizer."""
    try:
        rows = [flatten(record) for record in records]
    except _NotFlat:
        return None
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    fields, arrays = [], []
    for name in names:
        values = [row.get(name) for row in rows]
        hint = columns.get(name) or {}
        wanted = ARROW_TYPES.get(str(hint.get("data_type")))
        try:
            array = pa.array(values, type=wanted)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return None  # a value of another type: dlt's normalizer makes its variant column
        if pa.types.is_null(array.type):
            continue  # null in every record: dlt's normalizer makes no column of it either
        nullable = hint.get("nullable", True) is not False
        if not nullable and array.null_count:
            return None
        fields.append(pa.field(name, array.type, nullable=nullable))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class ArrowPages(ItemTransform[Any, Any]):
    """A resource step: turns each page of plain records into an Arrow table.

    It runs after dlt's incremental step (which reads the cursor from the records) and leaves
    quarantine rows and single items alone.
    """

    placement_affinity: ClassVar[float] = 1.5  # after incremental (1) and add_limit (1.1)

    def __init__(self, columns: TTableSchemaColumns) -> None:
        super().__init__(lambda item: item)
        self.columns = columns

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if not isinstance(item, list) or not item:
            return item
        if not all(isinstance(record, dict) and "quarantine_id" not in record for record in item):
            return item
        table = page_table(item, self.columns)
        return item if table is None else table


def as_arrow(resource: Any, columns: TTableSchemaColumns) -> Any:
    """Let `resource` hand dlt Arrow tables for its flat pages (see ArrowPages)."""
    resource.add_step(ArrowPages(columns))
    return resource


def empty_table(columns: TTableSchemaColumns) -> pa.Table:
    """No rows, with the hinted columns and their types: what a resource yields so that its
    table exists (dlt creates a table from an Arrow table even when it has no rows)."""
    fields = [
        pa.field(name, ARROW_TYPES[str(hint.get("data_type"))])
        for name, hint in columns.items()
        if str(hint.get("data_type")) in ARROW_TYPES
    ]
    return pa.schema(fields).empty_table()


def record_ids(items: Any, key: str = "id") -> list[str]:
    """Keys of the records in what a resource handed on: a page of dicts (quarantine rows
    skipped), one dict, or an Arrow table."""
    if isinstance(items, pa.Table):
        return [str(value) for value in items.column(key).to_pylist() if value is not None]
    records = items if isinstance(items, list) else [items]
    return [
        str(r[key])
        for r in records
        if isinstance(r, dict) and "quarantine_id" not in r and r.get(key) is not None
    ]
