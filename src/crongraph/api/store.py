"""Store routes (wire contract §6), backed by LangGraph's own store.

Timestamps go out with their offset like every other timestamp (the SQLite store hands back naive UTC), and a
filter the store cannot evaluate (an unknown `$` operator) is the client's mistake: 422, not 500.

With custom auth, each route first runs the `store.<action>` handler, which may refuse or rewrite the namespace
and key (what it leaves is what the store is asked, checked again), and for a search return a filter that is
added to the client's (its keys win)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from langgraph.store.base import NOT_PROVIDED

from crongraph.api import limits
from crongraph.api.deps import RuntimeDep
from crongraph.api.routing import JSONRoute
from crongraph.api.schemas import StoreDelete, StoreNamespaces, StorePut, StoreSearch
from crongraph.errors import InvalidInput
from crongraph.services.access import store_allowed

router = APIRouter(tags=["store"], route_class=JSONRoute)


def _check_namespace(namespace: list[str]) -> tuple[str, ...]:
    if not namespace:
        raise InvalidInput("namespace must not be empty")
    for label in namespace:
        if not label or "." in label:
            raise InvalidInput(f"Invalid namespace label '{label}': labels must be non-empty and contain no '.'")
    return tuple(namespace)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _item(item: Any) -> dict[str, Any]:
    out = {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": item.value,
        "created_at": _aware(item.created_at),
        "updated_at": _aware(item.updated_at),
    }
    if hasattr(item, "score"):
        out["score"] = item.score
    return out


@router.put("/store/items", status_code=204)
async def put_item(body: StorePut, rt: RuntimeDep) -> Response:
    namespace = _check_namespace(body.namespace)
    # No `ttl` in the body gives the item store.ttl.default_ttl (the official clients leave out a ttl they were not
    # given); an explicit null keeps it forever, as the wire contract says.
    ttl: Any = body.ttl if "ttl" in body.model_fields_set else NOT_PROVIDED
    asked: dict[str, Any] = {"namespace": namespace, "key": body.key, "value": body.value, "index": body.index}
    asked["ttl"] = body.ttl
    await store_allowed("put", asked)
    namespace = _check_namespace(list(asked["namespace"] or ()))
    await rt.store.aput(namespace, str(asked["key"]), asked["value"], index=asked["index"], ttl=ttl)
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(
    rt: RuntimeDep,
    key: str = Query(max_length=limits.MAX_KEY_CHARS),
    namespace: str | None = Query(default=None),
    refresh_ttl: bool | None = None,
) -> Any:
    # The namespace comes dotted ("a.b"): "a..b" or ".a" would name an empty label, which the store refuses.
    labels = _check_namespace(namespace.split(".")) if namespace else ()
    asked: dict[str, Any] = {"namespace": labels, "key": key, "refresh_ttl": refresh_ttl}
    await store_allowed("get", asked)
    if tuple(asked["namespace"] or ()) != labels:
        labels = _check_namespace(list(asked["namespace"])) if asked["namespace"] else ()
    key = str(asked["key"])
    item = await rt.store.aget(labels, key, refresh_ttl=refresh_ttl)
    return _item(item) if item is not None else None


@router.delete("/store/items", status_code=204)
async def delete_item(body: StoreDelete, rt: RuntimeDep) -> Response:
    asked: dict[str, Any] = {"namespace": tuple(body.namespace or ()), "key": body.key}
    await store_allowed("delete", asked)
    await rt.store.adelete(tuple(asked["namespace"] or ()), str(asked["key"]))
    return Response(status_code=204)


@router.post("/store/items/search")
async def search_items(body: StoreSearch, rt: RuntimeDep) -> Any:
    asked: dict[str, Any] = {
        "namespace": tuple(body.namespace_prefix or ()),
        "filter": body.filter,
        "limit": body.limit,
        "offset": body.offset,
        "query": body.query,
        "refresh_ttl": body.refresh_ttl,
    }
    restriction = await store_allowed("search", asked)
    item_filter = {**(asked["filter"] or {}), **restriction} if restriction else asked["filter"]
    try:
        items = await rt.store.asearch(
            tuple(asked["namespace"] or ()),
            query=asked["query"],
            filter=item_filter,
            limit=asked["limit"],
            offset=asked["offset"],
            refresh_ttl=body.refresh_ttl,
        )
    except ValueError as exc:
        raise InvalidInput(f"Invalid store search: {exc}") from None
    return {"items": [_item(i) for i in items]}


@router.post("/store/namespaces")
async def list_namespaces(body: StoreNamespaces, rt: RuntimeDep) -> Any:
    asked: dict[str, Any] = {
        "namespace": tuple(body.prefix) if body.prefix else None,
        "suffix": tuple(body.suffix) if body.suffix else None,
        "max_depth": body.max_depth,
        "limit": body.limit,
        "offset": body.offset,
    }
    await store_allowed("list_namespaces", asked)
    namespaces = await rt.store.alist_namespaces(
        prefix=tuple(asked["namespace"]) if asked["namespace"] else None,
        suffix=tuple(asked["suffix"]) if asked["suffix"] else None,
        max_depth=asked["max_depth"],
        limit=asked["limit"],
        offset=asked["offset"],
    )
    return {"namespaces": [list(ns) for ns in namespaces]}
