"""LangGraph state snapshots as the wire's ThreadState, and the two ways a client narrows what it reads back:
`select` on a state (whole keys, or `values.<key>` for one state key) and `extract` on a searched thread (named
paths such as `values.messages[-1].content`). Pure functions; nothing here touches storage."""

from __future__ import annotations

import re
from typing import Any

from crongraph import serde
from crongraph.errors import InvalidInput

STATE_FIELDS = (
    "values",
    "next",
    "tasks",
    "metadata",
    "created_at",
    "checkpoint",
    "parent_checkpoint",
    "interrupts",
    "checkpoint_id",
    "parent_checkpoint_id",
)


def _checkpoint_of(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    c = config.get("configurable", {})
    return {
        "thread_id": c.get("thread_id"),
        "checkpoint_ns": c.get("checkpoint_ns", ""),
        "checkpoint_id": c.get("checkpoint_id"),
        "checkpoint_map": c.get("checkpoint_map"),
    }


def snapshot_to_wire(state: Any) -> dict[str, Any]:
    checkpoint = _checkpoint_of(state.config)
    parent = _checkpoint_of(state.parent_config)
    tasks = [
        {
            "id": t.id,
            "name": t.name,
            "path": list(t.path),
            "error": repr(t.error) if t.error else None,
            "interrupts": list(t.interrupts),
            "checkpoint": _checkpoint_of(t.state) if isinstance(t.state, dict) else None,
            "state": snapshot_to_wire(t.state) if t.state is not None and not isinstance(t.state, dict) else None,
            "result": t.result,
        }
        for t in state.tasks
    ]
    wire: dict[str, Any] = serde.to_jsonable(
        {
            "values": state.values,
            "next": list(state.next),
            "tasks": tasks,
            "metadata": state.metadata,
            "created_at": state.created_at,
            "checkpoint": checkpoint,
            "parent_checkpoint": parent,
            "interrupts": list(state.interrupts),
            "checkpoint_id": checkpoint and checkpoint["checkpoint_id"],
            "parent_checkpoint_id": parent and parent["checkpoint_id"],
        }
    )
    return wire


def empty_state(thread_id: str) -> dict[str, Any]:
    """The state of a thread that has never run (and so has no graph and no checkpoint)."""
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": {},
        "created_at": None,
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None, "checkpoint_map": None},
        "parent_checkpoint": None,
        "interrupts": [],
        "checkpoint_id": None,
        "parent_checkpoint_id": None,
    }


def check_state_select(fields: list[str] | None) -> None:
    for field in fields or ():
        if field not in STATE_FIELDS and not (field.startswith("values.") and len(field) > len("values.")):
            raise InvalidInput(
                f"Invalid select field '{field}': expected one of {', '.join(STATE_FIELDS)}, or values.<key>"
            )


def select_state(state: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Only the selected keys of a ThreadState; `values.<key>` keeps just that key of the values."""
    if not fields:
        return state
    out: dict[str, Any] = {}
    for field in fields:
        if field.startswith("values."):
            key = field[len("values.") :]
            values = state.get("values")
            picked = out.setdefault("values", {})
            if isinstance(values, dict) and key in values and isinstance(picked, dict):
                picked[key] = values[key]
        elif field in state:
            out[field] = state[field]
    return out


_KEY = r"[^.\[\]]+"
_PATH = re.compile(rf"{_KEY}(\[-?\d+\])*(\.{_KEY}(\[-?\d+\])*)*")
_STEP = re.compile(rf"({_KEY})|\[(-?\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """`values.messages[-1].content` -> ["values", "messages", -1, "content"]; 422 when it is not such a path."""
    if not _PATH.fullmatch(path):
        raise InvalidInput(f"Invalid extract path '{path}': use dotted keys and [index], e.g. values.messages[-1]")
    return [key if key else int(index) for key, index in _STEP.findall(path)]


def extract(document: Any, steps: list[str | int]) -> Any:
    """The value at a parsed path, or None when any step is missing."""
    current = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return None
            current = current[step]
        elif isinstance(current, dict) and step in current:
            current = current[step]
        else:
            return None
    return current
