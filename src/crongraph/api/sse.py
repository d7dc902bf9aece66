"""Server-sent events: framing, keep-alive comments, and the response with the contract's headers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from crongraph.streams.broker import Event

HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}
HEARTBEAT = b": heartbeat\r\n\r\n"


def frame(event: Event, with_id: bool) -> bytes:
    head = b"event: " + event.name.encode() + b"\r\ndata: " + event.data + b"\r\n"
    if with_id:
        head += b"id: " + str(event.id).encode() + b"\r\n"
    return head + b"\r\n"


async def with_keepalive(source: AsyncIterator[bytes], interval: float, beat: bytes) -> AsyncIterator[bytes]:
    """Pass `source` through, sending `beat` whenever it has been quiet for `interval` seconds.

    One task pumps the source into a queue; chunks already queued are passed on at once, joined, and a timer is
    armed only while the queue is empty (not once per chunk: a run's events mostly come in bursts)."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    failure: list[Exception] = []

    async def pump() -> None:
        try:
            async for chunk in source:
                queue.put_nowait(chunk)
        except Exception as exc:
            failure.append(exc)
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                chunk = queue.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    chunk = await asyncio.wait_for(queue.get(), interval)
                except TimeoutError:
                    yield beat
                    continue
            # Whatever else is already queued goes out in the same write: a run's events mostly come in bursts,
            # and each write is a packet the client must read and parse on its own.
            ended = chunk is None
            batch: list[bytes] = [] if chunk is None else [chunk]
            while not ended:
                try:
                    more = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if more is None:
                    ended = True
                else:
                    batch.append(more)
            if batch:
                yield b"".join(batch)
            if ended:
                if failure:
                    raise failure[0]
                return
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def sse_response(body: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream; charset=utf-8", headers={**HEADERS, **headers})
