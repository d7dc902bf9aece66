"""Run latency and queue throughput, through the official Python SDK, for any server URL.

    python benchmarks/runs.py                 # starts a crongraph (SQLite) and measures it
    python benchmarks/runs.py --url http://127.0.0.1:2024 --assistant agent   # e.g. the reference server

Prints: runs.wait and runs.stream medians for a trivial one-node graph (a fresh thread per run, created outside
the timing), stateless runs.wait, and the drain rate of a backlog of background runs.
"""

from __future__ import annotations

import asyncio
import time

from common import parser, server, summary
from langgraph_sdk import get_client


async def measure(url: str, assistant: str, n: int, backlog: int) -> None:
    client = get_client(url=url, timeout=600)
    inp = {"value": 1}
    for _ in range(20):  # warm up
        await client.runs.wait(None, assistant, input=inp)

    async def timed(fn: object) -> list[float]:
        out = []
        for _ in range(n):
            thread = await client.threads.create()
            t0 = time.perf_counter()
            await fn(thread["thread_id"])  # type: ignore[operator]
            out.append((time.perf_counter() - t0) * 1000)
        return out

    async def stream(thread_id: str) -> None:
        async for _ in client.runs.stream(thread_id, assistant, input=inp):
            pass

    print(summary("runs.wait (thread)", await timed(lambda t: client.runs.wait(t, assistant, input=inp))))
    print(summary("runs.stream (thread)", await timed(stream)))
    stateless = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.runs.wait(None, assistant, input=inp)
        stateless.append((time.perf_counter() - t0) * 1000)
    print(summary("runs.wait (stateless)", stateless))

    # Backlog: create `backlog` background runs as fast as possible, then time until all are done.
    threads = await asyncio.gather(*(client.threads.create() for _ in range(backlog)))
    sem = asyncio.Semaphore(32)

    async def create(thread_id: str) -> dict:
        async with sem:
            return await client.runs.create(thread_id, assistant, input=inp)

    t0 = time.perf_counter()
    runs = await asyncio.gather(*(create(t["thread_id"]) for t in threads))
    created = time.perf_counter() - t0
    pending = {(r["thread_id"], r["run_id"]) for r in runs}
    while pending:
        done = set()
        for thread_id, run_id in list(pending)[:200]:
            run = await client.runs.get(thread_id, run_id)
            if run["status"] in ("success", "error"):
                done.add((thread_id, run_id))
        pending -= done
        if pending and not done:
            await asyncio.sleep(0.05)
    total = time.perf_counter() - t0
    print(f"{'backlog of ' + str(backlog) + ' background runs':34} created in {created:.2f} s, all finished in "
          f"{total:.2f} s  →  {backlog / total:.0f} runs/s")


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("-n", type=int, default=200, help="samples per latency figure")
    p.add_argument("--backlog", type=int, default=3000)
    args = p.parse_args()
    with server(args.url) as url:
        print(f"server: {url}")
        asyncio.run(measure(url, args.assistant, args.n, args.backlog))


if __name__ == "__main__":
    main()
