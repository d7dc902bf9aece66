"""LangGraph's AsyncSqliteStore, keeping an item's `created_at` when a put overwrites it.

LangGraph's SQLite store writes every put with INSERT OR REPLACE, which deletes the old row and so resets
`created_at`; its Postgres store, and the reference, keep it and move only `updated_at`. This store turns that one
statement into an upsert and leaves the rest of LangGraph's code as it is (the version is pinned in
pyproject.toml; tests/e2e/test_store.py fails if the statement it rewrites changes shape)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.store.sqlite.aio import AsyncSqliteStore

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
    def _prepare_batch_PUT_queries(self, put_ops: Sequence[Any]) -> Any:
        queries, embedding_request = super()._prepare_batch_PUT_queries(put_ops)
        return [(_keep_created_at(query), params) for query, params in queries], embedding_request
