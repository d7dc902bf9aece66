"""Operating crongraph (issue 14): /metrics scraped in the Prometheus text format, a cron fire in the JSON log with
its lateness, the access log, startup failures as one or two plain lines with no banner, no traceback when shutdown
cuts an open stream, `dev --reload` serving a changed graph, and the CLI finding a `dev` on a fallback port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.sdk import eventually_sync
from tests.support.server import ServerProcess, free_port


def _json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for line in server.log_path.read_text().splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def _samples(url: str) -> dict[str, list[Any]]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture(scope="module")
def observed(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(env={"CRONGRAPH_LOG_LEVEL": "info", "CRONGRAPH_LOG_FORMAT": "json"})


def test_metrics_in_prometheus_text_and_a_cron_fire_in_the_json_log(observed: ServerProcess) -> None:
    client = get_sync_client(url=observed.url)
    try:
        thread = client.threads.create()
        result = client.runs.wait(thread["thread_id"], "echo", input={"messages": [{"role": "user", "content": "hi"}]})
        assert result["messages"][-1]["content"] == "echo: hi"  # type: ignore[index, call-overload]
        cron = client.crons.create("echo", schedule="* * * * * *", input={"messages": []})

        def fired_events() -> list[dict[str, Any]]:
            return [
                e
                for e in _json_lines(observed)
                if e.get("event") == "cron.fired" and e.get("cron_id") == cron["cron_id"]
            ]

        try:
            fired = eventually_sync(fired_events, 30, "a cron.fired event in the JSON log")
        finally:
            client.crons.delete(cron["cron_id"])
    finally:
        client.http.client.close()

    event = fired[0]
    assert event["logger"] == "crongraph.cron" and event["level"] == "info"
    assert event["run_id"] and isinstance(event["lateness_ms"], int | float) and event["lateness_ms"] >= 0
    slot = datetime.fromisoformat(event["scheduled_for"])
    assert slot.tzinfo is not None and slot.microsecond == 0
    # `serve` writes an access log by default, by route template.
    access = [e for e in _json_lines(observed) if e.get("event") == "http.request"]
    assert any(e["route"] == "/threads/{thread_id}/runs/wait" and e["status"] == 200 for e in access)

    def scraped() -> dict[str, list[Any]] | None:
        samples = _samples(observed.url)
        finished = _value(samples, "crongraph_runs_finished_total", status="success")
        return samples if finished >= 2 and _value(samples, "crongraph_cron_fires_total", outcome="created") else None

    samples = eventually_sync(scraped, 30, "the run and the cron fire counted in /metrics")
    requests = samples["crongraph_http_requests_total"]
    wait = [s for s in requests if s.labels["route"] == "/threads/{thread_id}/runs/wait"]
    assert wait and wait[0].labels["method"] == "POST" and wait[0].labels["status"] == "200"
    assert not any(thread["thread_id"] in s.labels["route"] for s in requests), "raw paths would explode the labels"
    assert _value(samples, "crongraph_http_request_duration_seconds_count", route="/threads/{thread_id}/runs/wait") >= 1
    assert _value(samples, "crongraph_run_duration_seconds_count") >= 2
    assert {s.labels["status"] for s in samples["crongraph_runs_inflight"]} == {"pending", "running"}
    assert _value(samples, "crongraph_cron_fire_lateness_seconds_count") >= 1
    assert _value(samples, "crongraph_cron_fire_lateness_seconds_bucket", le="+Inf") >= 1
    assert _value(samples, "crongraph_scheduler_wakeups_total") >= 1
    assert _value(samples, "crongraph_workers") >= 1
    # The same figures as JSON, for scripts (benchmarks/crons.py reads the queue's depth from it).
    body = httpx.get(f"{observed.url}/metrics", params={"format": "json"}).json()
    assert set(body["runs"]) == {"pending", "running"} and body["workers"]["total"] >= 1
    assert httpx.get(f"{observed.url}/metrics", params={"format": "xml"}).status_code == 422


def _crongraph(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crongraph", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _newer_database(folder: Path) -> None:
    folder.mkdir()
    with sqlite3.connect(folder / "crongraph.db") as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {"CRONGRAPH_WORKERS": "many"}, ["CRONGRAPH_WORKERS=many", "valid integer"]),
        (("--workers", "0"), {}, ["--workers=0", "greater than or equal to 1"]),
        ((), {"CRONGRAPH_LOG_FORMAT": "xml"}, ["CRONGRAPH_LOG_FORMAT=xml", "'json'"]),
        (
            ("--database-url", "postgresql://someone:s3cret@127.0.0.1:{port}/nowhere"),
            {},
            ["cannot connect to the database postgresql://***@127.0.0.1", "CRONGRAPH_DATABASE_URL"],
        ),
        (("--db", "future"), {}, ["migrated by a newer crongraph", "9999_from_the_future", "--db"]),
    ],
    ids=["bad-variable", "bad-flag", "bad-log-format", "unreachable-postgres", "newer-database"],
)
def test_startup_failures_are_one_or_two_plain_lines_and_no_banner(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: list[str]
) -> None:
    if "future" in args:
        _newer_database(tmp_path / "future")
    args = tuple(a.replace("{port}", str(free_port())) for a in args)
    result = _crongraph("dev", "--port", str(free_port()), *args, cwd=tmp_path, env=env)
    assert result.returncode in (1, 2), result
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("crongraph: ")
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    assert "API:" not in result.stdout, "the banner is printed only once the server is ready"


def test_shutdown_cutting_an_open_stream_prints_no_traceback(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(env={"CRONGRAPH_SHUTDOWN_GRACE_SECONDS": "0.2", "CRONGRAPH_LOG_LEVEL": "info"})
    thread = httpx.post(f"{server.url}/threads", json={}).json()["thread_id"]
    opened = threading.Event()
    ended = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", f"{server.url}/threads/{thread}/stream", timeout=60) as response:
                opened.set()
                for _ in response.iter_bytes():
                    pass
        except httpx.HTTPError:
            pass
        finally:
            opened.set()
            ended.set()

    threading.Thread(target=listen, daemon=True).start()
    assert opened.wait(30)
    server.stop()
    assert ended.wait(30)
    log = server.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    assert "cut after CRONGRAPH_SHUTDOWN_GRACE_SECONDS" in log


GRAPH = """
from typing import TypedDict
from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    answer: str


def node(state: State) -> State:
    return {"answer": "VERSION"}


graph = StateGraph(State).add_node("node", node).add_edge(START, "node").compile()
"""


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts in their own session, killed with all their children at the end."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test created: the reload child too
        except ProcessLookupError:
            pass
        proc.wait()


def _start(args: list[str], cwd: Path, procs: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CRONGRAPH_URL", "CRONGRAPH_DATA_DIR")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crongraph", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    procs.append(proc)
    return proc


def _answer(url: str) -> str | None:
    try:
        response = httpx.post(f"{url}/runs/wait", json={"assistant_id": "g", "input": {}}, timeout=10)
    except httpx.HTTPError:
        return None
    return response.json().get("answer") if response.status_code == 200 else None


def test_dev_reload_serves_a_changed_graph(tmp_path: Path, spawned: list[subprocess.Popen[str]]) -> None:
    (tmp_path / "graph.py").write_text(GRAPH.replace("VERSION", "first"))
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"g": "./graph.py:graph"}}))
    port = free_port()
    _start(["dev", "--reload", "--port", str(port)], tmp_path, spawned)
    url = f"http://127.0.0.1:{port}"
    assert eventually_sync(lambda: _answer(url), 60, "the first version to answer") == "first"
    (tmp_path / "graph.py").write_text(GRAPH.replace("VERSION", "second"))
    assert eventually_sync(lambda: _answer(url) == "second", 60, "the reloaded graph to answer")
    (tmp_path / "graph.py").write_text(GRAPH.replace("VERSION", "third"))
    assert eventually_sync(lambda: _answer(url) == "third", 60, "a second reload, on the same port")


def test_the_cli_finds_a_dev_server_on_a_fallback_port_without_flags(
    tmp_path: Path, spawned: list[subprocess.Popen[str]]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _start(["dev", "--port", str(port)], tmp_path, spawned)
        record = tmp_path / ".crongraph" / "server.json"
        url = eventually_sync(
            lambda: record.exists() and json.loads(record.read_text())["url"], 60, "dev to record its URL"
        )
        chosen = int(url.rsplit(":", 1)[1])
        assert port < chosen <= port + 10, "a stable fallback: the next free ports first"
        # No --url, no CRONGRAPH_URL: the CLI reads the record, here and from a subfolder.
        env = {"CRONGRAPH_URL": ""}
        listed = _crongraph("crons", "list", cwd=tmp_path, env=env)
        assert listed.returncode == 0 and "No active crons" in listed.stdout, listed
        (tmp_path / "sub").mkdir()
        cron = httpx.post(f"{url}/runs/crons", json={"assistant_id": "agent", "schedule": "0 9 * * *"}).json()
        shown = _crongraph("crons", "show", cron["cron_id"][-12:], cwd=tmp_path / "sub", env=env)
        assert shown.returncode == 0 and cron["cron_id"] in shown.stdout, shown
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert not record.exists(), "a stopped server removes its record"


class _NotCrongraph(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>hello</html>"
        self.send_response(404)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_cli_says_plainly_when_something_else_holds_the_port(tmp_path: Path) -> None:
    http = HTTPServer(("127.0.0.1", 0), _NotCrongraph)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        result = _crongraph("crons", "list", "--url", f"http://127.0.0.1:{http.server_port}", cwd=tmp_path)
    finally:
        http.shutdown()
    assert result.returncode == 1
    assert "not a crongraph server" in result.stderr and "404" in result.stderr and "--url" in result.stderr


def test_nothing_listening_is_reported_within_a_second() -> None:
    from crongraph.cli_crons import CliError, _check

    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(CliError, match="cannot reach a crongraph server") as raised:
        asyncio.run(_check(url, "--url"))
    assert time.monotonic() - started < 1.0
    assert "crongraph dev" in str(raised.value) and "--url" in str(raised.value)
