"""The PostgreSQL notifier: wake-up hints between replicas over LISTEN/NOTIFY.

One dedicated connection LISTENs on every channel of the closed set and fans each notification out to this
process's listeners; a second connection sends. Sending never blocks a caller on the network: `notify()` puts the
hint in an outbox and one sender task flushes whatever has accumulated in a single statement, so a scheduler
creating thousands of runs pays one round trip per batch, not per run. Hints from this process reach its own
listeners through the database too (a replica is just one of the listeners).

Notifications are hints and this module treats them so: when the listening connection is lost it reconnects with
backoff and then wakes every listener with an empty payload, because hints sent meanwhile are gone and each
consumer must look at storage again; when sending fails the hints are delivered locally and dropped, since the
other replicas' safety polls find the work anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import psycopg

from crongraph import notify
from crongraph.notify import Listener

log = logging.getLogger("crongraph.notify")

# Dead peers are noticed by TCP keepalives rather than hanging forever on a half-open socket.
_CONNECT_OPTIONS = {"autocommit": True, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3}
_SEND = "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS hint(c, p)"
MAX_BACKOFF = 5.0


def libpq_url(url: str) -> str:
    """SQLAlchemy's postgresql+psycopg:// form → the postgresql:// form libpq understands."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


# Channels whose listeners act on the hint alone, never on its payload (the producer looks at storage for whatever
# is claimable): one hint of a flush says as much as many, and each costs the database a queue entry to write and
# every listening backend one to read.
_ANY_PAYLOAD = frozenset({notify.RUNS})


def _collapsed(outbox: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The hints worth sending: identical ones once, and of a channel in _ANY_PAYLOAD only the last."""
    last = {channel: payload for channel, payload in outbox if channel in _ANY_PAYLOAD}
    kept = [(c, p) for c, p in outbox if c not in _ANY_PAYLOAD] + list(last.items())
    return list(dict.fromkeys(kept))


class PostgresNotifier:
    def __init__(self, url: str, channels: tuple[str, ...] = notify.CHANNELS) -> None:
        self._url = libpq_url(url)
        self._channels = channels
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._outbox: list[tuple[str, str]] = []
        self._outbox_ready = asyncio.Event()
        self._listen_conn: psycopg.AsyncConnection[object] | None = None
        self._send_conn: psycopg.AsyncConnection[object] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.reconnects = 0

    # Lifecycle

    async def start(self) -> None:
        """Returns once LISTEN is in effect, so every hint sent after start() is seen here."""
        if self._tasks:
            return
        self._listen_conn = await self._listen_connection()
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="crongraph-notify-listen"),
            asyncio.create_task(self._send_forever(), name="crongraph-notify-send"),
        ]

    async def stop(self) -> None:
        if not self._tasks:
            return
        if self._outbox:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flush(), timeout=2.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for conn in (self._listen_conn, self._send_conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._listen_conn = self._send_conn = None

    # The Notifier protocol

    def listen(self, channel: str, listener: Listener) -> None:
        if channel not in self._channels:
            raise ValueError(f"unknown notification channel {channel!r}; channels are {', '.join(self._channels)}")
        self._listeners[channel].append(listener)

    async def notify(self, channel: str, payload: str) -> None:
        self._outbox.append((channel, payload))
        self._outbox_ready.set()

    # Receiving

    async def _listen_connection(self) -> psycopg.AsyncConnection[object]:
        conn = await psycopg.AsyncConnection.connect(self._url, **_CONNECT_OPTIONS)  # type: ignore[arg-type]
        for channel in self._channels:
            await conn.execute(f'LISTEN "{channel}"')
        return conn

    async def _listen_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                if self._listen_conn is None:
                    self._listen_conn = await self._listen_connection()
                    self.reconnects += 1
                    log.info("notifications: listening again after a lost connection")
                    for channel in self._channels:
                        self._deliver(channel, "")
                backoff = 0.1
                async for note in self._listen_conn.notifies():
                    self._deliver(note.channel, note.payload)
                raise psycopg.OperationalError("the listening connection ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notifications: listening failed (%s); reconnecting in %.1fs", exc, backoff)
                await self._discard(self._listen_conn)
                self._listen_conn = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _deliver(self, channel: str, payload: str) -> None:
        for listener in self._listeners.get(channel, ()):
            try:
                listener(payload)
            except Exception:
                log.exception("notifications: a listener on %s failed", channel)

    # Sending

    async def _send_forever(self) -> None:
        backoff = 0.1
        while True:
            await self._outbox_ready.wait()
            try:
                await self._flush()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notifications: sending failed (%s); retrying the connection in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _flush(self) -> None:
        self._outbox_ready.clear()
        batch = _collapsed(self._outbox)
        self._outbox = []
        if not batch:
            return
        try:
            if self._send_conn is None or self._send_conn.closed:
                self._send_conn = await psycopg.AsyncConnection.connect(self._url, **_CONNECT_OPTIONS)  # type: ignore[arg-type]
            await self._send_conn.execute(_SEND, ([c for c, _ in batch], [p for _, p in batch]))
        except BaseException:
            await self._discard(self._send_conn)
            self._send_conn = None
            # This process at least still hears its own hints; other replicas fall back on their polls.
            for channel, payload in batch:
                self._deliver(channel, payload)
            raise

    @staticmethod
    async def _discard(conn: psycopg.AsyncConnection[object] | None) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
