"""Memory under sustained load: many clients doing runs.wait, the server's RSS printed over time, then again once
the run-event retention has expired.

    python benchmarks/soak.py                            # starts a crongraph (SQLite) and soaks it
    python benchmarks/soak.py --runs 10000 --clients 50 --rounds 2
    python benchmarks/soak.py --url http://127.0.0.1:2024 --pid 12345 --idle 330   # any server on this machine

Prints: the server's RSS (from /proc/PID/status) when idle, every few seconds during each round of load (runs
finished so far, their rate and the runs.wait median of the last interval), its peak, and after `--idle` seconds
with no load (by default the retention plus a margin). Each client loops: create a thread, runs.wait on it (or a
stateless runs.wait with --stateless). Without --pid and --url nothing can be read from /proc: only the run
figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from common import LOCAL_PID, backend, parser, rss_mb, server
from langgraph_sdk import get_client


def rss_text(pid: int | None) -> str:
    return f"RSS {rss_mb(pid):7.1f} MB" if pid else "RSS ?"


async def round_of_load(
    url: str, assistant: str, clients: int, runs: int, stateless: bool, pid: int | None, every: float
) -> float:
    """`runs` runs.wait by `clients` concurrent clients; prints progress every `every` s; returns peak RSS."""
    client = get_client(url=url, timeout=600)
    latencies: list[float] = []
    remaining = runs
    peak = rss_mb(pid) if pid else 0.0

    async def one_client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            thread_id = None if stateless else (await client.threads.create())["thread_id"]
            t0 = time.perf_counter()
            await client.runs.wait(thread_id, assistant, input={"value": 1})
            latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    tasks = [asyncio.create_task(one_client()) for _ in range(clients)]
    done_before = 0
    while not all(t.done() for t in tasks):
        await asyncio.wait(tasks, timeout=every)
        if pid:
            peak = max(peak, rss_mb(pid))
        window = latencies[done_before:]
        median = f"{statistics.median(window):7.1f} ms" if window else "      -"
        print(
            f"  {time.perf_counter() - started:6.1f} s  {len(latencies):6d} runs  "
            f"{len(window) / every:6.0f} runs/s  wait median {median}   {rss_text(pid)}",
            flush=True,
        )
        done_before = len(latencies)
    for t in tasks:
        t.result()  # a failed run fails the benchmark
    elapsed = time.perf_counter() - started
    print(
        f"round: {runs} runs by {clients} clients in {elapsed:.1f} s ({runs / elapsed:.0f} runs/s), "
        f"runs.wait median {statistics.median(latencies):.1f} ms; peak RSS {peak:.1f} MB"
    )
    await client.http.client.aclose()
    return peak


async def measure(url: str, a: argparse.Namespace, pid: int | None) -> None:
    client = get_client(url=url, timeout=600)
    for _ in range(20):  # warm up: imports, caches and pools the server keeps anyway
        await client.runs.wait((await client.threads.create())["thread_id"], a.assistant, input={"value": 1})
    await client.http.client.aclose()
    idle = rss_mb(pid) if pid else 0.0
    print(f"idle after warm-up: {rss_text(pid)}")
    for n in range(1, a.rounds + 1):
        print(f"round {n}:")
        await round_of_load(url, a.assistant, a.clients, a.runs, a.stateless, pid, a.every)
        print(f"after round {n}: {rss_text(pid)}")
    wait = a.idle
    print(f"idle for {wait:.0f} s (retention expires):")
    end = time.monotonic() + wait
    while time.monotonic() < end:
        await asyncio.sleep(min(a.every * 2, max(0.0, end - time.monotonic())))
        print(f"  {wait - (end - time.monotonic()):6.1f} s idle   {rss_text(pid)}", flush=True)
    if pid:
        final = rss_mb(pid)
        print(f"after retention: RSS {final:.1f} MB ({final - idle:+.1f} MB against idle {idle:.1f} MB)")


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--clients", type=int, default=50, help="concurrent clients")
    p.add_argument("--runs", type=int, default=10000, help="runs per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--stateless", action="store_true", help="stateless runs.wait instead of a fresh thread each")
    p.add_argument("--retention", type=float, default=300.0, help="stream retention of the server started here (s)")
    p.add_argument("--idle", type=float, help="seconds to watch after the load (default: retention + 20)")
    p.add_argument("--pid", type=int, help="process id of the --url server, to read its RSS")
    p.add_argument("--every", type=float, default=5.0, help="seconds between progress lines")
    args = p.parse_args()
    if args.idle is None:
        args.idle = args.retention + 20
    env = {"CRONGRAPH_STREAM_RETENTION_SECONDS": str(args.retention)}
    with server(args.url, env=env, **backend(args)) as url:
        pid = args.pid or LOCAL_PID.get(url)
        print(f"server: {url} (pid {pid}; stream retention {args.retention:.0f} s unless --url)")
        asyncio.run(measure(url, args, pid))


if __name__ == "__main__":
    main()
