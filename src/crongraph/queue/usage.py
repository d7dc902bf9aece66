"""A run's token usage: the sum of `usage_metadata` over the AI messages it produced.

Pure: works on the JSON form of graph state (serde.to_jsonable), never reads storage. A message counts as
produced by the run when it is an AI message in the state after the run whose id was not in the state before it
(on a thread, earlier runs' messages are still there); a message without an id counts (stateless runs and
graphs that do not use add_messages start from nothing). Only the `messages` channel is read, as LangGraph's
message conventions put chat history there.
"""

from __future__ import annotations

from typing import Any

KEYS = ("input_tokens", "output_tokens", "total_tokens")


def _messages(values: Any) -> list[Any]:
    if not isinstance(values, dict):
        return []
    messages = values.get("messages")
    return messages if isinstance(messages, list) else []


def _is_ai(message: Any) -> bool:
    return isinstance(message, dict) and message.get("type") in ("ai", "AIMessageChunk")


def has_usage(values: Any) -> bool:
    """Whether any AI message in `values` reports usage: the cheap test before looking at the state before."""
    return any(_is_ai(m) and isinstance(m.get("usage_metadata"), dict) for m in _messages(values))


def run_usage(before: Any, after: Any) -> dict[str, int] | None:
    """{input_tokens, output_tokens, total_tokens} of the AI messages in `after` not in `before`, or None when
    none of them reports usage. A missing total is input + output."""
    seen = {m.get("id") for m in _messages(before) if isinstance(m, dict) and m.get("id")}
    totals = dict.fromkeys(KEYS, 0)
    found = False
    for message in _messages(after):
        if not _is_ai(message) or (message.get("id") and message.get("id") in seen):
            continue
        usage = message.get("usage_metadata")
        if not isinstance(usage, dict):
            continue
        found = True
        given = {k: usage.get(k) for k in KEYS}
        counts = {k: v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0 for k, v in given.items()}
        if not isinstance(given["total_tokens"], int):
            counts["total_tokens"] = counts["input_tokens"] + counts["output_tokens"]
        for key in KEYS:
            totals[key] += counts[key]
    return totals if found else None
