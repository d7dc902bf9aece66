"""Small helpers shared by the repositories: row conversion, paging, and ordering."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Table, asc, bindparam, desc, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph.storage.filters import SqlFilter, contains

__all__ = ["Record", "contains", "count", "ordered", "page", "record", "records"]

Record = dict[str, Any]


@functools.cache
def update_by_key(table: Table, key: str, columns: frozenset[str]) -> Any:
    """`UPDATE table SET <columns> WHERE key = :_key`, built once per set of columns. Building a statement costs
    more than SQLite takes to run it, and these run several times per run on the hot path."""
    # Bind names must differ from column names in an UPDATE, hence the prefix.
    assignments = {c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}
    return update(table).where(table.c[key] == bindparam("k_key")).values(assignments)


async def update_fields(conn: AsyncConnection, table: Table, key: str, key_value: Any, values: Record) -> int:
    statement = update_by_key(table, key, frozenset(values))
    result = await conn.execute(statement, {"k_key": key_value, **{f"v_{c}": v for c, v in values.items()}})
    return int(result.rowcount)


def record(row: Row[*tuple[Any, ...]] | None) -> Record | None:
    return dict(row._mapping) if row is not None else None


def records(rows: Sequence[Row[*tuple[Any, ...]]]) -> list[Record]:
    return [dict(r._mapping) for r in rows]


def ordered(query: Select[Any], table: Table, sort_by: str, sort_order: str, tiebreak: str) -> Select[Any]:
    # NULL sorts as the smallest value on both dialects (the reference treats a null date as datetime.min).
    if sort_order == "asc":
        return query.order_by(asc(table.c[sort_by]).nulls_first(), asc(table.c[tiebreak]))
    return query.order_by(desc(table.c[sort_by]).nulls_last(), desc(table.c[tiebreak]))


async def page(
    conn: AsyncConnection,
    query: Select[Any],
    meta_filter: SqlFilter,
    metadata_column: str,
    subset: dict[str, Any] | None,
    limit: int,
    offset: int,
) -> list[Record]:
    """Run a search query, paginated. Fetches limit+1 rows so the caller can tell whether a next page exists."""
    query = query.where(meta_filter.clause)
    if meta_filter.exact:
        return records((await conn.execute(query.limit(limit + 1).offset(offset))).all())
    matching = [r for r in records((await conn.execute(query)).all()) if contains(r[metadata_column], subset)]
    return matching[offset : offset + limit + 1]


async def count(conn: AsyncConnection, query: Select[Any], meta_filter: SqlFilter, column: str, subset: Any) -> int:
    """Count the rows of a search query (given as a select of the whole table) that match the metadata filter."""
    query = query.where(meta_filter.clause)
    if meta_filter.exact:
        return int((await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one())
    return sum(1 for r in records((await conn.execute(query)).all()) if contains(r[column], subset))
