"""A run's context, as LangGraph Platform builds it: where its keys come from, and how they become an instance of
the graph's `context_schema`. Pure: no I/O, nothing of ours imported.

Sources (the reference's rules): the assistant's context, or its `config.configurable` when it has no context,
overlaid key by key by the run's context, or the run's `config.configurable` when the run gives no context. An
absent or empty context therefore still reaches the graph, as `{}`, so that the schema's defaults apply.

Fitting: keys the schema does not declare are dropped (the reference filters them out the same way); what is
left becomes the schema's type — a dataclass and a pydantic model are instantiated (their defaults apply), a
TypedDict stays a dict, and a graph without a schema gets the dict. A context the schema refuses raises
`ContextError`, whose message names the schema and the fields at fault.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import typing_extensions
from pydantic import BaseModel, ValidationError

# Keys crongraph itself puts into `configurable` (ids, checkpoint addressing, the cron that fired a run): never
# a user's context, and never overwritten by one.
SYSTEM_KEYS = frozenset(
    {"thread_id", "run_id", "assistant_id", "graph_id", "cron_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"}
)


class ContextError(ValueError):
    """The run's context does not fit the graph's context_schema; the message is meant for the user as is."""


@dataclass(frozen=True)
class Fitted:
    value: Any  # what the graph receives as `runtime.context`
    kept: dict[str, Any]  # the keys the schema declares, as given
    dropped: list[str]  # the keys it does not declare, sorted


def user_configurable(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The user's keys of `config["configurable"]` (crongraph's own and LangGraph's internal ones left out)."""
    configurable = (config or {}).get("configurable") or {}
    return {
        k: v
        for k, v in configurable.items()
        if k not in SYSTEM_KEYS and not k.startswith("__") and not k.startswith("langgraph_")
    }


def merge_sources(
    assistant_context: Mapping[str, Any] | None,
    assistant_config: Mapping[str, Any] | None,
    run_context: Mapping[str, Any] | None,
    run_config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The run's context dict: each side's context, or that side's configurable when it has none; the run wins."""
    assistant_side = dict(assistant_context or {}) or user_configurable(assistant_config)
    run_side = dict(run_context or {}) or user_configurable(run_config)
    return {**assistant_side, **run_side}


def declared_fields(schema: Any) -> set[str] | None:
    """The keys a context schema accepts, or None when it accepts any (no schema, an open model, another type)."""
    if schema is None:
        return None
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        if schema.model_config.get("extra") == "allow":
            return None
        names = set(schema.model_fields)
        names.update(f.alias for f in schema.model_fields.values() if f.alias)
        return names
    if dataclasses.is_dataclass(schema):
        return {f.name for f in dataclasses.fields(schema) if f.init}
    if typing_extensions.is_typeddict(schema):
        return set(schema.__required_keys__) | set(schema.__optional_keys__)
    return None


def schema_name(schema: Any) -> str:
    return str(getattr(schema, "__name__", None) or schema)


def fit(schema: Any, data: Any) -> Fitted:
    """`data` (a dict) as an instance of `schema` (see the module docstring). Raises ContextError."""
    if not isinstance(data, Mapping):
        raise ContextError(f"The run's context must be a JSON object, not {type(data).__name__}.")
    fields = declared_fields(schema)
    kept = dict(data) if fields is None else {k: v for k, v in data.items() if k in fields}
    dropped = sorted(k for k in data if k not in kept)
    if schema is None:
        return Fitted(kept, kept, dropped)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            return Fitted(schema.model_validate(kept), kept, dropped)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
            raise ContextError(_refused(schema, problems)) from None
    if dataclasses.is_dataclass(schema) and isinstance(schema, type):
        missing = [
            f.name
            for f in dataclasses.fields(schema)
            if f.init
            and f.name not in kept
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ContextError(_refused(schema, "missing required field(s) " + ", ".join(repr(m) for m in missing)))
        try:
            return Fitted(schema(**kept), kept, dropped)
        except Exception as exc:  # __post_init__ or a pydantic dataclass may refuse a value
            raise ContextError(_refused(schema, f"{type(exc).__name__}: {exc}")) from None
    return Fitted(kept, kept, dropped)


def _refused(schema: Any, problem: str) -> str:
    return f"The run's context does not fit the graph's context_schema {schema_name(schema)}: {problem}"
