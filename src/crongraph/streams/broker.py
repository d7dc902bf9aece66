"""The run event broker: each run's events, in order, for any number of subscribers; and each thread's events,
the events of its runs interleaved with a `run_done` marker after each run, for the thread stream.

Events are serialized once, when published. A subscriber may start at any point (Last-Event-ID) and is replayed
what it missed. Run event ids count from 1 within a run. Thread event ids come from one counter for the whole
process, seeded from the clock at start, so they only grow: a client resuming a thread stream with an id from an
earlier log never skips events of a later one. A run's events stay for `retention` seconds after it ends so that
a late join still sees them, together with the run's final record (what wait and join answer, even when the run
row is gone: a temporary thread's run, a rollback); after that, joiners fall back to the stored outcome.

Memory is bounded by what the retention keeps, and kept compact: each event's JSON is held in a bytes object of
its own size (orjson hands back a buffer of at least 4 KB whatever it holds, which made a trivial run cost some
30 KB for five minutes), and once runs expire the run and thread tables are resized to what is left and the freed
heap is handed back to the system (`malloc_trim`, on glibc), so a burst of runs does not leave the process at its
peak size.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from crongraph import serde

log = logging.getLogger("crongraph.streams")


def compact(data: bytes) -> bytes:
    """`data` in a buffer of its own length: orjson's result keeps its (at least 4 KB) working buffer."""
    return bytes(memoryview(data))


def _load_malloc_trim() -> Any:
    """glibc's malloc_trim, or None elsewhere (musl, macOS): returning freed heap to the system is an economy,
    not a duty."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols, libc's among them
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()
# After runs expire, the heap is trimmed once this many seconds later (expiries come in bursts, a trim of a large
# heap takes milliseconds, so one trim per burst).
TRIM_DELAY = 5.0


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    data: bytes  # JSON


class _Log:
    """An append-only list of events with a wake-up for readers.

    `changed` is the wake-up for what is appended after it was taken: a reader takes it, reads the events, then
    waits on it. It is made only when a reader asks for it, so that the events of runs nobody is reading (a drain
    of background runs) cost no asyncio.Event each."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed: asyncio.Event | None = None

    @property
    def changed(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def append(self, event: Event) -> None:
        self.events.append(event)
        self.poke()

    def poke(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


@dataclass
class _RunLog:
    log: _Log = field(default_factory=_Log)
    thread_id: str | None = None
    done: bool = False
    final: dict[str, Any] | None = None


@dataclass
class _ThreadLog:
    log: _Log = field(default_factory=_Log)
    # The run each event belongs to, parallel to log.events, so that expired runs can be dropped.
    owners: list[str] = field(default_factory=list)
    subscribers: int = 0


class StreamBroker:
    def __init__(self, retention: float = 300.0) -> None:
        self._runs: dict[str, _RunLog] = {}
        self._threads: dict[str, _ThreadLog] = {}
        self._retention = retention
        self._thread_seq = itertools.count(time.time_ns() // 1000)
        self._trim: asyncio.TimerHandle | None = None

    def _run(self, run_id: str) -> _RunLog:
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _RunLog()
        return run

    def _thread(self, thread_id: str) -> _ThreadLog:
        thread = self._threads.get(thread_id)
        if thread is None:
            thread = self._threads[thread_id] = _ThreadLog()
        return thread

    # Publishing (the executor)

    def start(self, run_id: str, thread_id: str) -> None:
        """A run begins executing here: its events also go to its thread's log."""
        self._run(run_id).thread_id = thread_id

    def publish(self, run_id: str, name: str, data: Any) -> None:
        self.publish_encoded(run_id, name, compact(serde.dumps(data)))

    def publish_encoded(self, run_id: str, name: str, data: bytes) -> None:
        """`publish` of data already serialized (compact JSON): an execution worker's events, replayed here."""
        run = self._run(run_id)
        event = Event(len(run.log.events) + 1, name, data)
        run.log.append(event)
        if run.thread_id is not None:
            self._append_thread(run.thread_id, run_id, event.name, event.data)

    def close(self, run_id: str, final: dict[str, Any] | None = None) -> None:
        """The run ended; `final` is its last record (status, output, error). It is stored before waiters are
        woken, so that they find it."""
        run = self._run(run_id)
        if run.done:
            return
        run.done = True
        run.final = final
        run.log.poke()
        if run.thread_id is not None:
            marker = compact(serde.dumps({"status": "run_done", "run_id": run_id}))
            self._append_thread(run.thread_id, run_id, "metadata", marker)
        asyncio.get_running_loop().call_later(self._retention, self._expire, run_id)

    def end_with_outcome(self, run_id: str, final: dict[str, Any]) -> Any:
        """The run's stored events still to write, its END row (carrying `final`, the run's record as its outcome
        leaves it) among them, taken for the statement that records the outcome (a storage/events.Batch); None
        when this broker stores no events or cannot hand them over now. The caller then calls `outcome_written`
        with the batch and whether the statement wrote it, before `close`."""
        return None

    def outcome_written(self, run_id: str, batch: Any, written: bool) -> None:
        """After `end_with_outcome`: the batch was written (`close` then writes no END of its own), or it was not
        and is queued again."""

    def _append_thread(self, thread_id: str, run_id: str, name: str, data: bytes) -> None:
        thread = self._thread(thread_id)
        thread.owners.append(run_id)
        thread.log.append(Event(next(self._thread_seq), name, data))

    def _expire(self, run_id: str) -> None:
        run = self._runs.pop(run_id, None)
        if self._trim is None:
            self._trim = asyncio.get_running_loop().call_later(TRIM_DELAY, self._trim_heap)
        if run is None or run.thread_id is None:
            return
        thread = self._threads.get(run.thread_id)
        if thread is None:
            return
        kept = [(e, o) for e, o in zip(thread.log.events, thread.owners, strict=True) if o != run_id]
        thread.log.events = [e for e, _ in kept]
        thread.owners = [o for _, o in kept]
        if not thread.owners and not thread.subscribers:
            del self._threads[run.thread_id]

    def _trim_heap(self) -> None:
        self._trim = None
        started = time.perf_counter()
        # A dict never shrinks as entries are deleted: after a burst the run and thread tables would keep their
        # peak capacity (two slot tables of some 1.5 MB each for 40,000 retained runs) for good. A copy is sized
        # to what is left; it costs about a millisecond per 40,000 entries, once per burst of expiries.
        self._runs = dict(self._runs)
        self._threads = dict(self._threads)
        if _malloc_trim is not None:
            _malloc_trim(0)
        log.debug("heap trimmed in %.1f ms", (time.perf_counter() - started) * 1000)

    # Reading

    def known(self, run_id: str) -> bool:
        return run_id in self._runs

    def is_done(self, run_id: str) -> bool:
        run = self._runs.get(run_id)
        return run is not None and run.done

    def final(self, run_id: str) -> dict[str, Any] | None:
        """The final record of a run that ended in this process within the retention period."""
        run = self._runs.get(run_id)
        return run.final if run is not None else None

    async def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[Event]:
        """Every event after `after`, then live ones, until the run ends."""
        run = self._run(run_id)
        cursor = after
        while True:
            events = run.log.events
            while cursor < len(events):
                cursor += 1
                yield events[cursor - 1]
            if run.done:
                return
            await run.log.changed.wait()

    async def wait_done(self, run_id: str) -> None:
        run = self._run(run_id)
        while not run.done:
            await run.log.changed.wait()

    async def subscribe_thread(self, thread_id: str, after: int | None) -> AsyncIterator[Event]:
        """The thread's events with an id above `after` (None: only those published from now on), until the
        caller stops iterating."""
        thread = self._thread(thread_id)
        thread.subscribers += 1
        try:
            log = thread.log
            last = after if after is not None else (log.events[-1].id if log.events else 0)
            while True:
                changed = log.changed
                events = log.events
                # Ids only grow along the log: scan back from the end to the first event not yet sent.
                start = len(events)
                while start > 0 and events[start - 1].id > last:
                    start -= 1
                for event in events[start:]:
                    last = event.id
                    yield event
                await changed.wait()
        finally:
            thread.subscribers -= 1
            if not thread.owners and not thread.subscribers:
                self._threads.pop(thread_id, None)
