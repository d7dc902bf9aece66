"""LangGraph's AsyncSqliteStore, keeping an item's `created_at` when a put overwrites it, and its vectors in step
with it.

LangGraph's SQLite store writes every put with INSERT OR REPLACE, which deletes the old row and so resets
`created_at`; its Postgres store, and the reference, keep it and move only `updated_at`. This store turns that one
statement into an upsert and leaves the rest of LangGraph's code as it is (the version is pinned in
pyproject.toml; tests/e2e/test_store.py fails if the statement it rewrites changes shape). With an index, the
item's old vectors are deleted first (store_vectors.py). The index's `fields` are passed under the name this
store reads (`text_fields`; its Postgres sibling reads `fields`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite
from langgraph.store.sqlite.aio import AsyncSqliteStore

from crongraph.graphs.store_vectors import stale_vector_deletes

_REPLACE = "INSERT OR REPLACE INTO store ("
_UPSERT = (
    " ON CONFLICT(prefix, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,"
    " expires_at = excluded.expires_at, ttl_minutes = excluded.ttl_minutes"
)


def _keep_created_at(query: str) -> str:
    if query.lstrip().startswith(_REPLACE):
        return query.replace(_REPLACE, "INSERT INTO store (", 1).rstrip() + _UPSERT
    return query


class UpsertingSqliteStore(AsyncSqliteStore):
    def __init__(
        self, conn: aiosqlite.Connection, *, index: dict[str, Any] | None = None, ttl: dict[str, Any] | None = None
    ) -> None:
        if index is not None and "text_fields" not in index:
            index = {**index, "text_fields": index.get("fields")}
        super().__init__(conn, index=index, ttl=ttl)  # type: ignore[arg-type]

    def _prepare_batch_PUT_queries(self, put_ops: Sequence[Any]) -> Any:
        queries, embedding_request = super()._prepare_batch_PUT_queries(put_ops)
        queries = [(_keep_created_at(query), params) for query, params in queries]
        if self.index_config:
            queries = stale_vector_deletes(put_ops, "?") + queries
        return queries, embedding_request
