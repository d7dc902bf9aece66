"""Human in the loop through the official SDK: a graph that calls interrupt() leaves its thread `interrupted`,
wait answers with `__interrupt__`, and a run with `command.resume` carries on; static interrupt_before and
interrupt_after; starting from an earlier checkpoint; durability."""

from __future__ import annotations

from typing import Any

HUMAN = {"messages": [{"role": "user", "content": "hi"}]}


async def test_interrupt_then_resume_with_command(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    body = await client.runs.wait(tid, "ask", input=HUMAN)
    assert body["messages"][0]["content"] == "hi"
    [interrupt] = body["__interrupt__"]
    assert interrupt["value"] == {"question": "approve?"}
    assert isinstance(interrupt["id"], str) and interrupt["id"]

    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted"
    [(_task_id, [stored])] = thread["interrupts"].items()
    assert stored["id"] == interrupt["id"]
    assert stored["value"] == {"question": "approve?"}
    assert "__interrupt__" not in thread["values"]
    state = await client.threads.get_state(tid)
    assert state["next"] == ["ask"]
    assert state["interrupts"][0]["id"] == interrupt["id"]

    runs = await client.runs.list(tid)
    assert runs[0]["status"] == "success"  # the run itself ended well: it stopped where the graph asked

    result = await client.runs.wait(tid, "ask", command={"resume": "yes"})
    assert "__interrupt__" not in result
    assert result["messages"][-1]["content"] == "answer: yes"
    thread = await client.threads.get(tid)
    assert thread["status"] == "idle"
    assert thread["interrupts"] == {}
    assert (await client.threads.get_state(tid))["next"] == []


async def test_interrupt_reaches_a_values_only_stream_as_updates(client: Any) -> None:
    thread = await client.threads.create()
    parts = [p async for p in client.runs.stream(thread["thread_id"], "ask", input=HUMAN, stream_mode="values")]
    assert [p.event for p in parts] == ["metadata", "values", "updates", "values"]
    assert parts[2].data["__interrupt__"][0]["value"] == {"question": "approve?"}
    assert parts[3].data["__interrupt__"][0]["id"] == parts[2].data["__interrupt__"][0]["id"]

    resumed = [
        p
        async for p in client.runs.stream(thread["thread_id"], "ask", command={"resume": "ok"}, stream_mode=["updates"])
    ]
    assert [p.event for p in resumed] == ["metadata", "updates"]
    assert resumed[1].data["ask"]["messages"][-1]["content"] == "answer: ok"


async def test_interrupt_before_stops_and_resumes(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    body = await client.runs.wait(tid, "agent", input=HUMAN, interrupt_before=["step"])
    assert [m["content"] for m in body["messages"]] == ["hi"]
    assert (await client.threads.get(tid))["status"] == "interrupted"
    assert (await client.threads.get_state(tid))["next"] == ["step"]

    result = await client.runs.wait(tid, "agent", input=None)
    assert [m["content"] for m in result["messages"]] == ["hi", "echo: hi"]
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_interrupt_after_stops_after_the_node(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    body = await client.runs.wait(tid, "nested", input={"items": []}, interrupt_after=["child"])
    assert body["items"] == ["inner"]
    assert (await client.threads.get(tid))["status"] == "interrupted"
    assert (await client.threads.get_state(tid))["next"] == ["after"]
    result = await client.runs.wait(tid, "nested", input=None)
    assert result["items"] == ["inner", "outer"]
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_interrupt_before_everything(client: Any) -> None:
    thread = await client.threads.create()
    body = await client.runs.wait(thread["thread_id"], "nested", input={"items": []}, interrupt_before="*")
    assert body["items"] == []
    assert (await client.threads.get_state(thread["thread_id"]))["next"] == ["child"]


async def test_run_from_an_earlier_checkpoint(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "agent", input=HUMAN)
    await client.runs.wait(tid, "agent", input={"messages": [{"role": "user", "content": "second"}]})
    history = await client.threads.get_history(tid, limit=20)
    after_first = next(s for s in history if s["values"].get("count") == 1 and s["next"] == [])

    forked = await client.runs.wait(
        tid,
        "agent",
        input={"messages": [{"role": "user", "content": "fork"}]},
        checkpoint_id=after_first["checkpoint_id"],
    )
    assert [m["content"] for m in forked["messages"]] == ["hi", "echo: hi", "fork", "echo: fork"]
    assert forked["count"] == 2
    latest = await client.threads.get_state(tid)
    assert latest["values"]["messages"][-1]["content"] == "echo: fork"

    # The same through `checkpoint`.
    again = await client.runs.wait(
        tid,
        "agent",
        input={"messages": [{"role": "user", "content": "again"}]},
        checkpoint={"checkpoint_id": after_first["checkpoint_id"], "checkpoint_ns": ""},
    )
    assert [m["content"] for m in again["messages"]][-2:] == ["again", "echo: again"]
    assert again["count"] == 2


async def test_durability_exit_saves_only_the_end(client: Any) -> None:
    each_step = await client.threads.create()
    await client.runs.wait(each_step["thread_id"], "nested", input={"items": []}, durability="sync")
    at_exit = await client.threads.create()
    result = await client.runs.wait(at_exit["thread_id"], "nested", input={"items": []}, durability="exit")
    assert result["items"] == ["inner", "outer"]
    stepwise = await client.threads.get_history(each_step["thread_id"], limit=50)
    final_only = await client.threads.get_history(at_exit["thread_id"], limit=50)
    assert len(stepwise) >= 3
    assert len(final_only) < len(stepwise)
    assert final_only[0]["values"]["items"] == ["inner", "outer"]


def test_sync_client_interrupt_and_resume(sync_client: Any) -> None:
    thread = sync_client.threads.create()
    body = sync_client.runs.wait(thread["thread_id"], "ask", input=HUMAN)
    assert body["__interrupt__"][0]["value"] == {"question": "approve?"}
    assert sync_client.threads.get(thread["thread_id"])["status"] == "interrupted"
    result = sync_client.runs.wait(thread["thread_id"], "ask", command={"resume": "sure"})
    assert result["messages"][-1]["content"] == "answer: sure"


async def test_command_update_and_goto(client: Any) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "agent", input=HUMAN)
    result = await client.runs.wait(
        tid,
        "agent",
        command={"update": {"count": 10, "messages": [{"role": "user", "content": "jump"}]}, "goto": "step"},
    )
    assert result["count"] == 11
    assert [m["content"] for m in result["messages"]][-2:] == ["jump", "echo: jump"]


async def test_interrupt_inside_a_subgraph_reaches_a_run_that_did_not_ask_for_subgraphs(client: Any) -> None:
    # LangGraph is asked for subgraphs' streams only when the client asks (graphs/execute.py): the interrupt of a
    # subgraph must still stop the run, reach the wait's answer and a stream, and be resumable.
    thread = await client.threads.create()
    tid = thread["thread_id"]
    body = await client.runs.wait(tid, "sub_ask", input={"items": []})
    [interrupt] = body["__interrupt__"]
    assert interrupt["value"] == {"question": "inner?"}
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted"
    assert [i["id"] for [i] in thread["interrupts"].values()] == [interrupt["id"]]

    other = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(other, "sub_ask", input={"items": []}, stream_mode="updates")]
    assert [p.event for p in parts] == ["metadata", "updates"]
    assert parts[1].data["__interrupt__"][0]["value"] == {"question": "inner?"}

    result = await client.runs.wait(tid, "sub_ask", command={"resume": "yes"})
    assert "__interrupt__" not in result
    assert result["items"][-2:] == ["inner:yes", "finished"]
    assert (await client.threads.get(tid))["status"] == "idle"
