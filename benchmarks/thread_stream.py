"""Time to the first `values` event: the thread-centric stream against the classic run stream, for any server URL.

    python benchmarks/thread_stream.py                # starts a crongraph (SQLite) and measures it
    python benchmarks/thread_stream.py --url http://127.0.0.1:2024 --assistant agent   # e.g. the reference server

Thread stream: a fresh thread id, an SSE stream on it already open (`POST /threads/{id}/stream/events`, as the
SDK opens its streams before it starts a run), then the clock runs from sending `run.start` to the first `values`
event. Classic: from calling `client.runs.stream(thread, assistant, stream_mode="values")` on a fresh thread to
its first `values` event. Prints median, p90 and p99 of each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import orjson
from common import backend, parser, server, summary
from langgraph_sdk import get_client

INPUT = {"value": 1}


async def _first_values(response: httpx.Response) -> None:
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        while b"\r\n\r\n" in buffer:
            frame, buffer = buffer.split(b"\r\n\r\n", 1)
            for line in frame.split(b"\r\n"):
                if line.startswith(b"data: ") and orjson.loads(line[6:]).get("method") == "values":
                    return


async def thread_stream_once(http: httpx.AsyncClient, assistant: str) -> float:
    thread_id = str(uuid.uuid4())
    body = {"channels": ["values", "lifecycle"]}
    async with http.stream("POST", f"/threads/{thread_id}/stream/events", json=body) as response:
        response.raise_for_status()
        reader = asyncio.ensure_future(_first_values(response))
        t0 = time.perf_counter()
        command = {"id": 1, "method": "run.start", "params": {"assistant_id": assistant, "input": INPUT}}
        reply = (await http.post(f"/threads/{thread_id}/commands", json=command)).json()
        if reply.get("type") != "success":
            reader.cancel()
            raise RuntimeError(f"run.start failed: {reply}")
        await reader
        return (time.perf_counter() - t0) * 1000


async def classic_once(client: Any, assistant: str) -> float:
    thread = await client.threads.create()
    t0 = time.perf_counter()
    async for part in client.runs.stream(thread["thread_id"], assistant, input=INPUT, stream_mode="values"):
        if part.event == "values":
            elapsed = (time.perf_counter() - t0) * 1000
            break
    else:
        raise RuntimeError("the run stream ended without a values event")
    return elapsed


async def measure(url: str, assistant: str, n: int) -> None:
    client = get_client(url=url, timeout=120)
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for _ in range(10):  # warm up both paths
            await thread_stream_once(http, assistant)
            await classic_once(client, assistant)
        threads_ms, classic_ms = [], []
        for _ in range(n):  # interleaved, so that both see the same machine
            threads_ms.append(await thread_stream_once(http, assistant))
            classic_ms.append(await classic_once(client, assistant))
    print(summary("thread stream: run.start → values", threads_ms))
    print(summary("runs.stream → values", classic_ms))


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("-n", type=int, default=200, help="samples per figure")
    args = p.parse_args()
    with server(args.url, **backend(args)) as url:
        print(f"server: {url}")
        asyncio.run(measure(url, args.assistant, args.n))


if __name__ == "__main__":
    main()
