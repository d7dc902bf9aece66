"""JSON for the wire and the database: orjson, with a fallback that turns graph values (LangChain messages,
pydantic models, dataclasses, interrupts) into plain JSON instead of failing a run at its last step.

One nesting limit serves parsing and serializing: orjson serializes at most `SERIALIZE_DEPTH` levels, and a
request body may nest at most `MAX_REQUEST_DEPTH` (`loads_request`), which leaves `ENVELOPE_DEPTH` levels for
whatever wraps a stored value on its way back out. So anything a client could store can be read back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

import orjson

# orjson's recursion limit when serializing (255 levels fail, 254 pass); parsing allows 1,024.
SERIALIZE_DEPTH = 254
# Levels a request body may nest, the body itself being level 1. Real graph inputs nest a dozen levels.
MAX_REQUEST_DEPTH = 100
# Levels left for what wraps a stored value on the way back: a read route's envelope (thread history: list >
# snapshot > values > messages > message; cron search: list > cron > payload > input), SSE frames, and what a
# graph nests around its input in its state (LangGraph's checkpoint serializer, ormsgpack, shares orjson's
# limit). Generous on purpose: real envelopes are under ten levels.
ENVELOPE_DEPTH = 150
assert MAX_REQUEST_DEPTH + ENVELOPE_DEPTH <= SERIALIZE_DEPTH


class UnacceptableJson(ValueError):
    """A well-formed JSON body crongraph refuses to store; the message is user-facing and names the limit."""


# Datetimes pass through to `_default` so that they read as the reference writes them: "+00:00", not "Z".
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "_asdict"):
        return value._asdict()
    return repr(value)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def loads_request(data: bytes | str, max_depth: int = MAX_REQUEST_DEPTH) -> Any:
    """A client's JSON body, checked so that it can be stored and read back on every backend.

    Raises orjson.JSONDecodeError for malformed JSON (a json.JSONDecodeError), and UnacceptableJson for a body
    nested deeper than `max_depth` levels (the body itself is level 1) or holding a NUL character (U+0000) in a
    string or key, which PostgreSQL cannot store in text or jsonb."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise UnacceptableJson(_too_deep(max_depth)) from None
        raise
    # Fast path: too few brackets to nest that deep, and no escaped NUL anywhere (a raw one is invalid JSON).
    if raw.count(b"{") + raw.count(b"[") <= max_depth and b"\\u0000" not in raw:
        return value
    problem = _problem(value, max_depth)
    if problem:
        raise UnacceptableJson(problem)
    return value


def _too_deep(max_depth: int) -> str:
    return (
        f"Request body is nested too deeply: the limit is {max_depth} levels of objects and arrays "
        "(so that everything stored can be sent back)"
    )


def _problem(value: Any, max_depth: int) -> str | None:
    # Iterative, so that no input can exhaust the interpreter's stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "Request body contains a NUL character (\\u0000), which cannot be stored"
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            return _too_deep(max_depth)
        if isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return "Request body contains a NUL character (\\u0000) in a key, which cannot be stored"
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)
    return None


def to_jsonable(value: Any) -> Any:
    """A deep copy made of plain JSON types only (round-trips through the serializer)."""
    return orjson.loads(dumps(value))
