"""The store through the official SDK (wire contract §6): put, get (null when missing), overwrite, delete, search
with filters and paging, and namespace listing; refused input through raw HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from tests.support.server import ServerProcess


def space() -> str:
    """A top-level namespace label unique to one test."""
    return f"t{uuid.uuid4().hex}"


async def test_put_get_overwrite_delete(client: Any) -> None:
    ns = [space(), "users", "ana"]
    await client.store.put_item(ns, "prefs", {"theme": "dark", "size": 3})
    item = await client.store.get_item(ns, "prefs")
    assert item["namespace"] == ns and item["key"] == "prefs"
    assert item["value"] == {"theme": "dark", "size": 3}
    assert item["created_at"].endswith("+00:00") and item["updated_at"].endswith("+00:00")

    # Into the next second (the stores keep whole seconds), so that a put resetting created_at is seen.
    await asyncio.sleep(1.05 - time.time() % 1)
    await client.store.put_item(ns, "prefs", {"theme": "light"})
    again = await client.store.get_item(ns, "prefs")
    assert again["value"] == {"theme": "light"}, "a put replaces the whole value"
    assert again["created_at"] == item["created_at"]
    assert again["updated_at"] > item["updated_at"]

    assert await client.store.get_item(ns, "other") is None
    assert await client.store.get_item([*ns, "deeper"], "prefs") is None
    await client.store.delete_item(ns, "prefs")
    assert await client.store.get_item(ns, "prefs") is None
    await client.store.delete_item(ns, "prefs")  # deleting what is gone is not an error


async def test_search_filters_and_pages(client: Any) -> None:
    root = space()
    for i in range(5):
        await client.store.put_item([root, "docs"], f"d{i}", {"i": i, "kind": "even" if i % 2 == 0 else "odd"})
    await client.store.put_item([root, "other"], "x", {"i": 99, "kind": "even"})

    found = await client.store.search_items([root, "docs"], limit=10)
    assert sorted(i["key"] for i in found["items"]) == [f"d{i}" for i in range(5)]
    assert all(i["score"] is None for i in found["items"])
    assert len((await client.store.search_items([root], limit=10))["items"]) == 6

    even = await client.store.search_items([root, "docs"], filter={"kind": "even"})
    assert sorted(i["value"]["i"] for i in even["items"]) == [0, 2, 4]
    big = await client.store.search_items([root], filter={"i": {"$gte": 3}})
    assert sorted(i["value"]["i"] for i in big["items"]) == [3, 4, 99]

    first = await client.store.search_items([root, "docs"], limit=2)
    rest = await client.store.search_items([root, "docs"], limit=10, offset=2)
    keys = [i["key"] for i in first["items"]] + [i["key"] for i in rest["items"]]
    assert sorted(keys) == [f"d{i}" for i in range(5)] and len(first["items"]) == 2


async def test_list_namespaces(client: Any) -> None:
    root = space()
    for ns in ([root, "a"], [root, "a", "x"], [root, "b", "x"], [root, "c"]):
        await client.store.put_item(ns, "k", {"v": 1})
    listed = (await client.store.list_namespaces(prefix=[root]))["namespaces"]
    assert sorted(listed) == [[root, "a"], [root, "a", "x"], [root, "b", "x"], [root, "c"]]
    depth = (await client.store.list_namespaces(prefix=[root], max_depth=2))["namespaces"]
    assert sorted(depth) == [[root, "a"], [root, "b"], [root, "c"]]
    suffix = (await client.store.list_namespaces(prefix=[root], suffix=["x"]))["namespaces"]
    assert sorted(suffix) == [[root, "a", "x"], [root, "b", "x"]]
    assert len((await client.store.list_namespaces(prefix=[root], limit=2))["namespaces"]) == 2


async def test_refused_input(server: ServerProcess, client: Any) -> None:
    root = space()
    async with httpx.AsyncClient(base_url=server.url) as http:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"namespace": [root, "a.b"], "key": "k", "value": {}}, "Invalid namespace label 'a.b'"),
            ({"namespace": [], "key": "k", "value": {}}, "namespace must not be empty"),
            ({"namespace": [root], "key": "k", "value": 5}, "value"),
            ({"namespace": [root], "key": "k", "value": {}, "ttl": -1}, "ttl"),
            ({"namespace": root, "key": "k", "value": {}}, "namespace"),
            ({"namespace": [root]}, "key"),
        ]
        for body, words in cases:
            refused = await http.put("/store/items", json=body)
            assert refused.status_code == 422, body
            assert words in refused.json()["detail"], refused.json()
        bad_search = {"namespace_prefix": [root], "filter": {"i": {"$x": 1}}}
        bad_filter = await http.post("/store/items/search", json=bad_search)
        assert bad_filter.status_code == 422
        assert bad_filter.json() == {"detail": "Invalid store search: Unsupported operator: $x"}
        missing_key = await http.get("/store/items", params={"namespace": root})
        assert missing_key.status_code == 422 and "key" in missing_key.json()["detail"]
    assert (await client.store.list_namespaces(prefix=[root]))["namespaces"] == [], "nothing was written"


def test_sync_client_store(sync_client: Any) -> None:
    ns = [space(), "sync"]
    sync_client.store.put_item(ns, "k", {"n": 1})
    assert sync_client.store.get_item(ns, "k")["value"] == {"n": 1}
    assert [i["key"] for i in sync_client.store.search_items(ns)["items"]] == ["k"]
    sync_client.store.delete_item(ns, "k")
    assert sync_client.store.get_item(ns, "k") is None
