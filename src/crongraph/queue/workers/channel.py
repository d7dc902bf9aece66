"""The pipe between the server and one execution worker: a stream socket carrying frames, each a 4-byte
big-endian length and a pickled list of messages (tuples whose first item names the message).

Both ends are crongraph processes of one installation started by the server itself, so pickle (which keeps
datetimes and other types of a run's record as they are) is safe here. Messages sent in one loop iteration go in
one frame: a run's start, events and end cost a few system calls, not one each. Order is kept: messages are
received in the order they were sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import socket
import struct
from typing import Any

log = logging.getLogger("crongraph.workers")

_HEADER = struct.Struct("!I")

Message = tuple[Any, ...]


class Channel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._outbox: list[Message] = []
        self._flush_handle: asyncio.Handle | None = None

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    @property
    def closed(self) -> bool:
        return self._writer.is_closing()

    def send(self, message: Message) -> None:
        """Queue a message; it is written at the end of this loop iteration with the others sent meanwhile.
        Dropped when the other end is gone (it learns nothing more from this process anyway)."""
        if self.closed:
            return
        self._outbox.append(message)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        batch, self._outbox = self._outbox, []
        if not batch or self.closed:
            return
        try:
            data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            # One message that cannot be pickled must not take the others with it.
            kept = []
            for message in batch:
                try:
                    pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                    kept.append(message)
                except Exception:
                    log.exception("a %r message could not be sent to the other process", message[0])
            data = pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_HEADER.pack(len(data)) + data)

    async def drain(self) -> None:
        """Write what is queued and wait until the socket took it (errors ignored: the other end may be gone)."""
        with contextlib.suppress(Exception):
            self._flush()
            await self._writer.drain()

    async def receive(self) -> list[Message] | None:
        """The next frame's messages; None once the other end closed the pipe (or died)."""
        try:
            head = await self._reader.readexactly(_HEADER.size)
            body = await self._reader.readexactly(_HEADER.unpack(head)[0])
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return None
        messages: list[Message] = pickle.loads(body)
        return messages

    async def close(self) -> None:
        await self.drain()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
