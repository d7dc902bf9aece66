"""Custom auth (langgraph.json `auth.path`) through a real crongraph process and the official Python SDK: two users
and an anonymous client across threads, assistants, runs, streams and joins, the thread-stream protocol, crons and
the store (tests/fixtures/auth_project/auth.py says who may do what). A resource another user owns answers exactly
as one that does not exist."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from tests.support.sdk import eventually, sdk_client
from tests.support.server import ROOT, ServerProcess

PROJECT = ROOT / "tests" / "fixtures" / "auth_project" / "langgraph.json"
TOKENS = {"alice": "alice-token", "bob": "bob-token", "root": "root-token"}


@pytest.fixture(scope="module")
def project(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(config=PROJECT)


def _client(project: ServerProcess, who: str) -> AbstractAsyncContextManager[Any]:
    return sdk_client(project.url, headers={"Authorization": f"Bearer {TOKENS[who]}"})


@pytest.fixture
async def alice(project: ServerProcess) -> AsyncIterator[Any]:
    async with _client(project, "alice") as client:
        yield client


@pytest.fixture
async def bob(project: ServerProcess) -> AsyncIterator[Any]:
    async with _client(project, "bob") as client:
        yield client


@pytest.fixture
async def root(project: ServerProcess) -> AsyncIterator[Any]:
    async with _client(project, "root") as client:
        yield client


@pytest.fixture
async def raw(project: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=project.url, timeout=30) as client:
        yield client


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


async def status_of(call: Any) -> int:
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


# Authentication


async def test_without_credentials_every_api_route_is_401_and_health_and_docs_are_public(
    raw: httpx.AsyncClient,
) -> None:
    for method, path in [
        ("POST", "/threads"),
        ("POST", "/threads/search"),
        ("GET", f"/threads/{uuid.uuid4()}"),
        ("POST", "/assistants/search"),
        ("POST", "/runs/crons/search"),
        ("POST", "/runs/wait"),
        ("PUT", "/store/items"),
        ("GET", "/no/such/route"),
    ]:
        response = await raw.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {"detail": "Missing bearer token"}
    assert (await raw.get("/ok")).status_code == 200
    # The /docs page and its packaged Swagger UI files load without a token, as the page must before one is given.
    docs = await raw.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', docs.text)
    assert len(assets) >= 2, docs.text
    for asset in assets:
        assert (await raw.get(asset)).status_code == 200, asset
    spec = (await raw.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"] == {"BearerAuth": {"type": "http", "scheme": "bearer"}}
    assert spec["security"] == [{"BearerAuth": []}]


async def test_refusals_keep_the_handlers_status_detail_and_headers(raw: httpx.AsyncClient) -> None:
    wrong = await raw.post("/threads/search", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "Invalid token"}
    assert wrong.headers["www-authenticate"] == "Bearer"
    nobody = await raw.post("/threads/search", json={}, headers={"Authorization": "Bearer nobody-token"})
    assert nobody.status_code == 401


async def test_an_authenticate_that_raises_is_a_generic_500_and_the_server_keeps_serving(
    raw: httpx.AsyncClient, project: ServerProcess
) -> None:
    response = await raw.post("/threads/search", json={}, headers={"Authorization": "Bearer broken-token"})
    assert response.status_code == 500
    assert "s3cr3t" not in response.text and "incident" in response.json()["detail"]
    assert "authenticate exploded with secret s3cr3t" in project.log()  # the traceback is in the log
    assert (await raw.post("/threads/search", json={}, headers=bearer("alice"))).status_code == 200


# Threads


async def test_threads_are_their_owners_alone(alice: Any, bob: Any, root: Any) -> None:
    mine = await alice.threads.create(metadata={"topic": "x"})
    assert mine["metadata"]["owner"] == "alice" and mine["metadata"]["topic"] == "x"
    tid = mine["thread_id"]
    # Bob sees nothing of it, exactly as if it did not exist.
    for call in (
        bob.threads.get(tid),
        bob.threads.update(tid, metadata={"owner": "bob"}),
        bob.threads.get_state(tid),
        bob.threads.get_history(tid),
        bob.threads.copy(tid),
        bob.threads.update_state(tid, {"runs": 5}),
        bob.runs.list(tid),
    ):
        assert await status_of(call) == 404
    missing = str(uuid.uuid4())
    assert await status_of(bob.threads.get(missing)) == 404
    assert tid not in [t["thread_id"] for t in await bob.threads.search(limit=100)]
    assert await bob.threads.count() == len(await bob.threads.search(limit=100))
    # Bob may not steal it by claiming the id either.
    assert await status_of(bob.threads.create(thread_id=tid, if_exists="do_nothing")) == 409
    # Alice can; root (the handler answers True) sees everything.
    assert (await alice.threads.get(tid))["thread_id"] == tid
    assert tid in [t["thread_id"] for t in await alice.threads.search(metadata={"topic": "x"}, limit=100)]
    assert (await root.threads.get(tid))["thread_id"] == tid
    # Updating keeps the owner (the handler stamps it again) and what alice sends.
    updated = await alice.threads.update(tid, metadata={"topic": "y"})
    assert updated["metadata"]["owner"] == "alice" and updated["metadata"]["topic"] == "y"
    copy = await alice.threads.copy(tid)
    assert copy["metadata"]["owner"] == "alice"


async def test_deleting_needs_the_permission_and_ownership(alice: Any, bob: Any) -> None:
    bobs = await bob.threads.create()
    # Bob lacks "threads:delete": the per-action handler answers False, 403, even on his own thread.
    assert await status_of(bob.threads.delete(bobs["thread_id"])) == 403
    # Alice has it, but the filter ($eq on owner) hides bob's thread from her.
    assert await status_of(alice.threads.delete(bobs["thread_id"])) == 404
    assert (await bob.threads.get(bobs["thread_id"]))["thread_id"] == bobs["thread_id"]
    hers = await alice.threads.create()
    await alice.threads.delete(hers["thread_id"])
    assert await status_of(alice.threads.get(hers["thread_id"])) == 404


async def test_a_handler_that_raises_http_exception_or_fails(alice: Any, project: ServerProcess) -> None:
    try:
        await alice.threads.create(metadata={"teapot": True})
        raise AssertionError("expected 418")
    except httpx.HTTPStatusError as exc:
        assert exc.response.status_code == 418 and exc.response.json() == {"detail": "No teapots"}
    try:
        await alice.threads.create(metadata={"explode": True})
        raise AssertionError("expected 500")
    except httpx.HTTPStatusError as exc:
        assert exc.response.status_code == 500 and "s3cr3t" not in exc.response.text
    assert "handler exploded with secret s3cr3t" in project.log()


# Runs


async def test_runs_carry_their_creator_and_are_seen_through_their_thread(alice: Any, bob: Any) -> None:
    thread = await alice.threads.create()
    tid = thread["thread_id"]
    result = await alice.runs.wait(tid, "whoami", input={})
    assert result["user_id"] == "alice" and result["identity"] == "alice"
    assert result["permissions"] == ["threads:delete"]
    run = (await alice.runs.list(tid))[0]
    assert run["metadata"]["owner"] == "alice"
    rid = run["run_id"]
    for call in (
        bob.runs.get(tid, rid),
        bob.runs.join(tid, rid),
        bob.runs.cancel(tid, rid),
        bob.runs.create(tid, "whoami", input={}),
        bob.runs.wait(tid, "whoami", input={}),
    ):
        assert await status_of(call) == 404
    # Deleting is threads.delete, which bob may not do at all (403 before any lookup).
    assert await status_of(bob.runs.delete(tid, rid)) == 403
    # Even `if_not_exists: "create"` cannot take over her thread.
    assert await status_of(bob.runs.create(tid, "whoami", input={}, if_not_exists="create")) == 404
    assert (await alice.runs.get(tid, rid))["run_id"] == rid


async def test_streams_joins_and_cancels_of_another_users_run_are_not_found(
    alice: Any, bob: Any, raw: httpx.AsyncClient
) -> None:
    thread = await alice.threads.create()
    tid = thread["thread_id"]
    run = await alice.runs.create(tid, "whoami", input={"sleep": 30})
    rid = run["run_id"]
    for path in (f"/threads/{tid}/runs/{rid}/stream", f"/runs/{rid}/stream", f"/threads/{tid}/stream"):
        response = await raw.get(path, headers=bearer("bob"))
        assert response.status_code == 404, path
    cancel = await raw.post("/runs/cancel", json={"run_ids": [rid]}, headers=bearer("bob"))
    assert cancel.status_code == 404
    cancel = await raw.post("/runs/cancel", json={"thread_id": tid}, headers=bearer("bob"))
    assert cancel.status_code == 404
    assert (await alice.runs.get(tid, rid))["status"] in ("pending", "running")
    # Alice cancels her own.
    await alice.runs.cancel(tid, rid, wait=True)
    assert (await alice.runs.get(tid, rid))["status"] in ("interrupted", "success")


async def test_a_stateless_run_creates_a_thread_its_creator_owns(alice: Any, bob: Any) -> None:
    run = await alice.runs.create(None, "whoami", input={}, on_completion="keep")
    tid = run["thread_id"]
    await alice.runs.join(tid, run["run_id"])
    thread = await alice.threads.get(tid)
    assert thread["metadata"]["owner"] == "alice"
    assert await status_of(bob.threads.get(tid)) == 404
    batch = await bob.runs.create_batch([{"assistant_id": "whoami", "input": {}, "on_completion": "keep"}])
    joined = await bob.runs.join(batch[0]["thread_id"], batch[0]["run_id"])
    assert joined["user_id"] == "bob" and joined["identity"] == "bob"


async def test_a_run_created_with_if_not_exists_belongs_to_its_creator(alice: Any, bob: Any) -> None:
    tid = str(uuid.uuid4())
    result = await bob.runs.wait(tid, "whoami", input={}, if_not_exists="create")
    assert result["user_id"] == "bob"
    assert (await bob.threads.get(tid))["metadata"]["owner"] == "bob"
    assert await status_of(alice.threads.get(tid)) == 404


async def test_identity_sent_by_a_client_is_not_trusted(alice: Any) -> None:
    forged = {"configurable": {"langgraph_auth_user_id": "root", "langgraph_auth_permissions": ["admin"]}}
    result = await alice.runs.wait(None, "whoami", input={}, config=forged)
    assert result["user_id"] == "alice" and result["permissions"] == ["threads:delete"]
    assistant = await alice.assistants.create("whoami", config=forged)
    result = await alice.runs.wait(None, assistant["assistant_id"], input={})
    assert result["user_id"] == "alice" and result["permissions"] == ["threads:delete"]


# Assistants ($contains)


async def test_assistants_are_shared_with_their_editors(alice: Any, bob: Any) -> None:
    private = await alice.assistants.create("whoami", name="private")
    shared = await alice.assistants.create("whoami", name="shared", metadata={"editors": ["bob"]})
    assert private["metadata"]["editors"] == ["alice"]
    assert sorted(shared["metadata"]["editors"]) == ["alice", "bob"]
    bobs_view = [a["assistant_id"] for a in await bob.assistants.search(limit=100)]
    assert shared["assistant_id"] in bobs_view and private["assistant_id"] not in bobs_view
    assert await bob.assistants.count() == len(bobs_view)
    for call in (
        bob.assistants.get(private["assistant_id"]),
        bob.assistants.update(private["assistant_id"], name="mine"),
        bob.assistants.delete(private["assistant_id"]),
        bob.assistants.get_versions(private["assistant_id"]),
        bob.assistants.get_schemas(private["assistant_id"]),
        bob.runs.wait(None, private["assistant_id"], input={}),
    ):
        assert await status_of(call) == 404
    assert (await bob.assistants.get(shared["assistant_id"]))["name"] == "shared"
    result = await bob.runs.wait(None, shared["assistant_id"], input={})
    assert result["user_id"] == "bob"


# Store


async def test_the_store_is_scoped_to_each_users_namespace(alice: Any, bob: Any) -> None:
    await alice.store.put_item(["notes"], "k", {"text": "alice's"})
    await bob.store.put_item(["notes"], "k", {"text": "bob's"})
    assert (await alice.store.get_item(["notes"], "k"))["value"] == {"text": "alice's"}
    assert (await bob.store.get_item(["notes"], "k"))["value"] == {"text": "bob's"}
    # The namespace was rewritten under each identity: asking for the other's prefix lands in one's own.
    mine = await bob.store.get_item(["alice", "notes"], "k")
    assert mine is None or mine["value"] != {"text": "alice's"}
    found = await bob.store.search_items(["notes"])
    assert [i["value"] for i in found["items"]] == [{"text": "bob's"}]
    namespaces = await bob.store.list_namespaces()
    assert all(ns[0] == "bob" for ns in namespaces["namespaces"])
    await bob.store.delete_item(["notes"], "k")
    assert (await alice.store.get_item(["notes"], "k"))["value"] == {"text": "alice's"}


# The thread-stream protocol


async def test_thread_stream_commands_and_events_on_another_users_thread(
    alice: Any, bob: Any, raw: httpx.AsyncClient
) -> None:
    tid = (await alice.threads.create())["thread_id"]
    command = {"id": 1, "method": "run.start", "params": {"assistant_id": "whoami", "input": {}}}
    stolen = await raw.post(f"/threads/{tid}/commands", json=command, headers=bearer("bob"))
    assert stolen.status_code == 200 and stolen.json()["type"] == "error"
    assert "404" in stolen.json()["message"]
    events = await raw.post(f"/threads/{tid}/stream/events", json={"channels": ["values"]}, headers=bearer("bob"))
    assert events.status_code == 404
    own = await raw.post(f"/threads/{tid}/commands", json=command, headers=bearer("alice"))
    assert own.json()["type"] == "success"
    run_id = own.json()["result"]["run_id"]
    await alice.runs.join(tid, run_id)
    assert (await alice.threads.get_state(tid))["values"]["user_id"] == "alice"


async def test_the_graph_factory_and_state_reads_run_as_the_caller(alice: Any) -> None:
    # A state read builds the graph for the caller; the run's own config names the run's creator.
    thread = await alice.threads.create()
    await alice.runs.wait(thread["thread_id"], "whoami", input={})
    state = await alice.threads.get_state(thread["thread_id"])
    assert state["values"]["identity"] == "alice"
    assert asyncio.get_running_loop() is not None


# Crons


EVERY_SECOND = "* * * * * *"


async def test_crons_have_owners_and_fire_as_them(alice: Any, bob: Any, root: Any) -> None:
    thread = await alice.threads.create()
    tid = thread["thread_id"]
    # A forged identity in the cron's config is replaced by the creator's.
    forged = {"configurable": {"langgraph_auth_user_id": "root", "langgraph_auth_permissions": ["admin"]}}
    cron = await alice.crons.create_for_thread(tid, "whoami", schedule=EVERY_SECOND, input={}, config=forged)
    cid = cron["cron_id"]
    assert cron["user_id"] == "alice" and cron["metadata"]["owner"] == "alice"
    # Its runs act for alice, unattended (no request is being served when it fires).
    runs = await eventually(lambda: alice.runs.list(tid))
    result = await alice.runs.join(tid, runs[-1]["run_id"])
    assert result["user_id"] == "alice" and result["identity"] == "alice"
    assert result["permissions"] == ["threads:delete"]
    assert runs[-1]["metadata"]["cron_id"] == cid
    # Bob can neither see nor touch it, nor schedule on alice's thread.
    assert cid not in [c["cron_id"] for c in await bob.crons.search(limit=100)]
    assert await bob.crons.count() == len(await bob.crons.search(limit=100))
    assert cid in [c["cron_id"] for c in await alice.crons.search(limit=100)]
    for call in (
        bob.http.get(f"/runs/crons/{cid}"),
        bob.crons.update(cid, schedule="0 9 * * *"),
        bob.crons.delete(cid),
        bob.http.get(f"/runs/crons/{cid}/runs"),
        bob.crons.create_for_thread(tid, "whoami", schedule="0 9 * * *"),
    ):
        assert await status_of(call) == 404
    # A patch by its owner keeps its owner's identity in the runs' config.
    patched = await alice.crons.update(cid, schedule="0 9 * * *", config=forged, metadata={"tag": "t"})
    assert patched["metadata"]["owner"] == "alice" and patched["metadata"]["tag"] == "t"
    configurable = patched["payload"]["config"]["configurable"]
    assert configurable["langgraph_auth_user_id"] == "alice"
    assert configurable["langgraph_auth_permissions"] == ["threads:delete"]
    # Root (True) sees it; alice deletes it; deleting her thread would cascade to the cron anyway.
    assert cid in [c["cron_id"] for c in await root.crons.search(limit=100)]
    await alice.crons.delete(cid)
    assert await status_of(alice.http.get(f"/runs/crons/{cid}")) == 404


async def test_a_stateless_cron_fires_as_its_owner_on_threads_they_own(alice: Any, bob: Any) -> None:
    cron = await bob.crons.create("whoami", schedule=EVERY_SECOND, input={}, on_run_completed="keep")
    try:
        found = await eventually(lambda: bob.threads.search(metadata={"cron_id": cron["cron_id"]}, limit=5))
        tid = found[0]["thread_id"]
        assert found[0]["metadata"]["owner"] == "bob"
        assert await status_of(alice.threads.get(tid)) == 404
        runs = await eventually(lambda: bob.runs.list(tid))
        result = await bob.runs.join(tid, runs[0]["run_id"])
        assert result["user_id"] == "bob" and result["identity"] == "bob"
    finally:
        await bob.crons.delete(cron["cron_id"])


async def test_the_cli_sees_what_its_token_may_see(project: ServerProcess, alice: Any) -> None:
    """`crongraph crons` against an authenticating server: 401 says how to pass a token; --token (or
    CRONGRAPH_TOKEN) shows the token's user their own crons and no one else's."""
    import os
    import subprocess
    import sys

    cron = await alice.crons.create("whoami", schedule="0 9 * * *", metadata={"cli": "yes"})

    def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crongraph", "crons", *args, "--url", project.url],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **(env or {})},
        )

    anonymous = cli("list")
    assert anonymous.returncode == 1 and "pass --token TOKEN or set CRONGRAPH_TOKEN" in anonymous.stderr
    mine = cli("list", "--token", TOKENS["alice"])
    assert mine.returncode == 0 and cron["cron_id"][-8:] in mine.stdout, mine.stdout + mine.stderr
    theirs = cli("list", env={"CRONGRAPH_TOKEN": TOKENS["bob"]})
    assert theirs.returncode == 0 and cron["cron_id"][-8:] not in theirs.stdout, theirs.stdout
    await alice.crons.delete(cron["cron_id"])


async def test_mcp_tools_are_what_the_user_may_see_and_run_as_the_user(
    project: ServerProcess, alice: Any, bob: Any
) -> None:
    """MCP goes through auth like the API: each user lists as tools only the assistants their handlers let them
    read, cannot call another's, and a tool call runs as the caller (the graph reports who it runs for)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.exceptions import MCPError

    suffix = uuid.uuid4().hex[:6]
    await alice.assistants.create("whoami", name=f"alice_bot_{suffix}")
    await bob.assistants.create("whoami", name=f"bob_bot_{suffix}")

    async def tools_and_call(who: str, tool: str) -> tuple[set[str], Any]:
        http = create_mcp_http_client(headers=bearer(who))
        async with (
            http,
            streamable_http_client(f"{project.url}/mcp/", http_client=http) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            names = {t.name for t in (await session.list_tools()).tools if t.name.endswith(suffix)}
            try:
                return names, await session.call_tool(tool, {})
            except MCPError as exc:  # inside the session: outside, the client's task group wraps it in a group
                return names, exc

    names, result = await tools_and_call("alice", f"alice_bot_{suffix}")
    assert names == {f"alice_bot_{suffix}"}
    assert not result.is_error and '"user_id":"alice"' in result.content[0].text.replace(" ", "")
    names, refused = await tools_and_call("bob", f"alice_bot_{suffix}")
    assert isinstance(refused, MCPError) and f"Unknown tool: alice_bot_{suffix}" in str(refused)
    names, result = await tools_and_call("bob", f"bob_bot_{suffix}")
    assert names == {f"bob_bot_{suffix}"} and '"user_id":"bob"' in result.content[0].text.replace(" ", "")


async def test_refused_requests_are_counted_apart_from_unknown_paths(raw: httpx.AsyncClient) -> None:
    """A 401 is answered by the auth middleware before any route runs: /metrics counts it as `<refused>`, so an
    operator can tell refusals from clients calling paths that do not exist."""
    from prometheus_client.parser import text_string_to_metric_families

    def refused() -> float:
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "crongraph_http_requests_total"
            and sample.labels.get("route") == "<refused>"
            and sample.labels.get("status") == "401"
        )

    text = (await raw.get("/metrics")).text
    before = refused()
    assert (await raw.get(f"/threads/{uuid.uuid4()}")).status_code == 401
    text = (await raw.get("/metrics")).text
    assert refused() == before + 1
