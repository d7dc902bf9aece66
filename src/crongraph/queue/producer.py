"""The producer: claims runs from storage into this process's worker slots and supervises them.

It sleeps until something can change what is claimable: a RUNS notification (a run was created here or on another
replica), a slot freeing up, or the moment a delayed run (after_seconds) becomes due; a slow safety poll covers lost
notifications. Interactive runs (priority 0) are claimed first, and background work (cron fires) may never take
the last `reserved` slots, so a burst of cron fires cannot keep a client's run from starting. Runs share one event
loop, so background runs executing beside an interactive one also slow it down: while interactive work is present
(a run executing, or one ended less than `INTERACTIVE_LINGER` ago), background runs start one at a time and at most
one per `BACKGROUND_SPACING` (the ones already running finish). Background work never stops altogether: under
constant interactive load, crons still run, at a reduced rate.

Across processes (execution workers, queue/workers/) the same throttle applies to interactive work of the other
processes: each queue reports its own interactive state when it changes (`on_interactive`: active, or idle with the
end of its linger), and applies what the others report (`interactive_elsewhere`). Background runs in any process
then start as they would beside a local interactive run. The hints only ever slow background work down, and a
peer that goes away is forgotten (`forget_peer`), so a lost or stale hint costs throughput, never correctness.

A client's run created on this process may skip the claim altogether (queue/handoff.py): its creation reserves a
free slot (`reserve`), inserts it already claimed under this process's lease, and gives it here after commit
(`hand_off`). Reserved slots count as taken until then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from crongraph import notify
from crongraph.clock import Clock
from crongraph.ids import new_id
from crongraph.notify import Notifier
from crongraph.observability.events import RunTimer
from crongraph.queue.executor import Executor
from crongraph.queue.handoff import Slot
from crongraph.storage import runs
from crongraph.storage.common import Record
from crongraph.storage.database import Database

log = logging.getLogger("crongraph.queue")

SAFETY_POLL = timedelta(seconds=2)
BACKGROUND_BESIDE_INTERACTIVE = 1
# A trivial run costs a few milliseconds of the loop: starting background runs back to back beside an interactive
# one would halve its share of the loop; one start per this long costs it a small fraction.
BACKGROUND_SPACING = timedelta(milliseconds=20)
# A client that just got its answer often sends the next request at once: background work stays throttled this long
# after the last interactive run ended, so that request does not find the loop full again.
INTERACTIVE_LINGER = timedelta(milliseconds=100)


class RunQueue:
    def __init__(
        self,
        db: Database,
        executor: Executor,
        notifier: Notifier,
        clock: Clock,
        *,
        workers: int,
        lease_seconds: float,
    ) -> None:
        self._db = db
        self._executor = executor
        self._notifier = notifier
        self._clock = clock
        self._workers = workers
        self._reserved = max(1, workers // 4) if workers > 1 else 0
        self._lease = timedelta(seconds=lease_seconds)
        self.owner = new_id()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._priority: dict[str, int] = {}
        self._reserved_slots: set[Slot] = set()  # reserved by runs being created here (hand-off)
        self._interactive_until = clock.now()
        self._background_not_before = clock.now()  # the next background start, while throttled
        # Interactive work of other processes (execution workers and their server), by their lease owner: a peer
        # executing an interactive run (None), or idle with its linger ending at the given moment.
        self._elsewhere: dict[str, datetime | None] = {}
        # Told when this queue's own interactive state changes: (True, now) when its first interactive run starts,
        # (False, end of its linger) when its last one ends. Set by whoever relays it to other processes.
        self.on_interactive: Callable[[bool, datetime], None] | None = None
        self.cancel_actions: dict[str, str] = {}
        self._wake = asyncio.Event()
        # True while the last look at storage found no pending run due and no wake-up came since: a run ending then
        # can make nothing claimable (any run created since came with a RUNS hint), so it need not wake the loop.
        self._nothing_pending = False
        # True when the last claim took all it asked for: more runs are likely claimable, so the next claim skips
        # the `any_claimable` read (draining a backlog, it answers yes every time). A claim that finds nothing
        # then costs one statement instead of a read.
        self._backlog = False
        # The earliest delayed run's moment as last read (runs.next_available_at), and when it was read. Only a run
        # created since (a RUNS hint) can make it earlier; a run claimed or cancelled since can only make it later,
        # which costs one early wake-up. Read again after a RUNS hint, once it has passed, or after SAFETY_POLL (a
        # hint may be lost).
        self._delayed: datetime | None = None
        self._delayed_read_at: datetime | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None

    # Lifecycle

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._notifier.listen(notify.RUNS, self._on_runs)
        self._notifier.listen(notify.CANCEL, self._on_cancel)
        self._loop_task = asyncio.create_task(self._run_forever(), name="crongraph-producer")
        self._renew_task = asyncio.create_task(self._renew_forever(), name="crongraph-lease-renewer")

    async def stop(self, grace: float = 5.0) -> None:
        for task in (self._loop_task, self._renew_task):
            if task is not None:
                task.cancel()
        self._loop_task = self._renew_task = None
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks.values()), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # Control

    def wake(self) -> None:
        self._nothing_pending = False
        self._wake.set()

    def cancel_local(self, run_id: str, action: str) -> bool:
        """Stop a run executing here. The action is recorded first; the task is cancelled at most once, and only
        while its graph runs (Executor.take_interruptible): a task cancelled before its first step would never run
        the code that records the outcome (the executor reads the action when it starts instead), and a cancel
        while the outcome is written would cut that off."""
        task = self._tasks.get(run_id)
        if task is None:
            if any(slot.run_id == run_id for slot in self._reserved_slots):
                # Committed claimed but not yet handed over: the executor sees the action when it starts.
                self.cancel_actions[run_id] = action
                return True
            return False
        self.cancel_actions[run_id] = action  # a later rollback still upgrades an interrupt not yet recorded
        if self._executor.take_interruptible(run_id):
            task.cancel()
        return True

    def is_executing(self, run_id: str) -> bool:
        return run_id in self._tasks or any(slot.run_id == run_id for slot in self._reserved_slots)

    # Hand-off at creation (queue/handoff.py)

    def reserve(self) -> Slot | None:
        """A free slot held for a run about to be created here, or None (no free slot, or not running)."""
        if self._loop_task is None or self._workers - len(self._tasks) - len(self._reserved_slots) <= 0:
            return None
        slot = Slot(self.owner, new_id(), self._clock.now() + self._lease)
        self._reserved_slots.add(slot)
        return slot

    def release(self, slot: Slot) -> None:
        """The run was not handed off after all (not inserted claimed, or its transaction failed)."""
        self._reserved_slots.discard(slot)
        if slot.run_id is not None:
            self.cancel_actions.pop(slot.run_id, None)
        self.wake()  # the slot may be what a pending run waited for

    def hand_off(self, slot: Slot, run: Record) -> None:
        """Execute `run`, committed claimed under `slot`'s lease. After stop() it is left alone: its lease expires
        and the reaper ends it, as for a run cut by shutdown."""
        self._reserved_slots.discard(slot)
        if self._loop_task is None:
            return
        self._start_task(run, slot.assistant)

    def interactive_elsewhere(self, peer: str, active: bool, until: datetime) -> None:
        """Another process's interactive state (see on_interactive): `active`, or idle with background work
        throttled here until `until`."""
        if active:
            self._elsewhere[peer] = None
            return
        if until > self._clock.now():
            self._elsewhere[peer] = until
        else:
            self._elsewhere.pop(peer, None)
        if not self._nothing_pending:
            self._wake.set()  # background may start sooner than the loop planned to look

    def forget_peer(self, peer: str) -> None:
        """A process that went away (an execution worker that died) throttles nothing any more."""
        if peer in self._elsewhere:
            del self._elsewhere[peer]
            if not self._nothing_pending:
                self._wake.set()

    @property
    def interactive_state(self) -> tuple[bool, datetime]:
        """This queue's own interactive state, as `on_interactive` last reported it (for a peer starting late)."""
        return bool(self._interactive), self._interactive_until

    def _interactive_elsewhere_until(self, now: datetime) -> datetime | None:
        """Until when other processes' interactive work throttles background here (datetime.max while one is
        executing an interactive run); None when it does not now. Expired lingers are dropped."""
        latest: datetime | None = None
        for peer, until in list(self._elsewhere.items()):
            if until is None:
                return datetime.max.replace(tzinfo=now.tzinfo)
            if until <= now:
                del self._elsewhere[peer]
            elif latest is None or until > latest:
                latest = until
        return latest

    def _on_runs(self, _payload: str) -> None:
        self._delayed_read_at = None  # the run created may be delayed, and due before the one known
        self.wake()

    def _on_cancel(self, payload: str) -> None:
        run_id, _, action = payload.partition(":")
        self.cancel_local(run_id, action or "interrupt")

    @property
    def _interactive(self) -> int:
        return sum(1 for p in self._priority.values() if p == 0)

    @property
    def _background(self) -> int:
        return len(self._priority) - self._interactive

    @property
    def busy_slots(self) -> int:
        return len(self._tasks)

    # Loops

    async def _run_forever(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._fill_slots()
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming runs failed; retrying in %.2fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _fill_slots(self) -> None:
        self._wake.clear()
        await self._claim()
        # Whatever was not claimable now becomes so only through an event that sets _wake (a run created or
        # finished, a cancel) or a delayed run's moment: sleep until then.
        now = self._clock.now()
        wake_at = now + SAFETY_POLL
        if now < self._interactive_until:
            wake_at = min(wake_at, self._interactive_until)  # background may go again then
        if now < self._background_not_before:
            wake_at = min(wake_at, self._background_not_before)  # or start its next run then
        if self._elsewhere:
            elsewhere = self._interactive_elsewhere_until(now)
            if elsewhere is not None:
                wake_at = min(wake_at, elsewhere)  # another process's linger ends (an end while active wakes us)
        if len(self._tasks) + len(self._reserved_slots) < self._workers:
            # Slots are free, so nothing more is claimable now: only a delayed run could be due before a wake-up.
            # (With every slot taken, a slot freeing wakes us anyway: no need to ask.)
            delayed = await self._next_delayed()
            if delayed is not None:
                wake_at = min(wake_at, delayed)
        await self._clock.sleep_until(wake_at, self._wake)

    async def _next_delayed(self) -> datetime | None:
        """When the earliest delayed run becomes claimable (None: no delayed run), read again only when the last
        read may be out of date (see _delayed)."""
        now = self._clock.now()
        known = self._delayed_read_at
        if known is None or now - known >= SAFETY_POLL or (self._delayed is not None and self._delayed <= now):
            async with self._db.read() as conn:
                self._delayed = await runs.next_available_at(conn, now)
            self._delayed_read_at = now
        return self._delayed

    async def _claim(self) -> int:
        free = self._workers - len(self._tasks) - len(self._reserved_slots)
        if free <= 0:
            self._nothing_pending = False  # not looked at
            return 0
        now = self._clock.now()
        if not self._backlog:
            self._nothing_pending = True  # unless a wake-up comes while we look
            async with self._db.read() as conn:
                if not await runs.any_claimable(conn, now):
                    return 0
            self._nothing_pending = False
        token = new_id()
        background_free = max(0, free - self._reserved)
        throttled = bool(self._interactive) or now < self._interactive_until
        if not throttled and self._elsewhere:
            throttled = self._interactive_elsewhere_until(now) is not None
        if throttled:
            background_free = min(background_free, max(0, BACKGROUND_BESIDE_INTERACTIVE - self._background))
            if now < self._background_not_before:
                background_free = 0
        # Each claim statement is atomic on its own (FOR UPDATE SKIP LOCKED on PostgreSQL), so on PostgreSQL they
        # run in autocommit: no BEGIN/COMMIT round trips around them.
        async with self._db.autocommit() as conn:
            claimed = await runs.claim_with_assistants(
                conn,
                owner=self.owner,
                token=token,
                now=now,
                lease_until=now + self._lease,
                limit=free,
                background_limit=background_free,
                dialect=self._db.dialect,
            )
        interactive = sum(1 for run, _ in claimed if run["priority"] == 0)
        rest = min(free - interactive, background_free)
        self._backlog = interactive == free or (rest > 0 and len(claimed) - interactive == rest)
        if throttled and any(run["priority"] > 0 for run, _ in claimed):
            self._background_not_before = now + BACKGROUND_SPACING
        for run, assistant in claimed:
            self._start_task(run, assistant)  # the assistant as the claim read it (PostgreSQL), else None: read then
        return len(claimed)

    def _start_task(self, run: Record, assistant: Record | None) -> None:
        task = asyncio.create_task(self._execute(run, assistant), name=f"run-{run['run_id']}")
        self._tasks[run["run_id"]] = task
        if run["priority"] == 0 and self.on_interactive is not None and not self._interactive:
            self.on_interactive(True, self._clock.now())
        self._priority[run["run_id"]] = run["priority"]

    async def _execute(self, run: Record, assistant: Record | None) -> None:
        run_id = run["run_id"]
        try:
            if run.get("cancel_action"):
                self.cancel_actions[run_id] = run["cancel_action"]
            with RunTimer():
                await self._executor.execute(run, self.cancel_actions, assistant=assistant)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("run %s: executor crashed", run_id)
        finally:
            self._tasks.pop(run_id, None)
            if self._priority.pop(run_id, None) == 0:
                self._interactive_until = self._clock.now() + INTERACTIVE_LINGER
                if self.on_interactive is not None and not self._interactive:
                    self.on_interactive(False, self._interactive_until)
            self.cancel_actions.pop(run_id, None)
            if not self._nothing_pending:
                self._wake.set()

    async def _renew_forever(self) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            if not self._tasks:
                continue
            try:
                async with self._db.write() as conn:
                    await runs.renew_many(conn, self.owner, list(self._tasks), self._clock.now() + self._lease)
                    # A CANCEL notification can be lost (a replica's listener reconnecting): the request is also
                    # in the run's row, looked at here, so a cancel is late at worst, never lost.
                    requested = await runs.cancels_requested(conn, list(self._tasks))
                for run_id, action in requested:
                    self.cancel_local(run_id, action)
            except Exception:
                log.exception("renewing leases failed")
