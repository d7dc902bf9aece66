"""What was written before a restart is there after it: assistants and their versions, threads, their state and
history, store items and crons, and the system assistants are not duplicated. First across a polite stop, then
across kill -9, on one server (each start costs seconds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph_sdk import get_client

from tests.support.server import ServerProcess


async def write_everything(url: str) -> dict[str, str]:
    client = get_client(url=url)
    try:
        assistant = await client.assistants.create("echo", name="keeper", metadata={"keep": True})
        aid = assistant["assistant_id"]
        await client.assistants.update(aid, metadata={"v": 2}, name="keeper v2")
        thread = await client.threads.create(metadata={"keep": "me"}, graph_id="agent")
        tid = thread["thread_id"]
        await client.runs.wait(tid, "agent", input={"messages": [{"role": "user", "content": "remember"}]})
        await client.threads.update_state(tid, {"count": 9}, as_node="step")
        await client.store.put_item(["keep", "me"], "item", {"answer": 42})
        await client.crons.create_for_thread(tid, aid, schedule="0 5 * * *")
        return {"assistant_id": aid, "thread_id": tid}
    finally:
        await client.http.client.aclose()


async def read_everything(url: str, ids: dict[str, str]) -> dict[str, Any]:
    client = get_client(url=url)
    aid, tid = ids["assistant_id"], ids["thread_id"]
    try:
        return {
            "assistant": await client.assistants.get(aid),
            "versions": await client.assistants.get_versions(aid),
            "assistants": await client.assistants.search(limit=100),
            "thread": await client.threads.get(tid),
            "state": await client.threads.get_state(tid),
            "history": await client.threads.get_history(tid, limit=100),
            "runs": await client.runs.list(tid, limit=100),
            "item": await client.store.get_item(["keep", "me"], "item"),
            "crons": await client.crons.search(thread_id=tid),
        }
    finally:
        await client.http.client.aclose()


async def run_once_more(url: str, thread_id: str) -> int:
    client = get_client(url=url)
    try:
        result = await client.runs.wait(thread_id, "agent", input={"messages": [{"role": "user", "content": "more"}]})
        return int(result["count"])
    finally:
        await client.http.client.aclose()


async def test_data_survives_restart_and_kill_9(server_factory: Callable[..., ServerProcess]) -> None:
    proc = server_factory()
    ids = await write_everything(proc.url)
    written = await read_everything(proc.url, ids)
    assert written["state"]["values"]["count"] == 9
    assert written["versions"][0]["version"] == 2 and written["item"]["value"] == {"answer": 42}
    assert len(written["crons"]) == 1

    proc.restart()
    assert await read_everything(proc.url, ids) == written
    assert await run_once_more(proc.url, ids["thread_id"]) == 10, "the thread carries on where it was"
    before_kill = await read_everything(proc.url, ids)

    proc.kill()
    proc.start()
    assert await read_everything(proc.url, ids) == before_kill
    assert await run_once_more(proc.url, ids["thread_id"]) == 11
    proc.stop()
