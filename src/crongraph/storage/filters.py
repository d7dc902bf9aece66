"""Metadata filters ("JSON containment") for both dialects.

PostgreSQL answers containment natively (`@>` on jsonb). SQLite compares top-level scalar values in SQL; a filter
with nested objects or arrays is narrowed in SQL by its scalar keys and finished in Python with `contains`, and
the caller then paginates in Python (see `SqlFilter.exact`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB


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


def _sqlite_path(key: str) -> str:
    return '$."' + key.replace('"', '\\"') + '"'


def json_contains(column: Any, subset: dict[str, Any] | None, dialect: str) -> SqlFilter:
    if not subset:
        return SqlFilter(true(), True)
    if dialect == "postgresql":
        return SqlFilter(type_coerce(column, JSONB).contains(subset), True)
    clauses: list[ColumnElement[bool]] = []
    exact = True
    for key, value in subset.items():
        path = _sqlite_path(key)
        if value is None:
            clauses.append(func.json_type(column, path) == "null")
        elif isinstance(value, bool):
            clauses.append(func.json_type(column, path) == ("true" if value else "false"))
        elif isinstance(value, str | int | float):
            clauses.append(func.json_extract(column, path) == value)
        else:
            clauses.append(func.json_type(column, path) == ("object" if isinstance(value, dict) else "array"))
            exact = False
    return SqlFilter(and_(*clauses), exact)
