"""Runs routes (wire contract §3): create, stream, wait, join, cancel, list, delete."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query, Response
from starlette.responses import StreamingResponse

from crongraph import serde
from crongraph.api import views
from crongraph.api.deps import RuntimeDep
from crongraph.api.params import uuid_param
from crongraph.api.responses import JSONResponse
from crongraph.api.routing import JSONRoute
from crongraph.api.schemas import CancelMany, RunCreate
from crongraph.api.sse import HEARTBEAT, frame, sse_response, with_keepalive
from crongraph.errors import InvalidInput, NotFound
from crongraph.storage.common import Record

router = APIRouter(tags=["runs"], route_class=JSONRoute)


def _paths(run: Record, stateless: bool) -> tuple[str, str]:
    base = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return base, f"/runs/{run['run_id']}" if stateless else base


async def _create(rt: Any, thread_id: str | None, body: RunCreate) -> Record:
    tid = uuid_param(thread_id, "thread") if thread_id is not None else None
    return await rt.runs.create(tid, body.given())  # type: ignore[no-any-return]


# Background runs


@router.post("/threads/{thread_id}/runs")
async def create_run(thread_id: str, body: RunCreate, rt: RuntimeDep) -> Any:
    run = await _create(rt, thread_id, body)
    return JSONResponse(views.run(run), headers={"Content-Location": _paths(run, False)[0]})


@router.post("/runs")
async def create_stateless_run(body: RunCreate, rt: RuntimeDep) -> Any:
    run = await _create(rt, None, body)
    return JSONResponse(views.run(run), headers={"Content-Location": _paths(run, True)[0]})


@router.post("/runs/batch")
async def create_batch(bodies: list[RunCreate], rt: RuntimeDep) -> Any:
    return [views.run(await _create(rt, None, body)) for body in bodies]


# Wait and join


async def _wait_body(rt: Any, run: Record, cancel_on_disconnect: bool) -> AsyncIterator[bytes]:
    async def result() -> AsyncIterator[bytes]:
        yield serde.dumps(await rt.runs.join(run["run_id"]))

    finished = False
    try:
        async for chunk in with_keepalive(result(), rt.settings.keepalive_seconds, b"\n"):
            if chunk != b"\n":
                finished = True
            yield chunk
    finally:
        if not finished and cancel_on_disconnect:
            await rt.runs.cancel(None, [run["run_id"]], "interrupt")


def _wait_response(rt: Any, run: Record, body: RunCreate | None, stateless: bool) -> StreamingResponse:
    location, content_location = _paths(run, stateless)
    cancel = body is not None and body.on_disconnect == "cancel"
    return StreamingResponse(
        _wait_body(rt, run, cancel),
        media_type="application/json",
        headers={"Location": f"{location}/join", "Content-Location": content_location},
    )


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, rt: RuntimeDep) -> Any:
    return _wait_response(rt, await _create(rt, thread_id, body), body, False)


@router.post("/runs/wait")
async def wait_stateless_run(body: RunCreate, rt: RuntimeDep) -> Any:
    return _wait_response(rt, await _create(rt, None, body), body, True)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, rt: RuntimeDep) -> Any:
    run = await rt.runs.get(uuid_param(thread_id, "thread"), uuid_param(run_id, "run"))
    return _wait_response(rt, run, None, False)


# Streams


def _mode_of(event_name: str) -> str:
    return event_name.split("|", 1)[0].split("/", 1)[0]


async def _stream_body(
    rt: Any, run: Record, *, after: int, with_ids: bool, modes: set[str] | None, cancel_on_disconnect: bool
) -> AsyncIterator[bytes]:
    async def frames() -> AsyncIterator[bytes]:
        if run["status"] not in ("pending", "running") and not rt.broker.known(run["run_id"]):
            return
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
            with contextlib.suppress(Exception):
                await asyncio.shield(rt.runs.cancel(None, [run["run_id"]], "interrupt"))


def _stream_response(rt: Any, run: Record, body: RunCreate, stateless: bool) -> StreamingResponse:
    location, content_location = _paths(run, stateless)
    stream = _stream_body(
        rt,
        run,
        after=0,
        with_ids=bool(body.stream_resumable),
        modes=None,
        cancel_on_disconnect=body.on_disconnect == "cancel",
    )
    return sse_response(stream, {"Location": f"{location}/stream", "Content-Location": content_location})


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(thread_id: str, body: RunCreate, rt: RuntimeDep) -> Any:
    return _stream_response(rt, await _create(rt, thread_id, body), body, False)


@router.post("/runs/stream")
async def stream_stateless_run(body: RunCreate, rt: RuntimeDep) -> Any:
    return _stream_response(rt, await _create(rt, None, body), body, True)


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    rt: RuntimeDep,
    cancel_on_disconnect: bool = False,
    stream_mode: list[str] | None = Query(default=None),
    last_event_id: str | None = Header(default=None),
) -> Any:
    run = await rt.runs.get(uuid_param(thread_id, "thread"), uuid_param(run_id, "run"))
    after = 0
    if last_event_id:
        if not last_event_id.strip().isdigit():
            raise InvalidInput(f"Invalid Last-Event-ID: {last_event_id!r}")
        after = int(last_event_id)
    modes = {m for value in stream_mode or [] for m in value.split(",") if m} or None
    stream = _stream_body(rt, run, after=after, with_ids=True, modes=modes, cancel_on_disconnect=cancel_on_disconnect)
    return sse_response(stream, {"Content-Location": _paths(run, False)[0]})


# Reading, cancelling, deleting


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    rt: RuntimeDep,
    limit: int = Query(default=10, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
    status: str | None = None,
    select: list[str] | None = Query(default=None),
) -> Any:
    rows = await rt.runs.list(uuid_param(thread_id, "thread"), limit=limit, offset=offset, status=status)
    return [views.select(views.run(r), select) for r in rows]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, rt: RuntimeDep) -> Any:
    return views.run(await rt.runs.get(uuid_param(thread_id, "thread"), uuid_param(run_id, "run")))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str,
    run_id: str,
    rt: RuntimeDep,
    wait: bool = False,
    action: str = Query(default="interrupt", pattern="^(interrupt|rollback)$"),
) -> Any:
    run = await rt.runs.get(uuid_param(thread_id, "thread"), uuid_param(run_id, "run"))
    await rt.runs.cancel(run["thread_id"], [run["run_id"]], action)
    if wait:
        return _wait_response(rt, run, None, False)
    return Response(status_code=202)


@router.post("/runs/cancel", status_code=204)
async def cancel_many(
    body: CancelMany,
    rt: RuntimeDep,
    action: str = Query(default="interrupt", pattern="^(interrupt|rollback)$"),
) -> Response:
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
