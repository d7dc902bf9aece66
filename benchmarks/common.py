"""Shared by the benchmark scripts: start a crongraph server (or use --url), side-by-side comparison (--compare),
a throwaway PostgreSQL (--postgres), CPU and PostgreSQL counters, percentiles, printing.

Targets (`--compare`, `--url`): a URL of any server speaking the API (`http://host:port`, optionally
`#assistant` for its graph id: `http://127.0.0.1:2024#agent`), or `crongraph` (a fresh crongraph on a temporary
SQLite database), or `crongraph-pg` (a fresh crongraph on a throwaway PostgreSQL, tests/support/postgres.py). For
the local ones the scripts also report CPU per operation from /proc, and for `crongraph-pg` PostgreSQL's CPU (all
its processes) and its own counters: transactions, rows written and statements per operation.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import ServerProcess  # noqa: E402

BENCH_CONFIG = ROOT / "benchmarks" / "graphs" / "langgraph.json"
LOCAL, LOCAL_PG = "crongraph", "crongraph-pg"
PG_STATEMENTS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track_utility": "on"}


def parser(description: str, *, compare: bool = False) -> argparse.ArgumentParser:
    """The options every script takes (--url, --assistant, --database-url, --postgres), and with `compare` the
    side-by-side ones (--compare, --rounds)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="an already running server (crongraph or the reference); default: start crongraph")
    p.add_argument("--assistant", default="agent", help="graph id of a trivial one-node graph on that server")
    p.add_argument(
        "--database-url", help="start crongraph on this PostgreSQL database (postgresql://...) instead of SQLite"
    )
    p.add_argument(
        "--postgres", action="store_true", help="start crongraph on a throwaway PostgreSQL (tests/support/postgres.py)"
    )
    if not compare:
        return p
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="TARGET",
        help=f"measure each figure on several servers in interleaved rounds (A B A B ...) and print the ratios; a "
        f"target is a URL (optionally URL#assistant), `{LOCAL}` (a fresh one on SQLite) or `{LOCAL_PG}` (a fresh "
        "one on a throwaway PostgreSQL)",
    )
    p.add_argument("--rounds", type=int, default=5, help="with --compare: interleaved rounds per figure")
    return p


def backend(args: argparse.Namespace) -> dict[str, Any]:
    """server()'s backend options from the parsed arguments; refuses a backend option given with --url (the server
    there runs on whatever it runs on)."""
    if args.url and (args.database_url or args.postgres):
        raise SystemExit("--database-url and --postgres start crongraph; with --url the server is already running")
    return {"database_url": args.database_url, "postgres": args.postgres}


@dataclass
class Target:
    """One server measured: its URL, graph id, and for local ones the process ids behind the CPU figures."""

    name: str
    url: str
    assistant: str
    pid: int | None = None
    pg_pid: int | None = None  # the postmaster of a throwaway PostgreSQL
    pg_url: str | None = None  # its database, for PostgreSQL's counters
    extra: dict[str, Any] = field(default_factory=dict)


def _split(spec: str, assistant: str) -> tuple[str, str]:
    url, _, graph = spec.partition("#")
    return url, graph or assistant


@contextlib.contextmanager
def targets(specs: list[str], assistant: str, **kwargs: Any) -> Iterator[list[Target]]:
    """Start what the specs ask for (fresh servers, a PostgreSQL shared by the `crongraph-pg` ones) and stop it all
    at the end."""
    print(f"machine: {cpu_probe():.2f} s for a 10-million-step Python loop (the speed the figures below had)")
    with contextlib.ExitStack() as stack:
        pg: Any = None
        out = []
        for i, spec in enumerate(specs):
            url, graph = _split(spec, assistant)
            if url not in (LOCAL, LOCAL_PG):
                out.append(Target(spec, url, graph))
                continue
            database_url = None
            if url == LOCAL_PG:
                if pg is None:
                    from tests.support.postgres import PostgresServer

                    # pg_stat_statements: statements per operation (track_utility: BEGIN and COMMIT count too).
                    pg = PostgresServer(options=PG_STATEMENTS).start()
                    stack.callback(pg.stop)
                database_url = pg.create_database("bench")
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            kwargs.setdefault("config", BENCH_CONFIG)
            proc = ServerProcess(data_dir=Path(tmp) / "data", database_url=database_url, **kwargs).start()
            stack.callback(proc.stop)
            assert proc.process is not None
            target = Target(f"{url} #{i + 1}" if specs.count(spec) > 1 else url, proc.url, graph, proc.process.pid)
            if pg is not None and database_url is not None:
                target.pg_pid, target.pg_url = pg.process.pid, database_url
            LOCAL_PID[proc.url] = proc.process.pid
            out.append(target)
        yield out


@contextlib.contextmanager
def server(url: str | None, **kwargs: Any) -> Iterator[str]:
    """The URL of the server to measure: the one given, or a fresh crongraph started for the run (on SQLite, or on
    PostgreSQL with `database_url=` / `postgres=True`); its process id then in LOCAL_PID, for the CPU figures."""
    with server_target(url, **kwargs) as target:
        yield target.url


@contextlib.contextmanager
def server_target(
    url: str | None, assistant: str = "agent", database_url: str | None = None, postgres: bool = False, **kwargs: Any
) -> Iterator[Target]:
    if url:
        with targets([url], assistant) as found:
            yield found[0]
        return
    if database_url:
        print(f"machine: {cpu_probe():.2f} s for a 10-million-step Python loop (the speed the figures below had)")
        with tempfile.TemporaryDirectory() as tmp:
            kwargs.setdefault("config", BENCH_CONFIG)
            proc = ServerProcess(data_dir=Path(tmp) / "data", database_url=database_url, **kwargs).start()
            try:
                assert proc.process is not None
                LOCAL_PID[proc.url] = proc.process.pid
                yield Target(LOCAL, proc.url, assistant, proc.process.pid)
            finally:
                proc.stop()
        return
    with targets([LOCAL_PG if postgres else LOCAL], assistant, **kwargs) as found:
        yield found[0]


LOCAL_PID: dict[str, int] = {}


def cpu_probe() -> float:
    """Seconds one core takes for a fixed piece of Python: on a shared machine its speed drifts by half over an
    hour, and every figure drifts with it, so each run says what it ran on."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (VmRSS, /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process, of its live children, and of its children that ended (which the kernel adds to the
    parent's cutime/cstime once reaped): PostgreSQL's postmaster and all its backends."""
    fields = _stat(pid)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                child = _stat(int(entry))
                if int(child[1]) == pid:
                    total += int(child[11]) + int(child[12])
    return total / os.sysconf("SC_CLK_TCK")


def pg_counters(database_url: str) -> dict[str, float]:
    """pg_stat_statements' counters for one database (immediate, unlike pg_stat_database's, which backends flush
    up to ten seconds late): statements (BEGIN and COMMIT included), transactions begun explicitly, rows written by
    INSERT, UPDATE and DELETE. The probe's own queries (on pg_stat*) are left out. Empty when the extension is not
    loaded (a server not started by these scripts)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            rows = conn.execute(
                "SELECT query, calls, rows FROM pg_stat_statements WHERE dbid = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat%'"
            ).fetchall()
        except psycopg.Error:
            return {}
    out = {"statements": 0.0, "transactions (BEGIN)": 0.0, "rows written": 0.0}
    for query, calls, written in rows:
        verb = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
        out["statements"] += calls
        if verb in ("BEGIN", "START"):
            out["transactions (BEGIN)"] += calls
        elif verb in ("INSERT", "UPDATE", "DELETE") or (verb == "WITH" and "UPDATE" in query.upper()):
            out["rows written"] += written
    return out


def pg_statements(database_url: str, limit: int = 40) -> list[tuple[int, int, str]]:
    """(calls, rows, query) of the most called statements in one database, for a breakdown."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT calls, rows, query FROM pg_stat_statements WHERE dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%%pg_stat%%' "
            "ORDER BY calls DESC LIMIT %s",
            (limit,),
        ).fetchall()
    return [(int(c), int(r), str(q)) for c, r, q in found]


def pg_reset(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")


class Probe:
    """CPU (the server, and PostgreSQL for `crongraph-pg`) and PostgreSQL's counters around a piece of work; `per(n)`
    divides by the operations done: {"crongraph CPU ms": ..., "PostgreSQL CPU ms": ..., "transactions": ...}."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        t = self.target
        out: dict[str, float] = {}
        if t.pid:
            out["crongraph CPU ms"] = cpu_seconds(t.pid) * 1000
        if t.pg_pid:
            out["PostgreSQL CPU ms"] = tree_cpu_seconds(t.pg_pid) * 1000
        if t.pg_url:
            out.update(pg_counters(t.pg_url))
        return out

    def per(self, n: int) -> dict[str, float]:
        end = self._read()
        # The counters' own reading is one transaction (and a few statements) of the end's read.
        return {k: (end[k] - self._start[k]) / n for k in end if k in self._start}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, ms: list[float]) -> str:
    return (
        f"{name:34} median {statistics.median(ms):8.2f} ms   p90 {pct(ms, 0.9):8.2f} ms   "
        f"p99 {pct(ms, 0.99):8.2f} ms   (n={len(ms)})"
    )


Round = Callable[[Target], Awaitable[dict[str, float]]]


async def compare(
    found: list[Target],
    rounds: int,
    one_round: Round,
    higher_is_better: tuple[str, ...] = (),
    not_compared: tuple[str, ...] = (),
) -> None:
    """Run `one_round` on each target in turn, `rounds` times (A B A B ...: a drift of the shared machine hits them
    alike), then print each figure's median over the rounds per target and its ratio to the first target. A figure
    a target did not report (CPU of a remote server) is left blank; figures in `not_compared` (ratios themselves, or
    what the client measured without the server, such as the in-process floor) are printed without a ratio."""
    figures: dict[str, dict[str, list[float]]] = {}
    for r in range(rounds):
        for target in found:
            for name, value in (await one_round(target)).items():
                figures.setdefault(name, {}).setdefault(target.name, []).append(value)
        print(f"  round {r + 1}/{rounds} done", flush=True)
    print_comparison(found, figures, higher_is_better, not_compared)


def print_comparison(
    found: list[Target],
    figures: dict[str, dict[str, list[float]]],
    higher_is_better: tuple[str, ...] = (),
    not_compared: tuple[str, ...] = (),
) -> None:
    names = [t.name for t in found]
    width = max(12, *(len(n) for n in names))
    print()
    print(f"{'figure (median of rounds)':38}" + "".join(f"{n:>{width + 2}}" for n in names))
    for name, per_target in figures.items():
        medians = {t: statistics.median(v) for t, v in per_target.items()}
        row = f"{name:38}" + "".join(f"{_fmt(medians.get(n)):>{width + 2}}" for n in names)
        base = medians.get(names[0])
        if name in not_compared:
            print(row)
            continue
        ratios = [f"{n} {medians[n] / base:.2f}x" for n in names[1:] if n in medians and base not in (None, 0)]
        better = "higher is better" if name in higher_is_better else "lower is better"
        print(row + (f"   vs {names[0]}: " + ", ".join(ratios) + f" ({better})" if ratios else ""))


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"


def execution_note(url: str) -> str:
    """What the header line says about how the server executes runs: its execution workers (`--exec-workers`,
    from /metrics?format=json) or one process; empty for a server that does not say (not crongraph)."""
    import httpx

    try:
        workers = httpx.get(f"{url}/metrics", params={"format": "json"}, timeout=5).json()["workers"]
    except Exception:
        return ""
    exec_workers = workers.get("exec_workers") if isinstance(workers, dict) else None
    if not exec_workers:
        return f" [one process, {workers.get('total', '?')} worker slots]" if isinstance(workers, dict) else ""
    return (
        f" [execution workers: {exec_workers.get('alive')} alive of {exec_workers.get('configured')} configured,"
        f" {workers.get('processes')} processes, {workers.get('total')} worker slots]"
    )
