"""Helpers for tests about runs: inputs for the fixture graphs, and waiting for a run to reach a status."""

from __future__ import annotations

import asyncio
import time
from typing import Any


def said(text: str, delay: float = 0.0) -> dict[str, Any]:
    """Input for the fixture graphs; `slow` sleeps `delay` seconds before answering."""
    return {"messages": [{"role": "user", "content": text}], "delay": delay}


async def wait_for_status(
    client: Any, thread_id: str, run_id: str, status: str, within: float = 10.0
) -> dict[str, Any]:
    """Poll the run until it has `status` (a run is claimed within milliseconds; this is no sleep-and-hope)."""
    deadline = time.monotonic() + within
    while True:
        run: dict[str, Any] = await client.runs.get(thread_id, run_id)
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, f"run {run_id} is {run['status']}, never became {status}"
        await asyncio.sleep(0.02)


async def start_slow(client: Any, thread_id: str, text: str, delay: float, **kwargs: Any) -> dict[str, Any]:
    """A run of the fixture graph `slow` on the thread (answering `text` after `delay` seconds), returned once it is
    running; `kwargs` go to `runs.create` (multitask_strategy=, webhook= …)."""
    run: dict[str, Any] = await client.runs.create(thread_id, "slow", input=said(text, delay), **kwargs)
    return await wait_for_status(client, thread_id, run["run_id"], "running")
