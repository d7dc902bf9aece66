"""Runs routes (wire contract §3): create, stream, wait, join, cancel, list, delete; and the thread stream (§4).

Headers: Content-Location is always the run's URL under its thread (the SDK reads the thread and run ids from
it); Location is where a client reconnects: the join URL for wait, the join-stream URL for streams (a stateless
stream's is `/runs/{run_id}/stream`, which crongraph also answers). Wait and join send a newline every
keep-alive interval until the JSON is ready; streams send an SSE comment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Header, Query, Response
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from crongraph import serde, views
from crongraph.api import limits
from crongraph.api.deps import RuntimeDep
from crongraph.api.params import uuid_param
from crongraph.api.responses import JSONResponse
from crongraph.api.routing import JSONRoute
from crongraph.api.schemas import CancelMany, RunCreate, RunSelectField, RunStatus
from crongraph.api.sse import HEARTBEAT, frame, sse_response, with_keepalive
from crongraph.errors import InvalidInput, NotFound
from crongraph.storage.common import Record

router = APIRouter(tags=["runs"], route_class=JSONRoute)

CancelAction = Literal["interrupt", "rollback"]


def _run_url(run: Record) -> str:
    return f"/threads/{run['thread_id']}/runs/{run['run_id']}"


async def _create(rt: Any, thread_id: str | None, body: RunCreate) -> Record:
    tid = uuid_param(thread_id, "thread") if thread_id is not None else None
    return await rt.runs.create(tid, body.given())  # type: ignore[no-any-return]


async def _cancel_quietly(rt: Any, run_id: str) -> None:
    """Cancel a run whose client went away; shielded, because the request's own task is being cancelled."""
    with contextlib.suppress(Exception):
        await asyncio.shield(rt.runs.cancel(None, [run_id], "interrupt"))


# Background runs


@router.post("/threads/{thread_id}/runs")
async def create_run(thread_id: str, body: RunCreate, rt: RuntimeDep) -> Any:
    run = await _create(rt, thread_id, body)
    return JSONResponse(views.run(run), headers={"Content-Location": _run_url(run)})


@router.post("/runs")
async def create_stateless_run(body: RunCreate, rt: RuntimeDep) -> Any:
    run = await _create(rt, None, body)
    return JSONResponse(views.run(run), headers={"Content-Location": _run_url(run)})


@router.post("/runs/batch")
async def create_batch(bodies: list[RunCreate], rt: RuntimeDep) -> Any:
    return [views.run(run) for run in await rt.runs.create_batch([body.given() for body in bodies])]


# Wait and join

_BEAT = b"\n"  # a wait's keep-alive: JSON parsers skip leading whitespace


class _WaitResponse(Response):
    """A wait or join answer: the headers at once (the SDK reconnects to Location if the body is cut off), a newline
    every keep-alive interval while the run goes on, then its JSON, which also ends the body (one write where
    Starlette would make a second, empty one: on loopback each write is a packet the server pays for).

    Its own ASGI call rather than a StreamingResponse: the run's end is waited for directly (one task) beside the
    client's disconnect (one task), where a StreamingResponse over `with_keepalive` took an anyio task group, a
    pump task, a queue and a `wait_for` task per wait, each a loop turn on the run's way out. A client that goes
    away ends the wait (and cancels the run when it asked for `on_disconnect=cancel`)."""

    media_type = "application/json"

    def __init__(self, rt: Any, run: Record, cancel_on_disconnect: bool) -> None:
        url = _run_url(run)
        self.status_code = 200
        self.background = None
        self._rt = rt
        self._run_id: str = run["run_id"]
        self._cancel_on_disconnect = cancel_on_disconnect
        self.init_headers({"Location": f"{url}/join", "Content-Location": url})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt, run_id = self._rt, self._run_id
        outcome = asyncio.ensure_future(rt.runs.join(run_id))
        gone = asyncio.ensure_future(_disconnected(receive))
        finished = False
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            while True:
                await asyncio.wait((outcome, gone), timeout=rt.settings.keepalive_seconds, return_when=_FIRST)
                if outcome.done():
                    body = serde.dumps(outcome.result())
                    # Once the outcome is out there is nothing to cancel, whatever happens to the connection.
                    finished = True
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                    return
                if gone.done():
                    return
                await send({"type": "http.response.body", "body": _BEAT, "more_body": True})
        finally:
            outcome.cancel()
            gone.cancel()
            if not finished and self._cancel_on_disconnect:
                await _cancel_quietly(rt, run_id)


_FIRST = asyncio.FIRST_COMPLETED


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone (the request's body was read before the handler ran)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _wait_response(rt: Any, run: Record, cancel_on_disconnect: bool = False) -> Response:
    return _WaitResponse(rt, run, cancel_on_disconnect)


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, rt: RuntimeDep) -> Any:
    return _wait_response(rt, await _create(rt, thread_id, body), body.on_disconnect == "cancel")


@router.post("/runs/wait")
async def wait_stateless_run(body: RunCreate, rt: RuntimeDep) -> Any:
    return _wait_response(rt, await _create(rt, None, body), body.on_disconnect == "cancel")


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, rt: RuntimeDep) -> Any:
    run = await rt.runs.get(uuid_param(thread_id, "thread"), uuid_param(run_id, "run"), ended_too=True)
    return _wait_response(rt, run)


# Streams


def _mode_of(event_name: str) -> str:
    return event_name.split("|", 1)[0].split("/", 1)[0]


def _last_event_id(value: str | None) -> int | None:
    if not value:
        return None
    text = value.strip()
    # ASCII digits that fit 64 bits (str.isdigit also accepts '²', which int() refuses; ids reach SQL).
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise InvalidInput(f"Invalid Last-Event-ID: {value[:40]!r}; expected the id of an event of this stream")
    return int(text)


async def _stream_body(
    rt: Any, run: Record, *, after: int, with_ids: bool, modes: set[str] | None, cancel_on_disconnect: bool
) -> AsyncIterator[bytes]:
    async def frames() -> AsyncIterator[bytes]:
        if run["status"] not in ("pending", "running") and not rt.broker.known(run["run_id"]):
            return  # ended long ago: its events are gone, and the SDK reads the outcome from the run
        async for event in rt.runs.events(run["run_id"], after):
            if modes and event.name not in ("metadata", "error") and _mode_of(event.name) not in modes:
                continue
            yield frame(event, with_ids)

    finished = False
    try:
        async for chunk in with_keepalive(frames(), rt.settings.keepalive_seconds, HEARTBEAT):
            yield chunk
        finished = True
    finally:
        if not finished and cancel_on_disconnect:
            await _cancel_quietly(rt, run["run_id"])


def _stream_response(rt: Any, run: Record, body: RunCreate, stateless: bool) -> StreamingResponse:
    url = _run_url(run)
    location = f"/runs/{run['run_id']}/stream" if stateless else f"{url}/stream"
    stream = _stream_body(
        rt,
        run,
        after=0,
        with_ids=bool(body.stream_resumable),
        modes=None,
        cancel_on_disconnect=body.on_disconnect == "cancel",
    )
    return sse_response(stream, {"Location": location, "Content-Location": url})


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(thread_id: str, body: RunCreate, rt: RuntimeDep) -> Any:
    return _stream_response(rt, await _create(rt, thread_id, body), body, False)


@router.post("/runs/stream")
async def stream_stateless_run(body: RunCreate, rt: RuntimeDep) -> Any:
    return _stream_response(rt, await _create(rt, None, body), body, True)


def _join_stream_response(
    rt: Any, run: Record, cancel_on_disconnect: bool, stream_mode: list[str] | None, last_event_id: str | None
) -> StreamingResponse:
    modes = {m for value in stream_mode or [] for m in value.split(",") if m}
    # A messages-tuple run's events are named `messages`.
    modes = {"messages" if m == "messages-tuple" else m for m in modes}
    stream = _stream_body(
        rt,
        run,
        after=_last_event_id(last_event_id) or 0,
        with_ids=True,
        modes=modes or None,
        cancel_on_disconnect=cancel_on_disconnect,
    )
    return sse_response(stream, {"Content-Location": _run_url(run)})


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    rt: RuntimeDep,
    cancel_on_disconnect: bool = False,
    stream_mode: list[str] | None = Query(default=None),
    last_event_id: str | None = Header(default=None),
) -> Any:
    run = await rt.runs.get(uuid_param(thread_id, "thread"), uuid_param(run_id, "run"), ended_too=True)
    return _join_stream_response(rt, run, cancel_on_disconnect, stream_mode, last_event_id)


@router.get("/runs/{run_id}/stream")
async def join_stateless_stream(
    run_id: str,
    rt: RuntimeDep,
    cancel_on_disconnect: bool = False,
    stream_mode: list[str] | None = Query(default=None),
    last_event_id: str | None = Header(default=None),
) -> Any:
    """Extension: the Location of a stateless stream, so that the SDK can reconnect to it."""
    run = await rt.runs.get(None, uuid_param(run_id, "run"), ended_too=True)
    return _join_stream_response(rt, run, cancel_on_disconnect, stream_mode, last_event_id)


@router.get("/threads/{thread_id}/stream")
async def join_thread_stream(
    thread_id: str,
    rt: RuntimeDep,
    stream_mode: list[str] | None = Query(default=None),
    last_event_id: str | None = Header(default=None),
) -> Any:
    """The events of the thread's runs as they happen, each run followed by `metadata` {status: run_done}; with
    Last-Event-ID, first those after it that are still kept. The stream stays open until the client leaves.
    `stream_mode` (run_modes, lifecycle, state_update) is accepted and, as in the reference, not applied."""
    tid = uuid_param(thread_id, "thread")
    await rt.threads.get(tid)
    after = _last_event_id(last_event_id)

    async def frames() -> AsyncIterator[bytes]:
        async for event in rt.broker.subscribe_thread(tid, after):
            yield frame(event, True)

    return sse_response(with_keepalive(frames(), rt.settings.keepalive_seconds, HEARTBEAT), {})


# Reading, cancelling, deleting


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    rt: RuntimeDep,
    limit: int = Query(default=10, ge=1, le=limits.MAX_LIMIT),
    offset: int = Query(default=0, ge=0, le=limits.MAX_OFFSET),
    status: RunStatus | None = None,
    select: list[RunSelectField] | None = Query(default=None),
) -> Any:
    rows = await rt.runs.list(uuid_param(thread_id, "thread"), limit=limit, offset=offset, status=status)
    return [views.select(views.run(r), list(select) if select else None) for r in rows]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, rt: RuntimeDep) -> Any:
    return views.run(await rt.runs.get(uuid_param(thread_id, "thread"), uuid_param(run_id, "run")))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str, run_id: str, rt: RuntimeDep, wait: bool = False, action: CancelAction = "interrupt"
) -> Any:
    run = await rt.runs.get(uuid_param(thread_id, "thread"), uuid_param(run_id, "run"))
    await rt.runs.cancel(run["thread_id"], [run["run_id"]], action)
    if wait:
        return _wait_response(rt, run)
    return Response(status_code=202)


@router.post("/runs/cancel", status_code=204)
async def cancel_many(body: CancelMany, rt: RuntimeDep, action: CancelAction = "interrupt") -> Response:
    if body.status is not None:
        if body.thread_id or body.run_ids:
            raise InvalidInput("Cannot specify status together with thread_id or run_ids")
        count = await rt.runs.cancel_by_status(body.status, action)
    else:
        if not body.run_ids and not body.thread_id:
            raise InvalidInput("Give run_ids (with thread_id), thread_id, or status")
        thread_id = uuid_param(body.thread_id, "thread") if body.thread_id else None
        run_ids = [uuid_param(r, "run") for r in body.run_ids] if body.run_ids else None
        count = len(await rt.runs.cancel(thread_id, run_ids, action))
    if count == 0:
        raise NotFound("No runs found to cancel.")
    return Response(status_code=204)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(thread_id: str, run_id: str, rt: RuntimeDep) -> Response:
    await rt.runs.delete(uuid_param(thread_id, "thread"), uuid_param(run_id, "run"))
    return Response(status_code=204)
