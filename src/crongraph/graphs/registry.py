"""The graphs this server serves, loaded once at start, and lent out ready to use: bound to the checkpointer and
store, built per use when the graph is a factory.

`async with registry.graph(graph_id, config, access=...) as graph:` is the only way to get one. A plain compiled
graph is bound once and the same copy is lent every time (no per-run work). A factory is called for every use with
the config and a ServerRuntime for `access` (see server_runtime.py); when it returns a context manager, that is
entered for the block and exited when the block ends, so a run holds its graph until the run is over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph_sdk.runtime import AccessContext

from crongraph.auth import context as auth_context
from crongraph.auth.users import AuthUser
from crongraph.graphs import context as run_context
from crongraph.graphs import server_runtime
from crongraph.graphs.config import ProjectConfig, apply_environment
from crongraph.graphs.loader import Graph, LoadedGraph, built, load_graph
from crongraph.graphs.persistence import Persistence


class GraphRegistry:
    def __init__(self, graphs: dict[str, LoadedGraph]) -> None:
        self._graphs = graphs
        self._bound: dict[str, Graph] = {}
        self._persistence: Persistence | None = None

    @classmethod
    def load(cls, config: ProjectConfig) -> GraphRegistry:
        apply_environment(config)
        name = str(config.path) if config.path else "bundled example"
        return cls({spec.graph_id: load_graph(spec, config.base_dir, name) for spec in config.graphs})

    def bind(self, persistence: Persistence) -> None:
        self._persistence = persistence
        self._bound.clear()

    @property
    def ids(self) -> list[str]:
        return list(self._graphs)

    def __contains__(self, graph_id: object) -> bool:
        return graph_id in self._graphs

    def description(self, graph_id: str) -> str | None:
        return self._graphs[graph_id].description

    def is_factory(self, graph_id: str) -> bool:
        return self._graphs[graph_id].graph is None

    def _attach(self, graph: Graph, graph_id: str) -> Graph:
        assert self._persistence is not None, "bind() before running graphs"
        update: dict[str, Any] = {"checkpointer": self._persistence.checkpointer, "store": self._persistence.store}
        if graph.name == "LangGraph":  # LangGraph's default name: the reference names such a graph by its id
            update["name"] = graph_id
        return graph.copy(update=update)

    @asynccontextmanager
    async def graph(
        self,
        graph_id: str,
        config: dict[str, Any] | None = None,
        *,
        access: AccessContext = "assistants.read",
        context: Any = None,
    ) -> AsyncIterator[Graph]:
        """The graph `graph_id` for one use (KeyError if not served). `access` says why it is needed; `context` (a
        run's context dict) reaches a factory's `ServerRuntime` when `access` is `threads.create_run`, fitted to
        the `Ctx` of a `ServerRuntime[Ctx]` annotation if it has one (ContextError if it does not fit)."""
        loaded = self._graphs[graph_id]
        if loaded.graph is not None:
            bound = self._bound.get(graph_id)
            if bound is None:
                bound = self._bound[graph_id] = self._attach(loaded.graph, graph_id)
            yield bound
            return
        assert self._persistence is not None, "bind() before running graphs"
        assert loaded.call is not None
        if access == "threads.create_run" and context is not None and loaded.call.context_type is not None:
            context = run_context.fit(loaded.call.context_type, context).value
        runtime = server_runtime.build(access, self._persistence.store, context, _user_for(config))
        async with built(loaded, config if config is not None else {"configurable": {}}, runtime) as graph:
            yield self._attach(graph, graph_id)


def _user_for(config: dict[str, Any] | None) -> Any:
    """The user a factory's ServerRuntime names: the run's owner from its config, else the request's caller."""
    stored = ((config or {}).get("configurable") or {}).get("langgraph_auth_user")
    user = AuthUser.from_stored(stored)
    if user is not None:
        return user
    caller = auth_context.current()
    return caller.user if caller is not None else None
