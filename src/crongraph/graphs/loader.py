"""Load a graph from its spec: a file path (`./agent.py:graph`) or a module (`pkg.mod:graph`), then the variable.

The variable may be a compiled graph, a StateGraph (compiled here), or a factory: a function, sync or async,
taking no argument or the run's config, called for each run."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from crongraph.graphs.config import ConfigError, GraphSpec


@dataclass(frozen=True)
class LoadedGraph:
    graph_id: str
    description: str | None
    graph: Pregel | None  # a ready graph, or None when `factory` builds one per run
    factory: Any = None
    factory_takes_config: bool = False


def _import(spec: GraphSpec, base_dir: Path, config_name: str) -> Any:
    location, _, variable = spec.spec.rpartition(":")
    where = f'{config_name}: graph "{spec.graph_id}" ({spec.spec})'
    try:
        if "/" in location or location.endswith(".py"):
            file = (base_dir / location).resolve()
            if not file.exists():
                raise ConfigError(f"{where}: file {file} does not exist.")
            module_name = "crongraph_user_" + "_".join(file.with_suffix("").parts[-3:]).replace("-", "_")
            module_spec = importlib.util.spec_from_file_location(module_name, file)
            if module_spec is None or module_spec.loader is None:
                raise ConfigError(f"{where}: cannot load {file} as Python.")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(location)
    except ConfigError:
        raise
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        raise ConfigError(
            f"{where}: importing it raised {type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})."
        ) from None
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
        params = [p for p in inspect.signature(value).parameters.values() if p.default is inspect.Parameter.empty]
        return LoadedGraph(spec.graph_id, spec.description, None, value, factory_takes_config=len(params) >= 1)
    raise ConfigError(
        f'{config_name}: graph "{spec.graph_id}" ({spec.spec}) is a {type(value).__name__}; expected a compiled '
        "graph, a StateGraph or a function that returns one."
    )


async def build_from_factory(loaded: LoadedGraph, config: dict[str, Any]) -> Pregel:
    result = loaded.factory(config) if loaded.factory_takes_config else loaded.factory()
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, StateGraph):
        result = result.compile()
    if not isinstance(result, Pregel):
        raise TypeError(f"graph factory for '{loaded.graph_id}' returned {type(result).__name__}, not a graph")
    return result
