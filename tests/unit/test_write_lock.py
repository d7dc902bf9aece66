"""queue/workers/write_lock.py: the flock shared by the server and its execution workers. Each ProcessWriteLock
opens the file itself, and flock locks belong to an open file, so two of them conflict as two processes would."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path

from crongraph.queue.workers.write_lock import ProcessWriteLock


async def until_contended(lock: ProcessWriteLock) -> None:
    while not lock.contended:
        await asyncio.sleep(0.005)


async def test_a_waiter_gets_the_lock_when_its_holder_releases_it(tmp_path: Path) -> None:
    holder, waiter = ProcessWriteLock(tmp_path / "w.lock"), ProcessWriteLock(tmp_path / "w.lock")
    await holder.acquire()
    assert holder.contended == 0
    waiting = asyncio.create_task(waiter.acquire())
    await asyncio.wait_for(until_contended(waiter), 10)
    assert not waiting.done()
    holder.release()
    await asyncio.wait_for(waiting, 10)
    waiter.release()
    for lock in (holder, waiter):
        lock.close()


async def test_a_cancelled_waiter_does_not_keep_the_lock(tmp_path: Path) -> None:
    """The waiter's thread may take the lock after its task was cancelled: it must be given back at once."""
    holder, cancelled = (ProcessWriteLock(tmp_path / "w.lock") for _ in range(2))
    await holder.acquire()
    waiting = asyncio.create_task(cancelled.acquire())
    await asyncio.wait_for(until_contended(cancelled), 10)
    waiting.cancel()
    holder.release()
    # The cancelled waiter's thread takes the lock once it is free; then it must be released at once.
    assert cancelled.waiting is not None
    await asyncio.wait_for(cancelled.waiting, 10)
    # Another process (another open file) gets it: tried without blocking, so a lock kept forever fails the test.
    other = os.open(tmp_path / "w.lock", os.O_RDWR)
    deadline = time.monotonic() + 10
    while True:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            assert time.monotonic() < deadline, "the cancelled waiter kept the lock"
            await asyncio.sleep(0.01)
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)
    for lock in (holder, cancelled):
        lock.close()
