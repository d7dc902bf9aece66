"""Threads and their state. The thread row is crongraph's; the state is LangGraph's checkpointer, read through the
graph the thread last ran (its metadata names it)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.errors import EmptyInputError, InvalidUpdateError
from langgraph.types import Command, StateUpdate

from crongraph import notify, serde
from crongraph.errors import BadRequest, Conflict, NotFound
from crongraph.graphs.loader import Graph
from crongraph.ids import new_id, system_assistant_id
from crongraph.services.access import allowed
from crongraph.services.context import ServiceContext
from crongraph.services.snapshots import empty_state, snapshot_to_wire
from crongraph.storage import assistants, filters, runs, threads
from crongraph.storage.common import Record


def thread_not_found(thread_id: str) -> NotFound:
    return NotFound(f"Thread with ID '{thread_id}' not found. Please verify the thread ID.")


# Storage failing under an update is the server's fault (500); anything else raised while applying one comes
# from LangGraph or the graph's own reducers refusing the values (unknown node, wrong shape, a message it
# cannot coerce): the client's mistake, 400.
_STORAGE_MODULES = ("sqlite3", "aiosqlite", "psycopg", "sqlalchemy")


def _refused(exc: Exception) -> bool:
    if isinstance(exc, InvalidUpdateError | EmptyInputError):
        return True
    return not type(exc).__module__.startswith(_STORAGE_MODULES)


def _reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


class ThreadService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def new_row(self, thread_id: str, metadata: dict[str, Any], ttl: Any = None) -> Record:
        now = self.ctx.clock.now()
        return {
            "thread_id": thread_id,
            "status": "idle",
            "metadata": metadata,
            "config": {},
            "values": None,
            "interrupts": {},
            "error": None,
            "ttl": ttl if ttl is not None else self.ctx.default_thread_ttl,
            "created_at": now,
            "updated_at": now,
            "state_updated_at": now,
        }

    async def create(self, body: dict[str, Any]) -> Record:
        thread_id = body.get("thread_id") or new_id()
        metadata = dict(body.get("metadata") or {})
        if body.get("graph_id"):
            metadata["graph_id"] = body["graph_id"]
        asked: dict[str, Any] = {"thread_id": thread_id, "metadata": metadata, "if_exists": body.get("if_exists")}
        asked["ttl"] = body.get("ttl")
        visible = await allowed(self.ctx, "threads", "create", asked)
        metadata = dict(asked.get("metadata") or {})  # as the auth handler left it (an owner stamped, say)
        row = self.new_row(thread_id, metadata, body.get("ttl"))
        # The insert is the existence check: one autocommit statement (on PostgreSQL one round trip), which the
        # thread id's primary key makes as safe as the read-then-insert transaction it replaced.
        async with self.ctx.db.autocommit() as conn:
            inserted = await threads.insert_unless_exists(conn, row, self.ctx.dialect)
            if not inserted:
                existing = await threads.get(conn, thread_id)
                # One the caller may not see is "already exists" too, as in the reference (never returned).
                if (
                    existing is not None
                    and body.get("if_exists") == "do_nothing"
                    and (visible is None or await threads.get(conn, thread_id, visible) is not None)
                ):
                    return existing
                raise Conflict(f"Thread with ID {thread_id} already exists")
        if not body.get("supersteps"):
            return row
        try:
            await self._apply_supersteps(row, body["supersteps"])
        except BaseException:
            # A refused superstep must leave nothing behind: not the thread, not a partial history.
            async with self.ctx.db.write() as conn:
                await threads.delete_one(conn, thread_id)
            await self.ctx.persistence.checkpointer.adelete_thread(thread_id)
            raise
        return await self.get(thread_id)

    async def _apply_supersteps(self, thread: Record, supersteps: list[dict[str, Any]]) -> None:
        """Replay a history given at creation (how the reference copies threads between deployments): each
        superstep's updates are applied together, as one step of the graph."""
        async with self._graph_for_update(thread) as graph:
            try:
                steps = [
                    [
                        StateUpdate(
                            # LangGraph applies a Command given as the values, though StateUpdate says dict.
                            Command(**u["command"]) if u.get("command") else u.get("values"),  # type: ignore[arg-type]
                            u.get("as_node"),
                        )
                        for u in step.get("updates") or []
                    ]
                    for step in supersteps
                ]
                await graph.abulk_update_state(self._config(thread["thread_id"]), steps)
            except Exception as exc:
                if not _refused(exc):
                    raise
                raise BadRequest(f"Cannot apply supersteps to thread {thread['thread_id']}: {_reason(exc)}") from None
            await self._mirror_state(thread, graph)

    async def get(self, thread_id: str, action: str = "read") -> Record:
        """The thread, as the caller may `action` it ("read", "update"; the auth handlers decide). NotFound when it
        does not exist or the caller's filter hides it."""
        visible = await allowed(self.ctx, "threads", action, {"thread_id": thread_id})
        async with self.ctx.db.read() as conn:
            found = await threads.get(conn, thread_id, visible)
        if found is None:
            raise thread_not_found(thread_id)
        return found

    async def update(self, thread_id: str, body: dict[str, Any]) -> Record:
        # Never None: the templates' handlers do `value.setdefault("metadata", {})["owner"] = ...`.
        asked = {"thread_id": thread_id, "metadata": dict(body.get("metadata") or {})}
        visible = await allowed(self.ctx, "threads", "update", asked)
        if asked.get("metadata") or body.get("metadata") is not None:
            body = {**body, "metadata": asked.get("metadata") or {}}
        async with self.ctx.db.write() as conn:
            current = await threads.get(conn, thread_id, visible)
            if current is None:
                raise thread_not_found(thread_id)
            changes: dict[str, Any] = {"updated_at": self.ctx.clock.now()}
            if body.get("metadata") is not None:
                changes["metadata"] = {**current["metadata"], **body["metadata"]}
            if body.get("ttl") is not None:
                changes["ttl"] = body["ttl"]
            await threads.update_fields(conn, thread_id, **changes)
        return {**current, **changes}

    async def delete(self, thread_id: str) -> None:
        visible = await allowed(self.ctx, "threads", "delete", {"thread_id": thread_id})
        async with self.ctx.db.write() as conn:
            if visible is not None and await threads.get(conn, thread_id, visible) is None:
                raise thread_not_found(thread_id)
            inflight = await runs.inflight_on_thread(conn, thread_id)
            if not await threads.delete_one(conn, thread_id, visible):
                raise thread_not_found(thread_id)
        for run in inflight:
            await self.ctx.notifier.notify(notify.CANCEL, f"{run['run_id']}:interrupt")
        await self.ctx.persistence.checkpointer.adelete_thread(thread_id)

    async def _search_filter(self, body: dict[str, Any]) -> Any:
        asked: dict[str, Any] = {
            k: body.get(k) for k in ("metadata", "values", "status", "limit", "offset", "ids") if k in body
        }
        asked["metadata"] = dict(asked.get("metadata") or {})
        return await allowed(self.ctx, "threads", "search", asked)

    async def search(self, body: dict[str, Any]) -> list[Record]:
        visible = await self._search_filter(body)
        async with self.ctx.db.read() as conn:
            return await threads.search(
                conn,
                dialect=self.ctx.dialect,
                metadata=body.get("metadata"),
                values=body.get("values"),
                ids=body.get("ids"),
                status=body.get("status"),
                limit=body["limit"],
                offset=body["offset"],
                sort_by=body.get("sort_by") or "created_at",
                sort_order=body.get("sort_order") or "desc",
                visible=visible,
            )

    async def count(self, body: dict[str, Any]) -> int:
        visible = await self._search_filter(body)
        async with self.ctx.db.read() as conn:
            return await threads.count(
                conn,
                dialect=self.ctx.dialect,
                metadata=body.get("metadata"),
                values=body.get("values"),
                status=body.get("status"),
                visible=visible,
            )

    async def copy(self, thread_id: str) -> Record:
        source = await self.get(thread_id)
        new_thread = new_id()
        # Copying creates a thread: the create handler may refuse it or stamp the copy's metadata.
        asked = {"thread_id": new_thread, "metadata": dict(source["metadata"])}
        await allowed(self.ctx, "threads", "create", asked)
        row = {**source, **self.new_row(new_thread, dict(asked.get("metadata") or {}), source["ttl"])}
        row.update(
            values=source["values"],
            interrupts=source["interrupts"],
            status=source["status"] if source["status"] != "busy" else "idle",
        )
        async with self.ctx.db.write() as conn:
            await threads.insert_new(conn, row)
        await self.ctx.persistence.checkpointer.acopy_thread(thread_id, new_thread)
        return row

    async def prune(self, thread_ids: list[str], strategy: str) -> int:
        """ "delete" removes the threads; "keep_latest" keeps them and their latest state but drops their older
        checkpoints. Unknown ids are skipped; the count is of threads actually pruned."""
        pruned = 0
        for thread_id in dict.fromkeys(thread_ids):
            try:
                if strategy == "keep_latest":
                    await self.get(thread_id, "update")
                    await self.ctx.persistence.checkpointer.aprune([thread_id], strategy="keep_latest")
                else:
                    await self.delete(thread_id)
            except NotFound:
                continue
            pruned += 1
        return pruned

    # State

    async def _graph_id_for(self, thread: Record) -> str | None:
        graph_id = thread["metadata"].get("graph_id")
        if graph_id is None or graph_id not in self.ctx.graphs:
            assistant_id = thread["metadata"].get("assistant_id")
            if assistant_id:
                async with self.ctx.db.read() as conn:
                    assistant = await assistants.get(conn, assistant_id)
                graph_id = assistant["graph_id"] if assistant else None
        if graph_id is None or graph_id not in self.ctx.graphs:
            return None
        return str(graph_id)

    @asynccontextmanager
    async def _graph_for(self, thread: Record) -> AsyncIterator[Graph | None]:
        """The graph the thread's state is read through, held for the block (None when no served graph is its)."""
        graph_id = await self._graph_id_for(thread)
        if graph_id is None:
            yield None
            return
        config = {"configurable": {"thread_id": thread["thread_id"]}}
        async with self.ctx.graphs.graph(graph_id, config, access="threads.read") as graph:
            yield graph

    @asynccontextmanager
    async def _graph_for_update(self, thread: Record) -> AsyncIterator[Graph]:
        """The graph whose state an update writes, held for the block: the thread's own, or the only graph
        served. Adopting that one records it on the thread, so that later reads find the same graph."""
        thread_id = thread["thread_id"]
        graph_id = await self._graph_id_for(thread)
        if graph_id is not None:
            async with self.ctx.graphs.graph(graph_id, dict(self._config(thread_id)), access="threads.update") as graph:
                yield graph
            return
        if len(self.ctx.graphs.ids) != 1:
            named = thread["metadata"].get("graph_id")
            reason = f"its graph '{named}' is not served" if named else "it has no graph yet"
            raise BadRequest(
                f"Cannot update the state of thread {thread_id}: {reason}. Create the thread with a graph_id "
                "or run it once first."
            )
        graph_id = self.ctx.graphs.ids[0]
        metadata = {**thread["metadata"], "graph_id": graph_id, "assistant_id": system_assistant_id(graph_id)}
        async with self.ctx.db.write() as conn:
            await threads.update_fields(conn, thread_id, metadata=metadata)
        thread["metadata"] = metadata
        async with self.ctx.graphs.graph(graph_id, dict(self._config(thread_id)), access="threads.update") as graph:
            yield graph

    @staticmethod
    def _config(thread_id: str, checkpoint: dict[str, Any] | None = None) -> RunnableConfig:
        configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
        if checkpoint:
            configurable.update({k: v for k, v in checkpoint.items() if v is not None and k != "thread_id"})
        return {"configurable": configurable}

    async def get_state(
        self, thread_id: str, checkpoint: dict[str, Any] | None = None, subgraphs: bool = False
    ) -> dict[str, Any]:
        thread = await self.get(thread_id)
        wanted = checkpoint.get("checkpoint_id") if checkpoint else None
        async with self._graph_for(thread) as graph:
            if graph is None:
                if wanted:
                    raise self._checkpoint_not_found(thread_id, wanted)
                return empty_state(thread_id)
            state = await graph.aget_state(self._config(thread_id, checkpoint), subgraphs=subgraphs)
        # A checkpoint that does not exist reads as an empty snapshot with no metadata.
        if wanted and state.metadata is None:
            raise self._checkpoint_not_found(thread_id, wanted)
        return snapshot_to_wire(state)

    @staticmethod
    def _checkpoint_not_found(thread_id: str, checkpoint_id: str) -> NotFound:
        return NotFound(f"Checkpoint '{checkpoint_id}' not found on thread {thread_id}")

    async def update_state(self, thread_id: str, body: dict[str, Any]) -> dict[str, Any]:
        thread = await self.get(thread_id, "update")
        checkpoint = body.get("checkpoint") or (
            {"checkpoint_id": body["checkpoint_id"]} if body.get("checkpoint_id") else None
        )
        if checkpoint and checkpoint.get("checkpoint_id"):
            # Forking from a checkpoint that does not exist would silently start from an empty state.
            await self.get_state(thread_id, checkpoint)
        async with self._graph_for_update(thread) as graph:
            try:
                config = await graph.aupdate_state(
                    self._config(thread_id, checkpoint), body.get("values"), as_node=body.get("as_node")
                )
            except Exception as exc:
                if not _refused(exc):
                    raise
                raise BadRequest(f"Cannot update the state of thread {thread_id}: {_reason(exc)}") from None
            await self._mirror_state(thread, graph)
        return {"checkpoint": serde.to_jsonable(config["configurable"])}

    async def _mirror_state(self, thread: Record, graph: Graph) -> None:
        """Copy the latest values and interrupt status onto the thread row, which search and status read."""
        thread_id = thread["thread_id"]
        state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        now = self.ctx.clock.now()
        async with self.ctx.db.write() as conn:
            await threads.update_fields(
                conn,
                thread_id,
                values=serde.to_jsonable(state.values),
                updated_at=now,
                state_updated_at=now,
                status="interrupted" if state.interrupts else ("idle" if thread["status"] != "busy" else "busy"),
            )

    async def history(self, thread_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        thread = await self.get(thread_id)
        before = body.get("before")
        if isinstance(before, str):
            before = {"checkpoint_id": before}
        # A metadata key LangGraph's SQLite saver cannot put in a JSON path is filtered here (filters.py).
        wanted = body.get("metadata") or None
        pushed, exact = filters.checkpoint_filter(wanted, self.ctx.dialect)
        limit = body.get("limit", 10)
        result: list[dict[str, Any]] = []
        async with self._graph_for(thread) as graph:
            if graph is None:
                return []
            # An async generator (typed as an iterator): closed when the loop stops early.
            states = cast(
                AsyncGenerator[Any, None],
                graph.aget_state_history(
                    self._config(thread_id, body.get("checkpoint")),
                    limit=limit if exact else None,
                    before=self._config(thread_id, before) if before else None,
                    filter=pushed,
                ),
            )
            async with aclosing(states):
                async for state in states:
                    if exact or filters.contains(state.metadata or {}, wanted):
                        result.append(snapshot_to_wire(state))
                        if len(result) >= limit:
                            break
        return result
