"""A2A (Agent2Agent) at `/a2a/{assistant_id}`: every assistant is an agent, spoken to in JSON-RPC 2.0.

Methods, by their A2A 1.0 names and their 0.3 aliases (the answer's shape follows the name the client used: 1.0
names answer 1.0 JSON, e.g. `ROLE_AGENT`, `TASK_STATE_COMPLETED`, `{"task": …}`; 0.3 names answer 0.3 JSON, e.g.
`agent`, `completed`, the task itself with `kind`):

- `SendMessage` (`message/send`): one run of the assistant on the thread `contextId` names (created when new; a
  new UUID when absent), waited for; answers the task. A task's id is `<contextId>:<run_id>`. A message naming a
  task that waits for input (an interrupt) resumes it with the message's text or data. `returnImmediately`
  answers the task as soon as it is queued (poll it with GetTask).
- `SendStreamingMessage` (`message/stream`): the same run, answered as SSE: the task (submitted), a working
  status for each new agent message, the response artifact, the final status.
- `GetTask` (`tasks/get`), `CancelTask` (`tasks/cancel`: a queued or running task is cancelled; a finished one is
  "not cancelable", -32002).
- Push notifications (-32003) and ListTasks / GetExtendedAgentCard (-32004) are refused by name.

Message parts: `text` (becomes the user message), `data` (an object, merged into the graph's input), `file` (0.3:
`uri` or `bytes`) or `url` / `raw` (1.0), which become a content block of the user message; anything else is
-32005. Errors follow JSON-RPC (HTTP 200 with `error`); a request that is not JSON-RPC at all (wrong Accept) is
HTTP 400 `{"error": …}`, as the reference. The agent card is at `/a2a/{id}/.well-known/agent-card.json` (and
`agent.json`, GET on `/a2a/{id}`, `/.well-known/agent-card.json?assistant_id=`). Runs are the services' own, at
interactive priority, so A2A traffic queues like any client's runs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from crongraph import __version__, serde
from crongraph.errors import CrongraphError, NotFound
from crongraph.graphs.schemas import graph_schemas
from crongraph.ids import parse_uuid
from crongraph.protocols import a2a_wire as w
from crongraph.protocols.a2a_wire import (
    CONTENT_TYPE,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MODES,
    PARSE_ERROR,
    PUSH_NOT_SUPPORTED,
    TASK_NOT_CANCELABLE,
    TASK_NOT_FOUND,
    UNSUPPORTED,
    RpcError,
)
from crongraph.protocols.caller import Caller, caller_of

# The methods


async def _assistant(rt: Any, assistant_id: str) -> dict[str, Any]:
    resolved = rt.assistants.resolve_id(assistant_id)
    if resolved is None:
        raise RpcError(INVALID_PARAMS, "Invalid assistant ID: must be a UUID or a graph id")
    try:
        assistant: dict[str, Any] = await rt.assistants.get(resolved)
    except NotFound:
        raise RpcError(INVALID_PARAMS, f"Assistant not found: {assistant_id}") from None
    return assistant


async def _task_of(rt: Any, thread_id: str, run: dict[str, Any], history_length: int | None) -> dict[str, Any]:
    """A task as storage has it now: the run's status, and the thread's values, status and interrupts."""
    task_id = f"{thread_id}:{run['run_id']}"
    state = w.RUN_STATES.get(run["status"], "TASK_STATE_SUBMITTED")
    try:
        thread = await rt.threads.get(thread_id)
    except NotFound:
        thread = None
    values = thread["values"] if thread else None
    interrupts = None
    if state == "TASK_STATE_COMPLETED" and thread and thread["status"] == "interrupted":
        state, interrupts = "TASK_STATE_INPUT_REQUIRED", w.interrupt_list(thread["interrupts"])
    task = w.task_json(task_id, thread_id, state, values, error=run.get("error"), interrupts=interrupts)
    if history_length != 0:
        task["history"] = w.history(values, thread_id, task_id, history_length)
    return task


async def _start(caller: Caller, assistant_id: str, params: Any) -> tuple[dict[str, Any], int | None, bool]:
    """Check a SendMessage's params and create its run; the run, the history length and returnImmediately."""
    rt = caller.runtime
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: must be an object")
    message = params.get("message")
    if not isinstance(message, dict):
        raise RpcError(INVALID_PARAMS, "Missing or invalid 'message' in params")
    config = params.get("configuration") or {}
    if not isinstance(config, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: 'configuration' must be an object")
    if config.get("taskPushNotificationConfig") or config.get("pushNotificationConfig"):
        raise RpcError(PUSH_NOT_SUPPORTED, "Push notifications are not supported")
    accepted = config.get("acceptedOutputModes") or []
    if accepted and not set(accepted) & {*MODES, "*/*", "text/*", "application/*"}:
        raise RpcError(CONTENT_TYPE, f"This agent answers {' or '.join(MODES)}, none of {accepted}")
    history_length = w.history_length_of(config)
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise RpcError(INVALID_PARAMS, "Missing required 'messageId' in message")
    role = message.get("role")
    if role not in ("user", "ROLE_USER", "agent", "ROLE_AGENT"):
        raise RpcError(INVALID_PARAMS, "Message 'role' must be user or agent (ROLE_USER, ROLE_AGENT)")
    assistant = await _assistant(rt, assistant_id)
    graph_input, resume = w.input_from_parts(
        message.get("parts"), "human" if role in ("user", "ROLE_USER") else "assistant", message_id
    )
    if "messages" in graph_input:
        async with rt.assistants.graph_of(assistant["assistant_id"]) as (graph, _):
            schema = graph_schemas(graph)["input_schema"] or {}
        if "messages" not in (schema.get("properties") or {}):
            raise RpcError(
                INVALID_PARAMS,
                "This assistant's input has no 'messages': send a data part with its input fields instead",
            )
    context = message.get("contextId")
    body: dict[str, Any] = {"assistant_id": assistant["assistant_id"], "if_not_exists": "create"}
    body["metadata"] = {"a2a_message_id": message_id}
    if message.get("taskId") is not None:
        thread_id, run_id = w.task_ref(message["taskId"])
        if context is not None and context != thread_id:
            raise RpcError(INVALID_PARAMS, "contextId and taskId name different contexts")
        try:
            run = await rt.runs.get(thread_id, run_id, ended_too=True)
        except NotFound:
            raise RpcError(TASK_NOT_FOUND, f"Task not found: {message['taskId']}") from None
        task = await _task_of(rt, thread_id, run, 0)
        if task["status"]["state"] != "TASK_STATE_INPUT_REQUIRED":
            raise RpcError(UNSUPPORTED, "Only a task that waits for input accepts another message")
        body["command"] = {"resume": resume}
    else:
        named = str(uuid.uuid4()) if context is None else (parse_uuid(context) if isinstance(context, str) else None)
        if named is None:
            raise RpcError(INVALID_PARAMS, "contextId must be a UUID (it is the thread id)")
        thread_id = named
        body["input"] = graph_input
    try:
        with caller.acting():
            run = await rt.runs.create(thread_id, body)  # interactive priority, like a client's run
    except CrongraphError as exc:
        raise RpcError(INVALID_PARAMS, exc.detail) from None
    return run, history_length, bool(config.get("returnImmediately") or config.get("blocking") is False)


async def send_message(caller: Caller, assistant_id: str, params: Any) -> dict[str, Any]:
    run, history_length, immediately = await _start(caller, assistant_id, params)
    rt = caller.runtime
    if not immediately:
        run = await rt.runs.wait_for_end(run["run_id"])
    return {"task": await _task_of(rt, run["thread_id"], run, history_length)}


async def get_task(caller: Caller, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: must be an object")
    thread_id, run_id = w.task_ref(params.get("id"))
    try:
        run = await caller.runtime.runs.get(thread_id, run_id, ended_too=True)
    except NotFound:
        raise RpcError(TASK_NOT_FOUND, f"Task not found: {params.get('id')}") from None
    task: dict[str, Any] = await _task_of(caller.runtime, thread_id, run, w.history_length_of(params))
    return task


async def cancel_task(caller: Caller, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: must be an object")
    rt = caller.runtime
    thread_id, run_id = w.task_ref(params.get("id"))
    try:
        run = await rt.runs.get(thread_id, run_id, ended_too=True)
    except NotFound:
        raise RpcError(TASK_NOT_FOUND, f"Task not found: {params.get('id')}") from None
    if run["status"] not in ("pending", "running"):
        raise RpcError(TASK_NOT_CANCELABLE, "Task is not cancelable in its current state")
    await rt.runs.cancel(thread_id, [run_id], "interrupt")
    run = await rt.runs.wait_for_end(run_id)
    task: dict[str, Any] = await _task_of(rt, thread_id, run, 0)
    return task


async def _stream(caller: Caller, assistant_id: str, params: Any, rpc_id: Any, old_names: bool) -> AsyncIterator[bytes]:
    def frame(kind: str, payload: dict[str, Any], final: bool = False) -> bytes:
        if old_names:
            result = w.legacy({**payload, "kind": kind, **({"final": final} if kind == "status-update" else {})})
        else:
            key = {"task": "task", "status-update": "statusUpdate", "artifact-update": "artifactUpdate"}[kind]
            result = {key: payload}
        return b"data: " + serde.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": result}) + b"\n\n"

    try:
        run, history_length, _ = await _start(caller, assistant_id, params)
    except RpcError as exc:
        yield b"data: " + serde.dumps(_error(exc.code, exc.message, rpc_id)) + b"\n\n"
        return
    rt = caller.runtime
    thread_id, task_id = run["thread_id"], f"{run['thread_id']}:{run['run_id']}"
    ids = {"taskId": task_id, "contextId": thread_id}
    yield frame("task", w.task_json(task_id, thread_id, "TASK_STATE_SUBMITTED", None))
    seen: set[str] | None = None
    async for event in rt.runs.events(run["run_id"]):
        values = serde.loads(event.data) if event.name == "values" else None
        if not isinstance(values, dict):
            continue
        messages = values.get("messages") or []
        if seen is None:  # the run's first values: the context so far and this message, nothing new yet
            seen = {str(m.get("id")) for m in messages if isinstance(m, dict)}
            continue
        for message in messages:
            converted = w.a2a_message(message, thread_id, task_id)
            if converted and converted["role"] == "ROLE_AGENT" and converted["messageId"] not in seen:
                seen.add(converted["messageId"])
                status = {"state": "TASK_STATE_WORKING", "message": converted, "timestamp": w.now()}
                yield frame("status-update", {**ids, "status": status})
    ended = await rt.runs.wait_for_end(run["run_id"])
    task = await _task_of(rt, thread_id, ended, history_length)
    for artifact in task.get("artifacts", []):
        yield frame("artifact-update", {**ids, "artifact": artifact, "lastChunk": True})
    yield frame("status-update", {**ids, "status": task["status"]}, final=True)


# HTTP


def _error(code: int, message: str, rpc_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": message}}


def _accepts(header: str, media_type: str) -> bool:
    for item in header.split(","):
        value = item.split(";", 1)[0].strip().lower()
        if value in ("*/*", media_type) or (value.endswith("/*") and media_type.startswith(value[:-1])):
            return True
    return False


router = APIRouter(tags=["a2a"])


@router.post("/a2a/{assistant_id}", summary="A2A JSON-RPC")
@router.post("/a2a/{assistant_id}/", include_in_schema=False)
async def a2a_post(assistant_id: str, request: Request) -> Response:
    """A2A JSON-RPC 2.0 for one assistant: SendMessage, SendStreamingMessage (SSE), GetTask, CancelTask (and
    their 0.3 names message/send, message/stream, tasks/get, tasks/cancel)."""
    try:
        message = serde.loads(await request.body())
    except ValueError:
        return JSONResponse(_error(PARSE_ERROR, "Invalid JSON payload"))
    if not isinstance(message, dict):
        return JSONResponse(_error(INVALID_REQUEST, "Invalid message format: expected object"))
    rpc_id = message.get("id")
    if rpc_id is not None and (isinstance(rpc_id, bool) or not isinstance(rpc_id, str | int | float)):
        return JSONResponse(_error(INVALID_REQUEST, "'id' must be a string, number, or null"))
    if message.get("jsonrpc") != "2.0":
        return JSONResponse(
            _error(INVALID_REQUEST, "Invalid JSON-RPC message: missing or invalid jsonrpc version", rpc_id)
        )
    method = message.get("method")
    if not isinstance(method, str):
        if rpc_id is not None and ("result" in message or "error" in message):
            return Response(status_code=202)  # a response to nothing we asked: acknowledged
        return JSONResponse(
            _error(METHOD_NOT_FOUND if method is not None else INVALID_REQUEST, "Missing method", rpc_id)
        )
    old_names = method in w.ALIASES
    name = w.ALIASES.get(method, method)
    accept = request.headers.get("accept") or ""
    wanted = "text/event-stream" if name == "SendStreamingMessage" else "application/json"
    if not _accepts(accept, wanted):
        return JSONResponse({"error": f"Accept header must include {wanted}"}, status_code=400)
    caller = caller_of(request)
    params = message.get("params", {})
    if name == "SendStreamingMessage":
        stream = _stream(caller, assistant_id, params, rpc_id, old_names)
        return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"})
    try:
        if name == "SendMessage":
            result: Any = await send_message(caller, assistant_id, params)
        elif name == "GetTask":
            result = await get_task(caller, params)
        elif name == "CancelTask":
            result = await cancel_task(caller, params)
        elif name in w.PUSH_METHODS:
            raise RpcError(PUSH_NOT_SUPPORTED, "Push notifications are not supported")
        elif name in w.UNSUPPORTED_METHODS:
            raise RpcError(UNSUPPORTED, f"{method} is not supported by this agent")
        else:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
    except RpcError as exc:
        return JSONResponse(_error(exc.code, exc.message, rpc_id))
    if old_names:
        result = w.legacy(result["task"] if set(result) == {"task"} else result)
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "result": result})


@router.delete("/a2a/{assistant_id}", include_in_schema=False)
async def a2a_delete(assistant_id: str) -> Response:
    return Response(status_code=405)


async def agent_card(request: Request, assistant_id: str) -> dict[str, Any]:
    """The A2A 1.0 agent card of one assistant (the reference's fields; `url` kept for 0.3 clients)."""
    caller = caller_of(request)
    assistant = await _assistant(caller.runtime, assistant_id)
    async with caller.runtime.assistants.graph_of(assistant["assistant_id"]) as (graph, _):
        schemas = graph_schemas(graph)
    schema = schemas["input_schema"] or schemas["state_schema"] or {}
    properties = schema.get("properties") or {}
    name = assistant["name"]
    description = assistant.get("description") or f"{name} assistant"
    base = str(request.base_url).rstrip("/")
    url = f"{base}/a2a/{assistant['assistant_id']}"
    return {
        "name": name,
        "description": description,
        "url": url,
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        "capabilities": {"streaming": True, "pushNotifications": False},
        "defaultInputModes": MODES,
        "defaultOutputModes": MODES,
        "skills": [
            {
                "id": f"{assistant['assistant_id']}-main",
                "name": f"{name} Capabilities",
                "description": description,
                "tags": ["assistant", "langgraph"],
                "examples": [],
                "inputModes": MODES,
                "outputModes": MODES,
                "metadata": {
                    "inputSchema": {
                        "required": schema.get("required") or [],
                        "properties": sorted(properties),
                        "supportsA2A": "messages" in properties,
                    }
                },
            }
        ],
        "version": __version__,
    }


async def _card_response(request: Request, assistant_id: str | None) -> Response:
    if not assistant_id:
        return JSONResponse(
            {"error": {"code": INVALID_PARAMS, "message": "Missing query parameter: assistant_id"}}, 400
        )
    try:
        return JSONResponse(await agent_card(request, assistant_id))
    except RpcError as exc:
        status = 404 if exc.message.startswith("Assistant not found") else 400
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=status)


@router.get("/a2a/{assistant_id}", include_in_schema=False)
@router.get("/a2a/{assistant_id}/.well-known/agent-card.json", include_in_schema=False)
@router.get("/a2a/{assistant_id}/.well-known/agent.json", include_in_schema=False)
async def assistant_card(assistant_id: str, request: Request) -> Response:
    return await _card_response(request, assistant_id)


@router.get("/.well-known/agent-card.json", include_in_schema=False)
async def root_card(request: Request, assistant_id: str | None = None) -> Response:
    return await _card_response(request, assistant_id)
