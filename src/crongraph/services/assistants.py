"""Assistants: create, version, search and delete; one system assistant per graph, with the reference's ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from crongraph.errors import Conflict, InvalidInput, NotFound
from crongraph.graphs.loader import Graph
from crongraph.ids import new_id, parse_uuid, system_assistant_id
from crongraph.services.access import allowed
from crongraph.services.context import ServiceContext
from crongraph.storage import assistants
from crongraph.storage.common import Record


class AssistantService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def resolve_id(self, value: str) -> str | None:
        """A graph id names its system assistant; otherwise the value must be a UUID (None if it is not)."""
        if value in self.ctx.graphs:
            return system_assistant_id(value)
        return parse_uuid(value)

    async def ensure_system_assistants(self) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.write() as conn:
            for graph_id in self.ctx.graphs.ids:
                await assistants.insert_if_absent(
                    conn,
                    {
                        "assistant_id": system_assistant_id(graph_id),
                        "graph_id": graph_id,
                        "name": graph_id,
                        "description": self.ctx.graphs.description(graph_id),
                        "config": {},
                        "context": {},
                        "metadata": {"created_by": "system"},
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    },
                )

    def _check_graph(self, graph_id: str) -> None:
        if graph_id not in self.ctx.graphs:
            raise NotFound(f"Graph '{graph_id}' not found. Expected one of: {self.ctx.graphs.ids}")

    async def create(self, body: dict[str, Any]) -> Record:
        self._check_graph(body["graph_id"])
        assistant_id = body.get("assistant_id") or new_id()
        asked = {
            "assistant_id": assistant_id,
            "graph_id": body["graph_id"],
            "config": body.get("config") or {},
            "context": body.get("context") or {},
            "metadata": dict(body.get("metadata") or {}),
            "if_exists": body.get("if_exists"),
            "name": body.get("name") or "Untitled",
        }
        visible = await allowed(self.ctx, "assistants", "create", asked)
        # What the auth handler left is what is stored (an owner stamped in the metadata, say).
        body = {**body, **{k: asked.get(k) for k in ("config", "context", "metadata", "name")}}
        now = self.ctx.clock.now()
        async with self.ctx.db.write() as conn:
            existing = await assistants.get(conn, assistant_id)
            if existing is not None:
                # One the caller may not see is "already exists" too (never returned).
                if body.get("if_exists") == "do_nothing" and (
                    visible is None or await assistants.get(conn, assistant_id, visible) is not None
                ):
                    return existing
                raise Conflict(f"Assistant {assistant_id} already exists")
            return await assistants.insert_new(
                conn,
                {
                    "assistant_id": assistant_id,
                    "graph_id": body["graph_id"],
                    "name": body.get("name") or "Untitled",
                    "description": body.get("description"),
                    "config": body.get("config") or {},
                    "context": body.get("context") or {},
                    "metadata": body.get("metadata") or {},
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                },
            )

    async def get(self, assistant_id: str) -> Record:
        visible = await allowed(self.ctx, "assistants", "read", {"assistant_id": assistant_id})
        async with self.ctx.db.read() as conn:
            found = await assistants.get(conn, assistant_id, visible)
        if found is None:
            raise NotFound(f"Assistant '{assistant_id}' not found")
        return found

    async def update(self, assistant_id: str, body: dict[str, Any]) -> Record:
        if body.get("graph_id") is not None:
            self._check_graph(body["graph_id"])
        asked = {k: body.get(k) for k in ("graph_id", "config", "context", "metadata", "name")}
        asked.update(assistant_id=assistant_id, version=None, metadata=dict(body.get("metadata") or {}))
        visible = await allowed(self.ctx, "assistants", "update", asked)
        body = {**body, **{k: asked.get(k) for k in ("config", "context", "name")}}
        if asked["metadata"] or body.get("metadata") is not None:
            body["metadata"] = asked["metadata"]
        changes = {
            k: body[k] for k in ("graph_id", "name", "description", "config", "context") if body.get(k) is not None
        }
        async with self.ctx.db.write() as conn:
            current = await assistants.get(conn, assistant_id, visible)
            if current is None:
                raise NotFound(f"Assistant '{assistant_id}' not found")
            if body.get("metadata") is not None:
                changes["metadata"] = {**current["metadata"], **body["metadata"]}
            updated = await assistants.add_version(conn, assistant_id, changes, self.ctx.clock.now())
        assert updated is not None
        return updated

    async def delete(self, assistant_id: str, delete_threads: bool = False) -> None:
        from crongraph.storage import runs as run_rows

        visible = await allowed(self.ctx, "assistants", "delete", {"assistant_id": assistant_id})
        async with self.ctx.db.write() as conn:
            if not await assistants.delete_one(conn, assistant_id, visible):
                raise NotFound(f"Assistant '{assistant_id}' not found")
            thread_ids = await run_rows.thread_ids_for_assistant(conn, assistant_id) if delete_threads else []
        if thread_ids:
            from crongraph.services.threads import ThreadService

            service = ThreadService(self.ctx)
            for thread_id in thread_ids:
                try:
                    await service.delete(thread_id)
                except NotFound:
                    pass

    async def _search_filter(self, body: dict[str, Any]) -> Any:
        asked = {
            "graph_id": body.get("graph_id"),
            "metadata": body.get("metadata") or {},
            "limit": body.get("limit", 10),
            "offset": body.get("offset", 0),
        }
        return await allowed(self.ctx, "assistants", "search", asked)

    async def search(self, body: dict[str, Any]) -> list[Record]:
        visible = await self._search_filter(body)
        async with self.ctx.db.read() as conn:
            return await assistants.search(
                conn,
                dialect=self.ctx.dialect,
                metadata=body.get("metadata"),
                graph_id=body.get("graph_id"),
                name=body.get("name"),
                limit=body["limit"],
                offset=body["offset"],
                sort_by=body.get("sort_by") or "created_at",
                sort_order=body.get("sort_order") or "desc",
                visible=visible,
            )

    async def count(self, body: dict[str, Any]) -> int:
        visible = await self._search_filter(body)
        async with self.ctx.db.read() as conn:
            return await assistants.count(
                conn,
                dialect=self.ctx.dialect,
                metadata=body.get("metadata"),
                graph_id=body.get("graph_id"),
                name=body.get("name"),
                visible=visible,
            )

    async def versions(self, assistant_id: str, body: dict[str, Any]) -> list[Record]:
        await self.get(assistant_id)
        async with self.ctx.db.read() as conn:
            return await assistants.versions(
                conn,
                assistant_id,
                dialect=self.ctx.dialect,
                metadata=body.get("metadata"),
                limit=body["limit"],
                offset=body["offset"],
            )

    async def set_latest(self, assistant_id: str, version: int) -> Record:
        asked = {"assistant_id": assistant_id, "version": version}
        visible = await allowed(self.ctx, "assistants", "update", asked)
        async with self.ctx.db.write() as conn:
            if await assistants.get(conn, assistant_id, visible) is None:
                raise NotFound(f"Assistant '{assistant_id}' not found")
            updated = await assistants.set_latest(conn, assistant_id, version, self.ctx.clock.now())
        if updated is None:
            raise NotFound(f"Assistant '{assistant_id}' has no version {version}")
        return updated

    @asynccontextmanager
    async def graph_of(self, assistant_id: str) -> AsyncIterator[tuple[Graph, Record]]:
        """The assistant's graph, built for introspection (/graph, /schemas, /subgraphs) with the assistant's
        config and held for the block, and the assistant."""
        assistant = await self.get(assistant_id)
        graph_id = assistant["graph_id"]
        if graph_id not in self.ctx.graphs:
            raise InvalidInput(f"Graph '{graph_id}' is no longer served")
        config = dict(assistant["config"] or {})
        config["configurable"] = dict(config.get("configurable") or {})
        async with self.ctx.graphs.graph(graph_id, config, access="assistants.read") as graph:
            yield graph, assistant
