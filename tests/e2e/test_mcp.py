"""MCP at /mcp/ through the official `mcp` SDK's client (Streamable HTTP) against a real server of its own: every
assistant is a tool (the reference's name, title, description and input schema), a call runs the graph as a
stateless run and answers its output, a failing graph is a tool error, an unknown tool an MCP error; the HTTP
methods answer as the reference's; `http.disable_mcp` removes the route."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.support.server import ROOT, ServerProcess

GRAPHS = ROOT / "tests" / "fixtures" / "graphs" / "graphs.py"


@pytest.fixture(scope="module")
def mcp_server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    # Its own server: tool names come from assistant names, which other tests' assistants could duplicate.
    return server_factory()


@asynccontextmanager
async def session(server: ServerProcess) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(f"{server.url}/mcp/") as (read, write, *_), ClientSession(read, write) as s:
        await s.initialize()
        yield s


async def test_assistants_are_listed_as_tools(mcp_server: ServerProcess) -> None:
    lg = get_client(url=mcp_server.url)
    try:
        mine = await lg.assistants.create("agent", name=f"My helper {uuid.uuid4().hex[:6]}!", description="Says back")
    finally:
        await lg.http.client.aclose()
    async with session(mcp_server) as s:
        tools = {tool.name: tool for tool in (await s.list_tools()).tools}
    agent = tools["agent"]
    assert agent.title == "agent" and agent.description == "Tool based on the agent assistant"
    schema = agent.input_schema
    assert schema["type"] == "object"
    # A list of LangChain messages becomes the user message, a string; the classes' definitions are gone.
    assert schema["properties"]["messages"]["type"] == "string" and "$defs" not in schema
    assert schema["properties"]["count"]["type"] == "integer"
    assert agent.annotations is not None and agent.annotations.open_world_hint is True
    name = mine["name"].replace(" ", "_").rstrip("!")
    assert tools[name].title == mine["name"] and tools[name].description == "Says back"


async def test_a_tool_call_runs_the_graph(mcp_server: ServerProcess) -> None:
    async with session(mcp_server) as s:
        result = await s.call_tool("agent", {"messages": "hello there"})
    assert result.is_error is False
    output = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert [m["content"] for m in output["messages"]] == ["hello there", "echo: hello there"]
    assert output["count"] == 1


async def test_a_failing_graph_is_a_tool_error(mcp_server: ServerProcess) -> None:
    async with session(mcp_server) as s:
        result = await s.call_tool("fails", {"messages": "boom"})
    assert result.is_error is True
    assert result.content[0].text == "ValueError: kaboom"  # type: ignore[union-attr]


async def test_unknown_tools_and_bad_arguments_are_mcp_errors(mcp_server: ServerProcess) -> None:
    async with session(mcp_server) as s:
        with pytest.raises(MCPError) as unknown:
            await s.call_tool("no_such_assistant", {})
        assert unknown.value.code == -32602 and "Unknown tool: no_such_assistant" in unknown.value.message
        # The server is stateless: the session goes on after an error.
        assert (await s.call_tool("echo", {"messages": "still here"})).is_error is False


def test_http_methods_answer_as_the_reference(mcp_server: ServerProcess) -> None:
    url = f"{mcp_server.url}/mcp/"
    assert httpx.get(url).status_code == 405
    assert httpx.delete(url).status_code == 404
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    broken = httpx.post(url, content=b"{not json", headers=headers)
    assert broken.status_code == 400 and broken.json()["error"]["code"] == -32700
    ping = httpx.post(url, json={"jsonrpc": "2.0", "id": 7, "method": "ping"}, headers=headers)
    assert ping.status_code == 200 and ping.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    bad_cursor = {"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {"cursor": "x"}}
    page = httpx.post(url, json=bad_cursor, headers=headers).json()
    assert page["error"]["code"] == -32602 and "cursor" in page["error"]["message"]


def test_disable_mcp_and_a2a_remove_the_routes(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    config = tmp_path / "langgraph.json"
    config.write_text(
        json.dumps({"graphs": {"agent": f"{GRAPHS}:echo"}, "http": {"disable_mcp": True, "disable_a2a": True}})
    )
    server = server_factory(config=config)
    headers = {"accept": "application/json, text/event-stream"}
    assert httpx.post(f"{server.url}/mcp/", json={}, headers=headers).status_code == 404
    assert httpx.post(f"{server.url}/a2a/{uuid.uuid4()}", json={}, headers=headers).status_code == 404
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/mcp", "/a2a"))]
    assert "/threads/{thread_id}/storage" in paths


async def test_tool_call_carries_the_run_like_any_client_run(mcp_server: ServerProcess) -> None:
    """The call is a stateless run: its temporary thread is gone afterwards, as after `runs.wait(None, ...)`."""
    lg = get_client(url=mcp_server.url)
    try:
        before = await lg.threads.count()
        async with session(mcp_server) as s:
            await s.call_tool("echo", {"messages": "temporary"})
        assert await lg.threads.count() == before
    finally:
        await lg.http.client.aclose()
