"""LangGraph's AsyncPostgresStore, keeping an item's vectors in step with it (store_vectors.py): a put that
overwrites an item first deletes the item's old vectors, so `index=False` or other fields take effect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.store.postgres.aio import AsyncPostgresStore

from crongraph.graphs.store_vectors import stale_vector_deletes


class VectorSyncedPostgresStore(AsyncPostgresStore):
    def _prepare_batch_PUT_queries(self, put_ops: Sequence[Any]) -> Any:
        queries, embedding_request = super()._prepare_batch_PUT_queries(put_ops)
        if self.index_config:
            queries = stale_vector_deletes(put_ops, "%s") + queries
        return queries, embedding_request
