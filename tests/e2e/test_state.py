"""Thread state through the official SDK (wire contract §4, §8 ThreadState): the state after runs, updates as a
node, reading at a checkpoint (by id and by checkpoint object), history with limit, before, metadata and
select, interrupts, and the errors for updates a graph refuses."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import BadRequestError, NotFoundError, UnprocessableEntityError

from tests.support.server import ServerProcess

STATE_KEYS = {
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
}


def say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def ran_twice(client: Any) -> str:
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "agent", input=say("one"))
    await client.runs.wait(thread["thread_id"], "agent", input=say("two"))
    return str(thread["thread_id"])


async def test_state_of_a_new_thread_is_empty(client: Any) -> None:
    thread = await client.threads.create()
    state = await client.threads.get_state(thread["thread_id"])
    assert set(state) == STATE_KEYS
    assert state["values"] == {} and state["next"] == [] and state["tasks"] == []
    assert state["checkpoint"]["thread_id"] == thread["thread_id"] and state["checkpoint"]["checkpoint_id"] is None
    assert await client.threads.get_history(thread["thread_id"]) == []


async def test_state_after_runs(client: Any) -> None:
    tid = await ran_twice(client)
    state = await client.threads.get_state(tid)
    assert set(state) == STATE_KEYS
    assert state["values"]["count"] == 2
    assert [m["content"] for m in state["values"]["messages"]] == ["one", "echo: one", "two", "echo: two"]
    assert state["next"] == [] and state["interrupts"] == []
    assert state["checkpoint"]["thread_id"] == tid and state["checkpoint"]["checkpoint_ns"] == ""
    assert state["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert state["parent_checkpoint_id"] == state["parent_checkpoint"]["checkpoint_id"]
    assert state["metadata"]["source"] == "loop"
    assert state["created_at"].endswith("+00:00")
    thread = await client.threads.get(tid)
    assert thread["values"] == state["values"] and thread["status"] == "idle"


async def test_update_state_as_a_node_and_read_back(client: Any) -> None:
    tid = await ran_twice(client)
    before = await client.threads.get_state(tid)
    result = await client.threads.update_state(tid, {"count": 10}, as_node="step")
    assert result["checkpoint"]["thread_id"] == tid
    new_id = result["checkpoint"]["checkpoint_id"]
    assert new_id != before["checkpoint_id"]

    after = await client.threads.get_state(tid)
    assert after["checkpoint_id"] == new_id
    assert after["parent_checkpoint_id"] == before["checkpoint_id"]
    assert after["values"]["count"] == 10
    assert after["values"]["messages"] == before["values"]["messages"]
    assert after["metadata"]["source"] == "update"
    thread = await client.threads.get(tid)
    assert thread["values"]["count"] == 10, "the thread row mirrors the new values"
    assert thread["state_updated_at"] > before["created_at"]

    # Messages go through the graph's reducer: appended, not replaced.
    await client.threads.update_state(tid, say("three"))
    assert [m["content"] for m in (await client.threads.get_state(tid))["values"]["messages"]][-1] == "three"


async def test_state_at_a_checkpoint_and_forking_from_it(client: Any) -> None:
    tid = await ran_twice(client)
    history = await client.threads.get_history(tid, limit=100)
    first_run_end = next(h for h in history if h["values"].get("count") == 1 and h["next"] == [])
    old_id = first_run_end["checkpoint"]["checkpoint_id"]

    by_id = await client.threads.get_state(tid, checkpoint_id=old_id)
    assert by_id["values"]["count"] == 1 and by_id["checkpoint_id"] == old_id
    by_checkpoint = await client.threads.get_state(tid, checkpoint={"checkpoint_id": old_id, "checkpoint_ns": ""})
    assert by_checkpoint == by_id

    forked = await client.threads.update_state(tid, {"count": 100}, as_node="step", checkpoint_id=old_id)
    fork = await client.threads.get_state(tid)
    assert fork["checkpoint_id"] == forked["checkpoint"]["checkpoint_id"]
    assert fork["parent_checkpoint_id"] == old_id
    assert fork["values"]["count"] == 100 and len(fork["values"]["messages"]) == 2

    with pytest.raises(NotFoundError) as raised:
        await client.threads.get_state(tid, checkpoint_id=str(uuid.uuid4()))
    assert "not found" in raised.value.response.json()["detail"]
    with pytest.raises(NotFoundError):
        await client.threads.get_state(tid, checkpoint={"checkpoint_id": str(uuid.uuid4())})
    with pytest.raises(UnprocessableEntityError) as invalid:
        await client.threads.get_state(tid, checkpoint_id="not-a-checkpoint")
    assert invalid.value.response.json() == {"detail": "Invalid checkpoint ID: must be a UUID"}
    with pytest.raises(NotFoundError):
        await client.threads.update_state(tid, {"count": 1}, as_node="step", checkpoint_id=str(uuid.uuid4()))


async def test_history_limit_before_metadata_and_select(client: Any, server: ServerProcess) -> None:
    tid = await ran_twice(client)
    await client.threads.update_state(tid, {"count": 7}, as_node="step")
    history = await client.threads.get_history(tid, limit=100)
    ids = [h["checkpoint"]["checkpoint_id"] for h in history]
    assert len(ids) == len(set(ids)) >= 7
    assert ids == sorted(ids, reverse=True), "newest first"
    assert history[0]["values"]["count"] == 7

    assert [h["checkpoint_id"] for h in await client.threads.get_history(tid, limit=2)] == ids[:2]
    before = await client.threads.get_history(tid, before=ids[1], limit=100)
    assert [h["checkpoint_id"] for h in before] == ids[2:]
    before_obj = await client.threads.get_history(tid, before={"checkpoint_id": ids[1]}, limit=100)
    assert [h["checkpoint_id"] for h in before_obj] == ids[2:]
    updates = await client.threads.get_history(tid, metadata={"source": "update"}, limit=100)
    assert [h["checkpoint_id"] for h in updates] == [ids[0]]

    selected = await client.threads.get_history(tid, limit=1, select=["values.count", "checkpoint"])
    assert selected == [{"values": {"count": 7}, "checkpoint": history[0]["checkpoint"]}]
    picked = await client.threads.get_state(tid, select=["values.count", "next"])
    assert picked == {"values": {"count": 7}, "next": []}
    with pytest.raises(UnprocessableEntityError) as raised:
        await client.threads.get_state(tid, select=["bogus"])
    assert "bogus" in raised.value.response.json()["detail"]

    async with httpx.AsyncClient(base_url=server.url) as http:
        got = await http.get(f"/threads/{tid}/history", params={"limit": 3, "before": ids[0]})
        assert got.status_code == 200
        assert [h["checkpoint_id"] for h in got.json()] == ids[1:4]
        bad = await http.post(f"/threads/{tid}/history", json={"limit": 0})
        assert bad.status_code == 422 and "limit" in bad.json()["detail"]


async def test_interrupted_thread_state(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "ask", input=say("may I?"))
    assert (await client.threads.get(tid))["status"] == "interrupted"
    state = await client.threads.get_state(tid)
    assert state["next"] == ["ask"]
    assert [i["value"] for i in state["interrupts"]] == [{"question": "approve?"}]
    assert state["tasks"][0]["name"] == "ask"
    assert state["tasks"][0]["interrupts"][0]["value"] == {"question": "approve?"}


async def test_updates_the_graph_refuses_are_400_and_change_nothing(client: Any) -> None:
    tid = await ran_twice(client)
    before = await client.threads.get_state(tid)
    with pytest.raises(BadRequestError) as raised:
        await client.threads.update_state(tid, {"count": 1}, as_node="no_such_node")
    assert "no_such_node" in raised.value.response.json()["detail"]
    with pytest.raises(BadRequestError):
        await client.threads.update_state(tid, [1, 2, 3], as_node="step")  # type: ignore[arg-type]
    assert await client.threads.get_state(tid) == before

    fresh = await client.threads.create()
    with pytest.raises(BadRequestError) as no_graph:
        await client.threads.update_state(fresh["thread_id"], {"count": 1})
    assert "has no graph" in no_graph.value.response.json()["detail"]
    with pytest.raises(NotFoundError):
        await client.threads.update_state(str(uuid.uuid4()), {"count": 1})


async def test_thread_created_with_a_graph_accepts_updates_before_any_run(client: Any) -> None:
    thread = await client.threads.create(graph_id="agent")
    await client.threads.update_state(thread["thread_id"], {"count": 41}, as_node="step")
    assert (await client.threads.get_state(thread["thread_id"]))["values"]["count"] == 41
    result = await client.runs.wait(thread["thread_id"], "agent", input=say("go"))
    assert result["count"] == 42


def test_sync_client_state(sync_client: Any) -> None:
    thread = sync_client.threads.create(graph_id="agent")
    tid = thread["thread_id"]
    sync_client.runs.wait(tid, "agent", input=say("sync"))
    assert sync_client.threads.get_state(tid)["values"]["count"] == 1
    sync_client.threads.update_state(tid, {"count": 5}, as_node="step")
    history = sync_client.threads.get_history(tid, limit=2)
    assert [h["values"]["count"] for h in history] == [5, 1]
    assert sync_client.threads.get_state(tid, checkpoint_id=history[1]["checkpoint_id"])["values"]["count"] == 1
