"""`crongraph serve --exec-workers N` (queue/workers/): runs executed by child processes, seen through the server
exactly as runs it executes itself. A real server, the official SDK.

How a run is known to have executed in a worker: the graph appends "<tag> <pid>" to a file when it starts and
returns its pid. The main server (`--workers 1`) is kept busy by a long "blocker" run handed to it at creation, so
every other run can only be claimed by the worker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.sdk import cron_fires, eventually, sdk_client
from tests.support.server import ServerProcess

GRAPH = textwrap.dedent(
    """
    import asyncio
    import os
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph


    class State(TypedDict, total=False):
        tag: str
        log: str
        delay: float
        gate: str
        log_end: bool
        pid: int
        steps: int


    async def work(state: State) -> dict:
        if state.get("log"):
            with open(state["log"], "a") as f:
                f.write(f"{state.get('tag', '')} {os.getpid()}\\n")
        if state.get("delay"):
            await asyncio.sleep(state["delay"])
        while state.get("gate") and not os.path.exists(state["gate"]):
            await asyncio.sleep(0.01)
        if state.get("log_end"):
            with open(state["log"], "a") as f:
                f.write(f"{state.get('tag', '')}-end {os.getpid()}\\n")
        return {"pid": os.getpid(), "steps": state.get("steps", 0) + 1}


    builder = StateGraph(State)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    graph = builder.compile()
    """
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exec-workers-project")
    (folder / "work_graph.py").write_text(GRAPH)
    (folder / "langgraph.json").write_text('{"dependencies": ["."], "graphs": {"work": "./work_graph.py:graph"}}')
    return folder / "langgraph.json"


@pytest.fixture(scope="module")
def backend_is_sqlite(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("execution workers are SQLite only (PostgreSQL refuses the option, as tested below)")


@pytest.fixture(scope="module")
def one_worker(
    backend_is_sqlite: None, server_factory: Callable[..., ServerProcess], project: Path
) -> Iterator[ServerProcess]:
    env = {"CRONGRAPH_WORKERS": "1", "CRONGRAPH_EXEC_WORKERS": "1", "CRONGRAPH_LEASE_SECONDS": "3"}
    yield server_factory(config=project, env=env, database_url=None)


def started(log: Path, tag: str) -> Callable[[], Any]:
    """A check for `eventually`: the pid that started the run tagged `tag`, once it has."""

    def read() -> int | None:
        if not log.exists():
            return None
        found = re.search(rf"^{re.escape(tag)} (\d+)$", log.read_text(), re.MULTILINE)
        return int(found.group(1)) if found else None

    async def check() -> int | None:
        return await asyncio.to_thread(read)

    return check


@pytest.fixture(scope="module")
async def busy_parent(one_worker: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The main server's only slot taken by a long run, handed to it at creation."""
    log = tmp_path_factory.mktemp("exec-workers-log") / "runs.log"
    assert one_worker.process is not None
    async with sdk_client(one_worker.url) as client:
        thread = await client.threads.create()
        run = await client.runs.create(
            thread["thread_id"], "work", input={"tag": "blocker", "log": str(log), "delay": 3600}
        )
        pid = await eventually(started(log, "blocker"), within=60, what="the blocker run to start")
    assert pid == one_worker.process.pid, "the blocker should run in the main server (hand-off at creation)"
    return {"log": log, "parent": pid, "run": run}


async def test_waiters_and_streams_see_a_workers_run(one_worker: ServerProcess, busy_parent: dict[str, Any]) -> None:
    parent, log = busy_parent["parent"], str(busy_parent["log"])
    async with sdk_client(one_worker.url) as client:
        thread = (await client.threads.create())["thread_id"]
        waited = await client.runs.wait(thread, "work", input={"tag": "wait", "log": log})
        worker = waited["pid"]
        assert worker != parent and waited["steps"] == 1

        run = await client.runs.create(thread, "work", input={"tag": "join", "log": log})
        joined = await client.runs.join(thread, run["run_id"])
        assert joined["pid"] == worker and joined["steps"] == 2

        parts = [p async for p in client.runs.stream(thread, "work", input={"tag": "stream"}, stream_mode="values")]
        assert parts[0].event == "metadata"
        values = [p.data for p in parts if p.event == "values"]
        assert values[-1]["pid"] == worker and values[-1]["steps"] == 3

        # Replayed from the server's broker, from the start and after Last-Event-ID 1 (the metadata event).
        everything = [p async for p in client.runs.join_stream(thread, run["run_id"])]
        assert everything[0].event == "metadata" and everything[-1].data["pid"] == worker
        resumed = [p async for p in client.runs.join_stream(thread, run["run_id"], last_event_id="1")]
        assert resumed == everything[1:]

        got = await client.runs.get(thread, run["run_id"])
        assert got["status"] == "success"
        state = await client.threads.get_state(thread)
        assert state["values"]["steps"] == 3


async def test_banner_names_the_workers(one_worker: ServerProcess, busy_parent: dict[str, Any]) -> None:
    async with sdk_client(one_worker.url) as client:
        thread = (await client.threads.create())["thread_id"]
        worker = (await client.runs.wait(thread, "work", input={"tag": "banner"}))["pid"]
    assert worker != busy_parent["parent"]
    banner = [line for line in one_worker.log().splitlines() if line.strip().startswith("Workers:")]
    assert banner == [f"  Workers: 1 execution worker process (pid {worker}), 1 run slots each beside the server's 1"]


async def test_runs_longer_than_their_lease_keep_it(one_worker: ServerProcess, busy_parent: dict[str, Any]) -> None:
    # The lease is 3 s (renewed every second): a 7 s run in the worker outlives two leases unless renewal works,
    # and the blocker in the server has been renewed (or failed to be) since the module began.
    async with sdk_client(one_worker.url) as client:
        thread = (await client.threads.create())["thread_id"]
        waited = await client.runs.wait(thread, "work", input={"tag": "long", "delay": 7})
        assert waited["pid"] != busy_parent["parent"]
        runs = await client.runs.list(thread)
        assert [r["status"] for r in runs] == ["success"]
        blocker = await client.runs.get(busy_parent["run"]["thread_id"], busy_parent["run"]["run_id"])
        assert blocker["status"] == "running"
    log = one_worker.log_path.read_text()
    assert "renewing leases failed" not in log, log[-3000:]


async def test_thread_stream_carries_a_workers_run(one_worker: ServerProcess, busy_parent: dict[str, Any]) -> None:
    async with sdk_client(one_worker.url) as client:
        thread = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread, "work", input={"tag": "thread-stream"})
        # "0": everything the thread has had, then live: whether the run ended before the stream connects is moot.
        stream = await client.threads.join_stream(thread, last_event_id="0")
        parts: list[Any] = []
        try:
            async for part in stream:
                parts.append(part)
                if part.event == "metadata" and part.data.get("status") == "run_done":
                    break
        finally:
            await stream.aclose()
        assert parts[0].event == "metadata" and parts[0].data["run_id"] == run["run_id"]
        values = [p.data for p in parts if p.event == "values"]
        assert values[-1]["pid"] != busy_parent["parent"]
        assert parts[-1].data == {"status": "run_done", "run_id": run["run_id"]}


@pytest.mark.parametrize("action", ["interrupt", "rollback"])
async def test_cancel_reaches_the_worker(one_worker: ServerProcess, busy_parent: dict[str, Any], action: str) -> None:
    log = busy_parent["log"]
    async with sdk_client(one_worker.url) as client:
        thread = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread, "work", input={"tag": f"cancel-{action}", "log": str(log), "delay": 600})
        pid = await eventually(started(log, f"cancel-{action}"), within=60, what="the run to start")
        assert pid != busy_parent["parent"]
        await client.runs.cancel(thread, run["run_id"], action=action)
        if action == "interrupt":
            await asyncio.wait_for(client.runs.join(thread, run["run_id"]), timeout=60)
            assert (await client.runs.get(thread, run["run_id"]))["status"] == "interrupted"
        else:
            # Rollback deletes the run, so a join sent after the cancel may already find nothing to join: wait for
            # the deletion itself.
            async def deleted() -> bool:
                try:
                    await client.runs.get(thread, run["run_id"])
                except httpx.HTTPStatusError as missing:
                    assert missing.response.status_code == 404, missing.response.text
                    return True
                return False

            await eventually(deleted, within=60, what="the rolled-back run to be deleted")
        # The thread is free again: its next run executes.
        after = await client.runs.wait(thread, "work", input={"tag": f"after-{action}", "delay": 0})
        assert after["pid"] != busy_parent["parent"]


async def test_cron_fires_in_a_worker_record_their_fire_log(
    one_worker: ServerProcess, busy_parent: dict[str, Any]
) -> None:
    async with sdk_client(one_worker.url) as client:
        thread = (await client.threads.create())["thread_id"]
        cron = await client.crons.create_for_thread(thread, "work", schedule="0 9 1 1 *", input={"tag": "cron"})
        run = await client.http.post(f"/runs/crons/{cron['cron_id']}/trigger", json={})
        output = await client.runs.join(thread, run["run_id"])
        assert output["pid"] != busy_parent["parent"]

        async def recorded() -> list[dict[str, Any]] | None:
            fires = await cron_fires(client, cron["cron_id"])
            return fires if fires and all(f.get("run_status") == "success" for f in fires) else None

        fires = await eventually(recorded, what="the cron guards to record the worker's run in the fire log")
        assert [f["run_id"] for f in fires] == [run["run_id"]]
        await client.crons.delete(cron["cron_id"])


def _finished(text: str) -> float:
    found = re.search(r'^crongraph_runs_finished_total\{status="success"\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_metrics_count_a_workers_runs(one_worker: ServerProcess, busy_parent: dict[str, Any]) -> None:
    async with sdk_client(one_worker.url) as client, httpx.AsyncClient(base_url=one_worker.url) as raw:
        before = _finished((await raw.get("/metrics")).text)
        thread = (await client.threads.create())["thread_id"]
        for i in range(3):
            out = await client.runs.wait(thread, "work", input={"tag": f"metrics-{i}"})
            assert out["pid"] != busy_parent["parent"]

        async def counted() -> float | None:
            now = _finished((await raw.get("/metrics")).text)
            return now if now >= before + 3 else None

        await eventually(counted, what="/metrics to count the worker's runs")
        workers = (await raw.get("/metrics", params={"format": "json"})).json()["workers"]
        assert workers["processes"] == 2 and workers["total"] == 2 and workers["exec_workers"]["alive"] == 1
        text = (await raw.get("/metrics")).text
        assert re.search(r"^crongraph_exec_workers 1\.0$", text, re.MULTILINE), text
        assert re.search(r"^crongraph_exec_workers_alive 1\.0$", text, re.MULTILINE), text


async def test_killed_worker_runs_end_worker_lost_and_it_comes_back(
    one_worker: ServerProcess, busy_parent: dict[str, Any]
) -> None:
    log = busy_parent["log"]
    async with sdk_client(one_worker.url) as client:
        thread = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread, "work", input={"tag": "doomed", "log": str(log), "delay": 600})
        worker = await eventually(started(log, "doomed"), within=60, what="the run to start in the worker")
        assert worker != busy_parent["parent"]
        os.kill(worker, signal.SIGKILL)
        # Ended by the server's reaper once the lease (3 s) expires; the waiter learns it from storage.
        await asyncio.wait_for(client.runs.join(thread, run["run_id"]), timeout=60)
        ended = await client.runs.get(thread, run["run_id"])
        assert ended["status"] == "error" and ended["error"]["error"] == "WorkerLost", ended
        # It says what happened: a worker process died, which one, and how.
        message = ended["error"]["message"]
        assert f"execution worker process executing this run (worker 0, pid {worker}) died" in message, message
        assert "SIGKILL" in message, message
        # Restarted: the next run executes, in a new worker process.
        again = await asyncio.wait_for(
            client.runs.wait(thread, "work", input={"tag": "reborn", "delay": 0}), timeout=120
        )
        assert again["pid"] not in (worker, busy_parent["parent"])


@pytest.fixture(scope="module")
def two_workers(
    backend_is_sqlite: None, server_factory: Callable[..., ServerProcess], project: Path
) -> Iterator[ServerProcess]:
    env = {"CRONGRAPH_WORKERS": "4", "CRONGRAPH_EXEC_WORKERS": "2"}
    yield server_factory(config=project, env=env, database_url=None)


async def test_drain_executes_each_run_once(two_workers: ServerProcess, tmp_path: Path) -> None:
    """Background runs claimed by three processes at once: each executed exactly once, in more than one process.

    The runs wait at a gate until every one is created, so those started hold their process's slots (4 each) and
    the rest can only be claimed by the other processes, however fast or slow this machine is."""
    log, gate = tmp_path / "drain.log", tmp_path / "gate"
    count = 300
    async with sdk_client(two_workers.url) as client:
        created = [
            await client.runs.create(None, "work", input={"tag": f"d{i}", "log": str(log), "gate": str(gate)})
            for i in range(count)
        ]

        async def started_in_every_process() -> set[str] | None:
            text = await asyncio.to_thread(log.read_text) if log.exists() else ""
            pids = set(text.split()[1::2])
            return pids if len(pids) == 3 else None

        await eventually(started_in_every_process, within=120, what="runs to start in all three processes")
        gate.touch()
        results = [await asyncio.wait_for(client.runs.join(r["thread_id"], r["run_id"]), 120) for r in created]
    assert all(isinstance(r, dict) and r.get("steps") == 1 for r in results), results[:3]
    lines = log.read_text().split()
    tags = Counter(lines[0::2])
    assert set(tags) == {f"d{i}" for i in range(count)} and set(tags.values()) == {1}
    assert len(Counter(lines[1::2])) == 3


async def test_interactive_work_in_the_server_throttles_background_in_workers(
    two_workers: ServerProcess, tmp_path: Path
) -> None:
    """While a client's run executes in the server, each process starts at most one background run (cron runs),
    as the server alone would: the workers are told the server has interactive work (queue/producer.py).

    The client's run waits at a gate and notes its end in the log; the background runs wait at another gate. Until
    the client's run ended, no process may have started a second background run; afterwards the rest start."""
    assert two_workers.process is not None
    log, gate, background_gate = tmp_path / "runs.log", tmp_path / "interactive-gate", tmp_path / "background-gate"
    count = 5

    def lines() -> list[tuple[str, int]]:
        text = log.read_text() if log.exists() else ""
        return [(tag, int(pid)) for tag, pid in (line.split() for line in text.splitlines())]

    def background_started(at_least: int) -> Callable[[], Any]:
        async def check() -> int | None:
            n = sum(1 for tag, _ in await asyncio.to_thread(lines) if tag == "bg")
            return n if n >= at_least else None

        return check

    async with sdk_client(two_workers.url) as client:
        thread = (await client.threads.create())["thread_id"]
        interactive = await client.runs.create(
            thread, "work", input={"tag": "client", "log": str(log), "gate": str(gate), "log_end": True}
        )
        pid = await eventually(started(log, "client"), within=60, what="the client's run to start")
        assert pid == two_workers.process.pid, "the client's run should be handed to the server at creation"
        cron = await client.crons.create(
            "work",
            schedule="0 9 1 1 *",
            input={"tag": "bg", "log": str(log), "gate": str(background_gate)},
            on_run_completed="keep",  # its runs' threads stay, to be joined
        )
        triggered = [await client.http.post(f"/runs/crons/{cron['cron_id']}/trigger", json={}) for _ in range(count)]
        # Each process wakes on the runs' creation and starts what it may: one each (without the hint, a worker
        # would start up to three). Then the client's run ends, and the remaining background runs start.
        await eventually(background_started(2), within=60, what="background runs to start in two processes")
        gate.touch()
        await client.runs.join(thread, interactive["run_id"])
        await eventually(background_started(count), within=120, what="the other background runs to start")
        background_gate.touch()
        for run in triggered:
            await asyncio.wait_for(client.runs.join(run["thread_id"], run["run_id"]), 120)
        await client.crons.delete(cron["cron_id"])
    seen = lines()
    end = seen.index(("client-end", pid))
    before = Counter(p for tag, p in seen[:end] if tag == "bg")
    assert before and max(before.values()) == 1, f"background runs started beside the client's run, by pid: {before}"


def test_refused_on_postgres_and_validated(tmp_path: Path) -> None:
    import subprocess
    import sys

    def serve(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crongraph", "serve", "--db", str(tmp_path / "d"), *extra],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=60,
        )

    refused = serve("--exec-workers", "1", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert refused.returncode == 2 and "--exec-workers=1" in refused.stderr and "replicas" in refused.stderr
    bad = serve(env={"CRONGRAPH_EXEC_WORKERS": "65"})
    assert bad.returncode == 2 and "CRONGRAPH_EXEC_WORKERS=65" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    # Not a number, from the environment or the flag: one line naming the value and the allowed range.
    for given, env, name in (
        (("--exec-workers", "x"), None, "--exec-workers=x"),
        ((), {"CRONGRAPH_EXEC_WORKERS": "x"}, "CRONGRAPH_EXEC_WORKERS=x"),
    ):
        not_a_number = serve(*given, env=env)
        assert not_a_number.returncode == 2, not_a_number.stderr
        assert not_a_number.stderr.strip().splitlines() == [
            f"crongraph: {name}: Input should be a valid integer, unable to parse string as an integer; "
            "allowed: an integer from 0 to 64"
        ]


def test_benchmark_header_says_workers_are_used(two_workers: ServerProcess) -> None:
    """benchmarks/runs.py and crons.py print this after the server's URL."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "bench_common", Path(__file__).parents[2] / "benchmarks" / "common.py"
    )
    assert spec is not None and spec.loader is not None
    common = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = common  # its dataclasses look their module up
    try:
        spec.loader.exec_module(common)
    finally:
        del sys.modules[spec.name]
    assert common.execution_note(two_workers.url) == (
        " [execution workers: 2 alive of 2 configured, 3 processes, 12 worker slots]"
    )
