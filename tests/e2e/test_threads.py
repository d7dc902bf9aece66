"""Threads through the official SDK (wire contract §4): create (if_exists, supersteps, graph_id, ttl), get, patch,
delete and its cascades, search (metadata, values, ids, status, sort, select, extract, pagination), count, copy
and prune."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import BadRequestError, ConflictError, NotFoundError, UnprocessableEntityError

from tests.support.server import ServerProcess

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def tag() -> dict[str, str]:
    """Metadata unique to one test, so that searches on the shared server see only that test's threads."""
    return {"test": uuid.uuid4().hex}


async def test_create_defaults(client: Any) -> None:
    thread = await client.threads.create()
    assert uuid.UUID(thread["thread_id"]).version == 7
    assert thread["status"] == "idle"
    assert thread["metadata"] == {} and thread["config"] == {}
    assert thread["values"] is None
    assert thread["created_at"].endswith("+00:00")
    assert thread["created_at"] == thread["updated_at"] == thread["state_updated_at"]
    assert "ttl" not in thread
    assert await client.threads.get(thread["thread_id"]) == thread


async def test_create_with_id_metadata_graph_and_ttl(client: Any) -> None:
    thread_id = str(uuid.uuid4())
    thread = await client.threads.create(thread_id=thread_id, metadata={"owner": "ana"}, graph_id="agent", ttl=30)
    assert thread["thread_id"] == thread_id
    assert thread["metadata"] == {"owner": "ana", "graph_id": "agent"}
    assert thread["ttl"] == {"ttl": 30, "strategy": "delete"}
    assert (await client.threads.get(thread_id))["ttl"] == {"ttl": 30, "strategy": "delete"}


async def test_if_exists(client: Any) -> None:
    thread_id = str(uuid.uuid4())
    first = await client.threads.create(thread_id=thread_id, metadata={"n": 1})
    with pytest.raises(ConflictError) as raised:
        await client.threads.create(thread_id=thread_id, metadata={"n": 2})
    assert raised.value.response.json() == {"detail": f"Thread with ID {thread_id} already exists"}
    same = await client.threads.create(thread_id=thread_id, metadata={"n": 3}, if_exists="do_nothing")
    assert same == first
    assert (await client.threads.get(thread_id))["metadata"] == {"n": 1}


async def test_create_with_supersteps_replays_a_history(client: Any) -> None:
    thread = await client.threads.create(
        graph_id="agent",
        supersteps=[
            {"updates": [{"values": HELLO, "as_node": "__input__"}]},
            {"updates": [{"values": HELLO, "as_node": "__start__"}]},
            {"updates": [{"values": {"count": 5}, "as_node": "step"}]},
        ],
    )
    assert thread["values"]["count"] == 5
    assert [m["content"] for m in thread["values"]["messages"]] == ["hello"]
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["count"] == 5 and state["next"] == []
    history = await client.threads.get_history(thread["thread_id"])
    assert [h["metadata"]["step"] for h in history] == [1, 0, -1]


async def test_refused_supersteps_leave_no_thread(client: Any) -> None:
    thread_id = str(uuid.uuid4())
    with pytest.raises(BadRequestError) as raised:
        await client.threads.create(
            thread_id=thread_id,
            graph_id="agent",
            supersteps=[{"updates": [{"values": {"count": 1}, "as_node": "no_such_node"}]}],
        )
    assert "no_such_node" in raised.value.response.json()["detail"]
    with pytest.raises(NotFoundError):
        await client.threads.get(thread_id)
    with pytest.raises(BadRequestError) as raised:
        await client.threads.create(supersteps=[{"updates": [{"values": {"count": 1}, "as_node": "step"}]}])
    assert "has no graph" in raised.value.response.json()["detail"]


async def test_get_unknown_and_invalid_ids(client: Any) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(NotFoundError) as raised:
        await client.threads.get(missing)
    assert raised.value.response.json() == {
        "detail": f"Thread with ID '{missing}' not found. Please verify the thread ID."
    }
    with pytest.raises(UnprocessableEntityError) as invalid:
        await client.threads.get("not-a-uuid")
    assert invalid.value.response.json() == {"detail": "Invalid thread ID: must be a UUID"}


async def test_update_merges_metadata_and_sets_ttl(client: Any, server: ServerProcess) -> None:
    thread = await client.threads.create(metadata={"a": 1, "b": 1})
    tid = thread["thread_id"]
    updated = await client.threads.update(tid, metadata={"b": 2, "c": 3}, ttl=10)
    assert updated["metadata"] == {"a": 1, "b": 2, "c": 3}
    assert updated["ttl"] == {"ttl": 10, "strategy": "delete"}
    assert updated["updated_at"] > thread["updated_at"]
    assert updated["created_at"] == thread["created_at"]
    assert await client.threads.update(tid, metadata={"d": 4}, return_minimal=True) is None
    assert (await client.threads.get(tid))["metadata"] == {"a": 1, "b": 2, "c": 3, "d": 4}
    with pytest.raises(NotFoundError):
        await client.threads.update(str(uuid.uuid4()), metadata={"x": 1})
    async with httpx.AsyncClient(base_url=server.url) as http:
        minimal = await http.patch(f"/threads/{tid}", json={"metadata": {}}, headers={"Prefer": "return=minimal"})
        assert minimal.status_code == 204 and minimal.content == b""


async def test_delete_cascades_runs_crons_and_state(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "agent", input=HELLO)
    cron = await client.crons.create_for_thread(tid, "agent", schedule="0 4 * * *")
    assert await client.crons.count(thread_id=tid) == 1

    await client.threads.delete(tid)
    with pytest.raises(NotFoundError):
        await client.threads.get(tid)
    with pytest.raises(NotFoundError):
        await client.threads.get_state(tid)
    with pytest.raises(NotFoundError):
        await client.runs.list(tid)
    assert await client.crons.count(thread_id=tid) == 0
    assert cron["cron_id"] not in [c["cron_id"] for c in await client.crons.search(limit=1000)]
    with pytest.raises(NotFoundError):
        await client.threads.delete(tid)
    # The same id can be used again, and starts from nothing.
    again = await client.threads.create(thread_id=tid, graph_id="agent")
    assert again["values"] is None
    assert (await client.threads.get_state(tid))["values"] == {}


async def test_search_filters(client: Any) -> None:
    mark = tag()
    plain = await client.threads.create(metadata={**mark, "kind": "plain"})
    ran = await client.threads.create(metadata={**mark, "kind": "ran", "nested": {"deep": [1, 2]}})
    await client.runs.wait(ran["thread_id"], "agent", input=HELLO)
    asked = await client.threads.create(metadata={**mark, "kind": "asked"})
    await client.runs.wait(asked["thread_id"], "ask", input=HELLO)

    def ids(threads: list[dict[str, Any]]) -> list[str]:
        return [t["thread_id"] for t in threads]

    assert ids(await client.threads.search(metadata=mark)) == [asked["thread_id"], ran["thread_id"], plain["thread_id"]]
    assert ids(await client.threads.search(metadata={**mark, "kind": "ran"})) == [ran["thread_id"]]
    assert ids(await client.threads.search(metadata={**mark, "nested": {"deep": [2]}})) == [ran["thread_id"]]
    assert ids(await client.threads.search(metadata={**mark, "graph_id": "ask"})) == [asked["thread_id"]]
    assert ids(await client.threads.search(metadata=mark, values={"count": 1})) == [ran["thread_id"]]
    assert ids(await client.threads.search(metadata=mark, values={"messages": [{"content": "hello"}]})) == [
        asked["thread_id"],
        ran["thread_id"],
    ]
    assert ids(await client.threads.search(metadata=mark, status="interrupted")) == [asked["thread_id"]]
    assert ids(await client.threads.search(metadata=mark, status="idle")) == [ran["thread_id"], plain["thread_id"]]
    assert ids(await client.threads.search(ids=[plain["thread_id"], asked["thread_id"]], metadata=mark)) == [
        asked["thread_id"],
        plain["thread_id"],
    ]
    assert await client.threads.search(metadata={**mark, "kind": "none"}) == []

    assert await client.threads.count(metadata=mark) == 3
    assert await client.threads.count(metadata=mark, status="interrupted") == 1
    assert await client.threads.count(metadata=mark, values={"count": 1}) == 1
    assert await client.threads.count(metadata={**mark, "nested": {"deep": [1]}}) == 1


async def test_metadata_filters_with_awkward_keys_and_values(client: Any) -> None:
    mark = tag()
    awkward = {'quo"te': 1, "dot.ted": 2, "back\\slash": 3, "big": 2**64 - 1, "yes": True, "one": 1, "none": None}
    thread = await client.threads.create(metadata={**mark, **awkward})
    assert (await client.threads.get(thread["thread_id"]))["metadata"] == {**mark, **awkward}
    for key, value in awkward.items():
        found = await client.threads.search(metadata={**mark, key: value})
        assert [t["thread_id"] for t in found] == [thread["thread_id"]], key
        assert await client.threads.count(metadata={**mark, key: value}) == 1, key
    # Containment is typed: true is not 1, 1 is not "1", and a missing key is not null.
    for key, value in [("yes", 1), ("one", True), ("one", "1"), ("big", 2**64 - 2), ("absent", None)]:
        assert await client.threads.search(metadata={**mark, key: value}) == [], (key, value)
        assert await client.threads.count(metadata={**mark, key: value}) == 0, (key, value)


async def test_search_sort_select_extract_and_pages(client: Any, server: ServerProcess) -> None:
    mark = tag()
    made = [(await client.threads.create(metadata={**mark, "i": i}))["thread_id"] for i in range(3)]
    await client.threads.update(made[0], metadata={"touched": True})

    oldest_first = await client.threads.search(metadata=mark, sort_by="created_at", sort_order="asc")
    assert [t["thread_id"] for t in oldest_first] == made
    by_update = await client.threads.search(metadata=mark, sort_by="updated_at", sort_order="desc")
    assert by_update[0]["thread_id"] == made[0]
    by_id = await client.threads.search(metadata=mark, sort_by="thread_id", sort_order="asc")
    assert [t["thread_id"] for t in by_id] == sorted(made)

    selected = await client.threads.search(metadata=mark, select=["thread_id", "status"], limit=1)
    assert selected == [{"thread_id": made[2], "status": "idle"}]
    extracted = await client.threads.search(
        metadata={**mark, "i": 1}, select=["thread_id"], extract={"i": "metadata.i", "gone": "values.messages[-1]"}
    )
    assert extracted == [{"thread_id": made[1], "extracted": {"i": 1, "gone": None}}]

    page = await client.threads.search(metadata=mark, limit=2, offset=1)
    assert [t["thread_id"] for t in page] == [made[1], made[0]]
    async with httpx.AsyncClient(base_url=server.url) as http:
        first = await http.post("/threads/search", json={"metadata": mark, "limit": 2})
        assert (first.headers["X-Pagination-Next"], first.headers["X-Pagination-Total"]) == ("2", "3")
        last = await http.post("/threads/search", json={"metadata": mark, "limit": 2, "offset": 2})
        assert "X-Pagination-Next" not in last.headers and last.headers["X-Pagination-Total"] == "3"
        for body, word in [
            ({"select": ["bogus"]}, "select"),
            ({"sort_by": "bogus"}, "sort_by"),
            ({"status": "bogus"}, "status"),
            ({"ids": ["bogus"]}, "Invalid thread ID"),
            ({"extract": {"x": "values..a"}}, "Invalid extract path"),
            ({"extract": {str(i): "values" for i in range(11)}}, "extract"),
        ]:
            refused = await http.post("/threads/search", json=body)
            assert refused.status_code == 422, body
            assert word in refused.json()["detail"], refused.json()


async def test_copy_copies_metadata_values_and_checkpoints(client: Any) -> None:
    source = await client.threads.create(metadata={"origin": "yes"})
    sid = source["thread_id"]
    await client.runs.wait(sid, "agent", input=HELLO)
    await client.runs.wait(sid, "agent", input={"messages": [{"role": "user", "content": "again"}]})

    copy = await client.threads.copy(sid)
    cid = copy["thread_id"]
    assert cid != sid
    assert copy["metadata"] == (await client.threads.get(sid))["metadata"]
    assert copy["values"]["count"] == 2 and copy["status"] == "idle"

    source_history = await client.threads.get_history(sid, limit=100)
    copy_history = await client.threads.get_history(cid, limit=100)
    assert len(copy_history) == len(source_history) > 2
    assert [h["checkpoint"]["checkpoint_id"] for h in copy_history] == [
        h["checkpoint"]["checkpoint_id"] for h in source_history
    ]
    assert {h["checkpoint"]["thread_id"] for h in copy_history} == {cid}

    # The copy goes its own way: a run on it leaves the source as it was.
    await client.runs.wait(cid, "agent", input={"messages": [{"role": "user", "content": "only the copy"}]})
    assert (await client.threads.get_state(cid))["values"]["count"] == 3
    assert (await client.threads.get_state(sid))["values"]["count"] == 2
    with pytest.raises(NotFoundError):
        await client.threads.copy(str(uuid.uuid4()))


async def test_prune(client: Any) -> None:
    doomed = await client.threads.create()
    kept = await client.threads.create()
    await client.runs.wait(kept["thread_id"], "agent", input=HELLO)
    await client.runs.wait(kept["thread_id"], "agent", input=HELLO)
    assert len(await client.threads.get_history(kept["thread_id"], limit=100)) > 1
    before = await client.threads.get_state(kept["thread_id"])

    result = await client.threads.prune([kept["thread_id"], str(uuid.uuid4())], strategy="keep_latest")
    assert result == {"pruned_count": 1}
    history = await client.threads.get_history(kept["thread_id"], limit=100)
    assert len(history) == 1
    after = await client.threads.get_state(kept["thread_id"])
    assert after["values"] == before["values"] and after["checkpoint"] == before["checkpoint"]
    # The pruned thread still runs on from its latest state.
    await client.runs.wait(kept["thread_id"], "agent", input=HELLO)
    assert (await client.threads.get_state(kept["thread_id"]))["values"]["count"] == 3

    assert await client.threads.prune([doomed["thread_id"], str(uuid.uuid4())]) == {"pruned_count": 1}
    with pytest.raises(NotFoundError):
        await client.threads.get(doomed["thread_id"])
    with pytest.raises(UnprocessableEntityError):
        await client.threads.prune(["not-a-uuid"])


def test_sync_client_lifecycle(sync_client: Any) -> None:
    mark = tag()
    thread = sync_client.threads.create(metadata=mark, graph_id="agent")
    tid = thread["thread_id"]
    assert sync_client.threads.get(tid)["metadata"] == {**mark, "graph_id": "agent"}
    assert sync_client.threads.update(tid, metadata={"more": 1})["metadata"]["more"] == 1
    assert [t["thread_id"] for t in sync_client.threads.search(metadata=mark)] == [tid]
    assert sync_client.threads.count(metadata=mark) == 1
    copy = sync_client.threads.copy(tid)
    assert sync_client.threads.count(metadata=mark) == 2
    sync_client.threads.delete(tid)
    sync_client.threads.delete(copy["thread_id"])
    assert sync_client.threads.count(metadata=mark) == 0
    with pytest.raises(NotFoundError):
        sync_client.threads.get(tid)
