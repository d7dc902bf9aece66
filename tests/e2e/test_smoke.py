"""The README's seed example, as a new user runs it."""

from __future__ import annotations

from typing import Any


async def test_seed_example_thread_and_wait(client: Any) -> None:
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "What time is it?"}]}
    )
    assert result["messages"][-1]["content"] == "echo: What time is it?"
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["count"] == 1
