"""The server's side of the execution workers: starts `count` of them, replays what each sends, restarts a dead
one.

Per worker, one pipe (a socketpair, the child's end passed as a file descriptor) and one task reading it:
- `note`: a hint (RUNS, CANCEL, THREAD_EVENTS) delivered here and relayed to the other workers;
- `start` / `event` / `close`: the worker's run events, replayed into this process's broker in order, so waiters
  and streams served here see the run as a local one. A run's end wakes this process's producer, not the other
  workers: the next run of its thread was pending already (so no producer can have concluded that nothing is
  pending), and the worker where the run ended has just freed a slot and looks at once;
- `finished`: a run's recorded outcome, given to this process's finished hooks (webhooks, metrics, cron guards),
  which live where /metrics and the webhook sender are;
- `interactive`: the worker's queue started its first or ended its last interactive run (queue/producer.py): applied
  to this process's queue and relayed to the other workers, as this process's own changes are sent to every
  worker, so that background runs are throttled in every process while a client's run executes in any of them.

A worker that dies (kill -9, a crash): the pipe closes; the runs it was executing are closed in the broker
without a record, so their waiters ask storage, where the reaper ends them `error`/`WorkerLost` once their lease
expires (their lease owner is the dead worker's, whose leases nobody renews); the worker is started again after a
backoff (0.5 s doubling to 30 s, reset once a worker has lived a minute); its interactive state is forgotten
everywhere. A worker whose server died sees its pipe close and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crongraph import notify
from crongraph.observability import metrics
from crongraph.queue.workers.channel import Channel
from crongraph.queue.workers.relay import RelayNotifier
from crongraph.queue.workers.worker import SPEC_ENV
from crongraph.settings import Settings
from crongraph.streams.broker import StreamBroker

if TYPE_CHECKING:
    from crongraph.queue.producer import RunQueue

log = logging.getLogger("crongraph.workers")

# Hints the server forwards to its workers: a run became claimable, a run should stop.
FORWARDED = frozenset({notify.RUNS, notify.CANCEL})
BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER = 0.5, 30.0, 60.0
# After `stop` is sent, how long a worker may take beyond the queue's grace before it is killed.
STOP_MARGIN = 5.0
QUEUE_GRACE = 5.0
# A worker imports the project's graphs in a fresh process before it says it is ready.
START_TIMEOUT = 60.0
DEPARTED_KEPT = 256


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    channel: Channel | None = None
    owner: str | None = None
    pid: int | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None  # reads its pipe; done once the worker is gone
    executing: dict[str, float] = field(default_factory=dict)  # run id -> when its start arrived (monotonic)
    restarts: int = 0


class WorkerSupervisor:
    def __init__(
        self,
        count: int,
        settings: Settings,
        config: Path | None,
        notifier: RelayNotifier,
        broker: StreamBroker,
        finished_hooks: list[Callable[[dict[str, Any]], None]],
        queue: RunQueue | None = None,
    ) -> None:
        self._count = count
        self._settings = settings
        self._config = config
        self._notifier = notifier
        self._broker = broker
        self._hooks = finished_hooks
        self._workers = [_Worker(i) for i in range(count)]
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # Lease owner -> the worker that held it and how it ended, for the WorkerLost error of its runs (the most
        # recent DEPARTED_KEPT; a run's lease expires seconds after its worker died).
        self._departed: dict[str, str] = {}
        # This process's queue: its interactive state goes to every worker, theirs come back to it.
        self._queue = queue
        if queue is not None:
            queue.on_interactive = self._interactive_here

    # Lifecycle

    async def start(self) -> None:
        """Start every worker and return once each is ready (or raise: a worker that cannot start, e.g. a graph
        that fails to import in a fresh process, is a startup failure)."""
        for worker in self._workers:
            await self._spawn(worker)
        for worker in self._workers:
            await self._until_ready(worker)
        self._tasks = [
            asyncio.create_task(self._keep(worker), name=f"crongraph-exec-worker-{worker.index}")
            for worker in self._workers
        ]

    async def _until_ready(self, worker: _Worker) -> None:
        assert worker.reader is not None
        ready = asyncio.ensure_future(worker.ready.wait())
        await asyncio.wait({ready, worker.reader}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if worker.ready.is_set():
            return
        if worker.process is not None and worker.process.returncode is None:
            worker.process.kill()
        code = await worker.process.wait() if worker.process is not None else None
        raise RuntimeError(f"execution worker {worker.index} did not start (exit code {code}); see its log above")

    async def stop(self) -> None:
        """Tell every worker to stop (each gives its executing runs the queue's grace) and wait for them; a worker
        that does not exit in time is killed."""
        if self._stopping:
            return
        self._stopping = True
        for worker in self._workers:
            if worker.channel is not None:
                worker.channel.send(("stop",))
        await asyncio.gather(*(self._reap_process(w) for w in self._workers))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _reap_process(self, worker: _Worker) -> None:
        process = worker.process
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), QUEUE_GRACE + STOP_MARGIN)
        except TimeoutError:
            log.warning("execution worker %s did not stop in time; killed", process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    # What /metrics reports

    @property
    def alive(self) -> int:
        return sum(1 for w in self._workers if w.ready.is_set() and w.channel is not None and not w.channel.closed)

    @property
    def busy_slots(self) -> int:
        return sum(len(w.executing) for w in self._workers)

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers, by index (the banner)."""
        return [w.pid for w in self._workers if w.pid is not None and w.channel is not None and not w.channel.closed]

    def describe_owner(self, owner: str) -> str | None:
        """Who held leases as `owner`, in words for a run's WorkerLost error (the reaper's `describe_owner`); None
        for an owner that was never one of these workers."""
        for w in self._workers:
            if w.owner == owner and w.channel is not None and not w.channel.closed:
                return f"execution worker {w.index} (pid {w.pid}), executing this run, stopped renewing its lease"
        return self._departed.get(owner)

    def _departing(self, worker: _Worker, code: int | None) -> None:
        if worker.owner is None:
            return
        if code is None:
            how = "stopped"
        elif code < 0:
            try:
                how = f"died (killed by {signal.Signals(-code).name})"
            except ValueError:
                how = f"died (killed by signal {-code})"
        else:
            how = f"exited (exit code {code})"
        self._departed[worker.owner] = (
            f"the execution worker process executing this run (worker {worker.index}, pid {worker.pid}) {how}"
        )
        while len(self._departed) > DEPARTED_KEPT:
            del self._departed[next(iter(self._departed))]

    def owners(self) -> dict[str, int]:
        """Lease owner -> pid of each live worker (tests and diagnostics)."""
        return {w.owner: w.pid for w in self._workers if w.owner is not None and w.pid is not None}

    # Workers

    async def _spawn(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair()
        spec = {
            "settings": self._settings.model_dump(mode="json"),
            "config": str(self._config) if self._config is not None else None,
        }
        env = {**os.environ, SPEC_ENV: json.dumps(spec)}
        try:
            worker.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "crongraph",
                "exec-worker",
                "--fd",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        worker.channel = await Channel.open(ours)
        worker.ready = asyncio.Event()
        worker.owner = worker.pid = None
        self._notifier.peers[worker.index] = worker.channel
        if self._queue is not None:  # a linger already over is dropped by the worker's queue
            worker.channel.send(("interactive", self._queue.owner, *self._queue.interactive_state))
        # Read from the start: the worker's first message says it is ready.
        worker.reader = asyncio.create_task(self._read(worker), name=f"crongraph-exec-worker-pipe-{worker.index}")

    async def _keep(self, worker: _Worker) -> None:
        """Wait for the worker to end; unless stopping, start it again after a backoff."""
        backoff = BACKOFF_FIRST
        while True:
            started = time.monotonic()
            if worker.reader is not None:
                await worker.reader
            process = worker.process
            code = await process.wait() if process is not None else None
            self._departing(worker, code)
            if self._stopping:
                return
            if time.monotonic() - started > STABLE_AFTER:
                backoff = BACKOFF_FIRST
            worker.restarts += 1
            log.warning(
                "execution worker %d (pid %s) exited with %s; starting it again in %.1fs",
                worker.index,
                process.pid if process is not None else "?",
                code,
                backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            if self._stopping:
                return
            try:
                await self._spawn(worker)
            except Exception:
                log.exception("execution worker %d could not be started", worker.index)

    async def _read(self, worker: _Worker) -> None:
        channel = worker.channel
        assert channel is not None
        broker, notifier = self._broker, self._notifier
        try:
            while (batch := await channel.receive()) is not None:
                for message in batch:
                    kind = message[0]
                    if kind == "event":
                        broker.publish_encoded(message[1], message[2], message[3])
                    elif kind == "start":
                        broker.start(message[1], message[2])
                        worker.executing[message[1]] = time.monotonic()
                    elif kind == "close":
                        broker.close(message[1], message[2])
                        began = worker.executing.pop(message[1], None)
                        if began is not None:
                            metrics.RUN_DURATION.observe(time.monotonic() - began)
                        # This process's producer looks too (a free slot here may take the thread's next run
                        # sooner than the worker, if that one is throttled); costs nothing while its slots are full.
                        notifier.deliver(notify.RUNS, "")
                    elif kind == "finished":
                        self._finished(message[1])
                    elif kind == "note":
                        notifier.relay(message[1], message[2], worker.index)
                    elif kind == "interactive":
                        self._interactive_in(worker, message)
                    elif kind == "ready":
                        worker.owner, worker.pid = message[1], message[2]
                        worker.ready.set()
                        log.info(
                            "execution worker %d ready (pid %s, lease owner %s)", worker.index, message[2], message[1]
                        )
        except Exception:
            log.exception("execution worker %d: reading its pipe failed", worker.index)
        finally:
            self._notifier.peers.pop(worker.index, None)
            await channel.close()
            if worker.owner is not None:
                # A worker that died in an interactive run must not throttle the others' background work for good.
                if self._queue is not None:
                    self._queue.forget_peer(worker.owner)
                for other in self._workers:
                    if other is not worker and other.channel is not None:
                        other.channel.send(("forget", worker.owner))
            lost = list(worker.executing)
            worker.executing.clear()
            # Their waiters ask storage from now on; the reaper ends the runs once their leases expire.
            for run_id in lost:
                broker.close(run_id, None)
            if lost and not self._stopping:
                log.warning(
                    "execution worker %d stopped while executing %d runs; they end WorkerLost when their lease expires",
                    worker.index,
                    len(lost),
                )

    def _interactive_here(self, active: bool, until: datetime) -> None:
        assert self._queue is not None
        message = ("interactive", self._queue.owner, active, until)
        for worker in self._workers:
            if worker.channel is not None:
                worker.channel.send(message)

    def _interactive_in(self, origin: _Worker, message: tuple[Any, ...]) -> None:
        _kind, owner, active, until = message
        if self._queue is not None:
            self._queue.interactive_elsewhere(owner, active, until)
        for worker in self._workers:
            if worker is not origin and worker.channel is not None:
                worker.channel.send(message)

    def _finished(self, record: dict[str, Any]) -> None:
        for hook in self._hooks:
            try:
                hook(record)
            except Exception:
                log.exception("run %s: a finished hook failed", record.get("run_id"))
