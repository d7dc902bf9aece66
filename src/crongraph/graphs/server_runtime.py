"""The `ServerRuntime` a graph factory may ask for (`langgraph_sdk.runtime`, the official type), and how a factory's
parameters are told apart: which one is the runtime, which the config.

A parameter is the runtime when its annotation is `ServerRuntime` (bare, `ServerRuntime[Ctx]`, either concrete
variant, or `Annotated[...]` of one; string annotations are resolved), as the reference detects it. Where no
annotation says so, a parameter named `runtime` is the runtime too (the reference would hand it the config, which
no factory written that way means). Any other parameter is the config.

The runtime is built per call: `access_context` says why the graph is built (`threads.create_run` for a run,
`threads.read` / `threads.update` for state, `assistants.read` for /graph, /schemas and /subgraphs); only a
run's runtime carries the run's `context`. `user` is who the graph is built for: a run's owner (its config's
`langgraph_auth_user`), or the caller of the request reading state or describing the graph; None without custom
auth, as the reference gives.
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from langgraph_sdk.runtime import AccessContext, ServerRuntime, _ExecutionRuntime, _ReadRuntime

RUNTIME_PARAM_NAME = "runtime"
_RUNTIME_CLASSES = (_ExecutionRuntime, _ReadRuntime)
# Lets `def make(runtime: "ServerRuntime")` resolve when the module imports it only under TYPE_CHECKING.
_LOCALNS = {"ServerRuntime": ServerRuntime}


@dataclass(frozen=True)
class FactoryCall:
    """How to call a factory: which keyword gets the config and which the runtime (None: not wanted)."""

    config_param: str | None
    runtime_param: str | None
    context_type: Any = None  # `Ctx` of a `ServerRuntime[Ctx]` annotation: the runtime's context is fitted to it

    def kwargs(self, config: dict[str, Any], runtime: Any) -> dict[str, Any]:
        given: dict[str, Any] = {}
        if self.config_param:
            given[self.config_param] = config
        if self.runtime_param:
            given[self.runtime_param] = runtime
        return given


def _is_runtime_annotation(annotation: Any) -> bool:
    if annotation is inspect.Parameter.empty or annotation is None:
        return False
    if annotation is ServerRuntime:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, _RUNTIME_CLASSES)
    origin = get_origin(annotation)
    if origin is None:
        return False
    if origin is ServerRuntime or (isinstance(origin, type) and issubclass(origin, _RUNTIME_CLASSES)):
        return True
    args = get_args(annotation)
    return bool(args) and _is_runtime_annotation(args[0])  # Annotated[ServerRuntime, ...]


def _context_type(annotation: Any) -> Any:
    """`Ctx` in `ServerRuntime[Ctx]` (possibly inside Annotated), when it is a class; else None."""
    origin = get_origin(annotation)
    if origin is None:
        return None
    args = get_args(annotation)
    if origin is ServerRuntime or (isinstance(origin, type) and issubclass(origin, _RUNTIME_CLASSES)):
        return args[0] if args and isinstance(args[0], type) else None
    return _context_type(args[0]) if args else None


def classify(fn: Callable[..., Any]) -> FactoryCall:
    """How `fn` wants to be called. Raises ValueError (with what is wrong) for a signature no server can call."""
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    required = [p for p in params if p.default is inspect.Parameter.empty]
    positional_only = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    if positional_only:
        raise ValueError(f"its parameters {positional_only} are positional-only; the server passes them by name")
    if len(required) > 2:
        raise ValueError(
            f"it takes {len(required)} parameters ({', '.join(p.name for p in required)}); a graph factory takes "
            "none, the config, a ServerRuntime, or both"
        )
    if not required:
        return FactoryCall(None, None)
    try:
        hints = typing.get_type_hints(fn, localns=_LOCALNS, include_extras=True)
    except Exception:
        hints = {}
    annotations = {p.name: hints.get(p.name, p.annotation) for p in required}
    by_annotation = [p.name for p in required if _is_runtime_annotation(annotations[p.name])]
    if len(by_annotation) > 1:
        raise ValueError(f"more than one parameter is annotated ServerRuntime: {by_annotation}")
    runtime = by_annotation[0] if by_annotation else None
    if runtime is None and any(p.name == RUNTIME_PARAM_NAME for p in required):
        runtime = RUNTIME_PARAM_NAME
    others = [p.name for p in required if p.name != runtime]
    if len(others) > 1:
        raise ValueError(
            f"it takes two parameters ({', '.join(others)}) and neither is the runtime; annotate one "
            "`ServerRuntime` (from langgraph_sdk.runtime) or name it `runtime`"
        )
    context_type = _context_type(annotations[runtime]) if runtime else None
    return FactoryCall(others[0] if others else None, runtime, context_type)


def build(access_context: AccessContext, store: Any, context: Any = None, user: Any = None) -> Any:
    """A ServerRuntime for one factory call: the execution variant (with `context`) for a run, else the read one."""
    if access_context == "threads.create_run":
        # A shallow copy, so that a factory changing the context does not change what the graph receives.
        return _ExecutionRuntime(access_context=access_context, user=user, store=store, context=copy.copy(context))
    return _ReadRuntime(access_context=access_context, user=user, store=store)
