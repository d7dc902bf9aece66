"""Time to the first `values` event: the thread-centric stream against the classic run stream, for any server URL.

    python benchmarks/thread_stream.py                # starts a crongraph (SQLite) and measures it
    python benchmarks/thread_stream.py --url http://127.0.0.1:2024 --assistant agent   # e.g. the reference server
    python benchmarks/thread_stream.py --compare crongraph crongraph-pg http://127.0.0.1:2024#agent   # side by side

Thread stream: a fresh thread id, an SSE stream on it already open (`POST /threads/{id}/stream/events`, as the
SDK opens its streams before it starts a run), then the clock runs from sending `run.start` to the first `values`
event. Classic: from calling `client.runs.stream(thread, assistant, stream_mode="values")` on a fresh thread to
its first `values` event. Prints median, p90 and p99 of each. With --compare, both figures are measured on every
target in interleaved rounds (A B A B ..., -n / --rounds samples of each per round) and printed with their ratio to
the first target, with CPU per operation (crongraph, and PostgreSQL) and PostgreSQL's transactions, rows written
and statements per operation for the local targets.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from common import Probe, Target, backend, compare, parser, pct, server, summary, targets
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


async def warm_up(http: httpx.AsyncClient, client: Any, assistant: str) -> None:
    for _ in range(10):
        await thread_stream_once(http, assistant)
        await classic_once(client, assistant)


async def measure(url: str, assistant: str, n: int) -> None:
    client = get_client(url=url, timeout=120)
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        await warm_up(http, client, assistant)
        threads_ms, classic_ms = [], []
        for _ in range(n):  # interleaved, so that both see the same machine
            threads_ms.append(await thread_stream_once(http, assistant))
            classic_ms.append(await classic_once(client, assistant))
    print(summary("thread stream: run.start → values", threads_ms))
    print(summary("runs.stream → values", classic_ms))
    await client.http.client.aclose()


async def side_by_side(found: list[Target], n: int, rounds: int) -> None:
    """Each round, on each target in turn: `n / rounds` thread-stream samples, then as many classic ones, each
    batch inside its own CPU / PostgreSQL probe (so that the per-operation figures belong to one path)."""
    clients = {t.name: get_client(url=t.url, timeout=120) for t in found}
    https = {t.name: httpx.AsyncClient(base_url=t.url, timeout=120) for t in found}
    per_round = max(5, n // rounds)

    async def batch(label: str, once: Callable[[], Awaitable[float]], t: Target) -> dict[str, float]:
        probe = Probe(t)
        ms = [await once() for _ in range(per_round)]
        out = {f"{label} median ms": statistics.median(ms), f"{label} p90 ms": pct(ms, 0.9)}
        out.update({f"  per {label}: {k}": v for k, v in probe.per(per_round).items()})
        return out

    async def one_round(t: Target) -> dict[str, float]:
        http, client = https[t.name], clients[t.name]
        out = await batch("thread stream", lambda: thread_stream_once(http, t.assistant), t)
        out.update(await batch("runs.stream", lambda: classic_once(client, t.assistant), t))
        return out

    try:
        for t in found:
            await warm_up(https[t.name], clients[t.name], t.assistant)
        print(f"{rounds} rounds; each: {per_round} thread-stream run.start → values, then as many runs.stream → values")
        await compare(found, rounds, one_round)
    finally:
        for t in found:
            await https[t.name].aclose()
            await clients[t.name].http.client.aclose()


def main() -> None:
    p = parser(__doc__ or "", compare=True)
    p.add_argument("-n", type=int, default=200, help="samples per figure (with --compare: over all rounds)")
    args = p.parse_args()
    if args.compare:
        with targets(args.compare, args.assistant) as found:
            for t in found:
                print(f"server: {t.name} = {t.url} (graph {t.assistant})")
            asyncio.run(side_by_side(found, args.n, args.rounds))
        return
    with server(args.url, **backend(args)) as url:
        print(f"server: {url}")
        asyncio.run(measure(url, args.assistant, args.n))


if __name__ == "__main__":
    main()
