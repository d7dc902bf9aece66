"""Cron scheduler figures, through the official Python SDK, for any server URL.

    python benchmarks/crons.py                      # starts a crongraph (SQLite) and measures it
    python benchmarks/crons.py --url URL --assistant agent

1. fire delay: N crons due at one instant (run created minus slot), for N = 500 and 3000, and how long until all
   those runs finished; meanwhile a normal runs.wait on another thread, against its idle median;
2. registration: create many crons (default 100,000) and report throughput per chunk (flat or not);
3. idle cost: the server's CPU time over 10 s with all those crons registered and none due (needs a local pid).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import parser, pct, server, summary
from langgraph_sdk import get_client


def at_instant(when: datetime) -> str:
    """A six-field schedule (the sixth field is seconds) that fires once a year, at `when` (UTC)."""
    return f"{when.minute} {when.hour} {when.day} {when.month} * {when.second}"


async def burst(client: Any, assistant: str, n: int) -> None:
    threads = await asyncio.gather(*(client.threads.create() for _ in range(n)))
    lead = timedelta(seconds=max(4.0, n / 400))
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

    while True:
        results = await asyncio.gather(*(client.runs.list(c["thread_id"], limit=1) for c in crons))
        done = [r[0] for r in results if r and r[0]["status"] in ("success", "error")]
        if len(done) == n:
            break
        await asyncio.sleep(0.2)
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


async def registration(client: Any, assistant: str, total: int, chunk: int) -> None:
    sem = asyncio.Semaphore(48)

    async def make(i: int) -> None:
        async with sem:
            await client.crons.create(assistant, schedule=f"{i % 60} {i % 24} 1 1 *", input={"value": i})

    made = 0
    rates = []
    while made < total:
        t0 = time.perf_counter()
        await asyncio.gather(*(make(made + i) for i in range(chunk)))
        rate = chunk / (time.perf_counter() - t0)
        rates.append(rate)
        made += chunk
        print(f"  registered {made:>7} crons: {rate:7.0f} creates/s", flush=True)
    print(
        f"{'registration':34} {total} crons: mean {statistics.mean(rates):.0f}/s, first chunk {rates[0]:.0f}/s, "
        f"last chunk {rates[-1]:.0f}/s"
    )


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(url: str, args: Any, pid: int | None) -> None:
    client = get_client(url=url, timeout=600)
    for n in args.burst:
        await burst(client, args.assistant, n)
    if args.register:
        await registration(client, args.assistant, args.register, args.chunk)
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
    p.add_argument("--chunk", type=int, default=10_000)
    args = p.parse_args()
    with server(args.url) as url:
        pid = None
        if not args.url:
            import subprocess

            out = subprocess.run(["pgrep", "-f", url.rsplit(":", 1)[1]], capture_output=True, text=True).stdout
            pid = int(out.split()[0]) if out.split() else None
        print(f"server: {url}")
        asyncio.run(main(url, args, pid))


if __name__ == "__main__":
    run()
