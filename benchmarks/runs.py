"""Run latency and queue throughput, through the official Python SDK, for any server URL.

    python benchmarks/runs.py                 # starts a crongraph (SQLite) and measures it
    python benchmarks/runs.py --postgres      # the same on a throwaway PostgreSQL (or --database-url URL)
    python benchmarks/runs.py --url http://127.0.0.1:2024 --assistant agent   # e.g. the reference server
    python benchmarks/runs.py --auth          # the same server with custom auth (benchmarks/graphs/auth.py)
    python benchmarks/runs.py --compare crongraph crongraph-pg http://127.0.0.1:2024#agent   # side by side

Prints: runs.wait and runs.stream medians for a trivial one-node graph (a fresh thread per run, created outside
the timing), stateless runs.wait, and the drain rate of a backlog of background runs. With --compare, each
figure is measured on every target in interleaved rounds (-n / --rounds runs each) and printed with its ratio to
the first target, with CPU per run (crongraph, and PostgreSQL) and PostgreSQL's transactions, rows written and
statements per runs.wait for the local targets.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from common import (
    BENCH_CONFIG,
    Probe,
    Target,
    backend,
    compare,
    execution_note,
    parser,
    server_target,
    summary,
    targets,
    tree_cpu_seconds,
)
from langgraph_sdk import get_client

INPUT = {"value": 1}


def _client(url: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return get_client(url=url, timeout=600, headers=headers)


async def warm_up(client: Any, assistant: str) -> None:
    for _ in range(20):
        await client.runs.wait((await client.threads.create())["thread_id"], assistant, input=INPUT)


async def timed(client: Any, assistant: str, kind: str, n: int) -> list[float]:
    """n runs of one kind (`wait`, `stream` on a fresh thread each, created outside the timing; `stateless`), in ms."""
    out = []
    for _ in range(n):
        thread_id = None if kind == "stateless" else (await client.threads.create())["thread_id"]
        t0 = time.perf_counter()
        if kind == "stream":
            async for _ in client.runs.stream(thread_id, assistant, input=INPUT):
                pass
        else:
            await client.runs.wait(thread_id, assistant, input=INPUT)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def floor(client: Any, n: int) -> dict[str, float]:
    """The physical floor of a runs.wait, measured here, now: the benchmark graph's `ainvoke` in this process with
    crongraph's SQLite checkpointer (a fresh thread each time), plus one loopback HTTP round trip through the same
    SDK (`GET /ok`). Medians in ms."""
    import tempfile
    import uuid
    from pathlib import Path

    from common import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks" / "graphs"))
    from trivial import builder

    from crongraph.graphs.sqlite_saver import InlineSqliteSaver

    with tempfile.TemporaryDirectory() as tmp:
        saver = InlineSqliteSaver.open(Path(tmp) / "checkpoints.db")
        try:
            graph = builder.compile(checkpointer=saver)
            invoke = []
            for i in range(n + 5):
                config = {"configurable": {"thread_id": str(uuid.uuid4())}}
                t0 = time.perf_counter()
                await graph.ainvoke(INPUT, config)
                if i >= 5:
                    invoke.append((time.perf_counter() - t0) * 1000)
        finally:
            saver.close()
    trip = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.http.get("/ok")
        trip.append((time.perf_counter() - t0) * 1000)
    a, b = statistics.median(invoke), statistics.median(trip)
    return {"ainvoke": a, "round trip": b, "floor": a + b}


async def drain(client: Any, assistant: str, backlog: int, pid: int | None) -> tuple[float, float, int, float | None]:
    """Queue `backlog` background runs that all become claimable at one instant (after_seconds), so the drain is
    measured on its own, not mixed with the creating. (seconds to queue, seconds to drain, runs not successful,
    server CPU ms per run or None)."""
    # At most 32 requests in flight: gathering thousands at once makes httpx's pool rescan its whole queue for every
    # request, and the client, not the server, becomes what is measured.
    sem = asyncio.Semaphore(32)

    async def new_thread() -> dict[str, Any]:
        async with sem:
            thread: dict[str, Any] = await client.threads.create()
            return thread

    threads = await asyncio.gather(*(new_thread() for _ in range(backlog)))
    lead = max(5.0, backlog / 150)
    due = time.time() + lead

    async def create(thread_id: str) -> dict[str, Any]:
        async with sem:
            run: dict[str, Any] = await client.runs.create(
                thread_id, assistant, input=INPUT, after_seconds=max(0.0, due - time.time())
            )
            return run

    t0 = time.perf_counter()
    runs = await asyncio.gather(*(create(t["thread_id"]) for t in threads))
    created = time.perf_counter() - t0
    assert time.time() < due, (
        "creating the backlog took longer than its lead (max(5 s, backlog / 150)): use a smaller --backlog"
    )
    await asyncio.sleep(max(0.0, due - time.time()))
    start = time.perf_counter()
    cpu_before = tree_cpu_seconds(pid) if pid else 0.0  # with its execution workers
    # Wait without disturbing the server: polling thousands of runs would cost it as much CPU as the drain itself.
    # Runs are claimed oldest first, so join the newest (the server answers when it ends), then check every run
    # and join any still unfinished; the drain ends when the last of them has (checking time included).
    await client.runs.join(runs[-1]["thread_id"], runs[-1]["run_id"])
    ended, cpu_after = time.perf_counter(), tree_cpu_seconds(pid) if pid else 0.0
    while True:
        got: list[dict[str, Any]] = []
        for i in range(0, len(runs), 200):
            got += await asyncio.gather(*(client.runs.get(r["thread_id"], r["run_id"]) for r in runs[i : i + 200]))
        pending = [r for r in got if r["status"] in ("pending", "running")]
        if not pending:
            break
        await asyncio.gather(*(client.runs.join(r["thread_id"], r["run_id"]) for r in pending))
        ended, cpu_after = time.perf_counter(), tree_cpu_seconds(pid) if pid else 0.0
    failed = sum(1 for r in got if r["status"] != "success")
    cpu = (cpu_after - cpu_before) / backlog * 1000 if pid else None
    return created, ended - start, failed, cpu


async def measure(target: Target, n: int, backlog: int, token: str | None = None) -> None:
    client = _client(target.url, token)
    assistant = target.assistant
    await warm_up(client, assistant)
    probe = Probe(target)
    waits = await timed(client, assistant, "wait", n)
    per_run = probe.per(n)
    print(summary("runs.wait (thread)", waits))
    low = await floor(client, n)
    print(
        f"{'':34} floor {low['floor']:.2f} ms (in-process ainvoke with a checkpointer {low['ainvoke']:.2f} ms + "
        f"one SDK round trip {low['round trip']:.2f} ms): runs.wait {statistics.median(waits) / low['floor']:.2f}x it"
    )
    if per_run:
        print(f"{'':34} per run: " + ", ".join(f"{k} {v:.2f}" for k, v in per_run.items()))
    print(summary("runs.stream (thread)", await timed(client, assistant, "stream", n)))
    created, total, failed, cpu = await drain(client, assistant, backlog, target.pid)
    cpu_note = f"; server CPU {cpu:.2f} ms/run" if cpu is not None else ""
    print(
        f"{'backlog of ' + str(backlog) + ' background runs':34} queued in {created:.2f} s; drained in "
        f"{total:.2f} s  →  {backlog / total:.0f} runs/s ({failed} not successful{cpu_note})"
    )
    print(summary("runs.wait (stateless)", await timed(client, assistant, "stateless", n)))


async def side_by_side(found: list[Target], n: int, backlog: int, rounds: int, token: str | None) -> None:
    clients = {t.name: _client(t.url, token) for t in found}
    for t in found:
        await warm_up(clients[t.name], t.assistant)
    per_round = max(5, n // rounds)

    async def one_round(t: Target) -> dict[str, float]:
        client = clients[t.name]
        probe = Probe(t)
        waits = await timed(client, t.assistant, "wait", per_round)
        out = {"runs.wait median ms": statistics.median(waits)}
        low = await floor(client, per_round)
        out["  floor ms (ainvoke + round trip)"] = low["floor"]
        out["  runs.wait / floor"] = out["runs.wait median ms"] / low["floor"]
        out.update({f"  per runs.wait: {k}": v for k, v in probe.per(per_round).items()})
        streams = await timed(client, t.assistant, "stream", per_round)
        out["runs.stream median ms"] = statistics.median(streams)
        stateless = await timed(client, t.assistant, "stateless", per_round)
        out["runs.wait stateless median ms"] = statistics.median(stateless)
        if backlog:
            probe = Probe(t)
            _created, total, _failed, _cpu = await drain(client, t.assistant, backlog, t.pid)
            out[f"drain rate, runs/s (backlog {backlog})"] = backlog / total
            out.update({f"  per drained run: {k}": v for k, v in probe.per(backlog).items()})
        return out

    print(
        f"{rounds} round{'s' if rounds != 1 else ''}; each: {per_round} runs.wait, runs.stream and stateless runs.wait"
        + (f", a drain of {backlog} runs" if backlog else "")
    )
    await compare(
        found,
        rounds,
        one_round,
        higher_is_better=(f"drain rate, runs/s (backlog {backlog})",),
        # The floor is the client's own ainvoke plus a round trip, whatever the server: a ratio between targets of
        # it, or of a ratio to it, is noise.
        not_compared=("  floor ms (ainvoke + round trip)", "  runs.wait / floor"),
    )


def main() -> None:
    p = parser(__doc__ or "", compare=True)
    p.add_argument("-n", type=int, default=200, help="samples per latency figure (with --compare: over all rounds)")
    p.add_argument("--backlog", type=int, default=3000, help="background runs drained (with --compare: per round)")
    p.add_argument(
        "--auth",
        action="store_true",
        help="custom auth: start crongraph with benchmarks/graphs/auth.py (or, with --url, send a bearer token)",
    )
    args = p.parse_args()
    extra: dict[str, Any] = {"config": BENCH_CONFIG.with_name("langgraph.auth.json")} if args.auth else {}
    token = "bench-user" if args.auth else None
    if args.compare:
        with targets(args.compare, args.assistant, **extra) as found:
            for t in found:
                print(
                    f"server: {t.name} = {t.url} (graph {t.assistant})"
                    + (" (custom auth)" if args.auth else "")
                    + execution_note(t.url)
                )
            asyncio.run(side_by_side(found, args.n, args.backlog, args.rounds, token))
        return
    with server_target(args.url, args.assistant, **backend(args), **({} if args.url else extra)) as target:
        print(f"server: {target.url}" + (" (custom auth)" if args.auth else "") + execution_note(target.url))
        asyncio.run(measure(target, args.n, args.backlog, token))


if __name__ == "__main__":
    main()
