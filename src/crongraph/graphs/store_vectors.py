"""Keeps a store item's vectors in step with the item when a put overwrites or deletes it.

LangGraph's SQLite and Postgres stores write an item's vectors with an upsert per (item, field) and never remove
the old ones: an item re-put with `index=False`, or with other fields, keeps ranking by what it said before, and on
SQLite (whose connection does not enforce foreign keys) a deleted item's vectors stay behind. The stores call
`_prepare_batch_PUT_queries` and run the statements it returns in order, in one transaction, before the new
vectors are inserted: prepending one DELETE of the touched items' vectors makes the vectors exactly the new put's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any


def stale_vector_deletes(put_ops: Sequence[tuple[int, Any]], placeholder: str) -> list[tuple[str, Sequence[Any]]]:
    """One `DELETE FROM store_vectors` per namespace for every item `put_ops` writes or deletes (LangGraph's
    PutOp: namespace, key, value), with the driver's parameter `placeholder` ("?" or "%s")."""
    keys: dict[str, set[str]] = defaultdict(set)
    for _, op in put_ops:
        keys[".".join(op.namespace)].add(op.key)
    statements: list[tuple[str, Sequence[Any]]] = []
    for prefix, names in keys.items():
        marks = ",".join([placeholder] * len(names))
        statements.append(
            (
                f"DELETE FROM store_vectors WHERE prefix = {placeholder} AND key IN ({marks})",
                (prefix, *sorted(names)),
            )
        )
    return statements
