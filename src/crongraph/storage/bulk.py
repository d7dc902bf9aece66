"""Inserting many rows of one table at once, at the cost of the driver rather than of SQLAlchemy's per-row work.

A cron burst inserts thousands of threads, runs and fire-log rows at once. SQLAlchemy's executemany builds a
parameter dictionary per row and runs every value through its type's processor (on SQLite each datetime is
formatted as text: a run row has four), which costs several times what SQLite takes to store the row; on
psycopg it pipelines one INSERT per row, each parsed and run by the server. `insert_rows` renders the INSERT once
per table and set of columns, applies the same type processors SQLAlchemy would (what is stored is identical:
the same text for datetimes on SQLite, the same JSON serializer, the columns' own types on PostgreSQL), reusing
the processed value when a column holds the very same object as in the previous row (a batch's rows share their
`created_at`), and hands the driver the values: on SQLite one executemany of tuples, on PostgreSQL one INSERT of
one array per column (unnest), however many rows.

Invariant: every row has the same keys, all of them columns of the table (else KeyError / a driver error, and
the caller's transaction rolls back).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from crongraph.storage.common import Record

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
        processors = tuple(table.c[name].type._cached_bind_processor(dialect) for name in order)
        plan = _PLANS[key] = (sql, order, processors)
    return plan


def _processed(rows: list[Record], order: tuple[str, ...], processors: tuple[Processor, ...]) -> list[list[Any]]:
    """The rows' values column by column, each through its column's processor."""
    columns: list[list[Any]] = []
    for name, process in zip(order, processors, strict=True):
        values = [row[name] for row in rows]
        if process is not None:
            processed: list[Any] = []
            last: Any = object()
            out: Any = None
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
    sql, order, processors = _plan(table, tuple(rows[0]), engine_dialect)
    columns = _processed(rows, order, processors)
    if dialect == "postgresql":
        await conn.exec_driver_sql(sql, tuple(columns))
    else:
        await conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
