"""The LangGraph Platform cron how-to, as a user runs it against a real server with the official Python SDK
(async and sync) and raw HTTP: thread and stateless crons created, fired, observed and deleted, and every error
case of the contract. Schedules are seconds-level (six fields: the sixth is seconds), so nothing waits minutes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from tests.support.sdk import cron_runs, eventually, eventually_sync, get_cron

EVERY_SECOND = "* * * * * *"
MESSAGE = {"messages": [{"role": "user", "content": "What time is it?"}]}


async def test_thread_cron_how_to(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(thread["thread_id"], "agent", schedule=EVERY_SECOND, input=MESSAGE)
    assert cron["thread_id"] == thread["thread_id"]
    assert cron["payload"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    assert cron["on_run_completed"] is None

    runs = await eventually(lambda: client.runs.list(thread["thread_id"]))
    run = runs[0]
    assert run["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    assert run["metadata"]["cron_id"] == cron["cron_id"]
    await client.runs.join(thread["thread_id"], run["run_id"])
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["messages"][-1]["content"] == "echo: What time is it?"

    await client.crons.delete(cron["cron_id"])
    with pytest.raises(NotFoundError):
        await client.http.get(f"/runs/crons/{cron['cron_id']}")
    await asyncio.sleep(1.5)
    settled = await client.runs.list(thread["thread_id"], limit=100)
    await asyncio.sleep(1.5)
    assert len(await client.runs.list(thread["thread_id"], limit=100)) == len(settled)  # no fire after delete
    assert settled, "deleting a cron keeps the runs it created"


async def test_stateless_cron_deletes_its_threads_by_default(client: Any) -> None:
    cron = await client.crons.create("agent", schedule=EVERY_SECOND, input=MESSAGE, metadata={"job": "stateless"})
    assert cron["thread_id"] is None and cron["on_run_completed"] == "delete"

    async def created() -> list[dict[str, Any]]:
        fires = await client.http.get(f"/runs/crons/{cron['cron_id']}/fires")
        return [f for f in fires if f["outcome"] == "created" and f["run_id"]]

    # A run on a temporary thread goes with its thread, often before a poll could see it: the fire log keeps it.
    assert await eventually(created)
    await client.crons.delete(cron["cron_id"])

    async def no_thread_left() -> bool:
        return not await client.threads.search(metadata={"cron_id": cron["cron_id"]})

    await eventually(no_thread_left, within=30)


async def test_stateless_cron_keep_leaves_threads_with_the_cron_metadata(client: Any) -> None:
    cron = await client.crons.create(
        "agent", schedule=EVERY_SECOND, input=MESSAGE, on_run_completed="keep", metadata={"job": "kept"}
    )
    fired = await eventually(lambda: cron_runs(client, cron["cron_id"]))
    await client.crons.delete(cron["cron_id"])
    await client.runs.join(fired[-1]["thread_id"], fired[-1]["run_id"])
    thread = await client.threads.get(fired[-1]["thread_id"])
    assert thread["metadata"]["job"] == "kept"
    assert thread["values"]["messages"][-1]["content"] == "echo: What time is it?"


async def test_cron_object_shape_and_timestamps(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="27 15 * * *", timezone="Asia/Seoul", metadata={"k": "v"}
    )
    for key in (
        "cron_id",
        "assistant_id",
        "thread_id",
        "user_id",
        "end_time",
        "schedule",
        "timezone",
        "payload",
        "next_run_date",
        "metadata",
        "on_run_completed",
        "enabled",
        "created_at",
        "updated_at",
    ):
        assert key in cron
    assert cron["assistant_id"] == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"  # the graph id resolved to its uuid5
    assert cron["payload"]["assistant_id"] == cron["assistant_id"]
    assert cron["payload"]["schedule"] == "27 15 * * *"
    assert cron["metadata"] == {"k": "v"} and cron["enabled"] is True
    next_run = datetime.fromisoformat(cron["next_run_date"])
    assert next_run.utcoffset() == timedelta(0) and cron["next_run_date"].endswith("+00:00")
    assert (next_run.hour, next_run.minute) == (6, 27)  # 15:27 in Seoul (UTC+9)
    await client.crons.delete(cron["cron_id"])


async def test_patch_semantics(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="0 9 * * *", metadata={"k": "v"}, input={"messages": []}
    )
    changed = await client.crons.update(
        cron["cron_id"],
        schedule="0 10 * * *",
        metadata={"k2": "v2"},
        input={"messages": [{"role": "user", "content": "x"}]},
    )
    assert changed["metadata"] == {"k": "v", "k2": "v2"}
    assert datetime.fromisoformat(changed["next_run_date"]).hour == 10
    assert changed["payload"]["input"]["messages"][0]["content"] == "x"
    assert changed["payload"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    tokyo = await client.crons.update(cron["cron_id"], timezone="Asia/Tokyo")
    assert datetime.fromisoformat(tokyo["next_run_date"]).hour == 1  # 10:00 in Tokyo
    ended = await client.crons.update(cron["cron_id"], end_time=datetime.now(UTC) + timedelta(days=30))
    assert ended["end_time"] is not None
    cleared = await client.crons.update(cron["cron_id"], end_time=None)
    assert cleared["end_time"] is None
    await client.crons.delete(cron["cron_id"])


async def test_pause_stops_fires_and_resume_does_not_fire_a_stale_slot(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(thread["thread_id"], "agent", schedule="0 0 1 1 *", input=MESSAGE)
    paused = await client.crons.update(cron["cron_id"], enabled=False)
    assert paused["enabled"] is False
    resumed = await client.crons.update(cron["cron_id"], enabled=True, schedule=EVERY_SECOND)
    assert datetime.fromisoformat(resumed["next_run_date"]) > datetime.now(UTC) - timedelta(seconds=1)
    await eventually(lambda: cron_runs(client, cron["cron_id"]))
    await client.crons.update(cron["cron_id"], enabled=False)
    await asyncio.sleep(0.3)
    count = len(await cron_runs(client, cron["cron_id"]))
    await asyncio.sleep(2.0)
    assert len(await cron_runs(client, cron["cron_id"])) == count
    await client.crons.delete(cron["cron_id"])


async def test_fire_delay_is_milliseconds_and_history_shows_it(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(thread["thread_id"], "agent", schedule=EVERY_SECOND, input=MESSAGE)
    runs = await eventually(lambda: _at_least(cron_runs(client, cron["cron_id"]), 3))
    await client.crons.delete(cron["cron_id"])
    for run in runs:
        assert run["cron_id"] == cron["cron_id"]
        slot = datetime.fromisoformat(run["scheduled_for"])
        assert slot.microsecond == 0
        # On a quiet machine this is about a millisecond; the bound leaves room for a loaded CI machine.
        assert 0 <= run["delay_ms"] < 500, run["delay_ms"]
    slots = sorted(datetime.fromisoformat(r["scheduled_for"]) for r in runs)
    assert len(set(slots)) == len(slots)


async def _at_least(rows: Awaitable[list[Any]], n: int) -> list[Any] | None:
    result = await rows
    return result if len(result) >= n else None


async def test_extensions_next_preview_fires_and_usage(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="27 15 * * *", timezone="Asia/Seoul"
    )
    nxt = await client.http.get(f"/runs/crons/{cron['cron_id']}/next", params={"count": 3})
    assert nxt["description"] == "At 15:27, every day (Asia/Seoul)"
    assert len(nxt["next_run_dates"]) == 3
    preview = await client.http.post("/runs/crons/preview", json={"schedule": "*/15 * * * *", "count": 2})
    assert len(preview["next_run_dates"]) == 2
    got = await get_cron(client, cron["cron_id"])
    assert got["usage"] == {
        "runs": 0,
        "runs_last_24h": 0,
        "skipped": 0,
        "failed": 0,
        "failed_runs": 0,
        "failed_runs_last_24h": 0,
        "tokens": 0,
        "tokens_last_24h": 0,
    }
    assert got["last_run"] is None
    assert await client.http.get(f"/runs/crons/{cron['cron_id']}/fires") == []
    await client.crons.delete(cron["cron_id"])


async def test_search_count_sort_select_and_pagination(client: Any) -> None:
    thread = await client.threads.create()
    tag = f"search-{time.time_ns()}"
    made = []
    for i in range(3):
        made.append(
            await client.crons.create_for_thread(
                thread["thread_id"], "agent", schedule=f"{i} 9 * * *", metadata={"tag": tag, "i": i}
            )
        )
    await client.crons.update(made[0]["cron_id"], enabled=False)
    found = await client.crons.search(metadata={"tag": tag}, sort_by="cron_id", sort_order="asc")
    assert [c["cron_id"] for c in found] == sorted(c["cron_id"] for c in made)
    assert len(await client.crons.search(metadata={"tag": tag}, enabled=False)) == 1
    assert len(await client.crons.search(thread_id=thread["thread_id"], assistant_id="agent")) == 3
    assert await client.crons.count(metadata={"tag": tag}) == 3
    assert await client.crons.count(thread_id=thread["thread_id"]) == 3
    selected = await client.crons.search(metadata={"tag": tag}, select=["cron_id", "schedule"])
    assert all(set(c) == {"cron_id", "schedule"} for c in selected)
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        page = await raw.post("/runs/crons/search", json={"metadata": {"tag": tag}, "limit": 2, "offset": 0})
        assert len(page.json()) == 2
        assert page.headers["X-Pagination-Next"] == "2"
        last = await raw.post("/runs/crons/search", json={"metadata": {"tag": tag}, "limit": 2, "offset": 2})
        assert len(last.json()) == 1 and last.headers["X-Pagination-Total"] == "3"
    for c in made:
        await client.crons.delete(c["cron_id"])


async def test_cascades_thread_and_assistant_delete(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(thread["thread_id"], "agent", schedule="0 9 * * *")
    await client.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client.http.get(f"/runs/crons/{cron['cron_id']}")
    assistant = await client.assistants.create("echo", name="temporary")
    other = await client.crons.create(assistant["assistant_id"], schedule="0 9 * * *")
    await client.assistants.delete(assistant["assistant_id"])
    with pytest.raises(NotFoundError):
        await client.http.get(f"/runs/crons/{other['cron_id']}")


ERRORS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("post", "/runs/crons", {"assistant_id": "agent", "schedule": "61 * * * *"}, 422, "minute field '61'"),
    ("post", "/runs/crons", {"assistant_id": "agent", "schedule": "0 0 31 2 *"}, 422, "Invalid cron schedule"),
    ("post", "/runs/crons", {"assistant_id": "agent", "schedule": "@reboot"}, 422, "Invalid cron schedule"),
    (
        "post",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "* * * * *", "timezone": "Nowhere/X"},
        422,
        "Invalid timezone: 'Nowhere/X'",
    ),
    ("post", "/runs/crons", {"assistant_id": "agent"}, 422, "schedule"),
    ("post", "/runs/crons", {"schedule": "* * * * *"}, 422, "assistant_id"),
    ("post", "/runs/crons", {"assistant_id": "nope", "schedule": "* * * * *"}, 404, "Assistant 'nope' not found"),
    (
        "post",
        "/runs/crons",
        {"assistant_id": "00000000-0000-0000-0000-000000000000", "schedule": "* * * * *"},
        404,
        "not found",
    ),
    (
        "post",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "* * * * *", "on_run_completed": "maybe"},
        422,
        "on_run_completed",
    ),
    (
        "post",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "* * * * *", "end_time": "yesterday"},
        422,
        "end_time",
    ),
    (
        "post",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "* * * * *", "end_time": "2001-01-01T00:00:00"},
        422,
        "end_time",
    ),
    ("post", "/runs/crons", {"assistant_id": "agent", "schedule": 5}, 422, "schedule"),
    (
        "post",
        "/threads/foo/runs/crons",
        {"assistant_id": "agent", "schedule": "* * * * *"},
        422,
        "Invalid thread ID: must be a UUID",
    ),
    (
        "post",
        "/threads/00000000-0000-0000-0000-000000000000/runs/crons",
        {"assistant_id": "agent", "schedule": "* * * * *"},
        404,
        "not found",
    ),
    ("get", "/runs/crons/00000000-0000-0000-0000-000000000000", {}, 404, "not found"),
    ("get", "/runs/crons/xyz", {}, 422, "Invalid cron ID: must be a UUID"),
    ("delete", "/runs/crons/00000000-0000-0000-0000-000000000000", {}, 404, "not found"),
    ("patch", "/runs/crons/00000000-0000-0000-0000-000000000000", {"enabled": False}, 404, "not found"),
    ("post", "/runs/crons/search", {"sort_by": "schedule"}, 422, "sort_by"),
    ("post", "/runs/crons/search", {"select": ["now"]}, 422, "select"),
    ("post", "/runs/crons/search", {"assistant_id": "not-a-graph"}, 422, "assistant"),
    ("post", "/runs/crons/search", {"limit": 0}, 422, "limit"),
    ("post", "/runs/crons/count", {"thread_id": "nope"}, 422, "thread"),
    (
        "post",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "* * * * *", "webhook": "http://127.0.0.1/hook"},
        422,
        "webhook",
    ),
    (
        "post",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "* * * * *", "webhook": "ftp://x.example/hook"},
        422,
        "webhook",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "detail"), ERRORS)
async def test_errors_are_4xx_with_a_detail_naming_the_problem(
    client: Any, method: str, path: str, body: dict[str, Any], status: int, detail: str
) -> None:
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        before = (await raw.post("/runs/crons/count", json={})).json()
        response = await raw.request(method, path, json=body or None)
        assert response.status_code == status, response.text
        message = response.json()["detail"]
        assert isinstance(message, str) and detail.lower() in message.lower(), message
        assert (await raw.post("/runs/crons/count", json={})).json() == before  # nothing changed


async def test_patch_errors(client: Any) -> None:
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(thread["thread_id"], "agent", schedule="0 9 * * *")
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as raw:
        empty = await raw.patch(f"/runs/crons/{cron['cron_id']}", json={})
        assert empty.status_code == 400 and empty.json()["detail"] == "Request body cannot be empty"
        bad = await raw.patch(f"/runs/crons/{cron['cron_id']}", json={"schedule": "0 25 * * *"})
        assert bad.status_code == 422 and "hour" in bad.json()["detail"]
        tz = await raw.patch(f"/runs/crons/{cron['cron_id']}", json={"timezone": "Mars/Olympus"})
        assert tz.status_code == 422
    unchanged = await get_cron(client, cron["cron_id"])
    assert unchanged["schedule"] == "0 9 * * *" and unchanged["timezone"] is None
    with pytest.raises(UnprocessableEntityError):
        await client.crons.update(cron["cron_id"], schedule="nonsense")
    await client.crons.delete(cron["cron_id"])


def test_sync_client_how_to(sync_client: Any) -> None:
    thread = sync_client.threads.create()
    cron = sync_client.crons.create_for_thread(thread["thread_id"], "agent", schedule=EVERY_SECOND, input=MESSAGE)
    eventually_sync(lambda: sync_client.runs.list(thread["thread_id"]), within=10, what="a run of the cron")
    assert sync_client.crons.count(thread_id=thread["thread_id"]) == 1
    sync_client.crons.delete(cron["cron_id"])
    assert sync_client.crons.search(thread_id=thread["thread_id"]) == []


async def test_curl_equivalent(client: Any) -> None:
    """What the how-to's curl tab sends: plain JSON over HTTP."""
    async with httpx.AsyncClient(base_url=client.http.client.base_url) as http:
        thread = (await http.post("/threads", json={})).json()
        created = await http.post(
            f"/threads/{thread['thread_id']}/runs/crons",
            json={"assistant_id": "agent", "schedule": EVERY_SECOND, "input": MESSAGE},
        )
        assert created.status_code == 200
        cron_id = created.json()["cron_id"]
        listed = await http.post("/runs/crons/search", json={"thread_id": thread["thread_id"]})
        assert [c["cron_id"] for c in listed.json()] == [cron_id]

        async def fired() -> Any:
            return (await http.get(f"/threads/{thread['thread_id']}/runs")).json()

        await eventually(fired)
        deleted = await http.delete(f"/runs/crons/{cron_id}")
        assert deleted.status_code == 204 and deleted.content == b""
