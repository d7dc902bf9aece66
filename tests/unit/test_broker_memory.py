"""The run event broker keeps what retention holds compact: a small event costs about its size, not orjson's
4 KB working buffer (which made 10,000 trivial runs hold some 300 MB for five minutes)."""

from __future__ import annotations

import asyncio
import sys
import tracemalloc

import pytest

from crongraph.streams import broker as broker_module
from crongraph.streams.broker import StreamBroker


async def test_retained_runs_cost_little_memory() -> None:
    broker = StreamBroker(retention=300)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            run_id = f"run-{i}"
            broker.start(run_id, "thread-1")
            broker.publish(run_id, "metadata", {"run_id": run_id, "attempt": 1})
            broker.publish(run_id, "values", {"value": i})
            broker.close(run_id, {"run_id": run_id, "status": "success", "output": {"value": i}})
        per_run = (tracemalloc.get_traced_memory()[0] - before) / 1000
    finally:
        tracemalloc.stop()
    # Three events (two in the run's log, three in the thread's), the final record and the bookkeeping: about
    # 2 KB; with each event in a 4 KB buffer it was over 12 KB.
    assert per_run < 4000, f"{per_run:.0f} bytes per retained run"


async def test_tables_shrink_once_runs_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    # A dict keeps its peak capacity when entries are deleted; after a burst of runs has expired, the broker's
    # run and thread tables must not stay at the burst's size.
    monkeypatch.setattr(broker_module, "TRIM_DELAY", 0.0)
    broker = StreamBroker(retention=0.0)
    empty = sys.getsizeof({})
    for i in range(20000):
        run_id = f"run-{i}"
        broker.start(run_id, f"thread-{i}")
        broker.publish(run_id, "values", {"value": i})
        broker.close(run_id, {"run_id": run_id, "status": "success"})
    # Retention 0 and trim delay 0: expiry, then the trim, each on a later loop iteration; wait for the trim to
    # have run (it clears its handle) after all runs have expired.
    while broker._runs or broker._threads or broker._trim is not None:
        await asyncio.sleep(0)
    assert sys.getsizeof(broker._runs) <= empty + 1024, f"run table {sys.getsizeof(broker._runs)} bytes"
    assert sys.getsizeof(broker._threads) <= empty + 1024, f"thread table {sys.getsizeof(broker._threads)} bytes"
