"""The thread-centric stream through the official clients: `client.threads.stream` (async and sync, SSE and
WebSocket) and `RemoteGraph.astream_events(version="v3")`, against graphs built on fake chat models
(tests/fixtures/graphs/protocol_graphs.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command

from tests.e2e.thread_stream_support import collect_sse, command, root_terminal

HELLO = {"messages": [{"role": "user", "content": "hi"}], "value": "a", "items": []}


async def _drain(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


async def test_values_then_output(client: Any) -> None:
    async with client.threads.stream(assistant_id="agent") as thread:
        started = await thread.run.start(input={"messages": [{"role": "user", "content": "hello"}]})
        snapshots = await asyncio.wait_for(_drain(thread.values), 20)
        output = await asyncio.wait_for(thread.output, 20)
    assert uuid.UUID(started["run_id"])
    assert snapshots[-1]["messages"][-1]["content"] == "echo: hello"
    first = snapshots[-1]["messages"][0]
    assert first == {"type": "human", "content": "hello", "id": first["id"]}
    assert output["messages"][-1]["content"] == "echo: hello"
    run = await client.runs.get(thread.thread_id, started["run_id"])
    assert run["status"] == "success"
    assert run["metadata"]["created_by"] == "system"


async def test_messages_are_token_deltas(client: Any) -> None:
    async with client.threads.stream(assistant_id="chatty") as thread:
        await thread.run.start(input={"messages": [{"role": "user", "content": "hi"}]})
        # The projection dispatches a message's events while it is iterated: read the texts after it ends.
        messages = await asyncio.wait_for(_drain(thread.messages), 20)
        texts = [await m.text for m in messages]
        deltas = await _drain(messages[0].text)
        await asyncio.wait_for(thread.output, 20)
    assert texts == ["hello there friend"]
    assert messages[0].message_id.startswith("lc_run--")
    assert len(deltas) > 1 and "".join(deltas) == "hello there friend"


async def test_interrupt_respond_and_subgraph(client: Any) -> None:
    async with client.threads.stream(assistant_id="protocol_agent") as thread:
        await thread.run.start(input=HELLO)
        # Projections pause at the interrupt: the run is waiting for an answer, not over.
        await asyncio.wait_for(_drain(thread.values), 20)
        assert thread.interrupted
        [pending] = thread.interrupts
        assert pending["value"] == "Are we good?" and pending["namespace"] == []
        state = await client.threads.get_state(thread.thread_id)
        assert state["next"] == ["ask"]
        await thread.run.respond("yes")
        output = await asyncio.wait_for(thread.output, 20)
    assert output["answer"] == "yes"
    assert output["items"] == ["streamed", "answer:yes"]
    assert output["steps"] == ["sub_first", "sub_second"]
    resumed = (await client.runs.list(thread.thread_id))[0]
    assert resumed["kwargs"]["command"] == {"resume": {pending["interrupt_id"]: "yes"}}


async def test_lifecycle_of_runs_and_subgraph_namespaces(client: Any, server: Any) -> None:
    thread_id = str(uuid.uuid4())
    reply = await command(server.url, thread_id, "run.start", {"assistant_id": "nested", "input": {"items": []}})
    assert reply["type"] == "success"
    events = await collect_sse(server.url, thread_id, {"channels": ["lifecycle", "values"]}, until=root_terminal)
    lifecycle = [(e["params"]["namespace"], e["params"]["data"]) for e in events if e["method"] == "lifecycle"]
    assert lifecycle[0] == ([], {"event": "running", "graph_name": "nested"})
    assert lifecycle[-1] == ([], {"event": "completed", "graph_name": "nested"})
    [(child_ns, started), (same_ns, ended)] = lifecycle[1:-1]
    assert child_ns == same_ns and len(child_ns) == 1 and child_ns[0].startswith("child:")
    assert started == {
        "event": "started",
        "namespace": child_ns,
        "graph_name": "child",
        "trigger_call_id": child_ns[0].split(":", 1)[1],
    }
    assert ended == {"event": "completed", "graph_name": "child"}
    # The child's values come between its started and its end, at its namespace.
    at_child = [(e["method"], e["seq"]) for e in events if e["params"]["namespace"] == child_ns]
    assert at_child[0][0] == at_child[-1][0] == "lifecycle"
    assert {m for m, _ in at_child[1:-1]} == {"values"}
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_subgraphs_projection(client: Any) -> None:
    async with client.threads.stream(assistant_id="nested") as thread:
        await thread.run.start(input={"items": []})
        handles = await asyncio.wait_for(_drain(thread.subgraphs), 20)
        output = await asyncio.wait_for(thread.output, 20)
    assert [h.graph_name for h in handles] == ["child"]
    assert handles[0].status == "completed"
    assert output["items"] == ["inner", "outer"]


async def test_tool_calls_of_a_tool_calling_agent(client: Any) -> None:
    async with client.threads.stream(assistant_id="tools_agent") as thread:
        await thread.run.start(input={"messages": [{"role": "user", "content": "look it up"}]})
        handles = await asyncio.wait_for(_drain(thread.tool_calls), 20)
        calls = [(call.name, call.input, await call.output) for call in handles]
        output = await asyncio.wait_for(thread.output, 20)
    [(name, arguments, result)] = calls
    assert (name, arguments) == ("search", {"query": "v3"})
    assert result["type"] == "tool" and result["status"] == "success"
    assert result["content"] == "result for 'v3'" and result["tool_call_id"] == "tc-1"
    # thread.output is the thread's state (GET /threads/{id}/state), as LangGraph stores it.
    assert output["messages"][-1]["content"][0]["text"] == "Found: result for 'v3'"


async def test_tool_result_is_mirrored_as_a_tool_message(client: Any, server: Any) -> None:
    thread_id = str(uuid.uuid4())
    await command(server.url, thread_id, "run.start", {"assistant_id": "tools_agent", "input": {"messages": []}})
    wanted = {"channels": ["tools", "messages", "lifecycle"]}
    events = await collect_sse(server.url, thread_id, wanted, until=root_terminal)
    tools = [e["params"]["data"]["event"] for e in events if e["method"] == "tools"]
    assert tools == ["tool-started", "tool-finished"]
    mirror = [e["params"]["data"] for e in events if e["params"]["namespace"] == ["tools:tc-1"]]
    assert [m["event"] for m in mirror] == [
        "message-start",
        "content-block-start",
        "content-block-delta",
        "content-block-finish",
        "message-finish",
    ]
    assert mirror[0]["role"] == "tool" and mirror[0]["tool_call_id"] == "tc-1"
    assert mirror[2]["delta"] == {"type": "text-delta", "text": "result for 'v3'"}


async def test_extensions_carry_custom_events(client: Any) -> None:
    async with client.threads.stream(assistant_id="ticker") as thread:
        await thread.run.start(input={"steps": 3, "delay": 0.01})
        ticks = await asyncio.wait_for(_drain(thread.extensions["tick"]), 20)
    assert ticks == [{"name": "tick", "n": 1}, {"name": "tick", "n": 2}, {"name": "tick", "n": 3}]


async def test_failed_run_ends_failed(client: Any) -> None:
    async with client.threads.stream(assistant_id="fails") as thread:
        started = await thread.run.start(input={"messages": []})
        with pytest.raises(RuntimeError, match="kaboom"):
            await asyncio.wait_for(thread.output, 20)
    run = await client.runs.get(thread.thread_id, started["run_id"])
    assert run["status"] == "error"
    assert (await client.threads.get(thread.thread_id))["status"] == "error"


def test_sync_client_values_and_interrupt(sync_client: Any) -> None:
    with sync_client.threads.stream(assistant_id="protocol_agent") as thread:
        thread.run.start(input=HELLO)
        # The SDK ends projections when its lifecycle watcher (another connection) sees the interrupt: how many
        # snapshots came before is the client's race; that it paused, and where, is not.
        assert list(thread.values)  # the REST state first, then what arrived before the pause
        assert thread.interrupted
        assert sync_client.threads.get_state(thread.thread_id)["values"]["items"] == ["streamed"]
        thread.run.respond("fine")
        output = thread.output
    assert output["answer"] == "fine"


async def test_websocket_transport(client: Any) -> None:
    async with client.threads.stream(assistant_id="protocol_agent", transport="websocket") as thread:
        await thread.run.start(input=HELLO)
        await asyncio.wait_for(_drain(thread.values), 20)
        assert thread.interrupted and thread.interrupts[0]["value"] == "Are we good?"
        await thread.run.respond("yes")
        output = await asyncio.wait_for(thread.output, 20)
    assert output["steps"] == ["sub_first", "sub_second"]


async def test_remote_graph_v3_interrupt_and_resume(server: Any) -> None:
    graph = RemoteGraph("protocol_agent", url=server.url)
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    async with await graph.astream_events(HELLO, config, version="v3") as run:
        await asyncio.wait_for(_drain(run.values), 20)
        assert await run.interrupted()
        [pending] = await run.interrupts()
        assert pending["value"] == "Are we good?"
    async with await graph.astream_events(Command(resume="go"), config, version="v3") as run:
        output = await asyncio.wait_for(run.output(), 20)
    assert output["answer"] == "go"
    assert output["items"] == ["streamed", "answer:go"]
    assert output["steps"] == ["sub_first", "sub_second"]
