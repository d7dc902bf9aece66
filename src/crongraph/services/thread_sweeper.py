"""Deletes (or prunes) threads whose time-to-live has run out: `ttl: {"ttl": minutes, "strategy": ...}` given on
create or patch, or langgraph.json's `checkpointer.ttl.default_ttl`, which ThreadService stamps on every thread
created without one (as the reference does; threads created before it was set keep what they had).

The clock starts at the thread's last update, as LangGraph Platform's does; a thread with a run in flight is left
until the run ends. `strategy: "delete"` removes the thread and its checkpoints; `"keep_latest"` keeps the thread
and its latest state and drops older checkpoints (once per update: a thread pruned and not touched since is not
pruned again). Checked every `interval` seconds (`checkpointer.ttl.sweep_interval_minutes`), at most `limit`
threads per sweep (`sweep_limit`), oldest first: deletion is not to the second, and need not be.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select

from crongraph.errors import NotFound
from crongraph.services.context import ServiceContext
from crongraph.services.threads import ThreadService
from crongraph.storage.tables import threads

log = logging.getLogger("crongraph.ttl")

# The reference's default number of threads handled per sweep.
DEFAULT_SWEEP_LIMIT = 1000
# Threads read per query of a sweep.
PAGE = 500


@dataclass(frozen=True)
class ThreadTtlOptions:
    """langgraph.json's `checkpointer.ttl`, resolved. `default`: the ttl stamped on new threads
    ({"ttl": minutes, "strategy": "delete" | "keep_latest"}) or None; `interval`: seconds between sweeps, None for
    the server's setting; `limit`: threads handled per sweep."""

    default: dict[str, Any] | None = None
    interval: float | None = None
    limit: int = DEFAULT_SWEEP_LIMIT


def thread_ttl_options(checkpointer: Any) -> ThreadTtlOptions:
    """From langgraph.json's `checkpointer` section (crongraph.config's model, a mapping, or None)."""
    section = _section(checkpointer)
    ttl = _section(section.get("ttl"))
    if not ttl:
        return ThreadTtlOptions()
    minutes = ttl.get("default_ttl")
    default = {"ttl": float(minutes), "strategy": ttl.get("strategy") or "delete"} if minutes else None
    interval = ttl.get("sweep_interval_minutes")
    return ThreadTtlOptions(
        default=default,
        interval=float(interval) * 60 if interval else None,
        limit=int(ttl.get("sweep_limit") or DEFAULT_SWEEP_LIMIT),
    )


def _section(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        return dict(value.model_dump())
    return dict(value)


class ThreadSweeper:
    def __init__(self, ctx: ServiceContext, interval: float = 60.0, limit: int = DEFAULT_SWEEP_LIMIT) -> None:
        self.ctx = ctx
        self.threads = ThreadService(ctx)
        self._interval = interval
        self._limit = limit
        self._task: asyncio.Task[None] | None = None
        # keep_latest threads already pruned, with the update they were pruned at.
        self._pruned: dict[str, datetime] = {}

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
        """Handle the threads whose ttl ran out; returns how many were deleted or pruned.

        Reads only threads with a ttl (a partial index), those the database already finds expired, in pages of
        `PAGE` oldest first, yielding the loop between pages: a sweep never holds the loop for a scan of the table."""
        now = self.ctx.clock.now()
        handled = 0
        seen: set[str] = set()
        after: tuple[datetime, str] | None = None
        while handled < self._limit:
            async with self.ctx.db.read() as conn:
                page = (await conn.execute(self._expired_query(now, after))).all()
            for row in page:
                seen.add(row.thread_id)
                if not _expired(row.ttl, row.updated_at, now) or self._pruned.get(row.thread_id) == row.updated_at:
                    continue
                if await self._handle(row):
                    handled += 1
                    if handled >= self._limit:
                        break
            if len(page) < PAGE:
                # The whole scan was read: prunes of threads that are gone or no longer expired are forgotten.
                self._pruned = {t: at for t, at in self._pruned.items() if t in seen}
                break
            after = (page[-1].updated_at, page[-1].thread_id)
            await asyncio.sleep(0)
        if handled:
            log.info("%d threads whose ttl ran out were deleted or pruned", handled)
        return handled

    def _expired_query(self, now: datetime, after: tuple[datetime, str] | None) -> Any:
        """Threads with a ttl, not busy, whose ttl the database finds run out (with a second of slack: the exact
        test is `_expired`, in Python, so that float arithmetic in SQL never decides a boundary), after `after`."""
        minutes = func.coalesce(threads.c.ttl["ttl"].as_float(), 0.0)
        if self.ctx.db.dialect == "sqlite":
            # updated_at is stored as UTC text there; julianday() reads it as days.
            moment = func.julianday(now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "))
            ran_out = func.julianday(threads.c.updated_at) + minutes / 1440.0 <= moment + 1 / 86400
        else:
            ran_out = threads.c.updated_at + literal_column("interval '1 minute'") * minutes <= now + timedelta(
                seconds=1
            )
        query = (
            select(threads.c.thread_id, threads.c.ttl, threads.c.updated_at)
            .where(threads.c.ttl.is_not(None), threads.c.status != "busy", ran_out)
            .order_by(threads.c.updated_at, threads.c.thread_id)
            .limit(PAGE)
        )
        if after is not None:
            at, thread_id = after
            query = query.where(
                or_(threads.c.updated_at > at, and_(threads.c.updated_at == at, threads.c.thread_id > thread_id))
            )
        return query

    async def _handle(self, row: Any) -> bool:
        strategy = row.ttl.get("strategy") or "delete"
        try:
            if strategy == "keep_latest":
                await self.threads.prune([row.thread_id], "keep_latest")
                self._pruned[row.thread_id] = row.updated_at
            else:
                await self.threads.delete(row.thread_id)
                self._pruned.pop(row.thread_id, None)
        except NotFound:
            return False
        return True


def _expired(ttl: Any, updated_at: datetime, now: datetime) -> bool:
    return isinstance(ttl, dict) and updated_at + timedelta(minutes=float(ttl.get("ttl", 0))) <= now
