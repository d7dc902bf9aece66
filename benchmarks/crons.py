"""Cron scheduler figures, through the official SDKs, for any server URL.

    python benchmarks/crons.py                      # starts a crongraph (SQLite) and measures it
    python benchmarks/crons.py --url URL --assistant agent

1. fire delay: N crons due at one instant (run created minus slot), for N = 500 and 3000, and how long until all
   those runs finished; meanwhile a normal runs.wait on another thread, against its idle median;
2. registration: create many crons (default 100,000) and report throughput per chunk (flat or not), through the
   JavaScript SDK (default; benchmarks/js) or the Python one (--client python);
3. idle cost: the server's CPU time over 10 s with all those crons registered and none due (needs a local pid).

    python benchmarks/crons.py --compare crongraph http://127.0.0.1:2024#agent --burst 2000 --register 20000

With --compare, the same figures on several servers in interleaved rounds (A B A B ..., `--rounds`): each round
runs the first --burst size and, with --register, a registration of that many crons; then each figure's median
over the rounds per server and its ratio to the first (server CPU per cron fire and per create for local ones).

    python benchmarks/crons.py --floor --register 20000 --rounds 3

With --floor, registration's floor on this machine: the same JavaScript client loop against two servers that
answer the create route with a fixed cron and store nothing (benchmarks/floor.py: uvicorn as crongraph runs it,
with a bare ASGI app and with FastAPI), and against a fresh crongraph, in interleaved rounds of --register
creates each; per server the median creates/s, the client's and the server's CPU per create, and crongraph's
distance from each floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from common import (
    LOCAL_PID,
    ROOT,
    Probe,
    Target,
    backend,
    compare,
    cpu_seconds,
    execution_note,
    parser,
    pct,
    rss_mb,
    server,
    summary,
    targets,
    tree_cpu_seconds,
)
from langgraph_sdk import get_client
from tests.support.server import free_port  # importable once common has put the checkout on sys.path

JS_DIR = ROOT / "benchmarks" / "js"


def at_instant(when: datetime) -> str:
    """A six-field schedule (the sixth field is seconds) that fires once a year, at `when` (UTC)."""
    return f"{when.minute} {when.hour} {when.day} {when.month} * {when.second}"


async def again(call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call(*args, **kwargs)`, once more if the connection failed: connections left idle in the client's pool while
    a burst drains (it polls on one) are closed by the server's keep-alive timeout, and on a stalled machine httpx
    may reuse one before it sees the close. Only for calls that may be repeated (reads, a thread created)."""
    try:
        return await call(*args, **kwargs)
    except httpx.TransportError:
        return await call(*args, **kwargs)


async def burst(
    client: Any,
    assistant: str,
    n: int,
    target: Target | None = None,
    quiet: bool = False,
    lead_seconds: float | None = None,
) -> dict[str, float]:
    """N crons on threads, all due at one instant: their figures (fire delay, created within, finished after the
    slot, runs.wait on another thread during the burst against idle; with a local `target`, the server's CPU per
    cron fire, from the slot until all runs finished); printed unless `quiet`."""
    sem = asyncio.Semaphore(32)

    async def new_thread() -> dict[str, Any]:
        async with sem:
            return await again(client.threads.create)  # type: ignore[no-any-return]

    # Bounded: 10,000 requests gathered at once make httpx's pool scan its whole queue for every request (the
    # client then spends minutes at 100% CPU before the first cron exists).
    threads = await asyncio.gather(*(new_thread() for _ in range(n)))
    idle_thread = (await client.threads.create())["thread_id"]
    idle = []
    for _ in range(30):
        t0 = time.perf_counter()
        await client.runs.wait(idle_thread, assistant, input={"value": 1})
        idle.append((time.perf_counter() - t0) * 1000)
    # Time to create the crons (the Python SDK does ~500/s on a quiet machine, a fifth of that on a busy one).
    lead = timedelta(seconds=lead_seconds or max(6.0, n / 150))
    slot = (datetime.now(UTC) + lead).replace(microsecond=0) + timedelta(seconds=1)

    async def make(thread: dict[str, Any]) -> dict[str, Any]:
        async with sem:
            return await client.crons.create_for_thread(  # type: ignore[no-any-return]
                thread["thread_id"], assistant, schedule=at_instant(slot), input={"value": 1}
            )

    crons = await asyncio.gather(*(make(t) for t in threads))
    now = datetime.now(UTC)
    assert now < slot, f"creating {n} crons took too long; slot already passed (give a longer --lead)"
    await asyncio.sleep((slot - now).total_seconds() - 0.05)
    probe = Probe(target) if target is not None and target.pid else None
    # With execution workers (CRONGRAPH_EXEC_WORKERS) the runs execute in child processes: count theirs too.
    tree_before = tree_cpu_seconds(target.pid) if target is not None and target.pid else None

    during: list[float] = []
    for _ in range(40):
        t0 = time.perf_counter()
        await client.runs.wait(idle_thread, assistant, input={"value": 1})
        during.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - t0 > 5:
            break

    async def last_run(cron: dict[str, Any]) -> list[dict[str, Any]]:
        async with sem:
            return await again(client.runs.list, cron["thread_id"], limit=1)  # type: ignore[no-any-return]

    async def runs_of(cron: dict[str, Any]) -> list[dict[str, Any]]:
        async with sem:
            return await again(client.http.get, f"/runs/crons/{cron['cron_id']}/runs")  # type: ignore[no-any-return]

    # Wait on the queue's depth (one cheap request a tenth of a second: polling every run would cost the server as
    # much as the runs), then read every run; the finish time is the runs' own, from the server.
    while True:
        queued = (await client.http.get("/metrics", params={"format": "json"}))["runs"]
        if queued["pending"] + queued["running"] == 0:
            results = await asyncio.gather(*(last_run(c) for c in crons))
            done = [r[0] for r in results if r and r[0]["status"] in ("success", "error")]
            if len(done) == n:
                break
        await asyncio.sleep(0.1)
    cpu = probe.per(n) if probe is not None else {}
    if tree_before is not None and target is not None and target.pid:
        with_workers = (tree_cpu_seconds(target.pid) - tree_before) / n * 1000
        if with_workers > cpu.get("crongraph CPU ms", 0.0) * 1.02:
            cpu["crongraph CPU ms, execution workers included"] = with_workers
    finished = max(datetime.fromisoformat(r["updated_at"]) for r in done)
    history = await asyncio.gather(*(runs_of(c) for c in crons))
    delays = [h[0]["delay_ms"] for h in history]
    assert all(len(h) == 1 for h in history), "an occurrence fired more or less than once"
    after = (finished - slot).total_seconds()
    if not quiet:
        print(summary(f"{n} crons due at once: fire delay", delays))
        print(
            f"{'':34} all {n} runs created within {max(delays) / 1000:.2f} s, all finished {after:.2f} s after the slot"
        )
        print(
            f"{'':34} runs.wait on another thread: idle median {statistics.median(idle):.1f} ms, during the burst "
            f"median {statistics.median(during):.1f} ms (p90 {pct(during, 0.9):.1f} ms): "
            f"{statistics.median(during) / statistics.median(idle):.2f}x"
        )
        for name, value in cpu.items():
            print(f"{'':34} {name} per cron fire (slot to all finished): {value:.2f}")
    # In bounded waves: gathering 10,000 requests at once makes httpx's pool scan its queue for every request.
    for i in range(0, len(crons), 200):
        await asyncio.gather(*(again(client.crons.delete, c["cron_id"]) for c in crons[i : i + 200]))
    return {
        f"{n} burst: fire delay p99 ms": pct(delays, 0.99),
        f"{n} burst: all created within s": max(delays) / 1000,
        f"{n} burst: all finished after s": after,
        f"{n} burst: runs.wait during/idle": statistics.median(during) / statistics.median(idle),
        **{f"{n} burst: {k} per fire": v for k, v in cpu.items()},
    }


async def registration(client: Any, url: str, args: Any, pid: int | None, quiet: bool = False) -> dict[str, float]:
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
        if not quiet:
            print(
                f"  registered {made:>7} crons: {rate:7.0f} creates/s   (client CPU {client_ms:.2f} ms/create)",
                flush=True,
            )
    server_ms = (cpu_seconds(pid) - cpu_before) / made * 1000 if pid and made else None
    server = f"; server CPU {server_ms:.2f} ms/create" if server_ms is not None else ""
    if not quiet:
        print(
            f"{'registration (' + args.client + ' SDK)':34} {made} crons: mean {statistics.mean(rates):.0f}/s, first "
            f"chunk {rates[0]:.0f}/s, last chunk {rates[-1]:.0f}/s{server}"
        )
    out = {"registration creates/s": statistics.mean(rates)}
    if server_ms is not None:
        out["registration: crongraph CPU ms per create"] = server_ms
    return out


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
    local = Target("crongraph", url, args.assistant, pid) if pid else None
    for n in args.burst:
        await burst(client, args.assistant, n, local, lead_seconds=args.lead)
    if args.register:
        await registration(client, url, args, pid)
        if pid:
            await asyncio.sleep(1)
            before = cpu_seconds(pid)
            await asyncio.sleep(10)
            print(
                f"{'idle scheduler':34} {args.register} crons registered, none due: "
                f"{cpu_seconds(pid) - before:.3f} s of CPU in 10 s; server RSS {rss_mb(pid):.0f} MB"
            )


async def side_by_side(found: list[Target], args: Any) -> None:
    """--compare: per round and server, a burst of the first --burst size and a registration of --register crons
    (the crons of earlier rounds stay registered, as they would on a server in use)."""
    size = args.burst[0] if args.burst else 0

    async def one_round(t: Target) -> dict[str, float]:
        client = get_client(url=t.url, timeout=600)
        out: dict[str, float] = {}
        if size:
            out.update(await burst(client, t.assistant, size, t, quiet=True, lead_seconds=args.lead))
        if args.register:
            sub = argparse.Namespace(**{**vars(args), "assistant": t.assistant})
            out.update(await registration(client, t.url, sub, t.pid, quiet=True))
        return out

    print(
        f"{args.rounds} round{'s' if args.rounds != 1 else ''}; each: "
        + (f"a burst of {size} crons" if size else "no burst")
        + (f", a registration of {args.register} crons ({args.client} SDK)" if args.register else "")
    )
    await compare(found, args.rounds, one_round, higher_is_better=("registration creates/s",))


FLOORS = ("bare", "fastapi")


@contextlib.contextmanager
def floor_server(kind: str) -> Iterator[tuple[str, int]]:
    """benchmarks/floor.py serving `kind` ("bare" or "fastapi") on a free port: (its URL, its pid)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "floor.py"), kind, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/ok", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the floor server ({kind}) did not start") from None
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait()


async def floor(servers: dict[str, tuple[str, int]], args: Any) -> None:
    """--floor: in interleaved rounds, --register creates through the JavaScript SDK against each server; the
    medians per server and crongraph's distance from the floors."""
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, (url, pid) in servers.items():
            cpu0 = cpu_seconds(pid)
            # One chunk of all the creates: its one report.
            chunks = _register_js(url, "agent", args.register, args.register, args.concurrency)
            made, rate, client_ms = [report async for report in chunks][-1]
            figures[name].append((rate, client_ms, (cpu_seconds(pid) - cpu0) / made * 1000))
    medians = {name: [statistics.median(f[i] for f in rows) for i in range(3)] for name, rows in figures.items()}
    print(
        f"registration floor: {args.rounds} interleaved rounds of {args.register} creates, JavaScript SDK, "
        f"{args.concurrency} in flight; medians"
    )
    for name, (rate, client_ms, server_ms) in medians.items():
        label = {"bare": "bare ASGI app (fixed body)", "fastapi": "FastAPI route (fixed body)"}.get(name, name)
        print(
            f"  {label:30} {rate:7.0f} creates/s   client CPU {client_ms:.2f} ms/create   server CPU "
            f"{server_ms:.2f} ms/create"
        )
    rate, _, server_ms = medians["crongraph"]
    for name in FLOORS:
        print(
            f"  crongraph / {name:8} creates/s {rate / medians[name][0]:.2f}x; server CPU "
            f"+{server_ms - medians[name][2]:.2f} ms/create"
        )


def run() -> None:
    p = parser(__doc__ or "", compare=True)
    p.add_argument(
        "--burst", type=int, nargs="*", default=[500, 3000], help="crons due at one instant, per burst (bare: no burst)"
    )
    p.add_argument("--register", type=int, default=100_000, help="crons registered (with --compare: per round)")
    p.add_argument(
        "--lead", type=float, help="seconds from creating a burst's crons to their slot (default: max(6, n/150))"
    )
    p.add_argument("--chunk", type=int, default=20_000, help="crons per printed registration rate (default 20,000)")
    p.add_argument("--client", choices=["js", "python"], default="js", help="the official SDK that registers crons")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight while registering")
    p.add_argument(
        "--floor",
        action="store_true",
        help="registration against fixed-body servers (benchmarks/floor.py) and a fresh crongraph, interleaved",
    )
    args = p.parse_args()
    if args.floor:
        if args.url or args.compare:
            raise SystemExit("--floor starts its own servers: no --url or --compare")
        with contextlib.ExitStack() as stack:
            servers = {kind: stack.enter_context(floor_server(kind)) for kind in FLOORS}
            url = stack.enter_context(server(None, **backend(args)))
            servers["crongraph"] = (url, LOCAL_PID[url])
            asyncio.run(floor(servers, args))
        return
    if args.compare:
        with targets(args.compare, args.assistant) as found:
            for t in found:
                print(f"server: {t.name} = {t.url} (graph {t.assistant})" + execution_note(t.url))
            asyncio.run(side_by_side(found, args))
        return
    with server(args.url, **backend(args)) as url:
        print(f"server: {url}" + execution_note(url))
        asyncio.run(main(url, args, LOCAL_PID.get(url)))


if __name__ == "__main__":
    run()
