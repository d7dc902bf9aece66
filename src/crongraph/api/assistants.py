"""Assistants routes (wire contract §5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from crongraph import views
from crongraph.api.deps import RuntimeDep
from crongraph.api.params import pagination_headers, uuid_param
from crongraph.api.responses import JSONResponse
from crongraph.api.routing import JSONRoute
from crongraph.api.schemas import (
    AssistantCount,
    AssistantCreate,
    AssistantPatch,
    AssistantSearch,
    SetLatest,
    VersionsSearch,
)
from crongraph.errors import NotFound
from crongraph.graphs.schemas import graph_schemas

router = APIRouter(tags=["assistants"], route_class=JSONRoute)


@router.post("/assistants")
async def create_assistant(body: AssistantCreate, rt: RuntimeDep) -> Any:
    data = body.given()
    if data.get("assistant_id"):
        data["assistant_id"] = uuid_param(data["assistant_id"], "assistant")
    return views.assistant(await rt.assistants.create(data))


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, rt: RuntimeDep) -> Any:
    rows = await rt.assistants.search(body.given())
    items = [views.select(views.assistant(r), body.select) for r in rows[: body.limit]]
    return JSONResponse(items, headers=pagination_headers(body.offset, body.limit, len(rows)))


@router.post("/assistants/count")
async def count_assistants(body: AssistantCount, rt: RuntimeDep) -> int:
    return await rt.assistants.count(body.given())


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, rt: RuntimeDep) -> Any:
    return views.assistant(await rt.assistants.get(uuid_param(assistant_id, "assistant")))


@router.patch("/assistants/{assistant_id}")
async def patch_assistant(assistant_id: str, body: AssistantPatch, rt: RuntimeDep) -> Any:
    return views.assistant(await rt.assistants.update(uuid_param(assistant_id, "assistant"), body.given()))


@router.delete("/assistants/{assistant_id}", status_code=204)
async def delete_assistant(assistant_id: str, rt: RuntimeDep, delete_threads: bool = False) -> Response:
    await rt.assistants.delete(uuid_param(assistant_id, "assistant"), delete_threads)
    return Response(status_code=204)


@router.post("/assistants/{assistant_id}/versions")
async def assistant_versions(assistant_id: str, body: VersionsSearch, rt: RuntimeDep) -> Any:
    rows = await rt.assistants.versions(uuid_param(assistant_id, "assistant"), body.given())
    return [views.assistant_version(r) for r in rows]


@router.post("/assistants/{assistant_id}/latest")
async def set_latest_version(assistant_id: str, body: SetLatest, rt: RuntimeDep) -> Any:
    return views.assistant(await rt.assistants.set_latest(uuid_param(assistant_id, "assistant"), body.version))


@router.get("/assistants/{assistant_id}/graph")
async def assistant_graph(assistant_id: str, rt: RuntimeDep, xray: str = Query(default="false")) -> Any:
    graph, _ = await rt.assistants.graph_of(uuid_param(assistant_id, "assistant"))
    depth: bool | int = xray.lower() in ("true", "1") or (int(xray) if xray.isdigit() else False)
    drawable = await graph.aget_graph(xray=depth)
    return drawable.to_json()


@router.get("/assistants/{assistant_id}/schemas")
async def assistant_schemas(assistant_id: str, rt: RuntimeDep) -> Any:
    graph, assistant = await rt.assistants.graph_of(uuid_param(assistant_id, "assistant"))
    return {"graph_id": assistant["graph_id"], **graph_schemas(graph)}


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def assistant_subgraphs(
    assistant_id: str, rt: RuntimeDep, namespace: str | None = None, recurse: bool = False
) -> Any:
    graph, _ = await rt.assistants.graph_of(uuid_param(assistant_id, "assistant"))
    result: dict[str, Any] = {}
    async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse):
        result[ns] = graph_schemas(sub)
    if namespace and not result:
        raise NotFound(f"Subgraph '{namespace}' not found")
    return result
