"""Each thread's event log for the thread-centric stream: numbering, persistence, replay then live follow, and
retention.

Invariants:
- `seq` is thread-wide: it starts at 1, rises by 1 per event (before any filtering) and continues across runs and
  restarts, because events are numbered inside the transaction that stores them (storage/thread_events.py).
  An event's `event_id` is its seq, so it is the same on every delivery.
- A follower gets every matching event after its cursor exactly once, in seq order: it replays from the database,
  then reads this process's in-memory tail of recently committed events, and goes back to the database whenever
  the tail does not reach back to its cursor (events another replica wrote, or ones the tail no longer holds).
  Waits end at every local commit, at every other replica's commit announced on THREAD_EVENTS (PostgreSQL),
  and after `poll` seconds in any case (a safety net: notifications may be lost).
- Retention: when a run's root terminal event is written, the thread keeps the events of its `keep_runs` most
  recent runs and drops older ones; all of a thread's events go with the thread. A cursor older than the oldest
  kept event gets a `Gap` first, then what is kept.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from crongraph import notify, serde
from crongraph.clock import Clock
from crongraph.notify import Notifier
from crongraph.storage import thread_events, threads
from crongraph.storage.common import Record
from crongraph.storage.database import Database
from crongraph.streams.protocol import channel_of

log = logging.getLogger("crongraph.thread_log")

OPEN, END = thread_events.OPEN, thread_events.END
_TAIL = 2048  # events held in memory per followed thread
_PAGE = 500  # events read from the database at once


@dataclass(frozen=True)
class LogEvent:
    seq: int
    method: str
    channel: str
    namespace: tuple[str, ...]
    body: bytes  # the envelope, JSON


@dataclass(frozen=True)
class Gap:
    """Events after `since` were pruned; the log resumes at `first`."""

    since: int
    first: int


@dataclass(frozen=True)
class Draft:
    """An event not yet numbered; its data is serialized when it is made, so later mutation cannot change it."""

    run_id: str
    method: str
    channel: str
    namespace: tuple[str, ...]
    data: bytes
    node: str | None
    timestamp: int
    mark: str | None


def draft(
    run_id: str, method: str, namespace: Iterable[str], data: Any, node: str | None = None, mark: str | None = None
) -> Draft:
    return Draft(
        run_id,
        method,
        channel_of(method, data),
        tuple(namespace),
        serde.dumps(data),
        node,
        time.time_ns() // 10**6,
        mark,
    )


def method_of(channel: str) -> str:
    if channel == "input":
        return "input.requested"
    return "custom" if channel.startswith("custom:") else channel


def envelope(seq: int, d: Draft) -> bytes:
    node = b',"node":' + orjson.dumps(d.node) if d.node is not None else b""
    return b"".join(
        (
            b'{"type":"event","event_id":"%d","seq":%d,"method":' % (seq, seq),
            orjson.dumps(d.method),
            b',"params":{"namespace":',
            orjson.dumps(list(d.namespace)),
            b',"timestamp":%d,"data":' % d.timestamp,
            d.data,
            node,
            b"}}",
        )
    )


class _Thread:
    """This process's view of one thread: the tail of committed events, wake-ups, and the locks that order its
    writes and its runs."""

    def __init__(self) -> None:
        self.tail: deque[LogEvent] = deque(maxlen=_TAIL)
        self.changed = asyncio.Event()
        self.write_lock = asyncio.Lock()
        self.run_slot = asyncio.Lock()
        self.users = 0
        # Bumped when another replica says it stored events here: followers then read the database.
        self.hints = 0

    def push(self, events: list[LogEvent]) -> None:
        if not events:
            return
        if self.tail and events[0].seq != self.tail[-1].seq + 1:
            if events[0].seq <= self.tail[-1].seq:
                return  # already superseded by a newer window; followers read these from the database
            self.tail.clear()  # a hole (another replica wrote in between): followers fill it from the database
        self.tail.extend(events)
        self.wake()

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def after(self, cursor: int) -> list[LogEvent] | None:
        """What the tail holds after `cursor`; None when it does not reach back to `cursor + 1`."""
        if not self.tail or cursor >= self.tail[-1].seq:
            return []
        first = self.tail[0].seq
        if cursor + 1 < first:
            return None
        return list(itertools.islice(self.tail, cursor + 1 - first, None))


class ThreadLog:
    def __init__(
        self, db: Database, clock: Clock, *, keep_runs: int, poll: float, notifier: Notifier | None = None
    ) -> None:
        """With a `notifier` (several replicas), every commit is announced on THREAD_EVENTS, and announcements
        wake this process's followers of that thread; `poll` is then only a safety net for lost ones."""
        self._db = db
        self._clock = clock
        self._keep_runs = max(1, keep_runs)
        self._poll = poll
        self._threads: dict[str, _Thread] = {}
        self._notifier = notifier
        # Announcements say who stored the events ("<thread id> <origin>"): this process's own need no wake-up.
        self._origin = uuid.uuid4().hex
        if notifier is not None:
            notifier.listen(notify.THREAD_EVENTS, self._hint)

    def _hint(self, payload: str) -> None:
        thread_id, _, origin = payload.partition(" ")
        if not thread_id:  # the notifier lost its connection: any thread may have news
            for state in self._threads.values():
                state.hints += 1
                state.wake()
            return
        if origin == self._origin:
            return
        known = self._threads.get(thread_id)
        if known is not None:
            known.hints += 1
            known.wake()

    def _acquire(self, thread_id: str) -> _Thread:
        state = self._threads.get(thread_id)
        if state is None:
            state = self._threads[thread_id] = _Thread()
        state.users += 1
        return state

    def _release(self, thread_id: str, state: _Thread) -> None:
        state.users -= 1
        if state.users <= 0 and self._threads.get(thread_id) is state:
            del self._threads[thread_id]

    # Writing

    async def append(self, thread_id: str, drafts: list[Draft], *, when_idle: bool = False) -> list[LogEvent] | None:
        """Number and store `drafts` in one transaction, then wake this process's followers. Drafts of a run
        whose end is already stored are dropped (someone else ended it), as is a second `open` mark. With
        `when_idle`, nothing is stored while another run is open in the log (None then): a run's events are
        never put inside another's."""
        state = self._acquire(thread_id)
        try:
            async with state.write_lock:
                events = await self._store(thread_id, drafts, when_idle)
                if events:
                    state.push(events)
            if events and self._notifier is not None:
                await self._notifier.notify(notify.THREAD_EVENTS, f"{thread_id} {self._origin}")
            return events
        finally:
            self._release(thread_id, state)

    async def _store(self, thread_id: str, drafts: list[Draft], when_idle: bool) -> list[LogEvent] | None:
        for attempt in range(8):
            try:
                async with self._db.write() as conn:
                    if when_idle:
                        last = await thread_events.last_mark(conn, thread_id)
                        if (
                            last is not None
                            and last["mark"] == OPEN
                            and last["run_id"] not in {d.run_id for d in drafts}
                        ):
                            return None
                    kept = await self._without_duplicates(conn, drafts)
                    if not kept:
                        return []
                    seq = await thread_events.next_seq(conn, thread_id)
                    now = self._clock.now()
                    rows, events = [], []
                    for offset, d in enumerate(kept):
                        body = envelope(seq + offset, d)
                        rows.append(
                            {
                                "thread_id": thread_id,
                                "seq": seq + offset,
                                "run_id": d.run_id,
                                "channel": d.channel,
                                "namespace": list(d.namespace),
                                "mark": d.mark,
                                "body": body.decode(),
                                "created_at": now,
                            }
                        )
                        events.append(LogEvent(seq + offset, d.method, d.channel, d.namespace, body))
                    await thread_events.insert_many(conn, rows)
                return events
            except IntegrityError:
                # A race with another writer of this thread (seq or mark), or the thread is gone.
                async with self._db.read() as conn:
                    if await threads.get(conn, thread_id) is None:
                        return []
                await asyncio.sleep(0.005 * (attempt + 1))
        log.error("thread %s: %d events could not be stored", thread_id, len(drafts))
        return []

    async def _without_duplicates(self, conn: Any, drafts: list[Draft]) -> list[Draft]:
        marked = {d.run_id for d in drafts if d.mark}
        if not marked:
            return drafts
        present = await thread_events.existing_marks(conn, sorted(marked))
        ended = {run_id for run_id, mark in present if mark == END}
        return [d for d in drafts if d.run_id not in ended and (d.mark is None or (d.run_id, d.mark) not in present)]

    def writer(self, thread_id: str, run_id: str) -> RunWriter:
        return RunWriter(self, thread_id, run_id)

    async def prune(self, thread_id: str) -> int:
        async with self._db.write() as conn:
            return await thread_events.prune(conn, thread_id, self._keep_runs)

    # Run slots: runs on a thread follow each other, and the next one's events must not pass the last one's end.

    async def acquire_slot(self, thread_id: str, wait: float) -> bool:
        state = self._acquire(thread_id)
        try:
            await asyncio.wait_for(state.run_slot.acquire(), wait)
            return True
        except TimeoutError:
            self._release(thread_id, state)
            return False

    def release_slot(self, thread_id: str) -> None:
        state = self._threads.get(thread_id)
        if state is not None and state.run_slot.locked():
            state.run_slot.release()
            self._release(thread_id, state)

    # Reading

    async def last_seq(self, thread_id: str) -> int:
        async with self._db.read() as conn:
            return await thread_events.last_seq(conn, thread_id)

    async def last_mark(self, thread_id: str) -> Record | None:
        async with self._db.read() as conn:
            return await thread_events.last_mark(conn, thread_id)

    async def requested_interrupts(self, thread_id: str) -> dict[str, list[str]]:
        """Where each recently requested interrupt was raised (its namespace), newest request first."""
        async with self._db.read() as conn:
            bodies = await thread_events.bodies_of(conn, thread_id, "input", 200)
        found: dict[str, list[str]] = {}
        for body in bodies:
            params = orjson.loads(body).get("params") or {}
            data = params.get("data") or {}
            if isinstance(data.get("interrupt_id"), str):
                found.setdefault(data["interrupt_id"], list(params.get("namespace") or []))
        return found

    async def first_seq(self, thread_id: str) -> int | None:
        async with self._db.read() as conn:
            return await thread_events.first_seq(conn, thread_id)

    async def read(
        self, thread_id: str, after: int, accepts: Callable[[str, tuple[str, ...]], bool]
    ) -> tuple[list[LogEvent], int]:
        """The accepted events stored after `after` right now, and the last seq read (accepted or not)."""
        found: list[LogEvent] = []
        cursor = after
        while True:
            async with self._db.read() as conn:
                rows = await thread_events.after(conn, thread_id, cursor, _PAGE)
            for row in rows:
                cursor, channel, namespace = row["seq"], row["channel"], tuple(row["namespace"])
                if accepts(channel, namespace):
                    found.append(LogEvent(cursor, method_of(channel), channel, namespace, row["body"].encode()))
            if len(rows) < _PAGE:
                return found, cursor

    async def follow(
        self, thread_id: str, since: int | None, accepts: Callable[[str, tuple[str, ...]], bool]
    ) -> AsyncIterator[LogEvent | Gap]:
        """Every accepted event after `since` (all that is kept when None), then live ones, forever."""
        state = self._acquire(thread_id)
        try:
            cursor = since or 0
            if since is not None:
                async with self._db.read() as conn:
                    first = await thread_events.first_seq(conn, thread_id)
                if first is not None and since + 1 < first:
                    yield Gap(since, first)
            from_db = True
            hints = state.hints
            while True:
                changed = state.changed
                if state.hints != hints:
                    hints, from_db = state.hints, True
                if from_db:
                    stored, cursor = await self.read(thread_id, cursor, accepts)
                    for event in stored:
                        yield event
                    from_db = False
                recent = state.after(cursor)
                if recent is None:
                    from_db = True
                    continue
                for event in recent:
                    cursor = event.seq
                    if accepts(event.channel, event.namespace):
                        yield event
                if recent:
                    continue
                try:
                    await asyncio.wait_for(changed.wait(), self._poll)
                except TimeoutError:
                    from_db = True
        finally:
            self._release(thread_id, state)


class RunWriter:
    """Publishes one run's events in order without making the graph wait: `publish` queues, and one background
    task stores whatever has queued up while its previous write was in flight (group commit)."""

    def __init__(self, owner: ThreadLog, thread_id: str, run_id: str) -> None:
        self._owner = owner
        self.thread_id = thread_id
        self.run_id = run_id
        self._queue: list[Draft] = []
        self._task: asyncio.Task[None] | None = None

    def publish(
        self, method: str, namespace: Iterable[str], data: Any, node: str | None = None, mark: str | None = None
    ) -> None:
        self._queue.append(draft(self.run_id, method, namespace, data, node, mark))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"thread-log-{self.thread_id}")

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._owner.append(self.thread_id, batch)
            except Exception:
                log.exception("thread %s: %d events of run %s were lost", self.thread_id, len(batch), self.run_id)

    async def flush(self) -> None:
        """Wait until everything published so far is stored (not cancelled with the caller)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
