"""Run latency and queue throughput, through the official Python SDK, for any server URL.

    python benchmarks/runs.py                 # starts a crongraph (SQLite) and measures it
    python benchmarks/runs.py --url http://127.0.0.1:2024 --assistant agent   # e.g. the reference server
    python benchmarks/runs.py --auth          # the same server with custom auth (benchmarks/graphs/auth.py)

Prints: runs.wait and runs.stream medians for a trivial one-node graph (a fresh thread per run, created outside
the timing), stateless runs.wait, and the drain rate of a backlog of background runs.
"""

from __future__ import annotations

import asyncio
import time

from common import BENCH_CONFIG, LOCAL_PID, cpu_seconds, parser, server, summary
from langgraph_sdk import get_client


async def measure(url: str, assistant: str, n: int, backlog: int, pid: int | None, token: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    client = get_client(url=url, timeout=600, headers=headers)
    inp = {"value": 1}
    for _ in range(20):  # warm up
        await client.runs.wait((await client.threads.create())["thread_id"], assistant, input=inp)

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
    # Backlog: queue `backlog` background runs that all become claimable at one instant (after_seconds), so the
    # drain is measured on its own, not mixed with the creating.
    threads = await asyncio.gather(*(client.threads.create() for _ in range(backlog)))
    sem = asyncio.Semaphore(32)
    lead = max(5.0, backlog / 150)
    due = time.time() + lead

    async def create(thread_id: str) -> dict:
        async with sem:
            return await client.runs.create(thread_id, assistant, input=inp, after_seconds=max(0.0, due - time.time()))

    t0 = time.perf_counter()
    runs = await asyncio.gather(*(create(t["thread_id"]) for t in threads))
    created = time.perf_counter() - t0
    assert time.time() < due, "creating the backlog took longer than its lead; raise the lead"
    await asyncio.sleep(max(0.0, due - time.time()))
    start = time.perf_counter()
    cpu_before = cpu_seconds(pid) if pid else 0.0
    # Wait without disturbing the server: polling thousands of runs would cost it as much CPU as the drain itself.
    # Runs are claimed oldest first, so join the newest (the server answers when it ends), then check every run
    # and join any still unfinished; the drain ends when the last of them has (checking time included).
    await client.runs.join(runs[-1]["thread_id"], runs[-1]["run_id"])
    ended, cpu_after = time.perf_counter(), cpu_seconds(pid) if pid else 0.0
    while True:
        got: list[dict] = []
        for i in range(0, len(runs), 200):
            got += await asyncio.gather(*(client.runs.get(r["thread_id"], r["run_id"]) for r in runs[i : i + 200]))
        pending = [r for r in got if r["status"] in ("pending", "running")]
        if not pending:
            break
        await asyncio.gather(*(client.runs.join(r["thread_id"], r["run_id"]) for r in pending))
        ended, cpu_after = time.perf_counter(), cpu_seconds(pid) if pid else 0.0
    total = ended - start
    failed = sum(1 for r in got if r["status"] != "success")
    cpu = f"; server CPU {(cpu_after - cpu_before) / backlog * 1000:.2f} ms/run" if pid else ""
    print(
        f"{'backlog of ' + str(backlog) + ' background runs':34} queued in {created:.2f} s; drained in "
        f"{total:.2f} s  →  {backlog / total:.0f} runs/s ({failed} not successful{cpu})"
    )

    stateless = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.runs.wait(None, assistant, input=inp)
        stateless.append((time.perf_counter() - t0) * 1000)
    print(summary("runs.wait (stateless)", stateless))


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("-n", type=int, default=200, help="samples per latency figure")
    p.add_argument("--backlog", type=int, default=3000)
    p.add_argument(
        "--auth",
        action="store_true",
        help="custom auth: start crongraph with benchmarks/graphs/auth.py (or, with --url, send a bearer token)",
    )
    args = p.parse_args()
    extra = {"config": BENCH_CONFIG.with_name("langgraph.auth.json")} if args.auth and not args.url else {}
    with server(args.url, **extra) as url:
        print(f"server: {url}" + (" (custom auth)" if args.auth else ""))
        token = "bench-user" if args.auth else None
        asyncio.run(measure(url, args.assistant, args.n, args.backlog, LOCAL_PID.get(url), token))


if __name__ == "__main__":
    main()
