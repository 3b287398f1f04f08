"""Query builders: every number a check judges is computed here, in SQL.

The SQL is written once for both warehouse engines, DuckDB and PostgreSQL: only constructs the
two read alike (`count(*) filter`, `x ~ '^...$'` with anchored patterns, `interval '1 day' * n`,
`extract(epoch from ...)`, `cast(... as varchar)`). The helpers below hold the few spellings
that need care, so a suite never writes an engine's own function.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

QUARANTINE_VIEW = "check_quarantine_counts"

EXISTING_RELATIONS = (
    "select table_schema || '.' || table_name from information_schema.tables "
    "where table_catalog = current_database()"
)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def relation(schema: str, table: str) -> str:
    """A schema-qualified, quoted relation name."""
    return f"{quote(schema)}.{quote(table)}"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def key_expr(columns: Sequence[str], prefix: str = "") -> str:
    """One text key from one or more columns (null when any part is null)."""
    parts = [f"cast({prefix}{c} as varchar)" for c in columns]
    return parts[0] if len(parts) == 1 else " || ':' || ".join(parts)


def share_pct(bad: str, base: str = "true") -> str:
    """Per cent of the rows meeting `base` that also meet `bad` (0 when there are none)."""
    return (
        f"coalesce(100.0 * count(*) filter (where ({base}) and ({bad})) "
        f"/ nullif(count(*) filter (where {base}), 0), 0)"
    )


def count_where(condition: str) -> str:
    return f"count(*) filter (where {condition})"


def days(n: int | str) -> str:
    """An interval of `n` days (`n` may be a `{{parameter}}`)."""
    return f"(interval '1 day' * {n})"


def matches(column: str, pattern: str) -> str:
    """`column` matches `pattern` (anchored with ^ and $: a full match on either engine)."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"a check's pattern must be anchored with ^ and $: {pattern!r}")
    return f"{column} ~ {literal(pattern)}"


def hours_since(moment: str) -> str:
    """Whole seconds from `moment` to now, in hours (DuckDB's `date_diff('second', ...)`)."""
    return f"(floor(extract(epoch from now())) - floor(extract(epoch from {moment}))) / 3600.0"


def rounded_text(number: str, digits: int) -> str:
    """`number` rounded for display (PostgreSQL rounds only numerics to digits)."""
    return f"cast(round(cast({number} as numeric), {int(digits)}) as double precision)"


# -- key parity (completeness) -------------------------------------------------------------------


def _parity_join(upstream: str, downstream: str) -> str:
    return (
        f"(select distinct k from ({upstream}) as u where k is not null) as up "
        f"full join (select distinct k from ({downstream}) as d where k is not null) as down "
        "on up.k = down.k"
    )


def key_parity_source(upstream: str, downstream: str) -> str:
    """One row: keys upstream that are missing downstream, keys downstream with no upstream.

    `upstream` and `downstream` are queries selecting one text column `k`.
    """
    return (
        "(select count(*) filter (where down.k is null) as missing, "
        "count(*) filter (where up.k is null) as unexpected, "
        "count(up.k) as upstream_keys, count(down.k) as downstream_keys "
        f"from {_parity_join(upstream, downstream)}) as parity"
    )


def key_parity_sample(upstream: str, downstream: str) -> str:
    return (
        "select case when down.k is null then up.k || ' (missing)' else down.k || ' (unexpected)' end "
        f"from {_parity_join(upstream, downstream)} "
        "where up.k is null or down.k is null order by 1"
    )


# -- uniqueness ----------------------------------------------------------------------------------


def _nulls(columns: Sequence[str]) -> str:
    return " or ".join(f"{c} is null" for c in columns)


def duplicate_rows(columns: Sequence[str]) -> str:
    """Rows beyond the first of each key, plus every row whose key is (partly) null."""
    distinct = columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"
    return f"count(*) - count(distinct {distinct}) filter (where not ({_nulls(columns)}))"


def null_key_rows(columns: Sequence[str]) -> str:
    return count_where(_nulls(columns))


def duplicate_sample(table: str, columns: Sequence[str]) -> str:
    key = key_expr(columns)
    return (
        f"select coalesce({key}, '(null key)') || ' x' || count(*) from {table} "
        f"group by {key} having count(*) > 1 or bool_or({_nulls(columns)}) order by count(*) desc, 1"
    )


# -- running -------------------------------------------------------------------------------------


def batch(source: str, columns: Sequence[tuple[str, str]]) -> str:
    """One aggregate query computing many named numbers over one source."""
    select = ",\n  ".join(f"{expr} as {quote(alias)}" for alias, expr in columns)
    return f"select\n  {select}\nfrom {source}"


def limited(query: str, limit: int) -> str:
    return f"select * from ({query}) as sample limit {int(limit)}"


def quarantine_view(schemas_with_quarantine: Iterable[str]) -> str:
    """A temporary view of quarantined rows per system and resource (empty when none exist)."""
    parts = [
        f"select {literal(schema.removeprefix('raw_'))} as system, resource, count(*) as quarantined "
        f"from {relation(schema, '_quarantine')} group by resource"
        for schema in sorted(schemas_with_quarantine)
    ]
    body = (
        " union all ".join(parts)
        if parts
        else "select ''::varchar as system, ''::varchar as resource, 0::bigint as quarantined where false"
    )
    return f"create or replace temp view {QUARANTINE_VIEW} as {body}"


def quarantined(system: str, resources: Sequence[str] | None = None) -> str:
    """Scalar subquery: rows quarantined for a system (optionally only some resources)."""
    where = f"system = {literal(system)}"
    if resources:
        where += f" and resource in {in_list(resources)}"
    return f"(select coalesce(sum(quarantined), 0) from {QUARANTINE_VIEW} where {where})"
