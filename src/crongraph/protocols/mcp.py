"""MCP (Model Context Protocol) at `/mcp/`: every assistant is a tool, as in the reference.

Built on the official `mcp` SDK's low-level server and its Streamable HTTP transport, stateless and answering
`application/json` (the reference's mode): no session is kept between requests, so any replica answers any
request. The SDK speaks the protocol (versions, initialize, ping, JSON-RPC errors); this module only lists and
calls tools through crongraph's services, as `api/` does:

- `tools/list`: assistants, 100 a page (`nextCursor` is the next offset), newest first. A tool's name is the
  assistant's name made a valid MCP tool name (whitespace runs to `_`, other characters outside `[A-Za-z0-9_.-]`
  dropped, 128 at most; a later assistant whose name normalizes the same is left out, with a warning); its title
  the name; its description the assistant's, or "Tool based on the <name> assistant"; its input schema the
  graph's input schema with LangChain message lists simplified to one string (the user message). An assistant
  whose graph has no input schema is left out, with a warning.
- `tools/call`: a stateless run of that assistant with the arguments as input, queued at interactive priority
  like a client's `runs.wait`, waited for, and answered with its output as JSON text. A graph error is a tool
  result with `isError`; an unknown or ambiguous tool name is a JSON-RPC error (invalid params).

HTTP: POST carries JSON-RPC; GET answers 405 and DELETE 404, as the reference (no stream, no session to end).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from fastapi import APIRouter, Request
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from crongraph import __version__, serde
from crongraph.errors import CrongraphError
from crongraph.graphs.schemas import graph_schemas
from crongraph.protocols.caller import Caller, caller_of, recall, remember

log = logging.getLogger("crongraph.mcp")

PAGE_SIZE = 100
# tools/call looks the name up among this many assistants (newest first), as the reference does.
MAX_ASSISTANTS = 1000
_NAME_MAX = 128
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
_MESSAGE_TYPES = {
    f"{kind}{suffix}"
    for kind in ("AI", "Human", "Chat", "System", "Function", "Tool")
    for suffix in ("Message", "MessageChunk")
}
_MESSAGE_SUPPORT_TYPES = {
    "ToolCall",
    "ToolCallChunk",
    "InvalidToolCall",
    "UsageMetadata",
    "InputTokenDetails",
    "OutputTokenDetails",
}
_DEFS_REF = "#/$defs/"
USER_MESSAGE = "The user message to send to the agent."


def tool_name(assistant_name: str) -> str:
    """An assistant's name as a valid MCP tool name (`^[A-Za-z0-9_.-]{1,128}$`, or "" when nothing is left)."""
    name = re.sub(r"\s+", "_", assistant_name.strip())
    return _INVALID_NAME_CHARS.sub("", name)[:_NAME_MAX]


def _is_message_list(prop: Any) -> bool:
    if not isinstance(prop, dict) or prop.get("type") != "array" or not isinstance(prop.get("items"), dict):
        return False
    items = prop["items"]
    choices = items.get("oneOf") or items.get("anyOf") or []
    return any(
        isinstance(c, dict) and str(c.get("$ref", "")).removeprefix(_DEFS_REF) in _MESSAGE_TYPES for c in choices
    )


def simplify_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The input schema an LLM can fill: LangChain's message classes are dropped from `$defs`, and a property that
    is a list of messages becomes one string, the user message (which LangGraph's `add_messages` accepts).
    A schema without message classes is returned unchanged; the root is always `type: object` (MCP requires it)."""
    schema = dict(schema)
    defs = schema.get("$defs")
    if isinstance(defs, dict) and set(defs) & _MESSAGE_TYPES:
        kept = {k: v for k, v in defs.items() if k not in _MESSAGE_TYPES | _MESSAGE_SUPPORT_TYPES}
        if kept:
            schema["$defs"] = kept
        else:
            del schema["$defs"]
        props = schema.get("properties")
        if isinstance(props, dict):
            schema["properties"] = {
                key: (
                    {"type": "string", "title": prop.get("title", key), "description": USER_MESSAGE}
                    if _is_message_list(prop)
                    else prop
                )
                for key, prop in props.items()
            }
    schema.setdefault("type", "object")
    return schema


async def _tool(caller: Caller, assistant: dict[str, Any], name: str) -> types.Tool | None:
    try:
        async with caller.runtime.assistants.graph_of(assistant["assistant_id"]) as (graph, _):
            input_schema = graph_schemas(graph)["input_schema"]
    except Exception as exc:  # a graph that cannot be built must not hide the other tools
        log.warning("MCP: assistant %s left out of tools/list: %s", assistant["assistant_id"], exc)
        return None
    if not isinstance(input_schema, dict):
        log.warning("MCP: assistant %s left out of tools/list: its graph has no input schema", assistant["name"])
        return None
    return types.Tool(
        name=name,
        title=assistant["name"],
        description=assistant.get("description") or f"Tool based on the {assistant['name']} assistant",
        input_schema=simplify_input_schema(input_schema),
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )


def _caller(ctx: ServerRequestContext[Any, Any]) -> Caller:
    request = ctx.request
    if not isinstance(request, Request):
        raise MCPError(code=types.INTERNAL_ERROR, message="MCP request reached crongraph without its HTTP request")
    return recall(request.scope)


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 9):
        raise MCPError(code=types.INVALID_PARAMS, message=f"Invalid cursor: {cursor[:40]!r}; give a nextCursor")
    return int(cursor)


async def list_tools(ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None) -> Any:
    caller = _caller(ctx)
    offset = _offset(params.cursor if params else None)
    with caller.acting():
        return await _list_tools(caller, offset)


async def _list_tools(caller: Caller, offset: int) -> types.ListToolsResult:
    rows = await caller.runtime.assistants.search({"limit": PAGE_SIZE, "offset": offset})
    rows = rows[:PAGE_SIZE]
    seen: set[str] = set()
    tools: list[types.Tool] = []
    for assistant in rows:
        name = tool_name(assistant["name"] or "")
        if not name or name in seen:
            log.warning("MCP: assistant %s left out: tool name %r is empty or taken", assistant["assistant_id"], name)
            continue
        seen.add(name)
        tool = await _tool(caller, assistant, name)
        if tool is not None:
            tools.append(tool)
    next_cursor = str(offset + PAGE_SIZE) if len(rows) == PAGE_SIZE else None
    return types.ListToolsResult(tools=tools, next_cursor=next_cursor)


async def call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
    caller = _caller(ctx)
    with caller.acting():
        return await _call_tool(caller, params)


async def _call_tool(caller: Caller, params: types.CallToolRequestParams) -> types.CallToolResult:
    rt = caller.runtime
    candidates = await rt.assistants.search({"limit": MAX_ASSISTANTS, "offset": 0})
    matching = [a for a in candidates if params.name and tool_name(a["name"] or "") == params.name]
    if not matching:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
    if len(matching) > 1:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Multiple assistants are named like the tool {params.name}")
    body = {"assistant_id": matching[0]["assistant_id"], "input": params.arguments or {}}
    try:
        run = await rt.runs.create(None, body)  # interactive priority, like a client's runs.wait
        output = await rt.runs.join(run["run_id"])
    except CrongraphError as exc:
        raise MCPError(code=types.INVALID_PARAMS, message=exc.detail) from None
    if isinstance(output, dict) and "__error__" in output:
        return types.CallToolResult(content=[types.TextContent(text=error_text(output["__error__"]))], is_error=True)
    return types.CallToolResult(content=[types.TextContent(text=serde.dumps(output).decode())])


def error_text(error: Any) -> str:
    """A failed run's error ({"error": type, "message": text}) as one line: "ValueError: kaboom"."""
    if isinstance(error, dict):
        kind, message = error.get("error"), error.get("message")
        return ": ".join(str(part) for part in (kind, message) if part) or "run failed"
    return str(error)


class McpEndpoint:
    """One app's MCP server: the SDK's stateless session manager, which holds a task group for the app's life."""

    def __init__(self) -> None:
        self.server: Server[Any] = Server(
            "crongraph", version=__version__, on_list_tools=list_tools, on_call_tool=call_tool
        )
        self.manager = StreamableHTTPSessionManager(self.server, json_response=True, stateless=True)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield


class _Delegate(Response):
    """A response that hands the request to an ASGI app (the SDK's transport), which answers it itself."""

    def __init__(self, endpoint: McpEndpoint) -> None:
        super().__init__()
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.endpoint.manager.handle_request(scope, receive, send)


router = APIRouter(tags=["mcp"])


@router.post("/mcp/", summary="MCP Post")
@router.post("/mcp", include_in_schema=False)
async def mcp_post(request: Request) -> Response:
    """A JSON-RPC message of the MCP Streamable HTTP transport (initialize, ping, tools/list, tools/call)."""
    endpoint: McpEndpoint = request.app.state.mcp
    remember(request.scope, caller_of(request))
    return _Delegate(endpoint)


@router.get("/mcp/", summary="MCP Get")
@router.get("/mcp", include_in_schema=False)
async def mcp_get() -> Response:
    """No server-to-client stream: 405, as the reference."""
    return Response(status_code=405)


@router.delete("/mcp/", summary="Terminate Session")
@router.delete("/mcp", include_in_schema=False)
async def mcp_delete() -> Response:
    """No session to end (the server is stateless): 404, as the reference."""
    return Response(status_code=404)
