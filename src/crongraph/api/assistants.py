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
from crongraph.errors import InvalidInput, NotFound
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


def _graph_route_id(value: str, rt: Any) -> str:
    """Routes that describe a graph take a graph id too (it names the graph's system assistant), as the reference's
    /graph does and the SDK's `thread.agent.get_tree()` relies on; /schemas and /subgraphs are read-only views of
    the same graph, so they take it as well."""
    resolved: str | None = rt.assistants.resolve_id(value)
    if resolved is None:
        raise InvalidInput("Invalid assistant ID: must be a UUID")
    return resolved


def _xray(value: str | None) -> bool | int:
    """`xray`: true/false, or a positive depth; anything else is refused (the reference's rule)."""
    if value is None or value in ("false", "False"):
        return False
    if value in ("true", "True"):
        return True
    try:
        depth = int(value)
    except ValueError:
        depth = 0
    if depth <= 0:
        raise InvalidInput("Invalid xray value")
    return depth


@router.get("/assistants/{assistant_id}/graph")
async def assistant_graph(assistant_id: str, rt: RuntimeDep, xray: str | None = Query(default=None)) -> Any:
    depth = _xray(xray)
    async with rt.assistants.graph_of(_graph_route_id(assistant_id, rt)) as (graph, _):
        try:
            drawable = await graph.aget_graph(xray=depth)
        except NotImplementedError:
            raise InvalidInput("The graph does not support visualization") from None
    drawn: dict[str, Any] = drawable.to_json()
    for node in drawn.get("nodes", []):
        if isinstance(node.get("data"), dict):
            node["data"].pop("id", None)  # the node's Python import path: the reference leaves it out
    return drawn


@router.get("/assistants/{assistant_id}/schemas")
async def assistant_schemas(assistant_id: str, rt: RuntimeDep) -> Any:
    async with rt.assistants.graph_of(_graph_route_id(assistant_id, rt)) as (graph, assistant):
        return {"graph_id": assistant["graph_id"], **graph_schemas(graph)}


@router.get("/assistants/{assistant_id}/subgraphs")
@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def assistant_subgraphs(
    assistant_id: str, rt: RuntimeDep, namespace: str | None = None, recurse: bool = False
) -> Any:
    result: dict[str, Any] = {}
    async with rt.assistants.graph_of(_graph_route_id(assistant_id, rt)) as (graph, _):
        try:
            async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse):
                result[ns] = graph_schemas(sub)
        except NotImplementedError:
            raise InvalidInput("The graph does not support visualization") from None
    if namespace and not result:
        raise NotFound(f"Subgraph '{namespace}' not found")
    return result
