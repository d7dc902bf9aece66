"""Shared by the benchmark scripts: start a crongraph server (or use --url), percentiles, printing."""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import ServerProcess  # noqa: E402

BENCH_CONFIG = ROOT / "benchmarks" / "graphs" / "langgraph.json"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", help="an already running server (crongraph or the reference); default: start crongraph")
    p.add_argument("--assistant", default="agent", help="graph id of a trivial one-node graph on that server")
    return p


@contextlib.contextmanager
def server(url: str | None, **kwargs: object) -> Iterator[str]:
    """The URL of the server to measure: the one given, or a fresh crongraph on SQLite started for the run (its
    process id then in LOCAL_PID, for the CPU figures)."""
    print(f"machine: {cpu_probe():.2f} s for a 10-million-step Python loop (the speed the figures below had)")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        kwargs.setdefault("config", BENCH_CONFIG)
        proc = ServerProcess(data_dir=Path(tmp) / "data", **kwargs).start()  # type: ignore[arg-type]
        assert proc.process is not None
        LOCAL_PID[proc.url] = proc.process.pid
        try:
            yield proc.url
        finally:
            proc.stop()


LOCAL_PID: dict[str, int] = {}


def cpu_probe() -> float:
    """Seconds one core takes for a fixed piece of Python: on a shared machine its speed drifts by half over an
    hour, and every figure drifts with it, so each run says what it ran on."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, ms: list[float]) -> str:
    return (
        f"{name:34} median {statistics.median(ms):8.2f} ms   p90 {pct(ms, 0.9):8.2f} ms   "
        f"p99 {pct(ms, 0.99):8.2f} ms   (n={len(ms)})"
    )
