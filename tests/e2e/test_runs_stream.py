"""Streaming runs through the official SDK (wire contract §3.3): SSE framing and headers, every stream mode's
event names and shapes, subgraph namespaces, the error event, join_stream with Last-Event-ID resumption, and the
thread stream."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.server import ServerProcess

HUMAN = {"messages": [{"role": "user", "content": "hi"}]}


async def _collect(stream: Any) -> list[Any]:
    return [part async for part in stream]


def _names(parts: list[Any]) -> list[str]:
    return [p.event for p in parts]


async def test_sse_framing_and_headers(server: ServerProcess, client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    async with (
        httpx.AsyncClient(base_url=server.url) as http,
        http.stream("POST", f"/threads/{tid}/runs/stream", json={"assistant_id": "agent", "input": HUMAN}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-accel-buffering"] == "no"
        location = r.headers["location"]
        assert location.startswith(f"/threads/{tid}/runs/") and location.endswith("/stream")
        assert r.headers["content-location"] == location.removesuffix("/stream")
        body = (await r.aread()).decode()
    frames = [f for f in body.split("\r\n\r\n") if f]
    assert frames[0].startswith("event: metadata\r\ndata: {")
    run_id = location.split("/")[-2]
    assert f'"run_id":"{run_id}"' in frames[0]
    assert [f.split("\r\n", 1)[0] for f in frames[1:]] == ["event: values", "event: values"]
    assert "id: " not in body  # ids only for resumable streams


async def test_default_stream_is_values_and_ends_without_end_event(client: Any) -> None:
    thread = await client.threads.create()
    parts = await _collect(client.runs.stream(thread["thread_id"], "agent", input=HUMAN))
    assert _names(parts) == ["metadata", "values", "values"]
    assert parts[0].data["attempt"] == 1
    assert parts[-1].data["messages"][-1]["content"] == "echo: hi"
    run = await client.runs.get(thread["thread_id"], parts[0].data["run_id"])
    assert run["status"] == "success"


async def test_updates_and_values_together(client: Any) -> None:
    thread = await client.threads.create()
    parts = await _collect(
        client.runs.stream(thread["thread_id"], "agent", input=HUMAN, stream_mode=["values", "updates"])
    )
    assert _names(parts) == ["metadata", "values", "updates", "values"]
    assert parts[2].data["step"]["messages"][-1]["content"] == "echo: hi"
    assert parts[2].data["step"]["count"] == 1


async def test_messages_tuple_custom_and_messages_modes(client: Any) -> None:
    thread = await client.threads.create()
    parts = await _collect(
        client.runs.stream(thread["thread_id"], "chatty", input=HUMAN, stream_mode=["messages-tuple", "custom"])
    )
    names = _names(parts)
    assert names[0] == "metadata"
    assert set(names[1:]) == {"messages", "custom"}
    assert [p.data for p in parts if p.event == "custom"] == [{"progress": "thinking"}]
    tuples = [p.data for p in parts if p.event == "messages"]
    assert all(len(t) == 2 for t in tuples)
    assert "".join(message["content"] for message, _ in tuples) == "hello there friend"
    assert all(meta["langgraph_node"] == "chat" for _, meta in tuples)

    parts = await _collect(client.runs.stream(thread["thread_id"], "chatty", input=HUMAN, stream_mode="messages"))
    names = _names(parts)
    assert names[1] == "messages/metadata"
    assert set(names[2:]) == {"messages/partial"}
    msg_id = parts[2].data[0]["id"]
    assert list(parts[1].data) == [msg_id]
    assert parts[1].data[msg_id]["metadata"]["langgraph_node"] == "chat"
    assert parts[-1].data[0]["content"] == "hello there friend"  # partials accumulate


async def test_debug_tasks_checkpoints_modes(client: Any) -> None:
    thread = await client.threads.create()
    parts = await _collect(
        client.runs.stream(thread["thread_id"], "agent", input=HUMAN, stream_mode=["debug", "tasks", "checkpoints"])
    )
    names = _names(parts)
    assert names[0] == "metadata"
    assert set(names[1:]) == {"debug", "tasks", "checkpoints"}
    assert {p.data["type"] for p in parts if p.event == "debug"} >= {"checkpoint", "task", "task_result"}
    tasks = [p.data for p in parts if p.event == "tasks"]
    assert tasks[0]["name"] == "step" and "input" in tasks[0]
    assert tasks[1]["name"] == "step" and tasks[1]["error"] is None and "result" in tasks[1]
    checkpoints = [p.data for p in parts if p.event == "checkpoints"]
    assert checkpoints[-1]["values"]["count"] == 1
    assert checkpoints[-1]["next"] == []


async def test_events_mode_alone_and_with_values(client: Any) -> None:
    thread = await client.threads.create()
    parts = await _collect(client.runs.stream(thread["thread_id"], "chatty", input=HUMAN, stream_mode="events"))
    names = set(_names(parts))
    assert names == {"metadata", "events"}
    kinds = [p.data["event"] for p in parts if p.event == "events"]
    assert kinds[0] == "on_chain_start"
    assert "on_chat_model_stream" in kinds
    assert kinds[-1] == "on_chain_end"

    parts = await _collect(
        client.runs.stream(thread["thread_id"], "chatty", input=HUMAN, stream_mode=["events", "values"])
    )
    values = [p.data for p in parts if p.event == "values"]
    assert values[-1]["messages"][-1]["content"] == "hello there friend"
    assert any(p.event == "events" for p in parts)


async def test_subgraph_events_carry_their_namespace(client: Any) -> None:
    thread = await client.threads.create()
    flat = await _collect(client.runs.stream(thread["thread_id"], "nested", input={"items": []}, stream_mode="updates"))
    assert _names(flat) == ["metadata", "updates", "updates"]

    parts = await _collect(
        client.runs.stream(
            thread["thread_id"], "nested", input={"items": []}, stream_mode=["updates"], stream_subgraphs=True
        )
    )
    names = _names(parts)
    nested = [n for n in names if "|" in n]
    assert len(nested) == 1
    mode, namespace = nested[0].split("|")
    assert mode == "updates" and namespace.startswith("child:")
    inner = next(p for p in parts if p.event == nested[0])
    assert inner.data == {"inner_step": {"items": ["inner"]}}
    assert names.count("updates") == 2


async def test_failure_sends_error_event(client: Any) -> None:
    thread = await client.threads.create()
    parts = await _collect(
        client.runs.stream(thread["thread_id"], "fails", input={}, stream_mode=["values", "updates"])
    )
    assert parts[0].event == "metadata"
    assert parts[-1].event == "error"
    assert parts[-1].data == {"error": "ValueError", "message": "kaboom"}


async def test_stateless_stream(server: ServerProcess, client: Any) -> None:
    created: list[Any] = []
    parts = await _collect(client.runs.stream(None, "agent", input=HUMAN, on_run_created=created.append))
    assert _names(parts) == ["metadata", "values", "values"]
    assert created[0]["run_id"] == parts[0].data["run_id"]
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/runs/stream", json={"assistant_id": "agent", "input": HUMAN, "on_completion": "keep"})
        location = r.headers["location"]
        assert location.startswith("/runs/") and location.endswith("/stream")
        # The Location answers a GET (crongraph's extension), replaying the run's events.
        again = await http.get(location)
        assert again.status_code == 200
        assert again.text.count("event: values") == 2


async def test_join_stream_resumes_after_last_event_id(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    run = await client.runs.create(
        tid,
        "slow",
        input={**HUMAN, "delay": 0.5},
        stream_mode=["values", "updates"],
        stream_resumable=True,
    )
    seen = []
    stream = client.runs.join_stream(tid, run["run_id"])
    async for part in stream:
        seen.append(part)
        if len(seen) == 2:
            break
    await stream.aclose()
    assert [p.event for p in seen] == ["metadata", "values"]
    assert [p.id for p in seen] == ["1", "2"]

    rest = await _collect(client.runs.join_stream(tid, run["run_id"], last_event_id=seen[-1].id))
    assert [p.event for p in rest] == ["updates", "values"]
    assert [p.id for p in rest] == ["3", "4"]
    assert rest[-1].data["messages"][-1]["content"] == "echo: hi"

    # A finished run's stream can still be replayed, and filtered by mode.
    full = await _collect(client.runs.join_stream(tid, run["run_id"]))
    assert [p.event for p in full] == ["metadata", "values", "updates", "values"]
    only_updates = await _collect(client.runs.join_stream(tid, run["run_id"], stream_mode="updates"))
    assert [p.event for p in only_updates] == ["metadata", "updates"]


async def test_post_stream_with_stream_resumable_sends_ids(client: Any) -> None:
    thread = await client.threads.create()
    parts = await _collect(client.runs.stream(thread["thread_id"], "agent", input=HUMAN, stream_resumable=True))
    assert [p.id for p in parts] == ["1", "2", "3"]


async def test_join_stream_bad_last_event_id(server: ServerProcess, client: Any) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "agent", input=HUMAN)
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get(
            f"/threads/{thread['thread_id']}/runs/{run['run_id']}/stream", headers={"Last-Event-ID": "abc"}
        )
        assert r.status_code == 422
        assert "Last-Event-ID" in r.json()["detail"]


async def test_thread_stream_carries_each_run_then_run_done(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    received: list[Any] = []
    done = asyncio.Event()

    async def listen() -> None:
        # "0": everything the thread has had so far, then live, so the order of connect and create is irrelevant.
        stream = await client.threads.join_stream(tid, last_event_id="0")  # an async def in the SDK
        try:
            async for part in stream:
                received.append(part)
                if sum(1 for p in received if p.event == "metadata" and p.data.get("status") == "run_done") == 2:
                    done.set()
                    return
        finally:
            await stream.aclose()

    listener = asyncio.create_task(listen())
    first = await client.runs.create(tid, "agent", input=HUMAN, stream_mode=["values", "updates"])
    second = await client.runs.create(tid, "agent", input={"messages": [{"role": "user", "content": "two"}]})
    await asyncio.wait_for(listener, timeout=20)
    assert done.is_set()

    names = [p.event for p in received]
    assert names == [
        "metadata",
        "values",
        "updates",
        "values",
        "metadata",
        "metadata",
        "values",
        "values",
        "metadata",
    ]
    assert received[0].data["run_id"] == first["run_id"]
    assert received[4].data == {"status": "run_done", "run_id": first["run_id"]}
    assert received[5].data["run_id"] == second["run_id"]
    assert received[8].data == {"status": "run_done", "run_id": second["run_id"]}
    ids = [int(p.id) for p in received]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    # Resuming from the first run's end replays only the second run.
    resumed: list[Any] = []
    stream = await client.threads.join_stream(tid, last_event_id=received[4].id)
    async for part in stream:
        resumed.append(part)
        if part.event == "metadata" and part.data.get("status") == "run_done":
            break
    await stream.aclose()
    assert [p.id for p in resumed] == [p.id for p in received[5:]]


async def test_thread_stream_without_last_event_id_is_live_only(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "agent", input=HUMAN)  # its events are kept, but not sent to a live-only stream
    stream = await client.threads.join_stream(tid)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.3)  # let the stream subscribe before the run starts
    run = await client.runs.create(tid, "agent", input=HUMAN)
    part = await asyncio.wait_for(first, timeout=10)
    await stream.aclose()
    assert part.event == "metadata"
    assert part.data["run_id"] == run["run_id"]


async def test_thread_stream_of_missing_thread_is_404(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/threads/00000000-0000-4000-8000-000000000000/stream")
        assert r.status_code == 404
        r = await http.get("/threads/nope/stream")
        assert r.status_code == 422


def test_sync_client_streams(sync_client: Any) -> None:
    thread = sync_client.threads.create()
    parts = list(sync_client.runs.stream(thread["thread_id"], "agent", input=HUMAN, stream_mode="updates"))
    assert [p.event for p in parts] == ["metadata", "updates"]
    run_id = parts[0].data["run_id"]
    joined = list(sync_client.runs.join_stream(thread["thread_id"], run_id))
    assert [p.event for p in joined] == ["metadata", "updates"]
    thread_events = []
    for part in sync_client.threads.join_stream(thread["thread_id"], last_event_id="0"):
        thread_events.append(part.event)
        if part.event == "metadata" and part.data.get("status") == "run_done":
            break
    assert thread_events == ["metadata", "updates", "metadata"]


async def test_keepalives_while_nothing_happens(server_factory: Any) -> None:
    server = server_factory(env={"CRONGRAPH_KEEPALIVE_SECONDS": "0.2"})
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            tid = (await http.post("/threads", json={})).json()["thread_id"]
            slow = {"assistant_id": "slow", "input": {**HUMAN, "delay": 1}}
            # wait: newlines until the JSON is ready, which clients parse through (leading whitespace).
            r = await http.post(f"/threads/{tid}/runs/wait", json=slow)
            assert r.content.startswith(b"\n\n")
            assert r.json()["messages"][-1]["content"] == "echo: hi"
            # A stream: SSE comments between events.
            r = await http.post(f"/threads/{tid}/runs/stream", json=slow)
            assert r.text.count(": heartbeat\r\n\r\n") >= 2
            assert r.text.count("event: values") == 2
            # The thread stream, even with no run at all.
            async with http.stream("GET", f"/threads/{tid}/stream") as r:
                lines = r.aiter_lines()
                assert await asyncio.wait_for(anext(lines), timeout=5) == ": heartbeat"
    finally:
        server.stop()
