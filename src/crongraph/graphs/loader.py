"""Load a graph from its spec: a file path (`./agent.py:graph`) or a module (`pkg.mod:graph`), then the variable.

The variable may be a compiled graph, a StateGraph (compiled here), or a factory called each time the graph is
needed (a run, a state read, /graph ...): a function, sync or async, taking nothing, the config, a ServerRuntime
or both (see server_runtime.py), returning a graph or a context manager (sync or async) that yields one. A
factory whose signature no server can call is refused at start, naming the graph."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from crongraph.config.imports import import_location
from crongraph.graphs.config import ConfigError, GraphSpec
from crongraph.graphs.server_runtime import FactoryCall, classify

Graph = Pregel[Any, Any, Any, Any]  # a compiled graph of any state, context, input and output


@dataclass(frozen=True)
class LoadedGraph:
    graph_id: str
    description: str | None
    graph: Graph | None  # a ready graph, or None when `factory` builds one per use
    factory: Any = None
    call: FactoryCall | None = None  # how to call `factory`


def _import(spec: GraphSpec, base_dir: Path, config_name: str) -> Any:
    location, _, variable = spec.spec.rpartition(":")
    where = f'{config_name}: graph "{spec.graph_id}" ({spec.spec})'
    module = import_location(location, base_dir, where, "crongraph_user_")
    if not hasattr(module, variable):
        found = [n for n, v in vars(module).items() if isinstance(v, Pregel | StateGraph)]
        hint = f" Graphs it defines: {', '.join(found)}." if found else ""
        raise ConfigError(f"{where}: the module has no variable '{variable}'.{hint}")
    return getattr(module, variable)


def load_graph(spec: GraphSpec, base_dir: Path, config_name: str) -> LoadedGraph:
    value = _import(spec, base_dir, config_name)
    if isinstance(value, StateGraph):
        value = value.compile()
    if isinstance(value, Pregel):
        return LoadedGraph(spec.graph_id, spec.description, value)
    if callable(value):
        try:
            call = classify(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f'{config_name}: graph "{spec.graph_id}" ({spec.spec}) is a factory the server cannot call: {exc}.'
            ) from None
        return LoadedGraph(spec.graph_id, spec.description, None, value, call)
    raise ConfigError(
        f'{config_name}: graph "{spec.graph_id}" ({spec.spec}) is a {type(value).__name__}; expected a compiled '
        "graph, a StateGraph or a function that returns one."
    )


@asynccontextmanager
async def built(loaded: LoadedGraph, config: dict[str, Any], runtime: Any) -> AsyncIterator[Graph]:
    """The graph a factory gives for one use, held for the `async with` block; a context manager the factory
    returned is entered here and exited when the block ends (with the block's exception, if any)."""
    assert loaded.call is not None
    result = loaded.factory(**loaded.call.kwargs(config, runtime))
    if inspect.isawaitable(result) and not hasattr(result, "__aenter__"):
        result = await result
    if hasattr(result, "__aenter__") and hasattr(result, "__aexit__"):
        async with result as graph:
            yield _checked(loaded, graph)
    elif hasattr(result, "__enter__") and hasattr(result, "__exit__"):
        with result as graph:
            yield _checked(loaded, graph)
    else:
        yield _checked(loaded, result)


def _checked(loaded: LoadedGraph, value: Any) -> Graph:
    if isinstance(value, StateGraph):
        value = value.compile()
    if isinstance(value, Pregel):
        return value
    hint = ""
    if inspect.isasyncgen(value) or inspect.isgenerator(value):
        kind = "asynccontextmanager" if inspect.isasyncgen(value) else "contextmanager"
        hint = f" (a generator factory must be decorated with @contextlib.{kind})"
    raise TypeError(f"graph factory for '{loaded.graph_id}' returned {type(value).__name__}, not a graph{hint}")
