"""Run a graph and translate what LangGraph streams into the events of the wire contract.

Stream modes the client asks for map onto LangGraph's: `messages-tuple` becomes event `messages` with
`[message, metadata]`; `messages` becomes `messages/metadata` then `messages/partial` / `messages/complete`;
`events` runs astream_events, whose root `on_chain_stream` events carry the other modes' chunks. Subgraph events
are named `<mode>|<ns1>|<ns2>` and only sent with `subgraphs`. The root `values` are always streamed internally,
because the last of them is the run's output; an interrupt always reaches the client as an `updates` event
carrying `__interrupt__`, whatever modes it asked for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk
from langgraph.pregel import Pregel

LANGGRAPH_MODES = {"values", "updates", "custom", "debug", "tasks", "checkpoints"}
STREAM_MODES = LANGGRAPH_MODES | {"messages", "messages-tuple", "events"}

Emit = Callable[[str, Any], None]
Chunk = tuple[tuple[str, ...], str, Any]


@dataclass
class Outcome:
    output: Any = None  # the last root values, `__interrupt__` included when the run stopped at one
    interrupted: bool = False
    messages: dict[str, BaseMessage] = field(default_factory=dict)


def _event_name(mode: str, namespace: tuple[str, ...]) -> str:
    return "|".join((mode, *namespace)) if namespace else mode


def _emit_messages(outcome: Outcome, emit: Emit, name: str, chunk: Any) -> None:
    """The `messages` mode: a metadata event the first time a message id is seen, then the message so far."""
    message, metadata = chunk
    msg_id = getattr(message, "id", None) or "unknown"
    seen = outcome.messages.get(msg_id)
    if seen is None:
        emit(f"{name}/metadata", {msg_id: {"metadata": metadata}})
    if isinstance(message, BaseMessageChunk):
        merged = message if seen is None or not isinstance(seen, BaseMessageChunk) else seen + message
        outcome.messages[msg_id] = merged
        emit(f"{name}/partial", [merged])
    else:
        outcome.messages[msg_id] = message
        emit(f"{name}/complete", [message])


async def _astream(
    graph: Pregel[Any, Any, Any, Any],
    payload: Any,
    config: dict[str, Any],
    modes: list[str],
    subgraphs: bool,
    **kw: Any,
) -> AsyncIterator[Chunk]:
    """LangGraph's astream as (namespace, mode, chunk); with `subgraphs`, the subgraphs' streams too."""
    # The modes are checked against LANGGRAPH_MODES by the caller; LangGraph types them as a Literal list.
    stream = graph.astream(payload, config, stream_mode=modes, subgraphs=subgraphs, **kw)  # type: ignore[call-overload]
    if subgraphs:
        async for namespace, mode, chunk in stream:
            yield tuple(namespace), mode, chunk
    else:
        async for mode, chunk in stream:
            yield (), mode, chunk


async def _astream_events(
    graph: Pregel[Any, Any, Any, Any], payload: Any, config: dict[str, Any], modes: list[str], emit: Emit, **kw: Any
) -> AsyncIterator[Chunk]:
    """astream_events, sending each event as `events` and yielding the stream-mode chunks its root carries."""
    stream = graph.astream_events(payload, config, version="v2", stream_mode=modes, subgraphs=True, **kw)  # type: ignore[call-overload]
    async for event in stream:
        if event.get("event") == "on_chain_stream" and not event.get("parent_ids"):
            namespace, mode, chunk = event["data"]["chunk"]
            yield tuple(namespace), mode, chunk
        else:
            emit("events", event)


async def stream_graph(
    graph: Pregel[Any, Any, Any, Any],
    payload: Any,
    config: dict[str, Any],
    *,
    stream_modes: list[str],
    subgraphs: bool,
    emit: Emit,
    **kwargs: Any,
) -> Outcome:
    """Run `graph` to its end, calling `emit(event, data)` for each event the client asked for."""
    outcome = Outcome()
    wanted = set(stream_modes)
    modes = {"values"} | {m for m in wanted if m in LANGGRAPH_MODES}
    if wanted & {"messages", "messages-tuple"}:
        modes.add("messages")
    if "events" in wanted:
        chunks = _astream_events(graph, payload, config, sorted(modes), emit, **kwargs)
    else:
        # Subgraphs' streams are asked of LangGraph only when something may come of them: the client asked for
        # them, or a mode that graphs run inside a node can also write to (messages, custom, ...). For the common
        # run (values, updates) nothing of a subgraph is sent (its interrupt reaches the root `values` either way),
        # and asking for them costs each run a concurrent-streaming waiter task (~0.3 ms of a trivial run's CPU).
        nested = subgraphs or bool(modes - {"values", "updates"})
        chunks = _astream(graph, payload, config, sorted(modes), nested, **kwargs)
    async for namespace, mode, chunk in chunks:
        if mode == "values" and not namespace:
            outcome.output = chunk
            if "updates" not in wanted and isinstance(chunk, dict) and "__interrupt__" in chunk:
                emit("updates", {"__interrupt__": chunk["__interrupt__"]})
        if namespace and not subgraphs:
            continue
        if mode == "messages":
            if "messages-tuple" in wanted:
                emit(_event_name("messages", namespace), list(chunk))
            if "messages" in wanted:
                _emit_messages(outcome, emit, _event_name("messages", namespace), chunk)
        elif mode in wanted:
            emit(_event_name(mode, namespace), chunk)
    if isinstance(outcome.output, dict) and "__interrupt__" in outcome.output:
        outcome.interrupted = True
    return outcome
