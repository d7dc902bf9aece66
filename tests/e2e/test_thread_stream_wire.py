"""The thread stream on the wire (raw HTTP and WebSocket, as the protocol spec describes it): command envelopes
and their errors, filters, seq and event ids, replay and reconnect with `since`, concurrent streams, multitask
strategies, cancellation, and interrupts answered with `input.respond`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.e2e.thread_stream_support import collect_sse, command, count, root_terminal

ALL = {"channels": ["values", "updates", "messages", "tools", "lifecycle", "input", "custom"]}
HELLO = {"messages": [{"role": "user", "content": "hi"}], "value": "a", "items": []}


def _new_thread() -> str:
    return str(uuid.uuid4())


def _root(events: list[dict[str, Any]]) -> list[str]:
    return [e["params"]["data"]["event"] for e in events if e["method"] == "lifecycle" and not e["params"]["namespace"]]


async def _post(url: str, path: str, body: bytes | dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        if isinstance(body, bytes):
            return await http.post(path, content=body, headers={"content-type": "application/json"})
        return await http.post(path, json=body)


# Commands


async def test_command_envelope_errors(server: Any) -> None:
    path = f"/threads/{_new_thread()}/commands"
    response = await _post(server.url, path, b"{not json")
    assert (response.status_code, response.json()) == (400, {"detail": "Invalid JSON body"})
    response = await _post(server.url, path, {"method": "run.start", "params": {}})
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "id": None,
        "error": "invalid_argument",
        "message": "Protocol commands must include an integer id and string method.",
    }
    response = await _post(server.url, path, {"id": "seven", "method": "run.start"})
    assert response.status_code == 400 and response.json()["id"] == "seven"
    response = await _post(server.url, path, {"id": 1, "method": "run.start", "params": {}})
    assert response.status_code == 200
    assert response.json() == {
        "type": "error",
        "id": 1,
        "error": "invalid_argument",
        "message": "run.start requires an assistant_id.",
    }
    reply = (await _post(server.url, path, {"id": 3, "method": "subscription.unsubscribe", "params": []})).json()
    assert reply["error"] == "no_such_subscription"
    for method in ("run.cancel", "state.get", "input.inject"):
        reply = (await _post(server.url, path, {"id": 2, "method": method, "params": {}})).json()
        assert (reply["error"], reply["message"]) == ("unknown_command", f"Unknown protocol command: {method}")
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(path)
    assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})


async def test_run_start_validation(server: Any) -> None:
    thread_id = _new_thread()
    bad_checkpoint = {"assistant_id": "agent", "config": {"configurable": {"checkpoint_id": "xyz"}}}
    reply = await command(server.url, thread_id, "run.start", bad_checkpoint)
    assert (reply["error"], reply["message"]) == (
        "invalid_argument",
        "Invalid config.configurable.checkpoint_id: 'xyz'.",
    )
    reply = await command(server.url, thread_id, "run.start", {"assistant_id": "agent", "langsmith_tracer": {"x": 1}})
    assert reply["error"] == "invalid_argument"
    reply = await command(server.url, thread_id, "run.start", {"assistant_id": "nope"})
    assert reply["error"] == "unknown_error" and reply["message"].startswith("422: Invalid assistant: 'nope'.")
    reply = await command(server.url, "not-a-uuid", "run.start", {"assistant_id": "agent"})
    assert (reply["error"], reply["message"]) == ("unknown_error", "422: Invalid thread ID")
    # Over HTTP the subscription commands have nothing to bind to.
    reply = await command(server.url, thread_id, "subscription.reconnect", {"channels": ["values"], "since": 0})
    assert reply["error"] == "no_such_run"
    reply = await command(server.url, thread_id, "agent.getTree", {})
    assert (reply["error"], reply["message"]) == ("no_such_run", "No active run is bound to this thread.")
    reply = await command(server.url, thread_id, "subscription.subscribe", {"channels": ["values"]})
    assert reply["type"] == "success" and reply["result"]["replayed_events"] == 0


async def test_runs_started_by_commands_are_ordinary_runs(server: Any, client: Any) -> None:
    thread_id = _new_thread()
    reply = await command(server.url, thread_id, "run.start", {"assistant_id": "agent", "input": {"messages": []}})
    run_id = reply["result"]["run_id"]
    assert set(reply["result"]) == {"run_id"} and reply["meta"] == {"applied_through_seq": 0}
    joined = await asyncio.wait_for(client.runs.join(thread_id, run_id), 20)
    assert joined["messages"][-1]["content"] == "echo: "
    [listed] = await client.runs.list(thread_id)
    assert listed["run_id"] == run_id and listed["status"] == "success"
    assert listed["kwargs"]["config"]["configurable"]["__event_streaming_v2"] is True
    thread = await client.threads.get(thread_id)
    assert thread["metadata"]["graph_id"] == "agent" and thread["status"] == "idle"


async def test_applied_through_seq_is_the_last_event_before_the_command(server: Any) -> None:
    thread_id = _new_thread()
    await command(server.url, thread_id, "run.start", {"assistant_id": "agent", "input": {"messages": []}})
    first = await collect_sse(server.url, thread_id, ALL, until=root_terminal)
    reply = await command(server.url, thread_id, "run.start", {"assistant_id": "agent", "input": {"messages": []}})
    assert reply["meta"]["applied_through_seq"] == first[-1]["seq"]
    # A stream opened at that cursor sees the new run from its start, and nothing of the old one.
    second = await collect_sse(
        server.url, thread_id, {**ALL, "since": reply["meta"]["applied_through_seq"]}, until=root_terminal
    )
    assert second[0]["seq"] == first[-1]["seq"] + 1
    assert _root(second) == ["running", "completed"]


# Event streams


async def test_stream_body_errors(server: Any) -> None:
    path = f"/threads/{_new_thread()}/stream/events"
    response = await _post(server.url, path, b"[")
    assert (response.status_code, response.json()) == (400, {"detail": "Invalid JSON body"})
    response = await _post(server.url, path, {"channels": []})
    assert response.json() == {"detail": "channels is required and must be a non-empty array"}
    response = await _post(server.url, path, {"channels": ["values", "debug", "custom:"]})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("channels contains unsupported entries: debug, custom:. Allowed: ")


async def test_sse_framing_and_headers(server: Any) -> None:
    thread_id = _new_thread()
    await command(server.url, thread_id, "run.start", {"assistant_id": "agent", "input": {"messages": []}})
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=20) as http,
        http.stream("POST", f"/threads/{thread_id}/stream/events", json={"channels": ["lifecycle"]}) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        first = b""
        async for chunk in response.aiter_bytes():
            first += chunk
            if b"\r\n\r\n" in first:
                break
    frame = first.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert frame[0] == b"event: lifecycle" and frame[2] == b"id: 1"
    envelope = orjson.loads(frame[1][len(b"data: ") :])
    assert envelope["type"] == "event" and envelope["event_id"] == "1" and envelope["seq"] == 1
    assert envelope["params"]["namespace"] == [] and isinstance(envelope["params"]["timestamp"], int)


async def test_non_uuid_thread_stream_reports_and_ends(server: Any) -> None:
    events = await collect_sse(server.url, "not-a-uuid", {"channels": ["values"]}, until=lambda e: True)
    assert events == [
        {"type": "error", "id": None, "error": "invalid_argument", "message": "Invalid thread ID: it must be a UUID."}
    ]


async def test_filters_namespaces_and_depth(server: Any) -> None:
    thread_id = _new_thread()
    await command(server.url, thread_id, "run.start", {"assistant_id": "protocol_agent", "input": HELLO})
    everything = await collect_sse(server.url, thread_id, ALL, until=root_terminal)
    await command(server.url, thread_id, "input.respond", _answer(everything, "yes"))
    everything += await collect_sse(server.url, thread_id, {**ALL, "since": everything[-1]["seq"]}, until=root_terminal)
    # Root only: [[]] with depth 0.
    root_only = {"channels": ["values", "lifecycle"], "namespaces": [[]], "depth": 0, "since": 0}
    events = await collect_sse(server.url, thread_id, root_only, until=count(_count(everything, root_only)))
    assert events and all(e["params"]["namespace"] == [] for e in events)
    # A node name matches its task's namespace segment, whatever the task id.
    child = {"channels": ["values", "lifecycle"], "namespaces": [["run_subgraph"]]}
    events = await collect_sse(server.url, thread_id, child, until=count(_count(everything, child)))
    assert events and all(e["params"]["namespace"][0].startswith("run_subgraph:") for e in events)
    assert [e["params"]["data"]["event"] for e in events if e["method"] == "lifecycle"] == ["started", "completed"]
    # Named custom channels: custom:<name> (the subgraph's event at its own namespace).
    events = await collect_sse(server.url, thread_id, {"channels": ["custom:progress"]}, until=count(3))
    assert [e["params"]["data"]["step"] for e in events] == ["stream_message", "stream_message", "sub_first"]
    assert events[2]["params"]["namespace"][0].startswith("run_subgraph:")


def _count(events: list[dict[str, Any]], body: dict[str, Any]) -> int:
    channels = set(body["channels"])
    namespaces = body.get("namespaces")
    selected = [e for e in events if e["method"] in channels]
    if namespaces == [[]]:
        return sum(1 for e in selected if not e["params"]["namespace"])
    if namespaces:
        prefix = namespaces[0][0]
        return sum(
            1 for e in selected if e["params"]["namespace"][:1] and e["params"]["namespace"][0].startswith(prefix)
        )
    return len(selected)


def _answer(events: list[dict[str, Any]], response: Any) -> dict[str, Any]:
    [requested] = [e for e in events if e["method"] == "input.requested"]
    data = requested["params"]["data"]
    assert data["payload"] == data["value"]
    return {"interrupt_id": data["interrupt_id"], "namespace": requested["params"]["namespace"], "response": response}


async def test_seq_event_ids_and_order_across_runs(server: Any) -> None:
    thread_id = _new_thread()
    await command(server.url, thread_id, "run.start", {"assistant_id": "protocol_agent", "input": HELLO})
    run1 = await collect_sse(server.url, thread_id, ALL, until=root_terminal)
    assert _root(run1) == ["running", "interrupted"]
    # The root terminal is the run's last event, after the interrupt requests.
    assert [e["method"] for e in run1[-2:]] == ["input.requested", "lifecycle"]
    reply = await command(server.url, thread_id, "input.respond", _answer(run1, "yes"))
    assert reply["result"] == {} and reply["meta"]["applied_through_seq"] == run1[-1]["seq"]
    both = await collect_sse(
        server.url, thread_id, ALL, until=lambda e: root_terminal(e) and e["seq"] > run1[-1]["seq"]
    )
    assert _root(both) == ["running", "interrupted", "running", "completed"]
    assert [e["seq"] for e in both] == list(range(1, len(both) + 1))
    assert all(e["event_id"] == str(e["seq"]) for e in both)
    # Delivered again, an event is byte-for-byte the same: same id, same timestamp.
    assert both[: len(run1)] == run1


async def test_reconnect_mid_stream_with_since(server: Any) -> None:
    thread_id = _new_thread()
    params = {"assistant_id": "ticker", "input": {"steps": 6, "delay": 0.15}}
    await command(server.url, thread_id, "run.start", params)
    body = {"channels": ["custom", "lifecycle"]}
    head = await collect_sse(server.url, thread_id, body, until=lambda e: e["method"] == "custom")
    # The connection dropped after the first tick: resume from the last seq seen.
    rest = await collect_sse(server.url, thread_id, {**body, "since": head[-1]["seq"]}, until=root_terminal)
    ticks = [e["params"]["data"]["n"] for e in head + rest if e["method"] == "custom"]
    assert ticks == [1, 2, 3, 4, 5, 6]
    seqs = [e["seq"] for e in head + rest]
    assert seqs == sorted(set(seqs))
    # A cursor beyond the end just waits for what comes next.
    waiting = asyncio.create_task(
        collect_sse(server.url, thread_id, {"channels": ["lifecycle"], "since": 10_000}, until=lambda e: True)
    )
    await asyncio.sleep(0.5)
    assert not waiting.done()
    waiting.cancel()


async def test_two_streams_on_one_thread_see_the_same_events(server: Any, client: Any) -> None:
    thread_id = _new_thread()
    wide = asyncio.create_task(collect_sse(server.url, thread_id, ALL, until=root_terminal))
    narrow = asyncio.create_task(collect_sse(server.url, thread_id, {"channels": ["lifecycle"]}, until=root_terminal))
    await asyncio.sleep(0.3)
    async with client.threads.stream(thread_id, assistant_id="chatty") as thread:
        await thread.run.start(input={"messages": [{"role": "user", "content": "hi"}]})
        await asyncio.wait_for(thread.output, 20)
    wide_events, narrow_events = await wide, await narrow
    assert [e for e in wide_events if e["method"] == "lifecycle"] == narrow_events
    assert any(e["method"] == "messages" for e in wide_events)


# Strategies and cancellation


async def test_reject_strategy_on_a_busy_thread(server: Any) -> None:
    thread_id = _new_thread()
    slow = {"assistant_id": "slow", "input": {"messages": [], "delay": 3}}
    await command(server.url, thread_id, "run.start", slow)
    started = asyncio.get_running_loop().time()
    reply = await command(server.url, thread_id, "run.start", {**slow, "multitaskStrategy": "reject"})
    assert asyncio.get_running_loop().time() - started < 2  # decided at once, not after a wait
    assert reply["error"] == "unknown_error" and reply["message"].startswith("409: Thread is already running a task.")
    # The JS spelling works too.
    reply = await command(server.url, thread_id, "run.start", {**slow, "multitask_strategy": "reject"})
    assert reply["error"] == "unknown_error"


async def test_cancelled_running_run_ends_failed(server: Any, client: Any) -> None:
    async with client.threads.stream(assistant_id="ticker") as thread:
        started = await thread.run.start(input={"steps": 50, "delay": 0.1})
        ticks = thread.extensions["tick"].__aiter__()
        await asyncio.wait_for(ticks.__anext__(), 20)
        await client.runs.cancel(thread.thread_id, started["run_id"])
        with pytest.raises(RuntimeError, match="Run was cancelled"):
            await asyncio.wait_for(thread.output, 20)
    events = await collect_sse(server.url, thread.thread_id, {"channels": ["lifecycle"]}, until=root_terminal)
    assert events[-1]["params"]["data"] == {"event": "failed", "graph_name": "ticker", "error": "Run was cancelled"}
    assert (await client.runs.get(thread.thread_id, started["run_id"]))["status"] == "interrupted"


async def test_cancelled_pending_run_ends_after_the_current_one(server: Any, client: Any) -> None:
    thread_id = _new_thread()
    slow = {"assistant_id": "slow", "input": {"messages": [], "delay": 1.5}}
    first = (await command(server.url, thread_id, "run.start", slow))["result"]["run_id"]
    second = (await command(server.url, thread_id, "run.start", slow))["result"]["run_id"]
    assert (await client.runs.get(thread_id, second))["status"] == "pending"
    await client.runs.cancel(thread_id, second)
    events = await collect_sse(server.url, thread_id, {"channels": ["lifecycle"]}, until=count(4))
    assert [(e["params"]["data"]["event"], e["params"]["data"].get("error")) for e in events] == [
        ("running", None),
        ("completed", None),
        ("running", None),
        ("failed", "Run was cancelled"),
    ]
    assert (await client.runs.get(thread_id, first))["status"] == "success"


async def test_interrupt_strategy_cancels_the_running_run(server: Any) -> None:
    thread_id = _new_thread()
    await command(server.url, thread_id, "run.start", {"assistant_id": "ticker", "input": {"steps": 50, "delay": 0.1}})
    await collect_sse(server.url, thread_id, {"channels": ["custom"]}, until=count(1))
    params = {"assistant_id": "agent", "input": {"messages": []}, "multitaskStrategy": "interrupt"}
    await command(server.url, thread_id, "run.start", params)
    events = await collect_sse(server.url, thread_id, {"channels": ["lifecycle"]}, until=count(4))
    assert [e["params"]["data"]["event"] for e in events] == ["running", "failed", "running", "completed"]
    assert events[1]["params"]["data"]["error"] == "Run was cancelled"


# Interrupts


async def test_input_respond_errors(server: Any) -> None:
    fresh = _new_thread()
    reply = await command(server.url, fresh, "input.respond", {"interrupt_id": "abc", "response": 1})
    assert (reply["error"], reply["message"]) == ("no_such_run", "No interrupted run is bound to this thread.")
    reply = await command(server.url, fresh, "input.respond", {"response": 1})
    assert reply["error"] == "invalid_argument"
    reply = await command(server.url, fresh, "input.respond", {"responses": []})
    assert reply["error"] == "invalid_argument"
    thread_id = _new_thread()
    await command(server.url, thread_id, "run.start", {"assistant_id": "protocol_agent", "input": HELLO})
    events = await collect_sse(server.url, thread_id, ALL, until=root_terminal)
    reply = await command(server.url, thread_id, "input.respond", {"interrupt_id": "nope", "response": 1})
    assert (reply["error"], reply["message"]) == ("no_such_interrupt", "Unknown or already-consumed interrupt: nope")
    answer = _answer(events, "yes")
    assert (await command(server.url, thread_id, "input.respond", answer))["type"] == "success"
    reply = await command(server.url, thread_id, "input.respond", answer)
    assert reply["error"] == "no_such_interrupt"


async def test_interrupt_in_a_subgraph_is_requested_at_its_namespace(server: Any, client: Any) -> None:
    thread_id = _new_thread()
    await command(server.url, thread_id, "run.start", {"assistant_id": "sub_ask", "input": {"items": []}})
    events = await collect_sse(server.url, thread_id, ALL, until=root_terminal)
    answer = _answer(events, "ok")
    assert len(answer["namespace"]) == 1 and answer["namespace"][0].startswith("inner:")
    child = [e["params"]["data"] for e in events if e["method"] == "lifecycle" and e["params"]["namespace"]]
    assert [c["event"] for c in child] == ["started", "interrupted"]
    reply = await command(server.url, thread_id, "input.respond", {**answer, "namespace": []})
    assert reply["error"] == "no_such_interrupt"
    reply = await command(server.url, thread_id, "input.respond", {"responses": [answer]})
    assert reply["type"] == "success"
    after = await collect_sse(server.url, thread_id, {**ALL, "since": events[-1]["seq"]}, until=root_terminal)
    assert _root(after) == ["running", "completed"]
    assert (await client.threads.get_state(thread_id))["values"]["items"] == ["inner:ok", "finished"]


async def test_run_start_with_input_resumes_an_interrupted_thread(server: Any, client: Any) -> None:
    thread_id = _new_thread()
    await command(server.url, thread_id, "run.start", {"assistant_id": "ask", "input": {"messages": []}})
    await collect_sse(server.url, thread_id, {"channels": ["lifecycle"]}, until=root_terminal)
    reply = await command(server.url, thread_id, "run.start", {"assistant_id": "ask", "input": "sure"})
    run = await client.runs.get(thread_id, reply["result"]["run_id"])
    assert run["kwargs"]["input"] is None and run["kwargs"]["command"] == {"resume": "sure"}
    await asyncio.wait_for(client.runs.join(thread_id, run["run_id"]), 20)
    assert (await client.threads.get_state(thread_id))["values"]["messages"][-1]["content"] == "answer: sure"


# WebSocket


async def test_websocket_commands_subscriptions_and_tree(server: Any) -> None:
    thread_id = _new_thread()
    url = server.url.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"
    async with connect(url) as ws:

        async def until(pred: Any) -> list[dict[str, Any]]:
            frames = []
            while True:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
                frames.append(frame)
                if pred(frame):
                    return frames

        await ws.send("{bad json")
        assert orjson.loads(await ws.recv()) == {
            "type": "error",
            "id": None,
            "error": "invalid_argument",
            "message": "Protocol commands must be valid JSON.",
        }
        await ws.send(orjson.dumps({"id": 1, "method": "agent.getTree", "params": {}}).decode())
        assert orjson.loads(await ws.recv())["error"] == "no_such_run"
        subscribe = {"id": 2, "method": "subscription.subscribe", "params": {"channels": ["lifecycle", "input"]}}
        await ws.send(orjson.dumps(subscribe).decode())
        reply = orjson.loads(await ws.recv())
        assert reply["type"] == "success" and reply["result"]["replayed_events"] == 0
        # Overlapping subscriptions: each event still arrives once.
        await ws.send(orjson.dumps({**subscribe, "id": 3, "params": {"channels": ["lifecycle"]}}).decode())
        assert orjson.loads(await ws.recv())["id"] == 3
        start = {"id": 4, "method": "run.start", "params": {"assistant_id": "protocol_agent", "input": HELLO}}
        await ws.send(orjson.dumps(start).decode())
        frames = await until(lambda f: f.get("method") == "input.requested")
        requested = frames[-1]["params"]["data"]
        frames += await until(root_terminal)
        respond = {"id": 5, "method": "input.respond", "params": {"interrupt_id": requested["interrupt_id"]}}
        respond["params"]["response"] = "yes"
        await ws.send(orjson.dumps(respond).decode())
        frames += await until(lambda f: root_terminal(f) and f["params"]["data"]["event"] == "completed")
        events = [f for f in frames if f.get("type") == "event"]
        assert len({e["seq"] for e in events}) == len(events)
        assert [f["id"] for f in frames if f.get("type") == "success"] == [4, 5]
        await ws.send(orjson.dumps({"id": 6, "method": "agent.getTree", "params": {}}).decode())
        [tree] = [f for f in await until(lambda f: f.get("id") == 6)]
        root = tree["result"]["tree"]
        assert (root["namespace"], root["status"], root["graph_name"]) == ([], "completed", "protocol_agent")
        [child] = root["children"]
        assert child["graph_name"] == "run_subgraph" and child["status"] == "completed"
        await ws.send(orjson.dumps({"id": 7, "method": "subscription.unsubscribe", "params": {}}).decode())
        assert orjson.loads(await ws.recv())["error"] == "no_such_subscription"
    # A later subscription replays what is kept, and says how much.
    async with connect(url) as ws:
        await ws.send(
            orjson.dumps({"id": 1, "method": "subscription.subscribe", "params": {"channels": ["lifecycle"]}})
        )
        replayed = [orjson.loads(await ws.recv()) for _ in range(4 + 2 + 1)]
        assert replayed[-1]["result"]["replayed_events"] == 6
        assert _root([f for f in replayed if f.get("type") == "event"]) == [
            "running",
            "interrupted",
            "running",
            "completed",
        ]


async def test_run_start_forks_from_a_checkpoint(server: Any, client: Any) -> None:
    thread_id = _new_thread()

    async def say(text: str, config: dict[str, Any] | None = None) -> None:
        params: dict[str, Any] = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": text}]}}
        if config is not None:
            params["config"] = config
        reply = await command(server.url, thread_id, "run.start", params)
        await asyncio.wait_for(client.runs.join(thread_id, reply["result"]["run_id"]), 20)

    await say("one")
    after_one = (await client.threads.get_state(thread_id))["checkpoint"]["checkpoint_id"]
    await say("two")
    await say("three", {"configurable": {"checkpoint_id": after_one}})
    contents = [m["content"] for m in (await client.threads.get_state(thread_id))["values"]["messages"]]
    assert contents == ["one", "echo: one", "three", "echo: three"]


async def test_a_run_that_fails_before_its_graph_starts_ends_failed(server: Any, client: Any) -> None:
    thread_id = _new_thread()
    assistant = await client.assistants.create("agent")
    await command(server.url, thread_id, "run.start", {"assistant_id": "slow", "input": {"messages": [], "delay": 1}})
    reply = await command(server.url, thread_id, "run.start", {"assistant_id": assistant["assistant_id"]})
    await client.assistants.delete(assistant["assistant_id"])  # while its run waits behind the slow one
    events = await collect_sse(server.url, thread_id, {"channels": ["lifecycle"]}, until=count(4))
    assert [e["params"]["data"]["event"] for e in events] == ["running", "completed", "running", "failed"]
    assert "was deleted before the run started" in events[3]["params"]["data"]["error"]
    assert (await client.runs.get(thread_id, reply["result"]["run_id"]))["status"] == "error"
