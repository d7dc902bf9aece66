"""Runs through the official SDK: create, get, list, delete, batch, wait and join, their headers, and stateless
runs that keep or delete their thread (wire contract §3.1, §3.2)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from tests.support.server import ServerProcess

HUMAN = {"messages": [{"role": "user", "content": "hi"}]}


async def test_background_run_create_get_join_and_list(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    run = await client.runs.create(tid, "agent", input=HUMAN, metadata={"purpose": "basic"})
    assert run["status"] == "pending"
    assert run["thread_id"] == tid
    assert run["assistant_id"] == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"  # the system assistant of `agent`
    assert run["metadata"] == {"purpose": "basic"}
    assert run["multitask_strategy"] == "enqueue"
    assert run["kwargs"]["input"] == HUMAN
    assert run["kwargs"]["stream_mode"] == ["values"]

    result = await client.runs.join(tid, run["run_id"])
    assert result["messages"][-1]["content"] == "echo: hi"
    got = await client.runs.get(tid, run["run_id"])
    assert got["status"] == "success"
    assert got["run_id"] == run["run_id"]

    second = await client.runs.create(tid, "agent", input={"messages": [{"role": "user", "content": "again"}]})
    await client.runs.join(tid, second["run_id"])
    listed = await client.runs.list(tid)
    assert [r["run_id"] for r in listed] == [second["run_id"], run["run_id"]]  # newest first
    assert [r["run_id"] for r in await client.runs.list(tid, limit=1, offset=1)] == [run["run_id"]]
    assert await client.runs.list(tid, status="pending") == []
    assert len(await client.runs.list(tid, status="success")) == 2
    selected = await client.runs.list(tid, select=["run_id", "status"])
    assert all(set(r) == {"run_id", "status"} for r in selected)

    thread = await client.threads.get(tid)
    assert thread["status"] == "idle"
    assert thread["values"]["count"] == 2


async def test_create_sends_content_location(server: ServerProcess, client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(f"/threads/{tid}/runs", json={"assistant_id": "agent", "input": HUMAN})
        assert r.status_code == 200
        run = r.json()
        assert r.headers["content-location"] == f"/threads/{tid}/runs/{run['run_id']}"
        await client.runs.join(tid, run["run_id"])

        r = await http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "agent", "input": HUMAN})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        location = r.headers["location"]
        assert location.startswith(f"/threads/{tid}/runs/") and location.endswith("/join")
        assert r.headers["content-location"] == location.removesuffix("/join")
        assert r.json()["messages"][-1]["content"] == "echo: hi"

        # The Location of a wait answers a GET with the same result.
        again = await http.get(location)
        assert again.status_code == 200
        assert again.json() == r.json()


async def test_on_run_created_sees_run_and_thread_ids(client: Any) -> None:
    seen: list[Any] = []
    thread = await client.threads.create()
    result = await client.runs.wait(thread["thread_id"], "agent", input=HUMAN, on_run_created=seen.append)
    assert result["messages"][-1]["content"] == "echo: hi"
    assert len(seen) == 1
    assert seen[0]["thread_id"] == thread["thread_id"]
    run = await client.runs.get(thread["thread_id"], seen[0]["run_id"])
    assert run["status"] == "success"


async def test_wait_error_body_and_raise_error(client: Any) -> None:
    thread = await client.threads.create()
    body = await client.runs.wait(thread["thread_id"], "fails", input={}, raise_error=False)
    assert body == {"__error__": {"error": "ValueError", "message": "kaboom"}}
    with pytest.raises(Exception, match="ValueError: kaboom"):  # raise_error is the SDK's default
        await client.runs.wait(thread["thread_id"], "fails", input={})
    thread = await client.threads.get(thread["thread_id"])
    assert thread["status"] == "error"
    assert thread["error"] == {"error": "ValueError", "message": "kaboom"}
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["error", "error"]


async def test_join_of_finished_run_returns_its_output(client: Any) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "agent", input=HUMAN)
    first = await client.runs.join(thread["thread_id"], run["run_id"])
    assert first == await client.runs.join(thread["thread_id"], run["run_id"])


async def test_delete_run(client: Any) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "agent", input=HUMAN)
    await client.runs.join(thread["thread_id"], run["run_id"])
    await client.runs.delete(thread["thread_id"], run["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.get(thread["thread_id"], run["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.delete(thread["thread_id"], run["run_id"])


async def test_missing_thread_and_assistant(client: Any) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFoundError, match="Thread or assistant not found"):
        await client.runs.create(missing, "agent", input=HUMAN)
    with pytest.raises(NotFoundError):
        await client.runs.list(missing)
    with pytest.raises(NotFoundError):
        await client.runs.create(None, missing, input=HUMAN)
    with pytest.raises(UnprocessableEntityError, match="Invalid assistant: 'nope'"):
        await client.runs.create(None, "nope", input=HUMAN)


async def test_if_not_exists_create_makes_the_thread(client: Any) -> None:
    import uuid

    tid = str(uuid.uuid4())
    result = await client.runs.wait(tid, "agent", input=HUMAN, if_not_exists="create")
    assert result["messages"][-1]["content"] == "echo: hi"
    thread = await client.threads.get(tid)
    assert thread["metadata"]["graph_id"] == "agent"
    assert thread["status"] == "idle"


async def test_after_seconds_delays_the_start(client: Any) -> None:
    thread = await client.threads.create()
    started = time.monotonic()
    run = await client.runs.create(thread["thread_id"], "agent", input=HUMAN, after_seconds=1)
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "pending"
    await client.runs.join(thread["thread_id"], run["run_id"])
    assert time.monotonic() - started >= 0.9
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"


async def test_stateless_wait_deletes_its_thread_by_default(client: Any) -> None:
    created: list[Any] = []
    result = await client.runs.wait(None, "agent", input=HUMAN, on_run_created=created.append)
    assert result["messages"][-1]["content"] == "echo: hi"
    with pytest.raises(NotFoundError):
        await client.threads.get(created[0]["thread_id"])


async def test_stateless_wait_keep_leaves_the_thread(client: Any) -> None:
    created: list[Any] = []
    result = await client.runs.wait(None, "agent", input=HUMAN, on_completion="keep", on_run_created=created.append)
    assert result["messages"][-1]["content"] == "echo: hi"
    tid = created[0]["thread_id"]
    thread = await client.threads.get(tid)
    assert thread["status"] == "idle"
    assert thread["values"]["messages"][-1]["content"] == "echo: hi"
    run = await client.runs.get(tid, created[0]["run_id"])
    assert run["status"] == "success"


async def test_stateless_wait_error_body(client: Any) -> None:
    assert await client.runs.wait(None, "fails", input={}, raise_error=False) == {
        "__error__": {"error": "ValueError", "message": "kaboom"}
    }


async def test_stateless_background_keep_and_delete(client: Any) -> None:
    kept = await client.runs.create(None, "agent", input=HUMAN, on_completion="keep")
    assert await client.runs.join(kept["thread_id"], kept["run_id"]) == {
        **(await client.threads.get(kept["thread_id"]))["values"]
    }
    gone = await client.runs.create(None, "agent", input=HUMAN)
    assert gone["kwargs"]["temporary"] is True
    result = await client.runs.join(gone["thread_id"], gone["run_id"])
    assert result["messages"][-1]["content"] == "echo: hi"
    with pytest.raises(NotFoundError):
        await client.threads.get(gone["thread_id"])


async def test_join_after_a_temporary_run_is_gone(client: Any) -> None:
    run = await client.runs.create(None, "agent", input=HUMAN)
    deadline = time.monotonic() + 10
    while True:  # the run ended and took its thread with it
        try:
            await client.threads.get(run["thread_id"])
        except NotFoundError:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    result = await client.runs.join(run["thread_id"], run["run_id"])
    assert result["messages"][-1]["content"] == "echo: hi"
    parts = [p async for p in client.runs.join_stream(run["thread_id"], run["run_id"])]
    assert [p.event for p in parts] == ["metadata", "values", "values"]


async def test_create_batch(client: Any) -> None:
    runs = await client.runs.create_batch(
        [
            {"assistant_id": "agent", "input": HUMAN, "on_completion": "keep"},
            {
                "assistant_id": "echo",
                "input": {"messages": [{"role": "user", "content": "two"}]},
                "on_completion": "keep",
            },
        ]
    )
    assert len(runs) == 2
    assert len({r["thread_id"] for r in runs}) == 2
    results = [await client.runs.join(r["thread_id"], r["run_id"]) for r in runs]
    assert [r["messages"][-1]["content"] for r in results] == ["echo: hi", "echo: two"]


async def test_create_batch_is_all_or_nothing(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/runs/batch", json=[{"assistant_id": "agent", "input": HUMAN}, {"assistant_id": "nope"}])
        assert r.status_code == 422
        assert "Invalid assistant" in r.json()["detail"]
        r = await http.post("/runs/batch", json={"assistant_id": "agent"})
        assert r.status_code == 422


async def test_bad_run_requests_are_4xx_with_detail(server: ServerProcess, client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    async with httpx.AsyncClient(base_url=server.url) as http:
        cases: list[tuple[str, str, Any, int, str]] = [
            ("POST", "/threads/not-a-uuid/runs", {"assistant_id": "agent"}, 422, "Invalid thread ID"),
            ("POST", f"/threads/{tid}/runs", {}, 422, "assistant_id"),
            ("POST", f"/threads/{tid}/runs", {"assistant_id": "agent", "stream_mode": "nope"}, 422, "stream_mode"),
            (
                "POST",
                f"/threads/{tid}/runs",
                {"assistant_id": "agent", "multitask_strategy": "later"},
                422,
                "multitask_strategy",
            ),
            (
                "POST",
                "/runs/wait",
                {"assistant_id": "agent", "command": {"resume": "yes"}},
                400,
                "You must provide a thread_id when resuming",
            ),
            (
                "POST",
                f"/threads/{tid}/runs",
                {"assistant_id": "agent", "config": {"configurable": {"a": 1}}, "context": {"a": 1}},
                400,
                "Cannot specify both configurable and context",
            ),
            ("GET", f"/threads/{tid}/runs/not-a-uuid", None, 422, "Invalid run ID"),
            ("GET", f"/threads/{tid}/runs/00000000-0000-4000-8000-000000000000", None, 404, "not found"),
            ("GET", f"/threads/{tid}/runs?limit=0", None, 422, "limit"),
            ("POST", f"/threads/{tid}/runs", {"assistant_id": "agent", "after_seconds": -1}, 422, "after_seconds"),
            ("POST", f"/threads/{tid}/runs", {"assistant_id": "agent", "after_seconds": 1e300}, 422, "after_seconds"),
            ("POST", "/runs/batch", [{"assistant_id": "agent", "after_seconds": 1e300}], 422, "after_seconds"),
            ("POST", f"/threads/{tid}/runs", {"assistant_id": "agent", "metadata": "x"}, 422, "metadata"),
            ("POST", f"/threads/{tid}/runs", {"assistant_id": "agent", "command": "go"}, 422, "command"),
            ("GET", f"/threads/{tid}/runs?status=bogus", None, 422, "status"),
            ("GET", f"/threads/{tid}/runs?select=bogus", None, 422, "select"),
            ("POST", f"/threads/{tid}/runs/{tid}/cancel?action=bogus", None, 422, "action"),
            ("POST", "/runs/cancel", {"status": "bogus"}, 422, "status"),
            ("POST", "/runs/cancel", {"run_ids": ["nope"]}, 422, "Invalid run ID"),
            ("POST", "/runs/cancel", {}, 422, "run_ids"),
        ]
        for method, path, body, status, needle in cases:
            r = await http.request(method, path, json=body)
            assert r.status_code == status, (method, path, r.text)
            assert needle in r.json()["detail"], (path, r.json())


def test_sync_client_run_lifecycle(sync_client: Any) -> None:
    thread = sync_client.threads.create()
    tid = thread["thread_id"]
    run = sync_client.runs.create(tid, "agent", input=HUMAN)
    result = sync_client.runs.join(tid, run["run_id"])
    assert result["messages"][-1]["content"] == "echo: hi"
    assert sync_client.runs.get(tid, run["run_id"])["status"] == "success"
    waited = sync_client.runs.wait(tid, "agent", input={"messages": [{"role": "user", "content": "sync"}]})
    assert waited["messages"][-1]["content"] == "echo: sync"
    assert [r["status"] for r in sync_client.runs.list(tid)] == ["success", "success"]
    sync_client.runs.delete(tid, run["run_id"])
    assert len(sync_client.runs.list(tid)) == 1
