"""One writer at a time across the server and its execution workers, without SQLite's sleeping busy handler.

SQLite lets one connection write at a time; a process that finds the lock taken retries from its busy handler,
which sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries, inline: on the event loop of the process that wanted to
write, which serves nothing meanwhile, and which goes on sleeping after the lock was released. With the server and
its workers writing the same database several hundred times a second, those sleeps add up to whole milliseconds a
run and make the drain rate jump from one run to the next.

`ProcessWriteLock` is taken around every write transaction of the crongraph database (`Database(writer_guard=…)`),
before SQLite's own lock: an exclusive `flock` on a file beside the database. Uncontended it is one system call;
contended, the wait happens in a thread, so this process's loop keeps serving, and the kernel hands the lock over
the moment its holder releases it. Within a process the database's asyncio lock already admits one transaction
at a time, so the flock only arbitrates between processes. SQLite's busy timeout stays as the backstop for any
writer that does not take it.

Invariant: a lock acquired is released exactly once, also when the task waiting for it was cancelled while its
thread was still blocked in `flock` (the thread's late success then releases at once).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from crongraph.settings import Settings


class ProcessWriteLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # Times the lock was held by another process when this one wanted it (diagnostics).
        self.contended = 0
        # The thread waiting for the lock, if one is (or was last): tests wait for it to finish.
        self.waiting: asyncio.Future[None] | None = None

    async def acquire(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        self.contended += 1
        waiting = self.waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, self._fd, fcntl.LOCK_EX)
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread may still get the lock after we stopped waiting: give it back as soon as it does.
            waiting.add_done_callback(self._release_if_taken)
            raise

    def _release_if_taken(self, waiting: asyncio.Future[None]) -> None:
        if not waiting.cancelled() and waiting.exception() is None:
            self.release()

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


LOCK_FILE = "crongraph-write.lock"


def for_settings(settings: Settings) -> ProcessWriteLock | None:
    """The lock the server and its execution workers share (in the data folder), or None when there are no
    execution workers (one process: the database's asyncio lock is enough) or the database is PostgreSQL."""
    if not settings.exec_workers or settings.is_postgres:
        return None
    return ProcessWriteLock(settings.data_dir / LOCK_FILE)
