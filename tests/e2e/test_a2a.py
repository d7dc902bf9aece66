"""A2A at /a2a/{assistant_id} against a real server, through the official `a2a-sdk` client (A2A 1.0 JSON-RPC):
the agent card it resolves, a message sent and answered as a completed task, a streamed message (task, working
status, artifact, final status), the task read back, contextId as the thread id, a failing graph as a failed
task, an interrupt as input-required and its resumption, cancel; and raw JSON-RPC for the 0.3 method names, the
part kinds refused and the protocol errors."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import GetTaskRequest, Message, Part, Role, SendMessageRequest
from google.protobuf import json_format
from langgraph_sdk import get_client

from tests.support.server import ServerProcess

JSON = {"accept": "application/json"}


def assistant_id(server: ServerProcess, graph: str) -> str:
    body = {"graph_id": graph, "metadata": {"created_by": "system"}}
    found = httpx.post(f"{server.url}/assistants/search", json=body, timeout=30).json()
    return str(found[0]["assistant_id"])


def user_message(text: str, context_id: str | None = None, task_id: str | None = None) -> SendMessageRequest:
    message = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)])
    if context_id:
        message.context_id = context_id
    if task_id:
        message.task_id = task_id
    return SendMessageRequest(message=message)


async def events(server: ServerProcess, graph: str, request: SendMessageRequest, streaming: bool) -> list[Any]:
    client = await create_client(f"{server.url}/a2a/{assistant_id(server, graph)}", ClientConfig(streaming=streaming))
    try:
        return [json_format.MessageToDict(e) async for e in client.send_message(request)]
    finally:
        await client.close()


def rpc(server: ServerProcess, aid: str, method: str, params: Any, headers: dict[str, str] = JSON) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": "r1", "method": method, "params": params}
    response = httpx.post(f"{server.url}/a2a/{aid}", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_agent_card(server: ServerProcess) -> None:
    aid = assistant_id(server, "agent")
    card = httpx.get(f"{server.url}/a2a/{aid}/.well-known/agent-card.json").json()
    assert card["name"] == "agent" and card["url"] == f"{server.url}/a2a/{aid}"
    assert card["supportedInterfaces"] == [
        {"url": f"{server.url}/a2a/{aid}", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ]
    assert card["capabilities"]["streaming"] is True and card["capabilities"]["pushNotifications"] is False
    assert card["skills"][0]["metadata"]["inputSchema"]["supportsA2A"] is True
    assert httpx.get(f"{server.url}/.well-known/agent-card.json", params={"assistant_id": aid}).json() == card
    missing = httpx.get(f"{server.url}/a2a/{uuid.uuid4()}/.well-known/agent-card.json")
    assert missing.status_code == 404 and "Assistant not found" in missing.json()["error"]["message"]


async def test_send_a_message_then_get_the_task(server: ServerProcess) -> None:
    [event] = await events(server, "agent", user_message("hello agent"), streaming=False)
    task = event["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"] == [{"text": "echo: hello agent"}]
    assert [m["role"] for m in task["history"]] == ["ROLE_USER", "ROLE_AGENT"]
    context_id, run_id = task["id"].split(":")
    assert context_id == task["contextId"]
    # The context is a thread of crongraph's, with the run in it.
    lg = get_client(url=server.url)
    try:
        assert (await lg.runs.get(context_id, run_id))["status"] == "success"
    finally:
        await lg.http.client.aclose()
    client = await create_client(f"{server.url}/a2a/{assistant_id(server, 'agent')}", ClientConfig(streaming=False))
    try:
        again = json_format.MessageToDict(await client.get_task(GetTaskRequest(id=task["id"])))
    finally:
        await client.close()
    assert again["status"]["state"] == "TASK_STATE_COMPLETED" and again["id"] == task["id"]
    # A second message in the same context continues the thread.
    [second] = await events(server, "agent", user_message("and again", context_id=context_id), streaming=False)
    assert second["task"]["contextId"] == context_id
    assert [m["parts"][0]["text"] for m in second["task"]["history"]] == [
        "hello agent",
        "echo: hello agent",
        "and again",
        "echo: and again",
    ]


async def test_stream_a_message(server: ServerProcess) -> None:
    stream = await events(server, "agent", user_message("stream it"), streaming=True)
    kinds = [next(iter(e)) for e in stream]
    assert kinds == ["task", "statusUpdate", "artifactUpdate", "statusUpdate"]
    assert stream[0]["task"]["status"]["state"] == "TASK_STATE_SUBMITTED"
    working = stream[1]["statusUpdate"]["status"]
    assert working["state"] == "TASK_STATE_WORKING" and working["message"]["parts"] == [{"text": "echo: stream it"}]
    assert stream[2]["artifactUpdate"]["artifact"]["parts"] == [{"text": "echo: stream it"}]
    assert stream[3]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_a_failing_graph_is_a_failed_task(server: ServerProcess) -> None:
    [event] = await events(server, "fails", user_message("boom"), streaming=False)
    status = event["task"]["status"]
    assert status["state"] == "TASK_STATE_FAILED"
    assert "ValueError: kaboom" in status["message"]["parts"][0]["text"]


async def test_an_interrupt_asks_for_input_and_a_reply_resumes_it(server: ServerProcess) -> None:
    [event] = await events(server, "ask", user_message("may I?"), streaming=False)
    task = event["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert task["artifacts"][0]["parts"][0]["data"]["value"] == {"question": "approve?"}
    reply = user_message("yes", context_id=task["contextId"], task_id=task["id"])
    [resumed] = await events(server, "ask", reply, streaming=False)
    assert resumed["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_the_0_3_method_names_answer_0_3_json(server: ServerProcess) -> None:
    aid = assistant_id(server, "agent")
    message = {"kind": "message", "messageId": "m1", "role": "user", "parts": [{"kind": "text", "text": "old style"}]}
    task = rpc(server, aid, "message/send", {"message": message})["result"]
    assert task["kind"] == "task" and task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"] == [{"kind": "text", "text": "echo: old style"}]
    assert task["history"][-1]["role"] == "agent"
    got = rpc(server, aid, "tasks/get", {"id": task["id"]})["result"]
    assert got["id"] == task["id"] and got["status"]["state"] == "completed"
    # A finished task cannot be cancelled; an unknown one is not found.
    assert rpc(server, aid, "tasks/cancel", {"id": task["id"]})["error"]["code"] == -32002
    unknown = f"{uuid.uuid4()}:{uuid.uuid4()}"
    assert rpc(server, aid, "tasks/get", {"id": unknown})["error"]["code"] == -32001
    stream = httpx.post(
        f"{server.url}/a2a/{aid}",
        json={"jsonrpc": "2.0", "id": 2, "method": "message/stream", "params": {"message": message}},
        headers={"accept": "text/event-stream"},
        timeout=60,
    )
    frames = [line for line in stream.text.splitlines() if line.startswith("data: ")]
    assert '"kind":"task"' in frames[0] and '"final":true' in frames[-1] and '"state":"completed"' in frames[-1]


def test_cancel_a_running_task(server: ServerProcess) -> None:
    aid = assistant_id(server, "slow")
    message = {"messageId": "m2", "role": "ROLE_USER", "parts": [{"text": "take your time"}]}
    params = {"message": message, "configuration": {"returnImmediately": True}}
    task = rpc(server, aid, "SendMessage", params)["result"]["task"]
    assert task["status"]["state"] in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
    cancelled = rpc(server, aid, "CancelTask", {"id": task["id"]})["result"]
    assert cancelled["status"]["state"] == "TASK_STATE_CANCELED"


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        ([{"kind": "video-call", "uri": "x"}], -32005),
        ([{"text": 3}], -32005),
        ([{"data": [1, 2]}], -32005),
        ([], -32602),
    ],
)
def test_refused_parts(server: ServerProcess, parts: list[Any], code: int) -> None:
    aid = assistant_id(server, "agent")
    answer = rpc(server, aid, "SendMessage", {"message": {"messageId": "m3", "role": "ROLE_USER", "parts": parts}})
    assert answer["error"]["code"] == code and answer["id"] == "r1"


def test_protocol_errors(server: ServerProcess) -> None:
    aid = assistant_id(server, "agent")
    url = f"{server.url}/a2a/{aid}"
    assert httpx.post(url, content=b"{nope", headers=JSON).json()["error"]["code"] == -32700
    assert httpx.post(url, json=[1], headers=JSON).json()["error"]["code"] == -32600
    assert rpc(server, aid, "tasks/list", {})["error"]["code"] == -32601
    assert rpc(server, aid, "ListTasks", {})["error"]["code"] == -32004
    assert rpc(server, aid, "tasks/pushNotificationConfig/set", {})["error"]["code"] == -32003
    bad_context = {"messageId": "m4", "role": "ROLE_USER", "parts": [{"text": "x"}], "contextId": "not-a-uuid"}
    assert rpc(server, aid, "SendMessage", {"message": bad_context})["error"]["code"] == -32602
    wrong_accept = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": "GetTask"}, headers={"accept": "text/html"}
    )
    assert wrong_accept.status_code == 400 and "Accept" in wrong_accept.json()["error"]
    unknown_assistant = rpc(server, str(uuid.uuid4()), "GetTask", {"id": "x"})
    assert unknown_assistant["error"]["code"] == -32001  # a task id that names no run
    assert httpx.delete(url).status_code == 405
