"""Deletes threads whose time-to-live has run out (`ttl: {"ttl": minutes, "strategy": "delete"}` on create or
patch). The clock starts at the thread's last update, as LangGraph Platform's does; a thread with a run in flight
is left until the run ends. Checked every `interval` seconds: deletion is not to the second, and need not be."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select

from crongraph.errors import NotFound
from crongraph.services.context import ServiceContext
from crongraph.services.threads import ThreadService
from crongraph.storage.tables import threads

log = logging.getLogger("crongraph.ttl")


class ThreadSweeper:
    def __init__(self, ctx: ServiceContext, interval: float = 60.0) -> None:
        self.ctx = ctx
        self.threads = ThreadService(ctx)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run_forever(), name="crongraph-thread-ttl")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sweeping expired threads failed")
            await asyncio.sleep(self._interval)

    async def sweep(self) -> int:
        now = self.ctx.clock.now()
        query = select(threads.c.thread_id, threads.c.ttl, threads.c.updated_at, threads.c.status).where(
            threads.c.ttl.is_not(None)
        )
        async with self.ctx.db.read() as conn:
            candidates = (await conn.execute(query)).all()
        expired = [
            row.thread_id
            for row in candidates
            if isinstance(row.ttl, dict)
            and row.status != "busy"
            and row.updated_at + timedelta(minutes=float(row.ttl.get("ttl", 0))) <= now
        ]
        for thread_id in expired:
            try:
                await self.threads.delete(thread_id)
            except NotFound:
                pass
        if expired:
            log.info("deleted %d threads whose ttl ran out", len(expired))
        return len(expired)
