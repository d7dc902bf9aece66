"""GET /threads/{thread_id}/storage against a real server: the reference's shape, zeros for a thread with no
checkpoint, sizes that grow with each run (checkpoints, the `messages` channel), 404 and 422 for bad ids; on both
backends (the SQLite saver embeds values in checkpoint rows, the PostgreSQL one keeps them in blob rows)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.server import ServerProcess


def say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def storage(server: ServerProcess, thread_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/threads/{thread_id}/storage", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def check_shape(body: dict[str, Any], thread_id: str) -> None:
    assert set(body) == {"thread_id", "total_bytes", "checkpoints", "channel_values", "pending_writes"}
    assert body["thread_id"] == thread_id
    assert set(body["checkpoints"]) == {"count", "bytes"} and set(body["pending_writes"]) == {"count", "bytes"}
    values = body["channel_values"]
    assert set(values) == {"count", "bytes", "by_channel"}
    assert values["bytes"] == sum(c["bytes"] for c in values["by_channel"].values())
    assert values["count"] == sum(c["versions"] for c in values["by_channel"].values())
    assert body["total_bytes"] == body["checkpoints"]["bytes"] + values["bytes"] + body["pending_writes"]["bytes"]


async def test_a_new_thread_occupies_nothing(client: Any, server: ServerProcess) -> None:
    thread = await client.threads.create()
    body = storage(server, thread["thread_id"])
    check_shape(body, thread["thread_id"])
    assert body["total_bytes"] == 0 and body["checkpoints"]["count"] == 0
    assert body["channel_values"]["by_channel"] == {}


async def test_sizes_grow_with_the_thread(client: Any, server: ServerProcess) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "agent", input=say("one"))
    first = storage(server, tid)
    check_shape(first, tid)
    assert first["checkpoints"]["count"] >= 1 and first["total_bytes"] > 0
    messages = first["channel_values"]["by_channel"]["messages"]
    assert messages["versions"] >= 1 and messages["bytes"] > 0

    await client.runs.wait(tid, "agent", input=say("two, a longer message " * 20))
    second = storage(server, tid)
    check_shape(second, tid)
    assert second["checkpoints"]["count"] > first["checkpoints"]["count"]
    assert second["checkpoints"]["bytes"] > first["checkpoints"]["bytes"]
    grown = second["channel_values"]["by_channel"]["messages"]
    assert grown["versions"] > messages["versions"] and grown["bytes"] > messages["bytes"] + 400
    assert second["total_bytes"] > first["total_bytes"] + 400
    # Another thread's checkpoints are not counted.
    other = await client.threads.create()
    await client.runs.wait(other["thread_id"], "agent", input=say("elsewhere"))
    assert storage(server, tid) == second


def test_unknown_and_malformed_ids(server: ServerProcess) -> None:
    missing = httpx.get(f"{server.url}/threads/{uuid.uuid4()}/storage", timeout=30)
    assert missing.status_code == 404 and "detail" in missing.json()
    malformed = httpx.get(f"{server.url}/threads/not-a-uuid/storage", timeout=30)
    assert malformed.status_code == 422 and "thread" in malformed.json()["detail"].lower()
