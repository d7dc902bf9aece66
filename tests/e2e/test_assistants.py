"""Assistants through the official SDK (wire contract §5): the system assistant of every graph, create, versions,
search, count, delete and its cascade to crons, and the graph, schemas and subgraphs views."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.support.server import FIXTURE_CONFIG, ServerProcess

GRAPHS = list(json.loads(FIXTURE_CONFIG.read_text())["graphs"])
SYSTEM_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"


def tag() -> dict[str, str]:
    """Metadata unique to one test, so that searches on the shared server see only that test's assistants."""
    return {"test": uuid.uuid4().hex}


async def test_every_graph_has_its_system_assistant_with_the_reference_id(client: Any) -> None:
    assert str(uuid.uuid5(SYSTEM_NAMESPACE, "agent")) == AGENT_ID
    for graph_id in GRAPHS:
        assistant = await client.assistants.get(str(uuid.uuid5(SYSTEM_NAMESPACE, graph_id)))
        assert assistant["graph_id"] == graph_id
        assert assistant["name"] == graph_id
        assert assistant["metadata"] == {"created_by": "system"}
        assert assistant["version"] == 1
        assert assistant["config"] == {} and assistant["context"] == {}
    system = await client.assistants.search(metadata={"created_by": "system"}, limit=100)
    assert sorted(a["graph_id"] for a in system) == sorted(GRAPHS)


async def test_create_and_get_round_trip(client: Any) -> None:
    created = await client.assistants.create(
        "echo",
        config={"configurable": {"model": "x"}, "tags": ["t"]},
        context={"user": "u1"},
        metadata={"team": "blue"},
        name="Echo for blue",
        description="answers back",
    )
    assert uuid.UUID(created["assistant_id"]).version == 7
    assert created["graph_id"] == "echo"
    assert created["config"] == {"configurable": {"model": "x"}, "tags": ["t"]}
    assert created["context"] == {"user": "u1"}
    assert created["metadata"] == {"team": "blue"}
    assert created["name"] == "Echo for blue" and created["description"] == "answers back"
    assert created["version"] == 1
    assert created["created_at"].endswith("+00:00") and created["updated_at"] == created["created_at"]
    assert await client.assistants.get(created["assistant_id"]) == created


async def test_create_with_given_id_then_conflict_or_do_nothing(client: Any) -> None:
    assistant_id = str(uuid.uuid4())
    first = await client.assistants.create("agent", assistant_id=assistant_id, name="first")
    assert first["assistant_id"] == assistant_id
    with pytest.raises(ConflictError) as raised:
        await client.assistants.create("agent", assistant_id=assistant_id, name="second")
    assert raised.value.response.json() == {"detail": f"Assistant {assistant_id} already exists"}
    same = await client.assistants.create("echo", assistant_id=assistant_id, name="second", if_exists="do_nothing")
    assert same == first


async def test_create_for_an_unknown_graph_is_404_naming_the_graphs(client: Any) -> None:
    with pytest.raises(NotFoundError) as raised:
        await client.assistants.create("nope")
    detail = raised.value.response.json()["detail"]
    assert detail.startswith("Graph 'nope' not found. Expected one of: [")
    assert all(f"'{g}'" in detail for g in GRAPHS)


async def test_update_adds_versions_and_merges_metadata(client: Any) -> None:
    created = await client.assistants.create("agent", metadata={"a": 1}, name="v1", config={"tags": ["one"]})
    aid = created["assistant_id"]
    second = await client.assistants.update(aid, metadata={"b": 2}, name="v2")
    assert second["version"] == 2
    assert second["metadata"] == {"a": 1, "b": 2}
    assert second["name"] == "v2"
    assert second["config"] == {"tags": ["one"]}, "fields not given are kept"
    assert second["created_at"] == created["created_at"] and second["updated_at"] > created["updated_at"]
    third = await client.assistants.update(aid, graph_id="echo", context={"k": "v"})
    assert (third["version"], third["graph_id"], third["context"], third["name"]) == (3, "echo", {"k": "v"}, "v2")

    versions = await client.assistants.get_versions(aid)
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["name"] for v in versions] == ["v2", "v2", "v1"]
    assert "updated_at" not in versions[0]
    assert [v["version"] for v in await client.assistants.get_versions(aid, limit=1, offset=1)] == [2]
    assert [v["version"] for v in await client.assistants.get_versions(aid, metadata={"b": 2})] == [3, 2]

    latest = await client.assistants.set_latest(aid, 1)
    assert (latest["version"], latest["name"], latest["metadata"], latest["graph_id"]) == (1, "v1", {"a": 1}, "agent")
    assert (await client.assistants.get(aid))["version"] == 1
    assert len(await client.assistants.get_versions(aid)) == 3, "set_latest does not add a version"


async def test_update_errors(client: Any) -> None:
    aid = (await client.assistants.create("agent"))["assistant_id"]
    with pytest.raises(NotFoundError) as raised:
        await client.assistants.update(aid, graph_id="nope")
    assert raised.value.response.json()["detail"].startswith("Graph 'nope' not found")
    with pytest.raises(NotFoundError):
        await client.assistants.update(str(uuid.uuid4()), name="x")
    with pytest.raises(NotFoundError):
        await client.assistants.set_latest(aid, 7)
    with pytest.raises(NotFoundError):
        await client.assistants.get_versions(str(uuid.uuid4()))
    assert (await client.assistants.get(aid))["version"] == 1, "failed updates change nothing"


async def test_search_filters_sorts_selects_and_pages(client: Any, server: ServerProcess) -> None:
    mark = tag()
    ids = []
    for name, graph_id, extra in [("b-one", "echo", {"x": 1}), ("a-two", "agent", {"x": 2}), ("c-three", "echo", {})]:
        created = await client.assistants.create(graph_id, name=name, metadata={**mark, **extra})
        ids.append(created["assistant_id"])

    everything = await client.assistants.search(metadata=mark)
    assert [a["assistant_id"] for a in everything] == ids[::-1], "default order: newest first"
    assert {a["assistant_id"] for a in await client.assistants.search(metadata=mark, graph_id="echo")} == {
        ids[0],
        ids[2],
    }
    assert [a["name"] for a in await client.assistants.search(metadata={**mark, "x": 2})] == ["a-two"]
    assert [a["name"] for a in await client.assistants.search(metadata=mark, name="three")] == ["c-three"]
    by_name = await client.assistants.search(metadata=mark, sort_by="name", sort_order="asc")
    assert [a["name"] for a in by_name] == ["a-two", "b-one", "c-three"]
    selected = await client.assistants.search(metadata=mark, select=["assistant_id", "name"], limit=1)
    assert selected == [{"assistant_id": ids[2], "name": "c-three"}]

    page = await client.assistants.search(metadata=mark, limit=2, response_format="object")
    assert [a["assistant_id"] for a in page["assistants"]] == [ids[2], ids[1]]
    assert page["next"] == "2"
    last = await client.assistants.search(metadata=mark, limit=2, offset=2, response_format="object")
    assert [a["assistant_id"] for a in last["assistants"]] == [ids[0]] and last["next"] is None

    async with httpx.AsyncClient(base_url=server.url) as http:
        more = await http.post("/assistants/search", json={"metadata": mark, "limit": 2})
        assert (more.headers["X-Pagination-Next"], more.headers["X-Pagination-Total"]) == ("2", "3")
        end = await http.post("/assistants/search", json={"metadata": mark, "limit": 2, "offset": 2})
        assert "X-Pagination-Next" not in end.headers and end.headers["X-Pagination-Total"] == "3"
        bad = await http.post("/assistants/search", json={"select": ["nope"]})
        assert bad.status_code == 422 and "select" in bad.json()["detail"]

    assert await client.assistants.count(metadata=mark) == 3
    assert await client.assistants.count(metadata=mark, graph_id="echo") == 2
    assert await client.assistants.count(metadata=mark, name="two") == 1
    assert await client.assistants.count(metadata={"test": "nobody"}) == 0


async def test_delete_cascades_versions_and_crons(client: Any) -> None:
    aid = (await client.assistants.create("agent", metadata=tag()))["assistant_id"]
    await client.assistants.update(aid, name="second version")
    cron = await client.crons.create(aid, schedule="0 3 * * *")
    assert cron["assistant_id"] == aid
    assert await client.crons.count(assistant_id=aid) == 1

    await client.assistants.delete(aid)
    with pytest.raises(NotFoundError):
        await client.assistants.get(aid)
    with pytest.raises(NotFoundError):
        await client.assistants.get_versions(aid)
    assert await client.crons.count(assistant_id=aid) == 0
    assert await client.crons.search(assistant_id=aid) == []
    with pytest.raises(NotFoundError):
        await client.assistants.delete(aid)


async def test_delete_with_delete_threads_removes_the_threads_it_ran_on(client: Any) -> None:
    aid = (await client.assistants.create("echo"))["assistant_id"]
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], aid, input={"messages": [{"role": "user", "content": "hi"}]})
    kept = await client.threads.create()
    await client.assistants.delete(aid, delete_threads=True)
    with pytest.raises(NotFoundError):
        await client.threads.get(thread["thread_id"])
    assert (await client.threads.get(kept["thread_id"]))["thread_id"] == kept["thread_id"]


async def test_graph_view(client: Any) -> None:
    drawn = await client.assistants.get_graph(AGENT_ID)
    assert {n["id"] for n in drawn["nodes"]} == {"__start__", "step", "__end__"}
    assert {(e["source"], e["target"]) for e in drawn["edges"]} == {("__start__", "step"), ("step", "__end__")}
    nested_id = str(uuid.uuid5(SYSTEM_NAMESPACE, "nested"))
    flat = {n["id"] for n in (await client.assistants.get_graph(nested_id))["nodes"]}
    xray = {n["id"] for n in (await client.assistants.get_graph(nested_id, xray=True))["nodes"]}
    assert "child" in flat and "child:inner_step" in xray


async def test_schemas_describe_the_state(client: Any) -> None:
    schemas = await client.assistants.get_schemas(AGENT_ID)
    assert schemas["graph_id"] == "agent"
    assert set(schemas) == {
        "graph_id",
        "input_schema",
        "output_schema",
        "state_schema",
        "config_schema",
        "context_schema",
    }
    # The fixture declares its state with typing.TypedDict, which pydantic refuses on Python < 3.12.
    for key in ("input_schema", "output_schema", "state_schema"):
        assert {"messages", "count"} <= set(schemas[key]["properties"]), key


async def test_subgraphs(client: Any) -> None:
    nested_id = str(uuid.uuid5(SYSTEM_NAMESPACE, "nested"))
    subgraphs = await client.assistants.get_subgraphs(nested_id)
    assert list(subgraphs) == ["child"]
    assert "items" in subgraphs["child"]["state_schema"]["properties"]
    assert list(await client.assistants.get_subgraphs(nested_id, namespace="child")) == ["child"]
    assert await client.assistants.get_subgraphs(AGENT_ID) == {}
    with pytest.raises(NotFoundError):
        await client.assistants.get_subgraphs(nested_id, namespace="nochild")


async def test_path_ids_must_be_uuids_and_graph_names_are_not_resolved_there(client: Any) -> None:
    with pytest.raises(UnprocessableEntityError) as raised:
        await client.assistants.get("agent")
    assert raised.value.response.json() == {"detail": "Invalid assistant ID: must be a UUID"}
    with pytest.raises(NotFoundError):
        await client.assistants.get(str(uuid.uuid4()))


def test_sync_client_lifecycle(sync_client: Any) -> None:
    created = sync_client.assistants.create("echo", name="sync", metadata={"via": "sync"})
    aid = created["assistant_id"]
    assert sync_client.assistants.get(aid)["name"] == "sync"
    assert sync_client.assistants.update(aid, metadata={"more": True})["metadata"] == {"via": "sync", "more": True}
    assert [v["version"] for v in sync_client.assistants.get_versions(aid)] == [2, 1]
    assert sync_client.assistants.search(metadata={"via": "sync", "more": True})[0]["assistant_id"] == aid
    sync_client.assistants.delete(aid)
    with pytest.raises(NotFoundError):
        sync_client.assistants.get(aid)
