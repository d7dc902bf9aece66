"""Cron firing across replicas on PostgreSQL: thousands of crons due at one instant, fired by 1 and by 3 replicas.

    python benchmarks/replicas.py                       # starts a throwaway PostgreSQL (tests/support/postgres.py)
    python benchmarks/replicas.py --crons 3000 --replicas 1 3
    python benchmarks/replicas.py --database-url postgresql://user@host/db   # a server of yours; one database
                                                                            # is created per measurement

For each replica count: a fresh database, that many `crongraph serve` processes on it, and `--crons` stateless
crons (created through the API, spread over the replicas) whose only occurrence is the same instant T. After T,
read from the database: when each run was created relative to T (the firing lag: its p50, p99 and max, the target
being every run within 2 s), duplicates (a cron with more than one run) and misses (a cron with none), the firing
throughput (runs created per second of the burst), and how long the queue took to finish executing them all.

    python benchmarks/replicas.py --compare crongraph /tmp/base --crons 3000 --replicas 3 --rounds 3

With --compare, the same figures for several source trees in interleaved rounds (A B A B ..., `--rounds`): a
tree is `crongraph` (this checkout) or a directory holding another crongraph checkout (say `git archive` of the
commit before a change, unpacked), whose `src` goes first on the replicas' PYTHONPATH; then each figure's median
over the rounds per tree and its ratio to the first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from common import BENCH_CONFIG, ROOT, Target, compare, pct
from tests.support.postgres import PostgresServer
from tests.support.server import ServerProcess

TARGET = 2.0  # seconds from the slot to the creation of the last run


@contextlib.contextmanager
def admin_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    pg = PostgresServer().start()
    try:
        yield pg.admin_url
    finally:
        pg.stop()


def fresh_database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


async def create_crons(urls: list[str], n: int, slot: datetime) -> None:
    body = {
        "assistant_id": "agent",
        # Six fields, seconds last: fires daily at exactly `slot`; end_time leaves that one occurrence.
        "schedule": f"{slot.minute} {slot.hour} * * * {slot.second}",
        "input": {"value": 1},
        "on_run_completed": "keep",
        "end_time": (slot + timedelta(seconds=1)).isoformat(),
    }
    clients = [httpx.AsyncClient(base_url=u, timeout=60) for u in urls]
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with gate:
            r = await clients[i % len(clients)].post("/runs/crons", json=body)
            if r.status_code != 200:
                raise SystemExit(f"creating a cron failed: {r.status_code} {r.text}")

    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        for c in clients:
            await c.aclose()


def measure(
    admin: str, replicas: int, crons: int, workers: int, src: Path | None = None, quiet: bool = False
) -> dict[str, float]:
    """One measurement on a fresh database: the figures (printed unless `quiet`); `src`: the source tree the
    replicas run (default: the installed crongraph, this checkout)."""
    url = fresh_database(admin, f"bench_replicas_{replicas}")
    env = {"CRONGRAPH_WORKERS": str(workers)}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    with tempfile.TemporaryDirectory() as tmp:
        procs = [
            ServerProcess(
                data_dir=Path(tmp) / f"r{i}" / "data",
                config=BENCH_CONFIG,
                database_url=url,
                env=env,
            )
            for i in range(replicas)
        ]
        with ThreadPoolExecutor(replicas) as pool:
            list(pool.map(lambda p: p.start(), procs))
        try:
            # The slot leaves time to create every cron first (4 to 8 ms each here), on a whole second.
            slot = (datetime.now(UTC) + timedelta(seconds=10 + crons * 0.01)).replace(microsecond=0)
            t0 = time.perf_counter()
            asyncio.run(create_crons([p.url for p in procs], crons, slot))
            made = time.perf_counter() - t0
            if datetime.now(UTC) >= slot:
                raise SystemExit(f"creating {crons} crons took {made:.1f}s, past the slot; use fewer crons")
            time.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()))
            with psycopg.connect(url, autocommit=True) as conn:
                deadline = time.monotonic() + 120
                while conn.execute("SELECT count(*) FROM cron_fires").fetchone()[0] < crons:  # type: ignore[index]
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                while conn.execute("SELECT count(*) FROM runs WHERE status IN ('pending', 'running')").fetchone()[
                    0  # type: ignore[index]
                ]:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                drained = (datetime.now(UTC) - slot).total_seconds()
                lags = [
                    row[0]
                    for row in conn.execute(
                        "SELECT extract(epoch FROM created_at - scheduled_for)::float FROM runs "
                        "WHERE cron_id IS NOT NULL ORDER BY 1"
                    ).fetchall()
                ]
                per_cron = conn.execute(
                    "SELECT count(*) FILTER (WHERE n > 1), count(*) FILTER (WHERE n = 0) FROM "
                    "(SELECT c.cron_id, count(r.run_id) AS n FROM crons c "
                    "LEFT JOIN runs r ON r.cron_id = c.cron_id GROUP BY c.cron_id) AS per_cron"
                ).fetchone()
                done = conn.execute("SELECT count(*) FROM runs WHERE status = 'success'").fetchone()[0]  # type: ignore[index]
        finally:
            for p in procs:
                p.stop()
    assert per_cron is not None
    duplicates, missing = per_cron
    if not lags:
        print(f"{replicas} replica(s): no run was created")
        return {}
    burst = max(lags[-1] - lags[0], 1e-3)
    verdict = "met" if lags[-1] <= TARGET and not duplicates and not missing else "NOT met"
    if not quiet:
        print(
            f"{replicas} replica(s), {crons} crons due at one instant (created in {made:.1f}s):\n"
            f"  runs created {len(lags)}, duplicates {duplicates}, missing {missing}\n"
            f"  firing lag   p50 {pct(lags, 0.5):.3f}s   p99 {pct(lags, 0.99):.3f}s   max {lags[-1]:.3f}s   "
            f"(target: all within {TARGET:.0f}s: {verdict})\n"
            f"  firing rate  {len(lags) / burst:.0f} runs created/s during the burst\n"
            f"  executed     {done} runs succeeded {drained:.1f}s after the slot  →  {done / drained:.0f} runs/s"
        )
    name = f"{replicas} replica(s)"
    return {
        f"{name}: all created within s": lags[-1],
        f"{name}: firing lag p99 s": pct(lags, 0.99),
        f"{name}: runs created/s": len(lags) / burst,
        f"{name}: duplicates + missing": float(duplicates + missing),
        f"{name}: executed runs/s": done / drained,
    }


def tree(spec: str) -> Path | None:
    """A --compare target's source directory: None for `crongraph` (this checkout), else DIR/src."""
    if spec == "crongraph":
        return None
    src = Path(spec).resolve() / "src"
    if not (src / "crongraph").is_dir():
        raise SystemExit(f"{spec}: not a crongraph checkout (no src/crongraph in it)")
    return src


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--crons", type=int, default=3000)
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    p.add_argument("--workers", type=int, default=8, help="CRONGRAPH_WORKERS of each replica")
    p.add_argument("--database-url", help="a PostgreSQL server to use (an admin URL); default: start one")
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="TREE",
        help="measure several source trees in interleaved rounds: `crongraph` (this checkout) or a directory "
        "holding another crongraph checkout",
    )
    p.add_argument("--rounds", type=int, default=3, help="with --compare: interleaved rounds")
    args = p.parse_args()
    with admin_url(args.database_url) as admin:
        if args.compare:
            found = [Target(spec, str(tree(spec) or ROOT / "src"), "agent") for spec in args.compare]

            async def one_round(t: Target) -> dict[str, float]:
                out: dict[str, float] = {}
                for n in args.replicas:
                    src = tree(t.name)
                    out.update(await asyncio.to_thread(measure, admin, n, args.crons, args.workers, src, True))
                return out

            print(f"{args.rounds} rounds; each: {args.crons} crons due at one instant on {args.replicas} replica(s)")
            asyncio.run(
                compare(
                    found,
                    args.rounds,
                    one_round,
                    higher_is_better=(
                        *(f"{n} replica(s): runs created/s" for n in args.replicas),
                        *(f"{n} replica(s): executed runs/s" for n in args.replicas),
                    ),
                )
            )
            return
        for n in args.replicas:
            measure(admin, n, args.crons, args.workers)


if __name__ == "__main__":
    main()
