"""Time to the first `values` event: the thread-centric stream against the classic run stream, for any server URL.

    python benchmarks/thread_stream.py                # starts a crongraph (SQLite) and measures it
    python benchmarks/thread_stream.py --url http://127.0.0.1:2024 --assistant agent   # e.g. the reference server
    python benchmarks/thread_stream.py --compare crongraph crongraph-pg http://127.0.0.1:2024#agent   # side by side

Thread stream: a fresh thread id, an SSE stream on it already open (`POST /threads/{id}/stream/events`, as the
SDK opens its streams before it starts a run), then the clock runs from sending `run.start` to the first `values`
event. Classic: from calling `client.runs.stream(thread, assistant, stream_mode="values")` on a fresh thread to
its first `values` event. Prints median, p90 and p99 of each, and the server's CPU per operation of each (the
two alternate in batches of 10). With --compare, both figures are measured on every
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
from common import Probe, Target, backend, compare, parser, pct, server_target, summary, targets
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


# Without --compare the two paths alternate in batches of this many, each batch inside its own CPU probe, so that
# both see the same machine and each CPU figure belongs to one path.
BATCH = 10


async def measure(target: Target, n: int) -> None:
    client = get_client(url=target.url, timeout=120)
    samples: dict[str, list[float]] = {"thread stream: run.start → values": [], "runs.stream → values": []}
    per_op: dict[str, dict[str, float]] = {name: {} for name in samples}
    async with httpx.AsyncClient(base_url=target.url, timeout=120) as http:
        await warm_up(http, client, target.assistant)
        paths: dict[str, Callable[[], Awaitable[float]]] = {
            "thread stream: run.start → values": lambda: thread_stream_once(http, target.assistant),
            "runs.stream → values": lambda: classic_once(client, target.assistant),
        }
        for start in range(0, n, BATCH):
            size = min(BATCH, n - start)
            for name, once in paths.items():
                probe = Probe(target)
                samples[name].extend([await once() for _ in range(size)])
                for key, value in probe.per(1).items():
                    per_op[name][key] = per_op[name].get(key, 0.0) + value
    for name, ms in samples.items():
        print(summary(name, ms))
    for name, totals in per_op.items():
        # Only a server started here (or found by its URL on this machine) has a CPU figure.
        figures = ", ".join(f"{key} {value / n:.2f}" for key, value in totals.items())
        print(f"  per {name.split(':')[0].split(' →')[0]}: {figures or 'no CPU figure (the server is not local)'}")
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
    with server_target(args.url, args.assistant, **backend(args)) as target:
        print(f"server: {target.url}")
        asyncio.run(measure(target, args.n))


if __name__ == "__main__":
    main()
