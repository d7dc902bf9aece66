"""Graph shapes real LangGraph projects have (tests/fixtures/shapes/), served by a real crongraph process and driven
by the official Python SDK: a `context_schema` whose defaults apply to every way a run starts (runs on a thread,
stateless runs, thread and stateless crons, resumes, the thread-stream protocol), and graph factories of every
signature the reference calls, including context managers held for exactly the run (or request) that built them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from tests.support.sdk import cron_runs, eventually, sdk_client
from tests.support.server import ROOT, ServerProcess

SHAPES = ROOT / "tests" / "fixtures" / "shapes" / "langgraph.json"
QUESTION = {"question": "which model?"}
EVERY_SECOND = "* * * * * *"
DATACLASS_DEFAULTS = {
    "type": "AgentContext",
    "model": "anthropic/claude-sonnet-4-5",
    "system_prompt": "You are a helpful AI assistant.",
    "max_search_results": 10,
    "user_id": "default-user",
}


@pytest.fixture(scope="module")
def shapes_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shapes") / "factory-log.jsonl"


@pytest.fixture(scope="module")
def shapes(server_factory: Callable[..., ServerProcess], shapes_log: Path) -> ServerProcess:
    return server_factory(config=SHAPES, env={"SHAPES_LOG": str(shapes_log)})


@pytest.fixture
async def sdk(shapes: ServerProcess) -> AsyncIterator[Any]:
    async with sdk_client(shapes.url) as client:
        yield client


@pytest.fixture
def factory_log(shapes_log: Path) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    def read() -> list[dict[str, Any]]:
        if not shapes_log.exists():
            return []
        return [json.loads(line) for line in shapes_log.read_text().splitlines() if line.strip()]

    yield read


# Run context


@pytest.mark.parametrize("context", [None, {}], ids=["absent", "empty"])
async def test_dataclass_context_defaults_on_a_thread_and_stateless(sdk: Any, context: Any) -> None:
    thread = await sdk.threads.create()
    kw = {} if context is None else {"context": context}
    on_thread = await sdk.runs.wait(thread["thread_id"], "ctx_dataclass", input=QUESTION, **kw)
    assert on_thread["seen"] == DATACLASS_DEFAULTS
    stateless = await sdk.runs.wait(None, "ctx_dataclass", input=QUESTION, **kw)
    assert stateless["seen"] == DATACLASS_DEFAULTS


async def test_run_context_overrides_some_fields_and_unknown_keys_are_dropped(sdk: Any) -> None:
    result = await sdk.runs.wait(None, "ctx_dataclass", input=QUESTION, context={"model": "m2", "bogus": 1})
    assert result["seen"] == {**DATACLASS_DEFAULTS, "model": "m2"}


async def test_pydantic_context_defaults_and_validation(sdk: Any) -> None:
    defaults = await sdk.runs.wait(None, "ctx_pydantic", input=QUESTION)
    assert defaults["seen"] == {"type": "ModelContext", "model": "pydantic-default", "temperature": 0.5}
    coerced = await sdk.runs.wait(None, "ctx_pydantic", input=QUESTION, context={"temperature": "0.9"})
    assert coerced["seen"]["temperature"] == 0.9

    thread = await sdk.threads.create()
    refused = await sdk.runs.wait(
        thread["thread_id"], "ctx_pydantic", input=QUESTION, context={"temperature": "hot"}, raise_error=False
    )
    assert refused["__error__"]["error"] == "ContextError"
    assert refused["__error__"]["message"].startswith(
        "The run's context does not fit the graph's context_schema ModelContext: temperature: "
    )
    [run] = await sdk.runs.list(thread["thread_id"])
    assert run["status"] == "error"


async def test_typeddict_and_schemaless_graphs_get_the_dict(sdk: Any) -> None:
    typed = await sdk.runs.wait(None, "ctx_typeddict", input=QUESTION, context={"model": "t", "bogus": 1})
    assert typed["seen"] == {"type": "dict", "model": "t"}
    schemaless = await sdk.runs.wait(None, "ctx_none", input=QUESTION, context={"anything": [1]})
    assert schemaless["seen"] == {"type": "dict", "context": {"anything": [1]}}


async def test_assistant_context_is_overlaid_by_the_runs_and_configurable_is_the_fallback(sdk: Any) -> None:
    with_context = await sdk.assistants.create("ctx_dataclass", context={"model": "assistant", "user_id": "u1"})
    overlaid = await sdk.runs.wait(None, with_context["assistant_id"], input=QUESTION, context={"model": "run"})
    assert overlaid["seen"] == {**DATACLASS_DEFAULTS, "model": "run", "user_id": "u1"}
    from_run_config = await sdk.runs.wait(
        None, with_context["assistant_id"], input=QUESTION, config={"configurable": {"model": "run-config"}}
    )
    assert from_run_config["seen"] == {**DATACLASS_DEFAULTS, "model": "run-config", "user_id": "u1"}

    with_config = await sdk.assistants.create("ctx_dataclass", config={"configurable": {"model": "assistant-config"}})
    assert (await sdk.runs.wait(None, with_config["assistant_id"], input=QUESTION))["seen"]["model"] == (
        "assistant-config"
    )


async def test_resume_with_a_command_gets_the_defaults(sdk: Any) -> None:
    thread = await sdk.threads.create()
    first = await sdk.runs.wait(thread["thread_id"], "ctx_ask", input=QUESTION)
    assert "__interrupt__" in first
    run = await sdk.runs.create(thread["thread_id"], "ctx_ask", command={"resume": "yes"})
    resumed = await sdk.runs.join(thread["thread_id"], run["run_id"])
    assert resumed["seen"] == {"answer": "yes", "model": DATACLASS_DEFAULTS["model"], "user_id": "default-user"}
    assert (await sdk.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"


async def test_thread_stream_run_gets_the_defaults(sdk: Any) -> None:
    async with sdk.threads.stream(assistant_id="ctx_dataclass") as thread:
        await thread.run.start(input=QUESTION)
        output = await asyncio.wait_for(thread.output, 20)
    assert output["seen"] == DATACLASS_DEFAULTS


async def test_thread_cron_and_stateless_cron_fire_with_the_defaults(sdk: Any) -> None:
    thread = await sdk.threads.create()
    thread_cron = await sdk.crons.create_for_thread(
        thread["thread_id"], "ctx_dataclass", schedule=EVERY_SECOND, input=QUESTION
    )
    stateless = await sdk.crons.create(
        "ctx_dataclass", schedule=EVERY_SECOND, input=QUESTION, on_run_completed="keep", metadata={"job": "shapes"}
    )
    try:
        runs = await eventually(lambda: sdk.runs.list(thread["thread_id"]))
        assert (await sdk.runs.join(thread["thread_id"], runs[-1]["run_id"]))["seen"] == DATACLASS_DEFAULTS
        fired = await eventually(lambda: cron_runs(sdk, stateless["cron_id"]))
        assert (await sdk.runs.join(fired[-1]["thread_id"], fired[-1]["run_id"]))["seen"] == DATACLASS_DEFAULTS
        assert (await sdk.runs.get(fired[-1]["thread_id"], fired[-1]["run_id"]))["status"] == "success"
    finally:
        await sdk.crons.delete(thread_cron["cron_id"])
        await sdk.crons.delete(stateless["cron_id"])


# Factories


FACTORY_CASES = {
    "f_none": {"factory": "none"},
    "f_config": {"factory": "config"},
    "f_async": {"factory": "async"},
    "f_cm": {"factory": "cm"},
    "f_runtime": {"factory": "runtime", "context_type": "dict"},
    "f_deferred": {"factory": "deferred", "context_type": "dict"},
    "f_both_annotated": {"factory": "both_annotated", "context_type": "dict"},
    "f_both_reversed": {"factory": "both_reversed", "context_type": "dict"},
    "f_both_named": {"factory": "both_named", "context_type": "dict"},
    # ServerRuntime[FactoryContext]: the runtime's context is fitted to the annotated type, defaults included.
    "f_acm": {"factory": "acm", "context_type": "FactoryContext"},
}


@pytest.mark.parametrize("graph_id", list(FACTORY_CASES))
async def test_every_factory_shape_runs_and_gets_what_it_asks_for(sdk: Any, graph_id: str) -> None:
    thread = await sdk.threads.create()
    run = await sdk.runs.create(thread["thread_id"], graph_id, input=QUESTION, context={"endpoint": "http://x"})
    report = (await sdk.runs.join(thread["thread_id"], run["run_id"]))["report"]
    expected = FACTORY_CASES[graph_id]
    assert report["factory"] == expected["factory"]
    takes_config = graph_id not in ("f_none", "f_runtime", "f_deferred", "f_acm")
    assert (report.get("config_run_id") == run["run_id"]) is takes_config
    if "context_type" in expected:
        assert report["runtime_class"] == "_ExecutionRuntime"
        assert report["access_context"] == "threads.create_run"
        assert report["user"] is None and report["has_store"] is True
        assert report["context_type"] == expected["context_type"]
        context = {"endpoint": "http://x"}
        if graph_id == "f_acm":
            context["user_id"] = "anonymous"
        assert report["context"] == context
    else:
        assert "runtime_class" not in report
    assert (await sdk.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"


@pytest.mark.parametrize(("graph_id", "name"), [("f_acm", "acm"), ("f_cm", "cm")])
async def test_context_manager_factory_exits_when_its_run_ends(
    sdk: Any, factory_log: Callable[[], list[dict[str, Any]]], graph_id: str, name: str
) -> None:
    thread = await sdk.threads.create()
    run = await sdk.runs.create(thread["thread_id"], graph_id, input=QUESTION)
    await sdk.runs.join(thread["thread_id"], run["run_id"])
    # The run is reported over only once its graph is released: no waiting for the exit here.
    events = [e["event"] for e in factory_log() if e["factory"] == name and e.get("run_id") == run["run_id"]]
    assert events == ["enter", "node", "exit"]
    if graph_id == "f_acm":
        item = await sdk.store.get_item(["factory_log"], run["run_id"])
        assert item["value"] == {"endpoint": "http://default.invalid"}


async def test_context_manager_factory_is_held_per_request_for_state_and_introspection(
    sdk: Any, factory_log: Callable[[], list[dict[str, Any]]]
) -> None:
    thread = await sdk.threads.create()
    await sdk.runs.wait(thread["thread_id"], "f_acm", input=QUESTION)
    before = len(factory_log())
    state = await sdk.threads.get_state(thread["thread_id"])
    assert state["values"]["report"]["factory"] == "acm"
    await sdk.threads.update_state(thread["thread_id"], {"question": "changed"})
    assert len(await sdk.threads.get_history(thread["thread_id"])) >= 2
    await sdk.assistants.get_graph("f_acm")
    await sdk.assistants.get_schemas("f_acm")
    await sdk.assistants.get_subgraphs("f_acm")
    calls = [(e["event"], e["access"]) for e in factory_log()[before:] if e["factory"] == "acm"]
    # Every use enters once and exits once, in order, and says why the graph was built.
    assert [event for event, _ in calls] == ["enter", "exit"] * (len(calls) // 2) and calls
    accesses = {access for _, access in calls}
    assert {"threads.read", "threads.update", "assistants.read"} <= accesses


async def test_read_runtime_has_no_context(sdk: Any) -> None:
    schemas = await sdk.assistants.get_schemas("f_runtime")
    assert schemas["graph_id"] == "f_runtime"
    assert set(schemas["state_schema"]["properties"]) == {"question", "report"}


# Graph ids on assistant routes


@pytest.mark.parametrize("graph_id", ["ctx_dataclass", "f_acm", "f_both_named"])
async def test_graph_routes_take_a_graph_id(sdk: Any, graph_id: str) -> None:
    system_id = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), graph_id))
    by_graph = await sdk.assistants.get_graph(graph_id)
    assert by_graph == await sdk.assistants.get_graph(system_id)
    assert {n["id"] for n in by_graph["nodes"]} >= {"__start__", "__end__"}
    assert all("id" not in (n.get("data") or {}) for n in by_graph["nodes"])
    schemas = await sdk.assistants.get_schemas(graph_id)
    assert schemas == await sdk.assistants.get_schemas(system_id)
    assert schemas["graph_id"] == graph_id
    assert await sdk.assistants.get_subgraphs(graph_id) == {}


async def test_context_schema_is_described(sdk: Any) -> None:
    schemas = await sdk.assistants.get_schemas("ctx_dataclass")
    assert schemas["context_schema"]["properties"]["model"]["default"] == DATACLASS_DEFAULTS["model"]


async def test_thread_stream_get_tree_resolves_the_graph_id(sdk: Any) -> None:
    async with sdk.threads.stream(assistant_id="f_acm") as thread:
        tree = await thread.agent.get_tree()
    assert {n["id"] for n in tree["nodes"]} == {"__start__", "step", "__end__"}


async def test_graph_route_refusals(sdk: Any) -> None:
    with pytest.raises(UnprocessableEntityError) as raised:
        await sdk.assistants.get_graph("no-such-graph")
    assert raised.value.response.json() == {"detail": "Invalid assistant ID: must be a UUID"}
    with pytest.raises(NotFoundError):
        await sdk.assistants.get_graph(str(uuid.uuid4()))
    with pytest.raises(UnprocessableEntityError) as raised:
        await sdk.http.get("/assistants/ctx_dataclass/graph", params={"xray": "sideways"})
    assert raised.value.response.json() == {"detail": "Invalid xray value"}
    # Graph ids name system assistants only where the reference reads a graph; elsewhere a UUID is required.
    with pytest.raises(UnprocessableEntityError):
        await sdk.assistants.get("ctx_dataclass")
