"""The run event broker for PostgreSQL, where a run executes on one replica and may be streamed, joined or waited
for from any other. It is a StreamBroker (streams/broker.py), which keeps doing everything that concerns this
process: the executing replica's memory log, its own subscribers, the thread logs, final records.

What it adds: the replica executing a run also appends the run's events to the run_events table. One writer task
flushes whatever has accumulated in one statement, together with a RUN_EVENTS notification for the runs followed
from another replica, so a burst of runs costs a few round trips, never one per event, and `publish()` never
waits for the database. A subscriber or waiter on any other replica reads the table after its cursor
(Last-Event-ID), woken by the notification or, since notifications are hints, by a one-second poll.

Who is told: a subscriber or waiter on another replica announces itself with a `<run_id>:want` hint; only runs
so followed have their writes announced (a NOTIFY costs the commit a signal to every listening backend and every
replica a wake-up). A want that comes after some of the run's rows were written unannounced is answered by a hint
at once, or, for rows being written then, once they are, so a follower never waits for its poll.

How long a flush waits for more events: a run's end is flushed at once (waiters on other replicas are answered by
its END row). Other events linger up to FLUSH_LINGER when someone on another replica follows the run, and up to
QUIET_LINGER otherwise, so that a short run nobody follows elsewhere costs one statement, its events and its end
together, instead of two or three. A replica learns that a run is followed from a `<run_id>:want` hint, which
a subscriber reading the table sends when it starts and again at every poll that found nothing new; a lost hint
therefore delays that subscriber's events by at most QUIET_LINGER until its next poll. Every event is written
either way; only the moment changes.

A run whose outcome is written by one statement (queue/executor.py) hands that statement its events still in the
outbox and its END row with the `<run_id>:end` hint (end_with_outcome), so a short run's events cost no statement
of their own; they are inserted only if the outcome is (a fenced outcome writes no END row: the events go back to
the outbox and close() queues an END row without a record, as for any run whose outcome was not written). While
some of the run's events are in a flush under way, its END row goes through the outbox, after them.

Invariants:
- An event's id is its position in the run's log, assigned by the one process executing the run; rows are
  (run_id, seq) with seq = id, so every replica replays the same ids and resumption works anywhere.
- The END row (seq 0) is written after every event of the run, in the same or a later transaction.
- A run whose executor died writes no END row. Its subscribers end once the run is ended in storage (the reaper)
  and a grace period has passed without the END row; if it ended in error they get that error as a last event.
- Events are forgotten `retention` seconds after their run ended, here and in the table (purged by every replica;
  the purge is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from crongraph import notify, serde
from crongraph.clock import Clock
from crongraph.notify import Notifier
from crongraph.storage import events, runs
from crongraph.storage.database import Database
from crongraph.streams.broker import Event, StreamBroker

log = logging.getLogger("crongraph.streams")

PAGE = 500
# How long a subscriber waits for the END row once storage says the run has ended.
END_GRACE = timedelta(seconds=3)
PURGE_EVERY = 60.0
# Longest an event waits in the outbox for others to share its statement (seconds): for a run followed from another
# replica, and for one that is not.
FLUSH_LINGER = 0.005
QUIET_LINGER = 0.1
_ENDED_MEMORY = 10_000


class PgBroker(StreamBroker):
    def __init__(
        self, db: Database, notifier: Notifier, clock: Clock, retention: float = 300.0, *, poll: float = 1.0
    ) -> None:
        super().__init__(retention)
        self._db = db
        self._notifier = notifier
        self._clock = clock
        self._poll = poll
        # Subscribers and waiters on this replica, per run, poked by hints and by local publishes.
        self._watchers: dict[str, set[asyncio.Event]] = defaultdict(set)
        # Runs another replica announced as ended, most recent last (for is_done and wait_done without a query).
        self._ended: dict[str, None] = {}
        # Final records of runs that ended on another replica, read from their END row by wait_done.
        self._finals: dict[str, dict[str, Any]] = {}
        self._outbox: list[dict[str, Any]] = []
        self._outbox_ready = asyncio.Event()
        self._wake = asyncio.Event()  # the writer should look again at how long to linger
        self._end_queued = False  # an END row is in the outbox: flush without lingering
        # Runs followed from another replica (their `want` hints), most recent last; and whether one of them has
        # events in the outbox (then the writer lingers only FLUSH_LINGER).
        self._wanted: dict[str, None] = {}
        self._eager = False
        # Runs with events in a flush under way (how many flushes), and runs whose END row their outcome's
        # statement wrote (end_with_outcome), until close().
        self._flushing: Counter[str] = Counter()
        self._ends_stored: set[str] = set()
        self._emptied = False  # end_with_outcome emptied the outbox
        # Runs whose END row an outcome's statement is writing, and whether it announces it.
        self._writing: dict[str, bool] = {}
        self._hinting: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # Lifecycle

    async def open(self) -> None:
        """Begin storing and hearing about events (StreamBroker.start is about one run, hence the name)."""
        if self._tasks:
            return
        self._notifier.listen(notify.RUN_EVENTS, self._on_hint)
        self._tasks = [
            asyncio.create_task(self._write_forever(), name="crongraph-events-writer"),
            asyncio.create_task(self._purge_forever(), name="crongraph-events-purge"),
        ]

    async def aclose(self) -> None:
        """Flush what was published (a stopping executor's last events matter to remote subscribers), then stop."""
        if not self._tasks:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush(), timeout=5.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # Publishing (the executing replica)

    def publish(self, run_id: str, name: str, data: Any) -> None:
        super().publish(run_id, name, data)
        event = self._runs[run_id].log.events[-1]
        self._poke(run_id)  # a subscriber here that started before this replica claimed the run
        self._queue(run_id, event.id, event.name, event.data)

    def close(self, run_id: str, final: dict[str, Any] | None = None) -> None:
        if super().is_done(run_id):
            return
        super().close(run_id, final)
        self._poke(run_id)
        if run_id in self._ends_stored:
            self._ends_stored.discard(run_id)  # written with the run's outcome
        else:
            self._queue(run_id, events.END, "end", serde.dumps(final) if final is not None else b"")

    def end_with_outcome(self, run_id: str, final: dict[str, Any]) -> events.Batch | None:
        """The run's events in the outbox and its END row, taken out of the outbox for its outcome's statement
        (one statement a run fewer). None while some of its events are in a flush under way: its END row must not
        be committed before them, so it then goes through the outbox, after them."""
        if self._flushing[run_id] or super().is_done(run_id):
            return None
        mine = [row for row in self._outbox if row["run_id"] == run_id]
        if mine:
            self._outbox = [row for row in self._outbox if row["run_id"] != run_id]
            if not self._outbox:
                self._emptied = True  # the writer's linger is over: the next event starts a new one
                self._wake.set()
        mine.append(self._row(run_id, events.END, "end", serde.dumps(final)))
        hinted = run_id in self._wanted
        self._writing[run_id] = hinted
        return events.Batch(mine, notify.RUN_EVENTS, [f"{run_id}:end"] if hinted else [])

    def outcome_written(self, run_id: str, batch: events.Batch, written: bool) -> None:
        hinted = self._writing.pop(run_id, True)
        if written:
            self._ends_stored.add(run_id)
            if not hinted and run_id in self._wanted:
                self._hint(f"{run_id}:end")  # followed since the statement was built
            return
        # Back in front of the outbox (the rest of the outbox is other runs'); close() queues the END row after.
        rows = [row for row in batch.rows if row["seq"] != events.END]
        if rows:
            self._outbox[:0] = rows
            self._outbox_ready.set()

    def _row(self, run_id: str, seq: int, name: str, data: bytes) -> dict[str, Any]:
        return {"run_id": run_id, "seq": seq, "name": name, "data": data, "created_at": self._clock.now()}

    def _queue(self, run_id: str, seq: int, name: str, data: bytes) -> None:
        row = self._row(run_id, seq, name, data)
        self._outbox.append(row)
        self._outbox_ready.set()
        if seq == events.END:
            self._end_queued = True
            self._wake.set()
        elif run_id in self._wanted and not self._eager:
            self._eager = True
            self._wake.set()

    async def _linger(self) -> None:
        """Wait until the outbox should be flushed: at once when a run's end is in it, else FLUSH_LINGER or
        QUIET_LINGER after the first event in it (the shorter once a followed run's event is in it); at once too
        when it was emptied meanwhile (the flush then writes nothing and the next event starts a new linger)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not self._end_queued:
            if self._emptied:  # taken by an outcome's statement (end_with_outcome)
                self._emptied = False
                if not self._outbox:
                    return  # nothing to flush
                started = loop.time()  # what came since lingers from now
            left = started + (FLUSH_LINGER if self._eager else QUIET_LINGER) - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=left)
            except TimeoutError:
                return

    async def _write_forever(self) -> None:
        backoff = 0.05
        while True:
            await self._outbox_ready.wait()
            await self._linger()
            try:
                await self._flush()
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("storing run events failed; retrying in %.2fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _flush(self) -> None:
        self._outbox_ready.clear()
        self._end_queued = self._eager = False
        batch, self._outbox = self._outbox, []
        if not batch:
            return
        hints: dict[str, str] = {}
        for row in batch:
            hints[row["run_id"]] = row["run_id"] + (":end" if row["seq"] == events.END else "")
        # Only runs followed from another replica are announced (see the module's docstring).
        hinted = {run_id for run_id in hints if run_id in self._wanted}
        self._flushing.update(hints.keys())
        try:
            async with self._db.autocommit() as conn:
                await events.append_and_notify(conn, batch, notify.RUN_EVENTS, [hints[r] for r in hinted])
        except BaseException:
            self._outbox[:0] = batch  # kept in order; the insert is idempotent
            self._end_queued = self._end_queued or any(row["seq"] == events.END for row in batch)
            self._outbox_ready.set()
            raise
        finally:
            self._flushing.subtract(hints.keys())
            self._flushing += Counter()  # drops the runs at zero
        for run_id, hint in hints.items():
            if run_id not in hinted and run_id in self._wanted:
                self._hint(hint)  # followed since the statement was built

    # Hints

    def _on_hint(self, payload: str) -> None:
        if not payload:  # the listener reconnected: anything may have happened
            for watchers in list(self._watchers.values()):
                for waiter in watchers:
                    waiter.set()
            return
        run_id, _, tag = payload.partition(":")
        if tag == "want":
            self._wanted[run_id] = None
            if len(self._wanted) > _ENDED_MEMORY:
                del self._wanted[next(iter(self._wanted))]
            if any(row["run_id"] == run_id for row in self._outbox):
                if not self._eager:
                    self._eager = True
                    self._wake.set()
            elif self._executed_here(run_id) and run_id not in self._writing and not self._flushing[run_id]:
                # What was written of the run went unannounced (nobody followed it then): announce it now. Rows
                # being written are announced once they are (_flush, outcome_written).
                self._hint(run_id + (":end" if super().is_done(run_id) else ""))
            return
        if tag == "end":
            self._ended[run_id] = None
            if len(self._ended) > _ENDED_MEMORY:
                del self._ended[next(iter(self._ended))]
        self._poke(run_id)

    def _hint(self, payload: str) -> None:
        """Send a RUN_EVENTS hint outside a flush (its own statement, through the notifier's outbox)."""
        task = asyncio.get_running_loop().create_task(self._notifier.notify(notify.RUN_EVENTS, payload))
        self._hinting.add(task)
        task.add_done_callback(self._hinting.discard)

    def _poke(self, run_id: str) -> None:
        for waiter in self._watchers.get(run_id, ()):
            waiter.set()

    def _watch(self, run_id: str) -> asyncio.Event:
        waiter = asyncio.Event()
        self._watchers[run_id].add(waiter)
        return waiter

    def _unwatch(self, run_id: str, waiter: asyncio.Event) -> None:
        watchers = self._watchers.get(run_id)
        if watchers is not None:
            watchers.discard(waiter)
            if not watchers:
                del self._watchers[run_id]

    async def _sleep(self, waiter: asyncio.Event) -> bool:
        """Wait for a poke or the poll period; False when the period ended without one."""
        try:
            await asyncio.wait_for(waiter.wait(), timeout=self._poll)
        except TimeoutError:
            return False
        return True

    async def _want(self, run_id: str) -> None:
        """Tell the replica executing the run that it is followed from here (see the module's docstring)."""
        await self._notifier.notify(notify.RUN_EVENTS, f"{run_id}:want")

    # Reading (any replica)

    def known(self, run_id: str) -> bool:
        """Always: another replica may hold events for any run, and subscribe() asks the table."""
        return True

    def is_done(self, run_id: str) -> bool:
        return super().is_done(run_id) or run_id in self._ended

    def final(self, run_id: str) -> dict[str, Any] | None:
        """The final record of a run that ended here, or elsewhere and was waited for here (wait_done)."""
        return super().final(run_id) or self._finals.get(run_id)

    def _executed_here(self, run_id: str) -> bool:
        """This process published or closed the run: its memory log holds every event from id 1."""
        return super().known(run_id)

    async def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[Event]:
        """Every event after `after`, then live ones, until the run ends."""
        cursor = after
        waiter = self._watch(run_id)
        want = True
        try:
            while True:
                if self._executed_here(run_id):
                    async for event in super().subscribe(run_id, cursor):
                        yield event
                    return
                if want:
                    await self._want(run_id)
                waiter.clear()
                async with self._db.read() as conn:
                    rows, ended = await events.read_after(conn, run_id, cursor, PAGE)
                for row in rows:
                    cursor = row.seq
                    yield Event(row.seq, row.name, bytes(row.data))
                if ended:
                    return
                if len(rows) == PAGE:
                    continue
                if not rows:
                    outcome = await self._ended_without_end(run_id)
                    if outcome is not None:
                        if outcome.get("synthesize"):
                            yield Event(cursor + 1, "error", serde.dumps(outcome["error"]))
                        return
                want = not await self._sleep(waiter)
        finally:
            self._unwatch(run_id, waiter)

    async def _ended_without_end(self, run_id: str) -> dict[str, Any] | None:
        """None while the stream may still go on. Otherwise the run is over in storage and its END row did not
        come within the grace period (its executor died, or it ended long ago and its events were purged)."""
        async with self._db.read() as conn:
            run = await runs.get(conn, run_id)
        if run is not None and run["status"] not in runs.TERMINAL:
            return None
        ended_at: datetime | None = run.get("ended_at") if run is not None else None
        now = self._clock.now()
        if ended_at is not None and now - ended_at < END_GRACE:
            return None
        recent = ended_at is not None and now - ended_at < timedelta(seconds=self._retention)
        if run is not None and run["status"] == "error" and recent and run.get("error"):
            return {"synthesize": True, "error": run["error"]}
        return {"synthesize": False}

    async def wait_done(self, run_id: str) -> None:
        if self._executed_here(run_id):
            await super().wait_done(run_id)
            return
        waiter = self._watch(run_id)
        # Callers ask after reading the run's row as not ended (services/runs.py), so at first its END row is only
        # looked for when a hint said it came; otherwise the first look waits for a hint or for the poll. A run
        # about to execute here (the common case) is then answered without any query.
        look = run_id in self._ended
        want = True
        try:
            while not self._executed_here(run_id):
                waiter.clear()
                if run_id in self._finals:
                    return
                if want:
                    # The replica executing the run announces its end only to followers (see the docstring).
                    await self._want(run_id)
                    want = False
                if look:
                    async with self._db.read() as conn:
                        end = await events.end_of(conn, run_id)
                    if end is not None:
                        self._remember_final(run_id, end)
                        return
                await self._sleep(waiter)
                look = True
        finally:
            self._unwatch(run_id, waiter)
        await super().wait_done(run_id)

    def _remember_final(self, run_id: str, end: bytes) -> None:
        self._ended[run_id] = None
        if end:
            self._finals[run_id] = serde.loads(end)
            asyncio.get_running_loop().call_later(self._retention, self._finals.pop, run_id, None)

    # Housekeeping

    async def _purge_forever(self) -> None:
        while True:
            # Jittered, so that replicas started together do not purge in lockstep.
            await asyncio.sleep(PURGE_EVERY * random.uniform(0.5, 1.5))
            try:
                cutoff = self._clock.now() - timedelta(seconds=self._retention)
                async with self._db.write() as conn:
                    purged = await events.purge(conn, cutoff)
                if purged:
                    log.debug("purged %d run events", purged)
            except Exception:
                log.exception("purging run events failed")
