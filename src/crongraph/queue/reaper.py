"""The reaper: ends runs whose worker died, so that no run stays `running` forever.

A run whose lease expired (its worker stopped renewing it) is ended `error` with `WorkerLost`, fenced on the lease
token it was found with. crongraph does not re-execute such a run: the graph may already have had side effects
(called a model, sent a message), so running it again is the user's decision, made visible rather than taken
silently. Pending runs are untouched and run as usual. In the embedded mode one process owns the database, so at
start every `running` run is from a previous life of this server and is ended at once. A worker renews only the
leases of runs it is still executing, so a run of this very process whose execution ended without its outcome
being written (a database error at the end) is reaped too, once its lease runs out.

The error says who was executing the run when that is known (`describe_owner`: an execution worker process that
died, with its pid), else that the server executing it stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from crongraph.clock import Clock
from crongraph.storage import runs, threads
from crongraph.storage.common import Record
from crongraph.storage.database import Database

log = logging.getLogger("crongraph.reaper")


class Reaper:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        lease_seconds: float,
        owner: str,
        embedded: bool,
        executing: Callable[[str], bool] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._interval = lease_seconds / 2
        self._owner = owner
        self._embedded = embedded
        # Whether this process is executing a run right now (its lease may merely be late being renewed). Without
        # it, every run leased by this process's worker is left alone.
        self._executing = executing
        self._task: asyncio.Task[None] | None = None
        # Called with the record of each run it ended, like Executor.finished_hooks (webhooks).
        self.finished_hooks: list[Callable[[Record], None]] = []
        # Lease owner -> who that was, in words ("execution worker 0 (pid 4242), which died (signal 9)"), or None
        # for an owner it does not know (a previous life of the server, another replica).
        self.describe_owner: Callable[[str], str | None] | None = None

    async def start(self) -> None:
        if self._task is not None:
            return
        if self._embedded:
            await self.reap(everything=True)
        self._task = asyncio.create_task(self._run_forever(), name="crongraph-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.reap()
            except Exception:
                log.exception("reaping expired leases failed")

    def _ours_and_alive(self, run: Record) -> bool:
        if run["lease_owner"] != self._owner:
            return False
        return self._executing is None or self._executing(run["run_id"])

    async def reap(self, *, everything: bool = False) -> int:
        now = self._clock.now()
        horizon = now + timedelta(days=36500) if everything else now
        async with self._db.read() as conn:
            lost = [r for r in await runs.expired_leases(conn, horizon) if not self._ours_and_alive(r)]
        ended = 0
        for run in lost:
            who = self.describe_owner(run["lease_owner"]) if self.describe_owner is not None else None
            error = {
                "error": "WorkerLost",
                "message": f"{who or 'the server executing this run stopped'} before it finished; it was not retried",
            }
            async with self._db.write() as conn:
                if not await runs.end_abandoned(conn, run["run_id"], run["lease_token"], error, now):
                    continue
                remaining = await runs.has_inflight(conn, run["thread_id"])
                await threads.update_fields(
                    conn,
                    run["thread_id"],
                    status="busy" if remaining else "error",
                    error=error,
                    updated_at=now,
                )
            ended += 1
            log.warning("run %s ended: %s", run["run_id"], who or f"its worker {run['lease_owner']} is gone")
            final = {**run, "status": "error", "error": error, "ended_at": now, "updated_at": now}
            for hook in self.finished_hooks:
                try:
                    hook(final)
                except Exception:
                    log.exception("run %s: a finished hook failed", run["run_id"])
        return ended
