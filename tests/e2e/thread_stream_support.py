"""Raw-HTTP helpers for the thread-stream tests: send one command, and read an SSE event stream until a
condition holds (the stream itself never ends on its own)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson

Event = dict[str, Any]


async def command(url: str, thread_id: str, method: str, params: dict[str, Any], command_id: int = 1) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(
            f"/threads/{thread_id}/commands", json={"id": command_id, "method": method, "params": params}
        )
    assert response.status_code == 200, response.text
    return response.json()


def root_terminal(event: Event) -> bool:
    params = event.get("params") or {}
    return (
        event.get("method") == "lifecycle"
        and params.get("namespace") == []
        and params.get("data", {}).get("event") in ("completed", "failed", "interrupted")
    )


def count(n: int) -> Callable[[Event], bool]:
    seen = 0

    def done(_event: Event) -> bool:
        nonlocal seen
        seen += 1
        return seen >= n

    return done


async def collect_sse(
    url: str,
    thread_id: str,
    body: dict[str, Any],
    *,
    until: Callable[[Event], bool],
    wait: float = 20.0,
    frames: list[bytes] | None = None,
) -> list[Event]:
    """Every `data:` object of the stream up to and including the first one `until` accepts."""
    events: list[Event] = []

    async def read() -> None:
        async with (
            httpx.AsyncClient(base_url=url, timeout=wait) as http,
            http.stream("POST", f"/threads/{thread_id}/stream/events", json=body) as response,
        ):
            assert response.status_code == 200, await response.aread()
            buffer = b""
            async for chunk in response.aiter_bytes():
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    frame, buffer = buffer.split(b"\r\n\r\n", 1)
                    if frames is not None:
                        frames.append(frame)
                    for line in frame.split(b"\r\n"):
                        if line.startswith(b"data: "):
                            event = orjson.loads(line[len(b"data: ") :])
                            events.append(event)
                            if until(event):
                                return

    await asyncio.wait_for(read(), wait)
    return events
