"""The thread-stream protocol's vocabulary, and the translation of what LangGraph streams into its events.

Vocabulary: the channels a stream may ask for, the channel of an event, and the filter (channels, namespace
prefixes, depth) an SSE body or a WebSocket subscription carries.

Translation: `RunTranslator` takes LangGraph `astream(..., version="v2", subgraphs=True)` parts, with messages in
the v2 (protocol event) form, and calls `emit(method, namespace, data, node)` for each protocol event, in order:
- values, updates, custom and tools pass through at their namespace; messages inside them are normalized, and
  `__interrupt__` is removed (an update that only interrupted is dropped);
- messages are LangChain's v2 chat-model events (message-start, content-block-*, message-finish); whole messages a
  node returns without streaming a model produce none;
- a child namespace gets a lifecycle `started` before its first event, and its terminal when its task's result
  arrives at the parent (or, at the end of the run, from `finish`, deepest first);
- after each `tool-finished` whose output is a message, the result is mirrored as a complete `role: "tool"`
  message at namespace `[…, "tools:<tool_call_id>"]`.
Root lifecycle and `input.requested` are the run tap's (streams/run_tap.py): they depend on the committed outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, ToolMessage

CHANNELS = ("values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints", "tasks", "custom")
ALLOWED = ", ".join((*CHANNELS, "custom:<name>"))

Namespace = tuple[str, ...]
Emit = Callable[[str, Namespace, Any, "str | None"], None]


class FilterError(ValueError):
    pass


def channel_of(method: str, data: Any) -> str:
    if method == "input.requested":
        return "input"
    if method == "custom":
        name = data.get("name") if isinstance(data, dict) else None
        return f"custom:{name}" if isinstance(name, str) and name else "custom"
    return method


def _int_or_none(value: Any) -> int | None:
    # Booleans are ints in Python; the protocol never counts them as numbers.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


@dataclass(frozen=True)
class Filter:
    channels: frozenset[str]
    namespaces: tuple[Namespace, ...] = ()
    depth: int | None = None

    @classmethod
    def parse(cls, body: Any) -> tuple[Filter, int | None]:
        """The filter and the `since` cursor of an SSE body or subscription params. Malformed namespace entries
        are dropped and a malformed depth or since counts as absent, as the reference does."""
        channels = body.get("channels") if isinstance(body, dict) else None
        if not isinstance(channels, list) or not channels:
            raise FilterError("channels is required and must be a non-empty array")
        bad = [c for c in channels if not _valid_channel(c)]
        if bad:
            listed = ", ".join(c if isinstance(c, str) else repr(c) for c in bad)
            raise FilterError(f"channels contains unsupported entries: {listed}. Allowed: {ALLOWED}")
        namespaces: list[Namespace] = []
        raw = body.get("namespaces")
        if isinstance(raw, list):
            for entry in raw:
                if isinstance(entry, list) and all(isinstance(s, str) for s in entry):
                    namespaces.append(tuple(entry))
        return cls(frozenset(channels), tuple(namespaces), _int_or_none(body.get("depth"))), _int_or_none(
            body.get("since")
        )

    def accepts(self, channel: str, namespace: Iterable[str]) -> bool:
        if channel not in self.channels and not (channel.startswith("custom:") and "custom" in self.channels):
            return False
        if not self.namespaces:
            return True
        ns = tuple(namespace)
        for prefix in self.namespaces:
            if _prefix_match(prefix, ns) and (self.depth is None or len(ns) - len(prefix) <= self.depth):
                return True
        return False


def _valid_channel(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    return value in CHANNELS or (value.startswith("custom:") and len(value) > len("custom:"))


def _prefix_match(prefix: Namespace, ns: Namespace) -> bool:
    if len(prefix) > len(ns):
        return False
    for want, have in zip(prefix, ns, strict=False):
        # A prefix segment without ":" names a node whatever its task id: "child" matches "child:1f2e…".
        if want != have and (":" in want or have.partition(":")[0] != want):
            return False
    return True


# Message normalization (values, updates and tool outputs)

_TYPES = {"human": "human", "user": "human", "ai": "ai", "assistant": "ai", "system": "system"}
_TYPES |= {"developer": "system", "tool": "tool", "function": "function", "remove": "remove"}
_BLOCKS = {"text", "reasoning", "tool_call", "tool_call_chunk", "invalid_tool_call", "server_tool_call"}
_BLOCKS |= {"server_tool_call_chunk", "server_tool_result", "image", "audio", "video", "file", "text-plain"}
_BLOCKS |= {"non_standard"}


def _block(block: Any) -> Any:
    if isinstance(block, str):
        return {"type": "text", "text": block}
    if not isinstance(block, dict):
        return {"type": "non_standard", "value": block}
    kind = block.get("type")
    if kind == "image_url":
        url = block.get("image_url")
        return {"type": "image", "url": url.get("url") if isinstance(url, dict) else url}
    if kind == "input_audio":
        audio = block.get("input_audio") or {}
        return {"type": "audio", "data": audio.get("data"), "mime_type": f"audio/{audio.get('format', 'wav')}"}
    if kind in _BLOCKS:
        return {k: v for k, v in block.items() if k != "index"}
    return {"type": "non_standard", "value": block}


def _message_fields(fields: dict[str, Any]) -> dict[str, Any]:
    kind = str(fields.get("type") or fields.get("role") or "")
    kind = _TYPES.get(kind, _TYPES.get(kind.replace("MessageChunk", "").lower(), kind))
    content = fields.get("content", "")
    out: dict[str, Any] = {
        "type": kind,
        "content": content if isinstance(content, str) else [_block(b) for b in content or []],
    }
    for key in ("id", "name"):
        if fields.get(key) is not None:
            out[key] = fields[key]
    if fields.get("example"):
        out["example"] = True
    if fields.get("response_metadata"):
        out["response_metadata"] = fields["response_metadata"]
    if kind == "ai":
        calls = [
            {"type": "tool_call", "name": c.get("name"), "args": c.get("args"), "id": c.get("id")}
            for c in fields.get("tool_calls") or []
        ]
        if calls:
            out["tool_calls"] = calls
        if fields.get("invalid_tool_calls"):
            out["invalid_tool_calls"] = list(fields["invalid_tool_calls"])
    elif kind == "tool":
        out["tool_call_id"] = fields.get("tool_call_id")
        out["status"] = fields.get("status", "success")
        out["artifact"] = fields.get("artifact")
    return out


def normalize_message(message: BaseMessage | dict[str, Any]) -> dict[str, Any]:
    fields = message if isinstance(message, dict) else message.model_dump()
    return _message_fields(fields)


def _looks_like_message(value: Any) -> bool:
    return isinstance(value, dict) and "content" in value and (value.get("type") in _TYPES or "role" in value)


def normalize(value: Any, *, in_messages: bool = False) -> Any:
    """A copy of a state (or a delta) with its messages in the protocol's form: message objects anywhere, and
    message-like dicts inside a `messages` list."""
    if isinstance(value, BaseMessage):
        return normalize_message(value)
    if isinstance(value, dict):
        if in_messages and _looks_like_message(value):
            return normalize_message(value)
        return {k: normalize(v, in_messages=k == "messages") for k, v in value.items() if k != "__interrupt__"}
    if isinstance(value, list | tuple):
        return [normalize(v, in_messages=in_messages) for v in value]
    return value


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [b.get("text", "") if isinstance(b, dict) else str(b) for b in content or []]
    return "".join(p for p in parts if isinstance(p, str))


def _interrupt_ids(interrupts: Any) -> list[str]:
    ids = []
    for item in interrupts or ():
        value = item.get("id") if isinstance(item, dict) else getattr(item, "id", None)
        if isinstance(value, str):
            ids.append(value)
    return ids


class RunTranslator:
    """One run's translation state: which child namespaces are open, and where each interrupt was raised."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._open: dict[Namespace, str] = {}
        self._seen: set[Namespace] = set()
        self.interrupt_namespaces: dict[str, Namespace] = {}
        self.output: Any = None  # the last root values
        self.root_interrupts: tuple[Any, ...] = ()

    def feed(self, part: dict[str, Any]) -> None:
        mode, ns = part["type"], tuple(part.get("ns") or ())
        data: Any = part.get("data")
        if ns:
            self._start(ns)
        if mode == "values":
            interrupts = tuple(part.get("interrupts") or ())
            self._note_interrupts(interrupts, ns)
            if not ns:
                self.output, self.root_interrupts = data, interrupts
            self._emit("values", ns, normalize(data), None)
        elif mode == "updates":
            if isinstance(data, dict) and "__interrupt__" in data:
                self._note_interrupts(data["__interrupt__"], ns)
                data = {k: v for k, v in data.items() if k != "__interrupt__"}
                if not data:
                    return
            self._emit("updates", ns, normalize(data), None)
        elif mode == "messages":
            payload, metadata = data
            if isinstance(payload, dict) and "event" in payload:
                node = metadata.get("langgraph_node") if isinstance(metadata, dict) else None
                self._emit("messages", ns, payload, node)
        elif mode == "custom":
            self._emit("custom", ns, data, None)
        elif mode == "tools":
            self._tools(ns, data)
        elif mode == "tasks" and isinstance(data, dict) and "result" in data:
            child = (*ns, f"{data.get('name')}:{data.get('id')}")
            if child in self._open:
                if data.get("interrupts"):
                    self._close(child, "interrupted", None)
                elif data.get("error"):
                    self._close(child, "failed", str(data["error"]))
                else:
                    self._close(child, "completed", None)

    def finish(self, status: str, error: str | None) -> None:
        """Close every namespace still open, deepest first (`status`: completed, interrupted or failed)."""
        for ns in sorted(self._open, key=len, reverse=True):
            if ns in self._open:
                self._close(ns, status, error)

    def _start(self, ns: Namespace) -> None:
        for depth in range(1, len(ns) + 1):
            prefix = ns[:depth]
            if prefix in self._seen:
                continue
            self._seen.add(prefix)
            name, _, task_id = prefix[-1].partition(":")
            self._open[prefix] = name
            data: dict[str, Any] = {"event": "started", "namespace": list(prefix), "graph_name": name}
            if task_id:
                data["trigger_call_id"] = task_id
            self._emit("lifecycle", prefix, data, None)

    def _close(self, ns: Namespace, status: str, error: str | None) -> None:
        for child in sorted((c for c in self._open if len(c) > len(ns) and c[: len(ns)] == ns), key=len, reverse=True):
            self._close(child, status, error)
        name = self._open.pop(ns)
        data: dict[str, Any] = {"event": status, "graph_name": name}
        if status == "failed" and error:
            data["error"] = error
        self._emit("lifecycle", ns, data, None)

    def _note_interrupts(self, interrupts: Any, ns: Namespace) -> None:
        for interrupt_id in _interrupt_ids(interrupts):
            known = self.interrupt_namespaces.get(interrupt_id)
            # An interrupt bubbles up through its parents; the deepest namespace is where it was raised.
            if known is None or len(ns) > len(known):
                self.interrupt_namespaces[interrupt_id] = ns

    def _tools(self, ns: Namespace, data: Any) -> None:
        if not isinstance(data, dict):
            return
        output = data.get("output")
        if data.get("event") == "tool-finished" and isinstance(output, BaseMessage):
            data = {**data, "output": output.model_dump()}
        self._emit("tools", ns, data, None)
        if data.get("event") == "tool-finished" and isinstance(output, ToolMessage):
            self._mirror(ns, str(data.get("tool_call_id")), output)

    def _mirror(self, ns: Namespace, tool_call_id: str, message: ToolMessage) -> None:
        at = (*ns, f"tools:{tool_call_id}")
        text = _text_of(message.content)
        start = {"event": "message-start", "role": "tool", "id": message.id or f"tool-{tool_call_id}"}
        start["tool_call_id"] = tool_call_id
        for event in (
            start,
            {"event": "content-block-start", "index": 0, "content": {"type": "text", "text": ""}},
            {"event": "content-block-delta", "index": 0, "delta": {"type": "text-delta", "text": text}},
            {"event": "content-block-finish", "index": 0, "content": {"type": "text", "text": text}},
            {"event": "message-finish", "metadata": {}},
        ):
            self._emit("messages", at, event, None)
