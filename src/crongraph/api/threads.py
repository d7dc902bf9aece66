"""Threads and thread state routes (wire contract §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from crongraph import views
from crongraph.api.deps import RuntimeDep
from crongraph.api.errors import detail
from crongraph.api.params import pagination_headers, uuid_param
from crongraph.api.responses import JSONResponse
from crongraph.api.routing import JSONRoute
from crongraph.api.schemas import (
    HistoryQuery,
    Json,
    StateAtCheckpoint,
    StateUpdate,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
)
from crongraph.graphs.thread_storage import StorageNotReported, thread_storage
from crongraph.services.snapshots import check_state_select, extract, parse_path, select_state

router = APIRouter(tags=["threads"], route_class=JSONRoute)


def _with_ttl(data: Json, body: ThreadCreate | ThreadPatch) -> Json:
    # Stored as the reference shows it: {"ttl": minutes, "strategy": "delete"}, with the default filled in.
    if body.ttl is not None:
        data["ttl"] = body.ttl.model_dump(mode="json")
    return data


@router.post("/threads")
async def create_thread(body: ThreadCreate, rt: RuntimeDep) -> Any:
    data = _with_ttl(body.given(), body)
    if data.get("thread_id"):
        data["thread_id"] = uuid_param(data["thread_id"], "thread")
    return views.thread(await rt.threads.create(data))


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, rt: RuntimeDep) -> Any:
    data = body.given()
    if data.get("ids"):
        data["ids"] = [uuid_param(i, "thread") for i in data["ids"]]
    paths = {alias: parse_path(path) for alias, path in (body.extract or {}).items()}
    rows = await rt.threads.search(data)
    fields = list(body.select) if body.select else None
    items = []
    for row in rows[: body.limit]:
        thread = views.thread(row)
        item = views.select(thread, fields)
        if paths:
            item["extracted"] = {alias: extract(thread, steps) for alias, steps in paths.items()}
        items.append(item)
    return JSONResponse(items, headers=pagination_headers(body.offset, body.limit, len(rows)))


@router.post("/threads/count")
async def count_threads(body: ThreadCount, rt: RuntimeDep) -> int:
    return await rt.threads.count(body.given())


@router.post("/threads/prune")
async def prune_threads(body: ThreadPrune, rt: RuntimeDep) -> Any:
    ids = [uuid_param(i, "thread") for i in body.thread_ids]
    return {"pruned_count": await rt.threads.prune(ids, body.strategy)}


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, rt: RuntimeDep, include: str | None = None) -> Any:
    return views.thread(await rt.threads.get(uuid_param(thread_id, "thread")))


@router.patch("/threads/{thread_id}")
async def patch_thread(
    thread_id: str, body: ThreadPatch, rt: RuntimeDep, prefer: str | None = Header(default=None)
) -> Any:
    row = await rt.threads.update(uuid_param(thread_id, "thread"), _with_ttl(body.given(), body))
    if prefer and "return=minimal" in prefer:
        return Response(status_code=204)
    return views.thread(row)


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(thread_id: str, rt: RuntimeDep) -> Response:
    await rt.threads.delete(uuid_param(thread_id, "thread"))
    return Response(status_code=204)


@router.post("/threads/{thread_id}/copy")
async def copy_thread(thread_id: str, rt: RuntimeDep) -> Any:
    return views.thread(await rt.threads.copy(uuid_param(thread_id, "thread")))


SelectParam = Annotated[list[str] | None, Query(description="ThreadState keys, or values.<key> for one state key")]


@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: str, rt: RuntimeDep, subgraphs: bool = False, select: SelectParam = None) -> Any:
    check_state_select(select)
    state = await rt.threads.get_state(uuid_param(thread_id, "thread"), subgraphs=subgraphs)
    return select_state(state, select)


@router.post("/threads/{thread_id}/state")
async def update_state(thread_id: str, body: StateUpdate, rt: RuntimeDep) -> Any:
    return await rt.threads.update_state(uuid_param(thread_id, "thread"), body.given())


@router.post("/threads/{thread_id}/state/checkpoint")
async def get_state_at_checkpoint(thread_id: str, body: StateAtCheckpoint, rt: RuntimeDep) -> Any:
    check_state_select(body.select)
    state = await rt.threads.get_state(
        uuid_param(thread_id, "thread"), body.checkpoint.given(), subgraphs=body.subgraphs
    )
    return select_state(state, body.select)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_by_id(
    thread_id: str,
    checkpoint_id: str,
    rt: RuntimeDep,
    subgraphs: bool = False,
    select: SelectParam = None,
) -> Any:
    check_state_select(select)
    tid = uuid_param(thread_id, "thread")
    state = await rt.threads.get_state(
        tid, {"checkpoint_id": uuid_param(checkpoint_id, "checkpoint")}, subgraphs=subgraphs
    )
    return select_state(state, select)


@router.post("/threads/{thread_id}/history")
async def post_history(thread_id: str, body: HistoryQuery, rt: RuntimeDep) -> Any:
    check_state_select(body.select)
    data = body.given()
    data.setdefault("limit", body.limit)
    states = await rt.threads.history(uuid_param(thread_id, "thread"), data)
    return [select_state(state, body.select) for state in states]


@router.get("/threads/{thread_id}/history")
async def get_history(
    thread_id: str, rt: RuntimeDep, limit: int = Query(default=10, ge=1, le=1000), before: str | None = None
) -> Any:
    return await rt.threads.history(uuid_param(thread_id, "thread"), {"limit": limit, "before": before})


@router.get("/threads/{thread_id}/storage")
async def get_thread_storage(thread_id: str, rt: RuntimeDep) -> Any:
    """Bytes the thread's checkpoints occupy, as stored: {thread_id, total_bytes, checkpoints: {count, bytes},
    channel_values: {count, bytes, by_channel: {name: {versions, bytes}}}, pending_writes: {count, bytes}}
    (graphs/thread_storage.py says how each backend counts). 404 for an unknown thread."""
    tid = uuid_param(thread_id, "thread")
    await rt.threads.get(tid)
    try:
        usage = await thread_storage(rt.ctx.persistence.checkpointer, tid)
    except StorageNotReported:
        return detail(501, "Checkpoint storage is only reported for the built-in checkpointer.")
    return {"thread_id": tid, **usage}
