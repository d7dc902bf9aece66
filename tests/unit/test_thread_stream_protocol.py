"""streams/protocol.py: channel filters, message normalization, and the translation of LangGraph stream parts."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.types import Interrupt

from crongraph.streams.protocol import Filter, FilterError, RunTranslator, channel_of, normalize


def test_channel_of() -> None:
    assert channel_of("input.requested", {}) == "input"
    assert channel_of("custom", {"name": "progress"}) == "custom:progress"
    assert channel_of("custom", {"name": ""}) == "custom"
    assert channel_of("custom", "plain") == "custom"
    assert channel_of("values", {}) == "values"


def test_filter_parsing() -> None:
    wanted, since = Filter.parse({"channels": ["values"], "namespaces": [["a"], "bad", [1]], "depth": True, "since": 3})
    assert wanted.namespaces == (("a",),) and wanted.depth is None and since == 3
    _, since = Filter.parse({"channels": ["values"], "since": -1})
    assert since is None
    with pytest.raises(FilterError, match="channels is required"):
        Filter.parse({"channels": "values"})
    with pytest.raises(FilterError, match="unsupported entries: debug, custom:, 5"):
        Filter.parse({"channels": ["debug", "custom:", 5]})


def test_filter_matching() -> None:
    root_only, _ = Filter.parse({"channels": ["values"], "namespaces": [[]], "depth": 0})
    assert root_only.accepts("values", ())
    assert not root_only.accepts("values", ("child:1",))
    child, _ = Filter.parse({"channels": ["lifecycle", "custom"], "namespaces": [["child"]], "depth": 1})
    assert child.accepts("lifecycle", ("child:1f2e",))
    assert child.accepts("custom:progress", ("child:1f2e", "inner:9"))
    assert not child.accepts("lifecycle", ("child:1f2e", "inner:9", "deeper:1"))
    assert not child.accepts("lifecycle", ("other:1",))
    exact, _ = Filter.parse({"channels": ["values"], "namespaces": [["child:1"]]})
    assert exact.accepts("values", ("child:1",)) and not exact.accepts("values", ("child:2",))


def test_messages_are_normalized() -> None:
    state = {
        "messages": [
            HumanMessage("hi", id="h1"),
            AIMessage(
                content=[{"type": "text", "text": "ok", "index": 0}, {"type": "image_url", "image_url": {"url": "u"}}],
                id="a1",
                tool_calls=[{"name": "search", "args": {"q": 1}, "id": "tc"}],
                additional_kwargs={"secret": 1},
                usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
            ),
            ToolMessage("found", tool_call_id="tc", id="t1"),
            {"role": "user", "content": "raw"},
        ],
        "__interrupt__": ["dropped"],
        "other": {"role": "user", "content": "not in a messages list"},
    }
    assert normalize(state) == {
        "messages": [
            {"type": "human", "content": "hi", "id": "h1"},
            {
                "type": "ai",
                "content": [{"type": "text", "text": "ok"}, {"type": "image", "url": "u"}],
                "id": "a1",
                "tool_calls": [{"type": "tool_call", "name": "search", "args": {"q": 1}, "id": "tc"}],
            },
            {
                "type": "tool",
                "content": "found",
                "id": "t1",
                "tool_call_id": "tc",
                "status": "success",
                "artifact": None,
            },
            {"type": "human", "content": "raw"},
        ],
        "other": {"role": "user", "content": "not in a messages list"},
    }


def _translate(parts: list[dict[str, Any]]) -> tuple[RunTranslator, list[tuple[str, list[str], Any]]]:
    out: list[tuple[str, list[str], Any]] = []
    translator = RunTranslator(lambda method, ns, data, node: out.append((method, list(ns), data)))
    for part in parts:
        translator.feed(part)
    return translator, out


def test_child_namespaces_open_before_their_first_event_and_close_on_their_task_result() -> None:
    child = ("sub:t1",)
    translator, out = _translate(
        [
            {"type": "tasks", "ns": (), "data": {"id": "t1", "name": "sub", "input": {}, "triggers": []}},
            {"type": "values", "ns": child, "data": {"x": 1}, "interrupts": ()},
            {"type": "updates", "ns": child, "data": {"__interrupt__": (Interrupt("why?", id="i1"),)}},
            {"type": "values", "ns": (), "data": {"x": 0}, "interrupts": (Interrupt("why?", id="i1"),)},
            {
                "type": "tasks",
                "ns": (),
                "data": {"id": "t1", "name": "sub", "result": {}, "interrupts": [{"id": "i1"}]},
            },
        ]
    )
    assert out == [
        (
            "lifecycle",
            ["sub:t1"],
            {"event": "started", "namespace": ["sub:t1"], "graph_name": "sub", "trigger_call_id": "t1"},
        ),
        ("values", ["sub:t1"], {"x": 1}),
        ("values", [], {"x": 0}),
        ("lifecycle", ["sub:t1"], {"event": "interrupted", "graph_name": "sub"}),
    ]
    assert translator.interrupt_namespaces == {"i1": child}
    assert translator.output == {"x": 0} and [i.id for i in translator.root_interrupts] == ["i1"]


def test_finish_closes_open_namespaces_deepest_first() -> None:
    translator, out = _translate([{"type": "custom", "ns": ("a:1", "b:2"), "data": "x"}])
    out.clear()
    translator.finish("failed", "boom")
    assert out == [
        ("lifecycle", ["a:1", "b:2"], {"event": "failed", "graph_name": "b", "error": "boom"}),
        ("lifecycle", ["a:1"], {"event": "failed", "graph_name": "a", "error": "boom"}),
    ]


def test_whole_messages_and_v1_chunks_are_not_streamed() -> None:
    _, out = _translate(
        [
            {"type": "messages", "ns": (), "data": (AIMessage("done"), {"langgraph_node": "n"})},
            {"type": "messages", "ns": (), "data": ({"event": "message-start", "role": "ai", "id": "m"}, {})},
        ]
    )
    assert out == [("messages", [], {"event": "message-start", "role": "ai", "id": "m"})]
