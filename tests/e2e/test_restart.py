"""What was written before a restart is there after it: assistants and their versions, threads, their state and
history, store items, and the system assistants are not duplicated. Once after a polite stop, once after kill -9.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph_sdk import get_client

from tests.support.server import ServerProcess


async def write_everything(url: str) -> dict[str, Any]:
    client = get_client(url=url)
    try:
        assistant = await client.assistants.create("echo", name="keeper", metadata={"keep": True})
        await client.assistants.update(assistant["assistant_id"], metadata={"v": 2}, name="keeper v2")
        thread = await client.threads.create(metadata={"keep": "me"}, graph_id="agent")
        tid = thread["thread_id"]
        await client.runs.wait(tid, "agent", input={"messages": [{"role": "user", "content": "remember"}]})
        await client.threads.update_state(tid, {"count": 9}, as_node="step")
        await client.store.put_item(["keep", "me"], "item", {"answer": 42})
        cron = await client.crons.create_for_thread(tid, assistant["assistant_id"], schedule="0 5 * * *")
        return {
            "assistant": await client.assistants.get(assistant["assistant_id"]),
            "versions": await client.assistants.get_versions(assistant["assistant_id"]),
            "thread": await client.threads.get(tid),
            "state": await client.threads.get_state(tid),
            "history": await client.threads.get_history(tid, limit=100),
            "item": await client.store.get_item(["keep", "me"], "item"),
            "cron_id": cron["cron_id"],
            "assistant_count": await client.assistants.count(),
        }
    finally:
        await client.http.client.aclose()


async def read_back(url: str, written: dict[str, Any]) -> None:
    client = get_client(url=url)
    try:
        aid = written["assistant"]["assistant_id"]
        tid = written["thread"]["thread_id"]
        assert await client.assistants.get(aid) == written["assistant"]
        assert await client.assistants.get_versions(aid) == written["versions"]
        assert await client.threads.get(tid) == written["thread"]
        assert await client.threads.get_state(tid) == written["state"]
        assert await client.threads.get_history(tid, limit=100) == written["history"]
        assert await client.store.get_item(["keep", "me"], "item") == written["item"]
        assert [c["cron_id"] for c in await client.crons.search(thread_id=tid)] == [written["cron_id"]]
        assert await client.assistants.count() == written["assistant_count"], "system assistants not duplicated"
        # And the thread carries on from where it was.
        result = await client.runs.wait(tid, "agent", input={"messages": [{"role": "user", "content": "again"}]})
        assert result["count"] == 10
    finally:
        await client.http.client.aclose()


async def test_data_survives_a_restart(server_factory: Callable[..., ServerProcess]) -> None:
    proc = server_factory()
    written = await write_everything(proc.url)
    assert written["state"]["values"]["count"] == 9
    proc.restart()
    await read_back(proc.url, written)
    proc.stop()


async def test_data_survives_kill_9(server_factory: Callable[..., ServerProcess]) -> None:
    proc = server_factory()
    written = await write_everything(proc.url)
    proc.kill()
    proc.start()
    await read_back(proc.url, written)
    proc.stop()
