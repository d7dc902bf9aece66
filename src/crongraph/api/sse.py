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
    """Pass `source` through, sending `beat` whenever it has been quiet for `interval` seconds."""
    iterator = source.__aiter__()
    pending: asyncio.Task[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield beat
                continue
            pending = None
            try:
                chunk = done.pop().result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def sse_response(body: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream; charset=utf-8", headers={**HEADERS, **headers})
