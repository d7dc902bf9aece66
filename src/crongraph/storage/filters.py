"""Metadata filters ("JSON containment") for both dialects.

PostgreSQL answers containment natively (`@>` on jsonb). SQLite compares top-level scalar values in SQL; a filter
with nested objects or arrays is narrowed in SQL by its scalar keys and finished in Python with `contains`, and
the caller then paginates in Python (see `SqlFilter.exact`). Any key and any value is a valid filter: keys never
reach SQL text (they are bound parameters, or skipped and left to `contains`).

`checkpoint_filter` does the same for the filters handed to LangGraph's checkpointers (thread history).

`Match` applies an auth handler's filter (the reference's language: equality, `$eq`, `$contains`, `$and`, `$or`
over top-level metadata keys, scalar values; checked by crongraph/auth/handlers.py) in SQL, always exactly, on both
dialects: a resource it hides is never read into Python. On PostgreSQL through `->` and jsonb operators; on SQLite
through `json_each` over the metadata object, which addresses any key (a JSON path cannot quote some).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from crongraph import serde


def contains(document: Any, subset: Any) -> bool:
    """JSONB containment semantics: every key of `subset` is in `document` with a contained value."""
    if isinstance(subset, dict):
        return isinstance(document, dict) and all(
            key in document and contains(document[key], value) for key, value in subset.items()
        )
    if isinstance(subset, list):
        return isinstance(document, list) and all(any(contains(d, s) for d in document) for s in subset)
    return bool(document == subset and type(document) is type(subset)) or (
        isinstance(document, int | float)
        and isinstance(subset, int | float)
        and not isinstance(document, bool)
        and not isinstance(subset, bool)
        and document == subset
    )


@dataclass(frozen=True)
class SqlFilter:
    clause: ColumnElement[bool]
    # False when the SQL clause only narrows the rows and `contains` must confirm each one.
    exact: bool


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _sqlite_path(key: str) -> str | None:
    """The JSON path of a top-level key, or None when SQLite cannot address it: its paths compare keys in their
    escaped JSON form and cannot quote a double quote at all."""
    if any(c in key for c in '"\\') or any(ord(c) < 0x20 for c in key):
        return None
    return '$."' + key + '"'


def json_contains(column: Any, subset: dict[str, Any] | None, dialect: str) -> SqlFilter:
    if not subset:
        return SqlFilter(true(), True)
    if dialect == "postgresql":
        return SqlFilter(type_coerce(column, JSONB).contains(subset), True)
    clauses: list[ColumnElement[bool]] = []
    exact = True
    for key, value in subset.items():
        path = _sqlite_path(key)
        if path is None:
            exact = False
        elif value is None:
            clauses.append(func.json_type(column, path) == "null")
        elif isinstance(value, bool):
            clauses.append(func.json_type(column, path) == ("true" if value else "false"))
        elif isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
            # SQLite cannot bind it; narrow to numbers and let `contains` compare.
            clauses.append(func.json_type(column, path).in_(("integer", "real")))
            exact = False
        elif isinstance(value, str):
            clauses.append(and_(func.json_type(column, path) == "text", func.json_extract(column, path) == value))
        elif isinstance(value, int | float):
            # json_extract gives 1 for true: the type check keeps {"a": 1} from matching {"a": true}.
            clauses.append(
                and_(func.json_type(column, path).in_(("integer", "real")), func.json_extract(column, path) == value)
            )
        else:
            clauses.append(func.json_type(column, path) == ("object" if isinstance(value, dict) else "array"))
            exact = False
    return SqlFilter(and_(true(), *clauses), exact)


# LangGraph's SQLite checkpointer builds `json_extract(metadata, '$.<key>')` from each key, refuses (ValueError) a
# key outside this set, and reads a dot as a path into a nested object.
_CHECKPOINT_KEY = re.compile(r"[A-Za-z0-9_-]+")


def checkpoint_filter(subset: dict[str, Any] | None, dialect: str) -> tuple[dict[str, Any] | None, bool]:
    """The part of a metadata filter to hand to LangGraph's checkpointer, and whether it is exact.

    PostgreSQL's saver uses jsonb containment: the whole filter, exact. SQLite's compares `json_extract` with `=`
    (so 1 matches true and nested values compare as text): only plain keys with string or number values are
    passed, as a narrowing; when not exact the caller confirms each checkpoint with `contains` (and so must not
    let the checkpointer apply its limit)."""
    if not subset:
        return None, True
    if dialect == "postgresql":
        return subset, True
    narrowing = {
        key: value
        for key, value in subset.items()
        if _CHECKPOINT_KEY.fullmatch(key)
        and isinstance(value, str | int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, int) or _INT64_MIN <= value <= _INT64_MAX)
    }
    exact = all(isinstance(v, str) for v in narrowing.values()) and len(narrowing) == len(subset)
    return narrowing or None, exact


@dataclass(frozen=True)
class Match:
    """An auth filter (`spec`, already checked) for `dialect`; `on(column)` is the SQL condition that a row's JSON
    `column` (its metadata) satisfies it."""

    spec: dict[str, Any]
    dialect: str

    def on(self, column: Any) -> ColumnElement[bool]:
        return _all_of(column, self.spec, self.dialect)


def _all_of(column: Any, spec: dict[str, Any], dialect: str) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    for key, value in spec.items():
        if key == "$and":
            clauses.append(and_(*(_all_of(column, group, dialect) for group in value)))
        elif key == "$or":
            clauses.append(or_(*(_all_of(column, group, dialect) for group in value)))
        elif isinstance(value, dict) and "$contains" in value:
            wanted = value["$contains"]
            items = wanted if isinstance(wanted, list) else [wanted]
            clauses.append(_contains(column, key, items, dialect))
        else:
            clauses.append(_equals(column, key, value["$eq"] if isinstance(value, dict) else value, dialect))
    return and_(true(), *clauses)


def _pg_member(column: Any, key: str) -> Any:
    return type_coerce(column, JSONB).op("->")(bindparam(None, key, type_=String))


def _jsonb(value: Any) -> Any:
    return cast(bindparam(None, serde.dumps_str(value), type_=String), JSONB)


def _sqlite_value_is(kind: Any, atom: Any, value: Any) -> ColumnElement[bool]:
    """`kind` and `atom` (json_each's `type` and `atom`) describe a JSON value equal to the scalar `value`."""
    if value is None:
        return kind == "null"  # type: ignore[no-any-return]
    if isinstance(value, bool):
        return kind == ("true" if value else "false")  # type: ignore[no-any-return]
    if isinstance(value, str):
        return and_(kind == "text", atom == value)
    # json_each gives 1 for true as its atom: the type check keeps {"a": 1} from matching {"a": true}.
    return and_(kind.in_(("integer", "real")), atom == value)


def _equals(column: Any, key: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return _pg_member(column, key) == _jsonb(value)  # type: ignore[no-any-return]
    member = func.json_each(column).table_valued("key", "type", "atom").alias()
    return (
        select(literal(1))
        .select_from(member)
        .where(member.c.key == key, _sqlite_value_is(member.c.type, member.c.atom, value))
        .exists()
    )


def _contains(column: Any, key: str, items: list[Any], dialect: str) -> ColumnElement[bool]:
    """The key holds an array with every one of `items` (scalars) among its elements."""
    if dialect == "postgresql":
        member = _pg_member(column, key)
        return and_(func.jsonb_typeof(member) == "array", member.op("@>")(_jsonb(items)))
    if not items:
        member = func.json_each(column).table_valued("key", "type").alias()
        return select(literal(1)).select_from(member).where(member.c.key == key, member.c.type == "array").exists()
    clauses = []
    for item in items:
        member = func.json_each(column).table_valued("key", "type", "value").alias()
        element = func.json_each(member.c.value).table_valued("type", "atom").alias()
        clauses.append(
            select(literal(1))
            .select_from(member)
            .join(element, true())
            .where(
                member.c.key == key, member.c.type == "array", _sqlite_value_is(element.c.type, element.c.atom, item)
            )
            .exists()
        )
    return and_(*clauses) if clauses else false()
