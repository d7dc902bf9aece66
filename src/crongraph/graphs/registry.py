"""The graphs this server serves, loaded once at start, and handed out ready to run: bound to the checkpointer and
store, built per run when the graph is a factory."""

from __future__ import annotations

from typing import Any

from langgraph.pregel import Pregel

from crongraph.graphs.config import ProjectConfig, apply_environment
from crongraph.graphs.loader import LoadedGraph, build_from_factory, load_graph
from crongraph.graphs.persistence import Persistence


class GraphRegistry:
    def __init__(self, graphs: dict[str, LoadedGraph]) -> None:
        self._graphs = graphs
        self._bound: dict[str, Pregel] = {}
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

    def _attach(self, graph: Pregel) -> Pregel:
        assert self._persistence is not None, "bind() before running graphs"
        return graph.copy(update={"checkpointer": self._persistence.checkpointer, "store": self._persistence.store})

    async def get(self, graph_id: str, config: dict[str, Any] | None = None) -> Pregel:
        loaded = self._graphs[graph_id]
        if loaded.graph is None:
            return self._attach(await build_from_factory(loaded, config or {}))
        bound = self._bound.get(graph_id)
        if bound is None:
            bound = self._bound[graph_id] = self._attach(loaded.graph)
        return bound
