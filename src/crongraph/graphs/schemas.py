"""JSON schemas of a graph's input, output, state, config and context, for GET /assistants/{id}/schemas and
/subgraphs.

LangGraph builds them through pydantic, which refuses `typing.TypedDict` state classes on Python < 3.12 (the
form most tutorials write). When that happens the class is rebuilt as a `typing_extensions.TypedDict` with the
same fields and tried again, so that such graphs still describe themselves. A schema that cannot be built at all
is `null`, never an error: clients treat schemas as optional.
"""

from __future__ import annotations

import logging
import sys
import typing
import warnings
from collections.abc import Callable
from typing import Any

import typing_extensions
from pydantic import TypeAdapter

log = logging.getLogger("crongraph.graphs")


def _is_stdlib_typeddict(cls: Any) -> bool:
    return isinstance(cls, type) and typing.is_typeddict(cls) and type(cls).__module__ == "typing"


def _portable(cls: Any) -> Any:
    """The same TypedDict, declared through typing_extensions (recursively for TypedDict-typed fields)."""
    if not _is_stdlib_typeddict(cls) or sys.version_info >= (3, 12):
        return cls
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {name: _portable(hint) for name, hint in hints.items()}
    rebuilt: Any = typing_extensions.TypedDict(cls.__name__, fields, total=cls.__total__)  # type: ignore[misc]
    return rebuilt


def _fallback(graph: Any, attribute: str) -> dict[str, Any] | None:
    builder = getattr(graph, "builder", None)
    cls = getattr(builder, attribute, None)
    if cls is None or not _is_stdlib_typeddict(cls):
        return None
    schema: dict[str, Any] = TypeAdapter(_portable(cls)).json_schema()
    return schema


def _schema(native: Callable[[], Any], graph: Any, attribute: str | None) -> Any:
    try:
        with warnings.catch_warnings():
            # get_config_jsonschema is deprecated in LangGraph 1.x but still what clients read as config_schema.
            warnings.simplefilter("ignore")
            return native()
    except Exception as exc:
        try:
            return _fallback(graph, attribute) if attribute else None
        except Exception:
            log.warning("no %s schema for graph %s: %s", attribute or "config", graph.get_name(), exc)
            return None


def graph_schemas(graph: Any) -> dict[str, Any]:
    """input_schema, output_schema, state_schema, config_schema and context_schema of a compiled graph."""
    return {
        "input_schema": _schema(graph.get_input_jsonschema, graph, "input_schema"),
        "output_schema": _schema(graph.get_output_jsonschema, graph, "output_schema"),
        "state_schema": _state_schema(graph),
        "config_schema": _schema(graph.get_config_jsonschema, graph, None),
        "context_schema": _schema(graph.get_context_jsonschema, graph, None),
    }


def _state_schema(graph: Any) -> Any:
    builder = getattr(graph, "builder", None)
    cls = getattr(builder, "state_schema", None)
    if cls is None:
        return _schema(graph.get_output_jsonschema, graph, "output_schema")
    return _schema(lambda: TypeAdapter(cls).json_schema(), graph, "state_schema")
