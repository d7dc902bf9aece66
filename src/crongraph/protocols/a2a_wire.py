"""A2A wire shapes for `protocols/a2a.py`: error codes, LangChain messages as A2A messages and parts, tasks and
their artifacts (in A2A 1.0 JSON, with 0.3's `kind` keys, which 1.0 parsers ignore; `legacy` turns 1.0 JSON into
0.3 JSON), and message parts read into a graph's input. Pure functions: no I/O, nothing of the services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from crongraph.ids import parse_uuid

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
TASK_NOT_FOUND, TASK_NOT_CANCELABLE, PUSH_NOT_SUPPORTED, UNSUPPORTED, CONTENT_TYPE = (
    -32001,
    -32002,
    -32003,
    -32004,
    -32005,
)

ALIASES = {
    "message/send": "SendMessage",
    "message/stream": "SendStreamingMessage",
    "tasks/get": "GetTask",
    "tasks/cancel": "CancelTask",
    "tasks/resubscribe": "SubscribeToTask",
    "tasks/pushNotificationConfig/set": "CreateTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/get": "GetTaskPushNotificationConfig",
    "tasks/pushNotificationConfig/list": "ListTaskPushNotificationConfigs",
    "tasks/pushNotificationConfig/delete": "DeleteTaskPushNotificationConfig",
    "agent/getAuthenticatedExtendedCard": "GetExtendedAgentCard",
}
PUSH_METHODS = {n for n in ALIASES.values() if "PushNotification" in n}
UNSUPPORTED_METHODS = {"ListTasks", "GetExtendedAgentCard", "SubscribeToTask"}
RUN_STATES = {
    "pending": "TASK_STATE_SUBMITTED",
    "running": "TASK_STATE_WORKING",
    "success": "TASK_STATE_COMPLETED",
    "interrupted": "TASK_STATE_CANCELED",  # a cancelled run; a graph's interrupt leaves the run `success`
    "error": "TASK_STATE_FAILED",
    "timeout": "TASK_STATE_FAILED",
}
MODES = ["application/json", "text/plain"]


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Wire shapes


def now() -> str:
    return datetime.now(UTC).isoformat()


def legacy(data: Any) -> Any:
    """1.0 JSON as 0.3 JSON: lower-case roles and states, the task not wrapped in {"task": …}."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key == "role" and isinstance(value, str):
                out[key] = value.removeprefix("ROLE_").lower()
            elif key == "state" and isinstance(value, str):
                out[key] = value.removeprefix("TASK_STATE_").lower().replace("_", "-")
            else:
                out[key] = legacy(value)
        return out
    if isinstance(data, list):
        return [legacy(item) for item in data]
    return data


def _text_part(text: str) -> dict[str, Any]:
    return {"kind": "text", "text": text}


def _content_parts(content: Any) -> list[dict[str, Any]]:
    """A LangChain message's content as A2A parts: text as text, other blocks as data."""
    if isinstance(content, str):
        return [_text_part(content)]
    parts = []
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, str):
            parts.append(_text_part(block))
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(_text_part(block["text"]))
        elif block is not None:
            parts.append({"kind": "data", "data": block})
    return parts


def a2a_message(message: Any, context_id: str, task_id: str | None) -> dict[str, Any] | None:
    if not isinstance(message, dict) or message.get("type") not in ("human", "ai"):
        return None  # tool and system messages are the agent's inner workings
    out = {
        "kind": "message",
        "messageId": str(message.get("id") or uuid.uuid4()),
        "contextId": context_id,
        "role": "ROLE_USER" if message["type"] == "human" else "ROLE_AGENT",
        "parts": _content_parts(message.get("content")),
    }
    if task_id:
        out["taskId"] = task_id
    return out


def history(values: Any, context_id: str, task_id: str, length: int | None) -> list[dict[str, Any]]:
    messages = values.get("messages") if isinstance(values, dict) else None
    converted = [m for m in (a2a_message(x, context_id, task_id) for x in messages or []) if m]
    return converted[-length:] if length else converted


def _response_parts(values: Any) -> list[dict[str, Any]]:
    """The agent's answer: its last message's content, else the output as JSON data."""
    messages = values.get("messages") if isinstance(values, dict) else None
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("type") == "ai":
            parts = _content_parts(message.get("content"))
            if parts:
                return parts
        if isinstance(message, dict) and message.get("type") == "human":
            break
    return [{"kind": "data", "data": values if isinstance(values, dict) else {"output": values}}]


def _artifact(parts: list[dict[str, Any]], name: str, description: str) -> dict[str, Any]:
    return {"artifactId": str(uuid.uuid4()), "name": name, "description": description, "parts": parts}


def task_json(
    task_id: str, context_id: str, state: str, values: Any, *, error: Any = None, interrupts: Any = None
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "kind": "task",
        "id": task_id,
        "contextId": context_id,
        "status": {"state": state, "timestamp": now()},
    }
    if state == "TASK_STATE_FAILED":
        text = f"Error executing assistant: {_error_text(error)}"
        task["status"]["message"] = {
            "kind": "message",
            "messageId": str(uuid.uuid4()),
            "role": "ROLE_AGENT",
            "parts": [_text_part(text)],
            "taskId": task_id,
            "contextId": context_id,
        }
    elif state == "TASK_STATE_INPUT_REQUIRED":
        parts = [{"kind": "data", "data": {"id": i.get("id"), "value": i.get("value")}} for i in interrupts or []]
        task["artifacts"] = [_artifact(parts, "Interrupt", "Agent requires input to continue")]
    elif state == "TASK_STATE_COMPLETED":
        task["artifacts"] = [_artifact(_response_parts(values), "Assistant Response", "The assistant's response")]
    return task


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return ": ".join(str(error[k]) for k in ("error", "message") if error.get(k)) or "run failed"
    return str(error)


def interrupt_list(value: Any) -> list[dict[str, Any]]:
    """Interrupts from a run's output (a list) or a thread's row ({task_id: [interrupt, …]})."""
    if isinstance(value, dict):
        return [i for items in value.values() for i in (items or []) if isinstance(i, dict)]
    return [i for i in value or [] if isinstance(i, dict)]


# Reading the request


def task_ref(task_id: Any) -> tuple[str, str]:
    if not isinstance(task_id, str) or not task_id:
        raise RpcError(INVALID_PARAMS, "Missing or invalid task id: expected '<contextId>:<run id>'")
    context_id, _, run_id = task_id.partition(":")
    thread, run = parse_uuid(context_id), parse_uuid(run_id)
    if thread is None or run is None:
        raise RpcError(TASK_NOT_FOUND, f"Task not found: {task_id}")
    return thread, run


def history_length_of(config: dict[str, Any]) -> int | None:
    value = config.get("historyLength")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RpcError(INVALID_PARAMS, "historyLength must be a non-negative integer")
    return value


def _file_block(part: dict[str, Any]) -> dict[str, Any]:
    """A file part (0.3 `file: {uri|bytes, mimeType, name}`, 1.0 `url`/`raw` with `mediaType`, `filename`) as a
    LangChain content block."""
    file = part["file"] if isinstance(part.get("file"), dict) else part
    mime = file.get("mimeType") or file.get("mediaType") or part.get("mediaType")
    kind = str(mime).split("/", 1)[0] if mime else "file"
    block: dict[str, Any] = {"type": kind if kind in ("image", "audio", "video") else "file"}
    url, data = file.get("uri") or file.get("url"), file.get("bytes") or file.get("raw")
    if isinstance(url, str) and url:
        block["url"] = url
    elif isinstance(data, str) and data:
        block["base64"] = data
    else:
        raise RpcError(CONTENT_TYPE, "A file part needs a uri/url or bytes/raw content")
    if mime:
        block["mime_type"] = mime
    name = file.get("name") or file.get("filename")
    if name:
        block["filename"] = name
    return block


def input_from_parts(parts: Any, role: str, message_id: str) -> tuple[dict[str, Any], Any]:
    """The graph input a message makes, and what the message would resume an interrupt with."""
    if not isinstance(parts, list) or not parts:
        raise RpcError(INVALID_PARAMS, "Message must contain at least one part")
    texts: list[str] = []
    blocks: list[dict[str, Any]] = []
    data: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, dict):
            raise RpcError(CONTENT_TYPE, "Each message part must be an object")
        kinds = [k for k in ("text", "data", "file", "url", "raw") if k in part]
        if len(kinds) != 1:
            raise RpcError(
                CONTENT_TYPE,
                f"Unsupported part (keys {sorted(part)}): A2A agents accept 'text', 'data' and 'file' parts only",
            )
        if kinds[0] == "text":
            if not isinstance(part["text"], str):
                raise RpcError(CONTENT_TYPE, "A text part's 'text' must be a string")
            texts.append(part["text"])
            blocks.append({"type": "text", "text": part["text"]})
        elif kinds[0] == "data":
            if not isinstance(part["data"], dict):
                raise RpcError(CONTENT_TYPE, "A data part must carry a JSON object in 'data'")
            data.update(part["data"])
        else:
            blocks.append(_file_block(part))
    graph_input: dict[str, Any] = dict(data)
    if blocks:
        only_text = all(b["type"] == "text" for b in blocks)
        content: Any = "\n".join(texts) if only_text else blocks
        graph_input["messages"] = [{"role": role, "content": content, "id": message_id}]
    resume: Any = "\n".join(texts) if texts else data
    return graph_input, resume
