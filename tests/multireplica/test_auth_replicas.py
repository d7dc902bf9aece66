"""Custom auth holds across replicas: three `crongraph serve` processes on one PostgreSQL database, started with
the auth fixture project (tests/fixtures/auth_project/), give every user the same view whichever replica answers.
What alice creates through one replica is a 404 for bob through the others (gets, joins and streams of her run,
her cron's get/patch/delete) and missing from his searches, while alice sees it all through any replica; her cron,
fired unattended by whichever replica's scheduler claims it, runs as alice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.multireplica.conftest import Cluster
from tests.support.server import ROOT, ServerProcess

pytestmark = pytest.mark.postgres

PROJECT = ROOT / "tests" / "fixtures" / "auth_project" / "langgraph.json"
TOKENS = {"alice": "alice-token", "bob": "bob-token"}
EVERY_SECOND = "* * * * * *"


@pytest.fixture
def three(cluster: Callable[..., Cluster]) -> Cluster:
    return cluster(3, config=PROJECT)


@pytest.fixture
async def as_user(three: Cluster) -> AsyncIterator[Callable[[str, int], Any]]:
    """`as_user(who, i)`: an SDK client for user `who` on replica i (closed after the test)."""
    opened: list[Any] = []

    def open_client(who: str, i: int) -> Any:
        replica: ServerProcess = three.replicas[i]
        client = get_client(url=replica.url, headers={"Authorization": f"Bearer {TOKENS[who]}"})
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.http.client.aclose()


async def status_of(call: Awaitable[Any]) -> int:
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


async def stream_status(stream: Any) -> int:
    """The status of an SDK stream (an async iterator): an error status is raised on its first read."""
    try:
        async for _ in stream:
            break
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    finally:
        await stream.aclose()
    return 200


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy, failing after `within` seconds (cron fires are
    asynchronous, and the machine may be loaded: the deadline is generous, the poll is quick)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_each_replica_shows_each_user_only_their_own(three: Cluster, as_user: Any) -> None:
    alice_a, alice_b, alice_c = as_user("alice", 0), as_user("alice", 1), as_user("alice", 2)
    bobs = [as_user("bob", 1), as_user("bob", 2)]

    # Through replica A: alice's thread with a run in flight (long, so that a join that leaked would hang
    # rather than return), and a cron on a second thread of hers that fires every second.
    thread = await alice_a.threads.create(metadata={"case": "replicas"})
    tid = thread["thread_id"]
    run = await alice_a.runs.create(tid, "whoami", input={"sleep": 60})
    rid = run["run_id"]
    cron_thread = await alice_a.threads.create()
    ctid = cron_thread["thread_id"]
    cron = await alice_a.crons.create_for_thread(ctid, "whoami", schedule=EVERY_SECOND, input={})
    cid = cron["cron_id"]
    assert cron["user_id"] == "alice"

    # Through replicas B and C, bob finds none of it: each is exactly a resource that does not exist.
    for bob in bobs:
        for call in (
            bob.threads.get(tid),
            bob.threads.get_state(tid),
            bob.runs.get(tid, rid),
            bob.runs.join(tid, rid),
            bob.runs.cancel(tid, rid),
            bob.http.get(f"/runs/crons/{cid}"),
            bob.crons.update(cid, schedule="0 9 * * *"),
            bob.crons.delete(cid),
            bob.threads.get(ctid),
        ):
            assert await status_of(call) == 404
        assert await stream_status(bob.runs.join_stream(tid, rid)) == 404
        assert await bob.threads.search(limit=100) == []
        assert await bob.crons.search(limit=100) == []
        assert await bob.crons.count() == 0

    # Through replica C (and B), alice sees all of it, unchanged by bob's attempts.
    assert (await alice_c.threads.get(tid))["metadata"]["owner"] == "alice"
    assert (await alice_c.runs.get(tid, rid))["status"] in ("pending", "running")
    assert {t["thread_id"] for t in await alice_c.threads.search(limit=100)} == {tid, ctid}
    assert [c["cron_id"] for c in await alice_c.crons.search(limit=100)] == [cid]
    assert (await alice_b.http.get(f"/runs/crons/{cid}"))["schedule"] == EVERY_SECOND

    # Her cron fires (on whichever replica claims it) as alice: the run's output and the thread state say so.
    fired = await eventually(lambda: alice_c.runs.list(ctid))
    result = await alice_b.runs.join(ctid, fired[-1]["run_id"])
    assert result["user_id"] == "alice" and result["identity"] == "alice"
    assert fired[-1]["metadata"]["cron_id"] == cid
    assert (await alice_c.threads.get_state(ctid))["values"]["user_id"] == "alice"
    for bob in bobs:
        assert await status_of(bob.runs.list(ctid)) == 404
        assert await status_of(bob.threads.get_state(ctid)) == 404

    # Alice acts on her own things through replicas other than the one she created them on.
    await alice_c.crons.delete(cid)
    assert await status_of(alice_a.http.get(f"/runs/crons/{cid}")) == 404
    await alice_c.runs.cancel(tid, rid, wait=True)
    assert (await alice_b.runs.get(tid, rid))["status"] == "interrupted"
