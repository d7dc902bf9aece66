"""Inserting and updating many rows of one table at once, at the cost of the driver rather than of SQLAlchemy's
per-row work.

A cron burst inserts thousands of threads, runs and fire-log rows at once. SQLAlchemy's executemany builds a
parameter dictionary per row and runs every value through its type's processor (on SQLite each datetime is
formatted as text: a run row has four), which costs several times what SQLite takes to store the row; on
psycopg it pipelines one INSERT per row, each parsed and run by the server. `insert_rows` renders the INSERT once
per table and set of columns and stores exactly what SQLAlchemy would (the same text for datetimes on SQLite,
the same JSON serializer, the columns' own types on PostgreSQL, JSON null for None in a JSON column):
- SQLite: one executemany of tuples, each value through its column's processor, computed once per distinct
  datetime and once per run of the very same object (a batch's rows share their `now` and slot);
- PostgreSQL: one `INSERT ... SELECT ... FROM jsonb_to_recordset(%s::jsonb)`, the batch one JSON document that
  orjson writes in one call (for a table whose columns are all strings, numbers, booleans, JSON and UTC
  datetimes; else one array per column through unnest).
`select_by_keys`, `update_by_keys` and `update_rows` read and update the rows of many keys the same way: one
statement, rendered once, whose keys are one parameter (a JSON array read by `json_each` on SQLite, an array on
PostgreSQL) where an expanding `IN (...)` is rendered again for every size.

Invariant: every row has the same keys, all of them columns of the table (else KeyError / a driver error, and
the caller's transaction rolls back).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Integer, String, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph import serde
from crongraph.storage.common import Record
from crongraph.storage.tables import UTCDateTime

Processor = Callable[[Any], Any] | None
_PLANS: dict[tuple[int, str, tuple[str, ...]], tuple[str, tuple[str, ...], tuple[Processor, ...]]] = {}


def _plan(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[str, ...], tuple[Processor, ...]]:
    """(the INSERT, the columns in parameter order, their processors). On SQLite: SQLAlchemy's own single-row
    INSERT, for executemany. On PostgreSQL: `INSERT ... SELECT * FROM unnest(%b::type[], ...)`, one array per
    column: a short statement whatever the number of rows (psycopg caches the parsing of short ones only), typed
    by the columns' types as SQLAlchemy compiles them."""
    key = (id(dialect), table.name, columns)
    plan = _PLANS.get(key)
    if plan is None:
        if dialect.name == "postgresql":
            order = columns
            # %b: arrays in binary form, which psycopg builds without quoting and escaping every element.
            arrays = ", ".join(f"%b::{table.c[name].type.compile(dialect=dialect)}[]" for name in order)
            sql = f"INSERT INTO {table.name} ({', '.join(order)}) SELECT * FROM unnest({arrays})"
        else:
            compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
            sql, order = str(compiled), tuple(compiled.positiontup or ())
        processors = tuple(binder(table.c[name].type, dialect) for name in order)
        plan = _PLANS[key] = (sql, order, processors)
    return plan


def _sqlite_utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to storage")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def binder(kind: Any, dialect: Dialect) -> Processor:
    """The column type's bind processor, as SQLAlchemy applies it. For UTCDateTime on SQLite one C call with the
    same result (UTC, naive, "2026-03-07 12:05:00.000000": SQLAlchemy's SQLite storage format, whose text order is
    time order) instead of the TypeDecorator's and the DATETIME type's Python formatting."""
    if dialect.name == "sqlite" and isinstance(kind, UTCDateTime):
        return _sqlite_utc_text
    return kind._cached_bind_processor(dialect)  # type: ignore[no-any-return]


# Column types whose values go into one JSON document unchanged (as orjson, through serde, writes them) and come
# out of jsonb_to_recordset as SQLAlchemy would have bound them.
_PLAIN = String | Integer | Boolean
_RECORDSET: dict[tuple[int, str, tuple[str, ...]], tuple[str, tuple[str, ...]] | None] = {}


def _json_null(kind: Any) -> bool:
    """Whether SQLAlchemy stores None in a column of this type as JSON null (a JSON column not `none_as_null`)."""
    return isinstance(kind, JSON) and not kind.none_as_null


def _recordset_plan(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, tuple[str, ...]] | None:
    """PostgreSQL: `INSERT ... SELECT ... FROM jsonb_to_recordset(%s::jsonb)`, the whole batch one JSON document
    serialized by orjson in one call (psycopg's array dumpers spend Python time on every element, several times
    what serializing the same rows costs). jsonb, not json: parsed once, its JSON columns are then taken out of
    it as they are, where json_to_recordset parses each of them a second time (~40 us of PostgreSQL's CPU a
    fire). Returns (the INSERT, the aware-datetime columns to check), or None when a column has a type this does
    not cover (the unnest plan then serves)."""
    key = (id(dialect), table.name, columns)
    if key not in _RECORDSET:
        fields, selected, aware = [], [], []
        quote = dialect.identifier_preparer.quote  # threads has a column named "values"
        for name in columns:
            kind, column = table.c[name].type, quote(name)
            if isinstance(kind, UTCDateTime):
                aware.append(name)
            elif not isinstance(kind, JSON | _PLAIN):
                _RECORDSET[key] = None
                return None
            compiled = kind.compile(dialect=dialect)
            # SQLAlchemy binds None in a JSON column as JSON null (unless the column asks for SQL NULL), which
            # jsonb_to_recordset reads as SQL NULL.
            selected.append(f"COALESCE(x.{column}, 'null'::{compiled})" if _json_null(kind) else f"x.{column}")
            fields.append(f"{column} {compiled}")
        sql = (
            f"INSERT INTO {table.name} ({', '.join(quote(name) for name in columns)}) SELECT {', '.join(selected)} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS x({', '.join(fields)})"
        )
        _RECORDSET[key] = (sql, tuple(aware))
    return _RECORDSET[key]


_MISSING = object()


def _processed(rows: list[Record], order: tuple[str, ...], processors: tuple[Processor, ...]) -> list[list[Any]]:
    """The rows' values column by column, each through its column's processor."""
    columns: list[list[Any]] = []
    for name, process in zip(order, processors, strict=True):
        values = [row[name] for row in rows]
        if process is not None and isinstance(values[0], datetime):
            # A batch's datetimes are a few distinct values (its `now`, the slot) in distinct objects.
            done: dict[Any, Any] = {}
            processed = []
            for value in values:
                out = done.get(value, _MISSING)
                if out is _MISSING:
                    out = done[value] = process(value)
                processed.append(out)
            values = processed
        elif process is not None:
            processed = []
            last: Any = object()
            out = None
            for value in values:
                if value is not last:
                    out = process(value)
                    last = value
                processed.append(out)
            values = processed
        columns.append(values)
    return columns


async def insert_rows(conn: AsyncConnection, table: Table, rows: list[Record], dialect: str) -> None:
    """INSERT every row of `rows` (dicts with the same keys) into `table`, in one statement."""
    if not rows:
        return
    engine_dialect: Dialect = conn.sync_connection.dialect  # type: ignore[union-attr]  # its JSON serializer
    if dialect == "postgresql":
        recordset = _recordset_plan(table, tuple(rows[0]), engine_dialect)
        if recordset is not None:
            sql, aware = recordset
            for name in aware:
                for row in rows:
                    value = row[name]
                    if value is not None and value.tzinfo is None:
                        raise ValueError("naive datetime given to storage")  # as UTCDateTime refuses it
            await conn.exec_driver_sql(sql, (dumps(rows),))
            return
    sql, order, processors = _plan(table, tuple(rows[0]), engine_dialect)
    columns = _processed(rows, order, processors)
    if dialect == "postgresql":
        await conn.exec_driver_sql(sql, tuple(columns))
    else:
        await conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))


_KEYED: dict[tuple[int, str, str, str, tuple[str, ...]], tuple[str, tuple[Processor, ...]]] = {}


def _keys_clause(key: str, dialect: Dialect) -> str:
    if dialect.name == "postgresql":
        return f"{key} = ANY(%s)"
    return f"{key} IN (SELECT value FROM json_each(?))"


def _keys_param(keys: list[Any], dialect: Dialect) -> Any:
    return keys if dialect.name == "postgresql" else serde.dumps_str(keys)


async def select_by_keys(
    conn: AsyncConnection, table: Table, key: str, keys: list[Any], columns: tuple[str, ...]
) -> dict[Any, Record]:
    """The rows of `table` whose `key` is in `keys`, as {key: {column: value}} with `key` and `columns`, decoded
    as SQLAlchemy would (each column's own result processor); keys without a row are absent."""
    if not keys:
        return {}
    dialect: Dialect = conn.sync_connection.dialect  # type: ignore[union-attr]
    plan_key = (id(dialect), "select", table.name, key, columns)
    plan = _KEYED.get(plan_key)
    if plan is None:
        names = (key, *columns)
        sql = f"SELECT {', '.join(names)} FROM {table.name} WHERE {_keys_clause(key, dialect)}"
        readers: tuple[Processor, ...] = tuple(
            table.c[name].type._cached_result_processor(dialect, None) for name in names
        )
        plan = _KEYED[plan_key] = (sql, readers)
    sql, processors = plan
    result = await conn.exec_driver_sql(sql, (_keys_param(keys, dialect),))
    names = (key, *columns)
    found: dict[Any, Record] = {}
    for raw in result.all():
        row = {
            name: (process(value) if process is not None and value is not None else value)
            for name, value, process in zip(names, raw, processors, strict=True)
        }
        found[row[key]] = row
    return found


async def update_by_keys(conn: AsyncConnection, table: Table, key: str, keys: list[Any], values: Record) -> int:
    """Set `values` ({column: value}, the same for every row) on the rows of `table` whose `key` is in `keys`, in
    one statement; the number of rows changed."""
    if not keys:
        return 0
    dialect: Dialect = conn.sync_connection.dialect  # type: ignore[union-attr]
    columns = tuple(values)
    plan_key = (id(dialect), "update", table.name, key, columns)
    plan = _KEYED.get(plan_key)
    if plan is None:
        mark = "%s" if dialect.name == "postgresql" else "?"
        assignments = ", ".join(f"{name} = {mark}" for name in columns)
        sql = f"UPDATE {table.name} SET {assignments} WHERE {_keys_clause(key, dialect)}"
        binders: tuple[Processor, ...] = tuple(binder(table.c[name].type, dialect) for name in columns)
        plan = _KEYED[plan_key] = (sql, binders)
    sql, processors = plan
    params = [
        process(values[name]) if process is not None else values[name]
        for name, process in zip(columns, processors, strict=True)
    ]
    result = await conn.exec_driver_sql(sql, (*params, _keys_param(keys, dialect)))
    return int(result.rowcount)


# serde's options, except that datetimes are written by orjson itself ("2026-03-07T12:05:00+00:00", what their
# isoformat() gives and serde's fallback writes) instead of through a Python call each.
_DOCUMENT = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> str:
    """`value` (rows for jsonb_to_recordset) as JSON text: serde's serialization of JSON columns, datetimes in
    ISO 8601 with their offset."""
    return orjson.dumps(value, default=serde._default, option=_DOCUMENT).decode()


async def update_rows(conn: AsyncConnection, table: Table, key: str, changes: dict[Any, Record]) -> None:
    """For each `key` value in `changes`, set its row's columns to the values given ({key: {column: value}}, every
    value with the same columns), in one statement: an executemany on SQLite, one JSON document on PostgreSQL."""
    if not changes:
        return
    dialect: Dialect = conn.sync_connection.dialect  # type: ignore[union-attr]
    columns = tuple(next(iter(changes.values())))
    plan_key = (id(dialect), "update_rows", table.name, key, columns)
    plan = _KEYED.get(plan_key)
    if plan is None:
        quote = dialect.identifier_preparer.quote
        if dialect.name == "postgresql":
            kinds = {name: table.c[name].type for name in (key, *columns)}
            if not all(isinstance(kind, JSON | _PLAIN | UTCDateTime) for kind in kinds.values()):
                raise TypeError(f"update_rows: a column of {table.name} has a type it does not cover")
            assignments = ", ".join(
                f"{quote(c)} = "
                + (
                    f"COALESCE(x.{quote(c)}, 'null'::{kinds[c].compile(dialect=dialect)})"
                    if _json_null(kinds[c])
                    else f"x.{quote(c)}"
                )
                for c in columns
            )
            fields = ", ".join(f"{quote(n)} {kind.compile(dialect=dialect)}" for n, kind in kinds.items())
            sql = (
                f"UPDATE {table.name} SET {assignments} FROM jsonb_to_recordset(%s::jsonb) AS x({fields}) "
                f"WHERE {table.name}.{quote(key)} = x.{quote(key)}"
            )
            processors: tuple[Processor, ...] = ()
        else:
            assignments = ", ".join(f"{quote(c)} = ?" for c in columns)
            sql = f"UPDATE {table.name} SET {assignments} WHERE {quote(key)} = ?"
            processors = tuple(binder(table.c[name].type, dialect) for name in (*columns, key))
        plan = _KEYED[plan_key] = (sql, processors)
    sql, processors = plan
    if dialect.name == "postgresql":
        await conn.exec_driver_sql(sql, (dumps([{key: k, **values} for k, values in changes.items()]),))
        return
    rows = [{**values, key: k} for k, values in changes.items()]
    await conn.exec_driver_sql(sql, list(zip(*_processed(rows, (*columns, key), processors), strict=True)))
