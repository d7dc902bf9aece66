"""Cron scheduler figures, through the official SDKs, for any server URL.

    python benchmarks/crons.py                      # starts a crongraph (SQLite) and measures it
    python benchmarks/crons.py --url URL --assistant agent

1. fire delay: N crons due at one instant (run created minus slot), for N = 500 and 3000, and how long until all
   those runs finished; meanwhile a normal runs.wait on another thread, against its idle median;
2. registration: create many crons (default 100,000) and report throughput per chunk (flat or not), through the
   JavaScript SDK (default; benchmarks/js) or the Python one (--client python);
3. idle cost: the server's CPU time over 10 s with all those crons registered and none due (needs a local pid).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from common import LOCAL_PID, ROOT, backend, cpu_seconds, parser, pct, server, summary
from langgraph_sdk import get_client

JS_DIR = ROOT / "benchmarks" / "js"


def at_instant(when: datetime) -> str:
    """A six-field schedule (the sixth field is seconds) that fires once a year, at `when` (UTC)."""
    return f"{when.minute} {when.hour} {when.day} {when.month} * {when.second}"


async def burst(client: Any, assistant: str, n: int) -> None:
    threads = await asyncio.gather(*(client.threads.create() for _ in range(n)))
    lead = timedelta(seconds=max(4.0, n / 250))  # time to create the crons (the Python SDK does ~500/s) and more
    slot = (datetime.now(UTC) + lead).replace(microsecond=0) + timedelta(seconds=1)
    sem = asyncio.Semaphore(32)

    async def make(thread: dict[str, Any]) -> dict[str, Any]:
        async with sem:
            return await client.crons.create_for_thread(
                thread["thread_id"], assistant, schedule=at_instant(slot), input={"value": 1}
            )

    crons = await asyncio.gather(*(make(t) for t in threads))
    idle_thread = (await client.threads.create())["thread_id"]
    idle = []
    for _ in range(30):
        t0 = time.perf_counter()
        await client.runs.wait(idle_thread, assistant, input={"value": 1})
        idle.append((time.perf_counter() - t0) * 1000)
    now = datetime.now(UTC)
    assert now < slot, f"creating {n} crons took too long; slot already passed"
    await asyncio.sleep((slot - now).total_seconds() - 0.05)

    during: list[float] = []
    for _ in range(40):
        t0 = time.perf_counter()
        await client.runs.wait(idle_thread, assistant, input={"value": 1})
        during.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - t0 > 5:
            break

    async def runs_of(cron: dict[str, Any]) -> list[dict[str, Any]]:
        async with sem:
            return await client.http.get(f"/runs/crons/{cron['cron_id']}/runs")  # type: ignore[no-any-return]

    # Wait on the queue's depth (one cheap request a tenth of a second: polling every run would cost the server as
    # much as the runs), then read every run; the finish time is the runs' own, from the server.
    while True:
        queued = (await client.http.get("/metrics", params={"format": "json"}))["runs"]
        if queued["pending"] + queued["running"] == 0:
            results = await asyncio.gather(*(client.runs.list(c["thread_id"], limit=1) for c in crons))
            done = [r[0] for r in results if r and r[0]["status"] in ("success", "error")]
            if len(done) == n:
                break
        await asyncio.sleep(0.1)
    finished = max(datetime.fromisoformat(r["updated_at"]) for r in done)
    history = await asyncio.gather(*(runs_of(c) for c in crons))
    delays = [h[0]["delay_ms"] for h in history]
    assert all(len(h) == 1 for h in history), "an occurrence fired more or less than once"
    print(summary(f"{n} crons due at once: fire delay", delays))
    print(
        f"{'':34} max {max(delays):.1f} ms; all {n} runs finished {(finished - slot).total_seconds():.2f} s "
        "after the slot"
    )
    print(
        f"{'':34} runs.wait on another thread: idle median {statistics.median(idle):.1f} ms, during the burst "
        f"median {statistics.median(during):.1f} ms (p90 {pct(during, 0.9):.1f} ms)"
    )
    await asyncio.gather(*(client.crons.delete(c["cron_id"]) for c in crons))


async def registration(client: Any, url: str, args: Any, pid: int | None) -> None:
    """Create `args.register` crons, `args.chunk` at a time, through the official JavaScript SDK (default) or the
    Python one. Each client needs CPU of its own, on the same two cores as the server: the Python SDK spends about
    twice the server's time per request (two thread-pool hops for its JSON, then httpx), so with it the figure is
    the client's limit, not the server's; `--client python` shows that."""
    made, rates = 0, []
    cpu_before = cpu_seconds(pid) if pid else 0.0
    chunks = (
        _register_js(url, args.assistant, args.register, args.chunk, args.concurrency)
        if args.client == "js"
        else _register_python(client, args.assistant, args.register, args.chunk, args.concurrency)
    )
    async for made, rate, client_ms in chunks:
        rates.append(rate)
        print(
            f"  registered {made:>7} crons: {rate:7.0f} creates/s   (client CPU {client_ms:.2f} ms/create)", flush=True
        )
    server = f"; server CPU {(cpu_seconds(pid) - cpu_before) / made * 1000:.2f} ms/create" if pid and made else ""
    print(
        f"{'registration (' + args.client + ' SDK)':34} {made} crons: mean {statistics.mean(rates):.0f}/s, first "
        f"chunk {rates[0]:.0f}/s, last chunk {rates[-1]:.0f}/s{server}"
    )


async def _register_python(
    client: Any, assistant: str, total: int, chunk: int, concurrency: int
) -> AsyncIterator[tuple[int, float, float]]:
    sem = asyncio.Semaphore(concurrency)

    async def make(i: int) -> None:
        async with sem:
            await client.crons.create(assistant, schedule=f"{i % 60} {i % 24} 1 1 *", input={"value": i})

    for made in range(0, total, chunk):
        size = min(chunk, total - made)
        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(make(made + i) for i in range(size)))
        elapsed = time.perf_counter() - t0
        yield made + size, size / elapsed, (time.process_time() - cpu0) / size * 1000


async def _register_js(
    url: str, assistant: str, total: int, chunk: int, concurrency: int
) -> AsyncIterator[tuple[int, float, float]]:
    if not (JS_DIR / "node_modules").exists():
        raise SystemExit(f"the JavaScript SDK is not installed: run `npm ci` in {JS_DIR} (or `make bench`)")
    args = ["--url", url, "--assistant", assistant, "--total", str(total), "--chunk", str(chunk)]
    args += ["--concurrency", str(concurrency)]
    proc = await asyncio.create_subprocess_exec("node", str(JS_DIR / "register.mjs"), *args, stdout=PIPE)
    assert proc.stdout is not None
    async for line in proc.stdout:
        report = json.loads(line)
        yield report["registered"], report["rate"], report["client_cpu_ms"]
    if await proc.wait() != 0:
        raise SystemExit("the JavaScript registration client failed (its error is above)")


async def main(url: str, args: Any, pid: int | None) -> None:
    client = get_client(url=url, timeout=600)
    for n in args.burst:
        await burst(client, args.assistant, n)
    if args.register:
        await registration(client, url, args, pid)
        if pid:
            await asyncio.sleep(1)
            before = cpu_seconds(pid)
            await asyncio.sleep(10)
            print(
                f"{'idle scheduler':34} {args.register} crons registered, none due: "
                f"{cpu_seconds(pid) - before:.3f} s of CPU in 10 s"
            )


def run() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--burst", type=int, nargs="*", default=[500, 3000])
    p.add_argument("--register", type=int, default=100_000)
    p.add_argument("--chunk", type=int, default=20_000)
    p.add_argument("--client", choices=["js", "python"], default="js", help="the official SDK that registers crons")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight while registering")
    args = p.parse_args()
    with server(args.url, **backend(args)) as url:
        print(f"server: {url}")
        asyncio.run(main(url, args, LOCAL_PID.get(url)))


if __name__ == "__main__":
    run()
